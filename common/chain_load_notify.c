/* Loading the notifier's sections of a chain file: `sms` (provider, limits per number, quiet
 * hours, retries) and `webhooks` (timeouts, retries, which private address kinds a test may
 * reach). Both are optional: the defaults below are what a chain without them gets. */
#include "chain_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SEC 1000LL
#define HOUR (3600 * SEC)

const char *ld_secret_value(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                            const char *env_key, unsigned flags)
{
    const char *secret = ld_str(ld, m, key, LD_OPTIONAL, LIM_SECRET);
    const char *env = ld_str(ld, m, env_key, LD_OPTIONAL, 128);
    const struct cw_ynode *at = cw_ynode_get(m, env ? env_key : key);
    const char *which = env ? env_key : key;
    if (secret && env) {
        ld_error_key(ld, at, which, "give either %s or %s, not both", key, env_key);
        return NULL;
    }
    if (env) {
        const char *v = getenv(env);
        if (!v || !*v) {
            ld_error_key(ld, at, which, "environment variable %s is not set", env);
            return NULL;
        }
        if (strlen(v) > LIM_SECRET) {
            ld_error_key(ld, at, which, "%s is too long", env);
            return NULL;
        }
        secret = cw_arena_strdup(&ld->c->arena, v);
    } else if (!secret) {
        if (flags & LD_REQUIRED)
            ld_error_key(ld, m, key, "missing required field (or give %s)", env_key);
        return NULL;
    }
    if (strlen(secret) < LIM_SECRET_MIN) {
        ld_error_key(ld, at, which, "the secret must be at least %d characters", LIM_SECRET_MIN);
        return NULL;
    }
    return secret;
}

bool ld_wall_ms(struct cw_ld *ld, const struct cw_ynode *m, const char *key, int64_t min,
                int64_t max, int64_t *out)
{
    const char *s = ld_str(ld, m, key, LD_OPTIONAL, 32), *why;
    if (!s) return false;
    struct cw_duration d;
    const struct cw_ynode *at = cw_ynode_get(m, key);
    if (cw_val_duration(s, &d, &why) < 0) {
        ld_error_key(ld, at, key, "bad duration \"%s\": %s", s, why);
        return false;
    }
    if (d.basis != CW_TIME_WALL) {
        ld_error_key(ld, at, key, "\"%s\": use wall-clock units here (s, m, h, d)", s);
        return false;
    }
    if (d.ms < min || d.ms > max) {
        ld_error_key(ld, at, key, "\"%s\" is out of range %llds..%llds", s, (long long)(min / SEC),
                     (long long)(max / SEC));
        return false;
    }
    *out = d.ms;
    return true;
}

static const char *ld_url(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                          unsigned flags)
{
    const char *url = ld_str(ld, m, key, flags, LIM_URL), *why;
    if (url && cw_val_url(url, &why) < 0) {
        ld_error_key(ld, cw_ynode_get(m, key), key, "bad URL \"%s\": %s", url, why);
        return NULL;
    }
    return url;
}

/* ---- sms ---- */

