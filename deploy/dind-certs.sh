#!/usr/bin/env bash
# Writes the DinD daemon's mutual-TLS material for Kubernetes (kubernetes/dind.yaml):
#   <dir>/server/{ca,cert,key}.pem   the daemon's certificate for the names below
#   <dir>/client/{ca,cert,key}.pem   the gateways' client certificate
# The CA key stays in <dir>/ca-key.pem: keep it offline; no pod gets it.
# Usage: deploy/dind-certs.sh [dir] [extra DNS name...]   (default dir: secrets/dind)
set -euo pipefail
dir=${1:-secrets/dind}
shift || true
names=(dind dind.claude.svc dind.claude.svc.cluster.local localhost "$@")
days=${DIND_CERT_DAYS:-825}

umask 077
mkdir -p "$dir/server" "$dir/client"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$dir/ca-key.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
		-subj '/CN=claude dind CA' -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
fi

san=$(printf 'DNS:%s,' "${names[@]}")
san=${san%,},IP:127.0.0.1

issue() { # name subject extensions
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
		-subj "$2" -keyout "$dir/$1/key.pem" -out "$tmp/$1.csr" 2>/dev/null
	printf '%s\n' "$3" >"$tmp/$1.ext"
	openssl x509 -req -sha256 -days "$days" -in "$tmp/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
		-CAcreateserial -CAserial "$tmp/serial" -extfile "$tmp/$1.ext" -out "$dir/$1/cert.pem" 2>/dev/null
	cp "$dir/ca.pem" "$dir/$1/ca.pem"
	openssl verify -CAfile "$dir/ca.pem" "$dir/$1/cert.pem" >/dev/null
}
issue server '/CN=dind' "extendedKeyUsage=serverAuth
subjectAltName=$san"
issue client '/CN=claude-gateway' "extendedKeyUsage=clientAuth"
echo "dind TLS material in $dir (server: ${names[*]})"
