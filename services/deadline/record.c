#include "record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

/* Both scripts write only into a case that has a record: the gateway and the router create it
 * (docs/redis.md); a case fed straight onto Kafka (the deadline tests, the benchmark) has none.
 * Like the gateway's and the router's scripts, they need one Redis (the case's hash and its
 * history are not under one hash tag). */

/* KEYS: 1 the case's record. ARGV: 1 when the stops occurred (ms), 2 the number of stopped
 * clocks, the stopped clocks, then clock and due ms of each clock started. A stopped clock that
 * is not running in the record (no due:, as for a redelivered stop, or the clocks a close stops
 * that never ran) gets no stopped:. Returns 1, or 0 when the case has no record. */
static const char clocks_lua[] = "local ck = KEYS[1]\n"
                                 "if redis.call('HEXISTS', ck, 'status') == 0 then return 0 end\n"
                                 "local n = tonumber(ARGV[2])\n"
                                 "for i = 3, 2 + n do\n"
                                 "  if redis.call('HDEL', ck, 'due:' .. ARGV[i]) == 1 then\n"
                                 "    redis.call('HSET', ck, 'stopped:' .. ARGV[i], ARGV[1])\n"
                                 "  end\n"
                                 "end\n"
                                 "for i = 3 + n, #ARGV - 1, 2 do\n"
                                 "  redis.call('HSET', ck, 'due:' .. ARGV[i], ARGV[i + 1])\n"
                                 "end\n"
                                 "return 1\n";

/* KEYS: 1 the case's record, 2 its history. ARGV: 1 clock, 2 the breach timer's due ms, 3 the
 * highest level it notified, 4 the history entry. Returns 1, or 0 when the case has no record. */
static const char escalated_lua[] =
    "local ck, hk = KEYS[1], KEYS[2]\n"
    "if redis.call('HEXISTS', ck, 'status') == 0 then return 0 end\n"
    "local clock, at, level = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "redis.call('HSETNX', ck, 'breached:' .. clock, at)\n"
    "local had = tonumber(redis.call('HGET', ck, 'level:' .. clock) or '')\n"
    "if not had or level > had then redis.call('HSET', ck, 'level:' .. clock, ARGV[3]) end\n"
    "redis.call('ZADD', hk, at, ARGV[4])\n"
    "return 1\n";

struct dl_record {
    cw_redis *redis;
    cw_redis_script *clocks, *escalated;
};

dl_record *dl_record_new(cw_redis *r)
{
    dl_record *rec = calloc(1, sizeof *rec);
    if (!rec) return NULL;
    rec->redis = r;
    rec->clocks = cw_redis_script_new(r, clocks_lua);
    rec->escalated = cw_redis_script_new(r, escalated_lua);
    if (!rec->clocks || !rec->escalated) {
        free(rec); /* the scripts belong to the client */
        return NULL;
    }
    return rec;
}

void dl_record_free(dl_record *rec) { free(rec); }

/* A case id or clock the keys and fields can be built from: [A-Za-z0-9_-], 1 to max-1. */
static bool name_ok(const char *s, size_t max)
{
    if (!s) return false;
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    return n > 0 && n < max && s[n] == '\0';
}

/* The clock's own breach: its due time is the clock's. */
static bool is_start(const struct dl_arm *a) { return a->stage && !strcmp(a->stage, "b0"); }

bool dl_record_moves(const struct dl_change *c)
{
    if (c->nstops) return true;
    for (size_t i = 0; i < c->narms; i++)
        if (is_start(&c->arms[i])) return true;
    return false;
}

