/* The reports' answer (see reports.c): a job's figures as JSON (docs/api.md, "Reports"), as
 * CSV in four columns for a spreadsheet's pivot table, or today at a glance. */
#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "report.h"

static json_t *vocab_counts(enum cw_vocab v, const long long *counts, int n)
{
    json_t *o = json_object();
    for (int i = 1; i < n && i <= cw_vocab_max(v); i++)
        if (counts[i] && cw_vocab_name(v, i))
            json_object_set_new(o, cw_vocab_name(v, i), json_integer(counts[i]));
    return o;
}

static json_t *tally_json(const struct tally *t)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key) json_object_set_new(o, t->slots[i].key, json_integer(t->slots[i].n));
    return o;
}

static json_t *rate(long long num, long long den, bool none_is_one)
{
    if (den == 0) return none_is_one ? json_real(1.0) : json_null();
    return json_real(round(1e4 * (double)num / (double)den) / 1e4);
}

static void fu_sum(const struct rep_site *s, int ndays, long long out[FU_FIELDS])
{
    for (int k = 0; k < FU_FIELDS; k++) out[k] = 0;
    for (int d = 0; d < ndays; d++)
        for (int k = 0; k < FU_FIELDS; k++) out[k] += s->fu[d][k];
}

static json_t *followup_json(const long long fu[FU_FIELDS], json_t *missing)
{
    /* nothing resolved: nothing owed, the follow-up rate is met */
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:o,s:o}", "resolved", fu[0],
                     "callback_tasks", fu[1], "followed_up", fu[2], "waiting", fu[3], "unreachable",
                     fu[5], "followup_rate", rate(fu[2], fu[0], true), "satisfied", fu[6],
                     "not_satisfied", fu[7], "satisfaction_rate", rate(fu[6], fu[6] + fu[7], false),
                     "without_callback_task", missing ? json_incref(missing) : json_array());
}

static json_t *period_json(struct job *j)
{
    char from[16], to[16], gen[48];
    rp_ymd_text(j->days[0], from);
    rp_ymd_text(j->days[j->ndays - 1], to);
    gw_format_time(j->r->gw, j->sites[0].site, j->now, gen, sizeof gen);
    long long fu[FU_FIELDS] = {0};
    json_t *by_site = json_array(), *site_ids = json_array(), *by_day = json_array();
    for (size_t i = 0; i < j->nsites; i++) {
        const struct rep_site *s = &j->sites[i];
        long long f[FU_FIELDS];
        fu_sum(s, j->ndays, f);
        for (int k = 0; k < FU_FIELDS; k++) fu[k] += f[k];
        json_array_append_new(site_ids, json_string(s->site->id));
        json_array_append_new(by_site,
                              json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "site", s->site->id,
                                        "name", s->site->name, "name_en", s->site->name_en,
                                        "received", s->received, "breached", s->breached_cases,
                                        "resolved", f[0], "followup_rate", rate(f[2], f[0], true),
                                        "satisfaction_rate", rate(f[6], f[6] + f[7], false)));
    }
    for (int d = 0; d < j->ndays; d++) {
        long long resolved = 0;
        for (size_t i = 0; i < j->nsites; i++) resolved += j->sites[i].fu[d][0];
        char day[16];
        rp_ymd_text(j->days[d], day);
        json_array_append_new(by_day, json_pack("{s:s,s:I,s:I}", "date", day, "received",
                                                j->received_on[d], "resolved", resolved));
    }
    json_t *clocks = json_object();
    for (int k = 0; k < NCLOCKS; k++) {
        const long long *c = j->clocks[k];
        if (!c[0] && !c[1] && !c[2] && !c[3]) continue;
        json_object_set_new(clocks, cw_clock_name(clock_kinds[k]),
                            json_pack("{s:I,s:I,s:I,s:I,s:o}", "met", c[0], "breached", c[1],
                                      "running", c[2], "overdue", c[3], "met_rate",
                                      rate(c[0], c[0] + c[1], false)));
    }
    json_t *times = json_object();
    for (int t = 0; t < NTIMES; t++) {
        struct durations *d = &j->times[t];
        if (d->n) qsort(d->v, d->n, sizeof *d->v, rp_cmp_double);
        json_object_set_new(
            times, time_names[t],
            json_pack("{s:I,s:o,s:o}", "count", (json_int_t)d->n, "median_s",
                      d->n ? json_integer((json_int_t)rp_dur_rank(d, 0.5)) : json_null(), "p90_s",
                      d->n ? json_integer((json_int_t)rp_dur_rank(d, 0.9)) : json_null()));
    }
    /* the rules that decided most categories: the period's commonest causes */
    json_t *causes = json_array();
    struct tally_slot *top = calloc(j->causes.used ? j->causes.used : 1, sizeof *top);
    size_t ntop = 0;
    for (size_t i = 0; top && i < j->causes.cap; i++)
        if (j->causes.slots[i].key) top[ntop++] = j->causes.slots[i];
    if (top) qsort(top, ntop, sizeof *top, rp_by_count_desc);
    for (size_t i = 0; i < ntop && i < TOP_CAUSES; i++) {
        const struct cw_rule *rule = cw_chain_rule(j->r->gw->chain, top[i].key);
        const char *cat = rule && rule->set.category ? cw_category_name(rule->set.category) : NULL;
        json_array_append_new(causes, json_pack("{s:s,s:s*,s:I}", "rule", top[i].key, "category",
                                                cat, "count", top[i].n));
    }
    free(top);
    json_t *status = json_object();
    for (size_t i = 0; i < NSTATUS; i++)
        if (j->by_status[i])
            json_object_set_new(status, statuses[i], json_integer(j->by_status[i]));
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:i,s:o,s:s,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
        "report", rp_kind_names[j->kind], "from", from, "to", to, "days", j->ndays, "sites",
        site_ids, "generated_at", gen, "received", j->received, "valid", j->valid, "invalid",
        j->invalid, "repeats", j->repeats, "by_channel",
        vocab_counts(CW_VOCAB_CHANNEL, j->by_channel, 16), "by_type",
        vocab_counts(CW_VOCAB_CASE_TYPE, j->by_type, 8), "by_category",
        vocab_counts(CW_VOCAB_CATEGORY, j->by_category, 16), "by_urgency",
        vocab_counts(CW_VOCAB_URGENCY, j->by_urgency, 4), "by_department_kind",
        tally_json(&j->department_kinds), "by_status", status, "clocks", clocks, "times", times,
        "followup", followup_json(fu, j->missing), "top_causes", causes, "by_day", by_day,
        "by_site", by_site);
    /* a department is a site's: by department only in a one-site report */
    if (o && j->nsites == 1) json_object_set_new(o, "by_department", tally_json(&j->departments));
    return o;
}

