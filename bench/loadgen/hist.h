/* Latency histogram of loadgen: microseconds, HDR style. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Latency histogram in microseconds, HDR style: exact below 128 us, then 128 linear buckets
 * per power of two, so every value is known to within 1 % in a fixed 32 KiB whatever the
 * duration or rate. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_SHIFT 31
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_SHIFT + 1) * HIST_SUB)

struct lg_hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
};

void hist_add(struct lg_hist *h, uint64_t us);
/* The p-th percentile in milliseconds, on the slow side of its bucket; 0 when empty. */
double hist_percentile_ms(const struct lg_hist *h, double p);

#endif
