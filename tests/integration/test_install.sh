#!/usr/bin/env bash
# `make install` gives a usable libcolony: headers, shared library exporting
# only the public colony_* API, and a relocatable colony.pc that builds the
# hello example outside the tree.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
build=$(cd "$BIN/.." && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$WORK

cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name colony.pc | head -1)
[ -n "$pc" ] || fail "colony.pc not installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
lib=$(dirname "$(dirname "$pc")")
[ -f "$work/prefix/include/colony/colony.h" ] || fail "headers not installed"

# Only the public API is exported from the shared library (a sanitizer build
# also exports the sanitizer's instrumentation symbols, so it is not checked).
cflags=${COLONY_TEST_CFLAGS:-}
if [ -z "$cflags" ]; then
  exported=$(nm -D --defined-only "$lib/libcolony.so" | awk '$2 ~ /[TDBRV]/ {print $3}')
  grep -qx 'colony_log_enabled' <<<"$exported" || fail "colony_log_enabled is not exported"
  others=$(grep -v '^colony_' <<<"$exported" || true)
  [ -z "$others" ] || fail "non-public symbols exported: $(echo $others | head -c 300)"
  # colony__name is an internal by the naming rule: never exported.
  internals=$(grep '^colony__' <<<"$exported" || true)
  [ -z "$internals" ] || fail "internal colony__ symbols exported: $(echo $internals | head -c 300)"
fi

# shellcheck disable=SC2046,SC2086
"${COLONY_TEST_CC:-cc}" -Wall -Werror $cflags -o "$work/hello" "$root/examples/hello/main.c" \
  $(pkg-config --cflags --libs colony)
fixture_start_listening hello env LD_LIBRARY_PATH="$lib" "$work/hello" --listen 127.0.0.1:0
port=$PORT_hello
[ "$(curl -fsS "http://127.0.0.1:$port/hello")" = '{"message":"hello"}' ] || fail "/hello"
echo "1 passed, 0 failed"
