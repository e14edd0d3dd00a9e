/* philox.c — dropout masks and NEFTune noise from Philox4x32-10 (the stream
 * core/base/rng.c defines: draw i of (seed, stream) is word i % 4 of the block at counter
 * (i / 4, stream) under key seed, its top 24 bits a float in [0, 1)).
 *
 * The model draws a mask for every LoRA input at every step (the pricer: about 70M draws
 * a step); one at a time that was a tenth of a step. Here sixteen blocks go through the
 * rounds at once on AVX-512 (the same integer arithmetic, so the same bits as the scalar
 * loop below, which runs on AVX2), and chunks of draws run on the thread budget: each
 * draw depends on its index only, so any split gives the same values. */
#include "ops.h"

#include <immintrin.h>

#include "isa.h"

enum { CHUNK = 4096 };   /* draws per task, a multiple of 64 */

static const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

/* the four words of block `block` */
static void block1(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t block)
{
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r) k0 += W0, k1 += W1;
        uint64_t p0 = (uint64_t)M0 * c0, p1 = (uint64_t)M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0, c1 = (uint32_t)p1, c2 = n2, c3 = (uint32_t)p0;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static inline float to_unit(uint32_t u)
{
    return (float)(u >> 8) * 0x1p-24f;
}

/* hi and lo words of m * x for 16 lanes */
__attribute__((target("avx512f"))) static inline void mul16(__m512i x, __m512i m, __m512i *hi, __m512i *lo)
{
    __m512i ev = _mm512_mul_epu32(x, m), od = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, ev, _mm512_slli_epi64(od, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(ev, 32), od);
}

/* out[0..64) = the draws of blocks b0 .. b0 + 15 */
__attribute__((target("avx512f"))) static void blocks16(float *out, uint64_t seed, uint64_t stream, uint64_t b0)
{
    /* 16 consecutive counters: the low word carries into the high one past 2^32 */
    __m512i lo64a = _mm512_add_epi64(_mm512_set1_epi64((long long)b0), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    __m512i lo64b = _mm512_add_epi64(_mm512_set1_epi64((long long)b0), _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15));
    /* split the 64-bit counters into 32-bit words, lane i = block b0 + i */
    __m512i idx_lo = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512i idx_hi = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i c0 = _mm512_permutex2var_epi32(lo64a, idx_lo, lo64b), c1 = _mm512_permutex2var_epi32(lo64a, idx_hi, lo64b);
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream), c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __m512i m0 = _mm512_set1_epi32((int)M0), m1 = _mm512_set1_epi32((int)M1);
    for (int r = 0; r < 10; r++) {
        if (r) k0 += W0, k1 += W1;
        __m512i hi0, lo0, hi1, lo1;
        mul16(c0, m0, &hi0, &lo0);
        mul16(c2, m1, &hi1, &lo1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    }
    /* lane i's words w0..w3 are draws 4i .. 4i + 3: interleave, then to [0, 1) */
    __m512i w[4] = {c0, c1, c2, c3};
    uint32_t words[4][16];
    for (int j = 0; j < 4; j++) _mm512_storeu_si512((void *)words[j], _mm512_srli_epi32(w[j], 8));
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (float)words[j][i] * 0x1p-24f;
}

void op_philox_uniforms(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t index0)
{
    size_t i = 0;
    uint32_t w[4];
    while (i < n && (index0 + i) % 4) {   /* up to the first whole block */
        block1(w, seed, stream, (index0 + i) / 4);
        out[i] = to_unit(w[(index0 + i) % 4]);
        i++;
    }
    if (op_isa_current() >= OP_ISA_AVX512)
        for (; i + 64 <= n; i += 64) blocks16(out + i, seed, stream, (index0 + i) / 4);
    for (; i + 4 <= n; i += 4) {
        block1(w, seed, stream, (index0 + i) / 4);
        for (int j = 0; j < 4; j++) out[i + j] = to_unit(w[j]);
    }
    if (i < n) {
        block1(w, seed, stream, (index0 + i) / 4);
        for (int j = 0; i < n; j++, i++) out[i] = to_unit(w[j]);
    }
}

/* draws index0 .. index0 + n - 1 in chunks on the thread budget: into a mask
 * (keep[i] = draw >= a) or as noise (x[i] += (2 draw - 1) a) */
static void draw(uint8_t *keep, float *x, size_t n, float a, uint64_t seed, uint64_t stream, uint64_t index0)
{
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 8)
    for (size_t c = 0; c < chunks; c++) {
        float u[CHUNK];
        size_t i0 = c * CHUNK, m = n - i0 < CHUNK ? n - i0 : CHUNK;
        op_philox_uniforms(u, m, seed, stream, index0 + i0);
        if (keep)
            for (size_t i = 0; i < m; i++) keep[i0 + i] = u[i] >= a;
        else
            for (size_t i = 0; i < m; i++) x[i0 + i] += (2.0f * u[i] - 1.0f) * a;
    }
}

void op_dropout_mask(uint8_t *keep, size_t n, float p, uint64_t seed, uint64_t stream, uint64_t index0)
{
    draw(keep, NULL, n, p, seed, stream, index0);
}

void op_uniform_noise(float *x, size_t n, float mag, uint64_t seed, uint64_t stream, uint64_t index0)
{
    draw(NULL, x, n, mag, seed, stream, index0);
}
