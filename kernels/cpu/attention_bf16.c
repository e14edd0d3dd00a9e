/* attention_bf16.c — causal attention with bf16 products and fp32 accumulation, the bf16
 * run's attention: flash style as attention.c (FlashAttention-2's loop), the same saved
 * state (a log-sum-exp per row, [B, H, T]) and the same tasks (one per sequence and KV
 * head, on threads, its query heads in turn), so both dtypes save T floats a head and
 * give the same bits on any number of threads. The softmax and its backward stay fp32,
 * as torch's autocast keeps them; each block of probabilities and of dS is rounded to
 * bf16 only as a product's operand.
 *
 * The products run on AVX512-BF16 (vdpbf16ps). Where the CPU has AVX-512 without it,
 * the bf16 run's attention is attention.c's fp32 one: oneDNN's products, called per
 * head, were slower than it, and kept the T x T probabilities.
 *
 * One micro-kernel for every product: C [rows, cols] (+)= alpha A B, B bf16 in pairs of
 * rows ("VNNI": [K/2][N] of 2 x bf16), A read a pair at a time through strides — rows
 * of a row-major matrix, or (ar 1) the columns of a VNNI one, which is A transposed: so
 * dV = P^T dO and dK = dS^T Q read P, dS, Q and dO in the layouts the other products
 * already need, and nothing is transposed per block.
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

enum { BR = 64, BC = 64, MAXT = 256 };   /* query rows, keys per block; threads with scratch */

/* C [rows, cols] (ldc) = alpha A B (+ C when acc), summed over kp pairs: A's pair (r, p)
 * the dword A[r ar + p ak], B's [p ldb + c]. 4 rows x 64 columns of accumulators a tile. */
TGT static void mk(float *C, int ldc, const uint32_t *A, int ar, int ak, const uint32_t *B, int ldb, int rows,
                   int cols, int kp, float alpha, int acc)
{
    const __m512 al = _mm512_set1_ps(alpha);
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int nr = rows - r0 < 4 ? rows - r0 : 4;
        const uint32_t *a[4];   /* past the last row: its own row again, never stored */
        for (int r = 0; r < 4; r++) a[r] = A + (size_t)(r0 + (r < nr ? r : nr - 1)) * ar;
        for (int c0 = 0; c0 < cols; c0 += 64) {
            __mmask16 m[4];
            for (int v = 0; v < 4; v++) {
                int left = cols - c0 - 16 * v;
                m[v] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            }
            /* sixteen named accumulators: an array of them GCC keeps on the stack */
            __m512 s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00;
            __m512 s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
            const uint32_t *b = B + c0;
            for (int p = 0; p < kp; p++, b += ldb) {
                __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m[0], b);
                __m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi32(m[1], b + 16);
                __m512bh b2 = (__m512bh)_mm512_maskz_loadu_epi32(m[2], b + 32);
                __m512bh b3 = (__m512bh)_mm512_maskz_loadu_epi32(m[3], b + 48);
                size_t o = (size_t)p * ak;
#define ROW(r)                                                                 \
    do {                                                                       \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r][o]);               \
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

/* the first n of 16 lanes */
static inline __mmask16 first(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
}

/* rows of x [n, cols] (rows ld apart) in bf16: out [n][cols / 2] dwords (A rows) */
TGT static void round_rows(uint32_t *out, const float *x, int ld, int n, int cols)
{
    for (int i = 0; i < n; i++) {
        uint16_t *o = (uint16_t *)(out + (size_t)i * (cols / 2));
        const float *r = x + (size_t)i * ld;
        for (int j = 0; j < cols; j += 16) {
            __mmask16 m = first(cols - j);
            _mm256_mask_storeu_epi16(o + j, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r + j)));
        }
    }
}

/* rows of x [n, cols] (rows ld apart) in pairs: out [up(n, 2) / 2][ldo] dwords, dword
 * (p, c) = (x[2p][c], x[2p + 1][c]), the partner of an odd last row zero (B, or A read
 * transposed, for products that sum over x's rows) */
