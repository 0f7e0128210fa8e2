#!/usr/bin/env bash
# Issue 7/7, scale-out on one machine: N cases (20,000) through one gateway, 3 routers, 2
# deadline workers and 2 notifiers while workers picked at random are killed with kill -9 (and
# restarted, as an orchestrator would) in the middle of the work: three kills of each kind, each
# when another share of that kind's work is done. Every tenth case comes from a kiosk, whose
# policy in this test's chain runs a 15 s hand-off clock with no warnings, so those clocks come
# due during the test and climb SH01's whole ladder (4 levels). Then:
#   - every case routed once in effect: one CaseRouted event id and owner per case, as Redis
#     holds, and the open loads count each case once;
#   - every due clock fired once: each kiosk case's hand-off breached, climbed to the top, with
#     exactly one escalation per level in its history, and every DeadlineFired timer has one
#     event id;
#   - every notification delivered once: each task id once in the SMS log, a receipt and an
#     assignment notice for every case, and each escalation's SMS;
#   - every worker's consumer lag back to 0.
# CW_SCALE_CASES overrides N (for a quick local run; at least 600). The sanitizer build, several
# times slower, runs 5,000 (CI runs this script in both builds; the 20,000 are the normal one's).
source "$CW_ROOT/tests/lib/common.sh"
N=20000
ldd "$CW_BUILD/bin/casewire-router" 2>/dev/null | grep -q libasan && N=5000
N=${CW_SCALE_CASES:-$N}
echo "# $N cases"
R="$CW_TMP/r"
mkdir -p "$R"
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
RC="redis-cli -p $REDIS_PORT"
CHAIN="$CW_TMP/chain.yaml"
# SMS into this folder, at any hour, no limits per number; a kiosk policy with a short clock.
sed -e "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" -e 's|^  quiet_hours: .*|  quiet_hours: none|' \
  -e 's|^  per_number: .*|  per_number: {minute: 0, hour: 0, day: 0}|' \
  -e 's|^sla_policies:$|sla_policies:\n  - {id: kiosk-test, priority: 1000, match: {channels: [kiosk]}, clocks: {handoff: 15s, followup: 3h}}|' \
  "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
grep -q "id: kiosk-test" "$CHAIN" && grep -q "file: $CW_TMP/sms.log" "$CHAIN" ||
  { not_ok "the test chain has the kiosk policy and its SMS log"; exit 1; }
# A killed member holds its partitions until its session times out: 6 s, not 10.
export CASEWIRE_KAFKA_CONF="session.timeout.ms=6000,heartbeat.interval.ms=1000"
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" CASEWIRE_RATE_IP_PER_MIN=0 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 || { not_ok "gateway starts"; exit 1; }

# worker KIND I: (re)start instance I of a kind, on its own admin port and folder
declare -A PID PORT
worker() {
  local kind=$1 i=$2 port extra=()
  port=${PORT[$kind$i]:-$(free_port)}
  PORT[$kind$i]=$port
  [ "$kind" = router ] && extra=(CASEWIRE_RULES_CACHE="$RULES_CACHE")
  _start_daemon "$kind" "$CW_TMP/$kind$i" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$CHAIN" "${extra[@]}" ||
    { not_ok "$kind $i starts"; return 1; }
  PID[$kind$i]=$DAEMON_PID
}
declare -A COUNT=([router]=3 [deadline]=2 [notifier]=2)
for kind in router deadline notifier; do
  for i in $(seq 1 "${COUNT[$kind]}"); do worker "$kind" "$i" || exit 1; done
done
ok "3 routers, 2 deadline workers and 2 notifiers are up"
for kind in router deadline notifier; do
  for i in $(seq 1 "${COUNT[$kind]}"); do
    wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/$kind$i/$kind.log" ||
      echo "# $kind $i has no partitions yet"
  done
done

# N complaints at SH01, each from its own phone (no repeats); every tenth from a kiosk.
awk -v n="$N" 'BEGIN {
  split("鞋子穿了两天就开胶了，要求退货|洗手间很脏，地上有水|停车场收费比标的贵|收银员态度很差，爱理不理|空调不制冷，太热了", text, "|")
  for (i = 0; i < n; i++)
    printf "{\"m\":\"POST\",\"p\":\"/v1/cases\",\"h\":{\"Idempotency-Key\":\"scale-%d\"},\"b\":{\"site\":\"SH01\",\"channel\":\"%s\",\"text\":\"%s（%d）\",\"customer\":{\"phone\":\"137%08d\"}}}\n", i, i % 10 ? "web" : "kiosk", text[i % 5 + 1], i, i
}' >"$R/requests"
"$CW_BUILD/itests/gwclient" "$GW_URL" 16 <"$R/requests" >"$R/responses" 2>"$R/gwclient.err" &
client=$!
track_pid "$client"
KIOSK=$((N / 10))

