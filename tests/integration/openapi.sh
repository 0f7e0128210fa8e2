#!/usr/bin/env bash
# docs/openapi.json describes the gateway: it parses, every $ref resolves, every route the
# gateway serves is documented with exactly its methods, every operation has a 4xx answer with
# the Error schema, every POST takes Idempotency-Key, request bodies reject unknown fields. Then
# a real gateway (built by `make` from this very file) serves its bytes at GET /v1/openapi.json,
# and what it answers on a few requests has the shapes the document promises.
# jq only: no node in CI.
source "$CW_ROOT/tests/lib/common.sh"
doc="$CW_ROOT/docs/openapi.json"
gwsrc="$CW_ROOT/services/gateway"

# Every route the gateway serves (services/gateway/main.c match(), common/httpd.c), and only these.
routes=(
  "POST /v1/cases"
  "GET /v1/cases"
  "GET /v1/cases/{case_no}"
  "POST /v1/cases/{id}/events"
  "GET /v1/sites"
  "GET /v1/openapi.json"
  "POST /v1/tenant/cases"
  "GET /v1/tenant/cases"
  "GET /v1/tenant/cases/{id}"
  "POST /v1/tenant/cases/{id}/events"
  "GET /v1/callbacks"
  "POST /v1/callbacks/{task_id}/claim"
  "GET /v1/reports/follow-up"
  "POST /v1/sms/receipts"
  "POST /v1/sms/replies"
  "POST /v1/sms/opt-outs"
  "GET /v1/me"
  "GET /v1/directory"
  "GET /v1/reports/today"
  "GET /v1/reports/daily"
  "GET /v1/reports/weekly"
  "GET /v1/reports/monthly"
  "GET /healthz"
  "GET /readyz"
  "GET /metrics"
)

