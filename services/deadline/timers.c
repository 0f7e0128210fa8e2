#include "timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS of apply, claim and fire: 1 due index, 2 lease set, 3 payloads, 4 tokens, 5 timers fired in
 * the last day (so a worker fenced out can be told its timer was fired, not cancelled), then the
 * case's clock state (apply: one; fire: one per timer). All share the shard's hash tag. */

/* Shared by apply and fire (which define due, lease, tmr, tok and clk first): cancel a clock's
 * timers, arm one timer, wake the workers. */
#define LUA_ARM                                                                                    \
    "local function cancel(clock)\n"                                                               \
    "  local on = redis.call('HGET', clk, 'on:' .. clock)\n"                                       \
    "  if not on then return end\n"                                                                \
    "  for id in string.gmatch(on, '%S+') do\n"                                                    \
    "    redis.call('ZREM', due, id)\n"                                                            \
    "    redis.call('ZREM', lease, id)\n"                                                          \
    "    redis.call('HDEL', tmr, id)\n"                                                            \
    "    redis.call('HDEL', tok, id)\n"                                                            \
    "  end\n"                                                                                      \
    "  redis.call('HDEL', clk, 'on:' .. clock)\n"                                                  \
    "end\n"                                                                                        \
    "local function head()\n"                                                                      \
    "  local h = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')\n"                                  \
    "  return h[2] and tonumber(h[2]) or nil\n"                                                    \
    "end\n"                                                                                        \
    "local function arm(id, clock, at, payload)\n"                                                 \
    "  redis.call('ZADD', due, at, id)\n"                                                          \
    "  redis.call('HSET', tmr, id, payload)\n"                                                     \
    "  local on = redis.call('HGET', clk, 'on:' .. clock)\n"                                       \
    "  redis.call('HSET', clk, 'on:' .. clock, on and (on .. ' ' .. id) or id)\n"                  \
    "end\n" /* a timer earlier than the shard's head: the workers' wake-up timers are too late */  \
    "local function wake(before, earliest)\n"                                                      \
    "  if earliest and (not before or earliest < before) then\n"                                   \
    "    redis.call('PUBLISH', '" DL_WAKE_CHANNEL                                                  \
    "', ARGV[1] .. ' ' .. string.format('%d', earliest))\n"                                        \
    "  end\n"                                                                                      \
    "end\n"

/* ARGV: 1 shard, 2 event id, 3 case id, 4 number of stops, the stopped clocks, the number of
 * arms, then clock, stage, due ms, payload for each, then the number of facts and a name and
 * value for each (kept in the clock state as f:<name>). The case's clock state never expires: it
 * holds the generations and the applied event ids, and a closed case may be reopened (a timer
 * id reused after a reopen would be taken downstream for a redelivery of the first). */
static const char apply_lua[] =
    "local due, lease, tmr, tok, fired, clk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], "
    "KEYS[6]\n" LUA_ARM
    "if redis.call('HEXISTS', clk, 'ev:' .. ARGV[2]) == 1 then return {'dup'} end\n"
    "local i = 4\n"
    "local nstops = tonumber(ARGV[i])\n"
    "for k = 1, nstops do cancel(ARGV[i + k]) end\n"
    "i = i + nstops + 1\n"
    "local narms = tonumber(ARGV[i])\n"
    "i = i + 1\n"
    "local before, earliest, gens = head(), nil, {}\n"
    "for k = 1, narms do\n"
    "  local clock, stage, at, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]\n"
    "  i = i + 4\n"
    "  if not gens[clock] then\n"
    "    cancel(clock)\n"
    "    gens[clock] = redis.call('HINCRBY', clk, 'gen:' .. clock, 1)\n"
    "  end\n"
    "  arm(ARGV[3] .. '.' .. clock .. '.' .. gens[clock] .. '.' .. stage, clock, at, payload)\n"
    "  local n = tonumber(at)\n"
    "  if not earliest or n < earliest then earliest = n end\n"
    "end\n"
    "local nfacts = tonumber(ARGV[i])\n"
    "for k = 1, nfacts do\n"
    "  redis.call('HSET', clk, 'f:' .. ARGV[i + 2 * k - 1], ARGV[i + 2 * k])\n"
    "end\n"
    "redis.call('HSET', clk, 'ev:' .. ARGV[2], '1')\n"
    "wake(before, earliest)\n"
    "return {'ok'}\n";

