# Helpers for the supervisor's shell tests (tests/integration/test_supervisor_*.sh).
# Source after fixtures.sh and fixture_init.

# sup_free_ports N...: for each N prints (space-separated) a port P such that
# P .. P+N-1 were free a moment ago, the ranges apart from each other. The
# ports come from below the kernel's ephemeral range: a port taken from that
# range can be given, before the app binds it, to some other test's outgoing
# connection (seen as "address already in use" for an instance's PORT+1).
sup_free_ports() {
  python3 - "$@" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
floor = max(1024, low - 12000)
held, out = [], []
for n in map(int, sys.argv[1:]):
    for _ in range(200):
        if low - n > floor + 1000:
            base = random.randrange(floor, low - n)
        else:  # no room below the ephemeral range: take one from it
            s = socket.socket(); s.bind(("127.0.0.1", 0)); base = s.getsockname()[1]; s.close()
            if base + n > 65535: continue
        socks = []
        try:
            for i in range(n):
                t = socket.socket(); t.bind(("127.0.0.1", base + i)); socks.append(t)
        except OSError:
            for t in socks: t.close()
            continue
        held += socks; out.append(str(base)); break
print(" ".join(out))
for t in held: t.close()
PY
}

# sup_ps JQ_FILTER: runs the filter on `colony ps --json` for the state folder $STATE.
sup_ps() {
  "$BIN/colony" ps --json --state-dir "$STATE" | jq -r "$1"
}

# sup_status APP [INSTANCE]: the status of an instance (default 0).
sup_status() {
  sup_ps ".apps[] | select(.name == \"$1\" and .instance == ${2:-0}) | .status"
}

# sup_field APP INSTANCE FIELD: one field of an instance's ps row.
sup_field() {
  sup_ps ".apps[] | select(.name == \"$1\" and .instance == $2) | .$3"
}

# sup_all_online: every instance is online.
sup_all_online() {
  [ "$(sup_ps '[.apps[].status] | unique | join(",")')" = online ]
}

# sup_wait_until DESC SECONDS CMD...: runs CMD every 50 ms until it succeeds.
# The limit is wall-clock seconds (not a count of tries: on a loaded machine
# each try of the condition can take far longer than the 50 ms pause).
sup_wait_until() {
  local desc=$1 limit=$2 end
  shift 2
  end=$((${EPOCHREALTIME//[.,]/} + limit * 1000000))
  while ((${EPOCHREALTIME//[.,]/} < end)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  "$@" >/dev/null 2>&1 && return 0
  fail "timed out after ${limit}s waiting for: $desc"
}

# sup_alive PID: the process exists and is not a zombie.
sup_alive() {
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# sup_kill_recorded DIR: SIGKILLs every instance recorded in DIR/pids whose start
# time still matches (what a test leaves if it fails half way), never anything else.
sup_kill_recorded() {
  local f pid start now
  for f in "$1"/pids/*.pid; do
    [ -f "$f" ] || continue
    read -r pid start <"$f" || continue
    now=$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$now" ] && [ "$now" = "$start" ] && kill -9 -- "-$pid" 2>/dev/null
  done
  return 0
}
