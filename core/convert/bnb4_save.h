/* bnb4_save.h — writing a bitsandbytes 4-bit checkpoint (bnb4_save.c). */
#ifndef HONE_BNB4_SAVE_H
#define HONE_BNB4_SAVE_H

#include "model.h"

/* the model's nf4 / fp4 base as a bitsandbytes checkpoint dir (model.safetensors,
 * config.json with quantization_config, the tokenizer files copied from src_dir) */
int hone_model_save_bnb4(const hone_model *m, const char *src_dir, const char *out_dir, hone_err *err);

#endif
