/* attention.c — causal attention in fp32, flash style (FlashAttention-2's loop on the
 * CPU): the probabilities are never stored. The forward keeps one log-sum-exp per row
 * [B, H, T]; the backward recomputes each block of probabilities from it. Only the causal
 * blocks are computed (a packed row's from its document's start), so a T x T head costs
 * about half the products of the full one, and the saved state is T floats a head
 * instead of T x T (537 MB on `hone bench`'s default config, 2 MB now).
 *
 * Every (sequence, KV head) is one task on one thread, its query heads in turn: they
 * read the same K and V (transposed once per task) and add into the same dK and dV, so
 * no two threads write the same memory, and the results are the same bits on any
 * number of threads. Query rows go in blocks of BR, keys in blocks of BC; the products
 * run on one AVX2/FMA micro-kernel, C [rows, cols] (+)= alpha A B with A read through
 * strides (A or its transpose) and B row-major, 4 rows x 16 columns at a time.
 *
 * Shapes: q, out, dq [B, T, H, hd]; k, v, dk, dv [B, T, KVH, hd]; lse [B, H, T];
 * start [B, T] the first position each row may see (NULL: 0). */
#define _DEFAULT_SOURCE   /* posix_memalign */
#include "ops.h"
#include "scratch.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

enum { BR = 48, BC = 64, MAXT = 256 };   /* query rows, keys per block; threads with scratch */

/* C [m, n] = alpha A B (+ C when acc): A(r, k) = A[r sr + k sk], B [k, n] row-major.
 * 6 rows x 16 columns a tile: twelve accumulators, enough to hide the FMA's latency on
 * two FMA ports (four rows at a time ran at a third of the cores' rate). */
enum { MR = 6 };
#define STEP(r)                                                                           \
    do {                                                                                  \
        __m256 x = _mm256_broadcast_ss(a[r] + o);                                         \
        s##r##0 = _mm256_fmadd_ps(x, b0, s##r##0), s##r##1 = _mm256_fmadd_ps(x, b1, s##r##1); \
    } while (0)
static void mk(float *C, int ldc, const float *A, int sr, int sk, const float *B, int ldb, int m, int n, int k,
               float alpha, int acc)
{
    const __m256 al = _mm256_set1_ps(alpha);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r0 = 0; r0 < m; r0 += MR) {
        int nr = m - r0 < MR ? m - r0 : MR;
        const float *a[MR];   /* past the last row: its own row again, never stored */
        for (int r = 0; r < MR; r++) a[r] = A + (size_t)(r0 + (r < nr ? r : nr - 1)) * sr;
        for (int c0 = 0; c0 < n; c0 += 16) {
            int left = n - c0;
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
            __m256 s00 = _mm256_setzero_ps(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00;
            __m256 s30 = s00, s31 = s00, s40 = s00, s41 = s00, s50 = s00, s51 = s00;
            const float *b = B + c0;
            for (int kk = 0; kk < k; kk++, b += ldb) {
                __m256 b0, b1;
                if (left >= 16) b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                else b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
                size_t o = (size_t)kk * sk;
                STEP(0);
                STEP(1);
                STEP(2);
                STEP(3);
                STEP(4);
                STEP(5);
            }
            __m256 s[MR][2] = {{s00, s01}, {s10, s11}, {s20, s21}, {s30, s31}, {s40, s41}, {s50, s51}};
            for (int r = 0; r < nr; r++) {
                float *c = C + (size_t)(r0 + r) * ldc + c0;
                __m256 y0 = _mm256_mul_ps(s[r][0], al), y1 = _mm256_mul_ps(s[r][1], al);
                if (left >= 16) {
                    if (acc) y0 = _mm256_add_ps(y0, _mm256_loadu_ps(c)), y1 = _mm256_add_ps(y1, _mm256_loadu_ps(c + 8));
                    _mm256_storeu_ps(c, y0), _mm256_storeu_ps(c + 8, y1);
                } else {
                    if (acc)
                        y0 = _mm256_add_ps(y0, _mm256_maskload_ps(c, m0)), y1 = _mm256_add_ps(y1, _mm256_maskload_ps(c + 8, m1));
                    _mm256_maskstore_ps(c, m0, y0), _mm256_maskstore_ps(c + 8, m1, y1);
                }
            }
        }
    }
}
#undef STEP

/* The products' B operands are packed dense: read in place, rows ld apart (1-4 KB), a
 * block's rows fell into a few cache sets and evicted each other.
 * xt: x's key blocks transposed, [T / BC][hd][BC] (a block's keys contiguous per d), the
 * last block zero-padded. x: [T, hd] rows ld apart. */
static void pack(float *xt, const float *x, int T, int hd, int ld)
{
    int nb = (T + BC - 1) / BC;
    memset(xt, 0, (size_t)nb * hd * BC * sizeof(float));
    for (int t = 0; t < T; t++) {
        const float *row = x + (size_t)t * ld;
        float *blk = xt + (size_t)(t / BC) * hd * BC + t % BC;
        for (int d = 0; d < hd; d++) blk[(size_t)d * BC] = row[d];
    }
}

