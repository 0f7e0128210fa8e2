#!/usr/bin/env bash
# The router against a real gateway, devbroker and Redis, with the example chain:
#   1. an emergency recorded at the desk is routed: CaseRouted on casewire.cases.v1 (what it
#      is, the rules that decided, department, owner on duty, clocks), the receipt SMS and the
#      owner's notice on casewire.notify.v1, the case record and indexes in Redis;
#   2. staff GET /v1/cases/{id}: the whole record for the site's staff and the group's, 404
#      for another site's staff, 401 for a tenant key or a bad token;
#   3. staff actions show in the record's history and move the indexes and the owner's load;
#   4. a repeat complaint (same phone, site and category within 24 h) is linked and flagged;
#      another matter from the same phone is not;
#   5. six records the router cannot route go to casewire.intake-dlq.v1 whole, with their
#      reasons, and routing goes on.
source "$CW_ROOT/tests/lib/common.sh"
tail_bin="$CW_BUILD/bin/casewire-tail"
R="$CW_TMP/r"
mkdir -p "$R"

start_routing_stack
ok "router starts and is ready"

DESK='demo-desk_agent-SH01' DESK2='demo-desk_agent-SH02' HQ='demo-group_head-HQ'
# post NAME BODY [TOKEN]: POST /v1/cases; status in $st, body in $R/NAME.body
post() {
  local auth=()
  [ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $3")
  st=$(curl -sS -m 20 -o "$R/$1.body" -w '%{http_code}' -X POST "$GW_URL/v1/cases" \
    -H 'Content-Type: application/json' "${auth[@]}" --data-binary "$2") || st=000
}
# get NAME ID TOKEN: GET /v1/cases/ID as staff
get() {
  st=$(curl -sS -m 20 -o "$R/$1.body" -w '%{http_code}' -H "Authorization: Bearer $3" \
    "$GW_URL/v1/cases/$2") || st=000
}
act() {
  st=$(curl -sS -m 20 -o "$R/act.body" -w '%{http_code}' -X POST "$GW_URL/v1/cases/$1/events" \
    -H "Authorization: Bearer $DESK" -H 'Content-Type: application/json' --data-binary "$2") || st=000
}
field() { jq -r "$2 // empty" "$R/$1.body" 2>/dev/null; }
jqb() { jq -e "$2" "$R/$1.body" >/dev/null 2>&1; }
routed() { [ "$($RC hget "cw:case:$1" status)" != "" ] && [ -n "$($RC hget "cw:case:$1" owner)" ]; }
published() { [ "$($RC hget "cw:routed:$1" published)" = 1 ]; }
# kafka NAME TOPICS [ARGS]: every record so far on TOPICS, one JSON line each, into $R/NAME.json
kafka() {
  local name=$1 topics=$2; shift 2
  timeout 60 "$tail_bin" --bootstrap-file "$CW_TMP/broker/bootstrap" --topic "$topics" \
    --from-beginning --until-end --unmasked "$@" >"$R/$name.json" 2>"$R/$name.err"
}
jqk() { jq -e -s "$2" "$R/$1.json" >/dev/null 2>&1; }
jqv() { jq -e "$@" >/dev/null 2>&1; } # jqv [ARGS] FILTER <<<JSON
has() { [[ "$1" == *"$2"* ]]; }

# ---- 1. an emergency from the desk ----
post emerg '{"site":"SH01","channel":"service_desk","text":"顾客在二楼扶梯旁晕倒了，请马上派人过来",
  "customer":{"name":"王小明","phone":"13800138001"},"location":{"floor":"2F","detail":"扶梯旁"}}' "$DESK"
check "the desk records an emergency (202)" test "$st" = 202
E=$(field emerg .case_id) ENO=$(field emerg .case_no)
if wait_until 60 published "$E"; then ok "the router routes it and its events are delivered"; else
  not_ok "the router routes the case within 60 s"; tail -20 "$CW_TMP/rt/router.log"; exit 1; fi