int dl_record_clocks(dl_record *rec, const struct dl_change *c, int64_t stopped_ms,
                     cw_redis_reply_fn *cb, void *arg)
{
    if (!name_ok(c->case_id, DL_CASE_ID_MAX) || c->nstops > DL_MAX_STOPS || c->narms > DL_MAX_ARMS)
        return CW_REDIS_BAD_COMMAND;
    char key[DL_CASE_ID_MAX + 16], at[24], nstops[8], dues[DL_MAX_ARMS][24];
    snprintf(key, sizeof key, "cw:case:%s", c->case_id);
    snprintf(at, sizeof at, "%lld", (long long)stopped_ms);
    snprintf(nstops, sizeof nstops, "%zu", c->nstops);
    const char *argv[1 + 2 + DL_MAX_STOPS + 2 * DL_MAX_ARMS];
    int argc = 0;
    argv[argc++] = key;
    argv[argc++] = at;
    argv[argc++] = nstops;
    for (size_t i = 0; i < c->nstops; i++) {
        if (!name_ok(c->stops[i], DL_CLOCK_MAX)) return CW_REDIS_BAD_COMMAND;
        argv[argc++] = c->stops[i];
    }
    for (size_t i = 0; i < c->narms; i++) {
        const struct dl_arm *a = &c->arms[i];
        if (!is_start(a)) continue;
        if (!name_ok(a->clock, DL_CLOCK_MAX)) return CW_REDIS_BAD_COMMAND;
        snprintf(dues[i], sizeof dues[i], "%lld", (long long)a->due_ms);
        argv[argc++] = a->clock;
        argv[argc++] = dues[i];
    }
    return cw_redis_script_run(rec->redis, rec->clocks, cb, arg, 1, argc, argv, NULL);
}

char *dl_record_history_entry(const struct dl_payload *pl, const struct dl_firing *f)
{
    const char *clock = cw_clock_name(pl->kind);
    json_t *notified = json_array();
    if (!clock || !notified) goto fail;
    for (size_t i = 0; i < f->fired.n_notified_staff_ids; i++)
        if (json_array_append_new(notified, json_string(f->notified[i])) != 0) goto fail;
    /* "o" takes the reference to notified */
    json_t *h = json_pack("{s:I,s:s,s:s,s:s,s:I,s:o}", "at", (json_int_t)pl->at_ms, "clock", clock,
                          "event", "escalated", "event_id", f->event_id, "level",
                          (json_int_t)f->fired.ladder_level, "notified", notified);
    if (!h) return NULL;
    char *s = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    return s;
fail:
    json_decref(notified);
    return NULL;
}

int dl_record_escalated(dl_record *rec, const char *timer_id, const struct dl_payload *pl,
                        const struct dl_firing *f, cw_redis_reply_fn *cb, void *arg)
{
    char case_id[DL_CASE_ID_MAX], id_clock[DL_CLOCK_MAX], stage[DL_STAGE_MAX];
    unsigned gen;
    const char *clock = cw_clock_name(pl->kind); /* the name in the timer id */
    if (!timer_id || dl_timer_id_parse(timer_id, case_id, id_clock, &gen, stage) != 0 ||
        !name_ok(case_id, DL_CASE_ID_MAX) || !name_ok(clock, DL_CLOCK_MAX))
        return CW_REDIS_BAD_COMMAND;
    char *entry = dl_record_history_entry(pl, f);
    if (!entry) return CW_REDIS_NO_MEMORY;
    char key[DL_CASE_ID_MAX + 16], hkey[DL_CASE_ID_MAX + 24], at[24], level[16];
    snprintf(key, sizeof key, "cw:case:%s", case_id);
    snprintf(hkey, sizeof hkey, "cw:case:%s:history", case_id);
    snprintf(at, sizeof at, "%lld", (long long)pl->at_ms);
    snprintf(level, sizeof level, "%u", (unsigned)f->fired.ladder_level);
    const char *argv[] = {key, hkey, clock, at, level, entry};
    int rc = cw_redis_script_run(rec->redis, rec->escalated, cb, arg, 2, 6, argv, NULL);
    free(entry);
    return rc;
}

int dl_record_reply(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_INTEGER) return -1;
    return r->integer == 1 ? 1 : r->integer == 0 ? 0 : -1;
}