TGT static void pair_rows(uint32_t *out, int ldo, const float *x, int ld, int n, int cols)
{
    for (int i = 0; i < n; i += 2) {
        const float *r0 = x + (size_t)i * ld, *r1 = r0 + ld;
        uint32_t *o = out + (size_t)(i / 2) * ldo;
        for (int c = 0; c < cols; c += 16) {
            __mmask16 m = first(cols - c);
            __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r0 + c)));
            __m512i hi = _mm512_setzero_si512();
            if (i + 1 < n) hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r1 + c)));
            _mm512_mask_storeu_epi32(o + c, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* x [n, hd] (rows ld apart) transposed into pairs: out [hd / 2][ldo] dwords, dword (p, j)
 * = (x[j][2p], x[j][2p + 1]) — row j's own pairs, scattered (B for products that sum over
 * x's columns: Q K^T, dO V^T); columns past n stay as they are */
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

/* row[j] = e^(row[j] - sub) where the mask has j, else 0; returns the sum */
TGT static float exp_masked(float *row, uint64_t mask, float sub)
{
    __m512 s = _mm512_set1_ps(sub), sum = _mm512_setzero_ps();
    for (int c = 0; c < BC; c += 16) {
        __mmask16 m = (__mmask16)(mask >> c);
        __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_loadu_ps(row + c), s)));
        _mm512_storeu_ps(row + c, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/* each thread's scratch, grown once and kept: bf16 pairs (dwords) and floats */
typedef struct {
    uint32_t *h;
    float *f;
    size_t hcap, fcap;
} slot;
static slot slots[MAXT];

static size_t up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* this thread's scratch of `dwords` and `floats`; NULL when out of memory */
static slot *grow(size_t dwords, size_t floats)
{
    slot *w = &slots[omp_get_thread_num()];
    if (!scratch_grow((void **)&w->h, &w->hcap, dwords * 4) || !scratch_grow((void **)&w->f, &w->fcap, floats * 4))
        return NULL;
    return w;
}

/* one (sequence, KV head) of the forward */
TGT static int group_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                             const int32_t *start, int T, int group, int qs, int ks, int hd)
{
    int Tp = (int)up((size_t)T, BC), hp = hd / 2;
    /* K^T pairs [hd/2][Tp], V pairs [Tp/2][hd], a query block's rows [BR][hd/2], P's [BR][BC/2];
     * S [BR][BC], O [BR][hd], the running max and sum [BR] */
    slot *w = grow((size_t)hp * Tp + (size_t)Tp / 2 * hd + (size_t)BR * hp + BR * BC / 2,
                   BR * BC + (size_t)BR * hd + 2 * BR);
    if (!w) return -1;
    uint32_t *kt = w->h, *vv = kt + (size_t)hp * Tp, *q16 = vv + (size_t)Tp / 2 * hd, *p16 = q16 + (size_t)BR * hp;
    float *S = w->f, *O = S + BR * BC, *mx = O + (size_t)BR * hd, *l = mx + BR;
    memset(kt, 0, (size_t)hp * Tp * 4);   /* keys past T: zero, and masked */
    pair_cols(kt, Tp, k, ks, T, hd);
    memset(vv, 0, (size_t)Tp / 2 * hd * 4);
    pair_rows(vv, hd, v, ks, T, hd);
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int g = 0; g < group; g++) {
        const float *qh = q + (size_t)g * hd;
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR;
            /* starts never decrease along a row: the block's first row sees the most */
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            round_rows(q16, qh + (size_t)i0 * qs, qs, ni, hd);
            for (int r = 0; r < ni; r++) mx[r] = -INFINITY, l[r] = 0.0f;
            memset(O, 0, (size_t)ni * hd * sizeof(float));
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                /* S [ni, BC] = scale Q K^T */
                mk(S, BC, q16, hp, 1, kt + j0, Tp, ni, BC, hp, scale, 0);
                for (int r = 0; r < ni; r++) {
                    float *row = S + (size_t)r * BC;
                    uint64_t sm = span(start, i0 + r, j0);
                    float m = mx[r];
                    for (int c = 0; c < BC; c += 16)
                        m = fmaxf(m, _mm512_mask_reduce_max_ps((__mmask16)(sm >> c), _mm512_loadu_ps(row + c)));
                    if (sm) {   /* the running sums rescaled to the new max */
                        float corr = expf(mx[r] - m);
                        l[r] = l[r] * corr + exp_masked(row, sm, m);
                        mx[r] = m;
                        if (corr != 1.0f)
                            for (int d = 0; d < hd; d += 16) {
                                __mmask16 dm = first(hd - d);
                                float *o = O + (size_t)r * hd + d;
                                _mm512_mask_storeu_ps(o, dm, _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, o), _mm512_set1_ps(corr)));
                            }
                    } else {
                        memset(row, 0, BC * sizeof(float));
                    }
                }
                /* O [ni, hd] += P V */
                round_rows(p16, S, BC, ni, BC);
                mk(O, hd, p16, BC / 2, 1, vv + (size_t)j0 / 2 * hd, hd, ni, hd, BC / 2, 1.0f, 1);
            }
            for (int r = 0; r < ni; r++) {
                float inv = 1.0f / l[r];
                float *o = out + (size_t)(i0 + r) * qs + (size_t)g * hd;
                for (int d = 0; d < hd; d++) o[d] = O[(size_t)r * hd + d] * inv;
                lse[(size_t)g * T + i0 + r] = mx[r] + logf(l[r]);
            }
        }
    }
    return 0;
}

