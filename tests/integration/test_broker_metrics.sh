#!/usr/bin/env bash
# colony broker's /metrics counted where the store appends and acks, whatever
# the door (docs/broker.md, "Metrics"), on a real broker with fsync: always:
# - published_total counts HTTP publishes, RESP XADD and a RESP PUBLISH to a
#   bound channel (6 = 3 + 2 + 1), exactly; entries agree;
# - delivered / acked / redelivered count RESP XREADGROUP, XACK and XCLAIM
#   as well as the HTTP consume and ack, exactly; pending and lag follow
#   (lag read without a scan: 6 after XGROUP CREATE, then 2, then 0);
# - a poison message nacked at max deliveries 1: dead_letters 1, and the
#   dead-letter stream's published_total 1;
# - colony_broker_fsync_seconds (each fdatasync timed in the commit module)
#   grows with the writes: _count, _sum and the buckets, cumulative, +Inf
#   equal to _count; the commit-wait histogram stays its own metric;
# - the exposition is valid Prometheus text (promtool check metrics when
#   installed, and always a parse of every line by tests/support).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
SUPPORT=$(cd "$(dirname "$0")/../support" && pwd)
cd "$WORK"

FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening broker \
  "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$WORK/data"
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
rc() { redis-cli -p "$RPORT" "$@"; }
scrape() { curl -s "$U/metrics" >metrics.txt; }
# metric NAME{LABELS}: its value in the last scrape ("" if absent)
metric() { awk -v k="$1" '$1 == k { print $2 }' metrics.txt; }
want() {
  local got
  got=$(metric "$1")
  [ "$got" = "$2" ] || fail "$1 = '$got', expected $2"
}
valid() {
  python3 "$SUPPORT/prom_check.py" metrics.txt || fail "invalid exposition: $(cat metrics.txt)"
  if command -v promtool >/dev/null; then
    promtool check metrics <metrics.txt >promtool.out 2>&1 || fail "promtool: $(cat promtool.out)"
  fi
}

scrape
valid
fsync0=$(metric colony_broker_fsync_seconds_count)
[ -n "$fsync0" ] || fail "no colony_broker_fsync_seconds histogram"

# ---- appends from three doors: 3 HTTP, 2 RESP XADD, 1 RESP PUBLISH to a bound channel
req PUT /streams/m; expect 201
for i in 1 2 3; do req POST /streams/m/messages -d "{\"data\":$i}"; expect 201; done
rc xadd m '*' k 4 >/dev/null
rc xadd m '*' k 5 >/dev/null
req PUT /bindings -d '{"topic":"chan","stream":"m"}'; expect 201
[ "$(rc publish chan six)" = 0 ] || fail "PUBLISH counted a subscriber"
scrape
valid
want 'colony_broker_published_total{stream="m"}' 6
want 'colony_broker_stream_entries{stream="m"}' 6

# ---- RESP group: 4 delivered, 2 acked; lag without a scan
rc xgroup create m g 0 >/dev/null
scrape
want 'colony_broker_group_lag{stream="m",group="g"}' 6
want 'colony_broker_delivered_total{stream="m",group="g"}' 0
rc xreadgroup group g c1 count 4 streams m '>' >read.out
mapfile -t ids < <(rc xrange m - + | grep -E '^[0-9]+-[0-9]+$')
[ "${#ids[@]}" = 6 ] || fail "xrange ids: ${ids[*]}"
[ "$(rc xack m g "${ids[0]}" "${ids[1]}")" = 2 ] || fail "xack"
scrape
want 'colony_broker_delivered_total{stream="m",group="g"}' 4
want 'colony_broker_acked_total{stream="m",group="g"}' 2
want 'colony_broker_group_pending{stream="m",group="g"}' 2
want 'colony_broker_group_lag{stream="m",group="g"}' 2
want 'colony_broker_redelivered_total{stream="m",group="g"}' 0

# ---- XCLAIM: a redelivery; HTTP: 2 more delivered, 1 acked
rc xclaim m g c2 0 "${ids[2]}" >/dev/null
req GET "/streams/m/groups/g/messages?consumer=h1&max=10"; expect 200
[ "$(jq '.messages | length' <<<"$BODY")" = 2 ] || fail "HTTP consume: $BODY"
req POST /streams/m/groups/g/ack -d "{\"ids\":[\"${ids[4]}\"]}"; expect 200 '"acked":1'
scrape
want 'colony_broker_delivered_total{stream="m",group="g"}' 7
want 'colony_broker_redelivered_total{stream="m",group="g"}' 1
want 'colony_broker_acked_total{stream="m",group="g"}' 3
want 'colony_broker_group_pending{stream="m",group="g"}' 3
want 'colony_broker_group_lag{stream="m",group="g"}' 0

# ---- a poison message: nacked at max deliveries 1 -> dead letter
req PUT /streams/p; expect 201
req PUT /streams/p/groups/w -d '{"max_deliveries":1}'; expect 201
req POST /streams/p/messages -d '{"data":"poison"}'; expect 201
req GET "/streams/p/groups/w/messages?consumer=c"; expect 200
pid=$(jq -r '.messages[0].id' <<<"$BODY")
req POST /streams/p/groups/w/nack -d "{\"id\":\"$pid\",\"error\":\"bad\"}"; expect 200
scrape
valid
want 'colony_broker_group_dead_letters{stream="p",group="w"}' 1
want 'colony_broker_published_total{stream="dlq:p:w"}' 1
want 'colony_broker_delivered_total{stream="p",group="w"}' 1
want 'colony_broker_acked_total{stream="p",group="w"}' 1
want 'colony_broker_group_pending{stream="p",group="w"}' 0

# ---- the fsync histogram grew, buckets cumulative, +Inf = _count
fsync1=$(metric colony_broker_fsync_seconds_count)
[ "$fsync1" -gt "$fsync0" ] || fail "fsync count did not grow: $fsync0 -> $fsync1"
[ "$(metric 'colony_broker_fsync_seconds_bucket{le="+Inf"}')" = "$fsync1" ] ||
  fail "+Inf bucket != count"
python3 - metrics.txt <<'PY' || fail "fsync buckets not cumulative or sum not positive"
import sys
b = []
for line in open(sys.argv[1]):
    if line.startswith("colony_broker_fsync_seconds_bucket{"):
        b.append(float(line.split()[-1]))
    if line.startswith("colony_broker_fsync_seconds_sum "):
        assert float(line.split()[-1]) > 0
assert len(b) > 2 and all(x <= y for x, y in zip(b, b[1:])), b
PY
[ -n "$(metric colony_broker_commit_wait_seconds_count)" ] || fail "commit wait histogram gone"

# one more fsync'ed write: the count grows again
rc xadd m '*' k 7 >/dev/null
scrape
fsync2=$(metric colony_broker_fsync_seconds_count)
[ "$fsync2" -gt "$fsync1" ] || fail "fsync count did not grow on XADD: $fsync1 -> $fsync2"
want 'colony_broker_published_total{stream="m"}' 7

fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_metrics: passed"
