/* attention_bf16.c — causal attention with bf16 products and fp32 accumulation, the bf16
 * run's attention: flash style as attention.c (FlashAttention-2's loop), the same saved
 * state (a log-sum-exp per row, [B, H, T]) and the same tasks (one per sequence and KV
 * head, on threads, its query heads in turn), so both dtypes save T floats a head and
 * give the same bits on any number of threads. The softmax and its backward stay fp32,
 * as torch's autocast keeps them; each block of probabilities and of dS is rounded to
 * bf16 only as a product's operand (dS with the softmax's scale in it).
 *
 * Every product is C [M, N] (+)= A B on 32-multiples: A bf16 row-major, B bf16 in pairs
 * of rows ("VNNI": [K/2][N] of 2 x bf16, the layout both AMX and vdpbf16ps read). On
 * AMX it runs on tiles (2 x 2 of C at a time); on AVX512-BF16 on a vdpbf16ps kernel of
 * 4 rows x 64 columns. The operands are laid out once for both: K, V, K^T, V^T for the
 * task, Q and dO as rows and transposed per query block, P and dS per block; head sizes
 * and the last blocks are zero-padded to the 32-multiples. Where the CPU has AVX-512
 * without AVX512-BF16 the bf16 run's attention is attention.c's fp32 one: oneDNN's
 * products, called per head, were slower than it, and kept the T x T probabilities.
 *
 * Shapes: q, out, dq [B, T, H, hd]; k, v, dk, dv [B, T, KVH, hd]; lse [B, H, T];
 * start [B, T] (NULL: 0); hd even (RoPE's pairs). */
#define _DEFAULT_SOURCE   /* posix_memalign */
#include "isa.h"
#include "ops.h"
#include "scratch.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

enum { BR = 64, BC = 64, MAXT = 256 };   /* query rows, keys per block; threads with scratch */

/* the first n of 16 lanes */
static inline __mmask16 first(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
}

/* C [M, N] (ldc floats) = A B (+ C when acc) on vdpbf16ps: A [M, K] bf16 (lda halves),
 * B pairs [K/2][ldb dwords]; 4 rows x 64 columns of accumulators a tile */
TGT static void mk(float *C, int ldc, const uint16_t *A, int lda, const uint32_t *B, int ldb, int M, int N, int K,
                   int acc)
{
    for (int r0 = 0; r0 < M; r0 += 4)
        for (int c0 = 0; c0 < N; c0 += 64) {
            __mmask16 m[4];
            for (int v = 0; v < 4; v++) m[v] = first(N - c0 - 16 * v);
            /* sixteen named accumulators: an array of them GCC keeps on the stack */
            __m512 s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00;
            __m512 s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
            const uint32_t *b = B + c0, *a = (const uint32_t *)(const void *)(A + (size_t)r0 * lda);
            size_t la = (size_t)lda / 2;
            for (int p = 0; p < K / 2; p++, b += ldb) {
                __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m[0], b);
                __m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi32(m[1], b + 16);
                __m512bh b2 = (__m512bh)_mm512_maskz_loadu_epi32(m[2], b + 32);
                __m512bh b3 = (__m512bh)_mm512_maskz_loadu_epi32(m[3], b + 48);
#define ROW(r)                                                                 \
    do {                                                                       \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r * la + p]);         \
        s##r##0 = _mm512_dpbf16_ps(s##r##0, av, b0);                           \
        s##r##1 = _mm512_dpbf16_ps(s##r##1, av, b1);                           \
        s##r##2 = _mm512_dpbf16_ps(s##r##2, av, b2);                           \
        s##r##3 = _mm512_dpbf16_ps(s##r##3, av, b3);                           \
    } while (0)
                ROW(0);
                ROW(1);
                ROW(2);
                ROW(3);
#undef ROW
            }
            __m512 s[4][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}, {s20, s21, s22, s23}, {s30, s31, s32, s33}};
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < 4; v++) {
                    if (!m[v]) continue;
                    float *c = C + (size_t)(r0 + r) * ldc + c0 + 16 * v;
                    __m512 y = s[r][v];
                    if (acc) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m[v], c));
                    _mm512_mask_storeu_ps(c, m[v], y);
                }
        }
}

