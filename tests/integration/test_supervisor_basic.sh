#!/usr/bin/env bash
# colony up end to end with real processes: a bad file is refused with its
# line (exit 2); apps start in depends_on order, each gated on the readiness
# (port accepting) of what it depends on; PORT / COLONY_INSTANCE /
# NODE_APP_INSTANCE per instance; output captured in per-app files, tagged
# with app, instance and log_date_format; `ps`, `ps --json`, `logs`, `stop`,
# `start`, `logs -f`; SIGTERM stops everything dependents first and leaves nothing
# running; a second supervisor on the same state folder is refused.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"

# ---- a bad file: exit 2, file, line, key and reason ----
cat >bad.json <<'JSON'
{"apps": [
  {"name": "a", "script": "a.js",
   "instances": "lots"}
]}
JSON
rc=0
"$BIN/colony" up -f bad.json --state-dir "$STATE" 2>bad.err || rc=$?
[ "$rc" = 2 ] || fail "bad file: exit $rc, wanted 2"
grep -q 'bad.json:3: apps.0.instances: expected a number, "max" or -1' bad.err ||
  fail "bad file: $(cat bad.err)"
[ ! -e "$STATE/control.sock" ] || fail "a refused file started a control socket"
rc=0
"$BIN/colony" up -f ecosystem.config.js 2>js.err || rc=$?
[ "$rc" = 2 ] && grep -q "JavaScript ecosystem files are not read" js.err || fail "a .js file: $rc"

# ---- the apps: db <- api (2 instances) <- web ----
# app.sh: logs "start" and "stop" to $ORDER_FILE, refuses to start unless the
# port it depends on accepts, listens on $PORT (echo_server), prints to both streams.
cat >app.sh <<SH
#!/usr/bin/env bash
log() { echo "\$1 \$COLONY_APP:\$COLONY_INSTANCE" >>"\$ORDER_FILE"; }
if [ -n "\${NEEDS_PORT:-}" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/\$NEEDS_PORT") 2>/dev/null; then
  log dependency-down
  exit 1
fi
log start
sleep "\${START_DELAY:-0}"
trap 'sleep 0.1; log stop; exit 0' TERM
echo "hello from \$COLONY_APP:\$COLONY_INSTANCE port=\$PORT node=\$NODE_APP_INSTANCE mode=\${MODE:-}"
echo "a warning from \$COLONY_APP:\$COLONY_INSTANCE" >&2
"$BIN/echo_server" --listen "127.0.0.1:\$PORT" >/dev/null 2>&1 &
while :; do wait; done
SH
chmod +x app.sh
read -r DB API WEB < <(sup_free_ports 1 2 1)
cat >colony.json <<JSON
{"apps": [
  {"name": "web", "script": "app.sh", "port": $WEB, "depends_on": ["api"],
   "log_date_format": "YYYY-MM-DD HH:mm:ss Z",
   "env": {"ORDER_FILE": "$WORK/order", "NEEDS_PORT": "$API"}},
  {"name": "api", "script": "app.sh", "instances": 2, "exec_mode": "cluster",
   "depends_on": "db", "kill_timeout": 3000,
   "env": {"PORT": $API, "ORDER_FILE": "$WORK/order", "NEEDS_PORT": "$DB", "MODE": "dev"},
   "env_production": {"MODE": "prod"}},
  {"name": "db", "script": "app.sh", "port": $DB, "frobnicate": true,
   "env": {"ORDER_FILE": "$WORK/order", "START_DELAY": "0.4"}}
]}
JSON
"$BIN/colony" up --check --state-dir "$STATE" >check.out 2>check.err || fail "--check: $(cat check.err)"
grep -q "3 apps, good" check.out || fail "--check said $(cat check.out)"
grep -q "colony.json:9: apps.2.frobnicate: unknown key, ignored" check.err ||
  fail "unknown key not warned: $(cat check.err)"

fixture_start up "$BIN/colony" up --env production --state-dir "$STATE"
UP=$FIXTURE_PID
sup_wait_until "every instance online" 15 sup_all_online
[ "$(sup_ps '.apps | length')" = 4 ] || fail "ps: $(sup_ps .)"

# Start order: db ready before any api, both api ready before web; nothing
# started before its dependency accepted connections.
grep -q dependency-down order && fail "an app started before its dependency was ready: $(cat order)"
starts=$(awk '$1 == "start" {print $2}' order | tr '\n' ' ')
case "$starts" in
"db:0 api:0 api:1 web:0 " | "db:0 api:1 api:0 web:0 ") ;;
*) fail "start order: $starts" ;;
esac

# Environment per instance, env_production over env; tagged lines.
LOGS=$STATE/logs
grep -q "\[api:0\] hello from api:0 port=$API node=0 mode=prod" "$LOGS/api-out-0.log" ||
  fail "api:0 out: $(cat "$LOGS/api-out-0.log")"
