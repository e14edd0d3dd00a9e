/* tok_text.c — normalizers and pre-tokenizers (tokenizers' normalizers/ and
 * pre_tokenizers/), including the split machinery with its five behaviours. */
#include "tok_text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "err.h"
#include "util.h"

enum {
    N_SEQ = 1, N_PREPEND, N_REPLACE, N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWER, N_STRIP,
    P_SEQ = 20, P_SPLIT, P_BYTELEVEL, P_METASPACE, P_DIGITS, P_WHITESPACE, P_WSSPLIT, P_PUNCT,
};

/* ---- the byte map ---- */

uint16_t tok_byte_to_cp[256];
static int16_t cp_to_byte[324];

void tok_bytemap_init(void)
{
    if (tok_byte_to_cp['!']) return;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        tok_byte_to_cp[b] = (uint16_t)(printable ? b : 256 + n++);
    }
    memset(cp_to_byte, 0xff, sizeof cp_to_byte);
    for (int b = 0; b < 256; b++) cp_to_byte[tok_byte_to_cp[b]] = (int16_t)b;
}

int tok_cp_to_byte(uint32_t cp)
{
    return cp < 324 ? cp_to_byte[cp] : -1;
}

/* ---- piece lists ---- */

int tok_plist_add(tok_plist *l, const char *s, size_t n, int at_start)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        tok_piece *p = realloc(l->p, cap * sizeof *p);
        if (!p) return -1;
        l->p = p;
        l->cap = cap;
    }
    size_t off = l->text.n;
    if (tok_buf_add(&l->text, s, n)) return -1;
    l->p[l->n++] = (tok_piece){off, n, at_start};
    return 0;
}

void tok_plist_clear(tok_plist *l)
{
    l->n = 0;
    l->text.n = 0;
}

void tok_plist_free(tok_plist *l)
{
    free(l->p);
    free(l->text.s);
    memset(l, 0, sizeof *l);
}

/* ---- patterns ---- */

/* The `tokenizers` package runs its regexes with Oniguruma, where \w also matches
* combining marks and joiners (Word = Alphabetic, M, Nd, Pc, Join_Control); PCRE2 10.42's UCP \w does not. Spell
 * \w (and \W outside classes) out so patterns mean what they mean there. */
#define ONIG_WORD "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"

static char *onig_compat(const char *re, size_t n, size_t *out_n)
{
    tok_buf b = {0};
    int in_class = 0, rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char e = re[i + 1];
            if (e == 'w') rc = tok_buf_add(&b, in_class ? ONIG_WORD : "[" ONIG_WORD "]", in_class ? strlen(ONIG_WORD) : strlen(ONIG_WORD) + 2);
            else if (e == 'W' && !in_class) rc = tok_buf_add(&b, "[^" ONIG_WORD "]", strlen(ONIG_WORD) + 3);
            else rc = tok_buf_add(&b, re + i, 2);
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            rc = tok_buf_addc(&b, c);
            /* a ']' right after '[' or '[^' is a literal */
            if (!rc && i + 1 < n && re[i + 1] == '^') rc = tok_buf_addc(&b, re[++i]);
            if (!rc && i + 1 < n && re[i + 1] == ']') rc = tok_buf_addc(&b, re[++i]);
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        rc = tok_buf_addc(&b, c);
    }
    if (rc) {
        free(b.s);
        return NULL;
    }
    *out_n = b.n;
    return b.s ? b.s : calloc(1, 1);
}

