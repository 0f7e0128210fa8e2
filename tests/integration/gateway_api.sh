#!/usr/bin/env bash
# The HTTP contract of docs/api.md against a real gateway, devbroker and Redis, with real
# HTTP clients (curl, and gwclient for concurrent keep-alive traffic):
#   1. every channel and the tenant API create cases: the 202 answer, and the CaseSubmitted
#      record read back from Kafka by casewire-tail matches the request; staff and tenant
#      actions become CaseEvents with the right action and actor;
#   2. every error status from a real request, always a JSON error body, the process stays up;
#   3. tenant isolation: 100 of tenant B's cases are 404 to tenant A, change nothing, and
#      are not in A's list; staff of another site get 404 as well;
#   4. idempotency: 1,000 requests sent twice with the same keys give 1,000 cases, once each
#      on Kafka;
#   5. the customer's status lookup (and its lockout) and tenant list paging and filtering;
#   6. /metrics passes promtool, /v1/openapi.json is served;
# and finally Redis stopped and started again under the running gateway (503, then 202).
source "$CW_ROOT/tests/lib/common.sh"
gwclient="$CW_BUILD/itests/gwclient"
tail_bin="$CW_BUILD/bin/casewire-tail"
R="$CW_TMP/r"
mkdir -p "$R"
started=$(date +%s)

for b in "$gwclient" "$tail_bin" "$CW_BUILD/bin/casewire-gateway"; do
  [ -x "$b" ] || { not_ok "$(basename "$b") is built"; exit 1; }
done
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
# Rate limits off on the main gateway (the 1,000-request rounds come from one IP); a second
# gateway below has a tiny per-IP limit for the 429 checks.
start_gateway "$CW_TMP/gw" CASEWIRE_RATE_IP_PER_MIN=0 CASEWIRE_RATE_PHONE_PER_HOUR=0 ||
  { not_ok "gateway starts"; exit 1; }
GW=$GW_URL GWPID=$GW_PID

# ---- helpers ----
diag() { echo "# $*"; }
ULID='^[0-9A-HJKMNP-TV-Z]{26}$'
# http NAME METHOD PATH [CURL ARGS]: one request to $URL (default: the main gateway); the
# status in $st, the body in $R/NAME.body, the headers in $R/NAME.hdr.
http() {
  local name=$1 method=$2 path=$3; shift 3
  st=$(curl -sS -m 20 -o "$R/$name.body" -D "$R/$name.hdr" -w '%{http_code}' -X "$method" "$@" \
    "${URL:-$GW}$path" 2>"$R/$name.err") || st=000
}
# post NAME PATH BODY [CURL ARGS]: POST a JSON body.
post() { local name=$1 path=$2 data=$3; shift 3; http "$name" POST "$path" -H 'Content-Type: application/json' --data-binary "$data" "$@"; }
bearer() { printf 'Authorization: Bearer %s' "$1"; }
hdr() { { tr -d '\r' <"$R/$1.hdr"; } 2>/dev/null | sed -n "s/^$2: *//Ip" | tail -n 1; }
# jqb NAME FILTER [JQ ARGS]: FILTER on NAME's body is true.
jqb() { local name=$1 f=$2; shift 2; jq -e "$@" "$f" "$R/$name.body" >/dev/null 2>&1; }
jqs() { jq -e -s "$@" >/dev/null 2>&1; } # FILTER FILE: FILTER on FILE's lines as one array is true
field() { jq -r "$2 // empty" "$R/$1.body" 2>/dev/null; }
short() { head -c "${2:-300}" "$R/$1.body" 2>/dev/null | tr '\n' ' '; }
# expect_error WHAT NAME STATUS CODE [FIELD [EXTRA JQ FILTER]]: the answer to NAME is STATUS
# with Content-Type application/json and exactly {"error":{"code","message"[,"field"]}}.
expect_error() {
  local what=$1 name=$2 status=$3 code=$4 fld=${5:-} extra=${6:-true}
  local f='keys == ["error"] and (.error | type) == "object" and .error.code == $c
    and (.error.message | type) == "string" and (.error.message | length) > 0
    and ((.error | keys) - ["code", "message", "field"]) == []'
  if [ -n "$fld" ]; then f="$f and .error.field == \$fd"; else f="$f and (.error | has(\"field\") | not)"; fi
  if [ "$st" = "$status" ] && [[ "$(hdr "$name" Content-Type)" == application/json* ]] &&
    [[ "$(hdr "$name" X-Request-Id)" =~ $ULID ]] &&
    jqb "$name" "($f) and ($extra)" --arg c "$code" --arg fd "$fld"; then
    ok "$what: $status $code"
  else
    not_ok "$what: $status $code"
    diag "expected $status {\"error\":{\"code\":\"$code\"${fld:+,\"field\":\"$fld\"}}} (and $extra) with X-Request-Id, got $st $(hdr "$name" Content-Type) X-Request-Id '$(hdr "$name" X-Request-Id)': $(short "$name")"
  fi
}
# kafka NAME TOPIC [ARGS]: every record of TOPIC so far, one JSON per line, into $R/NAME.kafka.
kafka() {
  local name=$1 topic=$2; shift 2
  timeout 60 "$tail_bin" --kafka-brokers "$KAFKA_BROKERS" --topic "$topic" --from-beginning --until-end \
    --timeout 30 --quiet "$@" >"$R/$name.kafka" 2>"$R/$name.kerr"
}
# many NAME CONNS [URL]: gwclient with $R/NAME.req, answers in $R/NAME.out.
many() {
  timeout 120 "$gwclient" "${3:-$GW}" "$2" <"$R/$1.req" >"$R/$1.out" 2>"$R/$1.err" ||
    diag "gwclient $1 exited $?: $(head -c 300 "$R/$1.err" | tr '\n' ' ')"
}
# count NAME FILTER: how many answers of NAME pass FILTER.
count() { jq -s "map(select($2)) | length" "$R/$1.out" 2>/dev/null || echo -1; }
days() { TZ=Asia/Shanghai date -d "$1" +%F; }
yymmdd() { TZ=Asia/Shanghai date +%y%m%d; }
alive() { kill -0 "$1" 2>/dev/null && curl -fsS -m 5 -o /dev/null "$2/healthz"; }

# CaseSubmitted.idempotency_key carries the key as the gateway scopes it (services/gateway/
# store.c): the hex SHA-256 of "<endpoint number>\n<key>", 0 being POST /v1/cases.
idem_hash() { printf '%s\n%s' "$1" "$2" | sha256sum | cut -d' ' -f1; }
day0=$(yymmdd)
past=$(days '4 days ago') today=$(days today) future=$(days '2 days')

