#!/usr/bin/env bash
# colony streams / publish / dlq against a real broker (its HTTP API):
# - publish to a stream (JSON and plain string data, a header, an
#   Idempotency-Key repeated: same id), to a topic; errors exit 1 with the
#   broker's message (unknown stream), bad usage exits 2;
# - streams: the table (entries, groups, pending, dead letters) and --json;
# - dlq ls / show / replay / purge on a poison message;
# - $COLONY_BROKER_URL and --broker; an unreachable broker exits 1.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"
FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening broker \
  "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$WORK/data" \
  --fsync never
fixture_wait_log_port broker "$FIXTURE_PID" '"port":[0-9]*'
U=http://127.0.0.1:$FIXTURE_PORT
export COLONY_BROKER_URL=$U
C="$BIN/colony"

curl -sf -X PUT "$U/streams/orders" >/dev/null
curl -sf -X PUT "$U/streams/orders/groups/g" -d '{"max_deliveries":1}' >/dev/null

id1=$("$C" publish orders '{"n": 1}' -H trace=t1) || fail "publish JSON"
[[ "$id1" =~ ^[0-9]+-[0-9]+$ ]] || fail "publish prints the id: $id1"
"$C" publish orders 'plain text' >/dev/null || fail "publish string"
k1=$("$C" publish --key k1 orders '"once"') || fail "publish with key"
k2=$("$C" publish --key k1 orders '"once"') || fail "repeat with key"
[ "$k1" = "$k2" ] || fail "an Idempotency-Key repeat printed another id: $k1 $k2"
m=$(curl -s "$U/streams/orders/messages" | jq -c '.messages')
[ "$(jq length <<<"$m")" = 3 ] || fail "three entries: $m"
[ "$(jq -r '.[0].headers.trace' <<<"$m")" = t1 ] || fail "header: $m"
[ "$(jq -r '.[1].data' <<<"$m")" = "plain text" ] || fail "string data: $m"
rc=0; "$C" publish nope x 2>err.txt || rc=$?
[ "$rc" = 1 ] && grep -q 'no stream nope' err.txt || fail "unknown stream: rc $rc $(cat err.txt)"
rc=0; "$C" publish 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "publish without arguments exits 2, got $rc"
curl -sf -X PUT "$U/bindings" -d '{"topic":"order.*","stream":"orders"}' >/dev/null
"$C" publish --topic order.created '{"n": 2}' | grep -q '"stream":"orders"' || fail "topic publish"

out=$("$C" streams)
grep -Eq '^orders +4 +[0-9]+ +1 +0 +4 +0$' <<<"$out" || fail "streams table: $out"
[ "$("$C" streams --json | jq -r '.[0].entries')" = 4 ] || fail "streams --json"

# poison messages: one delivery allowed, each nacked -> dead letter
ids=$(curl -s "$U/streams/orders/groups/g/messages?consumer=c&max=10" | jq -r '.messages[].id')
[ "$(wc -w <<<"$ids")" = 4 ] || fail "four delivered: $ids"
for mid in $ids; do
  curl -s -X POST "$U/streams/orders/groups/g/nack" -d "{\"id\":\"$mid\",\"error\":\"boom\"}" >/dev/null
done
out=$("$C" dlq ls orders g)
grep -q 'max-deliveries' <<<"$out" || fail "dlq ls: $out"
grep -q 'boom' <<<"$out" || fail "dlq ls error text: $out"
n=$("$C" dlq ls orders g --json | jq length)
[ "$n" = 4 ] || fail "four dead letters: $n"
dl=$("$C" dlq ls orders g --json | jq -r '.[0].id')
"$C" dlq show orders g "$dl" | jq -e '.reason == "max-deliveries"' >/dev/null || fail "dlq show"
grep -Eq '^orders +4 +[0-9]+ +1 +0 +0 +4$' <<<"$("$C" streams)" || fail "streams shows dead letters"
[ "$("$C" dlq replay orders g "$dl")" = "replayed 1" ] || fail "dlq replay one"
[ "$("$C" dlq ls orders g --json | jq length)" = 3 ] || fail "three left"
[ "$("$C" dlq purge orders g)" = "purged 3" ] || fail "dlq purge"
[ "$("$C" dlq ls orders g --json | jq length)" = 0 ] || fail "none left"
rc=0; "$C" dlq ls orders nogroup 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "dlq of an unknown group exits 1, got $rc"
rc=0; "$C" dlq frob 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "dlq bad usage exits 2"

rc=0; "$C" streams --broker http://127.0.0.1:1 2>err.txt || rc=$?
[ "$rc" = 1 ] || fail "unreachable broker exits 1, got $rc"
"$C" --help | grep -q '^ *dlq' || fail "--help lists dlq"
echo "test_broker_http_cli: passed"
