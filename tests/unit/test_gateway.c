/* The gateway's field rules (services/gateway/validate.c) and rate limiter (ratelimit.c):
 * what a customer's form or a tenant's system is told when a field is wrong. */
#include "testing.h"
#include <jansson.h>
#include <string.h>

#include "../../services/gateway/gateway.h"

START_TEST(phones_normalise_to_e164)
{
    char out[24];
    ck_assert_int_eq(gw_normalize_phone("13800138000", out, sizeof out), 0);
    ck_assert_str_eq(out, "+8613800138000");
    ck_assert_int_eq(gw_normalize_phone("+86 138 0013 8000", out, sizeof out), 0);
    ck_assert_str_eq(out, "+8613800138000");
    ck_assert_int_eq(gw_normalize_phone("0086-138-0013-8000", out, sizeof out), 0);
    ck_assert_str_eq(out, "+8613800138000");
    ck_assert_int_eq(gw_normalize_phone("+85291234567", out, sizeof out), 0);
    ck_assert_str_eq(out, "+85291234567");
    ck_assert_int_eq(gw_normalize_phone("(+1) 415-555-0100", out, sizeof out), 0);
    ck_assert_str_eq(out, "+14155550100");
    ck_assert_int_eq(gw_normalize_phone("1+3800138000", out, sizeof out), -1); /* + not first */
    ck_assert_int_eq(gw_normalize_phone("+1 415-555-0100", out, sizeof out), 0);
    ck_assert_str_eq(out, "+14155550100");
    /* a landline, a mobile with a wrong second digit, too short, letters, +0 */
    ck_assert_int_eq(gw_normalize_phone("021-62881234", out, sizeof out), -1);
    ck_assert_int_eq(gw_normalize_phone("12800138000", out, sizeof out), -1);
    ck_assert_int_eq(gw_normalize_phone("1380013800", out, sizeof out), -1);
    ck_assert_int_eq(gw_normalize_phone("1380013800x", out, sizeof out), -1);
    ck_assert_int_eq(gw_normalize_phone("+0123456789", out, sizeof out), -1);
    ck_assert_int_eq(gw_normalize_phone("+1234567890123456", out, sizeof out), -1); /* 16 digits */
    ck_assert_int_eq(gw_normalize_phone("", out, sizeof out), -1);
}
END_TEST

START_TEST(dates_are_real_calendar_days)
{
    ck_assert_int_eq(gw_parse_date("2026-11-20"), 20261120);
    ck_assert_int_eq(gw_parse_date("2024-02-29"), 20240229);
    ck_assert_int_eq(gw_parse_date("2026-02-29"), -1);
    ck_assert_int_eq(gw_parse_date("2026-04-31"), -1);
    ck_assert_int_eq(gw_parse_date("2026-13-01"), -1);
    ck_assert_int_eq(gw_parse_date("2026-1-01"), -1);
    ck_assert_int_eq(gw_parse_date("2026-11-20T10:00"), -1);
    ck_assert_int_eq(gw_parse_date("20261120"), -1);
}
END_TEST

static int64_t amount(const char *json)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    int64_t c = gw_parse_amount(v);
    json_decref(v);
    return c;
}

START_TEST(amounts_are_cents_with_two_decimals_at_most)
{
    ck_assert_int_eq(amount("\"199.00\""), 19900);
    ck_assert_int_eq(amount("\"199.5\""), 19950);
    ck_assert_int_eq(amount("\"0\""), 0);
    ck_assert_int_eq(amount("199"), 19900);
    ck_assert_int_eq(amount("19.99"), 1999);
    ck_assert_int_eq(amount("\"10000000\""), 1000000000);
    ck_assert_int_eq(amount("\"10000000.01\""), -1);
    ck_assert_int_eq(amount("\"1.999\""), -1);
    ck_assert_int_eq(amount("1.999"), -1);
    ck_assert_int_eq(amount("-1"), -1);
    ck_assert_int_eq(amount("\"-1\""), -1);
    ck_assert_int_eq(amount("\"1.\""), -1);
    ck_assert_int_eq(amount("\"¥199\""), -1);
    ck_assert_int_eq(amount("true"), -1);
}
END_TEST

START_TEST(text_limits_count_characters_not_bytes)
{
    ck_assert_uint_eq(gw_utf8_chars("保温杯漏水"), 5);
    ck_assert_uint_eq(gw_utf8_chars("abc"), 3);
    json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "ok", "保温杯", "long", "保温杯漏水", "blank",
                          "  \t", "num", 5);
    struct gw_verr e = {0};
    const char *s;
    ck_assert_int_eq(gw_get_string(o, "ok", "", 3, true, &s, &e), 0);
    ck_assert_str_eq(s, "保温杯");
    ck_assert_int_eq(gw_get_string(o, "long", "customer", 3, true, &s, &e), -1);
    ck_assert_str_eq(e.field, "customer.long");
    ck_assert_ptr_nonnull(strstr(e.message, "5 characters"));
    ck_assert_int_eq(gw_get_string(o, "blank", "", 10, true, &s, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.message, "must not be empty"));
    ck_assert_int_eq(gw_get_string(o, "blank", "", 10, false, &s, &e), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(gw_get_string(o, "num", "", 10, false, &s, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.message, "must be a string"));
    ck_assert_int_eq(gw_get_string(o, "missing", "", 10, true, &s, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.message, "is required"));
    json_decref(o);
}
END_TEST

