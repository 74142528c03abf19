#!/usr/bin/env bash
# Crashes under colony up, with real processes: kill -9 of an instance is
# restarted on PM2's exponential backoff schedule (200, 300, 450, 675 ms: read
# from the tagged log timestamps, with a tolerance) and ps counts the
# restarts; a crash loop ends as errored after max_restarts and stays so
# until a user's start (both shown in ps and /metrics); an exit code in stop_exit_codes is not restarted; an
# instance over max_memory_restart is restarted; an
# instance that ignores SIGTERM is killed after kill_timeout; restart gives a
# new process.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"

cat >colony.json <<'JSON'
{"apps": [
  {"name": "flaky", "cmd": "exec sleep 1000", "exp_backoff_restart_delay": 200,
   "min_uptime": 100},
  {"name": "crash", "cmd": "echo crashing >&2; exit 1", "max_restarts": 3,
   "restart_delay": 100, "min_uptime": "1s"},
  {"name": "finished", "cmd": "exit 0", "stop_exit_codes": [0]},
  {"name": "hog", "cmd": "x=$(yes | head -c 40000000); echo grown; while :; do sleep 1; done",
   "max_memory_restart": "20M"},
  {"name": "stubborn", "cmd": "trap '' TERM; while :; do sleep 0.05; done",
   "kill_timeout": 300}
]}
JSON
fixture_start up "$BIN/colony" up --quiet --state-dir "$STATE"
UP=$FIXTURE_PID
flaky_online() { [ "$(sup_status flaky)" = online ]; }
sup_wait_until "flaky online" 15 flaky_online

# ---- kill -9, four times: restarted after 200, 300, 450, 675 ms ----
for n in 1 2 3 4; do
  old=$(sup_field flaky 0 pid)
  kill -9 "$old"
  replaced() { p=$(sup_field flaky 0 pid) && [ "$p" != "$old" ] && [ "$p" != 0 ] && flaky_online; }
  sup_wait_until "flaky restarted ($n)" 10 replaced
  sleep 0.15 # up longer than min_uptime: a stable run, so no crash loop
