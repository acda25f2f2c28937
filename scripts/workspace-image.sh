#!/usr/bin/env bash
# Builds the workspace image the gateway runs one container of per session —
# claude-workspace:local by default — without any container registry: the local
# sandbox image (bash, python3, uid 1000; scripts/sandbox-image.sh builds it) plus
# a small static program that serves HTTP and WebSocket on code-server's command
# line (internal/standin), installed as /usr/bin/code-server, and the run helper
# every run goes through (cmd/claude-run), installed as /usr/local/bin/claude-run. Tests and `make run`
# use it where the production image (deploy/workspace/Dockerfile, FROM
# codercom/code-server) cannot be pulled.
#
# Cheap when up to date: the image carries a label with the hash of the stand-in
# binary and the base image's id, and is rebuilt only when either changes.
#
#   scripts/workspace-image.sh                     # build if missing or stale
#   WORKSPACE_IMAGE=my/ws:1 scripts/workspace-image.sh
#   WORKSPACE_REBUILD=1 scripts/workspace-image.sh # force a rebuild
set -euo pipefail

image=${WORKSPACE_IMAGE:-claude-workspace:local}
base=${SANDBOX_IMAGE:-claude-sandbox:local}
state=${CLAUDE_TEST_STATE:-/tmp/claude-gateway-test}
label=org.claude-gateway.workspace.version
repo=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

log() { printf 'workspace-image: %s\n' "$*" >&2; }

"$repo/scripts/sandbox-image.sh"

mkdir -p "$state"
exec 9>"$state/workspace-image.lock"
flock 9

ctx=$(mktemp -d "$state/workspace-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
(cd "$repo" && CGO_ENABLED=0 "$go" build -trimpath -ldflags '-s -w' -o "$ctx/code-server" ./internal/standin)
(cd "$repo" && CGO_ENABLED=0 "$go" build -trimpath -ldflags '-s -w' -o "$ctx/claude-run" ./cmd/claude-run)
base_id=$(docker image inspect --format '{{.Id}}' "$base")
version=$(cat "$ctx/code-server" "$ctx/claude-run" | sha256sum | cut -c1-16)-${base_id#sha256:}
version=${version:0:40}

have=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
if [ "$have" = "$version" ] && [ -z "${WORKSPACE_REBUILD:-}" ]; then
	exit 0
fi

start=$(date +%s)
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY code-server /usr/bin/code-server
COPY claude-run /usr/local/bin/claude-run
USER 0:0
RUN install -d -o 1000 -g 1000 -m 0755 /home/coder /run/ide
USER 1000:1000
ENV HOME=/home/coder
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/code-server"]
CMD ["--bind-addr", "0.0.0.0:8080", "--auth", "none", "/workspace"]
LABEL $label=$version
DOCKERFILE
log "building $image from $base"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx/build.log" || { cat "$ctx/build.log" >&2; exit 1; }
log "built $image in $(($(date +%s) - start))s"
