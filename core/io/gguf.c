/* gguf.c — a checked GGUF reader. Layout (little-endian): "GGUF", u32 version, u64
 * tensor count, u64 metadata count; metadata as (string key, u32 type, value); tensor infos
 * as (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset); the data at the
 * next multiple of general.alignment (default 32), each tensor at its offset from there.
 * Strings are u64 length + bytes. Dequantization follows gguf-py's numpy code operation
 * for operation in float32, so the values are bit-identical to what it returns. */
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "safetensors.h"
#include "util.h"

typedef struct cursor {
    const uint8_t *p;
    size_t n, at;
    const char *path;
} cursor;

static int need(cursor *c, size_t k, const char *what, hone_err *err)
{
    if (k > c->n - c->at)
        return hone_errf(err, HONE_EINVAL, "%s: truncated at byte %zu (reading %s)", c->path, c->at, what);
    return 0;
}

static int rd(cursor *c, void *out, size_t k, const char *what, hone_err *err)
{
    int rc = need(c, k, what, err);
    if (!rc) {
        memcpy(out, c->p + c->at, k);
        c->at += k;
    }
    return rc;
}

static int rd_str(cursor *c, char **out, const char *what, hone_err *err)
{
    uint64_t len;
    int rc = rd(c, &len, 8, what, err);
    if (!rc && len > c->n - c->at)
        rc = hone_errf(err, HONE_EINVAL, "%s: %s of %llu bytes runs past the end of the file", c->path, what,
                       (unsigned long long)len);
    if (rc) return rc;
    *out = hone_strndup((const char *)c->p + c->at, (size_t)len);
    if (!*out) return hone_errf(err, HONE_ENOMEM, "out of memory");
    c->at += (size_t)len;
    return 0;
}

static size_t scalar_size(uint32_t t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sz / sizeof sz[0] ? sz[t] : 0;
}

/* a scalar at p of type t, as double and as an exact integer */
static void scalar(const uint8_t *p, uint32_t t, double *d, int64_t *i)
{
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f; uint64_t u64; int64_t i64; double f64;
    switch (t) {
    case HONE_GGUF_U8: memcpy(&u8, p, 1); *i = u8; break;
    case HONE_GGUF_I8: memcpy(&i8, p, 1); *i = i8; break;
    case HONE_GGUF_U16: memcpy(&u16, p, 2); *i = u16; break;
    case HONE_GGUF_I16: memcpy(&i16, p, 2); *i = i16; break;
    case HONE_GGUF_U32: memcpy(&u32, p, 4); *i = u32; break;
    case HONE_GGUF_I32: memcpy(&i32, p, 4); *i = i32; break;
    case HONE_GGUF_BOOL: memcpy(&u8, p, 1); *i = u8 != 0; break;
    case HONE_GGUF_U64: memcpy(&u64, p, 8); *i = (int64_t)u64; *d = (double)u64; return;
    case HONE_GGUF_I64: memcpy(&i64, p, 8); *i = i64; break;
    case HONE_GGUF_F32: memcpy(&f, p, 4); *d = f; break;
    case HONE_GGUF_F64: memcpy(&f64, p, 8); *d = f64; break;
    default: *i = 0; break;
    }
    if (t == HONE_GGUF_F32 || t == HONE_GGUF_F64) {   /* an integer view only where one exists */
        *i = *d >= -9.2e18 && *d <= 9.2e18 ? (int64_t)*d : 0;
        return;
    }
    *d = (double)*i;
}

