#!/usr/bin/env bash
# `make run`'s script: the registry and hello come up, hello registers itself,
# answers, and on SIGTERM (Ctrl-C in a terminal reaches only the script) both stop cleanly with hello deregistered first.
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
reg=127.0.0.1:$(free_port)
hello=127.0.0.1:$(free_port)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; pkill -9 -P "$$" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/log" >&2; exit 1; }

COLONY_DEMO_DIR="$work/state" COLONY_DEMO_REGISTRY=$reg COLONY_DEMO_HELLO=$hello \
  "$root/scripts/run-demo" "$bin" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "colony demo is up" "$work/log" && break; sleep 0.05; done
grep -q "colony demo is up" "$work/log" || fail "demo did not come up"
[ "$(curl -fsS "http://$hello/hello")" = '{"message":"hello"}' ] || fail "hello"
services=$("$bin/colony" services --registry "http://$reg")
grep -Eq '^hello +1 +1 ' <<<"$services" || fail "hello not registered and passing: $services"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
grep -q '"msg":"deregistered from the registry"' "$work/log" || fail "hello did not deregister"
[ "$(grep -c '"msg":"stopped"' "$work/log")" -eq 2 ] || fail "both should log stopped"
echo "1 passed, 0 failed"
