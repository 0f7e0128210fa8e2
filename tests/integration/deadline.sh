#!/usr/bin/env bash
# Issue 4/7: the deadline worker end to end, on Redis and the devbroker. Cases are routed
# straight onto casewire.cases.v1 with short hand-off clocks (policy "default": warnings at
# 50 and 80 %), and the worker's DeadlineFired events and notification tasks are read back
# with casewire-tail:
#   - nobody acts: the 50 % and 80 % warnings go to the owner, then the breach climbs SH01's
#     whole ladder (levels 0, 1, 2, 3, each 3 s after the last) and stops at the top;
#   - the owner acknowledges after the first breach: the clock stops, nothing more fires;
#   - a reassign after the second breach restarts the clock (a new generation), closed after its
#     first breach;
#   - an emergency alerts levels 0-2 at once, then level 3;
#   - close cancels a case's timers in Redis; nothing fires early (Redis's clock);
#   - the operator view on the admin port: a case's armed clocks, counts per site and clock;
#   - the case record (cw:case:<id>, docs/deadline.md): due:, stopped:, breached:, level: and an
#     "escalated" history entry per breach, written only into a case that has a record (A, B, D
#     and E get a minimal one here; C has none and gets none).
source "$CW_ROOT/tests/lib/common.sh"
R="$CW_TMP/r"
mkdir -p "$R"
feed="$CW_BUILD/itests/deadline_feed"
tail_bin="$CW_BUILD/bin/casewire-tail"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
RC="redis-cli -p $REDIS_PORT"
start_deadline "$CW_TMP/dl" CASEWIRE_DEADLINE_LEASE=2s || { not_ok "the deadline worker starts"; exit 1; }
ok "the deadline worker starts and reports ready"
# The consumer must hold its partitions before events are written after "now" matter.
wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/dl/deadline.log" ||
  not_ok "the worker joined its consumer group within 60 s"

A=01JDDEAD0AAAAAAAAAAAAAAAAA B=01JDDEAD0BBBBBBBBBBBBBBBBB C=01JDDEAD0CCCCCCCCCCCCCCCCC
D=01JDDEAD0DDDDDDDDDDDDDDDDD E=01JDDEAD0EEEEEEEEEEEEEEEEE
# Minimal case records (the router writes the real ones); C is left without one.
for c in "$A" "$B" "$D" "$E"; do $RC hset "cw:case:$c" status assigned site SH01 >/dev/null; done
# A 3 s (its top level due at 12 s), B 5 s (the acknowledge has 5 s to arrive before B's
# second breach at 10 s, which A's last breach then proves would have fired), C 1.5 s, E 4 s
# (reassigned after its level-1 breach at 8 s, 4 s before level 2; closed after the restarted
# clock's first breach, 4 s before its next).
"$feed" routed "$A" SH01 1 SH01-S001 3000 >/dev/null &&
  "$feed" routed "$B" SH01 1 SH01-S001 5000 >/dev/null &&
  "$feed" routed "$C" SH01 3 SH01-S001 1500 >/dev/null &&
  "$feed" routed "$D" SH01 1 SH01-S001 600000 >/dev/null &&
  "$feed" routed "$E" SH01 1 SH01-S001 4000 >/dev/null
check "five CaseRouted events written" test $? -eq 0

dump() { # every record of the cases and notify topics so far, into $R/all.json
  "$tail_bin" --from-beginning --until-end --quiet --timeout 30 \
    --topic casewire.cases.v1 --topic casewire.notify.v1 >"$R/all.json" 2>"$R/tail.err"
}
fired() { jq -c --arg k "$1" 'select(.key == $k and .event.deadline_fired) | .event.deadline_fired' "$R/all.json"; }
seen() { dump && [ -n "$(fired "$1" | jq -r --arg t "$2" 'select(.timer_id == $t) | .timer_id')" ]; }

clk() { $RC --scan --pattern "cw:clk:*:$1" | head -n 1; }
# the case's clock state exists (it was armed) and holds no hand-off timer any more
stopped() { local k; k=$(clk "$1"); [ -n "$k" ] && [ "$($RC hexists "$k" on:handoff)" = 0 ]; }
# a timer was committed as fired (after Kafka confirmed its events): cheaper than a dump
committed() { local n; n=$(clk "$1" | sed -n 's/.*{cwt:\([0-9]*\)}.*/\1/p'); [ -n "$n" ] && [ -n "$($RC zscore "cw:fired:{cwt:$n}" "$2")" ]; }

