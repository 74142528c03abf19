#!/usr/bin/env bash
# colony gateway end to end, with real processes on loopback: two echo
# upstreams and a gateway in front of them. Routing and rewriting, the
# forwarding headers, identity headers stripped, weighted splits, retries on
# another instance, 502/503/504 with JSON bodies, --check, reloads (admin API,
# file change, SIGHUP) with a bad file refused while the old routes keep
# serving, and a clean exit on SIGTERM.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK

# json FIELD: reads a JSON document on stdin and prints one field (a.b.c;
# a number indexes a list), Python's way: None, True, False. With jq when it
# is there: under a load of 12 each python3 start took about 2 s, and the
# forty of them were most of this test's time (it neared ctest's 120 s).
if command -v jq >/dev/null; then
  json() { jq -r --arg p "$1" 'getpath($p | split(".") | map(tonumber? // .))
    | if . == null then "None" elif . == true then "True" elif . == false then "False"
      elif type == "object" or type == "array" then tojson else . end'; }
else
  json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v.get(k)
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"; }
fi

cd "$work"
fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
pa=$FIXTURE_PORT
fixture_start_listening b "$bin/echo_server" --name b --listen 127.0.0.1:0
pb=$FIXTURE_PORT
fixture_start_registry reg
# a port with nothing behind it: connections are refused
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# an instance that reads each request and closes without answering: the
# request reached it, so only an idempotent one may be retried elsewhere
cat >closer.py <<'PY'
import socket
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(16)
print('{"port":%d}' % l.getsockname()[1], flush=True)
while True:
    c, _ = l.accept()
    c.recv(65536)
    c.close()
PY
fixture_start_listening closer python3 closer.py
pclose=$FIXTURE_PORT

cat >routes.json <<JSON
{
  "upstreams": {
    "a": {"targets": ["http://127.0.0.1:$pa"]},
    "b": {"targets": ["http://127.0.0.1:$pb"]},
    "flaky": {"targets": ["http://127.0.0.1:$dead", "http://127.0.0.1:$pa"],
              "strategy": "round_robin"},
    "post": {"targets": ["http://127.0.0.1:$pclose", "http://127.0.0.1:$pa"],
             "strategy": "round_robin", "health": {"consecutive_failures": 0}},
    "post-refused": {"targets": ["http://127.0.0.1:$dead", "http://127.0.0.1:$pa"],
                     "strategy": "round_robin", "health": {"consecutive_failures": 0}},
    "down": {"targets": ["http://127.0.0.1:$dead"]},
    "reg": {"service": "registered"}
  },
  "routes": [
    {"name": "users", "prefix": "/api/users", "upstream": "a", "strip_prefix": true},
    {"name": "users-v2", "prefix": "/api/users", "headers": {"X-Version": "2"}, "upstream": "b"},
    {"name": "user", "pattern": "/u/:id", "rewrite": "/users/:id/profile", "upstream": "a"},
    {"name": "canary", "prefix": "/split",
     "split": [{"upstream": "a", "weight": 80}, {"upstream": "b", "weight": 20}]},
    {"name": "flaky", "prefix": "/flaky", "upstream": "flaky",
     "retries": {"attempts": 2, "on": ["connect", "503"]}},
    {"name": "post", "prefix": "/post", "upstream": "post", "retries": {"attempts": 2}},
    {"name": "post-refused", "prefix": "/refused", "upstream": "post-refused",
     "retries": {"attempts": 2}},
    {"name": "down", "prefix": "/down", "upstream": "down"},
    {"name": "slow", "prefix": "/slow", "upstream": "a", "timeouts": {"try": "200ms"}},
    {"name": "exact", "path": "/health-of-a", "rewrite": "/health", "upstream": "a"},
    {"name": "reg", "prefix": "/reg", "strip_prefix": true, "upstream": "reg"}
  ]
}
JSON

# --check: a good file passes, a bad one names file, line and reason
"$bin/colony" gateway --check routes.json >check.out || fail "--check refused a good file"
sed 's/"strip_prefix": true/"strip_prefx": true/' routes.json >bad.json
rc=0; "$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check of a bad file exited $rc"
line=$(grep -n strip_prefx bad.json | cut -d: -f1)
grep -q "bad.json:$line: routes.0.strip_prefx: unknown key" check.err || fail "--check: $(cat check.err)"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json" --registry "$REGISTRY_URL"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
port=$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=$FIXTURE_PORT
url=http://127.0.0.1:$port

# routing, strip_prefix, rewrite, the query kept
r=$(curl -fsS "$url/api/users/7?x=1")
[ "$(json instance <<<"$r")" = a ] || fail "users: $r"
[ "$(json path <<<"$r")" = /7 ] || fail "strip_prefix: $r"
[ "$(json query <<<"$r")" = x=1 ] || fail "query: $r"
r=$(curl -fsS -H 'X-Version: 2' "$url/api/users/7")
[ "$(json instance <<<"$r")" = b ] || fail "header route: $r"
[ "$(json path <<<"$r")" = /api/users/7 ] || fail "header route path: $r"
r=$(curl -fsS "$url/u/42")
[ "$(json path <<<"$r")" = /users/42/profile ] || fail "rewrite: $r"
r=$(curl -fsS "$url/api/users/../users/9")
[ "$(json path <<<"$r")" = /9 ] || fail "path not normalized: $r"
r=$(curl -fsS "$url/health-of-a")
grep -q '"status":"healthy"' <<<"$r" || fail "exact route rewrite: $r"

# forwarding headers; forged identity headers never reach the upstream
r=$(curl -fsS -H 'X-User-ID: admin' -H 'X-User-Role: root' -H 'X-Forwarded-For: 10.9.9.9' \
  -H 'X-Request-ID: req-123' -H 'Connection: keep-alive, X-Secret' -H 'X-Secret: s' "$url/api/users/1")
[ "$(json headers.X-User-ID <<<"$r")" = None ] || fail "X-User-ID forwarded: $r"
[ "$(json headers.X-User-Role <<<"$r")" = None ] || fail "X-User-Role forwarded: $r"
[ "$(json headers.X-Secret <<<"$r")" = None ] || fail "a Connection-named header forwarded: $r"
[ "$(json headers.X-Forwarded-For <<<"$r")" = "10.9.9.9, 127.0.0.1" ] || fail "X-Forwarded-For: $r"
[ "$(json headers.X-Forwarded-Proto <<<"$r")" = http ] || fail "X-Forwarded-Proto: $r"
[ "$(json headers.X-Forwarded-Host <<<"$r")" = "127.0.0.1:$port" ] || fail "X-Forwarded-Host: $r"
[ "$(json headers.Host <<<"$r")" = "127.0.0.1:$pa" ] || fail "Host: $r"
[ "$(json headers.X-Request-ID <<<"$r")" = req-123 ] || fail "X-Request-ID kept: $r"
[[ "$(json headers.Forwarded <<<"$r")" == for=127.0.0.1\;host=* ]] || fail "Forwarded: $r"
r=$(curl -fsS "$url/api/users/1")
[ "$(json headers.X-Request-ID <<<"$r" | wc -c)" = 33 ] || fail "X-Request-ID generated: $r"
# the body and method go through
r=$(curl -fsS -X PUT -d 'hello=1' "$url/api/users/5")
[ "$(json method <<<"$r")" = PUT ] && [ "$(json body <<<"$r")" = hello=1 ] || fail "PUT body: $r"

# the gateway's span continues the client's trace: same trace id, new parent
r=$(curl -fsS -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
  -H 'tracestate: vendor=x' "$url/api/users/t")
tp=$(json headers.traceparent <<<"$r")
[[ "$tp" =~ ^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$ ]] || fail "traceparent: $tp"
[ "${tp:36:16}" != 00f067aa0ba902b7 ] || fail "the gateway did not put its own span in: $tp"
[ "$(json headers.tracestate <<<"$r")" = vendor=x ] || fail "tracestate not passed on: $r"
tp=$(curl -fsS "$url/api/users/t" | json headers.traceparent)
[[ "$tp" =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$ ]] || fail "no traceparent started: $tp"
grep -q '"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"' gw.log || fail "access log without trace_id"

# errors are JSON with the status a proxy user expects
code=$(curl -s -o nf.json -w '%{http_code}' "$url/nowhere")
[ "$code" = 404 ] && grep -q '"error":"not_found"' nf.json || fail "404: $code $(cat nf.json)"
code=$(curl -s -o bad.out -w '%{http_code}' "$url/..%2f..%2fetc")
[ "$code" = 400 ] || [ "$code" = 404 ] || fail "escaped path: $code"
code=$(curl -s -o down.json -w '%{http_code}' "$url/down/x")
[ "$code" = 502 ] && grep -q '"error":"bad_gateway"' down.json || fail "502: $code $(cat down.json)"
code=$(curl -s -o slow.json -w '%{http_code}' "$url/slow?delay=2000")
[ "$code" = 504 ] && grep -q '"error":"gateway_timeout"' slow.json || fail "504: $code $(cat slow.json)"
code=$(curl -s -o s503.json -w '%{http_code}' "$url/api/users/x?status=503")
[ "$code" = 503 ] || fail "an upstream's own 503 passes through: $code"

# clients that leave before the answer do not count against the instance
for i in 1 2 3 4 5 6 7; do
  curl -s -o /dev/null --max-time 0.1 "$url/api/users/left?delay=400" || true
done
sleep 0.5
stats=$(curl -fsS "http://127.0.0.1:$admin/gateway/stats")
[ "$(json upstreams.0.name <<<"$stats")" = a ] || fail "stats order: $stats"
[ "$(json upstreams.0.instances.0.ejected <<<"$stats")" = False ] ||
  fail "clients that left got the instance ejected: $stats"
curl -fsS "$url/api/users/after" >/dev/null || fail "instance unusable after clients left"

# retries: the dead target refuses, the GET is retried on the live one
for i in $(seq 1 6); do
  r=$(curl -fsS "$url/flaky/$i") || fail "flaky GET $i failed"
  [ "$(json instance <<<"$r")" = a ] || fail "flaky: $r"
done
stats=$(curl -fsS "http://127.0.0.1:$admin/gateway/stats")
[ "$(json retries <<<"$stats")" -ge 5 ] || fail "retries not counted: $stats"
# after 5 refusals in a row the dead target is ejected (passive health)
[ "$(json upstreams.2.name <<<"$stats")" = flaky ] || fail "stats order: $stats"
[ "$(json upstreams.2.instances.0.ejected <<<"$stats")" = True ] || fail "not ejected: $stats"
# a POST that reached an instance is not retried: round robin sends one of
# two to the instance that closes without answering
codes=
for i in 1 2; do codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$url/post/$i")"; done
grep -q 502 <<<"$codes" || fail "a POST was retried (non-idempotent): $codes"
# but one refused at connect is: the instance saw nothing
for i in 1 2; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$url/refused/$i")" = 200 ] ||
    fail "a POST refused at connect was not retried"
