/* Request bodies of loadgen (bodies.c). */
#ifndef LG_BODIES_H
#define LG_BODIES_H

#include <stddef.h>
#include <stdint.h>

struct lg_bodies {
    uint64_t rng;        /* xorshift64* state */
    uint64_t phone_base; /* where this run's phone numbers start */
};

void lg_bodies_init(struct lg_bodies *b, uint64_t seed);
/* Writes the body of request number seq; returns its length, 0 if it did not fit in cap. */
size_t lg_body_build(struct lg_bodies *b, uint64_t seq, char *out, size_t cap);
/* The customer phone of request number seq's body (11 digits). */
void lg_body_phone(const struct lg_bodies *b, uint64_t seq, char out[16]);

#endif
