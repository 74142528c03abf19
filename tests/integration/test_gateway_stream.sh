#!/usr/bin/env bash
# Bodies streamed through colony gateway with bounded memory: a large download
# arrives whole while the gateway's RSS stays small; a client that reads slowly
# pauses the upstream instead of making the gateway buffer the body (or cut
# it); an upstream that dies half way through a chunked body gives the client a
# cut response, never one that looks complete.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

fixture_start_listening up "$BIN/echo_server" --name up --listen 127.0.0.1:0
up=$FIXTURE_PORT
# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
# default), which would read as growth: keep it small for this process.
FIXTURE_PORT_PATTERN='"msg":"proxy listening".*"port":[0-9]*' \
  fixture_start_listening gw env ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" \
  "$BIN/colony" gateway --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --route "/=http://127.0.0.1:$up" --access-log=false
gw=$FIXTURE_PID
url=http://127.0.0.1:$FIXTURE_PORT
base=$(rss_kb "$gw")

# 512 MiB at full speed: every byte arrives, the gateway stays small
size=$((512 * 1024 * 1024))
got=$(curl -fsS -o /dev/null -w '%{size_download}' "$url/big?bytes=$size")
[ "$got" = "$size" ] || fail "download: got $got of $size bytes"
after=$(rss_kb "$gw")
[ $((after - base)) -lt 32768 ] || fail "gateway RSS grew by $((after - base)) KiB for a 512 MiB body"

# a slow reader: 48 MiB read 64 KiB at a time with pauses; the gateway's RSS
# is sampled while the body is in flight
python3 - "$url" "$gw" <<'PY' || fail "slow reader"
import sys, time, urllib.request
url, gw = sys.argv[1], sys.argv[2]
size = 48 * 1024 * 1024
def rss():
    for line in open(f"/proc/{gw}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
start = rss()
peak = start
got = 0
with urllib.request.urlopen(f"{url}/slow?bytes={size}", timeout=30) as r:
    while True:
        chunk = r.read(65536)
        if not chunk:
            break
        got += len(chunk)
        if got % (1 << 20) < 65536:
            time.sleep(0.02)
            peak = max(peak, rss())
assert got == size, f"got {got} of {size}"
grown = peak - start
assert grown < 16384, f"gateway RSS grew by {grown} KiB while a slow client read 48 MiB"
print(f"slow reader: {got} bytes, gateway RSS +{grown} KiB at most")
PY

# the upstream dies half way through a chunked body: the client sees a cut body
curl -sS -o cut.out "$url/cut?bytes=$((256 * 1024 * 1024))&chunked=1" 2>cut.err &
c=$!
# kill it once the body flows (bounded): a fixed 0.2 s under load could kill
# it before the request reached it, and curl got a whole 502 instead
for _ in $(seq 1 100); do
  [ "$(stat -c %s cut.out 2>/dev/null || echo 0)" -gt 65536 ] && break
  sleep 0.1
done
kill -9 "$PID_up"
fixture_wait "$PID_up"
rc=0
wait "$c" || rc=$?
[ "$rc" != 0 ] || fail "a cut chunked body looked complete to curl ($(stat -c %s cut.out) bytes)"
grep -qi "transfer closed\|partial\|outstanding" cut.err || fail "curl did not see a cut body: $(cat cut.err)"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC"
echo "1 passed, 0 failed"
