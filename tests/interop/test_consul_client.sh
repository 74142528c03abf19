#!/usr/bin/env bash
# Interop: the real npm `consul` client against `colony registry` — register a
# service with a TTL check, health.service with passing, KV set/get/keys/del
# with CAS, and consul.watch firing on KV and health changes.
# Usage: test_consul_client.sh <bin-dir>. Bounded to 60 s overall.
set -euo pipefail
bin=${1:?usage: $0 <bin-dir>}
here=$(cd "$(dirname "$0")" && pwd)
client_dir=$here/consul-client
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/registry.log" ] && tail -n 40 "$work/registry.log" >&2
  exit 1
}
# the whole test, npm ci included, must end within 60 s
( sleep 60; echo "FAIL: test_consul_client.sh exceeded 60 s" >&2; kill -TERM $$ ) &
watchdog=$!
trap 'kill $watchdog 2>/dev/null; cleanup' EXIT

command -v node >/dev/null || fail "node is not installed (scripts/bootstrap)"
if [ ! -d "$client_dir/node_modules/consul" ]; then
  (cd "$client_dir" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1) ||
    { cat "$work/npm.log" >&2; fail "npm ci failed"; }
fi

port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$bin/colony" registry --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$port/v1/status/leader" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "colony registry exited at startup"
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$port/v1/status/leader" >/dev/null || fail "registry did not start"

node "$client_dir/interop.js" "$port" || fail "consul client interop"
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "PASS: npm consul client interop"