/* y [T, hd] (rows ld apart) = x^T, x [hd][ldx] */
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
    int Tp = (int)up((size_t)T, BC), hp = hd / 2;
    size_t nkv = (size_t)hp * Tp, nq = (size_t)BR * hp, nb = BR * BC / 2;
    /* dwords: K^T pairs and V^T pairs [hd/2][Tp], K pairs [Tp/2][hd]; the query block's Q
     * and dO as rows [BR][hd/2] and as pairs [BR/2][hd]; P pairs, dS pairs [BR/2][BC] and
     * dS rows [BR][BC/2]. floats: P and dP [BR][BC], dK^T and dV^T [hd][Tp], D [T] */
    slot *w = grow(3 * nkv + 4 * nq + 3 * nb, 2 * BR * BC + 2 * (size_t)hd * Tp + (size_t)T);
    if (!w) return -1;
    uint32_t *kt = w->h, *vt = kt + nkv, *kv = vt + nkv, *q16 = kv + nkv, *do16 = q16 + nq, *qv = do16 + nq;
    uint32_t *dov = qv + nq, *pv = dov + nq, *dsv = pv + nb, *ds16 = dsv + nb;
    float *P = w->f, *dP = P + BR * BC, *dkt = dP + BR * BC, *dvt = dkt + (size_t)hd * Tp, *D = dvt + (size_t)hd * Tp;
    memset(kt, 0, 3 * nkv * 4);
    pair_cols(kt, Tp, k, ks, T, hd);
    pair_cols(vt, Tp, v, ks, T, hd);
    pair_rows(kv, hd, k, ks, T, hd);
    memset(dkt, 0, 2 * (size_t)hd * Tp * sizeof(float));
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
            memset(dq + (size_t)t * qs + ho, 0, (size_t)hd * sizeof(float));
        }
        for (int i0 = 0; i0 < T; i0 += BR) {
            int ni = T - i0 < BR ? T - i0 : BR, np = (ni + 1) / 2;
            int jlo = (start ? start[i0] : 0) / BC * BC, jhi = i0 + ni;
            const float *qi = q + (size_t)i0 * qs + ho, *doi = dout + (size_t)i0 * qs + ho;
            round_rows(q16, qi, qs, ni, hd);
            round_rows(do16, doi, qs, ni, hd);
            pair_rows(qv, hd, qi, qs, ni, hd);
            pair_rows(dov, hd, doi, qs, ni, hd);
            float *dqi = dq + (size_t)i0 * qs + ho;
            for (int j0 = jlo; j0 < jhi; j0 += BC) {
                /* P = exp(scale Q K^T - lse), zero outside each row's keys */
                mk(P, BC, q16, hp, 1, kt + j0, Tp, ni, BC, hp, scale, 0);
                for (int r = 0; r < ni; r++) exp_masked(P + (size_t)r * BC, span(start, i0 + r, j0), hl[i0 + r]);
                /* dV^T [hd, BC] += dO^T P;  dP [ni, BC] = dO V^T */
                pair_rows(pv, BC, P, BC, ni, BC);
                mk(dvt + j0, Tp, dov, 1, hd, pv, BC, hd, BC, np, 1.0f, 1);
                mk(dP, BC, do16, hp, 1, vt + j0, Tp, ni, BC, hp, 1.0f, 0);
                /* dS = P (dP - D), in dP */
                for (int r = 0; r < ni; r++) {
                    __m512 dr = _mm512_set1_ps(D[i0 + r]);
                    for (int c = 0; c < BC; c += 16) {
                        float *d = dP + (size_t)r * BC + c;
                        _mm512_storeu_ps(d, _mm512_mul_ps(_mm512_loadu_ps(P + (size_t)r * BC + c),
                                                          _mm512_sub_ps(_mm512_loadu_ps(d), dr)));
                    }
                }
                /* dQ [ni, hd] += scale dS K;  dK^T [hd, BC] += scale Q^T dS */
                round_rows(ds16, dP, BC, ni, BC);
                pair_rows(dsv, BC, dP, BC, ni, BC);
                mk(dqi, qs, ds16, BC / 2, 1, kv + (size_t)j0 / 2 * hd, hd, ni, hd, BC / 2, scale, 1);
                mk(dkt + j0, Tp, qv, 1, hd, dsv, BC, hd, BC, np, scale, 1);
            }
        }
    }
    put_transposed(dk, ks, dkt, Tp, T, hd);
    put_transposed(dv, ks, dvt, Tp, T, hd);
    return 0;
}

