#!/usr/bin/env bash
# Issue 5/7: the follow-up (回访), end to end through the gateway and the notifier:
#   - 1,000 cases resolved through the gateway while the notifier is killed with kill -9 three
#     times: exactly 1,000 callback tasks in SH01's queue, one per case, and the follow-up
#     report for the day shows every resolved case with its task (100 %, none missing);
#   - the queue is listed most urgent first; another site's staff get 404;
#   - two agents claim the same task at once: one wins, the other gets 409;
#   - "satisfied" completes the task (out of the queue), and the case may close;
#     "unreachable" puts it back an hour later, with its attempt counted; closing that case
#     cancels the task; a reopen cancels a task, and the next resolution brings a new one.
source "$CW_ROOT/tests/lib/common.sh"
gwclient="$CW_BUILD/itests/gwclient"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
RC="redis-cli -p $REDIS_PORT"
# The example chain, its SMS written into this test's folder.
CHAIN="$CW_TMP/chain.yaml"
sed "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
grep -q "file: $CW_TMP/sms.log" "$CHAIN" || { not_ok "the test chain writes SMS to its folder"; exit 1; }
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" CASEWIRE_RATE_IP_PER_MIN=0 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 || { not_ok "gateway starts"; exit 1; }
start_notifier() {
  local port; port=$(free_port)
  _start_daemon notifier "$CW_TMP/nt" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$CHAIN"
  NOTIFIER_PID=$DAEMON_PID
}
start_notifier || { not_ok "the notifier starts"; exit 1; }
wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/nt/notifier.log" ||
  not_ok "the notifier joined its consumer group within 60 s"
DESK="Authorization: Bearer demo-desk_agent-SH01"
# the site's day when the cases are resolved (read before, so midnight cannot fall in between:
# the test takes about a minute; it warns when it ran across midnight)
today=$(TZ=Asia/Shanghai date +%F)
AGENT="Authorization: Bearer demo-callcenter_agent-SH01"
N=1000

# N complaints at SH01, through the gateway.
for i in $(seq 1 $N); do
  printf '{"m":"POST","p":"/v1/cases","h":{"Idempotency-Key":"fu-%d"},"b":{"site":"SH01","channel":"web","text":"回访测试 %d：饮料有异味","customer":{"name":"顾客","phone":"1390000%04d"}}}\n' "$i" "$i" "$i"
done >"$CW_TMP/intake.req"
timeout 300 "$gwclient" "$GW_URL" 8 <"$CW_TMP/intake.req" >"$CW_TMP/intake.out"
check "$N cases taken by the gateway" test "$(jq -s 'map(select(.status == 202)) | length' "$CW_TMP/intake.out")" = $N
jq -r 'select(.status == 202) | .body.case_id' "$CW_TMP/intake.out" >"$CW_TMP/ids"

# Resolve them all, in two halves, while the notifier is killed three times.
while read -r id; do
  printf '{"m":"POST","p":"/v1/cases/%s/events","h":{"Authorization":"Bearer demo-desk_agent-SH01"},"b":{"action":"resolve","note":"已处理"}}\n' "$id"
done <"$CW_TMP/ids" >"$CW_TMP/resolve.req"
split -n l/2 "$CW_TMP/resolve.req" "$CW_TMP/resolve.part."
tasks() { $RC --scan --pattern 'cw:cb:task:*' | wc -l; }
at_least_tasks() { [ "$(tasks)" -ge "$1" ]; }
kills=0
for part in "$CW_TMP"/resolve.part.*; do
  timeout 300 "$gwclient" "$GW_URL" 4 <"$part" >>"$CW_TMP/resolve.out" &
  client=$!
  # kill -9 once the notifier is under way with this half, then once more for the first half
  for round in 1 2; do
    [ "$kills" -ge 3 ] && break
    wait_until 60 at_least_tasks $(( kills * 150 + 50 )) || break
    kill -9 "$NOTIFIER_PID"
    kills=$((kills + 1))
    start_notifier || not_ok "the notifier restarts after kill -9 number $kills"
  done
  wait "$client"
