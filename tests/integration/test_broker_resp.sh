#!/usr/bin/env bash
# colony broker's Redis protocol against a real redis-server, on loopback:
# - a differential test: the same bytes (tests/support/resp_diff.py) to
#   redis-server 7 and to the broker, replies compared byte for byte, without
#   and with requirepass; the same redis-cli commands, outputs compared;
# - pub/sub with two redis-cli clients (SUBSCRIBE and PSUBSCRIBE in the
#   background, PUBLISH from a third): deliveries and PUBLISH's receiver
#   counts compared with redis-server's; PUBSUB CHANNELS with 45 glob
#   patterns over 22 channel names compared (the stringmatchlen port);
# - a subscriber that never reads is disconnected at the pubsub output limit
#   while the broker's RSS stays bounded;
# - the configured limits: bulk, arguments, query buffer, clients;
# - redis-benchmark (ping, publish, pipelined publish) completes;
# - /health, /metrics, --help, and a clean exit on SIGTERM with clients on.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
here=$(cd "$(dirname "$0")" && pwd)
diff_py="$here/../support/resp_diff.py"
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"

# start_redis NAME [ARGS...]: redis-server on a free loopback port; sets RPORT
start_redis() {
  local name=$1 port i
  shift
  port=$(fixture_free_port)
  fixture_start "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$WORK" --dbfilename "$name.rdb" "$@"
  for ((i = 0; i < 200; i++)); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q -e PONG -e NOAUTH && break
    sleep 0.05
  done
  RPORT=$port
}

# start_broker NAME [ARGS...]: colony broker on free ports; sets BPORT, HPORT, BPID
start_broker() {
  local name=$1
  shift
  FIXTURE_PORT_PATTERN='"resp_port":[0-9]*' fixture_start_listening "$name" \
    "$BIN/colony" broker --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 \
    --data-dir "$WORK/$name" "$@"
  BPORT=$FIXTURE_PORT
  BPID=$FIXTURE_PID
  fixture_wait_log_port "$name" "$BPID" '"msg":"listening".*"port":[0-9]*'
  HPORT=$FIXTURE_PORT
}

start_redis redis
redis_port=$RPORT
start_redis redis_auth --requirepass sekret
redis_auth_port=$RPORT
start_broker broker
broker_port=$BPORT
broker_pid=$BPID
http_port=$HPORT
start_broker broker_auth --requirepass sekret
broker_auth_port=$BPORT

# 1. byte-for-byte differential
python3 "$diff_py" "$redis_port" "$broker_port" open || fail "replies differ from redis-server"
python3 "$diff_py" "$redis_port" "$broker_port" glob || fail "glob patterns match differently"
python3 "$diff_py" "$redis_auth_port" "$broker_auth_port" auth ||
  fail "replies differ from redis-server with requirepass"

# 2. the same redis-cli commands, same output
cli_script() {
  local p=$1
  redis-cli -p "$p" ping
  redis-cli -p "$p" echo "hello world"
  redis-cli -p "$p" client getname
  redis-cli -p "$p" client setname x
  redis-cli -p "$p" select 0
  redis-cli -p "$p" select 16
  redis-cli -p "$p" publish ch msg
  redis-cli -p "$p" pubsub numpat
  redis-cli -p "$p" pubsub numsub a b
  redis-cli -p "$p" nosuchcommand a b
  redis-cli -p "$p" auth x
  printf 'ping\necho "a b"\nclient getname\n' | redis-cli -p "$p"
}
cli_script "$redis_port" >cli_redis.out 2>&1
cli_script "$broker_port" >cli_broker.out 2>&1
diff -u cli_redis.out cli_broker.out || fail "redis-cli output differs"
[ "$(redis-cli -p "$broker_port" command count)" -gt 10 ] || fail "COMMAND COUNT"
redis-cli -p "$broker_port" command docs ping | grep -q summary || fail "COMMAND DOCS"
redis-cli -p "$broker_port" info | grep -q '^redis_version:' || fail "INFO"
redis-cli -p "$broker_port" info stats | grep -q '^total_commands_processed:' || fail "INFO stats"