/* the same on AMX tiles, 32 x 32 of C at a time: tiles 0-3 C, 4-5 A, 6-7 B */
AMX static void mk_amx(float *C, int ldc, const uint16_t *A, int lda, const uint32_t *B, int ldb, int M, int N,
                       int K, int acc)
{
    for (int m0 = 0; m0 < M; m0 += 32)
        for (int n0 = 0; n0 < N; n0 += 32) {
            float *c = C + (size_t)m0 * ldc + n0;
            if (acc) {
                _tile_loadd(0, c, ldc * 4);
                _tile_loadd(1, c + 16, ldc * 4);
                _tile_loadd(2, c + (size_t)16 * ldc, ldc * 4);
                _tile_loadd(3, c + (size_t)16 * ldc + 16, ldc * 4);
            } else {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            }
            for (int k0 = 0; k0 < K; k0 += 32) {
                const uint16_t *a = A + (size_t)m0 * lda + k0;
                const uint32_t *b = B + (size_t)(k0 / 2) * ldb + n0;
                _tile_loadd(4, a, lda * 2);
                _tile_loadd(5, a + (size_t)16 * lda, lda * 2);
                _tile_loadd(6, b, ldb * 4);
                _tile_loadd(7, b + 16, ldb * 4);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, c, ldc * 4);
            _tile_stored(1, c + 16, ldc * 4);
            _tile_stored(2, c + (size_t)16 * ldc, ldc * 4);
            _tile_stored(3, c + (size_t)16 * ldc + 16, ldc * 4);
        }
}

/* the task's product engine */
static int use_amx;
static void mm(float *C, int ldc, const uint16_t *A, int lda, const uint32_t *B, int ldb, int M, int N, int K,
               int acc)
{
    if (use_amx) mk_amx(C, ldc, A, lda, B, ldb, M, N, K, acc);
    else mk(C, ldc, A, lda, B, ldb, M, N, K, acc);
}

/* x [n, cols] (rows ld apart) in bf16, zero-padded: out [rows][w] halves, rows n..rows
 * and columns cols..w zero (A rows) */
TGT static void round_rows(uint16_t *out, int w, const float *x, int ld, int n, int cols, int rows)
{
    for (int i = 0; i < rows; i++) {
        uint16_t *o = out + (size_t)i * w;
        const float *r = x + (size_t)i * ld;
        for (int j = 0; j < w; j += 16) {
            __mmask16 m = i < n ? first(cols - j) : 0;
            _mm256_storeu_si256((__m256i *)(o + j), (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r + j)));
        }
    }
}

/* x [n, cols] (rows ld apart) transposed into bf16: out [w][rows] halves, out (d, i) =
 * x[i][d], zero for i >= n or d >= cols (A for products that sum over x's rows) */
TGT static void round_transposed(uint16_t *out, int w, const float *x, int ld, int n, int cols, int rows)
{
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(ld));
    for (int d = 0; d < w; d++)
        for (int i = 0; i < rows; i += 16) {
            __mmask16 m = d < cols ? first(n - i) : 0;
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x + (size_t)i * ld + d, 4);
            _mm256_storeu_si256((__m256i *)(out + (size_t)d * rows + i), (__m256i)_mm512_cvtneps_pbh(v));
        }
}

/* x [n, cols] (rows ld apart) in pairs of rows: out [rows / 2][w] dwords, dword (p, c) =
 * (x[2p][c], x[2p + 1][c]), zero for rows >= n and columns >= cols (B for products that
 * sum over x's rows) */
TGT static void pair_rows(uint32_t *out, int w, const float *x, int ld, int n, int cols, int rows)
{
    for (int i = 0; i < rows; i += 2) {
        const float *r0 = x + (size_t)i * ld, *r1 = r0 + ld;
        uint32_t *o = out + (size_t)(i / 2) * w;
        for (int c = 0; c < w; c += 16) {
            __mmask16 m0 = i < n ? first(cols - c) : 0, m1 = i + 1 < n ? first(cols - c) : 0;
            __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m0, r0 + c)));
            __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m1, r1 + c)));
            _mm512_storeu_si512(o + c, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* x [n, hd] (rows ld apart) transposed into pairs: out [hd / 2][ldo] dwords, dword (p, j)
 * = (x[j][2p], x[j][2p + 1]) — row j's own pairs, scattered (B for products that sum over
 * x's columns: Q K^T, dO V^T); what it does not write stays as it is */
TGT static void pair_cols(uint32_t *out, int ldo, const float *x, int ld, int n, int hd)
{
    uint32_t pairs[16];
    for (int j = 0; j < n; j++) {
        const float *r = x + (size_t)j * ld;
        for (int d = 0; d < hd; d += 32) {
            /* 32 floats as 16 dwords, each two neighbours */
            __m512 a = _mm512_maskz_loadu_ps(first(hd - d), r + d), b = _mm512_maskz_loadu_ps(first(hd - d - 16), r + d + 16);
            _mm512_storeu_si512(pairs, (__m512i)_mm512_cvtne2ps_pbh(b, a));
            int np = (hd - d) / 2 < 16 ? (hd - d) / 2 : 16;
            for (int p = 0; p < np; p++) out[(size_t)(d / 2 + p) * ldo + j] = pairs[p];
        }
    }
}

/* e^x for 16 lanes: exp8's Cephes polynomial (scratch.h), 0 below -87.3 */
TGT static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-87.3365478515625f), _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}


