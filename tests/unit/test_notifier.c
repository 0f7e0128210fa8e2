/* The notifier's pure parts: rendering SMS templates (placeholders, missing values, lengths in
 * characters), the phone hash that keys limits and the opt-out list, and the chain's sms and
 * webhooks sections (defaults, a provider's settings, the problems reported). */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "hooks.h"
#include "ids.h"
#include "outbox.h"
#include "sms.h"
#include "testing.h"
#include "webhook.h"

START_TEST(render_fills_placeholders)
{
    const char *keys[] = {"case_no", "reply_by"}, *vals[] = {"SH01-261125-0042", "18:00"};
    char out[200], missing[32];
    int n = nt_sms_render("【华信】编号{case_no}，{reply_by}前答复。{status_url}", keys, vals, 2,
                          out, sizeof out, missing, sizeof missing);
    ck_assert_str_eq(out, "【华信】编号SH01-261125-0042，18:00前答复。");
    ck_assert_str_eq(missing, "status_url");
    ck_assert_int_eq(n, (int)nt_utf8_chars(out));
    ck_assert_int_eq(n, 6 + 16 + 1 + 5 + 4); /* 【华信】编号 + number + ， + 18:00 + 前答复。 */
}
END_TEST

START_TEST(render_refuses_what_does_not_fit)
{
    const char *keys[] = {"x"}, *vals[] = {"0123456789"};
    char out[8], missing[8];
    ck_assert_int_eq(nt_sms_render("{x}", keys, vals, 1, out, sizeof out, missing, sizeof missing),
                     -1);
    ck_assert_int_eq(nt_sms_render("abc", keys, vals, 1, out, 4, NULL, 0), 3);
    ck_assert_int_eq(nt_sms_render("abcd", keys, vals, 1, out, 4, NULL, 0), -1);
    /* a brace without its closing one is text */
    ck_assert_int_eq(nt_sms_render("a{b", keys, vals, 1, out, sizeof out, NULL, 0), 3);
    ck_assert_str_eq(out, "a{b");
}
END_TEST

START_TEST(utf8_counts_characters)
{
    ck_assert_uint_eq(nt_utf8_chars(""), 0);
    ck_assert_uint_eq(nt_utf8_chars("abc"), 3);
    ck_assert_uint_eq(nt_utf8_chars("华信"), 2);
    ck_assert_uint_eq(nt_utf8_chars("👍a"), 2);
}
END_TEST

START_TEST(phone_hash_ignores_punctuation_and_country_code)
{
    char a[CW_PHONE_HASH_LEN + 1], b[CW_PHONE_HASH_LEN + 1], c[CW_PHONE_HASH_LEN + 1];
    cw_phone_hash("+86 138-0013-8000", a);
    cw_phone_hash("8613800138000", b);
    cw_phone_hash("13800138000", c);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c); /* a Chinese mobile number's country code does not count */
    cw_phone_hash("008613800138000", b);
    ck_assert_str_eq(b, c);
    cw_phone_hash("13800138001", b);
    ck_assert_str_ne(b, c);
    /* printf 13900000777 | sha256sum | cut -c1-16: what notifier.sh puts in the opt-out set */
    cw_phone_hash("13900000777", c);
    ck_assert_str_eq(c, "6dcd38e66217705f");
}
END_TEST

struct report {
    char *buf;
    size_t len, used;
};

/* Every problem, one per line, as the services log them. */
static void collect(const struct cw_chain_error *e, void *arg)
{
    struct report *r = arg;
    char line[600];
    cw_chain_error_format(e, line, sizeof line);
    int n = snprintf(r->buf + r->used, r->len - r->used, "%s\n", line);
    if (n > 0 && (size_t)n < r->len - r->used) r->used += (size_t)n;
}

/* The example chain with its sms section replaced by `extra` (appended at the end). */
static cw_chain *chain_with(const char *extra, char *problems, size_t plen)
{
    char path[] = "/tmp/cw-notifier-chain-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *in = fopen("deploy/chain.example.yaml", "r"), *out = fdopen(fd, "w");
    ck_assert_ptr_nonnull(in);
    char line[4096];
    int skipping = 0;
    while (fgets(line, sizeof line, in)) {
        if (!strncmp(line, "sms:", 4))
            skipping = 1;
        else if (skipping && line[0] == '\n')
            skipping = 0;
        if (!skipping) fputs(line, out);
    }
    fputs(extra, out);
    fclose(in);
    fclose(out);
    struct report r = {problems, plen, 0};
    problems[0] = '\0';
    cw_chain *c = cw_chain_load(path, collect, &r);
    unlink(path);
    return c;
}

