#!/usr/bin/env bash
# Fault injection against a real casewire-gateway, devbroker and Redis, with real HTTP clients
# (gwload/):
#   1. durability: 5,000 cases from 4 retrying clients while the gateway is killed with
#      SIGKILL and restarted on the same port 3 times: every 202 is on Kafka, exactly one case
#      per Idempotency-Key, every key accepted in the end;
#   2. Kafka down for 10 s (devbroker control FIFO): 503 with Retry-After after the reply
#      timeout, no 202 without Kafka's confirmation, intake recovers without a restart;
#   3. slowloris: 100 connections trickling a byte every 2 s are closed by the whole-request
#      deadline while normal requests are still answered;
#   4. the connection cap: beyond it new connections wait, and are served once others close.
source "$CW_ROOT/tests/lib/common.sh"
load="$CW_BUILD/itests/gwload"
tailbin="$CW_BUILD/bin/casewire-tail"
token=demo-desk_agent-SH01 # SH01 desk agent (deploy/DEMO-CREDENTIALS.md): staff, no IP rate limit
ctl="$CW_TMP/broker/control"
dblog="$CW_TMP/broker/devbroker.log"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
gone() { ! kill -0 "$1" 2>/dev/null; }

# ---- helpers ----

# control CMD [RESULT]: writes CMD to the devbroker's FIFO and waits until the devbroker has
# logged it with result=RESULT (default ok). The write itself is bounded (a FIFO without a
# reader would block it forever).
ctl_seen() { grep -cF "event=devbroker.control command=\"$1\" result=$2" "$dblog"; }
ctl_more() { [ "$(ctl_seen "$1" "$2")" -gt "$3" ]; }
control() {
  local cmd=$1 want=${2:-ok} before
  before=$(ctl_seen "$cmd" "$want")
  timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$cmd" "$ctl" || return 1
  wait_until 10 ctl_more "$cmd" "$want" "$before"
}

# metric NAME: the value of an unlabelled metric on the gateway's /metrics (empty if none).
metric() { curl -s -m 5 "$GW_URL/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# dump_intake FILE: every record of casewire.intake.v1 so far, one JSON object a line.
dump_intake() {
  timeout 120 "$tailbin" --bootstrap-file "$CW_TMP/broker/bootstrap" --topic casewire.intake.v1 \
    --from-beginning --until-end --unmasked --quiet --timeout 60 >"$1" 2>"$1.err"
}

# field FILE NAME: NAME=value from gwload's key=value output.
field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -n 1; }
# sum_field FILE NAME: the sum of NAME=value over the lines of FILE.
sum_field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | awk '{ s += $1 } END { print s + 0 }'; }

