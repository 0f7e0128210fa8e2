#!/usr/bin/env bash
# `make run`'s script brings the whole stack up on free ports, every process answers /healthz
# and becomes ready, and Ctrl-C (SIGINT to the whole foreground process group, as a terminal
# sends it) stops all of it cleanly within 10 s, leaving no process behind.
source "$CW_ROOT/tests/lib/common.sh"
read -r http redis_port a1 a2 a3 < <("$CW_BUILD/itests/freeport" 5 | tr '\n' ' ')
work="$CW_TMP/stack"
mkdir -p "$work"
# run.sh keeps its data in var/ of the tree it runs from: give it a private copy of the tree.
mkdir -p "$work/scripts" "$work/deploy"
cp "$CW_ROOT/scripts/run.sh" "$work/scripts/"
cp -r "$CW_ROOT/deploy/." "$work/deploy/"
ln -s "$CW_BUILD" "$work/build"

# A background job starts with SIGINT ignored, which a terminal's foreground `make run` does
# not: --default-signal restores it, so the Ctrl-C below is the real thing.
env -u REDIS_URL -u KAFKA_BROKERS CASEWIRE_HTTP_PORT=$http CASEWIRE_REDIS_PORT=$redis_port \
  CASEWIRE_ROUTER_ADMIN_PORT=$a1 CASEWIRE_DEADLINE_ADMIN_PORT=$a2 CASEWIRE_NOTIFIER_ADMIN_PORT=$a3 \
  CASEWIRE_CHAIN="$work/deploy/chain.example.yaml" CASEWIRE_RULES_CACHE="$RULES_CACHE" \
  setsid env --default-signal=INT bash "$work/scripts/run.sh" build >"$work/run.log" 2>&1 &
run=$!
track_pid "$run"

healthy() { curl -fsS "http://127.0.0.1:$1/healthz" | grep -q '"ok"'; }
ready() { curl -fsS "http://127.0.0.1:$1/readyz" | grep -q '"ready"'; }
if wait_until 60 healthy "$http"; then ok "gateway /healthz answers on CASEWIRE_HTTP_PORT"; else
  not_ok "gateway /healthz answers"; tail -n 40 "$work/run.log"; exit 1; fi
for p in $a1 $a2 $a3; do check "worker admin port $p answers /healthz" healthy "$p"; done
# 120 s: a router with no compiled rules cached compiles them, half a minute in the sanitizer build.
for p in $http $a1 $a2 $a3; do check "port $p becomes ready (Kafka and Redis reachable)" wait_until 120 ready "$p"; done
check "gateway serves Prometheus metrics" sh -c "curl -fsS http://127.0.0.1:$http/metrics | grep -q '^# TYPE casewire_start_time_seconds gauge'"
check "redis runs with the project's config (AOF on)" sh -c "redis-cli -p $redis_port config get appendonly | grep -qx yes"
check "run.sh printed what runs where" grep -q "gateway         http://127.0.0.1:$http" "$work/run.log"

children=$(pgrep -P "$run" | tr '\n' ' ')
start=$(date +%s%N)
kill -INT -- "-$run" # the process group, like Ctrl-C in a terminal
gone() { ! kill -0 "$run" 2>/dev/null; }
if wait_until 12 gone; then
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  check "Ctrl-C stops the whole stack within 10 s (${ms} ms)" test "$ms" -le 10000
else
  not_ok "Ctrl-C stops the whole stack within 10 s"
fi
left=""
for c in $children; do kill -0 "$c" 2>/dev/null && left="$left $c"; done
check "no process left behind${left:+ (left:$left)}" test -z "$left"
check "every service shut down cleanly" test "$(grep -c 'event=service.stopped .* clean=yes' "$work/run.log")" -eq 4
