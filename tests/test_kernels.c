/* test_kernels.c — every CPU kernel's backward checked against central finite differences
 * of its forward. The objective sum(out * R) (R random) is accumulated in double; the
 * kernels are fp32, so eps is 1e-2 and the tolerance is relative to the gradient's scale.
 * The generation kernels (RoPE at explicit positions, attention against a KV cache) are
 * checked against the training kernels they must agree with. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isa.h"
#include "ops.h"

static unsigned long long seed = 88172645463325252ULL;

static float frand(void)   /* uniform in [-1, 1) */
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (float)((seed >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

/* every test buffer, freed at exit */
enum { MAX_OWNED = 1024 };
static void *owned[MAX_OWNED];
static int nowned;
static void *keep(void *p)
{
    if (nowned == MAX_OWNED) {   /* a leak the sanitizers would report: say why instead */
        fprintf(stderr, "test_kernels: more than %d test buffers; raise MAX_OWNED\n", MAX_OWNED);
        abort();
    }
    owned[nowned++] = p;
    return p;
}

static float *rnd(size_t n, float scale)
{
    float *p = keep(malloc(n * sizeof *p));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static float *zeros(size_t n)
{
    return keep(calloc(n, sizeof(float)));
}

typedef double (*objective_fn)(void *ctx);

/* compares grad[i] with the central difference of f over p[i] for a sample of i: within
 * 1e-3 of max |grad| (at least 1e-3), in double as the objective is */
static void fd_check(const char *name, objective_fn f, void *ctx, float *p, const float *grad, size_t n)
{
    double scale = fmax(1e-3, check_max_abs(grad, n));
    size_t step = n > 64 ? n / 64 : 1, m = 0;
    double *num = malloc(n * sizeof *num), *ana = malloc(n * sizeof *ana);
    for (size_t i = 0; i < n; i += step, m++) {
        float keep = p[i];
        float eps = 1e-2f * fmaxf(1.0f, fabsf(keep));
        p[i] = keep + eps;
        double up = f(ctx);
        p[i] = keep - eps;
        double down = f(ctx);
        p[i] = keep;
        num[m] = (up - down) / (2.0 * eps);
        ana[m] = grad[i];
    }
    char what[96];
    snprintf(what, sizeof what, "%s (sample k: element k * %zu)", name, step);
    int ok = check_close_f64(what, ana, num, m, 1e-3 * scale, 0);
    printf("%-28s max error %.2e (relative to max |grad| %.3g) %s\n", name, check_last()->max_abs / scale, scale,
           ok ? "ok" : "FAIL");
    free(num);
    free(ana);
}

static double dot(const float *a, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

/* ---- rmsnorm ---- */
typedef struct { int N, C; float *x, *w, *out, *rstd, *R; } rms_ctx;
static double rms_f(void *v)
{
    rms_ctx *c = v;
    op_rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-5f);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}
static void test_rmsnorm(void)
{
    rms_ctx c = {4, 16, rnd(64, 2), rnd(16, 1), zeros(64), zeros(4), rnd(64, 1)};
    float *dx = zeros(64), *dw = zeros(16);
    rms_f(&c);
    op_rmsnorm_backward(dx, dw, c.R, c.x, c.w, c.rstd, c.N, c.C);
    fd_check("rmsnorm dx", rms_f, &c, c.x, dx, 64);
    fd_check("rmsnorm dw", rms_f, &c, c.w, dw, 16);
}

/* ---- matmul + bias ---- */
typedef struct { int N, IC, OC; float *x, *w, *b, *out, *R; } mm_ctx;
static double mm_f(void *v)
{
    mm_ctx *c = v;
    op_matmul_forward(c->out, c->x, c->w, c->N, c->IC, c->OC, c->OC, 1.0f, 0.0f);
    op_bias_forward(c->out, c->b, c->N, c->OC);
    return dot(c->out, c->R, (size_t)c->N * c->OC);
}
static void test_matmul(void)
{
    mm_ctx c = {5, 7, 6, rnd(35, 1), rnd(42, 1), rnd(6, 1), zeros(30), rnd(30, 1)};
    float *dx = rnd(35, 1), *dw = zeros(42), *db = zeros(6);
    op_matmul_backward_input(dx, c.R, c.w, c.N, c.IC, c.OC, c.OC, 1.0f, 0.0f);
    op_matmul_backward_weight(dw, c.R, c.x, c.N, c.IC, c.OC, c.OC, 1.0f);
    op_bias_backward(db, c.R, c.N, c.OC);
    fd_check("matmul dx", mm_f, &c, c.x, dx, 35);
    fd_check("matmul dw", mm_f, &c, c.w, dw, 42);
    fd_check("bias db", mm_f, &c, c.b, db, 6);
}

/* ---- embedding ---- */
typedef struct { int N, C; int32_t *ids; float *table, *out, *R; } emb_ctx;
static double emb_f(void *v)
{
    emb_ctx *c = v;
    op_embedding_forward(c->out, c->ids, c->table, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}
static void test_embedding(void)
{
    int32_t ids[6] = {3, 1, 3, 0, 4, 3};
    emb_ctx c = {6, 8, ids, rnd(40, 1), zeros(48), rnd(48, 1)};
    float *dt = zeros(40);
    op_embedding_backward(dt, c.R, ids, 6, 8);
    fd_check("embedding dtable", emb_f, &c, c.table, dt, 40);
}

/* ---- rope ---- */
typedef struct { int B, T, H, hd; float *x, *work, *cos_t, *sin_t, *R; } rope_ctx;
static double rope_f(void *v)
{
    rope_ctx *c = v;
    size_t n = (size_t)c->B * c->T * c->H * c->hd;
    memcpy(c->work, c->x, n * sizeof(float));
    op_rope_forward(c->work, c->cos_t, c->sin_t, NULL, c->B, c->T, c->H, c->hd);
    return dot(c->work, c->R, n);
}
static void test_rope(void)
{
    int B = 2, T = 5, H = 3, hd = 8;
    size_t n = (size_t)B * T * H * hd;
    float inv[4];
    for (int i = 0; i < 4; i++) inv[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hd);
    rope_ctx c = {B, T, H, hd, rnd(n, 1), zeros(n), zeros(T * hd / 2), zeros(T * hd / 2), rnd(n, 1)};
    op_rope_tables(c.cos_t, c.sin_t, inv, T, hd);
    float *dx = keep(malloc(n * sizeof(float)));
    memcpy(dx, c.R, n * sizeof(float));
    op_rope_backward(dx, c.cos_t, c.sin_t, NULL, B, T, H, hd);
    fd_check("rope dx", rope_f, &c, c.x, dx, n);
}

/* ---- attention (GQA) ---- */
typedef struct { int B, T, H, KVH, hd; float *q, *k, *v, *out, *att, *R; } att_ctx;
static double att_f(void *vv)
{
    att_ctx *c = vv;
    op_attention_forward(c->out, c->att, c->q, c->k, c->v, NULL, c->B, c->T, c->H, c->KVH, c->hd);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->H * c->hd);
}
static void test_attention(void)
{
    int B = 2, T = 6, H = 4, KVH = 2, hd = 8;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd;
    att_ctx c = {B, T, H, KVH, hd, rnd(nq, 1), rnd(nk, 1), rnd(nk, 1), zeros(nq), zeros((size_t)B * H * T * T), rnd(nq, 1)};
    float *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk);
    att_f(&c);
    op_attention_backward(dq, dk, dv, c.R, c.out, c.att, c.q, c.k, c.v, NULL, B, T, H, KVH, hd);
    fd_check("attention dq", att_f, &c, c.q, dq, nq);
    fd_check("attention dk", att_f, &c, c.k, dk, nk);
    fd_check("attention dv", att_f, &c, c.v, dv, nk);
    /* causality: the first position sees only itself, so its output is its own value */
    att_f(&c);
    int ok = 1;
    for (int h = 0; h < H; h++)
        for (int d = 0; d < hd; d++)
            ok &= fabsf(c.out[(size_t)h * hd + d] - c.v[(size_t)(h / (H / KVH)) * hd + d]) < 1e-6f;
    CHECK(ok, "causal mask: position 0's output is not its own value");
    printf("%-28s %s\n", "attention causal mask", ok ? "ok" : "FAIL");
}

/* The flash-style kernel against the textbook attention in double: several blocks of
 * rows and keys (T past BR and BC), a head size that is not a multiple of the vector
 * width, GQA, packed documents; forward and backward. */
static void attention_ref(double *out, double *dq, double *dk, double *dv, const float *q, const float *k,
                          const float *v, const float *dout, const int32_t *start, int B, int T, int H, int KVH,
                          int hd)
{
    int qs = H * hd, ks = KVH * hd, group = H / KVH;
    double scale = 1.0 / sqrt((double)hd), *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
    memset(dk, 0, (size_t)B * T * ks * sizeof *dk);
    memset(dv, 0, (size_t)B * T * ks * sizeof *dv);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *qi = q + ((size_t)b * T + i) * qs + (size_t)h * hd;
                const float *oi = dout + ((size_t)b * T + i) * qs + (size_t)h * hd;
                size_t kv = (size_t)b * T * ks + (size_t)(h / group) * hd;
                int j0 = start ? start[(size_t)b * T + i] : 0;
                double mx = -INFINITY, sum = 0, dot = 0;
                for (int j = j0; j <= i; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += (double)qi[d] * k[kv + (size_t)j * ks + d];
                    p[j] = s * scale;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = j0; j <= i; j++) sum += p[j] = exp(p[j] - mx);
                double *o = out + ((size_t)b * T + i) * qs + (size_t)h * hd;
                for (int d = 0; d < hd; d++) o[d] = 0;
                for (int j = j0; j <= i; j++) {
                    p[j] /= sum;
                    dp[j] = 0;
                    for (int d = 0; d < hd; d++) {
                        o[d] += p[j] * v[kv + (size_t)j * ks + d];
                        dp[j] += (double)oi[d] * v[kv + (size_t)j * ks + d];
                    }
                    dot += p[j] * dp[j];
                }
                double *g = dq + ((size_t)b * T + i) * qs + (size_t)h * hd;
                for (int d = 0; d < hd; d++) g[d] = 0;
                for (int j = j0; j <= i; j++) {
                    double ds = p[j] * (dp[j] - dot) * scale;
                    for (int d = 0; d < hd; d++) {
                        g[d] += ds * k[kv + (size_t)j * ks + d];
                        dk[kv + (size_t)j * ks + d] += ds * qi[d];
                        dv[kv + (size_t)j * ks + d] += p[j] * oi[d];
                    }
                }
            }
    free(p);
    free(dp);
}
static void test_attention_blocks(void)
{
    int B = 2, T = 150, H = 6, KVH = 2, hd = 24;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
    int32_t *start = keep(malloc((size_t)B * T * sizeof *start));
    for (int b = 0; b < B; b++)   /* documents of 1, 40, 70 and the rest; the second row one document */
        for (int t = 0; t < T; t++) start[(size_t)b * T + t] = b ? 0 : t < 1 ? 0 : t < 41 ? 1 : t < 111 ? 41 : 111;
    double *ro = keep(malloc(nq * sizeof *ro)), *rq = keep(malloc(nq * sizeof *rq));
    double *rk = keep(malloc(nk * sizeof *rk)), *rv = keep(malloc(nk * sizeof *rv));
    for (int packed = 0; packed < 2; packed++) {
        const int32_t *st = packed ? start : NULL;
        float *o = zeros(nq), *lse = zeros((size_t)B * H * T), *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk);
        CHECK(op_attention_forward(o, lse, q, k, v, st, B, T, H, KVH, hd) == 0, "attention forward ran");
        CHECK(op_attention_backward(dq, dk, dv, dout, o, lse, q, k, v, st, B, T, H, KVH, hd) == 0,
              "attention backward ran");
        attention_ref(ro, rq, rk, rv, q, k, v, dout, st, B, T, H, KVH, hd);
        const char *what[4] = {"out", "dq", "dk", "dv"};
        const float *got[4] = {o, dq, dk, dv};
        const double *want[4] = {ro, rq, rk, rv};
        for (int i = 0; i < 4; i++) {
            size_t n = i < 2 ? nq : nk;
            double worst = 0, top = 0;
            for (size_t e = 0; e < n; e++) {
                double d = fabs(got[i][e] - want[i][e]);
                worst = d > worst ? d : worst;
                top = fabs(want[i][e]) > top ? fabs(want[i][e]) : top;
            }
            int ok = CHECK(worst <= 2e-6 * top, "attention %s%s: max |diff| %.3g of max %.3g", what[i],
                           packed ? " (packed)" : "", worst, top);
            printf("attention %s vs double%-9s %.2e of max %s\n", what[i], packed ? " (packed)" : "", worst / top,
                   ok ? "ok" : "FAIL");
        }
    }
}

