/*
 * The gateway's Redis side: each step that must be atomic is one Lua script (docs/redis.md
 * lists the keys). Scripts build some keys from values they read (the case record from the
 * case id an idempotency record holds), so they assume one Redis (or Sentinel), not Cluster.
 *
 *   cw:idem:<client>:<sha256(endpoint, key)>  hash, 24 h: sha, state, lease, ids, response
 *   cw:seq:<site>:<yymmdd>                    the day's case number sequence (3 days)
 *   cw:case:<case_id>                         hash: the case as the gateway answers about it
 *   cw:caseno:<case_no>                       -> case id
 *   cw:tenant:<tenant_id>:cases               sorted set of case ids by creation time
 *   cw:lookupfail:<case_no>                   wrong phone digits in the last hour
 *
 * A case record is written "pending" before Kafka is asked and expires unless the delivery
 * report commits it ("received"). An idempotency record in state "pending" holds a lease
 * (the reply timeout): a retry during the lease is told to wait, a retry after it (the
 * gateway died, or Kafka refused) takes the same case id, event id and case number and
 * produces again.
 */
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casestore.h"
#include "gateway.h"
#include "log.h"
#include "redis.h"

/* Shared by intake and events: look at an existing idempotency record. Returns a reply table
 * when the script must stop here, nil to go on. The record's ids field is "a b c ...". */
#define IDEM_PRELUDE                                                                               \
    "local now = tonumber(ARGV[2])\n"                                                              \
    "local idem = KEYS[1]\n"                                                                       \
    "if idem ~= '' then\n"                                                                         \
    "  local r = redis.call('HMGET', idem, 'sha', 'state', 'lease', 'ids', 'response')\n"          \
    "  if r[1] then\n"                                                                             \
    "    if r[1] ~= ARGV[1] then return {'conflict'} end\n"                                        \
    "    if r[2] == 'done' then return {'done', r[5]} end\n"                                       \
    "    local lease = tonumber(r[3])\n"                                                           \
    "    if lease > now then return {'busy', tostring(lease - now)} end\n"                         \
    "    redis.call('HSET', idem, 'lease', now + tonumber(ARGV[3]))\n"                             \
    "    return {'retry', r[4]}\n"                                                                 \
    "  end\n"                                                                                      \
    "end\n"

/* After the checks: a new idempotency record, pending, holding the ids given out (`ids`). */
#define IDEM_RESERVE                                                                               \
    "if idem ~= '' then\n"                                                                         \
    "  redis.call('HSET', idem, 'sha', ARGV[1], 'state', 'pending',\n"                             \
    "    'lease', now + tonumber(ARGV[3]), 'ids', ids)\n"                                          \
    "  redis.call('EXPIRE', idem, ARGV[4])\n"                                                      \
    "end\n"

/* KEYS: idem ('' none), seq. ARGV: 1 body sha, 2 now ms, 3 lease ms, 4 ttl s, 5 case id,
 * 6 event id, 7 reply_by ms, 8 site, 9 yymmdd, 10 tenant, 11 channel, 12 phone last 4 digits,
 * 13 view json, 14 seq ttl s. Returns {'new'|'retry', "case_id event_id case_no reply_by"},
 * {'done', response}, {'conflict'}, {'busy', ms}. */
static const char intake_lua[] = IDEM_PRELUDE
    "local seq = redis.call('INCR', KEYS[2])\n"
    "if seq == 1 then redis.call('EXPIRE', KEYS[2], ARGV[14]) end\n"
    "local case_no = string.format('%s-%s-%04d', ARGV[8], ARGV[9], seq)\n"
    "local check = ''\n"
    "if ARGV[12] ~= '' then check = redis.sha1hex(case_no .. ':' .. ARGV[12]) end\n"
    "local ck = 'cw:case:' .. ARGV[5]\n"
    "redis.call('HSET', ck, 'case_no', case_no, 'site', ARGV[8], 'tenant', ARGV[10],\n"
    "  'channel', ARGV[11], 'status', 'pending', 'created_ms', now, 'updated_ms', now,\n"
    "  'reply_by_ms', ARGV[7], 'phone_check', check, 'view', ARGV[13])\n"
    "redis.call('EXPIRE', ck, ARGV[4])\n"
    "local ids = ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. case_no .. ' ' .. ARGV[7]\n" IDEM_RESERVE
    "return {'new', ids}\n";

