#!/usr/bin/env bash
# Issue 5/7: the notifier's SMS path end to end, on Redis, the devbroker and a fake provider
# (tests/integration/fakesms.c) that fails 20 % of sends with a 500 and takes 10 % without
# ever answering:
#   - every task reaches the provider, each exactly once (also when every task is written to
#     Kafka twice), the unanswered ones checked by status, never resent blindly;
#   - limits per number hold (the provider counts every message per number and window);
#   - an opted-out number gets nothing; a message over the length limit is refused, reported
#     and dead-lettered, never cut; a record that is not a task is dead-lettered;
#   - staff tasks land in the staff member's inbox;
#   - a tenant's case event reaches its webhook, signed the Standard Webhooks way, retried
#     under one delivery id after 500s; a webhook URL that leads to a cloud metadata address is
#     refused and dead-lettered;
#   - a restarted notifier (kill -9) resends nothing.
source "$CW_ROOT/tests/lib/common.sh"
feed="$CW_BUILD/itests/notify_feed"
tail_bin="$CW_BUILD/bin/casewire-tail"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
RC="redis-cli -p $REDIS_PORT"

"$CW_BUILD/itests/fakesms" --port-file "$CW_TMP/fakesms.port" --fail 20 --hang 10 --seed 7 \
  --per-minute 3 --per-hour 20 --per-day 40 --hook-fail 2 >"$CW_TMP/fakesms.log" 2>&1 &
FAKE_PID=$!
track_pid "$FAKE_PID"
wait_until 10 test -s "$CW_TMP/fakesms.port" || { not_ok "the fake provider starts"; exit 1; }
FAKE="http://127.0.0.1:$(cat "$CW_TMP/fakesms.port")"

# The example chain with the fake provider, short timeouts and retries, no quiet hours (the
# test runs at any hour), and limits per number the fake checks.
CHAIN="$CW_TMP/chain.yaml"
# (the example's own sms section, up to the blank line after it, makes way for this one)
# Tenant T-SH01-0312's webhook goes to the fake, T-SH01-0105's to a cloud metadata address,
# T-SH01-0520's to a server that never answers.
sed -e '/^sms:/,/^$/d' \
  -e "s|https://hooks.yuechafang.example/casewire|$FAKE/hook|" \
  -e "s|https://api.huayang-beauty.example/hooks/casewire|http://169.254.169.254/hook|" \
  -e "s|https://shuxiangyuan.example/casewire/events|$FAKE/hook-hang|" \
  "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
# (sms_templates is the file's last list: these lines add to it)
cat >>"$CHAIN" <<YAML
  - id: long_notice
    zh: "【华信】{case_no}：这是一条很长的通知，用来检查超过长度限制的短信会被拒绝并报告，而不是被悄悄截断。截断的短信可能丢掉编号或链接，所以我们宁可不发也要报告出来，让模板的维护者把它改短。再重复一遍：这条短信太长了，无论如何都不会被截断发送。"
sms:
  provider: http
  http: {url: "$FAKE/sms", status_url: "$FAKE/status"}
  timeout: 1s
  retry_after: 1s
  retry_max: 2s
  max_attempts: 30
  max_chars: 120
  per_number: {minute: 3, hour: 20, day: 40}
  quiet_hours: none
  status_link: "https://cs.test/s/{case_no}"
webhooks: {timeout: 2s, retry_after: 1s, retry_max: 2s, max_attempts: 5, allow_addresses: [loopback]}
YAML

start_notifier() {
  local port; port=$(free_port)
  NOTIFIER_ADMIN="http://127.0.0.1:$port"
  _start_daemon notifier "$CW_TMP/nt" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$CHAIN" "$@"
  NOTIFIER_PID=$DAEMON_PID
}
start_notifier || { not_ok "the notifier starts"; exit 1; }
ok "the notifier starts with the http provider and reports ready"
wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/nt/notifier.log" ||
  not_ok "the notifier joined its consumer group within 60 s"

stats() { curl -s -m 5 "$FAKE/stats"; }
stat() { stats | jq -r ".$1"; }
at_least() { [ "$(stat "$1")" -ge "$2" ]; }
sent_to() { [ "$(curl -s "$FAKE/messages" | jq -rs --arg id "$1" '[.[] | select(.id == $id)][0].to')" = "$2" ]; }

# 300 customer SMS to 150 numbers (two each: the limit per minute is 3), every task written
# twice, as a redelivery would.
"$feed" sms load 300 150 2 >/dev/null
check "300 tasks written to casewire.notify.v1, each twice" test $? -eq 0
check "all 300 reach the provider within 120 s despite 20 % errors and 10 % unanswered" \
  wait_until 120 at_least ids 300
s=$(stats)
echo "# provider saw: $s"
check "no phone got the same message twice (dup_ids=$(jq .dup_ids <<<"$s") dup_texts=$(jq .dup_texts <<<"$s"))" \
  test "$(jq '.dup_ids + .dup_texts' <<<"$s")" = 0
