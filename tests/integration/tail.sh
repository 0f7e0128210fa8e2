#!/usr/bin/env bash
# casewire-tail against a real devbroker: one envelope of every body kind, written by
# tail_produce with known values (Chinese text, phones, a map, bytes), must come out decoded
# exactly; personal data masked by default and clear with --unmasked; --key, --count,
# --until-end, --topic, --bootstrap-file, --timeout and follow mode behave as documented;
# records that do not decode are printed as errors, never skipped; usage errors exit 2.
source "$CW_ROOT/tests/lib/common.sh"
tail_bin="$CW_BUILD/bin/casewire-tail"
produce="$CW_BUILD/itests/tail_produce"
# The values below are the ones tail_produce.c writes; change both together.
A=01JDCASEAAAAAAAAAAAAAAAAAA B=01JDCASEBBBBBBBBBBBBBBBBBB C=01JDCASECCCCCCCCCCCCCCCCCC

# run NAME ARGS...: casewire-tail ARGS, stdout to NAME.out, stderr to NAME.err, status in $rc,
# elapsed milliseconds in $ms. The outer timeout is only a watchdog against a hang.
run() {
  local name=$1 start; shift
  start=$(date +%s%N)
  timeout 60 "$tail_bin" "$@" >"$CW_TMP/$name.out" 2>"$CW_TMP/$name.err"
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
}
out() { echo "$CW_TMP/$1.out"; }
lines() { wc -l <"$(out "$1")"; }
# jq_true NAME FILTER: FILTER, applied to NAME's output lines as one array, gives true.
jq_true() { jq -e -s "$2" "$(out "$1")" >/dev/null 2>&1; }
# jq_equal NAME FILTER EXPECTED_JSON: FILTER's result equals EXPECTED (key order aside).
jq_equal() {
  local got
  got=$(jq -c -s "$2" "$(out "$1")" 2>/dev/null) || return 1
  jq -e -n --argjson got "$got" --argjson want "$3" '$got == $want' >/dev/null 2>&1 ||
    { echo "# got:  $got"; echo "# want: $(jq -c -n --argjson w "$3" '$w')"; return 1; }
}
errmatch() { grep -q -- "$2" "$CW_TMP/$1.err"; }

# ---- usage: exit 2, a message on stderr, nothing on stdout ----
run help --help
check "--help exits 0 and says --unmasked is for tests and authorised debugging" \
  sh -c "[ $rc -eq 0 ] && grep -q -- '--unmasked' '$(out help)' && grep -q 'authorised debugging' '$(out help)'"
usage_case() {
  local what=$1 pattern=$2; shift 2
  run usage "$@"
  check "usage error exits 2 with a message: $what (exit $rc)" \
    sh -c "[ $rc -eq 2 ] && [ ! -s '$(out usage)' ] && grep -q -- '$pattern' '$CW_TMP/usage.err'"
}
usage_case "--count 0" "--count" --count 0
usage_case "--timeout abc" "--timeout" --timeout abc
usage_case "unknown option" "unknown option" --follow
usage_case "empty topic in a list" "empty topic" --topic casewire.cases.v1,,x
usage_case "both --kafka-brokers and --bootstrap-file" "not both" --kafka-brokers x:1 --bootstrap-file /nonexistent
usage_case "a stray argument" "unexpected argument" casewire.cases.v1
KAFKA_BROKERS= run nokafka --until-end
check "no brokers anywhere (KAFKA_BROKERS unset) is a usage error (exit $rc)" \
  sh -c "[ $rc -eq 2 ] && grep -q KAFKA_BROKERS '$CW_TMP/nokafka.err'"

# ---- Kafka unreachable: exit 1 within the --timeout ----
dead=$(free_port)
run dead --kafka-brokers "127.0.0.1:$dead" --timeout 2
check "unreachable Kafka: exit 1 after --timeout 2 (exit $rc, ${ms} ms)" \
  sh -c "[ $rc -eq 1 ] && [ $ms -lt 10000 ] && [ ! -s '$(out dead)' ] && grep -q 'in time' '$CW_TMP/dead.err'"

start_devbroker "$CW_TMP/broker" --brokers 2 --partitions 6 || { not_ok "devbroker starts"; exit 1; }

run unknown --topic casewire.no-such-topic.v1 --until-end --timeout 20
check "an unknown topic: exit 1, named on stderr (exit $rc)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'casewire.no-such-topic.v1 does not exist' '$CW_TMP/unknown.err'"
run unknown2 --topic casewire.no-such-topic.v1 --until-end --timeout 20
check "asking for an unknown topic did not create it (still unknown on a second run)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'does not exist' '$CW_TMP/unknown2.err'"