/* KEYS 1-5. ARGV: 1 max, 2 lease ms. Returns {now, next or '', id, token, payload, ...}. */
static const char claim_lua[] =
    "local due, lease, tmr, tok, fired = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    /* a fired timer's 'f' token mark goes with its entry in fired (at most 1,000 a claim) */
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', fired, '-inf', now - 86400000, 'LIMIT', 0, "
    "1000)) do\n"
    "  redis.call('ZREM', fired, id)\n"
    "  redis.call('HDEL', tok, id)\n"
    "end\n"
    "local max, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local out = {string.format('%d', now), ''}\n"
    "local n = 0\n"
    "local function take(id)\n"
    "  local payload = redis.call('HGET', tmr, id)\n"
    "  if not payload then\n" /* cancelled: nothing may point at it */
    "    redis.call('ZREM', due, id)\n"
    "    redis.call('ZREM', lease, id)\n"
    "    redis.call('HDEL', tok, id)\n"
    "    return\n"
    "  end\n"
    "  local token = redis.call('HINCRBY', tok, '#fence', 1)\n"
    "  redis.call('HSET', tok, id, token)\n"
    "  redis.call('ZADD', lease, now + lease_ms, id)\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = tostring(token)\n"
    "  out[#out + 1] = payload\n"
    "  n = n + 1\n"
    "end\n"
    /* leases that ran out first: their timers are the latest already */
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', lease, '-inf', now, 'LIMIT', 0, max)) do\n"
    "  take(id)\n"
    "end\n"
    "if n < max then\n"
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, max - n)) do\n"
    "    redis.call('ZREM', due, id)\n"
    "    take(id)\n"
    "  end\n"
    "end\n"
    "local d = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')\n"
    "local l = redis.call('ZRANGE', lease, 0, 0, 'WITHSCORES')\n"
    "local nxt = d[2] and tonumber(d[2]) or nil\n"
    "if l[2] and (not nxt or tonumber(l[2]) < nxt) then nxt = tonumber(l[2]) end\n"
    "if nxt then out[2] = string.format('%d', nxt) end\n"
    "return out\n";

/* Checks or commits a batch of timers of one shard. KEYS 1-5, then each timer's case clock
 * state. ARGV: 1 shard, 2 'check' or 'commit', 3 min lease left ms (check), 4 the number of
 * timers, then for each: id, token, and for commit the next timer's stage, due ms and payload
 * ('' when none). Answers three entries per timer: a passed check {'ok', the case's owner fact
 * or '', lease left ms}; otherwise {'ok' | 'fenced' | 'cancelled' | 'late', '', ''}. */
