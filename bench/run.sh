#!/usr/bin/env bash
# Edge benchmark, all on loopback, one run: a small GET
#   1. straight to the upstream (direct),
#   2. through a bare `reverse_proxy` HTTPS site of the same binary (bare),
#   3. through the gateway's app route of Caddyfile.dev (app: headers, probes, auth …),
# with wrk (Debian package). Prints requests/s and p99 for each, and app/bare.
# Usage: bench/run.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/upstream" ./bench/upstream
go build -o "$work/mktoken" ./bench/mktoken
[ -x bin/claude-gateway ] || make build >/dev/null

up_port=$(free_port)
"$work/upstream" -addr "127.0.0.1:$up_port" & pids+=($!)

export SECRET_KEY=bench-secret-key-0123456789abcdef0123456789abcdef
export CLAUDE_HTTPS_PORT=$(free_port) CLAUDE_HTTP_PORT=$(free_port) CLAUDE_ADMIN=127.0.0.1:$(free_port)
export BENCH_BARE_PORT=$(free_port)
export FRONTEND_UPSTREAM=127.0.0.1:$up_port BACKEND_UPSTREAM=127.0.0.1:$up_port CODE_SERVER_UPSTREAM=127.0.0.1:$up_port
export CLAUDE_DATABASE=sqlite:$work/gateway.db CLAUDE_DATA=$work/data CLAUDE_WORKSPACE=$work/workspace
export XDG_CONFIG_HOME=$work XDG_DATA_HOME=$work
export RATE_LIMIT_PER_MINUTE=100000000

# Caddyfile.dev plus a bare proxy site on its own port, same binary, same process.
{ cat Caddyfile.dev; printf '\nhttps://localhost:{$BENCH_BARE_PORT} {\n\treverse_proxy {$FRONTEND_UPSTREAM}\n}\n'; } >"$work/Caddyfile"
# The access log is part of the app route's cost; keep it, but off the terminal.
bin/claude-gateway run --config "$work/Caddyfile" --adapter caddyfile >"$work/gateway.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
	curl -skf "https://localhost:$CLAUDE_HTTPS_PORT/api/live" >/dev/null 2>&1 && break
	sleep 0.2
done
token=$("$work/mktoken")

run() { # name url [header]
	local name=$1 url=$2 hdr=${3:-}
	local args=(-t1 -c"$conns" -d"${secs}s" --latency)
	[ -n "$hdr" ] && args+=(-H "$hdr")
	wrk "${args[@]}" "$url" >/dev/null 2>&1 || true # warm-up connections and caches
	local out; out=$(wrk "${args[@]}" "$url")
	local rps p99 non2xx
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '$1=="99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	printf '%-8s %12s req/s   p99 %-10s non-2xx %s\n' "$name" "$rps" "$p99" "${non2xx:-0}"
	echo "$rps" >"$work/$name.rps"
}

echo "edge benchmark: ${secs}s per target, $conns connections, wrk -t1, $(nproc) cores"
run direct "http://127.0.0.1:$up_port/"
run bare "https://localhost:$BENCH_BARE_PORT/"
run app "https://localhost:$CLAUDE_HTTPS_PORT/" "Authorization: Bearer $token"
python3 - "$work" <<'PY'
import sys, pathlib
d = pathlib.Path(sys.argv[1])
r = {n: float((d / f"{n}.rps").read_text()) for n in ("direct", "bare", "app")}
print(f"app/bare = {r['app']/r['bare']:.3f} (target >= 0.90); bare/direct = {r['bare']/r['direct']:.3f}")
PY
