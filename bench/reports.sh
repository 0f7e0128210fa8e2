#!/usr/bin/env bash
# The reports (issue 6/7): how long a gateway takes to answer the monthly, daily and today
# reports and the open-cases list over a site with many cases. The cases are written straight
# into Redis with every field a report reads (as the gateway, router and deadline worker would
# leave them), spread over this month at SH01; then each request is timed BENCH_RUNS times.
#   BENCH_REPORT_CASES (default 100000)  cases in the month
#   BENCH_RUNS (default 3)               runs of each request; the median is printed
source "$CW_ROOT/tests/lib/common.sh"
source "$CW_ROOT/bench/lib.sh"
N=${BENCH_REPORT_CASES:-100000}
RUNS=${BENCH_RUNS:-3}
start_redis "$CW_TMP/redis" || { echo "redis did not start"; exit 1; }
start_devbroker "$CW_TMP/broker" || { echo "devbroker did not start"; exit 1; }
start_gateway "$CW_TMP/gw" || { echo "gateway did not start"; exit 1; }
RC="redis-cli -p $REDIS_PORT"

month=$(TZ=Asia/Shanghai date +%Y-%m)
from_ms=$(( $(date -d "$month-01 00:00 +0800" +%s) * 1000 ))
now_ms=$(date +%s%3N)
# RESP for redis-cli --pipe: a tenth of the cases still open (1,000 at most: the list's
# and today's scans), the rest closed, every field a report reads.
awk -v n="$N" -v from="$from_ms" -v now="$now_ms" 'BEGIN {
  srand(42)
  split("product_quality service_attitude environment cleanliness price_dispute returns parking safety other", cats, " ")
  split("web service_desk phone app mini_program letter", chans, " ")
  open = int(n / 10); if (open > 1000) open = 1000
  for (i = 0; i < n; i++) {
    id = sprintf("01BENCH%019d", i)
    # mawk prints big numbers as 1.79669e+12: every time is formatted with %.0f
    t = sprintf("%.0f", from + int(rand() * (now - from - 3600000)))
    st = i < open ? "acknowledged" : "closed"
    c = cats[1 + i % 9]; ch = chans[1 + i % 6]
    a = sprintf("%.0f", t + 60000 + int(rand() * 600000)); r = sprintf("%.0f", a + int(rand() * 3600000))
    z = sprintf("%.0f", r + int(rand() * 86400000))
    nf = split("site SH01 case_no SH01-B-" i " status " st " channel " ch " type complaint category " c \
      " urgency general validity valid department SH01-floor owner SH01-S007 created_ms " t \
      " acked_ms " a " replied_ms " r " cause bench-" c " summary 投诉内容摘要", f, " ")
    if (st == "closed") {
      nf = split("site SH01 case_no SH01-B-" i " status closed channel " ch " type complaint category " c \
        " urgency general validity valid department SH01-floor owner SH01-S007 created_ms " t \
        " acked_ms " a " replied_ms " r " resolved_ms " z " closed_ms " z " followup satisfied" \
        " cause bench-" c " summary 投诉内容摘要 stopped:handoff " a " stopped:resolution " z, f, " ")
      if (i % 7 == 0) { f[++nf] = "breached:handoff"; f[++nf] = sprintf("%.0f", t + 600000) }
    } else {
      f[++nf] = "due:resolution"; f[++nf] = sprintf("%.0f", now + 3600000)
    }
    printf "*%d\r\n$4\r\nHSET\r\n$%d\r\ncw:case:%s\r\n", nf + 2, length("cw:case:" id), id
    for (k = 1; k <= nf; k++) printf "$%d\r\n%s\r\n", length(f[k]), f[k]
    key = "cw:idx:site:SH01:" st
    printf "*4\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(t), t, length(id), id
  }
}' | LC_ALL=C $RC --pipe >/dev/null
mem=$($RC info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r')
echo "$N synthetic cases at SH01 this month ($month); Redis holds $((mem / 1048576)) MiB"

DESK="Authorization: Bearer demo-desk_agent-SH01"
timed() { # PATH: median seconds over RUNS, the answer's size, and every run's seconds
  local t sizes=() times=()
  for _ in $(seq 1 "$RUNS"); do
    read -r t s < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' --max-time 120 -H "$DESK" "$GW_URL$1")
    times+=("$t"); sizes+=("$s")
  done
  printf '%s %s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "${sizes[0]}" "${times[*]}"
}
for p in "/v1/reports/monthly?date=$month" "/v1/reports/monthly?date=$month&format=csv" \
  "/v1/reports/daily" "/v1/reports/today" "/v1/cases"; do
  read -r t size all < <(timed "$p")
  printf '  GET %-40s median %6.3f s over %d runs (%s bytes)\n' "$p" "$t" "$RUNS" "$size"
  bench_result reports "GET ${p/\?date=$month/?date=<month>} ($N cases)" "$t" s runs="$all" note="$size bytes"
done
got=$(curl -s -H "$DESK" "$GW_URL/v1/reports/monthly?date=$month" | jq .received)
echo "  the monthly report counted $got cases (of $N written)"
