/* gemm_amx.c — bf16 products with fp32 accumulation on AMX tiles (CPUs with amx_bf16),
 * for the shapes a fine-tuning step has: a few hundred to a few thousand rows of
 * activations against a weight, and LoRA's thin r-wide products.
 *
 * The operands are packed into the layouts tileloadd reads in one stride-64 sweep:
 *   A [M, K] row-major   -> Ap [MB/16][Kp/32][16 rows][32 k]        (a tile = 1 KB)
 *   B [K, N] (or [N, K]) -> Bp [Np/16][Kp/2][16 cols][2 k] (VNNI pairs, a tile = 1 KB)
 * padded with zeros to multiples of 32, so the kernel never reads past an operand and
 * tails need no second path; either may come in fp32, rounded to bf16 as it is packed.
 * B is packed whole, A a block of MB rows at a time (about 512 KB, so it stays in L2
 * while every B panel passes it). A thin product (N up to 64) reads A's whole bf16
 * tiles where they lie, strided: packing would cost more than its one sweep.
 *
 * The micro-kernel is 2 x 2 tiles of C (32 x 32 fp32) over the whole of K: 4 C tiles,
 * 2 of A, 2 of B, all 8 AMX registers; each 32-deep step loads 4 tiles for 4 tdpbf16ps.
 * Threads split the B panels (or, when there are fewer panels than threads, the block's
 * rows). C = alpha acc + beta C is applied from a 32 x 32 buffer (beta 0 never reads C);
 * a whole block with alpha 1 and beta 0 is stored straight from the tiles.
 *
 * oneDNN 2.6's matmul ran the pricer's products (~500 x 576 x 1536) at ~150 GFLOP/s in
 * the run, this at 350-440 (gemm_bf16.c keeps oneDNN for CPUs without AMX). */
#include "ops.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "scratch.h"

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

static void *scratch_ap, *scratch_bp;
static size_t cap_ap, cap_bp;

static int up32(int x)
{
    return (x + 31) & ~31;
}

/* an operand as the caller holds it: bf16 (h) or fp32 (f, rounded as it is packed), rows
 * ld apart */
typedef struct {
    const uint16_t *h;
    const float *f;
    int ld;
} a_src, b_src;

/* rows [m, m + 16) of A into one row of Ap's tiles (o: that row's first tile) */
AMX static void pack_a_tile(uint16_t *o, a_src a, int M, int K, int Kp, int m0)
{
    for (int i = 0; i < 16; i++) {
        int m = m0 + i;
        for (int k0 = 0; k0 < Kp; k0 += 32) {
            uint16_t *dst = o + (size_t)k0 * 16 + i * 32;
            int n = m >= M ? 0 : K - k0 < 32 ? K - k0 : 32;   /* K - k0 > 0: Kp < K + 32 */
            if (a.h && n) memcpy(dst, a.h + (size_t)m * a.ld + k0, (size_t)n * 2);
            if (a.f && n == 32) {
                const float *x = a.f + (size_t)m * a.ld + k0;
                _mm256_storeu_si256((__m256i *)dst, bf16_round16(_mm512_loadu_si512((const void *)x)));
                _mm256_storeu_si256((__m256i *)(dst + 16), bf16_round16(_mm512_loadu_si512((const void *)(x + 16))));
            } else if (a.f) {
                for (int k = 0; k < n; k++) dst[k] = bf16_round(a.f[(size_t)m * a.ld + k0 + k]);
            }
            memset(dst + n, 0, (size_t)(32 - n) * 2);
        }
    }
}

/* a pair of 16-lane fp32 vectors rounded to bf16, as one 16-dword row of VNNI pairs
 * (lo in each dword's low half) */
AMX static __m512i pair16(__m512i lo, __m512i hi)
{
    return _mm512_or_si512(_mm512_cvtepu16_epi32(bf16_round16(lo)),
                           _mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16_round16(hi)), 16));
}

/* B(k, n): stored [N, K] when tb (a weight as torch keeps it, Y = X W^T), else [K, N];
 * bf16 or fp32 (rounded as it is packed); 0 past its end (the padding) */
static uint16_t b_at(b_src b, int tb, int N, int K, int k, int n)
{
    if (k >= K || n >= N) return 0;
    size_t i = tb ? (size_t)n * b.ld + k : (size_t)k * b.ld + n;
    return b.h ? b.h[i] : bf16_round(b.f[i]);
}

