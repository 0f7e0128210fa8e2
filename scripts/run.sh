#!/usr/bin/env bash
# `make run`: the whole stack on this machine, in the foreground.
#   Redis (deploy/redis.conf, AOF, data in var/redis) unless REDIS_URL is set,
#   the devbroker (librdkafka mock cluster) unless KAFKA_BROKERS is set,
#   then the gateway, router, deadline worker and notifier: one of each, or as many as
#   GATEWAYS, ROUTERS, DEADLINES and NOTIFIERS say (make run ROUTERS=3 DEADLINES=2 ...).
#   Gateways share the HTTP port (SO_REUSEPORT); the N-th worker of a kind listens on its
#   kind's admin port + 10 * (N - 1) (routers 9101, 9111, 9121...).
# Every line is prefixed with its service. Ctrl-C or SIGTERM stops everything within 10 s.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/$build/bin"

http_port=${CASEWIRE_HTTP_PORT:-8080}
redis_port=${CASEWIRE_REDIS_PORT:-6479}
admin_router=${CASEWIRE_ROUTER_ADMIN_PORT:-9101}
admin_deadline=${CASEWIRE_DEADLINE_ADMIN_PORT:-9102}
admin_notifier=${CASEWIRE_NOTIFIER_ADMIN_PORT:-9103}
export CASEWIRE_CHAIN=${CASEWIRE_CHAIN:-$root/deploy/chain.example.yaml}
count() { # NAME value: a process count, 1 to 16
  local v=${2:-1}
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] && [ "$v" -le 16 ] && { echo "$v"; return; }
  echo "[run] $1=$v: give a count from 1 to 16" >&2
  exit 2
}
n_gateway=$(count GATEWAYS "${GATEWAYS:-}") || exit 2
n_router=$(count ROUTERS "${ROUTERS:-}") || exit 2
n_deadline=$(count DEADLINES "${DEADLINES:-}") || exit 2
n_notifier=$(count NOTIFIERS "${NOTIFIERS:-}") || exit 2
# Services finish within this (plus at most 2 s for destructors), inside run's 10 s promise.
export CASEWIRE_SHUTDOWN_TIMEOUT=${CASEWIRE_SHUTDOWN_TIMEOUT:-6s}

pids=() names=()
stopping=0

# Each child runs in a session of its own, so Ctrl-C in the terminal reaches only this script,
# which then stops everything in order (otherwise every process would get SIGINT at once,
# and our TERM after it would count as a second signal: exit without draining). Its lines go
# through sed with its name; sed ignores SIGINT so the shutdown lines still come through.
# $! is the child itself.
start() {
  local name=$1; shift
  setsid "$@" > >(trap '' INT; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!); names+=("$name")
}

is_infra() { [ "$1" = redis ] || [ "$1" = devbroker ]; }

# Sends TERM to the chosen group (services or infra) and waits for them until the deadline.
stop_group() { # infra(0/1) deadline
  local i
  for i in "${!pids[@]}"; do
    if is_infra "${names[i]}"; then [ "$1" = 1 ] || continue; else [ "$1" = 0 ] || continue; fi
    kill -TERM "${pids[i]}" 2>/dev/null
  done
  for i in "${!pids[@]}"; do
    if is_infra "${names[i]}"; then [ "$1" = 1 ] || continue; else [ "$1" = 0 ] || continue; fi
    while kill -0 "${pids[i]}" 2>/dev/null && [ "$(date +%s%N)" -lt "$2" ]; do sleep 0.05; done
    if kill -0 "${pids[i]}" 2>/dev/null; then
      echo "[run] ${names[i]} (pid ${pids[i]}) did not stop in time: killing it"
      kill -KILL "${pids[i]}" 2>/dev/null
    fi
  done
}

# Services first (they flush to Kafka and Redis), then Redis and the devbroker: 10 s in all.
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "[run] stopping..."
  local now; now=$(date +%s%N)
  stop_group 0 $(( now + 8800000000 ))
  stop_group 1 $(( now + 9800000000 ))
  wait 2>/dev/null
  echo "[run] stopped"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

wait_for() { # seconds, description, command...
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then echo "[run] $what did not come up within ${secs}s" >&2; exit 1; fi
    sleep 0.1
  done
}

mkdir -p var/redis var/run

if [ -z "${REDIS_URL:-}" ]; then
  start redis redis-server "$root/deploy/redis.conf" --port "$redis_port" --dir "$root/var/redis"
  redis_pid=${pids[-1]}
  # Our own server must be the one answering: a busy port would answer for someone else's.
  our_redis() { kill -0 "$redis_pid" && redis-cli -p "$redis_port" ping | grep -q PONG; }
  wait_for 10 "redis on port $redis_port (is the port free? set CASEWIRE_REDIS_PORT)" our_redis
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi

if [ -z "${KAFKA_BROKERS:-}" ]; then
  rm -f var/run/kafka.bootstrap
  start devbroker "$bin/casewire-devbroker" --bootstrap-file "$root/var/run/kafka.bootstrap"
  wait_for 20 "the devbroker" test -s var/run/kafka.bootstrap
  KAFKA_BROKERS=$(cat var/run/kafka.bootstrap)
  export KAFKA_BROKERS
fi

# name of the i-th process of a kind: "router", then "router-2", "router-3"...
nth() { [ "$2" = 1 ] && echo "$1" || echo "$1-$2"; }
admin_ports() { # base count: the admin ports of a kind
  local i; for i in $(seq 1 "$2"); do printf '%s ' $(( $1 + 10 * (i - 1) )); done
}
for i in $(seq 1 "$n_router"); do
  start "$(nth router "$i")" "$bin/casewire-router" --admin-port $(( admin_router + 10 * (i - 1) ))
done
for i in $(seq 1 "$n_deadline"); do
  start "$(nth deadline "$i")" "$bin/casewire-deadline" --admin-port $(( admin_deadline + 10 * (i - 1) ))
done
for i in $(seq 1 "$n_notifier"); do
  start "$(nth notifier "$i")" "$bin/casewire-notifier" --admin-port $(( admin_notifier + 10 * (i - 1) ))
done
reuse=()
[ "$n_gateway" -gt 1 ] && reuse=(--http-reuse-port true)
for i in $(seq 1 "$n_gateway"); do
  start "$(nth gateway "$i")" "$bin/casewire-gateway" --http-port "$http_port" "${reuse[@]}"
done
wait_for 20 "the gateway on port $http_port (is the port free? set CASEWIRE_HTTP_PORT)" \
  curl -fsS "http://127.0.0.1:$http_port/healthz"

cat <<MSG
[run] casewire is up:
[run]   gateway         http://127.0.0.1:$http_port   (GET /healthz /readyz /metrics; $n_gateway process(es))
[run]   console         http://127.0.0.1:$http_port/console/
[run]   router admin    ports $(admin_ports "$admin_router" "$n_router")(/healthz /readyz /metrics)
[run]   deadline admin  ports $(admin_ports "$admin_deadline" "$n_deadline")
[run]   notifier admin  ports $(admin_ports "$admin_notifier" "$n_notifier")
[run]   redis           $REDIS_URL
[run]   kafka           $KAFKA_BROKERS
[run]   chain           $CASEWIRE_CHAIN
[run] Ctrl-C stops everything.
MSG

# If any process ends on its own, stop the rest: a half-running stack hides problems.
wait -n "${pids[@]}"
rc=$?
if [ "$stopping" = 0 ]; then
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || echo "[run] ${names[i]} exited (status $rc); stopping the stack"
  done
  stop_all
  exit 1
fi
