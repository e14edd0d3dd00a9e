/* cpu.c — the CPU backend: the table of backend.h over kernels/cpu (the only file of the
 * core that includes ops.h). Memory is host memory, so upload, download and copy are
 * memcpy; ops run at once, so sync has nothing to report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "err.h"
#include "isa.h"
#include "ops.h"

static void *cpu_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) return NULL;
    memset(p, 0, bytes ? bytes : 1);
    return p;
}

static void cpu_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void cpu_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (bytes) memmove(dst, src, bytes);
}

static void cpu_zero(void *ctx, void *p, size_t bytes)
{
    (void)ctx;
    if (bytes) memset(p, 0, bytes);
}

static void cpu_gather_rows(void *ctx, float *dst, const float *src, const int32_t *rows, int n, int C)
{
    (void)ctx;
    for (int k = 0; k < n; k++) memcpy(dst + (size_t)k * C, src + (size_t)rows[k] * C, (size_t)C * sizeof(float));
}

static void cpu_scatter_rows(void *ctx, float *dst, const float *src, const int32_t *rows, int n, int C)
{
    (void)ctx;
    for (int k = 0; k < n; k++) memcpy(dst + (size_t)rows[k] * C, src + (size_t)k * C, (size_t)C * sizeof(float));
}

/* the first failure since the last sync (ops run at once; only the bf16 products can fail) */
static const char *failed;

static int cpu_sync(void *ctx, hone_err *err)
{
    (void)ctx;
    const char *why = failed;
    failed = NULL;
    return why ? hone_errf(err, HONE_ENOMEM, "cpu backend: %s", why) : 0;
}

static int cpu_has_bf16(void *ctx)
{
    (void)ctx;
    return op_bf16_available();
}

