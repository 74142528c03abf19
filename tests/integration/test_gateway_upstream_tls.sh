#!/usr/bin/env bash
# colony gateway, TLS to upstreams beyond plain https (issue 8):
# - active health checks of an https upstream speak TLS and verify it as the
#   proxy does: an instance killed with -9 is ejected by its check alone (no
#   client traffic) and comes back when it listens again; an instance whose
#   certificate the gateway does not trust goes down with the reason in
#   /gateway/stats (down_reason);
# - client certificates (mTLS): an upstream that requires one is served with
#   tls.cert/tls.key (the probe presents it too) and is a 502 whose JSON body
#   says TLS failed without it; --check names file, line and reason of a
#   missing certificate and of a key that is not the certificate's;
# - registry instances marked https (Meta "scheme": "https", or the tag
#   "https") are proxied over TLS next to plain ones of the same service.
# The https upstreams are tests/support/tls_upstream.py with throwaway
# certificates made now with the openssl CLI.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK
server=$(cd "$(dirname "$0")/../support" && pwd)/tls_upstream.py

# field NAME: the first string or number value of key NAME in the JSON on stdin
field() { grep -o "\"$1\": *\(\"[^\"]*\"\|[0-9]*\)" | head -1 | sed 's/^"[^"]*": *//; s/^"//; s/"$//' || true; }

cd "$work"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
mkca() { # mkca NAME: a CA certificate NAME.pem with key NAME.key
  openssl req -x509 $ec -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign >/dev/null 2>&1 ||
    fail "openssl could not make the CA $1"
}
mkcert() { # mkcert NAME CA CN SAN: NAME.pem and NAME.key signed by CA
  openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" >/dev/null 2>&1 ||
    fail "openssl could not make the key $1"
  printf '%s\n' "$4" >"$1.cnf"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
    -days 2 -extfile "$1.cnf" >/dev/null 2>&1 || fail "openssl could not sign $1"
}
mkca ca
mkca clients
mkcert up ca up.test 'subjectAltName=DNS:up.test,IP:127.0.0.1'
mkcert gw clients gateway-client 'extendedKeyUsage=clientAuth'
# fake: self-signed, for the right names, of a CA the gateway does not know
openssl req -x509 $ec -keyout fake.key -out fake.pem -days 2 -subj /CN=up.test \
  -addext subjectAltName=DNS:up.test,IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl: fake"

# https upstreams: a and b (trusted), fake (self-signed), mtls
# (requires a client certificate of the clients CA)
tls_start() { # tls_start NAME CERT [PORT] [CLIENT_CA]
  FIXTURE_PORT_PATTERN='"msg": "listening", "port": [0-9]*' \
    fixture_start_listening "$1" python3 "$server" "$1" "$work/$2.pem" "$work/$2.key" "${3:-0}" \
    ${4:+"$work/$4.pem"}
}
tls_start a up
pa=$FIXTURE_PORT
tls_start b up
pb=$FIXTURE_PORT
tls_start fake fake
pf=$FIXTURE_PORT
tls_start mtls up 0 clients
pm=$FIXTURE_PORT
fixture_start_listening echo "$bin/echo_server" --name echo --listen 127.0.0.1:0
pe=$FIXTURE_PORT
fixture_start_registry reg

active='"active": {"path": "/probe", "interval": "300ms", "timeout": "300ms",
                   "healthy_threshold": 2, "unhealthy_threshold": 2}'
