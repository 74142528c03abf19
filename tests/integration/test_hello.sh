#!/usr/bin/env bash
# End-to-end: the hello example answers /hello and /health, reports bad
# config with a clear error, and exits 0 on SIGTERM after finishing requests.
set -euo pipefail
bin=$1
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/log" ] && cat "$work/log" >&2; exit 1; }

cd "$work"
"$bin/hello" --listen 127.0.0.1:0 --workers 2 2>"$work/log" &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -o '"port":[0-9]*' "$work/log" 2>/dev/null | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "hello did not log its port"

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

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "hello exited $rc after SIGTERM"
grep -q '"msg":"stopped"' "$work/log" || fail "no 'stopped' log line"

# Bad config: a file error names file, line and key; a bad flag names the key.
mkdir -p config
printf '{\n  "workers": "many"\n}\n' > config/default.json
rc=0
"$bin/hello" 2>"$work/err" || rc=$?
[ "$rc" -eq 2 ] || fail "bad config should exit 2, got $rc"
grep -q 'default.json:2' "$work/err" || fail "error lacks file:line: $(cat "$work/err")"
grep -q 'workers' "$work/err" || fail "error lacks key: $(cat "$work/err")"
rm config/default.json
rc=0
"$bin/hello" --workers 0 2>"$work/err" || rc=$?
[ "$rc" -eq 2 ] || fail "out-of-range flag should exit 2, got $rc"
grep -q 'workers' "$work/err" || fail "flag error lacks key"
echo "1 passed, 0 failed"
