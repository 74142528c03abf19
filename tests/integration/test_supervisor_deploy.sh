#!/usr/bin/env bash
# colony deploy against a real sshd on loopback (started here with a
# throwaway host key and user key) and a local bare git repository with two
# commits: setup clones into PATH/source; deploy puts current at commit 1
# with post-deploy run in it with env (a value with a quote and a $(...) that
# must arrive as written, in a path with a blank and a quote); a new commit
# and deploy move current to commit 2; revert brings commit 1 back; list
# shows the history; a failing post-deploy, a bad ref and an unreachable
# host, a failing pre-deploy or pre-deploy-local each stop with a clear error
# (the stage, its exit status, its stderr) and leave current unchanged; a missing
# environment names the file and line. Skipped (loudly) only if sshd cannot
# start.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
cd "$WORK"

SSHD=/usr/sbin/sshd
for tool in ssh ssh-keygen git; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/bootstrap installs it)"
done
skip() {
  echo "SKIPPED: $* -- the deploy cycle was NOT tested (scripts/bootstrap installs openssh-server)" >&2
  exit 0
}
[ -x "$SSHD" ] || skip "$SSHD is not installed"

# ---- sshd on 127.0.0.1 with throwaway keys ----
mkdir -p ssh
ssh-keygen -q -t ed25519 -N '' -f ssh/host_key
ssh-keygen -q -t ed25519 -N '' -f ssh/id
cp ssh/id.pub ssh/authorized_keys
# sshd refuses to start without its privilege separation folder.
[ -d /run/sshd ] || { [ "$(id -u)" = 0 ] && mkdir -p /run/sshd; } || true
PORT=$(fixture_free_port)
cat >ssh/sshd_config <<EOF
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host_key
AuthorizedKeysFile $WORK/ssh/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
PidFile $WORK/ssh/sshd.pid
LogLevel ERROR
# A login shell started by sshd reads ~/.bashrc unless SHLVL says it is
# nested; this machine's root .bashrc (pyenv init) costs seconds per session
# under load, and is not what is tested.
SetEnv SHLVL=1
EOF
fixture_start sshd "$SSHD" -D -e -f "$WORK/ssh/sshd_config" -p "$PORT"
# The deploys share one connection (ssh_options: ControlMaster, as a user
# would set it up): on a loaded machine each new ssh connection costs seconds.
# The master is ssh's own background process: ask it to leave at the end (it
# also leaves when sshd goes).
stop_master() {
  ssh -o ControlPath="$WORK/ssh/cm-%C" -p "$PORT" -l "$(id -un)" -O exit 127.0.0.1 2>/dev/null || true
}
# (No `(exit $rc)` in the trap: under set -e it would end the trap there, on
# a failure, before fixture_cleanup stops sshd. bash keeps the exit status.)
trap 'stop_master; fixture_cleanup' EXIT
ME=$(id -un)
# Up when it accepts and greets (an ssh login would run the login shell's
# rc files: seconds on a loaded machine).
up=0
for _ in $(seq 1 100); do
  kill -0 "$PID_sshd" 2>/dev/null || break
  greeting=$( (exec 5<>"/dev/tcp/127.0.0.1/$PORT" && timeout 5 head -c 4 <&5) 2>/dev/null || true)
  if [ "$greeting" = SSH- ]; then
    up=1
    break
  fi
  sleep 0.1
done
[ "$up" = 1 ] || skip "sshd did not start: $(cat "$WORK/sshd.log")"

# ---- a bare repository with one commit ----
git init -q --bare -b main repo.git
git init -q -b main work
commit() { # commit VERSION
  echo "$1" >work/VERSION
  git -C work add VERSION
  git -C work -c user.name=t -c user.email=t@example.com commit -q -m "version $1"
  git -C work push -q "$WORK/repo.git" main
}
commit 1
SHA1=$(git -C work rev-parse HEAD)