tls="\"ca_file\": \"$work/ca.pem\", \"server_name\": \"up.test\""
cat >routes.json <<JSON
{
  "upstreams": {
    "hc": {"targets": ["https://127.0.0.1:$pa", "https://127.0.0.1:$pb"],
           "strategy": "round_robin", "tls": {$tls},
           "health": {"consecutive_failures": 0, $active}},
    "untrusted": {"targets": ["https://127.0.0.1:$pf"], "tls": {$tls},
                  "health": {"consecutive_failures": 0, $active}},
    "mtls": {"targets": ["https://127.0.0.1:$pm"],
             "tls": {$tls, "cert": "$work/gw.pem", "key": "$work/gw.key"},
             "health": {"consecutive_failures": 0, $active}},
    "nocert": {"targets": ["https://127.0.0.1:$pm"], "tls": {$tls},
               "health": {"consecutive_failures": 0}},
    "marked": {"service": "mixed", "strategy": "round_robin",
               "tls": {$tls, "instances": "marked"}},
    "tagged": {"service": "tagged"}
  },
  "routes": [
    {"prefix": "/hc", "upstream": "hc"},
    {"prefix": "/mtls", "upstream": "mtls"},
    {"prefix": "/nocert", "upstream": "nocert"},
    {"prefix": "/marked", "upstream": "marked"},
    {"prefix": "/tagged", "upstream": "tagged"}
  ]
}
JSON
"$bin/colony" gateway --check routes.json >/dev/null || fail "--check refused a good file"

# --check: a missing client certificate, and a key that is not the certificate's
sed "s|$work/gw.pem|$work/none.pem|" routes.json >bad1.json
rc=0
"$bin/colony" gateway --check bad1.json 2>check.err || rc=$?
line=$(grep -n 'none.pem' bad1.json | cut -d: -f1)
[ "$rc" = 2 ] && grep -q "bad1.json:$line: upstreams.mtls.tls.cert: client certificate '$work/none.pem': No such file" check.err ||
  fail "--check of a missing certificate ($rc): $(cat check.err)"
sed "s|$work/gw.key|$work/fake.key|" routes.json >bad2.json
rc=0
"$bin/colony" gateway --check bad2.json 2>check.err || rc=$?
line=$(grep -n 'fake.key' bad2.json | cut -d: -f1)
[ "$rc" = 2 ] && grep -q "bad2.json:$line: upstreams.mtls.tls.key: client key '$work/fake.key' does not match the certificate" check.err ||
  fail "--check of a key that is not the certificate's ($rc): $(cat check.err)"
printf 'not a key\n' >junk.key
sed "s|$work/gw.key|$work/junk.key|" routes.json >bad3.json
rc=0
"$bin/colony" gateway --check bad3.json 2>check.err || rc=$?
[ "$rc" = 2 ] && grep -q "upstreams.mtls.tls.key: client key '$work/junk.key' is not a PEM private key" check.err ||
  fail "--check of a key that is no key ($rc): $(cat check.err)"

# registry: service "mixed" has an https instance (Meta scheme=https) and a
# plain one; "tagged" has one https instance marked by its tag
reg() { curl -fsS -X PUT "$REGISTRY_URL/v1/agent/service/register" -d "$1" >/dev/null || fail "register $1"; }
reg "{\"Name\": \"mixed\", \"ID\": \"m-tls\", \"Address\": \"127.0.0.1\", \"Port\": $pb, \"Meta\": {\"scheme\": \"https\"}}"
reg "{\"Name\": \"mixed\", \"ID\": \"m-plain\", \"Address\": \"127.0.0.1\", \"Port\": $pe}"
reg "{\"Name\": \"tagged\", \"ID\": \"t-tls\", \"Address\": \"127.0.0.1\", \"Port\": $pb, \"Tags\": [\"https\"]}"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json" --registry "$REGISTRY_URL" --workers 2
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT

stats() { curl -fsS "$admin/gateway/stats"; }
# instance PORT: its JSON object in /gateway/stats
instance() { stats | grep -o "{[^{}]*\"address\":\"127.0.0.1:$1\"[^{}]*}" | head -1; }
is_down() { instance "$1" | grep -q '"down":true'; }
is_up() { instance "$1" | grep -q '"down":false'; }
# wait_for SECONDS CMD...: polls CMD every 100 ms
wait_for() {
  local n=$(($1 * 10)) i
  for ((i = 0; i < n; i++)); do "${@:2}" && return 0; sleep 0.1; done
  return 1
}
# probed PORT N [curl options]: the https upstream on PORT served /probe N times or more
probed() {
  local n
  n=$(curl -fsS --cacert "$work/ca.pem" --resolve "up.test:$1:127.0.0.1" "${@:3}" \
    "https://up.test:$1/counts" | field /probe)
  [ "${n:-0}" -ge "$2" ]
}

