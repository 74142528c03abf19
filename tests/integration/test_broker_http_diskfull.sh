#!/usr/bin/env bash
# colony broker on a full disk (issue 9): the data-dir on a 2 MiB tmpfs,
# publishes over HTTP until the disk is full:
# - the refused publish gets 507 with a reason naming the full disk, never
#   a success; the broker keeps running and answers reads;
# - every acknowledged publish is there (read back over HTTP, and after a
#   restart on the same tmpfs);
# - when space returns (a filler file removed) publishes succeed again;
# - an NDJSON batch larger than the space left fails half way: 507 naming
#   the full disk, with the lines stored (line, id) and the line to resend
#   from; each stored id is there (and after a restart), nothing after it.
# Skipped (with the reason) where mount is not permitted.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done
cd "$WORK"
mkdir mnt
if ! mount -t tmpfs -o size=2m tmpfs "$WORK/mnt" 2>mount.err; then
  echo "SKIP: cannot mount a tmpfs here ($(cat mount.err))"
  exit 0
fi
# unmount before fixture_cleanup removes $WORK
cleanup() {
  local rc=$?
  local p
  for ((p = ${#FIXTURE_PIDS[@]} - 1; p >= 0; p--)); do fixture_stop "${FIXTURE_PIDS[p]}" 2 || true; done
  FIXTURE_PIDS=()
  umount "$WORK/mnt" 2>/dev/null || umount -l "$WORK/mnt" 2>/dev/null || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

start_broker() {
  fixture_start_listening "$1" "$BIN/colony" broker --listen 127.0.0.1:0 \
    --resp-listen 127.0.0.1:0 --data-dir "$WORK/mnt/data"
  BPID=$FIXTURE_PID
  U=http://127.0.0.1:$FIXTURE_PORT
}
start_broker broker
curl -sf -X PUT "$U/streams/s" >/dev/null || fail "create"
# leave about 600 KB free: the filler comes back out later
head -c $((1500 * 1024)) /dev/zero >"$WORK/mnt/filler" 2>/dev/null || true

msg="{\"data\":\"$(head -c 16000 /dev/zero | tr '\0' m)\"}"
: >acked.txt
refused=
for ((i = 0; i < 1000; i++)); do
  out=$(curl -s -w '\n%{http_code}' -X POST "$U/streams/s/messages" -d "$msg")
  code=${out##*$'\n'}
  body=${out%$'\n'*}
  if [ "$code" = 201 ]; then
    jq -r .id <<<"$body" >>acked.txt
  else
    refused="$code $body"
    break
  fi
done
[ -n "$refused" ] || fail "1000 messages of 16 KB fitted in a 2 MiB tmpfs"
[[ "$refused" == 507* ]] || fail "a full disk answered: $refused"
[[ "$refused" == *"disk is full"* ]] || fail "the reason does not name the full disk: $refused"
n=$(wc -l <acked.txt)
((n > 10)) || fail "only $n publishes before the disk filled"
echo "disk full after $n acknowledged publishes: $refused"
kill -0 "$BPID" || fail "broker died on a full disk"

check_all() {
  curl -s "$U/streams/s/messages?count=10000" | jq -r '.messages[].id' >present.txt
  missing=$(comm -23 <(sort acked.txt) <(sort present.txt) | wc -l)
  [ "$missing" = 0 ] || fail "$missing acknowledged publishes missing ($1)"
}
check_all "while full"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/streams/s/messages" -d "$msg")
[ "$code" = 507 ] || fail "still full: got $code"

# space returns
rm -f "$WORK/mnt/filler"
out=$(curl -s -w '\n%{http_code}' -X POST "$U/streams/s/messages" -d "$msg")
[ "${out##*$'\n'}" = 201 ] || fail "no recovery after space returned: $out"
jq -r .id <<<"${out%$'\n'*}" >>acked.txt
check_all "after recovery"

# a batch that fills the disk half way: about 200 KB left, 50 lines of 16 KB
avail=$(df --output=avail -B1 "$WORK/mnt" | tail -1)
((avail > 300 * 1024)) || fail "only $avail bytes free after the filler went"
head -c $((avail - 200 * 1024)) /dev/zero >"$WORK/mnt/filler2" 2>/dev/null || true
for ((i = 1; i <= 50; i++)); do echo "$msg"; done >batch.ndjson
out=$(curl -s -w '\n%{http_code}' -X POST "$U/streams/s/messages" \
  -H 'Content-Type: application/x-ndjson' --data-binary @batch.ndjson)
code=${out##*$'\n'}
body=${out%$'\n'*}
[ "$code" = 507 ] || fail "a batch past the free space answered $code: ${body:0:300}"
[[ "$body" == *"disk is full"* ]] || fail "the reason does not name the full disk: ${body:0:300}"
nstored=$(jq '.stored | length' <<<"$body")
((nstored > 0 && nstored < 50)) || fail "stored $nstored of 50: ${body:0:300}"
[ "$(jq -c '[.stored[].line]' <<<"$body")" = "$(seq 1 "$nstored" | jq -sc .)" ] ||
  fail "stored lines: ${body:0:300}"
[ "$(jq .retry_from_line <<<"$body")" = $((nstored + 1)) ] || fail "retry_from_line: ${body:0:300}"
jq -r '.stored[].id' <<<"$body" >>acked.txt
check_all "after a batch stored in part"
total=$(curl -s "$U/streams/s/messages?count=10000" | jq '.messages | length')
[ "$total" = "$(wc -l <acked.txt)" ] || fail "$total entries, $(wc -l <acked.txt) acknowledged"
echo "a batch of 50 stored $nstored before the disk filled"
rm -f "$WORK/mnt/filler2"

# and after a restart
fixture_terminate "$BPID"
[ "$FIXTURE_RC" = 0 ] || fail "broker exited $FIXTURE_RC on SIGTERM"
start_broker broker2
check_all "after restart"
echo "test_broker_http_diskfull: passed"
