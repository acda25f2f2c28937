#!/bin/sh
# Starts dockerd the way docker:dind's entrypoint does when DOCKER_TLS_CERTDIR is
# set: a CA, a server certificate (names: DOCKER_TLS_SAN, the host name, localhost,
# docker, 127.0.0.1) and a client certificate, each written once and kept in
#   $DOCKER_TLS_CERTDIR/ca       the CA and its key (stays with the daemon)
#   $DOCKER_TLS_CERTDIR/server   ca.pem cert.pem key.pem
#   $DOCKER_TLS_CERTDIR/client   ca.pem cert.pem key.pem (key readable: clients run as non-root)
# then the API on tcp://0.0.0.0:2376 with --tlsverify (mutual TLS) and the local
# unix socket; no plaintext TCP listener. Extra arguments go to dockerd.
set -eu

certs=${DOCKER_TLS_CERTDIR:-}
if [ -z "$certs" ]; then
	echo "dockerd-entrypoint: DOCKER_TLS_CERTDIR is not set; refusing to serve the API without TLS" >&2
	exit 1
fi
days=${DOCKER_TLS_DAYS:-825}
umask 022
mkdir -p "$certs/ca" "$certs/server" "$certs/client"

if [ ! -s "$certs/ca/key.pem" ] && [ ! -s "$certs/server/cert.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
		-subj '/CN=docker:dind CA' -keyout "$certs/ca/key.pem" -out "$certs/ca/cert.pem" 2>/dev/null
	chmod 0600 "$certs/ca/key.pem"
fi

# issue <dir> <subject> <extensions>: a key and certificate signed by the CA, once.
issue() {
	# A certificate given without the CA's key (a mounted secret) is used as it is.
	[ -s "$1/cert.pem" ] && [ ! -s "$certs/ca/key.pem" ] && return 0
	[ -s "$1/cert.pem" ] && [ -s "$1/key.pem" ] && openssl verify -CAfile "$certs/ca/cert.pem" "$1/cert.pem" >/dev/null 2>&1 && return 0
	tmp=$(mktemp -d)
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
		-subj "$2" -keyout "$1/key.pem" -out "$tmp/csr.pem" 2>/dev/null
	printf '%s\n' "$3" >"$tmp/ext.cnf"
	openssl x509 -req -sha256 -days "$days" -in "$tmp/csr.pem" -CA "$certs/ca/cert.pem" \
		-CAkey "$certs/ca/key.pem" -CAcreateserial -CAserial "$tmp/serial" -extfile "$tmp/ext.cnf" \
		-out "$1/cert.pem" 2>/dev/null
	rm -rf "$tmp"
	cp "$certs/ca/cert.pem" "$1/ca.pem"
}
san="DNS:$(hostname),DNS:localhost,DNS:docker,IP:127.0.0.1"
[ -n "${DOCKER_TLS_SAN:-}" ] && san="$DOCKER_TLS_SAN,$san"
issue "$certs/server" '/CN=docker:dind server' "extendedKeyUsage=serverAuth
subjectAltName=$san"
chmod 0600 "$certs/server/key.pem" 2>/dev/null || true
issue "$certs/client" '/CN=docker:dind client' "extendedKeyUsage=clientAuth"
chmod 0644 "$certs/client/key.pem" 2>/dev/null || true

# Started unprivileged (docker-compose cannot ask for systempaths=unconfined), the
# engine masks and write-protects parts of /proc and /sys; a nested container then
# cannot mount its own /proc (the kernel wants the parent's fully visible). With
# CAP_SYS_ADMIN those mounts are lifted here; a privileged start has none of them.
awk '$5 ~ "^/proc/" || $5 ~ "^/sys/firmware" {print $5}' /proc/self/mountinfo | sort -r |
	while read -r path; do umount "$path" 2>/dev/null || true; done

# A restarted container keeps /run: stale pid files would stop the daemons.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid

exec dockerd \
	--host=unix:///var/run/docker.sock \
	--host=tcp://0.0.0.0:2376 \
	--tlsverify \
	--tlscacert "$certs/server/ca.pem" \
	--tlscert "$certs/server/cert.pem" \
	--tlskey "$certs/server/key.pem" \
	"$@"
