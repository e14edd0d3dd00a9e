/* tokenizer.c — tokenizer.json end to end: loading every component, the added-token
 * split (leftmost-longest, lstrip / rstrip / single_word, normalized or raw), encoding,
 * post-processing and decoding, following huggingface/tokenizers. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zstd.h>

#include "err.h"
#include "tok_bpe.h"
#include "tok_text.h"
#include "util.h"

typedef struct added_tok {
    char *content;   /* as matched: normalized already when `normalized` */
    size_t n;
    char *original;  /* as written, for decoding */
    size_t orig_n;
    int32_t id;
    int special, lstrip, rstrip, normalized, single_word;
} added_tok;

enum { D_SEQ = 1, D_BYTELEVEL, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_REPLACE, D_METASPACE };

typedef struct dec {
    int type;
    struct dec *kids;
    size_t nkids;
    tok_pattern pat;
    char *content;
    size_t content_n;
    uint32_t cp;      /* Strip content, Metaspace replacement */
    int start, stop;  /* Strip */
    int scheme;       /* Metaspace: 2 = never */
} dec;

/* A byte trie over one set of added tokens (matched in raw or in normalized text): the
 * leftmost-longest search walks it from each position instead of comparing every token
 * there, which with Llama 3's 256 added tokens was most of the encoding time. */
typedef struct trie_node {
    int32_t child, sibling;   /* first child, next sibling; -1: none */
    int32_t tok;              /* index in added[] of the first token ending here; -1: none */
    unsigned char byte;
} trie_node;

typedef struct added_trie {
    int32_t root[256];        /* the node after a first byte; -1 where no token starts so */
    trie_node *v;
    size_t n, cap;
} added_trie;

struct hone_tokenizer {
    char *path;
    uint64_t digest;  /* FNV-1a of tokenizer.json and tokenizer_config.json: what built it */
    tok_bpe bpe;
    tok_stage norm, pre;
    int has_norm, has_pre;
    added_tok *added;
    size_t nadded;
    added_trie trie[2];   /* [normalized]: the tokens of each set */
    int32_t *tpl;     /* single template: ids, with -1 where the sequence goes */
    size_t ntpl;
    dec decoder;
    int has_decoder;
    int32_t bos, eos, pad, nvocab;
    /* scratch, reused across calls */
    tok_plist a, b;
    tok_buf nbuf;
};

/* ---- decoders ---- */

static void dec_free(dec *d)
{
    for (size_t i = 0; i < d->nkids; i++) dec_free(&d->kids[i]);
    free(d->kids);
    free(d->content);
    if (d->pat.re) pcre2_code_free(d->pat.re);
    free(d->pat.literal);
    memset(d, 0, sizeof *d);
}

static int first_cp(const char *s, uint32_t *cp)
{
    size_t n = strlen(s);
    return n && tok_utf8_next((const unsigned char *)s, n, cp) == (int)n;
}

