#!/usr/bin/env bash
# colony gateway's connect step, with real processes on loopback: a route's
# "timeouts.connect" bounds the wait for an upstream that does not accept (a
# listener whose backlog is full drops SYNs), a connect failure is retried on
# another instance whatever the method (the upstream saw nothing, as nginx's
# proxy_next_upstream does it), and a lone unreachable upstream gets a 504
# that says so.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
bin=$BIN
work=$WORK
cd "$work"

# An upstream that never accepts: backlog 0, the queue filled by our own
# connections, so further SYNs get no answer and a connect just hangs.
cat >hang.py <<'PY'
import socket, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(0)
port = l.getsockname()[1]
fillers = []
for _ in range(8):
    s = socket.socket()
    s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    fillers.append(s)
print('{"port":%d}' % port, flush=True)
time.sleep(120)
PY
fixture_start_listening hang python3 hang.py
ph=$FIXTURE_PORT
fixture_start_listening a "$bin/echo_server" --name a --listen 127.0.0.1:0
pa=$FIXTURE_PORT
pr=$(fixture_free_port) # nothing listens there: refused at once

cat >routes.json <<JSON
{
  "upstreams": {
    "hang-then-a": {"targets": ["http://127.0.0.1:$ph", "http://127.0.0.1:$pa"],
                    "strategy": "round_robin"},
    "refused-then-a": {"targets": ["http://127.0.0.1:$pr", "http://127.0.0.1:$pa"],
                       "strategy": "round_robin"},
    "hang": {"targets": ["http://127.0.0.1:$ph"]}
  },
  "routes": [
    {"name": "slow-connect", "prefix": "/slow", "upstream": "hang-then-a",
     "timeouts": {"connect": "300ms", "try": "10s"}, "retries": {"attempts": 1}},
    {"name": "refused", "prefix": "/refused", "upstream": "refused-then-a", "retries": {"attempts": 1}},
    {"name": "lone", "prefix": "/lone", "upstream": "hang",
     "timeouts": {"connect": "300ms", "try": "10s"}, "retries": {"attempts": 0}}
  ]
}
JSON
"$bin/colony" gateway --check routes.json >/dev/null || fail "--check refused timeouts.connect"
sed '0,/"connect": "300ms"/s//"connect": "0s"/' \
  routes.json >bad.json
rc=0
"$bin/colony" gateway --check bad.json 2>check.err || rc=$?
[ "$rc" = 2 ] || fail "--check of connect 0s exited $rc"
grep -q "bad.json:[0-9]*: routes.0.timeouts.connect: .*1ms to 24h" check.err ||
  fail "--check connect 0s: $(cat check.err)"

fixture_start gw "$bin/colony" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --routes "$work/routes.json"
gw=$FIXTURE_PID
fixture_wait_log_port gw "$gw" '"msg":"proxy listening".*"port":[0-9]*'
url=http://127.0.0.1:$FIXTURE_PORT

# code METHOD PATH: the status; body in out.json, time in t.txt
code() { curl -sS -X "$1" -d 'x=1' -o out.json -w '%{http_code}' "$url$2"; }

# POSTs, not idempotent: each one that picks the hanging instance waits out
# the 300 ms connect timeout and goes to the other; none fails, none waits
# for the client's default 5 s.
start=$(date +%s%N)
for i in 1 2 3 4; do
  [ "$(code POST /slow/p$i)" = 200 ] || fail "POST $i past a connect timeout: $(cat out.json)"
done
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 4000 ] || fail "4 POSTs took ${ms} ms: the route's connect timeout was not used"

# refused at once: a POST is retried on the other instance too
for i in 1 2 3 4; do
  [ "$(code POST /refused/p$i)" = 200 ] || fail "POST $i past a refused connect: $(cat out.json)"
done

# one instance that never accepts: 504, and it says it was the connect
[ "$(code GET /lone)" = 504 ] || fail "lone hanging upstream: $(cat out.json)"
grep -q "did not accept a connection in time" out.json || fail "504 body: $(cat out.json)"

fixture_terminate "$gw"
[ "$FIXTURE_RC" = 0 ] || fail "gateway exited $FIXTURE_RC after SIGTERM"
echo "ok"