# ======== 1. every channel and the tenant API create cases; Kafka has them as sent ========
# The projection of a CaseSubmitted record that the checks compare ("" or null: not set).
proj='{n: length} + (.[0] | {key, case_id: .event.meta.case_id, site: .event.meta.site_id,
  tenant: (.event.meta.tenant_id // ""), producer: .event.meta.producer} + (.event.case_submitted | {
  case_no, channel, text, reply_by_ms, phone: (.customer.phone // ""), name: (.customer.name // ""),
  recorded_by: (.recorded_by // ""), loc_tenant: (.location.tenant_id // ""), floor: (.location.floor // ""),
  unit: (.location.unit // ""), brand: (.location.brand // ""), detail: (.location.detail // ""),
  pdate: (.purchase.date // ""), amount: (.purchase.amount_cents // null), currency: (.purchase.currency // ""),
  receipt_no: (.purchase.receipt_no // ""), warranty: (.purchase.under_warranty // false),
  request: (.customer_request // ""), type_hint: (.type_hint // ""), category_hint: (.category_hint // ""),
  external_ref: (.external_ref // ""), language: (.language // ""), stops_trading: (.stops_trading // false),
  idem: (.idempotency_key // "")}))'
defaults='{n: 1, producer: "gateway", tenant: "", phone: "", name: "", recorded_by: "", loc_tenant: "",
  floor: "", unit: "", brand: "", detail: "", pdate: "", amount: null, currency: "", receipt_no: "",
  warranty: false, request: "", type_hint: "", category_hint: "", external_ref: "", language: "zh",
  stops_trading: false, idem: ""}'

# intake NAME PATH TOKEN BODY EXPECT [CURL ARGS]: POST BODY (with Bearer TOKEN unless "-");
# checks the 202 answer, then the one Kafka record with the case id as key against EXPECT (the
# request's fields as the record must carry them).
intake() {
  local name=$1 path=$2 token=$3 data=$4 expect=$5; shift 5
  local auth=()
  [ "$token" != - ] && auth=(-H "$(bearer "$token")")
  post "$name" "$path" "$data" "${auth[@]}" "$@"
  local site id no rb rbms
  site=$(jq -r .site <<<"$expect")
  id=$(field "$name" .case_id) no=$(field "$name" .case_no) rb=$(field "$name" .reply_by) rbms=$(field "$name" .reply_by_ms)
  local day1; day1=$(yymmdd)
  # reply_by is the same instant as reply_by_ms, in the site's zone (+08:00)
  local rb_s; rb_s=$(date -d "$rb" +%s 2>/dev/null || echo x)
  if [ "$st" = 202 ] && [[ "$id" =~ $ULID ]] && [[ "$no" =~ ^$site-($day0|$day1)-[0-9]{4,}$ ]] &&
    jqb "$name" '.status == "received" and .site == $s and (keys | sort) == ["case_id","case_no","reply_by","reply_by_ms","site","status"]' --arg s "$site" &&
    [[ "$rb" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+08:00$ ]] &&
    [ "$rb_s" = "$((rbms / 1000))" ] && [ "$rbms" -gt "$(( $(date +%s) * 1000 ))" ]; then
    ok "$name: 202 with case_id, case_no $no, status received, reply_by in the future ($rb)"
  else
    not_ok "$name: 202 with case_id, case_no <SITE>-<YYMMDD>-<seq>, reply_by"
    diag "expected 202 {case_id, case_no $site-$day0-NNNN, status received, site $site, reply_by +08:00 = reply_by_ms}, got $st: $(short "$name")"
    return
  fi
  kafka "$name" casewire.intake.v1 --key "$id" --unmasked
  local got want
  got=$(jq -c -s "$proj" "$R/$name.kafka" 2>/dev/null)
  want=$(jq -c -n --argjson e "$expect" --arg id "$id" --arg no "$no" --argjson rb "$rbms" \
    "$defaults + \$e + {key: \$id, case_id: \$id, case_no: \$no, reply_by_ms: \$rb, loc_tenant: (\$e.tenant // \"\")}")
  if [ -n "$got" ] && jq -e -n --argjson g "$got" --argjson w "$want" '$g == $w' >/dev/null; then
    ok "$name: casewire.intake.v1 has one CaseSubmitted keyed $id, every field as sent"
  else
    not_ok "$name: casewire.intake.v1 has one CaseSubmitted keyed $id, every field as sent"
    [ -n "$got" ] && diag "differs (want, got): $(jq -c -n --argjson g "$got" --argjson w "$want" \
      '[$w + $g | keys[] as $k | select($w[$k] != $g[$k]) | {($k): [$w[$k], $g[$k]]}] | add')"
    diag "want: $want"
    diag "got:  ${got:-nothing ($(head -c 200 "$R/$name.kerr"))}"
  fi
}

intake web /v1/cases - "$(jq -cn --arg d "$past" '{site: "SH01", channel: "web", text: "在3楼买的保温杯漏水，要求退货",
  customer: {name: "张三", phone: "13800138000", language: "zh"},
  location: {floor: "3F", unit: "3F-12", tenant: "T-SH01-0312", detail: "东侧电梯旁"},
  purchase: {date: $d, amount: "199.00", currency: "CNY", receipt_no: "R20261120-0001", order_no: null, under_warranty: true},
  request: "退货退款", type_hint: "complaint", category_hint: "product_quality", external_ref: "WB-778812"}')" \
  "$(jq -cn --arg d "$past" '{site: "SH01", channel: "web", text: "在3楼买的保温杯漏水，要求退货", name: "张三",
  phone: "+8613800138000", tenant: "T-SH01-0312", floor: "3F", unit: "3F-12", brand: "悦茶坊", detail: "东侧电梯旁",
  pdate: $d, amount: 19900, currency: "CNY", receipt_no: "R20261120-0001", warranty: true, request: "退货退款",
  type_hint: "complaint", category_hint: "product_quality", external_ref: "WB-778812"} + {idem: $h}' --arg h "$(idem_hash 0 web-key-1)")" \
  -H 'Idempotency-Key: web-key-1'
intake app /v1/cases - '{"site":"SH02","channel":"app","text":"App 下单的牛奶过期了 (expired milk)",
  "customer":{"phone":"+86 139-1234-5678","language":"en"},"purchase":{"amount":12.34}}' \
  '{"site":"SH02","channel":"app","text":"App 下单的牛奶过期了 (expired milk)","phone":"+8613912345678",
  "language":"en","amount":1234,"currency":"CNY"}'
intake mini_program /v1/cases - '{"site":"HZ01","channel":"mini_program","text":"服务很好 👍 谢谢",
  "customer":{"phone":"0086 137 0013 7000"},"type_hint":"praise"}' \
  '{"site":"HZ01","channel":"mini_program","text":"服务很好 👍 谢谢","phone":"+8613700137000","type_hint":"praise"}'
intake kiosk /v1/cases - "{\"site\":\"SH01\",\"channel\":\"kiosk\",\"text\":\"Toilet on B1 is out of paper\",
  \"customer\":{\"phone\":\"+852 9123 4567\"},\"purchase\":{\"date\":\"$today\",\"amount\":\"0.5\"}}" \
  "{\"site\":\"SH01\",\"channel\":\"kiosk\",\"text\":\"Toilet on B1 is out of paper\",\"phone\":\"+85291234567\",
  \"pdate\":\"$today\",\"amount\":50,\"currency\":\"CNY\"}"
intake service_desk /v1/cases demo-desk_agent-SH01 '{"site":"SH01","channel":"service_desk","text":"顾客到服务台投诉：电梯门夹手",
  "customer":{"name":"李四","phone":"135-0013-5000"}}' \
  '{"site":"SH01","channel":"service_desk","text":"顾客到服务台投诉：电梯门夹手","name":"李四","phone":"+8613500135000","recorded_by":"SH01-S001"}'
intake phone /v1/cases demo-callcenter_agent-SH01 '{"site":"SH01","channel":"phone","text":"来电：停车场收费多收了10元",
  "customer":{"phone":"15000150000"},"category_hint":"parking"}' \
  '{"site":"SH01","channel":"phone","text":"来电：停车场收费多收了10元","phone":"+8615000150000","recorded_by":"SH01-S005","category_hint":"parking"}'
intake email /v1/cases demo-desk_agent-SH01 '{"site":"SH01","channel":"email","text":"邮件：会员积分没有到账"}' \
  '{"site":"SH01","channel":"email","text":"邮件：会员积分没有到账","recorded_by":"SH01-S001"}'
intake letter /v1/cases demo-desk_agent-SH02 '{"site":"SH02","channel":"letter","text":"来信：建议增加无障碍通道","customer":{"name":"王五"},
  "type_hint":"suggestion"}' \
  '{"site":"SH02","channel":"letter","text":"来信：建议增加无障碍通道","name":"王五","recorded_by":"SH02-S001","type_hint":"suggestion"}'
intake regulator /v1/cases demo-callcenter_agent-HQ '{"site":"HZ01","channel":"regulator","text":"12315转办：化妆品过敏",
  "customer":{"phone":"18900189000"},"external_ref":"12315-2026-0001"}' \
  '{"site":"HZ01","channel":"regulator","text":"12315转办：化妆品过敏","phone":"+8618900189000","recorded_by":"HQ-S010","external_ref":"12315-2026-0001"}'
intake social_media /v1/cases demo-callcenter_agent-SH01 '{"site":"SH01","channel":"social_media","text":"微博：周末停车排队一小时"}' \
  '{"site":"SH01","channel":"social_media","text":"微博：周末停车排队一小时","recorded_by":"SH01-S005"}'
intake tenant_api /v1/tenant/cases demo-tenant-T-SH01-0312 '{"text":"店铺停电，无法营业","stops_trading":true,
  "customer":{"name":"钱小姐","phone":"13900000312"},"location":{"detail":"后仓配电箱"}}' \
  '{"site":"SH01","channel":"tenant_api","text":"店铺停电，无法营业","stops_trading":true,"name":"钱小姐",
  "phone":"+8613900000312","tenant":"T-SH01-0312","floor":"3F","unit":"3F-12","brand":"悦茶坊","detail":"后仓配电箱"}'

