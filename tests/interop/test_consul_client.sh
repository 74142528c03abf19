#!/usr/bin/env bash
# Interop: the real npm `consul` client against `colony registry` — register a
# service with a TTL check, health.service with passing, KV set/get/keys/del
# with CAS, and consul.watch firing on KV and health changes.
# Usage: test_consul_client.sh <bin-dir>. Bounded to 60 s overall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/fixtures.sh"
fixture_init "${1:-}"
client_dir=$here/consul-client
# the whole test stays within 60 s: npm ci <= 25 s, start <= 10 s, client <= 25 s

command -v node >/dev/null || fail "node is not installed (scripts/bootstrap)"
if [ ! -d "$client_dir/node_modules/consul" ]; then
  fixture_start npm env -C "$client_dir" timeout 25 npm ci --no-audit --no-fund
  fixture_wait "$FIXTURE_PID"
  [ "$FIXTURE_RC" -eq 0 ] || fail "npm ci failed"
fi

fixture_start_registry registry
fixture_start client timeout 25 node "$client_dir/interop.js" "$REGISTRY_PORT"
fixture_wait "$FIXTURE_PID"
[ "$FIXTURE_RC" -eq 0 ] || fail "consul client interop"
cat "$WORK/client.log"
fixture_terminate "$REGISTRY_PID"
echo "PASS: npm consul client interop"