/* KEYS: idem ('' none). ARGV: 1 case id, 2 response json. */
static const char intake_commit_lua[] =
    "local ck = 'cw:case:' .. ARGV[1]\n"
    "local r = redis.call('HMGET', ck, 'status', 'case_no', 'tenant', 'created_ms', 'site')\n"
    "if not r[1] then return 0 end\n"
    /* the router may have been first: then the record is already further along */
    "if r[1] == 'pending' then\n"
    "  redis.call('HSET', ck, 'status', 'received')\n"
    "  redis.call('PERSIST', ck)\n"
    "  redis.call('ZADD', 'cw:idx:site:' .. r[5] .. ':received', r[4], ARGV[1])\n"
    "end\n"
    "redis.call('SET', 'cw:caseno:' .. r[2], ARGV[1])\n"
    "if r[3] ~= '' then redis.call('ZADD', 'cw:tenant:' .. r[3] .. ':cases', r[4], ARGV[1]) end\n"
    "if KEYS[1] ~= '' then redis.call('HSET', KEYS[1], 'state', 'done', 'response', ARGV[2]) end\n"
    "return 1\n";

/* KEYS: idem. A write that Kafka refused: the next retry may take over at once. */
static const char release_lua[] =
    "if KEYS[1] ~= '' and redis.call('HGET', KEYS[1], 'state') == 'pending' then\n"
    "  redis.call('HSET', KEYS[1], 'lease', 0)\n"
    "end\n"
    "return 1\n";

/* KEYS: idem ('' none). ARGV: 1 body sha, 2 now, 3 lease ms, 4 ttl s, 5 case id or number,
 * 6 the sites the caller may act on (",SH01,SH02,"; '' any), 7 tenant the caller is ('' not a
 * tenant), 8 action, 9 new event id, 10 outcome, 11 actor kind (staff, tenant, customer). Returns
 * {'new'|'retry', "case_id event_id case_no site tenant status"}, {'done', response},
 * {'not_found'}, {'invalid', status}, {'conflict'}, {'busy'}. */
static const char event_lua[] = IDEM_PRELUDE
    "local id = ARGV[5]\n"
    "if string.find(id, '-', 1, true) then\n"
    "  id = redis.call('GET', 'cw:caseno:' .. id)\n"
    "  if not id then return {'not_found'} end\n"
    "end\n"
    "local r = redis.call('HMGET', 'cw:case:' .. id, 'status', 'site', 'tenant', 'case_no', "
    "'followup')\n"
    "local st = r[1]\n"
    "if not st or st == 'pending' then return {'not_found'} end\n"
    "if ARGV[7] ~= '' and r[3] ~= ARGV[7] then return {'not_found'} end\n"
    "if ARGV[6] ~= '' and not string.find(ARGV[6], ',' .. r[2] .. ',', 1, true) then return "
    "{'not_found'} end\n"
    "local a = ARGV[8]\n"
    "local open = st ~= 'closed'\n"
    "local ok = false\n"
    "if a == 'acknowledge' then ok = st == 'received' or st == 'assigned' or st == 'reopened'\n"
    "elseif a == 'note' or a == 'reply' or a == 'reassign' then ok = open\n"
    "elseif a == 'resolve' then ok = open and st ~= 'resolved'\n"
    "elseif a == 'reopen' then ok = st == 'resolved' or st == 'closed'\n"
    /* a customer's SMS reply may still judge a case closed as unreachable */
    /* (and only that: an old code must not answer a later resolution's follow-up) */
    "elseif a == 'followup' then\n"
    "  if ARGV[11] == 'customer' then ok = st == 'closed' and r[5] == 'unreachable'\n"
    "  else ok = st == 'resolved' end\n"
    /* staff close a satisfied case; the notifier closes one whose customer was never reached */
    "elseif a == 'close' then\n"
    "  ok = st == 'resolved' and r[5] == 'satisfied'\n"
    "  if st == 'resolved' and r[5] == 'unreachable' then return {'invalid', 'resolved, and the "
    "customer was not reached yet (the case closes by itself after the last call)'} end\n"
    "  if st == 'resolved' and not ok then return {'invalid', 'resolved, without a satisfied "
    "follow-up'} end\n"
    "end\n"
    "if not ok then return {'invalid', st} end\n"
    "local ids = id .. ' ' .. ARGV[9] .. ' ' .. r[4] .. ' ' .. r[2] .. ' ' .. (r[3] ~= '' and r[3] "
    "or '-') .. ' ' .. st\n" IDEM_RESERVE "return {'new', ids}\n";

