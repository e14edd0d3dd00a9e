/* prequant.c — bitsandbytes 4-bit checkpoints ("-bnb-4bit" uploads): reading a frozen
 * linear from its serialized parts without re-quantizing, and writing a model's base in
 * that layout (`hone quantize`). Layout: docs/numerics.md §1.7. */
#include "prequant.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model_impl.h"
#include "safetensors.h"
#include "util.h"

static const hone_st_tensor *part(hone_st_lookup look, void *ctx, const char *name, const char *suffix,
                                  const hone_st_file **f)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", name, suffix);
    return look(ctx, key, f);
}

/* the shape and settings written in <weight>.quant_state.bitsandbytes__<type> */
static int quant_state(hone_bnb4 *b, long long shape[2], const hone_st_tensor *t, const char *path, const char *name,
                       hone_err *err)
{
    if (t->dtype != HONE_DT_U8) return hone_errf(err, HONE_EINVAL, "%s: %s.quant_state is not U8", path, name);
    cJSON *j = cJSON_ParseWithLength(t->data, (size_t)t->numel);
    const cJSON *qt = cJSON_GetObjectItemCaseSensitive(j, "quant_type");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(j, "blocksize");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *nbs = cJSON_GetObjectItemCaseSensitive(j, "nested_blocksize");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "nested_offset");
    int rc = 0;
    if (!cJSON_IsString(qt) || !cJSON_IsNumber(bs) || cJSON_GetArraySize(sh) != 2 ||
        !cJSON_IsNumber(cJSON_GetArrayItem(sh, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(sh, 1)))
        rc = hone_errf(err, HONE_EINVAL, "%s: %s.quant_state: needs quant_type, blocksize and a 2-d shape", path, name);
    else if (strcmp(qt->valuestring, "nf4") != 0 && strcmp(qt->valuestring, "fp4") != 0)
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: %s.quant_state: quant_type \"%.20s\" (nf4 or fp4)", path, name,
                       qt->valuestring);
    else {
        b->quant_type = strcmp(qt->valuestring, "nf4") == 0 ? "nf4" : "fp4";
        b->blocksize = (int)bs->valuedouble;
        shape[0] = (long long)cJSON_GetArrayItem(sh, 0)->valuedouble;
        shape[1] = (long long)cJSON_GetArrayItem(sh, 1)->valuedouble;
        b->nested_blocksize = cJSON_IsNumber(nbs) ? (int)nbs->valuedouble : 0;
        b->nested_offset = cJSON_IsNumber(off) ? (float)off->valuedouble : 0.0f;
    }
    cJSON_Delete(j);
    return rc;
}

int hone_bnb4_read(hone_bnb4 *b, hone_st_lookup look, void *ctx, const char *name, size_t rows, size_t cols,
                   hone_err *err)
{
    memset(b, 0, sizeof *b);
    const hone_st_file *f = NULL, *g = NULL;
    const hone_st_tensor *w = look(ctx, name, &f);
    if (!w) return hone_errf(err, HONE_EINVAL, "missing tensor %s", name);
    const char *path = f->path;
    const hone_st_tensor *qs = part(look, ctx, name, ".quant_state.bitsandbytes__nf4", &g);
    if (!qs) qs = part(look, ctx, name, ".quant_state.bitsandbytes__fp4", &g);
    if (!qs) return hone_errf(err, HONE_EINVAL, "%s: %s has no quant_state.bitsandbytes__nf4 / __fp4", path, name);
    long long shape[2] = {0, 0};
    int rc = quant_state(b, shape, qs, path, name, err);
    if (rc) return rc;
    if (shape[0] != (long long)rows || shape[1] != (long long)cols)
        return hone_errf(err, HONE_EINVAL, "%s: %s has shape [%lld, %lld], expected [%zu, %zu]", path, name, shape[0],
                         shape[1], rows, cols);
    size_t n = rows * cols, nb = b->blocksize > 0 ? (n + (size_t)b->blocksize - 1) / (size_t)b->blocksize : 0;
    if (w->dtype != HONE_DT_U8 || w->numel != (n + 1) / 2)
        return hone_errf(err, HONE_EINVAL, "%s: %s: %llu packed bytes for %zu elements", path, name,
                         (unsigned long long)w->numel, n);
    b->weight = w->data;
    const hone_st_tensor *am = part(look, ctx, name, ".absmax", &g), *qm = part(look, ctx, name, ".quant_map", &g);
    const hone_st_tensor *na = part(look, ctx, name, ".nested_absmax", &g);
    const hone_st_tensor *nq = part(look, ctx, name, ".nested_quant_map", &g);
    if (!am || !qm || qm->dtype != HONE_DT_F32 || qm->numel != 16)
        return hone_errf(err, HONE_EINVAL, "%s: %s needs .absmax and a 16-entry F32 .quant_map", path, name);
    b->quant_map = qm->data;
    b->absmax = am->data;
    b->nabsmax = (size_t)am->numel;
    b->absmax_u8 = am->dtype == HONE_DT_U8;
    if (b->absmax_u8 ? !na : am->dtype != HONE_DT_F32)
        return hone_errf(err, HONE_EINVAL, "%s: %s.absmax is %s%s", path, name, hone_dtype_name(am->dtype),
                         b->absmax_u8 ? " but .nested_absmax is missing" : "");
    if (b->nabsmax != nb) return hone_errf(err, HONE_EINVAL, "%s: %s.absmax has %zu values for %zu blocks", path, name, b->nabsmax, nb);
    if (na) {
        if (na->dtype != HONE_DT_F32 || !nq || nq->dtype != HONE_DT_F32 || nq->numel != 256 || b->nested_blocksize < 1 ||
            na->numel != (nb + (size_t)b->nested_blocksize - 1) / (size_t)b->nested_blocksize)
            return hone_errf(err, HONE_EINVAL, "%s: %s: nested_absmax / nested_quant_map do not fit the quant_state", path,
                             name);
        b->nested_absmax = na->data;
        b->nested_quant_map = nq->data;
    }
    return 0;
}

