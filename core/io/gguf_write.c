/* gguf_write.c — GGUF v3 output (see gguf_write.h). Metadata is serialized as it is added,
 * so the writer holds one growing buffer and the tensor list; tensor data is produced and
 * converted one tensor at a time while the file is written. */
#include "gguf_write.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

enum { ALIGN = 32 };

typedef struct out_tensor {
    char *name;
    uint32_t type, ndim;
    uint64_t ne[4], numel, nbytes, offset;
    hone_gguf_fill fill;
    void *ctx;
} out_tensor;

struct hone_gguf_out {
    uint8_t *kv;
    size_t kv_len, kv_cap, nkv;
    int oom;
    out_tensor *t;
    size_t nt, t_cap;
    uint64_t data_len;
};

static void put(hone_gguf_out *o, const void *p, size_t n)
{
    if (o->oom) return;
    if (o->kv_len + n > o->kv_cap) {
        size_t cap = o->kv_cap ? o->kv_cap : 4096;
        while (cap < o->kv_len + n) cap *= 2;
        uint8_t *b = realloc(o->kv, cap);
        if (!b) {
            o->oom = 1;
            return;
        }
        o->kv = b, o->kv_cap = cap;
    }
    memcpy(o->kv + o->kv_len, p, n);
    o->kv_len += n;
}

