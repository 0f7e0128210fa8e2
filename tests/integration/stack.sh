#!/usr/bin/env bash
# `make run`'s script brings the whole stack up on free ports, every process answers /healthz
# and becomes ready, and Ctrl-C (SIGINT to the whole foreground process group, as a terminal
# sends it) stops all of it cleanly within 10 s, leaving no process behind. Then again with
# two of each service (make run GATEWAYS=2 ROUTERS=2 DEADLINES=2 NOTIFIERS=2): the gateways
# share the port, each worker has its admin port.
source "$CW_ROOT/tests/lib/common.sh"
read -r http redis_port a1 a2 a3 < <("$CW_BUILD/itests/freeport" 5 | tr '\n' ' ')
work="$CW_TMP/stack"
mkdir -p "$work"
# run.sh keeps its data in var/ of the tree it runs from: give it a private copy of the tree.
mkdir -p "$work/scripts" "$work/deploy"
cp "$CW_ROOT/scripts/run.sh" "$work/scripts/"
cp -r "$CW_ROOT/deploy/." "$work/deploy/"
ln -s "$CW_BUILD" "$work/build"

# run_stack LABEL COUNT: run.sh with COUNT of each service; every check names LABEL.
run_stack() {
local label=$1 n=$2
# A background job starts with SIGINT ignored, which a terminal's foreground `make run` does
# not: --default-signal restores it, so the Ctrl-C below is the real thing.
env -u REDIS_URL -u KAFKA_BROKERS CASEWIRE_HTTP_PORT=$http CASEWIRE_REDIS_PORT=$redis_port \
  CASEWIRE_ROUTER_ADMIN_PORT=$a1 CASEWIRE_DEADLINE_ADMIN_PORT=$a2 CASEWIRE_NOTIFIER_ADMIN_PORT=$a3 \
  CASEWIRE_CHAIN="$work/deploy/chain.example.yaml" CASEWIRE_RULES_CACHE="$RULES_CACHE" \
  GATEWAYS=$n ROUTERS=$n DEADLINES=$n NOTIFIERS=$n setsid env --default-signal=INT bash "$work/scripts/run.sh" build >"$work/run-$n.log" 2>&1 &
run=$!
track_pid "$run"

healthy() { curl -fsS "http://127.0.0.1:$1/healthz" | grep -q '"ok"'; }
ready() { curl -fsS "http://127.0.0.1:$1/readyz" | grep -q '"ready"'; }
if wait_until 60 healthy "$http"; then ok "$label: gateway /healthz answers on CASEWIRE_HTTP_PORT"; else
  not_ok "$label: gateway /healthz answers"; tail -n 40 "$work/run-$n.log"; exit 1; fi
admins=""
for i in $(seq 0 $((n - 1))); do admins="$admins $((a1 + 10 * i)) $((a2 + 10 * i)) $((a3 + 10 * i))"; done
for p in $admins; do check "$label: worker admin port $p answers /healthz" wait_until 60 healthy "$p"; done
# 120 s: a router with no compiled rules cached compiles them, half a minute in the sanitizer build.
for p in $http $admins; do check "$label: port $p becomes ready (Kafka and Redis reachable)" wait_until 120 ready "$p"; done
if [ "$n" -gt 1 ]; then
  # The kernel spreads new connections over the gateways: their start times tell them apart.
  starts() { for _ in $(seq 1 20); do curl -fsS "http://127.0.0.1:$http/metrics" | sed -n 's/^casewire_start_time_seconds{[^}]*} //p'; done | sort -u | wc -l; }
  check "$label: $n gateways answer on the one port" wait_until 30 eval '[ "$(starts)" -eq '"$n"' ]'
fi
check "$label: gateway serves Prometheus metrics" sh -c "curl -fsS http://127.0.0.1:$http/metrics | grep -q '^# TYPE casewire_start_time_seconds gauge'"
check "$label: redis runs with the project's config (AOF on)" sh -c "redis-cli -p $redis_port config get appendonly | grep -qx yes"
check "$label: run.sh printed what runs where" grep -q "gateway         http://127.0.0.1:$http" "$work/run-$n.log"

children=$(pgrep -P "$run" | tr '\n' ' ')
start=$(date +%s%N)
kill -INT -- "-$run" # the process group, like Ctrl-C in a terminal
gone() { ! kill -0 "$run" 2>/dev/null; }
if wait_until 12 gone; then
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  check "$label: Ctrl-C stops the whole stack within 10 s (${ms} ms)" test "$ms" -le 10000
else
  not_ok "$label: Ctrl-C stops the whole stack within 10 s"
fi
left=""
for c in $children; do kill -0 "$c" 2>/dev/null && left="$left $c"; done
check "$label: no process left behind${left:+ (left:$left)}" test -z "$left"
check "$label: every service shut down cleanly" test "$(grep -c 'event=service.stopped .* clean=yes' "$work/run-$n.log")" -eq $((4 * n))
}
run_stack "one of each" 1
rm -rf "$work/var"
run_stack "two of each" 2