count_keys() { $RC eval "return #redis.call('KEYS', ARGV[1])" 0 "$1"; }
routed() { count_keys 'cw:routed:*'; }
sms() { [ -f "$CW_TMP/sms.log" ] && wc -l <"$CW_TMP/sms.log" || echo 0; }
# breaches committed: the deadline workers' fired sets (kept a day; only the kiosk clocks come
# due within the test, and they have no warnings)
breached() { $RC eval "local n = 0
  for s = 0, 15 do n = n + redis.call('ZCARD', 'cw:fired:{cwt:' .. s .. '}') end
  return n" 0; }
# kill KIND: kill -9 a random instance of KIND and start it again
kills=0
kill_one() {
  local kind=$1 i; i=$(( RANDOM % COUNT[$kind] + 1 ))
  kill -9 "${PID[$kind$i]}"; wait "${PID[$kind$i]}" 2>/dev/null
  kills=$((kills + 1))
  echo "# kill -9 $kind $i ($2)"
  worker "$kind" "$i"
}
progress() { [ "$("$1")" -ge "$2" ]; } # progress FN THRESHOLD
# The kills, each when another share of its kind's work is done, whatever the other kinds
# are doing: routers by routed cases, notifiers by SMS written (about 2 per case, and the
# escalations), deadline workers by breaches fired (4 per kiosk case).
declare -A next=([router]=1 [notifier]=1 [deadline]=1)
declare -A fn=([router]=routed [notifier]=sms [deadline]=breached)
threshold() { case $1 in router) echo $(( N * $2 / 5 )) ;; notifier) echo $(( 2 * N * $2 / 5 )) ;;
  deadline) echo $(( 4 * KIOSK * $2 / 5 )) ;; esac; }
end=$(( $(date +%s) + 600 ))
while [ $(( next[router] + next[notifier] + next[deadline] )) -le 11 ] && [ "$(date +%s)" -lt "$end" ]; do
  for kind in router notifier deadline; do
    k=${next[$kind]}
    [ "$k" -le 3 ] || continue
    at=$(threshold "$kind" "$k") now=$(${fn[$kind]})
    if [ "$now" -ge "$at" ]; then
      kill_one "$kind" "${fn[$kind]} $now of $at" || exit 1
      next[$kind]=$((k + 1))
    fi
  done
  sleep 0.2 # polling the progress, as wait_until does
done
check "9 workers were killed with kill -9 mid-work (3 routers, 3 notifiers, 3 deadline workers)" test "$kills" -eq 9
wait "$client"
check "gwclient got an answer to every request" test $? -eq 0
accepted=$(jq -r 'select(.status == 202) | .body.case_id' "$R/responses" | sort -u | tee "$R/accepted" | wc -l)
check "the gateway accepted all $N cases ($accepted)" test "$accepted" -eq "$N"

# ---- routed once ----
all_published() { [ "$($RC eval "local n = 0
    for _, k in ipairs(redis.call('KEYS', 'cw:routed:*')) do
      if redis.call('HGET', k, 'published') == '1' then n = n + 1 end
    end
    return n" 0)" -ge "$N" ]; }
