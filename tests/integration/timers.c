/*
 * The deadline worker's timer store (services/deadline/timers.c) against a real redis-server;
 * driven by timers.sh.   timers PORT
 *
 * Each check runs one script through the asynchronous client, waits for its reply (with a
 * deadline), then looks at Redis directly with a second, synchronous connection. Due times are
 * set from Redis's own clock (TIME), as the store does. Prints TAP lines; exit 0 when all pass.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "redis.h"
#include "timers.h"

static struct event_base *base;
static cw_redis *R;
static dl_timers *T;
static redisContext *sync_rc;
static int npass, nfail;

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    cond ? npass++ : nfail++;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- one asynchronous call at a time ---- */

static bool replied;
static redisReply *last; /* a copy of the parts the checks read */
static struct dl_claim claimed;
static char claim_ids[64][DL_TIMER_ID_MAX], claim_tokens[64][DL_TOKEN_MAX];
static int apply_result;
static enum dl_fire_result fire_result;
static bool fire_is_check; /* a check answers owner and lease left too */
static char check_owner[64];
static int64_t check_left = -1;
static enum dl_fire_result batch_results[4]; /* a batch's answers, by item */
static size_t batch_answers;
enum kind { APPLY, CLAIM, FIRE, BATCH } expecting;

static void on_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    replied = true;
    (void)last;
    if (!r) {
        printf("# no reply: %s\n", err);
        apply_result = -2;
        fire_result = DL_FIRE_BAD_REPLY;
        claimed.n = 0;
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) printf("# error reply: %s\n", r->str);
    switch (expecting) {
    case APPLY: apply_result = dl_apply_reply(r); break;
    case FIRE:
        fire_result = dl_fire_reply(r);
        check_left = -1;
        check_owner[0] = '\0';
        if (fire_result == DL_FIRE_OK && fire_is_check &&
            dl_check_reply(r, check_owner, sizeof check_owner, &check_left) != DL_FIRE_OK)
            fire_result = DL_FIRE_BAD_REPLY;
        break;
    case BATCH:
        batch_answers = r->type == REDIS_REPLY_ARRAY ? r->elements / 3 : 0;
        for (size_t i = 0; i < batch_answers && i < 4; i++)
            batch_results[i] = dl_fire_reply_at(r, i);
        break;
    case CLAIM:
        if (dl_claim_reply(r, &claimed) != 0) {
            claimed.n = 0;
            claimed.now_ms = -1;
            break;
        }
        for (size_t i = 0; i < claimed.n && i < 64; i++) {
            snprintf(claim_ids[i], sizeof claim_ids[i], "%s", claimed.timers[i].id);
            snprintf(claim_tokens[i], sizeof claim_tokens[i], "%s", claimed.timers[i].token);
        }
        free(claimed.timers);
        claimed.timers = NULL;
        break;
    }
}

/* Runs the loop until the reply came; false after 10 s. */
static bool await_reply(int queued)
{
    if (queued != CW_REDIS_OK) {
        printf("# not queued: %s\n", cw_redis_strerror(queued));
        return false;
    }
    int64_t end = mono_ms() + 10000;
    while (!replied && mono_ms() < end) event_base_loop(base, EVLOOP_ONCE);
    bool ok = replied;
    replied = false;
    return ok;
}

static int apply(const struct dl_change *c)
{
    expecting = APPLY;
    return await_reply(dl_timers_apply(T, c, on_reply, NULL)) ? apply_result : -3;
}

static size_t claim(unsigned shard, unsigned max, int64_t lease_ms)
{
    expecting = CLAIM;
    if (!await_reply(dl_timers_claim(T, shard, max, lease_ms, on_reply, NULL))) return 0;
    return claimed.n;
}

static enum dl_fire_result fire(const char *id, const char *token, bool check_only,
                                int64_t min_left, const struct dl_arm *next)
{
    expecting = FIRE;
    fire_is_check = check_only;
    if (!await_reply(dl_timers_fire(T, id, token, check_only, min_left, next, on_reply, NULL)))
        return DL_FIRE_BAD_REPLY;
    return fire_result;
}

/* ---- looking at Redis directly ---- */

static long long sync_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(sync_rc, fmt, ap);
    va_end(ap);
    long long v = -999;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r && r->type == REDIS_REPLY_STRING) v = strtoll(r->str, NULL, 10);
    if (r && r->type == REDIS_REPLY_NIL) v = -1;
    freeReplyObject(r);
    return v;
}

