#!/usr/bin/env bash
# Assignment by open load, through the real router: a site open round the clock whose service
# desk has seven people on duty at every hour, 1,000 cases: nobody gets more than their share
# plus one, and nobody off the desk gets any: not the fallback manager, not a clerk without
# shifts. Then two of them close cases (their open load falls) and the next ones go to them.
# Its own chain (written here) so that who is on duty does not depend on the hour the test runs.
source "$CW_ROOT/tests/lib/common.sh"
N=1000
R="$CW_TMP/r"
mkdir -p "$R"
TOKEN=demo-lb-desk
token_sha=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
all_week='[{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}]'
{
  cat <<EOF
chain: {id: lb, name: 均衡测试集团, timezone: Asia/Shanghai}
roles:
  - {id: desk_agent, name: 服务台}
  - {id: duty_manager, name: 值班经理}
sites:
  - id: LB01
    name: 均衡店
    kind: mall
    opening_hours: {mon: "00:00-24:00", tue: "00:00-24:00", wed: "00:00-24:00", thu: "00:00-24:00",
                    fri: "00:00-24:00", sat: "00:00-24:00", sun: "00:00-24:00"}
    departments:
      - {id: LB01-desk, name: 服务台, kind: service_desk}
      - {id: LB01-office, name: 办公室, kind: operations}
    staff:
      - {id: LB01-M1, name: 经理, department: LB01-office, roles: [duty_manager], shifts: $all_week}
      - {id: LB01-N1, name: 夜班, department: LB01-desk, roles: [desk_agent]}
EOF
  for i in 1 2 3 4 5 6 7; do
    tok=""
    [ "$i" = 1 ] && tok=", token_sha256: $token_sha"
    echo "      - {id: LB01-S$i, name: 员工$i, department: LB01-desk, roles: [desk_agent], shifts: $all_week$tok}"
  done
  cat <<EOF
    escalation: {ladder: [desk_agent, duty_manager], fallback_role: duty_manager}
routing:
  - {category: other, departments: [service_desk]}
sla_policies:
  - {id: default, clocks: {handoff: 10m, reply: 24h}}
EOF
} >"$CW_TMP/lb.yaml"

start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CW_TMP/lb.yaml" CASEWIRE_RATE_IP_PER_MIN=0 \
  CASEWIRE_RATE_PHONE_PER_HOUR=0 || { not_ok "gateway starts with the test chain"; exit 1; }
start_router "$CW_TMP/rt" CASEWIRE_CHAIN="$CW_TMP/lb.yaml" ||
  { not_ok "router starts with the test chain"; exit 1; }
RC="redis-cli -p $REDIS_PORT"

post_cases() { # post_cases FROM COUNT
  awk -v from="$1" -v n="$2" 'BEGIN { for (i = from; i < from + n; i++)
    printf "{\"m\":\"POST\",\"p\":\"/v1/cases\",\"b\":{\"site\":\"LB01\",\"channel\":\"web\",\"text\":\"问题 %d\",\"customer\":{\"phone\":\"138%08d\"}}}\n", i, i }' |
    "$CW_BUILD/itests/gwclient" "$GW_URL" 8 >"$R/resp.$1" 2>"$R/gwclient.err"
}
routed_count() { $RC eval "return #redis.call('KEYS', 'cw:routed:*')" 0; }
at_least() { [ "$(routed_count)" -ge "$1" ]; }
loads() { $RC hgetall cw:load:LB01 | paste - - | sort; }

post_cases 0 "$N"
check "the gateway accepts $N cases" test "$(jq -s 'map(select(.status == 202)) | length' "$R/resp.0")" -eq "$N"
check "the router routes all $N" wait_until 120 at_least "$N"
loads >"$R/loads"
echo "# figure: open cases per person after $N: $(tr '\t\n' '= ' <"$R/loads")"
share=$(( N / 7 ))
check "seven people share them, each at most their share + 1 ($share + 1) and none fewer than $share" \
  awk -v s="$share" 'NF == 2 { n++; if ($2 > s + 1 || $2 < s) bad = 1 } END { exit !(n == 7 && !bad) }' "$R/loads"
check "only the desk's people on duty got cases: not the manager (fallback), not the night clerk" \
  sh -c "! grep -qE '^LB01-(M1|N1)' '$R/loads'"

# Two people close three cases each: the next four cases go to them (after four they may be
# level with someone else again).
for who in LB01-S3 LB01-S5; do
  for id in $($RC zrange "cw:idx:owner:$who" 0 2); do
    for a in acknowledge resolve; do
      curl -sS -o /dev/null -X POST "$GW_URL/v1/cases/$id/events" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "{\"action\":\"$a\"}"
    done
    curl -sS -o /dev/null -X POST "$GW_URL/v1/cases/$id/events" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -d '{"action":"followup","outcome":"satisfied"}'
    curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$GW_URL/v1/cases/$id/events" \
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"action":"close"}' >>"$R/closes"
  done
done
check "six cases are closed" test "$(grep -c '^202$' "$R/closes")" -eq 6
before3=$($RC hget cw:load:LB01 LB01-S3) before5=$($RC hget cw:load:LB01 LB01-S5)
check "closing lowers the owners' open load (S3 $before3, S5 $before5)" \
  test "$before3" -eq "$(awk '$1 == "LB01-S3" {print $2 - 3}' "$R/loads")" -a \
       "$before5" -eq "$(awk '$1 == "LB01-S5" {print $2 - 3}' "$R/loads")"
post_cases "$N" 4
check "four more are routed" wait_until 60 at_least $((N + 4))
after3=$($RC hget cw:load:LB01 LB01-S3) after5=$($RC hget cw:load:LB01 LB01-S5)
check "they go to the two with the fewest open cases (S3 $before3 -> $after3, S5 $before5 -> $after5)" \
  test $((after3 - before3 + after5 - before5)) -eq 4
check_stops "router" "$ROUTER_PID" 10
