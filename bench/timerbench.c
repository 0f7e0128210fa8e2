/*
 * timerbench: casewire's half of the deadline benchmark (bench/deadline.sh). Redis from
 * REDIS_URL.
 *
 *   timerbench arm N PER_CASE FIRST_MS SPREAD_MS
 *       arms N timers through the worker's own apply script, PER_CASE (1 to 3) per case in one
 *       script run, as CaseRouted arms a clock's timers: w50, w80, b0 of a hand-off clock at
 *       SH01, with the owner as a fact. A case's first timer is due at Redis's now + FIRST_MS
 *       + its share of SPREAD_MS (evenly spread), its others 1 s apart after it; the case id is
 *       a ULID whose time part is that due time, so that "lateness" can find it again. Up to
 *       1,000 scripts in flight. Prints "armed=N cases=C ms=T" (T: first sent to last answered).
 *
 *   timerbench lateness
 *       reads every shard's fired timers (cw:fired, Redis's time at each commit) and prints
 *       "fired=N early=E p50_ms=.. p99_ms=.. max_ms=..": commit time minus due time, the due
 *       time read back from the case id (so PER_CASE 1 runs only).
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clocks.h"
#include "domain.h"
#include "ids.h"
#include "log.h"
#include "redis.h"
#include "timers.h"

static struct event_base *base;
static cw_redis *redis;
static int pending, failures;

static bool run_until_done(int seconds)
{
    int64_t end = cw_mono_ms() + seconds * 1000LL;
    while (pending > 0 && cw_mono_ms() < end) event_base_loop(base, EVLOOP_ONCE);
    return pending == 0;
}

static int connect_redis(void)
{
    char err[256];
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    if (cw_redis_parse_url(getenv("REDIS_URL") ? getenv("REDIS_URL") : "", &o, err, sizeof err)) {
        fprintf(stderr, "REDIS_URL: %s\n", err);
        return -1;
    }
    o.command_timeout_ms = 30000; /* 16 ZRANGEs of 100k entries each take a while */
    if (!(redis = cw_redis_new(base, &o, err, sizeof err))) {
        fprintf(stderr, "redis: %s\n", err);
        return -1;
    }
    int64_t end = cw_mono_ms() + 10000;
    while (!cw_redis_is_ready(redis) && cw_mono_ms() < end) event_base_loop(base, EVLOOP_ONCE);
    if (!cw_redis_is_ready(redis)) {
        fprintf(stderr, "redis: not ready within 10 s\n");
        return -1;
    }
    return 0;
}

static int64_t redis_now = -1;

