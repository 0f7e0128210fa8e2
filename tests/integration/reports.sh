#!/usr/bin/env bash
# Issue 6/7: what the staff console reads, through a real gateway, router, deadline worker and
# notifier:
#   - GET /v1/me and GET /v1/directory: who a token is, what they see and may do;
#   - roles' actions (403), a regional manager's sites, another site's cases (404);
#   - GET /v1/cases: open cases with their running clocks, filters, order, limits;
#   - the times the gateway records on each action (acked_ms ... closed_ms);
#   - GET /v1/reports/today and the daily, weekly and monthly reports, JSON and CSV, with
#     figures known from what the test did: received, repeats, statuses, clocks met, running and
#     breached, times, the follow-up and satisfaction, per day and per site;
#   - the console's files: /, /console/, security headers, 404, 405.
source "$CW_ROOT/tests/lib/common.sh"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
RC="redis-cli -p $REDIS_PORT"
CHAIN="$CW_TMP/chain.yaml"
sed -e "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" -e 's|^  quiet_hours: .*|  quiet_hours: none|' \
  "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" CASEWIRE_RATE_IP_PER_MIN=0 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 || { not_ok "gateway starts"; exit 1; }
start_router "$CW_TMP/rt" CASEWIRE_CHAIN="$CHAIN" || { not_ok "router starts"; exit 1; }
start_deadline "$CW_TMP/dl" CASEWIRE_CHAIN="$CHAIN" || { not_ok "the deadline worker starts"; exit 1; }
port=$(free_port)
_start_daemon notifier "$CW_TMP/nt" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$CHAIN" ||
  { not_ok "the notifier starts"; exit 1; }
for s in rt/router dl/deadline nt/notifier; do
  wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/$s.log" || not_ok "$s joined its group within 60 s"
done
ok "gateway, router, deadline worker and notifier are up"

# The site's day, read before the cases: the test warns when it ran across midnight.
today=$(TZ=Asia/Shanghai date +%F)
bearer() { echo "Authorization: Bearer demo-$1"; }
DESK=$(bearer desk_agent-SH01) AGENT=$(bearer callcenter_agent-SH01) GUARD=$(bearer security_guard-SH01)
AUDITOR=$(bearer auditor-HQ) REGION=$(bearer regional_manager-HQ) HEAD=$(bearer group_head-HQ)
DESK2=$(bearer desk_agent-SH02) DESK3=$(bearer desk_agent-HZ01)
get() { curl -s --max-time 30 -H "$1" "$GW_URL$2"; }
code() { curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H "$1" "$GW_URL$2"; }
intake() { # token body -> case id
  curl -s --max-time 30 -X POST -H "$1" -H 'Content-Type: application/json' "$GW_URL/v1/cases" -d "$2" | jq -r '.case_id // empty'
}
act() { # token case body -> status code
  curl -s --max-time 30 -o "$CW_TMP/act.json" -w '%{http_code}' -X POST -H "$1" -H 'Content-Type: application/json' \
    "$GW_URL/v1/cases/$2/events" -d "$3"
}

# ---- who is who ----
me=$(get "$DESK" /v1/me)
check "GET /v1/me: the desk agent, her site, every action, her site's follow-up" \
  test "$(jq -c '[.staff_id, .site, [.sites[].id], (.actions | length), .callback_sites]' <<<"$me")" = '["SH01-S001","SH01",["SH01"],8,["SH01"]]'
check "GET /v1/me: a security guard may not close, reopen or make the follow-up" \
  test "$(get "$GUARD" /v1/me | jq -c '.actions | sort')" = '["acknowledge","note","reassign","reply","resolve"]'
check "GET /v1/me: the regional manager sees SH01 and SH02, not HZ01; the group head all three" \
  test "$(get "$REGION" /v1/me | jq -c '[.sites[].id]') $(get "$HEAD" /v1/me | jq -c '[.site, [.sites[].id]]')" = '["SH01","SH02"] [null,["SH01","SH02","HZ01"]]'