/* KEYS: failures counter. ARGV: 1 case no, 2 last 4 digits, 3 max failures, 4 window s.
 * Returns {'ok', status, site, created, reply_by, updated}, {'not_found'}, {'limited', ttl}. */
static const char lookup_lua[] =
    "local f = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if f >= tonumber(ARGV[3]) then return {'limited', tostring(redis.call('TTL', KEYS[1]))} end\n"
    "local id = redis.call('GET', 'cw:caseno:' .. ARGV[1])\n"
    "local r = nil\n"
    "if id then r = redis.call('HMGET', 'cw:case:' .. id, 'phone_check', 'status', 'site',\n"
    "  'created_ms', 'reply_by_ms', 'updated_ms') end\n"
    "if not r or not r[1] or r[1] == '' or r[1] ~= redis.sha1hex(ARGV[1] .. ':' .. ARGV[2]) then\n"
    "  if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end\n"
    "  return {'not_found'}\n"
    "end\n"
    "return {'ok', r[2], r[3], r[4], r[5], r[6]}\n";

/* KEYS: the tenant's sorted set. ARGV: 1 max score, 2 min score, 3 cursor id ('' none),
 * 4 limit, 5 statuses (",a,b," or ''), 6 most entries to scan. Returns {next cursor or '',
 * then 7 values per case: id, case_no, status, channel, created, reply_by, updated}. */
static const char list_lua[] =
    "local out = {''}\n"
    "local limit, cap = tonumber(ARGV[4]), tonumber(ARGV[6])\n"
    "local maxs = tonumber(ARGV[1])\n"
    "local offset, scanned, n = 0, 0, 0\n"
    "local last_id, last_sc = nil, nil\n"
    "while n < limit and scanned < cap do\n"
    "  local b = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', "
    "offset, 100)\n"
    "  if #b == 0 then last_id = nil break end\n"
    "  offset = offset + #b / 2\n"
    "  for i = 1, #b, 2 do\n"
    "    local id, sc = b[i], tonumber(b[i + 1])\n"
    "    if not (ARGV[3] ~= '' and sc == maxs and id >= ARGV[3]) then\n"
    "      scanned = scanned + 1\n"
    "      last_id, last_sc = id, sc\n"
    "      local r = redis.call('HMGET', 'cw:case:' .. id, 'case_no', 'status', 'channel',\n"
    "        'created_ms', 'reply_by_ms', 'updated_ms')\n"
    "      if r[2] and (ARGV[5] == '' or string.find(ARGV[5], ',' .. r[2] .. ',', 1, true)) then\n"
    "        for _, v in ipairs({id, r[1], r[2], r[3], r[4], r[5], r[6]}) do out[#out + 1] = v "
    "end\n"
    "        n = n + 1\n"
    "      end\n"
    "      if n >= limit or scanned >= cap then break end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if last_id and (n >= limit or scanned >= cap) then out[1] = string.format('%d', last_sc) .. "
    "':' .. last_id end\n"
    "return out\n";

/* ARGV: 1 case id or number. Returns the case's fields or {}. */
static const char get_lua[] =
    "local id = ARGV[1]\n"
    "if string.find(id, '-', 1, true) then\n"
    "  id = redis.call('GET', 'cw:caseno:' .. id)\n"
    "  if not id then return {} end\n"
    "end\n"
    "local r = redis.call('HMGET', 'cw:case:' .. id, 'case_no', 'status', 'channel', "
    "'created_ms',\n"
    "  'reply_by_ms', 'updated_ms', 'tenant', 'site', 'view', 'followup')\n"
    "if not r[2] or r[2] == 'pending' then return {} end\n"
    "return {id, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10] or ''}\n";

