/* gguf_write.h — writing GGUF v3 files as gguf-py's GGUFWriter lays them out: metadata in
 * the order added, tensor infos, data aligned to 32 bytes. Tensors are produced one at a
 * time by a callback in fp32 and stored as F32, F16 or Q8_0 (gguf-py's quantization, which
 * is ggml's reference: bit-exact). */
#ifndef HONE_GGUF_WRITE_H
#define HONE_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct hone_gguf_out hone_gguf_out;

/* fills out: [ne[1]][ne[0]] fp32 */
typedef int (*hone_gguf_fill)(void *ctx, const char *name, float *out, hone_err *err);

hone_gguf_out *hone_gguf_out_new(void);
void hone_gguf_out_free(hone_gguf_out *o);
void hone_gguf_out_str(hone_gguf_out *o, const char *key, const char *v);
void hone_gguf_out_u32(hone_gguf_out *o, const char *key, uint32_t v);
void hone_gguf_out_f32(hone_gguf_out *o, const char *key, float v);
void hone_gguf_out_bool(hone_gguf_out *o, const char *key, int v);
void hone_gguf_out_strs(hone_gguf_out *o, const char *key, const char *const *v, size_t n);
void hone_gguf_out_i32s(hone_gguf_out *o, const char *key, const int32_t *v, size_t n);
/* type: HONE_GGML_F32, F16 or Q8_0 (Q8_0 needs ne[0] % 32 == 0) */
int hone_gguf_out_tensor(hone_gguf_out *o, const char *name, uint32_t type, uint32_t ndim, const uint64_t *ne,
                         hone_gguf_fill fill, void *ctx, hone_err *err);
/* to a temp name, fsynced, renamed into place */
int hone_gguf_out_write(hone_gguf_out *o, const char *path, hone_err *err);

/* IEEE float to half, round to nearest even (numpy's astype(float16)) */
uint16_t hone_f32_to_half(float f);
/* one Q8_0 block: 32 floats -> fp16 scale + 32 int8 (34 bytes) */
void hone_q8_0_block(uint8_t *out, const float *x);

#endif
