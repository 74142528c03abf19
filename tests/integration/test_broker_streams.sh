#!/usr/bin/env bash
# colony broker's stream commands over RESP, against a real redis-server:
# - byte-for-byte differential (tests/support/resp_diff_streams.py): XADD
#   (explicit ids, ms-*, NOMKSTREAM, MAXLEN/MINID with = and ~, LIMIT), XLEN,
#   XRANGE/XREVRANGE, XDEL, XTRIM, DEL, EXISTS, TYPE, XREAD with COUNT, and
#   their errors; XREAD BLOCK woken by an XADD on its stream (not by another
#   stream, nor below its id), its timeout, and the pipelined command after
#   it; '*' ids checked on the broker for form and order;
# - the same redis-cli commands give the same output;
# - reply after fsync: under strace, the reply to an XADD is written only
#   after an fdatasync that follows the request (and with --fsync never
#   there is none: the check can tell);
# - the same with --fsync batch and never (commit callbacks at once); a
#   second broker on the same data-dir and a bad --fsync are refused;
# - kill -9 right after XADD replies, restart: the entries are there;
# - redis-benchmark XADD (plain and pipelined) completes, XLEN counts them.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
here=$(cd "$(dirname "$0")" && pwd)
diff_py="$here/../support/resp_diff_streams.py"
for tool in redis-server redis-cli redis-benchmark; do
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
    --data-dir "$WORK/$data.d/nested" "$@"
  BPORT=$FIXTURE_PORT
  BPID=$FIXTURE_PID
}

start_broker broker broker
bport=$BPORT
bpid=$BPID
[ -d "$WORK/broker.d/nested/streams" ] || fail "data-dir not created"

# 1. differential, and '*' ids
python3 "$diff_py" "$rport" "$bport" diff || fail "stream replies differ from redis-server"
python3 "$diff_py" "$rport" "$bport" block || fail "XREAD BLOCK differs from redis-server"
python3 "$diff_py" - "$bport" auto || fail "auto ids"

# the same with the commit calling back at once (batch, never): replies
# and wake-ups from inside the command that wrote
for mode in batch never; do
  start_broker "broker_$mode" "broker_$mode" --fsync "$mode"
  python3 "$diff_py" "$rport" "$BPORT" diff || fail "--fsync $mode: replies differ"
  python3 "$diff_py" "$rport" "$BPORT" block || fail "--fsync $mode: XREAD BLOCK differs"
  fixture_terminate "$BPID"
  [ "$FIXTURE_RC" = 0 ] || fail "--fsync $mode: broker exited $FIXTURE_RC on SIGTERM"
done
"$BIN/colony" broker --resp-listen 127.0.0.1:0 --listen 127.0.0.1:0 \
  --data-dir "$WORK/broker.d/nested" >busy.out 2>&1 && fail "a second broker opened the same data-dir"
"$BIN/colony" broker --fsync sometimes >badsync.out 2>&1 && fail "--fsync sometimes accepted"
grep -q 'always, batch or never' badsync.out || fail "--fsync not explained"

# 2. redis-cli, same output
cli_script() {
  local p=$1
  redis-cli -p "$p" del cli
  redis-cli -p "$p" xadd cli 1-1 name ada age 36
  redis-cli -p "$p" xadd cli 2-1 name bob
  redis-cli -p "$p" xadd cli 2-1 name bob
  redis-cli -p "$p" xlen cli
  redis-cli -p "$p" xrange cli - +
  redis-cli -p "$p" xrevrange cli + - count 1
  redis-cli -p "$p" xread count 5 streams cli 0
  redis-cli -p "$p" xread streams cli '$'
  redis-cli -p "$p" type cli
  redis-cli -p "$p" xdel cli 1-1
  redis-cli -p "$p" xtrim cli maxlen 0
  redis-cli -p "$p" exists cli
  redis-cli -p "$p" del cli
  redis-cli -p "$p" type cli
}
cli_script "$rport" >cli_redis.out 2>&1
cli_script "$bport" >cli_broker.out 2>&1
diff -u cli_redis.out cli_broker.out || fail "redis-cli output differs"
redis-cli -p "$bport" command info xadd | grep -q xadd || fail "COMMAND INFO xadd"

# 3. redis-benchmark: XADD completes, plain and pipelined, and every entry is there
timeout 60 redis-benchmark -p "$bport" -n 2000 -q XADD bench '*' f v >bench.out 2>&1 ||
  fail "redis-benchmark XADD"