# 3. pub/sub with redis-cli subscribers, compared with redis-server
pubsub_run() {
  local p=$1 tag=$2 i
  fixture_start "sub_$tag" redis-cli -p "$p" subscribe news
  local s1=$FIXTURE_PID
  fixture_start "psub_$tag" redis-cli -p "$p" psubscribe 'n*s' 'x?[a-c]' 'esc\*'
  local s2=$FIXTURE_PID
  for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p "$p" pubsub numsub news | sed -n 2p)" = 1 ] &&
      [ "$(redis-cli -p "$p" pubsub numpat)" = 3 ] && break
    sleep 0.05
  done
  {
    redis-cli -p "$p" publish news hello
    redis-cli -p "$p" publish xyb second
    redis-cli -p "$p" publish xyd nobody
    redis-cli -p "$p" publish 'esc*' star
    redis-cli -p "$p" publish escX nobody
    redis-cli -p "$p" publish nOOOs third
    redis-cli -p "$p" pubsub channels
    redis-cli -p "$p" pubsub channels 'n?ws'
  } >"publish_$tag.out"
  for ((i = 0; i < 200; i++)); do
    grep -q third "$WORK/psub_$tag.log" && grep -q hello "$WORK/sub_$tag.log" && break
    sleep 0.05
  done
  fixture_stop "$s1"
  fixture_forget "$s1"
  fixture_stop "$s2"
  fixture_forget "$s2"
  cat "$WORK/sub_$tag.log" "$WORK/psub_$tag.log" >"deliveries_$tag.out"
}
pubsub_run "$redis_port" redis
pubsub_run "$broker_port" broker
diff -u publish_redis.out publish_broker.out || fail "PUBLISH counts differ"
diff -u deliveries_redis.out deliveries_broker.out || fail "deliveries differ"
grep -qx 2 publish_broker.out || fail "PUBLISH news should reach 2 receivers"
grep -q '^pmessage$' deliveries_broker.out || fail "no pattern message"

# 4. a subscriber that never reads is disconnected; RSS stays bounded
fixture_stop "$broker_pid"
fixture_forget "$broker_pid"
start_broker slow --resp.pubsub-output-limit 1mb
slow_port=$BPORT
slow_pid=$BPID
slow_http=$HPORT
python3 - "$slow_port" <<'PY' || fail "the slow subscriber was not disconnected"
import socket, sys, time
port = int(sys.argv[1])
sub = socket.socket()
sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sub.connect(("127.0.0.1", port))
sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nslow\r\n")
want = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nslow\r\n:1\r\n"
got = b""
while len(got) < len(want):
    got += sub.recv(len(want) - len(got))
assert got == want, got
# a quick subscriber on the same channel keeps reading throughout
fast = socket.create_connection(("127.0.0.1", port))
fast.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nslow\r\n")
pub = socket.create_connection(("127.0.0.1", port))
msg = b"m" * 4096
one = b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nslow\r\n$4096\r\n" + msg + b"\r\n"
fast.setblocking(False)
counts = []
for batch in range(200):  # 200 x 50 x 4 KiB = 40 MiB published
    pub.sendall(one * 50)
    buf = b""
    while buf.count(b"\r\n") < 50:
        buf += pub.recv(65536)
    counts += [int(x[1:]) for x in buf.split(b"\r\n") if x]
    try:
        while fast.recv(1 << 20):
            pass
    except BlockingIOError:
        pass
