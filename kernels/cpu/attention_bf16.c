/* attention_bf16.c — causal attention with bf16 products on AVX512-BF16 (vdpbf16ps), the
 * bf16 run's attention where the CPU has the instruction (gemm_bf16.c's oneDNN products
 * otherwise).
 *
 * Why not oneDNN: a head's products are small (T x T x hd), and one after another each
 * paid a primitive's setup, a conversion pass and the pool's wake-up, with the softmax
 * serial in between; that was a third of a bf16 step. Here every (sequence, KV head) is
 * one task on one thread, its query heads in turn, and only the causal part is computed:
 * rows in blocks of 16 read the columns up to their block's end. The softmax and its
 * backward stay fp32, as torch's autocast keeps them; the saved state is the
 * probabilities [B, H, T, T] as the fp32 kernel's.
 *
 * The products run on one micro-kernel: C[rows, cols] = alpha A B (+ C), A bf16
 * row-major, B bf16 in pairs of rows ("VNNI": [K/2][N][2]), 4 rows x 64 columns of
 * fp32 accumulators at a time. Each thread's scratch is grown once and kept. */
#define _DEFAULT_SOURCE   /* posix_memalign */
#include "ops.h"
#include "scratch.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

enum { RB = 16, MAXT = 256 };   /* rows per block; threads with scratch of their own */

static size_t up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* C [rows, cols] (ldc) = alpha A B (+ C when acc): A [rows, 2 kp1] bf16 (lda), B pairs
 * [kp][ldb][2]; the pairs kp0 <= kp < kp1 are summed */
TGT static void mk(float *C, int ldc, const uint16_t *A, int lda, const uint16_t *Bv, int ldb, int rows, int cols,
                   int kp0, int kp1, float alpha, int acc)
{
    const __m512 al = _mm512_set1_ps(alpha);
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int nr = rows - r0 < 4 ? rows - r0 : 4;
        const uint16_t *a[4];
        for (int r = 0; r < 4; r++) a[r] = A + (size_t)(r0 + (r < nr ? r : nr - 1)) * lda;
        for (int c0 = 0; c0 < cols; c0 += 64) {
            __mmask16 m[4];
            for (int v = 0; v < 4; v++) {
                int left = cols - c0 - 16 * v;
                m[v] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            }
            /* sixteen named accumulators: an array of them GCC keeps on the stack */
            __m512 s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00;
            __m512 s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
            for (int kp = kp0; kp < kp1; kp++) {
                const uint16_t *b = Bv + ((size_t)kp * ldb + c0) * 2;
                __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m[0], b), b1 = (__m512bh)_mm512_maskz_loadu_epi32(m[1], b + 32);
                __m512bh b2 = (__m512bh)_mm512_maskz_loadu_epi32(m[2], b + 64), b3 = (__m512bh)_mm512_maskz_loadu_epi32(m[3], b + 96);
                int32_t p0, p1, p2, p3;
                memcpy(&p0, a[0] + 2 * kp, 4), memcpy(&p1, a[1] + 2 * kp, 4);
                memcpy(&p2, a[2] + 2 * kp, 4), memcpy(&p3, a[3] + 2 * kp, 4);
#define ROW(r, p)                                                      \
    do {                                                               \
        __m512bh av = (__m512bh)_mm512_set1_epi32(p);                  \
        s##r##0 = _mm512_dpbf16_ps(s##r##0, av, b0);                   \
        s##r##1 = _mm512_dpbf16_ps(s##r##1, av, b1);                   \
        s##r##2 = _mm512_dpbf16_ps(s##r##2, av, b2);                   \
        s##r##3 = _mm512_dpbf16_ps(s##r##3, av, b3);                   \
    } while (0)
                ROW(0, p0);
                ROW(1, p1);
                ROW(2, p2);
                ROW(3, p3);
#undef ROW
            }
            __m512 s[4][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}, {s20, s21, s22, s23}, {s30, s31, s32, s33}};
            for (int r = 0; r < nr; r++)
                for (int v = 0; v < 4; v++) {
                    if (!m[v]) continue;
                    float *c = C + (size_t)(r0 + r) * ldc + c0 + 16 * v;
                    __m512 y = _mm512_mul_ps(s[r][v], al);
                    if (acc) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m[v], c));
                    _mm512_mask_storeu_ps(c, m[v], y);
                }
        }
    }
}

