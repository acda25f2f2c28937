#!/usr/bin/env bash
# Builds the sandbox image the executor runs user code in — claude-sandbox:local by
# default — without any container registry: debootstrap a minimal Debian (bash,
# python3) from the machine's Debian mirror, strip it, and `docker import` it with a
# non-root user (uid/gid 1000) as its default user.
#
# Idempotent and cheap when the image exists: the image carries a version label and
# is only rebuilt when that label changes; the stripped root filesystem is cached as
# a tarball so a pruned engine gets it back in seconds.
#
#   scripts/sandbox-image.sh            # build if missing
#   SANDBOX_IMAGE=my/sandbox:1 scripts/sandbox-image.sh
#   SANDBOX_REBUILD=1 scripts/sandbox-image.sh   # force a fresh debootstrap
set -euo pipefail

image=${SANDBOX_IMAGE:-claude-sandbox:local}
suite=${SANDBOX_SUITE:-bookworm}
mirror=${SANDBOX_MIRROR:-}
state=${CLAUDE_TEST_STATE:-/tmp/claude-gateway-test}
# Bump when the contents below change, so existing machines rebuild.
version=2
label=org.claude-gateway.sandbox.version

log() { printf 'sandbox-image: %s\n' "$*" >&2; }

have=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
if [ "$have" = "$version" ] && [ -z "${SANDBOX_REBUILD:-}" ]; then
	exit 0
fi

mkdir -p "$state"
exec 9>"$state/sandbox-image.lock"
flock 9
# Another run may have built it while this one waited for the lock.
have=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
if [ "$have" = "$version" ] && [ -z "${SANDBOX_REBUILD:-}" ]; then
	exit 0
fi

start=$(date +%s)
cache=$state/sandbox-rootfs-$suite-v$version.tar
if [ ! -s "$cache" ] || [ -n "${SANDBOX_REBUILD:-}" ]; then
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
	root=$(mktemp -d "$state/sandbox-rootfs.XXXXXX")
	# mktemp makes it 0700; it becomes the image's / (the vfs storage driver, as a DinD
	# daemon may use, keeps that mode, and uid 1000 could not reach any file).
	chmod 0755 "$root"
	cleanup() {
		for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
		rm -rf "$root"
	}
	trap cleanup EXIT
	log "debootstrap $suite (minbase + python3) from $mirror"
	debootstrap --variant=minbase --include=python3 --exclude=e2fsprogs \
		"$suite" "$root" "$mirror" >"$state/sandbox-debootstrap.log" 2>&1 || {
		log "debootstrap failed; see $state/sandbox-debootstrap.log"
		tail -20 "$state/sandbox-debootstrap.log" >&2
		exit 1
	}
	# Nothing the sandbox needs at run time: package manager state, docs, caches.
	rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,linda,common-licenses} \
		"$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
		"$root"/var/log/* "$root"/tmp/* "$root"/debootstrap
	find "$root/dev" -mindepth 1 -delete
	# The non-root user every run uses, and the workspace mount point it owns.
	echo 'sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/bash' >>"$root/etc/passwd"
	echo 'sandbox:x:1000:' >>"$root/etc/group"
	echo 'sandbox:!:19000:0:99999:7:::' >>"$root/etc/shadow"
	install -d -o 1000 -g 1000 -m 0755 "$root/home/sandbox" "$root/workspace"
	tar --numeric-owner -C "$root" -cf "$cache.tmp" .
	mv "$cache.tmp" "$cache"
	cleanup
	trap - EXIT
fi

log "importing $image ($(du -h "$cache" | cut -f1) root filesystem)"
docker import \
	--change 'USER 1000:1000' \
	--change 'WORKDIR /workspace' \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV HOME=/tmp' \
	--change 'ENV LANG=C.UTF-8' \
	--change 'ENV PYTHONDONTWRITEBYTECODE=1' \
	--change 'CMD ["/bin/bash"]' \
	--change "LABEL $label=$version" \
	--message "claude-gateway sandbox ($suite minbase, python3, bash, uid 1000)" \
	"$cache" "$image" >/dev/null
log "built $image in $(($(date +%s) - start))s"