/* ARGV: 1 case id or number. Returns {} or {id, then name, value... of the whole record, then
 * '#history', then the history entries oldest first}. */
static const char staff_get_lua[] =
    "local id = ARGV[1]\n"
    "if string.find(id, '-', 1, true) then\n"
    "  id = redis.call('GET', 'cw:caseno:' .. id)\n"
    "  if not id then return {} end\n"
    "end\n"
    "local ck = 'cw:case:' .. id\n"
    "local f = redis.call('HGETALL', ck)\n"
    "if #f == 0 then return {} end\n"
    "local out = {id}\n"
    "for i = 1, #f do out[#out + 1] = f[i] end\n"
    "out[#out + 1] = '#history'\n"
    "for _, h in ipairs(redis.call('ZRANGE', ck .. ':history', 0, 999)) do out[#out + 1] = h end\n"
    "return out\n";

/* ARGV: site. The site's open callback tasks (at most 500, by due time), 10 fields each: task
 * id, case id, case no, urgency, due ms, attempts, agent, lease until, state, not before (a
 * customer not reached: the next call's earliest time). */
static const char cb_list_lua[] =
    "local ids = redis.call('ZRANGE', 'cw:cb:' .. ARGV[1] .. ':queue', 0, 499)\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local t = redis.call('HMGET', 'cw:cb:task:' .. id, 'case_id', 'case_no', 'urgency', "
    "'due_ms', 'attempts', 'agent', 'lease_until', 'state', 'not_before')\n"
    "  out[#out + 1] = id\n"
    "  for i = 1, 9 do out[#out + 1] = t[i] or '' end\n"
    "end\n"
    "return out\n";

/* ARGV: 1 task id, 2 agent, 3 lease ms, 4 the sites whose follow-up the caller works
 * (",SH01,SH02,"): a task of any other site is not_found. On Redis's
 * clock: {'ok', case id, case no, lease until}, {'taken', agent, lease until}, {'closed',
 * state}, {'later', not before ms} (the customer was not reached: not yet), {'not_found'}.
 * The same agent claiming again renews its lease. */
static const char cb_claim_lua[] =
    "local tk = 'cw:cb:task:' .. ARGV[1]\n"
    "local t = redis.call('HMGET', tk, 'state', 'site', 'agent', 'lease_until', 'case_id', "
    "'case_no', 'not_before')\n"
    "if not t[1] then return {'not_found'} end\n"
    "if not string.find(ARGV[4], ',' .. (t[2] or '') .. ',', 1, true) then return {'not_found'} "
    "end\n"
    "if t[1] ~= 'open' then return {'closed', t[1]} end\n"
    "local tt = redis.call('TIME')\n"
    "local now = tonumber(tt[1]) * 1000 + math.floor(tonumber(tt[2]) / 1000)\n"
    "if t[3] and t[3] ~= '' and t[3] ~= ARGV[2] and tonumber(t[4] or '0') > now then\n"
    "  return {'taken', t[3], t[4]}\n"
    "end\n"
    /* the customer was not reached: not again before the retry time */
    "if tonumber(t[7] or '0') > now then return {'later', t[7]} end\n"
    "local till = now + tonumber(ARGV[3])\n"
    "redis.call('HSET', tk, 'agent', ARGV[2], 'lease_until', till)\n"
    "return {'ok', t[5], t[6], tostring(till)}\n";

/* ARGV: 1 site, 2 yyyymmdd. For the day's resolved cases, by the state of each case's latest
 * callback task: {resolved, with a task, followed up (done, or the unreachable path ended),
 * waiting (open), count of missing, the missing cases' numbers..., the numbers of those closed
 * as unreachable...}. */
