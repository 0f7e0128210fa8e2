#!/usr/bin/env bash
# The notifier (issue 5/7): SMS tasks through one notifier process to a local fake provider
# (tests/integration/fakesms.c, no injected faults) over kept-alive HTTP, with Redis (AOF
# every second, as the tests run it) and the devbroker, end to end: a task written to
# casewire.notify.v1 -> taken into the outbox -> claimed -> rendered -> limits checked ->
# POSTed -> accepted -> settled.
#
#   throughput  BENCH_NOTIFIER_N (20,000) tasks written at once, each to its own number:
#               tasks/s from the first task's due time to the provider taking the last
#   latency     1,000 tasks/s for BENCH_NOTIFIER_SECONDS (10 s): from each task's due time
#               (set when it is written) to the provider taking it, p50 / p99 / max in ms
#
# BENCH_RUNS runs (default 3), a fresh notifier and provider each; prints medians and the
# machine. Figures only: nothing here passes or fails. Targets (issue 5/7): >= 10,000 tasks/s,
# p99 task-to-provider <= 50 ms at 1,000/s.
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
runs=${BENCH_RUNS:-3}
n=${BENCH_NOTIFIER_N:-20000}
secs=${BENCH_NOTIFIER_SECONDS:-10}
feed="$CW_BUILD/itests/notify_feed"
fake="$CW_BUILD/itests/fakesms"
for b in "$feed" "$fake" "$CW_BUILD/bin/casewire-notifier"; do
  [ -x "$b" ] || { echo "missing $b: build it first (make bench)"; exit 1; }
done
start_redis "$CW_TMP/redis" >/dev/null || { echo "redis did not start"; exit 1; }
start_devbroker "$CW_TMP/broker" || { echo "devbroker did not start"; exit 1; }

median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }

one_run() { # $1: run number; appends "throughput p50 p99 max" to $CW_TMP/results
  local r=$1 dir="$CW_TMP/run$1" port fpid npid
  mkdir -p "$dir"
  "$fake" --port-file "$dir/fake.port" --no-checks 1 >"$dir/fake.log" 2>&1 &
  fpid=$!
  track_pid "$fpid"
  wait_until 10 test -s "$dir/fake.port" || { echo "fake provider did not start"; return 1; }
  local url="http://127.0.0.1:$(cat "$dir/fake.port")"
  sed '/^sms:/,/^$/d' "$CW_ROOT/deploy/chain.example.yaml" >"$dir/chain.yaml"
  cat >>"$dir/chain.yaml" <<YAML
sms:
  provider: http
  http: {url: "$url/sms", status_url: "$url/status"}
  per_number: {minute: 0, hour: 0, day: 0}
  quiet_hours: none
YAML
  port=$(free_port)
  _start_daemon notifier "$dir" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$dir/chain.yaml" ||
    return 1
  npid=$DAEMON_PID
  wait_until 60 grep -q 'event=kafka.assigned' "$dir/notifier.log" ||
    echo "# run $1: the notifier did not join its group within 60 s"
  taken() { curl -s "$url/stats" | jq .taken; }
  at_least() { [ "$(taken)" -ge "$1" ]; }

  # throughput: all at once, distinct numbers
  NOTIFY_FEED_STAMP=1 NOTIFY_FEED_PHONE_BASE=$((r * 1000000)) "$feed" sms "t$r" "$n" "$n" 1 >/dev/null
  wait_until 300 at_least "$n" || echo "# run $r: only $(taken) of $n arrived"
  local tput
  tput=$(curl -s "$url/messages" | jq -rs --argjson n "$n" '
    (map(.id | split("-") | .[2] | tonumber) | min) as $t0 | (map(.ms) | max) as $t1
    | ($n * 1000 / ([($t1 - $t0), 1] | max)) | floor')
  # latency: paced at 1,000/s
  local m=$((secs * 1000)) before
  before=$(taken)
  NOTIFY_FEED_RATE=1000 NOTIFY_FEED_STAMP=1 NOTIFY_FEED_PHONE_BASE=$((r * 1000000 + 500000)) \
    "$feed" sms "l$r" "$m" "$m" 1 >/dev/null
  wait_until 120 at_least $((before + m)) || echo "# run $r: only $(( $(taken) - before )) of $m arrived"
  curl -s "$url/messages" | jq -r 'select(.id | startswith("l")) | .ms - (.id | split("-") | .[2] | tonumber)' |
    sort -n >"$dir/lat"
  local cnt p50 p99 max
  cnt=$(wc -l <"$dir/lat")
  p50=$(sed -n "$(( (cnt + 1) / 2 ))p" "$dir/lat")
  p99=$(sed -n "$(( (cnt * 99 + 99) / 100 ))p" "$dir/lat")
  max=$(tail -n 1 "$dir/lat")
  local rss
  rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$npid/status" 2>/dev/null)
  echo "$tput $p50 $p99 $max ${rss:--}" >>"$CW_TMP/results"
  echo "# run $r: $tput tasks/s; at 1,000/s p50 $p50 ms, p99 $p99 ms, max $max ms; notifier peak RSS ${rss:--} MB"
  kill "$npid" "$fpid" 2>/dev/null
  wait_until 15 _cw_gone "$npid"
  wait_until 15 _cw_gone "$fpid"
}

: >"$CW_TMP/results"
for r in $(seq 1 "$runs"); do one_run "$r" || echo "# run $r failed"; done
col() { awk -v c="$1" '{print $c}' "$CW_TMP/results" | median; }
echo "notifier, median of $runs runs (target in brackets):"
echo "  throughput, SMS tasks/s end to end:  $(col 1)  [>= 10,000]"
echo "  task-to-provider at 1,000/s, ms:     p50 $(col 2)  p99 $(col 3)  max $(col 4)  [p99 <= 50]"
echo "  notifier peak RSS, MB:               $(col 5)"
# The headline figures for bench/run.sh's report (bench/lib.sh; nothing when run alone).
runs_of() { awk -v c="$1" '{printf "%s ", $c}' "$CW_TMP/results"; }
bench_result notifier "SMS tasks/s end to end ($n tasks at once)" "$(col 1)" tasks/s runs="$(runs_of 1)" \
  target=">= 10000"
bench_result notifier "task-to-provider p50 at 1,000 tasks/s" "$(col 2)" ms runs="$(runs_of 2)"
bench_result notifier "task-to-provider p99 at 1,000 tasks/s" "$(col 3)" ms runs="$(runs_of 3)" target="<= 50"
bench_result notifier "notifier peak RSS" "$(col 5)" MB runs="$(runs_of 5)"
bench_memory notifier notifier "$(col 5)" runs="$(runs_of 5)"
echo "  machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2 / 1048576)}' /proc/meminfo) GiB, $(uname -r)"
