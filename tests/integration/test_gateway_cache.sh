#!/usr/bin/env bash
# colony gateway response cache end to end, with real processes on loopback:
# an echo upstream (its /admin/counts tells how many requests reached it, so
# a HIT is proven not to) behind a gateway with cached routes. Hit, miss,
# HEAD from a cached GET, expiry by max-age and by the route's ttl, no-store
# and private answers, request no-cache and Authorization bypasses,
# Set-Cookie, Vary (the upstream's and the route's), the per-entry limit
# (streamed whole, not kept), the byte bound (LRU eviction), metrics and
# stats, a reload that keeps the entries of a route by name, and config
# mistakes refused with their line.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK
cd "$work"

# hdr NAME FILE: the value of a response header in a curl -D dump
hdr() { grep -i "^$1:" "$2" | head -1 | cut -d: -f2- | tr -d ' \r'; }
# get URL [curl args]: prints the status; headers in h.txt, body in b.txt
get() {
  local u=$1
  shift
  curl -sS -o b.txt -D h.txt -w '%{http_code}' "$@" "$u"
}
# expect STATUS CACHE URL [curl args]: one request, its status and X-Cache-Status
expect() {
  local want=$1 cache=$2 u=$3
  shift 3
  local s
  s=$(get "$u" "$@")
  [ "$s" = "$want" ] || fail "$u $*: status $s, wanted $want: $(cat h.txt b.txt)"
  [ "$(hdr X-Cache-Status h.txt)" = "$cache" ] ||
    fail "$u $*: X-Cache-Status '$(hdr X-Cache-Status h.txt)', wanted $cache: $(cat h.txt)"
}
served() { curl -fsS "$up/admin/counts" | grep -o '"served":[0-9]*' | cut -d: -f2; }
# reached N: the upstream answered N requests since the last call
last=0
reached() {
  local now
  now=$(served)
  [ $((now - last)) = "$1" ] || fail "the upstream answered $((now - last)) requests, wanted $1"
  last=$now
}

fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
up=http://127.0.0.1:$FIXTURE_PORT

# ---- config mistakes are refused with file, line, key and reason
cat >base.json <<JSON
{
  "cache": {"max_bytes": "16kb"},
  "upstreams": {"a": {"targets": ["$up"]}},
  "routes": [
    {"name": "c", "prefix": "/c", "upstream": "a",
     "cache": {"ttl": "30s", "max_entry": "4kb"}}
  ]
}
JSON
"$bin/colony" gateway --check base.json >/dev/null || fail "--check refused a good cache"
check_refused() { # FROM TO LINE KEY REASON
  sed "s|$1|$2|" base.json >bad.json
  local rc=0
  "$bin/colony" gateway --check bad.json 2>check.err || rc=$?
  [ "$rc" = 2 ] || fail "--check $2: exited $rc"
  grep -q "bad.json:$3: $4: .*$5" check.err || fail "--check $2: $(cat check.err)"
}
check_refused '"ttl": "30s"' '"ttl": "soon"' 6 routes.0.cache.ttl "duration"
check_refused '"ttl": "30s"' '"tll": "30s"' 6 routes.0.cache.tll "unknown key"
check_refused '"max_entry": "4kb"' '"max_entry": "1mb"' 6 routes.0.cache.max_entry \
  "larger than the cache"
check_refused '"max_bytes": "16kb"' '"max_bytes": "lots"' 2 cache.max_bytes "must be a size"

# ---- a gateway with cached routes
cat >routes.json <<JSON
{
  "cache": {"max_bytes": "16kb"},
  "upstreams": {"a": {"targets": ["$up"]}},
  "routes": [
    {"name": "c", "prefix": "/c", "upstream": "a",
     "cache": {"ttl": "30s", "max_entry": "4kb"}},
    {"name": "short", "prefix": "/short", "upstream": "a", "cache": {"ttl": "3s"}},
    {"name": "v", "prefix": "/v", "upstream": "a", "cache": {"vary": ["X-Tenant"]}},
    {"name": "k", "prefix": "/k", "upstream": "a", "cache": {},
     "api_keys": {"keys": {"key-of-alice-0123456789": "alice"}}},
    {"name": "plain", "prefix": "/", "upstream": "a"}
  ]
}
JSON
fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT
last=$(served)

# miss, then hit: the same bytes, an Age, and the upstream not called
expect 200 MISS "$url/c/a?q=1"
reached 1
cp b.txt first.txt
len=$(hdr Content-Length h.txt)
expect 200 HIT "$url/c/a?q=1"
reached 0
cmp -s b.txt first.txt || fail "a HIT is not the stored body: $(cat b.txt)"
[ -n "$(hdr Age h.txt)" ] || fail "no Age on a HIT: $(cat h.txt)"
# HEAD is answered from the cached GET: same length, no body
expect 200 HIT "$url/c/a?q=1" -I
reached 0
[ "$(hdr Content-Length h.txt)" = "$len" ] || fail "HEAD's Content-Length: $(cat h.txt)"
cmp -s b.txt h.txt || fail "HEAD has a body: $(cat b.txt)" # curl -I writes the head as the body
# another query string is another entry
expect 200 MISS "$url/c/a?q=2"
reached 1