int op_attention_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                              const int32_t *start, int B, int T, int H, int KVH, int hd)
{
    if (op_isa_current() < OP_ISA_AVX512_BF16) return op_attention_forward(out, lse, q, k, v, start, B, T, H, KVH, hd);
    int group = H / KVH, qs = H * hd, ks = KVH * hd, rc = 0;
    int nt = omp_get_max_threads() < MAXT ? omp_get_max_threads() : MAXT;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) if (nt > 1) reduction(| : rc)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KVH; kh++) {
            size_t qo = (size_t)b * T * qs + (size_t)kh * group * hd, ko = (size_t)b * T * ks + (size_t)kh * hd;
            rc |= group_forward(out + qo, lse + ((size_t)b * H + (size_t)kh * group) * T, q + qo, k + ko, v + ko,
                                start ? start + (size_t)b * T : NULL, T, group, qs, ks, hd);
        }
    return rc;
}

int op_attention_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                               const float *q, const float *k, const float *v, const int32_t *start, int B, int T,
                               int H, int KVH, int hd)
{
    if (op_isa_current() < OP_ISA_AVX512_BF16)
        return op_attention_backward(dq, dk, dv, dout, out, lse, q, k, v, start, B, T, H, KVH, hd);
    int group = H / KVH, qs = H * hd, ks = KVH * hd, rc = 0;
    int nt = omp_get_max_threads() < MAXT ? omp_get_max_threads() : MAXT;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) if (nt > 1) reduction(| : rc)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KVH; kh++) {
            size_t qo = (size_t)b * T * qs + (size_t)kh * group * hd, ko = (size_t)b * T * ks + (size_t)kh * hd;
            rc |= group_backward(dq + qo, dk + ko, dv + ko, dout + qo, out + qo,
                                 lse + ((size_t)b * H + (size_t)kh * group) * T, q + qo, k + ko, v + ko,
                                 start ? start + (size_t)b * T : NULL, T, group, qs, ks, hd);
        }
    return rc;
}
