/* gemm_amx.c — bf16 products with fp32 accumulation on AMX tiles (CPUs with amx_bf16),
 * for the shapes a fine-tuning step has: a few hundred to a few thousand rows of
 * activations against a weight, and LoRA's thin r-wide products.
 *
 * Both operands are packed first, in the layouts tileloadd reads in one stride-64 sweep:
 *   A [M, K] row-major   -> Ap [Mp/16][Kp/32][16 rows][32 k]        (a tile = 1 KB)
 *   B [K, N] (or [N, K]) -> Bp [Np/16][Kp/2][16 cols][2 k] (VNNI pairs, a tile = 1 KB)
 * padded with zeros to Mp, Np multiples of 32 and Kp of 32, so the kernel never reads
 * past an operand and tails need no second path. Packing reads each operand once
 * (M K + K N values against 2 M N K flops); loading A straight from a row-major
 * [M, K] strided by 2K bytes ran at three quarters of the packed rate.
 *
 * The micro-kernel is 2 x 2 tiles of C (32 x 32 fp32) over the whole of K: 4 C tiles,
 * 2 of A, 2 of B, all 8 AMX registers; each 32-deep step loads 4 tiles for 4 tdpbf16ps.
 * A block of A rows (MB, sized to stay in L2) is swept against every B panel a thread
 * owns; threads split the B panels (or, when there are fewer panels than threads, the
 * rows). C = alpha acc + beta C is applied from a 32 x 32 buffer (beta 0 never reads C).
 *
 * A product of oneDNN 2.6's matmul on the pricer's shapes (~500 x 576 x 1536) ran at a
 * quarter of this in the run (see gemm_bf16.c, which keeps it for AVX512-BF16 CPUs). */
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

/* tileloadd's configuration: palette 1, all 8 tiles 16 rows x 64 bytes */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

AMX static void tiles_on(void)
{
    tile_config cfg = {.palette = 1};
    for (int i = 0; i < 8; i++) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
}

/* Ap's tiles for rows [mt*16, mt*16+16) (one thread's share of them) */
static void pack_a_tile(uint16_t *ap, const uint16_t *a, int lda, int M, int K, int Kp, int mt)
{
    uint16_t *o = ap + (size_t)mt * 16 * Kp;
    for (int i = 0; i < 16; i++) {
        int m = mt * 16 + i;
        for (int k0 = 0; k0 < Kp; k0 += 32) {
            uint16_t *dst = o + (size_t)k0 * 16 + i * 32;
            int n = m >= M ? 0 : K - k0 < 32 ? K - k0 : 32;   /* K - k0 > 0: Kp < K + 32 */
            if (n) memcpy(dst, a + (size_t)m * lda + k0, (size_t)n * 2);
            memset(dst + n, 0, (size_t)(32 - n) * 2);
        }
    }
}

/* Bp's panel nt: 16 columns of B in VNNI pairs. tb: B is stored [N, K] (a weight as
 * torch keeps it, Y = X W^T), else [K, N] */
static void pack_b_panel(uint16_t *bp, const uint16_t *b, int ldb, int tb, int N, int K, int Kp, int nt)
{
    uint16_t *o = bp + (size_t)nt * 16 * Kp;
    for (int j = 0; j < 16 && tb; j++) {
        int n = nt * 16 + j;
        uint16_t *dst = o + j * 2;
        if (n >= N) {
            for (int kp = 0; kp < Kp / 2; kp++) dst[kp * 32] = dst[kp * 32 + 1] = 0;
            continue;
        }
        const uint16_t *row = b + (size_t)n * ldb;
        int kp = 0;
        for (; 2 * kp + 1 < K; kp++) memcpy(dst + kp * 32, row + 2 * kp, 4);
        for (; kp < Kp / 2; kp++) {
            dst[kp * 32] = 2 * kp < K ? row[2 * kp] : 0;
            dst[kp * 32 + 1] = 0;
        }
    }
    if (tb) return;
    /* [K, N]: a pair of rows at a time, 16 columns wide (the loads stay in two lines) */
    for (int kp = 0; kp < Kp / 2; kp++) {
        int k = 2 * kp;
        const uint16_t *r0 = b + (size_t)k * ldb, *r1 = r0 + ldb;
        uint16_t *dst = o + kp * 32;
        for (int j = 0; j < 16; j++) {
            int n = nt * 16 + j;
            dst[2 * j] = n < N && k < K ? r0[n] : 0;
            dst[2 * j + 1] = n < N && k + 1 < K ? r1[n] : 0;
        }
    }
}

