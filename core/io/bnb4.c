/* bnb4.c — the serialized form of a bitsandbytes 4-bit linear ("-bnb-4bit" uploads):
 * its parts read from a checkpoint without re-quantizing, and the quant_state JSON
 * written as bitsandbytes writes it. Layout: docs/numerics.md §1.7. */
#include "bnb4.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
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
