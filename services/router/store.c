/*
 * The router's Redis side: one Lua script per case does everything routing changes, at once,
 * and only the first time (docs/redis.md lists the keys):
 *
 *   cw:routed:<case_id>            hash, 8 days: the decision (owner, routed event id, repeat
 *                                  link) and whether its events were delivered. A redelivered
 *                                  record finds it and changes nothing.
 *   cw:case:<case_id>              the gateway's case record, completed and made permanent
 *                                  (the router may see a case before the gateway's commit, or
 *                                  after a gateway crash that never committed)
 *   cw:case:<case_id>:history      sorted set by time: what happened to the case, as JSON
 *   cw:idx:site:<site>:<status>    sorted sets by creation time: a site's cases by status
 *   cw:idx:owner:<staff>           sorted set: the open cases a person owns
 *   cw:load:<site>                 hash staff -> open cases owned: the owner is the least
 *                                  loaded candidate, decided here so that two routers never
 *                                  both pick the same person on numbers read apart
 *   cw:recent:<site>:<sha1(phone)> sorted set "case_id:category" by creation time, 2 windows:
 *                                  a complaint from the same phone, site and category within
 *                                  the repeat window is linked to the earlier case
 *
 * Keys are built inside the script from its arguments, so it needs one Redis (or Sentinel),
 * like the gateway's scripts.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "redis.h"
#include "router.h"

/* How long a decision is kept: longer than the intake topic's retention (7 days), so any
 * redelivery or replay of the topic finds it. */
#define DECISION_TTL_S "691200"

/* ARGV: 1 case id, 2 routed event id if new, 3 now ms, 4 site, 5 tenant, 6 case no,
 * 7 created ms, 8 phone ('' none), 9 repeat window ms, 10 category, 11 decision ttl s,
 * 12 history entry of the submission (JSON), 13 number of record arguments (name, value...),
 * then those, then the candidates for owner. Returns {'new'|'dup', owner, routed event id,
 * repeat_of, published '0'|'1'}. */