/* the keys row i sees in the block [j0, j0 + BC), as a mask of the block's columns
 * (0: none) */
static uint64_t span(const int32_t *start, int i, int j0)
{
    int lo = (start ? start[i] : 0) - j0, hi = i - j0;
    lo = lo > 0 ? lo : 0;
    hi = hi < BC - 1 ? hi : BC - 1;
    if (hi < lo) return 0;
    uint64_t n = (uint64_t)(hi - lo + 1);
    return (n == 64 ? ~0ull : (1ull << n) - 1) << lo;
}

/* row[j] = e^(scale row[j] - sub) where the mask has j, else 0; returns the sum */
TGT static float exp_masked(float *row, uint64_t mask, float scale, float sub)
{
    __m512 sc = _mm512_set1_ps(scale), s = _mm512_set1_ps(sub), sum = _mm512_setzero_ps();
    for (int c = 0; c < BC; c += 16) {
        __mmask16 m = (__mmask16)(mask >> c);
        __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_fmsub_ps(_mm512_loadu_ps(row + c), sc, s)));
        _mm512_storeu_ps(row + c, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/* each thread's scratch, grown once and kept: bf16 (halves) and floats */
typedef struct {
    uint16_t *h;
    float *f;
    size_t hcap, fcap;
} slot;
static slot slots[MAXT];

static int up(int n, int to)
{
    return (n + to - 1) / to * to;
}

/* this thread's scratch of `halves` and `floats`; NULL when out of memory */
static slot *grow(size_t halves, size_t floats)
{
    slot *w = &slots[omp_get_thread_num()];
    if (!scratch_grow((void **)&w->h, &w->hcap, halves * 2) || !scratch_grow((void **)&w->f, &w->fcap, floats * 4))
        return NULL;
    return w;
}

/* one (sequence, KV head) of the forward */
TGT static int group_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                             const int32_t *start, int T, int group, int qs, int ks, int hd)
{
    int Tp = up(T, BC), hdp = up(hd, 32);
    size_t nkv = (size_t)hdp * Tp;
    /* halves: K^T pairs [hdp/2][Tp], V pairs [Tp/2][hdp], a query block's rows [BR][hdp],
     * P's [BR][BC]; floats: S [BR][BC], O [BR][hdp], the running max and sum [BR] */
    slot *w = grow(2 * nkv + (size_t)BR * hdp + BR * BC, BR * BC + (size_t)BR * hdp + 2 * BR);
    if (!w) return -1;
    uint32_t *kt = (uint32_t *)(void *)w->h, *vv = kt + nkv / 2;
    uint16_t *q16 = w->h + 2 * nkv, *p16 = q16 + (size_t)BR * hdp;
    float *S = w->f, *O = S + BR * BC, *mx = O + (size_t)BR * hdp, *l = mx + BR;
    memset(kt, 0, 2 * nkv * 2);   /* keys past T and head columns past hd: zero */
    pair_cols(kt, Tp, k, ks, T, hd);
    pair_rows(vv, hdp, v, ks, T, hd, Tp);
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int g = 0; g < group; g++) {
        const float *qh = q + (size_t)g * hd;
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR;
            /* starts never decrease along a row: the block's first row sees the most */
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            round_rows(q16, hdp, qh + (size_t)i0 * qs, qs, ni, hd, BR);
            for (int r = 0; r < ni; r++) mx[r] = -INFINITY, l[r] = 0.0f;
            memset(O, 0, (size_t)BR * hdp * sizeof(float));
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                /* S [BR, BC] = Q K^T, scaled in the softmax */
                mm(S, BC, q16, hdp, kt + j0, Tp, BR, BC, hdp, 0);
                for (int r = 0; r < ni; r++) {
                    float *row = S + (size_t)r * BC;
                    uint64_t sm = span(start, i0 + r, j0);
                    if (!sm) {   /* nothing here for this row: the product adds zeros */
                        memset(row, 0, BC * sizeof(float));
                        continue;
                    }
                    float m = -INFINITY;
                    for (int c = 0; c < BC; c += 16)
                        m = fmaxf(m, _mm512_mask_reduce_max_ps((__mmask16)(sm >> c), _mm512_loadu_ps(row + c)));
                    m = fmaxf(mx[r], m * scale);
                    float corr = expf(mx[r] - m);   /* the running sums rescaled to the new max */
                    l[r] = l[r] * corr + exp_masked(row, sm, scale, m);
                    mx[r] = m;
                    if (corr != 1.0f)
                        for (int d = 0; d < hdp; d += 16) {
                            float *o = O + (size_t)r * hdp + d;
                            _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_loadu_ps(o), _mm512_set1_ps(corr)));
                        }
                }
                /* O [BR, hdp] += P V */
                round_rows(p16, BC, S, BC, ni, BC, BR);
                mm(O, hdp, p16, BC, vv + (size_t)j0 / 2 * hdp, hdp, BR, hdp, BC, 1);
            }
            for (int r = 0; r < ni; r++) {
                float inv = 1.0f / l[r];
                float *o = out + (size_t)(i0 + r) * qs + (size_t)g * hd;
                for (int d = 0; d < hd; d++) o[d] = O[(size_t)r * hdp + d] * inv;
                lse[(size_t)g * T + i0 + r] = mx[r] + logf(l[r]);
            }
        }
    }
    return 0;
}