done
for i in 1 2; do curl -fsS "$url/post/get$i" >/dev/null || fail "GETs are retried on /post"; done

# a weighted split sends about 80% to a
urls=(); for i in $(seq 1 200); do urls+=("$url/split"); done
na=$(curl -fsS "${urls[@]}" | grep -o '"instance":"a"' | wc -l)
nb=$(curl -fsS "${urls[@]}" | grep -o '"instance":"b"' | wc -l)
[ "$na" -ge 130 ] && [ "$na" -le 190 ] || fail "split sent $na of 200 to a (expected ~160)"
[ "$nb" -ge 10 ] && [ "$nb" -le 70 ] || fail "split sent $nb of 200 to b (expected ~40)"

# metrics
m=$(curl -fsS "http://127.0.0.1:$admin/metrics")
grep -q 'gateway_requests_total{route="users",code="200",upstream="a"}' <<<"$m" || fail "metrics"

# reload: a bad file is refused with its line, and the old routes keep serving
sed 's/"prefix": "\/api\/users", "upstream": "a"/"prefix": "\/api\/people", "upstream": "nobody"/' \
  routes.json >routes.next
cp routes.json routes.good
cp routes.next routes.json
code=$(curl -s -o reload.json -w '%{http_code}' -X POST "http://127.0.0.1:$admin/gateway/reload")
[ "$code" = 400 ] || fail "bad reload answered $code"
line=$(grep -n '"nobody"' routes.json | cut -d: -f1)
grep -q "routes.json:$line: routes.0.upstream: no upstream named" reload.json || fail "reload: $(cat reload.json)"
r=$(curl -fsS "$url/api/users/3") || fail "old routes stopped serving after a refused reload"
# a good edit is picked up from the file change alone
sed 's/"prefix": "\/api\/users", "upstream": "a"/"prefix": "\/api\/people", "upstream": "a"/' \
  routes.good >routes.tmp && mv routes.tmp routes.json
