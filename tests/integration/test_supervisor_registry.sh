#!/usr/bin/env bash
# Readiness through the registry, with the real `colony registry` and `hello`:
# an app with "registry" is ready only once each instance passes there
# (/v1/health/service/hello?passing), not when its port answers, so its
# dependents wait; each process registers under its own service ID
# (COLONY_SERVICE_ID); a reload hands an instance over only once the
# replacement passes in the registry (the registry stopped with SIGSTOP holds
# the reload, SIGCONT lets it finish), and the old processes deregister their
# own entries, not their replacements'.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap '[ -n "${REG_PID:-}" ] && kill -CONT "$REG_PID" 2>/dev/null || true; sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"
read -r REG HELLO < <(sup_free_ports 1 2)
URL=http://127.0.0.1:$REG

cat >after.sh <<SH
#!/usr/bin/env bash
# records how many hello instances pass in the registry when it starts
curl -fsS "$URL/v1/health/service/hello?passing" | jq length >"$WORK/after-saw"
exec sleep 600
SH
chmod +x after.sh
cat >colony.json <<JSON
{"apps": [
  {"name": "hello", "cmd": "exec '$BIN/hello' --listen 127.0.0.1:\$PORT --workers 2 --registry.ttl=1s",
   "instances": 2, "port": $HELLO, "registry": "$URL", "listen_timeout": "30s",
   "env": {"COLONY_REGISTRY_URL": "$URL"}},
  {"name": "after", "script": "after.sh", "depends_on": "hello"}
]}
JSON
"$BIN/colony" up --check >/dev/null 2>check.err || fail "--check: $(cat check.err)"
grep -q registry check.err && fail "registry key warned: $(cat check.err)"

# No registry yet: hello listens but is not ready, and "after" waits.
fixture_start up "$BIN/colony" up --quiet --state-dir "$STATE"
hello_answers() { curl -fsS "http://127.0.0.1:$HELLO/hello" && curl -fsS "http://127.0.0.1:$((HELLO + 1))/hello"; }
sup_wait_until "hello listening" 10 hello_answers
sleep 1
[ "$(sup_status hello 0)" = launching ] && [ "$(sup_status hello 1)" = launching ] ||
  fail "hello ready before it passes in the registry: $(sup_ps .)"
[ "$(sup_status after)" = waiting ] || fail "after started before hello passed: $(sup_ps .)"

# The registry comes up; hello registers; then it is online and "after" starts.
fixture_start registry "$BIN/colony" registry --listen "127.0.0.1:$REG" --data-dir "$WORK/reg"
REG_PID=$FIXTURE_PID
sup_wait_until "every instance online" 20 sup_all_online
sup_wait_until "after started" 10 test -s "$WORK/after-saw"
[ "$(cat "$WORK/after-saw")" = 2 ] || fail "after saw $(cat "$WORK/after-saw") hello passing, not 2"
ids() { curl -fsS "$URL/v1/health/service/hello?passing" | jq -r '[.[].Service.ID] | sort | join(" ")'; }
BEFORE=$(ids)
[[ "$BEFORE" =~ ^hello-$HELLO-[0-9]+\ hello-$((HELLO + 1))-[0-9]+$ ]] ||
  fail "service IDs from the supervisor: '$BEFORE'"
OLD0=$(sup_field hello 0 pid)

# Reload with the registry frozen: the replacement listens but cannot pass,
# so instance 0 is not handed over.
kill -STOP "$REG_PID"
"$BIN/colony" reload hello --state-dir "$STATE" >reload.out 2>&1 &
RELOAD=$!
sleep 2
[ "$(sup_field hello 0 pid)" = "$OLD0" ] || fail "handed over while the registry could not list it"
sup_alive "$OLD0" || fail "old pid stopped before its replacement passed"
[ "$(sup_ps '.reloads.hello.state')" = running ] || fail "reload: $(sup_ps .reloads)"
kill -CONT "$REG_PID"
wait "$RELOAD" || fail "reload: $(cat reload.out)"
grep -q "2 instances reloaded" reload.out || fail "reload: $(cat reload.out)"
[ "$(sup_field hello 0 pid)" != "$OLD0" ] || fail "instance 0 not replaced"
sup_alive "$OLD0" && fail "old pid $OLD0 still runs"
# The replacements pass under new IDs; the old entries were removed by their
# own processes (not the new ones').
new_ids() { a=$(ids); [ -n "$a" ] && [ "$(wc -w <<<"$a")" = 2 ] && [ "$a" != "$BEFORE" ]; }
sup_wait_until "two new IDs passing" 10 new_ids
AFTER=$(ids)
for id in $BEFORE; do grep -qw "$id" <<<"$AFTER" && fail "old ID $id still listed: $AFTER"; done
[ "$(curl -fsS "$URL/v1/catalog/service/hello" | jq length)" = 2 ] ||
  fail "catalog: $(curl -fsS "$URL/v1/catalog/service/hello")"
grep -q "reload: pid [0-9]* ready; stopping old pid $OLD0" "$STATE/logs/hello-error-0.log" || fail "hello log: $(cat "$STATE/logs/hello-error-0.log")"

fixture_terminate "$PID_up"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC"
echo "test_supervisor_registry: passed"
