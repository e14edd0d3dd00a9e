/* export_gguf.h — an HF Llama / Mistral directory (and an adapter merged in) as a GGUF
 * that llama.cpp loads, laid out as llama.cpp's convert_hf_to_gguf.py writes it. */
#ifndef HONE_EXPORT_GGUF_H
#define HONE_EXPORT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

typedef struct hone_export_info {
    size_t tensors, params, merged;   /* written, their parameters, changed by the adapter */
    float scale;
} hone_export_info;

/* type: HONE_GGML_F16 or HONE_GGML_Q8_0 for the matrices (norms stay F32); adapter_dir
 * may be NULL. Never overwrites out_path. */
int hone_export_gguf(const char *model_dir, const char *adapter_dir, const char *out_path, uint32_t type,
                     hone_export_info *info, hone_err *err);

#endif
