/* gguf.h — reading GGUF files (llama.cpp's model format, versions 2 and 3): metadata,
 * tensor infos, and tensors dequantized to fp32 (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
 * Q6_K) as gguf-py dequantizes them. The file is mapped; every size and offset is checked
 * against it, so a damaged file is an error naming what is wrong, never a crash. */
#ifndef HONE_GGUF_H
#define HONE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

enum {
    HONE_GGUF_U8 = 0, HONE_GGUF_I8, HONE_GGUF_U16, HONE_GGUF_I16, HONE_GGUF_U32, HONE_GGUF_I32, HONE_GGUF_F32,
    HONE_GGUF_BOOL, HONE_GGUF_STRING, HONE_GGUF_ARRAY, HONE_GGUF_U64, HONE_GGUF_I64, HONE_GGUF_F64,
};

/* ggml tensor types hone reads */
enum {
    HONE_GGML_F32 = 0, HONE_GGML_F16 = 1, HONE_GGML_Q4_0 = 2, HONE_GGML_Q4_1 = 3, HONE_GGML_Q8_0 = 8,
    HONE_GGML_Q4_K = 12, HONE_GGML_Q6_K = 14, HONE_GGML_BF16 = 30,
};

typedef struct hone_gguf_kv {
    char *key;
    uint32_t type;             /* HONE_GGUF_* */
    double num;                /* numbers and bools, as double */
    int64_t i;                 /* integers exactly */
    char *str;                 /* HONE_GGUF_STRING */
    uint32_t atype;            /* HONE_GGUF_ARRAY: element type */
    uint64_t n;                /* array length */
    char **strs;               /* string arrays */
    double *nums;              /* number arrays */
} hone_gguf_kv;

typedef struct hone_gguf_tensor {
    char *name;
    uint32_t ndim;
    uint64_t ne[4];            /* ne[0] is the innermost (contiguous) dimension */
    uint32_t type;             /* HONE_GGML_* */
    uint64_t numel, nbytes;
    const uint8_t *data;       /* into the mapping */
} hone_gguf_tensor;

typedef struct hone_gguf {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version, alignment;
    hone_gguf_kv *kv;
    size_t nkv;
    hone_gguf_tensor *t;
    size_t nt;
} hone_gguf;

int hone_gguf_open(hone_gguf **out, const char *path, hone_err *err);
/* parses a file held in memory (buf must outlive the result) */
int hone_gguf_parse(hone_gguf **out, const uint8_t *buf, size_t size, const char *path, hone_err *err);
void hone_gguf_close(hone_gguf *g);
const hone_gguf_kv *hone_gguf_kv_find(const hone_gguf *g, const char *key);
const hone_gguf_tensor *hone_gguf_find(const hone_gguf *g, const char *name);
const char *hone_ggml_type_name(uint32_t type);
/* out: [numel] fp32; unsupported types are an error naming the type */
int hone_gguf_to_f32(const hone_gguf *g, const hone_gguf_tensor *t, float *out, hone_err *err);

#endif
