#!/usr/bin/env bash
# colony broker's HTTP API (docs/broker.md, "HTTP API"), a real broker and curl:
# - streams: create (201, then 200), list with figures, inspect, delete, 404s,
#   bad names; groups: create with a start, list, inspect, delete, 404s;
# - publish: one JSON message (an object, a string, headers) readable over
#   RESP as fields, an NDJSON batch (ids in order, one answer), a bad NDJSON
#   line (400 naming the line, nothing appended), bad JSON, unknown fields,
#   a body over http.max_body (413), an unknown stream (404);
# - Idempotency-Key: a repeat answers the first ids and appends nothing; a
#   different key or stream appends;
# - durability: kill -9 right after a burst of acknowledged publishes,
#   restart: every acknowledged id is there;
# - an XREAD BLOCK reader over RESP is woken by an HTTP publish;
# - a long-poll woken by a burst of publishes answers once, and every entry
#   it was given is in its answer (none pending unseen).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq; do
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
  HPORT=$FIXTURE_PORT
  U=http://127.0.0.1:$HPORT
}

# req METHOD PATH [curl args...]: sets CODE and BODY
req() {
  local m=$1 p=$2
  shift 2
  BODY=$(curl -s -o - -w '\n%{http_code}' -X "$m" "$U$p" "$@")
  CODE=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
}
expect() { # expect CODE [SUBSTRING]
  [ "$CODE" = "$1" ] || fail "expected $1, got $CODE: $BODY"
  [ -z "${2:-}" ] || [[ "$BODY" == *"$2"* ]] || fail "expected '$2' in: $BODY"
}
jget() { jq -r "$1" <<<"$BODY"; }

start_broker broker --http.max_body 64kb

# ---- streams
req PUT /streams/orders; expect 201 '"name":"orders"'
req PUT /streams/orders; expect 200 '"entries":0'
req PUT /streams/other; expect 201
req GET /streams; expect 200 '"name":"orders"'
[ "$(jget '.streams|length')" = 2 ] || fail "two streams listed: $BODY"
req GET /streams/nope; expect 404 '"error":"not_found"'
req DELETE /streams/nope; expect 404
req PUT "/streams/$(printf 'x%.0s' {1..301})"; expect 400 'stream name'
req DELETE /streams/other; expect 200 '"deleted":"other"'
req GET /streams/other; expect 404
[ ! -e "$WORK/data/streams/other" ] || fail "deleted stream's folder still there"

# ---- publish
req POST /streams/orders/messages -d '{"data":{"id":1},"headers":{"trace":"t1"}}'
expect 201 '"id":"'
id1=$(jget '.id')
req POST /streams/orders/messages -H 'Content-Type: application/json' -d '{"data":"plain"}'
expect 201
id2=$(jget '.id')
req POST /streams/orders/messages -H 'Content-Type: application/x-ndjson' \
  --data-binary $'{"data":"a"}\n\n{"data":"b"}\r\n{"data":[1,2]}\n'
expect 201 '"ids":['
[ "$(jget '.ids|length')" = 3 ] || fail "three ids: $BODY"
[ "$(jget '.ids == (.ids|sort_by(split("-")|map(tonumber)))')" = true ] ||
  fail "ids not in order: $BODY"
req GET /streams/orders; expect 200 '"entries":5'
# a bad line: 400 naming it, nothing appended
req POST /streams/orders/messages -H 'Content-Type: application/x-ndjson' \
  --data-binary $'{"data":"a"}\n{"data":"b"}\n{"data":\n'
expect 400 'line 3'
req POST /streams/orders/messages -H 'Content-Type: application/x-ndjson' \
  --data-binary $'{"data":"a"}\n{"nodata":1}\n'
expect 400 'line 2'
req GET /streams/orders; expect 200 '"entries":5'
req POST /streams/orders/messages -d '{"data":'; expect 400 'invalid JSON'
req POST /streams/orders/messages -d '{"data":1,"dta":1}'; expect 400 'unknown field'
req POST /streams/orders/messages -d '{"data":1,"headers":{"a":1}}'; expect 400 'strings'
req POST /streams/orders/messages -d '[1]'; expect 400 'object'
big="{\"data\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}"
req POST /streams/orders/messages --data-binary "$big"; expect 413
req POST /streams/nope/messages -d '{"data":1}'; expect 404 'no stream nope'
req GET /streams/orders; expect 200 '"entries":5'

