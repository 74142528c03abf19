#!/usr/bin/env bash
# colony gateway rate limits end to end, with real processes on loopback: an
# echo upstream behind gateways with per-route and global limits. 429 with
# Retry-After past the limit, RateLimit-* headers on 2xx answers, refill after
# the window, keys kept apart, config mistakes refused with their line; then a
# real redis-server shared by two gateways (one limit for both), stopped (the
# gateways fall back to local limits and log it once, or answer 503 where the
# limit fails closed) and started again (they reconnect).
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

fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
pa=$FIXTURE_PORT

# ---- config mistakes are refused with file, line, key and reason
cat >base.json <<JSON
{
  "upstreams": {"a": {"targets": ["http://127.0.0.1:$pa"]}},
  "routes": [
    {"name": "r", "prefix": "/",
     "upstream": "a",
     "rate_limit": {"limit": 3, "window": "1s"}}
  ]
}
JSON
"$bin/colony" gateway --check base.json >/dev/null || fail "--check refused a good rate_limit"
check_refused() { # FROM TO KEY REASON
  sed "s|$1|$2|" base.json >bad.json
  local rc=0
  "$bin/colony" gateway --check bad.json 2>check.err || rc=$?
  [ "$rc" = 2 ] || fail "--check $2: exited $rc"
  grep -q "bad.json:6: $3: .*$4" check.err || fail "--check $2: $(cat check.err)"
}
check_refused '"limit": 3' '"limit": 0' routes.0.rate_limit.limit "from 1 to"
check_refused '"window": "1s"' '"window": "soon"' routes.0.rate_limit.window "duration"
check_refused '"window": "1s"' '"window": "1s", "key": "jwt:sub"' routes.0.rate_limit.key \
  'needs the route.s "jwt"'
check_refused '"window": "1s"' '"window": "1s", "key": "cookie"' routes.0.rate_limit.key \
  "header:NAME"
check_refused '"window": "1s"' '"window": "1s", "burts": 4' routes.0.rate_limit.burts "unknown key"
check_refused '"window": "1s"' '"window": "1s", "redis": "http://x"' routes.0.rate_limit.redis \
  "redis://host:port"
check_refused '"window": "1s"' '"window": "1s", "redis_failure": "closed"' \
  routes.0.rate_limit.redis_failure 'needs "redis"'
check_refused '"limit": 3, "window": "1s"' '"window": "1s"' routes.0.rate_limit '"limit" is required'

