/* tok_util.c — UTF-8 and hash maps for the tokenizer. */
#include "tok_util.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
    else {
        *cp = c;
        return 0;
    }
    if ((size_t)len > n) {
        *cp = c;
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = c;
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = c;
        return 0;
    }
    *cp = v;
    return len;
}

int tok_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* length of the maximal subpart of an ill-formed sequence at s (>= 1) */
static size_t maximal_subpart(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else return 1;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) i++;
    else return 1;
    while (i < need && i < n && (s[i] & 0xc0) == 0x80) i++;
    return i;
}

char *tok_utf8_repair(const char *in, size_t n, size_t *out_n)
{
    const unsigned char *s = (const unsigned char *)in;
    char *out = malloc(n * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {   /* ASCII, most of most text, without the decoder's call */
            out[o++] = (char)s[i++];
            continue;
        }
        uint32_t cp;
        int len = tok_utf8_next(s + i, n - i, &cp);
        if (len > 0) {
            memcpy(out + o, s + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        } else {
            o += (size_t)tok_utf8_put(out + o, 0xfffd);
            i += maximal_subpart(s + i, n - i);
        }
    }
    out[o] = '\0';
    *out_n = o;
    return out;
}

int tok_is_whitespace(uint32_t cp)
{
    /* Rust: the Unicode White_Space property */
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

int tok_is_numeric(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

int tok_is_alnum(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || tok_is_numeric(cp);
}

int tok_buf_reserve(tok_buf *b, size_t extra)
{
    if (b->n + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + extra + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    return 0;
}

int tok_buf_add(tok_buf *b, const char *s, size_t n)
{
    if (tok_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

int tok_buf_addc(tok_buf *b, char c)
{
    return tok_buf_add(b, &c, 1);
}

int tok_ids_push(tok_ids *a, int32_t id)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

int tok_spans_add(tok_spans *s, size_t a, size_t b, int32_t tag)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        tok_span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tok_span){a, b, tag};
    return 0;
}

uint64_t tok_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ? h : 1;
}

static int strmap_grow(tok_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    tok_strmap n = *m;
    n.hash = calloc(cap, sizeof *n.hash);
    n.off = malloc(cap * sizeof *n.off);
    n.len = malloc(cap * sizeof *n.len);
    n.val = malloc(cap * sizeof *n.val);
    if (!n.hash || !n.off || !n.len || !n.val) {
        free(n.hash), free(n.off), free(n.len), free(n.val);
        return -1;
    }
    n.cap = cap;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->hash[i]) continue;
        size_t j = m->hash[i] & (cap - 1);
        while (n.hash[j]) j = (j + 1) & (cap - 1);
        n.hash[j] = m->hash[i], n.off[j] = m->off[i], n.len[j] = m->len[i], n.val[j] = m->val[i];
    }
    free(m->hash), free(m->off), free(m->len), free(m->val);
    *m = n;
    return 0;
}

int tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val)
{
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    uint64_t h = tok_hash(s, n);
    size_t j = h & (m->cap - 1);
    while (m->hash[j]) {
        if (m->hash[j] == h && m->len[j] == n && !memcmp(m->pool + m->off[j], s, n)) {
            m->val[j] = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (m->pool_n + n > m->pool_cap) {
        size_t cap = m->pool_cap ? m->pool_cap : 4096;
        while (cap < m->pool_n + n) cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p) return -1;
        m->pool = p;
        m->pool_cap = cap;
    }
    memcpy(m->pool + m->pool_n, s, n);
    m->hash[j] = h, m->off[j] = (uint32_t)m->pool_n, m->len[j] = (uint32_t)n, m->val[j] = val;
    m->pool_n += n;
    m->count++;
    return 0;
}

int tok_strmap_get(const tok_strmap *m, const char *s, size_t n, int32_t *val)
{
    if (!m->cap) return 0;
    uint64_t h = tok_hash(s, n);
    size_t j = h & (m->cap - 1);
    while (m->hash[j]) {
        if (m->hash[j] == h && m->len[j] == n && !memcmp(m->pool + m->off[j], s, n)) {
            *val = m->val[j];
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->hash), free(m->off), free(m->len), free(m->val), free(m->pool);
    memset(m, 0, sizeof *m);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

int tok_u64map_put(tok_u64map *m, uint64_t key, uint64_t val)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uint64_t *k = malloc(cap * sizeof *k), *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k), free(v);
            return -1;
        }
        memset(k, 0xff, cap * sizeof *k);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->key[i] == UINT64_MAX) continue;
            size_t j = mix64(m->key[i]) & (cap - 1);
            while (k[j] != UINT64_MAX) j = (j + 1) & (cap - 1);
            k[j] = m->key[i], v[j] = m->val[i];
        }
        free(m->key), free(m->val);
        m->key = k, m->val = v, m->cap = cap;
    }
    size_t j = mix64(key) & (m->cap - 1);
    while (m->key[j] != UINT64_MAX) {
        if (m->key[j] == key) {
            m->val[j] = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = key, m->val[j] = val;
    m->count++;
    return 0;
}

int tok_u64map_get(const tok_u64map *m, uint64_t key, uint64_t *val)
{
    if (!m->cap) return 0;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->key[j] != UINT64_MAX) {
        if (m->key[j] == key) {
            *val = m->val[j];
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

void tok_u64map_free(tok_u64map *m)
{
    free(m->key), free(m->val);
    memset(m, 0, sizeof *m);
}
