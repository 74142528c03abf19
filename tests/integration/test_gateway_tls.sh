#!/usr/bin/env bash
# colony gateway with a TLS listener (routes file "listeners"): certificates for
# a.test and b.test made now with the openssl CLI. SNI picks the certificate
# (curl --resolve --cacert for both names; openssl s_client for the subject),
# the upstream sees X-Forwarded-Proto https and Forwarded proto=https (http on
# the plain listener), TLS 1.1 is refused with a protocol_version alert, plain
# HTTP on the TLS port gets a plain 400, a 1 MiB upload and a 20 MiB download
# go through whole, certificate files that do not load are refused by --check
# and by a reload with file, line, key and reason, and a reload replaces the
# certificates for new connections.
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
for n in a.test b.test c.test; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key \
    -out $n.pem -days 2 -subj "/CN=$n" -addext "subjectAltName=DNS:$n" >/dev/null 2>&1 ||
    fail "openssl could not make a certificate for $n"
done
cat a.test.pem b.test.pem c.test.pem >cas.pem
echo "not a certificate" >garbage.pem

fixture_start_listening up "$bin/echo_server" --name up --listen 127.0.0.1:0
pu=$FIXTURE_PORT
tp=$(fixture_free_port)

# routes FIRST_CERT SECOND_CERT [SECOND_KEY]: writes routes.json
routes() {
  cat >routes.json <<JSON
{
  "upstreams": {"up": {"targets": ["http://127.0.0.1:$pu"]}},
  "routes": [{"prefix": "/", "upstream": "up"}],
  "listeners": [
    {"listen": "127.0.0.1:$tp",
     "tls": {"certificates": [
       {"cert": "$work/$1.pem", "key": "$work/$1.key"},
       {"cert": "$work/$2.pem",
        "key": "$work/${3:-$2.key}"}
     ]}}
  ]
}
JSON
}

# --check: a good file passes; files that do not load are refused with the
# file, line, key and reason
routes a.test b.test
"$bin/colony" gateway --check routes.json >check.out || fail "--check refused a good file"
check_refused() { # PATTERN: --check of routes.json fails and says PATTERN
  local rc=0
  "$bin/colony" gateway --check routes.json 2>check.err || rc=$?
  [ "$rc" = 2 ] || fail "--check exited $rc for $(cat routes.json)"
  grep -q -- "$1" check.err || fail "--check said: $(cat check.err) (wanted $1)"
}
routes a.test b.test a.test.key
line=$(grep -n '"key": "'"$work"'/a.test.key"' routes.json | tail -1 | cut -d: -f1)
check_refused "routes.json:$line: listeners.0.tls.certificates.1.key: key file '$work/a.test.key': does not match the certificate"
routes a.test missing
line=$(grep -n 'missing.pem' routes.json | cut -d: -f1)
check_refused "routes.json:$line: listeners.0.tls.certificates.1.cert: certificate file '$work/missing.pem': No such file or directory"
routes a.test garbage b.test.key
line=$(grep -n 'garbage.pem' routes.json | cut -d: -f1)
check_refused "routes.json:$line: listeners.0.tls.certificates.1.cert: certificate file '$work/garbage.pem'"
sed 's/"certificates"/"certs"/' routes.json >x && mv x routes.json
check_refused 'listeners.0.tls.certs: unknown key "certs"'
cat >routes.json <<JSON
{"upstreams": {"up": {"targets": ["http://127.0.0.1:$pu"]}},
 "routes": [{"prefix": "/", "upstream": "up"}],
 "listeners": [{"listen": "127.0.0.1:$tp", "tls": {"certificates": []}}]}
JSON
check_refused "listeners.0.tls.certificates: \"certificates\" must be an array of 1 to"

routes a.test b.test
fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
port=$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=$FIXTURE_PORT
grep -q '"msg":"proxy listening".*"address":"127.0.0.1:'"$tp"'".*"protocol":"https".*"certificates":2' \
  "$work/gw.log" || fail "the TLS listener did not log"