run empty --from-beginning --until-end --timeout 20
check "--until-end on empty topics: exit 0 with no output (exit $rc, ${ms} ms)" \
  sh -c "[ $rc -eq 0 ] && [ ! -s '$(out empty)' ]"

"$produce" fixtures >"$CW_TMP/produce.log" 2>&1
check "10 fixture records produced and acknowledged" test $? -eq 0

# ---- the whole content, in clear ----
run all --from-beginning --until-end --unmasked --timeout 30
check "--from-beginning --until-end exits 0 after the 10 records (exit $rc, ${ms} ms)" test "$rc" -eq 0
check "stdout is exactly 10 lines, each one JSON object" \
  sh -c "[ $(lines all) -eq 10 ] && jq -e -s 'length == 10 and all(.[]; type == \"object\")' '$(out all)' >/dev/null"
check "every record carries topic, partition, offset, key and timestamp_ms" \
  jq_true all 'all(.[]; (.topic|type) == "string" and (.partition|type) == "number" and (.offset|type) == "number" and (.key|type) == "string" and .timestamp_ms > 1000000000000)'
check "the key is the case id on every decoded record" \
  jq_true all 'map(select(.error | not)) | length == 7 and all(.[]; .key == .event.meta.case_id)'
check "records sit on the topics they were written to" \
  jq_equal all 'map(select(.error | not) | [.topic, (.event | del(.meta) | keys[0])]) | sort' \
  '[["casewire.cases.v1","case_event"],["casewire.cases.v1","case_routed"],["casewire.cases.v1","deadline_fired"],["casewire.intake.v1","case_submitted"],["casewire.notify-dlq.v1","notification_task"],["casewire.notify-results.v1","notification_result"],["casewire.notify.v1","notification_task"]]'

check "CaseSubmitted: every field exactly (Chinese text, person, nested messages, enums, int64; defaults left out)" \
  jq_equal all 'map(select(.event.case_submitted))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000001","case_id":"$A","site_id":"SH01","occurred_ms":1795513667001,
 "schema_version":1,"producer":"gateway","request_id":"req-1"},
 "case_submitted":{"case_no":"SH01-261124-0042","channel":"web","text":"鞋底开胶，店铺拒绝退货，请回电 13912345678",
 "customer":{"name":"张三丰","phone":"13800138000"},
 "location":{"floor":"3F","unit":"3F-12","tenant_id":"T-ANTA","brand":"安踏","detail":"近东侧电梯"},
 "purchase":{"date":"2026-11-20","amount_cents":129900,"currency":"CNY","receipt_no":"R-20261120-0007","under_warranty":true},
 "customer_request":"退货退款","type_hint":"complaint","category_hint":"product_quality","idempotency_key":"idem-42",
 "language":"zh","reply_by_ms":1795600000123}}
EOF
)"
check "int64 fields are JSON integers in the text (not strings, not exponents)" \
  grep -q '"reply_by_ms":1795600000123[,}]' "$(out all)"
check "CaseRouted: repeated messages (clocks, matched rules), enums, causation" \
  jq_equal all 'map(select(.event.case_routed))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000002","case_id":"$A","site_id":"SH01","occurred_ms":1795513667001,
 "schema_version":1,"producer":"router","causation_id":"01JDEVENT00000000000000001"},
 "case_routed":{"case_no":"SH01-261124-0042","type":"complaint","category":"returns","urgency":"emergency",
 "validity":"valid","department_id":"D-CS","owner_staff_id":"S-0042","first_ask_staff_id":"S-0001",
 "clocks":[{"kind":"handoff","due_ms":1795514267001,"duration_ms":600000,"policy_id":"P-STD"},
           {"kind":"resolution","due_ms":1795686467001,"duration_ms":172800000,"working_time":true,"policy_id":"P-STD"}],
 "matched_rules":[{"rule_id":"R-7","field":"urgency","value":"emergency","matched":"受伤"}],
 "ladder_level":2,"channel":"web"}}
EOF
)"
check "CaseEvent: enum whose values do not share the enum's name (FOLLOWUP_OUTCOME_), 4-byte UTF-8" \
  jq_equal all 'map(select(.event.case_event))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000003","case_id":"$A","site_id":"SH01","tenant_id":"T-ANTA",
 "occurred_ms":1795513667001,"schema_version":1,"producer":"gateway"},
 "case_event":{"action":"followup","actor_id":"S-0042","actor_kind":"staff","note":"回访：顾客不满意，留言 021-5555-0123",
 "outcome":"not_satisfied","reply":"已致歉 👍"}}
