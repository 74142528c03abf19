#!/usr/bin/env bash
# Zero-downtime reload and scale under colony up, with real processes:
# - `colony reload web` of two echo_server instances (each shares its PORT
#   with SO_REUSEPORT: --workers 2) while a client hammers both ports with a
#   new connection per request: zero failed requests, new pids, the old pids
#   gone, restarts counted (1 per reload, as PM2 counts them), twice over;
# - the old process's listening socket is fenced before its SIGTERM (new
#   SYNs dropped, so clients retry onto the successor): an app that stops
#   accepting at SIGTERM but closes its socket only 1.5 s later loses no
#   connection made in that window (without the fence the kernel queues about
#   half of them on the old socket and resets them when it closes);
#   A second reload while one runs is refused (409);
# - a replacement that never listens: killed after listen_timeout, the reload
#   fails with a clear message, the old instance keeps its pid and serves;
# - `colony scale web 4` starts instances 2 and 3 on PORT+2 and PORT+3;
#   `colony scale web 1` stops 3, 2 and 1: `colony ps --json` shows it.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap '[ -f "$WORK/load.stop" ] || touch "$WORK/load.stop" || true; sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"

read -r WEB STUCK SLOW < <(sup_free_ports 4 1 1)
# slow.py: SO_REUSEPORT; at SIGTERM it stops accepting, closes 1.5 s later.
cat >slow.py <<'PY'
import os, signal, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(128)
def term(*_):
    time.sleep(1.5)
    s.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
PY
cat >colony.json <<JSON
{"apps": [
  {"name": "web", "instances": 2, "port": $WEB, "kill_timeout": 3000, "listen_timeout": 5000,
   "cmd": "exec '$BIN/echo_server' --listen 127.0.0.1:\$PORT --workers 2 --name web\$COLONY_INSTANCE"},
  {"name": "slow", "port": $SLOW, "kill_timeout": 5000, "listen_timeout": 15000, "cmd": ["python3", "$WORK/slow.py"]},
  {"name": "stuck", "port": $STUCK, "listen_timeout": 600,
   "cmd": "if [ -e '$WORK/stuck.once' ]; then exec sleep 1000; fi; touch '$WORK/stuck.once'; exec '$BIN/echo_server' --listen 127.0.0.1:\$PORT --workers 2"}
]}
JSON
fixture_start up "$BIN/colony" up --quiet --state-dir "$STATE"
UP=$FIXTURE_PID
sup_wait_until "every instance online" 15 sup_all_online

# The load: one request after another on a new connection each, alternating
# between the two ports, until load.stop appears; every failure is listed.
cat >load.py <<'PY'
import http.client, os, sys, time
ports, stop, out = [int(p) for p in sys.argv[1:3]], sys.argv[3], sys.argv[4]
ok = failed = 0
errors = []
while not os.path.exists(stop):
    port = ports[(ok + failed) % 2]
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/load", headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status == 200:
            ok += 1
        else:
            failed += 1
            errors.append("%d: status %d" % (port, r.status))
    except Exception as e:
        failed += 1
        errors.append("%d: %r" % (port, e))
    if ok + failed == 50:
        open(out + ".started", "w").close()
with open(out, "w") as f:
    f.write("%d %d\n" % (ok, failed))
    f.write("\n".join(errors[:20]) + "\n")
PY
python3 load.py "$WEB" "$((WEB + 1))" "$WORK/load.stop" "$WORK/load.out" &
LOAD=$!
sup_wait_until "the load loop running" 10 test -e "$WORK/load.out.started"

for round in 1 2; do
  old0=$(sup_field web 0 pid) old1=$(sup_field web 1 pid)
  "$BIN/colony" reload web --state-dir "$STATE" >reload.out 2>&1 ||
    fail "reload $round: $(cat reload.out) $(cat "$STATE"/logs/web-error-*.log)"
  grep -q "web: 2 instances reloaded" reload.out || fail "reload $round said: $(cat reload.out)"
  new0=$(sup_field web 0 pid) new1=$(sup_field web 1 pid)
  [ "$new0" != "$old0" ] && [ "$new1" != "$old1" ] && [ "$new0" != 0 ] && [ "$new1" != 0 ] ||
    fail "reload $round: pids $old0 $old1 -> $new0 $new1"
  ! sup_alive "$old0" && ! sup_alive "$old1" || fail "reload $round: an old pid still runs"
  [ "$(sup_field web 0 restarts)" = "$round" ] && [ "$(sup_field web 1 restarts)" = "$round" ] ||
    fail "reload $round: restarts $(sup_ps .)"
  [ "$(sup_status web 0)" = online ] && [ "$(sup_status web 1)" = online ] ||
    fail "reload $round: status $(sup_ps .)"
  [ "$(sup_ps '.reloads.web.state')" = done ] || fail "ps reloads: $(sup_ps .reloads)"
  sleep 0.3 # load on the new pair before the next round
done
touch "$WORK/load.stop"
wait "$LOAD"
read -r OK FAILED <load.out
[ "$FAILED" = 0 ] || fail "$FAILED of $((OK + FAILED)) requests failed during the reloads: $(tail -n +2 load.out)"
[ "$OK" -ge 100 ] || fail "only $OK requests during the reloads"
echo "reload under load: $OK requests, $FAILED failed"
grep -q "reload: replacement pid $new0 started beside pid" "$STATE/logs/web-error-0.log" &&
  grep -q "reload: pid $new0 ready; stopping old pid" "$STATE/logs/web-error-0.log" ||
  fail "reload not logged: $(cat "$STATE/logs/web-error-0.log")"