static const char fire_lua[] =
    "local due, lease, tmr, tok, fired = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
    "local clk\n" LUA_ARM "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local check, min_left = ARGV[2] == 'check', tonumber(ARGV[3])\n"
    "local function one(id, token, nstage, ndue, npayload)\n"
    "  local held = redis.call('HGET', tok, id)\n"
    "  if held ~= token then\n"
    /* a commit retried after its reply was lost finds its own mark: done, not fenced */
    "    if not check and held == 'f' .. token then return 'ok', '' end\n"
    "    if held or redis.call('HEXISTS', tmr, id) == 1 or redis.call('ZSCORE', fired, id) then\n"
    "      return 'fenced', ''\n"
    "    end\n"
    "    return 'cancelled', ''\n"
    "  end\n"
    "  if check then\n"
    "    local ends = tonumber(redis.call('ZSCORE', lease, id) or '0')\n"
    "    if ends - now < min_left then return 'late', '' end\n"
    "    return 'ok', redis.call('HGET', clk, 'f:owner') or '', string.format('%d', ends - now)\n"
    "  end\n"
    "  local base, clock = string.match(id, '^([^.]+%.([^.]+)%.[0-9]+)%.[^.]+$')\n"
    "  if not base then return 'bad', '' end\n"
    "  redis.call('ZREM', lease, id)\n"
    "  redis.call('HDEL', tmr, id)\n"
    "  redis.call('HSET', tok, id, 'f' .. token)\n" /* fired under this token: see above */
    "  redis.call('ZADD', fired, now, id)\n"
    "  local on = redis.call('HGET', clk, 'on:' .. clock)\n"
    "  if on then\n"
    "    local keep = {}\n"
    "    for x in string.gmatch(on, '%S+') do if x ~= id then keep[#keep + 1] = x end end\n"
    "    if #keep > 0 then redis.call('HSET', clk, 'on:' .. clock, table.concat(keep, ' '))\n"
    "    else redis.call('HDEL', clk, 'on:' .. clock) end\n"
    "  end\n"
    "  if nstage ~= '' then\n"
    "    local before = head()\n"
    "    arm(base .. '.' .. nstage, clock, ndue, npayload)\n"
    "    wake(before, tonumber(ndue))\n"
    "  end\n"
    "  return 'ok', ''\n"
    "end\n"
    "local out, n, per = {}, tonumber(ARGV[4]), check and 2 or 5\n"
    "for i = 1, n do\n"
    "  local a = 4 + (i - 1) * per\n"
    "  clk = KEYS[5 + i]\n"
    "  local st, owner, left = one(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + "
    "5])\n"
    "  out[#out + 1] = st\n"
    "  out[#out + 1] = owner\n"
    "  out[#out + 1] = left or ''\n"
    "end\n"
    "return out\n";

/* The operator's view (inspect.c); reads only. KEYS: 1 due index, 2 lease set, 3 payloads,
 * 4 the case's clock state. Returns {now, {field, value, ...} of the clock state but the
 * applied event ids, the number of applied event ids, then id, due or '', lease end or '',
 * payload or '' for every timer the clock state lists}. */
static const char show_lua[] =
    "local due, lease, tmr, clk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local out, fields, events, ids = {string.format('%d', now)}, {}, 0, {}\n"
    "local h = redis.call('HGETALL', clk)\n"
    "for i = 1, #h, 2 do\n"
    "  local f = h[i]\n"
    "  if string.sub(f, 1, 3) == 'ev:' then events = events + 1\n"
    "  else\n"
    "    fields[#fields + 1] = f\n"
    "    fields[#fields + 1] = h[i + 1]\n"
    "    if string.sub(f, 1, 3) == 'on:' then\n"
    "      for id in string.gmatch(h[i + 1], '%S+') do ids[#ids + 1] = id end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "out[2] = fields\n"
    "out[3] = events\n"
    "for _, id in ipairs(ids) do\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = redis.call('ZSCORE', due, id) or ''\n"
    "  out[#out + 1] = redis.call('ZSCORE', lease, id) or ''\n"
    "  out[#out + 1] = redis.call('HGET', tmr, id) or ''\n"
    "end\n"
    "return out\n";

/* KEYS: 1 due index, 2 lease set, 3 payloads. Returns {now, timers waiting, timers being fired
 * (leased), timers waiting although due, timers in all}. */
static const char shard_stats_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "return {string.format('%d', now), redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', "
    "KEYS[2]),\n"
    "        redis.call('ZCOUNT', KEYS[1], '-inf', now), redis.call('HLEN', KEYS[3])}\n";

struct dl_timers {
    cw_redis *redis;
    cw_redis_script *apply, *claim, *fire, *show, *shard_stats;
};

unsigned dl_shard_of(const char *case_id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)case_id; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h % DL_SHARDS;
}

dl_timers *dl_timers_new(cw_redis *r)
{
    dl_timers *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->redis = r;
    t->apply = cw_redis_script_new(r, apply_lua);
    t->claim = cw_redis_script_new(r, claim_lua);
    t->fire = cw_redis_script_new(r, fire_lua);
    t->show = cw_redis_script_new(r, show_lua);
    t->shard_stats = cw_redis_script_new(r, shard_stats_lua);
    if (!t->apply || !t->claim || !t->fire || !t->show || !t->shard_stats) {
        free(t); /* the scripts belong to the client */
        return NULL;
    }
    return t;
}