done
[ "$(sup_field flaky 0 restarts)" = 4 ] || fail "restarts: $(sup_ps .)"
LOG=$STATE/logs/flaky-error.log
grep -c "exited on signal 9" "$LOG" | grep -qx 4 || fail "kills logged: $(cat "$LOG")"
# Each "exited" to the next "started": the delay the log announces, and the
# measured gap at least that and at most 1 s more (a loaded CI machine).
awk '
  function ms(t) { split(substr(t, 12, 12), a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
  /exited on signal 9/ { exited = ms($1) }
  /colony: restart [0-9]+ in/ { announced[++n] = $(NF - 1) }
  /colony: started pid/ && exited { gap[n] = ms($1) - exited; exited = 0 }
  END {
    split("200 300 450 675", want, " ")
    for (i = 1; i <= 4; i++) {
      if (announced[i] != want[i]) { print "restart " i " announced " announced[i] " ms, wanted " want[i]; bad = 1 }
      if (gap[i] < want[i] - 2 || gap[i] > want[i] + 1000) { print "restart " i " after " gap[i] " ms, wanted " want[i]; bad = 1 }
    }
    exit bad
  }' "$LOG" >gaps.out || fail "backoff schedule: $(cat gaps.out) $(cat "$LOG")"

# ---- a crash loop: errored after 3 unstable runs, and it stays errored ----
crash_errored() { [ "$(sup_status crash)" = errored ]; }
sup_wait_until "crash errored" 10 crash_errored
[ "$(sup_field crash 0 restarts)" = 2 ] || fail "crash restarts: $(sup_ps .)"
[ "$(sup_field crash 0 exit_code)" = 1 ] || fail "crash exit code"
[ "$(grep -c 'crashing' "$STATE/logs/crash-error.log")" = 3 ] || fail "crash runs"
grep -q "errored: 3 unstable restarts" "$STATE/logs/crash-error.log" || fail "errored not logged"
sleep 0.5
[ "$(sup_status crash)" = errored ] && [ "$(sup_field crash 0 pid)" = 0 ] || fail "errored restarted"
"$BIN/colony" ps --state-dir "$STATE" | grep -qE '^crash +0 +- +errored' || fail "ps: errored row"
# ... and in the supervisor's /metrics, with the kills counted and its own RSS.
curl -sf --unix-socket "$STATE/control.sock" http://supervisor/metrics >metrics.txt || fail "/metrics"
grep -qx 'colony_supervisor_instance_status{app="crash",instance="0",status="errored"} 1' metrics.txt &&
  grep -qx 'colony_supervisor_instance_restarts_total{app="crash",instance="0"} 2' metrics.txt &&
  grep -qx 'colony_supervisor_instance_restarts_total{app="flaky",instance="0"} 4' metrics.txt &&
  grep -qE '^process_resident_memory_bytes [0-9]+' metrics.txt || fail "metrics: $(cat metrics.txt)"
# A user's start begins a fresh count: three more runs, errored again.
"$BIN/colony" start crash --state-dir "$STATE" >/dev/null
six_runs() { [ "$(grep -c crashing "$STATE/logs/crash-error.log")" = 6 ] && crash_errored; }
sup_wait_until "crash errored again" 10 six_runs

# ---- stop_exit_codes: exit 0 is final ----
[ "$(sup_status finished)" = stopped ] || fail "finished: $(sup_status finished)"
[ "$(sup_field finished 0 restarts)" = 0 ] && [ "$(sup_field finished 0 exit_code)" = 0 ] ||
  fail "finished restarted"

# ---- kill_timeout: SIGTERM ignored, SIGKILL after 300 ms ----
stub=$(sup_field stubborn 0 pid)
t0=$(date +%s%N)
"$BIN/colony" stop stubborn --state-dir "$STATE" >/dev/null
stub_stopped() { [ "$(sup_status stubborn)" = stopped ]; }
sup_wait_until "stubborn stopped" 10 stub_stopped
elapsed=$((($(date +%s%N) - t0) / 1000000))
[ "$elapsed" -ge 300 ] || fail "stubborn stopped after $elapsed ms, before kill_timeout"
grep -q "still running after 300 ms: SIGKILL" "$STATE/logs/stubborn-error.log" || fail "no SIGKILL"
sup_alive "$stub" && fail "stubborn still runs"

# ---- max_memory_restart: over 20 MB, restarted ----
hog_restarted() { [ "$(sup_field hog 0 restarts)" -ge 1 ]; }
sup_wait_until "hog restarted for its memory" 20 hog_restarted
grep -qE "memory [0-9]+ bytes over max_memory_restart 20971520: restart" \
  "$STATE/logs/hog-error.log" || fail "memory restart not logged: $(cat "$STATE/logs/hog-error.log")"
"$BIN/colony" stop hog --state-dir "$STATE" >/dev/null

# ---- restart: a new process, counted ----
old=$(sup_field flaky 0 pid)
"$BIN/colony" restart flaky --state-dir "$STATE" | grep -q "restart flaky: 1 instance" || fail "restart"
replaced() { p=$(sup_field flaky 0 pid) && [ "$p" != "$old" ] && [ "$p" != 0 ] && flaky_online; }
sup_wait_until "flaky restarted by a user" 10 replaced
[ "$(sup_field flaky 0 restarts)" = 5 ] || fail "restart count after restart: $(sup_field flaky 0 restarts)"
rc=0
"$BIN/colony" restart nosuch --state-dir "$STATE" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "restart of an unknown app: exit $rc"

"$BIN/colony" down --state-dir "$STATE" | grep -q "every app stopped" || fail "down"
fixture_wait "$UP"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC after down"
echo "test_supervisor_restart: passed"
