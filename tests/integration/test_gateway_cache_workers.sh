#!/usr/bin/env bash
# The sharded response cache under concurrent workers, with real processes
# on loopback: a gateway with two workers and a cached route takes a bounded
# load loop (240 GETs over 12 keys, 8 at a time, each on a new connection so
# both workers serve them). Every answer is a 200; each key reaches the
# upstream once (misses of one key coalesce across workers, then hit), so
# the hits are counted exactly: 228 of 240, in the answers' X-Cache-Status,
# in /gateway/stats and in gateway_cache_requests_total; the cache is split
# into 8 shards (64 MiB, 1 MiB entries).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

# load URL KEYS N PARALLEL: N GETs of URL/kI (I = 0..KEYS-1, round robin),
# PARALLEL at a time, each on a new connection (bounded: 20 s a request);
# prints the status and X-Cache-Status of each
cat >load.py <<'PY'
import http.client, sys, threading, urllib.parse
url, keys, n, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlsplit(url)
out, lock, sem = [], threading.Lock(), threading.Semaphore(par)
def one(i):
    with sem:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
            c.request("GET", "%s/k%d" % (u.path, i % keys), headers={"Connection": "close"})
            r = c.getresponse()
            r.read()
            line = "%d %s" % (r.status, r.getheader("X-Cache-Status") or "-")
            c.close()
        except Exception as e:
            line = "ERR %s" % type(e).__name__
        with lock:
            out.append(line)
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY

fixture_start_listening a "$BIN/echo_server" --name a --listen 127.0.0.1:0
up=http://127.0.0.1:$FIXTURE_PORT
cat >routes.json <<JSON
{
  "upstreams": {"a": {"targets": ["$up"]}},
  "routes": [
    {"name": "c", "prefix": "/c", "upstream": "a", "cache": {"ttl": "5m"}}
  ]
}
JSON
fixture_start gw "$BIN/colony" gateway --workers 2 --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --routes "$WORK/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT
served() { curl -fsS "$up/admin/counts" | grep -o '"served":[0-9]*' | cut -d: -f2; }
field() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

before=$(served)
python3 load.py "$url/c" 12 240 8 >load.txt
[ "$(grep -c '^200 ' load.txt)" = 240 ] || fail "load: $(sort load.txt | uniq -c)"
hits=$(grep -c '^200 HIT$' load.txt || true)
misses=$(grep -c '^200 MISS$' load.txt || true)
[ "$misses" = 12 ] && [ "$hits" = 228 ] || fail "answers: $(sort load.txt | uniq -c)"
[ $(($(served) - before)) = 12 ] || fail "the upstream answered $(($(served) - before)), wanted 12"

curl -fsS "$admin/gateway/stats" >stats.json
cache=$(grep -o '"cache":{[^}]*}' stats.json)
[ "$(field hits <<<"$cache")" = 228 ] && [ "$(field misses <<<"$cache")" = 12 ] ||
  fail "stats: $cache"
[ "$(field entries <<<"$cache")" = 12 ] || fail "entries: $cache"
[ "$(field shards <<<"$cache")" = 8 ] || fail "shards: $cache"
w0=$(grep -o '"per_worker":\[[^]]*\]' stats.json)
[ "$(grep -o '"requests":[1-9][0-9]*' <<<"$w0" | wc -l)" = 2 ] ||
  fail "both workers did not serve: $w0"
curl -fsS "$admin/metrics" >metrics.txt
grep -q '^gateway_cache_requests_total{route="c",status="hit"} 228' metrics.txt ||
  fail "metrics: $(grep gateway_cache metrics.txt)"

echo "1 passed, 0 failed"
