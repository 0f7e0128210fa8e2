#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct setting_def {
    const char *flag, *env;
    enum cw_setting_type type;
    const char *def;
    long long min, max;
    unsigned services;
    int secret;
    const char *help;
};

static const struct setting_def defs[CW_SET__COUNT] = {
#define CW_SETTING_DEF(id, flag, env, type, def, min, max, svc, secret, help)                      \
    [CW_SET_##id] = {flag, env, type, def, min, max, svc, secret, help},
    CW_SETTINGS(CW_SETTING_DEF)
#undef CW_SETTING_DEF
};

struct cw_config {
    unsigned service;
    char name[32];
    const char *raw[CW_SET__COUNT]; /* points into argv, environ or defs */
    const char *source[CW_SET__COUNT];
    long long num[CW_SET__COUNT];
};

/* "250", "250ms", "8s", "2m", "1h" -> milliseconds. */
static int parse_ms(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return -1;
    long long mul = 1;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else
        return -1;
    if (v > (long long)1e15 / mul) return -1;
    *out = v * mul;
    return 0;
}

static int parse_value(const struct setting_def *d, const char *s, long long *out)
{
    char *end;
    switch (d->type) {
    case CW_T_STRING: return 0;
    case CW_T_BOOL:
        if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
            *out = 1;
        else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
            *out = 0;
        else
            return -1;
        return 0;
    case CW_T_MS: return parse_ms(s, out);
    case CW_T_INT:
        errno = 0;
        *out = strtoll(s, &end, 10);
        return (errno || end == s || *end) ? -1 : 0;
    }
    return -1;
}

static const char *type_hint(enum cw_setting_type t)
{
    switch (t) {
    case CW_T_STRING: return "text";
    case CW_T_INT: return "a whole number";
    case CW_T_MS: return "a duration like 500ms, 8s, 2m";
    case CW_T_BOOL: return "true or false";
    }
    return "";
}

/* Appends one message to err (several problems are reported at once). */
static void add_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b,
                    const char *c)
{
    size_t used = strlen(err);
    if (used + 3 >= errlen) return;
    if (used) {
        err[used++] = ';';
        err[used++] = ' ';
        err[used] = '\0';
    }
    snprintf(err + used, errlen - used, fmt, a, b, c);
}

static int find_flag(const char *name, size_t len)
{
    for (int i = 0; i < CW_SET__COUNT; i++)
        if (strlen(defs[i].flag) == len && strncmp(defs[i].flag, name, len) == 0) return i;
    return -1;
}

static void validate(cw_config *c, char *err, size_t errlen)
{
    for (int i = 0; i < CW_SET__COUNT; i++) {
        const struct setting_def *d = &defs[i];
        if (!(d->services & c->service)) continue;
        char where[96];
        snprintf(where, sizeof where, "%s (--%s / %s)", c->source[i], d->flag, d->env);
        if (parse_value(d, c->raw[i], &c->num[i]) != 0) {
            add_err(err, errlen, "%s: \"%s\" is not valid (expected %s)", where, c->raw[i],
                    type_hint(d->type));
            continue;
        }
        if ((d->type == CW_T_INT || d->type == CW_T_MS) &&
            (c->num[i] < d->min || c->num[i] > d->max)) {
            char range[64];
            snprintf(range, sizeof range, "%lld..%lld%s", d->min, d->max,
                     d->type == CW_T_MS ? " ms" : "");
            add_err(err, errlen, "%s: %s is outside %s", where, c->raw[i], range);
        }
    }
    if (cw_log_level_parse(c->raw[CW_SET_LOG_LEVEL]) < 0)
        add_err(err, errlen, "log level \"%s\" is unknown (use %s)%s", c->raw[CW_SET_LOG_LEVEL],
                "debug, info, warn or error", "");
}

/* Flags: --name=value or --name value. Returns -1 after describing the problem. */
static int apply_flags(cw_config *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            add_err(err, errlen,
                    "unexpected argument \"%s\" (settings are --name=value; see --help)%s%s", arg,
                    "", "");
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = find_flag(name, len);
        if (i < 0 || !(defs[i].services & c->service)) {
            add_err(err, errlen, "unknown option \"%s\" for casewire-%s%s; see --help", arg,
                    c->name, "");
            return -1;
        }
        const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!value) {
            add_err(err, errlen, "option --%s needs a value%s%s", defs[i].flag, "", "");
            return -1;
        }
        c->raw[i] = value;
        c->source[i] = "flag";
    }
    return 0;
}