/* The string reply, "(nil)" or "(?)". */
static const char *sync_str(const char *fmt, ...)
{
    static char buf[512];
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(sync_rc, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "%s",
             r && r->type == REDIS_REPLY_STRING ? r->str
             : r && r->type == REDIS_REPLY_NIL  ? "(nil)"
                                                : "(?)");
    freeReplyObject(r);
    return buf;
}

static int64_t redis_now(void)
{
    redisReply *r = redisCommand(sync_rc, "TIME");
    int64_t ms = r && r->elements == 2 ? strtoll(r->element[0]->str, NULL, 10) * 1000 +
                                             strtoll(r->element[1]->str, NULL, 10) / 1000
                                       : -1;
    freeReplyObject(r);
    return ms;
}

/* A case id of the given shard (ULID-shaped; the store only needs it unique and dot-free). */
static const char *case_in(unsigned shard, int n)
{
    static char id[8][32];
    static int slot;
    char *out = id[slot++ % 8];
    for (int i = 0;; i++) {
        snprintf(out, 32, "01JDTEST%04dX%012d", n, i);
        if (dl_shard_of(out) == shard) return out;
    }
}

#define SHARD 3
#define K(name) "cw:" name ":{cwt:3}"

static void test_ids(void)
{
    int seen[DL_SHARDS] = {0};
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "01JD%022d", i);
        seen[dl_shard_of(id)]++;
    }
    int empty = 0, most = 0;
    for (int s = 0; s < DL_SHARDS; s++) {
        if (!seen[s]) empty++;
        if (seen[s] > most) most = seen[s];
    }
    check(empty == 0 && most < 120, "1000 case ids spread over all %d shards (fullest %d)",
          DL_SHARDS, most);
    char c[32], clock[24], stage[16];
    unsigned gen = 0;
    check(dl_timer_id_parse("01JDX.resolution.12.b3", c, clock, &gen, stage) == 0 &&
              !strcmp(c, "01JDX") && !strcmp(clock, "resolution") && gen == 12 &&
              !strcmp(stage, "b3"),
          "a timer id parses into case, clock, generation and stage");
    const char *bad[] = {"01JDX.resolution.b3", "01JDX.resolution.x.b3",
                         ".handoff.1.b0",       "01JDX..1.b0",
                         "01JDX.handoff.1.",    "01JDX.handoff.1.b0.extra"};
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refused += dl_timer_id_parse(bad[i], c, clock, &gen, stage) != 0;
    check(refused == 6, "malformed timer ids are refused (%d of 6)", refused);
}