# B: acknowledged once its first breach was published.
if wait_until 30 committed "$B" "$B.handoff.1.b0"; then
  "$feed" action "$B" SH01 acknowledge >/dev/null
  check "B: acknowledged after its first breach" test $? -eq 0
else
  not_ok "B's first breach fires within 30 s"
fi
check "B: the acknowledge stopped the hand-off clock (its timers are gone from Redis)" \
  wait_until 30 stopped "$B"

# E: reassigned once its level-1 breach was published (the record then shows level 1).
if wait_until 30 committed "$E" "$E.handoff.1.b1"; then
  e_due1=$($RC hget "cw:case:$E" due:handoff)
  "$feed" action "$E" SH01 reassign >/dev/null
  check "E: reassigned after its second breach" test $? -eq 0
else
  not_ok "E's second breach fires within 30 s"
fi
# E: the restarted clock breached (level 0 again, at about 12 s): what the record shows then,
# and the close, 4 s before its next breach.
if wait_until 30 committed "$E" "$E.handoff.2.b0"; then
  e_seen="$($RC hget "cw:case:$E" due:handoff) $($RC hexists "cw:case:$E" stopped:handoff) $($RC hget "cw:case:$E" level:handoff)"
  "$feed" action "$E" SH01 close >/dev/null
  check "E: closed after the restarted clock's first breach" test $? -eq 0
else
  not_ok "E's restarted clock breaches within 30 s"
fi
check "E: close stopped the restarted clock" wait_until 30 stopped "$E"

# The operator view (docs/deadline.md), on D while its 10-minute clock runs.
view() { curl -s -m 10 -o "$R/view.json" -w '%{http_code}' "$DEADLINE_ADMIN/v1/timers/$1"; }
d_armed() { [ "$(view "cases/$D")" = 200 ] && [ "$(jq '.clocks.handoff.timers | length' "$R/view.json")" = 3 ]; }
check "view: GET /v1/timers/cases/{D} shows its hand-off clock's three timers" wait_until 30 d_armed
check "view: D's timers are w50, w80, b0 in due order, waiting, generation 1 ($(jq -r '[.clocks.handoff.timers[] | "\(.stage):\(.state)"] | join(" ")' "$R/view.json"))" \
  test "$(jq -r '[.clocks.handoff.generation] + [.clocks.handoff.timers[] | "\(.stage):\(.state):\(.kind)"] | join(" ")' "$R/view.json")" = "1 w50:waiting:warning w80:waiting:warning b0:waiting:breach"
check "view: D's breach is due at its clock's due time, about 10 min ahead" \
  test "$(jq '.clocks.handoff.timers[2] | (.due_ms == .clock_due_ms) and (.due_in_ms > 500000) and (.due | endswith("Z"))' "$R/view.json")" = true
check "view: D's facts: site, owner, urgency ($(jq -c '.facts | {site, owner, urgency}' "$R/view.json"))" \
  test "$(jq -r '.facts | "\(.site) \(.owner) \(.urgency)"' "$R/view.json")" = "SH01 SH01-S001 general"
# The case record: D's running clock's due time, the one the operator view shows.
d_view_due=$(jq -r '.clocks.handoff.timers[2].clock_due_ms' "$R/view.json")
d_due() { [ "$($RC hget "cw:case:$D" due:handoff)" = "$d_view_due" ]; }
check "record: D's due:handoff is its clock's due time in the view ($d_view_due)" wait_until 10 d_due
check "view: a case id with no clock state answers 404" test "$(view cases/01JDDEAD0ZZZZZZZZZZZZZZZZZ)" = 404
check "view: a malformed case id answers 400 naming the field" \
  test "$(view 'cases/not-a-ulid')" = 400 -a "$(jq -r .error.field "$R/view.json")" = case_id
check "view: POST answers 405" \
  test "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$DEADLINE_ADMIN/v1/timers/counts")" = 405
