#!/usr/bin/env bash
# colony startup prints a systemd unit for `colony up -f <absolute FILE>`:
# Type=simple, Restart=on-failure, WorkingDirectory (the file's folder),
# User (the current one, or --user), LimitNOFILE, KillMode=mixed, ExecStart
# with the running binary's path (/proc/self/exe) and the file made
# absolute; '%' and blanks in a path survive systemd's quoting; the install
# commands go to stderr, the unit alone to stdout; `systemd-analyze verify`
# accepts the unit when the tool is installed. Bad arguments exit 2.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

DIR="$WORK/my 100% app"
mkdir -p "$DIR"
echo '{"apps": [{"name": "a", "cmd": ["sleep", "1"]}]}' >"$DIR/colony.json"
EXE=$(readlink -f "$BIN/colony")
ME=$(id -un)

(cd "$DIR" && "$BIN/colony" startup systemd -f colony.json) >unit.service 2>install.txt ||
  fail "startup: $(cat install.txt)"
expect() { grep -qxF -- "$1" unit.service || fail "unit: no line '$1' in: $(cat unit.service)"; }
expect "[Service]"
expect "Type=simple"
expect "Restart=on-failure"
expect "User=$ME"
expect "WorkingDirectory=$WORK/my 100%% app"
expect "LimitNOFILE=65536"
expect "KillMode=mixed"
expect "ExecStart=\"$EXE\" up -f \"$WORK/my 100%% app/colony.json\""
expect "WantedBy=multi-user.target"
! grep -q '^#' unit.service || fail "install hints leaked into the unit on stdout"
grep -q "systemctl enable --now colony-$ME.service" install.txt || fail "install: $(cat install.txt)"

# --user, the default file of the current folder, bad arguments.
(cd "$DIR" && "$BIN/colony" startup --user nobody) >nobody.service 2>/dev/null ||
  fail "startup --user nobody"
grep -qx "User=nobody" nobody.service || fail "--user: $(cat nobody.service)"
rc=0
"$BIN/colony" startup --user no-such-user-here -f "$DIR/colony.json" >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] && grep -q "no user 'no-such-user-here'" err.txt || fail "unknown user: exit $rc"
rc=0
"$BIN/colony" startup -f "$WORK/missing.json" >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] && grep -q "missing.json: no such file" err.txt || fail "missing file: exit $rc"
rc=0
"$BIN/colony" startup upstart >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] || fail "an unsupported init system: exit $rc"
"$BIN/colony" startup --help | grep -q "KillMode=mixed" || fail "--help"

if command -v systemd-analyze >/dev/null; then
  cp unit.service "colony-$ME.service"
  systemd-analyze verify "$WORK/colony-$ME.service" >verify.txt 2>&1 ||
    fail "systemd-analyze verify: $(cat verify.txt)"
  echo "systemd-analyze verify: the unit is valid"
else
  echo "SKIPPED: systemd-analyze is not installed: the unit was not verified by systemd"
fi
echo "startup: the unit's fields, quoting, --user, errors: passed"
