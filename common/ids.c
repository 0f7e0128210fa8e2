#include "ids.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int64_t cw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cw_ulid_new(char out[CW_ULID_LEN + 1])
{
    uint8_t rnd[10];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    uint64_t t = (uint64_t)cw_now_ms();
    /* 48-bit time in 10 characters (the first holds 3 bits). */
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 random bits in 16 characters. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++) hi = hi << 8 | rnd[i];
    for (int i = 5; i < 10; i++) lo = lo << 8 | rnd[i];
    for (int i = 17; i >= 10; i--) {
        out[i] = crockford[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        out[i] = crockford[lo & 31];
        lo >>= 5;
    }
    out[CW_ULID_LEN] = '\0';
    return 0;
}

int cw_ulid_valid(const char *s)
{
    if (!s || strlen(s) != CW_ULID_LEN || s[0] > '7') return 0;
    for (int i = 0; i < CW_ULID_LEN; i++)
        if (!strchr(crockford, s[i]) || !s[i]) return 0;
    return 1;
}

int64_t cw_ulid_time_ms(const char *s)
{
    if (!cw_ulid_valid(s)) return -1;
    int64_t t = 0;
    for (int i = 0; i < 10; i++) t = t << 5 | (int64_t)(strchr(crockford, s[i]) - crockford);
    return t;
}