/* ---- swiglu ---- */
typedef struct { int N, C; float *g, *u, *out, *R; } sw_ctx;
static double sw_f(void *v)
{
    sw_ctx *c = v;
    op_swiglu_forward(c->out, c->g, c->u, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}
static void test_swiglu(void)
{
    sw_ctx c = {3, 10, rnd(30, 3), rnd(30, 1), zeros(30), rnd(30, 1)};
    float *dg = zeros(30), *du = zeros(30);
    op_swiglu_backward(dg, du, c.R, c.g, c.u, 3, 10);
    fd_check("swiglu dgate", sw_f, &c, c.g, dg, 30);
    fd_check("swiglu dup", sw_f, &c, c.u, du, 30);
    /* the vectorised exp behind the sigmoid, over its whole normal range (odd length: a
     * tail too): silu(g) within a few float roundings of the exact value */
    int n = 170001;
    float *g = malloc((size_t)n * sizeof *g), *one = malloc((size_t)n * sizeof *one), *out = malloc((size_t)n * sizeof *out);
    for (int i = 0; i < n; i++) g[i] = -85.0f + 170.0f * (float)i / (float)(n - 1), one[i] = 1.0f;
    op_swiglu_forward(out, g, one, 1, n);
    /* element-wise relative error, against the exact value in double */
    double *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    for (int i = 0; i < n; i++) want[i] = (double)g[i] / (1.0 + exp(-(double)g[i])), got[i] = out[i];
    int ok = check_close_f64("silu over [-85, 85]", got, want, (size_t)n, 0, 5e-7);
    printf("%-28s %s (worst rel err %.2g)\n", "silu over [-85, 85]", ok ? "ok" : "FAIL", check_last()->max_rel);
    free(g), free(one), free(out), free(got), free(want);
}

/* ---- cross-entropy ---- */
typedef struct { int N, V; float *logits, *losses; int32_t *t; } ce_ctx;
static double ce_f(void *v)
{
    ce_ctx *c = v;
    return op_cross_entropy_forward(c->losses, c->logits, c->t, c->N, c->V);
}
static void test_cross_entropy(void)
{
    int32_t t[4] = {2, -100, 0, 9};
    ce_ctx c = {4, 10, rnd(40, 3), zeros(4), t};
    float *d = zeros(40);
    op_cross_entropy_backward(d, c.logits, t, 4, 10, 1.0f);
    fd_check("cross-entropy dlogits", ce_f, &c, c.logits, d, 40);
    /* huge logits and a long row stay finite, as torch's log_softmax does */
    int V = 128256;
    float *big = malloc((size_t)V * sizeof *big);
    for (int j = 0; j < V; j++) big[j] = frand();
    big[5] = 3e38f;
    big[7] = -3e38f;
    float loss;
    int32_t tg = 7;
    double l = op_cross_entropy_forward(&loss, big, &tg, 1, V);
    int ok = isfinite(l) && l > 5e38;
    tg = 5;
    l = op_cross_entropy_forward(&loss, big, &tg, 1, V);
    ok = ok && l == 0.0;
    op_cross_entropy_backward(big, big, &tg, 1, V, 1.0f);
    for (int j = 0; j < V && ok; j++) ok = isfinite(big[j]);
    ok = CHECK(ok, "cross-entropy large logits: a loss is wrong or a gradient is not finite");
    printf("%-28s %s\n", "cross-entropy large logits", ok ? "ok" : "FAIL");
    /* a vocabulary-sized row of logits within +-30: the loss as the exact sum gives it */
    for (int j = 0; j < V; j++) big[j] = 60.0f * (frand() - 0.5f);
    double sum = 0, mx = big[0];
    for (int j = 1; j < V; j++) mx = big[j] > mx ? big[j] : mx;
    for (int j = 0; j < V; j++) sum += exp((double)big[j] - mx);
    tg = 11;
    double want = mx + log(sum) - big[tg], got = op_cross_entropy_forward(&loss, big, &tg, 1, V);
    ok = CHECK(fabs(got - want) < 1e-6 * want, "cross-entropy vs exact: %.17g, exact %.17g", got, want);
    printf("%-28s %s (rel err %.2g)\n", "cross-entropy vs exact", ok ? "ok" : "FAIL", fabs(got - want) / want);
    free(big);
}

/* ---- dropout with a given mask (odd length: the vector tail too) ---- */
static void test_dropout(void)
{
    enum { n = 37 };
    float x[n], out[n], dx[n], want_out[n], want_dx[n];
    uint8_t keep[n];
    for (int i = 0; i < n; i++) x[i] = frand(), keep[i] = (uint8_t)(i % 3 != 0), dx[i] = 1.0f;
    float scale = 1.0f / 0.9f;
    op_dropout_forward(out, x, keep, scale, n);
    op_dropout_backward(dx, x, keep, scale, n);
    for (int i = 0; i < n; i++) want_out[i] = keep[i] ? x[i] * scale : 0.0f, want_dx[i] = 1.0f + want_out[i];
    /* equal as values (tolerance 0): a dropped element may be -0 */
    int ok = check_close("dropout forward", out, want_out, n, 0, 0);
    ok &= check_close("dropout backward", dx, want_dx, n, 0, 0);
    printf("%-28s %s\n", "dropout forward/backward", ok ? "ok" : "FAIL");
}

/* ---- generation: op_rope_at and op_attention_cached against the training kernels ---- */
/* max |got - want| / max |want| < tol (plain max |got - want| where want is all zero) */
static void close_to_max(const char *name, const float *got, const float *want, size_t n, double tol)
{
    double s = check_max_abs(want, n), scale = s > 0 ? s : 1;
    int ok = check_close(name, got, want, n, tol * scale, 0);
    printf("%-28s rel err %.2e %s\n", name, check_last()->max_abs / scale, ok ? "ok" : "FAIL");
}

static void test_generation(void)
{
    int T = 7, H = 4, KVH = 2, hd = 8;
    size_t nq = (size_t)T * H * hd, nk = (size_t)T * KVH * hd;
    float inv[4];
    for (int i = 0; i < 4; i++) inv[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hd);
    /* RoPE: token t at position t rotated one at a time, as the whole sequence at once */
    float *x = rnd(nq, 1), *y = keep(malloc(nq * sizeof(float))), *cos_t = zeros((size_t)T * hd / 2),
          *sin_t = zeros((size_t)T * hd / 2);
    memcpy(y, x, nq * sizeof(float));
    op_rope_tables(cos_t, sin_t, inv, T, hd);
    op_rope_forward(x, cos_t, sin_t, NULL, 1, T, H, hd);
    int pos[7];
    for (int t = 0; t < T; t++) pos[t] = t;
    op_rope_at(y, pos, inv, T, H, hd);
    close_to_max("rope_at vs rope_forward", y, x, nq, 1e-6);
    /* attention: each token against the cache of the rows up to it, as the causal forward */
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *full = zeros(nq), *att = zeros((size_t)H * T * T);
    float *cached = zeros(nq), *scores = zeros((size_t)T);
    op_attention_forward(full, att, q, k, v, NULL, 1, T, H, KVH, hd);
    /* one sequence's cache [2, 1, T, kd], written row by row as generation writes it */
    int seq[7] = {0}, kd = KVH * hd;
    float *cache = zeros(2 * nk);
    for (int t = 0; t < T; t++) op_kv_write(cache, k + (size_t)t * kd, v + (size_t)t * kd, seq, pos + t, 1, 1, T, kd);
    CHECK(!memcmp(cache, k, nk * sizeof(float)) && !memcmp(cache + nk, v, nk * sizeof(float)),
          "kv_write: the cache holds the keys, then the values, by position");
    op_attention_cached(cached, scores, q, cache, seq, pos, T, 1, T, H, KVH, hd);
    close_to_max("attention_cached vs forward", cached, full, nq, 1e-6);
}

/* ---- greedy decoding and clipping ------------------------------------------------- */
static void test_argmax_norm(void)
{
    /* the first maximum, as torch.argmax; NaN-free rows */
    float x[12] = {1, 3, 3, 2, -1, -5, -1, -9, 0, 0, 0, 0};
    int32_t got[3];
    op_argmax(got, x, 3, 4);
    CHECK(got[0] == 1 && got[1] == 0 && got[2] == 0, "argmax: %d %d %d, want 1 0 0", got[0], got[1], got[2]);
    /* ATen's 8-lane norm: against the same lanes written out here, bit for bit */
    size_t n = 37;
    float *g = rnd(n, 3), acc[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int j = 0; j < 8; j++) acc[j] = fmaf(g[d + j], g[d + j], acc[j]);
    float s = acc[0];
    for (int j = 1; j < 8; j++) s = s + acc[j];
    for (; d < n; d++) s = fmaf(g[d], g[d], s);
    float want = sqrtf(s), norm = op_norm2(g, n);
    check_equal_f32("norm2 (8 lanes, then the tail)", &norm, &want, 1);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    CHECK(fabs(norm - sqrt(ref)) <= 1e-6 * sqrt(ref), "norm2 %.9g vs %.9g in double", norm, sqrt(ref));
    float h[3] = {1.5f, -2.0f, 0.25f}, hw[3] = {0.75f, -1.0f, 0.125f};
    op_scale(h, 0.5f, 3);
    check_equal_f32("scale", h, hw, 3);
}

/* ---- threads: the same bits on one thread and on three ------------------------------ */
static void test_threads(void)
{
    int N = 300, C = 257, V = 1001, B = 3, T = 100, H = 4, hd = 16;   /* above PAR_MIN, odd sizes */
    size_t nc = (size_t)N * C, nv = (size_t)N * V;
    float *x = rnd(nc, 1), *w = rnd((size_t)C, 1), *dy = rnd(nc, 1), *g = rnd(nc, 2), *u = rnd(nc, 1);
    float *logits = rnd(nv, 3), *rope_x = rnd((size_t)B * T * H * hd, 1);
    int32_t *tg = keep(malloc((size_t)N * sizeof *tg));
    uint8_t *km = keep(malloc(nc));
    for (int i = 0; i < N; i++) tg[i] = i % 7 == 3 ? -100 : (i * 37) % V;
    for (size_t i = 0; i < nc; i++) km[i] = (uint8_t)(i % 3 != 0);
    float cos_t[100 * 8], sin_t[100 * 8], inv[8];
    for (int i = 0; i < 8; i++) inv[i] = 1.0f / powf(10000.0f, (float)(2 * i) / 16);
    op_rope_tables(cos_t, sin_t, inv, T, hd);
    float *out[2][9];
    double loss[2];
    for (int r = 0; r < 2; r++) {
        /* the OpenMP pool itself, which OpenBLAS's products share */
        omp_set_num_threads(r ? 3 : 1);
        int team = 0;
#pragma omp parallel
        {
#pragma omp single
            team = omp_get_num_threads();
        }
        CHECK(team == (r ? 3 : 1), "threads: the pool has %d threads, wanted %d", team, r ? 3 : 1);
        for (int k = 0; k < 9; k++) out[r][k] = zeros(k == 3 || k == 4 ? nv : k == 8 ? (size_t)B * T * H * hd : nc);
        float rstd[300];
        op_rmsnorm_forward(out[r][0], rstd, x, w, N, C, 1e-5f);
        float *dw = zeros((size_t)C);
        op_rmsnorm_backward(out[r][1], dw, dy, x, w, rstd, N, C);
        memcpy(out[r][2], dw, (size_t)C * sizeof(float));
        loss[r] = op_cross_entropy_forward(out[r][3], logits, tg, N, V);
        op_cross_entropy_backward(out[r][4], logits, tg, N, V, 0.01f);
        op_swiglu_forward(out[r][5], g, u, N, C);
        op_swiglu_backward(out[r][6], out[r][7], dy, g, u, N, C);
        op_dropout_backward(out[r][7], dy, km, 1.25f, nc);
        memcpy(out[r][8], rope_x, (size_t)B * T * H * hd * sizeof(float));
        op_rope_forward(out[r][8], cos_t, sin_t, NULL, B, T, H, hd);
    }
    omp_set_num_threads(1);
    static const char *names[9] = {"rmsnorm", "rmsnorm dx", "rmsnorm dw", "ce losses", "ce dlogits", "swiglu",
                                   "swiglu dgate", "swiglu dup + dropout", "rope"};
    for (int k = 0; k < 9; k++) {
        size_t n = k == 2 ? (size_t)C : k == 3 || k == 4 ? nv : k == 8 ? (size_t)B * T * H * hd : nc;
        char what[64];
        snprintf(what, sizeof what, "%s: 1 thread vs 3", names[k]);
        check_equal_f32(what, out[1][k], out[0][k], n);
    }
    CHECK(loss[0] == loss[1], "cross-entropy sum: %.17g on 1 thread, %.17g on 3", loss[0], loss[1]);

    /* the fp32 attention: its (sequence, KV head) groups on threads, packed rows, GQA */
    int KVH = 2, T2 = 37;
    size_t nq = (size_t)B * T2 * H * hd, nk = (size_t)B * T2 * KVH * hd;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1), *a[2][5];
    int32_t *start = keep(malloc((size_t)B * T2 * sizeof *start));
    for (int i = 0; i < B * T2; i++) start[i] = i % T2 < 20 ? 0 : 20;   /* two documents a row */
    for (int r = 0; r < 2; r++) {
        op_set_threads(r ? 3 : 1);
        float *att = zeros((size_t)B * H * T2);
        a[r][0] = zeros(nq), a[r][1] = zeros(nq), a[r][2] = zeros(nk), a[r][3] = zeros(nk);
        a[r][4] = att;
        op_attention_forward(a[r][0], att, q, k, v, start, B, T2, H, KVH, hd);
        op_attention_backward(a[r][1], a[r][2], a[r][3], dout, a[r][0], att, q, k, v, start, B, T2, H, KVH, hd);
    }
    op_set_threads(1);
    static const char *att_names[5] = {"attention out", "attention dq", "attention dk", "attention dv",
                                       "attention log-sum-exp"};
    for (int i = 0; i < 5; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s: 1 thread vs 3", att_names[i]);
        check_equal_f32(what, a[1][i], a[0][i], i == 0 || i == 1 ? nq : i < 4 ? nk : (size_t)B * H * T2);
    }
}

