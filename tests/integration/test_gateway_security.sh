#!/usr/bin/env bash
# colony gateway route security end to end, with real processes on loopback:
# an echo upstream behind a gateway whose routes carry JWT (HS256 tokens made
# here with Python's hmac, RS256 with the openssl CLI), API keys, CORS, IP
# allow/deny lists and a body limit. Checks the 401/403/413 JSON bodies, that
# X-User-ID/X-User-Role reach the upstream from the token and replace forged
# ones, X-Consumer-ID, preflights answered by the gateway, and the CORS
# headers of actual requests.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK

json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v.get(k)
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"; }

secret=0123456789abcdef0123456789abcdef-gw
# field NAME: the first "NAME":"value" of out.json (the echo's compact JSON)
field() { grep -o "\"$1\":\"[^\"]*\"" out.json | head -1 | sed 's/.*:"//; s/"$//'; }

cd "$work"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl pkey -in rsa.pem -pubout -out rsa.pub
# Every token at once (one Python start): HS256 with $secret (or another
# secret), RS256 through the openssl CLI, alg none.
eval "$(python3 - "$secret" "$(date +%s)" "$work/rsa.pem" "$work/rsa.pub" <<'PY'
import base64, hashlib, hmac, json, subprocess, sys
secret, now, key, pub = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
b = lambda s: base64.urlsafe_b64encode(s).rstrip(b"=").decode()
def tok(claims, header={"alg": "HS256", "kid": "k1"}, key_text=secret):
    m = b(json.dumps(header).encode()) + "." + b(json.dumps(claims).encode())
    if header["alg"] == "none": return m + "."
    if header["alg"] == "RS256":
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=m.encode(),
                             capture_output=True, check=True).stdout
    else:
        sig = hmac.new(key_text.encode(), m.encode(), hashlib.sha256).digest()
    return m + "." + b(sig)
good = {"sub": "u-42", "role": "editor", "iss": "https://auth.example", "aud": "api", "exp": now + 300}
t = {
    "tok": tok(good),
    "rs": tok(good, {"alg": "RS256", "kid": "r1"}),
    "expired": tok(dict(good, exp=now - 120)),
    "early": tok(dict(good, nbf=now + 120)),
    "wrong_iss": tok(dict(good, iss="https://evil")),
    "wrong_aud": tok(dict(good, aud="web")),
    "unknown_kid": tok(good, {"alg": "HS256", "kid": "k7"}),
    "none": tok(good, {"alg": "none", "kid": "k1"}),
    "confused": tok(good, {"alg": "HS256", "kid": "r1"}, open(pub).read()),
    "admin": tok({"sub": "root-1", "role": "admin"}),
}
bad = t["tok"]
t["bad_sig"] = bad[:-8] + ("B" if bad[-8] == "A" else "A") + bad[-7:]
for k, v in t.items(): print(f"{k}='{v}'")
PY
)"
fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
pa=$FIXTURE_PORT
# an upstream that sets CORS headers of its own
cat >cors_upstream.py <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "X-Internal")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print('{"port":%d}' % s.server_address[1], flush=True)
s.serve_forever()
PY
fixture_start cors_up python3 cors_upstream.py
fixture_wait_log_port cors_up "$FIXTURE_PID"
pc=$FIXTURE_PORT