SD=$(field service_desk .case_id) SDNO=$(field service_desk .case_no)
WEB=$(field web .case_id) WEBNO=$(field web .case_no)
TA=$(field tenant_api .case_id)

# ---- staff actions on the service-desk case: acknowledge, resolve, follow up, close ----
# act NAME TOKEN ID BODY WANT_STATUS: a staff action answered 202 with the case's new status.
act() {
  local name=$1 token=$2 id=$3 data=$4 want=$5
  post "$name" "/v1/cases/$id/events" "$data" -H "$(bearer "$token")"
  if [ "$st" = 202 ] && jqb "$name" '.status == $w and .case_id == $c and .case_no == $n and (.event_id | test($u))' \
    --arg w "$want" --arg c "$SD" --arg n "$SDNO" --arg u "$ULID"; then
    ok "staff action $name: 202, status $want"
  else
    not_ok "staff action $name: 202, status $want"; diag "got $st: $(short "$name")"
  fi
}
post close_early "/v1/cases/$SD/events" '{"action":"close"}' -H "$(bearer demo-desk_agent-SH01)"
expect_error "close before resolve" close_early 409 invalid_transition action '.error.message | test("received")'
act ev_ack demo-desk_agent-SH01 "$SD" '{"action":"acknowledge","note":"已联系顾客"}' acknowledged
act ev_resolve demo-callcenter_agent-SH01 "$SDNO" '{"action":"resolve","note":"已更换电梯门感应器"}' resolved
post close_nofollow "/v1/cases/$SD/events" '{"action":"close"}' -H "$(bearer demo-desk_agent-SH01)"
expect_error "close of a resolved case without a follow-up outcome" close_nofollow 409 invalid_transition action
act ev_followup demo-callcenter_agent-SH01 "$SD" '{"action":"followup","outcome":"satisfied","note":"回访满意"}' resolved
act ev_close demo-desk_agent-SH01 "$SD" '{"action":"close"}' closed
post ack_closed "/v1/cases/$SD/events" '{"action":"acknowledge"}' -H "$(bearer demo-desk_agent-SH01)"
expect_error "acknowledge of a closed case" ack_closed 409 invalid_transition action '.error.message | test("closed")'

kafka events casewire.cases.v1 --key "$SD"
got=$(jq -c -s 'map({action: .event.case_event.action, actor: .event.case_event.actor_id, kind: .event.case_event.actor_kind,
  outcome: (.event.case_event.outcome // ""), note: (.event.case_event.note // ""), event_id: .event.meta.event_id,
  site: .event.meta.site_id, key})' "$R/events.kafka" 2>/dev/null)
want=$(jq -c -n --arg k "$SD" --arg e1 "$(field ev_ack .event_id)" --arg e2 "$(field ev_resolve .event_id)" \
  --arg e3 "$(field ev_followup .event_id)" --arg e4 "$(field ev_close .event_id)" '[
  {action: "acknowledge", actor: "SH01-S001", kind: "staff", outcome: "", note: "已联系顾客", event_id: $e1, site: "SH01", key: $k},
  {action: "resolve", actor: "SH01-S005", kind: "staff", outcome: "", note: "已更换电梯门感应器", event_id: $e2, site: "SH01", key: $k},
  {action: "followup", actor: "SH01-S005", kind: "staff", outcome: "satisfied", note: "回访满意", event_id: $e3, site: "SH01", key: $k},
  {action: "close", actor: "SH01-S001", kind: "staff", outcome: "", note: "", event_id: $e4, site: "SH01", key: $k}]')
if [ -n "$got" ] && jq -e -n --argjson g "$got" --argjson w "$want" '$g == $w' >/dev/null; then
  ok "casewire.cases.v1: the 4 staff actions in order, with action, actor, outcome and event ids of the answers"
else
  not_ok "casewire.cases.v1: the 4 staff actions in order with action and actor"; diag "want: $want"; diag "got:  $got"
fi