static const char followup_report_lua[] =
    "local ids = redis.call('SMEMBERS', 'cw:resolved:' .. ARGV[1] .. ':' .. ARGV[2])\n"
    "local tasks, followed, waiting, missing, unreachable = 0, 0, 0, {}, {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local tid = redis.call('GET', 'cw:cb:case:' .. id)\n"
    "  local st = tid and redis.call('HGET', 'cw:cb:task:' .. tid, 'state')\n"
    "  if st then\n"
    "    tasks = tasks + 1\n"
    "    if st == 'done' then followed = followed + 1\n"
    "    elseif st == 'unreachable' then followed = followed + 1\n"
    "      unreachable[#unreachable + 1] = redis.call('HGET', 'cw:case:' .. id, 'case_no') or id\n"
    "    elseif st == 'open' then waiting = waiting + 1 end\n"
    "  else missing[#missing + 1] = redis.call('HGET', 'cw:case:' .. id, 'case_no') or id end\n"
    "end\n"
    "local out = {#ids, tasks, followed, waiting, #missing}\n"
    "for _, v in ipairs(missing) do out[#out + 1] = v end\n"
    "for _, v in ipairs(unreachable) do out[#out + 1] = v end\n"
    "return out\n";

/* ARGV: 1 ttl s, then per receipt: task id, status, provider's code, at ms. A task's first
 * receipt is kept (nt:{nt}:rcpt:<task id>); a replay, or a later receipt, changes nothing.
 * Returns recorded, duplicate or unknown_task for each. */
static const char sms_receipts_lua[] =
    "local out = {}\n"
    "for i = 2, #ARGV, 4 do\n"
    "  if redis.call('HEXISTS', 'nt:{nt}:st', ARGV[i]) == 0 then out[#out + 1] = 'unknown_task'\n"
    "  elseif redis.call('SET', 'nt:{nt}:rcpt:' .. ARGV[i], ARGV[i + 1] .. '|' .. ARGV[i + 3] .. "
    "'|' .. ARGV[i + 2], 'NX', 'EX', ARGV[1]) then out[#out + 1] = 'recorded'\n"
    "  else out[#out + 1] = 'duplicate' end\n"
    "end\n"
    "return out\n";

/* ARGV: 1 phone hash, 2 '1' opt out, '0' opt back in. Returns {direction, changed}. */
static const char sms_optout_lua[] =
    "if ARGV[2] == '1' then return {1, redis.call('SADD', 'nt:{nt}:optout', ARGV[1])} end\n"
    "return {0, redis.call('SREM', 'nt:{nt}:optout', ARGV[1])}\n";

/* KEYS: cw:cb:reply:<phone hash>:<code>. Returns the case id waiting for it, or nil. */
static const char sms_reply_code_lua[] = "return redis.call('GET', KEYS[1])\n";

/* ---- the console's lists and the reports (staff.c, reports.c) ---- */

/* The fields the console's list and the reports read of a case, in this order, then for each
 * clock (handoff, tenant_trading, reply, feedback, resolution, followup) what the deadline
 * worker keeps there. */
#define CASE_CLOCK_FIELDS(kind)                                                                    \
    "  for _, c in ipairs({'handoff', 'tenant_trading', 'reply', 'feedback', 'resolution', "       \
    "'followup'}) do\n"                                                                            \
    "    for _, k in ipairs(" kind ") do f[#f + 1] = k .. ':' .. c end\n"                          \
    "  end\n"

/* ARGV: 1 statuses ("a b c"), 2 newest cases read per site and status, 3..7 filters (category,
 * urgency, department, owner, tenant; '' any), 8.. sites. Returns {truncated 0|1, then per
 * matching case: id, site, case_no, status, channel, type, category, urgency, validity,
 * department, owner, tenant, created_ms, summary, repeat_of, followup, acked_ms, resolved_ms,
 * and per clock due, breached, level}. */
