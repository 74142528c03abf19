#!/usr/bin/env bash
# The colony CLI: --help lists commands, version prints it, unknown commands fail.
set -euo pipefail
bin=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
"$bin/colony" --help | grep -q '^usage: colony' || fail "--help"
"$bin/colony" --help | grep -q 'version' || fail "--help lists version"
"$bin/colony" version | grep -Eq '^colony [0-9]+\.[0-9]+\.[0-9]+$' || fail "version"
"$bin/colony" --version | grep -q '^colony ' || fail "--version"
rc=0; "$bin/colony" frobnicate 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "unknown command should exit 2, got $rc"
rc=0; "$bin/colony" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "no command should exit 2, got $rc"
"$bin/hello" --help | grep -q -- '--listen' || fail "hello --help lists --listen"
echo "1 passed, 0 failed"