/* ---- bf16 products (gemm_bf16.c) ---------------------------------------------------- */

static float bf16_round(float x)
{
    uint16_t b;
    op_to_bf16(&b, &x, 1);
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* max over C [M, N] of |got - (alpha A B + beta c0)| / (sum |a b| + |beta c0|), the
 * product of the bf16-rounded operands in double; A(i, k) = A[i * ai + k * ak],
 * B(k, n) = b[k * bk + n * bn] */
static double bf16_worst(const float *got, const float *c0, const float *A, const float *b, int M, int N, int K,
                         int ai, int ak, int bk, int bn, float alpha, float beta)
{
    /* the operands rounded once (per element, the products would take minutes) */
    size_t na = (size_t)(M - 1) * ai + (size_t)(K - 1) * ak + 1, nb = (size_t)(K - 1) * bk + (size_t)(N - 1) * bn + 1;
    float *ra = keep(malloc(na * sizeof *ra)), *rb = keep(malloc(nb * sizeof *rb));
    for (size_t i = 0; i < na; i++) ra[i] = bf16_round(A[i]);
    for (size_t i = 0; i < nb; i++) rb[i] = bf16_round(b[i]);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double s = 0, a = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)ra[(size_t)i * ai + (size_t)k * ak] * rb[(size_t)k * bk + (size_t)n * bn];
                s += p, a += fabs(p);
            }
            double c = c0[(size_t)i * N + n], want = alpha * s + beta * c;
            double err = fabs(got[(size_t)i * N + n] - want) / (a * fabs(alpha) + fabs(beta * c) + 1e-30);
            worst = err > worst ? err : worst;
        }
    return worst;
}

