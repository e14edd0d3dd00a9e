/* scratch.h — what the kernel files share beside ops.h: buffers grown once to the largest
 * size asked and kept (the step loop allocates nothing after its first step), and the
 * scalar fp32 -> bf16 rounding every vector path must match. Internal to kernels/cpu. */
#ifndef HONE_KERNELS_SCRATCH_H
#define HONE_KERNELS_SCRATCH_H

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

#endif