check "GET /v1/me: a tenant key is 401, no token 401" \
  test "$(code "$(bearer tenant-T-SH01-0312)" /v1/me) $(code "X-No: 1" /v1/me)" = "401 401"
dir=$(get "$DESK" /v1/directory)
check "GET /v1/directory: SH01's people and tenants, then the head office's departments" \
  test "$(jq -c '[.site, (.staff | map(.id) | index("SH01-S021") != null), (.departments | map(.id) | index("HQ-office") != null), (.tenants | map(.id) | index("T-SH01-0312") != null)]' <<<"$dir")" = '["SH01",true,true,true]'
check "GET /v1/directory: no phone number anywhere in it" test "$(jq '[.. | objects | has("phone")] | any' <<<"$dir")" = false
check "GET /v1/directory: another site's is 404; the group must name the site (400)" \
  test "$(code "$DESK2" '/v1/directory?site=SH01') $(code "$HEAD" /v1/directory) $(code "$HEAD" '/v1/directory?site=HZ01')" = "404 400 200"

# ---- the cases ----
A=$(intake "$DESK" '{"site":"SH01","channel":"service_desk","text":"在3楼悦茶坊买的奶茶里有异物，要求退款","customer":{"name":"张三","phone":"13900001001"},"location":{"floor":"3F","tenant":"T-SH01-0312"}}')
B=$(intake "$DESK" '{"site":"SH01","channel":"phone","text":"来电：停车场出口收费多收了10元，要求退还","customer":{"phone":"13900001002"}}')
C=$(intake "$DESK" '{"site":"SH01","channel":"service_desk","text":"二楼女卫生间很脏，没有纸巾","customer":{"phone":"13900001003"}}')
D=$(intake "$DESK" '{"site":"SH01","channel":"service_desk","text":"又来投诉：悦茶坊的奶茶里又喝出异物","customer":{"name":"张三","phone":"13900001001"},"location":{"tenant":"T-SH01-0312"}}')
E=$(intake "$DESK2" '{"site":"SH02","channel":"service_desk","text":"货架上的鸡蛋过期了","customer":{"phone":"13900001005"}}')
F=$(intake "$DESK3" '{"site":"HZ01","channel":"service_desk","text":"化妆品专柜店员态度很差","customer":{"phone":"13900001006"}}')
check "six cases taken (four at SH01, one at SH02, one at HZ01)" eval '[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] && [ -n "$D" ] && [ -n "$E" ] && [ -n "$F" ]'
routed() { for id in "$@"; do [ -n "$($RC hget "cw:case:$id" routed_ms)" ] || return 1; done; }
check "the router routes them all" wait_until 60 routed "$A" "$B" "$C" "$D" "$E" "$F"
armed() { for id in "$@"; do [ -n "$($RC hget "cw:case:$id" due:handoff)" ] || return 1; done; }
check "the deadline worker marks each case's running hand-off clock in its record" wait_until 60 armed "$A" "$B" "$C" "$D"
check "D, the same phone's second complaint of the same kind, is linked to A" test "$($RC hget "cw:case:$D" repeat_of)" = "$A"

# ---- who may do what ----
check "a security guard's close is 403 forbidden, naming the action" \
  eval '[ "$(act "$GUARD" "$C" "{\"action\":\"close\"}")" = 403 ] && [ "$(jq -r .error.field "$CW_TMP/act.json")" = action ]'
check "the auditor may note (202) but not acknowledge (403)" \
  test "$(act "$AUDITOR" "$C" '{"action":"note","note":"稽查：请尽快处理"}') $(act "$AUDITOR" "$C" '{"action":"acknowledge"}')" = "202 403"
check "the regional manager acts on SH02's case (202), and HZ01's is not there for them (404)" \
  test "$(act "$REGION" "$E" '{"action":"note","note":"区域经理已关注"}') $(act "$REGION" "$F" '{"action":"note","note":"x"}')" = "202 404"
