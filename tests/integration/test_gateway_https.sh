#!/usr/bin/env bash
# colony gateway to an https upstream: the upstream is a second colony gateway
# with a TLS listener in front of echo_server, its certificate (up.test and
# 127.0.0.1) signed by a throwaway CA made now with the openssl CLI. The
# proxying gateway verifies it with the upstream's "tls": {"ca_file",
# "server_name"}: GET and POST go through (the echo sees X-Forwarded-Proto
# https from the TLS listener), keep-alive holds one TLS connection for many
# requests, a wrong server name or no CA file (system store) is a 502 and a
# refused handshake is retried on another instance as a connect failure;
# a WebSocket tunnel works over the TLS connection (python3-websockets with
# TLS as the upstream); --check names file, line and key of a CA file that is
# not there.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK

json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v.get(k)
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"; }

cd "$work"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=TestCA \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign >/dev/null 2>&1 ||
  fail "openssl could not make the CA"
openssl req -new $ec -keyout up.key -out up.csr -subj /CN=up.test >/dev/null 2>&1 ||
  fail "openssl could not make the key"
printf 'subjectAltName=DNS:up.test,IP:127.0.0.1\n' >ext.cnf
openssl x509 -req -in up.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out up.pem -days 2 \
  -extfile ext.cnf >/dev/null 2>&1 || fail "openssl could not sign the certificate"

fixture_start_listening echo "$bin/echo_server" --name echo --listen 127.0.0.1:0
pe=$FIXTURE_PORT
tp=$(fixture_free_port)

# The upstream: a gateway whose TLS listener forwards to echo.
cat >front.json <<JSON
{"upstreams": {"echo": {"targets": ["http://127.0.0.1:$pe"]}},
 "routes": [{"prefix": "/", "upstream": "echo"}],
 "listeners": [{"listen": "127.0.0.1:$tp",
                "tls": {"certificates": [{"cert": "$work/up.pem", "key": "$work/up.key"}]}}]}
JSON
fixture_start front "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/front.json"
front=$FIXTURE_PID
fixture_wait_log_port front "$front" '"msg":"proxy listening".*"port":[0-9]*'
grep -q '"msg":"proxy listening".*"address":"127.0.0.1:'"$tp"'".*"protocol":"https"' \
  "$work/front.log" || fail "the upstream's TLS listener did not start"

# A WebSocket echo over TLS (python3-websockets with the same certificate).
PY=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import websockets' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "python3-websockets is missing (scripts/bootstrap installs it)"
cat >wss.py <<'PY'
import asyncio, ssl, sys, websockets

async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)

async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f'{{"msg":"listening","port":{port}}}', flush=True)
        await asyncio.Future()

asyncio.run(main())
PY
fixture_start_listening wss "$PY" wss.py "$work/up.pem" "$work/up.key"
pw=$FIXTURE_PORT

cat >routes.json <<JSON
{
  "upstreams": {
    "secure": {"targets": ["https://127.0.0.1:$tp"],
               "tls": {"ca_file": "$work/ca.pem", "server_name": "up.test"}},
    "byip": {"targets": ["https://127.0.0.1:$tp"], "tls": {"ca_file": "$work/ca.pem"}},
    "wrongname": {"targets": ["https://127.0.0.1:$tp"],
                  "tls": {"ca_file": "$work/ca.pem", "server_name": "other.test"}},
    "system": {"targets": ["https://127.0.0.1:$tp"]},
    "mixed": {"targets": ["https://127.0.0.1:$pe", "https://127.0.0.1:$tp"],
              "strategy": "round_robin", "tls": {"ca_file": "$work/ca.pem"}},
    "wss": {"targets": ["https://127.0.0.1:$pw"],
            "tls": {"ca_file": "$work/ca.pem", "server_name": "up.test"}}
  },
  "routes": [
    {"prefix": "/secure", "upstream": "secure"},
    {"prefix": "/byip", "upstream": "byip"},
    {"prefix": "/wrongname", "upstream": "wrongname"},
    {"prefix": "/system", "upstream": "system"},
    {"prefix": "/mixed", "upstream": "mixed", "retries": {"attempts": 1}},
    {"prefix": "/ws", "upstream": "wss", "websocket": true}
  ]
}
JSON
"$bin/colony" gateway --check routes.json >/dev/null || fail "--check refused a good file"
sed "s|$work/ca.pem\", \"server_name\": \"up.test\"|$work/none.pem\", \"server_name\": \"up.test\"|" \
  routes.json >bad.json
