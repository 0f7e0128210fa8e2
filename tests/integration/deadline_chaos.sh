#!/usr/bin/env bash
# Issue 4/7: 5,000 timers due over 6 s, three deadline workers, one of them killed with
# kill -9 (and started again) every 0.7 s, and Redis killed with kill -9 once in the middle
# and restarted from its AOF (appendfsync everysec). Then, from Kafka and Redis:
#   - all 5,000 fired: each timer has a DeadlineFired, none is left in Redis;
#   - no duplicate in effect: every DeadlineFired of a timer carries one event id (a copy
#     republished after a kill is the same event, applied once downstream);
#   - none early (Redis's clock) and lateness bounded by the lease plus the Redis restart.
# CW_DEADLINE_CHAOS_TIMERS overrides the count (for a quick local run).
source "$CW_ROOT/tests/lib/common.sh"
N=${CW_DEADLINE_CHAOS_TIMERS:-5000}
LEASE_MS=2000
R="$CW_TMP/r"
mkdir -p "$R"
feed="$CW_BUILD/itests/deadline_feed"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
RC="redis-cli -p $REDIS_PORT"

declare -A pid
spawn() { # worker i, not waiting for readiness: a kill may come before it is
  mkdir -p "$CW_TMP/dl$1"
  env CASEWIRE_ADMIN_PORT=0 REDIS_URL="$REDIS_URL" KAFKA_BROKERS="$KAFKA_BROKERS" \
    CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" CASEWIRE_DEADLINE_LEASE=${LEASE_MS}ms \
    "$CW_BUILD/bin/casewire-deadline" >>"$CW_TMP/dl$1/deadline.log" 2>&1 &
  pid[$1]=$!
  track_pid "${pid[$1]}"
}
for i in 1 2 3; do spawn "$i"; done
up() { grep -q 'event=redis.connected' "$CW_TMP/dl$1/deadline.log"; }
check "three workers connected to Redis" wait_until 120 eval 'up 1 && up 2 && up 3'

sum() { # sum of a per-shard count over the 16 shards: sum ZCARD due
  local s t=0; for s in $(seq 0 15); do t=$((t + $($RC "$1" "cw:$2:{cwt:$s}" 2>/dev/null || echo 0))); done; echo "$t"
}
"$feed" arm "$N" 3000 6000 >"$R/arm.out" 2>&1
check "$N timers armed, due from 3 s to 9 s from now ($(tail -n 1 "$R/arm.out"))" grep -q "^armed $N " "$R/arm.out"

# From the first fire on, through the 6 s of due times and beyond: 12 kills, 0.7 s apart.
started() { [ "$(sum zcard fired)" -gt 0 ]; }
wait_until 30 started || not_ok "the first timer fires within 30 s"
kills=0 redis_killed=0
i=1
while [ "$kills" -lt 12 ]; do
  sleep 0.7
  kill -9 "${pid[$i]}" 2>/dev/null; wait "${pid[$i]}" 2>/dev/null
  spawn "$i"
  kills=$((kills + 1))
  i=$(( i % 3 + 1 ))
  fired_now=$(sum zcard fired)
  if [ "$redis_killed" = 0 ] && [ "$fired_now" -ge $((N / 3)) ]; then
    echo "# kill -9 redis at $fired_now of $N fired"
    stop_redis KILL
    start_redis "$CW_TMP/redis" "$REDIS_PORT" || { not_ok "redis restarts from its AOF"; exit 1; }
    redis_killed=1
  fi
done
check "workers killed with kill -9 every 0.7 s while timers were due ($kills kills)" test "$kills" -eq 12
check "Redis was killed with kill -9 once, mid-firing, and restarted from its AOF" test "$redis_killed" = 1

left() { [ "$(sum zcard due)" = 0 ] && [ "$(sum zcard lease)" = 0 ]; }
check "every timer fired: none left due or leased in Redis within 60 s" wait_until 60 left

"$CW_BUILD/bin/casewire-tail" --from-beginning --until-end --quiet --timeout 60 \
  --topic casewire.cases.v1 >"$R/cases.json" 2>"$R/tail.err"
jq -r 'select(.event.deadline_fired) | [.event.deadline_fired.timer_id, .event.meta.event_id,
  (.event.deadline_fired.due_ms | tonumber), (.event.deadline_fired.fired_ms | tonumber)] | @tsv' \
  "$R/cases.json" >"$R/fired.tsv"
records=$(wc -l <"$R/fired.tsv")
timers=$(cut -f1 "$R/fired.tsv" | sort -u | wc -l)
check "all $N timers fired ($timers distinct timers in $records DeadlineFired records)" test "$timers" -eq "$N"
two_ids=$(cut -f1,2 "$R/fired.tsv" | sort -u | cut -f1 | uniq -d | wc -l)
check "no duplicate in effect: every timer's records carry one event id ($two_ids timers with two; $((records - timers)) republished copies)" \
  test "$two_ids" -eq 0
early=$(awk -F'\t' '$4 < $3' "$R/fired.tsv" | wc -l)
check "none fired early on Redis's clock ($early)" test "$early" -eq 0
# lateness of each timer's first publication
sort -t$'\t' -k1,1 -k4,4n "$R/fired.tsv" | awk -F'\t' '!seen[$1]++ { print $4 - $3 }' | sort -n >"$R/late"
pct() { awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; print v[i] }' "$R/late"; }
echo "# lateness ms: p50 $(pct 50) p99 $(pct 99) max $(pct 100) (lease $LEASE_MS ms)"
check "lateness bounded by the lease plus the Redis restart: max $(pct 100) ms <= $((LEASE_MS + 3000)) ms" \
  test "$(pct 100)" -le $((LEASE_MS + 3000))