static void test_apply(void)
{
    int64_t now = redis_now();
    const char *cs = case_in(SHARD, 1);
    char clk[96], id[DL_TIMER_ID_MAX];
    snprintf(clk, sizeof clk, K("clk") ":%s", cs);
    struct dl_arm arms[] = {{"handoff", "w50", now + 300000, "{\"p\":1}"},
                            {"handoff", "b0", now + 600000, "{\"p\":2}"},
                            {"reply", "b0", now + 86400000, "{\"p\":3}"}};
    struct dl_fact facts[] = {{"owner", "SH01-S001"}, {"site", "SH01"}};
    struct dl_change routed = {
        .event_id = "EV1", .case_id = cs, .arms = arms, .narms = 3, .facts = facts, .nfacts = 2};
    check(apply(&routed) == 1, "routed: applied");
    check(!strcmp(sync_str("HGET %s f:owner", clk), "SH01-S001") &&
              !strcmp(sync_str("HGET %s f:site", clk), "SH01"),
          "routed: the facts given are kept in the clock state");
    check(sync_int("ZCARD " K("due")) == 3 && sync_int("HLEN " K("tmr")) == 3,
          "routed: three timers in the due index with their payloads");
    snprintf(id, sizeof id, "%s.handoff.1.w50", cs);
    check(sync_int("ZSCORE " K("due") " %s", id) == now + 300000 &&
              !strcmp(sync_str("HGET " K("tmr") " %s", id), "{\"p\":1}"),
          "routed: a timer's id is case.clock.generation.stage, its score the due time");
    check(sync_int("HGET %s gen:handoff", clk) == 1 && sync_int("TTL %s", clk) == -1,
          "routed: the hand-off clock is at generation 1; the clock state does not expire");
    check(apply(&routed) == 0 && sync_int("ZCARD " K("due")) == 3,
          "routed again (a redelivery): nothing changes");

    const char *stops[] = {"handoff"};
    struct dl_fact new_owner[] = {{"owner", "SH01-S002"}};
    struct dl_change ack = {.event_id = "EV2",
                            .case_id = cs,
                            .stops = stops,
                            .nstops = 1,
                            .facts = new_owner,
                            .nfacts = 1};
    check(apply(&ack) == 1 && sync_int("ZCARD " K("due")) == 1 && sync_int("HLEN " K("tmr")) == 1 &&
              sync_int("HEXISTS %s on:handoff", clk) == 0,
          "acknowledge: both hand-off timers are cancelled, the reply timer stays");
    check(!strcmp(sync_str("HGET %s f:owner", clk), "SH01-S002"), "a later event changes a fact");

    struct dl_arm again[] = {{"handoff", "b0", now + 600000, "{\"p\":4}"}};
    struct dl_change reassign = {.event_id = "EV3", .case_id = cs, .arms = again, .narms = 1};
    snprintf(id, sizeof id, "%s.handoff.2.b0", cs);
    check(apply(&reassign) == 1 && sync_int("ZSCORE " K("due") " %s", id) == now + 600000,
          "reassign: the hand-off clock restarts as generation 2");

    /* restarting a running clock cancels its current timers */
    struct dl_arm third[] = {{"handoff", "b0", now + 700000, "{\"p\":5}"}};
    struct dl_change again2 = {.event_id = "EV4", .case_id = cs, .arms = third, .narms = 1};
    check(apply(&again2) == 1 && sync_int("ZSCORE " K("due") " %s", id) == -1 &&
              sync_int("ZCARD " K("due")) == 2,
          "restarting a running clock cancels its timers (generation 2 gone, 3 armed)");

    const char *all[] = {"handoff", "reply"};
    struct dl_change close = {.event_id = "EV5", .case_id = cs, .stops = all, .nstops = 2};
    int applied = apply(&close);
    check(applied == 1 && sync_int("ZCARD " K("due")) == 0 && sync_int("HLEN " K("tmr")) == 0 &&
              sync_int("TTL %s", clk) == -1,
          "close: every timer cancelled; the clock state is kept (a closed case may reopen)");
    struct dl_arm reopen_arms[] = {{"handoff", "b0", now + 600000, "{}"}};
    struct dl_change reopen = {.event_id = "EV6", .case_id = cs, .arms = reopen_arms, .narms = 1};
    snprintf(id, sizeof id, "%s.handoff.4.b0", cs);
    check(apply(&reopen) == 1 && sync_int("ZSCORE " K("due") " %s", id) == now + 600000,
          "reopen after close: the clock goes on at generation 4, never reusing a fired id");
    check(apply(&routed) == 0, "the first event, redelivered after all this: still a duplicate");
    struct dl_change close2 = {.event_id = "EV7", .case_id = cs, .stops = all, .nstops = 2};
    check(apply(&close2) == 1 && sync_int("ZCARD " K("due")) == 0, "closed again: shard empty");

    /* ids the store could not read back are refused before Redis */
    struct dl_arm dotted[] = {{"hand.off", "b0", now, "{}"}};
    struct dl_arm staged[] = {{"handoff", "b 0", now, "{}"}};
    struct dl_arm far[] = {{"handoff", "b0", 100000000000000LL, "{}"}};
    struct dl_change bad[] = {
        {.event_id = "B1", .case_id = "01JD.X", .arms = reopen_arms, .narms = 1},
        {.event_id = "B2",
         .case_id = "01JDTHISCASEIDISMUCHTOOLONGFORATIMER",
         .arms = reopen_arms,
         .narms = 1},
        {.event_id = "B3", .case_id = cs, .arms = dotted, .narms = 1},
        {.event_id = "B4", .case_id = cs, .arms = staged, .narms = 1},
        {.event_id = "B5", .case_id = cs, .arms = far, .narms = 1},
        {.event_id = "", .case_id = cs, .arms = reopen_arms, .narms = 1},
    };
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refused += dl_timers_apply(T, &bad[i], on_reply, NULL) == CW_REDIS_BAD_COMMAND;
    check(refused == 6,
          "a dotted or long case id, a dotted clock, a stage with a space, a due time past 2286 "
          "and an empty event id are refused before Redis (%d of 6)",
          refused);
    struct dl_arm many[DL_MAX_ARMS + 1];
    for (int i = 0; i <= DL_MAX_ARMS; i++) many[i] = (struct dl_arm){"reply", "b0", now, "{}"};
    struct dl_change too_many = {
        .event_id = "EV6", .case_id = cs, .arms = many, .narms = DL_MAX_ARMS + 1};
    check(dl_timers_apply(T, &too_many, on_reply, NULL) == CW_REDIS_BAD_COMMAND,
          "more than %d timers in one change is refused before Redis", DL_MAX_ARMS);
}