static uint16_t *as_bf16(const float *x, size_t n)
{
    uint16_t *b = keep(malloc(n * sizeof *b));
    op_to_bf16(b, x, n);
    return b;
}

/* got against the product of the bf16-rounded operands in double: fp32 accumulation
 * leaves at most a few units of fp32 rounding of sum |a b| per element */
static void bf16_case(int N, int IC, int OC, float alpha, float beta)
{
    float *x = rnd((size_t)N * IC, 1), *w = rnd((size_t)OC * IC, 1), *y = rnd((size_t)N * OC, 1);
    float *y0 = keep(malloc((size_t)N * OC * sizeof(float))), *dx = rnd((size_t)N * IC, 1);
    float *dx0 = keep(malloc((size_t)N * IC * sizeof(float)));
    float *dw = rnd((size_t)OC * IC, 1), *dw0 = keep(malloc((size_t)OC * IC * sizeof(float)));
    memcpy(y0, y, (size_t)N * OC * sizeof(float));
    memcpy(dx0, dx, (size_t)N * IC * sizeof(float));
    memcpy(dw0, dw, (size_t)OC * IC * sizeof(float));
    uint16_t *x16 = as_bf16(x, (size_t)N * IC), *w16 = as_bf16(w, (size_t)OC * IC), *y16 = as_bf16(y0, (size_t)N * OC);
    float *dxf = keep(malloc((size_t)N * IC * sizeof(float)));
    memcpy(dxf, dx0, (size_t)N * IC * sizeof(float));
    int rc = op_matmul_bf16_forward(y, x16, w16, N, IC, OC, OC, alpha, beta) ||
             op_matmul_bf16_backward_input(dx, y16, w16, N, IC, OC, OC, alpha, beta) ||
             op_matmul_bf16_backward_input_f32(dxf, y0, w16, N, IC, OC, OC, alpha, beta) ||
             op_matmul_bf16_backward_weight(dw, y16, x16, N, IC, OC, alpha);
    if (!CHECK(rc == 0, "bf16 %dx%dx%d: the product did not run", N, IC, OC)) return;
    /* forward: A = x [N, IC], B(k, o) = w[o][k]; input gradient: A = y0 [N, OC], B(o, k) =
     * w[o][k]; weight gradient: A(o, n) = y0[n][o], B(n, i) = x[n][i], accumulated */
    double worst = bf16_worst(y, y0, x, w, N, OC, IC, IC, 1, 1, IC, alpha, beta);
    double worst_dx = bf16_worst(dx, dx0, y0, w, N, IC, OC, OC, 1, IC, 1, alpha, beta);
    double worst_dw = bf16_worst(dw, dw0, y0, x, OC, IC, N, 1, OC, IC, 1, alpha, 1.0f);
    /* the weight in fp32, rounded inside: the same operands, the same kernel, the same bits */
    float *yw = keep(malloc((size_t)N * OC * sizeof(float))), *dxw = keep(malloc((size_t)N * IC * sizeof(float)));
    memcpy(yw, y0, (size_t)N * OC * sizeof(float));
    memcpy(dxw, dx0, (size_t)N * IC * sizeof(float));
    CHECK(op_matmul_bf16_forward_w32(yw, x16, w, N, IC, OC, OC, alpha, beta) == 0 &&
              op_matmul_bf16_backward_input_w32(dxw, y16, w, N, IC, OC, OC, alpha, beta) == 0,
          "bf16 %dx%dx%d: a product with an fp32 weight did not run", N, IC, OC);
    CHECK(!memcmp(yw, y, (size_t)N * OC * sizeof(float)) && !memcmp(dxw, dx, (size_t)N * IC * sizeof(float)),
          "bf16 %dx%dx%d: an fp32 weight rounded inside gives other bits than its bf16 copy", N, IC, OC);
    /* dout in fp32, rounded inside: the same operands, so the same bound */
    double worst_dxf = bf16_worst(dxf, dx0, y0, w, N, IC, OC, OC, 1, IC, 1, alpha, beta);
    CHECK(worst_dxf < 64 * 0x1p-24, "bf16 %dx%dx%d: input gradient from fp32 dout: error %.3g of sum |ab|", N, IC, OC,
          worst_dxf);
    /* 2^-24 per rounding: a sum of K products rounds at most ~K times, far less in practice */
    CHECK(worst < 64 * 0x1p-24 && worst_dx < 64 * 0x1p-24 && worst_dw < 64 * 0x1p-24,
          "bf16 %dx%dx%d alpha %g beta %g: error %.3g (forward) %.3g (input gradient) %.3g (weight gradient) of "
          "sum |ab|", N, IC, OC, (double)alpha, (double)beta, worst, worst_dx, worst_dw);
    printf("bf16 %4dx%4dx%4d alpha %g beta %g: max error %.2e / %.2e / %.2e of sum |ab| (fp32 rounding 6e-8)\n", N,
           IC, OC, (double)alpha, (double)beta, worst, worst_dx, worst_dw);
}

