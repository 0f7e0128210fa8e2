/* The outbox's scripts (see outbox.h). Each is one round trip and atomic; a task's state
 * string "state|claim|tries[|ref]" is the only thing they interpret. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_ENV "nt:{nt}:env"
#define K_ST "nt:{nt}:st"
#define K_DUE "nt:{nt}:due"
#define K_DONE "nt:{nt}:done"
#define K_OPTOUT "nt:{nt}:optout" /* operators add hashes by hand until an endpoint exists */

struct nt_outbox {
    cw_redis *redis;
    cw_redis_script *add, *claim, *prepare, *settle, *reschedule;
};

// clang-format off
#define LUA_NOW "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

/* KEYS env st due done [inbox]; ARGV id env due_ms. A staff task is settled at once; its
 * envelope stays, for the console to show what the task is, and is forgotten with its st entry
 * after keep_done_ms; its inbox is the console's to trim. */
static const char add_lua[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end "
    "if KEYS[5] then "
    "  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1]) "
    "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "  redis.call('HSET', KEYS[2], ARGV[1], 'delivered|0|1') "
    "  local t = redis.call('TIME') "
    "  redis.call('ZADD', KEYS[4], t[1] * 1000, ARGV[1]) "
    "  return 1 "
    "end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('HSET', KEYS[2], ARGV[1], 'queued|0|0') "
    "redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) "
    "return 1";

/* KEYS env st due done; ARGV lease_ms max keep_done_ms.
 * Reply: {now, next, id, env, prior, claim, tries, ...}. A task found "calling" or "checking"
 * (an earlier send may have reached the provider) is marked "checking" and reported as
 * "calling": the mark stays until a status answer clears it, also when this claim dies too.
 * Also forgets settled tasks older than keep_done_ms, at most 1000 per claim, so the dedup
 * record stays bounded. */
static const char claim_lua[] = LUA_NOW
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2])) "
    "local out = {now, -1} "
    "for _, id in ipairs(ids) do "
    "  local st = redis.call('HGET', KEYS[2], id) "
    "  local env = redis.call('HGET', KEYS[1], id) "
    "  local state, claim, tries "
    "  if st then state, claim, tries = string.match(st, '^(%a+)|(%d+)|(%d+)') end "
    "  if not env or not state then "
    "    redis.call('ZREM', KEYS[3], id) "
    "  else "
    "    claim = tonumber(claim) + 1 "
    "    local mark = 'sending' "
    "    if state == 'calling' or state == 'checking' then state = 'calling' mark = 'checking' end "
    "    redis.call('HSET', KEYS[2], id, mark .. '|' .. claim .. '|' .. tries) "
    "    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id) "
    "    out[#out + 1] = id out[#out + 1] = env out[#out + 1] = state "
    "    out[#out + 1] = claim out[#out + 1] = tonumber(tries) "
    "  end "
    "end "
    "local nx = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES') "
    "if nx[2] then out[2] = tonumber(nx[2]) end "
    "local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, 1000) "
    "for _, id in ipairs(old) do "
    "  redis.call('HDEL', KEYS[2], id) redis.call('HDEL', KEYS[1], id) redis.call('ZREM', KEYS[4], id) "
    "end "
    "return out";

/* The claim check every write after a claim starts with. */
#define LUA_FENCE \
    "local st = redis.call('HGET', KEYS[1], ARGV[1]) " \
    "if not st then return {'gone'} end " \
    "local state, claim, tries = string.match(st, '^(%a+)|(%d+)|(%d+)') " \
    "if (state ~= 'sending' and state ~= 'calling' and state ~= 'checking') or claim ~= ARGV[2] then " \
    "  return {'fenced'} " \
    "end "

/* KEYS st optout rl; ARGV id claim check_optout per_minute per_hour per_day phone_hash.
 * The task's own earlier stamp goes first: that try never reached the phone (else there would
 * be no new one), and the limits are checked afresh against now. */
static const char prepare_lua[] = LUA_FENCE
    "if ARGV[3] == '1' and redis.call('SISMEMBER', KEYS[2], ARGV[7]) == 1 then return {'optout'} end "
    LUA_NOW
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400000) "
    "redis.call('ZREM', KEYS[3], ARGV[1]) "
    "local wait = 0 "
    "local spans = {60000, 3600000, 86400000} "
    "for i = 1, 3 do "
    "  local lim = tonumber(ARGV[3 + i]) "
    "  if lim > 0 then "
    "    local inside = redis.call('ZRANGEBYSCORE', KEYS[3], now - spans[i] + 1, '+inf', 'WITHSCORES') "
    "    local n = #inside / 2 "
    "    if n >= lim then "
    /* a slot frees when the (n - lim + 1)-th oldest of the window leaves it */
    "      local at = tonumber(inside[2 * (n - lim + 1)]) + spans[i] - now "
    "      if at > wait then wait = at end "
    "    end "
    "  end "
    "end "
    "if wait > 0 then return {'wait', wait} end "
    "redis.call('ZADD', KEYS[3], now, ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[3], 86400000) "
    "redis.call('HSET', KEYS[1], ARGV[1], 'calling|' .. claim .. '|' .. tries) "
    "return {'go'}";

/* KEYS st env due done; ARGV id claim state tries ref */
static const char settle_lua[] = LUA_FENCE LUA_NOW
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. '|' .. claim .. '|' .. ARGV[4] .. '|' .. ARGV[5]) "
    "redis.call('HDEL', KEYS[2], ARGV[1]) "
    "redis.call('ZREM', KEYS[3], ARGV[1]) "
    "redis.call('ZADD', KEYS[4], now, ARGV[1]) "
    "return {'ok'}";