cat >routes.json <<JSON
{
  "upstreams": {"a": {"targets": ["http://127.0.0.1:$pa"]},
                "own-cors": {"targets": ["http://127.0.0.1:$pc"]}},
  "routes": [
    {"name": "jwt", "prefix": "/jwt", "upstream": "a",
     "jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "$secret"},
                      {"kid": "r1", "alg": "RS256", "pem_file": "$work/rsa.pub"}],
             "issuer": "https://auth.example", "audience": "api", "leeway": "30s"}},
    {"name": "admin", "prefix": "/admin", "upstream": "a",
     "jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "$secret"}], "roles": ["admin"]}},
    {"name": "key", "prefix": "/key", "upstream": "a",
     "api_keys": {"keys": {"mobile-0123456789abcdef": "mobile-app"}}},
    {"name": "cors", "prefix": "/cors", "upstream": "a", "methods": ["GET", "PUT"],
     "cors": {"origins": ["https://a.example"], "methods": ["GET", "PUT"],
              "headers": ["Authorization", "Content-Type"], "credentials": true,
              "max_age": "10m", "expose_headers": ["X-Request-ID"]},
     "jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "$secret"}]}},
    {"name": "open-cors", "prefix": "/public", "upstream": "a", "cors": {"origins": ["*"]}},
    {"name": "local", "prefix": "/local", "upstream": "a", "allow": ["127.0.0.0/8", "::1"]},
    {"name": "denied", "prefix": "/denied", "upstream": "a",
     "allow": ["127.0.0.0/8"], "deny": ["127.0.0.1/32"]},
    {"name": "v6", "prefix": "/v6", "upstream": "a", "allow": ["::1"]},
    {"name": "small", "prefix": "/small", "upstream": "a", "max_body": 16},
    {"name": "own-cors", "prefix": "/own", "upstream": "own-cors",
     "cors": {"origins": ["https://a.example"], "expose_headers": ["X-Request-ID"]}},
    {"name": "per-user", "prefix": "/per-user", "upstream": "a",
     "jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "$secret"}]},
     "rate_limit": {"limit": 2, "window": "1m", "key": "jwt:sub"}}
  ]
}
JSON

"$bin/colony" gateway --check routes.json >check.out || fail "--check refused a good file"
sed 's/"max_body": 16/"max_body": "lots"/' routes.json >bad.json
rc=0; "$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check of a bad max_body exited $rc"
line=$(grep -n '"lots"' bad.json | cut -d: -f1)
grep -q "bad.json:$line: routes.8.max_body: " check.err || fail "--check: $(cat check.err)"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT

# code URL [curl args...]: the status code; the body is left in out.json, headers in out.h
code() { curl -sS -o out.json -D out.h -w '%{http_code}' "$@"; }
header() { grep -i "^$1:" out.h | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }

# ---- JWT
[ "$(code -H "Authorization: Bearer $tok" -H 'X-User-ID: admin' -H 'X-User-Role: root' \
  "$url/jwt/me")" = 200 ] || fail "a good HS256 token: $(cat out.json)"
[ "$(field X-User-ID)" = u-42 ] || fail "X-User-ID from the token: $(cat out.json)"
[ "$(field X-User-Role)" = editor ] || fail "X-User-Role: $(cat out.json)"
grep -q '"admin"\|"root"' out.json && fail "a forged identity header reached the upstream: $(cat out.json)"
[ "$(code -H "Authorization: Bearer $rs" "$url/jwt/me")" = 200 ] ||
  fail "a good RS256 token: $(cat out.json)"
[ "$(field X-User-ID)" = u-42 ] || fail "RS256 claims: $(cat out.json)"

expect_401() { # REASON [curl args...]
  local reason=$1; shift
  [ "$(code "$@" "$url/jwt/me")" = 401 ] || fail "expected 401 ($reason): $(cat out.json)"
  [ "$(field error)" = unauthorized ] || fail "401 body: $(cat out.json)"
  field message | grep -q "$reason" || fail "401 reason ($reason): $(cat out.json)"
  [ "$(header WWW-Authenticate)" = Bearer ] || fail "401 without WWW-Authenticate: $(cat out.h)"
}
expect_401 "bearer token is required"
expect_401 "bearer token is required" -H 'X-User-ID: admin'
expect_401 "expired" -H "Authorization: Bearer $expired"
expect_401 "not valid yet" -H "Authorization: Bearer $early"
expect_401 "issuer" -H "Authorization: Bearer $wrong_iss"
expect_401 "audience" -H "Authorization: Bearer $wrong_aud"
expect_401 "kid names no key" -H "Authorization: Bearer $unknown_kid"
expect_401 "algorithm" -H "Authorization: Bearer $none"
# key confusion: the RSA public key's PEM as an HMAC secret
expect_401 "not allowed" -H "Authorization: Bearer $confused"
expect_401 "signature" -H "Authorization: Bearer $bad_sig"