check "exactly 300 messages taken" test "$(jq .taken <<<"$s")" = 300
check "the faults happened: $(jq .errors_500 <<<"$s") answered 500, $(jq .hung <<<"$s") never answered" \
  test "$(jq '.errors_500 > 10 and .hung > 5' <<<"$s")" = true
check "no limit per number was exceeded" test "$(jq .limit_violations <<<"$s")" = 0
settled() { [ "$($RC hvals 'nt:{nt}:st' | grep -c '^sent|')" -ge 300 ]; }
check "every task is settled as sent in the outbox" wait_until 30 settled
check "the outbox has nothing left due" test "$($RC zcard 'nt:{nt}:due')" = 0
msg=$(curl -s "$FAKE/messages" | head -n 1)
check "the message is the case_received template, filled in ($(jq -r .text <<<"$msg"))" \
  test "$(jq -r '.text | test("编号SH01-261125-([0-9]{4}).*11月26日 18:00前答复。查询：https://cs.test/s/SH01-261125-[0-9]{4}$")' <<<"$msg")" = true
metric() { curl -s "$NOTIFIER_ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
check "metrics: 300 sent, some unknown outcomes checked ($(metric 'casewire_notifier_sms_total{outcome="unknown"}'))" \
  test "$(metric 'casewire_notifier_sms_total{outcome="sent"}')" = 300
check "metrics: 300 redelivered copies counted as duplicates" \
  test "$(metric casewire_notifier_duplicates_total)" = 300

# Limits per number: five at once to one number, 3 per minute: three go, two wait.
before=$(stat taken)
NOTIFY_FEED_PHONE_BASE=2000 "$feed" sms burst 5 1 1 >/dev/null
check "five tasks to one number: three sent at once" wait_until 30 at_least taken $((before + 3))
check "... and no more" test "$(stat taken)" -eq $((before + 3))
deferred() { [ "$($RC hvals 'nt:{nt}:st' | grep -c '^deferred|')" -ge 2 ]; }
check "the other two are deferred in the outbox, not dropped" wait_until 10 deferred
results() { "$tail_bin" --from-beginning --until-end --quiet --timeout 30 --topic casewire.notify-results.v1 >"$CW_TMP/results.json" 2>/dev/null; }
deferral_published() {
  results && [ "$(jq -s '[.[] | .event.notification_result | select(.task_id | startswith("burst-")) | select(.status == "DELIVERY_STATUS_DEFERRED" or .status == "deferred" or .status == 3)] | length' "$CW_TMP/results.json")" -ge 2 ]
}
check "the deferrals are published on casewire.notify-results.v1" wait_until 30 deferral_published

# Opt-out: the number's hash in the opt-out set; its message is suppressed.
hash=$(printf '%s' 13900000777 | sha256sum | cut -c1-16)
$RC sadd 'nt:{nt}:optout' "$hash" >/dev/null
NOTIFY_FEED_PHONE_BASE=777 "$feed" sms optout 1 1 1 >/dev/null
suppressed() { $RC hget 'nt:{nt}:st' optout-0 | grep -q '^suppressed|'; }
check "an opted-out number's message is suppressed" wait_until 30 suppressed
check "the provider never saw it" \
  test "$(curl -s "$FAKE/messages" | jq -s '[.[] | select(.id == "optout-0")] | length')" = 0

# Too long for max_chars 120: refused, reported, dead-lettered; never cut.
NOTIFY_FEED_PHONE_BASE=500 "$feed" sms long 1 1 1 long_notice >/dev/null
failed() { $RC hget 'nt:{nt}:st' long-0 | grep -q '^failed|'; }
check "a message over the length limit fails" wait_until 30 failed
check "... and the log says why, with the template to shorten" \
  grep -q 'event=notifier.dead_letter task=long-0 .*characters, the limit is 120.*long_notice' "$CW_TMP/nt/notifier.log"
check "... and the provider never saw any part of it" \
  test "$(curl -s "$FAKE/messages" | jq -s '[.[] | select(.id == "long-0")] | length')" = 0

# Records that are not deliverable tasks go whole to the dead-letter topic.
"$feed" garbage >/dev/null
dlq() { "$tail_bin" --from-beginning --until-end --quiet --timeout 30 --topic casewire.notify-dlq.v1 2>/dev/null | jq -s length; }
dlq_has() { [ "$(dlq)" -ge 3 ]; }
check "the too-long task and both bad records are on casewire.notify-dlq.v1" wait_until 30 dlq_has
check "metrics: dead letters counted (an alert)" test "$(metric casewire_notifier_dead_letters_total)" -ge 3

# Staff: an SMS to a staff member's phone from the chain, and tasks into the inbox.
before=$(stat taken)
"$feed" staff staff 1 SH01-S001 >/dev/null
check "a staff SMS goes to the number the chain file gives SH01-S001 (13800010001)" \
  wait_until 30 sent_to staff-0 13800010001
"$feed" inbox inbox 3 SH01-S002 >/dev/null
inbox3() { [ "$($RC zcard 'nt:{nt}:inbox:SH01-S002')" = 3 ]; }
check "three staff tasks in SH01-S002's inbox" wait_until 30 inbox3

# Tenant webhooks: the tenant's reply on its case, POSTed to its URL, signed; the fake answers
# the first two attempts 500: the retries carry the same delivery id.
WH_CASE=01JDH00KAAAAAAAAAAAAAAAAAA
"$feed" case-event "$WH_CASE" T-SH01-0312 >/dev/null
hooks() { curl -s "$FAKE/hooks"; }
hook_ok() { [ "$(hooks | jq -s 'map(select(.status == 200)) | length')" = 1 ]; }
check "a tenant's case event reaches its webhook, after two 500s" wait_until 60 hook_ok
h=$(hooks)
check "three attempts under one delivery id ($(jq -sc 'map(.id) | unique' <<<"$h"))" \
  test "$(jq -s 'length' <<<"$h") $(jq -s 'map(.id) | unique | length' <<<"$h")" = "3 1"
last=$(jq -sc '.[-1]' <<<"$h")
wid=$(jq -r .id <<<"$last") wts=$(jq -r .ts <<<"$last") wbody=$(jq -r .body <<<"$last")
want="v1,$(printf '%s.%s.%s' "$wid" "$wts" "$wbody" |
  openssl dgst -sha256 -mac HMAC -macopt key:demo-webhook-secret-T-SH01-0312 -binary | base64)"