int tok_pattern_compile(tok_pattern *p, const char *re, size_t n, const char *json_path, hone_err *err)
{
    int code;
    PCRE2_SIZE at;
    size_t cn;
    char *pat = onig_compat(re, n, &cn);
    if (!pat) return hone_errf(err, HONE_ENOMEM, "out of memory");
    p->re = pcre2_compile((PCRE2_SPTR)pat, cn, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
    free(pat);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return hone_errf(err, HONE_EINVAL, "%s: regex does not compile (near offset %zu): %s", json_path, (size_t)at,
                         (const char *)msg);
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter if JIT is unavailable */
    return 0;
}

static void pattern_free(tok_pattern *p)
{
    free(p->literal);
    if (p->re) pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

/* {"String": "..."} or {"Regex": "..."} */
static int pattern_parse(tok_pattern *p, const cJSON *j, const char *json_path, hone_err *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "String"), *r = cJSON_GetObjectItemCaseSensitive(j, "Regex");
    if (cJSON_IsString(s)) {
        p->literal = hone_strdup(s->valuestring);
        p->literal_n = strlen(s->valuestring);
        return p->literal ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    if (cJSON_IsString(r)) return tok_pattern_compile(p, r->valuestring, strlen(r->valuestring), json_path, err);
    return hone_errf(err, HONE_EINVAL, "%s: pattern must be {\"String\": ...} or {\"Regex\": ...}", json_path);
}


/* tokenizers' find_matches: the whole of s as alternating non-matches and matches */
static int find_matches(const tok_pattern *p, const char *s, size_t n, tok_spans *out)
{
    out->n = 0;
    size_t prev = 0;
    if (p->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
        if (!md) return -1;
        size_t off = 0;
        while (off <= n) {
            int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t a = ov[0], b = ov[1];
            if (prev != a && tok_spans_add(out, prev, a, 0)) break;
            if (tok_spans_add(out, a, b, 1)) break;
            prev = b;
            if (b == a) {   /* an empty match: step over one character */
                if (a >= n) break;
                uint32_t cp;
                int len = tok_utf8_next((const unsigned char *)s + a, n - a, &cp);
                off = a + (len ? (size_t)len : 1);
            } else {
                off = b;
            }
        }
        pcre2_match_data_free(md);
    } else if (p->literal) {
        if (p->literal_n)
            for (size_t i = 0; i + p->literal_n <= n;) {
                if (!memcmp(s + i, p->literal, p->literal_n)) {
                    if (prev != i && tok_spans_add(out, prev, i, 0)) return -1;
                    if (tok_spans_add(out, i, i + p->literal_n, 1)) return -1;
                    i += p->literal_n;
                    prev = i;
                } else {
                    i++;
                }
            }
    } else {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int len = tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
            if (!len) len = 1;
            if (p->pred(cp)) {
                if (prev != i && tok_spans_add(out, prev, i, 0)) return -1;
                if (tok_spans_add(out, i, i + (size_t)len, 1)) return -1;
                prev = i + (size_t)len;
            }
            i += (size_t)len;
        }
    }
    if (prev != n && tok_spans_add(out, prev, n, 0)) return -1;
    return 0;
}

/* applies a split behaviour; the kept spans are written back into sp */
static void apply_behavior(tok_spans *sp, int behavior, int invert)
{
    if (invert)
        for (size_t i = 0; i < sp->n; i++) sp->v[i].tag = !sp->v[i].tag;
    size_t k = 0;
    if (behavior == SPLIT_REMOVED || behavior == SPLIT_ISOLATED) {
        for (size_t i = 0; i < sp->n; i++)
            if (behavior == SPLIT_ISOLATED || !sp->v[i].tag) sp->v[k++] = sp->v[i];
    } else if (behavior == SPLIT_MERGED_PREV || behavior == SPLIT_CONTIGUOUS) {
        int prev_match = 0;
        for (size_t i = 0; i < sp->n; i++) {
            int m = sp->v[i].tag;
            int merge = behavior == SPLIT_MERGED_PREV ? (m && !prev_match) : (m == prev_match);
            if (merge && k > 0) sp->v[k - 1].b = sp->v[i].b;
            else sp->v[k++] = (tok_span){sp->v[i].a, sp->v[i].b, 0};
            prev_match = m;
        }
    } else {   /* SPLIT_MERGED_NEXT: the same, walking backwards */
        int prev_match = 0;
        size_t top = sp->n;   /* build from the end into the tail of the array */
        for (size_t i = sp->n; i-- > 0;) {
            int m = sp->v[i].tag;
            if (m && !prev_match && top < sp->n) sp->v[top].a = sp->v[i].a;
            else sp->v[--top] = (tok_span){sp->v[i].a, sp->v[i].b, 0};
            prev_match = m;
        }
        for (size_t i = top; i < sp->n; i++) sp->v[k++] = sp->v[i];
    }
    sp->n = k;
}

/* splits every piece of in by the pattern into out */
static int split_pieces(const tok_plist *in, tok_plist *out, const tok_pattern *p, int behavior, int invert)
{
    tok_spans sp = {0};
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        const char *s = in->text.s + in->p[i].off;
        size_t n = in->p[i].n;
        if (find_matches(p, s, n, &sp)) {
            rc = -1;
            break;
        }
        apply_behavior(&sp, behavior, invert);
        for (size_t k = 0; k < sp.n && !rc; k++)
            if (sp.v[k].b > sp.v[k].a)
                rc = tok_plist_add(out, s + sp.v[k].a, sp.v[k].b - sp.v[k].a, in->p[i].at_start && sp.v[k].a == 0);
    }
    free(sp.v);
    return rc;
}