EOF
)"
check "DeadlineFired: bool, uint32, repeated strings" \
  jq_equal all 'map(select(.event.deadline_fired))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000004","case_id":"$B","site_id":"SH01","occurred_ms":1795513667001,
 "schema_version":1,"producer":"deadline"},
 "deadline_fired":{"clock":"resolution","due_ms":1795600000000,"fired_ms":1795600000500,"warning":true,
 "warning_percent":80,"ladder_level":1,"notified_staff_ids":["S-0042","S-0100"],"timer_id":"tm-9"}}
EOF
)"
body64=$(printf '\x00\xff\x7b\x7d\xe4' | base64)
check "NotificationTask: the params map as an object, bytes as base64 ($body64), recipient in clear" \
  jq_equal all 'map(select(.topic == "casewire.notify.v1"))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000005","case_id":"$A","site_id":"SH01","occurred_ms":1795513667001,
 "schema_version":1,"producer":"router"},
 "notification_task":{"kind":"sms","task_id":"task-1","recipient":{"name":"李四","phone":"+86 139 1234 5678"},
 "template_id":"case_received","language":"zh","params":{"case_no":"SH01-261124-0042","reply_by":"明天 18:00"},
 "due_ms":1795513668000,"priority":7,"emergency":true,"webhook_body":"$body64"}}
EOF
)"
check "NotificationResult: every field exactly" \
  jq_equal all 'map(select(.event.notification_result))[0].event' "$(cat <<EOF
{"meta":{"event_id":"01JDEVENT00000000000000006","case_id":"$B","site_id":"SH01","occurred_ms":1795513667001,
 "schema_version":1,"producer":"notifier"},
 "notification_result":{"task_id":"task-9","kind":"webhook","status":"failed","attempt":3,
 "provider":"tenant-webhook","error":"HTTP 503 from tenant"}}
EOF
)"
dlq64=$(printf '%s' '{"case_no":"SH01-261124-0042"}' | base64 -w0)
check "dead letter: the webhook body decodes back to the JSON that was sent" \
  jq_true all "map(select(.topic == \"casewire.notify-dlq.v1\"))[0].event.notification_task | .webhook_body == \"$dlq64\" and .kind == \"webhook\" and .priority == 1"

# ---- records that do not decode: printed with the reason, never skipped ----
check "malformed protobuf: an error line with the value's length and no event" \
  jq_true all "map(select(.key == \"$C\" and .value_length == 6))[0] | .topic == \"casewire.cases.v1\" and .error == \"not a casewire.v1.Envelope (malformed protobuf)\" and (has(\"event\") | not)"
check "an envelope of a newer body kind: error, its meta and the unknown field (number, type, length only)" \
  jq_equal all "map(select(.key == \"$C\" and (.error // \"\" | test(\"has no body\"))))[0] | [.topic, .event.meta.site_id, .event.meta.producer, .event._unknown_fields]" \
  '["casewire.cases.v1","SH02","future",[{"number":99,"wire_type":"length-delimited","length":5}]]'
check "a record without a value: an error line (tombstone), length 0" \
  jq_true all "map(select(.key == \"$C\" and .topic == \"casewire.intake.v1\"))[0] | .error == \"no value (a tombstone)\" and .value_length == 0"

# ---- masked by default ----
run masked --from-beginning --until-end --timeout 30
check "masked run exits 0 with the same 10 records (exit $rc)" sh -c "[ $rc -eq 0 ] && [ $(lines masked) -eq 10 ]"
check "customer name and phone masked (张**, *******8000)" \
  jq_equal masked 'map(select(.event.case_submitted))[0].event.case_submitted.customer' '{"name":"张**","phone":"*******8000"}'
check "notification recipient masked (李*, *********5678)" \
  jq_equal masked 'map(select(.topic == "casewire.notify.v1"))[0].event.notification_task.recipient' '{"name":"李*","phone":"*********5678"}'
check "phone numbers inside free text scrubbed (mobile and landline)" \
  jq_true masked '(map(select(.event.case_submitted))[0].event.case_submitted.text == "鞋底开胶，店铺拒绝退货，请回电 *******5678") and (map(select(.event.case_event))[0].event.case_event.note == "回访：顾客不满意，留言 ***-****-0123")'
check "no name or phone in clear anywhere in the masked output" \
  sh -c "! grep -q -e 张三丰 -e 李四 -e 13800138000 -e 13912345678 -e '139 1234 5678' -e 5555-0123 '$(out masked)'"
personal='del(.event.case_submitted.customer, .event.case_submitted.text, .event.case_event.note, .event.notification_task.recipient)'
jq -c -s "sort_by(.topic, .partition, .offset) | map($personal)" "$(out masked)" >"$CW_TMP/masked.rest" 2>/dev/null
jq -c -s "sort_by(.topic, .partition, .offset) | map($personal)" "$(out all)" >"$CW_TMP/all.rest" 2>/dev/null
check "masking changes nothing else (ids, case numbers, times, params identical)" \
  sh -c "[ -s '$CW_TMP/all.rest' ] && cmp -s '$CW_TMP/masked.rest' '$CW_TMP/all.rest'"

