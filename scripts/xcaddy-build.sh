#!/usr/bin/env bash
# Builds the gateway through xcaddy, from the Caddy version and module set in
# xcaddy.json, to prove the modules plug into a stock Caddy build. Usage:
#   scripts/xcaddy-build.sh <output>
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/claude-gateway-xcaddy}
read_json() { python3 -c "import json,sys; d=json.load(open('xcaddy.json')); print(eval(sys.argv[1]))" "$1"; }
caddy_version=$(read_json 'd["caddy_version"]')
xcaddy_version=$(read_json 'd["xcaddy_version"]')
mapfile -t withs < <(python3 -c '
import json,os
for w in json.load(open("xcaddy.json"))["with"]:
    # A local replacement needs a version: without one, go get asks the module
    # proxy for the latest release of a module that is not published.
    v = "@" + w["version"] if w.get("version") else ""
    r = "=" + os.path.abspath(w["replace"]) if w.get("replace") else ""
    print(w["module"] + v + r)')
gobin=$(go env GOPATH)/bin
if ! "$gobin/xcaddy" version 2>/dev/null | grep -q "${xcaddy_version#v}"; then
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
fi
args=()
for w in "${withs[@]}"; do args+=(--with "$w"); done
CGO_ENABLED=0 XCADDY_SKIP_CLEANUP=0 "$gobin/xcaddy" build "$caddy_version" --output "$out" "${args[@]}"
