/* model.h — a Llama-family causal LM on the CPU: loading, forward, backward, LoRA.
 *
 * Memory is one arena per role (llm.c style): trainable parameters, their gradients,
 * frozen fp32 tensors (embeddings, norms, lm_head, biases), the quantized base linears,
 * and activations for a (batch, seq) capacity fixed at load. Nothing allocates in the
 * step. The frozen linears are read only through the quantizer's row-range dequantize,
 * per tile, so any quantizer plugin can hold the base.
 */
#ifndef HONE_MODEL_H
#define HONE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model_config.h"
#include "registry.h"

enum { HONE_Q_PROJ = 0, HONE_K_PROJ, HONE_V_PROJ, HONE_O_PROJ, HONE_GATE_PROJ, HONE_UP_PROJ, HONE_DOWN_PROJ,
       HONE_NLINEAR };
extern const char *const hone_linear_names[HONE_NLINEAR];   /* "q_proj", ... */

typedef struct hone_backend hone_backend;

typedef struct hone_model_opts {
    const hone_backend *backend;     /* where it computes (NULL: the CPU) */
    const hone_feature *quantizer;   /* how frozen linears are stored */
    const hone_opts *quantizer_opts;
    int lora;                        /* 0 = full fine-tuning (every weight trains) */
    int r;
    double alpha;
    double dropout;
    int rslora;
    unsigned targets;                /* bit i = hone_linear_names[i] gets an adapter */
    uint64_t seed;                   /* LoRA init and dropout */
    int batch, seq;                  /* activation capacity */
    int gradient_checkpointing;      /* keep layer inputs only; recompute each layer in backward */
    double neftune_alpha;            /* > 0: NEFTune (transformers' neftune_noise_alpha) */
    int compute_bf16;                /* the frozen base's, lm_head's and the attention's products in
                                      * bf16 with fp32 accumulation (bnb_4bit_compute_dtype =
                                      * bfloat16, SDPA under autocast); LoRA, norms, the softmax and
                                      * the optimizer stay fp32 */
    int labelled_logits;             /* forwards with targets compute logits only where a label is;
                                      * hone_model_logits then has those rows (training: same loss
                                      * and gradients, less lm_head work) */
} hone_model_opts;

typedef struct hone_model hone_model;

/* the backend a model computes on (clipping and optimizers reach its memory through it) */
const hone_backend *hone_model_backend(const hone_model *m);

int hone_model_load(hone_model **out, const char *dir, const hone_model_opts *o, hone_err *err);
/* the same from a config already read; dir NULL = random weights (benchmarks) */
int hone_model_create(hone_model **out, const hone_model_config *cfg, const char *dir, const hone_model_opts *o,
                      hone_err *err);
/* bytes of the arenas: trainable, frozen fp32, quantized base, activations */
void hone_model_memory(const hone_model *m, size_t *params, size_t *frozen, size_t *packed, size_t *acts);
/* activation bytes with and without gradient checkpointing */
void hone_model_activation_bytes(const hone_model *m, size_t *with_ckpt, size_t *without);
void hone_model_free(hone_model *m);
const hone_model_config *hone_model_cfg(const hone_model *m);

/* Forward for ids: [B, T] (B, T within capacity). targets: [B, T] already shifted
 * (targets[b, t] is the label of position t + 1; -100 = ignored), or NULL for logits only.
 * loss_sum: summed cross-entropy; count: targets that are not ignored. */
int hone_model_forward(hone_model *m, const int32_t *ids, const int32_t *targets, int B, int T, double *loss_sum,
                       long *count, hone_err *err);
/* Backward of loss_sum * scale from the last forward; gradients accumulate (+=). */
int hone_model_backward(hone_model *m, float scale, hone_err *err);
void hone_model_zero_grad(hone_model *m);
/* Packed rows: start [B, T] holds, for every position, the row index where its document
 * begins; attention stays inside documents and positions restart at each. Applies to the
 * forwards (and backwards) that follow, until called with NULL. */
int hone_model_set_documents(hone_model *m, const int32_t *start, int B, int T, hone_err *err);
/* eval = 1: no dropout (as model.eval() in torch); 0: training (the default) */
void hone_model_set_eval(hone_model *m, int eval);
/* where the counter-based streams of dropout [0] and NEFTune [1] stand (draws made so
 * far), for checkpoints: a resumed run continues both exactly */