# ---- active checks over TLS: a and b are probed (over TLS: they speak
# nothing else) and in rotation
wait_for 10 probed "$pa" 2 || fail "a was not probed over TLS"
wait_for 5 probed "$pb" 2 || fail "b was not probed over TLS"
is_up "$pa" && is_up "$pb" || fail "a and b not in rotation: $(stats)"
curl -fsS "$url/hc/x" | grep -q '"server": "[ab]"' || fail "GET /hc"

# a killed: ejected by the check alone (no request through the gateway)
kill -9 "$PID_a"
fixture_wait "$PID_a"
t0=$(date +%s%N)
wait_for 10 is_down "$pa" || fail "a killed, still in rotation: $(stats)"
echo "a ejected by its check after $((($(date +%s%N) - t0) / 1000000)) ms"
instance "$pa" | grep -q '"down_reason":"HTTP GET https://127.0.0.1:'"$pa"'/probe: connection refused' ||
  fail "no reason for a's ejection: $(instance "$pa")"
for i in 1 2 3 4; do
  curl -fsS "$url/hc/k$i" | grep -q '"server": "b"' || fail "request $i did not go to b"
done
# a back on the same port: in rotation again without a request
tls_start a up "$pa"
t0=$(date +%s%N)
wait_for 10 is_up "$pa" || fail "a is back but not in rotation: $(stats)"
echo "a back in rotation after $((($(date +%s%N) - t0) / 1000000)) ms"
instance "$pa" | grep -q down_reason && fail "a passes but keeps a reason: $(instance "$pa")"
seen=
for i in 1 2 3 4; do seen+=$(curl -fsS "$url/hc/r$i" | field server); done
[[ "$seen" == *a* && "$seen" == *b* ]] || fail "a and b not both served after a came back: $seen"

# a certificate the gateway does not trust: down, and the reason says why
wait_for 10 is_down "$pf" || fail "the untrusted instance is in rotation: $(stats)"
instance "$pf" | grep -q '"down_reason":"HTTP GET https://127.0.0.1:'"$pf"'/probe: TLS failed: certificate verify failed (self-signed certificate)' ||
  fail "no TLS reason for the untrusted instance: $(instance "$pf")"

# ---- client certificates: served with one (the upstream saw its CN), the
# probe presented it too; without one, a 502 that says TLS failed
out=$(curl -fsS "$url/mtls/who") || fail "GET /mtls with a client certificate"
[ "$(field client_cn <<<"$out")" = gateway-client ] || fail "mTLS: $out"
wait_for 10 probed "$pm" 2 --cert "$work/gw.pem" --key "$work/gw.key" ||
  fail "the mTLS upstream was not probed with the client certificate"
is_up "$pm" || fail "the mTLS upstream's check failed: $(instance "$pm")"
code=$(curl -sS -o out.json -w '%{http_code}' "$url/nocert/who")
[ "$code" = 502 ] || fail "no client certificate: $code $(cat out.json)"
grep -q '"error":"bad_gateway"' out.json && grep -q 'upstream TLS failed: ' out.json ||
  fail "the 502 does not say TLS failed: $(cat out.json)"
echo "without a client certificate: $(cat out.json)"

# ---- registry instances marked https, next to a plain one
seen=
for i in 1 2 3 4; do
  out=$(curl -fsS "$url/marked/m$i") || fail "GET /marked $i"
  if [ "$(field server <<<"$out")" = b ]; then seen+=T; else
    grep -q "\"path\": *\"/marked/m$i\"" <<<"$out" || fail "marked: $out"
    seen+=P
  fi
done
[[ "$seen" == *T* && "$seen" == *P* ]] || fail "the https and the plain instance were not both served: $seen"
# a tagged instance without "tls" on its upstream: TLS against the system
# store, which does not know the test CA
code=$(curl -sS -o out.json -w '%{http_code}' "$url/tagged/x")
[ "$code" = 502 ] && grep -q 'upstream TLS failed: certificate verify failed' out.json ||
  fail "the tagged instance was not reached over TLS: $code $(cat out.json)"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "the gateway exited $FIXTURE_RC"
echo "ok"
