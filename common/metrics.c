#include "metrics.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

#define MAX_LABELS 8

struct family {
    char *name, *help;
    enum kind kind;
    double *bounds;
    size_t nbounds;
    char *label_names; /* "a,b": checked against each new child */
    cw_metric *children;
    struct family *next;
};

struct cw_metric {
    struct family *fam;
    char *labels; /* rendered: a="x",b="y" (empty for none) */
    double value, sum;
    double (*fn)(void *);
    void *arg;
    unsigned long long *buckets; /* histogram: count per bound, +Inf is value */
    cw_metric *next;
};

struct cw_metrics {
    struct family *first, *last;
};

const double cw_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
const size_t cw_metrics_latency_buckets_count =
    sizeof cw_metrics_latency_buckets / sizeof cw_metrics_latency_buckets[0];

cw_metrics *cw_metrics_new(void) { return calloc(1, sizeof(cw_metrics)); }

void cw_metrics_free(cw_metrics *m)
{
    if (!m) return;
    struct family *f = m->first;
    while (f) {
        struct family *fn = f->next;
        cw_metric *c = f->children;
        while (c) {
            cw_metric *cn = c->next;
            free(c->labels);
            free(c->buckets);
            free(c);
            c = cn;
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f->label_names);
        free(f);
        f = fn;
    }
    free(m);
}

static int valid_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':')) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':')) return 0;
    return 1;
}

/* Escapes a label value: backslash, double quote and newline. */
static void append_escaped(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*v == '"')
            evbuffer_add(b, "\\\"", 2);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

/* Renders the label pairs and their names; NULL on a bad label name or too many. */
static char *render_labels(va_list ap, char **names_out)
{
    struct evbuffer *b = evbuffer_new(), *n = evbuffer_new();
    char *out = NULL;
    const char *k;
    int count = 0, bad = 0;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        if (!valid_name(k) || !strcmp(k, "le") || !v || ++count > MAX_LABELS) bad = 1;
        if (bad) break;
        evbuffer_add_printf(b, "%s%s=\"", count > 1 ? "," : "", k);
        append_escaped(b, v);
        evbuffer_add(b, "\"", 1);
        evbuffer_add_printf(n, "%s%s", count > 1 ? "," : "", k);
    }
    if (!bad) {
        evbuffer_add(b, "", 1);
        evbuffer_add(n, "", 1);
        out = strdup((const char *)evbuffer_pullup(b, -1));
        *names_out = strdup((const char *)evbuffer_pullup(n, -1));
    }
    evbuffer_free(b);
    evbuffer_free(n);
    return out;
}