/* ---- parsing ---- */

void tok_stage_free(tok_stage *st)
{
    for (size_t i = 0; i < st->nkids; i++) tok_stage_free(&st->kids[i]);
    free(st->kids);
    pattern_free(&st->pat);
    free(st->text);
    memset(st, 0, sizeof *st);
}

static const char *jtype(const cJSON *j)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int jbool(const cJSON *j, const char *key, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int set_text(tok_stage *st, const cJSON *j, const char *key, const char *json_path, hone_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a string", json_path, key);
    st->text = hone_strdup(v->valuestring);
    st->text_n = strlen(v->valuestring);
    return st->text ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
}

static int parse_seq(tok_stage *st, const cJSON *list, const char *json_path, const char *field, int pre, hone_err *err)
{
    if (!cJSON_IsArray(list)) return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a list", json_path, field);
    st->nkids = (size_t)cJSON_GetArraySize(list);
    st->kids = calloc(st->nkids ? st->nkids : 1, sizeof *st->kids);
    if (!st->kids) return hone_errf(err, HONE_ENOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", json_path, field, i);
        int rc = pre ? tok_pretokenizer_parse(&st->kids[i], e, sub, err) : tok_normalizer_parse(&st->kids[i], e, sub, err);
        if (rc) return rc;
    }
    return 0;
}

int tok_normalizer_parse(tok_stage *st, const cJSON *j, const char *json_path, hone_err *err)
{
    memset(st, 0, sizeof *st);
    const char *t = jtype(j);
    if (!t) return hone_errf(err, HONE_EINVAL, "%s: no \"type\"", json_path);
    if (!strcmp(t, "Sequence")) {
        st->type = N_SEQ;
        return parse_seq(st, cJSON_GetObjectItemCaseSensitive(j, "normalizers"), json_path, "normalizers", 0, err);
    }
    if (!strcmp(t, "Prepend")) {
        st->type = N_PREPEND;
        return set_text(st, j, "prepend", json_path, err);
    }
    if (!strcmp(t, "Replace")) {
        st->type = N_REPLACE;
        int rc = pattern_parse(&st->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), json_path, err);
        return rc ? rc : set_text(st, j, "content", json_path, err);
    }
    if (!strcmp(t, "NFC")) return st->type = N_NFC, 0;
    if (!strcmp(t, "NFD")) return st->type = N_NFD, 0;
    if (!strcmp(t, "NFKC")) return st->type = N_NFKC, 0;
    if (!strcmp(t, "NFKD")) return st->type = N_NFKD, 0;
    if (!strcmp(t, "Lowercase")) return st->type = N_LOWER, 0;
    if (!strcmp(t, "Strip")) {
        st->type = N_STRIP;
        st->flag_a = jbool(j, "strip_left", 1);
        st->flag_b = jbool(j, "strip_right", 1);
        return 0;
    }
    return hone_errf(err, HONE_EUNSUPPORTED,
                     "%s: normalizer type \"%s\" is not supported (Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, "
                     "Lowercase, Strip)", json_path, t);
}

static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int is_punct(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) ||
                          (cp >= 0x7b && cp <= 0x7e);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

