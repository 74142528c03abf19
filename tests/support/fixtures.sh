# Shell fixtures for Colony's shell tests (tests/integration/*.sh,
# tests/interop/*.sh). Source it, then call fixture_init once:
#
#   . "$(dirname "$0")/../support/fixtures.sh"
#   fixture_init "$1"            # bin dir; makes $WORK, sets the EXIT trap
#   fixture_start_registry reg   # colony registry on a free port: $REGISTRY_URL
#   fixture_start_listening svc "$BIN/hello" --listen 127.0.0.1:0
#   ...
#   echo "1 passed, 0 failed"
#
# Everything started through fixture_start* is recorded, and the EXIT trap
# kills exactly those processes (SIGTERM, then SIGKILL after a grace period)
# and removes $WORK: nothing the test did not start is touched. Each started
# process writes stdout and stderr to $WORK/<name>.log; fail() prints the logs.
# Loops are bounded (about 10 s per wait) so a test never hangs on a fixture.

FIXTURE_PIDS=() # what this test started and has not reaped, oldest first

# fixture_init BIN_DIR: sets BIN (absolute) and WORK (a fresh temporary
# folder) and the EXIT trap. The working directory is left as it is.
fixture_init() {
  BIN=${1:?usage: $0 <bin-dir>}
  BIN=$(cd "$BIN" && pwd)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/colony-test.XXXXXX")
  trap fixture_cleanup EXIT
}

# The EXIT trap: stops what fixture_start* started, newest first (SIGTERM, up
# to 2 s to exit, then SIGKILL), and removes $WORK. Only pids fixture_start
# recorded and the test did not reap itself (fixture_wait forgets them), so a
# pid the system has since reused is never signalled.
fixture_cleanup() {
  local rc=$?
  local p
  for ((p = ${#FIXTURE_PIDS[@]} - 1; p >= 0; p--)); do
    fixture_stop "${FIXTURE_PIDS[p]}" 2 || true
  done
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
  return "$rc"
}

# fixture_stop PID [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 2) s,
# then SIGKILL; reaps it. Returns 0 (whatever the process's exit status).
fixture_stop() {
  local pid=$1 grace=${2:-2} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 0
}

# fail MESSAGE: prints it and the logs of what was started, exits 1.
fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "${WORK:-/nonexistent}"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

# fixture_free_port: prints a TCP port that was free on 127.0.0.1 a moment
# ago. Prefer --listen 127.0.0.1:0 plus fixture_wait_log_port where the
# program supports it: a free port can be taken by someone else before use.
fixture_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fixture_start NAME CMD...: starts CMD in the background with its output in
# $WORK/NAME.log and records it; sets FIXTURE_PID and PID_<NAME>.
fixture_start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  FIXTURE_PID=$!
  FIXTURE_PIDS+=("$FIXTURE_PID")
  printf -v "PID_$name" '%s' "$FIXTURE_PID"
}

# fixture_wait_log_port NAME [PID] [PATTERN]: waits (10 s at most) until
# $WORK/NAME.log has a line matching PATTERN (grep -o; default '"port":[0-9]*'),
# takes the number it ends with as the port the program listens on and sets
# FIXTURE_PORT. Fails early if PID exits first.
fixture_wait_log_port() {
  local name=$1 pid=${2:-} pattern=${3:-'"port":[0-9]*'} port= i
  for ((i = 0; i < 200; i++)); do
    port=$(grep -o "$pattern" "$WORK/$name.log" 2>/dev/null | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then fail "$name exited at startup"; fi
    sleep 0.05
  done
  [ -n "$port" ] || fail "$name did not log its port"
  FIXTURE_PORT=$port
}

# fixture_start_listening NAME CMD...: starts CMD (which must listen on a
# port of its choosing and log it, e.g. --listen 127.0.0.1:0) and waits for
# that port (the log line matching $FIXTURE_PORT_PATTERN if set); sets
# FIXTURE_PID, FIXTURE_PORT, PID_<NAME> and PORT_<NAME>.
fixture_start_listening() {
  local name=$1
  fixture_start "$@"
  fixture_wait_log_port "$name" "$FIXTURE_PID" "${FIXTURE_PORT_PATTERN:-}"
  printf -v "PORT_$name" '%s' "$FIXTURE_PORT"
}

# fixture_forget PID: the test has reaped PID itself; cleanup leaves it alone
# (its number may already belong to another process).
fixture_forget() {
  local keep=() p
  for p in "${FIXTURE_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  FIXTURE_PIDS=("${keep[@]}")
}

# fixture_wait PID: waits for a process started by fixture_start, sets
# FIXTURE_RC to its exit status and forgets it. Always returns 0.
fixture_wait() {
  FIXTURE_RC=0
  wait "$1" || FIXTURE_RC=$?
  fixture_forget "$1"
}

# fixture_terminate PID: SIGTERM, then fixture_wait (FIXTURE_RC is its status).
fixture_terminate() {
  kill -TERM "$1" 2>/dev/null || true
  fixture_wait "$1"
}

# fixture_start_registry NAME [ARGS...]: `colony registry` on a free loopback
# port with its data in $WORK/NAME; waits until it listens. Sets
# REGISTRY_PID, REGISTRY_PORT, REGISTRY_URL (and PID_/PORT_<NAME>).
fixture_start_registry() {
  local name=$1
  shift
  FIXTURE_PORT_PATTERN='"msg":"listening".*"port":[0-9]*' \
    fixture_start_listening "$name" "$BIN/colony" registry --listen 127.0.0.1:0 \
    --data-dir "$WORK/$name" "$@"
  REGISTRY_PID=$FIXTURE_PID
  REGISTRY_PORT=$FIXTURE_PORT
  REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT"
}