static struct family *family_get(cw_metrics *m, const char *name, const char *help, enum kind k,
                                 const double *bounds, size_t nbounds)
{
    for (struct family *f = m->first; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            if (f->kind != k) {
                cw_error("metrics.misuse", "name=%s reason=\"registered with another type\"", name);
                return NULL;
            }
            return f;
        }
    }
    size_t len = strlen(name);
    if (!valid_name(name) ||
        (k == K_COUNTER && (len < 6 || strcmp(name + len - 6, "_total") != 0))) {
        cw_error("metrics.misuse", "name=%s reason=\"invalid name (counters end in _total)\"",
                 name);
        return NULL;
    }
    struct family *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->kind = k;
    if (nbounds) {
        f->bounds = malloc(nbounds * sizeof *bounds);
        if (f->bounds) memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
    }
    if (!f->name || !f->help || (nbounds && !f->bounds)) {
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        return NULL;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

static cw_metric *child_get(cw_metrics *m, const char *name, const char *help, enum kind k,
                            const double *bounds, size_t nbounds, va_list ap)
{
    struct family *f = family_get(m, name, help, k, bounds, nbounds);
    if (!f) return NULL;
    char *names = NULL, *labels = render_labels(ap, &names);
    if (!labels) {
        cw_error("metrics.misuse", "name=%s reason=\"bad label names\"", name);
        return NULL;
    }
    if (!f->label_names)
        f->label_names = names, names = NULL;
    else if (strcmp(f->label_names, names) != 0) {
        cw_error("metrics.misuse", "name=%s reason=\"label names differ from %s\"", name,
                 f->label_names);
        free(labels);
        free(names);
        return NULL;
    }
    free(names);
    for (cw_metric *c = f->children; c; c = c->next)
        if (strcmp(c->labels, labels) == 0) {
            free(labels);
            return c;
        }
    cw_metric *c = calloc(1, sizeof *c);
    if (!c || (f->nbounds && !(c->buckets = calloc(f->nbounds, sizeof *c->buckets)))) {
        free(c);
        free(labels);
        return NULL;
    }
    c->fam = f;
    c->labels = labels;
    /* Append: render order is creation order. */
    cw_metric **tail = &f->children;
    while (*tail) tail = &(*tail)->next;
    *tail = c;
    return c;
}

cw_metric *cw_metrics_counter(cw_metrics *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    cw_metric *c = child_get(m, name, help, K_COUNTER, NULL, 0, ap);
    va_end(ap);
    return c;
}

cw_metric *cw_metrics_gauge(cw_metrics *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    cw_metric *c = child_get(m, name, help, K_GAUGE, NULL, 0, ap);
    va_end(ap);
    return c;
}

static cw_metric *with_fn(cw_metric *c, double (*fn)(void *), void *arg)
{
    if (c) {
        c->fn = fn;
        c->arg = arg;
    }
    return c;
}

cw_metric *cw_metrics_gauge_fn(cw_metrics *m, const char *name, const char *help,
                               double (*fn)(void *), void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    cw_metric *c = child_get(m, name, help, K_GAUGE, NULL, 0, ap);
    va_end(ap);
    return with_fn(c, fn, arg);
}

cw_metric *cw_metrics_counter_fn(cw_metrics *m, const char *name, const char *help,
                                 double (*fn)(void *), void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    cw_metric *c = child_get(m, name, help, K_COUNTER, NULL, 0, ap);
    va_end(ap);
    return with_fn(c, fn, arg);
}

cw_metric *cw_metrics_histogram(cw_metrics *m, const char *name, const char *help,
                                const double *bounds, size_t nbounds, ...)
{
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1])) return NULL;
    if (nbounds == 0) return NULL;
    va_list ap;
    va_start(ap, nbounds);
    cw_metric *c = child_get(m, name, help, K_HISTOGRAM, bounds, nbounds, ap);
    va_end(ap);
    return c;
}

void cw_metric_add(cw_metric *c, double v)
{
    if (c && (v >= 0 || c->fam->kind == K_GAUGE)) c->value += v;
}
void cw_metric_set(cw_metric *g, double v)
{
    if (g && g->fam->kind == K_GAUGE) g->value = v;
}
void cw_metric_observe(cw_metric *h, double v)
{
    if (!h || h->fam->kind != K_HISTOGRAM) return;
    for (size_t i = 0; i < h->fam->nbounds; i++)
        if (v <= h->fam->bounds[i]) h->buckets[i]++;
    h->value += 1;
    h->sum += v;
}
double cw_metric_value(const cw_metric *c) { return c->fn ? c->fn(c->arg) : c->value; }

static void render_histogram(const cw_metric *c, struct evbuffer *out)
{
    const struct family *f = c->fam;
    const char *sep = c->labels[0] ? "," : "";
    for (size_t i = 0; i < f->nbounds; i++)
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%.15g\"} %llu\n", f->name, c->labels, sep,
                            f->bounds[i], c->buckets[i]);
    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %.15g\n", f->name, c->labels, sep,
                        c->value);
    evbuffer_add_printf(out, "%s_sum%s%s%s %.15g\n", f->name, c->labels[0] ? "{" : "", c->labels,
                        c->labels[0] ? "}" : "", c->sum);
    evbuffer_add_printf(out, "%s_count%s%s%s %.15g\n", f->name, c->labels[0] ? "{" : "", c->labels,
                        c->labels[0] ? "}" : "", c->value);
}

int cw_metrics_render(const cw_metrics *m, struct evbuffer *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    for (const struct family *f = m->first; f; f = f->next) {
        evbuffer_add_printf(out, "# HELP %s ", f->name);
        for (const char *h = f->help; *h; h++) {
            if (*h == '\\')
                evbuffer_add(out, "\\\\", 2);
            else if (*h == '\n')
                evbuffer_add(out, "\\n", 2);
            else
                evbuffer_add(out, h, 1);
        }
        evbuffer_add_printf(out, "\n# TYPE %s %s\n", f->name, types[f->kind]);
        for (const cw_metric *c = f->children; c; c = c->next) {
            if (f->kind == K_HISTOGRAM) {
                render_histogram(c, out);
                continue;
            }
            evbuffer_add_printf(out, "%s%s%s%s %.15g\n", f->name, c->labels[0] ? "{" : "",
                                c->labels, c->labels[0] ? "}" : "", cw_metric_value(c));
        }
    }
    return 0;
}