# over RESP the message reads as fields
if command -v redis-cli >/dev/null; then
  out=$(redis-cli -p "$RPORT" xrange orders "$id1" "$id2")
  grep -qx 'json' <<<"$out" || fail "JSON data not a json field: $out"
  grep -qx '{"id":1}' <<<"$out" || fail "JSON data text: $out"
  grep -qx 'h:trace' <<<"$out" || fail "header field: $out"
  grep -qx 'plain' <<<"$out" || fail "string data: $out"
fi

# ---- idempotency
req POST /streams/orders/messages -H 'Idempotency-Key: k-1' -d '{"data":"once"}'; expect 201
idk=$(jget '.id')
req POST /streams/orders/messages -H 'Idempotency-Key: k-1' -d '{"data":"once"}'
expect 200 '"duplicate":true'
[ "$(jget '.id')" = "$idk" ] || fail "duplicate answered another id: $BODY"
req GET /streams/orders; expect 200 '"entries":6'
req POST /streams/orders/messages -H 'Idempotency-Key: k-2' -d '{"data":"twice"}'; expect 201
req GET /streams/orders; expect 200 '"entries":7'
req POST /streams/orders/messages -H "Idempotency-Key: $(printf 'k%.0s' {1..300})" -d '{"data":1}'
expect 400 'Idempotency-Key'

# ---- groups
req PUT /streams/orders/groups/g1; expect 201 '"name":"g1"'
[ "$(jget '.lag')" = 7 ] || fail "a group from 0 lags by every entry: $BODY"
req PUT /streams/orders/groups/g2 -d '{"start":"$"}'; expect 201 '"lag":0'
req PUT /streams/orders/groups/g3 -d '{"start":"nope"}'; expect 400 'start'
req PUT /streams/orders/groups/g1; expect 200
req GET /streams/orders/groups; expect 200 '"name":"g2"'
[ "$(jget '.groups|length')" = 2 ] || fail "two groups: $BODY"
req GET /streams/orders/groups/g1; expect 200 '"consumer_list":[]'
req GET /streams/orders/groups/nope; expect 404
req GET /streams/nope/groups; expect 404
req GET /streams/orders; expect 200 '"groups":2'
req DELETE /streams/orders/groups/g2; expect 200
req DELETE /streams/orders/groups/g2; expect 404

# ---- an HTTP publish wakes a RESP XREAD BLOCK reader
if command -v redis-cli >/dev/null; then
  redis-cli -p "$RPORT" xread block 10000 streams orders '$' >xread.out &
  rpid=$!
  sleep 0.3
  req POST /streams/orders/messages -d '{"data":"wake"}'; expect 201
  for ((i = 0; i < 100; i++)); do grep -q wake xread.out && break; sleep 0.05; done
  wait "$rpid" || true
  grep -q wake xread.out || fail "XREAD BLOCK not woken by an HTTP publish"
fi

# ---- a long-poll woken by many publishes answers once, with everything it
# took: an answer waiting for its fsync is not given again by a later wake
req PUT /streams/burst; expect 201
req PUT /streams/burst/groups/g; expect 201
curl -s "$U/streams/burst/groups/g/messages?consumer=c&max=100&wait=10s" >burst_poll.out &
ppid=$!
sleep 0.5
pids=()
for i in $(seq 1 20); do
  curl -s -o /dev/null -X POST "$U/streams/burst/messages" -d "{\"data\":$i}" &
  pids+=($!)
done
wait "$ppid"
wait "${pids[@]}"
got=$(jq '.messages|length' burst_poll.out)
((got >= 1)) || fail "long-poll got nothing: $(cat burst_poll.out)"
req GET /streams/burst/groups/g; expect 200
[ "$(jget '.pending')" = "$got" ] ||
  fail "the group holds $(jget '.pending') pending for the consumer, the poll returned $got"

# ---- durability: kill -9 after a burst of acknowledged publishes
python3 - "$HPORT" >acked.txt <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(200):
    c.request("POST", "/streams/orders/messages", json.dumps({"data": "burst-%d" % i}))
    r = c.getresponse()
    b = r.read()
    if r.status == 201:
        print(json.loads(b)["id"])
PY
kill -9 "$BPID"
fixture_wait "$BPID"
[ "$(wc -l <acked.txt)" = 200 ] || fail "burst: $(wc -l <acked.txt) of 200 acknowledged"
start_broker broker2
req GET /streams/orders; expect 200
req GET '/streams/orders/messages?count=1000'; expect 200
jq -r '.messages[].id' <<<"$BODY" >present.txt
missing=$(comm -23 <(sort acked.txt) <(sort present.txt) | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged publishes lost after kill -9"
fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_http: passed"
