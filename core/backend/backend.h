/* backend.h — the one way the model computes and touches its memory: a table of
 * function pointers per device (cpu now, cuda next), in the manner of ggml-backend and
 * llm.c's launchers.
 *
 * Every op of kernels/cpu/ops.h is here with the same arguments, first the backend's
 * own context; memory comes from the backend per role and moves through it (upload,
 * download, copy, zero, row gathers and scatters); generation keeps its KV cache in one
 * backend buffer addressed by (sequence, position); greedy decoding takes an argmax
 * instead of downloading logits; clipping reduces and scales on the backend. Errors
 * follow CUDA's model: ops are queued, and the first failure of any comes back from
 * sync. The model reads as before through the be_* wrappers below; only a backend's
 * own file includes its kernels.
 *
 * Pointers named "device" are the backend's memory (on the CPU, host memory); "host"
 * pointers are ordinary memory. Shapes are as ops.h writes them.
 */
#ifndef HONE_BACKEND_H
#define HONE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

typedef struct hone_backend_ops {
    const char *name;                    /* "cpu" */
    int host_memory;                     /* its memory is the host's: a loader may write it in place */

    /* memory */
    void *(*alloc)(void *ctx, size_t bytes);   /* zeroed, 64-byte aligned; NULL when out of memory */
    void (*free)(void *ctx, void *p);
    void (*upload)(void *ctx, void *device, const void *host, size_t bytes);
    void (*download)(void *ctx, void *host, const void *device, size_t bytes);
    void (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    void (*zero)(void *ctx, void *p, size_t bytes);
    /* dst[k] = src[rows[k]] and dst[rows[k]] = src[k] over rows of C floats (rows: host) */
    void (*gather_rows)(void *ctx, float *dst, const float *src, const int32_t *rows, int n, int C);
    void (*scatter_rows)(void *ctx, float *dst, const float *src, const int32_t *rows, int n, int C);
    int (*sync)(void *ctx, hone_err *err);
    void (*set_threads)(void *ctx, int n);
    /* what it runs on, for the line a run starts with ("cpu: amx_bf16 ...") */
    void (*describe)(void *ctx, char *buf, size_t n);

    /* linear algebra */
    void (*matmul_forward)(void *ctx, float *out, const float *x, const float *w, int N, int IC, int OC, int ldo,
                           float alpha, float beta);
    void (*matmul_backward_input)(void *ctx, float *dx, const float *dout, const float *w, int N, int IC, int OC,
                                  int ldd, float alpha, float beta);
    void (*matmul_backward_weight)(void *ctx, float *dw, const float *dout, const float *x, int N, int IC, int OC,
                                   int ldd, float alpha);
    /* model.compute_dtype = "bf16": operands rounded to bf16 once (to_bf16: nearest even,
     * a NaN stays NaN), then the three products above over them with fp32 accumulation
     * and output, dense operands (dout: rows ldd apart); has_bf16 says whether this
     * backend can (a failure shows at sync) */
    int (*has_bf16)(void *ctx);
    void (*to_bf16)(void *ctx, uint16_t *out, const float *x, size_t n);
    void (*matmul_bf16_forward)(void *ctx, float *out, const uint16_t *x, const uint16_t *w, int N, int IC, int OC,
                                int ldo, float alpha, float beta);
    void (*matmul_bf16_backward_input)(void *ctx, float *dx, const uint16_t *dout, const uint16_t *w, int N, int IC,
                                       int OC, int ldd, float alpha, float beta);
    void (*matmul_bf16_backward_weight)(void *ctx, float *dw, const uint16_t *dout, const uint16_t *x, int N, int IC,
                                        int OC, float alpha);
    /* forward and backward_input with the weight in fp32, rounded as the product reads it
     * (a frozen weight just dequantized needs no bf16 copy) */
    void (*matmul_bf16_forward_w32)(void *ctx, float *out, const uint16_t *x, const float *w, int N, int IC, int OC,
                                    int ldo, float alpha, float beta);
    void (*matmul_bf16_backward_input_w32)(void *ctx, float *dx, const uint16_t *dout, const float *w, int N, int IC,
                                           int OC, int ldd, float alpha, float beta);
    /* backward_input with dout in fp32, rounded as the product reads it (lm_head's:
     * the logits' gradient in bf16 would be a second logits buffer) */
    void (*matmul_bf16_backward_input_f32)(void *ctx, float *dx, const float *dout, const uint16_t *w, int N, int IC,
                                           int OC, int ldd, float alpha, float beta);
    /* the attention with its products in bf16 (the softmax and its backward in fp32) */
    void (*attention_bf16_forward)(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                   const int32_t *start, int B, int T, int H, int KVH, int hd);
    void (*attention_bf16_backward)(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *out,
                                    const float *att, const float *q, const float *k, const float *v,
                                    const int32_t *start, int B, int T, int H, int KVH, int hd);
    void (*bias_forward)(void *ctx, float *out, const float *bias, int N, int C);
    void (*bias_backward)(void *ctx, float *dbias, const float *dout, int N, int C);
    void (*axpy)(void *ctx, float *out, const float *x, float alpha, size_t n);

    /* the layers' ops */
    void (*embedding_forward)(void *ctx, float *out, const int32_t *ids, const float *table, int N, int C);
    void (*embedding_backward)(void *ctx, float *dtable, const float *dout, const int32_t *ids, int N, int C);
    void (*rmsnorm_forward)(void *ctx, float *out, float *rstd, const float *x, const float *w, int N, int C,
                            float eps);
    void (*rmsnorm_backward)(void *ctx, float *dx, float *dw, const float *dout, const float *x, const float *w,
                             const float *rstd, int N, int C);
    void (*rope_tables)(void *ctx, float *cos_t, float *sin_t, const float *inv_freq, int T, int hd);
    void (*rope_forward)(void *ctx, float *x, const float *cos_t, const float *sin_t, const int32_t *start, int B,
                         int T, int H, int hd);
    void (*rope_backward)(void *ctx, float *dx, const float *cos_t, const float *sin_t, const int32_t *start, int B,
                          int T, int H, int hd);
    void (*rope_at)(void *ctx, float *x, const int *pos, const float *inv_freq, int N, int H, int hd);
    /* the saved attention state of either dtype: `att_floats(B, T, H)` floats, the
     * backend's own layout (the CPU's attentions are flash style: a log-sum-exp per row) */
    size_t (*att_floats)(void *ctx, int B, int T, int H);
    void (*attention_forward)(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                              const int32_t *start, int B, int T, int H, int KVH, int hd);
    /* out: the forward's output; start: the forward's */
    void (*attention_backward)(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *att, const float *q, const float *k, const float *v,
                               const int32_t *start, int B, int T, int H, int KVH, int hd);
    void (*swiglu_forward)(void *ctx, float *out, const float *gate, const float *up, int N, int C);
    void (*swiglu_backward)(void *ctx, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            int N, int C);
    /* the summed loss comes back to the host (like a sync) */
    double (*cross_entropy_forward)(void *ctx, float *losses, const float *logits, const int32_t *targets, int N,
                                    int V);
    void (*cross_entropy_backward)(void *ctx, float *dlogits, const float *logits, const int32_t *targets, int N,
                                   int V, float scale);
    void (*dropout_forward)(void *ctx, float *out, const float *x, const uint8_t *keep, float scale, size_t n);
    void (*dropout_backward)(void *ctx, float *dx, const float *dout, const uint8_t *keep, float scale, size_t n);
    /* Counter-based draws (Philox4x32-10, rng.h), so every backend draws the same: draw
     * index0 + i of stream `stream` under `seed` decides element i.
     * keep[i] = (draw >= p) (dropout); x[i] += (2 draw - 1) mag (NEFTune) */
    void (*dropout_mask)(void *ctx, uint8_t *keep, size_t n, float p, uint64_t seed, uint64_t stream,
                         uint64_t index0);
    void (*uniform_noise)(void *ctx, float *x, size_t n, float mag, uint64_t seed, uint64_t stream,
                          uint64_t index0);

    /* generation: the KV cache is one buffer [2, nseq, maxlen, KVH * hd] per layer */
    void (*kv_write)(void *ctx, float *cache, const float *k, const float *v, const int *seq, const int *pos, int N,
                     int nseq, int maxlen, int kd);
    void (*attention_cached)(void *ctx, float *out, float *scores, const float *q, const float *cache,
                             const int *seq, const int *pos, int N, int nseq, int maxlen, int H, int KVH, int hd);
    /* out[i] (host) = the first index of row i's maximum, as torch.argmax */
    void (*argmax)(void *ctx, int32_t *out, const float *x, int N, int V);

    /* clipping: ATen's vectorized 2-norm of x[n] (docs/numerics.md §5.3), and x *= s */
    float (*norm2)(void *ctx, const float *x, size_t n);
    void (*scale)(void *ctx, float *x, float s, size_t n);
} hone_backend_ops;

typedef struct hone_backend {
    const hone_backend_ops *ops;
    void *ctx;
} hone_backend;

/* the CPU backend (kernels/cpu): one per process, always available, at the instruction
 * set hone_backend_for chose (AVX2 until it runs) */
const hone_backend *hone_backend_cpu(void);
/* The backend named by the experiment's `device` ("cpu", "cuda", "auto"); an error names
 * what is missing. The CPU's instruction set is chosen here, once: the best the machine
 * and OS allow, capped by HONE_CPU_ISA (avx2, avx512, avx512_bf16, amx_bf16) so a lower
 * path can be run on a machine that has a higher one. */
int hone_backend_for(const char *device, const hone_backend **out, hone_err *err);

/* ---- the wrappers the model is written with ------------------------------------------ */

#define BE(be, op, ...) ((be)->ops->op((be)->ctx, __VA_ARGS__))

static inline void *be_alloc(const hone_backend *be, size_t bytes) { return be->ops->alloc(be->ctx, bytes); }
static inline void be_free(const hone_backend *be, void *p) { be->ops->free(be->ctx, p); }
#define be_upload(be, ...) BE(be, upload, __VA_ARGS__)
#define be_download(be, ...) BE(be, download, __VA_ARGS__)
#define be_copy(be, ...) BE(be, copy, __VA_ARGS__)
#define be_zero(be, ...) BE(be, zero, __VA_ARGS__)
#define be_gather_rows(be, ...) BE(be, gather_rows, __VA_ARGS__)
#define be_scatter_rows(be, ...) BE(be, scatter_rows, __VA_ARGS__)
#define be_sync(be, ...) BE(be, sync, __VA_ARGS__)
#define be_set_threads(be, ...) BE(be, set_threads, __VA_ARGS__)
#define be_describe(be, ...) BE(be, describe, __VA_ARGS__)
#define be_matmul_forward(be, ...) BE(be, matmul_forward, __VA_ARGS__)
#define be_matmul_backward_input(be, ...) BE(be, matmul_backward_input, __VA_ARGS__)
#define be_matmul_backward_weight(be, ...) BE(be, matmul_backward_weight, __VA_ARGS__)
#define be_has_bf16(be) ((be)->ops->has_bf16((be)->ctx))
#define be_matmul_bf16_forward(be, ...) BE(be, matmul_bf16_forward, __VA_ARGS__)
#define be_matmul_bf16_backward_input(be, ...) BE(be, matmul_bf16_backward_input, __VA_ARGS__)
#define be_matmul_bf16_backward_input_f32(be, ...) BE(be, matmul_bf16_backward_input_f32, __VA_ARGS__)
#define be_matmul_bf16_forward_w32(be, ...) BE(be, matmul_bf16_forward_w32, __VA_ARGS__)
#define be_matmul_bf16_backward_input_w32(be, ...) BE(be, matmul_bf16_backward_input_w32, __VA_ARGS__)
#define be_matmul_bf16_backward_weight(be, ...) BE(be, matmul_bf16_backward_weight, __VA_ARGS__)
#define be_to_bf16(be, ...) BE(be, to_bf16, __VA_ARGS__)
#define be_attention_bf16_forward(be, ...) BE(be, attention_bf16_forward, __VA_ARGS__)
#define be_attention_bf16_backward(be, ...) BE(be, attention_bf16_backward, __VA_ARGS__)
#define be_bias_forward(be, ...) BE(be, bias_forward, __VA_ARGS__)
#define be_bias_backward(be, ...) BE(be, bias_backward, __VA_ARGS__)
#define be_axpy(be, ...) BE(be, axpy, __VA_ARGS__)
#define be_embedding_forward(be, ...) BE(be, embedding_forward, __VA_ARGS__)
#define be_embedding_backward(be, ...) BE(be, embedding_backward, __VA_ARGS__)
#define be_rmsnorm_forward(be, ...) BE(be, rmsnorm_forward, __VA_ARGS__)
#define be_rmsnorm_backward(be, ...) BE(be, rmsnorm_backward, __VA_ARGS__)
#define be_rope_tables(be, ...) BE(be, rope_tables, __VA_ARGS__)
#define be_rope_forward(be, ...) BE(be, rope_forward, __VA_ARGS__)
#define be_rope_backward(be, ...) BE(be, rope_backward, __VA_ARGS__)
#define be_rope_at(be, ...) BE(be, rope_at, __VA_ARGS__)
#define be_att_floats(be, ...) BE(be, att_floats, __VA_ARGS__)
#define be_attention_forward(be, ...) BE(be, attention_forward, __VA_ARGS__)
#define be_attention_backward(be, ...) BE(be, attention_backward, __VA_ARGS__)
#define be_swiglu_forward(be, ...) BE(be, swiglu_forward, __VA_ARGS__)
#define be_swiglu_backward(be, ...) BE(be, swiglu_backward, __VA_ARGS__)
#define be_cross_entropy_forward(be, ...) BE(be, cross_entropy_forward, __VA_ARGS__)
#define be_cross_entropy_backward(be, ...) BE(be, cross_entropy_backward, __VA_ARGS__)
#define be_dropout_forward(be, ...) BE(be, dropout_forward, __VA_ARGS__)
#define be_dropout_backward(be, ...) BE(be, dropout_backward, __VA_ARGS__)
#define be_dropout_mask(be, ...) BE(be, dropout_mask, __VA_ARGS__)
#define be_uniform_noise(be, ...) BE(be, uniform_noise, __VA_ARGS__)
#define be_kv_write(be, ...) BE(be, kv_write, __VA_ARGS__)
#define be_attention_cached(be, ...) BE(be, attention_cached, __VA_ARGS__)
#define be_argmax(be, ...) BE(be, argmax, __VA_ARGS__)
#define be_norm2(be, ...) BE(be, norm2, __VA_ARGS__)
#define be_scale(be, ...) BE(be, scale, __VA_ARGS__)

#endif
