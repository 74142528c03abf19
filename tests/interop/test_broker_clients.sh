#!/usr/bin/env bash
# Interop: the npm `redis` client (node-redis v4) and `ioredis` against
# `colony broker` (tests/interop/broker-clients/interop.js): their connect
# handshakes, PING, ECHO, CLIENT SETNAME, pub/sub with channels and patterns
# and PUBLISH's counts, AUTH right and wrong. The same script runs against a
# real redis-server first, so a failure is the broker's, not the script's.
# Consumer groups (broker-clients/groups.js: xGroupCreate, xReadGroup with
# BLOCK woken by another client, xAck, xPending both forms, xAutoClaim,
# xClaim, xInfo through both clients) print their results, which must be
# the same from redis-server and from the broker.
# Usage: test_broker_clients.sh <bin-dir>. Bounded to 90 s overall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/fixtures.sh"
fixture_init "${1:-}"
client_dir=$here/broker-clients

command -v node >/dev/null || fail "node is not installed (scripts/bootstrap)"
if [ ! -d "$client_dir/node_modules/ioredis" ] || [ ! -d "$client_dir/node_modules/redis" ]; then
  fixture_start npm env -C "$client_dir" timeout 40 npm ci --no-audit --no-fund
  fixture_wait "$FIXTURE_PID"
  [ "$FIXTURE_RC" -eq 0 ] || fail "npm ci failed"
fi

# run_clients NAME PORT AUTH_PORT: the interop script, 25 s at most
run_clients() {
  fixture_start "$1" timeout 25 node "$client_dir/interop.js" "$2" "$3"
  fixture_wait "$FIXTURE_PID"
  [ "$FIXTURE_RC" -eq 0 ] || fail "$1: npm clients interop"
  cat "$WORK/$1.log"
}

if command -v redis-server >/dev/null; then
  for name in redis redis_auth; do
    port=$(fixture_free_port)
    extra=()
    [ "$name" = redis_auth ] && extra=(--requirepass sekret)
    fixture_start "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$WORK" --dbfilename "$name.rdb" "${extra[@]}"
    for ((i = 0; i < 200; i++)); do
      redis-cli -p "$port" ping 2>/dev/null | grep -q -e PONG -e NOAUTH && break
      sleep 0.05
    done
    printf -v "port_$name" '%s' "$port"
  done
  run_clients clients_redis "$port_redis" "$port_redis_auth"
fi

# run_groups NAME PORT: the consumer-group script, its results in NAME.log
run_groups() {
  fixture_start "$1" timeout 25 node "$client_dir/groups.js" "$2"
  fixture_wait "$FIXTURE_PID"
  [ "$FIXTURE_RC" -eq 0 ] || { cat "$WORK/$1.log"; fail "$1: npm clients consumer groups"; }
}
[ -n "${port_redis:-}" ] && run_groups groups_redis "$port_redis"

for name in broker broker_auth; do
  extra=()
  [ "$name" = broker_auth ] && extra=(--requirepass sekret)
  FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening "$name" \
    "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 \
    --data-dir "$WORK/$name" "${extra[@]}"
done
run_clients clients_broker "$PORT_broker" "$PORT_broker_auth"
run_groups groups_broker "$PORT_broker"
[ "$(wc -l <"$WORK/groups_broker.log")" -ge 20 ] || fail "consumer groups: results missing"
if [ -n "${port_redis:-}" ]; then
  diff -u "$WORK/groups_redis.log" "$WORK/groups_broker.log" ||
    fail "consumer groups through npm clients differ from redis-server"
fi
echo "consumer groups through node-redis and ioredis: the same results as redis-server"
fixture_terminate "$PID_broker"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "PASS: npm redis and ioredis clients interop with colony broker"
