#!/usr/bin/env bash
# colony broker's HTTP consume side, through the delivery engine, a real
# broker and curl (docs/broker.md, "HTTP API"):
# - long-poll: answers at once when something is due, waits and is woken by
#   an HTTP publish and by a RESP XADD, answers empty at ?wait=, and at a
#   delayed message's due time; errors (no consumer, bad wait, unknown group);
# - ack (acked count, not redelivered), nack with a delay -> redelivered with
#   its delivery count, extend, 404 for an entry not pending;
# - streamed consume (NDJSON): at most prefetch unacked lines, one more per
#   ack, in order;
# - a consumer that takes messages and goes away: they come back to another
#   consumer after the visibility timeout, with count 2;
# - poison message: nacked until max deliveries -> dead letter with reason,
#   error text and count -> listed, read, replayed (delivered again), purged;
#   nack with dead_letter: true;
# - policies: PUT bodies shown by GET, bad values 400; max length with
#   overflow reject -> 507 stream_full;
# - /metrics: entries, pending, lag, dead letters, published, acked,
#   redelivered, the commit-wait histogram; a deleted stream's series reads 0;
# - bindings (bind, list, unbind), publish to a topic reaches every bound
#   stream, 404 with none bound; a RESP PUBLISH to a bound channel wakes a
#   long-poll;
# - a long-poll held at SIGTERM is answered and the broker exits 0.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"

FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening broker \
  "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$WORK/data" \
  --fsync never # (durability is test_broker_http.sh's: here fsyncs of a shared disk only slow it)
RPORT=$FIXTURE_PORT
BPID=$FIXTURE_PID
fixture_wait_log_port broker "$BPID" '"port":[0-9]*'
U=http://127.0.0.1:$FIXTURE_PORT

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
G=/streams/jobs/groups/w

# ---- setup and policies
req PUT /streams/jobs; expect 201 '"policy":{'
req PUT $G -d '{"visibility_timeout":"1s","max_deliveries":3,"backoff":{"kind":"fixed","delay":0}}'
expect 201 '"visibility_timeout":1000'
[ "$(jget '.policy.max_deliveries')" = 3 ] || fail "max_deliveries: $BODY"
[ "$(jget '.policy.dead_letter')" = "dlq:jobs:w" ] || fail "default dlq: $BODY"
req PUT $G -d '{"backoff":{"kind":"sometimes"}}'; expect 400 'backoff'
req PUT $G -d '{"visibility_timeout":-1}'; expect 400 'visibility_timeout'
req PUT /streams/jobs -d '{"overflow":"maybe"}'; expect 400 'overflow'
req GET $G; expect 200 '"max_deliveries":3'

# ---- errors
req GET "$G/messages"; expect 400 'consumer'
req GET "$G/messages?consumer=c&wait=soon"; expect 400 'wait'
req GET "$G/messages?consumer=c&max=0"; expect 400 'max'
req GET "/streams/jobs/groups/nope/messages?consumer=c"; expect 404
req GET "/streams/nope/groups/w/messages?consumer=c"; expect 404
req POST $G/ack -d '{"ids":["1-1"]}'; expect 200 '"acked":0'
req POST $G/ack -d '{"ids":"1-1"}'; expect 400 'ids'
req POST $G/nack -d '{"id":"1-1"}'; expect 404 'not pending'
req POST $G/extend -d '{"id":"1-1","ms":100}'; expect 404 'not pending'
req POST $G/extend -d '{"id":"1-1"}'; expect 400 'ms'

# ---- nothing due: empty at once, and after ?wait=
req GET "$G/messages?consumer=c1"; expect 200 '"messages":[]'
t0=$(date +%s%N)
req GET "$G/messages?consumer=c1&wait=400ms"; expect 200 '"messages":[]'
t1=$(date +%s%N)
(( (t1 - t0) / 1000000 >= 350 )) || fail "wait=400ms answered after $(( (t1 - t0) / 1000000 )) ms"

# ---- long-poll woken by an HTTP publish
curl -s "$U$G/messages?consumer=c1&wait=10s" >poll1.out &
ppid=$!
sleep 0.3
req POST /streams/jobs/messages -d '{"data":"job-1"}'; expect 201
t0=$(date +%s%N)
wait "$ppid"
t1=$(date +%s%N)
grep -q '"data":"job-1"' poll1.out || fail "long-poll not woken by HTTP publish: $(cat poll1.out)"
(( (t1 - t0) / 1000000 < 3000 )) || fail "long-poll woken late"
id1=$(jq -r '.messages[0].id' poll1.out)
grep -q '"deliveries":1' poll1.out || fail "first delivery count: $(cat poll1.out)"
req POST $G/ack -d "{\"ids\":[\"$id1\"]}"; expect 200 '"acked":1'

