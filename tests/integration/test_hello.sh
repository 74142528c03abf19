#!/usr/bin/env bash
# End-to-end: the hello example answers /hello and /health, reports bad
# config with a clear error, and exits 0 on SIGTERM after finishing requests.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"

cd "$WORK"
fixture_start_listening hello "$BIN/hello" --listen 127.0.0.1:0 --workers 2
port=$PORT_hello

body=$(curl -fsS "http://127.0.0.1:$port/hello")
[ "$body" = '{"message":"hello"}' ] || fail "unexpected /hello body: $body"
ctype=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port/hello")
[ "$ctype" = "application/json" ] || fail "unexpected content type: $ctype"
grep -q '"status":"healthy"' <<<"$(curl -fsS "http://127.0.0.1:$port/health")" || fail "/health"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || fail "expected 404, got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/hello")
[ "$code" = 405 ] || fail "expected 405, got $code"
# keep-alive: curl reuses one connection for several URLs
out=$(curl -sv "http://127.0.0.1:$port/hello" "http://127.0.0.1:$port/hello" 2>&1)
grep -q "Re-using existing connection" <<<"$out" || fail "connection not kept alive"

fixture_terminate "$PID_hello"
[ "$FIXTURE_RC" -eq 0 ] || fail "hello exited $FIXTURE_RC after SIGTERM"
grep -q '"msg":"stopped"' "$WORK/hello.log" || fail "no 'stopped' log line"

# Bad config: a file error names file, line and key; a bad flag names the key.
mkdir -p config
printf '{\n  "workers": "many"\n}\n' > config/default.json
rc=0
"$BIN/hello" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 2 ] || fail "bad config should exit 2, got $rc"
grep -q 'default.json:2' "$WORK/err" || fail "error lacks file:line: $(cat "$WORK/err")"
grep -q 'workers' "$WORK/err" || fail "error lacks key: $(cat "$WORK/err")"
rm config/default.json
rc=0
"$BIN/hello" --workers 0 2>"$WORK/err" || rc=$?
[ "$rc" -eq 2 ] || fail "out-of-range flag should exit 2, got $rc"
grep -q 'workers' "$WORK/err" || fail "flag error lacks key"
echo "1 passed, 0 failed"
