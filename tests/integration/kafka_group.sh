#!/usr/bin/env bash
# Kafka wrapper against the devbroker: 10,000 messages through a consumer group of two
# processes, one killed with kill -9 halfway. Nothing may be missing; duplicates (redelivery
# of messages whose offsets were not yet committed) are allowed, counted and reported.
source "$CW_ROOT/tests/lib/common.sh"
bin="$CW_BUILD/itests/kafka_group"
total=10000
topic=itest.group

start_devbroker "$CW_TMP/broker" --topics "$topic" --partitions 6 --brokers 3 || { not_ok "devbroker starts"; exit 1; }
ok "devbroker starts and writes its bootstrap address"

"$bin" consume "$topic" g1 "$CW_TMP/a.out" >"$CW_TMP/a.log" 2>&1 & a=$!; track_pid "$a"
"$bin" consume "$topic" g1 "$CW_TMP/b.out" >"$CW_TMP/b.log" 2>&1 & b=$!; track_pid "$b"
both_assigned() { grep -q kafka.assigned "$CW_TMP/a.log" && grep -q kafka.assigned "$CW_TMP/b.log"; }
check "two consumers join the group and share partitions" wait_until 60 both_assigned

"$bin" produce "$topic" "$total" 2000 >"$CW_TMP/p.log" 2>&1 & p=$!; track_pid "$p"

lines() { cat "$CW_TMP"/[ab].out 2>/dev/null | wc -l; }
half() { [ "$(lines)" -ge $((total / 2)) ]; }
if wait_until 60 half; then
  kill -9 "$a"; wait "$a" 2>/dev/null
  ok "consumer A killed with SIGKILL after $(lines) effects"
else
  not_ok "half the messages consumed within 60 s" "$(lines) effects"
fi

wait "$p"; check "producer: all $total messages confirmed (acks=all, idempotent)" test $? -eq 0

unique() { cat "$CW_TMP"/[ab].out | sort -u | wc -l; }
all_there() { [ "$(unique)" -ge "$total" ]; }
wait_until 120 all_there
u=$(unique); n=$(lines)
echo "# unique=$u total_effects=$n duplicates=$((n - u)) (redelivered after the kill)"
check "0 missing after kill -9 and rebalance (missing $((total - u)))" test "$u" -eq "$total"
check "no message outside the produced set" test "$(cat "$CW_TMP"/[ab].out | sort -u | grep -cv '^m[0-9]*$')" -eq 0

check_stops "surviving consumer" "$b" 10
grep -h "consumer done" "$CW_TMP/b.log" | sed 's/^/# B: /'
# Backpressure: at most max_inflight (200) out at once, plus the one message a saturated
# consumer takes per second to keep serving rebalances.
peak=$(sed -n 's/.*inflight_peak=\([0-9]*\).*/\1/p' "$CW_TMP/b.log")
check "in-flight messages stayed within the bound (peak ${peak:-?} <= 201)" test "${peak:-999999}" -le 201
