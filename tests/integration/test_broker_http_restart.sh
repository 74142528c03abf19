#!/usr/bin/env bash
# colony broker's HTTP API around a kill -9 (docs/broker.md, "Publish" and
# "Consume"), the issue-9 leftovers:
# - a topic publish's Idempotency-Key survives kill -9 + restart: the retry
#   (one message, and an NDJSON batch to a topic bound to two streams) is
#   answered 200 with the first answer's streams and ids, "duplicate":true,
#   and appends nothing; a new key appends;
# - a first delivery of durable entries is answered without waiting for a
#   commit (colony_broker_commit_wait_seconds_count does not move; it does
#   for a redelivery), and kill -9 right after it loses no entry: after the
#   restart the entry comes back with its count at most one lower;
# - an NDJSON batch that fails in the middle (a stream with max_len and
#   overflow reject) answers 507 naming the lines stored (line and id) and
#   the line to resend from; the stored ones are there after kill -9, the
#   others are not; a bad line in the middle stores nothing.
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
crash_and_restart() {
  kill -9 "$BPID"
  fixture_wait "$BPID"
  start_broker "$1"
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
commit_waits() {
  curl -s "$U/metrics" | awk '/^colony_broker_commit_wait_seconds_count/ {print $2}'
}
ND=(-H 'Content-Type: application/x-ndjson')

start_broker broker1

# ---- topic publishes with a key
req PUT /bindings -d '{"topic": "order.*", "stream": "orders"}'; expect 201
req PUT /bindings -d '{"topic": "order.created", "stream": "audit"}'; expect 201
req POST /topics/order.created/messages -H 'Idempotency-Key: t-1' -d '{"data":"one"}'; expect 201
first1=$(jq -cS .messages <<<"$BODY")
[ "$(jq '.messages[0].streams | length' <<<"$BODY")" = 2 ] || fail "topic publish: $BODY"
printf '{"data":"a"}\n\n{"data":"b"}\n' >batch.ndjson
req POST /topics/order.created/messages -H 'Idempotency-Key: t-batch' "${ND[@]}" \
  --data-binary @batch.ndjson
expect 201
firstb=$(jq -cS .messages <<<"$BODY")
[ "$(jq '.messages | length' <<<"$BODY")" = 2 ] || fail "topic batch: $BODY"
# the live path
req POST /topics/order.created/messages -H 'Idempotency-Key: t-1' -d '{"data":"one"}'
expect 200 '"duplicate":true'
[ "$(xlen orders)" = 3 ] && [ "$(xlen audit)" = 3 ] || fail "before the crash"

crash_and_restart broker2
# streams in a message may be listed in another order after the restart
sorted() { jq -cS '[.[] | {streams: (.streams | sort_by(.stream))}]'; }
req POST /topics/order.created/messages -H 'Idempotency-Key: t-1' -d '{"data":"one"}'
expect 200 '"duplicate":true'
[ "$(jq .messages <<<"$BODY" | sorted)" = "$(sorted <<<"$first1")" ] ||
  fail "topic key after kill -9: $BODY, first answer $first1"
req POST /topics/order.created/messages -H 'Idempotency-Key: t-batch' "${ND[@]}" \
  --data-binary @batch.ndjson
expect 200 '"duplicate":true'
[ "$(jq .messages <<<"$BODY" | sorted)" = "$(sorted <<<"$firstb")" ] ||
  fail "topic batch key after kill -9: $BODY, first answer $firstb"
[ "$(xlen orders)" = 3 ] && [ "$(xlen audit)" = 3 ] ||
  fail "a repeated topic publish appended after the restart: $(xlen orders) $(xlen audit)"
# the same key on another topic is another publish; a new key appends
req POST /topics/order.paid/messages -H 'Idempotency-Key: t-1' -d '{"data":"paid"}'; expect 201
req POST /topics/order.created/messages -H 'Idempotency-Key: t-2' -d '{"data":"two"}'; expect 201
[ "$(xlen orders)" = 5 ] && [ "$(xlen audit)" = 4 ] || fail "new keys: $(xlen orders) $(xlen audit)"

# ---- first deliveries answered without a commit; kill -9 loses none
req PUT /streams/jobs; expect 201
req PUT /streams/jobs/groups/w -d '{"visibility_timeout": "1s"}'; expect 201
req POST /streams/jobs/messages -d '{"data":"j1"}'; expect 201
jid=$(jget .id)
before=$(commit_waits)
req GET '/streams/jobs/groups/w/messages?consumer=c1'; expect 200
[ "$(jget '.messages[0].id')" = "$jid" ] && [ "$(jget '.messages[0].deliveries')" = 1 ] ||
  fail "first delivery: $BODY"
[ "$(commit_waits)" = "$before" ] || fail "a first delivery of a durable entry waited for a commit"
crash_and_restart broker3
deadline=$((SECONDS + 20))
got=0
while [ $SECONDS -lt $deadline ]; do
  req GET '/streams/jobs/groups/w/messages?consumer=c2&wait=2s'; expect 200
  if [ "$(jget '.messages | length')" = 1 ]; then got=1; break; fi
done
[ "$got" = 1 ] || fail "the delivered entry did not come back after kill -9"
[ "$(jget '.messages[0].id')" = "$jid" ] || fail "redelivered another entry: $BODY"
n=$(jget '.messages[0].deliveries')
[ "$n" = 1 ] || [ "$n" = 2 ] || fail "count after kill -9: $n (want 2, or 1 at most one lower)"
# a redelivery waits for its commit
sleep 1.2
before=$(commit_waits)
req GET '/streams/jobs/groups/w/messages?consumer=c3&wait=3s'; expect 200
[ "$(jget '.messages[0].deliveries')" = $((n + 1)) ] || fail "redelivery: $BODY"
[ "$(commit_waits)" -gt "$before" ] || fail "a redelivery was answered before its commit"

# ---- a batch that fails in the middle
req PUT /streams/small -d '{"max_len": 3, "overflow": "reject"}'; expect 201
req POST /streams/small/messages -d '{"data":0}'; expect 201
printf '{"data":1}\n\n{"data":2}\n{"data":3}\n{"data":4}\n' >partial.ndjson
req POST /streams/small/messages "${ND[@]}" --data-binary @partial.ndjson
expect 507 '"stream_full"'
[ "$(jq -c '[.stored[].line]' <<<"$BODY")" = "[1,3]" ] || fail "stored lines: $BODY"
[ "$(jget .retry_from_line)" = 4 ] || fail "retry_from_line: $BODY"
stored=$(jq -c '[.stored[].id]' <<<"$BODY")
crash_and_restart broker4
[ "$(xlen small)" = 3 ] || fail "after kill -9, small holds $(xlen small) entries, want 3"
ids=$(redis-cli -p "$RPORT" xrange small - + | grep -E '^[0-9]+-[0-9]+$' | tail -2 | jq -R . | jq -sc .)
[ "$ids" = "$stored" ] || fail "stored ids $stored, the stream holds $ids"
# a bad line in the middle: nothing appended
req PUT /streams/big; expect 201
printf '{"data":1}\n{"data":\n{"data":3}\n' >bad.ndjson
req POST /streams/big/messages "${ND[@]}" --data-binary @bad.ndjson
expect 400 'line 2'
[ "$(xlen big)" = 0 ] || fail "a batch with a bad line appended $(xlen big)"

fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_http_restart: passed"