# ---- a tenant acts on its own case; group staff act on any site's case ----
post tenant_ack "/v1/tenant/cases/$TA/events" '{"action":"acknowledge","note":"电工已到场"}' -H "$(bearer demo-tenant-T-SH01-0312)"
check "tenant acknowledges its own case: 202, status acknowledged (got $st)" jqb tenant_ack '.status == "acknowledged" and .case_id == $c' --arg c "$TA"
kafka tenant_ev casewire.cases.v1 --key "$TA"
check "casewire.cases.v1: the tenant's action with actor_kind tenant and the tenant as actor" \
  jqs 'length == 1 and .[0].event.case_event.action == "acknowledge" and .[0].event.case_event.actor_kind == "tenant"
    and .[0].event.case_event.actor_id == "T-SH01-0312" and .[0].event.meta.tenant_id == "T-SH01-0312"' "$R/tenant_ev.kafka"
post tenant_close "/v1/tenant/cases/$TA/events" '{"action":"close"}' -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "a tenant may not close" tenant_close 422 validation_failed action
post hq_ack "/v1/cases/$WEBNO/events" '{"action":"acknowledge"}' -H "$(bearer demo-callcenter_agent-HQ)"
check "group staff (HQ) acknowledge an SH01 case by case number: 202 (got $st)" jqb hq_ack '.status == "acknowledged" and .case_id == $c' --arg c "$WEB"

# ======== 2. every error status from a real request ========
good_web='{"site":"SH01","channel":"web","text":"a valid case","customer":{"phone":"13800138000"}}'
post e_malformed /v1/cases '{"site":"SH01","channel":'
expect_error "truncated JSON" e_malformed 400 malformed_json
post e_array /v1/cases '[1,2,3]'
expect_error "a JSON array, not an object" e_array 400 malformed_json
post e_dupkey /v1/cases '{"site":"SH01","site":"SH02","channel":"web","text":"t","customer":{"phone":"13800138000"}}'
expect_error "a duplicate key in an object" e_dupkey 400 malformed_json
printf '{"site":"SH01","channel":"web","text":"bad \xff\xfe bytes","customer":{"phone":"13800138000"}}' >"$R/bad_utf8.json"
post e_utf8 /v1/cases "@$R/bad_utf8.json"
expect_error "raw \\xff in a string" e_utf8 400 invalid_utf8
post e_idemlong /v1/cases "$good_web" -H "Idempotency-Key: $(printf 'k%.0s' $(seq 129))"
expect_error "Idempotency-Key of 129 characters" e_idemlong 400 bad_request Idempotency-Key
http e_badquery GET '/v1/tenant/cases?limit=0' -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant list with limit=0" e_badquery 400 bad_request limit

staff_case='{"site":"SH01","channel":"service_desk","text":"desk case","customer":{"phone":"13800138000"}}'
post e_notoken /v1/cases "$staff_case"
expect_error "staff channel without a token" e_notoken 401 unauthorized
post e_badtoken /v1/cases "$staff_case" -H "$(bearer demo-nobody-SH01)"
expect_error "staff channel with an unknown token" e_badtoken 401 unauthorized
post e_basic /v1/cases "$staff_case" -H 'Authorization: Basic ZGVtbzpkZW1v'
expect_error "Authorization that is not Bearer" e_basic 401 unauthorized
post e_pubbad /v1/cases "$good_web" -H "$(bearer demo-nobody-SH01)"
expect_error "an unknown token on a public channel (where none is needed)" e_pubbad 401 unauthorized
post e_tenantkey "/v1/cases/$WEB/events" '{"action":"note","note":"x"}' -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant key on the staff events endpoint" e_tenantkey 401 unauthorized "" '.error.message | test("tenant")'
post e_tenantcase /v1/cases "$staff_case" -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant key on POST /v1/cases" e_tenantcase 401 unauthorized "" '.error.message | test("tenant")'
post e_evnoauth "/v1/cases/$WEB/events" '{"action":"note","note":"x"}'
expect_error "staff events endpoint without a token" e_evnoauth 401 unauthorized
http e_stafftenant GET /v1/tenant/cases -H "$(bearer demo-desk_agent-SH01)"
expect_error "staff token on the tenant API" e_stafftenant 401 unauthorized
http e_tenantnokey GET /v1/tenant/cases
expect_error "tenant API without a key" e_tenantnokey 401 unauthorized

post e_othersite /v1/cases "$staff_case" -H "$(bearer demo-desk_agent-SH02)"
expect_error "SH02 staff record a case for SH01" e_othersite 403 forbidden site

http e_path GET /v1/nope
expect_error "unknown path" e_path 404 not_found
http e_path2 GET "/v1/cases/$WEBNO/history"
expect_error "unknown sub-path of a case" e_path2 404 not_found
NOCASE=01JDQ8W1T4X9V3M6K2ZP0R7YHB
post e_nocase "/v1/cases/$NOCASE/events" '{"action":"acknowledge"}' -H "$(bearer demo-desk_agent-SH01)"
expect_error "staff action on a case that does not exist" e_nocase 404 not_found
http e_nocase_t GET "/v1/tenant/cases/$NOCASE" -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant reads a case that does not exist" e_nocase_t 404 not_found
http e_lookup_wrong GET "/v1/cases/$WEBNO?phone_last4=1234"
expect_error "status lookup with the wrong phone_last4" e_lookup_wrong 404 not_found
http e_lookup_none GET "/v1/cases/$WEBNO"
expect_error "status lookup without phone_last4" e_lookup_none 404 not_found

# GET /v1/cases is the staff console's list (reports.sh): without a token, 401.
http e_list GET /v1/cases
expect_error "GET /v1/cases without a staff token" e_list 401 unauthorized
for m in "DELETE /v1/cases GET, POST" "PUT /v1/cases GET, POST" "PUT /v1/tenant/cases GET, POST" \
  "GET /v1/cases/$WEB/events POST" "POST /v1/sites GET" "PATCH /v1/tenant/cases/$TA GET"; do
  read -r meth path allow <<<"$m"
  http e_405 "$meth" "$path"
  expect_error "$meth $path" e_405 405 method_not_allowed
  check "$meth $path: Allow: $allow (got '$(hdr e_405 Allow)')" test "$(hdr e_405 Allow)" = "$allow"
done

post e_idem1 /v1/cases "$good_web" -H 'Idempotency-Key: conflict-key-1'
post e_idem2 /v1/cases '{"site":"SH01","channel":"web","text":"another case","customer":{"phone":"13800138000"}}' \
  -H 'Idempotency-Key: conflict-key-1'
if [ "$(jq -r .status "$R/e_idem1.body" 2>/dev/null)" = received ]; then
  expect_error "same Idempotency-Key, different body" e_idem2 409 idempotency_conflict
else
  not_ok "same Idempotency-Key, different body: 409 idempotency_conflict"; diag "the first request was not accepted: $(short e_idem1)"
fi

