#!/usr/bin/env bash
# `make run`'s script: the registry, two hello instances and the gateway come
# up; both hellos register, the gateway routes to them through the registry,
# and on SIGTERM (Ctrl-C in a terminal reaches only the script) everything
# stops cleanly with the hellos deregistered first.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
root=$(cd "$(dirname "$0")/../.." && pwd)
reg=127.0.0.1:$(fixture_free_port)
hello=127.0.0.1:$(fixture_free_port)
hello2=127.0.0.1:$(fixture_free_port)
gw=127.0.0.1:$(fixture_free_port)
broker=127.0.0.1:$(fixture_free_port)
resp=127.0.0.1:$(fixture_free_port)
admin=127.0.0.1:$(fixture_free_port)

fixture_start demo env COLONY_DEMO_DIR="$WORK/state" COLONY_DEMO_REGISTRY="$reg" \
  COLONY_DEMO_HELLO="$hello" COLONY_DEMO_HELLO2="$hello2" COLONY_DEMO_GATEWAY="$gw" \
  COLONY_DEMO_ADMIN="$admin" COLONY_DEMO_BROKER="$broker" COLONY_DEMO_BROKER_RESP="$resp" \
  "$root/scripts/run-demo" "$BIN"
pid=$FIXTURE_PID
for _ in $(seq 1 100); do grep -q "colony demo is up" "$WORK/demo.log" && break; sleep 0.05; done
grep -q "colony demo is up" "$WORK/demo.log" || fail "demo did not come up"
[ "$(curl -fsS "http://$hello/hello")" = '{"message":"hello"}' ] || fail "hello"
grep -q "curl http://$gw/hello" "$WORK/demo.log" || fail "no curl command printed"
# the broker speaks Redis: redis-cli gets PONG and a PUBLISH with no subscriber counts 0
[ "$(redis-cli -p "${resp##*:}" PING)" = PONG ] || fail "broker PING"
[ "$(redis-cli -p "${resp##*:}" PUBLISH orders.created '{"id":1}')" = 0 ] || fail "broker PUBLISH"
grep -q "redis-cli -p ${resp##*:} PING" "$WORK/demo.log" || fail "no redis-cli command printed"
services=$("$BIN/colony" services --registry "http://$reg")
grep -Eq '^hello +2 +2 ' <<<"$services" || fail "hello x2 not registered and passing: $services"
# through the gateway: both instances answer (round robin)
for i in 1 2 3 4; do
  [ "$(curl -fsS "http://$gw/hello")" = '{"message":"hello"}' ] || fail "gateway /hello"
done
stats=$(curl -fsS "http://$admin/gateway/stats")
python3 -c 'import json,sys; s=json.load(sys.stdin); u=s["upstreams"][0]
assert len(u["instances"])==2, s; assert s["requests"]>=4, s' <<<"$stats" ||
  fail "gateway does not see both instances: $stats"
fixture_terminate "$pid"
[ "$(grep -c '"msg":"deregistered from the registry"' "$WORK/demo.log")" -eq 2 ] ||
  fail "hello did not deregister"
[ "$(grep -c '"msg":"stopped"' "$WORK/demo.log")" -eq 5 ] || fail "all five should log stopped"
echo "1 passed, 0 failed"
