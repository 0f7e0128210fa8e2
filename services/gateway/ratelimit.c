/*
 * Token buckets by key (a client IP, a phone number, a tenant id), in a fixed table so that
 * a flood of new keys costs no memory: a key hashes to a slot and probes 8 slots; when all
 * are taken by other keys, the one refilled longest ago gives way (it was the least active,
 * and a forgotten key starts with a full bucket, so eviction only ever errs towards
 * allowing). Counted per gateway process: with N gateways behind a balancer a client may
 * get N times the rate, which docs/api.md says.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define PROBES 8

struct bucket {
    uint64_t key; /* 0: free */
    double tokens;
    int64_t last_ms;
};

struct gw_rate {
    struct bucket *slots;
    size_t mask;
    double per_ms, burst;
};

struct gw_rate *gw_rate_new(size_t capacity, double per_interval, double interval_ms, double burst)
{
    struct gw_rate *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    size_t n = 64;
    while (n < capacity) n <<= 1;
    rl->slots = calloc(n, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    rl->mask = n - 1;
    rl->per_ms = per_interval / interval_ms;
    rl->burst = burst;
    return rl;
}

void gw_rate_free(struct gw_rate *rl)
{
    if (!rl) return;
    free(rl->slots);
    free(rl);
}

/* FNV-1a, then a mixer; never 0 (0 marks a free slot). */
static uint64_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

bool gw_rate_take(struct gw_rate *rl, const char *key, int64_t now_ms, int *retry_after_s)
{
    if (!rl || rl->per_ms <= 0) return true;
    uint64_t k = hash(key);
    struct bucket *b = NULL, *oldest = NULL;
    for (size_t i = 0; i < PROBES; i++) {
        struct bucket *s = &rl->slots[(k + i) & rl->mask];
        if (s->key == k) {
            b = s;
            break;
        }
        if (s->key == 0) {
            if (!oldest || oldest->key != 0) oldest = s;
            continue;
        }
        if (!oldest || (oldest->key != 0 && s->last_ms < oldest->last_ms)) oldest = s;
    }
    if (!b) {
        b = oldest;
        b->key = k;
        b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens = fmin(rl->burst, b->tokens + (double)(now_ms - b->last_ms) * rl->per_ms);
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return true;
    }
    if (retry_after_s) *retry_after_s = (int)ceil((1 - b->tokens) / rl->per_ms / 1000);
    return false;
}
