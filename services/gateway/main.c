/*
 * casewire-gateway: the HTTP front door. Customers (web, app, mini-program, kiosk), desk and
 * call-centre staff and tenant shops' systems create cases and act on them here; every write
 * becomes a protobuf event on Kafka and is answered 202 only once Kafka confirmed it.
 * docs/api.md is the contract; gateway.h maps the files.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "calendar.h"
#include "domain.h"
#include "gateway.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "service.h"
#include "shutdown.h"

extern const unsigned char cw_openapi_json[];
extern const unsigned long cw_openapi_json_len;

#define RATE_TABLE 65536

static const struct cw_service_def def = {
    .name = "gateway",
    .id = CW_SVC_GATEWAY,
    .needs = CW_NEEDS_CHAIN | CW_NEEDS_REDIS | CW_NEEDS_PRODUCER,
};

void gw_format_time(struct gw *gw, const struct cw_site *site, int64_t ms, char *buf, size_t len)
{
    if (site && cw_calendar_format(gw->cal, site, ms, buf, len) > 0) return;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int gw_rate_check(struct gw_req *r, int which, const char *key)
{
    static const char *const what[] = {"requests from this address", "cases for this phone number",
                                       "requests with this API key"};
    struct gw_rate *rl = which == 0   ? r->gw->rate_ip
                         : which == 1 ? r->gw->rate_phone
                                      : r->gw->rate_tenant;
    int retry = 1;
    if (gw_rate_take(rl, key, cw_mono_ms(), &retry)) return 0;
    cw_metric_add(r->gw->rate_limited[which], 1);
    char msg[120];
    snprintf(msg, sizeof msg, "too many %s; retry in %d s", what[which], retry);
    gw_error_retry(r, 429, "rate_limited", msg, retry);
    return -1;
}

static bool is_json(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ') ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int gw_read_json_body(struct gw_req *r)
{
    struct evhttp_request *req = r->req;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    size_t max = cw_httpd_max_body(cw_service_httpd(r->gw->svc));
    if (len > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is %zu bytes; at most %zu are accepted", len, max);
        gw_error(r, 413, "payload_too_large", msg, NULL);
        return -1;
    }
    if (!is_json(evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"))) {
        gw_error(r, 415, "unsupported_media_type",
                 "send the body as Content-Type: application/json", NULL);
        return -1;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t je;
    r->body = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!r->body) {
        bool utf8 = json_error_code(&je) == json_error_invalid_utf8;
        char msg[200];
        snprintf(msg, sizeof msg, "%s at line %d column %d", je.text, je.line, je.column);
        gw_error(r, 400, utf8 ? "invalid_utf8" : "malformed_json", msg, NULL);
        return -1;
    }
    if (!json_is_object(r->body)) {
        gw_error(r, 400, "malformed_json", "the body must be a JSON object", NULL);
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL)) {
        gw_error(r, 500, "internal", "could not hash the body", NULL);
        return -1;
    }
    for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(r->body_sha + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* ---- routing ---- */

struct route_match {
    enum gw_route route;
    const char *allow; /* methods of this path, for 405 */
};

/* path: "/v1/..." without the query. Fills r-less outputs: the route for method m and the
 * {id} segment. */
