#include "testing.h"
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char captured[4096];
static void capture(const char *line, size_t len, void *arg)
{
    (void)arg;
    if (len >= sizeof captured) len = sizeof captured - 1;
    memcpy(captured, line, len);
    captured[len] = '\0';
}

START_TEST(mask_phone_keeps_last_four)
{
    char b[CW_MASK_PHONE_MAX];
    ck_assert_str_eq(cw_mask_phone(b, "13812345678"), "*******5678");
    ck_assert_str_eq(cw_mask_phone(b, "+86 138-1234-5678"), "*********5678");
    ck_assert_str_eq(cw_mask_phone(b, ""), "");
}
END_TEST

START_TEST(mask_name_keeps_first_character)
{
    char b[CW_MASK_NAME_MAX];
    ck_assert_str_eq(cw_mask_name(b, "王小明"), "王**");
    ck_assert_str_eq(cw_mask_name(b, "John"), "J***");
    ck_assert_str_eq(cw_mask_name(b, NULL), "");
}
END_TEST

START_TEST(scrub_masks_phone_shapes)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"phone=13812345678 ok", "phone=*******5678 ok"},
        {"call +8613812345678", "call +*********5678"},
        {"tel 021-6234 5678.", "tel ***-**** 5678."},
        {"landline 02162345678", "landline *******5678"},
        {"text=my number is 138 1234 5678!", "text=my number is *** **** 5678!"},
        {"url=/v1/x?phone=%2B8613812345678&y=1", "url=/v1/x?phone=%2B*********5678&y=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        strcpy(buf, cases[i].in);
        ck_assert_int_ge(cw_log_scrub(buf), 1);
        ck_assert_str_eq(buf, cases[i].out);
    }
}
END_TEST

START_TEST(scrub_leaves_ids_times_and_numbers)
{
    const char *keep[] = {
        "case_no=SH01-261124-0042",
        "due_ms=1764000000000",
        "date=2026-11-24",
        "offset=123456789",
        "event_id=01JD3K5Q8R13812345678ABCDE",
        "v=2.0.2 port=8080",
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        char buf[128];
        strcpy(buf, keep[i]);
        ck_assert_int_eq(cw_log_scrub(buf), 0);
        ck_assert_str_eq(buf, keep[i]);
    }
}
END_TEST

START_TEST(write_formats_one_scrubbed_line)
{
    ck_assert_int_eq(cw_log_init("test", "info"), 0);
    cw_log_set_sink(capture, NULL);
    captured[0] = '\0';
    cw_debug("not.shown", "x=%d", 1);
    ck_assert_str_eq(captured, "");
    cw_info("case.accepted", "case_no=%s note=\"%s\"", "SH01-261124-0042", "ring 13812345678\nnow");
    ck_assert_ptr_nonnull(strstr(captured, "level=info svc=test event=case.accepted"));
    ck_assert_ptr_nonnull(strstr(captured, "case_no=SH01-261124-0042"));
    ck_assert_ptr_null(strstr(captured, "13812345678"));
    ck_assert_ptr_nonnull(strstr(captured, "*******5678"));
    /* exactly one newline, at the end */
    ck_assert_ptr_eq(strchr(captured, '\n'), captured + strlen(captured) - 1);
    /* A phone at the very end of an over-long line is masked before the line is cut. */
    char big[2100];
    memset(big, 'x', sizeof big);
    memcpy(big + 2008 - 2, " 13812345678", 12);
    big[2020] = '\0';
    cw_info("long", "v=%s", big);
    ck_assert_ptr_null(strstr(captured, "1381234"));
    ck_assert_int_eq(cw_log_init("test", "loud"), -1);
    cw_log_set_sink(NULL, NULL);
}
END_TEST

CW_TEST_MAIN("log", mask_phone_keeps_last_four, mask_name_keeps_first_character,
             scrub_masks_phone_shapes, scrub_leaves_ids_times_and_numbers,
             write_formats_one_scrubbed_line)