/* Bp's panel nt: 16 columns of B in VNNI pairs. A full panel goes 16 columns a store
 * (a gather down [N, K]'s rows, an interleave of two of [K, N]'s); tails and padding one
 * value at a time. */
AMX static void pack_b_panel(uint16_t *bp, b_src b, int tb, int N, int K, int Kp, int nt)
{
    uint16_t *o = bp + (size_t)nt * 16 * Kp;
    int n0 = nt * 16, kp = 0;
    if (n0 + 16 <= N && tb) {
        __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(b.ld));
        if (b.h && !(b.ld & 1)) {   /* (k, k+1) is one dword of each row */
            const uint16_t *r = b.h + (size_t)n0 * b.ld;
            __m512i idx = _mm512_srli_epi32(rows, 1);
            for (; 2 * kp + 1 < K; kp++)
                _mm512_store_si512((void *)(o + kp * 32), _mm512_i32gather_epi32(idx, (const void *)(r + 2 * kp), 4));
        } else if (b.f) {
            const float *r = b.f + (size_t)n0 * b.ld;
            for (; 2 * kp + 1 < K; kp++)
                _mm512_store_si512((void *)(o + kp * 32),
                                   pair16(_mm512_i32gather_epi32(rows, (const void *)(r + 2 * kp), 4),
                                          _mm512_i32gather_epi32(rows, (const void *)(r + 2 * kp + 1), 4)));
        }
    } else if (n0 + 16 <= N) {
        for (; 2 * kp + 1 < K; kp++) {
            size_t i = (size_t)(2 * kp) * b.ld + n0;
            __m512i v;
            if (b.h)
                v = _mm512_or_si512(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b.h + i))),
                                    _mm512_slli_epi32(
                                        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b.h + i + b.ld))), 16));
            else
                v = pair16(_mm512_loadu_si512((const void *)(b.f + i)), _mm512_loadu_si512((const void *)(b.f + i + b.ld)));
            _mm512_store_si512((void *)(o + kp * 32), v);
        }
    }
    for (; kp < Kp / 2; kp++)
        for (int j = 0; j < 16; j++) {
            o[kp * 32 + 2 * j] = b_at(b, tb, N, K, 2 * kp, n0 + j);
            o[kp * 32 + 2 * j + 1] = b_at(b, tb, N, K, 2 * kp + 1, n0 + j);
        }
}

/* C's 32 x 32 block at (m0, n0) from the accumulator tiles, clipped to M x N; a whole
 * block of a plain product (alpha 1, beta 0: the forward's) goes straight to C */
AMX static void store_block(float *C, int ldc, int M, int N, int m0, int n0, float alpha, float beta)
{
    if (alpha == 1.0f && beta == 0.0f && m0 + 32 <= M && n0 + 32 <= N) {
        float *c = C + (size_t)m0 * ldc + n0;
        _tile_stored(0, c, ldc * 4);
        _tile_stored(1, c + 16, ldc * 4);
        _tile_stored(2, c + (size_t)16 * ldc, ldc * 4);
        _tile_stored(3, c + (size_t)16 * ldc + 16, ldc * 4);
        return;
    }
    float acc[32][32] __attribute__((aligned(64)));
    _tile_stored(0, &acc[0][0], 128);
    _tile_stored(1, &acc[0][16], 128);
    _tile_stored(2, &acc[16][0], 128);
    _tile_stored(3, &acc[16][16], 128);
    int rows = M - m0 < 32 ? M - m0 : 32, cols = N - n0 < 32 ? N - n0 : 32;
    __mmask16 lo = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
    __mmask16 hi = (__mmask16)(cols >= 32 ? 0xffff : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < rows; i++) {
        float *c = C + (size_t)(m0 + i) * ldc + n0;
        __m512 x0 = _mm512_mul_ps(va, _mm512_load_ps(acc[i]));
        __m512 x1 = _mm512_mul_ps(va, _mm512_load_ps(acc[i] + 16));
        if (beta != 0.0f) {
            x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(lo, c), x0);
            x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(hi, c + 16), x1);
        }
        _mm512_mask_storeu_ps(c, lo, x0);
        _mm512_mask_storeu_ps(c + 16, hi, x1);
    }
}

/* one 16-row tile of A at each 32-deep step: at p + k step, rows stride bytes apart */
typedef struct {
    const uint16_t *p;
    int stride, step;
} a_tile;

/* the 2 x 2-tile kernel over the whole of Kp for C's block at n0 (two A tiles given);
 * a half that is all padding (tall, wide 0) is not multiplied */