void dl_timers_free(dl_timers *t) { free(t); }

/* The shard's keys; clk (the case's clock state) when case_id is given. */
struct keys {
    char due[32], lease[32], tmr[32], tok[32], fired[32], clk[80];
};

static void shard_keys(struct keys *k, unsigned shard, const char *case_id)
{
    snprintf(k->due, sizeof k->due, "cw:due:{cwt:%u}", shard);
    snprintf(k->lease, sizeof k->lease, "cw:lease:{cwt:%u}", shard);
    snprintf(k->tmr, sizeof k->tmr, "cw:tmr:{cwt:%u}", shard);
    snprintf(k->tok, sizeof k->tok, "cw:tok:{cwt:%u}", shard);
    snprintf(k->fired, sizeof k->fired, "cw:fired:{cwt:%u}", shard);
    snprintf(k->clk, sizeof k->clk, "cw:clk:{cwt:%u}:%s", shard, case_id ? case_id : "");
}

/* A part of a timer id: 1 to max-1 characters of [A-Za-z0-9_-], so that every id the store
 * makes is one dl_timer_id_parse() reads back (a timer whose id cannot be parsed could never
 * be fired, only claimed again and again). */
static bool id_part(const char *s, size_t max)
{
    if (!s) return false;
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    return n > 0 && n < max && s[n] == '\0';
}

/* Due times are Unix ms between 2001 and 2286: every one prints as a plain integer. */
static bool due_ok(int64_t ms) { return ms >= 1000000000000LL && ms < 10000000000000LL; }

static bool arm_ok(const struct dl_arm *a)
{
    return id_part(a->clock, DL_CLOCK_MAX) && id_part(a->stage, DL_STAGE_MAX) &&
           due_ok(a->due_ms) && a->payload;
}

int dl_timers_apply(dl_timers *t, const struct dl_change *c, cw_redis_reply_fn *cb, void *arg)
{
    if (c->nstops > DL_MAX_STOPS || c->narms > DL_MAX_ARMS || c->nfacts > DL_MAX_FACTS ||
        !id_part(c->case_id, DL_CASE_ID_MAX) || !c->event_id || !*c->event_id)
        return CW_REDIS_BAD_COMMAND;
    for (size_t i = 0; i < c->nstops; i++)
        if (!id_part(c->stops[i], DL_CLOCK_MAX)) return CW_REDIS_BAD_COMMAND;
    for (size_t i = 0; i < c->narms; i++)
        if (!arm_ok(&c->arms[i])) return CW_REDIS_BAD_COMMAND;
    for (size_t i = 0; i < c->nfacts; i++)
        if (!id_part(c->facts[i].name, DL_CLOCK_MAX) || !c->facts[i].value)
            return CW_REDIS_BAD_COMMAND;
    unsigned shard = dl_shard_of(c->case_id);
    struct keys k;
    shard_keys(&k, shard, c->case_id);
    char shard_s[8], nstops[8], narms[8], nfacts[8];
    char dues[DL_MAX_ARMS][24];
    snprintf(shard_s, sizeof shard_s, "%u", shard);
    snprintf(nstops, sizeof nstops, "%zu", c->nstops);
    snprintf(narms, sizeof narms, "%zu", c->narms);
    snprintf(nfacts, sizeof nfacts, "%zu", c->nfacts);
    const char *argv[6 + 5 + DL_MAX_STOPS + 1 + 4 * DL_MAX_ARMS + 1 + 2 * DL_MAX_FACTS];
    int argc = 0;
    argv[argc++] = k.due;
    argv[argc++] = k.lease;
    argv[argc++] = k.tmr;
    argv[argc++] = k.tok;
    argv[argc++] = k.fired;
    argv[argc++] = k.clk;
    argv[argc++] = shard_s;
    argv[argc++] = c->event_id;
    argv[argc++] = c->case_id;
    argv[argc++] = nstops;
    for (size_t i = 0; i < c->nstops; i++) argv[argc++] = c->stops[i];
    argv[argc++] = narms;
    for (size_t i = 0; i < c->narms; i++) {
        const struct dl_arm *a = &c->arms[i];
        snprintf(dues[i], sizeof dues[i], "%lld", (long long)a->due_ms);
        argv[argc++] = a->clock;
        argv[argc++] = a->stage;
        argv[argc++] = dues[i];
        argv[argc++] = a->payload;
    }
    argv[argc++] = nfacts;
    for (size_t i = 0; i < c->nfacts; i++) {
        argv[argc++] = c->facts[i].name;
        argv[argc++] = c->facts[i].value;
    }
    return cw_redis_script_run(t->redis, t->apply, cb, arg, 6, argc, argv, NULL);
}

