#!/usr/bin/env bash
# Request bodies streamed through colony gateway with bounded memory:
# 1 GiB uploads (chunked, and with Content-Length) and a 1 GiB download arrive
# whole while the gateway's peak RSS (VmHWM) stays small; an upstream that
# reads slowly pauses the client instead of growing the gateway; a few MiB of
# random bytes arrive intact with either framing, which the upstream sees
# kept; Expect: 100-continue on a JWT route without a token gets 401 with no
# body byte sent, and with a token gets 100 Continue and its body through;
# body limits answer 413 (at once for a Content-Length, mid-body for a
# chunked body); a small body is still retried on another instance, a
# streamed one goes through when the first instance refuses the connection.
# The upstream is tests/apps/echo_server --sink: it streams, counts and
# CRC-32s each body (?slow=MS pauses it MS ms after every piece).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# field NAME FILE: a value of the sink's compact JSON answer
field() { grep -o "\"$1\":\"\\?[^\",}]*" "$2" | head -1 | sed 's/.*:"\?//'; }
crc32() { python3 -c 'import sys, zlib
c = 0
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): c = zlib.crc32(b, c)
print("%08x" % c)' "$1"; }

fixture_start_listening sink "$BIN/echo_server" --sink --listen 127.0.0.1:0
sink=$FIXTURE_PORT
fixture_start_listening echo "$BIN/echo_server" --name down --listen 127.0.0.1:0
echo_port=$FIXTURE_PORT
dead=$(fixture_free_port) # nothing listens there: connection refused

secret=0123456789abcdef0123456789abcdef-up
token=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys
b = lambda s: base64.urlsafe_b64encode(s).rstrip(b"=").decode()
m = b(json.dumps({"alg": "HS256", "kid": "k1"}).encode()) + "." + b(json.dumps({"sub": "u-1"}).encode())
print(m + "." + b(hmac.new(sys.argv[1].encode(), m.encode(), hashlib.sha256).digest()))
PY
)