START_TEST(chain_sms_defaults)
{
    char problems[4096] = "";
    cw_chain *c = chain_with("", problems, sizeof problems);
    ck_assert_msg(c != NULL, "%s", problems);
    const struct cw_sms_settings *s = cw_chain_sms(c);
    ck_assert_int_eq(s->provider, CW_SMS_FILE);
    ck_assert_str_eq(s->file, "var/sms.log");
    ck_assert_int_eq(s->per_minute, 1);
    ck_assert_int_eq(s->per_hour, 5);
    ck_assert_int_eq(s->per_day, 10);
    ck_assert_int_eq(s->quiet_from, 21 * 60);
    ck_assert_int_eq(s->quiet_to, 8 * 60);
    ck_assert_int_eq(s->max_attempts, 10);
    ck_assert_ptr_null(s->status_link);
    ck_assert_int_eq(cw_chain_webhooks(c)->nallow_addresses, 0);
    cw_chain_free(c);
}
END_TEST

START_TEST(chain_sms_aliyun)
{
    char problems[4096] = "";
    setenv("CW_TEST_ALI_SECRET", "testSecret-0123456789", 1);
    cw_chain *c = chain_with("sms:\n"
                             "  provider: aliyun\n"
                             "  aliyun: {access_key_id: testId, access_key_secret_env: "
                             "CW_TEST_ALI_SECRET, sign_name: 华信,\n"
                             "           template_codes: {case_received: SMS_71390007}}\n"
                             "  per_number: {minute: 2, hour: 0}\n"
                             "  quiet_hours: \"22:30-07:00\"\n"
                             "  status_link: \"https://cs.example.com/s/{case_no}\"\n"
                             "webhooks: {timeout: 3s, allow_addresses: [loopback]}\n",
                             problems, sizeof problems);
    ck_assert_msg(c != NULL, "%s", problems);
    const struct cw_sms_settings *s = cw_chain_sms(c);
    ck_assert_int_eq(s->provider, CW_SMS_ALIYUN);
    ck_assert_str_eq(s->aliyun_key_secret, "testSecret-0123456789");
    ck_assert_str_eq(s->aliyun_region, "cn-hangzhou");
    ck_assert_str_eq(cw_chain_sms_code(c, "case_received"), "SMS_71390007");
    ck_assert_ptr_null(cw_chain_sms_code(c, "staff_assigned"));
    ck_assert_int_eq(s->per_minute, 2);
    ck_assert_int_eq(s->per_hour, 0);
    ck_assert_int_eq(s->per_day, 10);
    ck_assert_int_eq(s->quiet_from, 22 * 60 + 30);
    ck_assert_int_eq(s->quiet_to, 7 * 60);
    ck_assert_int_eq(cw_chain_webhooks(c)->timeout_ms, 3000);
    ck_assert_str_eq(cw_chain_webhooks(c)->allow_addresses[0], "loopback");
    cw_chain_free(c);
}
END_TEST

START_TEST(chain_sms_problems)
{
    char problems[4096] = "";
    unsetenv("CW_TEST_NOPE");
    cw_chain *c = chain_with("sms:\n"
                             "  provider: carrier-pigeon\n"
                             "  timeout: 2wd\n"
                             "  status_link: \"https://cs.example.com/s\"\n"
                             "  per_number: {minute: -1}\n"
                             "webhooks: {allow_addresses: [intranet]}\n",
                             problems, sizeof problems);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(problems, "unknown SMS provider \"carrier-pigeon\""), "%s", problems);
    ck_assert_msg(strstr(problems, "sms.timeout"), "%s", problems);
    ck_assert_msg(strstr(problems, "needs {case_no}"), "%s", problems);
    ck_assert_msg(strstr(problems, "sms.per_number.minute"), "%s", problems);
    ck_assert_msg(strstr(problems, "unknown address kind \"intranet\""), "%s", problems);
    c = chain_with("sms:\n  provider: aliyun\n  aliyun: {access_key_id: x, "
                   "access_key_secret_env: CW_TEST_NOPE, sign_name: y, template_codes: "
                   "{case_recieved: SMS_1}}\n",
                   problems, sizeof problems);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(problems, "environment variable CW_TEST_NOPE is not set"), "%s", problems);
    ck_assert_msg(strstr(problems, "no SMS template \"case_recieved\""), "%s", problems);
}
END_TEST