# ---- long-poll woken by a RESP XADD
if command -v redis-cli >/dev/null; then
  curl -s "$U$G/messages?consumer=c1&wait=10s" >poll2.out &
  ppid=$!
  sleep 0.3
  redis-cli -p "$RPORT" xadd jobs '*' data job-resp >/dev/null
  wait "$ppid"
  grep -q '"data":"job-resp"' poll2.out || fail "long-poll not woken by RESP XADD: $(cat poll2.out)"
  id2=$(jq -r '.messages[0].id' poll2.out)
  req POST $G/ack -d "{\"ids\":[\"$id2\"]}"; expect 200 '"acked":1'
fi

# ---- delayed publish: the long-poll answers at its due time
req POST '/streams/jobs/messages?delay=700ms' -d '{"data":"later"}'; expect 201
req GET "$G/messages?consumer=c1"; expect 200 '"messages":[]'
t0=$(date +%s%N)
req GET "$G/messages?consumer=c1&wait=5s"; expect 200 '"data":"later"'
t1=$(date +%s%N)
(( (t1 - t0) / 1000000 >= 300 )) || fail "delayed message delivered early"
idl=$(jget '.messages[0].id')
req POST $G/ack -d "{\"ids\":[\"$idl\"]}"; expect 200 '"acked":1'

# ---- nack with a delay -> redelivered with its count; extend
req POST /streams/jobs/messages -d '{"data":"retry-me"}'; expect 201
req GET "$G/messages?consumer=c1"; expect 200 '"deliveries":1'
idr=$(jget '.messages[0].id')
req POST $G/nack -d "{\"id\":\"$idr\",\"delay\":\"2s\",\"error\":\"db down\"}"; expect 200
req GET "$G/messages?consumer=c1"; expect 200 '"messages":[]'
req GET "$G/messages?consumer=c1&wait=5s"; expect 200 '"deliveries":2'
[ "$(jget '.messages[0].id')" = "$idr" ] || fail "another entry redelivered: $BODY"
req POST $G/extend -d "{\"id\":\"$idr\",\"ms\":\"5s\"}"; expect 200 '"extended":true'
req POST $G/ack -d "{\"ids\":[\"$idr\"]}"; expect 200 '"acked":1'

# ---- a consumer takes two and goes away: back after the visibility timeout
V=/streams/jobs/groups/vis
req PUT $V -d '{"start":"$","visibility_timeout":"2s"}'; expect 201
req POST /streams/jobs/messages -H 'Content-Type: application/x-ndjson' \
  --data-binary $'{"data":"v1"}\n{"data":"v2"}\n'; expect 201
req GET "$V/messages?consumer=gone&max=10"; expect 200
[ "$(jget '.messages|length')" = 2 ] || fail "two delivered: $BODY"
due=$(jget '[.messages[].due_ms]|min')
# (on a loaded disk an fsync can take seconds, so the check is against the
# due time the delivery carried, not against a fixed pause)
req GET "$V/messages?consumer=c2&max=10&wait=10s"; expect 200 '"deliveries":2'
now=$(($(date +%s%N) / 1000000))
((now >= due)) || fail "redelivered at $now, before the visibility timeout ($due)"
n=$(jget '.messages|length')
ids=$(jget '[.messages[].id|tojson]|join(",")')
if [ "$n" = 1 ]; then # the second may come due a moment later
  req GET "$V/messages?consumer=c2&max=10&wait=2s"; expect 200 '"deliveries":2'
  ids="$ids,$(jget '[.messages[].id|tojson]|join(",")')"
fi
req POST $V/ack -d "{\"ids\":[$ids]}"; expect 200 '"acked":2'
req GET "$V/messages?consumer=c2&max=10&wait=300ms"; expect 200 '"messages":[]'
grep -q '^colony_broker_group_pending{stream="jobs",group="vis"} 0' <<<"$(curl -s "$U/metrics")" ||
  fail "vis group's pending metric"
