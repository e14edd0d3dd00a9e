/* convert.h — model format conversions (`hone convert`). */
#ifndef HONE_CONVERT_H
#define HONE_CONVERT_H

#include <stddef.h>

#include "hone/plugin.h"

typedef struct hone_convert_info {
    size_t tensors, dequantized, params;
    char tokenizer[64];        /* the GGUF's tokenizer.ggml.model ("" when none) */
    int tokenizer_written;     /* tokenizer.json + tokenizer_config.json rebuilt (gpt2 vocabularies) */
} hone_convert_info;

/* A llama / mistral GGUF into an HF directory (config.json, generation_config.json,
 * model.safetensors in fp32); never overwrites an existing model.safetensors. */
int hone_convert_gguf(const char *gguf_path, const char *out_dir, hone_convert_info *info, hone_err *err);

/* only the tokenizer of a GGUF (a "gpt2" byte-level BPE vocabulary): tokenizer.json and
 * tokenizer_config.json into out_dir */
int hone_convert_gguf_tokenizer(const char *gguf_path, const char *out_dir, hone_err *err);
struct hone_gguf;
/* the same from a GGUF already open (gpt2 or llama vocabularies) */
int hone_convert_gguf_tokenizer_of(const struct hone_gguf *g, const char *out_dir, hone_err *err);

/* a tensor name between llama.cpp's and HF's conventions (to_hf: from llama.cpp's); perm
 * says whether the rows are RoPE-permuted (1: q, 2: k); 0 when it has no counterpart */
int hone_gguf_tensor_name(const char *in, int to_hf, char *out, size_t n, int *perm);

struct cJSON;
/* the tokenizer.json pre_tokenizer of a GGUF "tokenizer.ggml.pre" type; NULL if unknown */
struct cJSON *hone_gguf_pre_tokenizer(const char *pre);

#endif