static int dec_parse(dec *d, const cJSON *j, const char *json_path, hone_err *err)
{
    memset(d, 0, sizeof *d);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "";
    if (!strcmp(type, "Sequence")) {
        d->type = D_SEQ;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(list)) return hone_errf(err, HONE_EINVAL, "%s: \"decoders\" must be a list", json_path);
        d->nkids = (size_t)cJSON_GetArraySize(list);
        d->kids = calloc(d->nkids ? d->nkids : 1, sizeof *d->kids);
        if (!d->kids) return hone_errf(err, HONE_ENOMEM, "out of memory");
        size_t i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", json_path, i);
            int rc = dec_parse(&d->kids[i], e, sub, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        tok_bytemap_init();
        return d->type = D_BYTELEVEL, 0;
    }
    if (!strcmp(type, "ByteFallback")) return d->type = D_BYTEFALLBACK, 0;
    if (!strcmp(type, "Fuse")) return d->type = D_FUSE, 0;
    if (!strcmp(type, "Strip")) {
        d->type = D_STRIP;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "start"), *e = cJSON_GetObjectItemCaseSensitive(j, "stop");
        if (!cJSON_IsString(c) || !first_cp(c->valuestring, &d->cp) || !cJSON_IsNumber(s) || !cJSON_IsNumber(e))
            return hone_errf(err, HONE_EINVAL, "%s: Strip needs a one-character content, start and stop", json_path);
        d->start = (int)s->valuedouble;
        d->stop = (int)e->valuedouble;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        d->type = D_REPLACE;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern"), *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(p, "String"), *pr = cJSON_GetObjectItemCaseSensitive(p, "Regex");
        if (!cJSON_IsString(c)) return hone_errf(err, HONE_EINVAL, "%s: Replace needs \"content\"", json_path);
        d->content = hone_strdup(c->valuestring);
        d->content_n = strlen(c->valuestring);
        if (cJSON_IsString(ps)) {
            d->pat.literal = hone_strdup(ps->valuestring);
            d->pat.literal_n = strlen(ps->valuestring);
            return 0;
        }
        if (cJSON_IsString(pr)) return tok_pattern_compile(&d->pat, pr->valuestring, strlen(pr->valuestring), json_path, err);
        return hone_errf(err, HONE_EINVAL, "%s: Replace needs a String or Regex pattern", json_path);
    }
    if (!strcmp(type, "Metaspace")) {
        d->type = D_METASPACE;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replacement");
        if (!first_cp(cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81", &d->cp))
            return hone_errf(err, HONE_EINVAL, "%s: replacement must be one character", json_path);
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
        d->scheme = (cJSON_IsString(ps) && !strcmp(ps->valuestring, "never")) || cJSON_IsFalse(aps) ? 2 : 0;
        return 0;
    }
    return hone_errf(err, HONE_EUNSUPPORTED,
                     "%s: decoder type \"%s\" is not supported (Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace, "
                     "Metaspace)", json_path, type);
}

/* appends s with invalid UTF-8 replaced (String::from_utf8_lossy) */
static int add_lossy(tok_buf *out, const char *s, size_t n)
{
    size_t m;
    char *fixed = tok_utf8_repair(s, n, &m);
    if (!fixed) return -1;
    int rc = tok_buf_add(out, fixed, m);
    free(fixed);
    return rc;
}

static int dec_apply(const dec *d, tok_plist *in, tok_plist *out)
{
    tok_plist_clear(out);
    tok_buf b = {0};
    int rc = 0;
    switch (d->type) {
    case D_SEQ:
        for (size_t i = 0; i < d->nkids && !rc; i++) {
            rc = dec_apply(&d->kids[i], in, out);
            tok_plist t = *in;
            *in = *out;
            *out = t;
        }
        /* the result is in `in`; hand it back through out */
        if (!rc) {
            tok_plist t = *in;
            *in = *out;
            *out = t;
        }
        return rc;
    case D_BYTELEVEL: {
        tok_buf bytes = {0};
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.s + in->p[i].off;
            size_t n = in->p[i].n, start = bytes.n;
            int mapped = 1;
            for (size_t k = 0; k < n && mapped && !rc;) {
                uint32_t cp;
                int len = tok_utf8_next((const unsigned char *)s + k, n - k, &cp);
                int byte = len ? tok_cp_to_byte(cp) : -1;
                if (byte < 0) mapped = 0;
                else rc = tok_buf_addc(&bytes, (char)byte);
                k += len ? (size_t)len : 1;
            }
            if (!mapped) {   /* a token outside the byte alphabet is kept as its own bytes */
                bytes.n = start;
                rc = tok_buf_add(&bytes, s, n);
            }
        }
        if (!rc) rc = add_lossy(&b, bytes.s ? bytes.s : "", bytes.n) || tok_plist_add(out, b.s ? b.s : "", b.n, 0);
        free(bytes.s);
        break;
    }
    case D_BYTEFALLBACK: {
        tok_buf pend = {0};
        size_t npend = 0;
        for (size_t i = 0; i <= in->n && !rc; i++) {
            const char *s = i < in->n ? in->text.s + in->p[i].off : "";
            size_t n = i < in->n ? in->p[i].n : 0;
            unsigned v;
            char tail;
            int is_byte = i < in->n && n == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' &&
                          sscanf(s + 3, "%2x%c", &v, &tail) == 2 && tail == '>';
            if (is_byte) {
                rc = tok_buf_addc(&pend, (char)v);
                npend++;
                continue;
            }
            if (npend) {
                size_t m;
                char *fixed = tok_utf8_repair(pend.s, pend.n, &m);
                int valid = fixed && m == pend.n && !memcmp(fixed, pend.s, m);
                free(fixed);
                if (valid) rc = tok_plist_add(out, pend.s, pend.n, 0);
                else
                    for (size_t k = 0; k < npend && !rc; k++) rc = tok_plist_add(out, "\xef\xbf\xbd", 3, 0);
                pend.n = 0;
                npend = 0;
            }
            if (i < in->n && !rc) rc = tok_plist_add(out, s, n, 0);
        }
        free(pend.s);
        break;
    }
    case D_FUSE:
        for (size_t i = 0; i < in->n && !rc; i++) rc = tok_buf_add(&b, in->text.s + in->p[i].off, in->p[i].n);
        if (!rc) rc = tok_plist_add(out, b.s ? b.s : "", b.n, 0);
        break;
    case D_STRIP:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.s + in->p[i].off;
            size_t a = 0, e = in->p[i].n;
            char c[4];
            size_t cl = (size_t)tok_utf8_put(c, d->cp);
            for (int k = 0; k < d->start && e - a >= cl && !memcmp(s + a, c, cl); k++) a += cl;
            for (int k = 0; k < d->stop && e - a >= cl && !memcmp(s + e - cl, c, cl); k++) e -= cl;
            rc = tok_plist_add(out, s + a, e - a, 0);
        }
        break;
    case D_REPLACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.s + in->p[i].off;
            size_t n = in->p[i].n;
            b.n = 0;
            if (d->pat.literal) {
                for (size_t k = 0; k < n && !rc;) {
                    if (d->pat.literal_n && k + d->pat.literal_n <= n && !memcmp(s + k, d->pat.literal, d->pat.literal_n)) {
                        rc = tok_buf_add(&b, d->content, d->content_n);
                        k += d->pat.literal_n;
                    } else {
                        rc = tok_buf_addc(&b, s[k++]);
                    }
                }
            } else {
                pcre2_match_data *md = pcre2_match_data_create_from_pattern(d->pat.re, NULL);
                size_t at = 0;
                while (md && !rc && at <= n) {
                    if (pcre2_match(d->pat.re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL) < 0) break;
                    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                    rc = tok_buf_add(&b, s + at, ov[0] - at) || tok_buf_add(&b, d->content, d->content_n);
                    if (ov[1] == ov[0]) {
                        if (ov[0] < n) rc = rc || tok_buf_addc(&b, s[ov[0]]);
                        at = ov[0] + 1;
                    } else {
                        at = ov[1];
                    }
                }
                if (!rc && at < n) rc = tok_buf_add(&b, s + at, n - at);
                if (md) pcre2_match_data_free(md);
            }
            if (!rc) rc = tok_plist_add(out, b.s ? b.s : "", b.n, 0);
        }
        break;
    case D_METASPACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.s + in->p[i].off;
            size_t n = in->p[i].n;
            b.n = 0;
            for (size_t k = 0; k < n && !rc;) {
                uint32_t cp;
                int len = tok_utf8_next((const unsigned char *)s + k, n - k, &cp);
                if (!len) len = 1;
                if (len && cp == d->cp) {
                    if (!(i == 0 && d->scheme != 2)) rc = tok_buf_addc(&b, ' ');
                } else {
                    rc = tok_buf_add(&b, s + k, (size_t)len);
                }
                k += (size_t)len;
            }
            if (!rc) rc = tok_plist_add(out, b.s ? b.s : "", b.n, 0);
        }
        break;
    }
    free(b.s);
    return rc;
}

