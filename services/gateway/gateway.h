/*
 * The gateway's insides, shared by its files (not a public header).
 *
 *   main.c      setup, routing, credentials, /v1/sites, /v1/openapi.json, shutdown
 *   request.c   one HTTP request's life: reply deadline, answers, metrics
 *   validate.c  the JSON field rules of docs/api.md
 *   intake.c    POST /v1/cases and POST /v1/tenant/cases
 *   events.c    POST /v1/cases/{id}/events and POST /v1/tenant/cases/{id}/events
 *   queries.c   GET /v1/cases/{case_no}, GET /v1/tenant/cases[/{id}]
 *   store.c     the Redis side: Lua scripts and their keys (docs/redis.md)
 *   ratelimit.c token buckets per client IP, phone number and tenant
 *   followup.c  the call-centre queue, claims and the follow-up report
 *   sms.c       SMS delivery receipts, customers' replies, opt-outs
 *   staff.c     who a staff token is (/v1/me), the console's list of a site's cases
 *   reports.c   today at a glance; daily, weekly and monthly reports (JSON and CSV)
 *   console.c   the staff console's files, built into the binary
 *
 * Every write follows the same path: validate, reserve in Redis (idempotency record, case
 * number), produce to Kafka, and only when Kafka's delivery report confirms, commit in Redis
 * and answer 202. A request whose write is not confirmed within the reply timeout is answered
 * 503; the work already started still finishes (or is released) in the background.
 */
#ifndef CW_GATEWAY_H
#define CW_GATEWAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "ids.h"
#include "kafka.h"

struct event;
struct event_base;
struct evhttp_request;
struct cw_redis;
struct cw_redis_script;
struct cw_metric;
struct cw_metrics;
struct cw_calendar;
struct gw_rate;
typedef struct cw_service cw_service;
typedef struct redisReply redisReply;

enum gw_route {
    GW_CASES_POST,
    GW_CASE_STATUS,
    GW_CASE_EVENTS,
    GW_SITES,
    GW_OPENAPI,
    GW_TENANT_CASES_POST,
    GW_TENANT_CASES_LIST,
    GW_TENANT_CASE_GET,
    GW_TENANT_CASE_EVENTS,
    GW_CASE_GET,        /* GET /v1/cases/{id} with a staff token: the whole record */
    GW_CALLBACKS_LIST,  /* GET /v1/callbacks: the call-centre queue of a site */
    GW_CALLBACK_CLAIM,  /* POST /v1/callbacks/{task_id}/claim */
    GW_FOLLOWUP_REPORT, /* GET /v1/reports/follow-up */
    GW_SMS_RECEIPTS,    /* POST /v1/sms/receipts: the provider's, signed */
    GW_SMS_REPLIES,     /* POST /v1/sms/replies: the provider's, signed */
    GW_SMS_OPTOUTS,     /* POST /v1/sms/opt-outs: staff */
    GW_ME,              /* GET /v1/me: who the staff token is */
    GW_DIRECTORY,       /* GET /v1/directory: a site's departments, staff, tenants */
    GW_CASES_LIST,      /* GET /v1/cases: a site's cases with their clocks (staff) */
    GW_REPORT_TODAY,    /* GET /v1/reports/today */
    GW_REPORT_DAILY,    /* GET /v1/reports/daily, weekly, monthly: in this order */
    GW_REPORT_WEEKLY,
    GW_REPORT_MONTHLY,
    GW_CONSOLE, /* GET /console/...: the staff console's files */
    GW_OTHER,
    GW_ROUTE__COUNT
};

enum gw_script {
    GW_S_INTAKE,
    GW_S_INTAKE_COMMIT,
    GW_S_RELEASE,
    GW_S_EVENT,
    GW_S_EVENT_COMMIT,
    GW_S_LOOKUP,
    GW_S_LIST,
    GW_S_GET,
    GW_S_STAFF_GET,
    GW_S_CB_LIST,
    GW_S_CB_CLAIM,
    GW_S_FOLLOWUP_REPORT,
    GW_S_SMS_RECEIPTS,
    GW_S_SMS_OPTOUT,
    GW_S_SMS_REPLY_CODE,
    GW_S_CASES_LIST,
    GW_S_REPORT_IDS,
    GW_S_REPORT_ROWS,
    GW_S_REPORT_FOLLOWUP,
    GW_S_REPORT_OPEN,
    GW_S_LEAST_LOADED,
    GW_S__COUNT
};

