#!/usr/bin/env bash
# End to end (issue 7/7): a customer's web complaint through the whole stack until the
# customer's receipt SMS reaches the provider. One Redis (deploy/redis.conf's settings: AOF
# every second, hz, memory settings), the devbroker, one gateway (rate limits off), one
# router, one deadline worker and one notifier whose SMS go over kept-alive HTTP to a local
# fake provider (tests/integration/fakesms.c, no faults, no checks), with a copy of the
# example chain whose sms section points there, per-number limits and quiet hours off (as
# bench/notifier.sh runs it). Services log at BENCH_E2E_LOG_LEVEL (default info, their default).
#
# Load: bench/loadgen in open loop (--rate): ~1 KiB web complaints, each with its own phone
# number, request i due at start + i/rate whatever the stack does (no coordinated omission),
# BENCH_E2E_CONNECTIONS (256) keep-alive connections; loadgen --log says when each request was
# due and which phone it carried. For each load of BENCH_E2E_LOADS ("1000:10 10000:5": rate/s
# and seconds; in turn, on the same stack) the figure is, per case, the time from its request's
# due time to the fake provider taking its `case_received` SMS (the router's task
# "<case id>:receipt", matched by the phone). The provider's clock and loadgen's are the
# machine's (CLOCK_REALTIME). After each load, stragglers get up to BENCH_E2E_WAIT (60) s
# more; "delivered" is the share of the offered cases whose receipt arrived within the load's
# seconds + that wait. Percentiles are over the delivered cases (nearest rank).
#
# Each of BENCH_RUNS runs (default 3) starts a fresh stack, warms it with
# BENCH_E2E_WARMUP_CASES (200) cases at 100/s (every service joined and working), then runs
# the loads. Prints each run's line, medians, the services' peak RSS and the machine. Figures
# only: nothing here passes or fails. Past the machine's capacity (10,000/s here: the gateway
# alone answers ~6,000/s on these 2 cores) the figures say what happened: the accepted rate,
# the cases never sent, and the latency of those that made it.
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
runs=${BENCH_RUNS:-3}
loads=${BENCH_E2E_LOADS:-"1000:10 10000:5"}
conns=${BENCH_E2E_CONNECTIONS:-256}
wait_s=${BENCH_E2E_WAIT:-60}
warm_n=${BENCH_E2E_WARMUP_CASES:-200}
log_level=${BENCH_E2E_LOG_LEVEL:-info}
lg="$CW_BUILD/benches/loadgen" fake="$CW_BUILD/itests/fakesms"
for b in "$lg" "$fake" "$CW_BUILD/itests/freeport"; do
  [ -x "$b" ] || { echo "missing $b: build it first (make bench)"; exit 1; }
done
for s in gateway router deadline notifier devbroker; do
  [ -x "$CW_BUILD/bin/casewire-$s" ] || { echo "missing casewire-$s: build it first (make bench)"; exit 1; }
done
for l in $loads; do
  [[ "$l" =~ ^[0-9]+:[0-9]+(\.[0-9]+)?$ ]] || { echo "BENCH_E2E_LOADS: \"$l\" is not RATE:SECONDS"; exit 1; }
done
mapfile -t redis_settings < <(awk '/^(hash|zset)-max-|^hz / {print "--" $1; print $2}' "$CW_ROOT/deploy/redis.conf")

median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; } # line key
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Busy and total jiffies of the whole machine (every process, ours or not).
machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }

# The provider's counters; receipts are counted from its messages only at the end.
taken() { curl -s -m 5 "$FAKE/stats" | jq -r '.taken // 0' 2>/dev/null || echo 0; }
# wait_taken N SECS: until the provider took N messages, or SECS passed, or nothing arrived for
# 10 s (whatever was coming has come). Prints how long it waited, in seconds.
wait_taken() {
  local want=$1 secs=$2 t0 last=-1 last_t now n
  t0=$(date +%s) last_t=$t0
  while :; do
    n=$(taken) now=$(date +%s)
    [ "$n" -ge "$want" ] && break
    [ $((now - t0)) -ge "$secs" ] && break
    if [ "$n" != "$last" ]; then last=$n last_t=$now; elif [ $((now - last_t)) -ge 10 ]; then break; fi
    sleep 0.2
  done
  echo $(($(date +%s) - t0))
}

