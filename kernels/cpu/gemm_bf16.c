/* gemm_bf16.c — bf16 matrix products with fp32 accumulation (model.compute_dtype =
 * "bf16", as bitsandbytes' bnb_4bit_compute_dtype = bfloat16): the fp32 operands are
 * rounded to bf16 (nearest even) and multiplied on AMX tiles by gemm_amx.c where the CPU
 * has them, else by oneDNN's matmul (AVX512-BF16 or AVX-512), the product landing in fp32
 * with alpha and beta applied. A oneDNN primitive is made once per shape and kept: making
 * one costs about as much as a small product.
 *
 * The model hands most products their operands in bf16 already (an activation rounded
 * once serves every product that reads it; op_to_bf16). Copies live in scratch buffers
 * grown to the largest product and kept (scratch.h), so the step loop allocates nothing
 * after its first step. One thread at a time (the model's). */
#define _DEFAULT_SOURCE   /* posix_memalign */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "isa.h"
#include "scratch.h"

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int started;                      /* start() has run */
static int broken;                       /* oneDNN could not start: every call reports it */

/* the cached primitives: one per (B's transposition, shape, alpha, beta); every operand
 * dense, A row-major */
typedef struct prim {
    int tb, M, N, K;
    float alpha, beta;
    dnnl_primitive_t p;
    dnnl_memory_t a, b, c;               /* made once; each call points them at its buffers */
} prim;
enum { MAX_PRIMS = 96 };
static prim prims[MAX_PRIMS];
static int nprims;

static void *scratch_a, *scratch_b;
static void *scratch_c, *scratch_w;
static size_t cap_a, cap_b, cap_c, cap_w;

int op_bf16_available(void)
{
    return op_isa_current() >= OP_ISA_AVX512 && !broken;
}

static int amx(void)
{
    return op_isa_current() >= OP_ISA_AMX_BF16;
}

static int start(void)
{
    if (started && (engine || amx())) return 1;
    if (broken) return 0;
    started = 1;
    if (amx()) return 1;
    /* the same level the rest of the kernels chose (HONE_CPU_ISA applies here too) */
    dnnl_set_max_cpu_isa(op_isa_current() >= OP_ISA_AVX512_BF16 ? dnnl_cpu_isa_avx512_core_bf16
                                                                : dnnl_cpu_isa_avx512_core);
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        broken = 1;
        engine = NULL;
        return 0;
    }
    return 1;
}

__attribute__((target("avx512f"))) static size_t to_bf16_16(uint16_t *out, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), bf16_round16(_mm512_loadu_si512((const void *)(x + i))));
    return i;
}

/* fp32 -> bf16, round to nearest even; a NaN stays a (quiet) NaN */
static void to_bf16_run(uint16_t *out, const float *x, size_t n)
{
    size_t done = op_isa_current() >= OP_ISA_AVX512 ? to_bf16_16(out, x, n) : 0;
    out += done, x += done, n -= done;
    for (size_t i = 0; i < n; i++) out[i] = bf16_round(x[i]);
}

/* on the thread budget in chunks of 64k (each element rounds alone: any split gives the
 * same bits) */
void op_to_bf16(uint16_t *out, const float *x, size_t n)
{
    enum { CHUNK = 65536 };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t i = c * CHUNK;
        to_bf16_run(out + i, x + i, n - i < CHUNK ? n - i : CHUNK);
    }
}

/* a stored rows x cols operand, rows ld apart, into dense bf16 */
static void to_dense(uint16_t *out, const float *x, int rows, int cols, int ld)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= 65536)
    for (int i = 0; i < rows; i++) to_bf16_run(out + (size_t)i * cols, x + (size_t)i * ld, (size_t)cols);
}

static uint16_t *grow16(void **buf, size_t *cap, size_t n)
{
    return scratch_grow(buf, cap, n * sizeof(uint16_t));
}

static float *grow_f(void **buf, size_t *cap, size_t n)
{
    return scratch_grow(buf, cap, n * sizeof(float));
}

static void prim_free(prim *q)
{
    if (q->a) dnnl_memory_destroy(q->a);
    if (q->b) dnnl_memory_destroy(q->b);
    if (q->c) dnnl_memory_destroy(q->c);
    if (q->p) dnnl_primitive_destroy(q->p);
}