static const char cases_list_lua[] =
    "local f = {'site', 'case_no', 'status', 'channel', 'type', 'category', 'urgency', "
    "'validity', 'department', 'owner', 'tenant', 'created_ms', 'summary', 'repeat_of', "
    "'followup', 'acked_ms', 'resolved_ms'}\n"
    "do\n" CASE_CLOCK_FIELDS(
        "{'due', 'breached', 'level'}") "end\n"
                                        "local want = {[6] = ARGV[3], [7] = ARGV[4], [9] = "
                                        "ARGV[5], [10] = ARGV[6], [11] = ARGV[7]}\n"
                                        "local scan = tonumber(ARGV[2])\n"
                                        "local out = {0}\n"
                                        "for i = 8, #ARGV do\n"
                                        "  for st in string.gmatch(ARGV[1], '%S+') do\n"
                                        "    local key = 'cw:idx:site:' .. ARGV[i] .. ':' .. st\n"
                                        "    local ids = redis.call('ZREVRANGE', key, 0, scan - "
                                        "1)\n"
                                        "    if #ids == scan and redis.call('ZCARD', key) > scan "
                                        "then out[1] = 1 end\n"
                                        "    for _, id in ipairs(ids) do\n"
                                        "      local v = redis.call('HMGET', 'cw:case:' .. id, "
                                        "unpack(f))\n"
                                        "      local ok = true\n"
                                        "      for k, w in pairs(want) do if w ~= '' and v[k] ~= w "
                                        "then ok = false end end\n"
                                        "      if ok then\n"
                                        "        out[#out + 1] = id\n"
                                        "        for k = 1, #f do out[#out + 1] = v[k] or '' end\n"
                                        "      end\n"
                                        "    end\n"
                                        "  end\n"
                                        "end\n"
                                        "return out\n";

/* ARGV: 1 site, 2 from ms, 3 to ms (not included), 4 at most this many. The cases the site
 * received in [from, to), whatever their status now: {over 0|1, ids...}. */
static const char report_ids_lua[] =
    "local out, max = {0}, tonumber(ARGV[4])\n"
    "for _, st in ipairs({'received', 'assigned', 'acknowledged', 'reopened', 'resolved', "
    "'closed'}) do\n"
    "  local ids = redis.call('ZRANGEBYSCORE', 'cw:idx:site:' .. ARGV[1] .. ':' .. st, ARGV[2], "
    "'(' .. ARGV[3], 'LIMIT', 0, max + 2 - #out)\n"
    "  for _, id in ipairs(ids) do out[#out + 1] = id end\n"
    "  if #out - 1 > max then out[1] = 1 return out end\n"
    "end\n"
    "return out\n";

/* ARGV: case ids. Per case: site, status, channel, type, category, urgency, validity,
 * department, created_ms, acked_ms, replied_ms, resolved_ms, closed_ms, followup, repeat_of,
 * cause, then per clock due, stopped, breached ('' when absent). */
static const char report_rows_lua[] =
    "local f = {'site', 'status', 'channel', 'type', 'category', 'urgency', 'validity', "
    "'department', 'created_ms', 'acked_ms', 'replied_ms', 'resolved_ms', 'closed_ms', "
    "'followup', 'repeat_of', 'cause'}\n"
    "do\n" CASE_CLOCK_FIELDS(
        "{'due', 'stopped', 'breached'}") "end\n"
                                          "local out = {}\n"
                                          "for _, id in ipairs(ARGV) do\n"
                                          "  local v = redis.call('HMGET', 'cw:case:' .. id, "
                                          "unpack(f))\n"
                                          "  for k = 1, #f do out[#out + 1] = v[k] or '' end\n"
                                          "end\n"
                                          "return out\n";

/* ARGV: 1 site, 2.. days (yyyymmdd). Per day, of the cases resolved that day (the gateway's
 * cw:resolved sets, as for the follow-up report): resolved, with a callback task, followed up
 * (done or ended unreachable), waiting, without a task, ended unreachable, then of those
 * followed up the customer's answer: satisfied, not satisfied. Then the case numbers of up to
 * 100 resolved cases without a callback task. */
static const char report_followup_lua[] =
    "local out, missing = {}, {}\n"
    "for i = 2, #ARGV do\n"
    "  local ids = redis.call('SMEMBERS', 'cw:resolved:' .. ARGV[1] .. ':' .. ARGV[i])\n"
    "  local c = {#ids, 0, 0, 0, 0, 0, 0, 0}\n"
    "  for _, id in ipairs(ids) do\n"
    "    local tid = redis.call('GET', 'cw:cb:case:' .. id)\n"
    "    local st = tid and redis.call('HGET', 'cw:cb:task:' .. tid, 'state')\n"
    "    if st then\n"
    "      c[2] = c[2] + 1\n"
    "      if st == 'done' or st == 'unreachable' then c[3] = c[3] + 1 end\n"
    "      if st == 'open' then c[4] = c[4] + 1 end\n"
    "      if st == 'unreachable' then c[6] = c[6] + 1 end\n"
    "      if st == 'done' or st == 'unreachable' then\n"
    "        local fu = redis.call('HGET', 'cw:case:' .. id, 'followup')\n"
    "        if fu == 'satisfied' then c[7] = c[7] + 1 elseif fu == 'not_satisfied' then "
    "c[8] = c[8] + 1 end\n"
    "      end\n"
    "    else\n"
    "      c[5] = c[5] + 1\n"
    "      if #missing < 100 then missing[#missing + 1] = redis.call('HGET', 'cw:case:' .. id, "
    "'case_no') or id end\n"
    "    end\n"
    "  end\n"
    "  for _, v in ipairs(c) do out[#out + 1] = v end\n"
    "end\n"
    "for _, v in ipairs(missing) do out[#out + 1] = v end\n"
    "return out\n";

