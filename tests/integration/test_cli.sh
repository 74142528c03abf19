#!/usr/bin/env bash
# The colony CLI: --help lists commands, version prints it, unknown commands fail.
set -euo pipefail
bin=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
help=$("$bin/colony" --help)
grep -q '^usage: colony' <<<"$help" || fail "--help"
grep -q 'version' <<<"$help" || fail "--help lists version"
"$bin/colony" version | grep -Eq '^colony [0-9]+\.[0-9]+\.[0-9]+$' || fail "version"
grep -q '^colony ' <<<"$("$bin/colony" --version)" || fail "--version"
rc=0; "$bin/colony" frobnicate 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "unknown command should exit 2, got $rc"
rc=0; "$bin/colony" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "no command should exit 2, got $rc"
grep -q -- '--listen' <<<"$("$bin/hello" --help)" || fail "hello --help lists --listen"
echo "1 passed, 0 failed"