/* Arms one timer of clock "resolution" due at `due` for case n of SHARD; its id in id. */
static void arm_one(int n, int64_t due, char id[DL_TIMER_ID_MAX])
{
    const char *cs = case_in(SHARD, n);
    char ev[32];
    snprintf(ev, sizeof ev, "ARM%d", n);
    struct dl_arm a[] = {{"resolution", "b0", due, "{\"level\":0}"}};
    struct dl_change c = {.event_id = ev, .case_id = cs, .arms = a, .narms = 1};
    if (apply(&c) != 1) printf("# arm %d failed\n", n);
    snprintf(id, DL_TIMER_ID_MAX, "%s.resolution.1.b0", cs);
}

static void test_claim_and_fire(void)
{
    int64_t now = redis_now();
    char future[DL_TIMER_ID_MAX], due1[DL_TIMER_ID_MAX], due2[DL_TIMER_ID_MAX];
    arm_one(100, now + 3600000, future);
    check(claim(SHARD, 10, 5000) == 0 && claimed.next_ms == now + 3600000,
          "claim: nothing due yet; the shard next needs a worker at the future timer's due time");
    int64_t after = redis_now();
    check(claimed.now_ms >= now && claimed.now_ms <= after,
          "claim: the time it reports is Redis's (TIME), not the caller's");
    check(claim(SHARD + 1, 10, 5000) == 0 && claimed.next_ms == -1,
          "claim: an empty shard reports no next time");

    arm_one(101, now - 5, due1);
    size_t n = claim(SHARD, 10, 5000);
    check(n == 1 && !strcmp(claim_ids[0], due1), "claim: the due timer is taken (%zu)", n);
    char token[DL_TOKEN_MAX];
    snprintf(token, sizeof token, "%s", claim_tokens[0]);
    long long lease_end = sync_int("ZSCORE " K("lease") " %s", due1);
    check(sync_int("ZSCORE " K("due") " %s", due1) == -1 && lease_end >= claimed.now_ms + 5000 &&
              lease_end <= claimed.now_ms + 5000,
          "claim: it left the due index for the lease set, until Redis's now + the lease");
    check(claim(SHARD, 10, 5000) == 0, "claim: a leased timer is not taken again");
    check(fire(due1, token, true, 0, NULL) == DL_FIRE_OK && check_left > 0 && check_left <= 5000 &&
              check_owner[0] == '\0',
          "check: the token holds; it says the lease left (%lld ms) and no owner (none set)",
          (long long)check_left);
    check(fire(due1, token, true, 60000, NULL) == DL_FIRE_LATE,
          "check: less lease left than asked for says late");
    check(fire(due1, "999999", true, 0, NULL) == DL_FIRE_FENCED, "check: another token is fenced");
    struct dl_arm next = {"ignored", "b1", now + 7200000, "{\"level\":1}"};
    char next_id[DL_TIMER_ID_MAX];
    snprintf(next_id, sizeof next_id, "%.*s.b1", (int)(strlen(due1) - 3), due1);
    check(fire(due1, token, false, 0, &next) == DL_FIRE_OK, "commit: done");
    check(sync_int("ZSCORE " K("lease") " %s", due1) == -1 &&
              sync_int("HEXISTS " K("tmr") " %s", due1) == 0 &&
              sync_str("HGET " K("tok") " %s", due1)[0] == 'f' &&
              sync_int("ZSCORE " K("fired") " %s", due1) > 0,
          "commit: the timer is gone from lease and payloads, noted as fired, its token marked "
          "fired");
    check(sync_int("ZSCORE " K("due") " %s", next_id) == now + 7200000,
          "commit: the next level's timer is armed in the same clock and generation (%s)", next_id);
    long long due_before = sync_int("ZCARD " K("due"));
    check(fire(due1, token, false, 0, NULL) == DL_FIRE_OK &&
              sync_int("ZCARD " K("due")) == due_before,
          "commit again (a retry after the reply was lost): ok, its own commit; nothing armed "
          "twice");

    /* a lease that runs out: the timer goes to the next claim under a new token */
    arm_one(102, now - 5, due2);
    int64_t t0 = mono_ms(), end = t0 + 10000;
    check(claim(SHARD, 10, 300) == 1, "claim with a 300 ms lease");
    int64_t first_claim = claimed.now_ms;
    snprintf(token, sizeof token, "%s", claim_tokens[0]);
    size_t got = 0;
    while (mono_ms() < end && !(got = claim(SHARD, 10, 5000))) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    int64_t waited = claimed.now_ms - first_claim; /* on Redis's clock, as the lease is */
    check(got == 1 && !strcmp(claim_ids[0], due2) && waited >= 300,
          "only after the lease ran out (%lld ms on Redis's clock), the next claim takes the timer",
          (long long)waited);
    check(strtoll(claim_tokens[0], NULL, 10) > strtoll(token, NULL, 10),
          "under a newer token (%s after %s)", claim_tokens[0], token);
    char newer[DL_TOKEN_MAX];
    snprintf(newer, sizeof newer, "%s", claim_tokens[0]);
    check(fire(due2, token, true, 0, NULL) == DL_FIRE_FENCED &&
              fire(due2, token, false, 0, NULL) == DL_FIRE_FENCED,
          "the first worker's check and commit are fenced");
    check(fire(due2, newer, false, 0, NULL) == DL_FIRE_OK, "the new holder commits");
    check(fire(due2, token, false, 0, NULL) == DL_FIRE_FENCED,
          "the first worker, continuing after the fire: still fenced, not cancelled");

    /* the clock stops while its timer is claimed */
    char due3[DL_TIMER_ID_MAX];
    arm_one(103, now - 5, due3);
    check(claim(SHARD, 10, 5000) == 1, "claim a third timer");
    snprintf(token, sizeof token, "%s", claim_tokens[0]);
    const char *stops[] = {"resolution"};
    struct dl_change resolve = {
        .event_id = "EV-R", .case_id = case_in(SHARD, 103), .stops = stops, .nstops = 1};
    check(apply(&resolve) == 1 && fire(due3, token, true, 0, NULL) == DL_FIRE_CANCELLED &&
              sync_int("ZSCORE " K("lease") " %s", due3) == -1,
          "its clock stopped meanwhile: cancelled, and the lease is gone with it");

    /* at most max at a time, oldest first */
    char ids[10][DL_TIMER_ID_MAX];
    for (int i = 0; i < 10; i++) arm_one(200 + i, now - 1000 + i, ids[i]);
    size_t a = claim(SHARD, 4, 5000);
    bool oldest = a == 4 && !strcmp(claim_ids[0], ids[0]) && !strcmp(claim_ids[3], ids[3]);
    size_t b = claim(SHARD, 4, 5000), c = claim(SHARD, 4, 5000);
    check(oldest && b == 4 && c == 2, "claim takes at most max, oldest first (%zu, %zu, %zu)", a, b,
          c);

    /* a claim's batch checked and committed in one script run each, one answer per timer */
    struct dl_fire_item items[] = {{claim_ids[0], claim_tokens[0], NULL},
                                   {claim_ids[1], "999999", NULL}};
    expecting = BATCH;
    bool answered = await_reply(dl_timers_fire_batch(T, SHARD, true, 0, items, 2, on_reply, NULL));
    check(answered && batch_answers == 2 && batch_results[0] == DL_FIRE_OK &&
              batch_results[1] == DL_FIRE_FENCED,
          "batch check: an answer per timer (ok, then fenced for the wrong token)");
    items[1].token = claim_tokens[1];
    struct dl_arm lvl1 = {"ignored", "b1", now + 7200000, "{\"level\":1}"};
    items[1].next = &lvl1; /* one commit arms its next level, the other does not */
    char lvl1_id[DL_TIMER_ID_MAX];
    snprintf(lvl1_id, sizeof lvl1_id, "%.*s.b1", (int)(strlen(claim_ids[1]) - 3), claim_ids[1]);
    expecting = BATCH;
    answered = await_reply(dl_timers_fire_batch(T, SHARD, false, 0, items, 2, on_reply, NULL));
    check(answered && batch_answers == 2 && batch_results[0] == DL_FIRE_OK &&
              batch_results[1] == DL_FIRE_OK &&
              sync_int("ZSCORE " K("lease") " %s", claim_ids[0]) == -1 &&
              sync_int("ZSCORE " K("lease") " %s", claim_ids[1]) == -1 &&
              sync_int("ZSCORE " K("due") " %s", lvl1_id) == now + 7200000,
          "batch commit: both committed, both gone from the lease set, the second's next level "
          "armed (%s)",
          lvl1_id);
    struct dl_fire_item other = {case_in(SHARD == 0 ? 1 : 0, 1), "1", NULL};
    char other_id[DL_TIMER_ID_MAX];
    snprintf(other_id, sizeof other_id, "%s.handoff.1.b0", other.id);
    other.id = other_id;
    check(dl_timers_fire_batch(T, SHARD, true, 0, &other, 1, on_reply, NULL) ==
              CW_REDIS_BAD_COMMAND,
          "a batch with a timer of another shard is refused before Redis");
}