AMX static void block(a_tile a0, a_tile a1, const uint16_t *bp, int Kp, int n0, int tall, int wide)
{
    const uint16_t *b0 = bp + (size_t)n0 * Kp, *b1 = b0 + (size_t)16 * Kp;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0, s = 0; k < Kp; k += 32, s++) {
        _tile_loadd(4, a0.p + (size_t)s * a0.step, a0.stride);
        _tile_loadd(6, b0 + (size_t)k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (wide) {
            _tile_loadd(7, b1 + (size_t)k * 16, 64);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (tall) {
            _tile_loadd(5, a1.p + (size_t)s * a1.step, a1.stride);
            _tile_dpbf16ps(2, 5, 6);
            if (wide) _tile_dpbf16ps(3, 5, 7);
        }
    }
}

/* A's 16-row tile at row m: straight from the caller's bf16 rows where they are whole
 * (direct), else from Ap (o: the block's packed tiles, mb: the block's first row) */
static a_tile a_at(a_src a, int direct, const uint16_t *o, int mb, int m, int M, int Kp)
{
    if (direct && m + 16 <= M) return (a_tile){a.h + (size_t)m * a.ld, a.ld * 2, 32};
    return (a_tile){o + (size_t)(m - mb) * Kp, 64, 512};
}

AMX static void run(int tb, int M, int N, int K, float alpha, a_src a, b_src b, float beta, float *C, int ldc,
                    uint16_t *ap, uint16_t *bp, int MB, int direct)
{
    int Kp = up32(K), Mp = up32(M), NT = up32(N) / 16, NP = NT / 2;
    int nt = omp_get_max_threads();
    size_t work = (size_t)M * N * K;
    if (work < 4u << 20) nt = 1;   /* below ~8 Mflop a team's start costs more than it saves */
#pragma omp parallel num_threads(nt)
    {
        int T = omp_get_num_threads(), id = omp_get_thread_num();
#pragma omp for schedule(static)
        for (int t = 0; t < NT; t++) pack_b_panel(bp, b, tb, N, K, Kp, t);
        amx_tiles_on();
        for (int mb = 0; mb < Mp; mb += MB) {
            int me = mb + MB < Mp ? mb + MB : Mp;
#pragma omp for schedule(static)
            for (int m = mb; m < me; m += 16)
                if (!direct || m + 16 > M) pack_a_tile(ap + (size_t)(m - mb) * Kp, a, M, K, Kp, m);
            /* the panels split between threads, or with fewer panels than threads the
             * block's row pairs */
            int split = NP >= T, pairs = (me - mb) / 32;
            int p0 = split ? NP * id / T : 0, p1 = split ? NP * (id + 1) / T : NP;
            int q0 = split ? 0 : pairs * id / T, q1 = split ? pairs : pairs * (id + 1) / T;
            for (int p = p0; p < p1; p++)
                for (int q = q0; q < q1; q++) {
                    int m0 = mb + 32 * q, n0 = 32 * p;
                    if (m0 >= M) continue;
                    block(a_at(a, direct, ap, mb, m0, M, Kp), a_at(a, direct, ap, mb, m0 + 16, M, Kp), bp, Kp, n0,
                          m0 + 16 < M, n0 + 16 < N);
                    store_block(C, ldc, M, N, m0, n0, alpha, beta);
                }
#pragma omp barrier
        }
        _tile_release();
    }
}

int op_gemm_amx(int tb, int M, int N, int K, float alpha, const uint16_t *A16, const float *A32, int lda,
                const uint16_t *B16, const float *B32, int ldb, float beta, float *C, int ldc)
{
    a_src a = {.h = A16, .f = A16 ? NULL : A32, .ld = lda};
    b_src b = {.h = B16, .f = B16 ? NULL : B32, .ld = ldb};
    int Kp = up32(K);
    /* MB rows of A per sweep (512 KB packed); thin products read A in place */
    int MB = (262144 / Kp) & ~31, direct = a.h && N <= 64 && K % 32 == 0;
    if (MB < 32) MB = 32;
    uint16_t *ap = scratch_grow(&scratch_ap, &cap_ap, (size_t)MB * Kp * 2);
    uint16_t *bp = scratch_grow(&scratch_bp, &cap_bp, (size_t)up32(N) * Kp * 2);
    if (!ap || !bp) return -1;
    run(tb, M, N, K, alpha, a, b, beta, C, ldc, ap, bp, MB, direct);
    return 0;
}

