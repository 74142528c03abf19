#!/usr/bin/env bash
# A registry whose port is taken (by another registry) exits 1 within a few
# seconds, says "cannot listen", and releases everything it set up before
# listening: its shutdown hook runs (the database is closed) and there is no
# LeakSanitizer report (the ASan build checks it; elsewhere liblsan is
# preloaded when it exists).
set -euo pipefail
bin="$1"
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
"$bin/colony" registry --listen 127.0.0.1:0 --data-dir "$dir/first" 2>"$dir/first.log" &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$dir/first.log" 2>/dev/null | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$dir/first.log"; echo "FAIL: first registry did not start"; exit 1; }

preload=""
case "${COLONY_TEST_CFLAGS:-}" in
  *sanitize=address*) ;;
  *) for lib in /usr/lib/*-linux-gnu/liblsan.so.0 /usr/lib/liblsan.so.0; do
       [ -e "$lib" ] && { preload=$lib; break; }
     done ;;
esac

# The second one has state of its own, so setup() arms a check timer: give it
# a service with a TTL check in a first run on a free port, then stop it.
"$bin/colony" registry --listen 127.0.0.1:0 --data-dir "$dir/second" 2>"$dir/seed.log" &
seed=$!
sport=""
for _ in $(seq 1 200); do
  sport=$(grep -o '"msg":"listening".*"port":[0-9]*' "$dir/seed.log" 2>/dev/null | grep -o '[0-9]*$' || true)
  [ -n "$sport" ] && break
  sleep 0.05
done
[ -n "$sport" ] || { cat "$dir/seed.log"; echo "FAIL: seeding registry did not start"; exit 1; }
curl -sf -X PUT "http://127.0.0.1:$sport/v1/agent/service/register" \
  -d '{"Name":"web","ID":"web-1","Port":8080,"Check":{"TTL":"1m","Status":"passing"}}' >/dev/null
kill -TERM "$seed"
wait "$seed" || { cat "$dir/seed.log"; echo "FAIL: seeding registry did not stop cleanly"; exit 1; }

rc=0
LD_PRELOAD="$preload" LSAN_OPTIONS=exitcode=23 timeout 10 "$bin/colony" registry \
  --listen "127.0.0.1:$port" --data-dir "$dir/second" 2>"$dir/second.log" || rc=$?
if [ "$rc" -ne 1 ]; then
  cat "$dir/second.log"
  echo "FAIL: second registry exited $rc, expected 1"
  exit 1
fi
grep -q '"msg":"cannot listen"' "$dir/second.log" || { cat "$dir/second.log"; echo "FAIL: no 'cannot listen' log line"; exit 1; }
if grep -q 'LeakSanitizer' "$dir/second.log"; then cat "$dir/second.log"; echo "FAIL: leaks"; exit 1; fi
kill -0 "$pid" || { echo "FAIL: first registry died"; exit 1; }
# Its shutdown hook ran: the database was closed (SQLite removes the WAL file
# when the last connection closes) and the service stopped.
[ ! -e "$dir/second/registry.db-wal" ] || { cat "$dir/second.log"; echo "FAIL: database left open"; exit 1; }
grep -q '"msg":"stopped"' "$dir/second.log" || { cat "$dir/second.log"; echo "FAIL: shutdown did not finish"; exit 1; }
echo ok