/* A tenant's webhook URL that the notifier would refuse at send time is refused at load. */
START_TEST(chain_webhook_url_shape)
{
    char problems[4096] = "";
    /* the example's first tenant webhook, given a user and password */
    char path[] = "/tmp/cw-notifier-hook-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *in = fopen("deploy/chain.example.yaml", "r"), *out = fdopen(fd, "w");
    ck_assert_ptr_nonnull(in);
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        if (strstr(line, "url: \"https://hooks.yuechafang.example/casewire\""))
            fputs("      url: \"https://user:pw@hooks.yuechafang.example/casewire\"\n", out);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    struct report r = {problems, sizeof problems, 0};
    problems[0] = '\0';
    cw_chain *c = cw_chain_load(path, collect, &r);
    unlink(path);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(problems, "webhook.url") && strstr(problems, "user:password@"), "%s",
                  problems);
}
END_TEST

/* A tenant's case event becomes a webhook task with the JSON the tenant gets; a case without
 * a tenant, a tenant without a webhook, and deadline events become nothing. */
START_TEST(hook_task_for_tenant_events)
{
    cw_chain *c = cw_chain_load("deploy/chain.example.yaml", NULL, NULL);
    ck_assert_ptr_nonnull(c);
    cw_event_meta meta;
    struct cw_event_ids ids;
    ck_assert_int_eq(cw_event_meta_init(&meta, &ids, "gateway", "01JDH00KAAAAAAAAAAAAAAAAAA",
                                        "SH01", "T-SH01-0312", NULL),
                     0);
    meta.occurred_ms = 1795748400123LL; /* 2026-11-27T03:00:00.123Z */
    Casewire__V1__CaseEvent e = CASEWIRE__V1__CASE_EVENT__INIT;
    e.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE;
    e.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_STAFF;
    e.note = "已转楼层主管";
    cw_envelope rec = CASEWIRE__V1__ENVELOPE__INIT;
    rec.meta = &meta;
    rec.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    rec.case_event = &e;
    const char *why;
    cw_envelope *t = nt_hook_task(c, &rec, &why);
    ck_assert_ptr_nonnull(t);
    const Casewire__V1__NotificationTask *task = t->notification_task;
    ck_assert_int_eq(task->kind, CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK);
    char want_id[64];
    snprintf(want_id, sizeof want_id, "wh:%s", meta.event_id);
    ck_assert_str_eq(task->task_id, want_id);
    ck_assert_str_eq(t->meta->tenant_id, "T-SH01-0312");
    char body[1024];
    snprintf(body, sizeof body, "%.*s", (int)task->webhook_body.len, task->webhook_body.data);
    char want[600];
    snprintf(want, sizeof want,
             "{\"type\":\"case.event\",\"id\":\"%s\",\"case_id\":\"01JDH00KAAAAAAAAAAAAAAAAAA\","
             "\"site\":\"SH01\",\"tenant\":\"T-SH01-0312\",\"occurred_at\":"
             "\"2026-11-27T03:00:00.123Z\",\"data\":{\"action\":\"acknowledge\",\"actor_kind\":"
             "\"staff\"}}",
             meta.event_id);
    ck_assert_str_eq(body, want); /* a staff note is internal: not in the body */
    cw_event_free(t);

    /* the tenant's own words go back to it */
    e.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_TENANT;
    e.note = "已退款";
    t = nt_hook_task(c, &rec, &why);
    ck_assert_ptr_nonnull(t);
    snprintf(body, sizeof body, "%.*s", (int)t->notification_task->webhook_body.len,
             t->notification_task->webhook_body.data);
    ck_assert_msg(strstr(body, "\"note\":\"已退款\""), "%s", body);
    cw_event_free(t);

    meta.tenant_id = "";
    ck_assert_ptr_null(nt_hook_task(c, &rec, &why));
    meta.tenant_id = "T-NOSUCH";
    ck_assert_ptr_null(nt_hook_task(c, &rec, &why));
    ck_assert_str_eq(why, "unknown tenant");
    meta.tenant_id = "T-SH01-0312";
    Casewire__V1__DeadlineFired f = CASEWIRE__V1__DEADLINE_FIRED__INIT;
    rec.body_case = CASEWIRE__V1__ENVELOPE__BODY_DEADLINE_FIRED;
    rec.deadline_fired = &f;
    ck_assert_ptr_null(nt_hook_task(c, &rec, &why));
    cw_chain_free(c);
}
END_TEST

