#!/usr/bin/env bash
# `make run`'s script: the registry and hello come up, hello registers itself,
# answers, and on SIGTERM (Ctrl-C in a terminal reaches only the script) both stop cleanly with hello deregistered first.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
root=$(cd "$(dirname "$0")/../.." && pwd)
reg=127.0.0.1:$(fixture_free_port)
hello=127.0.0.1:$(fixture_free_port)

fixture_start demo env COLONY_DEMO_DIR="$WORK/state" COLONY_DEMO_REGISTRY="$reg" \
  COLONY_DEMO_HELLO="$hello" "$root/scripts/run-demo" "$BIN"
pid=$FIXTURE_PID
for _ in $(seq 1 100); do grep -q "colony demo is up" "$WORK/demo.log" && break; sleep 0.05; done
grep -q "colony demo is up" "$WORK/demo.log" || fail "demo did not come up"
[ "$(curl -fsS "http://$hello/hello")" = '{"message":"hello"}' ] || fail "hello"
services=$("$BIN/colony" services --registry "http://$reg")
grep -Eq '^hello +1 +1 ' <<<"$services" || fail "hello not registered and passing: $services"
fixture_terminate "$pid"
grep -q '"msg":"deregistered from the registry"' "$WORK/demo.log" || fail "hello did not deregister"
[ "$(grep -c '"msg":"stopped"' "$WORK/demo.log")" -eq 2 ] || fail "both should log stopped"
echo "1 passed, 0 failed"