# Counts: D's three timers are the only ones not yet due; A, B and C have theirs too, so
# compare with what Redis holds for SH01, counted here from the payloads.
count_ok() {
  [ "$(view 'counts?site=SH01')" = 200 ] || return 1
  local want got
  want=$(for n in $(seq 0 15); do $RC hvals "cw:tmr:{cwt:$n}"; done | jq -s '[.[] | select(.site == "SH01")] | length')
  got=$(jq '.sites.SH01.timers' "$R/view.json")
  echo "# counts: SH01 timers $got (Redis: $want), store $(jq -c .store "$R/view.json")"
  [ "$got" = "$want" ] && [ "$(jq '.sites.SH01.clocks.handoff.warnings + .sites.SH01.clocks.handoff.breaches' "$R/view.json")" = "$got" ]
}
# A, B and C fire meanwhile: the two counts agree once nothing moved between them.
check "view: GET /v1/timers/counts?site=SH01 counts every SH01 timer in Redis, all hand-off" \
  wait_until 30 count_ok
check "view: a site with no timers counts 0" \
  test "$(view 'counts?site=ZZ99')" = 200 -a "$(jq '.sites.ZZ99.timers' "$R/view.json")" = 0
check "view: an unusable site parameter answers 400" test "$(view 'counts?site=a%20b')" = 400

"$feed" action "$D" SH01 close >/dev/null
check "D: close cancels its timers (none left in the due index)" wait_until 30 stopped "$D"
check "view: after the close D shows no timers, its generation kept" \
  test "$(view "cases/$D")" = 200 -a "$(jq -c '[.armed, .clocks.handoff.generation, .events_applied]' "$R/view.json")" = "[0,1,2]"
fields() { $RC hkeys "cw:case:$1" | grep -E "^$2:" | sort | tr '\n' ' ' | sed 's/ $//'; }
d_stopped() { [ -z "$(fields "$D" due)" ] && [ "$(fields "$D" stopped)" = stopped:handoff ]; }
check "record: after the close D has no due:* field left, stopped:handoff only for the clock that ran" \
  wait_until 10 d_stopped

# A's last breach is the latest thing due: once it is out, everything else has fired.
check "A: the breach reached the top of the ladder (level 3) within 60 s" \
  wait_until 60 seen "$A" "$A.handoff.1.b3"
