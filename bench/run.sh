#!/usr/bin/env bash
# Edge benchmark, all on loopback, one run: a small GET
#   1. straight to the upstream (direct),
#   2. through a bare `reverse_proxy` site of the same binary, without a log (bare),
#   3. the same bare site with the production access log snippet (bare+log),
#   4. through the gateway's app route of Caddyfile.dev (app: the production access
#      log, headers, canonical path, origin check, rate limits, token check, session
#      routing),
# 2-4 over HTTPS and over plain HTTP (-http), with wrk (Debian package), in
# interleaved rounds so that a change in the machine's load hits every target
# alike. Prints the median requests/s and p99 of each, and the ratios; and,
# for the gateway's targets, the gateway process's CPU time per request (user +
# system, from /proc, over each round), whose ratio does not depend on what
# else the machine runs, unlike requests/s on a shared machine.
# Usage: bench/run.sh [seconds per round] [connections] [rounds]
# With BENCH_PROFILE=<dir>, one more round of bare and of app writes the
# gateway's CPU profiles there (bare.pprof, app.pprof: go tool pprof).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
rounds=${3:-3}
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
export BENCH_BARE_PORT=$(free_port) BENCH_LOGGED_PORT=$(free_port)
export BENCH_BARE_HTTP_PORT=$(free_port) BENCH_LOGGED_HTTP_PORT=$(free_port) BENCH_APP_HTTP_PORT=$(free_port)
export FRONTEND_UPSTREAM=127.0.0.1:$up_port BACKEND_UPSTREAM=127.0.0.1:$up_port CODE_SERVER_UPSTREAM=127.0.0.1:$up_port
export CLAUDE_DATABASE=sqlite:$work/gateway.db CLAUDE_DATA=$work/data CLAUDE_WORKSPACE=$work/workspace
export XDG_CONFIG_HOME=$work XDG_DATA_HOME=$work
export RATE_LIMIT_PER_MINUTE=100000000

# Caddyfile.dev, its app site also served over plain HTTP, plus the bare proxy
# sites on their own ports: same binary, same process.
app_site='https://localhost:{$CLAUDE_HTTPS_PORT:8443} {'
grep -qF "$app_site" Caddyfile.dev || { echo "bench: the app site of Caddyfile.dev is not '$app_site'" >&2; exit 1; }
{
	sed "s|^https://localhost:{\$CLAUDE_HTTPS_PORT:8443} {|https://localhost:{\$CLAUDE_HTTPS_PORT:8443}, http://localhost:{\$BENCH_APP_HTTP_PORT} {|" Caddyfile.dev
	for scheme in https http; do
		port=BENCH_BARE_PORT logged=BENCH_LOGGED_PORT
		[ "$scheme" = http ] && port=BENCH_BARE_HTTP_PORT logged=BENCH_LOGGED_HTTP_PORT
		printf '\n%s://localhost:{$%s} {\n\treverse_proxy {$FRONTEND_UPSTREAM}\n}\n' "$scheme" "$port"
		printf '\n%s://localhost:{$%s} {\n\timport access_log\n\treverse_proxy {$FRONTEND_UPSTREAM}\n}\n' "$scheme" "$logged"
	done
} >"$work/Caddyfile"
cp snippets.caddyfile "$work/" # the Caddyfile imports it from beside itself
# The access log is part of the app route's cost; keep it, but off the terminal.
bin/claude-gateway run --config "$work/Caddyfile" --adapter caddyfile >"$work/gateway.log" 2>&1 & pids+=($!)
gateway=$!
for _ in $(seq 1 100); do
	curl -skf "https://localhost:$CLAUDE_HTTPS_PORT/api/live" >/dev/null 2>&1 && break
	sleep 0.2
done
token=$("$work/mktoken")

