#!/usr/bin/env bash
# Issue 5/7: the follow-up (回访), end to end through the gateway and the notifier:
#   - 1,000 cases resolved through the gateway while the notifier is killed with kill -9 three
#     times: exactly 1,000 callback tasks in SH01's queue, one per case, and the follow-up
#     report for the day shows every resolved case with its task (100 %, none missing);
#   - the queue is listed most urgent first; another site's staff get 404;
#   - two agents claim the same task at once: one wins, the other gets 409;
#   - "satisfied" completes the task (out of the queue), and the case may close;
#     "unreachable" puts it back an hour later, with its attempt counted; after the third the
#     notifier closes the case as unreachable and texts the customer a reply code, which the
#     customer's reply (POST /v1/sms/replies, signed) turns into the outcome, once; a reopen
#     cancels a task, and the next resolution brings a new one;
#   - a delivery receipt replayed 100 times changes one status; opt-outs by reply and by staff.
source "$CW_ROOT/tests/lib/common.sh"
gwclient="$CW_BUILD/itests/gwclient"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
RC="redis-cli -p $REDIS_PORT"
# The example chain, its SMS written into this test's folder.
CHAIN="$CW_TMP/chain.yaml"
# No quiet hours and no limits per number: the follow-up SMS must not wait for the morning, or
# for the minute after the same number's "case received".
sed -e "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" -e 's|^  quiet_hours: .*|  quiet_hours: none|' \
  -e 's|^  per_number: .*|  per_number: {minute: 0, hour: 0, day: 0}|' "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
grep -q "file: $CW_TMP/sms.log" "$CHAIN" && grep -q "quiet_hours: none" "$CHAIN" ||
  { not_ok "the test chain writes SMS to its folder, at any hour"; exit 1; }
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" CASEWIRE_RATE_IP_PER_MIN=0 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 || { not_ok "gateway starts"; exit 1; }
# The router writes the case record (the customer's phone, the language) the notifier reads.
start_router "$CW_TMP/rt" CASEWIRE_CHAIN="$CHAIN" || { not_ok "router starts"; exit 1; }
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
check "staff cannot close a case whose customer was not reached (409)" \
  test "$(event "$C2" '{"action":"close"}')" = 409
out=$(curl -s -w '\n%{http_code}' -X POST -H "$AGENT" "$GW_URL/v1/callbacks/$T2/claim")
check "... and no agent can claim it before the hour is up: 409 too_early, naming the time" \
  test "$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r '.error.code + " " + (.error.message | test("after 20[0-9-]+T") | tostring)')" = "409 too_early true"
check "... the queue shows when it may be called again (not_before)" \
  eval 'curl -s -H "$AGENT" "$GW_URL/v1/callbacks" | jq -e --arg t "$T2" ".tasks[] | select(.task_id == \$t) | .not_before | test(\"\\\\+08:00$\")" >/dev/null'
# Two more unreachable calls: the last one closes the case as unreachable, and the customer gets
# an SMS with a reply code.
N2=$(jq -r '.tasks[1].case_no' <<<"$q")
for k in 2 3; do
  check "unreachable call $k recorded (202)" test "$(event "$C2" '{"action":"followup","outcome":"unreachable"}')" = 202
  attempts() { [ "$($RC hget "cw:cb:task:$T2" attempts)" = "$1" ]; }
  wait_until 30 attempts $k || not_ok "the task counts unreachable call $k"
done
closed_unreachable() { [ "$($RC hget "cw:case:$C2" status)" = closed ] && [ "$($RC hget "cw:case:$C2" followup)" = unreachable ] &&
  [ "$($RC hget "cw:cb:task:$T2" state)" = unreachable ] && [ -n "$($RC hget "cw:cb:task:$T2" wrapped)" ]; }
check "after the third, the notifier closes the case as unreachable (flagged) and the task is over" \
  wait_until 60 closed_unreachable
check "... the history says who closed it and why" \
  test "$(curl -s -H "$DESK" "$GW_URL/v1/cases/$C2" | jq -r '[.history[] | select(.event == "close")][0] | "\(.actor_kind) \(.outcome)"')" = "system unreachable"
sms_for() { grep -F "\"$1\"" "$CW_TMP/sms.log" | grep -F "$N2"; }
has_sms() { sms_for "$1" >/dev/null; }
check "... and the customer gets the SMS with a reply code" wait_until 60 has_sms followup_unreachable
code=$(sms_for followup_unreachable | head -1 | jq -r .text | sed -n 's/.*回复\([0-9]\{4\}\)1.*/\1/p')
phone=$($RC hget "cw:case:$C2" record | jq -r .customer.phone)
digits=$(tr -dc 0-9 <<<"$phone")
check "... a 4-digit code, kept for the customer's number ($code)" \
  test "$($RC get "cw:cb:reply:$(printf %s "${digits#86}" | sha256sum | cut -c1-16):$code")" = "$C2"
check "exactly one such SMS" test "$(sms_for followup_unreachable | wc -l)" = 1