req DELETE $V; expect 200
# the work group w saw them too: take and ack
req GET "$G/messages?consumer=c1&max=10"; expect 200
ids=$(jget '[.messages[].id|tojson]|join(",")')
req POST $G/ack -d "{\"ids\":[$ids]}"; expect 200 '"acked":2'

# ---- streamed consume: NDJSON lines, at most prefetch unacked in flight
S=/streams/jobs/groups/str
req PUT $S -d '{"start":"$"}'; expect 201
curl -sN "$U$S/messages?consumer=s1&stream=1&prefetch=2" >stream.out &
spid=$!
req POST /streams/jobs/messages -H 'Content-Type: application/x-ndjson' \
  --data-binary $'{"data":"s1"}\n{"data":"s2"}\n{"data":"s3"}\n{"data":"s4"}\n{"data":"s5"}\n'
expect 201
lines() { grep -c '"data"' stream.out || true; }
for ((i = 0; i < 100; i++)); do [ "$(lines)" -ge 2 ] && break; sleep 0.05; done
sleep 0.3
[ "$(lines)" = 2 ] || fail "prefetch 2: $(lines) lines in flight: $(cat stream.out)"
first=$(head -1 stream.out | jq -r .id)
req POST $S/ack -d "{\"ids\":[\"$first\"]}"; expect 200 '"acked":1'
for ((i = 0; i < 100; i++)); do [ "$(lines)" -ge 3 ] && break; sleep 0.05; done
sleep 0.3
[ "$(lines)" = 3 ] || fail "one ack lets one more through: $(lines) lines"
ids=$(jq -r .id stream.out | tail -2 | jq -R . | paste -sd, -)
req POST $S/ack -d "{\"ids\":[$ids]}"; expect 200 '"acked":2'
for ((i = 0; i < 100; i++)); do [ "$(lines)" -ge 5 ] && break; sleep 0.05; done
[ "$(lines)" = 5 ] || fail "two acks, two more: $(lines) lines"
jq -e -s 'map(.data) == ["s1","s2","s3","s4","s5"]' stream.out >/dev/null ||
  fail "streamed in order: $(cat stream.out)"
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
req DELETE $S; expect 200
req GET "$G/messages?consumer=c1&max=10"; expect 200 # group w saw them too
ids=$(jget '[.messages[].id|tojson]|join(",")')
req POST $G/ack -d "{\"ids\":[$ids]}"; expect 200 '"acked":5'

# ---- poison message: nacked to max deliveries -> dead letter -> replay -> purge
req POST /streams/jobs/messages -d '{"data":"poison","headers":{"k":"v"}}'; expect 201
idp=$(jget '.id')
for i in 1 2 3; do
  req GET "$G/messages?consumer=c1"; expect 200 "\"deliveries\":$i"
  req POST $G/nack -d "{\"id\":\"$idp\",\"delay\":0,\"error\":\"bad input $i\"}"; expect 200
done
req GET "$G/messages?consumer=c1"; expect 200 '"messages":[]'
req GET $G/dlq; expect 200 '"reason":"max-deliveries"'
[ "$(jget '.dead_letters|length')" = 1 ] || fail "one dead letter: $BODY"
[ "$(jget '.dead_letters[0].error')" = "bad input 3" ] || fail "last error: $BODY"
[ "$(jget '.dead_letters[0].deliveries')" = 3 ] || fail "count: $BODY"
[ "$(jget '.dead_letters[0].original_id')" = "$idp" ] || fail "original id: $BODY"
[ "$(jget '.dead_letters[0].data')" = poison ] || fail "data: $BODY"
dl=$(jget '.dead_letters[0].id')
req GET "$G/dlq/$dl"; expect 200 '"headers":{"k":"v"}'
req GET "$G/dlq/1-1"; expect 404
req GET $G; expect 200 '"dead_letters":1'
req GET /streams; expect 200
req POST $G/dlq/replay -d "{\"id\":\"$dl\"}"; expect 200 '"replayed":1'
req GET $G/dlq; expect 200 '"dead_letters":[]'
req GET "$G/messages?consumer=c1&wait=5s"; expect 200 '"data":"poison"'
idq=$(jget '.messages[0].id')
req POST $G/nack -d "{\"id\":\"$idq\",\"dead_letter\":true,\"error\":\"handler refused\"}"
expect 200
req GET $G/dlq; expect 200 '"reason":"rejected"'
req POST $G/dlq/replay -d '{"id":"bad"}'; expect 400
req DELETE $G/dlq; expect 200 '"purged":1'
req GET $G/dlq; expect 200 '"dead_letters":[]'