static const char *str_at(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

int dl_apply_reply(const redisReply *r)
{
    const char *s = str_at(r, 0);
    if (!s) return -1;
    if (strcmp(s, "ok") == 0) return 1;
    if (strcmp(s, "dup") == 0) return 0;
    return -1;
}

int dl_timers_claim(dl_timers *t, unsigned shard, unsigned max, int64_t lease_ms,
                    cw_redis_reply_fn *cb, void *arg)
{
    if (shard >= DL_SHARDS || max == 0 || lease_ms <= 0) return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, shard, NULL);
    char max_s[16], lease_s[24];
    snprintf(max_s, sizeof max_s, "%u", max);
    snprintf(lease_s, sizeof lease_s, "%lld", (long long)lease_ms);
    const char *argv[] = {k.due, k.lease, k.tmr, k.tok, k.fired, max_s, lease_s};
    return cw_redis_script_run(t->redis, t->claim, cb, arg, 5, 7, argv, NULL);
}

static int parse_ms(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 0) return -1;
    *out = v;
    return 0;
}

int dl_claim_reply(const redisReply *r, struct dl_claim *out)
{
    memset(out, 0, sizeof *out);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 3 != 0)
        return -1;
    const char *next = str_at(r, 1);
    if (parse_ms(str_at(r, 0), &out->now_ms) != 0 || !next) return -1;
    out->next_ms = -1;
    if (*next && parse_ms(next, &out->next_ms) != 0) return -1;
    size_t n = (r->elements - 2) / 3;
    if (n && !(out->timers = calloc(n, sizeof *out->timers))) return -1;
    /* An entry that is not a timer (written by something else) is skipped and counted, not
     * allowed to fail the batch: the others are leased already and must be fired. */
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = r->element[2 + 3 * i], *tok = r->element[3 + 3 * i],
                         *pl = r->element[4 + 3 * i];
        if (id->type != REDIS_REPLY_STRING || tok->type != REDIS_REPLY_STRING ||
            pl->type != REDIS_REPLY_STRING || id->len >= DL_TIMER_ID_MAX ||
            tok->len >= DL_TOKEN_MAX) {
            out->skipped++;
            continue;
        }
        out->timers[out->n++] = (struct dl_claimed){id->str, tok->str, pl->str, pl->len};
    }
    return 0;
}