static int behavior_parse(const cJSON *j, int *out, const char *json_path, hone_err *err)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "behavior");
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    if (!b) return 0;
    for (int i = 0; i < 5; i++)
        if (cJSON_IsString(b) && !strcmp(b->valuestring, names[i])) return *out = i, 0;
    return hone_errf(err, HONE_EINVAL, "%s: behavior must be Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                     "Contiguous", json_path);
}

int tok_pretokenizer_parse(tok_stage *st, const cJSON *j, const char *json_path, hone_err *err)
{
    memset(st, 0, sizeof *st);
    const char *t = jtype(j);
    if (!t) return hone_errf(err, HONE_EINVAL, "%s: no \"type\"", json_path);
    if (!strcmp(t, "Sequence")) {
        st->type = P_SEQ;
        return parse_seq(st, cJSON_GetObjectItemCaseSensitive(j, "pretokenizers"), json_path, "pretokenizers", 1, err);
    }
    if (!strcmp(t, "Split")) {
        st->type = P_SPLIT;
        st->behavior = SPLIT_ISOLATED;
        st->invert = jbool(j, "invert", 0);
        int rc = behavior_parse(j, &st->behavior, json_path, err);
        return rc ? rc : pattern_parse(&st->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), json_path, err);
    }
    if (!strcmp(t, "ByteLevel")) {
        tok_bytemap_init();
        st->type = P_BYTELEVEL;
        st->flag_a = jbool(j, "add_prefix_space", 1);
        st->flag_b = jbool(j, "use_regex", 1);
        return st->flag_b ? tok_pattern_compile(&st->pat, gpt2_regex, sizeof gpt2_regex - 1, json_path, err) : 0;
    }
    if (!strcmp(t, "Metaspace")) {
        st->type = P_METASPACE;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replacement");
        const char *rep = cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81";
        uint32_t cp;
        if (!*rep || tok_utf8_next((const unsigned char *)rep, strlen(rep), &cp) != (int)strlen(rep))
            return hone_errf(err, HONE_EINVAL, "%s: replacement must be one character", json_path);
        st->repl_cp = cp;
        st->text = hone_strdup(rep);
        st->text_n = strlen(rep);
        st->flag_a = jbool(j, "split", 1);
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        st->scheme = 0;
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "first")) st->scheme = 1;
            else if (!strcmp(ps->valuestring, "never")) st->scheme = 2;
            else if (strcmp(ps->valuestring, "always") != 0)
                return hone_errf(err, HONE_EINVAL, "%s: prepend_scheme must be always, first or never", json_path);
        } else if (!jbool(j, "add_prefix_space", 1)) {
            st->scheme = 2;   /* older files: add_prefix_space = false */
        }
        st->pat.pred = NULL;
        return st->text ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    if (!strcmp(t, "Digits")) {
        st->type = P_DIGITS;
        st->flag_a = jbool(j, "individual_digits", 0);
        st->pat.pred = tok_is_numeric;
        return 0;
    }
    if (!strcmp(t, "Whitespace")) {
        st->type = P_WHITESPACE;
        static const char ws[] = "\\w+|[^\\w\\s]+";
        return tok_pattern_compile(&st->pat, ws, sizeof ws - 1, json_path, err);
    }
    if (!strcmp(t, "WhitespaceSplit")) {
        st->type = P_WSSPLIT;
        st->pat.pred = tok_is_whitespace;
        return 0;
    }
    if (!strcmp(t, "Punctuation")) {
        st->type = P_PUNCT;
        st->behavior = SPLIT_ISOLATED;
        st->pat.pred = is_punct;
        return behavior_parse(j, &st->behavior, json_path, err);
    }
    return hone_errf(err, HONE_EUNSUPPORTED,
                     "%s: pre-tokenizer type \"%s\" is not supported (Sequence, Split, ByteLevel, Metaspace, Digits, "
                     "Whitespace, WhitespaceSplit, Punctuation)", json_path, t);
}

/* ---- normalizing ---- */

