/* model_config.h — a Hugging Face config.json for the Llama family (Llama, Mistral,
 * Qwen2), read and checked: every field hone's model uses, with transformers' defaults. */
#ifndef HONE_MODEL_CONFIG_H
#define HONE_MODEL_CONFIG_H

#include "hone/plugin.h"

typedef enum { HONE_ROPE_DEFAULT = 0, HONE_ROPE_LINEAR, HONE_ROPE_LLAMA3 } hone_rope_type;

typedef struct hone_model_config {
    char arch[64];           /* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" */
    int vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
    float rms_eps;
    double rope_theta;
    hone_rope_type rope_type;
    double rope_factor, low_freq_factor, high_freq_factor;
    int rope_orig_max;
    int tied;                /* lm_head shares embed_tokens */
    int qkv_bias;            /* q/k/v projections have biases (Qwen2, attention_bias) */
    int sliding_window;      /* 0 = full attention */
    int bos_id, eos_id;      /* -1 when the config has none */
    char prequant[8];        /* "nf4" / "fp4": a bitsandbytes 4-bit checkpoint; "" otherwise */
    int prequant_double;     /* bnb_4bit_use_double_quant */
} hone_model_config;

/* dir/config.json */
int hone_model_config_load(hone_model_config *c, const char *dir, hone_err *err);
/* parses config.json text; `path` names it in messages */
int hone_model_config_parse(hone_model_config *c, const char *json, const char *path, hone_err *err);
/* inv_freq: [head_dim / 2], in fp32 as transformers computes it, rope scaling applied */
void hone_rope_inv_freq(const hone_model_config *c, float *inv_freq);

#endif