START_TEST(hook_allow_mask_from_chain_names)
{
    const char *names[] = {"loopback", "link_local"};
    struct cw_webhook_settings ws = {.allow_addresses = names, .nallow_addresses = 2};
    unsigned mask;
    const char *bad = NULL;
    ck_assert_int_eq(nt_hook_allow_mask(&ws, &mask, &bad), 0);
    ck_assert_uint_eq(mask, CW_ADDR_BIT(CW_ADDR_LOOPBACK) | CW_ADDR_BIT(CW_ADDR_LINK_LOCAL));
    /* allowing link-local does not open the metadata address */
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_METADATA, mask), 0);
    /* every kind the chain accepts is one the guard knows */
    const char *all[] = {"loopback",    "private",   "link_local", "metadata", "cgnat",
                         "unspecified", "multicast", "broadcast",  "reserved", "documentation"};
    ws = (struct cw_webhook_settings){.allow_addresses = all, .nallow_addresses = 10};
    ck_assert_int_eq(nt_hook_allow_mask(&ws, &mask, &bad), 0);
    const char *nope[] = {"intranet"};
    ws = (struct cw_webhook_settings){.allow_addresses = nope, .nallow_addresses = 1};
    ck_assert_int_eq(nt_hook_allow_mask(&ws, &mask, &bad), -1);
    ck_assert_str_eq(bad, "intranet");
}
END_TEST

/* What an HTTP provider that cannot be reached means: a send refused before it went out was not
 * sent (try again); a status check that cannot get through says nothing (ask again: never a
 * resend, which could reach the phone twice). */
struct outcome {
    struct event_base *base;
    int got; /* enum nt_sms_outcome, -1 not yet */
};

static void on_outcome(void *arg, const struct nt_sms_result *r)
{
    struct outcome *o = arg;
    o->got = (int)r->outcome;
    event_base_loopbreak(o->base);
}

START_TEST(unreachable_provider_send_and_status)
{
    char problems[4096] = "";
    /* port 1 on loopback: nothing listens there, the connection is refused at once */
    cw_chain *c = chain_with("sms:\n  provider: http\n  http: {url: \"http://127.0.0.1:1/sms\", "
                             "status_url: \"http://127.0.0.1:1/status\"}\n  timeout: 2s\n",
                             problems, sizeof problems);
    ck_assert_msg(c != NULL, "%s", problems);
    struct event_base *base = event_base_new();
    char err[256];
    nt_http *http = nt_http_new(base, 16, err, sizeof err);
    ck_assert_msg(http != NULL, "%s", err);
    nt_sms *sms = nt_sms_new(cw_chain_sms(c), c, http, base, err, sizeof err);
    ck_assert_msg(sms != NULL, "%s", err);
    struct nt_sms_msg m = {.id = "t-1",
                           .phone = "+8613800138000",
                           .text = "x",
                           .template_id = "case_received",
                           .params_json = "{}"};
    struct outcome o = {base, -1};
    ck_assert_int_eq(nt_sms_send(sms, &m, on_outcome, &o), 0);
    event_base_dispatch(base);
    ck_assert_int_eq(o.got, NT_SMS_RETRY);
    o.got = -1;
    ck_assert_int_eq(nt_sms_status(sms, &m, on_outcome, &o), 0);
    event_base_dispatch(base);
    ck_assert_int_eq(o.got, NT_SMS_NO_ANSWER);
    nt_sms_free(sms);
    nt_http_free(http);
    event_base_free(base);
    cw_chain_free(c);
}
END_TEST

CW_TEST_MAIN("notifier", render_fills_placeholders, render_refuses_what_does_not_fit,
             utf8_counts_characters, phone_hash_ignores_punctuation_and_country_code,
             chain_sms_defaults, chain_sms_aliyun, chain_sms_problems, chain_webhook_url_shape,
             hook_task_for_tenant_events, hook_allow_mask_from_chain_names,
             unreachable_provider_send_and_status)
