/* ops.c — fp32 CPU kernels. Matrix products go through OpenBLAS sgemm, its OpenMP build:
 * one libgomp team for its threads and for the kernels here (op_set_threads). The
 * elementwise kernels are written for the compiler to vectorise (AVX2/FMA), and
 * accumulate reductions in double where rounding matters. exp is an 8-lane AVX2
 * polynomial (torch's CPU kernels use a vectorised exp too): libm's scalar calls made
 * softmax, SwiGLU and the cross-entropy a tenth of a training step. The row-wise and
 * elementwise kernels run on the thread budget, splitting only work that does not share
 * a sum: every element computes as on one thread, and a sum across rows (a norm's
 * weight gradient, the loss) still adds in row order, so the results are the same bits
 * whatever the thread count. The fp32 attention is attention.c's. */
#include "ops.h"
#include "scratch.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* below this many elements a kernel stays on one thread: waking others costs more */
#define PAR_MIN 32768

/* the sigmoid of 8 lanes: 1 / (1 + e^-g) */
static inline __m256 sigmoid8(__m256 g)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

void op_matmul_forward(float *out, const float *x, const float *w, int N, int IC, int OC, int ldo, float alpha,
                       float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, alpha, x, IC, w, IC, beta, out, ldo);
}

void op_matmul_backward_input(float *dx, const float *dout, const float *w, int N, int IC, int OC, int ldd,
                              float alpha, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, alpha, dout, ldd, w, IC, beta, dx, IC);
}

void op_matmul_backward_weight(float *dw, const float *dout, const float *x, int N, int IC, int OC, int ldd,
                               float alpha)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, alpha, dout, ldd, x, IC, 1.0f, dw, IC);
}

void op_bias_forward(float *out, const float *bias, int N, int C)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] += bias[c];
}

void op_bias_backward(float *dbias, const float *dout, int N, int C)
{
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dout[(size_t)n * C + c];
        dbias[c] += (float)s;
    }
}

void op_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, (size_t)C * sizeof(float));
}

void op_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C)
{
    for (int n = 0; n < N; n++) op_axpy(dtable + (size_t)ids[n] * C, dout + (size_t)n * C, 1.0f, (size_t)C);
}

void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        rstd[n] = r;
        for (int c = 0; c < C; c++) o[c] = w[c] * (xr[c] * r);
    }
}

void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float r = rstd[n];
        double dot = 0;   /* sum_c w_c dy_c x_c */
        for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * xr[c];
        float k = (float)(dot * r * r * r / C);
        for (int c = 0; c < C; c++) dxr[c] += r * w[c] * dy[c] - k * xr[c];
    }
    /* the weight's gradient sums over rows: in row order, on one thread */
    for (int n = 0; dw && n < N; n++) {
        const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
        float r = rstd[n];
        for (int c = 0; c < C; c++) dw[c] += dy[c] * xr[c] * r;
    }
}

void op_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int hd)
{
    int half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float f = (float)t * inv_freq[i];
            cos_t[(size_t)t * half + i] = cosf(f);
            sin_t[(size_t)t * half + i] = sinf(f);
        }
}

static void rope(float *x, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T, int H, int hd,
                 float dir)
{
    int half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * H * hd >= PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int pos = start ? t - start[(size_t)b * T + t] : t;   /* packed rows restart per document */
            const float *c = cos_t + (size_t)pos * half, *s = sin_t + (size_t)pos * half;
            for (int h = 0; h < H; h++) {
                float *v = x + (((size_t)b * T + t) * H + h) * hd;
                for (int i = 0; i < half; i++) {
                    float a = v[i], e = v[i + half], sn = dir * s[i];
                    v[i] = a * c[i] - e * sn;
                    v[i + half] = e * c[i] + a * sn;
                }
            }
        }
}

void op_rope_forward(float *x, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T, int H, int hd)
{
    rope(x, cos_t, sin_t, start, B, T, H, hd, 1.0f);
}

void op_rope_backward(float *dx, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T, int H,
                      int hd)
{
    rope(dx, cos_t, sin_t, start, B, T, H, hd, -1.0f);   /* a rotation's transpose is its inverse */
}