curl -sf "http://127.0.0.1:$WEB/x" | jq -e '.instance == "web0"' >/dev/null || fail "web0 answers"

! grep -q "could not filter" "$STATE"/logs/web-error-*.log || fail "the fence was not set"

# ---- the fence: connections made while the old socket lingers all succeed ----
old=$(sup_field slow 0 pid)
"$BIN/colony" reload slow --state-dir "$STATE" >slow.out 2>&1 &
RELOAD=$!
switched() { p=$(sup_field slow 0 pid) && [ "$p" != "$old" ] && [ "$p" != 0 ]; }
sup_wait_until "slow switched over" 10 switched
# Its old process is still draining: a second reload is refused meanwhile.
if "$BIN/colony" reload slow --state-dir "$STATE" >busy.out 2>&1; then fail "a second reload ran"; fi
grep -q "answered 409.*still running" busy.out || fail "second reload: $(cat busy.out)"
python3 - "$SLOW" >fence.out <<'PY' || fail "connections lost while the old socket lingered: $(cat fence.out)"
import http.client, sys, threading
port, bad = int(sys.argv[1]), []
def one(i):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/%d" % i)
        if c.getresponse().status != 200: bad.append("status")
    except Exception as e:
        bad.append(repr(e))
threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print("failed: %d of 16 %s" % (len(bad), bad[:3]))
sys.exit(1 if bad else 0)
PY
fixture_wait "$RELOAD"
[ "$FIXTURE_RC" = 0 ] || fail "reload slow: $(cat slow.out)"
grep -q "slow: 1 instance reloaded" slow.out || fail "reload slow said: $(cat slow.out)"

# ---- a replacement that never listens: the old instance keeps serving ----
stuck_pid=$(sup_field stuck 0 pid)
if "$BIN/colony" reload stuck --state-dir "$STATE" >stuck.out 2>&1; then
  fail "reload of stuck succeeded: $(cat stuck.out)"
fi
grep -q "stuck instance 0: the replacement (pid [0-9]*) was not listening on port $STUCK within listen_timeout 600 ms; killed, the old pid $stuck_pid keeps serving" stuck.out ||
  fail "stuck message: $(cat stuck.out)"
[ "$(sup_field stuck 0 pid)" = "$stuck_pid" ] && [ "$(sup_status stuck)" = online ] &&
  [ "$(sup_field stuck 0 restarts)" = 0 ] || fail "stuck after the failed reload: $(sup_ps .)"
[ "$(sup_ps '.reloads.stuck.state')" = failed ] || fail "ps reloads: $(sup_ps .reloads)"
curl -sf "http://127.0.0.1:$STUCK/x" >/dev/null || fail "the old stuck instance does not serve"
replacement=$(grep -o 'the replacement (pid [0-9]*)' stuck.out | grep -o '[0-9]*')
gone() { ! sup_alive "$replacement"; }
sup_wait_until "the stuck replacement killed" 5 gone

# ---- scale up and down ----
"$BIN/colony" scale web 4 --state-dir "$STATE" >scale.out || fail "scale 4: $(cat scale.out)"
grep -q "scale web: 2 -> 4 instances" scale.out || fail "scale said: $(cat scale.out)"
four_online() { [ "$(sup_ps '[.apps[] | select(.name == "web" and .status == "online")] | length')" = 4 ]; }
sup_wait_until "4 web instances online" 10 four_online
curl -sf "http://127.0.0.1:$((WEB + 3))/x" | jq -e '.instance == "web3"' >/dev/null ||
  fail "instance 3 does not serve on PORT+3"
p1=$(sup_field web 1 pid) p3=$(sup_field web 3 pid)
"$BIN/colony" scale web 1 --state-dir "$STATE" >scale.out || fail "scale 1: $(cat scale.out)"
one_left() { [ "$(sup_ps '[.apps[] | select(.name == "web") | .instance] | join(",")')" = 0 ]; }
sup_wait_until "web scaled down to instance 0" 10 one_left
! sup_alive "$p1" && ! sup_alive "$p3" || fail "scaled-down instances still run"
[ "$(sup_status web 0)" = online ] || fail "web 0 after scale down: $(sup_ps .)"
"$BIN/colony" scale web x --state-dir "$STATE" 2>/dev/null && fail "scale to x accepted"
"$BIN/colony" scale nope 2 --state-dir "$STATE" 2>/dev/null && fail "scale of an unknown app accepted"
# Back up to 2: the slot stopped by the scale down starts again.
"$BIN/colony" scale web 2 --state-dir "$STATE" >/dev/null || fail "scale 2"
two_online() { [ "$(sup_ps '[.apps[] | select(.name == "web" and .status == "online")] | length')" = 2 ]; }
sup_wait_until "2 web instances online" 10 two_online

"$BIN/colony" down --state-dir "$STATE" >/dev/null || fail "down"
fixture_wait "$UP"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited with $FIXTURE_RC"
echo "ok"
