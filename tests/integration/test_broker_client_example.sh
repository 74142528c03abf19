#!/usr/bin/env bash
# The broker-worker example (examples/broker-worker, the "three lines" of
# docs/broker-client.md) against a real broker: POST /orders is answered 201
# with the entry's id once the broker has it; the worker's subscription
# consumes and acks it (group pending 0, the id in its log); an order with
# "fail": true is retried with a delivery count of 2; SIGTERM closes the
# client gracefully and the worker exits 0.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
[ -x "$BIN/broker-worker" ] || { echo "SKIP: broker-worker not built"; exit 0; }
cd "$WORK"

FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening broker \
  "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$WORK/data"
fixture_wait_log_port broker "$FIXTURE_PID" '"port":[0-9]*'
U=http://127.0.0.1:$FIXTURE_PORT
curl -fsS -X PUT "$U/streams/orders" >/dev/null
curl -fsS -X PUT "$U/streams/orders/groups/billing" \
  -d '{"start": "0", "backoff": {"kind": "fixed", "delay": 200}}' >/dev/null

COLONY_BROKER_URL=$U fixture_start_listening worker "$BIN/broker-worker" --listen 127.0.0.1:0
W=http://127.0.0.1:$FIXTURE_PORT
WPID=$FIXTURE_PID

out=$(curl -sS -w '\n%{http_code}' -X POST "$W/orders" -d '{"sku": "tea", "qty": 2}')
[ "${out##*$'\n'}" = 201 ] || fail "POST /orders: $out"
id=$(jq -r .id <<<"${out%$'\n'*}")
[[ "$id" =~ ^[0-9]+-[0-9]+$ ]] || fail "no id in: $out"
# durable and readable at once
curl -fsS "$U/streams/orders/messages" | jq -e --arg id "$id" '.messages[] | select(.id == $id)
  | .data.sku == "tea"' >/dev/null || fail "entry $id not in the stream"

out=$(curl -sS -w '\n%{http_code}' -X POST "$W/orders" -d '{"fail": true}')
[ "${out##*$'\n'}" = 201 ] || fail "POST /orders (fail): $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$W/orders" -d 'not json')
[ "$code" = 400 ] || fail "bad body: expected 400, got $code"

# consumed: the first acked, the failing one delivered again (count 2)
for ((i = 0; i < 200; i++)); do
  grep -q "\"id\":\"$id\"" worker.log && grep -q '"deliveries":2' worker.log && break
  sleep 0.05
done
grep -q "\"id\":\"$id\"" worker.log || fail "the worker did not log $id"
grep -q '"deliveries":2' worker.log || fail "the failing order was not redelivered"
pending=$(curl -fsS "$U/streams/orders/groups/billing" | jq .pending)
[ "$pending" -le 1 ] || fail "pending $pending: the first order was not acked"

fixture_terminate "$WPID"
[ "$FIXTURE_RC" -eq 0 ] || fail "broker-worker exited $FIXTURE_RC after SIGTERM"
echo OK
