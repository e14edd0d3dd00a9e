/* model_impl.h — the model's internals, shared by the files of core/model only
 * (model.c: load, forward, backward; adapter.c; generate.c). */
#ifndef HONE_MODEL_IMPL_H
#define HONE_MODEL_IMPL_H

#include "backend.h"
#include "model.h"
#include "rng.h"

/* A frozen weight is dequantized into one buffer of at most TILE_FLOATS floats and
 * multiplied in one sgemm: many small tiles would make OpenBLAS repack the activations
 * for every tile, which costs more than the dequantization itself. */
#define TILE_FLOATS (64u << 20)

/* the Philox streams (rng.h) under the model's seed */
enum { HONE_STREAM_DROPOUT = 1, HONE_STREAM_NEFTUNE = 2 };

typedef struct linear {
    int in, out, id;
    int targeted;            /* has a LoRA adapter */
    size_t packed_off;       /* LoRA: the frozen weight in m->packed */
    float *w, *dw;           /* full fine-tuning: [out, in] */
    float *bias, *dbias;     /* [out] or NULL */
    float *A, *B, *dA, *dB;  /* LoRA: [r, in], [out, r]; NULL when not targeted */
    float *xa;               /* activation [N, r]: A applied to the (dropped) input */
    uint8_t *keep;           /* [N, in] dropout keep mask, or NULL */
} linear;

typedef struct layer {
    float *ln1_w, *ln2_w, *dln1_w, *dln2_w;
    linear lin[HONE_NLINEAR];
    /* activations */
    float *ln1, *rstd1, *q, *k, *v, *att, *ao, *mid, *ln2, *rstd2, *gate, *up, *sw;
} layer;

struct hone_model {
    hone_model_config cfg;
    const hone_backend *be;                   /* every op and every arena byte goes through it */
    int lora, r, rslora;
    int ckpt;                                 /* gradient checkpointing: one layer's activations */
    int eval;                                 /* no dropout (evaluation, generation) */
    int bf16;                                 /* the base's and lm_head's products in bf16 */
    size_t acts_alt;                          /* activation floats with ckpt flipped (for the report) */
    double alpha, dropout_opt;
    float scale, dropout;
    int Bcap, Tcap, B, T;
    const hone_quantizer_vt *qvt;
    void *qstate;
    hone_rng rng;                             /* the LoRA init */
    float neftune_alpha;                      /* > 0: NEFTune noise on the embeddings in training */
    uint64_t seed;                            /* dropout and NEFTune: Philox streams under it */
    uint64_t draws[2];                        /* draws made so far: dropout, NEFTune (resume keeps them) */

    float *embed, *dembed, *lm_head, *dlm_head, *norm_w, *dnorm_w;
    layer *layers;

    float *params, *grads, *frozen, *acts;   /* the arenas */
    size_t nparams, nfrozen, nacts;
    unsigned char *packed;
    size_t npacked;
    uint8_t *masks;
    hone_tensor_info *tinfo;
    size_t ntensors;
    char *names;                              /* storage for tinfo names */

    /* activations outside layers */
    float *res;                               /* [L + 1, N, C] residual stream */
    float *lnf, *rstdf, *logits;
    int32_t *targets, *ids;
    /* labelled_logits: a forward with targets computes the lm_head and loss only at the
     * positions that have a label (completion-only training masks most of them); the
     * logits and targets then hold those nsel rows, lnf_sel their final-norm rows */
    int labelled_logits, nsel;
    int32_t *sel;                             /* host: [2, Bcap * Tcap] the selected rows, their targets */
    float *lnf_sel;
    int32_t *doc_start;                       /* [B, T] where each position's document begins */
    int packed_rows;                          /* doc_start applies to the next forward */
    float *inv_freq, *cos_t, *sin_t;
    /* scratch for backward and tiles */
    float *dres, *dln, *dq, *dk, *dv, *dao, *dgate, *dup, *dsw, *dxa, *tmp, *tile;
    /* bf16 runs: each operand rounded once for the products that read it; an input
     * [N, widest] (xd16 through LoRA's dropout), an output gradient, the LoRA side's small
     * operands; head16 lm_head's copy when it is frozen (made once). A frozen weight is
     * rounded as its product reads it. */
    uint16_t *x16, *xd16, *dy16, *a16, *b16, *xa16, *dxa16, *head16;
    int head16_made;
};

/* logits[rows, vocab] = x[rows, hidden] lm_head^T, in the model's compute dtype */
void hone_head_forward(hone_model *m, float *logits, const float *x, int rows);
/* y[N, out] = the linear (base, bias, LoRA) of x[N, in]; draw: new dropout masks. In a
 * bf16 run x16 is x rounded to bf16 (the caller's, for linears that share an input), or
 * NULL to round it here. */
void hone_linear_forward(hone_model *m, linear *ln, float *y, const float *x, const uint16_t *x16, int N, int draw);

#endif