# ---- local limits
cat >routes.json <<JSON
{
  "upstreams": {"a": {"targets": ["http://127.0.0.1:$pa"]}},
  "routes": [
    {"name": "limited", "prefix": "/limited", "upstream": "a",
     "rate_limit": {"limit": 3, "window": "1m"}},
    {"name": "refill", "prefix": "/refill", "upstream": "a",
     "rate_limit": {"limit": 1, "window": "2s"}},
    {"name": "bykey", "prefix": "/bykey", "upstream": "a",
     "rate_limit": {"limit": 2, "window": "1m", "key": "header:X-Api-Key"}},
    {"name": "free", "prefix": "/free", "upstream": "a"}
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

# 3 a minute: three 200s with the draft headers counting down, then 429
for want in 2 1 0; do
  s=$(get "$url/limited/x")
  [ "$s" = 200 ] || fail "limited: $s $(cat b.txt)"
  [ "$(hdr RateLimit-Limit h.txt)" = 3 ] || fail "RateLimit-Limit on 200: $(cat h.txt)"
  [ "$(hdr RateLimit-Remaining h.txt)" = "$want" ] || fail "RateLimit-Remaining $want: $(cat h.txt)"
  [ -n "$(hdr RateLimit-Reset h.txt)" ] || fail "RateLimit-Reset on 200: $(cat h.txt)"
done
s=$(get "$url/limited/x")
[ "$s" = 429 ] || fail "over the limit: $s"
ra=$(hdr Retry-After h.txt)
# one request every 20 s (less the time the requests took; the exact
# arithmetic is in the unit tests)
[ "$ra" -ge 5 ] && [ "$ra" -le 20 ] || fail "Retry-After for 3/min: $(cat h.txt)"
[ "$(hdr RateLimit-Remaining h.txt)" = 0 ] || fail "Remaining on 429: $(cat h.txt)"
grep -q '"error":"too_many_requests"' b.txt || fail "429 body: $(cat b.txt)"
# a route without a limit says nothing about limits
s=$(get "$url/free/x")
[ "$s" = 200 ] && [ -z "$(hdr RateLimit-Limit h.txt)" ] || fail "free route: $s $(cat h.txt)"
# refill: 1 in 2 s; the second request at once is refused, after the
# window it passes again
s=$(get "$url/refill")
[ "$s" = 200 ] || fail "refill, first: $s"
s=$(get "$url/refill")
ra=$(hdr Retry-After h.txt)
[ "$s" = 429 ] && [ "$ra" -ge 1 ] && [ "$ra" -le 2 ] || fail "refill, second: $s $(cat h.txt)"
sleep 2
s=$(get "$url/refill")
[ "$s" = 200 ] || fail "after the window: $s"
# keys apart: each X-Api-Key has its own 2 a minute
for k in alice alice; do
  s=$(get "$url/bykey" -H "X-Api-Key: $k")
  [ "$s" = 200 ] || fail "bykey $k: $s"
done
s=$(get "$url/bykey" -H "X-Api-Key: alice")
[ "$s" = 429 ] || fail "alice's third: $s"
ra=$(hdr Retry-After h.txt)
[ "$ra" -ge 15 ] && [ "$ra" -le 30 ] || fail "Retry-After for 2/min: $ra"
s=$(get "$url/bykey" -H "X-Api-Key: bob")
[ "$s" = 200 ] && [ "$(hdr RateLimit-Remaining h.txt)" = 1 ] || fail "bob: $s $(cat h.txt)"
curl -fsS "$admin/metrics" >metrics.txt
grep -q '^gateway_ratelimit_rejected_total{route="limited"} 1' metrics.txt ||
  fail "rejected metric: $(grep ratelimit metrics.txt)"
grep -q '^gateway_ratelimit_rejected_total{route="bykey"} 1' metrics.txt ||
  fail "rejected metric bykey: $(grep ratelimit metrics.txt)"
grep -q '^gateway_ratelimit_redis_up 0' metrics.txt || fail "redis_up without redis"
fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC"

# ---- the global limit comes before routing (even a 404 counts)
cat >global.json <<JSON
{
  "rate_limit": {"limit": 2, "window": "1m", "key": "header:X-Client"},
  "upstreams": {"a": {"targets": ["http://127.0.0.1:$pa"]}},
  "routes": [{"name": "r", "prefix": "/r", "upstream": "a"}]
}
JSON
fixture_start gwg "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/global.json"
fixture_wait_log_port gwg "$FIXTURE_PID" '"msg":"proxy listening".*"port":[0-9]*'
gurl=http://127.0.0.1:$FIXTURE_PORT
s=$(get "$gurl/r" -H "X-Client: c")
[ "$s" = 200 ] && [ "$(hdr RateLimit-Remaining h.txt)" = 1 ] || fail "global 1: $s $(cat h.txt)"
s=$(get "$gurl/nowhere" -H "X-Client: c")
[ "$s" = 404 ] && [ "$(hdr RateLimit-Remaining h.txt)" = 0 ] || fail "global 404: $s"
s=$(get "$gurl/r" -H "X-Client: c")
[ "$s" = 429 ] || fail "global limit: $s"
s=$(get "$gurl/r" -H "X-Client: d")
[ "$s" = 200 ] || fail "global, another client: $s"

# ---- shared limits through Redis
command -v redis-server >/dev/null || fail "redis-server is not installed (scripts/bootstrap)"
rport=$(fixture_free_port)
start_redis() {
  fixture_start redis redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no
  redis=$FIXTURE_PID
  for ((i = 0; i < 200; i++)); do
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  fail "redis-server did not start"
}
start_redis
cat >shared.json <<JSON
{
  "upstreams": {"a": {"targets": ["http://127.0.0.1:$pa"]}},
  "routes": [
    {"name": "shared", "prefix": "/shared", "upstream": "a",
     "rate_limit": {"limit": 4, "window": "1m", "redis": "redis://127.0.0.1:$rport"}},
    {"name": "strict", "prefix": "/strict", "upstream": "a",
     "rate_limit": {"limit": 100, "window": "1m", "redis": "redis://127.0.0.1:$rport",
                    "redis_failure": "closed"}}
  ]
}
JSON
urls=()
admins=()
for g in g1 g2; do
  fixture_start "$g" "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --routes "$work/shared.json"
  pid=$FIXTURE_PID
  fixture_wait_log_port "$g" "$pid" '"msg":"proxy listening".*"port":[0-9]*'
  urls+=("http://127.0.0.1:$FIXTURE_PORT")
  fixture_wait_log_port "$g" "$pid" '"msg":"listening".*"port":[0-9]*'
  admins+=("http://127.0.0.1:$FIXTURE_PORT")
  for ((i = 0; i < 100; i++)); do
    grep -q 'rate limit Redis connected' "$work/$g.log" && break
    sleep 0.05
  done
  grep -q 'rate limit Redis connected' "$work/$g.log" || fail "$g did not connect to Redis"
done
# one limit of 4 a minute across both gateways
n=0
for want in 3 2 1 0; do
  s=$(get "${urls[n % 2]}/shared")
  [ "$s" = 200 ] || fail "shared request $n: $s"
  [ "$(hdr RateLimit-Remaining h.txt)" = "$want" ] || fail "shared remaining $want: $(cat h.txt)"
  n=$((n + 1))
done
for u in "${urls[@]}"; do
  s=$(get "$u/shared")
  [ "$s" = 429 ] || fail "shared limit on $u: $s"
  ra=$(hdr Retry-After h.txt)
  [ "$ra" -ge 30 ] && [ "$ra" -le 60 ] || fail "shared Retry-After: $ra"
done
curl -fsS "${admins[0]}/metrics" | grep '^gateway_ratelimit_redis_up 1' >/dev/null || fail "redis_up 1"

# Redis stops: fail open on local buckets (4 more here), closed routes 503
fixture_terminate "$redis"
for i in 1 2 3; do
  s=$(get "${urls[0]}/shared")
  [ "$s" = 200 ] || fail "fail open, request $i: $s $(cat b.txt)"
done
s=$(get "${urls[0]}/strict")
[ "$s" = 503 ] || fail "fail closed: $s"
grep -q '"error":"rate_limit_unavailable"' b.txt || fail "503 body: $(cat b.txt)"
[ "$(grep -c 'rate limit Redis is down' "$work/g1.log")" = 1 ] ||
  fail "the outage is logged once: $(grep -c 'Redis is down' "$work/g1.log")"
m=$(curl -fsS "${admins[0]}/metrics")
grep -q '^gateway_ratelimit_redis_up 0' <<<"$m" || fail "redis_up 0 while down"
f=$(grep '^gateway_ratelimit_redis_fallbacks_total' <<<"$m" | awk '{print $2}')
[ "${f:-0}" -ge 4 ] || fail "fallbacks counted: $f"
grep -q '^gateway_ratelimit_rejected_total{route="strict"} 1' <<<"$m" || fail "strict rejected"

# Redis is back: the gateways reconnect (backoff up to 5 s) and share again
start_redis
for ((i = 0; i < 200; i++)); do
  grep -q 'rate limit Redis is back' "$work/g1.log" && break
  sleep 0.05
done
grep -q 'rate limit Redis is back' "$work/g1.log" || fail "g1 did not reconnect"
s=$(get "${urls[0]}/strict")
[ "$s" = 200 ] && [ "$(hdr RateLimit-Remaining h.txt)" = 99 ] || fail "strict after: $s $(cat h.txt)"

# Redis hangs (stopped, its socket open): g2 gives up on it after 250 ms
# and answers from its local limit instead of waiting
for ((i = 0; i < 200; i++)); do
  grep -q 'rate limit Redis is back' "$work/g2.log" && break
  sleep 0.05
done
grep -q 'rate limit Redis is back' "$work/g2.log" || fail "g2 did not reconnect"
kill -STOP "$redis"
# a client that leaves while its check waits for Redis
curl -sS -o /dev/null --max-time 0.1 "${urls[1]}/shared" 2>/dev/null && fail "answered at once?"
t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "${urls[1]}/shared")
kill -CONT "$redis"
[ "${t% *}" = 200 ] || fail "Redis hanging: $t"
awk -v t="${t#* }" 'BEGIN { exit !(t < 2) }' || fail "Redis hanging: answered after ${t#* }s"
grep -q '"reason":"answer timed out"' "$work/g2.log" || fail "g2 did not log the timeout"
s=$(get "${urls[1]}/free-of-routes")
[ "$s" = 404 ] || fail "g2 after a client left: $s"

for g in g1 g2; do
  pid_var=PID_$g
  fixture_terminate "${!pid_var}"
  [ "$FIXTURE_RC" = 0 ] || fail "$g exited $FIXTURE_RC"
done
echo "test_gateway_ratelimit: ok"