/* CSV: one figure a line, "section,item,measure,value", for a spreadsheet's pivot table. */
static void csv_line(struct evbuffer *b, const char *section, const char *item, const char *measure,
                     json_t *v)
{
    if (json_is_null(v)) {
        evbuffer_add_printf(b, "%s,%s,%s,\r\n", section, item, measure);
    } else if (json_is_integer(v)) {
        evbuffer_add_printf(b, "%s,%s,%s,%lld\r\n", section, item, measure,
                            (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        evbuffer_add_printf(b, "%s,%s,%s,%.4f\r\n", section, item, measure, json_real_value(v));
    } else if (json_is_string(v)) {
        /* ids and dates: never a comma, quote or line break; quoted all the same */
        evbuffer_add_printf(b, "%s,%s,%s,\"%s\"\r\n", section, item, measure, json_string_value(v));
    }
}

static void csv_object(struct evbuffer *b, const char *section, const char *item, json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_object(v))
            csv_object(b, section, k, v);
        else if (!json_is_array(v))
            csv_line(b, section, item ? item : k, item ? k : "count", v);
    }
}

static void csv_rows(struct evbuffer *b, const char *section, const char *key, json_t *arr)
{
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row)
    {
        const char *item = json_string_value(json_object_get(row, key));
        const char *k;
        json_t *v;
        json_object_foreach(row, k, v) if (strcmp(k, key) && strcmp(k, "name") &&
                                           strcmp(k, "name_en")) csv_line(b, section, item, k, v);
    }
}

static void reply_csv(struct job *j, json_t *o)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        gw_error(j->r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    evbuffer_add_printf(b, "section,item,measure,value\r\n");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!strcmp(k, "by_day"))
            csv_rows(b, k, "date", v);
        else if (!strcmp(k, "by_site"))
            csv_rows(b, k, "site", v);
        else if (!strcmp(k, "top_causes"))
            csv_rows(b, k, "rule", v);
        else if (!strcmp(k, "followup")) {
            csv_object(b, k, "followup", v);
            size_t i;
            json_t *no;
            json_array_foreach(json_object_get(v, "without_callback_task"), i, no)
                csv_line(b, k, json_string_value(no), "without_callback_task", json_integer(1));
        } else if (json_is_object(v))
            csv_object(b, k, NULL, v);
        else if (!json_is_array(v))
            csv_line(b, "report", k, "value", v);
    }
    char disposition[96];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"casewire-%s-%s.csv\"",
             rp_kind_names[j->kind], json_string_value(json_object_get(o, "from")));
    size_t len = evbuffer_get_length(b);
    const char *data = (const char *)evbuffer_pullup(b, -1);
    gw_reply_typed(j->r, 200, "text/csv; charset=utf-8", disposition, data ? data : "", len);
    evbuffer_free(b);
}

static void today_reply(struct job *j)
{
    char date[16];
    rp_ymd_text(j->days[0], date);
    long long fu[FU_FIELDS] = {0}, open = 0, overdue = 0;
    bool cut = false;
    json_t *sites = json_array();
    for (size_t i = 0; i < j->nsites; i++) {
        long long f[FU_FIELDS];
        fu_sum(&j->sites[i], 1, f);
        for (int k = 0; k < FU_FIELDS; k++) fu[k] += f[k];
        open += j->sites[i].open;
        overdue += j->sites[i].overdue;
        cut = cut || j->sites[i].open_truncated;
        json_array_append_new(sites, json_string(j->sites[i].site->id));
    }
    gw_reply(j->r, 200,
             json_pack("{s:s,s:o,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "date", date,
                       "sites", sites, "new", (json_int_t)j->nids, "open", open, "overdue", overdue,
                       "overdue_is_lower_bound", cut, "resolved", fu[0], "followed_up", fu[2],
                       "waiting", fu[3], "satisfied", fu[6], "not_satisfied", fu[7],
                       "followup_rate", rate(fu[2], fu[0], true), "satisfaction_rate",
                       rate(fu[6], fu[6] + fu[7], false)));
}

void rp_answer(struct job *j)
{
    if (j->failed) {
        gw_error_retry(j->r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    if (j->kind == K_TODAY) {
        today_reply(j);
        return;
    }
    json_t *o = period_json(j);
    if (!o) {
        gw_error(j->r, 503, "unavailable", "out of memory", NULL);
    } else if (j->csv) {
        reply_csv(j, o);
    } else {
        gw_reply(j->r, 200, json_incref(o));
    }
    json_decref(o);
}
