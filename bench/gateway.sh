#!/usr/bin/env bash
# One gateway process against the devbroker and Redis on this machine, and in the same run a
# bare libevent "hello" server as the ceiling (bench/hello.c: what one libevent process here
# can answer when its handler does nothing). Keep-alive clients post ~1 KiB complaints with
# Chinese text (bench/loadgen/), each with its own phone number and Idempotency-Key; rate
# limits are off. Each of BENCH_RUNS runs measures, in this order:
#   1. closed loop vs the gateway: accepted cases/s (202s per second);
#   2. closed loop vs hello, same connections and duration: the ceiling;
#   3. open loop at BENCH_GATEWAY_RATE/s offered vs the gateway: p50/p99 latency, measured from
#      each request's scheduled time, so queueing behind a slow answer counts.
# Then the gateway's peak RSS (VmHWM). Prints medians, gateway/hello, every run's line, and
# the machine. Targets (issue 2/7): >= 25,000 accepted/s, p99 <= 20 ms at 10k/s, RSS <= 100 MB.
# Figures only: nothing here passes or fails. The loader shares the machine's cores with the
# server it measures, the same way for the gateway and for hello.
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
runs=${BENCH_RUNS:-3}
conns=${BENCH_GATEWAY_CONNECTIONS:-64}
open_conns=${BENCH_GATEWAY_OPEN_CONNECTIONS:-256}
secs=${BENCH_GATEWAY_SECONDS:-10}
warmup=${BENCH_GATEWAY_WARMUP:-2}
rate=${BENCH_GATEWAY_RATE:-10000}
lg="$CW_BUILD/benches/loadgen" hello="$CW_BUILD/benches/hello" gw="$CW_BUILD/bin/casewire-gateway"
for b in "$lg" "$hello" "$gw"; do
  [ -x "$b" ] || { echo "missing $b: build it first (make bench)"; exit 1; }
done

start_redis "$CW_TMP/redis" >/dev/null || exit 1
start_devbroker "$CW_TMP/broker" >/dev/null || exit 1

gw_port=$(free_port)
# Rate limits off (0), or every client here would be one IP over its 60 a minute. The burst
# cannot be 0; with no rate it does not matter, but a large one keeps that true whatever.
KAFKA_BROKERS=$KAFKA_BROKERS REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
  CASEWIRE_HTTP_PORT=$gw_port CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" \
  CASEWIRE_LOG_LEVEL=warn CASEWIRE_RATE_IP_PER_MIN=0 CASEWIRE_RATE_IP_BURST=1000000 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 CASEWIRE_RATE_TENANT_PER_MIN=0 \
  "$gw" >"$CW_TMP/gateway.log" 2>&1 &
gw_pid=$!
track_pid "$gw_pid"
"$hello" --port 0 >"$CW_TMP/hello.out" 2>&1 &
hello_pid=$!
track_pid "$hello_pid"

http_code() { curl -s -o "${2:-/dev/null}" -w '%{http_code}' --max-time 5 "$1" "${@:3}"; }
gw_ready() { [ "$(http_code "http://127.0.0.1:$gw_port/readyz")" = 200 ]; }
if ! wait_until 30 gw_ready; then
  echo "gateway did not become ready within 30 s; its log:"; tail -n 20 "$CW_TMP/gateway.log"
  exit 1
fi
wait_until 10 grep -q '^port=' "$CW_TMP/hello.out" || { echo "hello did not start"; exit 1; }
hello_port=$(sed -n 's/^port=//p' "$CW_TMP/hello.out")
gw_url="http://127.0.0.1:$gw_port/v1/cases" hello_url="http://127.0.0.1:$hello_port/v1/cases"

# One complaint first: figures for anything but 202 would measure the wrong thing.
"$lg" --sample >"$CW_TMP/probe.json"
probe=$(http_code "$gw_url" "$CW_TMP/probe.out" -X POST -H 'Content-Type: application/json' \
  -H "Idempotency-Key: bench-probe-$$-$(date +%s%N)" --data-binary @"$CW_TMP/probe.json")
gw_ok=1
[ "$probe" = 202 ] || gw_ok=0

# Runs one load; its key=value line goes to the file, with the share of one core the server
# and Redis used meanwhile appended (on 2 cores the loader, the server, Redis and the broker
# compete: this says who was short). The loader's stderr (first non-2xx answers) goes aside.
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
load() { # out-file server-pid loadgen-args...
  local out=$1 pid=$2; shift 2
  local s0 r0 t0 s1 r1 t1 cpu
  s0=$(ticks "$pid") r0=$(ticks "$REDIS_PID") t0=$(date +%s%N)
  "$lg" "$@" >"$out" 2>>"$CW_TMP/loadgen.err" || { echo "loadgen failed: $*"; exit 1; }
  s1=$(ticks "$pid") r1=$(ticks "$REDIS_PID") t1=$(date +%s%N)
  cpu=$(awk -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v ns=$((t1 - t0)) -v hz="$hz" \
    'BEGIN {printf " server_cpu_pct=%.0f redis_cpu_pct=%.0f", s / hz * 1e11 / ns, r / hz * 1e11 / ns}')
  printf '%s%s\n' "$(cat "$out")" "$cpu" >"$out"
}
kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }                 # file key
col() { local k=$1; shift; for f in "$@"; do kv "$f" "$k"; done; } # key files... -> one per line
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
int() { awk '{printf "%.0f\n", $1}'; }

closed=(-c "$conns" -d "$secs" -w "$warmup")
gw_closed=() hello_closed=() gw_open=()
for r in $(seq 1 "$runs"); do
  if [ "$gw_ok" = 1 ]; then
    load "$CW_TMP/gw-closed-$r" "$gw_pid" --url "$gw_url" "${closed[@]}"
    gw_closed+=("$CW_TMP/gw-closed-$r")
  fi
  load "$CW_TMP/hello-closed-$r" "$hello_pid" --url "$hello_url" "${closed[@]}"
  hello_closed+=("$CW_TMP/hello-closed-$r")
  if [ "$gw_ok" = 1 ]; then
    load "$CW_TMP/gw-open-$r" "$gw_pid" --url "$gw_url" --rate "$rate" -c "$open_conns" -d "$secs" -w "$warmup"
    gw_open+=("$CW_TMP/gw-open-$r")
  fi
done
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null; }
gw_hwm=$(hwm_mib "$gw_pid") hello_hwm=$(hwm_mib "$hello_pid")