APP="$WORK/srv/my app's"
env_block() { # env_block NAME PORT REF POST_DEPLOY [MORE_KEYS]
  cat <<EOF
    "$1": {${5:-}
      "user": "$ME", "host": ["127.0.0.1"], "port": $2,
      "key": "$WORK/ssh/id",
      "ssh_options": ["UserKnownHostsFile=$WORK/ssh/known_hosts",
                      "StrictHostKeyChecking=accept-new", "IdentitiesOnly=yes",
                      "ControlMaster=auto", "ControlPath=$WORK/ssh/cm-%C",
                      "ControlPersist=60"],
      "repo": "$WORK/repo.git", "ref": "$3", "path": "$APP",
      "post-setup": "echo setup > \"\$SHARED/post-setup.txt\"",
      "pre-deploy-local": "${LOCAL_HOOK:-echo local >> '$WORK/local.txt'}",
      "post-deploy": "$4",
      "env": {"GREETING": "it's \$(echo not-run) here", "N": 7}
    }
EOF
}
{
  echo '{"apps": [{"name": "web", "script": "server.js"}],'
  echo ' "deploy": {'
  env_block production "$PORT" origin/main \
    'printf \"%s %s %s\\n\" \"$GREETING\" \"$N\" \"$(cat VERSION)\" >> \"$SHARED/post-deploy.txt\"'
  echo ,
  env_block failing "$PORT" origin/main 'echo failing-hook >&2; exit 7'
  echo ,
  env_block badref "$PORT" origin/nope 'true'
  echo ,
  env_block unreachable "$(fixture_free_port)" origin/main 'true'
  echo ,
  env_block prefail "$PORT" origin/main 'true' '"pre-deploy": "echo pre-hook-says-no >&2; exit 5",'
  echo ,
  LOCAL_HOOK='exit 3' env_block localfail "$PORT" origin/main 'true'
  echo ' }}'
} >eco.json

current() { readlink "$APP/current" || echo none; }

# ---- setup ----
"$BIN/colony" deploy eco.json production setup >setup.out 2>&1 || fail "setup: $(cat setup.out)"
[ -d "$APP/source/.git" ] || fail "setup: no source clone: $(cat setup.out)"
[ -d "$APP/shared" ] || fail "setup: no shared/"
grep -qx setup "$APP/shared/post-setup.txt" || fail "setup: post-setup did not run in source"
[ "$(current)" = none ] || fail "setup made current"

# ---- deploy commit 1 ----
"$BIN/colony" deploy eco.json production >deploy1.out 2>&1 || fail "deploy 1: $(cat deploy1.out)"
[ "$(cat "$APP/current/VERSION")" = 1 ] || fail "deploy 1: current is not at commit 1"
[ "$(cat "$APP/current/REVISION")" = "$SHA1" ] || fail "deploy 1: REVISION"
grep -qx "it's \$(echo not-run) here 7 1" "$APP/shared/post-deploy.txt" ||
  fail "deploy 1: post-deploy with env: $(cat "$APP/shared/post-deploy.txt" 2>&1)"
grep -qx local local.txt || fail "deploy 1: pre-deploy-local did not run here"
REL1=$(current)
case "$REL1" in "$APP/releases/"*"-${SHA1:0:12}") ;; *) fail "deploy 1: current -> $REL1" ;; esac

# ---- a new commit, deploy 2 ----
commit 2
SHA2=$(git -C work rev-parse HEAD)
"$BIN/colony" deploy eco.json production update >deploy2.out 2>&1 || fail "deploy 2: $(cat deploy2.out)"
[ "$(cat "$APP/current/VERSION")" = 2 ] || fail "deploy 2: current is not at commit 2"
REL2=$(current)
[ "$REL2" != "$REL1" ] && [ -d "$REL1" ] || fail "deploy 2: the old release is gone"
[ "$(tail -n 1 "$APP/shared/post-deploy.txt")" = "it's \$(echo not-run) here 7 2" ] ||
  fail "deploy 2: post-deploy"
[ "$(grep -c ' deploy ' "$APP/.deploys")" = 2 ] || fail "deploy 2: .deploys: $(cat "$APP/.deploys")"

