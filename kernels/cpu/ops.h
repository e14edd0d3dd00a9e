/* ops.h — the CPU kernels: forward / backward pairs in fp32.
 *
 * Pure math on pointers and sizes: no Lua, files, runs or plugins. Arguments go outputs,
 * inputs, weights, sizes; gradients are prefixed d; backward kernels accumulate (+=) into
 * weight gradients and write input gradients unless noted. Shapes are row-major.
 * B = batch, T = sequence, C = channels, N = rows (B*T).
 */
#ifndef HONE_OPS_H
#define HONE_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Linear layer y = alpha x W^T + beta y: through OpenBLAS sgemm. ld* are row strides
 * (= OC for a whole output; larger when writing a column tile of a wider output). */
/* out: [N, ldo] (columns [0, OC))  x: [N, IC]  w: [OC, IC] */
void op_matmul_forward(float *out, const float *x, const float *w, int N, int IC, int OC, int ldo, float alpha,
                       float beta);
/* dx: [N, IC] = alpha dout W + beta dx   dout: [N, ldd] (columns [0, OC))  w: [OC, IC] */
void op_matmul_backward_input(float *dx, const float *dout, const float *w, int N, int IC, int OC, int ldd,
                              float alpha, float beta);
/* dw: [OC, IC] += alpha dout^T x   dout: [N, ldd]  x: [N, IC] */
void op_matmul_backward_weight(float *dw, const float *dout, const float *x, int N, int IC, int OC, int ldd,
                               float alpha);

/* out: [N, C]  bias: [C]   out += bias (per row) */
void op_bias_forward(float *out, const float *bias, int N, int C);
/* dbias: [C] += column sums of dout: [N, C] */
void op_bias_backward(float *dbias, const float *dout, int N, int C);

/* out: [N, C]  ids: [N]  table: [V, C] */
void op_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C);
/* dtable: [V, C] +=  dout: [N, C]  ids: [N] */
void op_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C);

/* RMSNorm as HF: x * rsqrt(mean(x^2) + eps) * w.
 * out: [N, C]  rstd: [N] (saved)  x: [N, C]  w: [C] */
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
/* dx: [N, C] (+=)  dw: [C] (+=, may be NULL)  dout: [N, C]  x: [N, C]  w: [C]  rstd: [N] */
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int C);

/* RoPE tables, HF half-split convention, as transformers computes them in fp32.
 * cos, sin: [T, hd/2]; positions 0..T-1; inv_freq: [hd/2] (after any rope scaling) */
void op_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int hd);
/* in place on x: [B, T, H, hd]  cos, sin: [T, hd/2]  (x' = x cos + rotate_half(x) sin)
 * start: [B, T] the row index where each position's document begins (packed rows: the
 * position is t - start), or NULL for one document per row */
void op_rope_forward(float *x, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T, int H,
                     int hd);
/* in place on dx: [B, T, H, hd]: the transpose rotation */
void op_rope_backward(float *dx, const float *cos_t, const float *sin_t, const int32_t *start, int B, int T, int H,
                      int hd);

/* RoPE at explicit positions (generation): x: [N, H, hd] in place, pos: [N] */
void op_rope_at(float *x, const int *pos, const float *inv_freq, int N, int H, int hd);

/* Causal attention with grouped KV heads (query head h reads KV head h / (H / KVH)),
 * fp32, flash style (attention.c): the probabilities are never stored.
 * out: [B, T, H, hd]  lse: [B, H, T] (each row's log-sum-exp, saved for the backward)
 * q: [B, T, H, hd]  k, v: [B, T, KVH, hd]  start: [B, T] or NULL: position t attends to
 * start[t] .. t only (packed documents never see each other).
 * 0, or -1 when its scratch could not be allocated. */
int op_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int32_t *start, int B, int T, int H, int KVH, int hd);
/* dq: [B, T, H, hd] (written)  dk, dv: [B, T, KVH, hd] (written)  dout: [B, T, H, hd]
 * out, lse: the forward's; q, k, v, start as in forward */
int op_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                          const float *q, const float *k, const float *v, const int32_t *start, int B, int T, int H,
                          int KVH, int hd);

/* The KV cache of generation: cache [2, nseq, maxlen, kd] (keys, then values; kd =
 * KVH*hd). kv_write puts row i's k and v at (seq[i], pos[i]).  k, v: [N, kd] */
void op_kv_write(float *cache, const float *k, const float *v, const int *seq, const int *pos, int N, int nseq,
                 int maxlen, int kd);
/* Attention of N single tokens against their sequences' cached keys and values: token i
 * sits at position pos[i] of sequence seq[i] and attends to its rows 0..pos[i].
 * out, q: [N, H*hd]  cache: as above  scores: [max pos + 1] scratch */
void op_attention_cached(float *out, float *scores, const float *q, const float *cache, const int *seq,
                         const int *pos, int N, int nseq, int maxlen, int H, int KVH, int hd);

/* out[i] = the first index of row i's maximum (torch.argmax).  x: [N, V] */
void op_argmax(int32_t *out, const float *x, int N, int V);
/* ATen's vectorized last-dim 2-norm of x[n] on an AVX2 build: 8 float lanes of fused
 * multiply-adds, the lanes summed in order, the tail added one by one, sqrt */