# The outage probe: a POST with curl, headers to probe.h, body to probe.json; prints the status.
probe_post() {
  curl -s -m 10 -D "$CW_TMP/probe.h" -o "$CW_TMP/probe.json" -w '%{http_code}' -X POST "$GW_URL/v1/cases" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H 'Idempotency-Key: out-probe' \
    --data '{"site":"SH01","channel":"service_desk","text":"outage probe","customer":{"phone":"13800138000"},"external_ref":"out-probe"}'
}
# Retries the probe until 202; its answer joins the others for the Kafka check.
probe_accepted() {
  [ "$(probe_post)" = 202 ] || return 1
  jq -r '"out-probe \(.case_id) \(.case_no) 202"' "$CW_TMP/probe.json" >"$CW_TMP/probe.answer"
}
post_case() { # post_case KEY: one POST /v1/cases with curl, prints the status
  curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$GW_URL/v1/cases" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H "Idempotency-Key: $1" \
    --data "{\"site\":\"SH01\",\"channel\":\"service_desk\",\"text\":\"fault test $1\",\"customer\":{\"phone\":\"13800138000\"}}"
}

# ---- the stack ----
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" --brokers 3 --partitions 6 --control "$ctl" ||
  { not_ok "devbroker starts with --control"; exit 1; }
check "devbroker made its control FIFO" test -p "$ctl"

# ---- 0. the control channel itself ----
check "control: an unknown command is logged as rejected and ignored" control "explode now" rejected
check "control: a broker id out of range is rejected" control "down 9" rejected
check "control: rtt all 0 is applied (FIFO reopened after the previous writers closed)" control "rtt all 0"
check "devbroker still running after the bad commands" kill -0 "$DEVBROKER_PID"

# ---- 1. durability: kill -9 three times under load ----
total=5000
start_gateway "$CW_TMP/gw" CASEWIRE_REPLY_TIMEOUT=2s || { not_ok "gateway starts"; exit 1; }
"$load" post --port "$GW_PORT" --out "$CW_TMP/dur" --clients 4 --count "$total" --key-prefix dur \
  --token "$token" --timeout-ms 10000 --case-deadline-s 150 >"$CW_TMP/dur.log" 2>&1 &
lp=$!; track_pid "$lp"
progress() { cat "$CW_TMP"/dur.[0-9] 2>/dev/null | wc -l; }
at_least() { [ "$(progress)" -ge "$1" ]; }
kills=0
for pct in 25 50 75; do
  if ! wait_until 120 at_least $((total * pct / 100)); then
    not_ok "durability: $pct% of the cases accepted within 120 s" "$(progress) accepted"
    break
  fi
  kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null
  at=$(progress)
  if start_gateway "$CW_TMP/gw" CASEWIRE_REPLY_TIMEOUT=2s; then
    kills=$((kills + 1))
    echo "# gateway killed with SIGKILL at $at/$total accepted; restarted on port $GW_PORT"
  else
    not_ok "gateway restarts on port $GW_PORT after kill -9"
    break
  fi
done
check "gateway killed with SIGKILL and restarted on the same port 3 times ($kills)" test "$kills" -eq 3
if wait_until 240 gone "$lp"; then
  wait "$lp"; rc=$?
else
  rc=timeout; kill "$lp" 2>/dev/null
fi
sed 's/^/# /' "$CW_TMP/dur.log"
check "durability: all 4 clients finished, every case accepted (exit $rc)" test "$rc" = 0
check "durability: the clients saw the kills ($(sum_field "$CW_TMP/dur.log" conn_errors) connection errors)" \
  test "$(sum_field "$CW_TMP/dur.log" conn_errors)" -ge 3
check "durability: every 503/409 carried Retry-After" test "$(sum_field "$CW_TMP/dur.log" retry_after_missing)" -eq 0

dump_intake "$CW_TMP/intake1.json"; rc=$?
check "casewire-tail read casewire.intake.v1 (exit $rc, $(wc -l <"$CW_TMP/intake1.json") records)" test "$rc" -eq 0
answers=()
for f in "$CW_TMP"/dur.[0-9]; do answers+=(--answers "$f"); done
"$load" verify --tail "$CW_TMP/intake1.json" "${answers[@]}" --keys "dur:4:$total" >"$CW_TMP/verify1.out" 2>&1
sed 's/^/# /' "$CW_TMP/verify1.out"
v=$CW_TMP/verify1.out
check "durability: all $total keys got a 202 (missing $(field "$v" keys_not_answered))" \
  test "$(field "$v" keys_not_answered)" = 0 -a "$(field "$v" answered)" = "$total"
check "durability: every 202'd case id is on Kafka (missing $(field "$v" answer_not_on_kafka))" \
  test "$(field "$v" answer_not_on_kafka)" = 0
check "durability: exactly one case id per key on Kafka (keys with several: $(field "$v" keys_multi_case), with none: $(field "$v" keys_absent))" \
  test "$(field "$v" keys_multi_case)" = 0 -a "$(field "$v" keys_absent)" = 0
check "durability: $total distinct cases on Kafka, no strays ($(field "$v" kafka_cases); $(field "$v" kafka_copies) duplicate records of the same case)" \
  test "$(field "$v" kafka_cases)" = "$total"
check "durability: each 202 matches Kafka (case number, idempotency key hash) ($(field "$v" answer_caseno_mismatch), $(field "$v" answer_wrong_key))" \
  test "$(field "$v" answer_caseno_mismatch)" = 0 -a "$(field "$v" answer_wrong_key)" = 0
check "durability: duplicates on Kafka are the same event (event id, case number) and no case number is shared" \
  test "$(field "$v" event_id_mismatch)" = 0 -a "$(field "$v" caseno_shared)" = 0

# ---- 2. Kafka down for 10 s (same gateway: reply timeout 2 s) ----
gw_pid=$GW_PID
starts() { grep -c 'event=service.started' "$CW_TMP/gw/gateway.log"; }
starts_before=$(starts)
"$load" post --port "$GW_PORT" --out "$CW_TMP/out" --clients 2 --count 100000 --key-prefix out \
  --token "$token" --timeout-ms 10000 --case-deadline-s 90 --events --stop-file "$CW_TMP/out.stop" \
  >"$CW_TMP/out.log" 2>&1 &
lp=$!; track_pid "$lp"
out_n() { cat "$CW_TMP"/out.[0-9] 2>/dev/null | wc -l; }
out_at_least() { [ "$(out_n)" -ge "$1" ]; }
check "outage: 2 clients are posting (50 cases accepted before the outage)" wait_until 30 out_at_least 50
if control "down all"; then
  t_down=$(now_ms)
  ok "outage: devbroker took every broker down (control: down all)"
  # A probe of our own during the outage: a new case, answered 503 + Retry-After after the
  # reply timeout (and accepted later with the same key, below).
  probe_start=$(now_ms)
  probe_status=$(probe_post)
  probe_ms=$(( $(now_ms) - probe_start ))
  probe_retry=$(tr -d '\r' <"$CW_TMP/probe.h" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
  check "outage: a new case is answered 503 with Retry-After after the reply timeout (status $probe_status, Retry-After ${probe_retry:-none}, $probe_ms ms)" \
    test "$probe_status" = 503 -a "${probe_retry:-0}" -ge 1 -a "$probe_ms" -ge 1900
  rest=$(( 10000 - ($(now_ms) - t_down) ))
  [ "$rest" -gt 0 ] && sleep "$((rest / 1000)).$(printf %03d $((rest % 1000)))" # the rest of the 10 s outage, held on purpose
  t_up_sent=$(now_ms)
  check "outage: devbroker brought every broker back (control: up all)" control "up all"
  t_up=$(now_ms)
  n_up=$(out_n)
  if wait_until 40 out_at_least $((n_up + 1)); then
    ok "outage: a case accepted again $(( $(now_ms) - t_up )) ms after up, without restarting the gateway"
  else
    not_ok "outage: a case accepted again within 40 s of up"
  fi
  check "outage: 20 more cases accepted after the recovery" wait_until 30 out_at_least $((n_up + 21))
  check "outage: the probe's retry with the same Idempotency-Key is accepted" wait_until 30 probe_accepted
  # Injected errors: the next Produce request makes the broker drop the connection; the
  # producer reconnects and resends, cases still go in (and the gateway saw the drop).
  drops() { grep -c 'event=kafka.error role=producer code=_TRANSPORT' "$CW_TMP/gw/gateway.log"; }
  drops0=$(drops)
  check "errors: devbroker injects a dropped connection on the next Produce request" \
    control "errors Produce _TRANSPORT 1"
  n_err=$(out_n)
  check "errors: intake goes on through it (10 more accepted)" wait_until 30 out_at_least $((n_err + 10))
  check "errors: the gateway's producer saw the dropped connection ($drops0 -> $(drops) transport errors logged)" \
    test "$(drops)" -gt "$drops0"
else
  not_ok "outage: devbroker took every broker down (control: down all)"
fi
touch "$CW_TMP/out.stop"
if wait_until 100 gone "$lp"; then wait "$lp"; rc=$?; else rc=timeout; kill "$lp" 2>/dev/null; fi
sed 's/^/# /' "$CW_TMP/out.log"
check "outage: the clients finished, every case they started accepted (exit $rc)" test "$rc" = 0
check "outage: the same gateway process throughout (pid $gw_pid alive, no new start in its log)" \
  test "$(kill -0 "$gw_pid" 2>/dev/null && echo alive)" = alive -a "$(starts)" = "$starts_before"
# Attempts that began 0.5 s after the brokers went down and ended before up was sent.
during=$(cat "$CW_TMP"/out.[0-9].events 2>/dev/null | awk -v a=$(( ${t_down:-0} + 500 )) -v b="${t_up_sent:-0}" '$1 >= a && $2 <= b')
n_during=$(grep -c . <<<"$during")
n_503=$(awk '$4 == 503 && $5 >= 1' <<<"$during" | grep -c .)
n_202=$(awk '$4 == 202' <<<"$during" | grep -c .)
n_other=$(awk '!(($4 == 503 || $4 == 409) && $5 >= 1)' <<<"$during" | grep -c .)
echo "# during the outage: $n_during attempts, $n_503 x 503, $n_202 x 202, $n_other other"
awk '{ print "#   attempt", $3, "status", $4, "retry-after", $5, "took", $2 - $1, "ms" }' <<<"$during" | head -n 12
check "outage: no 202 while Kafka was down ($n_202)" test "$n_202" -eq 0
check "outage: requests got 503 with Retry-After ($n_503 of $n_during; other answers $n_other)" \
  test "$n_503" -ge 2 -a "$n_other" -eq 0
slow503=$(awk '$4 == 503 { d = $2 - $1; if (d < 1900 || d > 6000) n++ } END { print n + 0 }' <<<"$during")
check "outage: each 503 came after the 2 s reply timeout (outside 1.9..6 s: $slow503)" test "$slow503" -eq 0

dump_intake "$CW_TMP/intake2.json" || not_ok "casewire-tail read casewire.intake.v1 after the outage"
probe=()
[ -s "$CW_TMP/probe.answer" ] && probe=(--answers "$CW_TMP/probe.answer")
"$load" verify --tail "$CW_TMP/intake2.json" --answers "$CW_TMP/out.0" --answers "$CW_TMP/out.1" "${probe[@]}" >"$CW_TMP/verify2.out" 2>&1
sed 's/^/# /' "$CW_TMP/verify2.out"
v=$CW_TMP/verify2.out
check "outage: every 202 (before, during, after) is on Kafka ($(field "$v" answered) answers, missing $(field "$v" answer_not_on_kafka))" \
  test "$(field "$v" answer_not_on_kafka)" = 0 -a "$(field "$v" answered)" -ge 70
check "outage: one case id per key on Kafka (several: $(field "$v" keys_multi_case), none: $(field "$v" keys_absent))" \
  test "$(field "$v" keys_multi_case)" = 0 -a "$(field "$v" keys_absent)" = 0 -a "$(field "$v" answer_wrong_key)" = 0
check_stops "gateway (after the kills and the outage)" "$gw_pid" 15

# ---- 3. slowloris against the whole-request deadline (10 s) ----
# 10 s, not less: the legitimate requests below must all be answered while the 100 slow
# connections are still open, and on a slow shared machine 13 curl runs can take seconds.
start_gateway "$CW_TMP/gw" CASEWIRE_HTTP_REQUEST_TIMEOUT=10s || { not_ok "gateway starts (request timeout 10 s)"; exit 1; }
closes0=$(metric casewire_http_deadline_closes_total)
"$load" slow --port "$GW_PORT" --conns 100 --interval-ms 2000 --max-s 20 >"$CW_TMP/slow.out" 2>&1 &
sp=$!; track_pid "$sp"
check "slowloris: 100 connections opened, each sent its first byte" \
  wait_until 15 grep -q all_first_bytes_sent "$CW_TMP/slow.out"
legit_t0=$(now_ms)
ok_get=0
for i in $(seq 1 10); do
  [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$GW_URL/v1/sites")" = 200 ] && ok_get=$((ok_get + 1))
done
ok_post=0
for i in 1 2 3; do [ "$(post_case "slowloris-$i")" = 202 ] && ok_post=$((ok_post + 1)); done
open_now=$(metric casewire_http_connections)
closed_yet=$(grep -c '^closed' "$CW_TMP/slow.out")
echo "# slowloris: the 13 legitimate requests took $(( $(now_ms) - legit_t0 )) ms"
check "slowloris: 10 GET /v1/sites answered 200 during the attack ($ok_get)" test "$ok_get" -eq 10
check "slowloris: 3 POST /v1/cases answered 202 during the attack ($ok_post)" test "$ok_post" -eq 3
check "slowloris: the attack was still on meanwhile (${open_now:-?} connections open, $closed_yet slow ones closed)" \
  test "${open_now%.*}" -ge 100 -a "$closed_yet" -eq 0
if wait_until 30 gone "$sp"; then wait "$sp"; rc=$?; else rc=timeout; fi
grep -v '^closed' "$CW_TMP/slow.out" | sed 's/^/# /'
summary=$(grep '^slow:' "$CW_TMP/slow.out")
s_closed=$(sed -n 's/.* closed=\([0-9]*\).*/\1/p' <<<"$summary")
s_min=$(sed -n 's/.* min_ms=\(-*[0-9]*\).*/\1/p' <<<"$summary")
s_max=$(sed -n 's/.* max_ms=\(-*[0-9]*\).*/\1/p' <<<"$summary")
check "slowloris: all 100 connections closed by the server (${s_closed:-?}, exit $rc)" test "${s_closed:-0}" -eq 100
check "slowloris: none closed before the 10 s deadline (earliest ${s_min:-?} ms)" test "${s_min:--1}" -ge 9900
check "slowloris: all closed by 10 s + 5 s slack (latest ${s_max:-?} ms)" test "${s_max:-99999}" -le 15000 -a "${s_max:-99999}" -ge 0
closes1=$(metric casewire_http_deadline_closes_total)
check "slowloris: casewire_http_deadline_closes_total rose by >= 100 (${closes0:-?} -> ${closes1:-?})" \
  test "$(( ${closes1%.*} - ${closes0%.*} ))" -ge 100
check "slowloris: a normal request after the attack is answered" \
  test "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$GW_URL/v1/sites")" = 200
# A request with the start of the next one in the same packet: the next one's deadline runs
# from the answer (docs/api.md), not until the 30 s idle timeout.
pipelined() {
  local start
  start=$(now_ms)
  exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT" || return 1
  printf 'GET /v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /v1/si' >&3
  timeout 20 cat <&3 >"$CW_TMP/pipelined.out"
  exec 3<&- 3>&-
  echo $(( $(now_ms) - start ))
}
p_ms=$(pipelined)
p_answers=$(grep -c '^HTTP/1.1 200' "$CW_TMP/pipelined.out")
check "slowloris: a partial request pipelined behind a full one is closed by the deadline (${p_ms:-?} ms, $p_answers answer)" \
  test "$p_answers" -eq 1 -a "${p_ms:-0}" -ge 9900 -a "${p_ms:-99999}" -le 15000
check_stops "gateway (after the slowloris)" "$GW_PID" 15

# ---- 4. the connection cap (20) ----
start_gateway "$CW_TMP/gw" CASEWIRE_HTTP_MAX_CONNECTIONS=20 || { not_ok "gateway starts (20 connections)"; exit 1; }
# Only the scrape itself open: no leftover connection of ours takes a slot.
check "cap: gateway idle before the test (1 connection: the scrape)" wait_until 10 metric_is casewire_http_connections 1
timeout 60 "$load" cap --port "$GW_PORT" --conns 40 --wait-ms 2000 >"$CW_TMP/cap.out" 2>&1
sed 's/^/# /' "$CW_TMP/cap.out"
first=$(sed -n 's/^cap: first=\([0-9]*\).*/\1/p' "$CW_TMP/cap.out")
later=$(sed -n 's/^cap: .* later=\([0-9]*\).*/\1/p' "$CW_TMP/cap.out")
broken=$(sed -n 's/^cap: .* broken=\([0-9]*\)$/\1/p' "$CW_TMP/cap.out")
highest=$(sed -n 's/.*highest index answered \([-0-9]*\).*/\1/p' "$CW_TMP/cap.out")
check "cap: of 40 connections exactly the first 20 are served (${first:-?}, highest index ${highest:-?})" \
  test "${first:-0}" -eq 20 -a "${highest:--1}" -eq 19
check "cap: the other 20 are served once those close (${later:-?}), none dropped (${broken:-?})" \
  test "${later:-0}" -eq 20 -a "${broken:-1}" -eq 0
check "cap: normal requests work again (GET /v1/sites, POST /v1/cases)" \
  test "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$GW_URL/v1/sites")" = 200 -a "$(post_case cap-after)" = 202
check_stops "gateway (after the cap test)" "$GW_PID" 15

# ---- the devbroker: its control FIFO goes with it ----
check_stops "devbroker (after all the control commands)" "$DEVBROKER_PID" 15
check "devbroker removed its control FIFO" test ! -e "$ctl"