check "reads follow the same rule: SH02's desk and the regional manager get 404 for HZ01's case, the group head 200" \
  test "$(code "$DESK2" "/v1/cases/$A") $(code "$REGION" "/v1/cases/$F") $(code "$HEAD" "/v1/cases/$F")" = "404 404 200"

# A: acknowledged, replied, resolved, followed up satisfied, closed. B: acknowledged,
# resolved, not satisfied (reopened). C untouched. D acknowledged.
check "A: acknowledge, reply, resolve (202 each)" \
  test "$(act "$DESK" "$A" '{"action":"acknowledge"}') $(act "$DESK" "$A" '{"action":"reply","reply":"已联系商户，全额退款"}') $(act "$DESK" "$A" '{"action":"resolve","note":"已退款"}')" = "202 202 202"
check "B: acknowledge, resolve; D: acknowledge (202 each)" \
  test "$(act "$DESK" "$B" '{"action":"acknowledge"}') $(act "$DESK" "$B" '{"action":"resolve","note":"已退还10元"}') $(act "$DESK" "$D" '{"action":"acknowledge"}')" = "202 202 202"
tasked() { for id in "$@"; do [ -n "$($RC get "cw:cb:case:$id")" ] || return 1; done; }
check "the notifier puts A and B in the call centre's queue" wait_until 60 tasked "$A" "$B"
check "the agent: A satisfied, then closed; B not satisfied (202 each)" \
  test "$(act "$AGENT" "$A" '{"action":"followup","outcome":"satisfied"}') $(act "$AGENT" "$A" '{"action":"close"}') $(act "$AGENT" "$B" '{"action":"followup","outcome":"not_satisfied","note":"顾客认为处理太慢"}')" = "202 202 202"
times=$($RC hmget "cw:case:$A" created_ms acked_ms replied_ms resolved_ms followup_ms closed_ms | tr '\n' ' ')
check "A's record holds when it was received, acknowledged, replied, resolved, followed up and closed, in order ($times)" \
  eval 'set -- $times; [ $# = 6 ] && [ $1 -le $2 ] && [ $2 -le $3 ] && [ $3 -le $4 ] && [ $4 -le $5 ] && [ $5 -le $6 ]'
stopped_all() { [ -n "$($RC hget "cw:case:$A" stopped:handoff)" ] && [ -n "$($RC hget "cw:case:$D" stopped:handoff)" ] &&
  [ -n "$($RC hget "cw:case:$B" stopped:handoff)" ] && [ -z "$($RC hget "cw:case:$A" due:resolution)" ] &&
  [ -n "$($RC hget "cw:case:$B" due:reply)" ]; }
check "the deadline worker has moved the clocks: hand-off stopped for A, B, D; B's reply clock running again after not satisfied" \
  wait_until 60 stopped_all
stopped_all || for id in "$A" "$B" "$D"; do echo "# $id: $($RC hgetall "cw:case:$id" | paste -sd' ' | grep -o '[a-z_]*:[a-z_]* [0-9]*' | tr '\n' ' ')"; done
# C's hand-off clock ran out: as the deadline worker marks a breach (its own test fires real
# ones; here the mark is set by hand, with the due time in the past, so the figures are known).
past=$(( $(date +%s%3N) - 60000 ))
$RC hset "cw:case:$C" due:handoff "$past" breached:handoff "$past" level:handoff 0 >/dev/null

# ---- the list ----
list() { get "$DESK" "/v1/cases$1"; }
l=$(list "")
check "GET /v1/cases: SH01's open cases (B, C, D; A is closed)" \
  test "$(jq -c '[.sites, .total, ([.cases[].case_id] | sort)]' <<<"$l")" = "$(jq -nc --arg b "$B" --arg c "$C" --arg d "$D" '[["SH01"], 3, ([$b, $c, $d] | sort)]')"
