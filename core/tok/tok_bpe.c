/* tok_bpe.c — BPE: vocabulary, merge table, the merge loop and a word cache. */
#include "tok_bpe.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

#define CACHE_MAX 100000   /* pieces remembered (tokenizers keeps 10k; words repeat a lot) */

void tok_bpe_free(tok_bpe *b)
{
    tok_strmap_free(&b->vocab);
    for (int32_t i = 0; i < b->nid; i++) free(b->id_to_token[i]);
    free(b->id_to_token);
    free(b->id_len);
    tok_u64map_free(&b->merges);
    free(b->prefix);
    free(b->suffix);
    tok_strmap_free(&b->cache);
    free(b->cache_ids);
    memset(b, 0, sizeof *b);
}

static const char *opt_string(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

int tok_bpe_load(tok_bpe *b, const cJSON *model, const char *path, hone_err *err)
{
    memset(b, 0, sizeof *b);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0))
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: model.type \"%s\" is not supported (BPE)", path,
                         cJSON_IsString(type) ? type->valuestring : "?");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: model.dropout (BPE dropout) is not supported", path);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return hone_errf(err, HONE_EINVAL, "%s: model.vocab must be an object", path);
    if (merges && !cJSON_IsArray(merges)) return hone_errf(err, HONE_EINVAL, "%s: model.merges must be a list", path);
    b->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "fuse_unk"));
    b->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    b->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
    const char *pre = opt_string(model, "continuing_subword_prefix"), *suf = opt_string(model, "end_of_word_suffix");
    if (pre && *pre) b->prefix = hone_strdup(pre), b->prefix_n = strlen(pre);
    if (suf && *suf) b->suffix = hone_strdup(suf), b->suffix_n = strlen(suf);

    int32_t maxid = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e8 || e->valuedouble != (int32_t)e->valuedouble)
            return hone_errf(err, HONE_EINVAL, "%s: model.vocab[\"%.40s\"] is not a valid id", path, e->string);
        if ((int32_t)e->valuedouble > maxid) maxid = (int32_t)e->valuedouble;
    }
    b->nid = maxid + 1;
    b->id_to_token = calloc((size_t)b->nid + 1, sizeof *b->id_to_token);
    b->id_len = calloc((size_t)b->nid + 1, sizeof *b->id_len);
    if (!b->id_to_token || !b->id_len) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        size_t n = strlen(e->string);
        if (tok_strmap_put(&b->vocab, e->string, n, id)) return hone_errf(err, HONE_ENOMEM, "out of memory");
        if (!b->id_to_token[id]) {
            b->id_to_token[id] = hone_strdup(e->string);
            b->id_len[id] = n;
        }
    }
    for (int i = 0; i < 256; i++) {
        char code[8];
        snprintf(code, sizeof code, "<0x%02X>", i);
        if (!tok_strmap_get(&b->vocab, code, strlen(code), &b->byte_ids[i])) b->byte_ids[i] = -1;
    }
    const char *unk = opt_string(model, "unk_token");
    b->unk_id = -1;
    if (unk && !tok_strmap_get(&b->vocab, unk, strlen(unk), &b->unk_id))
        return hone_errf(err, HONE_EINVAL, "%s: model.unk_token \"%s\" is not in the vocabulary", path, unk);

    int rank = 0, rc = 0;
    tok_buf merged = {0};
    for (const cJSON *m = merges ? merges->child : NULL; m && !rc; m = m->next, rank++) {
        const char *a, *c;
        size_t an, cn;
        if (cJSON_IsString(m)) {   /* legacy "a b" */
            const char *s = m->valuestring, *split = strchr(s, ' ');
            if (!strncmp(s, "#version", 8)) {
                rank--;
                continue;
            }
            if (!split || strchr(split + 1, ' ')) {
                rc = hone_errf(err, HONE_EINVAL, "%s: model.merges[%d] \"%.60s\" is not \"left right\"", path, rank, s);
                break;
            }
            a = s, an = (size_t)(split - s), c = split + 1, cn = strlen(c);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring, an = strlen(a), c = m->child->next->valuestring, cn = strlen(c);
        } else {
            rc = hone_errf(err, HONE_EINVAL, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
            break;
        }
        int32_t ia, ic, inew;
        if (!tok_strmap_get(&b->vocab, a, an, &ia) || !tok_strmap_get(&b->vocab, c, cn, &ic)) {
            rc = hone_errf(err, HONE_EINVAL, "%s: model.merges[%d]: a part is not in the vocabulary", path, rank);
            break;
        }
        /* the merged token drops the right part's continuing-subword prefix */
        size_t skip = b->prefix && cn >= b->prefix_n && !memcmp(c, b->prefix, b->prefix_n) ? b->prefix_n : 0;
        merged.n = 0;
        if (tok_buf_add(&merged, a, an) || tok_buf_add(&merged, c + skip, cn - skip)) {
            rc = hone_errf(err, HONE_ENOMEM, "out of memory");
            break;
        }
        if (!tok_strmap_get(&b->vocab, merged.s, merged.n, &inew)) {
            rc = hone_errf(err, HONE_EINVAL, "%s: model.merges[%d]: the merged token is not in the vocabulary", path, rank);
            break;
        }
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ic, old;
        if (tok_u64map_get(&b->merges, key, &old)) continue;   /* the first (lowest) rank wins */
        if (tok_u64map_put(&b->merges, key, (uint64_t)(uint32_t)rank << 32 | (uint32_t)inew))
            rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    free(merged.s);
    return rc;
}

/* ---- the merge loop ---- */

typedef struct sym {
    int32_t id;
    int32_t prev, next;   /* -1 at the ends */
    int alive;
} sym;

typedef struct cand {
    uint32_t rank, pos;
    int32_t new_id;
} cand;

static int cand_less(const cand *x, const cand *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) m = l, best = &h[l];
        if (r < *n && cand_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static int find_merge(const tok_bpe *b, int32_t a, int32_t c, uint32_t *rank, int32_t *new_id)
{
    uint64_t v;
    if (!tok_u64map_get(&b->merges, (uint64_t)(uint32_t)a << 32 | (uint32_t)c, &v)) return 0;
    *rank = (uint32_t)(v >> 32);
    *new_id = (int32_t)(uint32_t)v;
    return 1;
}

static int merge_word(const tok_bpe *b, const char *s, size_t n, tok_ids *out)
{
    /* the initial symbols: characters (with prefix / suffix), byte fallback, unknowns */
    sym *syms = malloc((n * 4 + 2) * sizeof *syms);
    cand *heap = malloc((n * 4 + 2) * 2 * sizeof *heap);
    tok_buf tmp = {0};
    if (!syms || !heap) {
        free(syms), free(heap);
        return -1;
    }
    size_t ns = 0;
    int32_t unk_pending = -2;   /* -2: none; else the unk id waiting to be added */
#define ADD(x) (syms[ns] = (sym){(x), (int32_t)ns - 1, (int32_t)ns + 1, 1}, ns++)
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) len = 1;   /* input is repaired before this; be safe anyway */
        size_t end = i + (size_t)len;
        const char *piece = s + i;
        size_t pn = (size_t)len;
        if ((i > 0 && b->prefix) || (end == n && b->suffix)) {
            tmp.n = 0;
            if (i > 0 && b->prefix) tok_buf_add(&tmp, b->prefix, b->prefix_n);
            tok_buf_add(&tmp, s + i, (size_t)len);
            if (end == n && b->suffix) tok_buf_add(&tmp, b->suffix, b->suffix_n);
            piece = tmp.s, pn = tmp.n;
        }
        int32_t id;
        if (tok_strmap_get(&b->vocab, piece, pn, &id)) {
            if (unk_pending != -2) {
                ADD(unk_pending);
                unk_pending = -2;
            }
            ADD(id);
        } else {
            int done = 0;
            if (b->byte_fallback) {
                int all = 1;
                for (size_t k = 0; k < pn; k++) all &= b->byte_ids[(unsigned char)piece[k]] >= 0;
                if (all) {
                    /* as tokenizers does: byte tokens do not flush a pending unknown */
                    for (size_t k = 0; k < pn; k++) ADD(b->byte_ids[(unsigned char)piece[k]]);
                    done = 1;
                }
            }
            if (!done && b->unk_id >= 0) {
                if (unk_pending != -2 && !b->fuse_unk) ADD(unk_pending);
                unk_pending = b->unk_id;
            }
        }
        i = end;
    }
    if (unk_pending != -2) ADD(unk_pending);
#undef ADD
    free(tmp.s);
    if (ns) syms[ns - 1].next = -1;
    size_t nh = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        uint32_t rank;
        int32_t nid;
        if (find_merge(b, syms[i].id, syms[i + 1].id, &rank, &nid)) heap_push(heap, &nh, (cand){rank, (uint32_t)i, nid});
    }
    while (nh) {
        cand top = heap_pop(heap, &nh);
        sym *cur = &syms[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        sym *right = &syms[cur->next];
        uint32_t rank;
        int32_t nid;
        /* an expired entry: the pair changed since it was queued */
        if (!find_merge(b, cur->id, right->id, &rank, &nid) || nid != top.new_id) continue;
        cur->id = top.new_id;
        right->alive = 0;
        cur->next = right->next;
        if (right->next >= 0) syms[right->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && find_merge(b, syms[cur->prev].id, cur->id, &rank, &nid))
            heap_push(heap, &nh, (cand){rank, (uint32_t)cur->prev, nid});
        if (cur->next >= 0 && find_merge(b, cur->id, syms[cur->next].id, &rank, &nid))
            heap_push(heap, &nh, (cand){rank, top.pos, nid});
    }
    int rc = 0;
    for (size_t i = 0; i < ns && !rc; i++)
        if (syms[i].alive) rc = tok_ids_push(out, syms[i].id);
    free(syms);
    free(heap);
    return rc;
}