/* a short JSON for the quant_state, as Python's json.dumps writes the dict (key order,
 * ", " and ": " separators, floats in repr form) */
static void py_float(char *out, size_t n, double v)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(out, n, "%.*g", p, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".en")) strncat(out, ".0", n - strlen(out) - 1);
}

char *hone_bnb4_quant_state_json(const hone_bnb4 *b, size_t rows, size_t cols, const char *dtype)
{
    char off[40];
    py_float(off, sizeof off, (double)b->nested_offset);
    if (b->nested_absmax)
        return hone_aprintf("{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%zu, %zu], "
                            "\"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": %s}",
                            b->quant_type, b->blocksize, dtype, rows, cols, b->nested_blocksize, off);
    return hone_aprintf("{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%zu, %zu]}",
                        b->quant_type, b->blocksize, dtype, rows, cols);
}

/* ---- writing (hone quantize) ---- */

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

static int add_linear(outlist *l, const hone_model *m, const linear *ln, const char *name, const char *dtype,
                      hone_err *err)
{
    hone_bnb4 b;
    int rc = m->qvt->export_bnb4(m->qstate, m->packed + ln->packed_off, (size_t)ln->out, (size_t)ln->in, &b, err);
    if (rc) return rc;
    size_t n = (size_t)ln->out * ln->in;
    char key[512], *json = hone_bnb4_quant_state_json(&b, (size_t)ln->out, (size_t)ln->in, dtype);
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
    const hone_model_config *c = &m->cfg;
    if (!m->lora || !m->qvt || m->qvt->info.version < 2 || !m->qvt->export_bnb4)
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
    int64_t V = c->vocab, C = c->hidden;
    rc = add_out(&l, "model.embed_tokens.weight", dt, 2, V, C, m->embed, NULL) ? HONE_ENOMEM : 0;
    if (!rc && !c->tied) rc = add_out(&l, "lm_head.weight", dt, 2, V, C, m->lm_head, NULL) ? HONE_ENOMEM : 0;
    if (!rc) rc = add_out(&l, "model.norm.weight", dt, 1, C, 0, m->norm_w, NULL) ? HONE_ENOMEM : 0;
    char name[256];
    for (int li = 0; li < c->layers && !rc; li++) {
        const layer *L = &m->layers[li];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", li);
        rc = add_out(&l, name, dt, 1, C, 0, L->ln1_w, NULL) ? HONE_ENOMEM : 0;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", li);
        if (!rc) rc = add_out(&l, name, dt, 1, C, 0, L->ln2_w, NULL) ? HONE_ENOMEM : 0;
        for (int i = 0; i < HONE_NLINEAR && !rc; i++) {
            const linear *ln = &L->lin[i];
            const char *group = i <= HONE_O_PROJ ? "self_attn" : "mlp";
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", li, group, hone_linear_names[i]);
            rc = add_linear(&l, m, ln, name, dtype, err);
            if (!rc && ln->bias) {
                snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", li, group, hone_linear_names[i]);
                rc = add_out(&l, name, dt, 1, ln->out, 0, ln->bias, NULL) ? HONE_ENOMEM : 0;
            }
        }
    }
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