static struct route_match match(const char *path, enum evhttp_cmd_type m, char *id, size_t idlen)
{
    bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD, post = m == EVHTTP_REQ_POST;
    struct route_match none = {GW_OTHER, NULL};
    const char *rest;
    char seg[96], tail[32];
    id[0] = '\0';
    if (strcmp(path, "/v1/cases") == 0)
        return (struct route_match){post  ? GW_CASES_POST
                                    : get ? GW_CASES_LIST
                                          : GW_OTHER,
                                    "GET, POST"};
    if (strcmp(path, "/v1/me") == 0) return (struct route_match){get ? GW_ME : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/directory") == 0)
        return (struct route_match){get ? GW_DIRECTORY : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/reports/today") == 0)
        return (struct route_match){get ? GW_REPORT_TODAY : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/reports/daily") == 0)
        return (struct route_match){get ? GW_REPORT_DAILY : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/reports/weekly") == 0)
        return (struct route_match){get ? GW_REPORT_WEEKLY : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/reports/monthly") == 0)
        return (struct route_match){get ? GW_REPORT_MONTHLY : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/sites") == 0)
        return (struct route_match){get ? GW_SITES : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/openapi.json") == 0)
        return (struct route_match){get ? GW_OPENAPI : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/tenant/cases") == 0)
        return (struct route_match){post  ? GW_TENANT_CASES_POST
                                    : get ? GW_TENANT_CASES_LIST
                                          : GW_OTHER,
                                    "GET, POST"};
    if (strcmp(path, "/v1/callbacks") == 0)
        return (struct route_match){get ? GW_CALLBACKS_LIST : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/reports/follow-up") == 0)
        return (struct route_match){get ? GW_FOLLOWUP_REPORT : GW_OTHER, "GET"};
    if (strcmp(path, "/v1/sms/receipts") == 0)
        return (struct route_match){post ? GW_SMS_RECEIPTS : GW_OTHER, "POST"};
    if (strcmp(path, "/v1/sms/replies") == 0)
        return (struct route_match){post ? GW_SMS_REPLIES : GW_OTHER, "POST"};
    if (strcmp(path, "/v1/sms/opt-outs") == 0)
        return (struct route_match){post ? GW_SMS_OPTOUTS : GW_OTHER, "POST"};
    if (strncmp(path, "/v1/callbacks/", 14) == 0) {
        int n = 0;
        if (sscanf(path + 14, "%95[A-Za-z0-9-]%n", seg, &n) != 1 || strcmp(path + 14 + n, "/claim"))
            return none;
        snprintf(id, idlen, "%s", seg);
        return (struct route_match){post ? GW_CALLBACK_CLAIM : GW_OTHER, "POST"};
    }
    bool tenant = strncmp(path, "/v1/tenant/cases/", 17) == 0;
    if (tenant)
        rest = path + 17;
    else if (strncmp(path, "/v1/cases/", 10) == 0)
        rest = path + 10;
    else
        return none;
    int n = 0;
    tail[0] = '\0';
    if (sscanf(rest, "%95[A-Za-z0-9-]%n", seg, &n) != 1) return none;
    if (rest[n] && (sscanf(rest + n, "/%31[a-z]", tail) != 1 || strcmp(rest + n + 1, tail) != 0 ||
                    strcmp(tail, "events") != 0))
        return none;
    snprintf(id, idlen, "%s", seg);
    if (tail[0])
        return (struct route_match){
            post ? (tenant ? GW_TENANT_CASE_EVENTS : GW_CASE_EVENTS) : GW_OTHER, "POST"};
    return (struct route_match){get ? (tenant ? GW_TENANT_CASE_GET : GW_CASE_STATUS) : GW_OTHER,
                                "GET"};
}

/* Resolves Authorization: Bearer <secret> to a staff member or a tenant. Returns 0, or -1
 * having answered 401. */
static int authenticate(struct gw_req *r, bool tenant_route, bool required)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    if (!h) {
        if (!required) return 0;
        gw_error(r, 401, "unauthorized",
                 tenant_route ? "send the tenant's API key as Authorization: Bearer <key>"
                              : "send a staff token as Authorization: Bearer <token>",
                 NULL);
        return -1;
    }
    char hash[CW_SHA256_HEX_LEN + 1];
    if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < 8 || strlen(h + 7) > 512 ||
        cw_chain_hash_secret(h + 7, hash) != 0) {
        gw_error(r, 401, "unauthorized", "Authorization must be Bearer <token>", NULL);
        return -1;
    }
    if (tenant_route) {
        const struct cw_tenant *t = cw_chain_tenant_by_key_hash(r->gw->chain, hash);
        if (!t) {
            gw_error(r, 401, "unauthorized", "unknown tenant API key", NULL);
            return -1;
        }
        r->client = GW_TENANT;
        r->tenant = t;
        return 0;
    }
    const struct cw_staff *s = cw_chain_staff_by_token_hash(r->gw->chain, hash);
    if (!s) {
        gw_error(r, 401, "unauthorized",
                 cw_chain_tenant_by_key_hash(r->gw->chain, hash)
                     ? "tenant API keys work on /v1/tenant/... only"
                     : "unknown staff token",
                 NULL);
        return -1;
    }
    r->client = GW_STAFF;
    r->staff = s;
    return 0;
}

static int idempotency(struct gw_req *r)
{
    const char *k = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Idempotency-Key");
    if (!k) return 0;
    size_t n = strlen(k);
    bool ok = n >= 1 && n <= 128;
    for (const char *p = k; ok && *p; p++) ok = *p >= 0x21 && *p <= 0x7e;
    if (!ok) {
        gw_error(r, 400, "bad_request",
                 "Idempotency-Key must be 1 to 128 printable ASCII characters", "Idempotency-Key");
        return -1;
    }
    gw_store_idem_key(r, k);
    return 0;
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct gw *gw = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    char id[96];
    struct route_match rm = match(path ? path : "", method, id, sizeof id);
    if (rm.route == GW_OTHER && path && gw_console_path(path)) rm.route = GW_CONSOLE;
    struct gw_req *r = gw_req_new(gw, req, rm.route);
    if (!r) {
        evhttp_send_error(req, 503, "out of memory");
        return;
    }
    snprintf(r->path_buf, sizeof r->path_buf, "%s", id);
    r->path_id = r->path_buf;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon) evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(r->client_ip, sizeof r->client_ip, "%s", addr ? addr : "-");

    if (rm.route == GW_OTHER) {
        if (rm.allow) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", rm.allow);
            char msg[96];
            snprintf(msg, sizeof msg, "this endpoint answers %s", rm.allow);
            gw_error(r, 405, "method_not_allowed", msg, NULL);
        } else {
            gw_error(r, 404, "not_found", "no such endpoint (docs/api.md, GET /v1/openapi.json)",
                     NULL);
        }
        return;
    }
    if (rm.route == GW_SITES) {
        gw_reply_raw(r, 200, gw->sites_json, strlen(gw->sites_json));
        return;
    }
    if (rm.route == GW_OPENAPI) {
        gw_reply_raw(r, 200, (const char *)cw_openapi_json, cw_openapi_json_len);
        return;
    }
    if (rm.route == GW_CONSOLE) { /* static files: the console signs in through the API */
        if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
            gw_error(r, 405, "method_not_allowed", "this endpoint answers GET", NULL);
        } else {
            gw_console_serve(r, path);
        }
        return;
    }

    /* The same path answers the customer's status check and, with a staff token, the staff
     * member's read of the whole record. */
    if (rm.route == GW_CASE_STATUS &&
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"))
        r->route = rm.route = GW_CASE_GET;
    bool tenant_route = rm.route >= GW_TENANT_CASES_POST && rm.route <= GW_TENANT_CASE_EVENTS;
    /* the provider's requests carry a signature, not a token (sms.c) */
    bool provider = rm.route == GW_SMS_RECEIPTS || rm.route == GW_SMS_REPLIES;
    bool post = rm.route == GW_CASES_POST || rm.route == GW_CASE_EVENTS ||
                rm.route == GW_TENANT_CASES_POST || rm.route == GW_TENANT_CASE_EVENTS || provider ||
                rm.route == GW_SMS_OPTOUTS;
    bool needs_credential = tenant_route || rm.route == GW_CASE_EVENTS || rm.route == GW_CASE_GET ||
                            rm.route == GW_CALLBACKS_LIST || rm.route == GW_CALLBACK_CLAIM ||
                            rm.route == GW_FOLLOWUP_REPORT || rm.route == GW_SMS_OPTOUTS ||
                            rm.route == GW_ME || rm.route == GW_DIRECTORY ||
                            rm.route == GW_CASES_LIST ||
                            (rm.route >= GW_REPORT_TODAY && rm.route <= GW_REPORT_MONTHLY);
    if (rm.route != GW_CASE_STATUS && !provider &&
        authenticate(r, tenant_route, needs_credential) != 0)
        return;
    /* a provider posts receipts in bursts from few addresses: its signature is its limit */
    if (r->client == GW_PUBLIC && !provider && gw_rate_check(r, 0, r->client_ip) != 0) return;
    if (r->client == GW_TENANT && gw_rate_check(r, 2, r->tenant->id) != 0) return;
    if (post && (gw_read_json_body(r) != 0 || idempotency(r) != 0)) return;
    /* A provider retries a request under the same webhook-id: the same reply, answered once
     * even when both copies are in flight at once. */
    const char *wid =
        provider ? evhttp_find_header(evhttp_request_get_input_headers(req), "webhook-id") : NULL;
    if (wid && !r->idem_key[0] && *wid && strlen(wid) <= 128) gw_store_idem_key(r, wid);
    /* reports read many cases: they get longer than a write's reply timeout */
    if (rm.route >= GW_REPORT_TODAY && rm.route <= GW_REPORT_MONTHLY) r->timeout_ms = 60000;
    if (gw_req_arm(r) != 0) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    switch (rm.route) {
    case GW_CASES_POST:
    case GW_TENANT_CASES_POST: gw_intake(r); break;
    case GW_CASE_EVENTS:
    case GW_TENANT_CASE_EVENTS: gw_case_event(r); break;
    case GW_CASE_STATUS: {
        struct evkeyvalq q;
        const char *query = evhttp_uri_get_query(uri);
        if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
            gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
            break;
        }
        gw_case_status(r, evhttp_find_header(&q, "phone_last4"));
        evhttp_clear_headers(&q);
        break;
    }
    case GW_TENANT_CASES_LIST: gw_tenant_list(r, evhttp_uri_get_query(uri)); break;
    case GW_TENANT_CASE_GET: gw_tenant_get(r); break;
    case GW_CASE_GET: gw_staff_get(r); break;
    case GW_CALLBACKS_LIST: gw_callbacks_list(r, evhttp_uri_get_query(uri)); break;
    case GW_CALLBACK_CLAIM: gw_callback_claim(r); break;
    case GW_FOLLOWUP_REPORT: gw_followup_report(r, evhttp_uri_get_query(uri)); break;
    case GW_SMS_RECEIPTS: gw_sms_receipts(r); break;
    case GW_SMS_REPLIES: gw_sms_replies(r); break;
    case GW_SMS_OPTOUTS: gw_sms_optouts(r); break;
    case GW_ME: gw_me(r); break;
    case GW_DIRECTORY: gw_directory(r, evhttp_uri_get_query(uri)); break;
    case GW_CASES_LIST: gw_cases_list(r, evhttp_uri_get_query(uri)); break;
    case GW_REPORT_TODAY: gw_report_today(r, evhttp_uri_get_query(uri)); break;
    case GW_REPORT_DAILY:
    case GW_REPORT_WEEKLY:
    case GW_REPORT_MONTHLY: gw_report_period(r, evhttp_uri_get_query(uri)); break;
    default: gw_error(r, 404, "not_found", "no such endpoint", NULL); break;
    }
}

/* ---- setup ---- */

static char *sites_json(const cw_chain *chain)
{
    json_t *sites = json_array();
    for (size_t i = 0; i < cw_chain_site_count(chain); i++) {
        const struct cw_site *s = cw_chain_site_at(chain, i);
        json_array_append_new(sites,
                              json_pack("{s:s,s:s,s:s*,s:s,s:s}", "id", s->id, "name", s->name,
                                        "name_en", s->name_en, "kind", cw_site_kind_name(s->kind),
                                        "timezone", s->timezone));
    }
    json_t *o = json_pack("{s:o}", "sites", sites);
    char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return out;
}

static double metric_inflight(void *arg) { return (double)((struct gw *)arg)->inflight; }

static int drained(void *arg) { return ((struct gw *)arg)->working == 0; }

static int setup(struct gw *gw, cw_service *s)
{
    const cw_config *cfg = cw_service_config(s);
    char err[256];
    gw->svc = s;
    gw->base = cw_service_base(s);
    gw->chain = cw_service_chain(s);
    gw->redis = cw_service_redis(s);
    gw->producer = cw_service_producer(s);
    gw->metrics = cw_service_metrics(s);
    gw->reply_timeout_ms = cw_config_int(cfg, CW_SET_REPLY_TIMEOUT);
    if (!(gw->cal = cw_calendar_new(gw->chain, err, sizeof err))) {
        cw_error("gateway.calendar_failed", "reason=\"%s\"", err);
        return -1;
    }
    double ip_rate = (double)cw_config_int(cfg, CW_SET_RATE_IP_PER_MIN);
    double phone_rate = (double)cw_config_int(cfg, CW_SET_RATE_PHONE_PER_HOUR);
    double tenant_rate = (double)cw_config_int(cfg, CW_SET_RATE_TENANT_PER_MIN);
    gw->rate_ip =
        gw_rate_new(RATE_TABLE, ip_rate, 60000, (double)cw_config_int(cfg, CW_SET_RATE_IP_BURST));
    gw->rate_phone = gw_rate_new(RATE_TABLE, phone_rate, 3600000, phone_rate);
    gw->rate_tenant = gw_rate_new(RATE_TABLE / 16, tenant_rate, 60000, tenant_rate);
    gw->sites_json = sites_json(gw->chain);
    if (!gw->rate_ip || !gw->rate_phone || !gw->rate_tenant || !gw->sites_json ||
        gw_store_init(gw) != 0) {
        cw_error("gateway.setup_failed", "reason=\"out of memory\"");
        return -1;
    }
    struct cw_metrics *m = gw->metrics;
    cw_metrics_gauge_fn(m, "casewire_http_requests_in_flight", "API requests not answered yet",
                        metric_inflight, gw, NULL);
    gw->cases_accepted = cw_metrics_counter(m, "casewire_gateway_cases_accepted_total",
                                            "cases answered 202 after Kafka confirmed them", NULL);
    gw->events_accepted =
        cw_metrics_counter(m, "casewire_gateway_events_accepted_total",
                           "case events answered 202 after Kafka confirmed them", NULL);
    gw->unconfirmed = cw_metrics_counter(
        m, "casewire_gateway_unconfirmed_total",
        "writes answered 503 because Kafka or Redis did not confirm in time", NULL);
    static const char *const limits[] = {"ip", "phone", "tenant"};
    for (int i = 0; i < 3; i++)
        gw->rate_limited[i] =
            cw_metrics_counter(m, "casewire_gateway_rate_limited_total",
                               "requests answered 429, by limit", "limit", limits[i], NULL);
    static const char *const receipt_results[] = {"recorded", "duplicate", "unknown_task"};
    for (int i = 0; i < 3; i++)
        gw->sms_receipts[i] = cw_metrics_counter(m, "casewire_gateway_sms_receipts_total",
                                                 "SMS delivery receipts, by what they changed",
                                                 "result", receipt_results[i], NULL);
    cw_httpd_set_handler(cw_service_httpd(s), handle, gw);
    cw_shutdown_add(cw_service_shutdown(s), CW_STAGE_DRAIN, "gateway-requests", NULL, drained, gw);
    return 0;
}

static void teardown(struct gw *gw)
{
    cw_calendar_free(gw->cal);
    gw_rate_free(gw->rate_ip);
    gw_rate_free(gw->rate_phone);
    gw_rate_free(gw->rate_tenant);
    free(gw->sites_json);
}

int main(int argc, char **argv)
{
    int code = 0;
    cw_service *s = cw_service_new(&def, argc, argv, &code);
    if (!s) return code;
    struct gw gw = {0};
    if (setup(&gw, s) != 0) {
        teardown(&gw);
        cw_service_free(s);
        return 1;
    }
    code = cw_service_run(s);
    /* Requests still waiting on Redis or Kafka are answered by their callbacks while the
     * service frees its clients; their memory goes with the process. */
    cw_service_free(s);
    teardown(&gw);
    return code;
}