/* KEYS st due; ARGV id claim state tries delay_ms */
static const char reschedule_lua[] = LUA_FENCE LUA_NOW
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. '|' .. claim .. '|' .. ARGV[4]) "
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1]) "
    "return {'ok'}";
// clang-format on

nt_outbox *nt_outbox_new(cw_redis *r)
{
    nt_outbox *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->redis = r;
    o->add = cw_redis_script_new(r, add_lua);
    o->claim = cw_redis_script_new(r, claim_lua);
    o->prepare = cw_redis_script_new(r, prepare_lua);
    o->settle = cw_redis_script_new(r, settle_lua);
    o->reschedule = cw_redis_script_new(r, reschedule_lua);
    if (!o->add || !o->claim || !o->prepare || !o->settle || !o->reschedule) {
        free(o); /* registered scripts belong to the client and go with it */
        return NULL;
    }
    return o;
}

void nt_outbox_free(nt_outbox *o) { free(o); }

int nt_outbox_add(nt_outbox *o, const char *task_id, const void *env, size_t len, int64_t due_ms,
                  const char *inbox_staff, cw_redis_reply_fn *cb, void *arg)
{
    char due[24], inbox[160];
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    const char *argv[8] = {K_ENV, K_ST, K_DUE, K_DONE, inbox, task_id, env, due};
    size_t lens[8] = {strlen(K_ENV),   strlen(K_ST), strlen(K_DUE), strlen(K_DONE), 0,
                      strlen(task_id), len,          strlen(due)};
    int nkeys = 4;
    if (inbox_staff) {
        snprintf(inbox, sizeof inbox, "nt:{nt}:inbox:%s", inbox_staff);
        lens[4] = strlen(inbox);
        nkeys = 5;
    } else { /* the arguments close up over the unused key slot */
        memmove(argv + 4, argv + 5, 3 * sizeof *argv);
        memmove(lens + 4, lens + 5, 3 * sizeof *lens);
    }
    return cw_redis_script_run(o->redis, o->add, cb, arg, nkeys, nkeys + 3, argv, lens);
}

int nt_outbox_claim(nt_outbox *o, int64_t lease_ms, unsigned max, cw_redis_reply_fn *cb, void *arg)
{
    char lease[24], n[16], keep[24];
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    snprintf(n, sizeof n, "%u", max);
    snprintf(keep, sizeof keep, "%lld", NT_KEEP_DONE_MS);
    const char *argv[] = {K_ENV, K_ST, K_DUE, K_DONE, lease, n, keep};
    return cw_redis_script_run(o->redis, o->claim, cb, arg, 4, 7, argv, NULL);
}

static int64_t int_of(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return -1;
}

int nt_outbox_claim_reply(const redisReply *r, struct nt_claimed *out, size_t cap, int64_t *now_ms,
                          int64_t *next_ms)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 5) return -1;
    *now_ms = int_of(r->element[0]);
    *next_ms = int_of(r->element[1]);
    size_t n = (r->elements - 2) / 5;
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) {
        redisReply **e = r->element + 2 + 5 * i;
        if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
            e[2]->type != REDIS_REPLY_STRING)
            return -1;
        out[i] = (struct nt_claimed){.id = e[0]->str,
                                     .env = e[1]->str,
                                     .env_len = e[1]->len,
                                     .prior = e[2]->str,
                                     .claim = (unsigned)int_of(e[3]),
                                     .tries = (unsigned)int_of(e[4])};
    }
    return (int)n;
}

int nt_outbox_prepare(nt_outbox *o, const char *task_id, unsigned claim, const char *phone_hash,
                      int check_optout, const int limits[3], cw_redis_reply_fn *cb, void *arg)
{
    char rl[64], c[16], lim[3][16];
    snprintf(rl, sizeof rl, "nt:{nt}:rl:%s", phone_hash);
    snprintf(c, sizeof c, "%u", claim);
    for (int i = 0; i < 3; i++) snprintf(lim[i], sizeof lim[i], "%d", limits[i]);
    const char *argv[] = {K_ST,   K_OPTOUT, rl,     task_id,   c, check_optout ? "1" : "0",
                          lim[0], lim[1],   lim[2], phone_hash};
    return cw_redis_script_run(o->redis, o->prepare, cb, arg, 3, 10, argv, NULL);
}

int nt_outbox_settle(nt_outbox *o, const char *task_id, unsigned claim, const char *state,
                     unsigned tries, const char *ref, cw_redis_reply_fn *cb, void *arg)
{
    char c[16], t[16];
    snprintf(c, sizeof c, "%u", claim);
    snprintf(t, sizeof t, "%u", tries);
    const char *argv[] = {K_ST, K_ENV, K_DUE, K_DONE, task_id, c, state, t, ref ? ref : ""};
    return cw_redis_script_run(o->redis, o->settle, cb, arg, 4, 9, argv, NULL);
}

int nt_outbox_reschedule(nt_outbox *o, const char *task_id, unsigned claim, const char *state,
                         unsigned tries, int64_t delay_ms, cw_redis_reply_fn *cb, void *arg)
{
    char c[16], t[16], d[24];
    snprintf(c, sizeof c, "%u", claim);
    snprintf(t, sizeof t, "%u", tries);
    snprintf(d, sizeof d, "%lld", (long long)(delay_ms > 0 ? delay_ms : 0));
    const char *argv[] = {K_ST, K_DUE, task_id, c, state, t, d};
    return cw_redis_script_run(o->redis, o->reschedule, cb, arg, 2, 7, argv, NULL);
}