/* ARGV: 1 site, 2 now ms, 3 newest cases read per status. The site's open cases now, and of
 * them those with a running clock past its due time: {open, overdue, truncated 0|1}. */
static const char report_open_lua[] =
    "local f = {}\n"
    "for _, c in ipairs({'handoff', 'tenant_trading', 'reply', 'feedback', 'resolution', "
    "'followup'}) do f[#f + 1] = 'due:' .. c end\n"
    "local now, scan = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local open, overdue, cut = 0, 0, 0\n"
    "for _, st in ipairs({'received', 'assigned', 'acknowledged', 'reopened', 'resolved'}) do\n"
    "  local key = 'cw:idx:site:' .. ARGV[1] .. ':' .. st\n"
    "  local n = redis.call('ZCARD', key)\n"
    "  open = open + n\n"
    "  if n > scan then cut = 1 end\n"
    "  for _, id in ipairs(redis.call('ZREVRANGE', key, 0, scan - 1)) do\n"
    "    local late = false\n"
    "    for _, d in ipairs(redis.call('HMGET', 'cw:case:' .. id, unpack(f))) do\n"
    "      if d and tonumber(d) < now then late = true end\n"
    "    end\n"
    "    if late then overdue = overdue + 1 end\n"
    "  end\n"
    "end\n"
    "return {open, overdue, cut}\n";

/* ARGV: 1 site, 2.. staff ids. The one with the fewest open cases at the site (cw:load, the
 * router's), the first of equals. */
static const char least_loaded_lua[] =
    "local loads = redis.call('HMGET', 'cw:load:' .. ARGV[1], unpack(ARGV, 2, #ARGV))\n"
    "local best, who = nil, ''\n"
    "for i = 2, #ARGV do\n"
    "  local l = tonumber(loads[i - 1] or '0')\n"
    "  if not best or l < best then best, who = l, ARGV[i] end\n"
    "end\n"
    "return {who}\n";

static const char *const sources[GW_S__COUNT] = {
    [GW_S_INTAKE] = intake_lua,
    [GW_S_INTAKE_COMMIT] = intake_commit_lua,
    [GW_S_RELEASE] = release_lua,
    [GW_S_EVENT] = event_lua,
    [GW_S_EVENT_COMMIT] = cw_case_event_commit_lua,
    [GW_S_LOOKUP] = lookup_lua,
    [GW_S_LIST] = list_lua,
    [GW_S_GET] = get_lua,
    [GW_S_STAFF_GET] = staff_get_lua,
    [GW_S_CB_LIST] = cb_list_lua,
    [GW_S_CB_CLAIM] = cb_claim_lua,
    [GW_S_FOLLOWUP_REPORT] = followup_report_lua,
    [GW_S_SMS_RECEIPTS] = sms_receipts_lua,
    [GW_S_SMS_OPTOUT] = sms_optout_lua,
    [GW_S_SMS_REPLY_CODE] = sms_reply_code_lua,
    [GW_S_CASES_LIST] = cases_list_lua,
    [GW_S_REPORT_IDS] = report_ids_lua,
    [GW_S_REPORT_ROWS] = report_rows_lua,
    [GW_S_REPORT_FOLLOWUP] = report_followup_lua,
    [GW_S_REPORT_OPEN] = report_open_lua,
    [GW_S_LEAST_LOADED] = least_loaded_lua,
};