jq -cn '{site: "SH01", channel: "web", text: ("x" * 70000), customer: {phone: "13800138000"}}' >"$R/big.json"
post e_big /v1/cases "@$R/big.json"
expect_error "a body of $(wc -c <"$R/big.json") bytes (limit 65536)" e_big 413 payload_too_large
# over twice the limit libevent refuses the body unread (not JSON, docs/openapi.json says so)
jq -cn '{site: "SH01", channel: "web", text: ("x" * 140000), customer: {phone: "13800138000"}}' >"$R/huge.json"
post e_huge /v1/cases "@$R/huge.json"
check "a body of $(wc -c <"$R/huge.json") bytes (over twice the limit): 413 (got $st)" test "$st" = 413
http e_plain POST /v1/cases -H 'Content-Type: text/plain' --data-binary "$good_web"
expect_error "Content-Type text/plain" e_plain 415 unsupported_media_type
http e_noct POST /v1/cases -H 'Content-Type:' --data-binary "$good_web"
expect_error "no Content-Type" e_noct 415 unsupported_media_type

v422() { # WHAT NAME BODY CODE FIELD [EXTRA]
  post "$2" /v1/cases "$3"
  expect_error "$1" "$2" 422 "$4" "$5" "${6:-true}"
}
v422 "unknown site" e_site '{"site":"XX99","channel":"web","text":"t","customer":{"phone":"13800138000"}}' validation_failed site
v422 "unknown channel" e_channel '{"site":"SH01","channel":"fax","text":"t","customer":{"phone":"13800138000"}}' validation_failed channel
v422 "bad phone number" e_phone '{"site":"SH01","channel":"web","text":"t","customer":{"phone":"12345"}}' validation_failed customer.phone
v422 "public channel without a phone" e_nophone '{"site":"SH01","channel":"web","text":"t"}' validation_failed customer.phone
v422 "empty text (spaces only)" e_empty '{"site":"SH01","channel":"web","text":"   ","customer":{"phone":"13800138000"}}' validation_failed text
v422 "missing text" e_notext '{"site":"SH01","channel":"web","customer":{"phone":"13800138000"}}' validation_failed text
t4000=$(printf '%4000s' '' | sed 's/ /字/g')
v422 "text of 4001 characters" e_long "$(jq -cn --arg t "${t4000}x" '{site: "SH01", channel: "web", text: $t, customer: {phone: "13800138000"}}')" \
  validation_failed text '.error.message | test("4001")'
post ok_4000 /v1/cases "$(jq -cn --arg t "$t4000" '{site: "SH01", channel: "web", text: $t, customer: {phone: "13800138000"}}')"
check "text of exactly 4000 characters (12000 bytes of Chinese) is accepted: 202 (got $st)" jqb ok_4000 '.status == "received"'
v422 "purchase date in the future ($future)" e_future "{\"site\":\"SH01\",\"channel\":\"web\",\"text\":\"t\",\"customer\":{\"phone\":\"13800138000\"},\"purchase\":{\"date\":\"$future\"}}" \
  validation_failed purchase.date
v422 "purchase amount with 3 decimals" e_amount '{"site":"SH01","channel":"web","text":"t","customer":{"phone":"13800138000"},"purchase":{"amount":"1.234"}}' \
  validation_failed purchase.amount
v422 "unknown top-level field (typo)" e_typo '{"site":"SH01","channel":"web","txet":"t","customer":{"phone":"13800138000"}}' \
  unknown_field txet '.error.message | test("did you mean text")'
v422 "unknown nested field (typo)" e_typo2 '{"site":"SH01","channel":"web","text":"t","customer":{"phnoe":"13800138000"}}' \
  unknown_field customer.phnoe '.error.message | test("did you mean phone")'
v422 "server-owned field status" e_status '{"site":"SH01","channel":"web","text":"t","customer":{"phone":"13800138000"},"status":"closed"}' \
  server_owned_field status
v422 "server-owned field case_no" e_caseno '{"site":"SH01","channel":"web","text":"t","customer":{"phone":"13800138000"},"case_no":"SH01-261124-0001"}' \
  server_owned_field case_no
post e_tsite /v1/tenant/cases '{"text":"t","site":"SH01"}' -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant case with a site" e_tsite 422 server_owned_field site
post e_ttenant /v1/tenant/cases '{"text":"t","location":{"tenant":"T-SH01-0105"}}' -H "$(bearer demo-tenant-T-SH01-0312)"
expect_error "tenant case with location.tenant" e_ttenant 422 server_owned_field location.tenant
post e_tenantapi /v1/cases '{"site":"SH01","channel":"tenant_api","text":"t"}'
expect_error "channel tenant_api on the public endpoint" e_tenantapi 422 validation_failed channel

# ---- 429: a second gateway with 2 public requests a minute per IP ----
main_port=$GW_PORT
unset GW_PORT
if start_gateway "$CW_TMP/gw-rate" CASEWIRE_RATE_IP_PER_MIN=2 CASEWIRE_RATE_IP_BURST=2; then
  RL=$GW_URL RLPID=$GW_PID
  URL=$RL post rl1 /v1/cases "$good_web"; s1=$st
  URL=$RL post rl2 /v1/cases "$good_web"; s2=$st
  URL=$RL post rl3 /v1/cases "$good_web"
  check "rate-limited gateway: the first two public requests are accepted (got $s1 $s2)" test "$s1 $s2" = "202 202"
  expect_error "third public request within the minute" rl3 429 rate_limited
  ra=$(hdr rl3 Retry-After)
  check "429 has Retry-After in seconds, at most the 30 s a token takes at 2 a minute (got '$ra')" \
    sh -c "[ -n '$ra' ] && [ '$ra' -ge 1 ] && [ '$ra' -le 30 ]"
  URL=$RL http rl4 GET "/v1/cases/$WEBNO?phone_last4=8000"
  expect_error "status lookup from the same IP is limited too" rl4 429 rate_limited
  URL=$RL post rl5 /v1/cases "$staff_case" -H "$(bearer demo-desk_agent-SH01)"
  check "staff requests are not limited per IP: 202 (got $st)" test "$st" = 202
  check "the rate-limited gateway is still up" alive "$RLPID" "$RL"
  check_stops "rate-limited gateway" "$RLPID" 15
else
  not_ok "second gateway (rate limits) starts"
fi
GW_PORT=$main_port
check "gateway still running after every error above" alive "$GWPID" "$GW"

# ======== 3. tenant isolation: B's 100 cases are invisible and untouchable for A ========
KA=demo-tenant-T-SH01-0312 KB=demo-tenant-T-SH01-0105
jq -cn --arg k "Bearer $KB" 'range(100) as $i | {m: "POST", p: "/v1/tenant/cases", h: {Authorization: $k},
  b: ({text: "B 商户请求 #\($i)", customer: {phone: "13900000105"}} | tojson)}' >"$R/b_create.req"