kafka e1 casewire.intake.v1,casewire.cases.v1,casewire.notify.v1 --key "$E"
check "Kafka holds the submission, one CaseRouted and two tasks for the case" \
  jqk e1 '(map(select(.event.case_submitted)) | length) == 1 and (map(select(.event.case_routed)) | length) == 1 and (map(select(.event.notification_task)) | length) == 2'
sub=$(jq -c -s 'map(select(.event.case_submitted))[0].event.meta' "$R/e1.json")
rt_json() { jq -c -s 'map(select(.event.case_routed))[0].event' "$R/e1.json"; }
routed_ev=$(rt_json)
check "CaseRouted: emergency, safety, complaint, security department, first-ask owner kept" \
  jqv '.case_routed | .urgency == "emergency" and .category == "safety" and .type == "complaint" and .department_id == "SH01-sec" and .first_ask_staff_id == "SH01-S001" and .case_no == "'"$ENO"'" and .channel == "service_desk"' <<<"$routed_ev"
check "CaseRouted names its cause (the submission) and is keyed by the case" \
  jqv --argjson s "$sub" '.meta.causation_id == $s.event_id and .meta.case_id == "'"$E"'" and .meta.producer == "router"' <<<"$routed_ev"
decided=$(jq -r '.case_routed.matched_rules[] | select(.field == "urgency" or .field == "category") | select((.matched | length) > 0) | .rule_id' <<<"$routed_ev" | sort -u)
check "the rules that decided urgency and category are recorded with what matched, and are rules of the chain ($(echo $decided))" \
  sh -c "[ -n '$decided' ] && for r in $decided; do grep -q \"^  - id: \$r\$\" '$CW_ROOT/deploy/chain.example.yaml' || exit 1; done"
owner=$(jq -r .case_routed.owner_staff_id <<<"$routed_ev")
dept_of() { awk -v id="$1" '$0 ~ "- id: "id"$" {f=1} f && /department:/ {print $2; exit}' "$CW_ROOT/deploy/chain.example.yaml"; }
check "the owner ($owner) is a security guard of SH01" test "$(dept_of "$owner")" = SH01-sec
check "clocks: hand-off, reply, resolution due from the submission time, follow-up waiting (no due time)" \
  jqv --argjson s "$sub" '[.case_routed.clocks[] | select(.kind != "followup") | .due_ms - .duration_ms == $s.occurred_ms] | length >= 3 and all(.[]; .) ' <<<"$routed_ev"
check "the follow-up clock is planned without a due time" \
  jqv '[.case_routed.clocks[] | select(.kind == "followup")] | length == 1 and (.[0].due_ms // 0) == 0 and .[0].duration_ms > 0' <<<"$routed_ev"
check "receipt SMS to the customer: task id, template, number, case number, reply-by time" \
  jqk e1 'map(select(.event.notification_task.task_id == "'"$E"':receipt"))[0].event.notification_task | .kind == "sms" and .template_id == "case_received" and .recipient.phone == "+8613800138001" and .params.case_no == "'"$ENO"'" and (.params.reply_by | test("^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$"))'
check "assignment notice to the owner, marked emergency" \
  jqk e1 'map(select(.event.notification_task.task_id == "'"$E:assigned:$owner"'"))[0].event.notification_task | .recipient_staff_id == "'"$owner"'" and .template_id == "staff_assigned" and .emergency == true and (.params.due | length) > 0'
check "Redis: the record is permanent, assigned to the owner, in the site's and the owner's index" \
  sh -c "[ \"\$($RC ttl cw:case:$E)\" = -1 ] && [ \"\$($RC hget cw:case:$E status)\" = assigned ] && [ \"\$($RC hget cw:case:$E owner)\" = $owner ] && [ -n \"\$($RC zscore cw:idx:site:SH01:assigned $E)\" ] && [ -n \"\$($RC zscore cw:idx:owner:$owner $E)\" ] && [ -z \"\$($RC zscore cw:idx:site:SH01:received $E)\" ]"