/* x [n, hd] dense from rows ld apart */
static void rows(float *xr, const float *x, int n, int hd, int ld)
{
    for (int t = 0; t < n; t++) memcpy(xr + (size_t)t * hd, x + (size_t)t * ld, (size_t)hd * sizeof(float));
}

/* the keys row i sees in the block [j0, j0 + nj): [*lo, *hi] relative to j0; empty when
 * *hi < *lo */
static void row_span(int *lo, int *hi, const int32_t *start, int i, int j0, int nj)
{
    int a = start ? start[i] : 0, b = i < j0 + nj - 1 ? i : j0 + nj - 1;
    *lo = (a > j0 ? a : j0) - j0;
    *hi = b - j0;
}

/* the larger of m and the n >= 1 values of x */
static float span_max(const float *x, int n, float m)
{
    __m256 v = _mm256_set1_ps(m);
    int j = 0;
    for (; j + 8 <= n; j += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + j));
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (int i = 0; i < 8; i++) m = lanes[i] > m ? lanes[i] : m;
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* each thread's scratch, grown once and kept */
typedef struct {
    float *f;
    size_t cap;
} slot;
static slot slots[MAXT];

/* scratch for nt threads of `floats` each; the threads it could give (0: none) */
static int grow_slots(int nt, size_t floats)
{
    nt = nt < MAXT ? nt : MAXT;
    for (int t = 0; t < nt; t++)
        if (!scratch_grow((void **)&slots[t].f, &slots[t].cap, floats * sizeof(float))) return t;
    return nt;
}

/* the padded length of T keys */
static size_t padded(int T)
{
    return (size_t)(T + BC - 1) / BC * BC;
}

/* one (sequence, KV head) of the forward; w: fwd_floats() */
static size_t fwd_floats(int T, int hd)
{
    return padded(T) * hd + (size_t)T * hd + BR * BC + (size_t)BR * hd + 2 * BR;
}
static void group_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          const int32_t *start, int T, int group, int qs, int ks, int hd, float *w)
{
    float scale = (float)(1.0 / sqrt((double)hd));
    float *kt = w, *vr = kt + padded(T) * hd, *S = vr + (size_t)T * hd, *O = S + BR * BC, *mx = O + (size_t)BR * hd;
    float *l = mx + BR;
    pack(kt, k, T, hd, ks);
    rows(vr, v, T, hd, ks);
    for (int g = 0; g < group; g++) {
        const float *qh = q + (size_t)g * hd;
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR;
            /* starts never decrease along a row: the block's first row sees the most */
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            for (int r = 0; r < ni; r++) mx[r] = -INFINITY, l[r] = 0.0f;
            memset(O, 0, (size_t)ni * hd * sizeof(float));
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                int nj = jhi - j0 < BC ? jhi - j0 : BC;
                /* S [ni, nj] = scale Q K^T */
                mk(S, BC, qh + (size_t)i0 * qs, qs, 1, kt + (size_t)j0 * hd, BC, ni, nj, hd, scale, 0);
                for (int r = 0; r < ni; r++) {
                    float *row = S + (size_t)r * BC;
                    int lo, hi;
                    row_span(&lo, &hi, start, i0 + r, j0, nj);
                    if (hi < lo) {   /* nothing here for this row: the product adds zeros */
                        memset(row, 0, (size_t)nj * sizeof(float));
                        continue;
                    }
                    float m = span_max(row + lo, hi - lo + 1, mx[r]);
                    float corr = expf(mx[r] - m);   /* the running sums rescaled to the new max */
                    for (int j = 0; j < lo; j++) row[j] = 0.0f;
                    for (int j = hi + 1; j < nj; j++) row[j] = 0.0f;
                    l[r] = l[r] * corr + (float)exp_sub(row + lo, row + lo, hi - lo + 1, m);
                    mx[r] = m;
                    if (corr != 1.0f)
                        for (int d = 0; d < hd; d++) O[(size_t)r * hd + d] *= corr;
                }
                /* O [ni, hd] += P V */
                mk(O, hd, S, BC, 1, vr + (size_t)j0 * hd, hd, ni, hd, nj, 1.0f, 1);
            }
            for (int r = 0; r < ni; r++) {
                float inv = 1.0f / l[r];
                float *o = out + (size_t)(i0 + r) * qs + (size_t)g * hd;
                for (int d = 0; d < hd; d++) o[d] = O[(size_t)r * hd + d] * inv;
                lse[(size_t)g * T + i0 + r] = mx[r] + logf(l[r]);
            }
        }
    }
}

int op_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int32_t *start, int B, int T, int H, int KVH, int hd)
{
    int group = H / KVH, qs = H * hd, ks = KVH * hd;
    int nt = grow_slots(omp_get_max_threads(), fwd_floats(T, hd));
    if (!nt) return -1;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) if (nt > 1)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KVH; kh++) {
            size_t qo = (size_t)b * T * qs + (size_t)kh * group * hd, ko = (size_t)b * T * ks + (size_t)kh * hd;
            group_forward(out + qo, lse + ((size_t)b * H + (size_t)kh * group) * T, q + qo, k + ko, v + ko,
                          start ? start + (size_t)b * T : NULL, T, group, qs, ks, hd, slots[omp_get_thread_num()].f);
        }
    return 0;
}

