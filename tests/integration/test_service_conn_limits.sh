#!/usr/bin/env bash
# The service config keys max_connections and max_connections_per_address
# reach the server: with --max_connections_per_address=2 the third connection
# from 127.0.0.1 gets a 503 JSON; with --max_connections=2 a third client is
# served and the oldest idle keep-alive connection is closed. /metrics has the
# http_output_bytes_buffered gauge.
set -euo pipefail
bin=$1
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/log" ] && cat "$work/log" >&2; exit 1; }

start() {
  "$bin/hello" --listen 127.0.0.1:0 "$@" 2>"$work/log" &
  pid=$!
  port=
  for _ in $(seq 1 100); do
    port=$(grep -o '"port":[0-9]*' "$work/log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || fail "hello did not log its port"
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || fail "hello did not exit cleanly"
  pid=
}

# Opens keep-alive connections one after another (each answered), then one
# more; prints the status line the last one got and, per earlier connection,
# whether it is still open.
probe() {
  python3 - "$port" "$1" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
def get(s):
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    return data.split(b"\r\n")[0].decode()
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert get(s).endswith("200 OK")
    conns.append(s)
last = socket.create_connection(("127.0.0.1", port), timeout=5)
print(get(last))
for s in conns:
    try:
        print(get(s))
    except OSError:
        print("closed")
PY
}

start --max_connections_per_address=2
curl -fsS "http://127.0.0.1:$port/metrics" | grep '^http_output_bytes_buffered 0$' >/dev/null ||
  fail "http_output_bytes_buffered gauge missing"
out=$(probe 2)
[ "$(sed -n 1p <<<"$out")" = "HTTP/1.1 503 Service Unavailable" ] ||
  fail "third connection from one address: $out"
stop

start --max_connections=2 --max_connections_per_address=0
out=$(probe 2)
[ "$(sed -n 1p <<<"$out")" = "HTTP/1.1 200 OK" ] || fail "full server refused a new client: $out"
[ "$(sed -n 2p <<<"$out")" = "closed" ] || fail "oldest idle connection not closed: $out"
[ "$(sed -n 3p <<<"$out")" = "HTTP/1.1 200 OK" ] || fail "newer idle connection closed: $out"
stop
echo ok