static void test_wake(void)
{
    redisContext *sub = redisConnect("127.0.0.1", sync_rc->tcp.port);
    struct timeval tv = {5, 0};
    redisSetTimeout(sub, tv);
    redisReply *r = redisCommand(sub, "SUBSCRIBE " DL_WAKE_CHANNEL);
    freeReplyObject(r);
    int64_t now = redis_now();
    const char *cs = case_in(7, 1);
    struct dl_arm late[] = {{"reply", "b0", now + 900000, "{}"}};
    struct dl_change c1 = {.event_id = "W1", .case_id = cs, .arms = late, .narms = 1};
    apply(&c1); /* the shard's first timer: wakes */
    struct dl_arm later[] = {{"feedback", "b0", now + 990000, "{}"}};
    struct dl_change c2 = {.event_id = "W2", .case_id = cs, .arms = later, .narms = 1};
    apply(&c2); /* later than the head: no message */
    struct dl_arm early[] = {{"handoff", "b0", now + 60000, "{}"}};
    struct dl_change c3 = {.event_id = "W3", .case_id = cs, .arms = early, .narms = 1};
    apply(&c3); /* earlier: wakes */
    char want1[64], want2[64];
    snprintf(want1, sizeof want1, "7 %lld", (long long)(now + 900000));
    snprintf(want2, sizeof want2, "7 %lld", (long long)(now + 60000));
    char got[2][64] = {"", ""};
    for (int i = 0; i < 2; i++) {
        if (redisGetReply(sub, (void **)&r) != REDIS_OK) break;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3)
            snprintf(got[i], sizeof got[i], "%s", r->element[2]->str);
        freeReplyObject(r);
    }
    check(!strcmp(got[0], want1) && !strcmp(got[1], want2),
          "a timer earlier than its shard's head publishes \"shard due\" on " DL_WAKE_CHANNEL
          "; a later one does not (got \"%s\", \"%s\")",
          got[0], got[1]);
    redisFree(sub);
}