int cw_config_load(cw_config **out, unsigned service, const char *service_name, int argc,
                   char **argv, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            cw_config_print_help(service, service_name, stdout);
            return CW_CONFIG_EXIT;
        }
        if (!strcmp(argv[a], "--config-doc")) {
            cw_config_print_markdown(stdout);
            return CW_CONFIG_EXIT;
        }
    }
    cw_config *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return CW_CONFIG_ERROR;
    }
    c->service = service;
    snprintf(c->name, sizeof c->name, "%s", service_name);
    for (int i = 0; i < CW_SET__COUNT; i++) {
        const char *env = getenv(defs[i].env);
        c->raw[i] = env ? env : defs[i].def;
        c->source[i] = env ? "env" : "default";
    }
    if (apply_flags(c, argc, argv, err, errlen) == 0) validate(c, err, errlen);
    if (err[0]) {
        cw_config_free(c);
        return CW_CONFIG_ERROR;
    }
    *out = c;
    return CW_CONFIG_OK;
}

void cw_config_free(cw_config *c) { free(c); }

const char *cw_config_str(const cw_config *c, enum cw_setting s) { return c->raw[s]; }
long long cw_config_int(const cw_config *c, enum cw_setting s) { return c->num[s]; }
const char *cw_config_source(const cw_config *c, enum cw_setting s) { return c->source[s]; }

void cw_config_log(const cw_config *c)
{
    for (int i = 0; i < CW_SET__COUNT; i++) {
        if (!(defs[i].services & c->service)) continue;
        const char *v = defs[i].secret && *c->raw[i] ? "(set, not shown)" : c->raw[i];
        cw_info("config", "setting=%s value=\"%s\" source=%s", defs[i].flag, v, c->source[i]);
    }
}

void cw_config_print_help(unsigned service, const char *service_name, FILE *out)
{
    fprintf(out, "usage: casewire-%s [--setting=value ...]\n\n", service_name);
    fprintf(out, "Each setting can also come from its environment variable; flags win.\n\n");
    for (int i = 0; i < CW_SET__COUNT; i++) {
        const struct setting_def *d = &defs[i];
        if (!(d->services & service)) continue;
        fprintf(out, "  --%-24s %s\n      %s (default \"%s\"", d->flag, d->help, d->env, d->def);
        if (d->type == CW_T_INT || d->type == CW_T_MS)
            fprintf(out, ", %lld..%lld%s", d->min, d->max, d->type == CW_T_MS ? " ms" : "");
        fprintf(out, ")\n");
    }
}

void cw_config_print_markdown(FILE *out)
{
    static const struct {
        unsigned bit;
        const char *name;
    } svc[] = {{CW_SVC_GATEWAY, "gateway"},
               {CW_SVC_ROUTER, "router"},
               {CW_SVC_DEADLINE, "deadline"},
               {CW_SVC_NOTIFIER, "notifier"},
               {CW_SVC_DEVBROKER, "devbroker"}};
    fprintf(out, "# Configuration\n\nGenerated from the settings table in `common/config.h` "
                 "(`make docs`). Values come from the default, then the environment variable, "
                 "then the flag. Durations take `ms`, `s`, `m` or `h`.\n\n");
    fprintf(out, "| flag | environment | default | bounds | services | what it does |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (int i = 0; i < CW_SET__COUNT; i++) {
        const struct setting_def *d = &defs[i];
        char bounds[64] = "";
        if (d->type == CW_T_INT || d->type == CW_T_MS)
            snprintf(bounds, sizeof bounds, "%lld..%lld%s", d->min, d->max,
                     d->type == CW_T_MS ? " ms" : "");
        fprintf(out, "| `--%s` | `%s` | `%s` | %s | ", d->flag, d->env, d->def, bounds);
        const char *sep = "";
        for (size_t k = 0; k < sizeof svc / sizeof svc[0]; k++)
            if (d->services & svc[k].bit) {
                fprintf(out, "%s%s", sep, svc[k].name);
                sep = ", ";
            }
        fprintf(out, " | %s%s |\n", d->help, d->secret ? " (secret: never logged)" : "");
    }
}
