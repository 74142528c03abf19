#!/usr/bin/env bash
# WebSocket through colony gateway, with a real client and server (Debian's
# python3-websockets): text and binary messages echo both ways, a 10 MB
# message, 1000 small messages in order, an upstream that speaks first, a close
# from the client and one from the server (its close code reaches the client),
# a slow reader of 32 MiB with the gateway's memory flat (flow control), an
# upstream that refuses the upgrade (403 reaches the client as 403), an API key
# checked before the upgrade (401 without it), no retry of an upgrade, an
# Upgrade on a route without "websocket" forwarded as a plain request (the
# WebSocket server answers 426), a bad "websocket" value refused with its
# line, the tunnel and in-flight counts back to 0 with a log line and metrics
# per tunnel, and a shutdown that closes an open tunnel after
# shutdown_timeout.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

# Debian's package is for the system Python, which a pyenv or venv python3 may hide.
PY=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import websockets' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "python3-websockets is missing (scripts/bootstrap installs it)"

cat >ws_upstream.py <<'PY'
import asyncio, http, sys, websockets

async def handler(ws, path):
    if path.startswith("/ws/flood"):
        for i in range(32):
            await ws.send(bytes([i]) * (1 << 20))
        await ws.close()
        return
    if path.startswith("/ws/greet"):
        await ws.send("welcome")  # the upstream speaks first, right after its 101
    if path.startswith("/ws/close"):
        await ws.recv()
        await ws.close(code=4000, reason="server says bye")
        return
    async for msg in ws:
        await ws.send(msg)

async def process_request(path, headers):
    if path.startswith("/ws/refuse"):
        return http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")], b"refused\n"
    if path.startswith("/busy"):
        return http.HTTPStatus.SERVICE_UNAVAILABLE, [], b"busy\n"
    return None

async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        print(f'{{"msg":"listening","port":{port}}}', flush=True)
        await asyncio.Future()

asyncio.run(main())
PY
fixture_start_listening up "$PY" ws_upstream.py
up=$FIXTURE_PORT

cat >routes.json <<JSON
{
  "upstreams": {"up": {"targets": ["http://127.0.0.1:$up"]}},
  "routes": [
    {"name": "ws", "prefix": "/ws", "upstream": "up", "websocket": true},
    {"name": "keyed", "prefix": "/keyed", "rewrite": "/ws/echo", "upstream": "up",
     "websocket": true, "api_keys": {"header": "X-API-Key", "keys": {"key-of-alice-0123456789": "alice"}}},
    {"name": "busy", "prefix": "/busy", "upstream": "up", "websocket": true,
     "retries": {"attempts": 2, "on": ["503"]}},
    {"name": "plain", "prefix": "/plain", "upstream": "up"}
  ]
}
JSON

# a bad "websocket" value is refused with file, line and key
sed 's/"websocket": true}/"websocket": "yes"}/' routes.json >bad.json
rc=0; "$BIN/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check of a bad websocket value exited $rc"
line=$(grep -n '"websocket": "yes"' bad.json | head -1 | cut -d: -f1)
grep -q "bad.json:$line: routes.0.websocket: \"websocket\" must be true or false" check.err ||
  fail "--check: $(cat check.err)"

# Under AddressSanitizer freed memory sits in a quarantine: keep it small so
# the RSS check below measures what the gateway holds.
fixture_start gw env ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" \
  "$BIN/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$WORK/routes.json" --shutdown_timeout=500ms
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
port=$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=$FIXTURE_PORT

"$PY" - "$port" "$admin" "$gw" <<'PY' || fail "websocket client"
import asyncio, json, os, signal, socket, sys, time, urllib.request
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