/* ---- loading ---- */

void hone_tokenizer_free(hone_tokenizer *t)
{
    if (!t) return;
    tok_bpe_free(&t->bpe);
    if (t->has_norm) tok_stage_free(&t->norm);
    if (t->has_pre) tok_stage_free(&t->pre);
    for (size_t i = 0; i < t->nadded; i++) free(t->added[i].content), free(t->added[i].original);
    free(t->added);
    free(t->trie[0].v);
    free(t->trie[1].v);
    free(t->tpl);
    if (t->has_decoder) dec_free(&t->decoder);
    tok_plist_free(&t->a);
    tok_plist_free(&t->b);
    free(t->nbuf.s);
    free(t->path);
    free(t);
}

static int32_t token_id(const hone_tokenizer *t, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].orig_n == n && !memcmp(t->added[i].original, s, n)) return t->added[i].id;
    int32_t id;
    return tok_strmap_get(&t->bpe.vocab, s, n, &id) ? id : -1;
}

static int parse_added(hone_tokenizer *t, const cJSON *list, const char *path, hone_err *err)
{
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return hone_errf(err, HONE_EINVAL, "%s: added_tokens must be a list", path);
    t->added = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof *t->added);
    if (!t->added) return hone_errf(err, HONE_ENOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || !cJSON_IsString(c) || !*c->valuestring)
            return hone_errf(err, HONE_EINVAL, "%s: added_tokens[%zu] needs an id and a non-empty content", path, i);
        added_tok *a = &t->added[t->nadded++];
        a->id = (int32_t)id->valuedouble;
        a->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        a->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "lstrip"));
        a->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rstrip"));
        a->single_word = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "single_word"));
        const cJSON *nz = cJSON_GetObjectItemCaseSensitive(e, "normalized");
        a->normalized = cJSON_IsBool(nz) ? cJSON_IsTrue(nz) : !a->special;
        if (a->normalized && t->has_norm) {
            /* matched against normalized text, so matched in its normalized form */
            tok_buf nb = {0};
            if (tok_normalize(&t->norm, c->valuestring, strlen(c->valuestring), &nb)) {
                free(nb.s);
                return hone_errf(err, HONE_ENOMEM, "out of memory");
            }
            a->content = nb.s ? nb.s : hone_strdup("");
            a->n = nb.n;
        } else {
            a->content = hone_strdup(c->valuestring);
            a->n = strlen(c->valuestring);
        }
        a->original = hone_strdup(c->valuestring);
        a->orig_n = strlen(c->valuestring);
        if (!a->content || !a->original) return hone_errf(err, HONE_ENOMEM, "out of memory");
        if (a->id + 1 > t->nvocab) t->nvocab = a->id + 1;
    }
    return 0;
}

