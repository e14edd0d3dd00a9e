/* bnb4_save.c — a model's nf4 / fp4 base, with its other weights, as a bitsandbytes
 * checkpoint directory that transformers loads as its own (`hone quantize`):
 * model.safetensors with each linear's serialized parts, config.json with the
 * quantization_config BitsAndBytesConfig writes, the tokenizer files. */
#include "bnb4_save.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb4.h"
#include "err.h"
#include "safetensors.h"
#include "util.h"

typedef struct outlist {
    hone_st_out *t;
    size_t n, cap;
    char **names;      /* owned */
    char **blobs;      /* owned JSON texts */
    size_t nnames, nblobs;
} outlist;

static int add_out(outlist *l, const char *name, hone_dtype dt, int ndim, int64_t d0, int64_t d1, const float *data,
                   const void *raw)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        hone_st_out *t = realloc(l->t, cap * sizeof *t);
        char **nm = realloc(l->names, cap * sizeof *nm);
        if (t) l->t = t;
        if (nm) l->names = nm;
        if (!t || !nm) return -1;
        l->cap = cap;
    }
    char *copy = hone_strdup(name);
    if (!copy) return -1;
    l->names[l->nnames++] = copy;
    l->t[l->n++] = (hone_st_out){copy, dt, ndim, {d0, d1}, data, raw, NULL, NULL};
    return 0;
}