/* an op that can fail: its failure kept for sync */
#define CHECKED(name, params, args, what)      \
    static void cpu_##name params              \
    {                                          \
        (void)ctx;                             \
        if (op_##name args && !failed) failed = what; \
    }
#define BF16_FAILED(what) "a bf16 " what " could not run (out of memory, or oneDNN refused it)"
CHECKED(matmul_bf16_forward, (void *ctx, float *out, const uint16_t *x, const uint16_t *w, int N, int IC, int OC,
                              int ldo, float alpha, float beta),
        (out, x, w, N, IC, OC, ldo, alpha, beta), BF16_FAILED("product"))
CHECKED(matmul_bf16_backward_input, (void *ctx, float *dx, const uint16_t *dout, const uint16_t *w, int N, int IC,
                                     int OC, int ldd, float alpha, float beta),
        (dx, dout, w, N, IC, OC, ldd, alpha, beta), BF16_FAILED("product"))
CHECKED(matmul_bf16_forward_w32, (void *ctx, float *out, const uint16_t *x, const float *w, int N, int IC, int OC,
                                  int ldo, float alpha, float beta),
        (out, x, w, N, IC, OC, ldo, alpha, beta), BF16_FAILED("product"))
CHECKED(matmul_bf16_backward_input_w32, (void *ctx, float *dx, const uint16_t *dout, const float *w, int N, int IC,
                                         int OC, int ldd, float alpha, float beta),
        (dx, dout, w, N, IC, OC, ldd, alpha, beta), BF16_FAILED("product"))
CHECKED(matmul_bf16_backward_input_f32, (void *ctx, float *dx, const float *dout, const uint16_t *w, int N, int IC,
                                         int OC, int ldd, float alpha, float beta),
        (dx, dout, w, N, IC, OC, ldd, alpha, beta), BF16_FAILED("product"))
CHECKED(matmul_bf16_backward_weight, (void *ctx, float *dw, const uint16_t *dout, const uint16_t *x, int N, int IC,
                                      int OC, float alpha),
        (dw, dout, x, N, IC, OC, alpha), BF16_FAILED("product"))
CHECKED(attention_bf16_forward, (void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                 const int32_t *start, int B, int T, int H, int KVH, int hd),
        (out, att, q, k, v, start, B, T, H, KVH, hd), BF16_FAILED("attention product"))
CHECKED(attention_bf16_backward, (void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *out,
                                  const float *att, const float *q, const float *k, const float *v,
                                  const int32_t *start, int B, int T, int H, int KVH, int hd),
        (dq, dk, dv, dout, out, att, q, k, v, start, B, T, H, KVH, hd), BF16_FAILED("attention product"))

CHECKED(attention_forward, (void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                            const int32_t *start, int B, int T, int H, int KVH, int hd),
        (out, att, q, k, v, start, B, T, H, KVH, hd), "the attention's scratch could not be allocated (out of memory)")
CHECKED(attention_backward, (void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *out,
                             const float *att, const float *q, const float *k, const float *v, const int32_t *start,
                             int B, int T, int H, int KVH, int hd),
        (dq, dk, dv, dout, out, att, q, k, v, start, B, T, H, KVH, hd),
        "the attention's scratch could not be allocated (out of memory)")

static void cpu_set_threads(void *ctx, int n)
{
    (void)ctx;
    op_set_threads(n);
}

static void cpu_describe(void *ctx, char *buf, size_t n)
{
    (void)ctx;
    op_isa isa = op_isa_current(), top = op_isa_machine();
    snprintf(buf, n, "cpu: %s%s%s%s; fp32 products through OpenBLAS%s", op_isa_name(isa),
             isa < top ? " (HONE_CPU_ISA caps this machine's " : "", isa < top ? op_isa_name(top) : "",
             isa < top ? ")" : "", !op_bf16_available() ? ""
                                   : isa >= OP_ISA_AMX_BF16 ? ", bf16 ones on AMX tiles"
                                                            : ", bf16 ones through oneDNN");
}

static size_t cpu_att_floats(void *ctx, int B, int T, int H)
{
    (void)ctx;
    return (size_t)B * H * T;   /* the log-sum-exp of each row, in both dtypes */
}

/* the rest: the kernel itself, the context dropped */
#define FWD(name, params, args)              \
    static void cpu_##name params            \
    {                                        \
        (void)ctx;                           \
        op_##name args;                      \
    }
FWD(matmul_forward, (void *ctx, float *out, const float *x, const float *w, int N, int IC, int OC, int ldo,
                     float alpha, float beta), (out, x, w, N, IC, OC, ldo, alpha, beta))
FWD(matmul_backward_input, (void *ctx, float *dx, const float *dout, const float *w, int N, int IC, int OC, int ldd,
                            float alpha, float beta), (dx, dout, w, N, IC, OC, ldd, alpha, beta))
FWD(matmul_backward_weight, (void *ctx, float *dw, const float *dout, const float *x, int N, int IC, int OC, int ldd,
                             float alpha), (dw, dout, x, N, IC, OC, ldd, alpha))
FWD(bias_forward, (void *ctx, float *out, const float *bias, int N, int C), (out, bias, N, C))
FWD(bias_backward, (void *ctx, float *dbias, const float *dout, int N, int C), (dbias, dout, N, C))
FWD(axpy, (void *ctx, float *out, const float *x, float alpha, size_t n), (out, x, alpha, n))
FWD(embedding_forward, (void *ctx, float *out, const int32_t *ids, const float *table, int N, int C),
    (out, ids, table, N, C))
FWD(embedding_backward, (void *ctx, float *dtable, const float *dout, const int32_t *ids, int N, int C),
    (dtable, dout, ids, N, C))
FWD(rmsnorm_forward, (void *ctx, float *out, float *rstd, const float *x, const float *w, int N, int C, float eps),
    (out, rstd, x, w, N, C, eps))
FWD(rmsnorm_backward, (void *ctx, float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int N, int C), (dx, dw, dout, x, w, rstd, N, C))
FWD(rope_tables, (void *ctx, float *cos_t, float *sin_t, const float *inv_freq, int T, int hd),
    (cos_t, sin_t, inv_freq, T, hd))
FWD(rope_forward, (void *ctx, float *x, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T,
                   int H, int hd), (x, cos_t, sin_t, start, B, T, H, hd))
FWD(rope_backward, (void *ctx, float *dx, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T,
                    int H, int hd), (dx, cos_t, sin_t, start, B, T, H, hd))
FWD(rope_at, (void *ctx, float *x, const int *pos, const float *inv_freq, int N, int H, int hd),
    (x, pos, inv_freq, N, H, hd))
FWD(swiglu_forward, (void *ctx, float *out, const float *gate, const float *up, int N, int C), (out, gate, up, N, C))
FWD(swiglu_backward, (void *ctx, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                      int N, int C), (dgate, dup, dout, gate, up, N, C))
FWD(cross_entropy_backward, (void *ctx, float *dlogits, const float *logits, const int32_t *targets, int N, int V,
                             float scale), (dlogits, logits, targets, N, V, scale))
FWD(dropout_forward, (void *ctx, float *out, const float *x, const uint8_t *keep, float scale, size_t n),
    (out, x, keep, scale, n))
FWD(dropout_backward, (void *ctx, float *dx, const float *dout, const uint8_t *keep, float scale, size_t n),
    (dx, dout, keep, scale, n))
FWD(kv_write, (void *ctx, float *cache, const float *k, const float *v, const int *seq, const int *pos, int N,
               int nseq, int maxlen, int kd), (cache, k, v, seq, pos, N, nseq, maxlen, kd))
FWD(attention_cached, (void *ctx, float *out, float *scores, const float *q, const float *cache, const int *seq,
                       const int *pos, int N, int nseq, int maxlen, int H, int KVH, int hd),
    (out, scores, q, cache, seq, pos, N, nseq, maxlen, H, KVH, hd))
FWD(argmax, (void *ctx, int32_t *out, const float *x, int N, int V), (out, x, N, V))
FWD(scale, (void *ctx, float *x, float s, size_t n), (x, s, n))
FWD(to_bf16, (void *ctx, uint16_t *out, const float *x, size_t n), (out, x, n))
FWD(dropout_mask, (void *ctx, uint8_t *keep, size_t n, float p, uint64_t seed, uint64_t stream, uint64_t index0),
    (keep, n, p, seed, stream, index0))
FWD(uniform_noise, (void *ctx, float *x, size_t n, float mag, uint64_t seed, uint64_t stream, uint64_t index0),
    (x, n, mag, seed, stream, index0))
#undef FWD

static double cpu_cross_entropy_forward(void *ctx, float *losses, const float *logits, const int32_t *targets, int N,
                                        int V)
{
    (void)ctx;
    return op_cross_entropy_forward(losses, logits, targets, N, V);
}

static float cpu_norm2(void *ctx, const float *x, size_t n)
{
    (void)ctx;
    return op_norm2(x, n);
}

static const hone_backend_ops cpu_ops = {
    .name = "cpu", .host_memory = 1,
    .alloc = cpu_alloc, .free = cpu_free, .upload = cpu_copy, .download = cpu_copy, .copy = cpu_copy,
    .zero = cpu_zero, .gather_rows = cpu_gather_rows, .scatter_rows = cpu_scatter_rows, .sync = cpu_sync,
    .set_threads = cpu_set_threads, .describe = cpu_describe,
    .matmul_forward = cpu_matmul_forward, .matmul_backward_input = cpu_matmul_backward_input,
    .matmul_backward_weight = cpu_matmul_backward_weight, .has_bf16 = cpu_has_bf16,
    .to_bf16 = cpu_to_bf16, .matmul_bf16_forward = cpu_matmul_bf16_forward,
    .matmul_bf16_backward_input = cpu_matmul_bf16_backward_input,
    .matmul_bf16_backward_input_f32 = cpu_matmul_bf16_backward_input_f32,
    .matmul_bf16_forward_w32 = cpu_matmul_bf16_forward_w32,
    .matmul_bf16_backward_input_w32 = cpu_matmul_bf16_backward_input_w32,
    .matmul_bf16_backward_weight = cpu_matmul_bf16_backward_weight,
    .attention_bf16_forward = cpu_attention_bf16_forward, .attention_bf16_backward = cpu_attention_bf16_backward,
    .bias_forward = cpu_bias_forward,
    .bias_backward = cpu_bias_backward, .axpy = cpu_axpy,
    .embedding_forward = cpu_embedding_forward, .embedding_backward = cpu_embedding_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward, .rmsnorm_backward = cpu_rmsnorm_backward,
    .rope_tables = cpu_rope_tables, .rope_forward = cpu_rope_forward, .rope_backward = cpu_rope_backward,
    .rope_at = cpu_rope_at, .att_floats = cpu_att_floats, .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward, .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward, .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward, .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward, .dropout_mask = cpu_dropout_mask,
    .uniform_noise = cpu_uniform_noise, .kv_write = cpu_kv_write, .attention_cached = cpu_attention_cached,
    .argmax = cpu_argmax, .norm2 = cpu_norm2, .scale = cpu_scale,
};

static const hone_backend cpu_backend = {.ops = &cpu_ops, .ctx = NULL};

const hone_backend *hone_backend_cpu(void)
{
    return &cpu_backend;
}

/* HONE_CPU_ISA, or 0 (no cap) */
static int isa_cap(op_isa *cap, hone_err *err)
{
    const char *s = getenv("HONE_CPU_ISA");
    *cap = 0;
    if (!s || !*s) return 0;
    for (op_isa i = OP_ISA_AVX2; i <= OP_ISA_AMX_BF16; i++)
        if (!strcmp(s, op_isa_name(i))) {
            *cap = i;
            return 0;
        }
    return hone_errf(err, HONE_EINVAL, "HONE_CPU_ISA=%s: expected avx2, avx512, avx512_bf16 or amx_bf16", s);
}

int hone_backend_for(const char *device, const hone_backend **out, hone_err *err)
{
    *out = NULL;
    if (!device || !strcmp(device, "cpu") || !strcmp(device, "auto")) {
        op_isa cap;
        int rc = isa_cap(&cap, err);
        if (rc) return rc;
        op_isa_init(cap);
        *out = &cpu_backend;
        return 0;
    }
    if (!strcmp(device, "cuda"))
        return hone_errf(err, HONE_EUNSUPPORTED, "device = \"cuda\": the CUDA backend is not built yet; use \"cpu\"");
    return hone_errf(err, HONE_EINVAL, "device = \"%s\": not a device hone knows (cpu, cuda, auto)", device);
}
