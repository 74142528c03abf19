#!/usr/bin/env bash
# colony gateway on two worker threads, with real processes on loopback:
# requests on new connections spread over both workers (the access log's
# "worker" and /gateway/stats per_worker); a rate limit of N admits exactly N
# across workers under parallel clients; a cached answer stored by one worker
# is a HIT on the other; a breaker opened by failures seen on one worker
# rejects on the other; a registry change reaches every worker within 1 s; a
# reload under continuous load fails no request and leaves every worker on
# the new runtime; SIGTERM with requests in flight on both workers answers
# them all and exits 0.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK
cd "$work"

# json FIELD: one field of a JSON document (a.b.c), Python's way (None, True,
# False); with jq when it is there (a python3 start took ~2 s under load)
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

# burst URL N [PARALLEL]: N GETs, each on a new connection, PARALLEL at a
# time; prints one line per answer: status and X-Cache-Status (or -), and the
# "error" of a JSON error body (or -)
cat >burst.py <<'PY'
import http.client, json, sys, threading, urllib.parse
url, n = sys.argv[1], int(sys.argv[2])
par = int(sys.argv[3]) if len(sys.argv) > 3 else n
u = urllib.parse.urlsplit(url)
out, lock, sem = [], threading.Lock(), threading.Semaphore(par)
def one():
    with sem:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
            c.request("GET", u.path + ("?" + u.query if u.query else ""),
                      headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read()
            err = "-"
            try:
                err = json.loads(body).get("error", "-")
            except Exception:
                pass
            line = "%d %s %s" % (r.status, r.getheader("X-Cache-Status") or "-", err)
            c.close()
        except Exception as e:
            line = "ERR - %s" % type(e).__name__
        with lock:
            out.append(line)
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY
burst() { python3 burst.py "$@"; }
# workers_of ROUTE [FROM_LINE]: the distinct workers the access log shows for ROUTE
workers_of() {
  tail -n +"${2:-1}" gw.log | grep '"msg":"access"' | grep "\"route\":\"$1\"" |
    grep -o '"worker":[0-9]*' | sort -u | wc -l
}
mark() { wc -l <gw.log; }

fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
pa=$FIXTURE_PORT
fixture_start_registry reg
dead=$(fixture_free_port) # nothing listens: connections are refused

routes() { # routes EXTRA_ROUTE: the routes file, with one more route when given
  cat >routes.json <<JSON
{
  "upstreams": {
    "a": {"targets": ["http://127.0.0.1:$pa"]},
    "dead": {"targets": ["http://127.0.0.1:$dead"], "health": {"consecutive_failures": 0},
             "breaker": {"failure_ratio": 0.5, "min_calls": 4, "window_calls": 4,
                         "open_for": "30s", "half_open_calls": 1}},
    "reg": {"service": "registered"}
  },
  "routes": [
    $1
    {"name": "lim", "prefix": "/lim", "upstream": "a",
     "rate_limit": {"limit": 20, "window": "1h"}},
    {"name": "c", "prefix": "/c", "upstream": "a", "cache": {"ttl": "30s"}},
    {"name": "brk", "prefix": "/brk", "upstream": "dead"},
    {"name": "reg", "prefix": "/reg", "strip_prefix": true, "upstream": "reg"},
    {"name": "any", "prefix": "/", "upstream": "a"}
  ]
}
JSON
}
routes ""
fixture_start gw "$bin/colony" gateway --workers 2 --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --routes "$work/routes.json" --registry "$REGISTRY_URL"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT
stats() { curl -fsS "$admin/gateway/stats"; }

# ---- requests on new connections spread over both workers
burst "$url/spread" 24 8 >spread.txt
[ "$(grep -c '^200 ' spread.txt)" = 24 ] || fail "spread: $(sort spread.txt | uniq -c)"
[ "$(workers_of any)" = 2 ] || fail "24 connections all went to one worker"
[ "$(stats | json workers)" = 2 ] || fail "stats workers: $(stats)"
s=$(stats)
[ "$(json per_worker.0.requests <<<"$s")" -gt 0 ] && [ "$(json per_worker.1.requests <<<"$s")" -gt 0 ] ||
  fail "per_worker: $s"
[ "$(json requests <<<"$s")" -ge 24 ] || fail "the workers' requests are not summed: $s"

# ---- a limit of 20 an hour admits exactly 20 across both workers
from=$(mark)
burst "$url/lim/x" 30 10 >lim.txt
ok=$(grep -c '^200 ' lim.txt || true)
limited=$(grep -c '^429 ' lim.txt || true)
[ "$ok" = 20 ] && [ "$limited" = 10 ] || fail "rate limit across workers: $(sort lim.txt | uniq -c)"
[ "$(workers_of lim "$from")" = 2 ] || fail "the limited requests all went to one worker"

# ---- one worker stores, the other hits (the cache is shared)
from=$(mark)
burst "$url/c/page?x=1" 1 >c1.txt
grep -q '^200 MISS' c1.txt || fail "first cached request: $(cat c1.txt)"
burst "$url/c/page?x=1" 10 5 >c2.txt
[ "$(grep -c '^200 HIT' c2.txt)" = 10 ] || fail "cache across workers: $(sort c2.txt | uniq -c)"
[ "$(workers_of c "$from")" = 2 ] || fail "the cached requests all went to one worker"

# ---- four failures open the upstream's one breaker: every worker refuses
from=$(mark)
burst "$url/brk/x" 4 1 >b1.txt
[ "$(grep -c '^502 ' b1.txt)" = 4 ] || fail "failures: $(cat b1.txt)"
burst "$url/brk/x" 8 4 >b2.txt
[ "$(grep -c '^503 - circuit_open' b2.txt)" = 8 ] || fail "breaker across workers: $(sort b2.txt | uniq -c)"
[ "$(workers_of brk "$from")" = 2 ] || fail "the breaker's requests all went to one worker"

# ---- a registry change reaches every worker within a second
fixture_start_listening svc "$bin/registered_service" --listen 127.0.0.1:0 \
  --registry.url "$REGISTRY_URL"
svc=$FIXTURE_PID
ok=
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/reg/hello")" = 200 ] && { ok=1; break; }
  sleep 0.02