static const prim *get_prim(int tb, int M, int N, int K, float alpha, float beta)
{
    for (int i = 0; i < nprims; i++) {
        const prim *q = &prims[i];
        if (q->tb == tb && q->M == M && q->N == N && q->K == K && q->alpha == alpha && q->beta == beta)
            return q;
    }
    if (nprims == MAX_PRIMS) {   /* a run's shapes are few; a bench of many recycles the oldest */
        prim_free(&prims[0]);
        memmove(prims, prims + 1, (MAX_PRIMS - 1) * sizeof *prims);
        nprims--;
    }
    prim *q = &prims[nprims];
    *q = (prim){.tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta};
    /* the dense copies: A [M, K] row-major (transposed on the way when ta), B [K, N] stored
     * [N, K] when tb, C [M, N] */
    dnnl_memory_desc_t ma, mb, mc;
    dnnl_dims_t da = {M, K}, db = {K, N}, dc = {M, N}, sc = {N, 1};
    dnnl_dims_t sa = {K, 1}, sb = {tb ? 1 : N, tb ? K : 1};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t md;
    int ok = dnnl_memory_desc_init_by_strides(&ma, 2, da, dnnl_bf16, sa) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&mb, 2, db, dnnl_bf16, sb) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&mc, 2, dc, dnnl_f32, sc) == dnnl_success &&
             dnnl_memory_create(&q->a, &ma, engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&q->b, &mb, engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&q->c, &mc, engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &ma, &mb, NULL, &mc) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && alpha != 1.0f) ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) == dnnl_success;
    if (ok && beta != 0.0f)
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum_v2(po, beta, dnnl_f32) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success &&
         dnnl_primitive_create(&q->p, pd) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        prim_free(q);
        return NULL;
    }
    nprims++;
    return q;
}

/* C [M, N] (rows ldc apart) = alpha A B + beta C over bf16 operands: A [M, K] row-major,
 * rows lda apart; B dense, [K, N] or, when tb, stored [N, K] */
static int gemm16(int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda, const uint16_t *B, float beta,
                  float *C, int ldc)
{
    if (!start()) return -1;
    if (amx()) return op_gemm_amx(tb, M, N, K, alpha, A, NULL, lda, B, NULL, tb ? K : N, beta, C, ldc);
    /* oneDNN's fast matmuls take a dense source and a dense output: a strided one (a
     * tile of a wider output, a head's columns) goes through a dense copy */
    if (lda != K) {
        uint16_t *d = grow16(&scratch_a, &cap_a, (size_t)M * K);
        if (!d) return -1;
        for (int i = 0; i < M; i++) memcpy(d + (size_t)i * K, A + (size_t)i * lda, (size_t)K * sizeof *d);
        A = d;
    }
    float *c = ldc == N ? C : grow_f(&scratch_c, &cap_c, (size_t)M * N);
    const prim *q = c ? get_prim(tb, M, N, K, alpha, beta) : NULL;
    if (!q) return -1;
    if (c != C && beta != 0.0f)
        for (int i = 0; i < M; i++) memcpy(c + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof *c);
    int ok = dnnl_memory_set_data_handle(q->a, (void *)A) == dnnl_success &&
             dnnl_memory_set_data_handle(q->b, (void *)B) == dnnl_success &&
             dnnl_memory_set_data_handle(q->c, c) == dnnl_success;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, q->a}, {DNNL_ARG_WEIGHTS, q->b}, {DNNL_ARG_DST, q->c}};
    ok = ok && dnnl_primitive_execute(q->p, stream, 3, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
    if (ok && c != C)
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, c + (size_t)i * N, (size_t)N * sizeof *c);
    return ok ? 0 : -1;
}

/* out [cols, rows] = the transpose of x [rows, cols], bf16 (16 x 16 blocks) */
static void transpose16(uint16_t *out, const uint16_t *x, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= 65536)
    for (int c0 = 0; c0 < cols; c0 += 16)
        for (int r0 = 0; r0 < rows; r0 += 16) {
            int mc = cols - c0 < 16 ? cols - c0 : 16, mr = rows - r0 < 16 ? rows - r0 : 16;
            for (int c = 0; c < mc; c++)
                for (int r = 0; r < mr; r++) out[(size_t)(c0 + c) * rows + r0 + r] = x[(size_t)(r0 + r) * cols + c0 + c];
        }
}