many b_create 8
check "tenant B creates 100 cases: 100 x 202 (got $(count b_create '.status == 202'))" test "$(count b_create '.status == 202')" = 100
jq -r 'select(.status == 202) | .body.case_id' "$R/b_create.out" >"$R/b_ids"
jq -r 'select(.status == 202) | .body.case_no' "$R/b_create.out" >"$R/b_nos"
check "100 distinct case ids for B" test "$(sort -u "$R/b_ids" | wc -l)" = 100

jq -cn --rawfile ids "$R/b_ids" --rawfile nos "$R/b_nos" --arg k "Bearer $KA" '
  ($ids | split("\n") | map(select(. != ""))) as $i | ($nos | split("\n") | map(select(. != ""))) as $n |
  ($i + $n)[] as $x | {m: "GET", p: "/v1/tenant/cases/\($x)", h: {Authorization: $k}}' >"$R/a_get.req"
jq -cn --rawfile ids "$R/b_ids" --rawfile nos "$R/b_nos" --arg k "Bearer $KA" '
  ($ids | split("\n") | map(select(. != ""))) as $i | ($nos | split("\n") | map(select(. != ""))) as $n |
  ($i + $n)[] as $x | ({m: "POST", p: "/v1/tenant/cases/\($x)/events", h: {Authorization: $k}, b: {action: "acknowledge", note: "不是我的"}},
                      {m: "POST", p: "/v1/tenant/cases/\($x)/events", h: {Authorization: $k}, b: {action: "resolve"}})' >"$R/a_ev.req"
many a_get 8
many a_ev 8
post ref_ev "/v1/tenant/cases/$NOCASE/events" '{"action":"acknowledge","note":"不是我的"}' -H "$(bearer $KA)"
ref_get=$(jq -c .error "$R/e_nocase_t.body") ref_ev=$(jq -c .error "$R/ref_ev.body")
n=$(count a_get ".status == 404 and (.body.error | tojson) == $(jq -n --arg s "$ref_get" '$s')")
check "A reads B's cases by id and by number: 200/200 answered 404, the same body as a case that does not exist (got $n)" test "$n" = 200
n=$(count a_ev ".status == 404 and (.body.error | tojson) == $(jq -n --arg s "$ref_ev" '$s')")
check "A acknowledges and resolves B's cases by id and by number: 400/400 answered 404 like a case that does not exist (got $n)" test "$n" = 400

# A's whole list, every page: none of B's cases; A's own case and the complaint about A are there
alist() { # NAME TOKEN QUERY: every page into $R/NAME.ids (case ids, in order); pages in $R/NAME.pages
  local name=$1 token=$2 q=$3 cursor="" i
  : >"$R/$name.ids"; : >"$R/$name.pages"
  for i in $(seq 1 30); do
    http "$name.p$i" GET "/v1/tenant/cases?$q${cursor:+&cursor=$cursor}" -H "$(bearer "$token")"
    [ "$st" = 200 ] || { echo "page $i: $st" >>"$R/$name.pages"; return 1; }
    jq -r '.cases[].case_id' "$R/$name.p$i.body" >>"$R/$name.ids"
    jq -r '.cases | length' "$R/$name.p$i.body" >>"$R/$name.pages"
    cursor=$(jq -r '.next_cursor // empty' "$R/$name.p$i.body")
    [ -z "$cursor" ] && jqb "$name.p$i" 'has("next_cursor") and .next_cursor == null' && return 0
  done
  return 1
}
alist a_list "$KA" "limit=200"; arc=$?
leaked=$(grep -cxF -f "$R/b_ids" "$R/a_list.ids")
check "A's list (every page): none of B's 100 cases (found $leaked)" sh -c "[ $arc -eq 0 ] && [ $leaked -eq 0 ]"
check "A's list has A's own request and the complaint about A's shop" \
  sh -c "grep -qx '$TA' '$R/a_list.ids' && grep -qx '$WEB' '$R/a_list.ids'"

jq -cn --rawfile ids "$R/b_ids" --arg k "Bearer $KB" '$ids | split("\n")[] | select(. != "") |
  {m: "GET", p: "/v1/tenant/cases/\(.)", h: {Authorization: $k}}' >"$R/b_get.req"
many b_get 8
n=$(count b_get '.status == 200 and .body.status == "received" and (.body.updated_at == .body.received_at)')
check "B's view of its 100 cases unchanged: 200, status received, never updated (got $n)" test "$n" = 100
alist b_list "$KB" "limit=200"
check "B's list has all 100" test "$(grep -cxF -f "$R/b_ids" "$R/b_list.ids")" = 100
kafka iso casewire.cases.v1
n=$(jq -r .key "$R/iso.kafka" | grep -cxF -f "$R/b_ids")
check "casewire.cases.v1: no CaseEvent for any of B's 100 cases (found $n among $(wc -l <"$R/iso.kafka") records)" \
  sh -c "[ $n -eq 0 ] && grep -q '\"key\":\"$SD\"' '$R/iso.kafka'"

# staff of another site
post s_other "/v1/cases/$WEB/events" '{"action":"note","note":"x"}' -H "$(bearer demo-desk_agent-SH02)"
expect_error "SH02 staff act on an SH01 case by id" s_other 404 not_found "" ".error == $(jq -c .error "$R/e_nocase.body")"
post s_other2 "/v1/cases/$WEBNO/events" '{"action":"resolve"}' -H "$(bearer demo-store_manager-SH02)"
expect_error "SH02 staff act on an SH01 case by number" s_other2 404 not_found
post s_same "/v1/cases/$WEB/events" '{"action":"note","note":"跟进中"}' -H "$(bearer demo-desk_agent-SH01)"
check "SH01 staff act on the same case: 202 (got $st)" test "$st" = 202

# ======== 4. idempotency: 1,000 keys, each sent twice ========
run=$$
jq -cn --arg r "$run" 'range(1000) as $i | {m: "POST", p: "/v1/cases", h: {"Idempotency-Key": "idem-\($r)-\($i)"},
  b: ({site: (["SH01", "SH02", "HZ01"][$i % 3]), channel: (["web", "app", "mini_program", "kiosk"][$i % 4]),
       text: "幂等测试 \($i)", customer: {phone: "138\(10000000 + $i)"}} | tojson)}' >"$R/idem.req"
