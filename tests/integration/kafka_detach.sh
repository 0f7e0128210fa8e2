#!/usr/bin/env bash
# A consumer stopped while it still holds messages whose effects never completed: it closes
# within its deadline (no hang in librdkafka's destroy), the held messages are detached (no
# data, done() only frees them: the sanitizer build checks for use-after-free and leaks), and
# their offsets were never stored, so the next member of the group gets every message.
source "$CW_ROOT/tests/lib/common.sh"
bin="$CW_BUILD/itests/kafka_group"
start_devbroker "$CW_TMP/broker" --topics itest.detach --partitions 3 --brokers 1 || { not_ok "devbroker starts"; exit 1; }
"$bin" produce itest.detach 500 100000 >"$CW_TMP/p.log" 2>&1
check "500 messages produced" test $? -eq 0

ITEST_HOLD=1 "$bin" consume itest.detach gd "$CW_TMP/held.out" >"$CW_TMP/h.log" 2>&1 & h=$!; track_pid "$h"
check "holding consumer takes its in-flight limit (200) and completes none" wait_until 60 grep -q "held 200" "$CW_TMP/h.log"
check_stops "consumer holding messages" "$h" 15
# A saturated consumer still takes one message a second, so it may hold a few more than 200.
held=$(sed -n 's/^detached=\([0-9]*\) empty=\([0-9]*\) inflight_after=0$/\1 \2/p' "$CW_TMP/h.log")
check "held messages were detached: no data left, nothing in flight (detached, empty: ${held:-none})" \
  sh -c "set -- $held; [ \"\${1:-0}\" -ge 200 ] && [ \"\$1\" = \"\$2\" ]"
check "no effect was applied by the holding consumer" test ! -s "$CW_TMP/held.out"

"$bin" consume itest.detach gd "$CW_TMP/next.out" >"$CW_TMP/n.log" 2>&1 & n=$!; track_pid "$n"
all500() { [ "$(sort -u "$CW_TMP/next.out" 2>/dev/null | wc -l)" -ge 500 ]; }
check "the next member gets all 500 (no offset stored for a detached message)" wait_until 60 all500
kill -TERM "$n"; wait "$n"