int op_matmul_bf16_forward(float *out, const uint16_t *x, const uint16_t *w, int N, int IC, int OC, int ldo,
                           float alpha, float beta)
{
    return gemm16(1, N, OC, IC, alpha, x, IC, w, beta, out, ldo);
}

int op_matmul_bf16_backward_input(float *dx, const uint16_t *dout, const uint16_t *w, int N, int IC, int OC, int ldd,
                                  float alpha, float beta)
{
    /* dx [N, IC] = dout [N, OC] W [OC, IC]; dout's rows are ldd apart when it is a column
     * tile of a wider output */
    return gemm16(0, N, IC, OC, alpha, dout, ldd, w, beta, dx, IC);
}

int op_matmul_bf16_backward_input_f32(float *dx, const float *dout, const uint16_t *w, int N, int IC, int OC, int ldd,
                                      float alpha, float beta)
{
    if (!start()) return -1;
    if (amx()) return op_gemm_amx(0, N, IC, OC, alpha, NULL, dout, ldd, w, NULL, IC, beta, dx, IC);
    /* oneDNN's source in bf16: rounded a block of rows (up to 16M values) at a time */
    int per = (int)((16u << 20) / (unsigned)OC);
    per = per < 1 ? 1 : per > N ? N : per;
    uint16_t *d = grow16(&scratch_a, &cap_a, (size_t)per * OC);
    if (!d) return -1;
    for (int r0 = 0; r0 < N; r0 += per) {
        int nr = N - r0 < per ? N - r0 : per;
        to_dense(d, dout + (size_t)r0 * ldd, nr, OC, ldd);
        if (gemm16(0, nr, IC, OC, alpha, d, OC, w, beta, dx + (size_t)r0 * IC, IC)) return -1;
    }
    return 0;
}

/* gemm16 with B an fp32 weight (N x K values, dense): AMX rounds it as it packs it,
 * oneDNN's path into a scratch copy */
static int gemm_w32(int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda, const float *w, float beta,
                    float *C, int ldc)
{
    if (!start()) return -1;
    if (amx()) return op_gemm_amx(tb, M, N, K, alpha, A, NULL, lda, NULL, w, tb ? K : N, beta, C, ldc);
    uint16_t *w16 = grow16(&scratch_b, &cap_b, (size_t)N * K);
    if (!w16) return -1;
    op_to_bf16(w16, w, (size_t)N * K);
    return gemm16(tb, M, N, K, alpha, A, lda, w16, beta, C, ldc);
}

int op_matmul_bf16_forward_w32(float *out, const uint16_t *x, const float *w, int N, int IC, int OC, int ldo,
                               float alpha, float beta)
{
    return gemm_w32(1, N, OC, IC, alpha, x, IC, w, beta, out, ldo);
}

int op_matmul_bf16_backward_input_w32(float *dx, const uint16_t *dout, const float *w, int N, int IC, int OC, int ldd,
                                      float alpha, float beta)
{
    return gemm_w32(0, N, IC, OC, alpha, dout, ldd, w, beta, dx, IC);
}

int op_matmul_bf16_backward_weight(float *dw, const uint16_t *dout, const uint16_t *x, int N, int IC, int OC,
                                   float alpha)
{
    /* dw [OC, IC] += alpha dout^T x. The source must be row-major, so one operand is
     * transposed: the thinner one (LoRA's r side), so the copy stays small */
    if (OC <= IC) {
        uint16_t *dt = grow16(&scratch_a, &cap_a, (size_t)N * OC);
        if (!dt) return -1;
        transpose16(dt, dout, N, OC);
        return gemm16(0, OC, IC, N, alpha, dt, N, x, 1.0f, dw, IC);
    }
    /* dw^T [IC, OC] = x^T dout, then added in transposed */
    uint16_t *xt = grow16(&scratch_a, &cap_a, (size_t)N * IC);
    float *s = grow_f(&scratch_w, &cap_w, (size_t)IC * OC);
    if (!xt || !s) return -1;
    transpose16(xt, x, N, IC);
    if (gemm16(0, IC, OC, N, alpha, xt, N, dout, 0.0f, s, OC)) return -1;
#pragma omp parallel for schedule(static) if ((size_t)IC * OC >= 65536)
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < IC; i++) dw[(size_t)o * IC + i] += s[(size_t)i * OC + o];
    return 0;
}
