#!/usr/bin/env bash
# colony broker's consumer groups over RESP, against a real redis-server:
# - byte-for-byte differential (tests/support/resp_diff_groups.py): XGROUP
#   CREATE/SETID/DESTROY/CREATECONSUMER/DELCONSUMER/HELP, XREADGROUP (">",
#   history, COUNT, NOACK, several streams), XACK, XPENDING (both forms,
#   IDLE), XCLAIM (IDLE, TIME, RETRYCOUNT, FORCE, JUSTID, LASTID), XAUTOCLAIM
#   (cursor, COUNT, JUSTID, deleted ids), XINFO STREAM [FULL]/GROUPS/
#   CONSUMERS/HELP with Redis 7's counters, a deleted entry left pending,
#   DEL dropping the groups, and every command's errors in Redis's order;
#   idle and absolute times compared in whole seconds / as "now";
# - XREADGROUP BLOCK with a second client: woken by XADD (the entry pending
#   after it), COUNT and NOACK over two streams, XGROUP DESTROY (NOGROUP),
#   DEL (UNBLOCKED), its timeout, and history answered at once;
# - the same with --fsync never (the commit calls back at once, from inside
#   the command: batch does too, and test_broker_streams.sh covers it);
# - kill -9 after group work, restart: XPENDING (counts, owners), XINFO
#   GROUPS (cursors, entries-read, lag) and XINFO STREAM (entries-added,
#   max-deleted-entry-id) are as before;
# - a redis-cli group session gives the same output on both servers.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
here=$(cd "$(dirname "$0")" && pwd)
diff_py="$here/../support/resp_diff_groups.py"
for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"

rport=$(fixture_free_port)
fixture_start redis redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK"
for ((i = 0; i < 200; i++)); do
  redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done

# start_broker NAME DATA [ARGS...]: colony broker on free ports, data in $WORK/DATA.d
start_broker() {
  local name=$1 data=$2
  shift 2
  FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening "$name" \
    "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 \
    --data-dir "$WORK/$data.d" "$@"
  BPORT=$FIXTURE_PORT
  BPID=$FIXTURE_PID
}

start_broker broker broker
bport=$BPORT
bpid=$BPID

# 1. differential and BLOCK
python3 "$diff_py" "$rport" "$bport" diff || fail "group replies differ from redis-server"
python3 "$diff_py" "$rport" "$bport" block || fail "XREADGROUP BLOCK differs from redis-server"
for mode in never; do
  start_broker "broker_$mode" "broker_$mode" --fsync "$mode"
  python3 "$diff_py" "$rport" "$BPORT" diff || fail "--fsync $mode: replies differ"
  python3 "$diff_py" "$rport" "$BPORT" block || fail "--fsync $mode: XREADGROUP BLOCK differs"
  fixture_terminate "$BPID"
  [ "$FIXTURE_RC" = 0 ] || fail "--fsync $mode: broker exited $FIXTURE_RC on SIGTERM"
done

# 2. redis-cli, same output
cli_script() {
  local p=$1
  redis-cli -p "$p" del q
  redis-cli -p "$p" xgroup create q workers '$' mkstream
  redis-cli -p "$p" xadd q 1-1 job a
  redis-cli -p "$p" xadd q 2-1 job b
  redis-cli -p "$p" xreadgroup group workers w1 count 1 streams q '>'
  redis-cli -p "$p" xreadgroup group workers w2 streams q '>'
  redis-cli -p "$p" xack q workers 1-1
  redis-cli -p "$p" xpending q workers
  redis-cli -p "$p" xclaim q workers w1 0 2-1 justid
  redis-cli -p "$p" xautoclaim q workers w3 0 0 count 5 justid
  redis-cli -p "$p" xinfo groups q
  redis-cli -p "$p" xgroup destroy q workers
  redis-cli -p "$p" xinfo groups q
  redis-cli -p "$p" del q
}
cli_script "$rport" >cli_redis.out 2>&1
cli_script "$bport" >cli_broker.out 2>&1
diff -u cli_redis.out cli_broker.out || fail "redis-cli output differs"
redis-cli -p "$bport" command info xreadgroup | grep -q xreadgroup || fail "COMMAND INFO xreadgroup"

# 3. kill -9 after group work; the groups are as they were after a restart
python3 "$diff_py" - "$bport" durable-write "$WORK/groups.state" || fail "group work before kill"
kill -9 "$bpid"
fixture_wait "$bpid"
start_broker restarted broker
python3 "$diff_py" - "$BPORT" durable-check "$WORK/groups.state" || fail "groups changed by kill -9"

fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_groups: passed"
