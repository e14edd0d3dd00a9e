/* safetensors.c — a checked safetensors reader (mmap) and a writer for adapters and
 * converted models. Format: docs/numerics.md §7.4. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

#define MAX_HEADER (100u << 20)   /* the Rust reader's limit too */

static const struct {
    const char *name;
    size_t size;
} dtypes[HONE_DT_COUNT] = {
    [HONE_DT_F32] = {"F32", 4}, [HONE_DT_F16] = {"F16", 2}, [HONE_DT_BF16] = {"BF16", 2},
    [HONE_DT_F64] = {"F64", 8}, [HONE_DT_I8] = {"I8", 1},   [HONE_DT_U8] = {"U8", 1},
    [HONE_DT_I16] = {"I16", 2}, [HONE_DT_U16] = {"U16", 2}, [HONE_DT_I32] = {"I32", 4},
    [HONE_DT_U32] = {"U32", 4}, [HONE_DT_I64] = {"I64", 8}, [HONE_DT_U64] = {"U64", 8},
    [HONE_DT_BOOL] = {"BOOL", 1},
};

const char *hone_dtype_name(hone_dtype dt)
{
    return (unsigned)dt < HONE_DT_COUNT ? dtypes[dt].name : "?";
}

size_t hone_dtype_size(hone_dtype dt)
{
    return (unsigned)dt < HONE_DT_COUNT ? dtypes[dt].size : 0;
}

void hone_st_close(hone_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    if (f->mapped) hone_unmap_file(f->map, f->size);
    free(f->path);
    free(f);
}

static int cmp_begin(const void *a, const void *b)
{
    const hone_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const hone_st_tensor *)a)->name, ((const hone_st_tensor *)b)->name);
}

/* a JSON number that is a whole number in [0, 2^53] */
static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_tensor(hone_st_tensor *t, const cJSON *j, uint64_t buflen, const char *path, hone_err *err)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(j)) return hone_errf(err, HONE_EINVAL, "%s: tensor %s: header entry is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(off))
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s: needs dtype, shape and data_offsets", path, nm);
    t->dtype = HONE_DT_COUNT;
    for (int d = 0; d < HONE_DT_COUNT; d++)
        if (strcmp(dt->valuestring, dtypes[d].name) == 0) t->dtype = (hone_dtype)d;
    if (t->dtype == HONE_DT_COUNT)
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s: dtype %.20s is not supported", path, nm, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > HONE_ST_MAX_DIMS)
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s: %d dimensions (at most %d)", path, nm, nd, HONE_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        uint64_t s;
        if (json_u64(cJSON_GetArrayItem(shape, d), &s) != 0)
            return hone_errf(err, HONE_EINVAL, "%s: tensor %s: shape[%d] is not a non-negative integer", path, nm, d);
        if (s && numel > UINT64_MAX / s)
            return hone_errf(err, HONE_EINVAL, "%s: tensor %s: shape overflows", path, nm);
        numel *= s;
        t->shape[d] = (int64_t)s;
    }
    t->numel = numel;
    if (cJSON_GetArraySize(off) != 2 || json_u64(cJSON_GetArrayItem(off, 0), &t->begin) ||
        json_u64(cJSON_GetArrayItem(off, 1), &t->end))
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s: data_offsets must be [begin, end]", path, nm);
    if (t->begin > t->end || t->end > buflen)
        return hone_errf(err, HONE_EINVAL,
                         "%s: tensor %s: data_offsets [%llu, %llu] lie outside the %llu-byte data (truncated file?)",
                         path, nm, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)buflen);
    size_t es = dtypes[t->dtype].size;
    if (numel > UINT64_MAX / es || numel * es != t->end - t->begin)
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s: %llu bytes of data for %llu elements of %s", path, nm,
                         (unsigned long long)(t->end - t->begin), (unsigned long long)numel, dtypes[t->dtype].name);
    return 0;
}

