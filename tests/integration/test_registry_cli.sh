#!/usr/bin/env bash
# colony kv and colony services against a real registry on a free loopback
# port; their one HTTP helper (src/cli/http.c) reports a refused connection, a
# silent server (--timeout) and an unexpected status clearly.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"
fixture_start_registry reg
export COLONY_REGISTRY_URL=$REGISTRY_URL
"$BIN/colony" kv put app/name shop
[ "$("$BIN/colony" kv get app/name)" = "shop" ] || fail "kv get"
printf 'from stdin' | "$BIN/colony" kv put app/cfg/x -
[ "$("$BIN/colony" kv get app/cfg/x)" = "from stdin" ] || fail "kv put from stdin"
[ "$("$BIN/colony" kv ls app/ | tr '\n' ' ')" = "app/cfg/ app/name " ] || fail "kv ls"
"$BIN/colony" kv delete app --recurse
if "$BIN/colony" kv get app/name 2>/dev/null; then fail "deleted key still readable"; fi
curl -sf -X PUT "$REGISTRY_URL/v1/agent/service/register" \
  -d '{"Name":"web","ID":"web-1","Port":8080,"Check":{"TTL":"1m","Status":"passing"}}' >/dev/null
out=$("$BIN/colony" services)
grep -Eq '^web +1 +1 +0 +0' <<<"$out" || fail "services: $out"
grep -q 'web-1 .*127.0.0.1:8080 .*passing' <<<"$("$BIN/colony" services web)" || fail "services web"

# Nothing listening: the method, the URL and "connection refused".
rc=0; "$BIN/colony" services --registry http://127.0.0.1:1 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "refused connection: exit $rc"
grep -qF 'colony: GET http://127.0.0.1:1/v1/catalog/services: connection refused' "$WORK/err" ||
  fail "refused connection message: $(cat "$WORK/err")"

# A server that accepts and never answers: --timeout bounds the call.
fixture_start_listening silent timeout 30 python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("{\"port\":%d}" % s.getsockname()[1], flush=True)
c = s.accept(); time.sleep(25)'
start=$(date +%s%N)
rc=0; "$BIN/colony" kv get k --timeout 300ms --registry "http://127.0.0.1:$PORT_silent" \
  2>"$WORK/err" || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -eq 1 ] || fail "silent server: exit $rc"
grep -qF "GET http://127.0.0.1:$PORT_silent/v1/kv/k?raw: no answer within 300 ms" "$WORK/err" ||
  fail "timeout message: $(cat "$WORK/err")"
[ "$ms" -lt 5000 ] || fail "--timeout 300ms took $ms ms"
rc=0; "$BIN/colony" kv get k --timeout soon 2>"$WORK/err" || rc=$?
[ "$rc" -eq 2 ] || fail "bad --timeout: exit $rc"
grep -q 'expected a duration' "$WORK/err" || fail "bad --timeout message: $(cat "$WORK/err")"

# An unexpected status: the status and the first line of the body.
fixture_start_listening busy timeout 30 python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"overloaded\nsecond line\n"
        self.send_response(503); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print("{\"port\":%d}" % srv.server_address[1], flush=True)
srv.serve_forever()'
rc=0; "$BIN/colony" services --registry "http://127.0.0.1:$PORT_busy" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "503: exit $rc"
grep -qF "colony services: registry http://127.0.0.1:$PORT_busy/v1/catalog/services: answered 503: overloaded" \
  "$WORK/err" || fail "503 message: $(cat "$WORK/err")"
if grep -q 'second line' "$WORK/err"; then fail "503 message has more than the first line"; fi
rc=0; "$BIN/colony" kv get k --registry "http://127.0.0.1:$PORT_busy" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "kv 503: exit $rc"
grep -qF 'colony kv: registry: answered 503: overloaded' "$WORK/err" ||
  fail "kv 503 message: $(cat "$WORK/err")"
echo "1 passed, 0 failed"
