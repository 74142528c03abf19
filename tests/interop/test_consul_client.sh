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
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/registry.log" ] && tail -n 40 "$work/registry.log" >&2
  exit 1
}
# the whole test stays within 60 s: npm ci <= 25 s, start <= 10 s, client <= 25 s

command -v node >/dev/null || fail "node is not installed (scripts/bootstrap)"
if [ ! -d "$client_dir/node_modules/consul" ]; then
  (cd "$client_dir" && timeout 25 npm ci --no-audit --no-fund >"$work/npm.log" 2>&1) &
  node_pid=$!
  wait "$node_pid" || { cat "$work/npm.log" >&2; fail "npm ci failed"; }
  node_pid=
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

timeout 25 node "$client_dir/interop.js" "$port" &
node_pid=$!
wait "$node_pid" || fail "consul client interop"
node_pid=
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "PASS: npm consul client interop"
