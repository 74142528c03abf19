#!/usr/bin/env bash
# colony up -d: returns once the supervisor answers on its control socket,
# which runs on in its own session (not a child of the caller) with its
# output in the state folder's supervisor.log; colony ps sees the apps and
# colony down stops everything and the supervisor, leaving nothing running.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# On failure: the background supervisor first (by its recorded pid and start time), then its apps.
cleanup_daemon() {
  local pid start now
  if read -r pid start <"$STATE/supervisor.pid" 2>/dev/null; then
    now=$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$now" ] && [ "$now" = "$start" ] && kill -9 "$pid" 2>/dev/null
  fi
  sup_kill_recorded "$STATE"
}
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'cleanup_daemon || true; fixture_cleanup' EXIT
cd "$WORK"
cat >colony.json <<'JSON'
{"apps": [{"name": "worker", "cmd": "echo working; exec sleep 1000", "instances": 2}]}
JSON
rc=0
timeout 20 "$BIN/colony" up -d --state-dir "$STATE" >up.out 2>up.err || rc=$?
[ "$rc" = 0 ] || fail "colony up -d exited $rc: $(cat up.err)"
grep -q "running in the background, pid [0-9]*" up.out || fail "up -d said: $(cat up.out)"
SUP=$(grep -o 'pid [0-9]*' up.out | head -1 | cut -d' ' -f2)
sup_alive "$SUP" || fail "the background supervisor is not running"
[ "$(sup_ps .supervisor_pid)" = "$SUP" ] || fail "ps answers from another supervisor"
[ "$(awk '{sub(/.*\) /, ""); print $4}' "/proc/$SUP/stat")" = "$SUP" ] || fail "not its own session"
sup_wait_until "workers online" 10 sup_all_online
PIDS=$(sup_ps '.apps[].pid')
[ -s "$STATE/supervisor.log" ] || fail "no supervisor.log"
grep -q "\[worker:1\] working" "$STATE/logs/worker-out-1.log" || fail "worker output"
grep -q "working" "$STATE/supervisor.log" && fail "app output copied into supervisor.log"

"$BIN/colony" down --state-dir "$STATE" | grep -q "every app stopped" || fail "down"
gone() { ! sup_alive "$SUP"; }
sup_wait_until "the supervisor exits" 10 gone
for p in $PIDS; do sup_alive "$p" && fail "pid $p still runs after down"; done
[ ! -e "$STATE/supervisor.pid" ] || fail "supervisor.pid left"
grep -q "every app stopped" "$STATE/supervisor.log" || fail "supervisor.log: $(cat "$STATE/supervisor.log")"
echo "test_supervisor_daemon: passed"