t0=$(date +%s%N)
many idem 32; cp "$R/idem.out" "$R/idem1.out"
many idem 32; cp "$R/idem.out" "$R/idem2.out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "round 1: 1,000 x 202 (got $(count idem1 '.status == 202'))" test "$(count idem1 '.status == 202')" = 1000
check "round 2 (same keys, same bodies): 1,000 x 202 (got $(count idem2 '.status == 202'))" test "$(count idem2 '.status == 202')" = 1000
check "2,000 requests over 32 keep-alive connections took ${ms} ms (under 60 s)" test "$ms" -lt 60000
n=$(jq -r '.body.case_id' "$R/idem1.out" | grep -E "$ULID" | sort -u | wc -l)
check "1,000 distinct case ids (got $n)" test "$n" = 1000
check "1,000 distinct case numbers" test "$(jq -r '.body.case_no' "$R/idem1.out" | sort -u | wc -l)" = 1000
n=$(jq -n --slurpfile a "$R/idem1.out" --slurpfile b "$R/idem2.out" '[range(1000) as $i | select($a[$i].body == $b[$i].body)] | length')
check "each pair identical: same case id, case number and reply_by (got $n/1000)" test "$n" = 1000
kafka idem casewire.intake.v1
# Each request's text is unique: every record of these requests, deduplicated by key, must be
# one of the 1,000 answered cases, and every request must have exactly one case.
jq -c 'select(.event.case_submitted.text // "" | startswith("幂等测试 ")) | [.event.case_submitted.text, .key]' \
  "$R/idem.kafka" | sort -u >"$R/idem.kafka.pairs"
jq -c '["幂等测试 \(.i)", .body.case_id]' "$R/idem1.out" | sort -u >"$R/idem.http.pairs"
nrec=$(jq -r 'select(.event.case_submitted.text // "" | startswith("幂等测试 ")) | .key' "$R/idem.kafka" | wc -l)
nkeys=$(jq -r '.[1]' "$R/idem.kafka.pairs" | sort -u | wc -l)
check "casewire.intake.v1: after dedupe by key exactly 1,000 cases, the ones answered, one per request ($nrec records, $nkeys keys)" \
  sh -c "[ $nkeys -eq 1000 ] && [ \$(wc -l <'$R/idem.kafka.pairs') -eq 1000 ] && cmp -s '$R/idem.kafka.pairs' '$R/idem.http.pairs'"

# the same key twice at once: one case; the loser waits (409 request_in_progress, Retry-After: 1)
jq -cn --arg r "$run" 'range(50) as $i | range(2) | {m: "POST", p: "/v1/cases", h: {"Idempotency-Key": "dup-\($r)-\($i)"},
  b: ({site: "SH01", channel: "web", text: "并发重复 \($i)", customer: {phone: "13700000000"}} | tojson)}' >"$R/dup.req"
many dup 100
n=$(count dup '.status == 202 or (.status == 409 and .body.error.code == "request_in_progress" and .retry_after == "1")')
check "50 keys sent twice at once: each answer 202 or 409 request_in_progress with Retry-After: 1 (got $n/100)" test "$n" = 100
many dup 10; cp "$R/dup.out" "$R/dup2.out"
n=$(jq -s 'map(select(.status == 202)) | group_by(.i / 2 | floor) | map(map(.body.case_id) | unique | length) | select(all(. == 1)) | length' "$R/dup2.out")
check "after the race, retries give every key one case (keys with one case id: $n/50)" \
  sh -c "[ '$n' = 50 ] && [ \$(jq -r 'select(.status == 202) | .body.case_id' '$R/dup2.out' '$R/dup.out' | sort -u | wc -l) -eq 50 ]"

# ======== 5. the customer's status lookup; tenant list paging ========
KNO=$(field kiosk .case_no)
http lk_ok GET "/v1/cases/$KNO?phone_last4=4567"
check "status lookup with the right digits: 200, case_no, site, status received, times; nothing else (got $st)" \
  jqb lk_ok '(keys | sort) == ["case_no","received_at","reply_by","site","status","updated_at"] and .case_no == $n and .site == "SH01" and .status == "received" and .reply_by == $rb' \
  --arg n "$KNO" --arg rb "$(field kiosk .reply_by)"
check "status lookup shows no name or phone" sh -c "! grep -qE '9123|phone|name' '$R/lk_ok.body'"
http lk_closed GET "/v1/cases/$SDNO?phone_last4=5000"
check "status lookup of the desk case shows it closed (got $(field lk_closed .status))" jqb lk_closed '.status == "closed" and .updated_at >= .received_at'
http lk_wrong GET "/v1/cases/$KNO?phone_last4=4568"
expect_error "status lookup, wrong digits" lk_wrong 404 not_found "" ".error == $(jq -c .error "$R/e_lookup_wrong.body")"
http lk_none GET "/v1/cases/SH01-$day0-99999?phone_last4=4567"
check "a case number that does not exist: the same 404" sh -c "[ $st = 404 ] && cmp -s '$R/lk_none.body' '$R/lk_wrong.body'"
http lk_noph GET "/v1/cases/$(field email .case_no)?phone_last4=0000"
expect_error "status lookup of a case recorded without a phone" lk_noph 404 not_found
# lockout: a fresh case, 10 wrong tries, then 429 even with the right digits
post lock /v1/cases '{"site":"SH02","channel":"web","text":"lockout","customer":{"phone":"13811112222"}}'
LNO=$(field lock .case_no)
fails=0
for i in $(seq 1 10); do http "lk$i" GET "/v1/cases/$LNO?phone_last4=$((1000 + i))"; [ "$st" = 404 ] && fails=$((fails + 1)); done
check "10 wrong tries: 10 x 404 (got $fails)" test "$fails" = 10
http lk11 GET "/v1/cases/$LNO?phone_last4=1011"
expect_error "11th wrong try" lk11 429 rate_limited
check "the 429 has Retry-After up to an hour (got '$(hdr lk11 Retry-After)')" \
  sh -c "ra='$(hdr lk11 Retry-After)'; [ -n \"\$ra\" ] && [ \"\$ra\" -ge 1 ] && [ \"\$ra\" -le 3600 ]"
http lk12 GET "/v1/cases/$LNO?phone_last4=2222"
expect_error "then even the right digits" lk12 429 rate_limited
http lk_other GET "/v1/cases/$KNO?phone_last4=4567"
check "the lockout is per case number: another case still answers 200 (got $st)" test "$st" = 200

# tenant list: 25 cases of tenant C, pages of 10
KC=demo-tenant-T-SH01-0520
jq -cn --arg k "Bearer $KC" 'range(25) as $i | {m: "POST", p: "/v1/tenant/cases", h: {Authorization: $k},
  b: ({text: "C 商户请求 #\($i)"} | tojson)}' >"$R/c_create.req"
many c_create 5
jq -r 'select(.status == 202) | .body.case_id' "$R/c_create.out" | sort >"$R/c_ids"
check "tenant C creates 25 cases" test "$(sort -u "$R/c_ids" | wc -l)" = 25
alist c_pages "$KC" "limit=10"; crc=$?
check "limit=10 over 25 cases: pages of 10, 10, 5, then next_cursor null (got $(tr '\n' ' ' <"$R/c_pages.pages"))" \
  sh -c "[ $crc -eq 0 ] && [ \"\$(tr '\n' ' ' <'$R/c_pages.pages')\" = '10 10 5 ' ]"
