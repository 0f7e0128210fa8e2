#!/usr/bin/env bash
# Issue 4/7: a deadline worker stopped with SIGSTOP past its lease, then continued, and
# workers whose clock is an hour off (faketime).
#   - SIGSTOP: worker A is stopped while it holds claimed timers; worker B takes them over
#     once A's lease ran out and fires them; A, continued, publishes none of them: its
#     check or commit is refused and counted (casewire_deadline_fenced_total), and every
#     timer has one event id.
#   - faketime: workers an hour ahead and an hour behind fire nothing early and nothing an
#     hour late: due times are read on Redis's clock, delays are relative.
source "$CW_ROOT/tests/lib/common.sh"
R="$CW_TMP/r"
mkdir -p "$R"
feed="$CW_BUILD/itests/deadline_feed"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
RC="redis-cli -p $REDIS_PORT"
sum() { local s t=0; for s in $(seq 0 15); do t=$((t + $($RC zcard "cw:$1:{cwt:$s}"))); done; echo "$t"; }
metric() { curl -s -m 5 "$1/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'; }
left() { [ "$(sum due)" = 0 ] && [ "$(sum lease)" = 0 ]; }
fired_tsv() {
  "$CW_BUILD/bin/casewire-tail" --from-beginning --until-end --quiet --timeout 60 \
    --topic casewire.cases.v1 2>/dev/null | jq -r 'select(.event.deadline_fired) |
    [.event.deadline_fired.timer_id, .event.meta.event_id, (.event.deadline_fired.due_ms | tonumber),
     (.event.deadline_fired.fired_ms | tonumber)] | @tsv'
}

# ---- SIGSTOP past the lease ----
start_deadline "$CW_TMP/a" CASEWIRE_DEADLINE_LEASE=2s CASEWIRE_DEADLINE_BATCH=50 ||
  { not_ok "worker A starts"; exit 1; }
A_PID=$DEADLINE_PID A_ADMIN=$DEADLINE_ADMIN
N=${CW_DEADLINE_PAUSE_TIMERS:-4000}
"$feed" arm "$N" 1000 1500 >"$R/arm1.out" 2>&1
check "$N timers armed, due from 1 s to 2.5 s from now" grep -q "^armed $N " "$R/arm1.out"
# Stop A at a moment it holds claimed timers (in the lease set, not committed).
holding() { [ "$(sum lease)" -gt 0 ]; }
stopped_holding=0
for attempt in $(seq 1 200); do
  wait_until 30 holding || break
  kill -STOP "$A_PID"
  held=$(sum lease)
  if [ "$held" -gt 0 ]; then stopped_holding=$held; break; fi
  kill -CONT "$A_PID"
done
check "worker A stopped (SIGSTOP) while holding $stopped_holding claimed timers" test "$stopped_holding" -gt 0
start_deadline "$CW_TMP/b" CASEWIRE_DEADLINE_LEASE=2s || not_ok "worker B starts"
B_PID=$DEADLINE_PID
check "worker B fires everything, A's timers once A's lease ran out (none left within 60 s)" \
  wait_until 60 left
kill -CONT "$A_PID"
refused() {
  local r c
  r=$(metric "$A_ADMIN" 'casewire_deadline_fenced_total{by="redis"}')
  c=$(metric "$A_ADMIN" 'casewire_deadline_fenced_total{by="own_clock"}')
  [ $(( ${r%.*} + ${c%.*} )) -gt 0 ] && echo "redis=$r own_clock=$c" >"$R/refused"
}
check "A, continued, had its fires refused and counted ($(wait_until 30 refused; cat "$R/refused" 2>/dev/null))" \
  test -s "$R/refused"
check "A is alive and well after it" curl -sf -o /dev/null "$A_ADMIN/healthz"
fired_tsv >"$R/fired1.tsv"
timers=$(cut -f1 "$R/fired1.tsv" | sort -u | wc -l)
two=$(cut -f1,2 "$R/fired1.tsv" | sort -u | cut -f1 | uniq -d | wc -l)
check "all $N timers fired ($timers), each with one event id ($two with two; $(( $(wc -l <"$R/fired1.tsv") - timers )) copies)" \
  test "$timers" -eq "$N" -a "$two" -eq 0
kill -TERM "$A_PID" "$B_PID"; wait "$A_PID" "$B_PID" 2>/dev/null || true

# ---- a clock an hour off ----
# libfaketime moves the worker's wall clock (not its monotonic clock, which only ever measures
# delays), from 2 s after its start: librdkafka's start-up waits on wall-clock deadlines that
# libfaketime does not translate, and neither does it for later waits an hour ahead (its
# deliveries then stall). So each skewed worker is judged at its claims, which is where a
# worker trusting its own clock would go wrong: it claims every timer within seconds of its
# due time (not an hour early or late), and none before it on Redis's clock.
skewed() { # skewed SKEW DIR: a worker under libfaketime
  mkdir -p "$2"
  # libfaketime preloaded straight into the worker, not through the faketime program: that
  # one forks the worker and waits, so its pid is not the worker's, and killing it left the
  # worker running (spinning: librdkafka's waits on a clock an hour off) for the rest of CI.
  # An ASan build must be told the preload order is fine.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    LD_PRELOAD="/usr/\$LIB/faketime/libfaketime.so.1" FAKETIME="$1" \
    FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_START_AFTER_SECONDS=2 \
    env CASEWIRE_ADMIN_PORT=0 REDIS_URL="$REDIS_URL" KAFKA_BROKERS="$KAFKA_BROKERS" \
    CASEWIRE_CHAIN="$CW_ROOT/deploy/chain.example.yaml" CASEWIRE_DEADLINE_LEASE=2s \
    "$CW_BUILD/bin/casewire-deadline" >"$2/deadline.log" 2>&1 &
  S_PID=$!
  track_pid "$S_PID"
  wait_until 60 grep -q 'event=redis.connected' "$2/deadline.log" || return 1
  # the preload took (a missing library is only a warning from ld.so: the test would then
  # prove nothing about a skewed clock); looked at once the worker runs, not before its exec
  grep -q libfaketime "/proc/$S_PID/maps" 2>/dev/null
}
# Leased timers (claimed, not committed): how many, and how many were claimed (lease end
# minus the lease, Redis's clock) before their due time.
claimed_early() {
  $RC eval "local early, n = 0, 0
    for s = 0, 15 do
      local lease = redis.call('ZRANGE', 'cw:lease:{cwt:' .. s .. '}', 0, -1, 'WITHSCORES')
      for i = 1, #lease, 2 do
        local p = cjson.decode(redis.call('HGET', 'cw:tmr:{cwt:' .. s .. '}', lease[i]))
        n = n + 1
        if tonumber(lease[i + 1]) - 2000 < p.at then early = early + 1 end
      end
    end
    return {n, early}" 0 | tr '\n' ' '
}
all_claimed() { [ "$(sum due)" = 0 ]; }
leftover() { # workers of this test (its Redis) still running under FAKETIME=$1
  local p env
  for p in $(pgrep -x casewire-deadli); do
    env=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null) || continue
    grep -qx "REDIS_URL=$REDIS_URL" <<<"$env" && grep -qx "FAKETIME=$1" <<<"$env" && echo "$p"
  done
}
for skew in +1h -1h; do
  skewed "$skew" "$CW_TMP/skew$skew" ||
    not_ok "the worker with its clock $skew runs under libfaketime and connects to Redis"
  # due 4-6 s from now: after the worker's clock jumped
  "$feed" arm 300 4000 2000 >"$R/arm$skew.out" 2>&1
  check "a worker with its clock $skew claims 300 timers due over 2 s, within 30 s" wait_until 30 all_claimed
  read -r held early <<<"$(claimed_early)"
  logged=$(tail -n 1 "$CW_TMP/skew$skew/deadline.log" | grep -o '^ts=[^ ]*')
  check "  $skew (its log says $logged): none claimed before its due time ($early of the $held still leased)" \
    test "${early:-1}" -eq 0
  kill -KILL "$S_PID"; wait "$S_PID" 2>/dev/null || true # its status is the kill's
  check "  $skew: no worker left running after the kill ($(leftover "$skew" | tr '\n' ' '))" \
    test -z "$(leftover "$skew")"
done
