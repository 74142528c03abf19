#!/usr/bin/env bash
# examples/gateway/routes.json, the seed's Node.js gateway as a routes file,
# through a real gateway: services found in the registry, login and the
# product list open, JWT everywhere else with X-User-ID / X-User-Role from the
# token, writes to products for admins only, 100 requests per 15 minutes per
# client with RateLimit-* headers and then 429.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"

"$BIN/colony" gateway --check "$root/examples/gateway/routes.json" >/dev/null ||
  fail "the seed's routes file does not pass --check"

fixture_start_registry reg
fixture_start_listening shop "$BIN/echo_server" --name shop --listen 127.0.0.1:0
shop=$FIXTURE_PORT
for svc in users products orders payments; do
  curl -fsS -X PUT -d "{\"Name\": \"$svc\", \"ID\": \"$svc-1\", \"Address\": \"127.0.0.1\", \"Port\": $shop}" \
    "$REGISTRY_URL/v1/agent/service/register" >/dev/null || fail "register $svc"
done
FIXTURE_PORT_PATTERN='"msg":"proxy listening".*"port":[0-9]*' \
  fixture_start_listening gw "$BIN/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$root/examples/gateway/routes.json" --registry "$REGISTRY_URL" --access-log=false
url=http://127.0.0.1:$FIXTURE_PORT
ok=
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/products/1")" = 200 ] && { ok=1; break; }
  sleep 0.02
done
[ -n "$ok" ] || fail "the product list was not routed to the registered service"

token() { # token SUB ROLE: an HS256 JWT signed with the seed's secret
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "shop"}).encode())
body = b64(json.dumps({"sub": sys.argv[1], "role": sys.argv[2], "exp": int(time.time()) + 600}).encode())
secret = b"change-me: the shop's JWT secret, 32 bytes or more"
sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
customer=$(token u1 customer)
admin=$(token a1 admin)
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

t0=$(date +%s) # the client's bucket starts full here
[ "$(code -X POST -d '{}' "$url/api/users/login")" = 200 ] || fail "login needs no token"
[ "$(code "$url/api/orders/1")" = 401 ] || fail "orders without a token"
r=$(curl -fsS -H "Authorization: Bearer $customer" -H 'X-User-ID: forged' "$url/api/orders/1")
grep -q '"X-User-ID":"u1"' <<<"$r" && grep -q '"X-User-Role":"customer"' <<<"$r" ||
  fail "identity headers from the token: $r"
[ "$(code -X POST -H "Authorization: Bearer $customer" -d x "$url/api/products")" = 403 ] ||
  fail "a customer wrote a product"
[ "$(code -X POST -H "Authorization: Bearer $admin" -d x "$url/api/products")" = 200 ] ||
  fail "an admin could not write a product"
curl -sI "$url/api/products/1" | grep -i '^RateLimit-Limit: 100' >/dev/null || fail "no RateLimit-Limit: 100"

# 100 per 15 minutes per client: within the next 100 requests the 429s begin
codes=$(for i in $(seq 1 100); do code "$url/api/products/$i"; echo; done)
n200=$(grep -c '^200$' <<<"$codes" || true)
n429=$(grep -c '^429$' <<<"$codes" || true)
[ "$n429" -gt 0 ] && [ $((n200 + n429)) -eq 100 ] || fail "rate limit: $n200 x 200, $n429 x 429"
# A token bucket: 100 per 15 minutes refills one every 9 s, so a slow run
# (ASan on a loaded machine) earns a few more; more than that is a leak.
refilled=$(( ($(date +%s) - t0) / 9 + 1 ))
[ "$n200" -le $((95 + refilled)) ] ||
  fail "more than 100 requests passed in the window: $n200 after 7 others ($refilled refilled)"
# A 429 carries Retry-After. On a slow run a refilled token may let the first
# request after the loop through: ask until a 429 comes (one token per 9 s).
retry_after=
for _ in 1 2 3; do
  h=$(curl -s -D - -o /dev/null "$url/api/products/x")
  grep -q '^HTTP/1.1 429' <<<"$h" || continue
  retry_after=$(grep -i '^Retry-After: [0-9]' <<<"$h" || true)
  break
done
[ -n "$retry_after" ] || fail "no 429 with Retry-After: $h"
echo "1 passed, 0 failed"