/* out[n] = bf16 of x[n] (nearest even) */
TGT static void round_row(uint16_t *out, const float *x, int n)
{
    int j = 0;
    for (; j + 16 <= n; j += 16) _mm256_storeu_si256((__m256i *)(out + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + j)));
    if (j < n) {
        __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + j));
        _mm256_mask_storeu_epi16(out + j, m, h);
    }
}

/* rows x cols of src (rows ld apart) in pairs of rows: dst [up(rows, 2) / 2][cols][2],
 * the missing row zero (B for products that sum over src's rows) */
static void pack_rows(uint16_t *dst, const float *src, int ld, int rows, int cols)
{
    for (int k = 0; k < rows; k += 2)
        for (int n = 0; n < cols; n++) {
            dst[((size_t)(k / 2) * cols + n) * 2] = bf16_round(src[(size_t)k * ld + n]);
            dst[((size_t)(k / 2) * cols + n) * 2 + 1] = k + 1 < rows ? bf16_round(src[(size_t)(k + 1) * ld + n]) : 0;
        }
}

/* src [rows, cols] transposed into pairs: B(d, j) = src[j][d] as dst [cols / 2][ldn][2]
 * (cols even; columns j >= rows of dst zero): products that sum over src's columns */
static void pack_cols(uint16_t *dst, const float *src, int ld, int rows, int cols, int ldn)
{
    memset(dst, 0, (size_t)cols * ldn * sizeof *dst);
    for (int j = 0; j < rows; j++)
        for (int d = 0; d < cols; d += 2) {
            dst[((size_t)(d / 2) * ldn + j) * 2] = bf16_round(src[(size_t)j * ld + d]);
            dst[((size_t)(d / 2) * ldn + j) * 2 + 1] = bf16_round(src[(size_t)j * ld + d + 1]);
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

/* row[j0..i] = softmax of itself (fp32), in place; returns nothing else */
TGT static void softmax_row(float *row, int j0, int i)
{
    int n = i - j0 + 1;
    float *x = row + j0;
    float mx = x[0];
    for (int j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    __m512 s = _mm512_setzero_ps(), m = _mm512_set1_ps(mx);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), m));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + j, k, e);
        s = _mm512_add_ps(s, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(x + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), inv));
    }
}

/* a thread's scratch: bf16 halves and fp32 floats, grown once */
typedef struct scratch {
    void *h, *f;
    size_t hcap, fcap;
} scratch;
static scratch slots[MAXT];

static int grow(scratch *w, size_t halves, size_t floats)
{
    return scratch_grow(&w->h, &w->hcap, halves * sizeof(uint16_t)) &&
                   scratch_grow(&w->f, &w->fcap, floats * sizeof(float))
               ? 0
               : -1;
}