# start_stack DIR: Redis, the devbroker, the fake provider and the four services; sets FAKE,
# GW_URL and the pids. Returns 1 (having said why) when something did not start.
start_stack() {
  local dir=$1
  mkdir -p "$dir"
  start_redis "$dir/redis" "" "${redis_settings[@]}" >/dev/null || { echo "redis did not start"; return 1; }
  start_devbroker "$dir/broker" >/dev/null || { echo "the devbroker did not start"; return 1; }
  "$fake" --port-file "$dir/fake.port" --no-checks 1 >"$dir/fake.log" 2>&1 &
  FAKE_PID=$!
  track_pid "$FAKE_PID"
  wait_until 10 test -s "$dir/fake.port" || { echo "the fake provider did not start"; return 1; }
  FAKE="http://127.0.0.1:$(cat "$dir/fake.port")"
  # The example chain with its sms section (up to the blank line after it) replaced, and the
  # tenants' webhooks (hosts under .example, which never resolve: each webhook would hold one
  # of the notifier's connections until its timeout) going to the fake provider's /hook.
  sed -e '/^sms:/,/^$/d' -e "s|^\( *url: \)\"https://[^\"]*\.example/[^\"]*\"|\1\"$FAKE/hook\"|" \
    "$CW_ROOT/deploy/chain.example.yaml" >"$dir/chain.yaml"
  cat >>"$dir/chain.yaml" <<YAML
sms:
  provider: http
  http: {url: "$FAKE/sms", status_url: "$FAKE/status"}
  per_number: {minute: 0, hour: 0, day: 0}
  quiet_hours: none
webhooks: {allow_addresses: [loopback]}
YAML
  local common=(CASEWIRE_CHAIN="$dir/chain.yaml" CASEWIRE_LOG_LEVEL="$log_level")
  GW_PORT=$(free_port)
  start_gateway "$dir/gw" "${common[@]}" CASEWIRE_RATE_IP_PER_MIN=0 CASEWIRE_RATE_IP_BURST=1000000 \
    CASEWIRE_RATE_PHONE_PER_HOUR=0 CASEWIRE_RATE_TENANT_PER_MIN=0 >/dev/null ||
    { echo "the gateway did not start"; return 1; }
  start_router "$dir/rt" "${common[@]}" >/dev/null || { echo "the router did not start"; return 1; }
  start_deadline "$dir/dl" "${common[@]}" >/dev/null || { echo "the deadline worker did not start"; return 1; }
  local port
  port=$(free_port)
  _start_daemon notifier "$dir/nt" CASEWIRE_ADMIN_PORT "$port" "${common[@]}" >/dev/null ||
    { echo "the notifier did not start"; return 1; }
  NOTIFIER_PID=$DAEMON_PID
}

