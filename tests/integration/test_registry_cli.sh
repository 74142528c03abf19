#!/usr/bin/env bash
# colony kv and colony services against a real registry on a free loopback port.
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
if "$BIN/colony" services --registry http://127.0.0.1:1 2>/dev/null; then fail "expected failure"; fi
echo "1 passed, 0 failed"
