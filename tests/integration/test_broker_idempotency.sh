#!/usr/bin/env bash
# colony broker's Idempotency-Key across a crash (docs/broker.md, "Publish"):
# the key is kept in each entry's metadata and the window is rebuilt from the
# streams' recent entries on start, so a client that lost the ack of a
# publish and retries it after the broker was killed with SIGKILL gets the
# same answer as the live path: 200, the first publish's id(s),
# "duplicate":true, nothing appended.
# - one message, an NDJSON batch of 3 (all three ids), and a message with a
#   TTL (the key sits after the TTL in the metadata: the message is still
#   delivered, not taken for expired);
# - the stream holds each message once, XRANGE shows the fields only;
# - a new key still appends; a key past the window (restart with a 1 s
#   window, 2 s later) is not remembered: the repeat appends.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq redis-cli; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"

start_broker() {
  local name=$1
  shift
  FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening "$name" \
    "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 \
    --data-dir "$WORK/data" "$@"
  RPORT=$FIXTURE_PORT
  BPID=$FIXTURE_PID
  fixture_wait_log_port "$name" "$BPID" '"port":[0-9]*'
  U=http://127.0.0.1:$FIXTURE_PORT
}
req() {
  local m=$1 p=$2
  shift 2
  BODY=$(curl -s -o - -w '\n%{http_code}' -X "$m" "$U$p" "$@")
  CODE=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
}
expect() {
  [ "$CODE" = "$1" ] || fail "expected $1, got $CODE: $BODY"
  [ -z "${2:-}" ] || [[ "$BODY" == *"$2"* ]] || fail "expected '$2' in: $BODY"
}
jget() { jq -r "$1" <<<"$BODY"; }
xlen() { redis-cli -p "$RPORT" xlen "$1"; }

start_broker broker1
req PUT /streams/orders; expect 201
req POST /streams/orders/messages -H 'Idempotency-Key: order-1' -d '{"data":"one"}'; expect 201
id1=$(jget .id)
printf '{"data":"a"}\n{"data":"b"}\n{"data":"c"}\n' >batch.ndjson
req POST /streams/orders/messages -H 'Idempotency-Key: batch-1' -H 'Content-Type: application/x-ndjson' \
  --data-binary @batch.ndjson
expect 201
ids=$(jq -c .ids <<<"$BODY")
[ "$(jq length <<<"$ids")" = 3 ] || fail "batch ids: $BODY"
req POST '/streams/orders/messages?ttl=1h' -H 'Idempotency-Key: ttl-1' -d '{"data":"ttl"}'; expect 201
idt=$(jget .id)
# the live path, before the crash
req POST /streams/orders/messages -H 'Idempotency-Key: order-1' -d '{"data":"one"}'
expect 200 '"duplicate":true'
[ "$(xlen orders)" = 5 ] || fail "xlen before the crash: $(xlen orders)"

kill -9 "$BPID"
fixture_wait "$BPID"
start_broker broker2

req POST /streams/orders/messages -H 'Idempotency-Key: order-1' -d '{"data":"one"}'
expect 200 '"duplicate":true'
[ "$(jget .id)" = "$id1" ] || fail "after kill -9: id $(jget .id), first publish gave $id1"
req POST /streams/orders/messages -H 'Idempotency-Key: batch-1' -H 'Content-Type: application/x-ndjson' \
  --data-binary @batch.ndjson
expect 200 '"duplicate":true'
[ "$(jq -c .ids <<<"$BODY")" = "$ids" ] || fail "batch after kill -9: $BODY, first gave $ids"
req POST '/streams/orders/messages?ttl=1h' -H 'Idempotency-Key: ttl-1' -d '{"data":"ttl"}'
expect 200 '"duplicate":true'
[ "$(jget .id)" = "$idt" ] || fail "ttl publish after kill -9: $BODY"
[ "$(xlen orders)" = 5 ] || fail "duplicates appended after the restart: xlen $(xlen orders)"
# XRANGE shows the fields only (the key is metadata)
redis-cli -p "$RPORT" xrange orders - + >xrange.out
! grep -q 'order-1\|batch-1' xrange.out || fail "the key shows in XRANGE: $(cat xrange.out)"
# the TTL'd message is delivered, not dead-lettered as expired
req GET "/streams/orders/groups/g/messages?consumer=c&max=10"
[ "$CODE" = 200 ] || { req PUT /streams/orders/groups/g -d '{}'; expect 201;
  req GET "/streams/orders/groups/g/messages?consumer=c&max=10"; expect 200; }
[ "$(jq '.messages | length' <<<"$BODY")" = 5 ] || fail "consume after restart: $BODY"
jq -e --arg id "$idt" '.messages[] | select(.id == $id) | .data == "ttl"' <<<"$BODY" >/dev/null ||
  fail "the keyed TTL message: $BODY"
# a new key appends
req POST /streams/orders/messages -H 'Idempotency-Key: order-2' -d '{"data":"two"}'; expect 201
[ "$(xlen orders)" = 6 ] || fail "xlen after a new key: $(xlen orders)"

# past the window: a restart with a 1 s window, 2 s after the publishes
fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
sleep 2
start_broker broker3 --api.idempotency-window=1s
req POST /streams/orders/messages -H 'Idempotency-Key: order-2' -d '{"data":"two"}'; expect 201
[ "$(xlen orders)" = 7 ] || fail "a key past the window was remembered: xlen $(xlen orders)"
fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_idempotency: passed"