port, admin, gw = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rss_kb():
    for line in open(f"/proc/{gw}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
base = f"ws://127.0.0.1:{port}"

def stats():
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/gateway/stats", timeout=5) as r:
        return json.load(r)

async def status_of(url, **kw):
    try:
        async with websockets.connect(url, **kw):
            return 101
    except InvalidStatusCode as e:
        return e.status_code

async def main():
    async with websockets.connect(f"{base}/ws/echo", max_size=None) as ws:
        await ws.send("héllo, world")
        assert await ws.recv() == "héllo, world", "text echo"
        blob = bytes(range(256)) * 4
        await ws.send(blob)
        assert await ws.recv() == blob, "binary echo"
        s = stats()
        assert s["websocket_tunnels"] == 1, f"open tunnels: {s}"
        big = os.urandom(10 * 1024 * 1024)
        t0 = time.monotonic()
        await ws.send(big)
        got = await ws.recv()
        t1 = time.monotonic()
        assert got == big, f"10 MB echo: {len(got)} bytes"
        print(f"10 MB echo through the gateway: {t1 - t0:.3f} s")
        for i in range(1000):
            await ws.send(f"m{i}")
        for i in range(1000):
            m = await ws.recv()
            assert m == f"m{i}", f"message {i} arrived as {m}"
        await ws.close()
        assert ws.close_code == 1000, f"client close code {ws.close_code}"

    async with websockets.connect(f"{base}/ws/greet") as ws:
        assert await ws.recv() == "welcome", "the upstream's first message"
        await ws.send("and you")
        assert await ws.recv() == "and you"

    async with websockets.connect(f"{base}/ws/close") as ws:
        await ws.send("x")
        try:
            await ws.recv()
            raise AssertionError("the server's close did not arrive")
        except ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 4000, f"server close: {e}"
            assert e.rcvd.reason == "server says bye", f"server close reason: {e}"

    # flow control: the upstream sends 32 MiB as fast as it can, the client
    # reads slowly (one message queued at most, a 64 KiB socket buffer: the
    # kernel here lets a receive buffer grow to 32 MiB otherwise; no
    # permessage-deflate, which would shrink these messages to nothing); every
    # byte arrives and the gateway does not hold the difference
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow.connect(("127.0.0.1", int(port)))
    start = peak = rss_kb()
    async with websockets.connect(f"{base}/ws/flood", sock=slow, max_size=None,
                                  max_queue=1, compression=None) as ws:
        for i in range(32):
            m = await ws.recv()
            assert m == bytes([i]) * (1 << 20), f"flood message {i}"
            await asyncio.sleep(0.02)
            peak = max(peak, rss_kb())
    grown = peak - start
    print(f"slow WebSocket reader: 32 MiB relayed, gateway RSS +{grown} KiB at most")
    assert grown < 16384, f"gateway RSS grew by {grown} KiB for a slow reader"

    code = await status_of(f"{base}/ws/refuse")
    assert code == 403, f"refused upgrade reached the client as {code}"

    code = await status_of(f"{base}/keyed")
    assert code == 401, f"no API key: {code}"
    async with websockets.connect(f"{base}/keyed", extra_headers={"X-API-Key": "key-of-alice-0123456789"}) as ws:
        await ws.send("keyed")
        assert await ws.recv() == "keyed"

    # an upgrade is never retried, whatever the route's retries say
    code = await status_of(f"{base}/busy")
    assert code == 503, f"busy upstream: {code}"

    code = await status_of(f"{base}/plain/echo")
    assert code == 426, f"Upgrade on a route without websocket: {code}"

    deadline = time.monotonic() + 5
    while True:
        s = stats()
        if s["websocket_tunnels"] == 0 and s["in_flight"] == 0:
            break
        assert time.monotonic() < deadline, f"counts did not return to 0: {s}"
        await asyncio.sleep(0.05)
    assert s["websocket_tunnels_total"] == 5, f"tunnels opened: {s}"

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'gateway_websocket_bytes_total{route="ws",direction="down"}' in metrics, "bytes metric"
    assert "gateway_websocket_tunnels 0" in metrics, "open tunnels gauge"

    # a shutdown closes an open tunnel once shutdown_timeout (500ms) passed
    async with websockets.connect(f"{base}/ws/echo") as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        t0 = time.monotonic()
        os.kill(gw, signal.SIGTERM)
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("the tunnel stayed open through a shutdown")
        except ConnectionClosed:
            waited = time.monotonic() - t0
        assert 0.3 < waited < 5, f"closed {waited:.2f} s after SIGTERM"
        print(f"shutdown closed the open tunnel after {waited:.2f} s")

asyncio.run(main())
PY

# one access line per tunnel with both byte counts
n=$(grep -c '"msg":"websocket closed"' gw.log || true)
[ "$n" = 6 ] || fail "websocket closed lines: $n"
grep '"msg":"websocket closed"' gw.log | grep '"route":"ws"' | head -1 |
  grep -Eq '"bytes_up":[0-9]{8}' || fail "bytes_up of the echo tunnel: $(grep 'websocket closed' gw.log | head -1)"
grep -q '"msg":"access".*"status":101' gw.log || fail "no access line with status 101"
grep '"msg":"access".*"path":"/busy"' gw.log | grep -q '"status":503.*"attempts":1,' ||
  fail "the upgrade was retried: $(grep '"path":"/busy"' gw.log)"

fixture_wait "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC after the shutdown"
echo "1 passed, 0 failed"