# roles: a valid token without the admin role is 403
[ "$(code -H "Authorization: Bearer $tok" "$url/admin")" = 403 ] || fail "role: $(cat out.json)"
[ "$(field error)" = forbidden ] || fail "403 body: $(cat out.json)"
[ "$(code -H "Authorization: Bearer $admin" "$url/admin")" = 200 ] ||
  fail "admin role: $(cat out.json)"
[ "$(field X-User-Role)" = admin ] || fail "admin X-User-Role: $(cat out.json)"

# rate limit keyed by the verified subject: u-42's third request is refused,
# root-1 has a bucket of its own, and a forged X-User-ID changes nothing
for i in 1 2; do
  [ "$(code -H "Authorization: Bearer $tok" "$url/per-user")" = 200 ] ||
    fail "per-user request $i: $(cat out.json)"
done
[ "$(header RateLimit-Remaining)" = 0 ] || fail "per-user RateLimit-Remaining: $(cat out.h)"
[ "$(code -H "Authorization: Bearer $tok" -H 'X-User-ID: root-1' "$url/per-user")" = 429 ] ||
  fail "u-42 past its limit: $(cat out.json)"
[ "$(code -H "Authorization: Bearer $admin" "$url/per-user")" = 200 ] ||
  fail "root-1 shares u-42's bucket: $(cat out.json)"
[ "$(header RateLimit-Remaining)" = 1 ] || fail "root-1 RateLimit-Remaining: $(cat out.h)"
[ "$(code "$url/per-user")" = 401 ] || fail "per-user without a token: $(cat out.json)"
# a verified token is cached, but never past its exp: the second use, after
# it expired, is refused
exp=$(($(date +%s) + 4))
short=$(python3 - "$secret" "$exp" <<'PY'
import base64, hashlib, hmac, json, sys
b = lambda s: base64.urlsafe_b64encode(s).rstrip(b"=").decode()
m = b(b'{"alg": "HS256", "kid": "k1"}') + "." + b(json.dumps({"sub": "s-1", "exp": int(sys.argv[2])}).encode())
print(m + "." + b(hmac.new(sys.argv[1].encode(), m.encode(), hashlib.sha256).digest()))
PY
)
[ "$(code -H "Authorization: Bearer $short" "$url/per-user")" = 200 ] ||
  fail "short-lived token: $(cat out.json)"
while [ "$(date +%s)" -le "$exp" ]; do sleep 0.2; done # bounded: 5 s at most
[ "$(code -H "Authorization: Bearer $short" "$url/per-user")" = 401 ] ||
  fail "a cached token outlived its exp: $(cat out.json)"
grep -q "expired" out.json || fail "expired cached token: $(cat out.json)"

# ---- API keys
[ "$(code "$url/key")" = 401 ] || fail "no API key: $(cat out.json)"
field message | grep -q "API key is required" || fail "no key body: $(cat out.json)"
[ "$(code -H 'X-API-Key: wrong-0123456789abcdef' "$url/key")" = 401 ] || fail "bad API key"
[ "$(code -H 'X-API-Key: mobile-0123456789abcdef' -H 'X-Consumer-ID: someone-else' "$url/key")" = 200 ] ||
  fail "good API key: $(cat out.json)"
[ "$(field X-Consumer-ID)" = mobile-app ] || fail "X-Consumer-ID: $(cat out.json)"
[ "$(code -H 'X-Consumer-ID: someone-else' "$url/local")" = 200 ] || fail "local: $(cat out.json)"
[ "$(field X-Consumer-ID)" = "" ] || fail "a forged X-Consumer-ID passed: $(cat out.json)"

# ---- CORS: the preflight is answered by the gateway, without a token, even
# for a route whose methods leave out OPTIONS
pre=(-X OPTIONS -H 'Origin: https://a.example' -H 'Access-Control-Request-Method: PUT'
  -H 'Access-Control-Request-Headers: authorization, content-type')