int dl_timer_id_parse(const char *id, char case_id[DL_CASE_ID_MAX], char clock[DL_CLOCK_MAX],
                      unsigned *gen, char stage[DL_STAGE_MAX])
{
    const char *d1 = strchr(id, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    const char *d3 = d2 ? strchr(d2 + 1, '.') : NULL;
    if (!d3 || strchr(d3 + 1, '.') || d1 == id || d1 - id >= DL_CASE_ID_MAX || d2 - d1 - 1 < 1 ||
        d2 - d1 - 1 >= DL_CLOCK_MAX || d3 - d2 - 1 < 1 || d3 - d2 - 1 > 9 || !d3[1] ||
        strlen(d3 + 1) >= DL_STAGE_MAX)
        return -1;
    unsigned g = 0;
    for (const char *p = d2 + 1; p < d3; p++) {
        if (*p < '0' || *p > '9') return -1;
        g = g * 10 + (unsigned)(*p - '0');
    }
    memcpy(case_id, id, (size_t)(d1 - id));
    case_id[d1 - id] = '\0';
    memcpy(clock, d1 + 1, (size_t)(d2 - d1 - 1));
    clock[d2 - d1 - 1] = '\0';
    *gen = g;
    strcpy(stage, d3 + 1);
    return 0;
}

bool dl_fire_item_ok(unsigned shard, bool check, const struct dl_fire_item *it,
                     char case_id[DL_CASE_ID_MAX])
{
    char clock[DL_CLOCK_MAX], stage[DL_STAGE_MAX];
    unsigned gen;
    return it->id && it->token && dl_timer_id_parse(it->id, case_id, clock, &gen, stage) == 0 &&
           dl_shard_of(case_id) == shard &&
           (check || !it->next ||
            (id_part(it->next->stage, DL_STAGE_MAX) && due_ok(it->next->due_ms) &&
             it->next->payload));
}

int dl_timers_fire_batch(dl_timers *t, unsigned shard, bool check, int64_t min_left_ms,
                         const struct dl_fire_item *items, size_t n, cw_redis_reply_fn *cb,
                         void *arg)
{
    if (shard >= DL_SHARDS || n == 0 || n > DL_MAX_FIRE_BATCH) return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, shard, NULL);
    size_t nkeys = 5 + n, argc = nkeys + 4 + n * (check ? 2 : 5);
    const char **argv = malloc(argc * sizeof *argv);
    char(*clks)[80] = malloc(n * sizeof *clks);
    char(*dues)[24] = malloc(n * sizeof *dues);
    int rc = CW_REDIS_NO_MEMORY;
    if (!argv || !clks || !dues) goto done;
    rc = CW_REDIS_BAD_COMMAND;
    char shard_s[8], left[24], count[16];
    snprintf(shard_s, sizeof shard_s, "%u", shard);
    snprintf(left, sizeof left, "%lld", (long long)(min_left_ms > 0 ? min_left_ms : 0));
    snprintf(count, sizeof count, "%zu", n);
    const char *fixed[] = {k.due, k.lease, k.tmr, k.tok, k.fired};
    memcpy(argv, fixed, sizeof fixed);
    size_t a = nkeys;
    argv[a++] = shard_s;
    argv[a++] = check ? "check" : "commit";
    argv[a++] = left;
    argv[a++] = count;
    for (size_t i = 0; i < n; i++) {
        const struct dl_fire_item *it = &items[i];
        char case_id[DL_CASE_ID_MAX];
        if (!dl_fire_item_ok(shard, check, it, case_id)) goto done;
        struct keys ck;
        shard_keys(&ck, shard, case_id);
        snprintf(clks[i], sizeof clks[i], "%s", ck.clk);
        argv[5 + i] = clks[i];
        argv[a++] = it->id;
        argv[a++] = it->token;
        if (check) continue;
        bool next = it->next != NULL;
        if (next) snprintf(dues[i], sizeof dues[i], "%lld", (long long)it->next->due_ms);
        argv[a++] = next ? it->next->stage : "";
        argv[a++] = next ? dues[i] : "";
        argv[a++] = next ? it->next->payload : "";
    }
    rc = cw_redis_script_run(t->redis, t->fire, cb, arg, (int)nkeys, (int)argc, argv, NULL);
done:
    free(argv);
    free(clks);
    free(dues);
    return rc;
}

int dl_timers_fire(dl_timers *t, const char *timer_id, const char *token, bool check,
                   int64_t min_left_ms, const struct dl_arm *next, cw_redis_reply_fn *cb, void *arg)
{
    char case_id[DL_CASE_ID_MAX], clock[DL_CLOCK_MAX], stage[DL_STAGE_MAX];
    unsigned gen;
    if (!timer_id || dl_timer_id_parse(timer_id, case_id, clock, &gen, stage) != 0)
        return CW_REDIS_BAD_COMMAND;
    struct dl_fire_item it = {timer_id, token, next};
    return dl_timers_fire_batch(t, dl_shard_of(case_id), check, min_left_ms, &it, 1, cb, arg);
}

