# Shared helpers for integration scripts (source it). Provides:
#   ok NAME / not_ok NAME [why] / check NAME CMD...   TAP-style assertions the runner counts
#   wait_until SECONDS CMD...    poll CMD every 50 ms until it succeeds or the deadline passes
#   check_stops WHAT PID SECS    SIGTERM to PID; assert it exits 0 within SECS
#   free_port                    a free loopback port
#   track_pid PID                kill PID (and only PID) when the script exits
#   start_redis DIR [PORT [ARGS...]]  redis-server with AOF in DIR (extra server ARGS allowed);
#                                sets REDIS_PORT REDIS_PID
#   stop_redis [SIGNAL]          stop the redis started above (default TERM)
#   start_devbroker DIR [ARGS]   the development Kafka broker; sets KAFKA_BROKERS DEVBROKER_PID
#   start_gateway DIR [VAR=v...] / start_router DIR [VAR=v...]   the services, on free ports
# Every process a script starts is tracked and killed on exit; the temp dir is removed.
set -uo pipefail
: "${CW_BUILD:?run through tests/run.sh (CW_BUILD unset)}"
: "${CW_ROOT:?run through tests/run.sh (CW_ROOT unset)}"

CW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/casewire-test.XXXXXX")
_cw_pids=()

# Only processes that are still running jobs of this shell are signalled: a pid that was
# already waited for may belong to someone else by now.
_cw_cleanup() {
  local p live=()
  local jobs_now; jobs_now=" $(jobs -p | tr '\n' ' ') "
  for p in "${_cw_pids[@]}"; do
    [[ "$jobs_now" == *" $p "* ]] && live+=("$p")
  done
  for p in "${live[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${live[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  [ -n "${CW_KEEP_TMP:-}" ] || rm -rf "$CW_TMP"
}
trap _cw_cleanup EXIT
trap 'exit 130' INT TERM

track_pid() { _cw_pids+=("$1"); }

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1${2:+ # $2}"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

wait_until() {
  local secs=$1; shift
  local deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  while ! "$@" 2>/dev/null; do
    [ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

free_port() { "$CW_BUILD/itests/freeport"; }

_cw_gone() { ! kill -0 "$1" 2>/dev/null; }
check_stops() {
  local what=$1 pid=$2 secs=$3 start rc
  start=$(date +%s%N)
  kill -TERM "$pid"
  if wait_until "$secs" _cw_gone "$pid"; then
    wait "$pid"; rc=$?
    check "$what stops cleanly within $secs s of SIGTERM (exit $rc, $(( ($(date +%s%N) - start) / 1000000 )) ms)" \
      test "$rc" -eq 0
  else
    not_ok "$what stops within $secs s of SIGTERM"
  fi
}

start_redis() {
  local dir=$1 fixed=${2:-}
  shift; [ $# -gt 0 ] && shift
  mkdir -p "$dir"
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=${fixed:-$(free_port)}
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
      --appendfsync everysec --save '' --daemonize no --logfile "$dir/redis.log" "$@" &
    REDIS_PID=$!
    # Our own server must be the one answering: a busy port would answer for someone else's.
    if wait_until 10 _redis_up "$port" && kill -0 "$REDIS_PID" 2>/dev/null; then
      track_pid "$REDIS_PID"; REDIS_PORT=$port; return 0
    fi
    kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
  done
  echo "# could not start redis-server; see $dir/redis.log" >&2
  return 1
}
_redis_up() { kill -0 "$REDIS_PID" 2>/dev/null && redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }

stop_redis() {
  kill -"${1:-TERM}" "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
  return 0
}

start_devbroker() {
  local dir=$1; shift
  mkdir -p "$dir"
  "$CW_BUILD/bin/casewire-devbroker" --bootstrap-file "$dir/bootstrap" "$@" >"$dir/devbroker.log" 2>&1 &
  DEVBROKER_PID=$!
  track_pid "$DEVBROKER_PID"
  if ! wait_until 20 test -s "$dir/bootstrap"; then
    echo "# devbroker did not start; see $dir/devbroker.log" >&2; cat "$dir/devbroker.log" >&2
    return 1
  fi
  KAFKA_BROKERS=$(cat "$dir/bootstrap")
  export KAFKA_BROKERS
}

# start_gateway DIR [VAR=value...]: a casewire-gateway on a free port against the Redis and
# devbroker started above (REDIS_PORT, KAFKA_BROKERS), with the example chain. Extra settings
# go in as environment assignments (CASEWIRE_RATE_IP_PER_MIN=0). Sets GW_PID, GW_PORT, GW_URL
# and waits for /readyz. Logs in DIR/gateway.log (appended: a restarted gateway keeps one log).
start_gateway() {
  local dir=$1; shift
  mkdir -p "$dir"
  GW_PORT=${GW_PORT:-$(free_port)}
  env CASEWIRE_HTTP_PORT="$GW_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    KAFKA_BROKERS="$KAFKA_BROKERS" CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" "$@" \
    "$CW_BUILD/bin/casewire-gateway" >>"$dir/gateway.log" 2>&1 &
  GW_PID=$!
  track_pid "$GW_PID"
  GW_URL="http://127.0.0.1:$GW_PORT"
  if ! wait_until 30 curl -sf -o /dev/null "$GW_URL/readyz"; then
    echo "# gateway did not become ready; see $dir/gateway.log" >&2; tail -20 "$dir/gateway.log" >&2
    return 1
  fi
}

# start_router DIR [VAR=value...]: a casewire-router against the Redis and devbroker started
# above, with the example chain unless CASEWIRE_CHAIN=... is given. Sets ROUTER_PID and
# ROUTER_ADMIN (its admin URL) and waits for /readyz. Logs in DIR/router.log (appended).
start_router() {
  local dir=$1; shift
  mkdir -p "$dir"
  local port; port=$(free_port)
  env CASEWIRE_ADMIN_PORT="$port" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    KAFKA_BROKERS="$KAFKA_BROKERS" CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" "$@" \
    "$CW_BUILD/bin/casewire-router" >>"$dir/router.log" 2>&1 &
  ROUTER_PID=$!
  track_pid "$ROUTER_PID"
  ROUTER_ADMIN="http://127.0.0.1:$port"
  if ! wait_until 30 curl -sf -o /dev/null "$ROUTER_ADMIN/readyz"; then
    echo "# router did not become ready; see $dir/router.log" >&2; tail -20 "$dir/router.log" >&2
    return 1
  fi
}