# measure RUN RATE SECS DIR: one open-loop load and its stragglers; appends one key=value line
# to $CW_TMP/results and says it.
measure() {
  local r=$1 rate=$2 secs=$3 dir=$4
  local before out p pids=() names=() t0s=() m0 m1 i
  names=(gateway router deadline notifier redis devbroker fakesms)
  pids=("$GW_PID" "$ROUTER_PID" "$DEADLINE_PID" "$NOTIFIER_PID" "$REDIS_PID" "$DEVBROKER_PID" "$FAKE_PID")
  before=$(taken)
  for p in "${pids[@]}"; do t0s+=("$(ticks "$p")"); done
  read -r m0 mt0 < <(machine_ticks)
  local start_ns end_ns
  start_ns=$(date +%s%N)
  # loadgen's CPU time: its subshell's reaped children's (cutime + cstime), its only child
  local lticks
  ( "$lg" --url "$GW_URL/v1/cases" --rate "$rate" -c "$conns" -d "$secs" -w 0 -t 10 \
      --seed "$((r * 1000003 + rate))" --log "$dir/sent-$rate" >"$dir/load-$rate.out" 2>>"$dir/loadgen.err"
    rc=$?
    awk '{print $16 + $17}' "/proc/$BASHPID/stat" >"$dir/load-$rate.ticks"
    exit $rc ) || { echo "loadgen failed at $rate/s"; return 1; }
  end_ns=$(date +%s%N)
  lticks=$(cat "$dir/load-$rate.ticks")
  out=$(cat "$dir/load-$rate.out")
  local cpu="" sum=0 c
  c=$(awk -v t="$lticks" -v hz="$hz" -v ns=$((end_ns - start_ns)) 'BEGIN {printf "%.0f", t / hz * 1e11 / ns}')
  cpu+=" cpu_loadgen=$c" sum=$((sum + c))
  for i in "${!pids[@]}"; do
    c=$(awk -v a="${t0s[$i]}" -v b="$(ticks "${pids[$i]}")" -v hz="$hz" \
      -v ns=$((end_ns - start_ns)) 'BEGIN {printf "%.0f", (b - a) / hz * 1e11 / ns}')
    cpu+=" cpu_${names[$i]}=$c" sum=$((sum + c))
  done
  read -r m1 mt1 < <(machine_ticks)
  # the whole machine's busy share, and what was neither the stack nor the loader (the kernel's
  # own threads, and other work on this machine), in % of one core
  local busy
  busy=$(awk -v b=$((m1 - m0)) -v t=$((mt1 - mt0)) 'BEGIN {printf "%.0f", (t > 0 ? b * 100 / t : 0)}')
  cpu+=" machine_busy_pct=$busy cpu_other=$((busy * $(nproc) - sum))"
  # Stragglers: every SMS of the accepted cases (SMS per case as the warm-up showed), bounded.
  local accepted want waited
  accepted=$(kv "$out" status_2xx)
  want=$(awk -v b="$before" -v a="$accepted" -v k="$sms_per_case" 'BEGIN {printf "%d", b + a * k}')
  waited=$(wait_taken "$want" "$wait_s")
  # Join: the provider's receipts (id "<case id>:receipt", to "+86<11 digits>") with what
  # loadgen sent (seq due_us phone status).
  curl -s -m 120 "$FAKE/messages" |
    jq -r 'select(.id | endswith(":receipt")) | "\(.to | sub("^\\+86"; "")) \(.ms) \(.id)"' >"$dir/receipts-$rate"
  awk 'NR == FNR { due[$3] = $2; next }
       ($1 in due) { printf "%.3f\n", $2 - due[$1] / 1000; delete due[$1] }' \
    "$dir/sent-$rate" "$dir/receipts-$rate" | sort -g >"$dir/lat-$rate"
  local n offered
  n=$(wc -l <"$dir/lat-$rate")
  offered=$(kv "$out" offered)
  pct() { [ "$n" -gt 0 ] && sed -n "$(( (n * $1 + 99) / 100 ))p" "$dir/lat-$rate" || echo -; }
  local line
  line="run=$r rate=$rate secs=$secs offered=$offered sent=$(kv "$out" sent) unsent=$(kv "$out" unsent)"
  line+=" accepted=$accepted accepted_rate=$(kv "$out" rate_2xx) status_4xx=$(kv "$out" status_4xx)"
  line+=" status_5xx=$(kv "$out" status_5xx) errors=$(kv "$out" errors) timeouts=$(kv "$out" timeouts)"
  line+=" unfinished=$(kv "$out" unfinished) late=$(kv "$out" late) loader_late=$(kv "$out" loader_late)"
  line+=" http_p50_ms=$(kv "$out" p50_ms) http_p99_ms=$(kv "$out" p99_ms)"
  line+=" delivered=$n delivered_pct=$(awk -v n="$n" -v o="$offered" 'BEGIN {printf "%.1f", (o > 0 ? n * 100 / o : 0)}')"
  line+=" sms_p50_ms=$(pct 50) sms_p90_ms=$(pct 90) sms_p99_ms=$(pct 99) sms_max_ms=$(tail -n 1 "$dir/lat-$rate")"
  line+=" waited_s=$waited$cpu"
  echo "$line" >>"$CW_TMP/results"
  echo "  $line"
}