# What the SMS provider posts back: signed the Standard Webhooks way with sms.receipt_secret.
SECRET=demo-sms-receipt-secret-0001
signed_post() { # path body [secret]
  local id ts sig; id="msg_$(date +%s%N)"; ts=${TS:-$(date +%s)}
  sig=$(printf '%s.%s.%s' "$id" "$ts" "$2" | openssl dgst -sha256 -mac HMAC -macopt key:"${3:-$SECRET}" -binary | base64)
  curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -H "webhook-id: $id" \
    -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" "$GW_URL$1" -d "$2"
}
out=$(signed_post /v1/sms/replies "{\"from\":\"$phone\",\"text\":\" ${code}1 \"}")
check "the customer replies ${code}1: accepted (202)" test "$(tail -1 <<<"$out")" = 202
satisfied() { [ "$($RC hget "cw:case:$C2" followup)" = satisfied ] && [ "$($RC hget "cw:case:$C2" status)" = closed ]; }
check "... the case records satisfied, and stays closed" wait_until 30 satisfied
out=$(signed_post /v1/sms/replies "{\"from\":\"$phone\",\"text\":\"${code}2\"}")
check "a second reply changes nothing (200, action none)" test "$(head -1 <<<"$out" | jq -r .action) $(tail -1 <<<"$out")" = "none 200"
check "... the case is still closed and satisfied" satisfied
out=$(signed_post /v1/sms/replies "{\"from\":\"$phone\",\"text\":\"${code}1\"}" wrong-secret-wrong-secret)
check "a reply signed with another secret: 401" test "$(tail -1 <<<"$out")" = 401
# A delivery receipt for that SMS, replayed 100 times: one status change.
sms_task=$(sms_for followup_unreachable | head -1 | jq -r .id)
body="{\"receipts\":[{\"id\":\"$sms_task\",\"status\":\"delivered\",\"code\":\"DELIVRD\"}]}"
for i in $(seq 1 100); do signed_post /v1/sms/receipts "$body" | head -1 | jq -r '.results[0].result'; done >"$CW_TMP/receipts"
check "a delivery receipt replayed 100 times: recorded once, 99 duplicates ($(sort "$CW_TMP/receipts" | uniq -c | tr -s ' \n' ' '))" \
  test "$(grep -c '^recorded$' "$CW_TMP/receipts") $(grep -c '^duplicate$' "$CW_TMP/receipts")" = "1 99"
check "... the receipt is kept with the task" test "$($RC get "nt:{nt}:rcpt:$sms_task" | cut -d'|' -f1,3)" = "delivered|DELIVRD"
out=$(signed_post /v1/sms/receipts "{\"receipts\":[{\"id\":\"$sms_task\",\"status\":\"failed\"}]}")
check "... a later, different receipt changes nothing" \
  test "$(head -1 <<<"$out" | jq -r '.results[0].result') $($RC get "nt:{nt}:rcpt:$sms_task" | cut -d'|' -f1)" = "duplicate delivered"
out=$(signed_post /v1/sms/receipts '{"receipts":[{"id":"no-such-task","status":"delivered"}]}')
check "a receipt for a task we never had: answered, not recorded" test "$(head -1 <<<"$out" | jq -r '.results[0].result')" = unknown_task
out=$(signed_post /v1/sms/receipts '{"receipts":[{"id":"x","status":"read"}]}')
check "a receipt with an unknown status: 422 naming the field" test "$(head -1 <<<"$out" | jq -r .error.field) $(tail -1 <<<"$out")" = "receipts[0].status 422"
out=$(TS=$(( $(date +%s) - 600 )) signed_post /v1/sms/receipts "$body")
check "a receipt signed 10 minutes ago: 401 naming the timestamp" \
  test "$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r '.error.message | test("timestamp")')" = "401 true"
check "an unsigned receipt: 401" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$GW_URL/v1/sms/receipts" -d "$body")" = 401
# Opt-outs: a reply of TD, and staff at the desk.
out=$(signed_post /v1/sms/replies '{"from":"8613900000777","text":"ｔｄ"}')
check "a customer's reply TD (full-width, from 86... without +) opts the number out" test "$(head -1 <<<"$out" | jq -r .action)" = opted_out
check "... by its hash" test "$($RC sismember 'nt:{nt}:optout' "$(printf %s 13900000777 | sha256sum | cut -c1-16)")" = 1
optout() { curl -s -X POST -H "$DESK" -H 'Content-Type: application/json' "$GW_URL/v1/sms/opt-outs" -d "$1"; }
check "staff opt a number out (+86 written)" test "$(optout '{"phone":"+86 139 0000 0888"}' | jq -r '"\(.action) \(.changed)"')" = "opted_out true"
check "... again: nothing changes" test "$(optout '{"phone":"13900000888"}' | jq -r .changed)" = false
check "... and back in" test "$(optout '{"phone":"13900000888","opted_out":false}' | jq -r '"\(.action) \(.changed)"')" = "opted_in true"
check "opting out needs a staff token (401)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$GW_URL/v1/sms/opt-outs" -d '{"phone":"13900000888"}')" = 401
# A case reopened after its third unreachable call, before the notifier closed it: the reopen
# stands, and the customer gets no SMS.
T4=$(jq -r '.tasks[3].task_id' <<<"$q") C4=$(jq -r '.tasks[3].case_id' <<<"$q") N4=$(jq -r '.tasks[3].case_no' <<<"$q")
for k in 1 2; do
  event "$C4" '{"action":"followup","outcome":"unreachable"}' >/dev/null
  attempts4() { [ "$($RC hget "cw:cb:task:$T4" attempts)" = "$1" ]; }
  wait_until 30 attempts4 $k || not_ok "the task counts unreachable call $k of $N4"
