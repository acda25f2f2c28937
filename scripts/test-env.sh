#!/usr/bin/env bash
# Prepares what `make test` needs on a fresh machine and prints the environment
# the tests read, as `export` lines for the Makefile to eval:
#   - MariaDB from Debian's packages, started on 127.0.0.1:${CLAUDE_TEST_MYSQL_PORT:-3306}
#     with a test user that may create the per-test databases;
#   - Redis from Debian's packages, started on 127.0.0.1:${CLAUDE_TEST_REDIS_PORT:-6379};
#   - Chromium, wrk, docker-compose and openssl from Debian's packages;
#   - the sandbox image claude-sandbox:local for the Docker engine (scripts/sandbox-image.sh)
#     and the workspace image claude-workspace:local built on it (scripts/workspace-image.sh).
# Everything it starts keeps running after it exits; running it again is cheap.
set -euo pipefail

port=${CLAUDE_TEST_MYSQL_PORT:-3306}
redis_port=${CLAUDE_TEST_REDIS_PORT:-6379}
state=${CLAUDE_TEST_STATE:-/tmp/claude-gateway-test}
user=claude_test
pass=claude_test

log() { printf 'test-env: %s\n' "$*" >&2; }

need_pkgs=()
command -v mariadbd >/dev/null 2>&1 || need_pkgs+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if ((${#need_pkgs[@]})); then
	log "installing ${need_pkgs[*]} from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

mysql_ok() { mariadb --protocol=tcp -h127.0.0.1 -P"$port" -u"$user" -p"$pass" -e 'SELECT 1' >/dev/null 2>&1; }

if ! mysql_ok; then
	mkdir -p "$state"
	datadir=$state/mariadb
	if [ ! -d "$datadir/mysql" ]; then
		log "initialising MariaDB in $datadir"
		mkdir -p "$datadir"
		chown -R mysql:mysql "$state" 2>/dev/null || true
		mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=socket >/dev/null
	fi
	log "starting MariaDB on 127.0.0.1:$port"
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
	sock=$state/mariadb.sock
	nohup mariadbd --user=mysql --datadir="$datadir" --bind-address=127.0.0.1 --port="$port" \
		--socket="$sock" --pid-file="$state/mariadb.pid" --skip-name-resolve \
		--innodb-buffer-pool-size=256M --max-connections=500 \
		>"$state/mariadb.log" 2>&1 &
	for _ in $(seq 1 60); do
		mariadb --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.5
	done
	mariadb --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
	mysql_ok || { log "MariaDB did not come up; see $state/mariadb.log"; tail -20 "$state/mariadb.log" >&2; exit 1; }
fi

redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; }
if ! redis_ok; then
	log "starting Redis on 127.0.0.1:$redis_port"
	mkdir -p "$state/redis"
	redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$state/redis" \
		--daemonize yes --logfile "$state/redis.log" --pidfile "$state/redis.pid" >&2
	for _ in $(seq 1 50); do
		redis_ok && break
		sleep 0.1
	done
	redis_ok || { log "Redis did not come up; see $state/redis.log"; tail -20 "$state/redis.log" >&2; exit 1; }
fi

if [ -x "$(dirname "$0")/sandbox-image.sh" ] && command -v docker >/dev/null 2>&1; then
	"$(dirname "$0")/sandbox-image.sh" >&2
	"$(dirname "$0")/workspace-image.sh" >&2
fi

echo "export CLAUDE_TEST_MYSQL='mysql://$user:$pass@tcp(127.0.0.1:$port)/'"
echo "export CLAUDE_TEST_REDIS='redis://127.0.0.1:$redis_port/0'"
echo "export CLAUDE_TEST_CHROMIUM='$(command -v chromium)'"
