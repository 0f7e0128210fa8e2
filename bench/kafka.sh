#!/usr/bin/env bash
# Kafka wrapper throughput against the devbroker: produce N messages (acks=all, idempotent,
# every delivery report waited for) and consume them in a one-member group with an effect per
# message. Prints the median of RUNS runs. Figures only: nothing here passes or fails.
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
n=${BENCH_KAFKA_MESSAGES:-100000}
runs=${BENCH_RUNS:-3}
bin="$CW_BUILD/itests/kafka_group"
start_devbroker "$CW_TMP/broker" --partitions 6 --brokers 3 --topics "$(seq -s, -f 'bench%g' 1 "$runs")" >/dev/null || exit 1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
produce=() consume=()
for r in $(seq 1 "$runs"); do
  t0=$(now_ms)
  "$bin" produce "bench$r" "$n" 100000000 >/dev/null 2>&1 || { echo "produce failed"; exit 1; }
  produce+=($(( n * 1000 / ($(now_ms) - t0 + 1) )))
  CW_LOG_LEVEL=warn "$bin" consume "bench$r" "bench-g$r" "$CW_TMP/c$r.out" >/dev/null 2>&1 & c=$!; track_pid "$c"
  # The clock starts at the first effect: the group's first join (~3 s) is not throughput.
  wait_until 60 test -s "$CW_TMP/c$r.out" || { echo "consumer did not start"; exit 1; }
  t0=$(now_ms)
  done_all() { [ "$(wc -l < "$CW_TMP/c$r.out" 2>/dev/null || echo 0)" -ge "$n" ]; }
  wait_until 300 done_all || { echo "consume did not finish"; exit 1; }
  consume+=($(( n * 1000 / ($(now_ms) - t0 + 1) )))
  kill -TERM "$c"; wait "$c" 2>/dev/null
done
echo "kafka produce (acks=all, idempotent, $n msgs): median $(printf '%s\n' "${produce[@]}" | median) msg/s  runs: ${produce[*]}"
echo "kafka consume (effect per message, from the first effect, $n msgs): median $(printf '%s\n' "${consume[@]}" | median) msg/s  runs: ${consume[*]}"
# The headline figures for bench/run.sh's report (bench/lib.sh; nothing when run alone).
bench_result kafka "produce, acks=all, idempotent ($n msgs)" "$(printf '%s\n' "${produce[@]}" | median)" msg/s \
  runs="${produce[*]}"
bench_result kafka "consume, an effect per message ($n msgs)" "$(printf '%s\n' "${consume[@]}" | median)" msg/s \
  runs="${consume[*]}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), librdkafka $(pkg-config --modversion rdkafka)"