check "... overdue first: C, with its hand-off clock breached at level 0" \
  test "$(jq -c '.cases[0] | [.case_id, .overdue, .breached, ([.clocks[] | select(.clock == "handoff") | .level][0])]' <<<"$l")" = "[\"$C\",true,[\"handoff\"],0]"
check "... each with its summary, category and owner, and running clocks with due times" \
  test "$(jq '[.cases[] | select(.summary and .category and .owner and (.clocks | length > 0) and (.clocks | all(.due_ms > 0 and (.due | test("\\+08:00$")))))] | length' <<<"$l")" = 3
check "... status=all has A too; status=closed only A" \
  test "$(list '?status=all' | jq .total) $(list '?status=closed' | jq -r '[.cases[].case_id] | join(",")')" = "4 $A"
check "... tenant=T-SH01-0312 and status=all: A and D" \
  test "$(list '?status=all&tenant=T-SH01-0312' | jq -c '[.cases[].case_id] | sort')" = "$(jq -nc --arg a "$A" --arg d "$D" '[$a, $d] | sort')"
owner=$($RC hget "cw:case:$C" owner) cat=$($RC hget "cw:case:$C" category)
check "... owner=$owner and category=$cat filters find C" \
  eval 'list "?owner=$owner" | jq -e --arg c "$C" "[.cases[].case_id] | index(\$c) != null" >/dev/null && list "?category=$cat" | jq -e --arg c "$C" "[.cases[].case_id] | index(\$c) != null" >/dev/null'
check "... overdue=1: only C; limit=1: one case of a total of 3" \
  test "$(list '?overdue=1' | jq -r '[.cases[].case_id] | join(",")') $(list '?limit=1' | jq -c '[(.cases | length), .total]')" = "$C [1,3]"
check "... a bad status, limit 0 or 1001: 400 naming the parameter" \
  test "$(list '?status=lost' | jq -r .error.field) $(list '?limit=0' | jq -r .error.field) $(code "$DESK" '/v1/cases?limit=1001')" = "status limit 400"
check "... another site's list is 404; the group head without a site gets every site's" \
  test "$(code "$DESK2" '/v1/cases?site=SH01') $(get "$HEAD" '/v1/cases?status=all' | jq -c '[.sites, .total]')" = '404 [["SH01","SH02","HZ01"],6]'

# ---- today ----
t=$(get "$DESK" /v1/reports/today)
check "today at SH01: 4 new, 3 open, 1 overdue, 2 resolved and followed up, 1 satisfied of 2 ($(jq -c . <<<"$t"))" \
  test "$(jq -c '[.date, .new, .open, .overdue, .resolved, .followed_up, .satisfied, .not_satisfied, .followup_rate, .satisfaction_rate]' <<<"$t")" = "[\"$today\",4,3,1,2,2,1,1,1,0.5]"
check "today for the regional manager: SH01 and SH02 (5 new)" \
  test "$(get "$REGION" /v1/reports/today | jq -c '[.sites, .new]')" = '[["SH01","SH02"],5]'

# ---- the daily report ----
r=$(get "$DESK" "/v1/reports/daily?date=$today")
check "daily: SH01 received 4 on $today, 1 repeat, all valid" \
  test "$(jq -c '[.report, .from, .to, .days, .sites, .received, .repeats, .valid]' <<<"$r")" = "[\"daily\",\"$today\",\"$today\",1,[\"SH01\"],4,1,4]"
check "daily: by status closed 1, reopened 1, acknowledged 1, and C's" \
  test "$(jq -c '.by_status | [.closed, .reopened, .acknowledged, ((.assigned // 0) + (.received // 0))]' <<<"$r")" = "[1,1,1,1]"