# cpu_ticks: the gateway's CPU time so far (user + system, all threads), in
# clock ticks; the fields after the command name, which is in parentheses.
cpu_ticks() { sed 's/.*) //' "/proc/$gateway/stat" | awk '{print $12 + $13}'; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

run() { # name url [header]: one round, appended to $work/<name>.{rps,p99,cpu}
	local name=$1 url=$2 hdr=${3:-}
	local args=(-t1 -c"$conns" -d"${secs}s" --latency)
	[ -n "$hdr" ] && args+=(-H "$hdr")
	local before; before=$(cpu_ticks)
	local out; out=$(wrk "${args[@]}" "$url")
	local ticks=$(($(cpu_ticks) - before))
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "bench: $name answered non-2xx responses:" >&2
		echo "$out" >&2
		exit 1
	fi
	awk '/Requests\/sec/ {print $2}' <<<"$out" >>"$work/$name.rps"
	awk '$1=="99%" {print $2}' <<<"$out" >>"$work/$name.p99"
	awk -v t="$ticks" -v us="$tick_us" '/requests in/ {print t * us / $1}' <<<"$out" >>"$work/$name.cpu"
}

echo "edge benchmark: load average $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds of ${secs}s per target, $conns connections, wrk -t1, $(nproc) cores"
targets=(direct bare bare+log app bare-http bare+log-http app-http)
for name in "${targets[@]}"; do : >"$work/$name.rps"; : >"$work/$name.p99"; : >"$work/$name.cpu"; done
wrk -t1 -c"$conns" -d2s "https://localhost:$CLAUDE_HTTPS_PORT/" -H "Authorization: Bearer $token" >/dev/null # warm-up
for ((i = 1; i <= rounds; i++)); do
	run direct "http://127.0.0.1:$up_port/"
	run bare "https://localhost:$BENCH_BARE_PORT/"
	run bare+log "https://localhost:$BENCH_LOGGED_PORT/"
	run app "https://localhost:$CLAUDE_HTTPS_PORT/" "Authorization: Bearer $token"
	run bare-http "http://localhost:$BENCH_BARE_HTTP_PORT/"
	run bare+log-http "http://localhost:$BENCH_LOGGED_HTTP_PORT/"
	run app-http "http://localhost:$BENCH_APP_HTTP_PORT/" "Authorization: Bearer $token"
done
if [ -n "${BENCH_PROFILE:-}" ]; then
	mkdir -p "$BENCH_PROFILE"
	profile() { # name url [header]: a CPU profile of the gateway during one more round
		curl -sf "http://$CLAUDE_ADMIN/debug/pprof/profile?seconds=$secs" -o "$BENCH_PROFILE/$1.pprof" &
		local curl_pid=$!
		run "profiled-$1" "${@:2}" # not among the medians: profiling slows it
		wait "$curl_pid"
	}
	profile bare "https://localhost:$BENCH_BARE_PORT/"
	profile app "https://localhost:$CLAUDE_HTTPS_PORT/" "Authorization: Bearer $token"
	echo "bench: CPU profiles in $BENCH_PROFILE (go tool pprof -top bin/claude-gateway $BENCH_PROFILE/app.pprof)"
fi
echo "gateway peak resident memory: $(awk '/^VmHWM/ {print $2, $3}' "/proc/$gateway/status")"
python3 - "$work" "${targets[@]}" <<'PY'
import sys, pathlib, statistics
d, names = pathlib.Path(sys.argv[1]), sys.argv[2:]
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
rps = {n: statistics.median(float(x) for x in (d / f"{n}.rps").read_text().split()) for n in names}
p99 = {n: statistics.median(ms(x) for x in (d / f"{n}.p99").read_text().split()) for n in names}
# The direct target does not go through the gateway: its CPU figure is the
# gateway idling, left out.
cpu = {n: statistics.median(float(x) for x in (d / f"{n}.cpu").read_text().split()) for n in names if n != "direct"}
for n in names:
    c = f"   gateway CPU {cpu[n]:6.1f} us/req" if n in cpu else ""
    print(f"{n:14s} {rps[n]:10.0f} req/s   p99 {p99[n]:7.2f} ms{c}   (median of rounds)")
for sfx, label in (("", "HTTPS"), ("-http", "HTTP ")):
    a, b, bl = rps["app" + sfx], rps["bare" + sfx], rps["bare+log" + sfx]
    print(f"{label}  app/bare = {a/b:.3f} (target >= 0.90)   bare+log/bare = {bl/b:.3f} (the access log alone)   app/bare+log = {a/bl:.3f}")
    a, b, bl = cpu["app" + sfx], cpu["bare" + sfx], cpu["bare+log" + sfx]
    print(f"{label}  by gateway CPU per request, bare/app = {b/a:.3f} (target >= 0.90)   bare/bare+log = {b/bl:.3f}   bare+log/app = {bl/a:.3f}")
print(f"bare/direct = {rps['bare']/rps['direct']:.3f}")
PY
