/* safetensors.h — reading (mmap) and writing safetensors files.
 *
 * The reader trusts nothing in the file: the header size, the JSON, every dtype, shape
 * and offset are checked before any tensor byte is touched, so a truncated or lying file
 * is an error naming the file and tensor, never an out-of-bounds read.
 */
#ifndef HONE_SAFETENSORS_H
#define HONE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

typedef enum {
    HONE_DT_F32 = 0, HONE_DT_F16, HONE_DT_BF16, HONE_DT_F64,
    HONE_DT_I8, HONE_DT_U8, HONE_DT_I16, HONE_DT_U16, HONE_DT_I32, HONE_DT_U32, HONE_DT_I64, HONE_DT_U64,
    HONE_DT_BOOL,
    HONE_DT_COUNT
} hone_dtype;

#define HONE_ST_MAX_DIMS 8

typedef struct hone_st_tensor {
    char *name;
    hone_dtype dtype;
    int ndim;
    int64_t shape[HONE_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;         /* byte offsets in the data buffer */
    const void *data;            /* points into the mapping */
} hone_st_tensor;

typedef struct hone_st_file {
    char *path;
    const uint8_t *map;          /* whole file (mmap, or caller's buffer for hone_st_parse) */
    size_t size;
    int mapped;
    hone_st_tensor *t;           /* sorted by name */
    size_t n;
} hone_st_file;

const char *hone_dtype_name(hone_dtype dt);
/* IEEE half bits to float, exactly (subnormals, inf, NaN included) */
float hone_half_to_f32(uint16_t h);
size_t hone_dtype_size(hone_dtype dt);
/* float to bfloat16 bits, round to nearest even (torch's .to(torch.bfloat16)) */
uint16_t hone_f32_to_bf16(float x);

int hone_st_open(hone_st_file **out, const char *path, hone_err *err);
/* parses a file held in memory (buf must outlive the result); `path` names it in errors */
int hone_st_parse(hone_st_file **out, const uint8_t *buf, size_t size, const char *path, hone_err *err);
void hone_st_close(hone_st_file *f);
const hone_st_tensor *hone_st_find(const hone_st_file *f, const char *name);

/* Converts a tensor's elements [first, first + count) to fp32 (F32, F16, BF16, F64). */
int hone_st_to_f32(const hone_st_file *f, const hone_st_tensor *t, float *out, uint64_t first, uint64_t count,
                   hone_err *err);

/* Drops the pages of a tensor already read from the mapping (the file stays the backing
 * store), so loading a large checkpoint does not keep it all resident. */
void hone_st_release(const hone_st_file *f, const hone_st_tensor *t);

/* One tensor to write: fp32 data stored as `dtype` (F32 or BF16), or for other dtypes
 * raw bytes already in that dtype; or, with data and raw NULL, fp32 values that `fill`
 * produces when the writer reaches the tensor (so a model is written one tensor at a time). */
typedef struct hone_st_out hone_st_out;
struct hone_st_out {
    const char *name;
    hone_dtype dtype;
    int ndim;
    int64_t shape[HONE_ST_MAX_DIMS];
    const float *data;
    const void *raw;
    int (*fill)(void *ctx, const hone_st_out *t, float *out, hone_err *err);   /* out: [numel] */
    void *ctx;
};

/* Writes a safetensors file as the Rust writer lays it out (tensors by dtype size then
 * name, compact JSON, header padded to 8 bytes) with {"format": "pt"} metadata, to a temp
 * name that is fsynced and renamed into place. */
int hone_st_write(const char *path, const hone_st_out *t, size_t n, hone_err *err);

/* A model directory's weights: model.safetensors, or every shard
 * model.safetensors.index.json names. */
typedef struct hone_st_set {
    hone_st_file **files;
    size_t n;
    const char *dir;
} hone_st_set;

int hone_st_set_open(hone_st_set *w, const char *dir, hone_err *err);
void hone_st_set_close(hone_st_set *w);
/* the tensor and the file holding it, or NULL */
const hone_st_tensor *hone_st_set_find(const hone_st_set *w, const char *name, const hone_st_file **file);

#endif
