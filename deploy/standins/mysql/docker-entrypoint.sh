#!/bin/bash
# Entrypoint of the MySQL stand-in: on an empty data directory it does what the
# official mysql image's entrypoint does with the variables docker-compose.yml
# sets, then runs the server as the mysql user:
#   MYSQL_ROOT_PASSWORD[_FILE]   root's password, for root@localhost and root@'%'
#   MYSQL_DATABASE               a database created empty
#   MYSQL_USER, MYSQL_PASSWORD[_FILE]   a user with every privilege on MYSQL_DATABASE
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh   run once, in name order
# An existing data directory is started as it is.
set -euo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }

# file_env VAR: VAR from the environment or from the file named by VAR_FILE (not both).
file_env() {
	local var=$1 file=${1}_FILE
	if [ -n "${!var:-}" ] && [ -n "${!file:-}" ]; then
		log "both $var and $file are set; use one"
		exit 1
	fi
	if [ -n "${!file:-}" ]; then
		export "$var"="$(<"${!file}")"
	fi
	unset "$file"
}

if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
	exec "$@"
fi

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
install -d -o mysql -g mysql /run/mysqld
chown mysql:mysql "$datadir"

if [ ! -d "$datadir/mysql" ]; then
	file_env MYSQL_ROOT_PASSWORD
	file_env MYSQL_PASSWORD
	if [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
		log "the data directory is empty and no MYSQL_ROOT_PASSWORD[_FILE] is set"
		exit 1
	fi
	log "initialising $datadir"
	mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
		--auth-root-authentication-method=normal >/dev/null
	mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
	pid=$!
	for _ in $(seq 120); do
		mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1 && break
		# Not kill -0: without CAP_KILL root may not signal the mysql user's process.
		[ -d "/proc/$pid" ] || { log "the server stopped during initialisation"; exit 1; }
		sleep 0.5
	done
	sql() { mariadb --protocol=socket --socket="$socket" -uroot "$@"; }
	# Quotes in values are doubled, as SQL string literals need.
	q() { printf "'%s'" "${1//\'/\'\'}"; }
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DELETE FROM mysql.user WHERE user='' OR (user='root' AND host NOT IN ('localhost'));"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(q "$MYSQL_ROOT_PASSWORD");"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY $(q "$MYSQL_ROOT_PASSWORD");"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MYSQL_DATABASE:-}" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
		fi
		if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
			echo "CREATE USER $(q "$MYSQL_USER")@'%' IDENTIFIED BY $(q "$MYSQL_PASSWORD");"
			if [ -n "${MYSQL_DATABASE:-}" ]; then
				echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO $(q "$MYSQL_USER")@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | sql
	export MYSQL_PWD=$MYSQL_ROOT_PASSWORD
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh) log "running $f"; . "$f" ;;
		*.sql) log "running $f"; sql ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} <"$f" ;;
		*.sql.gz) log "running $f"; gunzip -c "$f" | sql ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} ;;
		*) if [ -e "$f" ]; then log "ignoring $f"; fi ;;
		esac
	done
	unset MYSQL_PWD
	mariadb-admin --socket="$socket" -uroot -p"$MYSQL_ROOT_PASSWORD" shutdown
	wait "$pid" || true
	log "initialised"
fi
unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD

shift
exec mariadbd --user=mysql --datadir="$datadir" --socket="$socket" "$@"