done
kill -TERM "$NOTIFIER_PID"
stopped() { ! kill -0 "$NOTIFIER_PID" 2>/dev/null; }
wait_until 30 stopped || not_ok "the notifier stops on SIGTERM"
check "with the notifier stopped: the third unreachable call (202) and a reopen (202)" \
  test "$(event "$C4" '{"action":"followup","outcome":"unreachable"}') $(event "$C4" '{"action":"reopen","note":"顾客来电"}')" = "202 202"
start_notifier || not_ok "the notifier restarts"
settled4() { [ "$($RC hget "cw:cb:task:$T4" state)" = cancelled ]; }
check "... the notifier takes both: the follow-up is cancelled" wait_until 60 settled4
check "... the case stays reopened, not closed as unreachable" test "$($RC hget "cw:case:$C4" status)" = reopened
check "... and the customer gets no follow-up SMS" sh -c "! grep -F '$N4' '$CW_TMP/sms.log' | grep -q followup_unreachable"

# A regulator's referral: once its follow-up is satisfied, the owner gets a task to report back.
reg=$(curl -s -X POST -H "$DESK" -H 'Content-Type: application/json' "$GW_URL/v1/cases" \
  -d '{"site":"SH01","channel":"regulator","external_ref":"SCJG-2026-1125-07","text":"市场监管局转办：顾客投诉饮料过期","customer":{"phone":"13900009001"}}')
CR=$(jq -r .case_id <<<"$reg")
routed() { [ -n "$($RC hget "cw:case:$CR" owner)" ]; }
check "a regulator's referral is taken and routed" wait_until 60 routed
check "... resolved (202)" test "$(event "$CR" '{"action":"resolve","note":"已退款"}')" = 202
reg_task() { TR=$($RC get "cw:cb:case:$CR"); [ -n "$TR" ]; }
check "... its callback task appears" wait_until 60 reg_task
check "... the customer is satisfied (202)" test "$(event "$CR" '{"action":"followup","outcome":"satisfied"}')" = 202
owner=$($RC hget "cw:case:$CR" owner)
report_task() { [ -n "$($RC zscore "nt:{nt}:inbox:$owner" "$TR:regulator")" ] && [ -n "$($RC hget "cw:cb:task:$TR" reported)" ]; }
check "... and the owner ($owner) gets the task to report back to the regulator" wait_until 60 report_task
check "... which carries the regulator's reference and the outcome (kept for the console)" \
  sh -c "$RC hget 'nt:{nt}:env' '$TR:regulator' | grep -a -q 'SCJG-2026-1125-07' && $RC hget 'nt:{nt}:env' '$TR:regulator' | grep -a -q satisfied"
# A reopened case's task goes; its next resolution brings a new one.
T3=$(jq -r '.tasks[2].task_id' <<<"$q") C3=$(jq -r '.tasks[2].case_id' <<<"$q")
check "a resolved case is reopened (202)" test "$(event "$C3" '{"action":"reopen","note":"顾客来电"}')" = 202
reopened() { [ "$($RC hget "cw:cb:task:$T3" state)" = cancelled ]; }
check "... which cancels its callback task" wait_until 30 reopened
check "... and resolved again (202)" test "$(event "$C3" '{"action":"resolve"}')" = 202
new_task() { local t; t=$($RC get "cw:cb:case:$C3"); [ -n "$t" ] && [ "$t" != "$T3" ] && [ "$($RC hget "cw:cb:task:$t" state)" = open ]; }
check "... which brings a new open task" wait_until 30 new_task
rep=$(report "$DESK")
check "the report counts the three follow-ups that are over, the rest waiting but the reopened one ($(jq -c '[.resolved, .followed_up, .waiting]' <<<"$rep"))" \
  test "$(jq -c '[.resolved, .followed_up, .waiting]' <<<"$rep")" = "[$((N + 1)),3,$((N - 3))]"
check "... and lists the case closed as unreachable" test "$(jq -c .closed_unreachable <<<"$rep")" = "[\"$N2\"]"
check_stops "the notifier" "$NOTIFIER_PID" 15
check "in the end, still exactly one follow-up SMS for $N2" test "$(sms_for followup_unreachable | wc -l)" = 1
