#!/usr/bin/env bash
# Issue 3/7's crash test: 10,000 cases through the gateway while the router is killed with
# kill -9 five times (each time after another eighth of the cases was routed since the last
# restart, so every kill lands in the middle of the backlog) and restarted. Then, from Kafka and Redis:
#   - every case answered 202 was routed, none missing, none routed twice in effect: all the
#     CaseRouted records of a case (a redelivery republishes) carry one event id and one owner,
#     the owner Redis holds;
#   - one receipt task and one assignment notice per case (task ids), each republished copy
#     with the same event id;
#   - the owners' open loads and the site indexes count each case once.
# CW_ROUTER_CRASH_CASES overrides the count (for a quick local run).
source "$CW_ROOT/tests/lib/common.sh"
N=${CW_ROUTER_CRASH_CASES:-10000}
KILLS=5
R="$CW_TMP/r"
mkdir -p "$R"
start_routing_stack

# N cases over three sites, eight kinds of matter, each from its own phone (no repeats).
awk -v n="$N" 'BEGIN {
  split("SH01 SH02 HZ01", site, " ")
  split("鞋子穿了两天就开胶了，要求退货|洗手间很脏，地上有水|停车场收费比标的贵|收银员态度很差，爱理不理|I was overcharged at the checkout|Lost my wallet near the food court|空调不制冷，太热了|有人在一楼晕倒了，快来人", text, "|")
  for (i = 0; i < n; i++)
    printf "{\"m\":\"POST\",\"p\":\"/v1/cases\",\"b\":{\"site\":\"%s\",\"channel\":\"web\",\"text\":\"%s (%d)\",\"customer\":{\"phone\":\"139%08d\"}}}\n", site[i % 3 + 1], text[i % 8 + 1], i, i
}' >"$R/requests"
"$CW_BUILD/itests/gwclient" "$GW_URL" 16 <"$R/requests" >"$R/responses" 2>"$R/gwclient.err" &
client=$!
track_pid "$client"

routed_count() { $RC eval "return #redis.call('KEYS', 'cw:routed:*')" 0; }
at_least() { [ "$(routed_count)" -ge "$1" ]; }
kills=0 last=0
for k in $(seq 1 $KILLS); do
  # another eighth of the cases routed since the last restart: the kill lands mid-backlog
  target=$(( last + N / (KILLS + 3) ))
  if ! wait_until 180 at_least "$target"; then
    not_ok "the router routes $target cases before kill $k ($(routed_count) so far)"
    tail -20 "$CW_TMP/rt/router.log"; break
  fi
  kill -9 "$ROUTER_PID"; wait "$ROUTER_PID" 2>/dev/null
  kills=$((kills + 1))
  echo "# kill -9 $k at $(routed_count) of $N cases routed"
  last=$(routed_count)
  start_router "$CW_TMP/rt" || { not_ok "the router restarts after kill $k"; exit 1; }
done
check "the router was killed with kill -9 $KILLS times while routing" test "$kills" -eq "$KILLS"
# A restart loads the compiled rules the first start stored; it does not compile them again.
restarts_from_cache=$(grep -c 'event=router.rules_ready .* source=cache ' "$CW_TMP/rt/router.log")
check "every restart loaded the compiled rules from the cache ($restarts_from_cache of $kills)" \
  test "$restarts_from_cache" -ge "$kills"
wait "$client"
check "gwclient got an answer to every request" test $? -eq 0
accepted=$(jq -r 'select(.status == 202) | .body.case_id' "$R/responses" | sort -u | tee "$R/accepted" | wc -l)
check "the gateway accepted all $N cases ($accepted)" test "$accepted" -eq "$N"

all_published() {
  [ "$($RC eval "local n = 0
    for _, k in ipairs(redis.call('KEYS', 'cw:routed:*')) do
      if redis.call('HGET', k, 'published') == '1' then n = n + 1 end
    end
    return n" 0)" -ge "$N" ]
}
if wait_until 300 all_published; then ok "every case is routed and its events delivered"; else
  not_ok "every case is routed and its events delivered ($(routed_count) routed)"; fi

dump() {
  timeout 300 "$CW_BUILD/bin/casewire-tail" --bootstrap-file "$CW_TMP/broker/bootstrap" \
    --topic "$1" --from-beginning --until-end --unmasked 2>"$R/tail.err" |
    jq -c "$2" >"$R/$3"
}
dump casewire.cases.v1 'select(.event.case_routed) | [.key, .event.meta.event_id, .event.case_routed.owner_staff_id]' routed.json
dump casewire.notify.v1 'select(.event.notification_task) | [.key, .event.notification_task.task_id, .event.meta.event_id]' tasks.json
records=$(wc -l <"$R/routed.json")
cases=$(jq -r '.[0]' "$R/routed.json" | sort -u | tee "$R/routed_ids" | wc -l)
check "every accepted case has a CaseRouted, and nothing else does ($cases cases)" \
  cmp -s "$R/accepted" "$R/routed_ids"
echo "# figure: $records CaseRouted records for $cases cases ($((records - cases)) republished after the kills)"
conflicts=$(jq -r '@tsv' "$R/routed.json" | sort -u | cut -f1 | uniq -d | wc -l)
check "each case's CaseRouted records agree: one event id, one owner ($conflicts cases disagree)" test "$conflicts" -eq 0

$RC eval "local out = {}
  for _, k in ipairs(redis.call('KEYS', 'cw:routed:*')) do
    out[#out + 1] = string.sub(k, 11) .. '\t' .. redis.call('HGET', k, 'event_id') .. '\t' .. redis.call('HGET', k, 'owner')
  end
  return out" 0 | sort >"$R/redis_decisions"
jq -r '@tsv' "$R/routed.json" | sort -u >"$R/kafka_decisions"
check "Kafka's decisions are the ones Redis keeps (event id and owner of every case)" \
  cmp -s "$R/redis_decisions" "$R/kafka_decisions"

receipts=$(jq -r 'select(.[1] | endswith(":receipt")) | .[1]' "$R/tasks.json" | sort -u | wc -l)
check "one receipt task per case ($receipts)" test "$receipts" -eq "$N"
notices=$(jq -r 'select(.[1] | contains(":assigned:")) | .[0]' "$R/tasks.json" | sort | uniq -c | awk '$1 > 0' | wc -l)
distinct_notices=$(jq -r 'select(.[1] | contains(":assigned:")) | .[1]' "$R/tasks.json" | sort -u | wc -l)
check "one assignment notice per case: $distinct_notices notices for $notices cases" \
  test "$distinct_notices" -eq "$N" -a "$notices" -eq "$N"
task_conflicts=$(jq -r '[.[1], .[2]] | @tsv' "$R/tasks.json" | sort -u | cut -f1 | uniq -d | wc -l)
check "a republished task keeps its event id ($task_conflicts tasks with two)" test "$task_conflicts" -eq 0
echo "# figure: $(wc -l <"$R/tasks.json") task records for $((2 * N)) tasks"

load=$($RC eval "local n = 0
  for _, k in ipairs(redis.call('KEYS', 'cw:load:*')) do
    for _, v in ipairs(redis.call('HVALS', k)) do n = n + tonumber(v) end
  end
  return n" 0)
check "the owners' open loads add up to the cases, each counted once ($load)" test "$load" -eq "$N"
indexed=$($RC eval "local n = 0
  for _, k in ipairs(redis.call('KEYS', 'cw:idx:site:*:assigned')) do n = n + redis.call('ZCARD', k) end
  return n" 0)
check "the site indexes hold each case once ($indexed)" test "$indexed" -eq "$N"
check_stops "router" "$ROUTER_PID" 10