static int32_t trie_add_node(added_trie *tr, unsigned char byte)
{
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 256;
        trie_node *v = realloc(tr->v, cap * sizeof *v);
        if (!v) return -1;
        tr->v = v;
        tr->cap = cap;
    }
    tr->v[tr->n] = (trie_node){.child = -1, .sibling = -1, .tok = -1, .byte = byte};
    return (int32_t)tr->n++;
}

/* the child of node (the root where node < 0) by byte, made if missing; -1: out of memory */
static int32_t trie_step(added_trie *tr, int32_t node, unsigned char byte)
{
    if (node < 0) {
        if (tr->root[byte] < 0) tr->root[byte] = trie_add_node(tr, byte);
        return tr->root[byte];
    }
    int32_t last = -1;
    for (int32_t c = tr->v[node].child; c >= 0; last = c, c = tr->v[c].sibling)
        if (tr->v[c].byte == byte) return c;
    int32_t k = trie_add_node(tr, byte);
    if (k >= 0) *(last < 0 ? &tr->v[node].child : &tr->v[last].sibling) = k;
    return k;
}

static int build_tries(hone_tokenizer *t, hone_err *err)
{
    for (int set = 0; set < 2; set++) {
        memset(t->trie[set].root, 0xff, sizeof t->trie[set].root);
        for (size_t i = 0; i < t->nadded; i++) {
            const added_tok *a = &t->added[i];
            if (a->normalized != set || !a->n) continue;   /* an empty token never matches */
            int32_t node = -1;
            for (size_t k = 0; k < a->n; k++)
                if ((node = trie_step(&t->trie[set], node, (unsigned char)a->content[k])) < 0)
                    return hone_errf(err, HONE_ENOMEM, "out of memory");
            /* the first of equal contents wins, as in the list */
            if (t->trie[set].v[node].tok < 0) t->trie[set].v[node].tok = (int32_t)i;
        }
    }
    return 0;
}