one_run() {
  local r=$1 dir="$CW_TMP/run$1" l
  start_stack "$dir" || return 1
  # Warm-up, not measured: every service joined its group and the first cases went through.
  local t0 n0
  t0=$(taken)
  "$lg" --url "$GW_URL/v1/cases" --rate 100 -c 16 -d "$(awk -v n="$warm_n" 'BEGIN {print n / 100}')" \
    -w 0 --seed "$r" >"$dir/warmup.out" 2>>"$dir/loadgen.err" || { echo "warm-up load failed"; return 1; }
  n0=$(kv "$(cat "$dir/warmup.out")" status_2xx)
  if [ "${n0:-0}" -eq 0 ]; then
    echo "warm-up: the gateway accepted none of $warm_n cases: $(cat "$dir/warmup.out")"
    head -n 3 "$dir/loadgen.err"
    return 1
  fi
  # Every accepted case makes 2 SMS (receipt, staff assigned) when its owner has a phone.
  wait_taken $((t0 + 2 * n0)) 120 >/dev/null
  local got
  got=$(( $(taken) - t0 ))
  [ "$got" -gt 0 ] || { echo "warm-up: no SMS reached the provider within 120 s"; tail -n 5 "$dir/nt/notifier.log"; return 1; }
  sms_per_case=$(awk -v g="$got" -v n="$n0" 'BEGIN {printf "%.3f", g / n}')
  echo "# run $r: stack up, warm-up $n0 cases, $got SMS ($sms_per_case a case)"
  for l in $loads; do measure "$r" "${l%%:*}" "${l##*:}" "$dir" || return 1; done
  # Peak RSS of every process of the stack, in MiB.
  echo "run=$r gateway=$(bench_hwm_mib "$GW_PID") router=$(bench_hwm_mib "$ROUTER_PID")" \
    "deadline=$(bench_hwm_mib "$DEADLINE_PID") notifier=$(bench_hwm_mib "$NOTIFIER_PID")" \
    "redis=$(bench_hwm_mib "$REDIS_PID") devbroker=$(bench_hwm_mib "$DEVBROKER_PID")" >>"$CW_TMP/rss"
  local s
  for s in "$GW_PID:gateway" "$ROUTER_PID:router" "$DEADLINE_PID:deadline" "$NOTIFIER_PID:notifier"; do
    kill -0 "${s%%:*}" 2>/dev/null || { echo "the ${s#*:} exited during the run; its log:"; tail -n 10 "$dir"/*/"${s#*:}".log; }
  done
  [ -s "$dir/loadgen.err" ] && sort -u "$dir/loadgen.err" | head -n 5 | sed 's/^/  loadgen: /'
  # Stop the stack (services first, then the broker and Redis) before the next run.
  local p
  for p in "$GW_PID" "$ROUTER_PID" "$DEADLINE_PID" "$NOTIFIER_PID" "$FAKE_PID" "$DEVBROKER_PID" "$REDIS_PID"; do
    kill -TERM "$p" 2>/dev/null
    wait_until 15 _cw_gone "$p" || kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  return 0
}

: >"$CW_TMP/results"
: >"$CW_TMP/rss"
echo "end to end: web complaint -> gateway -> Kafka -> router -> notifier -> receipt SMS at the provider;" \
  "loads $loads (rate/s:seconds), $conns connections, stragglers up to $wait_s s, logs at $log_level, $runs runs"
ok_runs=0
for r in $(seq 1 "$runs"); do
  if one_run "$r"; then ok_runs=$((ok_runs + 1)); else echo "# run $r failed"; fi
done
[ "$ok_runs" -gt 0 ] || { echo "no run completed"; exit 1; }

col() { grep "rate=$1 " "$CW_TMP/results" | tr ' ' '\n' | sed -n "s/^$2=//p"; } # rate key
med() { col "$1" "$2" | median; }
runs_of() { col "$1" "$2" | tr '\n' ' '; }
echo "end to end, median of $ok_runs runs (latency from each request's due time to its receipt SMS at the provider):"
for l in $loads; do
  rate=${l%%:*} secs=${l##*:}
  echo "  at $rate/s offered for $secs s: accepted $(med "$rate" accepted_rate)/s ($(med "$rate" accepted) of $(med "$rate" offered), unsent $(med "$rate" unsent));" \
    "receipt SMS delivered for $(med "$rate" delivered_pct)% of offered within $secs+$wait_s s;" \
    "p50 $(med "$rate" sms_p50_ms) ms, p90 $(med "$rate" sms_p90_ms) ms, p99 $(med "$rate" sms_p99_ms) ms, max $(med "$rate" sms_max_ms) ms" \
    "(HTTP answer p50 $(med "$rate" http_p50_ms) ms, p99 $(med "$rate" http_p99_ms) ms)  p99 runs: $(runs_of "$rate" sms_p99_ms)"
  echo "    % of a core during the load: gateway $(med "$rate" cpu_gateway), router $(med "$rate" cpu_router)," \
    "deadline $(med "$rate" cpu_deadline), notifier $(med "$rate" cpu_notifier), redis $(med "$rate" cpu_redis)," \
    "devbroker $(med "$rate" cpu_devbroker), fakesms $(med "$rate" cpu_fakesms), loadgen $(med "$rate" cpu_loadgen)," \
    "anything else $(med "$rate" cpu_other); machine busy $(med "$rate" machine_busy_pct)% of its $(nproc) cores"
  bench_result e2e "receipt SMS p50 at $rate/s offered" "$(med "$rate" sms_p50_ms)" ms runs="$(runs_of "$rate" sms_p50_ms)" \
    note="of the delivered cases; from the request's due time"
  bench_result e2e "receipt SMS p99 at $rate/s offered" "$(med "$rate" sms_p99_ms)" ms runs="$(runs_of "$rate" sms_p99_ms)" \
    note="of the delivered cases; from the request's due time"
  bench_result e2e "receipt SMS delivered at $rate/s offered" "$(med "$rate" delivered_pct)" "% of offered" \
    runs="$(runs_of "$rate" delivered_pct)" note="within $secs s of load + $wait_s s"
  bench_result e2e "accepted at $rate/s offered" "$(med "$rate" accepted_rate)" "cases/s" \
    runs="$(runs_of "$rate" accepted_rate)" note="202s per second of load, $secs s"
done
rss_med() { tr ' ' '\n' <"$CW_TMP/rss" | sed -n "s/^$1=//p" | median; }
rss_runs() { tr ' ' '\n' <"$CW_TMP/rss" | sed -n "s/^$1=//p" | tr '\n' ' '; }
line="  peak RSS (MiB, median of runs):"
for s in gateway router deadline notifier redis devbroker; do
  line+=" $s $(rss_med "$s")"
  bench_memory e2e "$s" "$(rss_med "$s")" runs="$(rss_runs "$s")"
done
echo "$line"
echo "  every run:"
sed 's/^/    /' "$CW_TMP/results"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), librdkafka $(pkg-config --modversion rdkafka)"