static int rd_value(cursor *c, hone_gguf_kv *kv, hone_err *err)
{
    if (kv->type == HONE_GGUF_STRING) return rd_str(c, &kv->str, kv->key, err);
    if (kv->type == HONE_GGUF_ARRAY) {
        int rc = rd(c, &kv->atype, 4, kv->key, err);
        if (!rc) rc = rd(c, &kv->n, 8, kv->key, err);
        if (rc) return rc;
        if (kv->atype == HONE_GGUF_STRING) {
            if (kv->n > (c->n - c->at) / 8)
                return hone_errf(err, HONE_EINVAL, "%s: %s: %llu strings cannot fit in the file", c->path, kv->key,
                                 (unsigned long long)kv->n);
            kv->strs = calloc(kv->n ? (size_t)kv->n : 1, sizeof *kv->strs);
            if (!kv->strs) return hone_errf(err, HONE_ENOMEM, "out of memory");
            for (uint64_t k = 0; k < kv->n && !rc; k++) rc = rd_str(c, &kv->strs[k], kv->key, err);
            return rc;
        }
        size_t es = scalar_size(kv->atype);
        if (!es)
            return hone_errf(err, HONE_EINVAL, "%s: %s: arrays of type %u are not supported", c->path, kv->key,
                             kv->atype);
        if (kv->n > (c->n - c->at) / es)
            return hone_errf(err, HONE_EINVAL, "%s: %s: an array of %llu runs past the end of the file", c->path,
                             kv->key, (unsigned long long)kv->n);
        kv->nums = malloc((kv->n ? (size_t)kv->n : 1) * sizeof *kv->nums);
        if (!kv->nums) return hone_errf(err, HONE_ENOMEM, "out of memory");
        for (uint64_t k = 0; k < kv->n; k++) {
            int64_t ival;
            scalar(c->p + c->at + k * es, kv->atype, &kv->nums[k], &ival);
        }
        c->at += (size_t)kv->n * es;
        return 0;
    }
    size_t es = scalar_size(kv->type);
    if (!es) return hone_errf(err, HONE_EINVAL, "%s: %s: unknown value type %u", c->path, kv->key, kv->type);
    int rc = need(c, es, kv->key, err);
    if (!rc) {
        scalar(c->p + c->at, kv->type, &kv->num, &kv->i);
        c->at += es;
    }
    return rc;
}

/* elements and bytes per block of a ggml type; 0 when hone does not read it */
static int block_of(uint32_t type, uint64_t *elems, uint64_t *bytes)
{
    switch (type) {
    case HONE_GGML_F32: *elems = 1, *bytes = 4; return 1;
    case HONE_GGML_F16: case HONE_GGML_BF16: *elems = 1, *bytes = 2; return 1;
    case HONE_GGML_Q4_0: *elems = 32, *bytes = 18; return 1;
    case HONE_GGML_Q4_1: *elems = 32, *bytes = 20; return 1;
    case HONE_GGML_Q8_0: *elems = 32, *bytes = 34; return 1;
    case HONE_GGML_Q4_K: *elems = 256, *bytes = 144; return 1;
    case HONE_GGML_Q6_K: *elems = 256, *bytes = 210; return 1;
    default: return 0;
    }
}

