/* rng.h — the core's random number generator (also lent to plugins via the host). */
#ifndef HONE_RNG_H
#define HONE_RNG_H

#include "hone/plugin.h"

void hone_rng_seed(hone_rng *r, uint64_t seed);
uint64_t hone_rng_u64(hone_rng *r);
double hone_rng_uniform(hone_rng *r);

/* Philox4x32-10 (Random123, Salmon et al. 2011): four 32-bit words from a 128-bit counter
 * and a 64-bit key. Counter-based: any draw is computed from its index alone, so every
 * backend (the CPU here, CUDA next) draws the same numbers, and a resumed run continues
 * from a counter. */
void hone_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);
/* Draw `index` of stream `stream` under `seed`, in [0, 1) with 24 random bits: word
 * index % 4 of the block with counter (index / 4, stream) and key seed. */
float hone_philox_uniform(uint64_t seed, uint64_t stream, uint64_t index);

#endif
