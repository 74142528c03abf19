#!/usr/bin/env bash
# scripts/check-layers passes on this tree, and in a temporary copy fails on
# each kind of forbidden include we plant (naming file:line and the edge)
# while leaving allowed includes alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$root/scripts/check-layers" "$root") || fail "the tree has forbidden includes: $out"

mkdir -p "$work/tests"
cp -r "$root/src" "$root/include" "$root/examples" "$work/"
cp -r "$root/tests/apps" "$work/tests/"
"$root/scripts/check-layers" "$work" >/dev/null || fail "a clean copy should pass"

plant() { # FILE LINE: writes a file whose second line is LINE
  mkdir -p "$(dirname "$work/$1")"
  printf '#include <stdio.h>\n%s\n' "$2" >"$work/$1"
}
plant src/core/bad_http.c '#include "http/server_internal.h"'
plant src/core/bad_kit.c '#include "colony/service.h"'
plant src/http/bad_kit.c '#include "kit/trace/trace_internal.h"'
plant src/http/bad_relative.c '#include "../kit/metrics/metrics_internal.h"'
plant src/kit/bad_daemon.c '#include "registry/registry.h"'
plant src/kit/bad_cli.c '#include "cli/commands.h"'
plant src/gateway/bad_other_daemon.c '#include "registry/registry_internal.h"'
plant src/cli/bad_internal.c '#include "core/alloc.h"'
plant examples/hello/bad.c '#include "core/alloc.h"'
plant tests/apps/bad.c '#include <core/map.h>'
plant include/colony/bad.h '#include "../../src/core/alloc.h"'
# Allowed edges that must not be reported.
plant src/kit/fine.c '#include "core/hash.h"'
plant src/gateway/fine.c '#include "kit/service/service_internal.h"'
plant src/http/fine.c '#include "colony/log.h"'
plant src/cli/fine.c '#include "registry/registry.h"'

rc=0
out=$("$root/scripts/check-layers" "$work") || rc=$?
[ "$rc" -eq 1 ] || fail "planted edges: exit $rc, expected 1: $out"
expect() { grep -qF -- "$1" <<<"$out" || fail "not reported: $1 in: $out"; }
expect "src/core/bad_http.c:2: forbidden edge core -> http"
expect "src/core/bad_kit.c:2: forbidden edge core -> kit (public header service.h)"
expect "src/http/bad_kit.c:2: forbidden edge http -> kit"
expect "src/http/bad_relative.c:2: forbidden edge http -> kit"
expect "src/kit/bad_daemon.c:2: forbidden edge kit -> registry"
expect "src/kit/bad_cli.c:2: forbidden edge kit -> cli"
expect "src/gateway/bad_other_daemon.c:2: forbidden edge gateway -> registry"
expect "src/cli/bad_internal.c:2: forbidden edge cli -> core"
expect "examples/hello/bad.c:2: forbidden edge examples -> core"
expect "tests/apps/bad.c:2: forbidden edge tests/apps -> core"
expect "include/colony/bad.h:2: forbidden edge public header -> core"
n=$(grep -c 'forbidden edge' <<<"$out")
[ "$n" -eq 11 ] || fail "expected 11 forbidden edges, got $n: $out"
if grep -q 'fine\.c' <<<"$out"; then fail "an allowed edge was reported: $out"; fi
echo "1 passed, 0 failed"