void op_rope_at(float *x, const int *pos, const float *inv_freq, int N, int H, int hd)
{
    int half = hd / 2;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            /* the same fp32 product as op_rope_tables, so positions agree with training */
            float f = (float)pos[n] * inv_freq[i], c = cosf(f), sn = sinf(f);
            for (int h = 0; h < H; h++) {
                float *v = x + ((size_t)n * H + h) * hd;
                float a = v[i], e = v[i + half];
                v[i] = a * c - e * sn;
                v[i + half] = e * c + a * sn;
            }
        }
}

void op_kv_write(float *cache, const float *k, const float *v, const int *seq, const int *pos, int N, int nseq,
                 int maxlen, int kd)
{
    float *vc = cache + (size_t)nseq * maxlen * kd;
    for (int i = 0; i < N; i++) {
        size_t at = ((size_t)seq[i] * maxlen + pos[i]) * kd;
        memcpy(cache + at, k + (size_t)i * kd, (size_t)kd * sizeof(float));
        memcpy(vc + at, v + (size_t)i * kd, (size_t)kd * sizeof(float));
    }
}

void op_attention_cached(float *out, float *scores, const float *q, const float *cache, const int *seq,
                         const int *pos, int N, int nseq, int maxlen, int H, int KVH, int hd)
{
    int group = H / KVH;
    float scale = (float)(1.0 / sqrt((double)hd));
    size_t ks = (size_t)KVH * hd;
    const float *vcache = cache + (size_t)nseq * maxlen * ks;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *qh = q + ((size_t)n * H + h) * hd;
            size_t row0 = (size_t)seq[n] * maxlen * ks + (size_t)(h / group) * hd;
            const float *kb = cache + row0, *vb = vcache + row0;
            int P = pos[n] + 1;
            float mx = -INFINITY;
            for (int j = 0; j < P; j++) {
                const float *kj = kb + (size_t)j * ks;
                float d = 0;
                for (int i = 0; i < hd; i++) d += qh[i] * kj[i];
                scores[j] = d * scale;
                mx = scores[j] > mx ? scores[j] : mx;
            }
            double sum = exp_sub(scores, scores, P, mx);
            float inv = (float)(1.0 / sum);
            float *o = out + ((size_t)n * H + h) * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j < P; j++) {
                const float *vj = vb + (size_t)j * ks;
                float p = scores[j] * inv;
                for (int i = 0; i < hd; i++) o[i] += p * vj[i];
            }
        }
}

void op_argmax(int32_t *out, const float *x, int N, int V)
{
    for (int i = 0; i < N; i++) {
        const float *r = x + (size_t)i * V;
        int best = 0;
        for (int j = 1; j < V; j++)
            if (r[j] > r[best]) best = j;
        out[i] = best;
    }
}

static float lane_sum8(const float acc[8])
{
    float s = acc[0];
    for (int j = 1; j < 8; j++) s = s + acc[j];
    return s;
}

float op_norm2(const float *x, size_t n)
{
    float acc[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int j = 0; j < 8; j++) acc[j] = fmaf(x[d + j], x[d + j], acc[j]);
    float s = lane_sum8(acc);
    for (; d < n; d++) s = fmaf(x[d], x[d], s);
    return sqrtf(s);
}

void op_scale(float *x, float s, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* One pool for the thread budget: OpenBLAS is its OpenMP build (CMakeLists.txt), so its
 * products and the kernels here run on the same libgomp team, and a product called
 * inside a parallel region runs on its caller's thread. (With the pthread build, two
 * pools spun on the same cores and took turns stealing them: the pricer's fp32 run
 * took 3x as long, and the kernels here had to stay on one thread.) */
void op_set_threads(int n)
{
    n = n > 0 ? n : 1;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

void op_swiglu_forward(float *out, const float *gate, const float *up, int N, int C)
{
    size_t n = (size_t)N * C, i = n - n % 8;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t j = 0; j < n / 8; j++) {
        __m256 g = _mm256_loadu_ps(gate + 8 * j);
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), _mm256_loadu_ps(up + 8 * j)));
    }
    if (i < n) {
        float gb[8] = {0}, ub[8] = {0};
        memcpy(gb, gate + i, (n - i) * sizeof(float));
        memcpy(ub, up + i, (n - i) * sizeof(float));
        __m256 g = _mm256_loadu_ps(gb);
        _mm256_storeu_ps(gb, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), _mm256_loadu_ps(ub)));
        memcpy(out + i, gb, (n - i) * sizeof(float));
    }
}