check "daily: by channel service_desk 3, phone 1" test "$(jq -c '[.by_channel.service_desk, .by_channel.phone]' <<<"$r")" = "[3,1]"
want_cat=$(list '?status=all' | jq -c '[.cases[].category] | group_by(.) | map({key: .[0], value: length}) | from_entries')
check "daily: by category as the cases themselves say ($want_cat; report: $(jq -c .by_category <<<"$r"))" test "$(jq -Sc '.by_category' <<<"$r")" = "$(jq -Sc . <<<"$want_cat")"
check "daily: hand-off met 3 (A, B, D), breached 1 (C), none running; met rate 0.75" \
  test "$(jq -c '.clocks.handoff' <<<"$r")" = '{"met":3,"breached":1,"running":0,"overdue":0,"met_rate":0.75}'
check "daily: times measured for 3 hand-offs, 2 replies (A's reply, B's resolution), 2 resolutions, medians under an hour" \
  test "$(jq -c '[.times.handoff.count, .times.reply.count, .times.resolution.count, ([.times[] | .median_s < 3600] | all)]' <<<"$r")" = "[3,2,2,true]"
check "daily: follow-up of the 2 resolved: 2 tasks, 2 followed up (rate 1), 1 satisfied, 1 not (0.5), none missing" \
  test "$(jq -c '.followup | [.resolved, .callback_tasks, .followed_up, .followup_rate, .satisfied, .not_satisfied, .satisfaction_rate, .without_callback_task]' <<<"$r")" = "[2,2,2,1,1,1,0.5,[]]"
check "daily: top causes are rules of the chain, counting the 4 cases at most" \
  eval 'jq -e "(.top_causes | length) > 0 and ([.top_causes[].count] | add) <= 4 and all(.top_causes[]; .rule | length > 0)" <<<"$r" >/dev/null'
check "daily: one site row (4 received, 1 breached), by department present" \
  test "$(jq -c '[.by_site[0].site, .by_site[0].received, .by_site[0].breached, (.by_department | length > 0)]' <<<"$r")" = '["SH01",4,1,true]'

# ---- weekly, monthly, the group, CSV ----
w=$(get "$DESK" "/v1/reports/weekly?date=$today")
monday=$(date -d "$today -$(( ($(date -d "$today" +%u) - 1) )) days" +%F)
check "weekly: Monday $monday to Sunday, 7 days, today's 4 received and 2 resolved in by_day" \
  test "$(jq -c --arg t "$today" '[.from, .days, (.by_day | length), (.by_day[] | select(.date == $t) | [.received, .resolved]), ([.by_day[].received] | add)]' <<<"$w")" = "[\"$monday\",7,7,[4,2],4]"
month=${today:0:7}
ndays=$(date -d "$month-01 +1 month -1 day" +%d)
check "monthly (date=$month): from the 1st, $ndays days, 4 received" \
  test "$(get "$DESK" "/v1/reports/monthly?date=$month" | jq -c '[.from, .days, .received]')" = "[\"$month-01\",$((10#$ndays)),4]"
g=$(get "$HEAD" "/v1/reports/daily?date=$today")
check "the group's daily report: 3 sites, 6 received, a row per site (4, 1, 1), by department kind, no per-department" \
  test "$(jq -c '[.sites, .received, [.by_site[].received], (.by_department_kind | length > 0), has("by_department")]' <<<"$g")" = '[["SH01","SH02","HZ01"],6,[4,1,1],true,false]'
check "the regional manager's: SH01 and SH02 only; HZ01 asked for is 404" \
  test "$(get "$REGION" "/v1/reports/daily?date=$today" | jq -c '.sites') $(code "$REGION" '/v1/reports/daily?site=HZ01')" = '["SH01","SH02"] 404'
curl -s --max-time 30 -D "$CW_TMP/csv.h" -o "$CW_TMP/r.csv" -H "$DESK" "$GW_URL/v1/reports/daily?date=$today&format=csv"
check "CSV: text/csv, an attachment, the header line, then the figures" \
  eval 'grep -qi "^content-type: text/csv" "$CW_TMP/csv.h" && grep -qi "^content-disposition: attachment" "$CW_TMP/csv.h" && [ "$(head -1 "$CW_TMP/r.csv")" = $'"'"'section,item,measure,value\r'"'"' ]'