#define GW_MAX_STATUS 600

struct gw {
    cw_service *svc;
    struct event_base *base;
    const cw_chain *chain;
    struct cw_calendar *cal;
    struct cw_redis *redis;
    cw_producer *producer;
    struct cw_metrics *metrics;
    struct cw_redis_script *scripts[GW_S__COUNT];
    long long reply_timeout_ms;
    struct gw_rate *rate_ip, *rate_phone, *rate_tenant;
    char *sites_json; /* GET /v1/sites, built once */
    size_t inflight;  /* requests not answered yet */
    size_t working;   /* requests whose background work (Kafka, Redis) is not finished */
    struct cw_metric *requests[GW_ROUTE__COUNT][GW_MAX_STATUS];
    struct cw_metric *latency[GW_ROUTE__COUNT];
    struct cw_metric *cases_accepted, *events_accepted, *rate_limited[3], *unconfirmed;
    struct cw_metric *sms_receipts[3]; /* recorded, duplicate, unknown_task */
};

/* Who is calling. */
enum gw_client_kind { GW_PUBLIC, GW_STAFF, GW_TENANT };

struct gw_req {
    struct gw *gw;
    struct evhttp_request *req; /* NULL once answered */
    enum gw_route route;
    int64_t t0_mono_us;
    int refs;             /* the HTTP side, plus one per callback still to come */
    long long timeout_ms; /* the answer's deadline: 0 for the reply timeout */
    struct event *deadline;
    char request_id[CW_ULID_LEN + 1];
    char client_ip[64];
    enum gw_client_kind client;
    const struct cw_staff *staff;
    const struct cw_tenant *tenant;
    const char *path_id; /* {id} or {case_no} from the path (points into path_buf) */
    char path_buf[96];
    json_t *body;
    char body_sha[65];  /* SHA-256 of the raw body */
    char idem_key[192]; /* Redis key of the idempotency record, "" without Idempotency-Key */
    void *op;           /* the endpoint's own state */
    char *answer;       /* the 202 body, built once: stored with the commit and sent */
    void (*op_free)(void *op);
};

/* ---- request.c ---- */
struct gw_req *gw_req_new(struct gw *gw, struct evhttp_request *req, enum gw_route route);
void gw_req_hold(struct gw_req *r);
void gw_req_release(struct gw_req *r);
/* Starts the reply deadline: no answer within the reply timeout means 503. */
int gw_req_arm(struct gw_req *r);
bool gw_req_open(const struct gw_req *r); /* still waiting for its answer */
/* Each answers (if not answered yet) and releases the HTTP side's reference. body is stolen. */
void gw_reply(struct gw_req *r, int status, json_t *body);
void gw_reply_raw(struct gw_req *r, int status, const char *json, size_t len);
/* The same with another Content-Type (CSV, HTML...), and an optional Content-Disposition
 * (NULL: none); sent byte for byte. */
void gw_reply_typed(struct gw_req *r, int status, const char *content_type, const char *disposition,
                    const char *data, size_t len);
void gw_error(struct gw_req *r, int status, const char *code, const char *message,
              const char *field);
void gw_error_retry(struct gw_req *r, int status, const char *code, const char *message,
                    int retry_after_s);

/* ---- validate.c ---- */
struct gw_verr {
    char field[64];
    char message[256];
    const char *code; /* "validation_failed", "unknown_field", "server_owned_field" */
};
/* Checks that obj has only these keys (NULL-terminated); server-owned ones are named. */
int gw_check_keys(json_t *obj, const char *path, const char *const *allowed, struct gw_verr *e);
/* A string member: NULL when absent or null (and not required), else trimmed length-checked
 * in characters. Returns 0 or -1 with *e filled. */
int gw_get_string(json_t *obj, const char *key, const char *path, size_t max_chars, bool required,
                  const char **out, struct gw_verr *e);
