#include "hist.h"

static size_t hist_index(uint64_t us)
{
    if (us < HIST_SUB) return (size_t)us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT) return HIST_BUCKETS - 1;
    return HIST_SUB + (size_t)shift * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The highest value a bucket holds: percentiles err on the slow side. */
static uint64_t hist_bucket_high(size_t idx)
{
    if (idx < HIST_SUB) return idx;
    size_t shift = (idx - HIST_SUB) / HIST_SUB, sub = (idx - HIST_SUB) % HIST_SUB;
    return ((HIST_SUB + sub) << shift) + ((uint64_t)1 << shift) - 1;
}

void hist_add(struct lg_hist *h, uint64_t us)
{
    h->counts[hist_index(us)]++;
    h->total++;
    if (us > h->max_us) h->max_us = us;
}

double hist_percentile_ms(const struct lg_hist *h, double p)
{
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = hist_bucket_high(i);
            return (double)(v < h->max_us ? v : h->max_us) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}
