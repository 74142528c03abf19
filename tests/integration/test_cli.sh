#!/usr/bin/env bash
# The colony CLI: --help lists commands, version prints it, unknown commands fail.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
help=$("$BIN/colony" --help)
grep -q '^usage: colony' <<<"$help" || fail "--help"
grep -q 'version' <<<"$help" || fail "--help lists version"
"$BIN/colony" version | grep -Eq '^colony [0-9]+\.[0-9]+\.[0-9]+$' || fail "version"
grep -q '^colony ' <<<"$("$BIN/colony" --version)" || fail "--version"
rc=0; "$BIN/colony" frobnicate 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "unknown command should exit 2, got $rc"
rc=0; "$BIN/colony" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "no command should exit 2, got $rc"
grep -q -- '--listen' <<<"$("$BIN/hello" --help)" || fail "hello --help lists --listen"
echo "1 passed, 0 failed"