check "the owner's open load counts the case" test "$($RC hget cw:load:SH01 "$owner")" -ge 1

# ---- 2. reading the case ----
get g1 "$E" "$DESK"
check "SH01 staff read the whole record (200)" test "$st" = 200
check "the record: every field, the customer in clear, classification with rules, clocks with due times, history" \
  jqb g1 '.case_id == "'"$E"'" and .case_no == "'"$ENO"'" and .status == "assigned" and .owner == "'"$owner"'" and .department == "SH01-sec" and .first_ask == "SH01-S001" and .customer.phone == "+8613800138001" and .customer.name == "王小明" and .location.floor == "2F" and .classification.urgency.value == "emergency" and (.classification.urgency.rule | length) > 0 and ([.clocks[] | select(.due)] | length) >= 3 and (.received_at | test("\\+08:00$")) and (.reply_by | length) > 0 and ([.history[].event] == ["submitted", "routed"])'
get g2 "$ENO" "$DESK"
check "by case number too" sh -c "[ $st = 200 ] && jq -e '.case_id == \"$E\"' '$R/g2.body' >/dev/null"
get g3 "$E" "$HQ"
check "the group head office reads any site's case" test "$st" = 200
get g4 "$E" "$DESK2"
check "another site's staff get 404, as for a case that does not exist" \
  sh -c "[ $st = 404 ] && jq -e '.error.code == \"not_found\"' '$R/g4.body' >/dev/null"
get g5 01JDNOSUCHCASE000000000000 "$DESK"
check "an unknown case id: 404" test "$st" = 404
get g6 "$E" "demo-tenant-T-SH01-0312"
g6=$st
get g6b "$E" "not-a-real-token"
check "a tenant key ($g6) or an unknown token ($st) on the staff read: 401" test "$g6$st" = 401401
st=$(curl -sS -o /dev/null -w '%{http_code}' "$GW_URL/v1/cases/$ENO?phone_last4=8001")
check "the customer's status check by number and phone digits still works" test "$st" = 200

# ---- 3. actions ----
act "$E" '{"action":"acknowledge"}'; a1=$st
act "$E" '{"action":"note","note":"保安已到场，顾客已苏醒"}'; a2=$st
act "$E" '{"action":"reassign","to_staff":"SH01-S013"}'; a3=$st
check "acknowledge, note and reassign are accepted ($a1 $a2 $a3)" test "$a1$a2$a3" = 202202202
get g7 "$E" "$DESK"
check "the history shows each action with who, when and what, in order" \
  jqb g7 '[.history[].event] == ["submitted", "routed", "acknowledge", "note", "reassign"] and .history[3].note == "保安已到场，顾客已苏醒" and .history[2].actor == "SH01-S001" and .history[4].to_staff == "SH01-S013" and all(.history[]; (.at | test("\\+08:00$")) and .at_ms > 0)'
check "acknowledged moves the case between the site's status indexes" \
  sh -c "[ -n \"\$($RC zscore cw:idx:site:SH01:acknowledged $E)\" ] && [ -z \"\$($RC zscore cw:idx:site:SH01:assigned $E)\" ]"
check "reassign moves ownership, the owners' indexes and loads" \
  sh -c "[ \"\$($RC hget cw:case:$E owner)\" = SH01-S013 ] && [ -n \"\$($RC zscore cw:idx:owner:SH01-S013 $E)\" ] && [ -z \"\$($RC zscore cw:idx:owner:$owner $E)\" ] && [ \"\$($RC hget cw:load:SH01 SH01-S013)\" -ge 1 ]"

