#!/usr/bin/env bash
# Log files of `colony up`: every line tagged with app and instance; an app's
# file rotated when it would pass max_size (<file>.1 newest .. <file>.retain,
# older ones gone), no line lost or cut (lines written = lines found across the
# files, in order, each whole); the combined log (logs/colony.log) holds every
# app's lines and rotates too; `colony logs APP --lines N`, `colony logs`
# (the combined log) and `colony logs -f`.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
. "$(dirname "$0")/../support/supervisor_fixtures.sh"
fixture_init "$1"
STATE=$WORK/state
# (No `(exit $rc)` here: under set -e it ends the trap before fixture_cleanup
# on a failure, leaving processes behind. bash keeps the script's status.)
trap 'sup_kill_recorded "$STATE" || true; fixture_cleanup' EXIT
cd "$WORK"

# talk.sh N: N numbered lines of about 70 bytes, a marker, then it idles.
cat >talk.sh <<'SH'
#!/usr/bin/env bash
for ((i = 1; i <= $1; i++)); do
  printf 'line %s %s %05d abcdefghijklmnopqrstuvwxyz0123456789\n' "$COLONY_APP" "$COLONY_INSTANCE" "$i"
done
echo "done $COLONY_APP $COLONY_INSTANCE"
exec sleep 600
SH
chmod +x talk.sh
cat >colony.json <<'JSON'
{"apps": [
  {"name": "keep", "script": "talk.sh", "args": "1500", "instances": 2,
   "max_size": 8192, "retain": 100},
  {"name": "few", "script": "talk.sh", "args": ["1000"], "max_size": "4K", "retain": 2}
]}
JSON
"$BIN/colony" up --check 2>check.err >/dev/null || fail "--check: $(cat check.err)"
grep -q "max_size\|retain" check.err && fail "max_size/retain still warned: $(cat check.err)"

fixture_start up "$BIN/colony" up --quiet --state-dir "$STATE"
UP=$FIXTURE_PID
LOGS=$STATE/logs
for f in keep-out-0 keep-out-1 few-out; do
  sup_wait_until "$f written" 20 grep -q "^.* done " "$LOGS/$f.log"
done

# keep: 1500 lines per instance across the files, in order, whole, tagged; each
# file at most max_size; several rotations happened.
check_files() { # BASE N MAX INSTANCE APP
  python3 - "$@" <<'PY' || fail "check of $1: see above"
import glob, os, re, sys
base, n, cap, inst, app = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rotated = sorted(glob.glob(base + ".*"), key=lambda p: -int(p.rsplit(".", 1)[1]))
files = rotated + [base]
pat = re.compile(r"^\S+ \[%s:%s\] line %s %s (\d{5}) abcdefghijklmnopqrstuvwxyz0123456789$" % (app, inst, app, inst))
seen = []
for f in files:
    size = os.path.getsize(f)
    assert size <= cap, "%s is %d bytes, over %d" % (f, size, cap)
    for line in open(f):
        if " line " not in line: continue
        m = pat.match(line.rstrip("\n"))
        assert m, "%s: cut or untagged line %r" % (f, line)
        seen.append(int(m.group(1)))
print(base, len(files), "files", len(seen), "lines")
if n > 0:
    assert seen == list(range(1, n + 1)), "%s: %d lines found of %d (first gap near %s)" % (
        base, len(seen), n, next((i + 1 for i, v in enumerate(seen) if v != i + 1), None))
    assert len(rotated) >= 5, "%s rotated only %d times" % (base, len(rotated))
else:
    assert seen and seen == list(range(seen[0], seen[0] + len(seen))), "%s: not the last lines in order" % base
    assert seen[-1] == -n, "%s: last line %d" % (base, seen[-1])
PY
}
check_files "$LOGS/keep-out-0.log" 1500 8192 0 keep
check_files "$LOGS/keep-out-1.log" 1500 8192 1 keep
# few: retain 2 -> the file, .1 and .2, nothing older; what is kept is the
# newest lines in order.
[ -f "$LOGS/few-out.log.1" ] && [ -f "$LOGS/few-out.log.2" ] || fail "few: not rotated: $(ls "$LOGS")"
[ ! -e "$LOGS/few-out.log.3" ] || fail "few: retain 2 kept more: $(ls "$LOGS")"
check_files "$LOGS/few-out.log" -1000 4096 0 few

# The combined log: every app's lines, tagged, rotated at the largest
# max_size (8192), nothing lost (retain 100 is enough to hold them all).
python3 - "$LOGS/colony.log" <<'PY' || fail "combined log"
import glob, os, re, sys
base = sys.argv[1]
files = sorted(glob.glob(base + ".*"), key=lambda p: -int(p.rsplit(".", 1)[1])) + [base]
assert len(files) > 5, files
counts = {}
for f in files:
    assert os.path.getsize(f) <= 8192, f
    for line in open(f):
        m = re.match(r"^\S+ \[(\w+):(\d)( err)?\] ", line)
        assert m, "untagged %r" % line
        if " line " in line:
            counts[m.group(1) + ":" + m.group(2)] = counts.get(m.group(1) + ":" + m.group(2), 0) + 1
assert counts == {"keep:0": 1500, "keep:1": 1500, "few:0": 1000}, counts
PY

# colony logs APP --lines N: the last N lines of each of its files.
"$BIN/colony" logs keep --lines 3 --state-dir "$STATE" >logs.out
[ "$(grep -c '^==> ' logs.out)" = 4 ] || fail "logs keep: $(cat logs.out)"
grep -q "keep-out-0.log <==" logs.out && grep -q "\[keep:1\] done keep 1" logs.out ||
  fail "logs keep: $(cat logs.out)"
[ "$(sed -n '/keep-out-1.log <==/,/^==>/p' logs.out | grep -c '\[keep:1\]')" = 3 ] ||
  fail "logs --lines 3: $(cat logs.out)"
# colony logs: the combined log.
"$BIN/colony" logs --lines 4 --state-dir "$STATE" >all.out
[ "$(grep -c '^==> ' all.out)" = 1 ] && grep -q "colony.log <==" all.out ||
  fail "logs (combined): $(cat all.out)"
[ "$(grep -c '^20.* \[' all.out)" = 4 ] || fail "logs --lines 4 (combined): $(cat all.out)"

# colony logs -f: every app's new lines as they come.
fixture_start follow "$BIN/colony" logs -f --lines 1 --state-dir "$STATE"
FOLLOW=$FIXTURE_PID
sup_wait_until "logs -f prints the tail" 10 grep -q "==> " "$WORK/follow.log"
"$BIN/colony" restart few --state-dir "$STATE" >/dev/null
# The tail (--lines 1) already holds few's "done" line of its first run: wait
# for the "done" that follows the new run's last numbered line.
sup_wait_until "logs -f follows few's restart" 15 \
  awk '/\[few:0\] line few 0 01000 /{last=1} last && /\[few:0\] done few 0/{found=1} END{exit !found}' \
  "$WORK/follow.log"
[ "$(grep -c '\[few:0\] line few 0' "$WORK/follow.log")" = 1000 ] ||
  fail "logs -f lost lines: $(grep -c '\[few:0\] line few 0' "$WORK/follow.log")"
[ ! -e "$LOGS/few-out.log.3" ] || fail "few: retain 2 kept more after a restart"

fixture_terminate "$UP"
[ "$FIXTURE_RC" = 0 ] || fail "colony up exited $FIXTURE_RC"
fixture_wait "$FOLLOW"
echo "test_supervisor_logs: passed"