done
[ -n "$ok" ] || fail "a registered instance was not routed to within 2 s"
burst "$url/reg/hello" 8 4 >r1.txt
[ "$(grep -c '^200 ' r1.txt)" = 8 ] || fail "registered, on every worker: $(sort r1.txt | uniq -c)"
# from the moment the registry no longer lists it as passing to the first
# 503 of the gateway, polled from one process (no process start per request)
cat >poll.py <<'PY'
import http.client, sys, time, urllib.parse
def get(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.request("GET", u.path + ("?" + u.query if u.query else ""), headers={"Connection": "close"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body
end = time.time() + 20
while time.time() < end and get(sys.argv[1])[1].strip() != b"[]":
    time.sleep(0.005)
gone = time.time()
while time.time() < end and get(sys.argv[2])[0] != 503:
    time.sleep(0.005)
print(int((time.time() - gone) * 1000) if time.time() < end else "never")
PY
python3 poll.py "$REGISTRY_URL/v1/health/service/registered?passing" "$url/reg/hello" >lag.txt &
poller=$!
fixture_terminate "$svc" # deregisters during its graceful stop
wait "$poller"
ms=$(cat lag.txt)
[ "$ms" != never ] && [ "$ms" -lt 1000 ] ||
  fail "the gateway still routed to a deregistered instance $ms ms after the registry dropped it"
# the moment one worker stopped routing to it, none does
from=$(mark)
burst "$url/reg/hello" 8 4 >r2.txt
[ "$(grep -c '^503 - no_healthy_upstream' r2.txt)" = 8 ] ||
  fail "deregistered, still routed by a worker: $(sort r2.txt | uniq -c)"
[ "$(workers_of reg "$from")" = 2 ] || fail "the registry requests all went to one worker"

# ---- a reload under continuous load: no request fails, every worker moves
gen=$(stats | json generation)
cat >load.py <<'PY'
import http.client, sys, threading, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
stop_at = time.time() + float(sys.argv[2])
fails, count, lock = [], [0], threading.Lock()
def run(fresh):
    c = None
    while time.time() < stop_at:
        try:
            if c is None:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", "/load", headers={"Connection": "close"} if fresh else {})
            r = c.getresponse()
            r.read()
            with lock:
                count[0] += 1
                if r.status != 200:
                    fails.append(r.status)
            if fresh or r.getheader("Connection", "").lower() == "close":
                c.close()
                c = None
        except Exception as e:
            with lock:
                fails.append(type(e).__name__)
            c = None
ts = [threading.Thread(target=run, args=(i % 2 == 0,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(count[0], len(fails), fails[:5])
PY
python3 load.py "$url" 2.5 >load.txt &
loader=$!
sleep 0.8
routes '{"name": "fresh", "prefix": "/fresh", "upstream": "a"},'
curl -fsS -X POST "$admin/gateway/reload" >reload.json || fail "reload: $(cat reload.json)"
sleep 0.4
curl -fsS -X POST "$admin/gateway/reload" >reload.json || fail "reload 2: $(cat reload.json)"
wait "$loader"
read -r total failed _ <load.txt
[ "$failed" = 0 ] && [ "$total" -gt 20 ] || fail "reload under load: $(cat load.txt)"
new=$(stats | json generation)
# two POSTs, and the file watch may have seen the change too
[ "$new" -ge $((gen + 2)) ] || fail "generation $gen -> $new"
from=$(mark)
burst "$url/fresh/x" 8 4 >f.txt
[ "$(grep -c '^200 ' f.txt)" = 8 ] || fail "the new route on every worker: $(sort f.txt | uniq -c)"
[ "$(workers_of fresh "$from")" = 2 ] || fail "the new route's requests all went to one worker"
s=$(stats)
[ "$(json per_worker.0.generation <<<"$s")" = "$new" ] &&
  [ "$(json per_worker.1.generation <<<"$s")" = "$new" ] || fail "a worker on an old runtime: $s"

# ---- SIGTERM with requests in flight on both workers: all answered, exit 0
from=$(mark)
burst "$url/slow?delay=3000" 8 8 >slow.txt &
slow=$!
python3 - "$admin/gateway/stats" <<'PY' || fail "the slow requests did not start: $(stats)"
import json, sys, time, urllib.request
end = time.time() + 20  # until all eight are in flight
while time.time() < end:
    if json.load(urllib.request.urlopen(sys.argv[1], timeout=5))["in_flight"] >= 8:
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PY
fixture_terminate "$gw"
wait "$slow"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC after SIGTERM"
[ "$(grep -c '^200 ' slow.txt)" = 8 ] || fail "in-flight requests at SIGTERM: $(sort slow.txt | uniq -c)"
[ "$(workers_of any "$from")" = 2 ] || fail "the in-flight requests were all on one worker"
grep -q '"msg":"stopped"' gw.log || fail "no clean stop"
echo "ok"
