/* rng.h — the core's random number generator (also lent to plugins via the host). */
#ifndef HONE_RNG_H
#define HONE_RNG_H

#include "hone/plugin.h"

void hone_rng_seed(hone_rng *r, uint64_t seed);
uint64_t hone_rng_u64(hone_rng *r);
double hone_rng_uniform(hone_rng *r);

#endif