# ---- selection ----
run keyb --key "$B" --from-beginning --until-end --timeout 30
check "--key: exactly case B's 3 records, exit 0 (exit $rc)" \
  sh -c "[ $rc -eq 0 ] && [ $(lines keyb) -eq 3 ] && jq -e -s 'all(.[]; .key == \"$B\")' '$(out keyb)' >/dev/null"
check "--key: case B's bodies are the deadline, the result and the dead letter" \
  jq_equal keyb 'map(.event | del(.meta) | keys[0]) | sort' '["deadline_fired","notification_result","notification_task"]'
run count3 --from-beginning --count 3 --timeout 30
check "--count 3: exit 0 after exactly 3 records (exit $rc, ${ms} ms)" sh -c "[ $rc -eq 0 ] && [ $(lines count3) -eq 3 ]"
run topics --topic casewire.intake.v1,casewire.notify.v1 --topic casewire.intake.v1 --from-beginning --until-end --timeout 30
check "--topic list and repeat: only those topics' 3 records (exit $rc)" \
  sh -c "[ $rc -eq 0 ] && [ $(lines topics) -eq 3 ] && jq -e -s 'map(.topic) | unique == [\"casewire.intake.v1\",\"casewire.notify.v1\"]' '$(out topics)' >/dev/null"
run newonly --until-end --timeout 30
check "--until-end without --from-beginning: nothing old, exit 0 at once (exit $rc, ${ms} ms)" \
  sh -c "[ $rc -eq 0 ] && [ ! -s '$(out newonly)' ] && [ $ms -lt 10000 ]"
KAFKA_BROKERS= run bootfile --bootstrap-file "$CW_TMP/broker/bootstrap" --from-beginning --until-end --timeout 30
check "--bootstrap-file (KAFKA_BROKERS empty): the same 10 records (exit $rc)" \
  sh -c "[ $rc -eq 0 ] && [ $(lines bootfile) -eq 10 ]"
run nofile --bootstrap-file "$CW_TMP/no-such-bootstrap" --until-end
check "a missing bootstrap file: exit 1, named on stderr (exit $rc)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'no-such-bootstrap' '$CW_TMP/nofile.err'"

# ---- follow mode: only records written after start ----
"$tail_bin" --topic casewire.cases.v1 --count 1 --timeout 60 >"$CW_TMP/follow.out" 2>"$CW_TMP/follow.err" &
fpid=$!; track_pid "$fpid"
check "follower reports it is reading" wait_until 20 grep -q "reading 6 partitions of 1 topic from their end" "$CW_TMP/follow.err"
D=01JDCASEDDDDDDDDDDDDDDDDDD
"$produce" note "$D" "跟进 follow me" >>"$CW_TMP/produce.log" 2>&1
check "a note for case D produced" test $? -eq 0
gone() { ! kill -0 "$1" 2>/dev/null; }
if wait_until 30 gone "$fpid"; then
  wait "$fpid"; frc=$?
  check "follower with --count 1 exits 0 after the new record (exit $frc)" test "$frc" -eq 0
else
  not_ok "follower with --count 1 exits after the new record"
fi
check "the follower printed only the new note, none of the older records" \
  jq_true follow "length == 1 and .[0].key == \"$D\" and .[0].event.case_event.action == \"note\" and .[0].event.case_event.note == \"跟进 follow me\""

"$tail_bin" --timeout 120 >"$CW_TMP/follow2.out" 2>"$CW_TMP/follow2.err" &
f2=$!; track_pid "$f2"
check "follower of every topic reports it is reading 36 partitions" wait_until 20 grep -q "reading 36 partitions of 6 topics" "$CW_TMP/follow2.err"
E=01JDCASEEEEEEEEEEEEEEEEEEE
"$produce" note "$E" "second note" >>"$CW_TMP/produce.log" 2>&1
has_e() { grep -q "\"key\":\"$E\"" "$CW_TMP/follow2.out"; }
check "follower of every topic prints the new record promptly (flushed while waiting)" wait_until 20 has_e
check_stops "a following casewire-tail" "$f2" 10
check "following output: just the new record" sh -c "[ $(lines follow2) -eq 1 ]"

run quiet --topic casewire.notify-dlq.v1 --timeout 1
check "--timeout 1 while following: exit 1, nothing on stdout, reason on stderr (exit $rc, ${ms} ms)" \
  sh -c "[ $rc -eq 1 ] && [ ! -s '$(out quiet)' ] && [ $ms -lt 10000 ] && grep -q 'timed out' '$CW_TMP/quiet.err'"
