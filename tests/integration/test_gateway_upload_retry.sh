#!/usr/bin/env bash
# Retries of requests with a body, against an upstream that resets every
# connection once it has read part of the body: a small body (read whole by
# the gateway, up to the 64 KiB replay buffer) is replayed on the retry; a
# streamed one that has started cannot be, so the gateway does not retry it
# and answers 502 with a JSON body that says why (nginx with
# proxy_request_buffering off does not retry then either).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

# Reads the head and up to 32 KiB of body, logs "conn", then resets (RST).
cat >reset.py <<'PY'
import socket, struct, sys, threading
def serve(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            more = c.recv(65536)
            if not more:
                return
            data += more
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        want = min(length, 32768) if length else 32768
        while len(body) < want:
            more = c.recv(65536)
            if not more:
                break
            body += more
        print("conn %d" % len(body), flush=True)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
print('{"port":%d}' % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
fixture_start_listening reset python3 reset.py
up=http://127.0.0.1:$FIXTURE_PORT

cat >routes.json <<JSON
{
  "upstreams": {"reset": {"targets": ["$up"]}},
  "routes": [
    {"name": "reset", "prefix": "/", "upstream": "reset",
     "retries": {"attempts": 1, "on": ["reset"], "non_idempotent": true}}
  ]
}
JSON
fixture_start gw "$BIN/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$WORK/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT

conns() { grep -c '^conn' reset.log || true; }

# a small body (10 KB, read whole): replayed once, both attempts reset
head -c 10000 /dev/zero >small.bin
before=$(conns)
code=$(curl -sS -o small.json -w '%{http_code}' --max-time 20 --data-binary @small.bin "$url/small") || true
[ "$code" = 502 ] || fail "small body: $code $(cat small.json)"
for _ in $(seq 1 50); do [ $(($(conns) - before)) -ge 2 ] && break; sleep 0.1; done
[ $(($(conns) - before)) = 2 ] || fail "small body: $(($(conns) - before)) attempts, wanted 2"
grep -q '"error":"bad_gateway"' small.json || fail "small body's 502: $(cat small.json)"
grep -q 'replay' small.json && fail "small body's 502 blames the replay buffer: $(cat small.json)"
grep -q '"path":"/small".*"attempts":2' gw.log || fail "small body: access log $(grep '"/small"' gw.log)"

# a 1 MiB body streams; once part of it went upstream it cannot be replayed:
# one attempt, and a 502 whose body names why
head -c 1048576 /dev/zero >big.bin
before=$(conns)
code=$(curl -sS -o big.json -w '%{http_code}' --max-time 20 --expect100-timeout 10 \
  --data-binary @big.bin "$url/big" 2>curl.err) || true
[ "$code" = 502 ] || fail "streamed body: $code $(cat big.json curl.err)"
grep -q '"error":"bad_gateway"' big.json || fail "streamed body's 502: $(cat big.json)"
grep -q 'after the streamed request body had started.*64 KiB replay buffer is not retried' big.json ||
  fail "streamed body's 502 does not say why: $(cat big.json)"
sleep 0.5 # a retry, if one went, would have reached the upstream by now
[ $(($(conns) - before)) = 1 ] || fail "streamed body: $(($(conns) - before)) attempts, wanted 1"
grep -q '"path":"/big".*"status":502.*"attempts":1' gw.log ||
  fail "streamed body: access log $(grep '"/big"' gw.log)"

echo "1 passed, 0 failed"
