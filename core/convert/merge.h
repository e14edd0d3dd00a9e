/* merge.h — a PEFT LoRA adapter merged into its base model, as an HF model directory. */
#ifndef HONE_MERGE_H
#define HONE_MERGE_H

#include <stddef.h>

#include "hone/plugin.h"
#include "safetensors.h"

typedef struct hone_merge_info {
    size_t tensors, merged, params;   /* written, changed by the adapter, parameters */
    float scale;                      /* lora_alpha / r (or / sqrt(r) with rslora) */
} hone_merge_info;

/* base_dir (config.json + model.safetensors or shards, F32/BF16/F16) + adapter_dir
 * (adapter_config.json + adapter_model.safetensors) -> out_dir: model.safetensors in
 * `dtype` (F32 or BF16), config.json, and the tokenizer and generation files copied.
 * Refuses pre-quantized bases, DoRA and other adapters a plain merge would get wrong, and
 * an existing out_dir/model.safetensors. */
int hone_merge_adapter(const char *base_dir, const char *adapter_dir, const char *out_dir, hone_dtype dtype,
                       hone_merge_info *info, hone_err *err);

/* The tensors of a base with an adapter folded in (adapter_dir NULL: the base alone), read
 * one at a time: what both the safetensors and the GGUF exports write. */
typedef struct hone_merge_src hone_merge_src;
struct cJSON;
int hone_merge_src_open(hone_merge_src **out, const char *base_dir, const char *adapter_dir, hone_err *err);
const hone_st_set *hone_merge_src_weights(const hone_merge_src *s);
const struct cJSON *hone_merge_src_config(const hone_merge_src *s);
/* out: [numel] fp32, the base tensor plus its adapter delta if it has one */
int hone_merge_src_read(hone_merge_src *s, const char *name, float *out, hone_err *err);
void hone_merge_src_stats(const hone_merge_src *s, size_t *merged, float *scale);
void hone_merge_src_close(hone_merge_src *s);

#endif