int hone_st_parse(hone_st_file **out, const uint8_t *buf, size_t size, const char *path, hone_err *err)
{
    if (size < 8) return hone_errf(err, HONE_EINVAL, "%s: %zu bytes: too short for a safetensors file", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > size - 8)
        return hone_errf(err, HONE_EINVAL, "%s: header claims %llu bytes but the file has %zu: truncated, or not safetensors",
                         path, (unsigned long long)hlen, size - 8);
    if (hlen > MAX_HEADER) return hone_errf(err, HONE_EINVAL, "%s: header of %llu bytes is too large", path, (unsigned long long)hlen);
    if (hlen < 2 || buf[8] != '{') return hone_errf(err, HONE_EINVAL, "%s: the header is not a JSON object", path);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return hone_errf(err, HONE_EINVAL, "%s: the header is not valid JSON", path);
    }
    hone_st_file *f = calloc(1, sizeof *f);
    int n = cJSON_GetArraySize(root);
    if (f) f->t = calloc((size_t)n + 1, sizeof *f->t);
    if (f) f->path = hone_strdup(path);
    if (!f || !f->t || !f->path) {
        cJSON_Delete(root);
        hone_st_close(f);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    f->map = buf;
    f->size = size;
    uint64_t buflen = size - 8 - hlen;
    const uint8_t *data = buf + 8 + hlen;
    int rc = 0;
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (!it->string) {
            rc = hone_errf(err, HONE_EINVAL, "%s: header entry without a name", path);
            break;
        }
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) rc = hone_errf(err, HONE_EINVAL, "%s: __metadata__ is not an object", path);
            for (const cJSON *m = it->child; m && !rc; m = m->next)
                if (!cJSON_IsString(m)) rc = hone_errf(err, HONE_EINVAL, "%s: __metadata__ values must be strings", path);
            continue;
        }
        hone_st_tensor *t = &f->t[f->n];
        if (!(t->name = hone_strdup(it->string))) {
            rc = hone_errf(err, HONE_ENOMEM, "out of memory");
            break;
        }
        f->n++;
        rc = parse_tensor(t, it, buflen, path, err);
        t->data = data + t->begin;
    }
    cJSON_Delete(root);
    if (!rc && f->n) {
        /* the data must be covered exactly: no overlaps, no holes */
        qsort(f->t, f->n, sizeof *f->t, cmp_begin);
        uint64_t at = 0;
        for (size_t i = 0; i < f->n && !rc; i++) {
            if (f->t[i].begin != at)
                rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s: data starts at %llu, expected %llu (%s)", path,
                               f->t[i].name, (unsigned long long)f->t[i].begin, (unsigned long long)at,
                               f->t[i].begin < at ? "it overlaps the previous tensor" : "a hole in the data");
            at = f->t[i].end;
        }
        if (!rc && at != buflen)
            rc = hone_errf(err, HONE_EINVAL, "%s: tensors cover %llu of the %llu data bytes", path,
                           (unsigned long long)at, (unsigned long long)buflen);
        qsort(f->t, f->n, sizeof *f->t, cmp_name);
        for (size_t i = 1; i < f->n && !rc; i++)
            if (strcmp(f->t[i - 1].name, f->t[i].name) == 0)
                rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s appears twice in the header", path, f->t[i].name);
    } else if (!rc && buflen != 0) {
        rc = hone_errf(err, HONE_EINVAL, "%s: %llu data bytes but no tensors", path, (unsigned long long)buflen);
    }
    if (rc) {
        hone_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int hone_st_open(hone_st_file **out, const char *path, hone_err *err)
{
    const uint8_t *map;
    size_t size;
    int rc = hone_map_file(path, &map, &size, err);
    if (rc) return rc;
    rc = hone_st_parse(out, map ? map : (const uint8_t *)"", size, path, err);
    if (rc) {
        hone_unmap_file(map, size);
        return rc;
    }
    (*out)->mapped = map != NULL;
    return 0;
}

const hone_st_tensor *hone_st_find(const hone_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (c == 0) return &f->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

float hone_half_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else {   /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int hone_st_to_f32(const hone_st_file *f, const hone_st_tensor *t, float *out, uint64_t first, uint64_t count,
                   hone_err *err)
{
    if (first > t->numel || count > t->numel - first)
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s: elements [%llu, +%llu) out of range", f->path, t->name,
                         (unsigned long long)first, (unsigned long long)count);
    const uint8_t *p = (const uint8_t *)t->data + first * dtypes[t->dtype].size;
    switch (t->dtype) {
    case HONE_DT_F32: memcpy(out, p, count * 4); return 0;
    case HONE_DT_BF16:
        for (uint64_t i = 0; i < count; i++) {
            uint32_t u = (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
            memcpy(&out[i], &u, 4);
        }
        return 0;
    case HONE_DT_F16:
        for (uint64_t i = 0; i < count; i++) out[i] = hone_half_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case HONE_DT_F64:
        for (uint64_t i = 0; i < count; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return 0;
    default:
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s: dtype %s cannot be read as floats", f->path, t->name,
                         dtypes[t->dtype].name);
    }
}

uint16_t hone_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

typedef struct order {
    const hone_st_out *t;
    uint64_t numel;
} order;

static int cmp_out(const void *a, const void *b)
{
    const hone_st_out *x = ((const order *)a)->t, *y = ((const order *)b)->t;
    size_t sx = hone_dtype_size(x->dtype), sy = hone_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

int hone_st_write(const char *path, const hone_st_out *t, size_t n, hone_err *err)
{
    order *o = calloc(n ? n : 1, sizeof *o);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    int rc = o && root ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        if (t[i].dtype != HONE_DT_F32 && t[i].dtype != HONE_DT_BF16 && !t[i].raw)
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s: %s needs raw bytes", path, t[i].name,
                           hone_dtype_name(t[i].dtype));
        o[i].t = &t[i];
        o[i].numel = 1;
        for (int d = 0; d < t[i].ndim; d++) o[i].numel *= (uint64_t)t[i].shape[d];
    }
    if (!rc) qsort(o, n, sizeof *o, cmp_out);
    uint64_t at = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const hone_st_out *x = o[i].t;
        cJSON *e = cJSON_AddObjectToObject(root, x->name);
        cJSON_AddStringToObject(e, "dtype", hone_dtype_name(x->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < x->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)x->shape[d]));
        uint64_t bytes = o[i].numel * hone_dtype_size(x->dtype);
        cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(at + bytes)));
        at += bytes;
    }
    char *json = rc ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!rc && !json) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    char tmp[4096];
    FILE *fp = NULL;
    if (!rc) {
        snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
        fp = fopen(tmp, "wb");
        if (!fp) rc = hone_errf(err, HONE_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    if (!rc) {
        size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(json, 1, jl, fp) == jl;
        for (size_t i = jl; i < padded && ok; i++) ok = fputc(' ', fp) != EOF;
        uint16_t buf[4096];
        float *made = NULL;   /* the largest filled tensor so far */
        uint64_t made_cap = 0;
        for (size_t i = 0; i < n && ok; i++) {
            const hone_st_out *x = o[i].t;
            if (x->raw) {
                size_t bytes = o[i].numel * hone_dtype_size(x->dtype);
                ok = fwrite(x->raw, 1, bytes, fp) == bytes;
                continue;
            }
            const float *data = x->data;
            if (!data && x->fill) {
                if (o[i].numel > made_cap) {
                    free(made);
                    made_cap = o[i].numel;
                    made = malloc(made_cap * sizeof *made);
                    if (!made) {
                        rc = hone_errf(err, HONE_ENOMEM, "out of memory writing %s", x->name);
                        break;
                    }
                }
                if ((rc = x->fill(x->ctx, x, made, err)) != 0) break;
                data = made;
            }
            if (x->dtype == HONE_DT_F32) {
                ok = fwrite(data, 4, o[i].numel, fp) == o[i].numel;
                continue;
            }
            for (uint64_t k = 0; k < o[i].numel && ok; k += 4096) {
                size_t m = o[i].numel - k < 4096 ? (size_t)(o[i].numel - k) : 4096;
                for (size_t j = 0; j < m; j++) buf[j] = hone_f32_to_bf16(data[k + j]);
                ok = fwrite(buf, 2, m, fp) == m;
            }
        }
        free(made);
        ok = ok && !rc && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
        if (fclose(fp) != 0) ok = 0;
        /* a producer's error already says what went wrong */
        if (!rc && !ok) rc = hone_errf(err, HONE_EIO, "%s: write failed: %s", tmp, strerror(errno));
        if (!rc && rename(tmp, path) != 0)
            rc = hone_errf(err, HONE_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(json);
    free(o);
    return rc;
}

void hone_st_release(const hone_st_file *f, const hone_st_tensor *t)
{
    if (!f->mapped || t->end == t->begin) return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data, b = a + (t->end - t->begin);
    /* only whole pages inside the tensor: its neighbours may still be needed */
    uintptr_t lo = (a + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1), hi = b & ~(uintptr_t)(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ---- a checkpoint's files: model.safetensors or the shards its index names ---------- */

void hone_st_set_close(hone_st_set *w)
{
    for (size_t i = 0; i < w->n; i++) hone_st_close(w->files[i]);
    free(w->files);
}

int hone_st_set_open(hone_st_set *w, const char *dir, hone_err *err)
{
    memset(w, 0, sizeof *w);
    w->dir = dir;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (hone_is_file(path)) {
        w->files = calloc(1, sizeof *w->files);
        if (!w->files) return hone_errf(err, HONE_ENOMEM, "out of memory");
        int rc = hone_st_open(&w->files[0], path, err);
        if (!rc) w->n = 1;
        return rc;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *text = NULL;
    if (!hone_is_file(path))
        return hone_errf(err, HONE_EIO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    int rc = hone_read_file(path, &text, NULL, err);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return hone_errf(err, HONE_EINVAL, "%s: no \"weight_map\" object", path);
    }
    size_t cap = (size_t)cJSON_GetArraySize(map) + 1;
    w->files = calloc(cap, sizeof *w->files);
    char **seen = calloc(cap, sizeof *seen);
    size_t nseen = 0;
    rc = w->files && seen ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (const cJSON *e = map->child; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            rc = hone_errf(err, HONE_EINVAL, "%s: weight_map entry %s is not a file name in the model dir", path,
                           e->string ? e->string : "?");
            break;
        }
        size_t k = 0;
        while (k < nseen && strcmp(seen[k], e->valuestring) != 0) k++;
        if (k < nseen) continue;
        seen[nseen++] = e->valuestring;
        char shard[4096];
        snprintf(shard, sizeof shard, "%s/%s", dir, e->valuestring);
        rc = hone_st_open(&w->files[w->n], shard, err);
        if (!rc) w->n++;
    }
    free(seen);
    cJSON_Delete(root);
    if (rc) hone_st_set_close(w);
    return rc;
}

const hone_st_tensor *hone_st_set_find(const hone_st_set *w, const char *name, const hone_st_file **file)
{
    for (size_t i = 0; i < w->n; i++) {
        const hone_st_tensor *t = hone_st_find(w->files[i], name);
        if (t) {
            *file = w->files[i];
            return t;
        }
    }
    return NULL;
}