static void on_time(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    pending--;
    if (!err && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        redis_now = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
}

static void on_applied(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    pending--;
    if (err || dl_apply_reply(r) != 1) {
        if (failures++ < 5)
            fprintf(stderr, "apply: %s\n",
                    err                            ? err
                    : r->type == REDIS_REPLY_ERROR ? r->str
                                                   : "already applied");
    }
}

static const char *const stages[] = {"w50", "w80", "b0"};
static const int warn_pct[] = {50, 80, 0};

static int arm(long n, int per_case, long long first_ms, long long spread_ms)
{
    if (n <= 0 || per_case < 1 || per_case > 3 || first_ms < 0 || spread_ms < 0) return 2;
    if (connect_redis() != 0) return 1;
    dl_timers *t = dl_timers_new(redis);
    pending = 1;
    if (!t || cw_redis_commandf(redis, on_time, NULL, "TIME") != CW_REDIS_OK ||
        !run_until_done(10) || redis_now < 0) {
        fprintf(stderr, "redis: no TIME\n");
        return 1;
    }
    long cases = (n + per_case - 1) / per_case;
    int64_t first = redis_now + first_ms;
    int64_t t0 = cw_mono_ms();
    long armed = 0;
    for (long c = 0; c < cases; c++) {
        int64_t due = first + (cases > 1 ? spread_ms * c / (cases - 1) : 0);
        uint8_t rnd[10];
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return 1;
        char case_id[CW_ULID_LEN + 1], event_id[CW_ULID_LEN + 1];
        cw_ulid_make(due, rnd, case_id);
        cw_ulid_new(event_id);
        char payloads[3][DL_PAYLOAD_MAX];
        struct dl_arm arms[3];
        int k = 0;
        for (; k < per_case && armed < n; k++, armed++) {
            int64_t at = due + 1000LL * k;
            struct dl_payload pl = {.site = "SH01",
                                    .case_no = "SH01-20261124-000001",
                                    .urgency = CASEWIRE__V1__URGENCY__URGENCY_GENERAL,
                                    .kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF,
                                    .start_ms = due - 60000,
                                    .clock_due_ms = due + 2000,
                                    .at_ms = at,
                                    .span = {CW_TIME_WALL, 62000, 0},
                                    .level = warn_pct[k] ? -1 : 0,
                                    .warn_pct = warn_pct[k]};
            dl_payload_encode(&pl, payloads[k], sizeof payloads[k]);
            arms[k] = (struct dl_arm){"handoff", stages[k], at, payloads[k]};
        }
        struct dl_fact facts[] = {{"site", "SH01"}, {"owner", "SH01-S001"}};
        struct dl_change ch = {.event_id = event_id,
                               .case_id = case_id,
                               .arms = arms,
                               .narms = (size_t)k,
                               .facts = facts,
                               .nfacts = 2};
        while (pending >= 1000) event_base_loop(base, EVLOOP_ONCE);
        if (dl_timers_apply(t, &ch, on_applied, NULL) != CW_REDIS_OK) {
            fprintf(stderr, "apply refused before Redis\n");
            return 1;
        }
        pending++;
    }
    bool done = run_until_done(300);
    int64_t ms = cw_mono_ms() - t0;
    dl_timers_free(t);
    if (!done || failures) {
        fprintf(stderr, "arm: %d failed, %d unanswered\n", failures, pending);
        return 1;
    }
    printf("armed=%ld cases=%ld ms=%lld first=%lld\n", armed, cases, (long long)ms,
           (long long)first);
    return 0;
}

static int64_t *late;
static size_t nlate, caplate;
static long early, unreadable;

static void on_fired(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    pending--;
    if (err || r->type != REDIS_REPLY_ARRAY) {
        failures++;
        return;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        char case_id[CW_ULID_LEN + 1];
        const char *id = r->element[i]->str;
        int64_t due = -1;
        if (strlen(id) > CW_ULID_LEN && id[CW_ULID_LEN] == '.') {
            memcpy(case_id, id, CW_ULID_LEN);
            case_id[CW_ULID_LEN] = '\0';
            due = cw_ulid_time_ms(case_id);
        }
        if (due < 0) {
            unreadable++;
            continue;
        }
        int64_t d = (int64_t)strtod(r->element[i + 1]->str, NULL) - due;
        if (d < 0) early++;
        if (nlate == caplate) {
            caplate = caplate ? caplate * 2 : 65536;
            int64_t *nl = realloc(late, caplate * sizeof *nl);
            if (!nl) {
                failures++;
                return;
            }
            late = nl;
        }
        late[nlate++] = d;
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int lateness(void)
{
    if (connect_redis() != 0) return 1;
    for (unsigned s = 0; s < DL_SHARDS; s++) {
        pending++;
        if (cw_redis_commandf(redis, on_fired, NULL, "ZRANGE cw:fired:{cwt:%u} 0 -1 WITHSCORES",
                              s) != CW_REDIS_OK)
            return 1;
    }
    if (!run_until_done(60) || failures) {
        fprintf(stderr, "lateness: Redis did not answer\n");
        return 1;
    }
    if (nlate > 1) qsort(late, nlate, sizeof *late, cmp64);
    int64_t p50 = nlate ? late[(nlate - 1) / 2] : -1;
    int64_t p99 = nlate ? late[(size_t)((double)(nlate - 1) * 0.99)] : -1;
    int64_t max = nlate ? late[nlate - 1] : -1;
    printf("fired=%zu early=%ld unreadable=%ld p50_ms=%lld p99_ms=%lld max_ms=%lld\n", nlate, early,
           unreadable, (long long)p50, (long long)p99, (long long)max);
    free(late);
    return 0;
}

int main(int argc, char **argv)
{
    cw_log_init("timerbench", "warn");
    if (!(base = event_base_new())) return 1;
    int rc = 2;
    if (argc == 6 && !strcmp(argv[1], "arm"))
        rc = arm(atol(argv[2]), atoi(argv[3]), atoll(argv[4]), atoll(argv[5]));
    else if (argc == 2 && !strcmp(argv[1], "lateness"))
        rc = lateness();
    if (rc == 2)
        fprintf(stderr, "usage: timerbench arm N PER_CASE FIRST_MS SPREAD_MS | lateness\n");
    if (redis) cw_redis_free(redis);
    event_base_free(base);
    return rc;
}