/* y [T, hd] (rows ld apart) = x^T, x [hdp][ldx] */
static void put_transposed(float *y, int ld, const float *x, int ldx, int T, int hd)
{
    for (int j = 0; j < T; j++)
        for (int d = 0; d < hd; d++) y[(size_t)j * ld + d] = x[(size_t)d * ldx + j];
}

/* one (sequence, KV head) of the backward; dk and dv are this task's alone */
TGT static int group_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                              const float *q, const float *k, const float *v, const int32_t *start, int T, int group,
                              int qs, int ks, int hd)
{
    int Tp = up(T, BC), hdp = up(hd, 32);
    size_t nkv = (size_t)hdp * Tp, nq = (size_t)BR * hdp, nb = BR * BC;
    /* halves: K^T and V^T pairs [hdp/2][Tp], K pairs [Tp/2][hdp]; the query block's Q and
     * dO as rows [BR][hdp] and transposed [hdp][BR]; P and dS pairs [BR/2][BC], dS rows
     * [BR][BC]. floats: P and dP [BR][BC], the block's dQ [BR][hdp], dK^T and dV^T
     * [hdp][Tp], D [T] */
    slot *w = grow(3 * nkv + 4 * nq + 3 * nb, 2 * nb + nq + 2 * nkv + (size_t)T);
    if (!w) return -1;
    uint32_t *kt = (uint32_t *)(void *)w->h, *vt = kt + nkv / 2, *kv = vt + nkv / 2;
    uint16_t *q16 = w->h + 3 * nkv, *do16 = q16 + nq, *qT = do16 + nq, *doT = qT + nq;
    uint32_t *pv = (uint32_t *)(void *)(doT + nq), *dsv = pv + nb / 2;
    uint16_t *ds16 = (uint16_t *)(dsv + nb / 2);
    float *P = w->f, *dP = P + nb, *dQ = dP + nb, *dkt = dQ + nq, *dvt = dkt + nkv, *D = dvt + nkv;
    memset(kt, 0, 2 * nkv * 2);
    pair_cols(kt, Tp, k, ks, T, hd);
    pair_cols(vt, Tp, v, ks, T, hd);
    pair_rows(kv, hdp, k, ks, T, hd, Tp);
    memset(dkt, 0, 2 * nkv * sizeof(float));
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int g = 0; g < group; g++) {
        size_t ho = (size_t)g * hd;
        const float *hl = lse + (size_t)g * T;
        /* D = rowsum(dO * O), the softmax backward's dot of each row */
        for (int t = 0; t < T; t++) {
            const float *a = dout + (size_t)t * qs + ho, *o = out + (size_t)t * qs + ho;
            __m512 s = _mm512_setzero_ps();
            for (int d = 0; d < hd; d += 16) {
                __mmask16 m = first(hd - d);
                s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d), _mm512_maskz_loadu_ps(m, o + d), s);
            }
            D[t] = _mm512_reduce_add_ps(s);
        }
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR;
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            const float *qi = q + (size_t)i0 * qs + ho, *doi = dout + (size_t)i0 * qs + ho;
            round_rows(q16, hdp, qi, qs, ni, hd, BR);
            round_rows(do16, hdp, doi, qs, ni, hd, BR);
            round_transposed(qT, hdp, qi, qs, ni, hd, BR);
            round_transposed(doT, hdp, doi, qs, ni, hd, BR);
            memset(dQ, 0, nq * sizeof(float));
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                /* P = exp(scale Q K^T - lse), zero outside each row's keys */
                mm(P, BC, q16, hdp, kt + j0, Tp, BR, BC, hdp, 0);
                for (int r = 0; r < ni; r++)
                    exp_masked(P + (size_t)r * BC, span(start, i0 + r, j0), scale, hl[i0 + r]);
                /* dV^T [hdp, BC] += dO^T P;  dP [BR, BC] = dO V^T */
                pair_rows(pv, BC, P, BC, ni, BC, BR);
                mm(dvt + j0, Tp, doT, BR, pv, BC, hdp, BC, BR, 1);
                mm(dP, BC, do16, hdp, vt + j0, Tp, BR, BC, hdp, 0);
                /* dS = scale P (dP - D), in dP */
                for (int r = 0; r < ni; r++) {
                    __m512 dr = _mm512_set1_ps(D[i0 + r]), sc = _mm512_set1_ps(scale);
                    for (int c = 0; c < BC; c += 16) {
                        float *d = dP + (size_t)r * BC + c;
                        __m512 p = _mm512_mul_ps(_mm512_loadu_ps(P + (size_t)r * BC + c), sc);
                        _mm512_storeu_ps(d, _mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(d), dr)));
                    }
                }
                /* dQ [BR, hdp] += dS K;  dK^T [hdp, BC] += Q^T dS */
                round_rows(ds16, BC, dP, BC, ni, BC, BR);
                pair_rows(dsv, BC, dP, BC, ni, BC, BR);
                mm(dQ, hdp, ds16, BC, kv + (size_t)j0 / 2 * hdp, hdp, BR, hdp, BC, 1);
                mm(dkt + j0, Tp, qT, BR, dsv, BC, hdp, BC, BR, 1);
            }
            for (int r = 0; r < ni; r++)
                memcpy(dq + (size_t)(i0 + r) * qs + ho, dQ + (size_t)r * hdp, (size_t)hd * sizeof(float));
        }
    }
    put_transposed(dk, ks, dkt, Tp, T, hd);
    put_transposed(dv, ks, dvt, Tp, T, hd);
    return 0;
}