done
check "the notifier was killed with kill -9 three times while cases were resolved" test "$kills" = 3
check "$N resolutions taken by the gateway" test "$(jq -s 'map(select(.status == 202)) | length' "$CW_TMP/resolve.out")" = $N
check "$N callback tasks within 120 s" wait_until 120 at_least_tasks $N
sleep_check() { [ "$(tasks)" = $N ]; }
check "exactly $N callback tasks, no more ($(tasks))" sleep_check
check "SH01's queue holds all $N" test "$($RC zcard 'cw:cb:SH01:queue')" = $N
check "each case has its task" test "$(while read -r id; do $RC exists "cw:cb:case:$id"; done <"$CW_TMP/ids" | grep -c '^1$')" = $N
[ "$today" = "$(TZ=Asia/Shanghai date +%F)" ] || echo "# ran across midnight at SH01: the report's figures may be split"
report() { curl -s -H "$1" "$GW_URL/v1/reports/follow-up?site=SH01&date=$today"; }
rep=$(report "$DESK")
echo "# report: $(jq -c 'del(.without_callback_task)' <<<"$rep")"
check "the follow-up report: $N resolved today, $N with a callback task, none without" \
  test "$(jq -r '"\(.resolved) \(.callback_tasks) \(.without_callback_task | length) \(.callback_rate == 1)"' <<<"$rep")" = "$N $N 0 true"
check "another site's staff get 404 for SH01's report" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer demo-desk_agent-SH02' "$GW_URL/v1/reports/follow-up?site=SH01&date=$today")" = 404
check "the report needs a date (400 naming it)" \
  test "$(curl -s -H "$DESK" "$GW_URL/v1/reports/follow-up?site=SH01" | jq -r .error.field)" = date

# The queue, as the call centre's agent sees it.
q=$(curl -s -H "$AGENT" "$GW_URL/v1/callbacks")
check "the agent's queue lists SH01's tasks (at most 500 at once: $(jq '.tasks | length' <<<"$q"))" \
  test "$(jq -r '"\(.site) \(.tasks | length)"' <<<"$q")" = "SH01 500"
check "... most urgent first, then by due time" \
  test "$(jq '[.tasks[] | [(if .urgency == "emergency" then 0 elif .urgency == "important" then 1 else 2 end), .due_ms]] | . == sort' <<<"$q")" = true
check "another site's staff get 404 for SH01's queue" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer demo-desk_agent-SH02' "$GW_URL/v1/callbacks?site=SH01")" = 404

# Two agents claim the same task at once: one wins.
T1=$(jq -r '.tasks[0].task_id' <<<"$q") C1=$(jq -r '.tasks[0].case_id' <<<"$q")
claimers=()
for who in desk_agent callcenter_agent; do
  curl -s -m 10 -o "$CW_TMP/claim.$who" -w '%{http_code}\n' -X POST \
    -H "Authorization: Bearer demo-$who-SH01" "$GW_URL/v1/callbacks/$T1/claim" >"$CW_TMP/code.$who" &
  claimers+=($!)
done
wait "${claimers[@]}"
codes=$(sort "$CW_TMP"/code.* | tr '\n' ' ')
check "two agents claiming one task at once: one 200, one 409 ($codes)" test "$codes" = "200 409 "
winner=$(grep -l 200 "$CW_TMP"/code.* | sed 's/.*code\.//')
check "the loser is told who has it" grep -q '"code":"claimed"' "$CW_TMP"/claim.*
check "the winner claiming again renews its lease (200)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer demo-$winner-SH01" "$GW_URL/v1/callbacks/$T1/claim")" = 200
check "the queue shows the task claimed by the winner" \
  test "$(curl -s -H "$AGENT" "$GW_URL/v1/callbacks" | jq -r --arg t "$T1" '.tasks[] | select(.task_id == $t) | .claimed_by')" = "$(jq -r .claimed_by "$CW_TMP/claim.$winner")"