assert counts[0] == 2, counts[:3]
assert counts[-1] == 1, counts[-3:]  # the slow one is gone, the fast one stays
pub.sendall(b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$4\r\nslow\r\n")
time.sleep(0.1)
r = pub.recv(1000)
assert r == b"*2\r\n$4\r\nslow\r\n:1\r\n", r
# the slow subscriber's socket ends after what the kernel held
sub.settimeout(5)
total = 0
while True:
    try:
        d = sub.recv(1 << 20)
    except ConnectionResetError:
        break
    if not d:
        break
    total += len(d)
assert total < 40 << 20, total
print("slow subscriber cut after", total, "bytes")
PY
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$slow_pid/status")
[ "$rss_kb" -lt 65536 ] || fail "broker RSS $rss_kb kB after a slow subscriber"
redis-cli -p "$slow_port" info stats | grep -q '^client_output_buffer_limit_disconnections:1' ||
  fail "output limit disconnection not counted"
grep -q 'client closed at its output limit' "$WORK/slow.log" || fail "output limit not logged"

# 5. redis-benchmark completes (a smoke check, not a timing)
timeout 60 redis-benchmark -p "$slow_port" -t ping -n 20000 -q >bench.out 2>&1 ||
  fail "redis-benchmark ping"
timeout 60 redis-benchmark -p "$slow_port" -n 20000 -q publish ch msg >>bench.out 2>&1 ||
  fail "redis-benchmark publish"
timeout 60 redis-benchmark -p "$slow_port" -n 20000 -P 16 -q publish ch msg >>bench.out 2>&1 ||
  fail "redis-benchmark pipelined publish"
[ "$(grep -c 'requests per second' bench.out)" -ge 4 ] || { cat bench.out; fail "benchmark"; }

# 6. the configured limits: bulk and array sizes (Redis's errors), the query
# buffer (closed without a reply, as Redis does), the number of clients
start_broker tiny --resp.max-bulk 100kb --resp.max-args 10 --resp.max-query-buffer 228kb \
  --resp.max-clients 3
python3 - "$BPORT" <<'PY' || fail "configured limits"
import socket, sys
port = int(sys.argv[1])
def talk(data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out + b"<EOF>"
            out += d
    except ConnectionResetError:
        return out + b"<EOF>"
ok = b"*2\r\n$4\r\nECHO\r\n$1024\r\n" + b"x" * 1024 + b"\r\n" + b"QUIT\r\n"
assert talk(ok) == b"$1024\r\n" + b"x" * 1024 + b"\r\n+OK\r\n<EOF>"
assert talk(b"*2\r\n$4\r\nECHO\r\n$102401\r\n") == \
    b"-ERR Protocol error: invalid bulk length\r\n<EOF>"
assert talk(b"*11\r\n") == b"-ERR Protocol error: invalid multibulk length\r\n<EOF>"
# 2 arguments of 100 KiB fit; a command of 3 passes 228 KiB of unparsed
# input: closed, no reply
arg = b"$102400\r\n" + b"y" * 102400 + b"\r\n"
assert talk(b"*2\r\n$4\r\nECHO\r\n" + arg + b"QUIT\r\n") == arg + b"+OK\r\n<EOF>"
assert talk(b"*4\r\n$4\r\nECHO\r\n" + arg * 3) == b"<EOF>"
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
for h in held:
    h.sendall(b"PING\r\n")
    assert h.recv(100) == b"+PONG\r\n"
assert talk(b"PING\r\n") == b"-ERR max number of clients reached\r\n<EOF>"
PY
redis-cli -p "$BPORT" info stats | grep -q '^client_query_buffer_limit_disconnections:1' ||
  fail "query buffer limit not counted"

# 7. HTTP side, --help, shutdown
curl -fsS "http://127.0.0.1:$slow_http/health" >/dev/null || fail "/health"
curl -fsS "http://127.0.0.1:$slow_http/metrics" | grep '^colony_broker_resp_output_limit_disconnects 1' >/dev/null ||
  fail "/metrics"
"$BIN/colony" broker --help >help.out
for key in listen resp-listen data-dir requirepass resp.max-bulk resp.pubsub-output-limit; do
  grep -q -- "--$key=" help.out || fail "--help lacks --$key"
done
"$BIN/colony" broker --resp.max-bulk 1mb --resp.max-query-buffer 1mb >bad.out 2>&1 && fail "bad limits accepted"
grep -q 'resp.max-query-buffer' bad.out || fail "bad limits not explained"
fixture_start hold redis-cli -p "$slow_port" subscribe held
sleep 0.2
fixture_terminate "$slow_pid"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
echo "test_broker_resp: passed"
