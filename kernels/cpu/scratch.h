/* scratch.h — what the kernel files share beside ops.h: buffers grown once to the largest
 * size asked and kept (the step loop allocates nothing after its first step), the
 * scalar fp32 -> bf16 rounding every vector path must match, AMX's tile configuration,
 * and the 8-lane AVX2 exp.
 * Internal to kernels/cpu. */
#ifndef HONE_KERNELS_SCRATCH_H
#define HONE_KERNELS_SCRATCH_H

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* *buf holds at least `bytes` (64-byte aligned), grown and kept; NULL when out of memory
 * (the old buffer stays) */
static inline void *scratch_grow(void **buf, size_t *cap, size_t bytes)
{
    if (bytes <= *cap) return *buf;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    free(*buf);
    *buf = p;
    *cap = bytes;
    return p;
}

/* fp32 -> bf16 bits, round to nearest even; a NaN stays a (quiet) NaN */
static inline uint16_t bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* the same rounding 16 at a time, in integers (no DAZ: the bits are bf16_round's) */
__attribute__((target("avx512f"))) static inline __m256i bf16_round16(__m512i u)
{
    const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x400000);
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absm), inf);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, half), odd), 16);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_srli_epi32(_mm512_or_si512(u, quiet), 16));
    return _mm512_cvtepi32_epi16(r);
}

/* AMX's tile configuration for this thread: palette 1, all 8 tiles 16 rows x 64 bytes
 * (the widest: 16 x 32 bf16, or 16 x 16 fp32) */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tile_config;

__attribute__((target("amx-tile"))) static inline void amx_tiles_on(void)
{
    /* a constant in memory: GCC 12 dropped the stores of a local one filled in a loop
     * (it does not see ldtilecfg read them) */
    static const amx_tile_config cfg = {.palette = 1,
                                        .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                        .rows = {16, 16, 16, 16, 16, 16, 16, 16}};
    _tile_loadconfig(&cfg);
}

/* e^x for 8 lanes, Cephes' expf: x = n ln2 + r with |r| <= ln2/2 in two parts, a degree-5
 * polynomial for e^r, 2^n through the exponent bits; within 2 ulp of the exact value, 0 below
 * -87.3 (where e^x is below FLT_MIN), NaN stays NaN */
static inline __m256 exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
    x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));   /* operands in this order: a NaN x comes through */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* out[j] = e^(x[j] - sub) for j < n (out may be x); returns the sum of out in double */
static inline double exp_sub(float *out, const float *x, int n, float sub)
{
    __m256 s = _mm256_set1_ps(sub);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), s));
        if (out) _mm256_storeu_ps(out + j, e);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = 0;
    if (j < n) {   /* the tail through the same lanes, so every element rounds alike */
        float buf[8] = {0};
        memcpy(buf, x + j, (size_t)(n - j) * sizeof(float));
        _mm256_storeu_ps(buf, exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), s)));
        if (out) memcpy(out + j, buf, (size_t)(n - j) * sizeof(float));
        for (int k = 0; k < n - j; k++) sum += buf[k];
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, acc0);
    _mm256_storeu_pd(lanes + 4, acc1);
    for (int k = 0; k < 8; k++) sum += lanes[k];
    return sum;
}

#endif