AMX static void tiles_off(void)
{
    _tile_release();
}

/* the tasks on threads; AMX's tiles configured on each thread that runs one */
#define TASKS(call)                                                                                    \
    int group = H / KVH, qs = H * hd, ks = KVH * hd, rc = 0;                                           \
    int nt = omp_get_max_threads() < MAXT ? omp_get_max_threads() : MAXT;                              \
    use_amx = op_isa_current() >= OP_ISA_AMX_BF16;                                                     \
    _Pragma("omp parallel num_threads(nt) if (nt > 1) reduction(| : rc)")                              \
    {                                                                                                  \
        if (use_amx) amx_tiles_on();                                                                   \
        _Pragma("omp for collapse(2) schedule(dynamic)")                                               \
        for (int b = 0; b < B; b++)                                                                    \
            for (int kh = 0; kh < KVH; kh++) {                                                         \
                size_t qo = (size_t)b * T * qs + (size_t)kh * group * hd;                              \
                size_t ko = (size_t)b * T * ks + (size_t)kh * hd;                                      \
                size_t lo = ((size_t)b * H + (size_t)kh * group) * T;                                  \
                const int32_t *st = start ? start + (size_t)b * T : NULL;                              \
                rc |= call;                                                                            \
            }                                                                                          \
        if (use_amx) tiles_off();                                                                      \
    }                                                                                                  \
    return rc

int op_attention_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                  const int32_t *start, int B, int T, int H, int KVH, int hd)
{
    if (op_isa_current() < OP_ISA_AVX512_BF16) return op_attention_forward(out, lse, q, k, v, start, B, T, H, KVH, hd);
    TASKS(group_forward(out + qo, lse + lo, q + qo, k + ko, v + ko, st, T, group, qs, ks, hd));
}

int op_attention_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                               const float *q, const float *k, const float *v, const int32_t *start, int B, int T,
                               int H, int KVH, int hd)
{
    if (op_isa_current() < OP_ISA_AVX512_BF16)
        return op_attention_backward(dq, dk, dv, dout, out, lse, q, k, v, start, B, T, H, KVH, hd);
    TASKS(group_backward(dq + qo, dk + ko, dv + ko, dout + qo, out + qo, lse + lo, q + qo, k + ko, v + ko, st, T,
                         group, qs, ks, hd));
}