static int replace_all(const tok_pattern *p, const char *s, size_t n, const char *with, size_t wn, tok_buf *out)
{
    tok_spans sp = {0};
    if (find_matches(p, s, n, &sp)) return -1;
    int rc = 0;
    for (size_t i = 0; i < sp.n && !rc; i++)
        rc = sp.v[i].tag ? tok_buf_add(out, with, wn) : tok_buf_add(out, s + sp.v[i].a, sp.v[i].b - sp.v[i].a);
    free(sp.v);
    return rc;
}

static int normalize1(const tok_stage *st, const char *s, size_t n, tok_buf *out)
{
    out->n = 0;
    switch (st->type) {
    case N_PREPEND:
        if (n && tok_buf_add(out, st->text, st->text_n)) return -1;
        return tok_buf_add(out, s, n);
    case N_REPLACE: return replace_all(&st->pat, s, n, st->text, st->text_n, out);
    case N_NFC:
    case N_NFD:
    case N_NFKC:
    case N_NFKD: {
        /* no ASCII character decomposes or composes, so ASCII text is its own normal form */
        size_t k = 0;
        while (k < n && !((unsigned char)s[k] & 0x80)) k++;
        if (k == n) return tok_buf_add(out, s, n);
        int opt = UTF8PROC_STABLE | (st->type == N_NFC || st->type == N_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                  (st->type >= N_NFKC ? UTF8PROC_COMPAT : 0);
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opt);
        if (len < 0) return tok_buf_add(out, s, n);   /* cannot happen on repaired text */
        int rc = tok_buf_add(out, (const char *)dst, (size_t)len);
        free(dst);
        return rc;
    }
    case N_LOWER:
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int len = tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
            if (!len) len = 1;
            char b[8];
            int k;
            if (cp == 0x130) k = tok_utf8_put(b, 'i'), k += tok_utf8_put(b + k, 0x307);   /* full mapping of U+0130 */
            else k = tok_utf8_put(b, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
            if (tok_buf_add(out, b, (size_t)k)) return -1;
            i += (size_t)len;
        }
        return 0;
    case N_STRIP: {
        size_t a = 0, b = n;
        if (st->flag_a)
            while (a < b) {
                uint32_t cp;
                int len = tok_utf8_next((const unsigned char *)s + a, b - a, &cp);
                if (!len || !tok_is_whitespace(cp)) break;
                a += (size_t)len;
            }
        if (st->flag_b)
            while (b > a) {
                size_t k = b - 1;
                while (k > a && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
                uint32_t cp;
                if (!tok_utf8_next((const unsigned char *)s + k, b - k, &cp) || !tok_is_whitespace(cp)) break;
                b = k;
            }
        return tok_buf_add(out, s + a, b - a);
    }
    }
    return tok_buf_add(out, s, n);
}

int tok_normalize(const tok_stage *st, const char *s, size_t n, tok_buf *out)
{
    if (st->type != N_SEQ) return normalize1(st, s, n, out);
    tok_buf a = {0}, b = {0};
    if (tok_buf_add(&a, s, n)) return -1;
    for (size_t i = 0; i < st->nkids; i++) {
        if (tok_normalize(&st->kids[i], a.s, a.n, &b)) {
            free(a.s), free(b.s);
            return -1;
        }
        tok_buf t = a;
        a = b;
        b = t;
    }
    out->n = 0;
    int rc = tok_buf_add(out, a.s, a.n);
    free(a.s), free(b.s);
    return rc;
}

/* ---- pre-tokenizing ---- */

static int bytelevel(const tok_stage *st, tok_plist *in, tok_plist *out)
{
    tok_plist mid = {0}, split = {0};
    tok_plist *src = in;
    tok_buf b = {0};
    int rc = 0;
    if (st->flag_a) {   /* a space in front of every piece that lacks one */
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.s + in->p[i].off;
            size_t n = in->p[i].n;
            b.n = 0;
            if (!(n && s[0] == ' ')) rc = tok_buf_addc(&b, ' ');
            if (!rc) rc = tok_buf_add(&b, s, n) || tok_plist_add(&mid, b.s, b.n, in->p[i].at_start);
        }
        src = &mid;
    }
    if (!rc && st->flag_b) {
        rc = split_pieces(src, &split, &st->pat, SPLIT_ISOLATED, 0);
        src = &split;
    }
    /* every byte to its stand-in character (one or two bytes of UTF-8: all are < U+0800),
     * written straight into out's text: this runs once per input byte */
    for (size_t i = 0; i < src->n && !rc; i++) {
        const unsigned char *s = (const unsigned char *)src->text.s + src->p[i].off;
        size_t n = src->p[i].n, at = out->text.n;
        if ((rc = tok_plist_add(out, "", 0, src->p[i].at_start)) || (rc = tok_buf_reserve(&out->text, 2 * n))) break;
        char *o = out->text.s + at;
        for (size_t k = 0; k < n; k++) {
            uint32_t cp = tok_byte_to_cp[s[k]];
            if (cp < 0x80) *o++ = (char)cp;
            else *o++ = (char)(0xc0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3f));
        }
        out->text.n = (size_t)(o - out->text.s);
        out->text.s[out->text.n] = '\0';
        out->p[out->n - 1].n = out->text.n - at;
    }
    free(b.s);
    tok_plist_free(&mid);
    tok_plist_free(&split);
    return rc;
}