check "every case is routed and its events delivered" wait_until 300 all_published
# ---- fired once: every kiosk case climbs the whole ladder (4 levels, 15 s each) ----
all_fired() { [ "$(breached)" -ge $((4 * KIOSK)) ]; }
check "every kiosk case's hand-off clock breached 4 times, up the whole ladder ($((4 * KIOSK)) fires)" wait_until 400 all_fired
at_top=$($RC eval "local n = 0
  for _, k in ipairs(redis.call('KEYS', 'cw:case:*')) do
    if redis.call('TYPE', k).ok == 'hash' and redis.call('HGET', k, 'level:handoff') == '3' then n = n + 1 end
  end
  return n" 0)
check "... each at the top level in its record ($at_top of $KIOSK)" test "$at_top" -eq "$KIOSK"
# ---- delivered once: the SMS of the cases and of the escalations, then the logs settle ----
lag_zero() { local k i l; for kind in router deadline notifier; do for i in $(seq 1 "${COUNT[$kind]}"); do
  l=$(curl -fsS "http://127.0.0.1:${PORT[$kind$i]}/metrics" | awk '/^casewire_kafka_consumer_lag/ {s += $2} END {print s + 0}')
  [ "$l" = 0 ] || return 1; done; done; }
check "every worker's consumer lag is back to 0" wait_until 300 lag_zero
receipts() { grep -c ':receipt"' "$CW_TMP/sms.log"; }
check "a receipt SMS for every case" wait_until 300 eval '[ "$(receipts)" -ge '"$N"' ]'
# the outbox's tasks by state ("state|claim|tries[|ref]"): every one final, none failed
states() { $RC eval "local c = {}
  for _, v in ipairs(redis.call('HVALS', 'nt:{nt}:st')) do
    local s = string.match(v, '^[^|]+')
    c[s] = (c[s] or 0) + 1
  end
  local out = {}
  for k, n in pairs(c) do out[#out + 1] = k .. '=' .. n end
  table.sort(out)
  return out" 0 | tr '\n' ' '; }
settled() { ! states | grep -qvE '^((sent|delivered|suppressed|failed)=[0-9]+ )*$'; }
check "the notifiers' outbox settles: every task final" wait_until 300 settled
check "... none failed ($(states))" eval '! states | grep -q "failed="'


dump() {
  timeout 300 "$CW_BUILD/bin/casewire-tail" --bootstrap-file "$CW_TMP/broker/bootstrap" \
    --topic "$1" --from-beginning --until-end --unmasked 2>"$R/tail.err" | jq -c "$2" >"$R/$3"
}
dump casewire.cases.v1 'if .event.case_routed then ["r", .key, .event.meta.event_id, .event.case_routed.owner_staff_id]
  elif .event.deadline_fired then ["f", .event.deadline_fired.timer_id, .event.meta.event_id] else empty end' cases.json
jq -r 'select(.[0] == "r") | .[1]' "$R/cases.json" | sort -u >"$R/routed_ids"
check "every accepted case has a CaseRouted, and nothing else does" cmp -s "$R/accepted" "$R/routed_ids"
conflicts=$(jq -r 'select(.[0] == "r") | .[1:] | @tsv' "$R/cases.json" | sort -u | cut -f1 | uniq -d | wc -l)
check "each case's CaseRouted records agree: one event id, one owner ($conflicts disagree)" test "$conflicts" -eq 0
load=$($RC eval "local n = 0
  for _, v in ipairs(redis.call('HVALS', 'cw:load:SH01')) do n = n + tonumber(v) end
  return n" 0)
check "the owners' open loads add up to the cases, each counted once ($load)" test "$load" -eq "$N"
fires=$(jq -r 'select(.[0] == "f") | .[1]' "$R/cases.json" | grep '\.handoff\.[0-9]*\.b' | sort -u | wc -l)
check "one DeadlineFired timer per kiosk case and ladder level ($fires for $KIOSK cases x 4)" test "$fires" -eq $((KIOSK * 4))
fire_conflicts=$(jq -r 'select(.[0] == "f") | .[1:] | @tsv' "$R/cases.json" | sort -u | cut -f1 | uniq -d | wc -l)
check "a timer fired again carries the same event id ($fire_conflicts with two)" test "$fire_conflicts" -eq 0
echo "# figure: $(jq -c 'select(.[0] == "f")' "$R/cases.json" | wc -l) DeadlineFired records for $fires timers"
dup_levels=$($RC eval "local bad = 0
  for _, k in ipairs(redis.call('KEYS', 'cw:case:*:history')) do
    local seen, n = {}, 0
    for _, e in ipairs(redis.call('ZRANGE', k, 0, -1)) do
      local lvl = string.match(e, '\"event\":\"escalated\".*\"level\":(%d+)')
      if lvl then
        if seen[lvl] then bad = bad + 1 end
        seen[lvl] = true
        n = n + 1
      end
    end
    if n ~= 0 and n ~= 4 then bad = bad + 1 end
  end
  return bad" 0)
check "each kiosk case's history holds one escalation per ladder level, none twice ($dup_levels bad)" test "$dup_levels" -eq 0
jq -r '.id' "$CW_TMP/sms.log" | sort | uniq -d >"$R/sms_dups"
check "no SMS task written twice to the provider ($(wc -l <"$R/sms_dups") twice; $(wc -l <"$CW_TMP/sms.log") SMS in all)" \
  test ! -s "$R/sms_dups"
check "exactly one receipt and one assignment notice per case" \
  test "$(receipts) $(grep -c ':assigned:' "$CW_TMP/sms.log")" = "$N $N"
esc=$(grep -c '\.handoff\.[0-9]*\.b[0-9]' "$CW_TMP/sms.log")
check "the escalations' SMS reached the provider ($esc for $((KIOSK * 4)) breaches)" test "$esc" -ge $((KIOSK * 4))
for kind in router deadline notifier; do
  for i in $(seq 1 "${COUNT[$kind]}"); do check_stops "$kind $i" "${PID[$kind$i]}" 20; done
done