load_desc="$conns keep-alive connections, ${secs} s after ${warmup} s warm-up, median of $runs"
hello_med=$(col rate_2xx "${hello_closed[@]}" | median)
if [ "$gw_ok" = 1 ]; then
  gw_med=$(col rate_2xx "${gw_closed[@]}" | median)
  echo "gateway POST /v1/cases, closed loop ($load_desc): $(int <<<"$gw_med") accepted cases/s (target >= 25000; gateway at $(col server_cpu_pct "${gw_closed[@]}" | median)% of a core, Redis $(col redis_cpu_pct "${gw_closed[@]}" | median)%)  runs: $(col rate_2xx "${gw_closed[@]}" | int | tr '\n' ' ')"
else
  echo "gateway POST /v1/cases answers $probe, not 202: no gateway figures. Its answer: $(head -c 300 "$CW_TMP/probe.out")"
fi
echo "hello ceiling, same load: $(int <<<"$hello_med") answers/s (hello at $(col server_cpu_pct "${hello_closed[@]}" | median)% of a core)  runs: $(col rate_2xx "${hello_closed[@]}" | int | tr '\n' ' ')"
if [ "$gw_ok" = 1 ]; then
  echo "gateway/hello: $(awk -v g="$gw_med" -v h="$hello_med" 'BEGIN {printf "%.2f", (h > 0 ? g / h : 0)}')"
  o=("${gw_open[@]}")
  echo "gateway open loop at $rate/s offered ($open_conns connections, ${secs} s after ${warmup} s warm-up, latency from the scheduled time, median of $runs):" \
    "p50 $(col p50_ms "${o[@]}" | median) ms, p90 $(col p90_ms "${o[@]}" | median) ms," \
    "p99 $(col p99_ms "${o[@]}" | median) ms (target <= 20), p99.9 $(col p999_ms "${o[@]}" | median) ms," \
    "accepted $(col rate_2xx "${o[@]}" | median | int)/s, unsent $(col unsent "${o[@]}" | median)" \
    "of $(col offered "${o[@]}" | median)  p99 runs: $(col p99_ms "${o[@]}" | tr '\n' ' ')"
  echo "gateway RSS: peak ${gw_hwm:-?} MiB (VmHWM after all runs; target <= 100 MB)  hello: ${hello_hwm:-?} MiB"
  kill -0 "$gw_pid" 2>/dev/null || { echo "the gateway exited during the runs; its log:"; tail -n 20 "$CW_TMP/gateway.log"; }
fi
echo "every run (loadgen key=value; status_4xx/5xx, errors, late and unsent say what went wrong):"
for r in $(seq 1 "$runs"); do
  for f in gw-closed hello-closed gw-open; do
    [ -s "$CW_TMP/$f-$r" ] && echo "  run $r $f: $(cat "$CW_TMP/$f-$r")"
  done
done
[ -s "$CW_TMP/loadgen.err" ] && sort -u "$CW_TMP/loadgen.err" | head -n 10 | sed 's/^/  /'
# The headline figures for bench/run.sh's report (bench/lib.sh; nothing when run alone).
runs_of() { col "$1" "${@:2}" | tr '\n' ' '; }
if [ "$gw_ok" = 1 ]; then
  bench_result gateway "accepted cases/s, closed loop ($conns connections)" "$gw_med" cases/s \
    runs="$(runs_of rate_2xx "${gw_closed[@]}")" peer="hello (bare libevent)" \
    peer_value="$hello_med" peer_runs="$(runs_of rate_2xx "${hello_closed[@]}")" target=">= 25000"
  bench_result gateway "p99 at $rate/s offered, open loop" "$(col p99_ms "${gw_open[@]}" | median)" ms \
    runs="$(runs_of p99_ms "${gw_open[@]}")" target="<= 20" \
    note="accepted $(col rate_2xx "${gw_open[@]}" | median | int)/s of $rate/s offered"
  bench_result gateway "p50 at $rate/s offered, open loop" "$(col p50_ms "${gw_open[@]}" | median)" ms \
    runs="$(runs_of p50_ms "${gw_open[@]}")"
  bench_result gateway "accepted cases/s at $rate/s offered" "$(col rate_2xx "${gw_open[@]}" | median)" cases/s \
    runs="$(runs_of rate_2xx "${gw_open[@]}")"
  bench_result gateway "gateway peak RSS" "${gw_hwm:-?}" MiB target="<= 100 MB" \
    peer="hello" peer_value="${hello_hwm:-?}"
  bench_memory gateway gateway "${gw_hwm:-?}"
else
  bench_result gateway "accepted cases/s, closed loop ($conns connections)" "not measured" cases/s \
    note="POST /v1/cases answered $probe, not 202" target=">= 25000"
fi
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), libevent $(pkg-config --modversion libevent)"
