/* rng.c — the generators: xoshiro256** seeded by splitmix64, the one stream plugins and
 * the LoRA init draw from (plain state, saved in checkpoints); and Philox4x32-10, the
 * counter-based one dropout and NEFTune draw from, the same on every backend. */
#include "rng.h"

#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hone_rng_seed(hone_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t hone_rng_u64(hone_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double hone_rng_uniform(hone_rng *r)
{
    return (double)(hone_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* ---- Philox4x32-10 -------------------------------------------------------------------- */

static inline void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0], n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0, c[1] = lo1, c[2] = n2, c[3] = lo0;
}

void hone_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r) k[0] += 0x9E3779B9u, k[1] += 0xBB67AE85u;   /* the key bumps between rounds */
        philox_round(c, k);
    }
    memcpy(out, c, sizeof c);
}

static void philox_block(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t block)
{
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    hone_philox4x32(out, ctr, key);
}

/* the top 24 bits: every value a float in [0, 1) holds exactly at that spacing */
static inline float to_unit(uint32_t u)
{
    return (float)(u >> 8) * 0x1p-24f;
}

float hone_philox_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    philox_block(w, seed, stream, index / 4);
    return to_unit(w[index % 4]);
}