const char *hone_ggml_type_name(uint32_t type)
{
    static const char *names[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
                                  "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
                                  "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
                                  "BF16"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

void hone_gguf_close(hone_gguf *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->nkv; i++) {
        hone_gguf_kv *kv = &g->kv[i];
        free(kv->key);
        free(kv->str);
        for (uint64_t k = 0; kv->strs && k < kv->n; k++) free(kv->strs[k]);
        free(kv->strs);
        free(kv->nums);
    }
    for (size_t i = 0; i < g->nt; i++) free(g->t[i].name);
    free(g->kv);
    free(g->t);
    if (g->path) hone_unmap_file(g->map, g->size);
    free(g->path);
    free(g);
}

int hone_gguf_parse(hone_gguf **out, const uint8_t *buf, size_t size, const char *path, hone_err *err)
{
    *out = NULL;
    hone_gguf *g = calloc(1, sizeof *g);
    if (!g) return hone_errf(err, HONE_ENOMEM, "out of memory");
    cursor c = {buf, size, 0, path};
    char magic[4];
    uint64_t nt = 0, nkv = 0;
    int rc = rd(&c, magic, 4, "the magic", err);
    if (!rc && memcmp(magic, "GGUF", 4)) rc = hone_errf(err, HONE_EINVAL, "%s: not a GGUF file (no GGUF magic)", path);
    if (!rc) rc = rd(&c, &g->version, 4, "the version", err);
    if (!rc && (g->version < 2 || g->version > 3))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: GGUF version %u; hone reads versions 2 and 3", path, g->version);
    if (!rc) rc = rd(&c, &nt, 8, "the tensor count", err);
    if (!rc) rc = rd(&c, &nkv, 8, "the metadata count", err);
    /* every entry takes at least 12 (metadata) or 28 (tensor) bytes: bounds before allocating */
    if (!rc && (nkv > size / 12 || nt > size / 28))
        rc = hone_errf(err, HONE_EINVAL, "%s: %llu metadata entries and %llu tensors cannot fit in %zu bytes", path,
                       (unsigned long long)nkv, (unsigned long long)nt, size);
    if (!rc) {
        g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
        g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t);
        if (!g->kv || !g->t) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    g->alignment = 32;
    for (uint64_t i = 0; i < nkv && !rc; i++) {
        hone_gguf_kv *kv = &g->kv[g->nkv++];
        rc = rd_str(&c, &kv->key, "a metadata key", err);
        if (!rc) rc = rd(&c, &kv->type, 4, kv->key, err);
        if (!rc) rc = rd_value(&c, kv, err);
        if (!rc && !strcmp(kv->key, "general.alignment")) {
            if (kv->type != HONE_GGUF_U32 || kv->i < 1 || (kv->i & (kv->i - 1)) || kv->i > 1 << 20)
                rc = hone_errf(err, HONE_EINVAL, "%s: general.alignment must be a power of two (u32)", path);
            else g->alignment = (uint32_t)kv->i;
        }
    }
    for (uint64_t i = 0; i < nt && !rc; i++) {
        hone_gguf_tensor *t = &g->t[g->nt++];
        rc = rd_str(&c, &t->name, "a tensor name", err);
        if (!rc) rc = rd(&c, &t->ndim, 4, t->name, err);
        if (!rc && (t->ndim < 1 || t->ndim > 4))
            rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s has %u dimensions (1 to 4)", path, t->name, t->ndim);
        t->numel = 1;
        for (uint32_t d = 0; d < t->ndim && !rc; d++) {
            rc = rd(&c, &t->ne[d], 8, t->name, err);
            if (!rc && (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) || t->numel > ((uint64_t)1 << 40) / t->ne[d]))
                rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s: dimension %u = %llu", path, t->name, d,
                               (unsigned long long)t->ne[d]);
            if (!rc) t->numel *= t->ne[d];
        }
        uint64_t off = 0;
        if (!rc) rc = rd(&c, &t->type, 4, t->name, err);
        if (!rc) rc = rd(&c, &off, 8, t->name, err);
        uint64_t be = 0, bb = 0;
        if (!rc && block_of(t->type, &be, &bb)) {
            if (t->ne[0] % be)
                rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s: %llu columns are not whole %s blocks of %llu", path,
                               t->name, (unsigned long long)t->ne[0], hone_ggml_type_name(t->type),
                               (unsigned long long)be);
            t->nbytes = t->numel / be * bb;
        }
        t->data = (const uint8_t *)(uintptr_t)off;   /* relative until the data start is known */
    }
    size_t start = (c.at + g->alignment - 1) / g->alignment * g->alignment;
    for (size_t i = 0; i < g->nt && !rc; i++) {
        hone_gguf_tensor *t = &g->t[i];
        uint64_t off = (uint64_t)(uintptr_t)t->data;
        t->data = NULL;
        if (off % g->alignment)
            rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s: offset %llu is not aligned to %u", path, t->name,
                           (unsigned long long)off, g->alignment);
        else if (start > size || off > size - start || t->nbytes > size - start - off)
            rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s (%llu bytes at %llu) runs past the end of the file", path,
                           t->name, (unsigned long long)t->nbytes, (unsigned long long)off);
        else t->data = buf + start + off;
    }
    if (rc) {
        hone_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int hone_gguf_open(hone_gguf **out, const char *path, hone_err *err)
{
    const uint8_t *map;
    size_t size;
    int rc = hone_map_file(path, &map, &size, err);
    if (rc) return rc;
    rc = hone_gguf_parse(out, map ? map : (const uint8_t *)"", size, path, err);
    if (!rc) {
        (*out)->map = map;
        (*out)->size = size;
        (*out)->path = hone_strdup(path);
    } else {
        hone_unmap_file(map, size);
    }
    return rc;
}

const hone_gguf_kv *hone_gguf_kv_find(const hone_gguf *g, const char *key)
{
    for (size_t i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const hone_gguf_tensor *hone_gguf_find(const hone_gguf *g, const char *name)
{
    for (size_t i = 0; i < g->nt; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

static float f16_at(const uint8_t *p)
{
    return hone_half_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/* Q4_K's 6-bit scales and mins of its 8 sub-blocks, unpacked as gguf-py's get_scale_min */
static void q4k_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3F;
        mn[j] = s[4 + j] & 0x3F;
        sc[4 + j] = (uint8_t)((s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30));
        mn[4 + j] = (uint8_t)((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
    }
}

int hone_gguf_to_f32(const hone_gguf *g, const hone_gguf_tensor *t, float *out, hone_err *err)
{
    uint64_t be, bb;
    if (!block_of(t->type, &be, &bb))
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s is %s; hone reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                         "Q4_K and Q6_K", g->path ? g->path : "gguf", t->name, hone_ggml_type_name(t->type));
    const uint8_t *p = t->data;
    uint64_t nb = t->numel / be;
    for (uint64_t b = 0; b < nb; b++, p += bb, out += be) {
        switch (t->type) {
        case HONE_GGML_F32: memcpy(out, p, 4); break;
        case HONE_GGML_F16: out[0] = f16_at(p); break;
        case HONE_GGML_BF16: {
            uint32_t u = (uint32_t)(p[0] | (p[1] << 8)) << 16;
            memcpy(out, &u, 4);
            break;
        }
        case HONE_GGML_Q8_0: {
            float d = f16_at(p);
            for (int j = 0; j < 32; j++) out[j] = (float)(int8_t)p[2 + j] * d;
            break;
        }
        case HONE_GGML_Q4_0: {
            float d = f16_at(p);
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)((int)(p[2 + j] & 0x0F) - 8);
                out[j + 16] = d * (float)((int)(p[2 + j] >> 4) - 8);
            }
            break;
        }
        case HONE_GGML_Q4_1: {
            float d = f16_at(p), m = f16_at(p + 2);
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)(p[4 + j] & 0x0F) + m;
                out[j + 16] = d * (float)(p[4 + j] >> 4) + m;
            }
            break;
        }
        case HONE_GGML_Q4_K: {
            float d = f16_at(p), dmin = f16_at(p + 2);
            uint8_t sc[8], mn[8];
            q4k_scales(p + 4, sc, mn);
            const uint8_t *qs = p + 16;
            for (int grp = 0; grp < 4; grp++)   /* 32 bytes: 32 low nibbles, then 32 high */
                for (int half = 0; half < 2; half++) {
                    int sub = 2 * grp + half;
                    float ds = d * (float)sc[sub], dm = dmin * (float)mn[sub];
                    for (int j = 0; j < 32; j++) {
                        int q = half ? qs[32 * grp + j] >> 4 : qs[32 * grp + j] & 0x0F;
                        out[32 * sub + j] = ds * (float)q - dm;
                    }
                }
            break;
        }
        case HONE_GGML_Q6_K: {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *scales = (const int8_t *)(p + 192);
            float d = f16_at(p + 208);
            for (int e = 0; e < 256; e++) {
                /* gguf-py's reshapes: ql as 2 x (64 low, 64 high), qh as 2 x 4 shifts x 32 */
                int grp = e / 128, r = e % 128;
                int lo = (ql[64 * grp + r % 64] >> (4 * (r / 64))) & 0x0F;
                int hi = (qh[32 * grp + r % 32] >> (2 * (r / 32))) & 0x03;
                int q = (int)(int8_t)(uint8_t)(lo | (hi << 4)) - 32;
                out[e] = (d * (float)scales[e / 16]) * (float)q;
            }
            break;
        }
        }
    }
    return 0;
}