int gw_store_init(struct gw *gw)
{
    for (int i = 0; i < GW_S__COUNT; i++)
        if (!(gw->scripts[i] = cw_redis_script_new(gw->redis, sources[i]))) return -1;
    return 0;
}

struct call {
    struct gw_req *r;
    void (*cb)(struct gw_req *r, const redisReply *reply, const char *err);
};

static void on_reply(void *arg, const redisReply *reply, const char *err)
{
    struct call *c = arg;
    struct gw_req *r = c->r;
    c->cb(r, reply, err);
    free(c);
    gw_req_release(r);
}

int gw_store_run(struct gw_req *r, enum gw_script s, int nkeys, int argc, const char **argv,
                 void (*cb)(struct gw_req *r, const redisReply *reply, const char *err))
{
    struct call *c = malloc(sizeof *c);
    if (!c) return CW_REDIS_NO_MEMORY;
    *c = (struct call){r, cb};
    int rc =
        cw_redis_script_run(r->gw->redis, r->gw->scripts[s], on_reply, c, nkeys, argc, argv, NULL);
    if (rc != 0) {
        free(c);
        return rc;
    }
    gw_req_hold(r);
    return 0;
}

const char *gw_reply_str(const redisReply *reply, size_t i)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements) return "";
    const redisReply *e = reply->element[i];
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) return e->str;
    return "";
}

void gw_store_idem_key(struct gw_req *r, const char *header_value)
{
    r->idem_key[0] = '\0';
    if (!header_value) return;
    /* The key is hashed with its endpoint: any bytes the client chose make a clean Redis key,
     * and the same key on another endpoint is another record. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char input[300];
    int n = snprintf(input, sizeof input, "%d\n%s", (int)r->route, header_value);
    if (n < 0 || (size_t)n >= sizeof input ||
        !EVP_Digest(input, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
        return;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const char *who = r->client == GW_STAFF    ? r->staff->id
                      : r->client == GW_TENANT ? r->tenant->id
                                               : "-";
    snprintf(r->idem_key, sizeof r->idem_key, "cw:idem:%c:%s:%s",
             r->client == GW_STAFF    ? 's'
             : r->client == GW_TENANT ? 't'
                                      : 'p',
             who, hex);
}

bool gw_store_idem_answer(struct gw_req *r, const redisReply *reply, const char *what)
{
    const char *status = gw_reply_str(reply, 0);
    if (strcmp(status, "conflict") == 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "this Idempotency-Key was used with a different body; use a new key for a new %s",
                 what);
        gw_error(r, 409, "idempotency_conflict", msg, NULL);
        return true;
    }
    if (strcmp(status, "busy") == 0) {
        gw_error_retry(
            r, 409, "request_in_progress",
            "a request with this Idempotency-Key is still being processed; retry shortly", 1);
        return true;
    }
    if (strcmp(status, "done") == 0) {
        const char *resp = gw_reply_str(reply, 1);
        gw_reply_raw(r, 202, resp, strlen(resp));
        return true;
    }
    return false;
}

static void released(struct gw_req *r, const redisReply *reply, const char *err)
{
    (void)reply;
    if (err) cw_warn("gateway.release_failed", "request_id=%s error=\"%s\"", r->request_id, err);
}

void gw_store_release(struct gw_req *r)
{
    if (!r->idem_key[0]) return;
    const char *argv[] = {r->idem_key};
    int rc = gw_store_run(r, GW_S_RELEASE, 1, 1, argv, released);
    if (rc != 0)
        cw_warn("gateway.release_failed", "request_id=%s error=\"%s\"", r->request_id,
                cw_redis_strerror(rc));
}

void gw_store_unavailable(struct gw_req *r, int produce_result, const char *what)
{
    char msg[160];
    if (produce_result == CW_PRODUCE_QUEUE_FULL)
        snprintf(msg, sizeof msg, "too many writes in flight; retry shortly");
    else
        snprintf(msg, sizeof msg, "Kafka did not take the %s; retry with the same Idempotency-Key",
                 what);
    gw_error_retry(r, 503, "unavailable", msg, produce_result == CW_PRODUCE_QUEUE_FULL ? 1 : 2);
}