/* GGUF is little-endian, as is every machine hone builds for (x86-64 with AVX2) */
static void put_u32(hone_gguf_out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(hone_gguf_out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(hone_gguf_out *o, const char *s)
{
    put_u64(o, strlen(s));
    put(o, s, strlen(s));
}
static void key(hone_gguf_out *o, const char *k, uint32_t type)
{
    put_str(o, k);
    put_u32(o, type);
    o->nkv++;
}

hone_gguf_out *hone_gguf_out_new(void) { return calloc(1, sizeof(hone_gguf_out)); }

void hone_gguf_out_free(hone_gguf_out *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->nt; i++) free(o->t[i].name);
    free(o->t);
    free(o->kv);
    free(o);
}

void hone_gguf_out_str(hone_gguf_out *o, const char *k, const char *v) { key(o, k, HONE_GGUF_STRING), put_str(o, v); }
void hone_gguf_out_u32(hone_gguf_out *o, const char *k, uint32_t v) { key(o, k, HONE_GGUF_U32), put_u32(o, v); }
void hone_gguf_out_f32(hone_gguf_out *o, const char *k, float v) { key(o, k, HONE_GGUF_F32), put(o, &v, 4); }
void hone_gguf_out_bool(hone_gguf_out *o, const char *k, int v)
{
    uint8_t b = v != 0;
    key(o, k, HONE_GGUF_BOOL), put(o, &b, 1);
}
void hone_gguf_out_strs(hone_gguf_out *o, const char *k, const char *const *v, size_t n)
{
    key(o, k, HONE_GGUF_ARRAY), put_u32(o, HONE_GGUF_STRING), put_u64(o, n);
    for (size_t i = 0; i < n; i++) put_str(o, v[i]);
}
void hone_gguf_out_i32s(hone_gguf_out *o, const char *k, const int32_t *v, size_t n)
{
    key(o, k, HONE_GGUF_ARRAY), put_u32(o, HONE_GGUF_I32), put_u64(o, n), put(o, v, n * 4);
}

int hone_gguf_out_tensor(hone_gguf_out *o, const char *name, uint32_t type, uint32_t ndim, const uint64_t *ne,
                         hone_gguf_fill fill, void *ctx, hone_err *err)
{
    if (ndim < 1 || ndim > 4) return hone_errf(err, HONE_EINVAL, "GGUF tensor %s: %u dimensions", name, ndim);
    if (type != HONE_GGML_F32 && type != HONE_GGML_F16 && type != HONE_GGML_Q8_0)
        return hone_errf(err, HONE_EUNSUPPORTED, "GGUF tensor %s: hone writes F32, F16 and Q8_0, not %s", name,
                         hone_ggml_type_name(type));
    if (type == HONE_GGML_Q8_0 && ne[0] % 32)
        return hone_errf(err, HONE_EINVAL, "GGUF tensor %s: Q8_0 needs rows of a multiple of 32 (has %llu)", name,
                         (unsigned long long)ne[0]);
    if (o->nt == o->t_cap) {
        size_t cap = o->t_cap ? o->t_cap * 2 : 64;
        out_tensor *t = realloc(o->t, cap * sizeof *t);
        if (!t) return hone_errf(err, HONE_ENOMEM, "out of memory");
        o->t = t, o->t_cap = cap;
    }
    out_tensor *t = &o->t[o->nt];
    memset(t, 0, sizeof *t);
    t->name = hone_strdup(name);
    if (!t->name) return hone_errf(err, HONE_ENOMEM, "out of memory");
    t->type = type, t->ndim = ndim, t->fill = fill, t->ctx = ctx, t->numel = 1;
    for (uint32_t d = 0; d < ndim; d++) t->ne[d] = ne[d], t->numel *= ne[d];
    t->nbytes = type == HONE_GGML_F32 ? t->numel * 4 : type == HONE_GGML_F16 ? t->numel * 2 : t->numel / 32 * 34;
    t->offset = o->data_len;
    o->data_len += (t->nbytes + ALIGN - 1) / ALIGN * ALIGN;
    o->nt++;
    return 0;
}

uint16_t hone_f32_to_half(float f)
{
    /* F. Giesen's float_to_half_fast3_rtne: subnormals rounded by an fp32 add */
    const uint32_t f32infty = 255u << 23, f16max = (127u + 16) << 23, magic = ((127u - 15) + (23 - 10) + 1) << 23;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint16_t h;
    if (u >= f16max) h = u > f32infty ? 0x7e00 : 0x7c00;
    else if (u < (113u << 23)) {
        float a, m;
        memcpy(&a, &u, 4);
        memcpy(&m, &magic, 4);
        a += m;
        memcpy(&u, &a, 4);
        h = (uint16_t)(u - magic);
    } else {
        uint32_t odd = (u >> 13) & 1;
        u += ((uint32_t)(15 - 127) << 23) + 0xfff + odd;
        h = (uint16_t)(u >> 13);
    }
    return h | (uint16_t)(sign >> 16);
}

void hone_q8_0_block(uint8_t *out, const float *x)
{
    /* ggml's quantize_row_q8_0_ref (and gguf-py's Q8_0): d = amax / 127, q = roundf(x / d) */
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t h = hone_f32_to_half(d);
    memcpy(out, &h, 2);
    for (int i = 0; i < 32; i++) out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
}

static int zeros(FILE *f, uint64_t n)
{
    static const uint8_t z[ALIGN];
    return fwrite(z, 1, (size_t)n, f) == n;
}

int hone_gguf_out_write(hone_gguf_out *o, const char *path, hone_err *err)
{
    if (o->oom) return hone_errf(err, HONE_ENOMEM, "out of memory building %s", path);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return hone_errf(err, HONE_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    /* header and metadata, then the tensor infos in the same buffer */
    hone_gguf_out head = {0};
    put(&head, "GGUF", 4);
    put_u32(&head, 3);
    put_u64(&head, o->nt);
    put_u64(&head, o->nkv);
    put(&head, o->kv, o->kv_len);
    for (size_t i = 0; i < o->nt; i++) {
        const out_tensor *t = &o->t[i];
        put_str(&head, t->name);
        put_u32(&head, t->ndim);
        for (uint32_t d = 0; d < t->ndim; d++) put_u64(&head, t->ne[d]);
        put_u32(&head, t->type);
        put_u64(&head, t->offset);
    }
    int rc = head.oom ? hone_errf(err, HONE_ENOMEM, "out of memory building %s", path) : 0;
    int ok = !rc && fwrite(head.kv, 1, head.kv_len, f) == head.kv_len &&
             zeros(f, (ALIGN - head.kv_len % ALIGN) % ALIGN);
    free(head.kv);
    float *x = NULL;
    uint8_t *bytes = NULL;
    uint64_t cap = 0;
    for (size_t i = 0; i < o->nt && ok && !rc; i++) {
        const out_tensor *t = &o->t[i];
        if (t->numel > cap) {
            free(x), free(bytes);
            cap = t->numel;
            x = malloc(cap * sizeof *x);
            bytes = malloc(cap * 2 + 64);
            if (!x || !bytes) {
                rc = hone_errf(err, HONE_ENOMEM, "out of memory writing %s", t->name);
                break;
            }
        }
        if ((rc = t->fill(t->ctx, t->name, x, err)) != 0) break;
        const void *data = x;
        if (t->type == HONE_GGML_F16) {
            uint16_t *h = (uint16_t *)bytes;
            for (uint64_t k = 0; k < t->numel; k++) h[k] = hone_f32_to_half(x[k]);
            data = bytes;
        } else if (t->type == HONE_GGML_Q8_0) {
            for (uint64_t b = 0; b < t->numel / 32; b++) hone_q8_0_block(bytes + b * 34, x + b * 32);
            data = bytes;
        }
        ok = fwrite(data, 1, (size_t)t->nbytes, f) == t->nbytes && zeros(f, (ALIGN - t->nbytes % ALIGN) % ALIGN);
    }
    free(x), free(bytes);
    ok = ok && !rc && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!rc && !ok) rc = hone_errf(err, HONE_EIO, "%s: write failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = hone_errf(err, HONE_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}