START_TEST(unknown_and_server_owned_fields_are_named)
{
    static const char *const allowed[] = {"site", "channel", "text", "customer", NULL};
    struct gw_verr e = {0};
    json_t *o = json_pack("{s:s,s:s}", "site", "SH01", "chanel", "web");
    ck_assert_int_eq(gw_check_keys(o, "", allowed, &e), -1);
    ck_assert_str_eq(e.code, "unknown_field");
    ck_assert_str_eq(e.field, "chanel");
    ck_assert_ptr_nonnull(strstr(e.message, "did you mean channel"));
    json_decref(o);
    o = json_pack("{s:s,s:s}", "site", "SH01", "status", "closed");
    ck_assert_int_eq(gw_check_keys(o, "", allowed, &e), -1);
    ck_assert_str_eq(e.code, "server_owned_field");
    ck_assert_str_eq(e.field, "status");
    json_decref(o);
    o = json_pack("{s:s}", "zzzzzz", "x");
    ck_assert_int_eq(gw_check_keys(o, "customer", allowed, &e), -1);
    ck_assert_str_eq(e.field, "customer.zzzzzz");
    ck_assert_ptr_null(strstr(e.message, "did you mean"));
    json_decref(o);
    o = json_pack("{s:s,s:s}", "site", "SH01", "text", "x");
    ck_assert_int_eq(gw_check_keys(o, "", allowed, &e), 0);
    json_decref(o);
}
END_TEST

START_TEST(rate_limits_allow_bursts_then_refill)
{
    /* 60 a minute (one a second), bursts of 3 */
    struct gw_rate *rl = gw_rate_new(64, 60, 60000, 3);
    int retry = 0;
    int64_t t = 1000000;
    ck_assert(gw_rate_take(rl, "10.0.0.1", t, &retry));
    ck_assert(gw_rate_take(rl, "10.0.0.1", t, &retry));
    ck_assert(gw_rate_take(rl, "10.0.0.1", t, &retry));
    ck_assert(!gw_rate_take(rl, "10.0.0.1", t, &retry));
    ck_assert_int_eq(retry, 1);
    /* another key has its own bucket */
    ck_assert(gw_rate_take(rl, "10.0.0.2", t, &retry));
    /* one second later one more is allowed, not two */
    ck_assert(gw_rate_take(rl, "10.0.0.1", t + 1000, &retry));
    ck_assert(!gw_rate_take(rl, "10.0.0.1", t + 1000, &retry));
    /* the bucket never holds more than the burst */
    for (int i = 0; i < 3; i++) ck_assert(gw_rate_take(rl, "10.0.0.1", t + 100000, &retry));
    ck_assert(!gw_rate_take(rl, "10.0.0.1", t + 100000, &retry));
    gw_rate_free(rl);

    /* 10 an hour: the 11th waits about 6 minutes */
    rl = gw_rate_new(64, 10, 3600000, 10);
    for (int i = 0; i < 10; i++) ck_assert(gw_rate_take(rl, "+8613800138000", t, &retry));
    ck_assert(!gw_rate_take(rl, "+8613800138000", t, &retry));
    ck_assert_int_eq(retry, 360);
    gw_rate_free(rl);

    /* 0: no limit */
    rl = gw_rate_new(64, 0, 60000, 1);
    for (int i = 0; i < 1000; i++) ck_assert(gw_rate_take(rl, "x", t, &retry));
    gw_rate_free(rl);
}
END_TEST

START_TEST(a_flood_of_new_keys_never_blocks_anyone)
{
    /* A tiny table: 100,000 distinct keys evict each other, and an evicted key comes back with
     * a full bucket (eviction errs towards allowing, never towards refusing). */
    struct gw_rate *rl = gw_rate_new(64, 60, 60000, 2);
    char key[32];
    int retry;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ck_assert(gw_rate_take(rl, key, 1000 + i, &retry));
    }
    gw_rate_free(rl);
}
END_TEST

CW_TEST_MAIN("gateway", phones_normalise_to_e164, dates_are_real_calendar_days,
             amounts_are_cents_with_two_decimals_at_most, text_limits_count_characters_not_bytes,
             unknown_and_server_owned_fields_are_named, rate_limits_allow_bursts_then_refill,
             a_flood_of_new_keys_never_blocks_anyone)