int tok_bpe_encode(tok_bpe *b, const char *s, size_t n, tok_ids *out)
{
    int32_t id;
    if (b->ignore_merges && tok_strmap_get(&b->vocab, s, n, &id)) return tok_ids_push(out, id);
    int32_t at;
    if (n < 256 && tok_strmap_get(&b->cache, s, n, &at)) {
        int32_t cnt = b->cache_ids[at];
        for (int32_t k = 0; k < cnt; k++)
            if (tok_ids_push(out, b->cache_ids[at + 1 + k])) return -1;
        return 0;
    }
    size_t first = out->n;
    if (merge_word(b, s, n, out)) return -1;
    if (n < 256 && b->cache.count < CACHE_MAX) {
        size_t cnt = out->n - first;
        if (b->cache_n + cnt + 1 > b->cache_cap) {
            size_t cap = b->cache_cap ? b->cache_cap * 2 : 65536;
            while (cap < b->cache_n + cnt + 1) cap *= 2;
            int32_t *p = realloc(b->cache_ids, cap * sizeof *p);
            if (!p) return 0;   /* the cache is an optimisation */
            b->cache_ids = p;
            b->cache_cap = cap;
        }
        b->cache_ids[b->cache_n] = (int32_t)cnt;
        if (cnt) memcpy(b->cache_ids + b->cache_n + 1, out->v + first, cnt * sizeof(int32_t));
        if (tok_strmap_put(&b->cache, s, n, (int32_t)b->cache_n) == 0) b->cache_n += cnt + 1;
    }
    return 0;
}
