#!/usr/bin/env bash
# `make run`'s script: `colony up` on examples/colony.json (ports moved to free
# ones) starts the registry, the broker, two hello instances and the gateway;
# both hellos register, the gateway routes /api/hello to them through the
# registry and both answer; `colony ps` lists every app online; the printed
# commands are right; `colony reload hello` under a client loop through the
# gateway fails no request; SIGINT to the script (what Ctrl-C sends: it execs
# `colony up`) stops everything: hello deregistered, `colony up` exits 0, no
# process of the demo remains and every port is free again.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
root=$(cd "$(dirname "$0")/../.." && pwd)
STATE=$WORK/state/colony
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
read -r reg broker resp hello gw admin < <(sup_free_ports 1 1 1 2 1 1)
ports="$reg $broker $resp $hello $((hello + 1)) $gw $admin"

"$BIN/colony" up --check -f "$root/examples/colony.json" >/dev/null 2>"$WORK/check.err" ||
  fail "examples/colony.json: $(cat "$WORK/check.err")"
[ ! -s "$WORK/check.err" ] || fail "examples/colony.json warns: $(cat "$WORK/check.err")"

fixture_start demo env COLONY_DEMO_DIR="$WORK/state" COLONY_DEMO_REGISTRY_PORT="$reg" \
  COLONY_DEMO_BROKER_PORT="$broker" COLONY_DEMO_RESP_PORT="$resp" COLONY_DEMO_HELLO_PORT="$hello" \
  COLONY_DEMO_GATEWAY_PORT="$gw" COLONY_DEMO_ADMIN_PORT="$admin" \
  "$root/scripts/run-demo" "$BIN"
pid=$FIXTURE_PID
sup_wait_until "the control socket" 10 test -S "$STATE/control.sock"
online() { [ "$(sup_ps '[.apps[] | select(.status == "online")] | length')" = 5 ]; }
for _ in $(seq 1 300); do online && break; sleep 0.1; done
online || fail "not every app online: $("$BIN/colony" ps --state-dir "$STATE"; tail -n 5 "$STATE"/logs/*.log)"
"$BIN/colony" ps --state-dir "$STATE" >"$WORK/ps.out"
for app in registry broker hello gateway; do
  grep -qE "^$app +0 +[0-9]+ +online" "$WORK/ps.out" || fail "ps: $app: $(cat "$WORK/ps.out")"
done
grep -qE "^hello +1 +[0-9]+ +online" "$WORK/ps.out" || fail "ps: hello 1: $(cat "$WORK/ps.out")"
PIDS=$(sup_ps '.apps[].pid')

# The printed commands.
for cmd in "curl http://127.0.0.1:$gw/api/hello" "redis-cli -p $resp PING" \
  "curl http://127.0.0.1:$reg/v1/catalog/services" "colony ps --state-dir $STATE"; do
  grep -qF "$cmd" "$WORK/demo.log" || fail "not printed: $cmd"
done
# The broker speaks Redis.
[ "$(redis-cli -p "$resp" PING)" = PONG ] || fail "broker PING"
# Both hellos registered and passing.
passing() {
  [ "$(curl -fsS "http://127.0.0.1:$reg/v1/health/service/hello?passing" | jq length)" = 2 ]
}
sup_wait_until "both hello instances passing in the registry" 15 passing
# Through the gateway until both instances answered (their own request counts).
served() { # PORT: requests to /hello this instance answered
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^http_requests_total\{.*route="\/hello".*status_code="200"/ {n += $2} END {print n + 0}'
}
both=0
for _ in $(seq 1 60); do
  [ "$(curl -fsS "http://127.0.0.1:$gw/api/hello")" = '{"message":"hello"}' ] ||
    fail "gateway /api/hello"
  if [ "$(served "$hello")" -gt 0 ] && [ "$(served $((hello + 1)))" -gt 0 ]; then
    both=1
    break
  fi
done
[ "$both" = 1 ] || fail "not both hello instances answered through the gateway"

# colony reload hello under a client loop through the gateway: no request fails,
# and both instances are new processes, passing in the registry.
OLD_HELLO=$(sup_ps '[.apps[] | select(.name == "hello") | .pid] | join(" ")')
python3 - "$gw" "$BIN/colony" "$STATE" >"$WORK/reload.out" 2>&1 <<'PY' || fail "reload through the gateway: $(cat "$WORK/reload.out")"
import http.client, subprocess, sys, threading, time
port, colony, state = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ok, bad, stop = [0], [], threading.Event()
def loop():
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/hello")
            r = c.getresponse(); r.read(); c.close()
            if r.status == 200: ok[0] += 1
            else: bad.append(r.status)
        except Exception as e:
            bad.append(repr(e))
threads = [threading.Thread(target=loop) for _ in range(2)]
for t in threads: t.start()
time.sleep(0.3)
r = subprocess.run([colony, "reload", "hello", "--state-dir", state], capture_output=True,
                   text=True, timeout=60)
time.sleep(0.3)
stop.set()
for t in threads: t.join()
print(r.stdout + r.stderr, "requests:", ok[0] + len(bad), "failed:", len(bad), bad[:3])
sys.exit(0 if r.returncode == 0 and not bad and ok[0] > 0 else 1)
PY
grep -q "hello: 2 instances reloaded" "$WORK/reload.out" || fail "reload: $(cat "$WORK/reload.out")"
for p in $OLD_HELLO; do
  [ "$(sup_ps "[.apps[] | select(.pid == $p)] | length")" = 0 ] || fail "hello pid $p not replaced"
done
sup_wait_until "both new hello instances passing" 15 passing

# Ctrl-C: SIGINT to the script, which is `colony up` now.
kill -INT "$pid"
gone() { ! kill -0 "$pid"; }
sup_wait_until "colony up to exit after SIGINT" 20 gone
fixture_wait "$pid"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC after SIGINT"
# 2 old processes at the reload, 2 at Ctrl-C.
[ "$(cat "$STATE"/logs/hello-error-*.log | grep -c '"msg":"deregistered from the registry"')" = 4 ] ||
  fail "hello did not deregister"
[ "$(curl -s "http://127.0.0.1:$reg/v1/health/service/hello" 2>/dev/null)" = "" ] ||
  fail "the registry still answers after Ctrl-C"
for p in $PIDS; do sup_alive "$p" && fail "pid $p still runs after Ctrl-C"; done
python3 - $ports <<'PY' || fail "a port of the demo is still taken"
import socket, sys
for p in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p)); s.listen(1); s.close()
PY
[ ! -e "$STATE/control.sock" ] || fail "control socket left"
[ -z "$(ls "$STATE/pids")" ] || fail "pid files left: $(ls "$STATE/pids")"
echo "1 passed, 0 failed"