static const char route_lua[] =
    "local id = ARGV[1]\n"
    "local rk = 'cw:routed:' .. id\n"
    "local d = redis.call('HMGET', rk, 'owner', 'event_id', 'repeat_of', 'published')\n"
    "if d[1] then return {'dup', d[1], d[2], d[3] or '', d[4] or '0'} end\n"
    /* numbers for arithmetic; the strings themselves where Redis takes them (no reformatting) */
    "local now, site, created = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[7])\n"
    "local now_s, created_s = ARGV[3], ARGV[7]\n"
    "local nrec = tonumber(ARGV[13])\n"
    "local first = 14 + nrec\n"
    "if first > #ARGV then return redis.error_reply('route: no candidate owner') end\n"
    /* the least loaded candidate; ties go to the first, so equal loads take turns */
    "local lk = 'cw:load:' .. site\n"
    "local loads = redis.call('HMGET', lk, unpack(ARGV, first, #ARGV))\n"
    "local owner, best = nil, nil\n"
    "for i = first, #ARGV do\n"
    "  local l = tonumber(loads[i - first + 1] or '0')\n"
    "  if not best or l < best then owner, best = ARGV[i], l end\n"
    "end\n"
    /* a repeat: same phone, site and category, recorded earlier within the window */
    "local repeat_of = ''\n"
    "if ARGV[8] ~= '' then\n"
    "  local win = tonumber(ARGV[9])\n"
    "  local rkey = 'cw:recent:' .. site .. ':' .. redis.sha1hex(ARGV[8])\n"
    "  local seen = redis.call('ZREVRANGEBYSCORE', rkey, created, created - win, 'LIMIT', 0, 50)\n"
    "  for _, m in ipairs(seen) do\n"
    "    local cid, cat = string.match(m, '^([^:]+):(.*)$')\n"
    "    if cid and cid ~= id and cat == ARGV[10] then repeat_of = cid break end\n"
    "  end\n"
    "  redis.call('ZADD', rkey, created_s, id .. ':' .. ARGV[10])\n"
    "  redis.call('ZREMRANGEBYSCORE', rkey, '-inf', '(' .. tostring(now - 2 * win))\n"
    "  redis.call('PEXPIRE', rkey, 2 * win)\n"
    "end\n"
    /* the case record: what the gateway wrote, completed; permanent from now on */
    "local ck = 'cw:case:' .. id\n"
    "local st = redis.call('HGET', ck, 'status')\n"
    "local status = st\n"
    "if not st or st == 'pending' or st == 'received' then status = 'assigned' end\n"
    "local rec = {'status', status, 'owner', owner, 'routed_ms', now_s, 'updated_ms', now_s,\n"
    "  'routed_event_id', ARGV[2], 'repeat_of', repeat_of}\n"
    "for i = 14, first - 1 do rec[#rec + 1] = ARGV[i] end\n"
    "redis.call('HSET', ck, unpack(rec))\n"
    "if not st then redis.call('HSET', ck, 'created_ms', created_s) end\n"
    "redis.call('PERSIST', ck)\n"
    "redis.call('SET', 'cw:caseno:' .. ARGV[6], id)\n"
    "if ARGV[5] ~= '' then redis.call('ZADD', 'cw:tenant:' .. ARGV[5] .. ':cases', created_s, id) "
    "end\n"
    "local idx = 'cw:idx:site:' .. site .. ':'\n"
    "if st and st ~= status then redis.call('ZREM', idx .. st, id) end\n"
    "redis.call('ZADD', idx .. status, created_s, id)\n"
    "if status ~= 'closed' then\n"
    "  redis.call('ZADD', 'cw:idx:owner:' .. owner, created_s, id)\n"
    "  redis.call('HINCRBY', lk, owner, 1)\n"
    "end\n"
    "local hk = ck .. ':history'\n"
    "redis.call('ZADD', hk, created_s, ARGV[12])\n"
    "redis.call('ZADD', hk, now_s, cjson.encode({at = now, event = 'routed', event_id = ARGV[2],\n"
    "  owner = owner, repeat_of = repeat_of}))\n"
    "redis.call('HSET', rk, 'owner', owner, 'event_id', ARGV[2], 'repeat_of', repeat_of,\n"
    "  'published', '0', 'routed_ms', now_s)\n"
    "redis.call('EXPIRE', rk, ARGV[11])\n"
    "return {'new', owner, ARGV[2], repeat_of, '0'}\n";

/* The first `chars` characters of UTF-8 text (checked valid by the classifier), line breaks
 * and tabs as spaces, with "…" when cut. */
static void rt_text_prefix(const char *text, size_t chars, char *out, size_t outlen)
{
    size_t o = 0, n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && n < chars) {
        size_t len = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
        for (size_t k = 1; k < len; k++)
            if (!p[k]) len = k; /* never read past the end of a damaged sequence */
        if (o + len + 1 > outlen) break;
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            out[o++] = ' ';
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        n++;
    }
    static const char ellipsis[] = "\xe2\x80\xa6";
    if (*p && o + sizeof ellipsis <= outlen) {
        memcpy(out + o, ellipsis, sizeof ellipsis - 1);
        o += sizeof ellipsis - 1;
    }
    out[o] = '\0';
}

int rt_store_init(struct router *rt)
{
    rt->route_script = cw_redis_script_new(rt->redis, route_lua);
    return rt->route_script ? 0 : -1;
}

/* The record fields the script stores, name then value. */
enum { REC_PAIRS = 15 };

/* The first characters of the complaint, for lists (the console's open cases). */
#define SUMMARY_CHARS 60