static int parse_post(hone_tokenizer *t, const cJSON *pp, const char *path, hone_err *err)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pp, "type");
    const char *ty = cJSON_IsString(type) ? type->valuestring : "";
    if (!pp || cJSON_IsNull(pp) || !strcmp(ty, "ByteLevel")) return 0;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
            int rc = parse_post(t, e, path, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(pp, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(pp, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(ci) || !cJSON_IsNumber(si))
            return hone_errf(err, HONE_EINVAL, "%s: post_processor.%s needs cls and sep", path, ty);
        free(t->tpl);
        t->tpl = malloc(3 * sizeof *t->tpl);
        if (!t->tpl) return hone_errf(err, HONE_ENOMEM, "out of memory");
        t->tpl[0] = (int32_t)ci->valuedouble, t->tpl[1] = -1, t->tpl[2] = (int32_t)si->valuedouble;
        t->ntpl = 3;
        return 0;
    }
    if (strcmp(ty, "TemplateProcessing") != 0)
        return hone_errf(err, HONE_EUNSUPPORTED,
                         "%s: post_processor type \"%s\" is not supported (TemplateProcessing, ByteLevel, Sequence, "
                         "RobertaProcessing, BertProcessing)", path, ty);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    if (!cJSON_IsArray(single)) return hone_errf(err, HONE_EINVAL, "%s: post_processor.single must be a list", path);
    size_t cap = 16, n = 0;
    int32_t *tpl = malloc(cap * sizeof *tpl);
    if (!tpl) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int rc = 0;
    for (const cJSON *e = single->child; e && !rc; e = e->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) {
            if (n < cap) tpl[n++] = -1;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        const cJSON *def = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring) : NULL;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
        if (!cJSON_IsArray(ids)) {
            rc = hone_errf(err, HONE_EINVAL, "%s: post_processor special token %s has no ids", path,
                           cJSON_IsString(name) ? name->valuestring : "?");
            break;
        }
        for (const cJSON *k = ids->child; k; k = k->next)
            if (n < cap && cJSON_IsNumber(k)) tpl[n++] = (int32_t)k->valuedouble;
    }
    if (rc) {
        free(tpl);
        return rc;
    }
    free(t->tpl);
    t->tpl = tpl;
    t->ntpl = n;
    return 0;
}

/* "<s>" or {"content": "<s>"} */
static const char *config_token(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_config(hone_tokenizer *t, const char *dir, hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%.4200s/tokenizer_config.json", dir);
    if (!hone_is_file(path)) return 0;
    char *text = NULL;
    size_t tlen = 0;
    int rc = hone_read_file(path, &text, &tlen, err);
    if (rc) return rc;
    t->digest = hone_fnv1a(t->digest, text, tlen);
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return hone_errf(err, HONE_EINVAL, "%s: not a JSON object", path);
    }
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    const char *pad = config_token(cfg, "pad_token");
    if (bos) t->bos = token_id(t, bos);
    if (eos) t->eos = token_id(t, eos);
    if (pad) t->pad = token_id(t, pad);
    /* LlamaTokenizerFast rebuilds its template from add_bos_token / add_eos_token */
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class");
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token"), *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    int llama = cJSON_IsString(cls) && (!strncmp(cls->valuestring, "LlamaTokenizer", 14) ||
                                        !strncmp(cls->valuestring, "CodeLlamaTokenizer", 18) ||
                                        !strncmp(cls->valuestring, "GemmaTokenizer", 14));
    if (llama && (cJSON_IsBool(ab) || cJSON_IsBool(ae))) {
        int add_bos = cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : 1, add_eos = cJSON_IsTrue(ae);
        int32_t *tpl = malloc(3 * sizeof *tpl);
        if (!tpl) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        else if ((add_bos && t->bos < 0) || (add_eos && t->eos < 0))
            rc = hone_errf(err, HONE_EINVAL, "%s: add_bos_token / add_eos_token without a bos / eos token", path);
        if (!rc) {
            size_t n = 0;
            if (add_bos) tpl[n++] = t->bos;
            tpl[n++] = -1;
            if (add_eos) tpl[n++] = t->eos;
            free(t->tpl);
            t->tpl = tpl;
            t->ntpl = n;
        } else {
            free(tpl);
        }
    }
    cJSON_Delete(cfg);
    return rc;
}

