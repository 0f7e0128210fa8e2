#!/usr/bin/env bash
# One router process against the devbroker and one Redis (AOF on, fsync every second) on this
# machine, and in the same run its peer: raw librdkafka consume + produce of the same records
# with no casewire code (bench/routerload.c "pipe": three records out per record in, offset
# stored after their acknowledgements, the router's Kafka settings), the ceiling of what
# routing can do over this broker. Each of BENCH_RUNS runs:
#   1. puts BENCH_ROUTER_CASES CaseSubmitted records on the intake topic (three sites, eight
#      kinds of matter, one phone per case) with Redis emptied;
#   2. starts the router and measures cases/s from the first case routed to the last one
#      whose events are delivered and offset stored (the group join is not counted);
#   3. reads Redis's own counters before and after: commands and bytes per case, and the
#      memory the cases hold, scaled to 1M cases;
#   4. runs the peer over the same records with a new group: records/s.
# Prints medians, router/peer, each run's line, the router's peak RSS, and the machine.
# Targets (issue 3/7): >= 30,000 cases/s. Figures only: nothing here passes or fails.
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
runs=${BENCH_RUNS:-3}
n=${BENCH_ROUTER_CASES:-50000}
load="$CW_BUILD/benches/routerload"
for b in "$load" "$CW_BUILD/bin/casewire-router"; do
  [ -x "$b" ] || { echo "missing $b: build it first (make bench)"; exit 1; }
done
# Redis with deploy/redis.conf's memory settings, as `make run` and an operator would have it.
mapfile -t redis_memory_settings < <(awk '/^(hash|zset)-max-/ {print "--" $1; print $2}' \
  "$CW_ROOT/deploy/redis.conf")
start_redis "$CW_TMP/redis" "" "${redis_memory_settings[@]}" >/dev/null || exit 1
start_devbroker "$CW_TMP/broker" --topics bench.out >/dev/null || exit 1
RC="redis-cli -p $REDIS_PORT"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
metric() { curl -sf --max-time 2 "$ROUTER_ADMIN/metrics" | awk -v m="$1" '$1 == m {print int($2)}'; }
routed_at_least() { [ "$(metric casewire_router_cases_routed_total)" -ge "$1" ]; }
all_done() {
  routed_at_least "$n" && [ "$(metric casewire_kafka_consumer_inflight)" -eq 0 ]
}
# Redis's counters: commands (script bodies' commands included, every command but INFO),
# script runs, bytes in and out, memory.
redis_counters() {
  { $RC info commandstats; $RC info stats; $RC info memory; } | tr -d '\r' | awk -F'[:=,]' '
    /^cmdstat_/ && $1 != "cmdstat_info" { cmds += $3 }
    /^cmdstat_evalsha:|^cmdstat_eval:/ { scripts += $3 }
    /^total_net_input_bytes:/ { inb = $2 } /^total_net_output_bytes:/ { outb = $2 }
    /^used_memory:/ { mem = $2 }
    END { print cmds + 0, scripts + 0, inb, outb, mem }'
}

# CPU time a process has used, in ms (utime + stime from /proc/PID/stat).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }

rates=() peers=() lines=() cmds=() inb=() outb=() mem1m=() hwms=()
for r in $(seq 1 "$runs"); do
  $RC flushall >/dev/null
  $RC config resetstat >/dev/null
  "$load" produce "$n" >"$CW_TMP/produce$r.out" 2>&1 || {
    echo "could not put $n cases on the intake topic:"; cat "$CW_TMP/produce$r.out"; exit 1; }
  read -r c0 s0 i0 o0 m0 < <(redis_counters)
  start_router "$CW_TMP/rt$r" ${BENCH_ROUTER_ENV:-} >/dev/null || exit 1
  rcpu0=$(cpu_ms "$ROUTER_PID") dcpu0=$(cpu_ms "$REDIS_PID") bcpu0=$(cpu_ms "$DEVBROKER_PID")
  wait_until 60 routed_at_least 1 || { echo "the router routed nothing in 60 s"; exit 1; }
  t0=$(now_ms)
  wait_until 600 all_done || { echo "the router did not finish $n cases in 600 s"; exit 1; }
  ms=$(( $(now_ms) - t0 ))
  read -r c1 s1 i1 o1 m1 < <(redis_counters)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ROUTER_PID/status")
  rcpu=$(( $(cpu_ms "$ROUTER_PID") - rcpu0 )) dcpu=$(( $(cpu_ms "$REDIS_PID") - dcpu0 ))
  bcpu=$(( $(cpu_ms "$DEVBROKER_PID") - bcpu0 ))
  kill -TERM "$ROUTER_PID"; wait "$ROUTER_PID" 2>/dev/null
  rate=$(( n * 1000 / (ms + 1) ))
  out=$("$load" pipe "bench-peer-$r" "$n" bench.out 2>"$CW_TMP/pipe$r.err") || {
    echo "the peer failed:"; cat "$CW_TMP/pipe$r.err"; exit 1; }
  pms=$(sed -n 's/.* ms=//p' <<<"$out")
  peer=$(( n * 1000 / (pms + 1) ))
  rates+=("$rate") peers+=("$peer")
  # the same figures as the run's line, for the report
  cmds+=("$(awk -v c=$((c1 - c0)) -v n="$n" 'BEGIN {printf "%.1f", c / n}')")
  inb+=("$(awk -v i=$((i1 - i0)) -v n="$n" 'BEGIN {printf "%.0f", i / n}')")
  outb+=("$(awk -v o=$((o1 - o0)) -v n="$n" 'BEGIN {printf "%.0f", o / n}')")
  mem1m+=("$(awk -v m=$((m1 - m0)) -v n="$n" 'BEGIN {printf "%.0f", m / n * 1e6 / 1048576}')")
  hwms+=("$(awk -v h="$hwm" 'BEGIN {printf "%.0f", h / 1024}')")
  lines+=("$(awk -v n="$n" -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v i=$((i1 - i0)) -v o=$((o1 - o0)) \
    -v m=$((m1 - m0)) -v rate="$rate" -v peer="$peer" -v hwm="$hwm" -v rc="$rcpu" -v dc="$dcpu" -v bc="$bcpu" 'BEGIN {
    printf "router %d cases/s, peer %d records/s; CPU per case: router %.0f us, Redis %.0f us, devbroker %.0f us; Redis per case: %.1f commands in %.2f script runs, %.0f B in, %.0f B out, %.0f B held (1M cases: %.0f MB); router peak RSS %.0f MB",
      rate, peer, rc * 1000 / n, dc * 1000 / n, bc * 1000 / n, c / n, s / n, i / n, o / n, m / n, m / n * 1e6 / 1048576, hwm / 1024 }')")
done
router=$(printf '%s\n' "${rates[@]}" | median) peer=$(printf '%s\n' "${peers[@]}" | median)
echo "router ($n cases a run, $runs runs): median $router cases/s; raw librdkafka consume+produce: median $peer records/s; router/peer $(awk -v a="$router" -v b="$peer" 'BEGIN {printf "%.2f", a / b}')"
for l in "${lines[@]}"; do echo "  $l"; done
# The headline figures for bench/run.sh's report (bench/lib.sh; nothing when run alone).
med_of() { printf '%s\n' "$@" | median; }
bench_result router "cases/s ($n cases a run)" "$router" cases/s runs="${rates[*]}" \
  peer="raw librdkafka consume+produce" peer_value="$peer" peer_runs="${peers[*]}" target=">= 30000"
bench_result router "Redis commands per case" "$(med_of "${cmds[@]}")" commands runs="${cmds[*]}"
bench_result router "Redis bytes in per case" "$(med_of "${inb[@]}")" B runs="${inb[*]}"
bench_result router "Redis bytes out per case" "$(med_of "${outb[@]}")" B runs="${outb[*]}"
bench_result router "Redis memory for 1M cases" "$(med_of "${mem1m[@]}")" MB runs="${mem1m[*]}" \
  note="used_memory held by $n cases, scaled"
bench_result router "router peak RSS" "$(med_of "${hwms[@]}")" MB runs="${hwms[*]}"
bench_memory router router "$(med_of "${hwms[@]}")" runs="${hwms[*]}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