# ---- 4. repeat complaints ----
post rep1 '{"site":"SH02","channel":"web","text":"收银台多收了我15元，小票上写得很清楚","customer":{"phone":"13900000042"}}'
R1=$(field rep1 .case_id)
wait_until 60 published "$R1" || not_ok "the first price complaint is routed"
post rep2 '{"site":"SH02","channel":"app","text":"又是价格问题：标价和结账的价格不一样，第二次了","customer":{"phone":"13900000042"}}'
R2=$(field rep2 .case_id)
post rep3 '{"site":"SH02","channel":"web","text":"停车场的车位太窄了，刮蹭了我的车","customer":{"phone":"13900000042"}}'
R3=$(field rep3 .case_id)
if wait_until 60 published "$R2" && wait_until 60 published "$R3"; then
  kafka rep casewire.cases.v1 --key "$R2"
  check "the second price complaint from the same phone at the same site is linked to the first" \
    jqk rep 'map(select(.event.case_routed))[0].event.case_routed | .repeat_of_case_id == "'"$R1"'" and .category == "price_dispute"'
  check "the record shows the link" test "$($RC hget "cw:case:$R2" repeat_of)" = "$R1"
  check "a parking complaint from that phone is another matter: not linked" test -z "$($RC hget "cw:case:$R3" repeat_of)"
  check "the first one is not a repeat of anything" test -z "$($RC hget "cw:case:$R1" repeat_of)"
else
  not_ok "the repeat complaints are routed"
fi
check "the router counts repeats" sh -c "curl -fsS $ROUTER_ADMIN/metrics | grep -Eq '^casewire_router_repeat_complaints_total 1\$'"

# ---- 5. what cannot be routed ----
if KAFKA_BROKERS="$KAFKA_BROKERS" "$CW_BUILD/itests/tail_produce" bad-intake >"$R/bad.out" 2>&1; then
  ok "six bad records are written to casewire.intake.v1"
else
  not_ok "six bad records are written to casewire.intake.v1" "$(cat "$R/bad.out")"
fi
dlq_count() {
  kafka dlq casewire.intake-dlq.v1 && [ "$(jq -s length "$R/dlq.json")" -ge 6 ]
}
if wait_until 60 dlq_count; then ok "six records reach casewire.intake-dlq.v1"; else
  not_ok "six records reach casewire.intake-dlq.v1 ($(jq -s length "$R/dlq.json" 2>/dev/null) so far)"; fi
reason() { jq -r -s 'map(select(.key == "01JDBAD000000000000000000'"$1"'"))[0].event.rejected.reason // empty' "$R/dlq.json"; }
check "garbage: refused as malformed ($(reason 1))" has "$(reason 1)" malformed
check "a CaseRouted on the intake topic: refused as not a CaseSubmitted" has "$(reason 2)" 'not a CaseSubmitted'
check "an unknown site is named ($(reason 3))" has "$(reason 3)" 'unknown site "ZZ99"'
check "no case number ($(reason 4))" has "$(reason 4)" 'no case_no'
check "text that is not UTF-8 ($(reason 5))" has "$(reason 5)" UTF-8
check "a tombstone ($(reason 6))" has "$(reason 6)" tombstone
check "each keeps where it was read and its original key and bytes (base64)" \
  jqk dlq 'map(select(.key == "01JDBAD0000000000000000001"))[0] | .event.rejected.source_topic == "casewire.intake.v1" and .event.rejected.original_value == "Cv////8P" and .event.rejected.original_key == "MDFKREJBRDAwMDAwMDAwMDAwMDAwMDAwMDE=" and .event.meta.case_id == "01JDBAD0000000000000000001"'
check "a rejected record's case id is the one it names, or its key" \
  jqk dlq 'length == 6 and all(.[]; .event.meta.case_id == .key)'
check "the router counts them" sh -c "curl -fsS $ROUTER_ADMIN/metrics | grep -Eq '^casewire_router_rejected_total 6\$'"
post after '{"site":"HZ01","channel":"web","text":"洗手间很脏，没有纸","customer":{"phone":"13700000001"}}'
check "routing goes on after them" wait_until 60 published "$(field after .case_id)"

check_stops "router" "$ROUTER_PID" 10
check "the router left no job behind" sh -c "! grep -q 'router.jobs_left' '$CW_TMP/rt/router.log'"
