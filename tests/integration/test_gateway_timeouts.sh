#!/usr/bin/env bash
# A route's timeouts as nginx and Kong users expect them: "try" bounds one
# attempt until the upstream's response head, "read" the longest silence of
# the upstream (the body included), "total" all attempts until the head. A
# download that takes longer than "try" but keeps flowing completes; a body
# that stalls longer than "read" is cut (the client sees a truncated
# response; the access log and gateway_responses_truncated_total say so); a
# head later than "try" is a 504. Config mistakes are refused with their line.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK
cd "$work"

# An upstream whose pace the test sets: /drip?n=N&gap=MS sends its head at
# once, then N pieces of 100 bytes MS apart; /stall sends its head and 100 of
# 1000 bytes, then goes silent for 10 s; /late?ms=MS waits MS before its head.
cat >pace.py <<'PY'
import socket, sys, threading, time
from urllib.parse import urlparse, parse_qs
def serve(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            more = c.recv(4096)
            if not more:
                return
            data += more
        target = data.split(b" ")[1].decode()
        u = urlparse(target)
        q = {k: int(v[0]) for k, v in parse_qs(u.query).items()}
        def head(length):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % length)
        if u.path == "/drip":
            n, gap = q.get("n", 5), q.get("gap", 300)
            head(100 * n)
            for _ in range(n):
                c.sendall(b"d" * 100)
                time.sleep(gap / 1000)
        elif u.path == "/stall":
            head(1000)
            c.sendall(b"s" * 100)
            time.sleep(10)
        elif u.path == "/late":
            time.sleep(q.get("ms", 3000) / 1000)
            head(2)
            c.sendall(b"ok")
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
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
fixture_start_listening pace python3 pace.py
up=http://127.0.0.1:$FIXTURE_PORT

# ---- config: "read" is a duration like the others, refused with its line
cat >routes.json <<JSON
{
  "upstreams": {"pace": {"targets": ["$up"]}},
  "routes": [
    {"name": "paced", "prefix": "/", "upstream": "pace",
     "timeouts": {"try": "1500ms", "read": "3s", "total": "6s"}}
  ]
}
JSON
"$bin/colony" gateway --check routes.json >/dev/null || fail "--check refused timeouts.read"
sed 's|"read": "3s"|"read": "forever"|' routes.json >bad.json
rc=0
"$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check of a bad read timeout exited $rc"
grep -q 'bad.json:5: routes.0.timeouts.read: .*duration' check.err ||
  fail "bad read timeout: $(cat check.err)"
sed 's|"read": "3s"|"raed": "3s"|' routes.json >bad.json
rc=0
"$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] && grep -q 'bad.json:5: routes.0.timeouts.raed: .*unknown key' check.err ||
  fail "misspelt read timeout: $(cat check.err)"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT

# ---- a download longer than "try" (1.5 s) whose gaps stay under "read" (3 s)
# completes: 10 pieces 300 ms apart take 2.7 s or more
start=$(date +%s%N)
got=$(curl -sS -o drip.out -w '%{http_code} %{size_download}' --max-time 20 "$url/drip?n=10&gap=300") ||
  fail "the slow download failed: $got"
took=$((($(date +%s%N) - start) / 1000000))
[ "$got" = "200 1000" ] || fail "the slow download: $got, wanted 200 1000"
[ "$took" -gt 1500 ] || fail "the slow download took $took ms: not longer than try"

# ---- a body silent longer than "read" is cut: curl sees fewer bytes than
# Content-Length (exit 18, partial file), never a complete-looking answer
rc=0
got=$(curl -sS -o stall.out -w '%{http_code} %{size_download}' --max-time 20 "$url/stall") || rc=$?
[ "$rc" = 18 ] || fail "a stalled body: curl exited $rc ($got), wanted 18 (partial)"
[ "$got" = "200 100" ] || fail "a stalled body: $got, wanted 200 and the 100 bytes sent"
# the access log line of that request says it was cut, and why
for _ in $(seq 1 50); do
  grep -q '"path":"/stall".*"truncated":"read_timeout"' "$work/gw.log" && break
  sleep 0.1
done
grep -q '"path":"/stall".*"truncated":"read_timeout"' "$work/gw.log" ||
  fail "no access log line says the stalled body was cut: $(grep '"path":"/stall"' "$work/gw.log")"
grep -q '"path":"/drip".*"truncated":null' "$work/gw.log" ||
  fail "the whole download's access log line: $(grep '"path":"/drip"' "$work/gw.log")"
curl -fsS "$admin/metrics" >metrics.txt
grep -q 'gateway_responses_truncated_total{route="paced",reason="read_timeout"} 1' metrics.txt ||
  fail "metrics: $(grep truncated metrics.txt)"

# ---- a head later than "try" (1.5 s): 504, as before
rc=0
got=$(curl -sS -o late.out -w '%{http_code}' --max-time 20 "$url/late?ms=4000") || rc=$?
[ "$got" = 504 ] || fail "a late head: $got (curl $rc), wanted 504: $(cat late.out)"
grep -q '"gateway_timeout"' late.out || fail "a late head's body: $(cat late.out)"

echo "1 passed, 0 failed"