/* the whole file, zstd-decompressed when it is zstd (tokenizer.json.zst) */
static int read_maybe_zst(const char *path, char **out, hone_err *err)
{
    char *raw = NULL;
    size_t n = 0;
    int rc = hone_read_file(path, &raw, &n, err);
    if (rc) return rc;
    if (n < 4 || memcmp(raw, "\x28\xb5\x2f\xfd", 4) != 0) {
        *out = raw;
        return 0;
    }
    ZSTD_DStream *z = ZSTD_createDStream();
    tok_buf b = {0};
    char chunk[1 << 16];
    ZSTD_inBuffer in = {raw, n, 0};
    size_t r = z ? ZSTD_initDStream(z) : 1;
    while (z && !ZSTD_isError(r) && in.pos < in.size) {
        ZSTD_outBuffer o = {chunk, sizeof chunk, 0};
        r = ZSTD_decompressStream(z, &o, &in);
        if (!ZSTD_isError(r) && tok_buf_add(&b, chunk, o.pos)) r = (size_t)-1;
    }
    int bad = !z || ZSTD_isError(r) || r != 0;
    ZSTD_freeDStream(z);
    free(raw);
    if (bad) {
        free(b.s);
        return hone_errf(err, HONE_EINVAL, "%s: bad or truncated zstd data", path);
    }
    *out = b.s ? b.s : hone_strdup("");
    return 0;
}

/* every component from the parsed tokenizer.json; file names it in messages */
static int load_json(hone_tokenizer *t, const cJSON *j, const char *file, hone_err *err)
{
    char jp[4300];
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    snprintf(jp, sizeof jp, "%s: model", file);
    int rc = cJSON_IsObject(model) ? tok_bpe_load(&t->bpe, model, jp, err)
                                   : hone_errf(err, HONE_EINVAL, "%s: no \"model\" object", file);
    t->nvocab = t->bpe.nid;
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
    if (!rc && norm && !cJSON_IsNull(norm)) {
        snprintf(jp, sizeof jp, "%s: normalizer", file);
        t->has_norm = 1;
        rc = tok_normalizer_parse(&t->norm, norm, jp, err);
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    if (!rc && pre && !cJSON_IsNull(pre)) {
        snprintf(jp, sizeof jp, "%s: pre_tokenizer", file);
        t->has_pre = 1;
        rc = tok_pretokenizer_parse(&t->pre, pre, jp, err);
    }
    if (!rc) rc = parse_added(t, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), file, err);
    if (!rc) rc = build_tries(t, err);
    if (!rc) rc = parse_post(t, cJSON_GetObjectItemCaseSensitive(j, "post_processor"), file, err);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    if (!rc && d && !cJSON_IsNull(d)) {
        snprintf(jp, sizeof jp, "%s: decoder", file);
        t->has_decoder = 1;
        rc = dec_parse(&t->decoder, d, jp, err);
    }
    return rc;
}