static void on_state(void *arg, int ready)
{
    (void)arg;
    if (ready) event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: timers PORT\n");
        return 2;
    }
    cw_log_init("timers", "warn");
    int port = atoi(argv[1]);
    base = event_base_new();
    struct cw_redis_options opt;
    cw_redis_options_init(&opt);
    opt.port = port;
    char err[256];
    if (!base || !(R = cw_redis_new(base, &opt, err, sizeof err)) || !(T = dl_timers_new(R))) {
        fprintf(stderr, "timers: %s\n", err);
        return 1;
    }
    cw_redis_on_state(R, on_state, NULL);
    struct timeval ten = {10, 0};
    event_base_loopexit(base, &ten);
    event_base_dispatch(base);
    sync_rc = redisConnect("127.0.0.1", port);
    if (!cw_redis_is_ready(R) || !sync_rc || sync_rc->err) {
        printf("not ok - connect to redis on port %d\n", port);
        return 1;
    }
    freeReplyObject(redisCommand(sync_rc, "FLUSHDB"));
    test_ids();
    test_apply();
    test_claim_and_fire();
    test_wake();
    printf("# %d passed, %d failed\n", npass, nfail);
    redisFree(sync_rc);
    dl_timers_free(T);
    cw_redis_free(R);
    event_base_free(base);
    return nfail ? 1 : 0;
}
