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

# _start_daemon NAME DIR PORT_SETTING PORT [VAR=value...]: build/bin/casewire-NAME against the
# Redis and devbroker started above (REDIS_PORT, KAFKA_BROKERS), with the example chain, its
# HTTP port given by PORT_SETTING=PORT; extra settings go in as environment assignments and
# win. Logs in DIR/NAME.log (appended: a restarted daemon keeps one log). Sets DAEMON_PID and
# waits for /readyz on PORT.
_start_daemon() {
  local name=$1 dir=$2 port_setting=$3 port=$4; shift 4
  mkdir -p "$dir"
  env "$port_setting=$port" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    KAFKA_BROKERS="$KAFKA_BROKERS" CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" "$@" \
    "$CW_BUILD/bin/casewire-$name" >>"$dir/$name.log" 2>&1 &
  DAEMON_PID=$!
  track_pid "$DAEMON_PID"
  # Generous: a router compiling its rules in the sanitizer build takes half a minute.
  if ! wait_until 120 curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; then
    echo "# $name did not become ready; see $dir/$name.log" >&2; tail -20 "$dir/$name.log" >&2
    return 1
  fi
}

# start_gateway DIR [VAR=value...]: a casewire-gateway on a free port (or GW_PORT) as
# _start_daemon says (CASEWIRE_RATE_IP_PER_MIN=0). Sets GW_PID, GW_PORT, GW_URL.
start_gateway() {
  local dir=$1 rc=0; shift
  GW_PORT=${GW_PORT:-$(free_port)}
  GW_URL="http://127.0.0.1:$GW_PORT"
  _start_daemon gateway "$dir" CASEWIRE_HTTP_PORT "$GW_PORT" "$@" || rc=1
  GW_PID=$DAEMON_PID
  return $rc
}

# start_router DIR [VAR=value...]: a casewire-router as _start_daemon says, with the example
# chain unless CASEWIRE_CHAIN=... is given. Sets ROUTER_PID and ROUTER_ADMIN (its admin URL).
# Every router of a test run shares one compiled-rules cache (RULES_CACHE), so only the first
# start compiles the rules.
RULES_CACHE="$CW_BUILD/rules-cache"
start_router() {
  local dir=$1 rc=0 port; shift
  port=$(free_port)
  ROUTER_ADMIN="http://127.0.0.1:$port"
  _start_daemon router "$dir" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_RULES_CACHE="$RULES_CACHE" \
    "$@" || rc=1
  ROUTER_PID=$DAEMON_PID
  return $rc
}

# start_deadline DIR [VAR=value...]: a deadline worker on a free admin port (DEADLINE_PID,
# DEADLINE_ADMIN). Several may run at once, each with its own DIR.
start_deadline() {
  local dir=$1 rc=0 port; shift
  port=$(free_port)
  DEADLINE_ADMIN="http://127.0.0.1:$port"
  _start_daemon deadline "$dir" CASEWIRE_ADMIN_PORT "$port" "$@" || rc=1
  DEADLINE_PID=$DAEMON_PID
  return $rc
}

# start_routing_stack: Redis, the devbroker, a gateway without rate limits and a router, as
# the router's end-to-end tests use them (files under $CW_TMP). On a failure: not ok, exit.
# Sets RC (a redis-cli for this Redis) besides what each start_* sets.
start_routing_stack() {
  start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
  start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
  start_gateway "$CW_TMP/gw" CASEWIRE_RATE_IP_PER_MIN=0 CASEWIRE_RATE_PHONE_PER_HOUR=0 ||
    { not_ok "gateway starts"; exit 1; }
  start_router "$CW_TMP/rt" || { not_ok "router starts"; exit 1; }
  RC="redis-cli -p $REDIS_PORT"
}
