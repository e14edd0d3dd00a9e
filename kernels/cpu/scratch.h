/* scratch.h — what the kernel files share beside ops.h: buffers grown once to the largest
 * size asked and kept (the step loop allocates nothing after its first step), and the
 * scalar fp32 -> bf16 rounding every vector path must match. Internal to kernels/cpu. */
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

#endif
