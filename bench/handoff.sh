#!/usr/bin/env bash
# Steady-state cost of the handoff modules (no reloads), all on loopback, one run:
# one gateway process serves the same small HTTPS response on two ports, one on the
# handoff network behind the handoff listener wrapper, one on plain tcp without them.
# wrk measures each port in turn (interleaved rounds, median), with keep-alive
# connections and with a new connection per request (Connection: close, so every
# request pays a TCP + TLS handshake and the wrapper's hand-off). Besides req/s it
# reports the gateway's CPU time per request (from /proc), which other load on a
# shared machine disturbs far less than req/s.
# Usage: bench/handoff.sh [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
rounds=${3:-3}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bin=bin/claude-gateway
{ [ -x "$bin" ] && "$bin" list-modules 2>/dev/null | grep -q '^caddy.listeners.handoff$'; } || make build >/dev/null

export HANDOFF_PORT=$(free_port) STOCK_PORT=$(free_port) BENCH_DATA=$work/data
export XDG_CONFIG_HOME=$work XDG_DATA_HOME=$work
cat >"$work/Caddyfile" <<'CADDY'
{
	admin off
	auto_https disable_redirects
	local_certs
	skip_install_trust
	storage file_system {$BENCH_DATA}
	servers handoff/127.0.0.1:{$HANDOFF_PORT} {
		listener_wrappers {
			handoff
		}
	}
}

https://localhost:{$HANDOFF_PORT} {
	bind handoff/127.0.0.1
	respond "ok"
}

https://localhost:{$STOCK_PORT} {
	bind 127.0.0.1
	respond "ok"
}
CADDY
"$bin" run --config "$work/Caddyfile" --adapter caddyfile >"$work/gateway.log" 2>&1 &
pid=$!
for port in "$HANDOFF_PORT" "$STOCK_PORT"; do
	for _ in $(seq 1 100); do
		curl -skf "https://localhost:$port/" >/dev/null 2>&1 && break
		sleep 0.2
	done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)

measure() { # port [header] -> "req/s cpu-µs-per-request"
	local args=(-t1 -c"$conns" -d"${secs}s")
	[ -n "${2:-}" ] && args+=(-H "$2")
	local before after out
	before=$(cpu_ticks)
	out=$(wrk "${args[@]}" "https://localhost:$1/")
	after=$(cpu_ticks)
	awk -v b="$before" -v a="$after" -v tick="$tick" -v secs="$secs" '
		/Requests\/sec/ { rps = $2 }
		END { printf "%s %.1f\n", rps, (a - b) / tick * 1e6 / (rps * secs) }' <<<"$out"
}

echo "handoff benchmark: ${secs}s per measurement, $conns connections, wrk -t1, $rounds rounds, $(nproc) cores"
for mode in keep-alive new-connection; do
	hdr=
	[ "$mode" = new-connection ] && hdr="Connection: close"
	measure "$STOCK_PORT" "$hdr" >/dev/null # warm-up
	measure "$HANDOFF_PORT" "$hdr" >/dev/null
	: >"$work/stock"
	: >"$work/handoff"
	for _ in $(seq 1 "$rounds"); do
		measure "$STOCK_PORT" "$hdr" >>"$work/stock"
		measure "$HANDOFF_PORT" "$hdr" >>"$work/handoff"
	done
	python3 - "$work" "$mode" <<'PY'
import sys, pathlib, statistics
d, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = {n: [tuple(map(float, l.split())) for l in (d / n).read_text().splitlines()] for n in ("stock", "handoff")}
rps = {n: statistics.median(r[0] for r in rows[n]) for n in rows}
cpu = {n: statistics.median(r[1] for r in rows[n]) for n in rows}
print(f"{mode:15s} req/s: stock {rps['stock']:8.0f}  handoff {rps['handoff']:8.0f}  ({(rps['handoff'] / rps['stock'] - 1) * 100:+.1f}%)   "
      f"gateway CPU per request: stock {cpu['stock']:6.1f} us  handoff {cpu['handoff']:6.1f} us  ({(cpu['handoff'] / cpu['stock'] - 1) * 100:+.1f}%)")
PY
done