[ "$(code "${pre[@]}" "$url/cors/doc")" = 204 ] || fail "preflight: $(cat out.h out.json)"
[ ! -s out.json ] || fail "preflight has a body (did it reach the upstream?): $(cat out.json)"
[ "$(header Access-Control-Allow-Origin)" = https://a.example ] || fail "preflight origin: $(cat out.h)"
[ "$(header Access-Control-Allow-Credentials)" = true ] || fail "preflight credentials: $(cat out.h)"
[ "$(header Access-Control-Allow-Methods)" = "GET, PUT" ] || fail "preflight methods: $(cat out.h)"
[ "$(header Access-Control-Allow-Headers)" = "Authorization, Content-Type" ] ||
  fail "preflight headers: $(cat out.h)"
[ "$(header Access-Control-Max-Age)" = 600 ] || fail "preflight max age: $(cat out.h)"
[ "$(header Vary)" = Origin ] || fail "preflight Vary: $(cat out.h)"
[ "$(code -X OPTIONS -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: GET' \
  "$url/cors/doc")" = 403 ] || fail "preflight from another origin: $(cat out.json)"
[ -z "$(header Access-Control-Allow-Origin)" ] || fail "a refused origin was allowed: $(cat out.h)"
[ "$(code -X OPTIONS -H 'Origin: https://a.example' -H 'Access-Control-Request-Method: DELETE' \
  "$url/public")" = 403 ] || fail "preflight for DELETE: $(cat out.json)"
field message | grep -q "method is not allowed" || fail "DELETE preflight body: $(cat out.json)"
# the actual request: allowed origin echoed with Vary, exposed headers; still needs its token
[ "$(code -H 'Origin: https://a.example' -H "Authorization: Bearer $tok" "$url/cors/doc")" = 200 ] ||
  fail "CORS request: $(cat out.json)"
[ "$(header Access-Control-Allow-Origin)" = https://a.example ] || fail "CORS origin: $(cat out.h)"
[ "$(header Access-Control-Expose-Headers)" = X-Request-ID ] || fail "CORS expose: $(cat out.h)"
grep -qi '^Vary: Origin' out.h || fail "CORS Vary: $(cat out.h)"
[ "$(code -H 'Origin: https://a.example' "$url/cors/doc")" = 401 ] || fail "CORS without token"
[ "$(header Access-Control-Allow-Origin)" = https://a.example ] || fail "401 without CORS headers: $(cat out.h)"
[ "$(code -H 'Origin: https://evil.example' -H "Authorization: Bearer $tok" "$url/cors/doc")" = 200 ] ||
  fail "other origin request: $(cat out.json)"
[ -z "$(header Access-Control-Allow-Origin)" ] || fail "another origin got CORS headers: $(cat out.h)"
[ "$(code -H 'Origin: https://b.example' "$url/public")" = 200 ] || fail "open CORS: $(cat out.json)"
[ "$(header Access-Control-Allow-Origin)" = '*' ] || fail "open CORS origin: $(cat out.h)"

# the upstream's own Access-Control-* headers give way to the route's
[ "$(code -H 'Origin: https://a.example' "$url/own")" = 200 ] || fail "own-cors: $(cat out.json)"
[ "$(grep -ci '^Access-Control-Allow-Origin:' out.h)" = 1 ] || fail "two CORS origins: $(cat out.h)"
[ "$(header Access-Control-Allow-Origin)" = https://a.example ] || fail "own-cors origin: $(cat out.h)"
[ "$(header Access-Control-Expose-Headers)" = X-Request-ID ] || fail "own-cors expose: $(cat out.h)"

# ---- IP lists (the client is 127.0.0.1)
[ "$(code "$url/local")" = 200 ] || fail "allowed address: $(cat out.json)"
[ "$(code "$url/denied")" = 403 ] || fail "deny wins over allow: $(cat out.json)"
[ "$(field error)" = forbidden ] || fail "403 body: $(cat out.json)"
[ "$(code "$url/v6")" = 403 ] || fail "an IPv6-only allow list let 127.0.0.1 in: $(cat out.json)"

# ---- body limit
[ "$(code -d '0123456789' "$url/small")" = 200 ] || fail "small body: $(cat out.json)"
[ "$(code -d '0123456789abcdefXYZ' "$url/small")" = 413 ] || fail "large body: $(cat out.json)"
[ "$(field error)" = payload_too_large ] || fail "413 body: $(cat out.json)"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC after SIGTERM"
echo "ok"
