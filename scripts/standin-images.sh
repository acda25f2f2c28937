#!/usr/bin/env bash
# Builds the stand-in images the stack test (`make stack-test`) runs in place of
# images this machine cannot pull, without any registry:
#   claude-dind:local    Debian's docker.io, started the way docker:dind starts
#                        (deploy/standins/dind: TLS certificates in DOCKER_TLS_CERTDIR,
#                        API on 2376 with mutual TLS, no plaintext port)
#   claude-mysql:local   Debian's MariaDB with an entrypoint honouring the variables of
#                        the official mysql image that docker-compose.yml uses
#                        (deploy/standins/mysql)
#   claude-app:local     the frontend, backend and IDE stand-in: internal/standin (a static
#                        HTTP and WebSocket server taking code-server's flags) with curl and
#                        wget for the compose files' health checks (deploy/standins/app)
# Each is a minbase Debian root filesystem (debootstrap, cached as a tarball under
# $CLAUDE_TEST_STATE), imported with `docker import`, plus its entrypoint added by a
# `docker build` on that local base. Idempotent and cheap when the images exist: an
# image is rebuilt only when its label (this script's version and its directory's
# contents) changes.
#
#   scripts/standin-images.sh              # all three
#   scripts/standin-images.sh mysql        # one
#   STANDIN_REBUILD=1 scripts/standin-images.sh   # force a fresh debootstrap
set -euo pipefail

suite=${STANDIN_SUITE:-bookworm}
mirror=${STANDIN_MIRROR:-}
state=${CLAUDE_TEST_STATE:-/tmp/claude-gateway-test}
here=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# Bump when the root filesystems below change, so existing machines rebuild.
version=1
label=org.claude-gateway.standin.version

log() { printf 'standin-images: %s\n' "$*" >&2; }

# packages <name>: the Debian packages of a stand-in's root filesystem.
packages() {
	case $1 in
	dind) echo docker.io,openssl,ca-certificates,procps ;;
	mysql) echo mariadb-server-core,mariadb-client ;;
	app) echo curl,wget ;;
	*) log "unknown stand-in $1"; exit 2 ;;
	esac
}

# rootfs <name>: the cached root filesystem tarball of a stand-in, debootstrapped if missing.
rootfs() {
	local name=$1 cache=$state/standin-$1-rootfs-$suite-v$version.tar root
	if [ -s "$cache" ] && [ -z "${STANDIN_REBUILD:-}" ]; then
		echo "$cache"
		return
	fi
	command -v debootstrap >/dev/null 2>&1 || {
		log "installing debootstrap from Debian's packages"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
	}
	if [ -z "$mirror" ]; then
		# The mirror this machine's apt already uses, so no other host is needed.
		mirror=$(grep -hoE '(URIs:|^deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
			2>/dev/null | awk '{print $2}' | head -n1 || true)
		mirror=${mirror:-http://deb.debian.org/debian}
	fi
	root=$(mktemp -d "$state/standin-$name-rootfs.XXXXXX")
	chmod 0755 "$root" # the image's /: mktemp makes it 0700
	log "debootstrap $suite (minbase + $(packages "$name")) from $mirror"
	if ! debootstrap --variant=minbase --include="$(packages "$name")" "$suite" "$root" "$mirror" \
		>"$state/standin-$name-debootstrap.log" 2>&1; then
		log "debootstrap failed; see $state/standin-$name-debootstrap.log"
		tail -20 "$state/standin-$name-debootstrap.log" >&2
		for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
		rm -rf "$root"
		exit 1
	fi
	for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
	rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,linda,common-licenses} \
		"$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
		"$root"/var/log/* "$root"/tmp/* "$root"/debootstrap
	find "$root/dev" -mindepth 1 -delete
	tar --numeric-owner -C "$root" -cf "$cache.tmp" .
	mv "$cache.tmp" "$cache"
	rm -rf "$root"
	echo "$cache"
}

# context <name>: the build context of a stand-in: deploy/standins/<name>, and for the
# app stand-in the static internal/standin binary beside its Dockerfile.
context() {
	local dir=$here/deploy/standins/$1
	if [ "$1" != app ]; then
		echo "$dir"
		return
	fi
	local ctx=$state/standin-app-context
	rm -rf "$ctx" && mkdir -p "$ctx"
	cp "$dir"/* "$ctx"/
	(cd "$here" && CGO_ENABLED=0 "$go" build -trimpath -ldflags '-s -w' -o "$ctx/standin" ./internal/standin)
	echo "$ctx"
}

# build <name>: claude-<name>:local from its cached root filesystem and its context.
build() {
	local name=$1 image=claude-$1:local dir want have base start
	dir=$(context "$name")
	want=$version-$(cd "$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
	have=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
	if [ "$have" = "$want" ] && [ -z "${STANDIN_REBUILD:-}" ]; then
		return
	fi
	start=$(date +%s)
	base=claude-$name-base:$suite-v$version
	if ! docker image inspect "$base" >/dev/null 2>&1 || [ -n "${STANDIN_REBUILD:-}" ]; then
		local tarball
		tarball=$(rootfs "$name")
		log "importing $base ($(du -h "$tarball" | cut -f1) root filesystem)"
		docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' --message "claude-gateway $name stand-in base ($suite minbase)" \
			"$tarball" "$base" >/dev/null
	fi
	DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" --label "$label=$want" -t "$image" "$dir" \
		>/dev/null 2>"$state/standin-$name-build.log" || { cat "$state/standin-$name-build.log" >&2; exit 1; }
	log "built $image in $(($(date +%s) - start))s"
}

mkdir -p "$state"
exec 9>"$state/standin-images.lock"
flock 9
for name in "${@:-dind mysql app}"; do
	for n in $name; do build "$n"; done
done