timeout 60 redis-benchmark -p "$bport" -n 2000 -P 16 -q XADD bench '*' f v >>bench.out 2>&1 ||
  fail "redis-benchmark XADD pipelined"
cat bench.out
[ "$(grep -c 'requests per second' bench.out)" -ge 2 ] || fail "benchmark"
[ "$(redis-cli -p "$bport" xlen bench)" = 4000 ] || fail "XLEN after the benchmark"
# a DEL pipelined right after an XADD to a new stream removes the folder the
# XADD's commit syncs: that commit is done, not retried
! grep -q 'commit failed' "$WORK/broker.log" || fail "a commit failed"
redis-cli -p "$bport" info keyspace | grep -q '^db0:keys=1,' || fail "INFO keyspace"

# 4. kill -9 right after XADD replies; the entries are there after a restart
python3 - "$bport" <<'PY' || fail "XADD before kill"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(1, 51):
    body = b"v%d" % i
    s.sendall(b"*5\r\n$4\r\nXADD\r\n$5\r\ncrash\r\n$%d\r\n%d-1\r\n$1\r\nf\r\n$%d\r\n%s\r\n"
              % (len(b"%d-1" % i), i, len(body), body))
    want = b"$%d\r\n%d-1\r\n" % (len(b"%d-1" % i), i)
    got = b""
    while len(got) < len(want):
        got += s.recv(100)
    assert got == want, got
PY
kill -9 "$bpid"
fixture_wait "$bpid"
start_broker restarted broker
bport=$BPORT
[ "$(redis-cli -p "$bport" xlen crash)" = 50 ] || fail "entries lost after kill -9"
redis-cli -p "$bport" xrange crash 50 + | grep -qx v50 || fail "the last entry lost after kill -9"

# 5. the reply waits for fdatasync (under strace; skipped where ptrace is not allowed)
reply_after_sync() { # PORT TRACEFILE ID: 0 when an fdatasync came between request and reply
  python3 - "$@" <<'PY'
import re, socket, sys, time
port, trace, ident = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*5\r\n$4\r\nXADD\r\n$6\r\ntraced\r\n$%d\r\n%s\r\n$1\r\nf\r\n$1\r\nv\r\n"
          % (len(ident), ident.encode()))
want = b"$%d\r\n%s\r\n" % (len(ident), ident.encode())
got = b""
while len(got) < len(want):
    got += s.recv(100)
assert got == want, got
time.sleep(0.2)
lines = open(trace).read().splitlines()
req = next(i for i, l in enumerate(lines) if re.search(r"read\(.*XADD.*traced", l))
rep = next(i for i, l in enumerate(lines) if i > req and re.search(r"write.*\\r\\n%s\\r\\n" % re.escape(ident), l))
synced = [l for l in lines[req:rep] if re.search(r"fdatasync(\(\d+\)|  *resumed>\)) *= 0", l) or
          re.search(r"fdatasync resumed>\) *= 0", l)]
print("between request and reply: %d fdatasync" % len(synced))
sys.exit(0 if synced else 1)
PY
}
if strace -f -o /dev/null true 2>/dev/null; then
  for mode in always never; do
    sport=$(fixture_free_port)
    fixture_start "strace_$mode" strace -f -o "$WORK/trace_$mode" -e trace=read,write,writev,fdatasync \
      "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen "127.0.0.1:$sport" \
      --data-dir "$WORK/strace_$mode.d" --fsync "$mode"
    spid=$FIXTURE_PID
    for ((i = 0; i < 200; i++)); do
      redis-cli -p "$sport" ping 2>/dev/null | grep -q PONG && break
      sleep 0.05
    done
    redis-cli -p "$sport" xadd traced 1-1 f v >/dev/null # creates the files
    if [ "$mode" = always ]; then
      reply_after_sync "$sport" "$WORK/trace_$mode" 5-1 || fail "XADD replied before its fdatasync"
    else
      ! reply_after_sync "$sport" "$WORK/trace_$mode" 5-1 ||
        fail "fsync never synced: the strace check cannot tell"
    fi
    # The broker first: strace killed alone detaches and leaves it running.
    bpid=$(pgrep -P "$spid" | head -1 || true)
    [ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null
    fixture_stop "$spid"
    fixture_forget "$spid"
    if [ -n "$bpid" ]; then
      for ((i = 0; i < 100; i++)); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
      ! kill -0 "$bpid" 2>/dev/null || fail "the traced broker $bpid outlived its test"
    fi
  done
else
  echo "strace cannot trace here: the reply-after-fsync check is skipped"
fi

fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_streams: passed"