static int metaspace(const tok_stage *st, tok_plist *in, tok_plist *out)
{
    tok_plist mid = {0};
    tok_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        const char *s = in->text.s + in->p[i].off;
        size_t n = in->p[i].n;
        b.n = 0;
        int starts = n >= st->text_n && !memcmp(s, st->text, st->text_n);
        if (st->scheme == 0 || (st->scheme == 1 && in->p[i].at_start)) {
            /* the prepend checks the piece after spaces became the replacement */
            int space_first = n && s[0] == ' ';
            if (!starts && !space_first) rc = tok_buf_add(&b, st->text, st->text_n);
        }
        for (size_t k = 0; k < n && !rc; k++)
            rc = s[k] == ' ' ? tok_buf_add(&b, st->text, st->text_n) : tok_buf_addc(&b, s[k]);
        if (!rc) rc = tok_plist_add(&mid, b.s ? b.s : "", b.n, in->p[i].at_start);
    }
    free(b.s);
    if (!rc && st->flag_a) {
        tok_pattern lit = {(char *)st->text, st->text_n, NULL, NULL};
        rc = split_pieces(&mid, out, &lit, SPLIT_MERGED_NEXT, 0);
    } else if (!rc) {
        for (size_t i = 0; i < mid.n && !rc; i++)
            rc = tok_plist_add(out, mid.text.s + mid.p[i].off, mid.p[i].n, mid.p[i].at_start);
    }
    tok_plist_free(&mid);
    return rc;
}

static int pretokenize1(const tok_stage *st, tok_plist *in, tok_plist *out)
{
    tok_plist_clear(out);
    switch (st->type) {
    case P_SPLIT: return split_pieces(in, out, &st->pat, st->behavior, st->invert);
    case P_BYTELEVEL: return bytelevel(st, in, out);
    case P_METASPACE: return metaspace(st, in, out);
    case P_DIGITS: return split_pieces(in, out, &st->pat, st->flag_a ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, 0);
    case P_WHITESPACE: return split_pieces(in, out, &st->pat, SPLIT_REMOVED, 1);
    case P_WSSPLIT: return split_pieces(in, out, &st->pat, SPLIT_REMOVED, 0);
    case P_PUNCT: return split_pieces(in, out, &st->pat, st->behavior, 0);
    }
    return -1;
}

int tok_pretokenize(const tok_stage *st, tok_plist *in, tok_plist *tmp)
{
    /* the result ends in `in`; tmp is scratch */
    if (st->type != P_SEQ) {
        if (pretokenize1(st, in, tmp)) return -1;
        tok_plist t = *in;
        *in = *tmp;
        *tmp = t;
        return 0;
    }
    for (size_t i = 0; i < st->nkids; i++)
        if (tok_pretokenize(&st->kids[i], in, tmp)) return -1;
    return 0;
}