enum dl_fire_result dl_fire_reply(const redisReply *r) { return dl_fire_reply_at(r, 0); }

enum dl_fire_result dl_fire_reply_at(const redisReply *r, size_t i)
{
    const char *s = str_at(r, 3 * i);
    if (!s) return DL_FIRE_BAD_REPLY;
    if (strcmp(s, "ok") == 0) return DL_FIRE_OK;
    if (strcmp(s, "fenced") == 0) return DL_FIRE_FENCED;
    if (strcmp(s, "cancelled") == 0) return DL_FIRE_CANCELLED;
    if (strcmp(s, "late") == 0) return DL_FIRE_LATE;
    return DL_FIRE_BAD_REPLY;
}

int dl_check_reply(const redisReply *r, char *owner, size_t owner_len, int64_t *left_ms)
{
    return dl_check_reply_at(r, 0, owner, owner_len, left_ms);
}

int dl_check_reply_at(const redisReply *r, size_t i, char *owner, size_t owner_len,
                      int64_t *left_ms)
{
    enum dl_fire_result res = dl_fire_reply_at(r, i);
    if (res != DL_FIRE_OK) return (int)res;
    const char *o = str_at(r, 3 * i + 1), *left = str_at(r, 3 * i + 2);
    if (!o || parse_ms(left, left_ms) != 0 || strlen(o) >= owner_len) return DL_FIRE_BAD_REPLY;
    strcpy(owner, o);
    return DL_FIRE_OK;
}

int dl_timers_read_facts(dl_timers *t, const char *case_id, const char *const *names, size_t n,
                         cw_redis_reply_fn *cb, void *arg)
{
    if (!id_part(case_id, DL_CASE_ID_MAX) || n == 0 || n > DL_MAX_FACTS)
        return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, dl_shard_of(case_id), case_id);
    char fields[DL_MAX_FACTS][DL_CLOCK_MAX + 2];
    const char *argv[2 + DL_MAX_FACTS] = {"HMGET", k.clk};
    for (size_t i = 0; i < n; i++) {
        if (!id_part(names[i], DL_CLOCK_MAX)) return CW_REDIS_BAD_COMMAND;
        snprintf(fields[i], sizeof fields[i], "f:%s", names[i]);
        argv[2 + i] = fields[i];
    }
    return cw_redis_command(t->redis, cb, arg, (int)(2 + n), argv, NULL);
}

int dl_timers_show(dl_timers *t, const char *case_id, cw_redis_reply_fn *cb, void *arg)
{
    if (!id_part(case_id, DL_CASE_ID_MAX)) return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, dl_shard_of(case_id), case_id);
    const char *argv[] = {k.due, k.lease, k.tmr, k.clk};
    return cw_redis_script_run(t->redis, t->show, cb, arg, 4, 4, argv, NULL);
}

int dl_timers_shard_stats(dl_timers *t, unsigned shard, cw_redis_reply_fn *cb, void *arg)
{
    if (shard >= DL_SHARDS) return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, shard, NULL);
    const char *argv[] = {k.due, k.lease, k.tmr};
    return cw_redis_script_run(t->redis, t->shard_stats, cb, arg, 3, 3, argv, NULL);
}

int dl_timers_scan(dl_timers *t, unsigned shard, const char *cursor, unsigned count,
                   cw_redis_reply_fn *cb, void *arg)
{
    if (shard >= DL_SHARDS || !cursor || !*cursor || count == 0) return CW_REDIS_BAD_COMMAND;
    struct keys k;
    shard_keys(&k, shard, NULL);
    char count_s[16];
    snprintf(count_s, sizeof count_s, "%u", count);
    const char *argv[] = {"HSCAN", k.tmr, cursor, "COUNT", count_s};
    return cw_redis_command(t->redis, cb, arg, 5, argv, NULL);
}