static void bf16_attention(int B, int T, int H, int KVH, int hd, int packed)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd, na = (size_t)B * H * T;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
    float *o32 = zeros(nq), *a32 = zeros(na);
    float *dq32 = zeros(nq), *dk32 = zeros(nk), *dv32 = zeros(nk);
    int32_t *start = NULL;
    if (packed) {   /* documents of 1, 13, 29 and the rest in each row */
        start = keep(malloc((size_t)B * T * sizeof *start));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) start[(size_t)b * T + t] = t < 1 ? 0 : t < 14 ? 1 : t < 43 ? 14 : 43;
    }
    int rc = op_attention_forward(o32, a32, q, k, v, start, B, T, H, KVH, hd);
    rc |= op_attention_backward(dq32, dk32, dv32, dout, o32, a32, q, k, v, start, B, T, H, KVH, hd);
    /* on 1 thread and on 3: each (sequence, KV head) is one thread's, so the same bits */
    float *o16[2], *a16[2], *dq16[2], *dk16[2], *dv16[2];
    for (int t = 0; t < 2; t++) {
        o16[t] = zeros(nq), a16[t] = zeros(na), dq16[t] = zeros(nq), dk16[t] = zeros(nk), dv16[t] = zeros(nk);
        omp_set_num_threads(t ? 3 : 1);
        rc |= op_attention_bf16_forward(o16[t], a16[t], q, k, v, start, B, T, H, KVH, hd);
        rc |= op_attention_bf16_backward(dq16[t], dk16[t], dv16[t], dout, o16[t], a16[t], q, k, v, start, B, T, H, KVH,
                                         hd);
    }
    op_set_threads(1);
    CHECK(rc == 0, "bf16 attention: a product did not run");
    check_close("bf16 attention out", o16[0], o32, nq, 2e-2 * check_max_abs(o32, nq), 0);
    check_close("bf16 attention dq", dq16[0], dq32, nq, 2e-2 * check_max_abs(dq32, nq), 0);
    check_close("bf16 attention dk", dk16[0], dk32, nk, 2e-2 * check_max_abs(dk32, nk), 0);
    check_close("bf16 attention dv", dv16[0], dv32, nk, 2e-2 * check_max_abs(dv32, nk), 0);
    double dv_err = check_last()->max_abs / check_max_abs(dv32, nk);
    /* the log-sum-exp is fp32's up to the scores' bf16 rounding (2^-8 of |s| <~ 4) */
    check_close("bf16 attention log-sum-exp", a16[0], a32, na, 2e-2, 0);
    CHECK(!memcmp(o16[0], o16[1], nq * 4) && !memcmp(a16[0], a16[1], na * 4) && !memcmp(dq16[0], dq16[1], nq * 4) &&
              !memcmp(dk16[0], dk16[1], nk * 4) && !memcmp(dv16[0], dv16[1], nk * 4),
          "bf16 attention T %d: 1 and 3 threads differ", T);
    if (op_isa_current() < OP_ISA_AVX512_BF16)   /* no vdpbf16ps: the fp32 attention itself */
        CHECK(!memcmp(o16[0], o32, nq * 4) && !memcmp(dq16[0], dq32, nq * 4) && !memcmp(dk16[0], dk32, nk * 4),
              "bf16 attention on %s: not the fp32 attention's bits", op_isa_name(op_isa_current()));
    printf("bf16 attention (%s) B %d T %d H %d/%d hd %d%s vs fp32: max |diff| / max |fp32| of dv %.2e\n",
           op_isa_name(op_isa_current()), B, T, H, KVH, hd, packed ? " packed" : "", dv_err);
}

