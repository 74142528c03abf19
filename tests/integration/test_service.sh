#!/usr/bin/env bash
# colony_service end to end, across three real processes:
#  - trace context and deadline propagate from A to B over colony_request_call;
#  - A and B export their spans as OTLP/JSON to C, all in one trace;
#  - /metrics passes promtool and records the matched route, not the path;
#  - SIGTERM with requests in flight: all finish with 200, the process exits 0.
set -euo pipefail
. "$(dirname "$0")/../support/fixtures.sh"
fixture_init "$1"
work=$WORK
cd "$WORK"

# start NAME ARGS...: runs trace_relay, waits for its port, sets PORT_<NAME>.
start() {
  local name=$1
  shift
  fixture_start_listening "$name" "$BIN/trace_relay" --listen 127.0.0.1:0 "$@"
}

start C
collector="http://127.0.0.1:$PORT_C/v1/traces"
start B --tracing.endpoint="$collector" --tracing.flush_interval=100ms
start A --downstream="http://127.0.0.1:$PORT_B" --tracing.endpoint="$collector" \
  --tracing.flush_interval=100ms

trace=4bf92f3577b34da6a3ce929d0e0e4736
out=$(curl -fsS -D "$work/headers" -H "traceparent: 00-$trace-00f067aa0ba902b7-01" \
  -H "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" \
  -H "X-Colony-Deadline-Ms: 3000" "http://127.0.0.1:$PORT_A/relay")
got_tp=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["traceparent"])')
got_dl=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deadline"])')
got_ts=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracestate"])')
[ "$got_ts" = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" ] || fail "tracestate not propagated: $got_ts"
# An invalid tracestate (uppercase key) is dropped, the traceparent still continues.
bad=$(curl -fsS -H "traceparent: 00-$trace-00f067aa0ba902b7-01" -H "tracestate: Rojo=1" \
  "http://127.0.0.1:$PORT_A/relay")
[ "$(echo "$bad" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracestate"])')" = None ] ||
  fail "invalid tracestate was propagated: $bad"
case "$bad" in *"$trace"*) ;; *) fail "trace lost with a bad tracestate: $bad" ;; esac
case "$got_tp" in
  00-$trace-*-01) ;;
  *) fail "B did not receive A's trace: $got_tp" ;;
esac
[ "${got_tp:36:16}" != "00f067aa0ba902b7" ] || fail "B's parent must be A's client span, not the caller"
[ "$got_dl" -gt 0 ] && [ "$got_dl" -le 3000 ] || fail "deadline not propagated: $got_dl"
grep -qi "^traceparent: 00-$trace-" "$work/headers" || fail "A's response lacks its traceparent"

# A malformed traceparent starts a new trace instead of failing the request.
out=$(curl -fsS -H "traceparent: 00-XYZ-00f067aa0ba902b7-01" "http://127.0.0.1:$PORT_A/relay")
case "$out" in
  *'"traceparent":"00-'*) ;;
  *) fail "no trace for a bad traceparent: $out" ;;
esac
case "$out" in *"$trace"*) fail "bad traceparent was used" ;; esac

# Spans from A (server + client) and B (server) reach the collector in one trace.
n=0
for _ in $(seq 1 100); do
  n=$(curl -fsS "http://127.0.0.1:$PORT_C/collected" |
      python3 -c "import json,sys; print(json.load(sys.stdin)['trace_ids'].count('$trace'))")
  [ "$n" -ge 3 ] && break
  sleep 0.05
done
[ "$n" -ge 3 ] || fail "collector got $n spans of trace $trace, expected 3"

# Metrics: promtool-clean, route label is the pattern.
curl -fsS "http://127.0.0.1:$PORT_A/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool rejected /metrics"
grep -q 'http_requests_total{method="GET",route="/relay",status_code="200"} 3' "$work/metrics.txt" ||
  fail "http_requests_total for /relay missing"
grep -q '^http_request_duration_seconds_count{method="GET",route="/relay",status_code="200"} 3' \
  "$work/metrics.txt" || fail "duration histogram missing"
grep -q '^http_active_connections ' "$work/metrics.txt" || fail "active connections gauge missing"
curl -s -o /dev/null "http://127.0.0.1:$PORT_A/no/such/path/123"
curl -fsS "http://127.0.0.1:$PORT_A/metrics" >"$work/metrics.txt"
grep -q 'route="unmatched",status_code="404"' "$work/metrics.txt" ||
  fail "404s must use the unmatched route label"

# Graceful shutdown with requests in flight. SIGTERM goes only once they are
# (A logs each slow request it starts): a fixed sleep was not enough on a
# loaded machine, where the curls had not connected yet and were refused (000).
curls=()
for i in 1 2 3 4 5; do
  curl -s -m 10 -o "$work/slow$i" -w '%{http_code}' "http://127.0.0.1:$PORT_A/slow?ms=1500" \
    >"$work/code$i" &
  curls+=($!)
done
started=0
for _ in $(seq 1 200); do
  started=$(grep -c '"msg":"slow request started"' "$work/A.log" || true)
  [ "$started" -ge 5 ] && break
  sleep 0.05
done
[ "$started" -ge 5 ] || fail "only $started of 5 slow requests reached A"
fixture_terminate "$PID_A"
[ "$FIXTURE_RC" -eq 0 ] || fail "A exited $FIXTURE_RC after SIGTERM"
wait "${curls[@]}" || true
for i in 1 2 3 4 5; do
  [ "$(cat "$work/code$i")" = 200 ] || fail "in-flight request $i got $(cat "$work/code$i")"
  [ "$(cat "$work/slow$i")" = done ] || fail "in-flight request $i body"
done
grep -q '"msg":"stopped"' "$work/A.log" || fail "A did not log stopped"
echo "1 passed, 0 failed"