# ---- bindings and topics
req PUT /bindings -d '{"topic":"order.*","stream":"jobs"}'; expect 201
req PUT /bindings -d '{"topic":"order.*","stream":"jobs"}'; expect 200
req PUT /bindings -d '{"topic":"order.created","stream":"audit"}'; expect 201
req PUT /bindings -d '{"stream":"jobs"}'; expect 400 'topic'
req GET /bindings; expect 200 '"topic":"order.*"'
[ "$(jget '.bindings|length')" = 2 ] || fail "two bindings: $BODY"
req POST /topics/order.created/messages -d '{"data":"fan-out"}'; expect 201
[ "$(jget '.messages[0].streams|length')" = 2 ] || fail "both bound streams: $BODY"
req GET /streams/audit; expect 200 '"entries":1'
req GET "$G/messages?consumer=c1"; expect 200 '"data":"fan-out"'
ida=$(jget '.messages[0].id')
req POST $G/ack -d "{\"ids\":[\"$ida\"]}"; expect 200 '"acked":1'
req POST /topics/nothing.bound/messages -d '{"data":1}'; expect 404 'no_binding'
if command -v redis-cli >/dev/null; then # a RESP PUBLISH to a bound channel wakes a long-poll
  curl -s "$U$G/messages?consumer=c1&wait=10s" >poll4.out &
  ppid=$!
  sleep 0.3
  redis-cli -p "$RPORT" publish order.paid hello >/dev/null
  wait "$ppid"
  grep -q '"message":"hello"' poll4.out || fail "long-poll not woken by RESP PUBLISH: $(cat poll4.out)"
  idb=$(jq -r '.messages[0].id' poll4.out)
  req POST $G/ack -d "{\"ids\":[\"$idb\"]}"; expect 200 '"acked":1'
fi
req DELETE '/bindings?topic=order.created&stream=audit'; expect 200
req DELETE '/bindings?topic=order.created&stream=audit'; expect 404

# ---- /metrics: per stream and group
m=$(curl -s "$U/metrics")
grep -q '^colony_broker_stream_entries{stream="jobs"} [1-9]' <<<"$m" || fail "entries metric: $m"
grep -q '^colony_broker_group_pending{stream="jobs",group="w"} 0' <<<"$m" || fail "pending metric"
grep -q '^colony_broker_group_lag{stream="jobs",group="w"} 0' <<<"$m" || fail "lag metric"
grep -q '^colony_broker_group_dead_letters{stream="jobs",group="w"} 0' <<<"$m" || fail "dlq metric"
grep -q '^colony_broker_redelivered_total{stream="jobs",group="w"} [1-9]' <<<"$m" ||
  fail "redelivered metric"
grep -q '^colony_broker_acked_total{stream="jobs",group="w"} [1-9]' <<<"$m" || fail "acked metric"
grep -q '^colony_broker_published_total{stream="jobs"} [1-9]' <<<"$m" || fail "published metric"
grep -q '^colony_broker_commit_wait_seconds_count [1-9]' <<<"$m" || fail "commit wait histogram"

# ---- max length with overflow reject: 507 stream_full
req PUT /streams/small -d '{"max_len":2,"overflow":"reject"}'; expect 201 '"overflow":"reject"'
req POST /streams/small/messages -d '{"data":1}'; expect 201
req POST /streams/small/messages -d '{"data":2}'; expect 201
req POST /streams/small/messages -d '{"data":3}'; expect 507 'stream_full'
req GET /streams/small; expect 200 '"entries":2'
grep -q '^colony_broker_stream_entries{stream="small"} 2' <<<"$(curl -s "$U/metrics")" ||
  fail "entries of small"
req DELETE /streams/small; expect 200
grep -q '^colony_broker_stream_entries{stream="small"} 0' <<<"$(curl -s "$U/metrics")" ||
  fail "a deleted stream's entries series does not read 0"

# ---- SIGTERM answers a held long-poll; exit 0
curl -s "$U$G/messages?consumer=c1&wait=60s" >poll3.out &
ppid=$!
sleep 1 # (a loaded machine: let curl connect and the poll park)
fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
wait "$ppid" || true
grep -q '"messages":\[\]' poll3.out || fail "held long-poll not answered at shutdown: $(cat poll3.out)"
echo "test_broker_http_delivery: passed"