/* one sequence's KV head g and its query heads, forward */
TGT static int kv_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          const int32_t *start, int b, int g, int T, int H, int KVH, int hd)
{
    int group = H / KVH, Tp = (int)up((size_t)T, 16);
    size_t qs = (size_t)H * hd, ks = (size_t)KVH * hd;
    scratch *w = &slots[omp_get_thread_num()];
    /* Kt pairs [hd/2][Tp][2], V pairs [Tp/2][hd][2], q rows [T][hd], P rows [RB][Tp] */
    size_t nkt = (size_t)hd * Tp, nv = (size_t)Tp * hd, nq = (size_t)T * hd, np = (size_t)RB * Tp;
    if (grow(w, nkt + nv + nq + np, (size_t)RB * Tp)) return -1;
    uint16_t *kt = w->h, *vv = kt + nkt, *q16 = vv + nv, *p16 = q16 + nq;
    float *f = w->f;
    const float *kg = k + (size_t)b * T * ks + (size_t)g * hd, *vg = v + (size_t)b * T * ks + (size_t)g * hd;
    pack_cols(kt, kg, (int)ks, T, hd, Tp);
    memset(vv, 0, nv * sizeof *vv);
    pack_rows(vv, vg, (int)ks, T, hd);
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *qh = q + (size_t)b * T * qs + (size_t)h * hd;
        float *oh = out + (size_t)b * T * qs + (size_t)h * hd, *P = att + ((size_t)b * H + h) * T * T;
        for (int i = 0; i < T; i++) round_row(q16 + (size_t)i * hd, qh + (size_t)i * qs, hd);
        for (int i0 = 0; i0 < T; i0 += RB) {
            int nr = T - i0 < RB ? T - i0 : RB, ncol = (int)up((size_t)i0 + nr, 16), kend = (int)up((size_t)i0 + nr, 2);
            mk(f, Tp, q16 + (size_t)i0 * hd, hd, kt, Tp, nr, ncol, 0, hd / 2, scale, 0);
            for (int r = 0; r < nr; r++) {
                int i = i0 + r, j0 = start ? start[(size_t)b * T + i] : 0;
                float *s = f + (size_t)r * Tp, *prow = P + (size_t)i * T;
                softmax_row(s, j0, i);
                memset(prow, 0, (size_t)T * sizeof *prow);
                memcpy(prow + j0, s + j0, (size_t)(i - j0 + 1) * sizeof *prow);
                memset(p16 + (size_t)r * Tp, 0, (size_t)kend * sizeof *p16);
                round_row(p16 + (size_t)r * Tp + j0, s + j0, i - j0 + 1);
            }
            mk(oh + (size_t)i0 * qs, (int)qs, p16, Tp, vv, hd, nr, hd, 0, kend / 2, 1.0f, 0);
        }
    }
    return 0;
}

/* x [rows, cols] (rows ld apart) transposed into bf16: out [cols][ldo] */
static void transpose_rows(uint16_t *out, int ldo, const float *x, int ld, int rows, int cols)
{
    for (int i = 0; i < rows; i++)
        for (int d = 0; d < cols; d++) out[(size_t)d * ldo + i] = bf16_round(x[(size_t)i * ld + d]);
}

/* y [rows, cols] (rows ld apart) += x^T, x [cols][ldx] */
static void add_transposed(float *y, int ld, const float *x, int ldx, int rows, int cols)
{
    for (int j = 0; j < rows; j++)
        for (int d = 0; d < cols; d++) y[(size_t)j * ld + d] += x[(size_t)d * ldx + j];
}