check "every case exactly once across the pages" sh -c "[ \$(wc -l <'$R/c_pages.ids') -eq 25 ] && sort '$R/c_pages.ids' | cmp -s - '$R/c_ids'"
cat "$R"/c_pages.p*.body | jq -r '.cases[].received_at' >"$R/c_times"
check "newest first" sh -c "sort -r '$R/c_times' | cmp -s - '$R/c_times'"
head -n 5 "$R/c_ids" >"$R/c_acked"
acks=0
while read -r id; do
  post "c_ack_$id" "/v1/tenant/cases/$id/events" '{"action":"acknowledge"}' -H "$(bearer $KC)"
  [ "$st" = 202 ] && acks=$((acks + 1))
done <"$R/c_acked"
check "C acknowledges 5 of them: 5 x 202 (got $acks)" test "$acks" = 5
alist c_ack "$KC" "status=acknowledged&limit=10"
check "status=acknowledged: exactly those 5" sh -c "sort '$R/c_ack.ids' | cmp -s - '$R/c_acked'"
alist c_rec "$KC" "status=received&limit=10"
check "status=received: the other 20, paged (pages $(tr '\n' ' ' <"$R/c_rec.pages"))" \
  sh -c "[ \$(sort -u '$R/c_rec.ids' | wc -l) -eq 20 ] && [ \$(wc -l <'$R/c_rec.ids') -eq 20 ] && ! grep -qxF -f '$R/c_acked' '$R/c_rec.ids'"
alist c_both "$KC" "status=received,acknowledged&limit=200"
check "status=received,acknowledged: all 25" sh -c "sort '$R/c_both.ids' | cmp -s - '$R/c_ids'"
http c_until GET "/v1/tenant/cases?until=946684800000" -H "$(bearer $KC)"
check "until=2000-01-01 (Unix ms): no cases, next_cursor null" jqb c_until '.cases == [] and .next_cursor == null'

# the tenant's detail view: personal data masked as documented
http t_web GET "/v1/tenant/cases/$WEB" -H "$(bearer $KA)"
# docs/openapi.json: "Every digit of the E.164 number but the last 4 replaced by *"
check "tenant reads the complaint about its shop: text, location, customer masked (张*, *********8000) (got $(jq -c .customer "$R/t_web.body" 2>/dev/null))" \
  jqb t_web '.case_id == $c and .text == "在3楼买的保温杯漏水，要求退货" and .location.detail == "东侧电梯旁" and .customer == {name: "张*", phone: "*********8000"}' --arg c "$WEB"
check "no phone number or full name in clear in the tenant's view" sh -c "! grep -qE '13800138000|张三' '$R/t_web.body'"

# ======== 6. /metrics, /v1/openapi.json, /v1/sites ========
curl -sS -m 10 "$GW/metrics" >"$R/metrics" 2>&1
promtool check metrics <"$R/metrics" >"$R/promtool" 2>&1; prc=$?
check "promtool check metrics passes (exit $prc)" test "$prc" -eq 0
[ "$prc" -eq 0 ] || sed 's/^/# /' "$R/promtool" | head -n 10
series() { grep "^$1{" "$R/metrics" | grep -F "$2" | grep -qF "$3"; }
check "casewire_http_requests_total by route and status: POST /v1/cases 202" series casewire_http_requests_total 'route="POST /v1/cases"' 'status="202"'
for s in 400 401 403 404 405 409 413 415 422; do
  check "casewire_http_requests_total has status $s" sh -c "grep '^casewire_http_requests_total{' '$R/metrics' | grep -q 'status=\"$s\"'"
done
check "casewire_http_request_duration_seconds is a histogram by route" \
  sh -c "grep -q '^# TYPE casewire_http_request_duration_seconds histogram' '$R/metrics' && grep '^casewire_http_request_duration_seconds_bucket{' '$R/metrics' | grep -F 'route=\"GET /v1/tenant/cases\"' | grep -q 'le=\"+Inf\"'"
check "casewire_http_requests_in_flight is a gauge (the scrape itself is not an API request: 0)" \
  sh -c "grep -q '^# TYPE casewire_http_requests_in_flight gauge' '$R/metrics' && grep -qx 'casewire_http_requests_in_flight 0' '$R/metrics'"
check "casewire_kafka_producer_pending is exported" grep -q '^casewire_kafka_producer_pending' "$R/metrics"
http openapi GET /v1/openapi.json
check "/v1/openapi.json: 200, valid JSON, application/json (got $st)" \
  sh -c "[ $st = 200 ] && jq -e '.openapi and .paths' '$R/openapi.body' >/dev/null && case '$(hdr openapi Content-Type)' in application/json*) true;; *) false;; esac"
check "/v1/openapi.json is docs/openapi.json" cmp -s <(jq -S . "$R/openapi.body" 2>&1) <(jq -S . "$CW_ROOT/docs/openapi.json")
st=$(curl -sS -m 10 -I -o /dev/null -w '%{http_code}' "$GW/v1/sites" 2>&1)
check "HEAD /v1/sites: 200 (GET endpoints answer HEAD) (got $st)" test "$st" = 200
http sites GET /v1/sites
check "/v1/sites: SH01, SH02, HZ01 with their time zones" jqb sites '[.sites[] | [.id, .timezone]] == [["SH01","Asia/Shanghai"],["SH02","Asia/Shanghai"],["HZ01","Asia/Shanghai"]]'

# ======== Redis goes away and comes back under the running gateway ========
stop_redis
t0=$(date +%s%N)
post r_down /v1/cases "$good_web" -H 'Idempotency-Key: redis-gone-1'
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_error "POST while Redis is down (${ms} ms)" r_down 503 unavailable
check "the 503 has Retry-After (got '$(hdr r_down Retry-After)') and came within the 5 s reply timeout" \
  sh -c "[ -n '$(hdr r_down Retry-After)' ] && [ $ms -lt 6500 ]"
http r_down_list GET /v1/tenant/cases -H "$(bearer $KA)"
expect_error "tenant list while Redis is down" r_down_list 503 unavailable
if start_redis "$CW_TMP/redis" "$REDIS_PORT"; then
  accepted() { post r_up /v1/cases "$good_web" -H 'Idempotency-Key: redis-gone-1'; [ "$st" = 202 ]; }
  check "Redis back on the same port: the same request is accepted again without a gateway restart" wait_until 30 accepted
  http r_up_lookup GET "/v1/cases/$(field r_up .case_no)?phone_last4=8000"
  check "the data survived: the new case and an old one can be looked up (got $st)" \
    sh -c "[ $st = 200 ] && curl -fsS '$GW/v1/cases/$KNO?phone_last4=4567' | grep -q received"
else
  not_ok "redis starts again on port $REDIS_PORT"
fi

check "the gateway process (pid $GWPID) is still alive and healthy at the end" alive "$GWPID" "$GW"
check_stops "gateway" "$GWPID" 15
check "no sanitizer report in the gateway logs" sh -c "! grep -lE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' '$CW_TMP'/gw*/gateway.log"
diag "gateway_api.sh ran $(( $(date +%s) - started )) s"