int rt_store_route(struct router *rt, struct rt_job *job,
                   void (*cb)(void *arg, const redisReply *reply, const char *err))
{
    const cw_event_meta *meta = job->env->meta;
    const Casewire__V1__CaseSubmitted *cs = job->cs;
    const struct rt_verdict *v = &job->verdict;
    const struct rt_assignment *a = &job->assignment;
    char now[24], created[24], window[24], reply_by[24], nrec[8], summary[SUMMARY_CHARS * 4 + 4];
    int64_t created_ms = meta->occurred_ms > 0 ? meta->occurred_ms : cw_ulid_time_ms(meta->case_id);
    snprintf(now, sizeof now, "%lld", (long long)cw_now_ms());
    snprintf(created, sizeof created, "%lld", (long long)created_ms);
    snprintf(window, sizeof window, "%lld", (long long)rt->repeat_window_ms);
    snprintf(reply_by, sizeof reply_by, "%lld", (long long)cs->reply_by_ms);
    snprintf(nrec, sizeof nrec, "%d", 2 * REC_PAIRS);
    rt_text_prefix(cs->text ? cs->text : "", SUMMARY_CHARS, summary, sizeof summary);
    /* the rule that decided the category: what the reports count as a cause */
    const char *cause = v->why[RT_CATEGORY].rule_id ? v->why[RT_CATEGORY].rule_id : "";
    if (!job->routed_event_id[0] && cw_ulid_new(job->routed_event_id) != 0)
        return CW_REDIS_NO_MEMORY;

    json_t *sub =
        json_pack("{s:I,s:s,s:s,s:s,s:s}", "at", (json_int_t)created_ms, "event", "submitted",
                  "event_id", meta->event_id, "channel", cw_channel_name(cs->channel),
                  "recorded_by", cs->recorded_by ? cs->recorded_by : "");
    char *submitted = sub ? json_dumps(sub, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(sub);
    char *record = rt_record_json(job);
    if (!submitted || !record) {
        free(submitted);
        free(record);
        return CW_REDIS_NO_MEMORY;
    }
    const char *tenant = job->tenant ? job->tenant->id : "";
    const char *argv[13 + 2 * REC_PAIRS + RT_MAX_CANDIDATES] = {
        meta->case_id,
        job->routed_event_id,
        now,
        job->site->id,
        tenant,
        cs->case_no,
        created,
        rt_customer_phone(job),
        window,
        cw_category_name(v->category),
        DECISION_TTL_S,
        submitted,
        nrec,
        /* the record */
        "case_no",
        cs->case_no,
        "site",
        job->site->id,
        "tenant",
        tenant,
        "channel",
        cw_channel_name(cs->channel),
        "reply_by_ms",
        reply_by,
        "type",
        cw_case_type_name(v->type),
        "category",
        cw_category_name(v->category),
        "urgency",
        cw_urgency_name(v->urgency),
        "validity",
        cw_validity_name(v->validity),
        "department",
        a->department ? a->department->id : "",
        "first_ask",
        cs->recorded_by ? cs->recorded_by : "",
        "language",
        cs->language ? cs->language : "",
        "cause",
        cause,
        "summary",
        summary,
        "record",
        record,
    };
    int argc = 13 + 2 * REC_PAIRS;
    for (size_t i = 0; i < a->ncandidates; i++) argv[argc++] = a->candidates[i]->id;
    int rc = cw_redis_script_run(rt->redis, rt->route_script, cb, job, 0, argc, argv, NULL);
    free(submitted);
    free(record);
    return rc;
}

static const char *elem(const redisReply *r, size_t i)
{
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

int rt_store_route_reply(struct rt_job *job, const redisReply *reply, bool *published)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 5) return -1;
    for (size_t i = 0; i < 5; i++)
        if (!elem(reply, i)) return -1;
    const char *owner = elem(reply, 1), *event_id = elem(reply, 2), *repeat = elem(reply, 3);
    if (strlen(owner) >= sizeof job->owner || !cw_ulid_valid(event_id) ||
        (*repeat && !cw_ulid_valid(repeat)))
        return -1;
    job->duplicate = strcmp(elem(reply, 0), "dup") == 0;
    snprintf(job->owner, sizeof job->owner, "%s", owner);
    snprintf(job->routed_event_id, sizeof job->routed_event_id, "%s", event_id);
    snprintf(job->repeat_of, sizeof job->repeat_of, "%s", repeat);
    *published = strcmp(elem(reply, 4), "1") == 0;
    return 0;
}

int rt_store_mark(struct router *rt, struct rt_job *job,
                  void (*cb)(void *arg, const redisReply *reply, const char *err))
{
    return cw_redis_commandf(rt->redis, cb, job, "HSET cw:routed:%s published 1",
                             job->env->meta->case_id);
}
