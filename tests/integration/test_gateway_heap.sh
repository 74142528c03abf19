#!/usr/bin/env bash
# Keep-alive requests through colony gateway do not make its heap shrink and
# grow again per request: the server frees an idle connection's read and
# output buffers, and with glibc's default trim threshold those frees could
# return the heap's top to the kernel and the next requests fault it back in
# (a brk and fresh pages over and over: 2-4 µs of system time per request at
# 50 connections, docs/benchmarks.md). The gateway sets malloc to keep a few
# MiB (proxy_malloc.c). Measured here as the gateway's minor page faults over
# 6,000 requests on 40 keep-alive connections, sent in rounds as wrk does.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"
case "${COLONY_TEST_CFLAGS:-}" in
*sanitize=address*) # ASan's allocator is not glibc's: mallopt does not apply
  echo "skipped: AddressSanitizer build"
  exit 0 ;;
esac

fixture_start_listening up "$BIN/hello" --listen 127.0.0.1:0 --registry.enabled=false
up=$FIXTURE_PORT
FIXTURE_PORT_PATTERN='"msg":"proxy listening".*"port":[0-9]*' \
  fixture_start_listening gw "$BIN/colony" gateway --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --route "/=http://127.0.0.1:$up" --access-log=false \
  --proxy.max_connections_per_address=0
gw=$FIXTURE_PID
port=$FIXTURE_PORT

python3 - "$port" "$gw" <<'PY' || fail "heap churn"
import socket, sys
port, gw = int(sys.argv[1]), sys.argv[2]
CONNS, ROUNDS = 40, 150
def minflt():
    with open(f"/proc/{gw}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])  # field 10: minflt
req = b"GET /hello HTTP/1.1\r\nHost: t\r\nUser-Agent: heap-test\r\n\r\n"
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNS)]
bufs = [b""] * CONNS
def one_round():
    for s in socks:
        s.sendall(req)
    for i, s in enumerate(socks):
        while True:
            head, sep, rest = bufs[i].partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(rest) >= length:
                    assert head.startswith(b"HTTP/1.1 200"), head[:40]
                    bufs[i] = rest[length:]
                    break
            chunk = s.recv(65536)
            assert chunk, "connection closed"
            bufs[i] += chunk
for _ in range(20):  # warm up: connections, pools, the first heap growth
    one_round()
before = minflt()
for _ in range(ROUNDS):
    one_round()
faults = minflt() - before
n = CONNS * ROUNDS
print(f"{n} requests: {faults} minor faults in the gateway")
assert faults * 100 < n, f"{faults} page faults for {n} requests: the heap is trimmed and regrown"
PY
