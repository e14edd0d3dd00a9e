/* bnb4.h — bitsandbytes 4-bit linears in checkpoints: reading a linear's serialized parts
 * and writing the quant_state JSON the way bitsandbytes does. */
#ifndef HONE_BNB4_H
#define HONE_BNB4_H

#include <stddef.h>

#include "hone/plugin.h"
#include "safetensors.h"

/* finds a tensor by name across a checkpoint's files */
typedef const hone_st_tensor *(*hone_st_lookup)(void *ctx, const char *name, const hone_st_file **file);

/* name: the weight ("model.layers.0.self_attn.q_proj.weight"); pointers into the mapping */
int hone_bnb4_read(hone_bnb4 *b, hone_st_lookup look, void *ctx, const char *name, size_t rows, size_t cols,
                   hone_err *err);
/* malloc'd */
char *hone_bnb4_quant_state_json(const hone_bnb4 *b, size_t rows, size_t cols, const char *dtype);

#endif