void hone_model_get_draws(const hone_model *m, uint64_t out[2]);
void hone_model_set_draws(hone_model *m, const uint64_t in[2]);
/* [B, T, vocab] of the last forward; with labelled_logits and targets, [labelled positions, vocab] */
const float *hone_model_logits(const hone_model *m);
/* [B, T, hidden] of the last forward: the input of the first layer (the embeddings, with
 * NEFTune's noise when it trains) */
const float *hone_model_embedded(const hone_model *m);

/* The trainable parameters: one flat span with named views (for the optimizer and for
 * saving). LoRA names are PEFT's adapter keys; full fine-tuning uses HF's names. */
float *hone_model_params(hone_model *m, size_t *n);
float *hone_model_grads(hone_model *m, size_t *n);
const hone_tensor_info *hone_model_tensors(const hone_model *m, size_t *n);

/* alpha, dropout and rslora as configured (for adapter_config.json) */
void hone_model_lora_settings(const hone_model *m, double *alpha, double *dropout, int *rslora);

/* the hone_linear_names bit of a target module name, every bit for "all-linear", 0 for
 * a name hone does not adapt */
unsigned hone_target_mask(const char *name);

/* What a PEFT adapter_config.json says, read by one reader for loading, merging and
 * generating: peft_type LORA only; DoRA, a bias other than "none", fan_in_fan_out,
 * lora_bias and non-empty rank_pattern / alpha_pattern / modules_to_save are refused
 * with the file and key named (hone would compute something else). */
typedef struct hone_adapter_config {
    int r;
    double alpha;
    int rslora;
    unsigned targets;   /* hone_target_mask of target_modules */
} hone_adapter_config;
int hone_adapter_config_read(const char *dir, hone_adapter_config *out, hone_err *err);

/* PEFT adapters: adapter_model.safetensors + adapter_config.json */
int hone_model_save_adapter(const hone_model *m, const char *dir, const char *base_model, hone_err *err);

/* The frozen base under its HF names, in checkpoint order (embeddings, lm_head unless
 * tied, the final norm, then per layer its two norms and its seven linears, each with
 * its bias), for writers of other formats (core/convert/): an fp32 tensor comes with
 * its data, a quantized linear with its index for hone_model_export_bnb4. */
typedef struct hone_base_tensor {
    char name[128];
    int ndim;
    int64_t shape[2];
    const float *data;         /* NULL: the quantized linear `linear` */
    int linear;                /* layer * HONE_NLINEAR + which */
} hone_base_tensor;
/* fills up to max entries of out; returns how many the model has */
size_t hone_model_base_tensors(const hone_model *m, hone_base_tensor *out, size_t max);
/* 1 when the base is nf4 / fp4 through a quantizer that exports bitsandbytes' parts */
int hone_model_has_bnb4(const hone_model *m);
/* a linear's bitsandbytes parts; pointers into the model or the quantizer's tables */
int hone_model_export_bnb4(const hone_model *m, int which, hone_bnb4 *out, hone_err *err);
int hone_model_load_adapter(hone_model *m, const char *dir, hone_err *err);

typedef struct hone_gen_opts {
    int max_new_tokens;
    double temperature;      /* 0 = greedy */
    int top_k;               /* 0 = off */
    double top_p;            /* 1 = off */
    const int32_t *eos;      /* stop tokens (kept in the output) */
    int neos;
    uint64_t seed;
    /* optional: called after each new token of sequence seq (ids: its n tokens so far);
     * returning non-zero ends that sequence (stop strings) */
    int (*stop)(void *ctx, int seq, const int32_t *ids, int n);
    void *stop_ctx;
} hone_gen_opts;

/* Generates for nseq prompts of any lengths with a KV cache. out[i]: room for
 * max_new_tokens ids; out_len[i]: how many were generated (stopping at an EOS). */
int hone_model_generate(hone_model *m, const int32_t *const *prompts, const int *lens, int nseq,
                        const hone_gen_opts *o, int32_t **out, int *out_len, hone_err *err);

/* How many sequences of up to maxlen tokens (prompt + new) one hone_model_generate call
 * should take: within the activation capacity and a KV cache of at most 256 MB. Decoding
 * streams every weight once per step, so the more sequences share a step the better. */
int hone_model_generate_batch(const hone_model *m, int maxlen);

/* the labels of a batch ([B, T], HF convention) shifted into per-position targets */
void hone_shift_labels(int32_t *targets, const int32_t *labels, int B, int T);

#endif