# requests that bypass: no-cache, Authorization, POST
expect 200 BYPASS "$url/c/a?q=1" -H 'Cache-Control: no-cache'
reached 1
expect 200 BYPASS "$url/c/a?q=1" -H 'Authorization: Bearer x'
reached 1
expect 200 BYPASS "$url/c/a?q=1" -X POST -d x
reached 1
# a route that checks API keys does not share answers between consumers
expect 200 BYPASS "$url/k/x" -H 'X-API-Key: key-of-alice-0123456789'
expect 200 BYPASS "$url/k/x" -H 'X-API-Key: key-of-alice-0123456789'
reached 2
# no-cache stored the fresh answer: the next GET is a HIT with it
expect 200 HIT "$url/c/a?q=1"
reached 0
cmp -s b.txt first.txt && fail "no-cache did not replace the stored answer"

# answers that are not stored: no-store, private, Set-Cookie, 5xx
for q in 'cc=no-store' 'cc=private%2C%20max-age%3D60' 'cc=no-cache' 'cookie=sid%3D1' \
  'status=500'; do
  s=$(get "$url/c/n?$q")
  [ "$(hdr X-Cache-Status h.txt)" = MISS ] || fail "$q: $(cat h.txt)"
  s=$(get "$url/c/n?$q")
  [ "$(hdr X-Cache-Status h.txt)" = MISS ] || fail "$q stored: $(cat h.txt)"
  reached 2
done