grep -q "\[api:1\] hello from api:1 port=$((API + 1)) node=1 mode=prod" "$LOGS/api-out-1.log" ||
  fail "api:1 out: $(cat "$LOGS/api-out-1.log")"
grep -q "\[api:1 err\] a warning from api:1" "$LOGS/api-error-1.log" || fail "api:1 stderr"
grep -qE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z \[db:0\] hello from db:0' "$LOGS/db-out.log" ||
  fail "db out (ISO time): $(cat "$LOGS/db-out.log")"
grep -qE '^20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{2}:[0-9]{2} \[web:0\] hello' \
  "$LOGS/web-out.log" || fail "web out (log_date_format): $(cat "$LOGS/web-out.log")"
grep -q "\[web:0\] hello from web:0" up.log || fail "output not copied to the terminal"
[ "$(stat -c %a "$STATE/control.sock")" = 600 ] || fail "control socket mode"

# ps: the table and JSON.
"$BIN/colony" ps --state-dir "$STATE" >ps.out
head -1 ps.out | grep -q "name.*id.*pid.*status.*uptime.*restarts.*cpu.*memory" || fail "ps head"
[ "$(grep -c ' online ' ps.out)" = 4 ] || fail "ps table: $(cat ps.out)"
grep -qE '^api +1 +[0-9]+ +online +[0-9]+s +0 +[0-9]+% +[0-9.]+mb' ps.out || fail "ps row: $(cat ps.out)"
for p in $(sup_ps '.apps[].pid'); do
  sup_alive "$p" || fail "ps lists pid $p that does not run"
done
[ "$(sup_ps '[.apps[].memory] | min > 1000000')" = true ] || fail "ps memory"

# logs: the last N lines of each file of an app.
"$BIN/colony" logs api --lines 1 --state-dir "$STATE" >logs.out
[ "$(grep -c '^==> ' logs.out)" = 4 ] || fail "logs files: $(cat logs.out)"
grep -q "hello from api:1" logs.out || fail "logs: $(cat logs.out)"
rc=0
"$BIN/colony" logs nosuch --state-dir "$STATE" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "logs of an unknown app: exit $rc"

# logs -f: the tail, then new lines as they come (web's stop and start below).
fixture_start follow "$BIN/colony" logs web -f --lines 1 --state-dir "$STATE"
FOLLOW=$FIXTURE_PID
sup_wait_until "logs -f prints the tail" 10 grep -q "hello from web:0" "$WORK/follow.log"

# stop / start one app.
WEB_PID=$(sup_field web 0 pid)
"$BIN/colony" stop web --state-dir "$STATE" | grep -q "stop web: 1 instance" || fail "stop web"
web_stopped() { [ "$(sup_status web)" = stopped ]; }
sup_wait_until "web stopped" 10 web_stopped
sup_alive "$WEB_PID" && fail "web still runs after stop"
"$BIN/colony" start web --state-dir "$STATE" >/dev/null
sup_wait_until "web online again" 10 sup_all_online
[ "$(sup_field web 0 restarts)" = 0 ] || fail "a user's start is no restart"
sup_wait_until "logs -f follows" 10 grep -q "\[web:0 err\] colony: started pid" "$WORK/follow.log"
grep -q "\[web:0 err\] colony: exited" "$WORK/follow.log" || fail "logs -f: $(cat "$WORK/follow.log")"
grep -q "api:" "$WORK/follow.log" && fail "logs -f web printed another app's lines"

# A second supervisor on the same folder is refused.
rc=0
"$BIN/colony" up --state-dir "$STATE" 2>second.err || rc=$?
[ "$rc" = 1 ] && grep -q "already runs" second.err || fail "second supervisor: $rc $(cat second.err)"

# SIGTERM: dependents first, every process gone, exit 0.
PIDS=$(sup_ps '.apps[].pid')
: >order
fixture_terminate "$UP"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC"
stops=$(awk '$1 == "stop" {print $2}' order | tr '\n' ' ')
case "$stops" in
"web:0 api:0 api:1 db:0 " | "web:0 api:1 api:0 db:0 ") ;;
*) fail "stop order: $stops" ;;
esac
for p in $PIDS; do sup_alive "$p" && fail "pid $p still runs after colony up stopped"; done
fixture_wait "$FOLLOW"
[ "$FIXTURE_RC" = 0 ] || fail "logs -f exited $FIXTURE_RC when the supervisor stopped"
[ ! -e "$STATE/control.sock" ] || fail "socket left behind"
[ -z "$(ls "$STATE/pids")" ] || fail "pid files left: $(ls "$STATE/pids")"
echo "test_supervisor_basic: passed"
