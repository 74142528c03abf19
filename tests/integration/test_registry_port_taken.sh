#!/usr/bin/env bash
# A registry whose port is taken (by another registry) exits 1 within a few
# seconds, says "cannot listen", and releases everything it set up before
# listening: its shutdown hook runs (the database is closed) and there is no
# LeakSanitizer report (the ASan build checks it; elsewhere liblsan is
# preloaded when it exists).
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"
fixture_start_registry first
port=$REGISTRY_PORT
first=$REGISTRY_PID

preload=""
case "${COLONY_TEST_CFLAGS:-}" in
  *sanitize=address*) ;;
  *) for lib in /usr/lib/*-linux-gnu/liblsan.so.0 /usr/lib/liblsan.so.0; do
       [ -e "$lib" ] && { preload=$lib; break; }
     done ;;
esac

# The second one has state of its own, so setup() arms a check timer: give it
# a service with a TTL check in a first run on a free port, then stop it.
fixture_start_registry second
curl -sf -X PUT "$REGISTRY_URL/v1/agent/service/register" \
  -d '{"Name":"web","ID":"web-1","Port":8080,"Check":{"TTL":"1m","Status":"passing"}}' >/dev/null
fixture_terminate "$REGISTRY_PID"
[ "$FIXTURE_RC" -eq 0 ] || fail "seeding registry did not stop cleanly (exit $FIXTURE_RC)"
mv "$WORK/second.log" "$WORK/seed.log"

rc=0
LD_PRELOAD="$preload" LSAN_OPTIONS=exitcode=23 timeout 10 "$BIN/colony" registry \
  --listen "127.0.0.1:$port" --data-dir "$WORK/second" 2>"$WORK/second.log" || rc=$?
[ "$rc" -eq 1 ] || fail "second registry exited $rc, expected 1"
grep -q '"msg":"cannot listen"' "$WORK/second.log" || fail "no 'cannot listen' log line"
if grep -q 'LeakSanitizer' "$WORK/second.log"; then fail "leaks"; fi
kill -0 "$first" || fail "first registry died"
# Its shutdown hook ran: the database was closed (SQLite removes the WAL file
# when the last connection closes) and the service stopped.
[ ! -e "$WORK/second/registry.db-wal" ] || fail "database left open"
grep -q '"msg":"stopped"' "$WORK/second.log" || fail "shutdown did not finish"
echo "1 passed, 0 failed"
