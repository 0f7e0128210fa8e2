#include "ids.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <pthread.h>
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

/* Kernel randomness fetched a kilobyte at a time: one getrandom call per id was a tenth of
 * the gateway's system calls, and OpenSSL's RAND_bytes asks getpid on every call instead.
 * Per thread, and emptied in a forked child so that parent and child never hand out the same
 * bytes. */
static _Thread_local struct {
    uint8_t buf[1024];
    size_t left;
} pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    explicit_bzero(pool.buf, sizeof pool.buf);
    pool.left = 0;
}

static void pool_register(void) { pthread_atfork(NULL, NULL, pool_forget); }

static int random_bytes(uint8_t *out, size_t n)
{
    pthread_once(&pool_once, pool_register);
    if (pool.left < n) {
        size_t got = 0;
        while (got < sizeof pool.buf) {
            ssize_t k = getrandom(pool.buf + got, sizeof pool.buf - got, 0);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) return -1;
            got += (size_t)k;
        }
        pool.left = sizeof pool.buf;
    }
    uint8_t *p = pool.buf + sizeof pool.buf - pool.left;
    memcpy(out, p, n);
    explicit_bzero(p, n); /* a byte handed out is not kept */
    pool.left -= n;
    return 0;
}

int cw_ulid_new(char out[CW_ULID_LEN + 1])
{
    uint8_t rnd[10];
    if (random_bytes(rnd, sizeof rnd) != 0) return -1;
    cw_ulid_make(cw_now_ms(), rnd, out);
    return 0;
}

void cw_ulid_make(int64_t time_ms, const uint8_t rnd[10], char out[CW_ULID_LEN + 1])
{
    uint64_t t = (uint64_t)time_ms & 0xFFFFFFFFFFFFull;
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

void cw_phone_hash(const char *phone, char out[CW_PHONE_HASH_LEN + 1])
{
    char all[64];
    size_t n = 0;
    for (const char *p = phone; *p && n < sizeof all; p++)
        if (*p >= '0' && *p <= '9') all[n++] = *p;
    /* A Chinese mobile number is the same with or without its country code (+86, 0086). */
    const char *digits = all;
    if (n == 15 && !memcmp(all, "0086", 4) && all[4] == '1')
        digits += 4, n -= 4;
    else if (n == 13 && !memcmp(all, "86", 2) && all[2] == '1')
        digits += 2, n -= 2;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(digits, n, md, &mdlen, EVP_sha256(), NULL) != 1) mdlen = 0;
    for (int i = 0; i < CW_PHONE_HASH_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", i < (int)mdlen ? md[i] : 0);
    out[CW_PHONE_HASH_LEN] = '\0';
}