check "CSV: received 4, hand-off met 3, the follow-up rate, today's row" \
  eval 'grep -q "^report,received,value,4" "$CW_TMP/r.csv" && grep -q "^clocks,handoff,met,3" "$CW_TMP/r.csv" && grep -q "^followup,followup,followup_rate,1.0000" "$CW_TMP/r.csv" && grep -q "^by_day,$today,received,4" "$CW_TMP/r.csv"'
check "bad dates and formats: 400 naming them; today has no CSV" \
  test "$(get "$DESK" '/v1/reports/daily?date=2026-13-01' | jq -r .error.field) $(get "$DESK" '/v1/reports/weekly?format=xml' | jq -r .error.field) $(code "$DESK" '/v1/reports/today?format=csv')" = "date format 400"
check "reports need a staff token: 401 without, 401 with a tenant key" \
  test "$(code "X-No: 1" /v1/reports/daily) $(code "$(bearer tenant-T-SH01-0312)" /v1/reports/monthly)" = "401 401"

# ---- reassigning (after the figures above) ----
old_owner=$($RC hget "cw:case:$D" owner)
check "D reassigned to the cleaning department (202)" test "$(act "$DESK" "$D" '{"action":"reassign","to_department":"SH01-clean","note":"转保洁部"}')" = 202
cleaners=$(jq -r '[.staff[] | select(.department == "SH01-clean") | .id] | join(",")' <<<"$dir")
reassigned() { [ "$($RC hget "cw:case:$D" department)" = SH01-clean ]; }
check "... its department is SH01-clean and its owner one of the cleaners ($cleaners), picked by the gateway" \
  eval 'wait_until 30 reassigned && [[ ",$cleaners," == *",$($RC hget "cw:case:$D" owner),"* ]]'
new_owner=$($RC hget "cw:case:$D" owner)
check "... the open load moved from $old_owner to $new_owner" \
  eval '[ "$($RC zscore "cw:idx:owner:$new_owner" "$D")" != "" ] && [ -z "$($RC zscore "cw:idx:owner:$old_owner" "$D")" ]'
check "... and the case event names the person, so the deadline worker's hand-off goes to them" \
  test "$(get "$DESK" "/v1/cases/$D" | jq -r '[.history[] | select(.event == "reassign")][0] | "\(.to_staff) \(.to_department)"')" = "$new_owner SH01-clean"
check "D reassigned to an engineer (202): the department follows the person" \
  eval '[ "$(act "$DESK" "$D" "{\"action\":\"reassign\",\"to_staff\":\"SH01-S017\"}")" = 202 ] && wait_until 30 eval "[ \"\$($RC hget cw:case:$D department) \$($RC hget cw:case:$D owner)\" = \"SH01-eng SH01-S017\" ]"'

# ---- the console's files ----
check "GET / and GET /console redirect to /console/" \
  test "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$GW_URL/") $(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/console")" = "302 $GW_URL/console/ 302"
curl -s -D "$CW_TMP/console.h" -o "$CW_TMP/index.html" "$GW_URL/console/"
check "GET /console/: the page, as HTML, under a content security policy of its own origin" \
  eval 'grep -qi "^content-type: text/html" "$CW_TMP/console.h" && grep -qi "^content-security-policy: default-src .self." "$CW_TMP/console.h" && grep -qi "<html" "$CW_TMP/index.html"'
check "a file that is not there is 404; POST is 405" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/console/nope.js") $(curl -s -o /dev/null -w '%{http_code}' -X POST "$GW_URL/console/")" = "404 405"

[ "$(TZ=Asia/Shanghai date +%F)" = "$today" ] || echo "# warning: the test ran across midnight in Shanghai; the day's figures may be split"
check_stops "the gateway" "$GW_PID" 15