static int add_linear(outlist *l, const hone_model *m, const hone_base_tensor *bt, const char *dtype, hone_err *err)
{
    hone_bnb4 b;
    int rc = hone_model_export_bnb4(m, bt->linear, &b, err);
    if (rc) return rc;
    size_t rows = (size_t)bt->shape[0], cols = (size_t)bt->shape[1], n = rows * cols;
    const char *name = bt->name;
    char key[512], *json = hone_bnb4_quant_state_json(&b, rows, cols, dtype);
    char **bl = json ? realloc(l->blobs, (l->nblobs + 1) * sizeof *bl) : NULL;
    if (!bl) {
        free(json);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    l->blobs = bl;
    l->blobs[l->nblobs++] = json;
    rc = add_out(l, name, HONE_DT_U8, 2, (int64_t)(n + 1) / 2, 1, NULL, b.weight);
    snprintf(key, sizeof key, "%s.absmax", name);
    if (!rc) rc = add_out(l, key, b.absmax_u8 ? HONE_DT_U8 : HONE_DT_F32, 1, (int64_t)b.nabsmax, 0, NULL, b.absmax);
    snprintf(key, sizeof key, "%s.quant_map", name);
    if (!rc) rc = add_out(l, key, HONE_DT_F32, 1, 16, 0, NULL, b.quant_map);
    if (!rc && b.nested_absmax) {
        snprintf(key, sizeof key, "%s.nested_absmax", name);
        rc = add_out(l, key, HONE_DT_F32, 1, (int64_t)((b.nabsmax + (size_t)b.nested_blocksize - 1) / (size_t)b.nested_blocksize),
                     0, NULL, b.nested_absmax);
        snprintf(key, sizeof key, "%s.nested_quant_map", name);
        if (!rc) rc = add_out(l, key, HONE_DT_F32, 1, 256, 0, NULL, b.nested_quant_map);
    }
    snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__%s", name, b.quant_type);
    if (!rc) rc = add_out(l, key, HONE_DT_U8, 1, (int64_t)strlen(json), 0, NULL, json);
    return rc ? hone_errf(err, HONE_ENOMEM, "out of memory") : 0;
}

int hone_model_save_bnb4(const hone_model *m, const char *src_dir, const char *out_dir, hone_err *err)
{
    if (!hone_model_has_bnb4(m))
        return hone_errf(err, HONE_EUNSUPPORTED, "only nf4 / fp4 bases have a bitsandbytes layout");
    char path[4300];
    snprintf(path, sizeof path, "%s/config.json", src_dir);
    cJSON *cfg = NULL;
    int rc = hone_read_json_object(path, &cfg, err);
    if (rc) return rc;
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(cfg, "torch_dtype");
    int bf16 = cJSON_IsString(td) && !strcmp(td->valuestring, "bfloat16");
    const char *dtype = bf16 ? "bfloat16" : "float32";
    hone_dtype dt = bf16 ? HONE_DT_BF16 : HONE_DT_F32;
    outlist l = {0};
    size_t nt = hone_model_base_tensors(m, NULL, 0);
    hone_base_tensor *bt = calloc(nt, sizeof *bt);
    if (!bt) rc = HONE_ENOMEM;
    else hone_model_base_tensors(m, bt, nt);
    for (size_t i = 0; i < nt && !rc; i++)
        rc = bt[i].data ? (add_out(&l, bt[i].name, dt, bt[i].ndim, bt[i].shape[0], bt[i].shape[1], bt[i].data, NULL)
                               ? HONE_ENOMEM : 0)
                        : add_linear(&l, m, &bt[i], dtype, err);
    free(bt);
    if (rc == HONE_ENOMEM) hone_errf(err, rc, "out of memory");
    if (!rc) rc = hone_mkdirs(out_dir, err);
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (!rc) rc = hone_st_write(path, l.t, l.n, err);
    if (!rc) {
        /* transformers' BitsAndBytesConfig.to_dict() for this quantization */
        const char *qt = l.nblobs ? (strstr(l.blobs[0], "\"fp4\"") ? "fp4" : "nf4") : "nf4";
        int dq = l.nblobs && strstr(l.blobs[0], "nested_offset") != NULL;
        cJSON *q = cJSON_CreateObject();
        cJSON_AddBoolToObject(q, "_load_in_4bit", 1);
        cJSON_AddBoolToObject(q, "_load_in_8bit", 0);
        cJSON_AddStringToObject(q, "bnb_4bit_compute_dtype", "float32");
        cJSON_AddStringToObject(q, "bnb_4bit_quant_storage", "uint8");
        cJSON_AddStringToObject(q, "bnb_4bit_quant_type", qt);
        cJSON_AddBoolToObject(q, "bnb_4bit_use_double_quant", dq);
        cJSON_AddBoolToObject(q, "llm_int8_enable_fp32_cpu_offload", 0);
        cJSON_AddBoolToObject(q, "llm_int8_has_fp16_weight", 0);
        cJSON_AddNullToObject(q, "llm_int8_skip_modules");
        cJSON_AddNumberToObject(q, "llm_int8_threshold", 6.0);
        cJSON_AddBoolToObject(q, "load_in_4bit", 1);
        cJSON_AddBoolToObject(q, "load_in_8bit", 0);
        cJSON_AddStringToObject(q, "quant_method", "bitsandbytes");
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
        cJSON_AddItemToObject(cfg, "quantization_config", q);
        char *text = cJSON_Print(cfg);
        snprintf(path, sizeof path, "%s/config.json", out_dir);
        rc = text ? hone_write_file(path, text, strlen(text), err) : hone_errf(err, HONE_ENOMEM, "out of memory");
        free(text);
    }
    /* the tokenizer and generation settings travel with the weights */
    static const char *const extra[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0] && !rc; i++) {
        char *data = NULL;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", src_dir, extra[i]);
        if (!hone_is_file(path)) continue;
        rc = hone_read_file(path, &data, &len, err);
        snprintf(path, sizeof path, "%s/%s", out_dir, extra[i]);
        if (!rc) rc = hone_write_file(path, data, len, err);
        free(data);
    }
    cJSON_Delete(cfg);
    for (size_t i = 0; i < l.nnames; i++) free(l.names[i]);
    for (size_t i = 0; i < l.nblobs; i++) free(l.blobs[i]);
    free(l.names), free(l.blobs), free(l.t);
    return rc;
}