rc=0
"$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check exited $rc for a missing CA file"
line=$(grep -n 'none.pem' bad.json | cut -d: -f1)
grep -q "bad.json:$line: upstreams.secure.tls.ca_file: CA file '$work/none.pem': No such file" \
  check.err || fail "--check said: $(cat check.err)"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
port=$FIXTURE_PORT

# GET and POST over https, verified by CA file and server name, or by IP
curl -fsS "http://127.0.0.1:$port/secure/hello?x=1" >out.json || fail "GET /secure: $(cat out.json)"
[ "$(json path <out.json)" = /secure/hello ] || fail "GET: $(cat out.json)"
[ "$(json headers.X-Forwarded-Proto <out.json)" = https ] ||
  fail "the upstream was not reached over TLS: $(cat out.json)"
curl -fsS --data-binary 'name=colony' "http://127.0.0.1:$port/secure/post" >out.json ||
  fail "POST /secure"
[ "$(json body <out.json)" = name=colony ] || fail "POST: $(cat out.json)"
curl -fsS "http://127.0.0.1:$port/byip/x" >out.json || fail "GET /byip (the IP address SAN)"

# keep-alive: twenty requests, one TLS connection to the upstream (the
# upstream gateway's TLS listener counts the connections it accepted)
before=$(grep -c '"msg":"access"' "$work/front.log" || true)
for i in $(seq 1 20); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/secure/k$i" || fail "keep-alive request $i"
done
after=$(grep -c '"msg":"access"' "$work/front.log" || true)
conns=$(python3 - "$work/front.log" <<'PY'
import json, sys
peers = set()
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") == "access" and str(e.get("path", "")).startswith("/secure/k"):
        peers.add(e.get("client"))
print(len(peers))
PY
)
[ $((after - before)) -ge 20 ] || fail "the upstream logged $((after - before)) of 20 requests"
# the access log names the peer address and port: one port for all twenty,
# or one per proxy worker (each keeps its own pool; the default is a worker
# per core, at most 64)
workers=$(nproc)
[ "$workers" -le 64 ] || workers=64
[ "$conns" -ge 1 ] && [ "$conns" -le "$workers" ] ||
  fail "twenty requests used $conns connections to the upstream ($workers workers)"

# verification failures are 502, and the log says why
code=$(curl -sS -o out.json -w '%{http_code}' "http://127.0.0.1:$port/wrongname/x")
[ "$code" = 502 ] || fail "a wrong server name was not refused: $code $(cat out.json)"
grep -q '"msg":"https: TLS handshake failed".*"verify":"hostname mismatch"' "$work/gw.log" ||
  fail "no handshake failure in the log"
code=$(curl -sS -o out.json -w '%{http_code}' "http://127.0.0.1:$port/system/x")
[ "$code" = 502 ] || fail "the system store took a private CA: $code $(cat out.json)"
grep -q '"verify":"unable to get local issuer certificate"' "$work/gw.log" ||
  fail "no unknown-CA failure in the log"

# a target that is no TLS server fails its handshake before anything was
# sent: a connect failure, retried on the other target (POST too)
for i in 1 2 3 4; do
  curl -fsS -o /dev/null --data-binary x "http://127.0.0.1:$port/mixed/m$i" ||
    fail "request $i to the mixed upstream was not retried"
done
grep -q '"error":"wrong version number"' "$work/gw.log" || fail "the plain target was not tried"

# a WebSocket tunnel over the TLS connection: text and 1 MiB binary both ways
"$PY" - "$port" <<'PY' || fail "WebSocket through the https upstream"
import asyncio, os, sys, websockets

async def main():
    async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/ws/echo", max_size=None) as ws:
        await ws.send("hello over tls")
        assert await ws.recv() == "hello over tls", "text echo"
        blob = os.urandom(1 << 20)
        await ws.send(blob)
        assert await ws.recv() == blob, "binary echo"

asyncio.run(main())
PY

echo "ok"