float op_norm2(const float *x, size_t n);
/* x *= s   (n elements) */
void op_scale(float *x, float s, size_t n);

/* SwiGLU: out = silu(gate) * up.  out, gate, up: [N, C] */
void op_swiglu_forward(float *out, const float *gate, const float *up, int N, int C);
/* dgate, dup: [N, C] (written)  dout, gate, up: [N, C] */
void op_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int N, int C);

/* Cross-entropy of logits against targets (-100 = ignored), numerically safe.
 * losses: [N] (0 where ignored)  logits: [N, V]  targets: [N]; returns the sum */
double op_cross_entropy_forward(float *losses, const float *logits, const int32_t *targets, int N, int V);
/* dlogits: [N, V] (written; may alias logits)  = scale * (softmax - onehot), 0 on ignored rows */
void op_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N, int V, float scale);

/* Dropout with a given keep mask, as torch: x * (keep * scale), scale = 1/(1-p) (a dropped
 * negative gives -0, a dropped inf NaN).  out, x: [n]  keep: [n] of 0/1 */
void op_dropout_forward(float *out, const float *x, const uint8_t *keep, float scale, size_t n);
/* dx += dout * (keep * scale).  dx, dout: [n]  keep: [n] of 0/1 */
void op_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float scale, size_t n);

/* the thread budget: n threads for every kernel, OpenBLAS's and oneDNN's products among
 * them, on one OpenMP team (ops.c says why) */
void op_set_threads(int n);

/* bf16 products with fp32 accumulation (gemm_bf16.c, through oneDNN) over operands
 * already rounded to bf16 (op_to_bf16), dense, with the shapes and alpha / beta of the
 * fp32 ops above (backward_weight accumulates). Available from AVX-512 on (AMX where the
 * CPU has it); 0, or -1 when the product could not run (no such ISA, out of memory). */
int op_bf16_available(void);
int op_matmul_bf16_forward(float *out, const uint16_t *x, const uint16_t *w, int N, int IC, int OC, int ldo,
                           float alpha, float beta);
int op_matmul_bf16_backward_input(float *dx, const uint16_t *dout, const uint16_t *w, int N, int IC, int OC, int ldd,
                                  float alpha, float beta);
/* backward_input with dout in fp32, rounded as it is read (lm_head's backward) */
int op_matmul_bf16_backward_input_f32(float *dx, const float *dout, const uint16_t *w, int N, int IC, int OC, int ldd,
                                      float alpha, float beta);
/* forward and backward_input with the weight in fp32, rounded as the product reads it
 * (a frozen weight just dequantized: no bf16 copy of it) */
int op_matmul_bf16_forward_w32(float *out, const uint16_t *x, const float *w, int N, int IC, int OC, int ldo,
                               float alpha, float beta);
int op_matmul_bf16_backward_input_w32(float *dx, const uint16_t *dout, const float *w, int N, int IC, int OC, int ldd,
                                      float alpha, float beta);
int op_matmul_bf16_backward_weight(float *dw, const uint16_t *dout, const uint16_t *x, int N, int IC, int OC,
                                   float alpha);
/* C [M, N] = alpha A B + beta C on AMX tiles (gemm_amx.c; CPUs with amx_bf16): A [M, K]
 * rows lda apart, B [K, N] rows ldb apart or, when tb, stored [N, K]; each operand in
 * bf16 (A16, B16) or, where that is NULL, fp32 rounded to bf16 as it is read */
int op_gemm_amx(int tb, int M, int N, int K, float alpha, const uint16_t *A16, const float *A32, int lda,
                const uint16_t *B16, const float *B32, int ldb, float beta, float *C, int ldc);
/* the attention with its products in bf16 (attention_bf16.c; the softmax and its
 * backward fp32), flash style with op_attention_forward's arguments and saved state;
 * attention.c's fp32 one where the CPU lacks AVX512-BF16 */
int op_attention_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                              const int32_t *start, int B, int T, int H, int KVH, int hd);
int op_attention_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                               const float *q, const float *k, const float *v, const int32_t *start, int B, int T,
                               int H, int KVH, int hd);
/* fp32 -> bf16 bits, round to nearest even (a NaN stays NaN) */
void op_to_bf16(uint16_t *out, const float *x, size_t n);

/* Philox4x32-10 draws (philox.c; the stream of core/base/rng.c): out[i] = draw index0 + i
 * of (seed, stream) in [0, 1); keep[i] = (draw >= p) (dropout); x[i] += (2 draw - 1) mag
 * (NEFTune) */
void op_philox_uniforms(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t index0);
void op_dropout_mask(uint8_t *keep, size_t n, float p, uint64_t seed, uint64_t stream, uint64_t index0);
void op_uniform_noise(float *x, size_t n, float mag, uint64_t seed, uint64_t stream, uint64_t index0);

/* out += alpha * x   (n elements) */
void op_axpy(float *out, const float *x, float alpha, size_t n);

#endif