dump
fired "$A" >"$R/a.json"; fired "$B" >"$R/b.json"; fired "$C" >"$R/c.json"; fired "$D" >"$R/d.json"
fired "$E" >"$R/e.json"
stages() { jq -r '.timer_id | split(".")[3]' "$1" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
check "A: warnings at 50 and 80 %, then the breach at levels 0, 1, 2, 3 ($(stages "$R/a.json"))" \
  test "$(stages "$R/a.json")" = "b0 b1 b2 b3 w50 w80"
check "A: each breach names its ladder level" \
  test "$(jq -r 'select(.warning != true) | "\(.timer_id | split(".")[3]):\(.ladder_level // 0)"' "$R/a.json" | sort -u | tr '\n' ' ')" = "b0:0 b1:1 b2:2 b3:3 "
check "A: each level comes the clock's duration after the last (due times 3 s apart)" \
  test "$(jq -s '[.[] | select(.warning != true)] | sort_by(.due_ms) | [range(1; length) as $i | (.[$i].due_ms | tonumber) - (.[$i - 1].due_ms | tonumber)] | unique' "$R/a.json" -c)" = "[3000]"
check "A: nothing armed after the top of the ladder" stopped "$A"
check "B: after the acknowledge nothing more fired ($(stages "$R/b.json"))" \
  test "$(stages "$R/b.json")" = "b0 w50 w80"
check "C (emergency): levels 0-2 alerted at once, then level 3 ($(jq -r 'select(.warning != true) | .ladder_level' "$R/c.json" | tr '\n' ' '))" \
  test "$(jq -r 'select(.warning != true) | .ladder_level' "$R/c.json" | sort -n | tr '\n' ' ')" = "2 3 "
e_breaches() { jq -r 'select(.warning != true) | .timer_id | split(".") | "\(.[2]).\(.[3])"' "$R/e.json" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
check "E: breaches 0 and 1, then the restarted clock's 0, nothing after the close ($(e_breaches))" \
  test "$(e_breaches)" = "1.b0 1.b1 2.b0"
check "D: closed before its clock ran out: nothing fired" test ! -s "$R/d.json"
check "nothing fired early: fired_ms >= due_ms on Redis's clock, for every event" \
  test "$(cat "$R"/[abce].json | jq -s 'map(select((.fired_ms | tonumber) < (.due_ms | tonumber))) | length')" = 0
check "each timer was published once (one event id per timer)" \
  test "$(jq -r 'select(.event.deadline_fired) | "\(.event.deadline_fired.timer_id) \(.event.meta.event_id)"' "$R/all.json" | sort -u | awk '{print $1}' | uniq -d | wc -l)" = 0

# The tasks: the owner's warning SMS; for a breach an SMS and a staff task per person.
tasks() { jq -r --arg k "$1" 'select(.key == $k and .event.notification_task) | .event.notification_task.task_id' "$R/all.json" | sort -u; }
tasks "$A" >"$R/a.tasks"
check "A: the warnings went to the owner by SMS" \
  test "$(grep -c -E "\.w(50|80):sms:SH01-S001$" "$R/a.tasks")" = 2
check "A: each breach sent an SMS and a staff task to the level's people" \
  test "$(for s in b0 b1 b2 b3; do grep -c "\.$s:sms:" "$R/a.tasks"; grep -c "\.$s:task:" "$R/a.tasks"; done | awk '$1 < 1 { bad = 1 } END { print bad + 0 }')" = 0
level3=$(jq -r --arg t "$A.handoff.1.b3" 'select(.event.deadline_fired.timer_id == $t) | .event.deadline_fired.notified_staff_ids[]' "$R/all.json" | head -n 1)
check "A: level 3 notified the group head ($level3)" test "$level3" = HQ-S001

# The case record. A: nobody acted, so its clock still runs (due:handoff kept) and breached at
# its due time; each breach wrote one "escalated" entry, the same as its DeadlineFired.
a_top() { [ "$($RC hget "cw:case:$A" level:handoff)" = 3 ] && [ "$($RC zcard "cw:case:$A:history")" -ge 4 ]; }
wait_until 10 a_top
a_b0_due=$(jq -r --arg t "$A.handoff.1.b0" 'select(.timer_id == $t) | .due_ms' "$R/a.json" | head -n 1)
check "record: A's breached:handoff is its hand-off due time ($($RC hget "cw:case:$A" breached:handoff), b0 due $a_b0_due, due:handoff $($RC hget "cw:case:$A" due:handoff))" \
  test -n "$a_b0_due" -a "$($RC hget "cw:case:$A" breached:handoff)" = "$a_b0_due" -a "$($RC hget "cw:case:$A" due:handoff)" = "$a_b0_due"
check "record: A's level:handoff ends at the top of the ladder ($($RC hget "cw:case:$A" level:handoff), want 3)" \
  test "$($RC hget "cw:case:$A" level:handoff)" = 3
# What each breach's entry must be, from its DeadlineFired on Kafka (one per timer id).
escalations() {
  jq -c --arg k "$1" 'select(.key == $k and .event.deadline_fired and .event.deadline_fired.warning != true)
    | {at: (.event.deadline_fired.due_ms | tonumber), clock: "handoff", event: "escalated",
       event_id: .event.meta.event_id, level: (.event.deadline_fired.ladder_level // 0),
       notified: .event.deadline_fired.notified_staff_ids}' "$R/all.json" | jq -s -c -S 'unique_by(.event_id) | sort_by(.at)'
}
history() { $RC zrange "cw:case:$1:history" 0 -1 | jq -s -c -S .; }
escalations "$A" >"$R/a.want"; history "$A" >"$R/a.got"
check "record: A's history holds one escalated entry per level fired, in order (levels $(jq -c 'map(.level)' "$R/a.got"))" \
  test "$(jq -c 'map(.level)' "$R/a.got")" = "[0,1,2,3]" -a "$(jq -c '[.[].event] | unique' "$R/a.got")" = '["escalated"]'
check "record: A's entries name the clock, the DeadlineFired event ids, due times and people" \
  test "$(cat "$R/a.got")" = "$(cat "$R/a.want")" -a "$(jq 'length' "$R/a.want")" = 4
check "record: A's entries are compact JSON with sorted keys, scored by their due time" \
  test "$($RC zrange "cw:case:$A:history" 0 -1 withscores | paste - - | while IFS=$'\t' read -r e sc; do
    [ "$e" = "$(jq -c -S . <<<"$e")" ] && [ "$(jq .at <<<"$e")" = "$sc" ] || echo bad; done)" = ""
# B: acknowledged after its first breach: stopped at the acknowledge, the breach kept.
b_ack=$(jq -r --arg k "$B" 'select(.key == $k and .event.case_event) | .event.meta.occurred_ms' "$R/all.json" | head -n 1)
b_b0_due=$(jq -r --arg t "$B.handoff.1.b0" 'select(.timer_id == $t) | .due_ms' "$R/b.json" | head -n 1)
check "record: B's stopped:handoff is the acknowledge's time ($($RC hget "cw:case:$B" stopped:handoff), want $b_ack), no due:handoff left" \
  test -n "$b_ack" -a "$($RC hget "cw:case:$B" stopped:handoff)" = "$b_ack" -a "$($RC hexists "cw:case:$B" due:handoff)" = 0
check "record: B's breached:handoff kept ($($RC hget "cw:case:$B" breached:handoff), b0 due $b_b0_due), level:handoff 0" \
  test -n "$b_b0_due" -a "$($RC hget "cw:case:$B" breached:handoff)" = "$b_b0_due" -a "$($RC hget "cw:case:$B" level:handoff)" = 0
check "record: B's history holds its one breach" test "$(history "$B")" = "$(escalations "$B")" -a "$($RC zcard "cw:case:$B:history")" = 1
check "record: the projection left the record's own fields alone (A: $($RC hget "cw:case:$A" status) $($RC hget "cw:case:$A" site))" \
  test "$($RC hget "cw:case:$A" status) $($RC hget "cw:case:$A" site)" = "assigned SH01"
# E: the reassign only moved due:handoff; the restarted clock's breach at level 0 changed
# neither breached:handoff (the first breach) nor level:handoff (the highest, 1).
e_b0_due() { jq -r --arg t "$E.handoff.$1.b0" 'select(.event.deadline_fired.timer_id == $t) | .event.deadline_fired.due_ms' "$R/all.json" | head -n 1; }
e_close=$(jq -r --arg k "$E" 'select(.key == $k and .event.case_event.action == "close") | .event.meta.occurred_ms' "$R/all.json" | head -n 1)
check "record: E's reassign moved due:handoff to the new clock's due, set no stopped:, kept level 1 ($e_due1 -> $e_seen; new b0 due $(e_b0_due 2))" \
  test -n "$e_due1" -a "$e_due1" = "$(e_b0_due 1)" -a "$e_seen" = "$(e_b0_due 2) 0 1"
check "record: E's breached:handoff is still its first breach, level:handoff still 1 ($($RC hget "cw:case:$E" breached:handoff) $($RC hget "cw:case:$E" level:handoff))" \
  test "$($RC hget "cw:case:$E" breached:handoff) $($RC hget "cw:case:$E" level:handoff)" = "$(e_b0_due 1) 1"
check "record: E's history: levels 0 and 1, then 0 of the restarted clock ($(history "$E" | jq -c 'map(.level)'))" \
  test "$(history "$E")" = "$(escalations "$E")" -a "$(history "$E" | jq -c 'map(.level)')" = "[0,1,0]"
check "record: E's close set stopped:handoff to its time ($e_close), no due: left" \
  test -n "$e_close" -a "$($RC hget "cw:case:$E" stopped:handoff)" = "$e_close" -a -z "$(fields "$E" due)"
# C fired (levels 0-2, then 3) but has no record: none was created, no history either.
check "record: C has no case record, and none was created ($($RC exists "cw:case:$C" "cw:case:$C:history") keys)" \
  test "$($RC exists "cw:case:$C" "cw:case:$C:history")" = 0

metric() { curl -s -m 5 "$DEADLINE_ADMIN/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }
breaches=$(metric 'casewire_deadline_fired_total{kind="breach"}')
check "metrics count the breaches fired (${breaches:-none}, want 10: A 4, B 1, C 2, E 3)" test "${breaches:-0}" = 10
check_stops "the deadline worker" "$DEADLINE_PID" 15