static void ld_sms_http(struct cw_ld *ld, const struct cw_ynode *root, struct cw_sms_settings *s)
{
    const struct cw_ynode *m =
        ld_submap(ld, root, "http", LD_REQUIRED, KEYS("url", "status_url", "token", "token_env"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "http");
    s->url = ld_url(ld, m, "url", LD_REQUIRED);
    s->status_url = ld_url(ld, m, "status_url", LD_OPTIONAL);
    s->token = ld_secret_value(ld, m, "token", "token_env", LD_OPTIONAL);
    ld_pop(ld, mark);
}

static void ld_sms_aliyun(struct cw_ld *ld, const struct cw_ynode *root, struct cw_sms_settings *s)
{
    const struct cw_ynode *m =
        ld_submap(ld, root, "aliyun", LD_REQUIRED,
                  KEYS("endpoint", "region", "access_key_id", "access_key_secret",
                       "access_key_secret_env", "sign_name", "template_codes"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "aliyun");
    const char *endpoint = ld_url(ld, m, "endpoint", LD_OPTIONAL);
    const char *region = ld_str(ld, m, "region", LD_OPTIONAL, LIM_ID);
    if (endpoint) s->aliyun_endpoint = endpoint;
    if (region) s->aliyun_region = region;
    s->aliyun_key_id = ld_str(ld, m, "access_key_id", LD_REQUIRED, LIM_NAME);
    s->aliyun_key_secret =
        ld_secret_value(ld, m, "access_key_secret", "access_key_secret_env", LD_REQUIRED);
    s->aliyun_sign_name = ld_str(ld, m, "sign_name", LD_REQUIRED, LIM_NAME);
    /* template_codes: {case_received: SMS_123, ...}: Alibaba sends only approved templates,
     * named by its own codes; our texts are kept for the length check and the logs. */
    const struct cw_ynode *codes = ld_field(ld, m, "template_codes", LD_REQUIRED);
    size_t tm = ld_push_key(ld, "template_codes");
    if (codes && codes->type != CW_YNODE_MAP) {
        ld_error(ld, codes, "expected a map of template id to Alibaba template code");
    } else if (codes) {
        struct cw_sms_template_code *out =
            ARENA_NEW(&ld->c->arena, struct cw_sms_template_code, codes->n);
        for (size_t i = 0; i < codes->n; i++) {
            const char *id = codes->pairs[i].key->str;
            size_t km = ld_push_key(ld, id);
            const char *code = ld_scalar(ld, codes->pairs[i].value, LIM_ID);
            char kbuf[2 * LIM_ID + 8];
            const char *key = cw_chain_template_key(&ld->c->arena, id, NULL, kbuf, sizeof kbuf);
            if (!key || !cw_strmap_get(&ld->c->by_template, key))
                ld_error(ld, codes->pairs[i].key, "no SMS template \"%s\" (see sms_templates)", id);
            /* the YAML tree goes when loading ends: the id is copied like every value */
            else if (code)
                out[s->naliyun_templates++] =
                    (struct cw_sms_template_code){cw_arena_strdup(&ld->c->arena, id), code};
            ld_pop(ld, km);
        }
        s->aliyun_templates = out;
    }
    ld_pop(ld, tm);
    ld_pop(ld, mark);
}

static void ld_quiet_hours(struct cw_ld *ld, const struct cw_ynode *m, struct cw_sms_settings *s)
{
    const char *q = ld_str(ld, m, "quiet_hours", LD_OPTIONAL, 32), *why;
    if (!q) return;
    const struct cw_ynode *at = cw_ynode_get(m, "quiet_hours");
    if (!strcmp(q, "none")) {
        s->quiet_from = s->quiet_to = 0;
        return;
    }
    struct cw_hours h;
    if (cw_val_hours(q, &h, &why) < 0) {
        ld_error_key(ld, at, "quiet_hours", "bad quiet hours \"%s\": %s (or \"none\")", q, why);
        return;
    }
    s->quiet_from = h.open, s->quiet_to = h.close;
}

void ld_sms(struct cw_ld *ld, const struct cw_ynode *root)
{
    struct cw_sms_settings *s = &ld->c->sms;
    *s = (struct cw_sms_settings){
        .provider = CW_SMS_FILE,
        .file = "var/sms.log",
        .aliyun_endpoint = "https://dysmsapi.aliyuncs.com/",
        .aliyun_region = "cn-hangzhou",
        .timeout_ms = 5 * SEC,
        .max_attempts = 10,
        .backoff_min_ms = 2 * SEC,
        .backoff_max_ms = HOUR / 6,
        .max_chars = 500,
        .per_minute = 1,
        .per_hour = 5,
        .per_day = 10,
        .quiet_from = 21 * 60,
        .quiet_to = 8 * 60,
    };
    const struct cw_ynode *m =
        ld_submap(ld, root, "sms", LD_OPTIONAL,
                  KEYS("provider", "file", "http", "aliyun", "timeout", "max_attempts",
                       "retry_after", "retry_max", "max_chars", "per_number", "quiet_hours",
                       "status_link", "receipt_secret", "receipt_secret_env"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "sms");
    const char *p = ld_str(ld, m, "provider", LD_OPTIONAL, 16);
    if (!p || !strcmp(p, "file")) {
        const char *file = ld_str(ld, m, "file", LD_OPTIONAL, LIM_URL);
        if (file) s->file = file;
    } else if (!strcmp(p, "http")) {
        s->provider = CW_SMS_HTTP;
        ld_sms_http(ld, m, s);
    } else if (!strcmp(p, "aliyun")) {
        s->provider = CW_SMS_ALIYUN;
        ld_sms_aliyun(ld, m, s);
    } else {
        ld_error_key(ld, cw_ynode_get(m, "provider"), "provider",
                     "unknown SMS provider \"%s\" (file, http or aliyun)", p);
    }
    ld_wall_ms(ld, m, "timeout", SEC, 120 * SEC, &s->timeout_ms);
    ld_int(ld, m, "max_attempts", LD_OPTIONAL, 1, 50, &s->max_attempts);
    ld_wall_ms(ld, m, "retry_after", SEC, HOUR, &s->backoff_min_ms);
    ld_wall_ms(ld, m, "retry_max", SEC, 24 * HOUR, &s->backoff_max_ms);
    if (s->backoff_max_ms < s->backoff_min_ms) s->backoff_max_ms = s->backoff_min_ms;
    ld_int(ld, m, "max_chars", LD_OPTIONAL, 70, 2000, &s->max_chars);
    const struct cw_ynode *pn =
        ld_submap(ld, m, "per_number", LD_OPTIONAL, KEYS("minute", "hour", "day"));
    if (pn) {
        size_t pm = ld_push_key(ld, "per_number");
        ld_int(ld, pn, "minute", LD_OPTIONAL, 0, 1000, &s->per_minute);
        ld_int(ld, pn, "hour", LD_OPTIONAL, 0, 10000, &s->per_hour);
        ld_int(ld, pn, "day", LD_OPTIONAL, 0, 100000, &s->per_day);
        ld_pop(ld, pm);
    }
    ld_quiet_hours(ld, m, s);
    /* The customer's status page: {status_url} in templates. */
    s->status_link = ld_url(ld, m, "status_link", LD_OPTIONAL);
    if (s->status_link && !strstr(s->status_link, "{case_no}"))
        ld_error_key(ld, cw_ynode_get(m, "status_link"), "status_link",
                     "the link needs {case_no}, like https://cs.example.com/s/{case_no}");
    /* What the provider signs delivery receipts and customers' replies with (the gateway's
     * /v1/sms/receipts and /v1/sms/replies): without it those endpoints are closed. */
    s->receipt_secret = ld_secret_value(ld, m, "receipt_secret", "receipt_secret_env", LD_OPTIONAL);
    ld_pop(ld, mark);
}

/* ---- webhooks ---- */

/* The webhook guard's kinds (common/webhook.h), as the chain writes them. */
static const char *const address_kinds[] = {"loopback", "private",      "link_local", "metadata",
                                            "cgnat",    "unspecified",  "multicast",  "broadcast",
                                            "reserved", "documentation"};

void ld_webhooks(struct cw_ld *ld, const struct cw_ynode *root)
{
    struct cw_webhook_settings *w = &ld->c->webhooks;
    *w = (struct cw_webhook_settings){
        .timeout_ms = 10 * SEC,
        .max_attempts = 8,
        .backoff_min_ms = 5 * SEC,
        .backoff_max_ms = HOUR,
    };
    const struct cw_ynode *m =
        ld_submap(ld, root, "webhooks", LD_OPTIONAL,
                  KEYS("timeout", "max_attempts", "retry_after", "retry_max", "allow_addresses"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "webhooks");
    ld_wall_ms(ld, m, "timeout", SEC, 120 * SEC, &w->timeout_ms);
    ld_int(ld, m, "max_attempts", LD_OPTIONAL, 1, 50, &w->max_attempts);
    ld_wall_ms(ld, m, "retry_after", SEC, HOUR, &w->backoff_min_ms);
    ld_wall_ms(ld, m, "retry_max", SEC, 24 * HOUR, &w->backoff_max_ms);
    if (w->backoff_max_ms < w->backoff_min_ms) w->backoff_max_ms = w->backoff_min_ms;
    size_t n;
    const size_t nkinds = sizeof address_kinds / sizeof address_kinds[0];
    const struct cw_ynode *list = ld_list(ld, m, "allow_addresses", LD_OPTIONAL, nkinds, &n);
    const char **names = ARENA_NEW(&ld->c->arena, const char *, n ? n : 1);
    size_t lm = ld_push_key(ld, "allow_addresses");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        const char *name = ld_scalar(ld, list->items[i], 32);
        size_t k = 0;
        while (name && k < nkinds && strcmp(name, address_kinds[k])) k++;
        if (name && k == nkinds)
            ld_error(ld, list->items[i],
                     "unknown address kind \"%s\" (loopback, private, link_local, metadata, "
                     "cgnat, unspecified, multicast, broadcast, reserved, documentation)",
                     name);
        else if (name)
            names[w->nallow_addresses++] = name;
        ld_pop(ld, im);
    }
    ld_pop(ld, lm);
    w->allow_addresses = names;
    ld_pop(ld, mark);
}

const struct cw_sms_settings *cw_chain_sms(const cw_chain *c) { return &c->sms; }
const struct cw_webhook_settings *cw_chain_webhooks(const cw_chain *c) { return &c->webhooks; }

const char *cw_chain_sms_code(const cw_chain *c, const char *template_id)
{
    for (size_t i = 0; template_id && i < c->sms.naliyun_templates; i++)
        if (!strcmp(c->sms.aliyun_templates[i].template_id, template_id))
            return c->sms.aliyun_templates[i].code;
    return NULL;
}