# jq helpers: resolve a local $ref; every operation as {path, method, op}.
JQ_LIB='
def ptr: .[2:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~"));
def deref($d): if type == "object" and has("$ref") then (."$ref" | ptr) as $p | $d | getpath($p) | deref($d) else . end;
def operations: .paths | to_entries[] | .key as $path | .value | to_entries[]
  | select(.key | IN("get", "put", "post", "delete", "options", "head", "patch", "trace"))
  | {path: $path, method: (.key | ascii_upcase), op: .value};
'
# jqd FILTER: run FILTER (with the helpers, $d the whole document) on the document.
jqd() { jq -r "$JQ_LIB . as \$d | $1" "$doc"; }

# ---- the file itself ----
if jq -e 'type == "object"' "$doc" >/dev/null 2>&1; then ok "docs/openapi.json parses as a JSON object"
else not_ok "docs/openapi.json parses as a JSON object" "$(jq . "$doc" 2>&1 | head -1)"; exit 1; fi

check "it is OpenAPI 3.0.3 with a title and version" \
  test "$(jq -r '[.openapi, (.info.title | type), (.info.version | type)] | join(" ")' "$doc")" = "3.0.3 string string"

unresolved=$(jqd '[.. | objects | select(has("$ref")) | ."$ref"] | unique | .[]
  | select((startswith("#/") | not) or ((ptr) as $p | $d | getpath($p)) == null)' | tr '\n' ' ')
check "every \$ref resolves ($(jqd '[.. | objects | select(has("$ref"))] | length') refs${unresolved:+; unresolved: $unresolved})" \
  test -z "$unresolved"

# ---- routes ----
expected=$(printf '%s\n' "${routes[@]}" | jq -R 'split(" ") | {m: .[0], p: .[1]}' | jq -s -c \
  'group_by(.p) | map({key: .[0].p, value: (map(.m) | sort)}) | from_entries')
documented=$(jqd '[operations | {m: .method, p: .path}] | group_by(.p)
  | map({key: .[0].p, value: (map(.m) | sort)}) | from_entries' | jq -c .)
for path in $(jq -r 'keys[]' <<<"$expected"); do
  want=$(jq -r --arg p "$path" '.[$p] | join(", ")' <<<"$expected")
  got=$(jq -r --arg p "$path" '.[$p] // [] | join(", ")' <<<"$documented")
  check "$path is documented with exactly $want${got:+ (documented: $got)}" test "$want" = "$got"
done
extra=$(jq -r --argjson e "$expected" 'keys - ($e | keys) | join(" ")' <<<"$documented")
check "no path is documented that the gateway does not serve${extra:+ ($extra)}" test -z "$extra"

# The list above keeps up with the gateway: every route its metrics name (request.c) is in it,
# and every path literal of main.c's router begins a documented path.
src_routes=$(grep -oE '"(GET|POST|PUT|PATCH|DELETE) /[^"]*"' "$gwsrc/request.c" | tr -d '"')
missing=""
while IFS= read -r r; do
  [ -n "$r" ] || continue
  # a path parameter's name does not matter: GET /v1/cases/{id} (staff) is GET /v1/cases/{case_no}
  printf '%s\n' "${routes[@]}" | sed 's/{[^}]*}/{}/g' | grep -qxF "$(sed 's/{[^}]*}/{}/g' <<<"$r")" ||
    missing="$missing [$r]"
done <<<"$src_routes"
check "every route of services/gateway/request.c ($(grep -c . <<<"$src_routes")) is in this script's list${missing:+; missing:$missing}" \
  eval '[ -z "$missing" ] && [ "$(grep -c . <<<"$src_routes")" -ge 9 ]'
literals=$(sed -n '/^static struct route_match match(/,/^}/p' "$gwsrc/main.c" | grep -oE '"/v1/[^"]*"' | tr -d '"' | sort -u)
unmatched=""
for l in $literals; do
  jq -e --arg l "$l" 'keys | any(startswith($l))' <<<"$documented" >/dev/null || unmatched="$unmatched $l"
done
check "every path literal of main.c match() ($(echo $literals | wc -w)) begins a documented path${unmatched:+; not:$unmatched}" \
  eval '[ -z "$unmatched" ] && [ "$(echo $literals | wc -w)" -ge 4 ]'

# ---- operations ----
no4xx=$(jqd '[operations | select([.op.responses | to_entries[] | select(.key | test("^4"))
    | .value | deref($d) | .content["application/json"].schema."$ref" == "#/components/schemas/Error"] | any | not)
  | "\(.method) \(.path)"] | join(", ")')
check "every operation has a 4xx answer with the Error schema${no4xx:+ (not: $no4xx)}" test -z "$no4xx"

noidem=$(jqd '[operations | select(.method == "POST")
  | select([.op.parameters // [] | .[] | deref($d) | select(.in == "header" and .name == "Idempotency-Key")] | length == 0)
  | .path] | join(", ")')
check "every POST takes the Idempotency-Key header${noidem:+ (not: $noidem)}" test -z "$noidem"

noretry=$(jqd '[operations | . as $o | .op.responses | to_entries[] | select(.key == "429" or .key == "503")
  | select(.value | deref($d) | (.content["application/json"].schema."$ref" == "#/components/schemas/Error")
      and (.headers["Retry-After"] == null))
  | "\($o.method) \($o.path) \(.key)"] | join(", ")')
check "every 429 and 503 error answer has a Retry-After header${noretry:+ (not: $noretry)}" test -z "$noretry"

# Request bodies: every object schema in them, nested ones too, rejects unknown fields.
open=$(jqd '[operations | select(.op.requestBody) | .op.requestBody | deref($d) | .content["application/json"].schema
  | deref($d) | recurse(.properties // {} | .[] | deref($d))
  | select(.type == "object" and .additionalProperties != false) | .description // "?"] | join(", ")')
nbodies=$(jqd '[operations | select(.op.requestBody)] | length')
check "the $nbodies request bodies, and every object in them, have additionalProperties: false${open:+ (not: $open)}" \
  eval '[ -z "$open" ] && [ "$nbodies" -eq 7 ]'

security=$(jqd '[operations | {key: "\(.method) \(.path)", value: (.op.security | map(keys) | flatten | sort | join(","))}] | from_entries')
sec() { jq -r --arg k "$1" '.[$k]' <<<"$security"; }
check "staffToken and tenantKey are HTTP bearer schemes" \
  test "$(jq -r '[.components.securitySchemes.staffToken, .components.securitySchemes.tenantKey] | map("\(.type)/\(.scheme)") | join(" ")' "$doc")" = "http/bearer http/bearer"
check "POST /v1/cases: staff token optional (security [{}, {staffToken}])" \
  test "$(jq -c '.paths["/v1/cases"].post.security' "$doc")" = '[{},{"staffToken":[]}]'
check "POST /v1/cases/{id}/events needs a staff token" test "$(sec 'POST /v1/cases/{id}/events')" = staffToken
badtenant=$(jq -r 'to_entries[] | select(.key | contains("/v1/tenant/")) | select(.value != "tenantKey") | .key' <<<"$security" | tr '\n' ' ')
check "every /v1/tenant operation needs a tenant key${badtenant:+ (not: $badtenant)}" test -z "$badtenant"

# Every error code and status the gateway's source answers with is documented.
src_codes=$(grep -ohE '(gw_error|gw_error_retry|gw_fail|cw_httpd_reply_error)\([a-z]+, ([0-9]+, )?"[a-z_]+"' \
  "$gwsrc"/*.c "$CW_ROOT/common/httpd.c" | grep -oE '"[a-z_]+"$' | tr -d '"' | sort -u)
enum=$(jq -r '.components.schemas.ErrorCode.enum[]' "$doc")
undoc=$(comm -23 <(echo "$src_codes") <(echo "$enum" | sort -u) | tr '\n' ' ')
check "every error code in the gateway's source ($(echo $src_codes | wc -w)) is in the ErrorCode enum${undoc:+ (missing: $undoc)}" \
  eval '[ -z "$undoc" ] && [ "$(echo $src_codes | wc -w)" -ge 15 ]'
src_status=$(grep -ohE '(gw_error|gw_error_retry)\(r, [0-9]+,' "$gwsrc"/*.c | grep -oE '[0-9]+' | sort -u)
doc_status=$(jqd '[operations | .op.responses | keys[]] | unique | .[]')
undoc=$(comm -23 <(echo "$src_status") <(echo "$doc_status" | sort -u) | tr '\n' ' ')
check "every error status in the gateway's source ($(echo $src_status | tr '\n' ' ')) is documented${undoc:+ (missing: $undoc)}" test -z "$undoc"

# ---- a real gateway ----
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
start_gateway "$CW_TMP/gw" || { not_ok "gateway starts"; exit 1; }
ok "gateway starts and becomes ready"

served="$CW_TMP/served.json"
code=$(curl -sS --max-time 10 -o "$served" -D "$CW_TMP/served.h" -w '%{http_code}' "$GW_URL/v1/openapi.json")
check "GET /v1/openapi.json answers 200 application/json (got $code)" \
  eval '[ "$code" = 200 ] && grep -qi "^content-type: application/json" "$CW_TMP/served.h"'
# Every JSON answer of the gateway ends with a newline of its own (request.c gw_reply_raw), so
# the document served is the file's bytes, plus that newline.
if cmp -s "$served" "$doc"; then
  ok "GET /v1/openapi.json serves exactly the bytes of docs/openapi.json ($(wc -c <"$doc") bytes)"
elif cmp -s "$served" <(cat "$doc"; echo); then
  ok "GET /v1/openapi.json serves the bytes of docs/openapi.json ($(wc -c <"$doc") bytes) and the newline the gateway ends every JSON answer with"
else
  not_ok "GET /v1/openapi.json serves the bytes of docs/openapi.json" \
    "served $(wc -c <"$served") bytes, file $(wc -c <"$doc"); rebuild with make? $(cmp "$served" "$doc" 2>&1 | head -1)"
fi

# call METHOD PATH [CREDENTIAL [BODY]]: the answer's body in $CW_TMP/body, headers in
# $CW_TMP/head; prints the status.
call() {
  local args=(-sS --max-time 10 -o "$CW_TMP/body" -D "$CW_TMP/head" -w '%{http_code}' -X "$1")
  [ -n "${3:-}" ] && args+=(-H "Authorization: Bearer $3")
  [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  curl "${args[@]}" "$GW_URL$2"
}
# conforms SCHEMA: $CW_TMP/body has the schema's required properties and no others.
conforms() {
  jq -e --slurpfile d "$doc" '($d[0].components.schemas[$s]) as $sc
    | type == "object" and ((keys - ($sc.properties | keys)) == []) and ((($sc.required // []) - keys) == [])' \
    --arg s "$1" "$CW_TMP/body" >/dev/null
}
# each_conforms ARRAY SCHEMA: a non-empty .ARRAY, each element with the schema's properties only.
each_conforms() {
  jq -e --slurpfile d "$doc" --arg s "$2" --arg a "$1" '($d[0].components.schemas[$s]) as $sc | (.[$a] | length) > 0
    and all(.[$a][]; ((keys - ($sc.properties | keys)) == []) and ((($sc.required // []) - keys) == []))' \
    "$CW_TMP/body" >/dev/null
}
matches() { jq -e --arg re "$2" ".$1 | type == \"string\" and test(\$re)" "$CW_TMP/body" >/dev/null; }
error_is() { # error_is STATUS CODE: the answer is the Error schema with that code
  [ "$got" = "$1" ] && conforms Error && jq -e --arg c "$2" '.error | keys - ["code", "message", "field"] == [] and .code == $c' \
    "$CW_TMP/body" >/dev/null
}
ULID='^[0-7][0-9A-HJKMNP-TV-Z]{25}$'
CASENO=$(jq -r '.components.schemas.CaseNo.pattern' "$doc")
staff=demo-desk_agent-SH01 tenant=demo-tenant-T-SH01-0312

got=$(call PUT /v1/openapi.json)
check "PUT /v1/openapi.json: 405 method_not_allowed with Allow: GET (got $got)" \
  eval 'error_is 405 method_not_allowed && grep -qi "^allow: GET" "$CW_TMP/head"'
got=$(call POST /healthz)
check "POST /healthz: 405 method_not_allowed with Allow: GET, HEAD (got $got)" \
  eval 'error_is 405 method_not_allowed && grep -qi "^allow: GET, HEAD" "$CW_TMP/head"'
got=$(call GET /v1/no-such-thing)
check "an unknown path: 404 not_found in the Error schema (got $got)" error_is 404 not_found
got=$(call GET /v1/sites)
check "GET /v1/sites: 200 with the SiteList schema, each site with the Site schema (got $got)" \
  eval '[ "$got" = 200 ] && conforms SiteList && each_conforms sites Site'

case='{"site":"SH01","channel":"web","text":"在3楼买的保温杯漏水，要求退货","customer":{"name":"张三","phone":"13800138000"},"location":{"tenant":"T-SH01-0312"}}'
got=$(call POST /v1/cases "" "$case")
check "POST /v1/cases: 202 with the CaseAccepted schema, a ULID case id and a case number of the pattern (got $got)" \
  eval '[ "$got" = 202 ] && conforms CaseAccepted && matches case_id "$ULID" && matches case_no "$CASENO"'
case_no=$(jq -r '.case_no // empty' "$CW_TMP/body") case_id=$(jq -r '.case_id // empty' "$CW_TMP/body")
got=$(call GET "/v1/cases/$case_no?phone_last4=8000")
check "GET /v1/cases/{case_no}: 200 with the CaseStatusView schema (got $got)" eval '[ "$got" = 200 ] && conforms CaseStatusView'
got=$(call POST /v1/cases "" '{"site":"SH01","channel":"web","text":"x","customer":{"phone":"13800138000"},"bogus":1}')
check "an unknown field: 422 unknown_field naming it (got $got)" \
  eval 'error_is 422 unknown_field && jq -e ".error.field == \"bogus\"" "$CW_TMP/body" >/dev/null'
got=$(call POST /v1/cases "" '{"site":"SH01","channel":"phone","text":"x","customer":{"phone":"13800138000"}}')
check "a staff channel without a staff token: 401 unauthorized (got $got)" error_is 401 unauthorized
got=$(call POST "/v1/cases/$case_id/events" "$staff" '{"action":"acknowledge","note":"已联系顾客"}')
check "POST /v1/cases/{id}/events: 202 with the EventAccepted schema (got $got)" \
  eval '[ "$got" = 202 ] && conforms EventAccepted && matches event_id "$ULID"'
got=$(call POST "/v1/cases/$case_id/events" "$staff" '{"action":"reopen"}')
check "an action the status does not allow: 409 invalid_transition (got $got)" error_is 409 invalid_transition
got=$(call GET /v1/tenant/cases "$tenant")
check "GET /v1/tenant/cases: 200 with the TenantCaseList schema, each case a TenantCaseSummary (got $got)" \
  eval '[ "$got" = 200 ] && conforms TenantCaseList && each_conforms cases TenantCaseSummary'
got=$(call GET "/v1/tenant/cases/$case_no" "$tenant")
check "GET /v1/tenant/cases/{id}: 200 with the TenantCase schema (got $got)" eval '[ "$got" = 200 ] && conforms TenantCase'
got=$(call GET "/v1/tenant/cases?limit=0" "$tenant")
check "a bad query parameter: 400 bad_request (got $got)" error_is 400 bad_request
got=$(call GET /v1/tenant/cases "$staff")
check "a staff token on the tenant API: 401 unauthorized (got $got)" error_is 401 unauthorized
# The console's reads (staff.c, reports.c) have the shapes the document promises.
got=$(call GET /v1/me "$staff")
check "GET /v1/me: 200 with the Me schema (got $got)" eval '[ "$got" = 200 ] && conforms Me'
got=$(call GET /v1/directory "$staff")
check "GET /v1/directory: 200 with the Directory schema (got $got)" eval '[ "$got" = 200 ] && conforms Directory'
got=$(call GET "/v1/cases?status=all" "$staff")
check "GET /v1/cases: 200 with the CaseList schema, each case a CaseListItem (got $got)" \
  eval '[ "$got" = 200 ] && conforms CaseList && each_conforms cases CaseListItem'
got=$(call GET /v1/reports/today "$staff")
check "GET /v1/reports/today: 200 with the TodayReport schema (got $got)" eval '[ "$got" = 200 ] && conforms TodayReport'
got=$(call GET /v1/reports/weekly "$staff")
check "GET /v1/reports/weekly: 200 with the PeriodReport schema (got $got)" eval '[ "$got" = 200 ] && conforms PeriodReport'
got=$(call GET "/v1/reports/monthly?site=SH01" "$staff")
check "GET /v1/reports/monthly?site=: 200 with the PeriodReport schema (got $got)" eval '[ "$got" = 200 ] && conforms PeriodReport'
got=$(call GET /v1/me "$tenant")
check "GET /v1/me with a tenant key: 401 unauthorized (got $got)" error_is 401 unauthorized