# ---- a failing post-deploy: error, current unchanged, the release removed ----
commit 3
rc=0
"$BIN/colony" deploy eco.json failing >fail.out 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "failing post-deploy: exit $rc: $(cat fail.out)"
grep -q "127.0.0.1: post-deploy failed (exit 7): failing-hook" fail.out || fail "failing: $(cat fail.out)"
[ "$(current)" = "$REL2" ] || fail "failing post-deploy moved current to $(current)"
[ "$(ls "$APP/releases" | wc -l)" = 2 ] || fail "failing post-deploy left its release: $(ls "$APP/releases")"

# ---- a bad ref: error, current unchanged ----
rc=0
"$BIN/colony" deploy eco.json badref >badref.out 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "bad ref: exit $rc"
grep -q "127.0.0.1: fetch failed (exit 4): ref origin/nope not found" badref.out ||
  fail "bad ref: $(cat badref.out)"
[ "$(current)" = "$REL2" ] || fail "a bad ref moved current"

# ---- an unreachable host: ssh's failure, current unchanged ----
rc=0
"$BIN/colony" deploy eco.json unreachable >unreach.out 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "unreachable: exit $rc"
grep -q "ssh failed (exit 255): .*Connection refused" unreach.out || fail "unreachable: $(cat unreach.out)"
[ "$(current)" = "$REL2" ] || fail "an unreachable host moved current"

# ---- a failing pre-deploy (on the host) or pre-deploy-local (here) ----
rc=0
"$BIN/colony" deploy eco.json prefail >prefail.out 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "127.0.0.1: pre-deploy failed (exit 5): pre-hook-says-no" prefail.out ||
  fail "failing pre-deploy: exit $rc: $(cat prefail.out)"
rc=0
"$BIN/colony" deploy eco.json localfail >localfail.out 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "pre-deploy-local failed (exit 3)" localfail.out ||
  fail "failing pre-deploy-local: exit $rc: $(cat localfail.out)"
[ "$(current)" = "$REL2" ] || fail "a failing pre-deploy moved current"
[ "$(ls "$APP/releases" | wc -l)" = 2 ] || fail "a failing pre-deploy made a release"

# ---- revert: back to commit 1, post-deploy ran there ----
"$BIN/colony" deploy eco.json production revert >revert.out 2>&1 || fail "revert: $(cat revert.out)"
[ "$(current)" = "$REL1" ] || fail "revert: current -> $(current)"
[ "$(cat "$APP/current/VERSION")" = 1 ] || fail "revert: not at commit 1"
[ "$(tail -n 1 "$APP/shared/post-deploy.txt")" = "it's \$(echo not-run) here 7 1" ] ||
  fail "revert: post-deploy did not run in the reverted release"
rc=0
"$BIN/colony" deploy eco.json production revert >revert2.out 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "cannot go back 1: 0 deploy(s) before" revert2.out ||
  fail "revert past the first deploy: exit $rc: $(cat revert2.out)"

# ---- list and exec ----
"$BIN/colony" deploy eco.json production list >list.out 2>&1 || fail "list: $(cat list.out)"
[ "$(grep -c ' deploy ' list.out)" = 2 ] && [ "$(grep -c ' revert ' list.out)" = 1 ] ||
  fail "list: $(cat list.out)"
grep -q "^\* .* revert .*${SHA1:0:12}" list.out || fail "list: current not marked: $(cat list.out)"
"$BIN/colony" deploy eco.json production exec 'cat VERSION' >exec.out 2>&1 || fail "exec: $(cat exec.out)"
grep -qx 1 exec.out || fail "exec: $(cat exec.out)"

# ---- a missing environment: file, line, reason ----
rc=0
"$BIN/colony" deploy eco.json staging >missing.out 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "missing env: exit $rc"
grep -q 'eco.json:2: deploy: no environment "staging" (the file has: production, failing, badref, unreachable, prefail, localfail)' \
  missing.out || fail "missing env: $(cat missing.out)"

echo "deploy: setup, deploy x2, failing post-deploy, bad ref, unreachable host, failing pre-deploy and pre-deploy-local, revert, list, exec, missing env: passed"
