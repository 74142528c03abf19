#!/usr/bin/env bash
# A killed supervisor leaves no orphan: after kill -9 of `colony up` its
# instances still run (their own sessions), and the next `colony up` finds
# them by their pid files (pid and start time) and stops them before it
# starts anything, so the port they held is free for the new instance. A pid
# file whose pid now belongs to an unrelated process (start time differs) and
# one whose process is gone are dropped without signalling anyone.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"

read -r PORT < <(sup_free_ports 1)
cat >colony.json <<JSON
{"apps": [
  {"name": "web", "cmd": ["$BIN/echo_server", "--listen", "127.0.0.1:$PORT"], "port": $PORT,
   "max_restarts": 2},
  {"name": "worker", "cmd": "exec sleep 1000", "instances": 2}
]}
JSON
fixture_start up1 "$BIN/colony" up --quiet --state-dir "$STATE"
UP1=$FIXTURE_PID
sup_wait_until "first supervisor online" 15 sup_all_online
OLD=$(sup_ps '.apps[].pid' | tr '\n' ' ')
[ "$(echo $OLD | wc -w)" = 3 ] || fail "pids: $OLD"

kill -9 "$UP1"
fixture_wait "$UP1"
for p in $OLD; do sup_alive "$p" || fail "instance $p died with its supervisor"; done

# An unrelated process whose pid is recorded with another start time, and a
# record of a process that is gone.
fixture_start decoy sleep 1000
DECOY=$FIXTURE_PID
echo "$DECOY 1" >"$STATE/pids/ghost-0.pid"
echo "4194000 12345" >"$STATE/pids/gone-0.pid"

fixture_start up2 "$BIN/colony" up --quiet --state-dir "$STATE"
UP2=$FIXTURE_PID
sup_wait_until "second supervisor online" 15 sup_all_online
grep -q "stopped 3 instances left by a supervisor that did not stop cleanly" "$WORK/up2.log" ||
  fail "leftovers not reported: $(cat "$WORK/up2.log")"
for p in $OLD; do sup_alive "$p" && fail "orphan $p still runs"; done
sup_alive "$DECOY" || fail "an unrelated process with a recorded pid was killed"
[ ! -e "$STATE/pids/ghost-0.pid" ] && [ ! -e "$STATE/pids/gone-0.pid" ] || fail "stale pid files kept"
NEW=$(sup_ps '.apps[].pid' | tr '\n' ' ')
for p in $NEW; do
  case " $OLD " in *" $p "*) fail "pid $p adopted instead of restarted" ;; esac
done
# The new web instance holds the port itself: it did not crash on "address in use".
sleep 0.3
[ "$(sup_field web 0 restarts)" = 0 ] && [ "$(sup_status web)" = online ] ||
  fail "web: $(sup_ps .) $(cat "$STATE/logs/web-error.log")"
curl -sf "http://127.0.0.1:$PORT/hello" >/dev/null || fail "web does not answer on $PORT"

fixture_terminate "$UP2"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC"
for p in $NEW; do sup_alive "$p" && fail "pid $p still runs after colony up stopped"; done
echo "test_supervisor_orphans: passed"
