/* Domain vocabulary: every name maps to its proto enum value and back, nothing else parses. */
#include "testing.h"
#include <stdlib.h>
#include <string.h>

#include "domain.h"

START_TEST(names_are_the_proto_values)
{
    ck_assert_int_eq(cw_category_parse("product_quality"),
                     CASEWIRE__V1__CATEGORY__CATEGORY_PRODUCT_QUALITY);
    ck_assert_int_eq(cw_category_parse("lost_and_found"),
                     CASEWIRE__V1__CATEGORY__CATEGORY_LOST_AND_FOUND);
    ck_assert_int_eq(cw_category_parse("other"), CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_int_eq(cw_channel_parse("mini_program"), CASEWIRE__V1__CHANNEL__CHANNEL_MINI_PROGRAM);
    ck_assert_int_eq(cw_channel_parse("tenant_api"), CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API);
    ck_assert_int_eq(cw_case_type_parse("praise"), CASEWIRE__V1__CASE_TYPE__CASE_TYPE_PRAISE);
    ck_assert_int_eq(cw_urgency_parse("emergency"), CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    ck_assert_int_eq(cw_validity_parse("invalid"), CASEWIRE__V1__VALIDITY__VALIDITY_INVALID);
    ck_assert_int_eq(cw_clock_parse("tenant_trading"),
                     CASEWIRE__V1__CLOCK_KIND__CLOCK_TENANT_TRADING);
    ck_assert_int_eq(cw_site_kind_parse("department_store"), CW_SITE_DEPARTMENT_STORE);
    ck_assert_int_eq(cw_dept_kind_parse("business_section"), CW_DEPT_BUSINESS_SECTION);
    ck_assert_int_eq(cw_weekday_parse("sun"), CW_SUN);
    ck_assert_int_eq(cw_weekday_parse("sat"), CW_SAT);
    ck_assert_str_eq(cw_urgency_name(CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT), "important");
    ck_assert_str_eq(cw_clock_name(CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP), "followup");
}
END_TEST

/* Each vocabulary: every value 1..max has a name that parses back to it, and the sizes match
 * the vocabulary in the brief (so a new proto value without a name is noticed). */
START_TEST(every_value_round_trips)
{
    static const struct {
        enum cw_vocab v;
        int count;
        int first;
    } all[] = {
        {CW_VOCAB_CHANNEL, 11, 1},  {CW_VOCAB_CASE_TYPE, 5, 1},  {CW_VOCAB_CATEGORY, 11, 1},
        {CW_VOCAB_URGENCY, 3, 1},   {CW_VOCAB_VALIDITY, 2, 1},   {CW_VOCAB_CLOCK, 6, 1},
        {CW_VOCAB_SITE_KIND, 3, 1}, {CW_VOCAB_DEPT_KIND, 15, 1}, {CW_VOCAB_WEEKDAY, 7, 0},
        {CW_VOCAB_ACTION, 8, 1},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int n = 0;
        for (int x = 0; x <= cw_vocab_max(all[i].v); x++) {
            const char *name = cw_vocab_name(all[i].v, x);
            if (!name) continue;
            n++;
            ck_assert_int_ge(x, all[i].first);
            ck_assert_int_eq(cw_vocab_parse(all[i].v, name), x);
        }
        ck_assert_int_eq(n, all[i].count);
    }
}
END_TEST

START_TEST(unknown_and_unspecified_have_no_name)
{
    ck_assert_int_eq(cw_category_parse("produt_quality"), -1);
    ck_assert_int_eq(cw_category_parse("Product_Quality"), -1); /* names are exact */
    ck_assert_int_eq(cw_category_parse(""), -1);
    ck_assert_int_eq(cw_category_parse(NULL), -1);
    ck_assert_int_eq(cw_urgency_parse("unspecified"), -1);
    ck_assert_ptr_null(cw_category_name(0));
    ck_assert_ptr_null(cw_category_name(12));
    ck_assert_ptr_null(cw_category_name(-1));
    ck_assert_ptr_null(cw_vocab_name(CW_VOCAB__COUNT, 1));
    ck_assert_int_eq(cw_vocab_parse(CW_VOCAB__COUNT, "web"), -1);
}
END_TEST

START_TEST(choices_list_every_name_and_truncate)
{
    char buf[200];
    ck_assert_str_eq(cw_vocab_choices(CW_VOCAB_URGENCY, buf, sizeof buf),
                     "general, important, emergency");
    ck_assert_str_eq(cw_vocab_title(CW_VOCAB_CATEGORY), "category");
    char tiny[12];
    ck_assert_str_eq(cw_vocab_choices(CW_VOCAB_URGENCY, tiny, sizeof tiny), "general");
}
END_TEST

CW_TEST_MAIN("domain", names_are_the_proto_values, every_value_round_trips,
             unknown_and_unspecified_have_no_name, choices_list_every_name_and_truncate)
