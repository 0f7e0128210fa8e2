/*
 * Identifiers and clocks.
 *
 * Event and case ids are ULIDs: 26 characters of Crockford base32, the first 10 encoding the
 * millisecond time, so ids sort by creation time (handy in Redis and logs) and need no
 * coordination between processes (80 random bits from getrandom()).
 */
#ifndef CW_IDS_H
#define CW_IDS_H

#include <stdint.h>

#define CW_ULID_LEN 26

/* Writes a new ULID and a terminating NUL into out. Returns 0, or -1 if no randomness. */
int cw_ulid_new(char out[CW_ULID_LEN + 1]);
/* The ULID of time_ms (its low 48 bits) and these 80 bits: for ids derived from something
 * stable (the same input gives the same id on every attempt). */
void cw_ulid_make(int64_t time_ms, const uint8_t rnd[10], char out[CW_ULID_LEN + 1]);
/* 1 when s is a well-formed ULID. */
int cw_ulid_valid(const char *s);
/* Milliseconds of the ULID's time part, or -1 when s is not a ULID. */
int64_t cw_ulid_time_ms(const char *s);

/* Wall clock, Unix milliseconds (for events, due times). */
int64_t cw_now_ms(void);
/* Monotonic milliseconds (for timeouts and latency: never jumps). */
int64_t cw_mono_ms(void);

#define CW_PHONE_HASH_LEN 16 /* hex of SHA-256's first 8 bytes */

/* Hex of the first 8 bytes of SHA-256(phone digits): Redis keys never hold the number itself.
 * Only digits count, and a Chinese mobile number's country code does not: "+86 138-0013-8000",
 * "008613800138000" and "13800138000" are the same number. */
void cw_phone_hash(const char *phone, char out[CW_PHONE_HASH_LEN + 1]);

#endif