/* one (sequence, KV head) of the backward; w: bwd_floats() */
static size_t bwd_floats(int T, int hd)
{
    return 2 * padded(T) * hd + (size_t)T * hd + 2 * BR * BC + 2 * (size_t)BR * hd + (size_t)T;
}
static void group_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                           const float *q, const float *k, const float *v, const int32_t *start, int T, int group,
                           int qs, int ks, int hd, float *w)
{
    float scale = (float)(1.0 / sqrt((double)hd));
    float *kt = w, *vt = kt + padded(T) * hd, *kr = vt + padded(T) * hd, *P = kr + (size_t)T * hd, *dP = P + BR * BC;
    float *qi = dP + BR * BC, *doi = qi + (size_t)BR * hd, *D = doi + (size_t)BR * hd;
    pack(kt, k, T, hd, ks);
    rows(kr, k, T, hd, ks);
    pack(vt, v, T, hd, ks);
    for (int t = 0; t < T; t++) {
        memset(dk + (size_t)t * ks, 0, (size_t)hd * sizeof(float));
        memset(dv + (size_t)t * ks, 0, (size_t)hd * sizeof(float));
    }
    for (int g = 0; g < group; g++) {
        size_t ho = (size_t)g * hd;
        const float *hl = lse + (size_t)g * T;
        /* D = rowsum(dO * O), the softmax backward's dot of each row */
        for (int t = 0; t < T; t++) {
            const float *a = dout + (size_t)t * qs + ho, *o = out + (size_t)t * qs + ho;
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)a[d] * o[d];
            D[t] = (float)s;
            memset(dq + (size_t)t * qs + ho, 0, (size_t)hd * sizeof(float));
        }
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR;
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            rows(qi, q + (size_t)i0 * qs + ho, ni, hd, qs);
            rows(doi, dout + (size_t)i0 * qs + ho, ni, hd, qs);
            float *dqi = dq + (size_t)i0 * qs + ho;
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                int nj = jhi - j0 < BC ? jhi - j0 : BC;
                /* P = exp(scale Q K^T - lse), zero outside each row's keys */
                mk(P, BC, qi, hd, 1, kt + (size_t)j0 * hd, BC, ni, nj, hd, scale, 0);
                for (int r = 0; r < ni; r++) {
                    float *row = P + (size_t)r * BC;
                    int lo, hi;
                    row_span(&lo, &hi, start, i0 + r, j0, nj);
                    if (hi < lo) {
                        memset(row, 0, (size_t)nj * sizeof(float));
                        continue;
                    }
                    for (int j = 0; j < lo; j++) row[j] = 0.0f;
                    for (int j = hi + 1; j < nj; j++) row[j] = 0.0f;
                    exp_sub(row + lo, row + lo, hi - lo + 1, hl[i0 + r]);
                }
                /* dV [nj, hd] += P^T dO;  dP [ni, nj] = dO V^T */
                mk(dv + (size_t)j0 * ks, ks, P, 1, BC, doi, hd, nj, hd, ni, 1.0f, 1);
                mk(dP, BC, doi, hd, 1, vt + (size_t)j0 * hd, BC, ni, nj, hd, 1.0f, 0);
                /* dS = P (dP - D), in dP */
                for (int r = 0; r < ni; r++)
                    for (int j = 0; j < nj; j++) {
                        size_t e = (size_t)r * BC + j;
                        dP[e] = P[e] * (dP[e] - D[i0 + r]);
                    }
                /* dQ [ni, hd] += scale dS K;  dK [nj, hd] += scale dS^T Q */
                mk(dqi, qs, dP, BC, 1, kr + (size_t)j0 * hd, hd, ni, hd, nj, scale, 1);
                mk(dk + (size_t)j0 * ks, ks, dP, 1, BC, qi, hd, nj, hd, ni, scale, 1);
            }
        }
    }
}

int op_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                          const float *q, const float *k, const float *v, const int32_t *start, int B, int T, int H,
                          int KVH, int hd)
{
    int group = H / KVH, qs = H * hd, ks = KVH * hd;
    int nt = grow_slots(omp_get_max_threads(), fwd_floats(T, hd) > bwd_floats(T, hd) ? fwd_floats(T, hd)
                                                                                     : bwd_floats(T, hd));
    if (!nt) return -1;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) if (nt > 1)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KVH; kh++) {
            size_t qo = (size_t)b * T * qs + (size_t)kh * group * hd, ko = (size_t)b * T * ks + (size_t)kh * hd;
            group_backward(dq + qo, dk + ko, dv + ko, dout + qo, out + qo, lse + ((size_t)b * H + (size_t)kh * group) * T,
                           q + qo, k + ko, v + ko, start ? start + (size_t)b * T : NULL, T, group, qs, ks, hd,
                           slots[omp_get_thread_num()].f);
        }
    return 0;
}