cat >routes.json <<JSON
{
  "upstreams": {"sink": {"targets": ["http://127.0.0.1:$sink"]},
                "down": {"targets": ["http://127.0.0.1:$echo_port"]},
                "flaky": {"targets": ["http://127.0.0.1:$dead", "http://127.0.0.1:$sink"],
                          "strategy": "round_robin"}},
  "routes": [
    {"name": "jwt", "prefix": "/jwt", "upstream": "sink",
     "jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "$secret"}]}},
    {"name": "small", "prefix": "/small", "upstream": "sink", "max_body": "1mb"},
    {"name": "down", "prefix": "/down", "upstream": "down",
     "timeouts": {"try": "100s", "total": "100s"}},
    {"name": "flaky", "prefix": "/flaky", "upstream": "flaky",
     "retries": {"attempts": 1, "on": ["connect"], "non_idempotent": true}},
    {"name": "up", "prefix": "/", "upstream": "sink",
     "timeouts": {"try": "100s", "total": "100s"}}
  ]
}
JSON
# proxy.max_body 0: no limit for the 1 GiB bodies. Under AddressSanitizer
# freed memory sits in a quarantine (256 MiB by default), which would read
# as growth: keep it small for this process.
FIXTURE_PORT_PATTERN='"msg":"proxy listening".*"port":[0-9]*' \
  fixture_start_listening gw env ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" \
  "$BIN/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$WORK/routes.json" --access-log=false --proxy.max_body=0
gw=$FIXTURE_PID
url=http://127.0.0.1:$FIXTURE_PORT
fixture_wait_log_port gw "$gw" '"msg":"listening".*"port":[0-9]*'
admin=http://127.0.0.1:$FIXTURE_PORT
retries() { curl -fsS "$admin/gateway/stats" | grep -o '"retries":[0-9]*' | grep -o '[0-9]*$'; }

# warm up (connection pools, first allocations), then the baseline peak
curl -fsS --data-binary warm "$url/up" >/dev/null
curl -fsS -o /dev/null "$url/down/x?bytes=1000000"
base=$(hwm_kb "$gw")
bound_kb=$((40 * 1024)) # growth of the peak RSS allowed over all the big bodies

# 1 GiB chunked (curl -T - reads stdin: chunked). Sanitizer builds (about 3
# times slower) move 256 MiB per body instead, to stay within the time limit.
gib=$((1024 * 1024 * 1024))
case "${COLONY_TEST_CFLAGS:-}" in *sanitize*) gib=$((256 * 1024 * 1024)) ;; esac
head -c "$gib" /dev/zero | curl -fsS -T - "$url/up" >chunked.json || fail "chunked 1 GiB upload"
[ "$(field bytes chunked.json)" = "$gib" ] || fail "chunked upload: $(cat chunked.json)"
[ "$(field framing chunked.json)" = chunked ] || fail "chunked upload framing: $(cat chunked.json)"
zeros_crc=$(python3 -c 'import zlib, sys
c, z = 0, bytes(1 << 20)
for _ in range(int(sys.argv[1]) >> 20): c = zlib.crc32(z, c)
print("%08x" % c)' "$gib")
[ "$(field crc32 chunked.json)" = "$zeros_crc" ] || fail "chunked upload CRC: $(cat chunked.json)"

# 1 GiB with Content-Length (a sparse file of zeros)
truncate -s "$gib" zeros.bin
curl -fsS -T zeros.bin "$url/up" >length.json || fail "Content-Length 1 GiB upload"
rm -f zeros.bin
[ "$(field bytes length.json)" = "$gib" ] || fail "length upload: $(cat length.json)"
[ "$(field framing length.json)" = length ] || fail "length upload framing: $(cat length.json)"

# 1 GiB download
got=$(curl -sS -o /dev/null -w '%{size_download}' "$url/down/big?bytes=$gib" || true)
[ "$got" = "$gib" ] || fail "download: got $got of $gib bytes"

# an upstream that reads slowly (16 MiB, paused 1 ms after every piece): the
# client is paused too, the gateway does not take the body in (without flow
# control it would hold most of the 16 MiB)
before_slow=$(hwm_kb "$gw")
head -c $((16 * 1024 * 1024)) /dev/zero | curl -fsS -T - "$url/up?slow=1" >slow.json ||
  fail "slow upstream"
[ "$(field bytes slow.json)" = $((16 * 1024 * 1024)) ] || fail "slow upstream: $(cat slow.json)"
slow_grown=$(($(hwm_kb "$gw") - before_slow))
[ "$slow_grown" -lt 8192 ] || fail "a slow upstream grew the gateway's peak RSS by $slow_grown KiB"

peak=$(hwm_kb "$gw")
grown=$((peak - base))
echo "gateway peak RSS: $base KiB before, $peak KiB after 3 x $gib bytes of bodies (+$grown KiB)"
[ "$grown" -lt "$bound_kb" ] || fail "gateway peak RSS grew by $grown KiB (bound $bound_kb KiB)"

# random bytes arrive intact, with the client's framing kept
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >random.bin
want=$(crc32 random.bin)
curl -fsS -T random.bin "$url/up" >r1.json
curl -fsS -T - "$url/up" <random.bin >r2.json
curl -fsS --data-binary @random.bin -H 'Transfer-Encoding: chunked' "$url/up" >r3.json
for f in r1 r2 r3; do
  [ "$(field crc32 $f.json)" = "$want" ] || fail "$f: CRC $(cat $f.json), want $want"
  [ "$(field bytes $f.json)" = $((3 * 1024 * 1024 + 17)) ] || fail "$f: $(cat $f.json)"
done
[ "$(field framing r1.json)" = length ] || fail "r1 framing: $(cat r1.json)"
[ "$(field framing r2.json)" = chunked ] || fail "r2 framing: $(cat r2.json)"
# Expect is the gateway's to answer (hop by hop): the upstream never sees it
[ "$(field expect r1.json)" = "" ] || fail "Expect reached the upstream: $(cat r1.json)"

# Expect: 100-continue without a token: 401 and not one body byte sent (curl
# would wait 10 s for a 100 before sending anyway)
head -c $((4 * 1024 * 1024)) /dev/zero >four.bin
out=$(curl -sS -o refused.json -w '%{http_code} %{size_upload}' --expect100-timeout 10 \
  -H 'Expect: 100-continue' -T four.bin "$url/jwt/up")
[ "$out" = "401 0" ] || fail "Expect without a token: $out $(cat refused.json)"
grep -q '"error":"unauthorized"' refused.json || fail "401 body: $(cat refused.json)"
# with a token: 100 Continue, then the body goes through
curl -sS -v --expect100-timeout 10 -H 'Expect: 100-continue' -H "Authorization: Bearer $token" \
  -T four.bin "$url/jwt/up" >allowed.json 2>allowed.err || fail "Expect with a token"
grep -q '< HTTP/1.1 100 Continue' allowed.err || fail "no 100 Continue: $(cat allowed.err)"
[ "$(field bytes allowed.json)" = $((4 * 1024 * 1024)) ] || fail "with a token: $(cat allowed.json)"

# route max_body 1mb: a Content-Length over it is refused before its body
out=$(curl -sS -o big.json -w '%{http_code} %{size_upload}' --expect100-timeout 10 \
  -H 'Expect: 100-continue' -T four.bin "$url/small/up")
[ "$out" = "413 0" ] || fail "max_body, Content-Length: $out $(cat big.json)"
# a chunked body over it is cut off mid-way with 413
out=$(head -c $((4 * 1024 * 1024)) /dev/zero |
  curl -sS -o big2.json -w '%{http_code}' -T - "$url/small/up" 2>/dev/null || true)
[ "$out" = 413 ] || fail "max_body, chunked: $out $(cat big2.json)"
grep -q payload_too_large big2.json || fail "chunked 413 body: $(cat big2.json)"
# under the limit both framings pass
head -c 100000 /dev/urandom >small.bin
curl -fsS -T small.bin "$url/small/up" >s1.json
[ "$(field crc32 s1.json)" = "$(crc32 small.bin)" ] || fail "small body: $(cat s1.json)"

# connection refused by the first instance: a small body is replayed, a
# streamed one had not started and goes to the next instance too (round
# robin over a dead instance and the sink: most first picks fail)
before=$(retries)
for i in 1 2; do
  curl -fsS --data-binary @small.bin "$url/flaky/up" >f$i.json || fail "small retried ($i)"
  [ "$(field bytes f$i.json)" = 100000 ] || fail "small retried: $(cat f$i.json)"
  curl -fsS -T - "$url/flaky/up" <random.bin >g$i.json || fail "streamed retried ($i)"
  [ "$(field crc32 g$i.json)" = "$want" ] || fail "streamed retried: $(cat g$i.json)"
done
[ $(($(retries) - before)) -ge 2 ] || fail "retries: $before before, $(retries) after"

# an upstream that answers at the first piece of a 64 MiB body: the answer
# reaches the client, the rest of the body is not read (the connection
# closes after the answer) and the gateway goes on
out=$(head -c $((64 * 1024 * 1024)) /dev/zero | curl -sS -T - "$url/up?early=1" 2>/dev/null || true)
case "$out" in '{"early":'*) ;; *) fail "early answer: $out" ;; esac

# clients that leave half way: mid-stream to a slow upstream, and before
# sending a small body; the gateway answers nobody, frees both (the exit
# status below covers leaks under sanitizers) and serves the next request
head -c $((64 * 1024 * 1024)) /dev/zero | curl -sS -T - "$url/up?slow=1" >/dev/null 2>&1 &
leaver=$!
python3 - "${url#http://}" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split(":")
for path in ("/up", "/small/x"):
    s = socket.create_connection((host, int(port)))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc".encode())
    time.sleep(0.1)
    s.close()
PY
sleep 0.5
kill "$leaver" 2>/dev/null || true
wait "$leaver" 2>/dev/null || true
curl -fsS -T small.bin "$url/up" >after.json || fail "a request after clients left"
[ "$(field bytes after.json)" = 100000 ] || fail "after clients left: $(cat after.json)"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC"
echo "1 passed, 0 failed"
