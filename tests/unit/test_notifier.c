/* The notifier's pure parts: rendering SMS templates (placeholders, missing values, lengths in
 * characters), the phone hash that keys limits and the opt-out list, and the chain's sms and
 * webhooks sections (defaults, a provider's settings, the problems reported). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "outbox.h"
#include "sms.h"
#include "testing.h"

START_TEST(render_fills_placeholders)
{
    const char *keys[] = {"case_no", "reply_by"}, *vals[] = {"SH01-261125-0042", "18:00"};
    char out[200], missing[32];
    int n = nt_sms_render("【华信】编号{case_no}，{reply_by}前答复。{status_url}", keys, vals, 2, out,
                          sizeof out, missing, sizeof missing);
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

START_TEST(phone_hash_ignores_punctuation)
{
    char a[NT_PHONE_HASH_LEN + 1], b[NT_PHONE_HASH_LEN + 1], c[NT_PHONE_HASH_LEN + 1];
    nt_phone_hash("+86 138-0013-8000", a);
    nt_phone_hash("8613800138000", b);
    nt_phone_hash("13800138000", c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    /* printf 13900000777 | sha256sum | cut -c1-16: what notifier.sh puts in the opt-out set */
    nt_phone_hash("13900000777", c);
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
        if (!strncmp(line, "sms:", 4)) skipping = 1;
        else if (skipping && line[0] == '\n') skipping = 0;
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
    ck_assert_int_eq(s->max_attempts, 6);
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
                   "access_key_secret_env: CW_TEST_NOPE, sign_name: y, template_codes: {}}\n",
                   problems, sizeof problems);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(problems, "environment variable CW_TEST_NOPE is not set"), "%s", problems);
}
END_TEST

CW_TEST_MAIN("notifier", render_fills_placeholders, render_refuses_what_does_not_fit,
             utf8_counts_characters, phone_hash_ignores_punctuation, chain_sms_defaults,
             chain_sms_aliyun, chain_sms_problems)