int gw_get_bool(json_t *obj, const char *key, const char *path, int *out, struct gw_verr *e);
/* E.164 out ("+8613800138000") from a mainland mobile or E.164 number. */
int gw_normalize_phone(const char *in, char *out, size_t outlen);
/* "YYYY-MM-DD" -> yyyymmdd, or -1. */
int gw_parse_date(const char *s);
/* A decimal string or number with at most 2 decimals -> cents, or -1. */
int64_t gw_parse_amount(json_t *v);
size_t gw_utf8_chars(const char *s);
/* Prints a formatted message into e, with field path. Returns -1. */
int gw_fail(struct gw_verr *e, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- store.c ---- */
int gw_store_init(struct gw *gw);
/* Runs script s with keys then args (NUL-terminated strings); the callback gets the reply.
 * Holds a reference on r until the callback ran. Returns 0 or a negative cw_redis result. */
int gw_store_run(struct gw_req *r, enum gw_script s, int nkeys, int argc, const char **argv,
                 void (*cb)(struct gw_req *r, const redisReply *reply, const char *err));
/* The idempotency record's key for this client and endpoint, into r->idem_key. */
void gw_store_idem_key(struct gw_req *r, const char *header_value);
/* Answers the idempotency outcomes every write shares (same key, other body: 409; still in
 * flight: 409 with Retry-After; already done: the stored answer) and returns true; false for
 * "new" and "retry", which the caller goes on with. what: "case", "action". */
bool gw_store_idem_answer(struct gw_req *r, const redisReply *reply, const char *what);
/* A write Kafka refused: let the next retry with the key take over at once. */
void gw_store_release(struct gw_req *r);
/* 503 for a refused or failed produce (CW_PRODUCE_* or a delivery error). */
void gw_store_unavailable(struct gw_req *r, int produce_result, const char *what);
/* Element i of an array reply as a string ("" when absent or not a string). */
const char *gw_reply_str(const redisReply *reply, size_t i);

/* ---- ratelimit.c ---- */
/* per_interval tokens every interval_ms, up to burst; 0 per_interval: unlimited. */
struct gw_rate *gw_rate_new(size_t capacity, double per_interval, double interval_ms, double burst);
void gw_rate_free(struct gw_rate *rl);
/* true: allowed. false: *retry_after_s says when one more would be. */
bool gw_rate_take(struct gw_rate *rl, const char *key, int64_t now_ms, int *retry_after_s);

/* ---- the endpoints ---- */
void gw_intake(struct gw_req *r);     /* POST /v1/cases, POST /v1/tenant/cases */
void gw_case_event(struct gw_req *r); /* POST .../events */
/* The follow-up outcome a customer gave by replying to the SMS with a reply code (sms.c). */
void gw_customer_followup(struct gw_req *r, const char *case_id, bool satisfied);
void gw_case_status(struct gw_req *r, const char *phone_last4);
void gw_tenant_list(struct gw_req *r, const char *query);
void gw_tenant_get(struct gw_req *r);
void gw_staff_get(struct gw_req *r); /* GET /v1/cases/{id} with a staff token */
/* followup.c: the call-centre queue and the follow-up report (staff) */
void gw_callbacks_list(struct gw_req *r, const char *query);
void gw_callback_claim(struct gw_req *r);
void gw_followup_report(struct gw_req *r, const char *query);
/* sms.c: delivery receipts and customers' replies (signed by the provider), opt-outs (staff) */
void gw_sms_receipts(struct gw_req *r);
void gw_sms_replies(struct gw_req *r);
void gw_sms_optouts(struct gw_req *r);

/* staff.c: who a token is, a site's cases; who sees and does what */
void gw_me(struct gw_req *r);
void gw_cases_list(struct gw_req *r, const char *query);
void gw_directory(struct gw_req *r, const char *query);
/* Whether staff s works the follow-up of site: its callback department, or its own staff. */
bool gw_may_follow_up(const struct cw_staff *s, const struct cw_site *site);
/* The sites s sees as ",SH01,SH02," into buf ("" and 0: every site); returns how many. */
size_t gw_visible_sites(const struct cw_staff *s, char *buf, size_t len);
/* reports.c */
void gw_report_today(struct gw_req *r, const char *query);
void gw_report_period(struct gw_req *r, const char *query); /* the route says which */
/* console.c: answers GET /console/... (and / redirects there); false when path is not its */
bool gw_console_path(const char *path);
void gw_console_serve(struct gw_req *r, const char *path);

/* ---- main.c helpers used by the endpoints ---- */
/* Parses the body into r->body (an object) and its hash; answers 4xx and returns -1 if not. */
int gw_read_json_body(struct gw_req *r);
/* Rate limits; answers 429 and returns -1 when over. which: 0 ip, 1 phone, 2 tenant. */
int gw_rate_check(struct gw_req *r, int which, const char *key);
/* "2026-11-25T14:03:00+08:00" in the site's zone, or UTC if the site is unknown. */
void gw_format_time(struct gw *gw, const struct cw_site *site, int64_t ms, char *buf, size_t len);

#endif