static int test_bf16(void)
{
    op_isa isa = op_isa_init(0);
    if (!op_bf16_available()) {
        check_skip("bf16 products: this CPU has %s, and they need AVX-512", op_isa_name(isa));
        return 0;
    }
    printf("bf16 products on %s\n", op_isa_name(isa));
    bf16_case(37, 45, 29, 1.0f, 0.0f);      /* odd sizes: every tail */
    bf16_case(64, 128, 96, 0.5f, 1.0f);     /* alpha and an accumulating beta, as LoRA's second product */
    bf16_case(17, 1024, 16, 1.0f, 0.0f);    /* a LoRA-like thin output (lora_A) */
    bf16_case(33, 16, 300, 2.0f, 1.0f);     /* a thin input (lora_B): its weight gradient goes transposed */
    /* on AMX: several sweeps of A's rows (K 2048 keeps 128 rows in L2), the B panels split
     * between threads, tails in every dimension */
    bf16_case(300, 2048, 70, 1.0f, 0.0f);
    bf16_case(45, 600, 1100, 0.5f, 1.0f);
    /* each block of C is one thread's whole sum: the same bits on any number of threads,
     * split by B's panels (N 100) or, with fewer panels than threads, by rows (N 20) */
    for (int n = 20; n <= 100; n += 80) {
        int M = 200, K = n == 20 ? 320 : 300;   /* N 20: A read in place (K a multiple of 32) */
        uint16_t *a16 = as_bf16(rnd((size_t)M * K, 1), (size_t)M * K), *b16 = as_bf16(rnd((size_t)n * K, 1), (size_t)n * K);
        float *c[2] = {zeros((size_t)M * n), zeros((size_t)M * n)};
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t ? 3 : 1);
            CHECK(op_matmul_bf16_forward(c[t], a16, b16, M, K, n, n, 1.0f, 0.0f) == 0, "bf16 product on %d threads",
                  t ? 3 : 1);
        }
        CHECK(!memcmp(c[0], c[1], (size_t)M * n * sizeof(float)), "bf16 %dx%dx%d: 1 and 3 threads differ", M, K, n);
        op_set_threads(1);
    }
    if (isa >= OP_ISA_AMX_BF16) {   /* and oneDNN's matmul, which AVX512-BF16 CPUs run */
        op_isa_init(OP_ISA_AVX512_BF16);
        printf("bf16 products on %s\n", op_isa_name(op_isa_current()));
        bf16_case(37, 45, 29, 1.0f, 0.0f);
        bf16_case(64, 128, 96, 0.5f, 1.0f);
        bf16_case(33, 16, 300, 2.0f, 1.0f);
        op_isa_init(0);
    }
    /* the attention with bf16 products against the fp32 one: within bf16's rounding of
     * the operands (2^-8 relative), relative to each output's largest value; one block
     * of rows, then several with tails, a head size off the vector width and packed
     * documents */
    bf16_attention(2, 23, 4, 2, 16, 0);
    bf16_attention(2, 70, 6, 2, 24, 1);
    bf16_attention(1, 150, 4, 1, 64, 1);   /* several query and key blocks, the last of each short */
    if (isa >= OP_ISA_AMX_BF16) {   /* and the vdpbf16ps products of AVX512-BF16 machines */
        op_isa_init(OP_ISA_AVX512_BF16);
        bf16_attention(2, 70, 6, 2, 24, 1);
        bf16_attention(1, 150, 4, 1, 64, 1);
        op_isa_init(0);
    }
    if (isa >= OP_ISA_AVX512_BF16) {   /* and AVX-512 machines without BF16: the fp32 attention */
        op_isa_init(OP_ISA_AVX512);
        bf16_attention(2, 70, 6, 2, 24, 1);
        op_isa_init(0);
    }
    /* the 16-lane conversion gives the scalar rounding's bits: ties, odd and even, NaN,
     * infinities, subnormals, and a tail */
    enum { NV = 67 };
    float vin[NV];
    uint16_t vout[NV], sout[NV];
    for (int i = 0; i < NV; i++) {
        uint32_t u = 0x3f800000u + (uint32_t)i * 0x8000u + (i % 3 ? 0x8000u : 0x7fffu);   /* near the ties */
        if (i == 5) u = 0x7fc00001u;                                                        /* NaN */
        if (i == 6) u = 0xff800000u;                                                        /* -inf */
        if (i == 7) u = 0x00000801u;                                                        /* subnormal */
        if (i == 8) u = 0x7f7fffffu;                                                        /* FLT_MAX: to inf */
        memcpy(&vin[i], &u, 4);
    }
    op_to_bf16(vout, vin, NV);
    op_isa saved = op_isa_current();
    op_isa_init(OP_ISA_AVX2);   /* the scalar path */
    op_to_bf16(sout, vin, NV);
    op_isa_init(saved);
    CHECK(!memcmp(vout, sout, sizeof vout), "to_bf16: the 16-lane conversion differs from the scalar one");
    /* round to nearest even, and NaN stays NaN */
    float r[4] = {1.0f + 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-16f, -3.0f, NAN};
    uint16_t b[4];
    op_to_bf16(b, r, 4);
    CHECK(b[0] == 0x3f80 && b[1] == 0x3f81 && b[2] == 0xc040 && (b[3] & 0x7fc0) == 0x7fc0,
          "to_bf16: %04x %04x %04x %04x", b[0], b[1], b[2], b[3]);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "bf16")) {   /* its own ctest entry: skipped where the CPU cannot */
        CHECK_RUN(test_bf16());
        for (int i = 0; i < nowned; i++) free(owned[i]);
        return check_summary("kernels bf16");
    }
    CHECK_RUN(test_rmsnorm());
    CHECK_RUN(test_matmul());
    CHECK_RUN(test_embedding());
    CHECK_RUN(test_rope());
    CHECK_RUN(test_attention());
    CHECK_RUN(test_attention_blocks());
    CHECK_RUN(test_swiglu());
    CHECK_RUN(test_cross_entropy());
    CHECK_RUN(test_dropout());
    CHECK_RUN(test_generation());
    CHECK_RUN(test_argmax_norm());
    CHECK_RUN(test_threads());
    for (int i = 0; i < nowned; i++) free(owned[i]);
    return check_summary("kernels");
}