check "the signature verifies with the tenant's secret (openssl)" test "$(jq -r .sig <<<"$last")" = "$want"
check "the timestamp is now, within a minute" test $(( $(date +%s) - wts )) -lt 60
check "the body says what happened ($(jq -c '{type, tenant, data}' <<<"$wbody"))" \
  test "$(jq -r '"\(.type) \(.data.action) \(.case_id) \(.tenant) \(.data.reply)"' <<<"$wbody")" = \
  "case.event reply $WH_CASE T-SH01-0312 已联系顾客，全额退款"
"$feed" case-event 01JDH00KBBBBBBBBBBBBBBBBBB T-SH01-0105 >/dev/null
refused() { grep -q 'event=notifier.dead_letter task=wh:.*metadata address: refused' "$CW_TMP/nt/notifier.log"; }
check "a webhook URL leading to a cloud metadata address is refused, dead-lettered, not retried" \
  wait_until 30 refused

# A tenant whose server takes requests and never answers holds only webhook connections: with
# 300 of its webhooks hanging (their 2 s timeouts, then retries), customers' SMS still go out
# at once, none of them waiting for a connection.
"$CW_BUILD/itests/notify_feed" case-events 300 T-SH01-0520 >/dev/null
hung_hooks() { [ "$(curl -s "$FAKE/stats" | jq .hooks_hung)" -ge "$1" ]; }
check "300 webhooks of a tenant whose server never answers are hanging (128 at a time)" wait_until 30 hung_hooks 128
NOTIFY_FEED_PHONE_BASE=3000 "$feed" sms beside 50 50 1 >/dev/null
beside() { [ "$(curl -s "$FAKE/messages" | jq -rs '[.[] | select(.id | startswith("beside-"))] | map(.id) | unique | length')" -ge 50 ]; }
check "... while 50 customers' SMS all reach the provider" wait_until 30 beside
check "... and no SMS waited for a connection behind the webhooks" \
  sh -c "! grep 'task=beside-' '$CW_TMP/nt/notifier.log' | grep -q 'waited too long for a connection'"

# kill -9 in the middle of a burst, restart: every task sent once, none twice.
NOTIFY_FEED_PHONE_BASE=1000 "$feed" sms crash 200 100 1 >/dev/null &
feeder=$!
crash_sent() { [ "$(curl -s "$FAKE/messages" | jq -s '[.[] | select(.id | startswith("crash-"))] | length')" -ge "$1" ]; }
wait_until 30 crash_sent 40 || not_ok "the burst started reaching the provider within 30 s"
kill -9 "$NOTIFIER_PID"
wait "$feeder"
check "a burst of 200 written while the notifier is killed with kill -9" test $? -eq 0
start_notifier || not_ok "the notifier restarts"
check "after the restart all 200 reach the provider" wait_until 120 crash_sent 200
s=$(stats)
echo "# provider saw: $s"
check "still no phone got any message twice" test "$(jq '.dup_ids + .dup_texts' <<<"$s")" = 0
check "still no limit per number exceeded" test "$(jq .limit_violations <<<"$s")" = 0
check_stops "the notifier" "$NOTIFIER_PID" 15