/* dup = dy silu(g);  dgate = dy up s (1 + g (1 - s)), s = sigmoid(g), for 8 lanes */
static inline void swiglu_back8(float *dgate, float *dup, const float *dout, const float *gate, const float *up)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 g = _mm256_loadu_ps(gate), u = _mm256_loadu_ps(up), dy = _mm256_loadu_ps(dout), s = sigmoid8(g);
    _mm256_storeu_ps(dup, _mm256_mul_ps(dy, _mm256_mul_ps(g, s)));
    _mm256_storeu_ps(dgate, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dy, u), s),
                                          _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s)))));
}

void op_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int N, int C)
{
    size_t n = (size_t)N * C, i = n - n % 8;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t j = 0; j < n / 8; j++) swiglu_back8(dgate + 8 * j, dup + 8 * j, dout + 8 * j, gate + 8 * j, up + 8 * j);
    if (i < n) {   /* the tail through the same lanes */
        size_t k = n - i;
        float gb[8] = {0}, ub[8] = {0}, db[8] = {0}, gg[8], gu[8];
        memcpy(gb, gate + i, k * sizeof(float)), memcpy(ub, up + i, k * sizeof(float)), memcpy(db, dout + i, k * sizeof(float));
        swiglu_back8(gg, gu, db, gb, ub);
        memcpy(dgate + i, gg, k * sizeof(float)), memcpy(dup + i, gu, k * sizeof(float));
    }
}

/* the largest element, NaNs passed over (as the scalar x > mx ? x : mx) */
static float row_max(const float *x, int n)
{
    float mx = x[0];
    int j = 0;
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (j = 8; j + 8 <= n; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + j), m);
        float l[8];
        _mm256_storeu_ps(l, m);
        for (int k = 0; k < 8; k++) mx = l[k] > mx ? l[k] : mx;
    }
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

/* log(sum(exp(row))) with the max taken out first: finite for any finite row */
static double logsumexp(const float *row, int V)
{
    float mx = row_max(row, V);
    return mx + log(exp_sub(NULL, row, V, mx));
}

/* the rows' losses in double, for the sum in row order (grown, never shrunk) */
static double *ce_rows;
static size_t ce_cap;

double op_cross_entropy_forward(float *losses, const float *logits, const int32_t *targets, int N, int V)
{
    if ((size_t)N > ce_cap) {
        double *p = realloc(ce_rows, (size_t)N * sizeof *p);
        if (p) ce_rows = p, ce_cap = (size_t)N;
    }
    int have = (size_t)N <= ce_cap;   /* out of memory: one thread, summing as it goes, as before */
    double total = 0;
#pragma omp parallel for schedule(static) if (have && (size_t)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        double l = 0;
        if (targets[n] >= 0) {
            const float *row = logits + (size_t)n * V;
            l = logsumexp(row, V) - row[targets[n]];
        }
        losses[n] = (float)l;
        if (have) ce_rows[n] = l;
        else if (targets[n] >= 0) total += l;
    }
    for (int n = 0; have && n < N; n++)
        if (targets[n] >= 0) total += ce_rows[n];
    return total;
}

void op_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N, int V, float scale)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *row = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        if (targets[n] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = row_max(row, V);
        /* softmax = e^(x - mx) / sum: the shift by the max keeps every power finite */
        float inv = (float)(scale / exp_sub(d, row, V, mx));
        for (int j = 0; j < V; j++) d[j] *= inv;
        d[targets[n]] -= scale;
    }
}

void op_dropout_forward(float *out, const float *x, const uint8_t *keep, float scale, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = x[i] * ((float)keep[i] * scale);
}

void op_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float scale, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += dout[i] * ((float)keep[i] * scale);
}


void op_axpy(float *out, const float *x, float alpha, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] += alpha * x[i];
}
