#!/usr/bin/env bash
# colony kv and colony services against a real registry on a free loopback port.
set -euo pipefail
bin="$1"
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
"$bin/colony" registry --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/log" &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$dir/log" 2>/dev/null | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$dir/log"; echo "registry did not start"; exit 1; }
export COLONY_REGISTRY_URL="http://127.0.0.1:$port"
"$bin/colony" kv put app/name shop
[ "$("$bin/colony" kv get app/name)" = "shop" ]
printf 'from stdin' | "$bin/colony" kv put app/cfg/x -
[ "$("$bin/colony" kv get app/cfg/x)" = "from stdin" ]
[ "$("$bin/colony" kv ls app/ | tr '\n' ' ')" = "app/cfg/ app/name " ]
"$bin/colony" kv delete app --recurse
if "$bin/colony" kv get app/name 2>/dev/null; then echo "deleted key still readable"; exit 1; fi
curl -sf -X PUT "http://127.0.0.1:$port/v1/agent/service/register" \
  -d '{"Name":"web","ID":"web-1","Port":8080,"Check":{"TTL":"1m","Status":"passing"}}' >/dev/null
out=$("$bin/colony" services)
echo "$out" | grep -Eq '^web +1 +1 +0 +0'
grep -q 'web-1 .*127.0.0.1:8080 .*passing' <<<"$("$bin/colony" services web)"
if "$bin/colony" services --registry http://127.0.0.1:1 2>/dev/null; then echo "expected failure"; exit 1; fi
echo ok