int hone_tokenizer_from_json(hone_tokenizer **out, const char *text, size_t n, const char *name, hone_err *err)
{
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return hone_errf(err, HONE_EINVAL, "%s: not a JSON object", name);
    }
    hone_tokenizer *t = calloc(1, sizeof *t);
    if (t) t->digest = hone_fnv1a(HONE_FNV_START, text, n);
    if (!t || !(t->path = hone_strdup(name))) {
        free(t);
        cJSON_Delete(j);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    t->bos = t->eos = t->pad = -1;
    int rc = load_json(t, j, name, err);
    cJSON_Delete(j);
    if (rc) {
        hone_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int hone_tokenizer_load(hone_tokenizer **out, const char *path, hone_err *err)
{
    char file[4200], dir[4200];
    if (hone_is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%.4100s/tokenizer.json", path);
        if (!hone_is_file(file)) snprintf(file, sizeof file, "%.4100s/tokenizer.json.zst", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    char *text = NULL;
    int rc = read_maybe_zst(file, &text, err);
    if (rc) return rc;
    hone_tokenizer *t = NULL;
    rc = hone_tokenizer_from_json(&t, text, strlen(text), file, err);
    free(text);
    if (!rc) {
        free(t->path);
        t->path = hone_strdup(path);
        if (!t->path) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    if (!rc) rc = load_config(t, dir, err);
    if (rc) {
        hone_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int hone_tokenizer_clone(hone_tokenizer **out, const hone_tokenizer *t, hone_err *err)
{
    return hone_tokenizer_load(out, t->path, err);
}

uint64_t hone_tokenizer_digest(const hone_tokenizer *t)
{
    return t->digest;
}

int32_t hone_tokenizer_vocab_size(const hone_tokenizer *t)
{
    return t->nvocab;
}

int32_t hone_tokenizer_token_id(const hone_tokenizer *t, const char *token)
{
    return token_id(t, token);
}

int32_t hone_tokenizer_bos(const hone_tokenizer *t)
{
    return t->bos;
}

int32_t hone_tokenizer_eos(const hone_tokenizer *t)
{
    return t->eos;
}

int32_t hone_tokenizer_pad(const hone_tokenizer *t)
{
    return t->pad;
}

/* ---- encoding ---- */

static size_t prev_char(const char *s, size_t at)
{
    size_t k = at - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
    return k;
}

static int char_at(const char *s, size_t n, size_t at, uint32_t *cp)
{
    int len = tok_utf8_next((const unsigned char *)s + at, n - at, cp);
    return len ? len : 1;
}

static int is_word_char(uint32_t cp)
{
    return tok_is_alnum(cp) || cp == '_';
}


/* tokenizers' AddedVocabulary::find_matches over one set (normalized or not): at each
 * position the longest token starting there (the first listed among equal ones) */
static int split_added(const hone_tokenizer *t, const char *s, size_t n, int normalized, tok_spans *out)
{
    out->n = 0;
    size_t start_offset = 0;
    const added_trie *tr = &t->trie[normalized];
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        while (i < n && tr->root[u[i]] < 0) i++;   /* most bytes start no token */
        if (i == n) break;
        const added_tok *best = NULL;
        size_t k = i;
        for (int32_t node = tr->root[u[k++]]; node >= 0; k++) {
            if (tr->v[node].tok >= 0) best = &t->added[tr->v[node].tok];
            if (k == n) break;
            int32_t c = tr->v[node].child;
            while (c >= 0 && tr->v[c].byte != u[k]) c = tr->v[c].sibling;
            node = c;
        }
        if (!best) {
            i++;
            continue;
        }
        size_t start = i, stop = i + best->n;
        if (best->single_word) {
            uint32_t cp;
            int start_ok = start == 0 || (char_at(s, n, prev_char(s, start), &cp), !is_word_char(cp));
            int stop_ok = stop == n || (char_at(s, n, stop, &cp), !is_word_char(cp));
            if (!start_ok || !stop_ok) {
                i = stop;   /* the match is consumed even when discarded */
                continue;
            }
        }
        if (best->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k = prev_char(s, ns);
                uint32_t cp;
                char_at(s, n, k, &cp);
                if (!tok_is_whitespace(cp)) break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (best->rstrip)
            while (stop < n) {
                uint32_t cp;
                int len = char_at(s, n, stop, &cp);
                if (!tok_is_whitespace(cp)) break;
                stop += (size_t)len;
            }
        if (start_offset < start && tok_spans_add(out, start_offset, start, -1)) return -1;
        if (tok_spans_add(out, start, stop, best->id)) return -1;
        start_offset = stop;
        i = stop;
    }
    if (start_offset < n && tok_spans_add(out, start_offset, n, -1)) return -1;
    return 0;
}

/* pre-tokenizes and BPE-encodes one stretch of normalized text */
static int encode_text(hone_tokenizer *t, const char *s, size_t n, int at_start, tok_ids *out)
{
    tok_plist_clear(&t->a);
    if (tok_plist_add(&t->a, s, n, at_start)) return -1;
    if (t->has_pre && tok_pretokenize(&t->pre, &t->a, &t->b)) return -1;
    for (size_t i = 0; i < t->a.n; i++)
        if (tok_bpe_encode(&t->bpe, t->a.text.s + t->a.p[i].off, t->a.p[i].n, out)) return -1;
    return 0;
}

int hone_tokenizer_encode(hone_tokenizer *t, const char *text, size_t n, int add_special, tok_ids *out, hone_err *err)
{
    size_t m;
    char *s = tok_utf8_repair(text, n, &m);
    if (!s) return hone_errf(err, HONE_ENOMEM, "out of memory");
    tok_spans raw = {0}, norm = {0}; /* tag: an added token's id, or -1 for text */
    tok_ids body = {0};
    int rc = split_added(t, s, m, 0, &raw) ? -1 : 0;
    for (size_t i = 0; i < raw.n && !rc; i++) {
        if (raw.v[i].tag >= 0) {
            rc = tok_ids_push(&body, raw.v[i].tag);
            continue;
        }
        const char *seg_s = s + raw.v[i].a;
        size_t seg_n = raw.v[i].b - raw.v[i].a;
        if (t->has_norm) {
            if (tok_normalize(&t->norm, seg_s, seg_n, &t->nbuf)) {
                rc = -1;
                break;
            }
            seg_s = t->nbuf.s ? t->nbuf.s : "";
            seg_n = t->nbuf.n;
        }
        /* nbuf may be reused by encode_text's callees? no: copy to keep it stable */
        char *copy = hone_strndup(seg_s, seg_n);
        if (!copy || split_added(t, copy, seg_n, 1, &norm)) {
            free(copy);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < norm.n && !rc; k++) {
            if (norm.v[k].tag >= 0) rc = tok_ids_push(&body, norm.v[k].tag);
            else
                rc = encode_text(t, copy + norm.v[k].a, norm.v[k].b - norm.v[k].a,
                                 raw.v[i].a == 0 && norm.v[k].a == 0, &body);
        }
        free(copy);
    }
    if (!rc) {
        if (add_special && t->ntpl) {
            for (size_t k = 0; k < t->ntpl && !rc; k++) {
                if (t->tpl[k] != -1) rc = tok_ids_push(out, t->tpl[k]);
                else
                    for (size_t q = 0; q < body.n && !rc; q++) rc = tok_ids_push(out, body.v[q]);
            }
        } else {
            for (size_t q = 0; q < body.n && !rc; q++) rc = tok_ids_push(out, body.v[q]);
        }
    }
    free(s);
    free(raw.v);
    free(norm.v);
    free(body.v);
    return rc ? hone_errf(err, HONE_ENOMEM, "out of memory while tokenizing") : 0;
}

/* ---- decoding ---- */

int hone_tokenizer_decode(const hone_tokenizer *t, const int32_t *ids, size_t n, int skip_special, tok_buf *out,
                          hone_err *err)
{
    tok_plist a = {0}, b = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const added_tok *ad = NULL;
        for (size_t k = 0; k < t->nadded && !ad; k++)
            if (t->added[k].id == ids[i]) ad = &t->added[k];
        if (ad) {
            if (skip_special && ad->special) continue;
            rc = tok_plist_add(&a, ad->original, ad->orig_n, 0);
        } else if (ids[i] >= 0 && ids[i] < t->bpe.nid && t->bpe.id_to_token[ids[i]]) {
            rc = tok_plist_add(&a, t->bpe.id_to_token[ids[i]], t->bpe.id_len[ids[i]], 0);
        } else {
            tok_plist_free(&a);
            return hone_errf(err, HONE_EINVAL, "token id %d is not in the vocabulary", ids[i]);
        }
    }
    if (!rc && t->has_decoder) {
        rc = dec_apply(&t->decoder, &a, &b);
        tok_plist t2 = a;
        a = b;
        b = t2;
    }
    out->n = 0;
    for (size_t i = 0; i < a.n && !rc; i++) {
        if (!t->has_decoder && i > 0) rc = tok_buf_addc(out, ' ');
        if (!rc) rc = tok_buf_add(out, a.text.s + a.p[i].off, a.p[i].n);
    }
    if (!rc && !out->s) rc = tok_buf_add(out, "", 0);
    tok_plist_free(&a);
    tok_plist_free(&b);
    return rc ? hone_errf(err, HONE_ENOMEM, "out of memory while decoding") : 0;
}
