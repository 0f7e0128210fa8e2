/*
 * The reports' insides, shared by reports.c (the request, reading Redis, the figures) and
 * report_answer.c (the figures into JSON or CSV). Not a public header: gateway.h has the
 * endpoints.
 */
#ifndef GW_REPORT_H
#define GW_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "domain.h"

#define MAX_CASES 200000
#define ROWS_BATCH 500
#define ROWS_INFLIGHT 4
#define SITES_INFLIGHT 32 /* sites whose stage-1 calls are out at once */
#define OPEN_SCAN "2000"  /* newest open cases read per status for the overdue count */
#define TOP_CAUSES 10
#define MAX_DAYS 31
#define FU_FIELDS                                                                                  \
    8 /* per day: resolved, tasks, followed, waiting, missing, unreachable, sat, not */

enum kind { K_TODAY, K_DAILY, K_WEEKLY, K_MONTHLY };
static const char *const rp_kind_names[] = {"today", "daily", "weekly", "monthly"};

enum { NCLOCKS = 6 };
static const int clock_kinds[NCLOCKS] = {
    CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF,    CASEWIRE__V1__CLOCK_KIND__CLOCK_TENANT_TRADING,
    CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY,      CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK,
    CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION, CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP};
/* report_rows_lua's fields per case */
enum {
    F_SITE,
    F_STATUS,
    F_CHANNEL,
    F_TYPE,
    F_CATEGORY,
    F_URGENCY,
    F_VALIDITY,
    F_DEPARTMENT,
    F_CREATED,
    F_ACKED,
    F_REPLIED,
    F_RESOLVED,
    F_CLOSED,
    F_FOLLOWUP,
    F_REPEAT,
    F_CAUSE,
    F_CLOCKS, /* then due, stopped, breached per clock */
    ROW_FIELDS = F_CLOCKS + 3 * NCLOCKS
};
static const char *const statuses[] = {"received", "assigned", "acknowledged",
                                       "reopened", "resolved", "closed"};
#define NSTATUS (sizeof statuses / sizeof *statuses)
enum { T_HANDOFF, T_REPLY, T_RESOLUTION, NTIMES };
static const char *const time_names[NTIMES] = {"handoff", "reply", "resolution"};

/* A growing list of durations in seconds, for medians and p90. */
struct durations {
    double *v;
    size_t n, cap;
};

/* Counts by string (departments, causes, site ids): open addressing, keys copied. */
struct tally_slot {
    char *key;
    long long n;
};
struct tally {
    struct tally_slot *slots;
    size_t cap, used;
};

/* ---- the job: one report being made ---- */

struct rep_site {
    const struct cw_site *site;
    int64_t from_ms, to_ms; /* local midnight of the first day, of the day after the last */
    long long fu[MAX_DAYS][FU_FIELDS];
    long long open, overdue, received, breached_cases;
    bool open_truncated;
};

struct job {
    struct gw_req *r;
    enum kind kind;
    bool csv;
    int days[MAX_DAYS], ndays; /* the same calendar days at every site, each in its zone */
    struct rep_site *sites;
    size_t nsites;
    /* stage 1 */
    size_t next_site;
    unsigned pending;
    bool failed, too_many;
    char **ids;
    size_t nids;
    json_t *missing; /* case numbers resolved without a callback task */
    /* stage 2 */
    size_t next_row;
    unsigned rows_out;
    /* figures */
    long long received, valid, invalid, repeats;
    long long by_channel[16], by_type[8], by_category[16], by_urgency[4], by_status[NSTATUS];
    long long clocks[NCLOCKS][4]; /* met, breached, running, overdue */
    long long received_on[MAX_DAYS];
    struct tally departments, department_kinds, causes;
    struct tally site_index; /* site id -> index in sites (n) */
    struct durations times[NTIMES];
    int64_t now;
};

/* Nearest rank over sorted durations: the smallest with at least p of them at or below it. */
double rp_dur_rank(const struct durations *d, double p);
int rp_cmp_double(const void *a, const void *b);
/* qsort order of tally slots: most first, then by key. */
int rp_by_count_desc(const void *a, const void *b);
/* yyyymmdd as YYYY-MM-DD. */
void rp_ymd_text(int ymd, char out[16]);

/* report_answer.c: answers the request with the job's figures (or its failure). */
void rp_answer(struct job *j);

#endif