/* one sequence's KV head g and its query heads, backward (dk, dv accumulate) */
TGT static int kv_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                           const float *k, const float *v, int b, int g, int T, int H, int KVH, int hd)
{
    int group = H / KVH, Tp = (int)up((size_t)T, 16);
    size_t qs = (size_t)H * hd, ks = (size_t)KVH * hd;
    scratch *w = &slots[omp_get_thread_num()];
    /* Vt pairs [hd/2][Tp][2]; K pairs [Tp/2][hd][2]; dO rows [T][hd]; dO^T, Q^T [hd][Tp];
     * P and dS in pairs of rows [Tp/2][Tp][2]; dS rows [RB][Tp] */
    size_t nvt = (size_t)hd * Tp, nsq = (size_t)Tp * Tp, nds = (size_t)RB * Tp;
    size_t nf = (size_t)(RB > hd ? RB : hd) * Tp;
    if (grow(w, 5 * nvt + 2 * nsq + nds, nf)) return -1;
    uint16_t *vt = w->h, *kv = vt + nvt, *do16 = kv + nvt, *dot = do16 + nvt, *qt = dot + nvt;
    uint16_t *pv = qt + nvt, *dsv = pv + nsq, *ds16 = dsv + nsq;
    float *f = w->f;
    const float *kg = k + (size_t)b * T * ks + (size_t)g * hd, *vg = v + (size_t)b * T * ks + (size_t)g * hd;
    float *dkg = dk + (size_t)b * T * ks + (size_t)g * hd, *dvg = dv + (size_t)b * T * ks + (size_t)g * hd;
    pack_cols(vt, vg, (int)ks, T, hd, Tp);
    /* what the causal blocks never write (and the rows past T) stays zero: zeroed once */
    memset(kv, 0, 4 * nvt * sizeof *kv);
    memset(pv, 0, 2 * nsq * sizeof *pv);
    pack_rows(kv, kg, (int)ks, T, hd);
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int h = g * group; h < (g + 1) * group; h++) {
        size_t qo = (size_t)b * T * qs + (size_t)h * hd;
        const float *P = att + ((size_t)b * H + h) * T * T;
        for (int i = 0; i < T; i++) round_row(do16 + (size_t)i * hd, dout + qo + (size_t)i * qs, hd);
        transpose_rows(dot, Tp, dout + qo, (int)qs, T, hd);
        transpose_rows(qt, Tp, q + qo, (int)qs, T, hd);
        for (int i0 = 0; i0 < T; i0 += RB) {
            int nr = T - i0 < RB ? T - i0 : RB, ncol = (int)up((size_t)i0 + nr, 16), kend = (int)up((size_t)i0 + nr, 2);
            /* dP = dO V^T, the block's rows up to its end */
            mk(f, Tp, do16 + (size_t)i0 * hd, hd, vt, Tp, nr, ncol, 0, hd / 2, 1.0f, 0);
            for (int r = 0; r < nr; r++) {
                int i = i0 + r;
                const float *p = P + (size_t)i * T;
                float *d = f + (size_t)r * Tp;
                uint16_t *s16 = ds16 + (size_t)r * Tp;
                /* dS = P * (dP - rowsum(P * dP)) */
                __m512 acc = _mm512_setzero_ps();
                for (int j = 0; j <= i; j += 16) {
                    int n = i + 1 - j;
                    __mmask16 km = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
                    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(km, p + j), _mm512_maskz_loadu_ps(km, d + j), acc);
                }
                __m512 dotv = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
                for (int j = 0; j <= i; j += 16) {
                    int n = i + 1 - j;
                    __mmask16 km = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
                    __m512 pj = _mm512_maskz_loadu_ps(km, p + j);
                    _mm512_mask_storeu_ps(d + j, km, _mm512_mul_ps(pj, _mm512_sub_ps(_mm512_maskz_loadu_ps(km, d + j), dotv)));
                }
                memset(s16, 0, (size_t)kend * sizeof *s16);
                round_row(s16, d, i + 1);
                /* row i of P and dS into their pairs of rows, for dV and dK */
                uint16_t *pr = pv + (size_t)(i / 2) * Tp * 2 + (i & 1), *dr = dsv + (size_t)(i / 2) * Tp * 2 + (i & 1);
                for (int j = 0; j <= i; j++) pr[2 * j] = bf16_round(p[j]), dr[2 * j] = s16[j];
            }
            /* dQ = scale dS K */
            mk(dq + qo + (size_t)i0 * qs, (int)qs, ds16, Tp, kv, hd, nr, hd, 0, kend / 2, scale, 0);
        }
        /* dV^T = dO^T P and dK^T = scale Q^T dS: column j sums over rows i >= j */
        for (int pass = 0; pass < 2; pass++) {
            for (int j0 = 0; j0 < T; j0 += 64) {
                int nc = T - j0 < 64 ? T - j0 : 64;
                mk(f + j0, Tp, pass ? qt : dot, Tp, (pass ? dsv : pv) + (size_t)j0 * 2, Tp, hd, nc, j0 / 2, Tp / 2,
                   pass ? scale : 1.0f, 0);
            }
            add_transposed(pass ? dkg : dvg, (int)ks, f, Tp, T, hd);
        }
    }
    return 0;
}

int op_attention_dpbf16_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                const int32_t *start, int B, int T, int H, int KVH, int hd)
{
    int rc = 0, nt = omp_get_max_threads() < MAXT ? omp_get_max_threads() : MAXT;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) reduction(| : rc)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < KVH; g++) rc |= kv_forward(out, att, q, k, v, start, b, g, T, H, KVH, hd);
    return rc;
}

int op_attention_dpbf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                                 const float *k, const float *v, int B, int T, int H, int KVH, int hd)
{
    size_t ks = (size_t)KVH * hd;
    memset(dk, 0, (size_t)B * T * ks * sizeof(float));
    memset(dv, 0, (size_t)B * T * ks * sizeof(float));
    int rc = 0, nt = omp_get_max_threads() < MAXT ? omp_get_max_threads() : MAXT;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) reduction(| : rc)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < KVH; g++) rc |= kv_backward(dq, dk, dv, dout, att, q, k, v, b, g, T, H, KVH, hd);
    return rc;
}
