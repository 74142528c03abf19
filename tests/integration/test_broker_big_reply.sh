#!/usr/bin/env bash
# colony broker: a reply larger than the pause threshold (1 MiB of unsent
# output) that waits for its fsync. XREADGROUP of 1,000 entries of 1 KB
# read again from the consumer's history (a redelivery) is parked until the
# delivery records are durable; the parked bytes count as
# output, so the client is paused, and the broker used to resume and pause
# it again recursively until its stack overflowed (SIGSEGV). Checks: the
# reply comes whole, the broker lives, and a pipelined command after it
# answers; the same for XRANGE and XREAD of the same entries.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not installed"; exit 0; }
cd "$WORK"

FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening broker \
  "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$WORK/data"
port=$FIXTURE_PORT
pid=$FIXTURE_PID

# 1,100 entries of 1 KB, pipelined in one redis-cli run
value=$(head -c 1024 /dev/zero | tr '\0' v)
for ((i = 0; i < 1100; i++)); do echo "XADD s * f $value"; done >adds.txt
redis-cli -p "$port" <adds.txt >adds.out
[ "$(grep -c -- '-' adds.out)" = 1100 ] || fail "XADD: $(sort adds.out | uniq -c | head -3)"
[ "$(redis-cli -p "$port" XLEN s)" = 1100 ] || fail "XLEN"
[ "$(redis-cli -p "$port" XGROUP CREATE s g 0)" = OK ] || fail "XGROUP CREATE"

# the big reply, then a pipelined PING on the same connection
printf 'XREADGROUP GROUP g c COUNT 1000 STREAMS s >\nPING\n' | redis-cli -p "$port" >group.out ||
  fail "XREADGROUP: redis-cli failed"
kill -0 "$pid" 2>/dev/null || fail "the broker died on a 1 MB XREADGROUP reply"
n=$(grep -c "^$value\$" group.out || true)
[ "$n" = 1000 ] || fail "XREADGROUP gave $n values of 1000"
[ "$(tail -n 1 group.out)" = PONG ] || fail "the command after the big reply was not answered"
[ "$(redis-cli -p "$port" XPENDING s g | head -n 1)" = 1000 ] || fail "XPENDING after the read"

# new durable entries go out without waiting for their delivery records'
# fsync (docs/broker.md, "Delivery records"); a history read counts a
# redelivery and is parked: the same 1 MB reply, parked for sure
printf 'XREADGROUP GROUP g c COUNT 1000 STREAMS s 0\nPING\n' | redis-cli -p "$port" >history.out ||
  fail "XREADGROUP 0: redis-cli failed"
kill -0 "$pid" 2>/dev/null || fail "the broker died on a parked 1 MB XREADGROUP reply"
n=$(grep -c "^$value\$" history.out || true)
[ "$n" = 1000 ] || fail "XREADGROUP 0 gave $n values of 1000"
[ "$(tail -n 1 history.out)" = PONG ] || fail "the command after the parked reply was not answered"

# the next 100 (only 100 left), and big non-parked replies
n=$(redis-cli -p "$port" XREADGROUP GROUP g c COUNT 1000 STREAMS s '>' | grep -c "^$value\$" || true)
[ "$n" = 100 ] || fail "second XREADGROUP gave $n of 100"
n=$(redis-cli -p "$port" XRANGE s - + | grep -c "^$value\$" || true)
[ "$n" = 1100 ] || fail "XRANGE gave $n of 1100"
n=$(redis-cli -p "$port" XREAD COUNT 1100 STREAMS s 0 | grep -c "^$value\$" || true)
[ "$n" = 1100 ] || fail "XREAD gave $n of 1100"
kill -0 "$pid" 2>/dev/null || fail "the broker died"
echo ok
