#!/usr/bin/env bash
# `make install` gives a usable libcolony: headers, shared library exporting
# only the public colony_* API, and a relocatable colony.pc that builds the
# hello example outside the tree.
set -euo pipefail
bin=$1
build=$(cd "$bin/.." && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

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
LD_LIBRARY_PATH=$lib "$work/hello" --listen 127.0.0.1:0 2>"$work/log" &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -o '"port":[0-9]*' "$work/log" 2>/dev/null | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "installed-library hello did not start"
[ "$(curl -fsS "http://127.0.0.1:$port/hello")" = '{"message":"hello"}' ] || fail "/hello"
echo "1 passed, 0 failed"