check "another site's staff claiming it: 404" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer demo-desk_agent-SH02' "$GW_URL/v1/callbacks/$T1/claim")" = 404
check "a tenant's key: 401" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer demo-tenant-T-SH01-0312' "$GW_URL/v1/callbacks")" = 401

# Outcomes: satisfied completes the task; the case may then close.
event() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "$DESK" -H 'Content-Type: application/json' \
  "$GW_URL/v1/cases/$1/events" -d "$2"; }
check "closing before the follow-up is refused (409)" test "$(event "$C1" '{"action":"close"}')" = 409
check "the agent records satisfied (202)" test "$(event "$C1" '{"action":"followup","outcome":"satisfied"}')" = 202
done_task() { [ "$($RC hget "cw:cb:task:$T1" state)" = done ] && [ -z "$($RC zscore cw:cb:SH01:queue "$T1")" ]; }
check "... which completes the task and takes it out of the queue" wait_until 30 done_task
check "... kept about 400 days, then forgotten (TTL $($RC ttl "cw:cb:task:$T1") s)" \
  test "$($RC ttl "cw:cb:task:$T1")" -gt $((399 * 86400))
check "... and the case may close (202)" test "$(event "$C1" '{"action":"close"}')" = 202
check "claiming a completed task: 409" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AGENT" "$GW_URL/v1/callbacks/$T1/claim")" = 409
T2=$(jq -r '.tasks[1].task_id' <<<"$q") C2=$(jq -r '.tasks[1].case_id' <<<"$q")
check "the agent records unreachable (202)" test "$(event "$C2" '{"action":"followup","outcome":"unreachable"}')" = 202
again() { [ "$($RC hget "cw:cb:task:$T2" attempts)" = 1 ] && [ "$($RC hget "cw:cb:task:$T2" state)" = open ]; }
check "... the task stays open with one attempt counted" wait_until 30 again
due2=$($RC zscore cw:cb:SH01:queue "$T2")
check "... and comes back in about an hour ($(( (${due2%.*} - $(date +%s%3N)) / 60000 )) min)" \
  test $(( ${due2%.*} - $(date +%s%3N) )) -gt 3300000
# Closing a case whose customer was unreachable cancels its open task.
check "the case with an unreachable customer may close (202)" test "$(event "$C2" '{"action":"close"}')" = 202
cancelled() { [ "$($RC hget "cw:cb:task:$T2" state)" = cancelled ] && [ -z "$($RC zscore cw:cb:SH01:queue "$T2")" ]; }
check "... which cancels its task and takes it out of the queue" wait_until 30 cancelled
# A reopened case's task goes; its next resolution brings a new one.
T3=$(jq -r '.tasks[2].task_id' <<<"$q") C3=$(jq -r '.tasks[2].case_id' <<<"$q")
check "a resolved case is reopened (202)" test "$(event "$C3" '{"action":"reopen","note":"顾客来电"}')" = 202
reopened() { [ "$($RC hget "cw:cb:task:$T3" state)" = cancelled ]; }
check "... which cancels its callback task" wait_until 30 reopened
check "... and resolved again (202)" test "$(event "$C3" '{"action":"resolve"}')" = 202
new_task() { local t; t=$($RC get "cw:cb:case:$C3"); [ -n "$t" ] && [ "$t" != "$T3" ] && [ "$($RC hget "cw:cb:task:$t" state)" = open ]; }
check "... which brings a new open task" wait_until 30 new_task
rep=$(report "$DESK")
check "the report counts the two outcomes recorded ($(jq .followed_up <<<"$rep") followed up)" \
  test "$(jq .followed_up <<<"$rep")" = 2
check_stops "the notifier" "$NOTIFIER_PID" 15