# expiry: max-age from the upstream, s-maxage over max-age, the route's
# ttl. Ages of 3 s, not 1: under load a HIT asked right after its MISS must
# not find the entry already expired. The wait is bounded and measured from
# the last MISS's answer (each entry was stored before its answer ended), not
# a fixed sleep that a loaded machine can stretch past a second age.
expect 200 MISS "$url/c/e?cc=max-age%3D3"
expect 200 MISS "$url/c/s?cc=max-age%3D60%2C%20s-maxage%3D3"
expect 200 MISS "$url/short/t"
stored=$(date +%s%N)
expect 200 HIT "$url/c/e?cc=max-age%3D3"
expect 200 HIT "$url/c/s?cc=max-age%3D60%2C%20s-maxage%3D3"
expect 200 HIT "$url/short/t"
reached 3
# until 3.2 s after the last store: every entry is stale then
left_ms=$((3200 - ($(date +%s%N) - stored) / 1000000))
[ "$left_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((left_ms / 1000)) $((left_ms % 1000)))"
expect 200 EXPIRED "$url/c/e?cc=max-age%3D3"
expect 200 EXPIRED "$url/c/s?cc=max-age%3D60%2C%20s-maxage%3D3"
expect 200 EXPIRED "$url/short/t"
reached 3
expect 200 HIT "$url/c/e?cc=max-age%3D3" # the fresh answer replaced the stale one
reached 0

# Vary from the upstream: one entry per value; the route's vary: per tenant
vary="$url/c/vy?vary=X-Lang"
expect 200 MISS "$vary" -H 'X-Lang: fr'
expect 200 HIT "$vary" -H 'X-Lang: fr'
grep -q '"X-Lang":"fr"' b.txt || fail "fr variant: $(cat b.txt)"
expect 200 MISS "$vary" -H 'X-Lang: de'
expect 200 HIT "$vary" -H 'X-Lang: de'
grep -q '"X-Lang":"de"' b.txt || fail "de variant: $(cat b.txt)"
expect 200 HIT "$vary" -H 'X-Lang: fr'
grep -q '"X-Lang":"fr"' b.txt || fail "fr variant again: $(cat b.txt)"
reached 2
expect 200 MISS "$url/c/star?vary=%2A"
expect 200 MISS "$url/c/star?vary=%2A"
reached 2
expect 200 MISS "$url/v/t" -H 'X-Tenant: a'
expect 200 MISS "$url/v/t" -H 'X-Tenant: b'
expect 200 HIT "$url/v/t" -H 'X-Tenant: a'
grep -q '"X-Tenant":"a"' b.txt || fail "tenant a: $(cat b.txt)"
reached 2

# concurrent misses of one key make one upstream call: the first goes, the
# others wait for its answer and are served from the cache
pids=()
for i in 1 2 3 4 5; do
  curl -sS -o "co$i.txt" -D "coh$i.txt" "$url/c/slow?delay=1000" &
  pids+=($!)
done
wait "${pids[@]}" # only the curls: the fixtures run in the background too
reached 1
for i in 1 2 3 4 5; do
  grep -q '"instance":"a"' "co$i.txt" || fail "coalesced $i: $(cat "co$i.txt")"
  cmp -s "co$i.txt" co1.txt || fail "coalesced answers differ"
done
[ "$(cat coh*.txt | grep -ci '^X-Cache-Status: MISS')" = 1 ] || fail "misses: $(cat coh*.txt)"
[ "$(cat coh*.txt | grep -ci '^X-Cache-Status: HIT')" = 4 ] || fail "hits: $(cat coh*.txt)"
curl -fsS "$admin/gateway/stats" | grep -o '"cache":{[^}]*}' | grep '"coalesced":[1-4]' >/dev/null ||
  fail "coalesced count: $(curl -fsS "$admin/gateway/stats")"

# a waiter whose client leaves is let go; the leader's answer is still stored
# (the leader has 0.5 s to reach the gateway, and is upstream for 2 s)
curl -sS -o lead.txt "$url/c/slow2?delay=2000" &
lead=$!
sleep 0.5
rc=0
curl -sS -o /dev/null --max-time 0.5 "$url/c/slow2?delay=2000" 2>/dev/null || rc=$?
[ "$rc" = 28 ] || fail "the waiter did not time out: $rc"
wait "$lead" || fail "the leader failed"
expect 200 HIT "$url/c/slow2?delay=2000"
reached 1

# a route without a cache says nothing
s=$(get "$url/other")
[ "$s" = 200 ] && [ -z "$(hdr X-Cache-Status h.txt)" ] || fail "plain route: $(cat h.txt)"
reached 1

# over max_entry (4kb): streamed whole, never kept (with and without a length)
for q in 'bytes=10000' 'bytes=10000&chunked=1'; do
  for i in 1 2; do
    expect 200 MISS "$url/c/huge?$q"
    [ "$(wc -c <b.txt)" = 10000 ] || fail "huge $q: $(wc -c <b.txt) bytes"
  done
done
reached 4

# the byte bound (16kb): eight 3000-byte answers do not fit; the least
# recently used go, the bytes held never pass the bound
for i in 1 2 3 4 5 6 7 8; do
  expect 200 MISS "$url/c/big$i?bytes=3000"
  [ "$(wc -c <b.txt)" = 3000 ] || fail "big$i: $(wc -c <b.txt) bytes"
  curl -fsS "$admin/gateway/stats" >stats.json
  bytes=$(grep -o '"cache":{[^}]*}' stats.json | grep -o '"bytes":[0-9]*' | cut -d: -f2)
  [ "$bytes" -le 16384 ] || fail "cache holds $bytes bytes over a 16kb bound: $(cat stats.json)"
done
reached 8
expect 200 HIT "$url/c/big8?bytes=3000"
[ "$(wc -c <b.txt)" = 3000 ] || fail "big8 from the cache: $(wc -c <b.txt) bytes"
expect 200 MISS "$url/c/big1?bytes=3000"
reached 1
grep -o '"cache":{[^}]*}' stats.json | grep -q '"evicted":[1-9]' || fail "no eviction: $(cat stats.json)"

# metrics on the admin listener
curl -fsS "$admin/metrics" >metrics.txt
grep -q '^gateway_cache_requests_total{route="c",status="hit"} [1-9]' metrics.txt ||
  fail "hit metric: $(grep gateway_cache metrics.txt)"
grep -q '^gateway_cache_requests_total{route="c",status="bypass"} 3' metrics.txt ||
  fail "bypass metric: $(grep gateway_cache metrics.txt)"
grep -q '^gateway_cache_requests_total{route="short",status="expired"} 1' metrics.txt ||
  fail "expired metric: $(grep gateway_cache metrics.txt)"
grep -q '^gateway_cache_entries [1-9]' metrics.txt || fail "entries: $(grep gateway_cache metrics.txt)"
grep -q '^gateway_cache_bytes [1-9]' metrics.txt || fail "bytes: $(grep gateway_cache metrics.txt)"

# a reload keeps the entries of a route that keeps its name and cache, and
# drops those of a route that lost its cache
expect 200 HIT "$url/c/big8?bytes=3000"
expect 200 MISS "$url/v/t" -H 'X-Tenant: z'
expect 200 HIT "$url/v/t" -H 'X-Tenant: z'
reached 1
sed -i 's|"cache": {"vary": \["X-Tenant"\]}|"timeouts": {"try": "5s"}|' routes.json
grep -q '"timeouts"' routes.json || fail "test bug: the edit did not apply"
curl -fsS -X POST "$admin/gateway/reload" >reload.json || fail "reload: $(cat reload.json)"
expect 200 HIT "$url/c/big8?bytes=3000"
reached 0
s=$(get "$url/v/t" -H 'X-Tenant: z')
[ -z "$(hdr X-Cache-Status h.txt)" ] || fail "v still cached: $(cat h.txt)"
reached 1

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC"
echo "test_gateway_cache: passed"