/* C's 32 x 32 block at (m0, n0) from the accumulator tiles, clipped to M x N */
AMX static void store_block(float *C, int ldc, int M, int N, int m0, int n0, float alpha, float beta)
{
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

/* the 2 x 2-tile kernel over the whole of Kp for C's block at (m0, n0) */
AMX static void block(const uint16_t *ap, const uint16_t *bp, int Kp, int m0, int n0)
{
    const uint16_t *a0 = ap + (size_t)m0 * Kp, *a1 = a0 + (size_t)16 * Kp;
    const uint16_t *b0 = bp + (size_t)n0 * Kp, *b1 = b0 + (size_t)16 * Kp;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < Kp; k += 32) {
        _tile_loadd(4, a0 + (size_t)k * 16, 64);
        _tile_loadd(6, b0 + (size_t)k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, b1 + (size_t)k * 16, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a1 + (size_t)k * 16, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
}

AMX static void run(int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                    float beta, float *C, int ldc, uint16_t *ap, uint16_t *bp)
{
    int Mp = up32(M), Np = up32(N), Kp = up32(K);
    int MT = Mp / 16, NT = Np / 16, MP = Mp / 32, NP = Np / 32;
    /* rows of A per sweep: about 512 KB of packed A, so it stays in L2 */
    int MB = (262144 / Kp) & ~31;
    if (MB < 32) MB = 32;
    int nt = omp_get_max_threads();
    size_t work = (size_t)M * N * K;
    if (work < 4u << 20) nt = 1;   /* below ~8 Mflop a team's start costs more than it saves */
#pragma omp parallel num_threads(nt)
    {
        int T = omp_get_num_threads(), id = omp_get_thread_num();
#pragma omp for schedule(static) nowait
        for (int mt = 0; mt < MT; mt++) pack_a_tile(ap, A, lda, M, K, Kp, mt);
#pragma omp for schedule(static)
        for (int t = 0; t < NT; t++) pack_b_panel(bp, B, ldb, tb, N, K, Kp, t);
        tiles_on();
        if (NP >= T) {
            int p0 = NP * id / T, p1 = NP * (id + 1) / T;
            for (int mb = 0; mb < MP * 32; mb += MB)
                for (int p = p0; p < p1; p++)
                    for (int m0 = mb; m0 < mb + MB && m0 < MP * 32; m0 += 32) {
                        block(ap, bp, Kp, m0, p * 32);
                        store_block(C, ldc, M, N, m0, p * 32, alpha, beta);
                    }
        } else {
            int q0 = MP * id / T, q1 = MP * (id + 1) / T;
            for (int p = 0; p < NP; p++)
                for (int q = q0; q < q1; q++) {
                    block(ap, bp, Kp, q * 32, p * 32);
                    store_block(C, ldc, M, N, q * 32, p * 32, alpha, beta);
                }
        }
        _tile_release();
    }
}

int op_gemm_amx(int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                float beta, float *C, int ldc)
{
    size_t Kp = (size_t)up32(K);
    uint16_t *ap = scratch_grow(&scratch_ap, &cap_ap, (size_t)up32(M) * Kp * 2);
    uint16_t *bp = scratch_grow(&scratch_bp, &cap_bp, (size_t)up32(N) * Kp * 2);
    if (!ap || !bp) return -1;
    run(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ap, bp);
    return 0;
}