ok=
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/people/1")
  [ "$code" = 200 ] && { ok=1; break; }
  sleep 0.05
done
[ -n "$ok" ] || fail "file change not picked up within 2 s"
gen=$(curl -fsS "http://127.0.0.1:$admin/gateway/stats" | json generation)
cp routes.good routes.json.new && mv routes.json.new routes.json
kill -HUP "$gw"
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/people/1")
  [ "$code" = 404 ] && break
  sleep 0.05
done
[ "$code" = 404 ] || fail "SIGHUP reload not applied"
gen2=$(curl -fsS "http://127.0.0.1:$admin/gateway/stats" | json generation)
[ "$gen2" -gt "$gen" ] || fail "generation did not move: $gen -> $gen2"

# upstreams found in the registry: an instance that registers is served, one
# that deregisters is gone from routing within a second
code=$(curl -s -o none.json -w '%{http_code}' "$url/reg/hello")
[ "$code" = 503 ] && grep -q no_healthy_upstream none.json || fail "no instance: $code $(cat none.json)"
fixture_start_listening svc "$bin/registered_service" --listen 127.0.0.1:0 \
  --registry.url "$REGISTRY_URL"
svc=$FIXTURE_PID
ok=
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/reg/hello")" = 200 ] && { ok=1; break; }
  sleep 0.02