# each name gets its certificate (curl verifies it against the CA bundle)
for n in a.test b.test; do
  curl -fsSv --resolve "$n:$tp:127.0.0.1" --cacert cas.pem "https://$n:$tp/hello?x=1" \
    >out.json 2>curl.err || fail "curl https://$n: $(cat curl.err)"
  grep -q "subject: CN=$n" curl.err || fail "$n: wrong certificate: $(grep subject curl.err)"
  grep -q "ALPN.*http/1.1" curl.err || fail "$n: no ALPN http/1.1"
  [ "$(json path <out.json)" = /hello ] || fail "$n: $(cat out.json)"
  [ "$(json headers.X-Forwarded-Proto <out.json)" = https ] || fail "X-Forwarded-Proto: $(cat out.json)"
  json headers.Forwarded <out.json | grep -q 'proto=https' || fail "Forwarded: $(cat out.json)"
done
subject() { # NAME: the subject of the certificate the server sends for SNI NAME (or none)
  openssl s_client -connect "127.0.0.1:$tp" ${1:+-servername "$1"} </dev/null 2>/dev/null |
    openssl x509 -noout -subject
}
subject b.test | grep -q 'CN = b.test' || fail "s_client b.test: $(subject b.test)"
subject unknown.test | grep -q 'CN = a.test' || fail "an unknown name did not get the default"
subject "" | grep -q 'CN = a.test' || fail "no SNI did not get the default"

# keep-alive and pipelining over TLS through the gateway
out=$(curl -fsS --resolve "a.test:$tp:127.0.0.1" --cacert cas.pem \
  "https://a.test:$tp/one" "https://a.test:$tp/two" -w '%{num_connects}\n')
[ "$(grep -c '"instance"' <<<"$out")" = 2 ] || fail "two requests: $out"

# a 1 MiB upload and a 20 MiB streamed download through the TLS listener
head -c 1048576 /dev/zero | tr '\0' u >up.bin
r=$(curl -fsS --resolve "a.test:$tp:127.0.0.1" --cacert cas.pem --data-binary @up.bin \
  "https://a.test:$tp/upload") || fail "upload over TLS"
[ "$(json body <<<"$r" | tr -d '\n' | wc -c)" = 1048576 ] || fail "upload: the body came back cut"
n=$(curl -fsS --resolve "a.test:$tp:127.0.0.1" --cacert cas.pem \
  "https://a.test:$tp/big?bytes=20971520" | wc -c) || fail "download over TLS"
[ "$n" = 20971520 ] || fail "download over TLS: $n bytes"

# the plain listener still says http
r=$(curl -fsS "http://127.0.0.1:$port/p")
[ "$(json headers.X-Forwarded-Proto <<<"$r")" = http ] || fail "plain X-Forwarded-Proto: $r"

# TLS 1.1 refused by the server (the client allows it at security level 0)
rc=0
openssl s_client -connect "127.0.0.1:$tp" -servername a.test -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
  </dev/null >s11.out 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "TLS 1.1 was accepted"
grep -q -i "protocol version" s11.out || fail "TLS 1.1: $(cat s11.out)"

# plain HTTP on the TLS port: a plain 400 that says why, then the close
code=$(curl -s -o plain.json -w '%{http_code}' "http://127.0.0.1:$tp/") || true
[ "$code" = 400 ] || fail "plain HTTP on the TLS port answered $code"
grep -q "plain HTTP request sent to a TLS port" plain.json || fail "plain: $(cat plain.json)"

# a reload with a bad certificate is refused and the old ones keep serving
routes a.test b.test a.test.key
code=$(curl -s -o reload.json -w '%{http_code}' -X POST "http://127.0.0.1:$admin/gateway/reload")
[ "$code" = 400 ] || fail "bad reload answered $code"
grep -q "listeners.0.tls.certificates.1.key" reload.json || fail "reload: $(cat reload.json)"
subject b.test | grep -q 'CN = b.test' || fail "a refused reload changed the certificates"
# a good reload replaces them for new connections (c.test is now the default)
routes c.test b.test
code=$(curl -s -o reload.json -w '%{http_code}' -X POST "http://127.0.0.1:$admin/gateway/reload")
[ "$code" = 200 ] || fail "reload answered $code: $(cat reload.json)"
subject a.test | grep -q 'CN = c.test' || fail "after reload: $(subject a.test)"
subject b.test | grep -q 'CN = b.test' || fail "after reload b: $(subject b.test)"
curl -fsS --resolve "c.test:$tp:127.0.0.1" --cacert cas.pem "https://c.test:$tp/z" >/dev/null ||
  fail "c.test after reload"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC"
echo "1 passed, 0 failed"