done
[ -n "$ok" ] || fail "a registered instance was not routed to within 2 s"
fixture_terminate "$svc" # deregisters during its graceful stop
start=$(date +%s%N)
gone=
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/reg/hello")" = 503 ] && { gone=1; break; }
  sleep 0.01
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ -n "$gone" ] && [ "$ms" -lt 1000 ] || fail "a deregistered instance still routed after ${ms} ms"

# routes listing
curl -fsS "http://127.0.0.1:$admin/gateway/routes" | json routes.1.name | grep -x users-v2 >/dev/null ||
  fail "/gateway/routes"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC after SIGTERM"
grep -q '"msg":"stopped"' gw.log || fail "no clean stop"

# quick start and its errors
rc=0; "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 2>none.err || rc=$?
[ "$rc" = 2 ] && grep -q "no routes" none.err || fail "no routes: rc=$rc $(cat none.err)"
rc=0; "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --route /api 2>q.err || rc=$?
[ "$rc" = 2 ] && grep -q "PATH=URL" q.err || fail "bad --route: rc=$rc $(cat q.err)"
FIXTURE_PORT_PATTERN='"msg":"proxy listening".*"port":[0-9]*' \
  fixture_start_listening quick "$bin/colony" gateway --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --route "/=http://127.0.0.1:$pb" --proxy.max_connections_per_address=1
q=$FIXTURE_PID
qport=$FIXTURE_PORT
[ "$(curl -fsS "http://127.0.0.1:$qport/any/path" | json instance)" = b ] || fail "quick route"
# one connection per client address: a second one at the same time gets 503
code=$(python3 - "$qport" <<'PY'
import socket, sys, urllib.request, urllib.error
port = int(sys.argv[1])
held = socket.create_connection(("127.0.0.1", port))
held.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
held.recv(4096)
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/y", timeout=5)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("refused")
PY
)
[ "$code" = 503 ] || fail "per-address limit: second connection got $code"
fixture_terminate "$q"
[ "$FIXTURE_RC" = 0 ] || fail "quick gateway exited $FIXTURE_RC"
echo "1 passed, 0 failed"
