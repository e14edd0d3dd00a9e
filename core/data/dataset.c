/* dataset.c — loading JSONL records (text, prompt/completion, pre-tokenized), tokenizing them,
 * truncation, labelling through a collator, and the eval split. */
#include "dataset.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collator.h"
#include "err.h"
#include "lines.h"
#include "rng.h"
#include "util.h"

void hone_dataset_free(hone_dataset *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->ex[i].ids);
        free(d->ex[i].labels);
        free(d->ex[i].start);
    }
    free(d->ex);
    memset(d, 0, sizeof *d);
}

static int push(hone_dataset *d, hone_example_rec e, hone_err *err)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        hone_example_rec *p = realloc(d->ex, cap * sizeof *p);
        if (!p) return hone_errf(err, HONE_ENOMEM, "out of memory");
        d->ex = p;
        d->cap = cap;
    }
    d->ex[d->n++] = e;
    return 0;
}

/* an array of integers in [lo, hi) (or exactly -100 when allow_ignore) */
static int ints(const cJSON *a, int32_t **out, int *n, int lo, int hi, int allow_ignore, const char *field,
                const char *where, hone_err *err)
{
    if (!cJSON_IsArray(a)) return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a list of integers", where, field);
    int len = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(len ? len : 1) * sizeof *v);
    if (!v) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        double x = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        int ok = x == floor(x) && ((x >= lo && x < hi) || (allow_ignore && x == -100));
        if (!ok) {
            free(v);
            return hone_errf(err, HONE_EINVAL, "%s: %s[%d] = %g is not a token id in [%d, %d)%s", where, field, i, x, lo,
                             hi, allow_ignore ? " or -100" : "");
        }
        v[i] = (int32_t)x;
    }
    *out = v;
    *n = len;
    return 0;
}

static void skip(hone_dataset *d, long *counter, const char *where)
{
    (*counter)++;
    if (!d->stats.first_skip[0]) snprintf(d->stats.first_skip, sizeof d->stats.first_skip, "%s", where);
}

/* ids of text (+ eos text unless it already ends with it), with the tokenizer's specials */
static int encode(hone_tokenizer *tok, const char *text, const char *eos, int32_t **ids, int *n, hone_err *err)
{
    size_t len = strlen(text), el = eos ? strlen(eos) : 0;
    char *buf = NULL;
    if (el && !(len >= el && !memcmp(text + len - el, eos, el))) {
        buf = malloc(len + el + 1);
        if (!buf) return hone_errf(err, HONE_ENOMEM, "out of memory");
        memcpy(buf, text, len);
        memcpy(buf + len, eos, el + 1);
        text = buf;
        len += el;
    }
    tok_ids out = {0};
    int rc = hone_tokenizer_encode(tok, text, len, 1, &out, err);
    free(buf);
    if (rc) {
        free(out.v);
        return rc;
    }
    *ids = out.v;
    *n = (int)out.n;
    return 0;
}

static int concat(const char *a, const char *b, char **out, hone_err *err)
{
    size_t la = strlen(a), lb = strlen(b);
    *out = malloc(la + lb + 1);
    if (!*out) return hone_errf(err, HONE_ENOMEM, "out of memory");
    memcpy(*out, a, la);
    memcpy(*out + la, b, lb + 1);
    return 0;
}

/* ---- chat templates ------------------------------------------------------------
 * The built-in templates render messages as the models' own Jinja templates do, as text
 * pieces each marked trained or not (an assistant turn's output: its content and the
 * end-of-turn token). The whole text is tokenized once, without added specials (the
 * template writes them, as apply_chat_template does), and a token is trained when it lies
 * between the token counts of the text before and through a trained piece. */

typedef struct piece {
    char *text;
    int trained;
} piece;

typedef struct chat_render {
    piece p[512];
    int n;
} chat_render;

static int put(chat_render *r, int trained, hone_err *err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(chat_render *r, int trained, hone_err *err, const char *fmt, ...)
{
    if (r->n == (int)(sizeof r->p / sizeof r->p[0])) return hone_errf(err, HONE_EINVAL, "more than 170 messages");
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = malloc((size_t)len + 1);
    if (!t) return hone_errf(err, HONE_ENOMEM, "out of memory");
    va_start(ap, fmt);
    vsnprintf(t, (size_t)len + 1, fmt, ap);
    va_end(ap);
    r->p[r->n++] = (piece){t, trained};
    return 0;
}

/* Python's str.strip() on ASCII whitespace, into a new string */
static char *strip(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\v' ||
                 s[n - 1] == '\f'))
        n--;
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, s, n);
        t[n] = 0;
    }
    return t;
}

static const char *token_text(hone_tokenizer *tok, int32_t id, char *buf, size_t n)
{
    tok_buf b = {0};
    hone_err err = {0};
    buf[0] = 0;
    if (id >= 0 && hone_tokenizer_decode(tok, &id, 1, 0, &b, &err) == 0) snprintf(buf, n, "%.*s", (int)b.n, b.s);
    free(b.s);
    return buf;
}

static int render_chat(chat_render *r, const char *tmpl, hone_tokenizer *tok, const cJSON *msgs, const char *where,
                       hone_err *err)
{
    char bos[64], eos[64];
    token_text(tok, hone_tokenizer_bos(tok), bos, sizeof bos);
    token_text(tok, hone_tokenizer_eos(tok), eos, sizeof eos);
    int n = cJSON_GetArraySize(msgs), rc = 0, first = 1;
    const char *system = NULL;
    if (!strcmp(tmpl, "llama3") || !strcmp(tmpl, "mistral")) rc = put(r, 0, err, "%s", bos);   /* llama2: per turn */
    int i = 0;
    for (const cJSON *m = msgs->child; m && !rc; m = m->next, i++) {
        const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
        const char *content = cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring;
        int asst = !strcmp(role, "assistant");
        if (!strcmp(tmpl, "chatml")) {
            rc = put(r, 0, err, "<|im_start|>%s\n", role);
            if (!rc) rc = put(r, asst, err, "%s<|im_end|>", content);
            if (!rc) rc = put(r, 0, err, "\n");
        } else if (!strcmp(tmpl, "llama3")) {
            char *c = strip(content);
            if (!c) return hone_errf(err, HONE_ENOMEM, "out of memory");
            rc = put(r, 0, err, "<|start_header_id|>%s<|end_header_id|>\n\n", role);
            if (!rc) rc = put(r, asst, err, "%s<|eot_id|>", c);
            free(c);
        } else {   /* llama2, mistral: [INST] turns; llama2 folds a system message into the first user turn */
            if (i == 0 && !strcmp(role, "system")) {
                if (!strcmp(tmpl, "mistral"))
                    return hone_errf(err, HONE_EINVAL, "%s: the mistral template has no system role", where);
                system = content;
                continue;
            }
            if (!strcmp(role, "user")) {
                char *c = strip(content);
                if (!c) return hone_errf(err, HONE_ENOMEM, "out of memory");
                if (!strcmp(tmpl, "llama2")) {
                    char *sc = NULL;
                    if (first && system) {
                        size_t need = strlen(system) + strlen(content) + 32;
                        sc = malloc(need);
                        if (sc) snprintf(sc, need, "<<SYS>>\n%s\n<</SYS>>\n\n%s", system, content);
                        free(c);
                        c = sc ? strip(sc) : NULL;
                        free(sc);
                        if (!c) return hone_errf(err, HONE_ENOMEM, "out of memory");
                    }
                    rc = put(r, 0, err, "%s[INST] %s [/INST]", bos, c);
                } else {
                    rc = put(r, 0, err, "[INST] %s [/INST]", content);
                }
                free(c);
                first = 0;
            } else if (asst) {
                if (!strcmp(tmpl, "llama2")) {
                    char *c = strip(content);
                    if (!c) return hone_errf(err, HONE_ENOMEM, "out of memory");
                    rc = put(r, 1, err, " %s %s", c, eos);
                    free(c);
                } else {
                    rc = put(r, 1, err, "%s%s", content, eos);
                }
            } else {
                return hone_errf(err, HONE_EINVAL, "%s: the %s template has no \"%s\" role", where, tmpl, role);
            }
        }
    }
    (void)n;
    return rc;
}

static const char *pick_template(hone_tokenizer *tok)
{
    if (hone_tokenizer_token_id(tok, "<|im_start|>") >= 0) return "chatml";
    if (hone_tokenizer_token_id(tok, "<|start_header_id|>") >= 0) return "llama3";
    if (hone_tokenizer_token_id(tok, "[INST]") >= 0) return "mistral";
    if (hone_tokenizer_bos(tok) >= 0) return "llama2";
    return NULL;
}

/* Where text[0, at) ends in the token list ids of the whole text: *idx is the number of
 * tokens that text[0, at) shares with it; *straddle is set when ids[*idx] also holds
 * characters before `at` (a merge across the boundary). */
static int boundary(hone_tokenizer *tok, const char *text, size_t at, const int32_t *ids, size_t n, size_t *idx,
                    int *straddle, hone_err *err)
{
    tok_ids pre = {0};
    int rc = hone_tokenizer_encode(tok, text, at, 0, &pre, err);
    if (rc) {
        free(pre.v);
        return rc;
    }
    size_t i = 0;
    while (i < pre.n && i < n && pre.v[i] == ids[i]) i++;
    *idx = i;
    *straddle = i < pre.n;
    free(pre.v);
    return 0;
}

/* messages -> ids, and labels = the ids of trained pieces */
static int encode_chat(hone_example_rec *e, const hone_data_opts *o, const cJSON *msgs, const char *where,
                       hone_err *err)
{
    if (!cJSON_IsArray(msgs) || !cJSON_GetArraySize(msgs))
        return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a non-empty list of messages", where, o->messages_field);
    int k = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, k++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(c))
            return hone_errf(err, HONE_EINVAL, "%s: %s[%d] needs string \"role\" and \"content\"", where,
                             o->messages_field, k);
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant"))
            return hone_errf(err, HONE_EINVAL, "%s: %s[%d]: role \"%s\" is not system, user or assistant", where,
                             o->messages_field, k, role->valuestring);
    }
    const char *tmpl = !strcmp(o->chat_template, "auto") ? pick_template(o->tok) : o->chat_template;
    if (!tmpl && !o->chat_fn)
        return hone_errf(err, HONE_EINVAL, "%s: data.chat_template = \"auto\" cannot tell this tokenizer's chat format; "
                         "set it (chatml, llama3, llama2, mistral)", where);
    chat_render r = {.n = 0};
    int rc = 0;
    if (o->chat_fn) {   /* the experiment's Lua template */
        char **texts = NULL;
        int *trained = NULL, np = 0;
        rc = o->chat_fn(o->chat_ctx, msgs, &texts, &trained, &np, err);
        if (rc) hone_err_prefix(err, "%s: data.chat_function: ", where);
        if (!rc && np > (int)(sizeof r.p / sizeof r.p[0]))
            rc = hone_errf(err, HONE_EINVAL, "%s: data.chat_function returned %d pieces, more than 512", where, np);
        for (int i = 0; i < np; i++) {
            if (!rc) r.p[r.n++] = (piece){texts[i], trained[i]};
            else free(texts[i]);
        }
        free(texts);
        free(trained);
    } else {
        rc = render_chat(&r, tmpl, o->tok, msgs, where, err);
    }
    size_t total = 0;
    for (int i = 0; i < r.n; i++) total += strlen(r.p[i].text);
    char *text = rc ? NULL : malloc(total + 1);
    if (!rc && !text) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    size_t at = 0;
    tok_ids all = {0};
    if (!rc) {
        for (int i = 0; i < r.n; i++) {
            size_t l = strlen(r.p[i].text);
            memcpy(text + at, r.p[i].text, l);
            at += l;
        }
        text[at] = 0;
        rc = hone_tokenizer_encode(o->tok, text, at, 0, &all, err);
    }
    if (!rc) {
        e->n = (int)all.n;
        e->ids = all.v;
        all.v = NULL;
        e->labels = malloc((all.n ? all.n : 1) * sizeof *e->labels);
        if (!e->labels) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        for (int t = 0; !rc && t < e->n; t++) e->labels[t] = -100;
        /* HF marks the tokens from the one holding a piece's first character through the one
         * holding its last; a prefix's tokens equal the full text's up to the boundary, and
         * where they part, that full-text token straddles it */
        size_t start = 0;
        for (int i = 0; i < r.n && !rc; i++) {
            size_t len = strlen(r.p[i].text), first = 0, last = 0;
            if (r.p[i].trained && len) {
                int straddle;
                rc = boundary(o->tok, text, start, e->ids, (size_t)e->n, &first, &straddle, err);
                if (!rc) rc = boundary(o->tok, text, start + len, e->ids, (size_t)e->n, &last, &straddle, err);
                if (!rc && !straddle) last--;   /* a clean end: the token before it is the last */
                for (size_t t = first; !rc && t <= last && t < (size_t)e->n; t++) e->labels[t] = e->ids[t];
            }
            start += len;
        }
        e->given_labels = 1;
        e->chat = 1;
    }
    free(all.v);
    free(text);
    for (int i = 0; i < r.n; i++) free(r.p[i].text);
    return rc;
}

/* One record into d (its examples and counts), with o->tok as the tokenizer. */
static int parse_record(hone_dataset *d, const hone_data_opts *o, const char *eos, const char *line, size_t len,
                        int32_t record, const char *where, hone_err *err)
{
    int rc = 0;
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return hone_errf(err, HONE_EINVAL, "%s: not a JSON object", where);
    }
    d->stats.records++;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "input_ids");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, o->text_field);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, o->prompt_field);
    const cJSON *completion = cJSON_GetObjectItemCaseSensitive(j, o->completion_field);
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(j, o->messages_field);
    hone_example_rec e = {.record = record};
    int nl = 0, keep = 1;
    if (ids) {
        rc = ints(ids, &e.ids, &e.n, 0, o->vocab, 0, "input_ids", where, err);
        if (!rc && e.n == 0) {
            skip(d, &d->stats.skipped_empty, where);
            keep = 0;
        }
        if (!rc && keep && labels) {
            rc = ints(labels, &e.labels, &nl, 0, o->vocab, 1, "labels", where, err);
            if (!rc && nl != e.n)
                rc = hone_errf(err, HONE_EINVAL, "%s: %d labels for %d input_ids", where, nl, e.n);
            e.given_labels = 1;
        }
    } else if (prompt || completion || text || messages) {
        if (!o->tok) {
            rc = hone_errf(err, HONE_EINVAL,
                           "%s: text records need a tokenizer: the model directory has no tokenizer.json "
                           "(set model.tokenizer)", where);
        } else if (prompt || completion) {
            const char *fp = o->prompt_field, *fc = o->completion_field;
            if (!prompt || !completion)
                rc = hone_errf(err, HONE_EINVAL, "%s: a prompt/completion record needs both \"%s\" and \"%s\"",
                               where, fp, fc);
            else if (!cJSON_IsString(prompt) || !cJSON_IsString(completion))
                rc = hone_errf(err, HONE_EINVAL, "%s: \"%s\" and \"%s\" must be strings (a conversational "
                               "prompt/completion is not supported yet)", where, fp, fc);
            else if (!*completion->valuestring) {
                skip(d, &d->stats.skipped_empty, where);
                keep = 0;
            } else {
                int32_t *pids = NULL;
                int pn = 0;
                char *both = NULL;
                rc = encode(o->tok, prompt->valuestring, NULL, &pids, &pn, err);
                if (!rc) rc = concat(prompt->valuestring, completion->valuestring, &both, err);
                if (!rc) rc = encode(o->tok, both, eos, &e.ids, &e.n, err);
                if (!rc) {
                    /* the completion starts where the two tokenizations diverge, as TRL 1.16's
                     * common_prefix_length (0.19 masked len(prompt ids) tokens whatever they were) */
                    int cp = 0;
                    while (cp < pn && cp < e.n && pids[cp] == e.ids[cp]) cp++;
                    e.has_prompt = 1;
                    e.prompt_len = cp;
                    if (cp < pn) d->stats.prefix_mismatch++;
                }
                free(pids);
                free(both);
            }
        } else if (text) {
            if (!cJSON_IsString(text)) rc = hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a string", where, o->text_field);
            else if (!*text->valuestring) {
                skip(d, &d->stats.skipped_empty, where);
                keep = 0;
            } else {
                rc = encode(o->tok, text->valuestring, eos, &e.ids, &e.n, err);
            }
        } else {
            rc = encode_chat(&e, o, messages, where, err);
        }
        if (!rc && keep && e.n == 0) {   /* e.g. text that is all NUL characters */
            skip(d, &d->stats.skipped_empty, where);
            keep = 0;
        }
        for (int t = 0; !rc && keep && t < e.n; t++)
            if (e.ids[t] < 0 || e.ids[t] >= o->vocab)
                rc = hone_errf(err, HONE_EINVAL, "%s: the tokenizer gives id %d, outside the model's vocabulary of %d",
                               where, e.ids[t], o->vocab);
    } else {
        skip(d, &d->stats.skipped_shape, where);
        keep = 0;
    }
    cJSON_Delete(j);
    if (!rc && keep && e.n > o->max_len) {   /* keep the start, as TRL's truncation does */
        e.n = o->max_len;
        if (e.prompt_len > e.n) e.prompt_len = e.n;
        d->stats.truncated++;
    }
    if (!rc && keep) rc = push(d, e, err);
    if (rc || !keep) {
        free(e.ids);
        free(e.labels);
    }
    return rc;
}

typedef struct rec_ref {
    size_t off, len;
    long lineno;
} rec_ref;

typedef struct load_job {
    const hone_data_opts *o;   /* o->tok: this job's own tokenizer */
    const char *path, *eos, *text;
    const rec_ref *recs;
    size_t first, count;
    hone_dataset part;
    hone_err err;
    int rc;
} load_job;

static void *load_worker(void *arg)
{
    load_job *j = arg;
    char where[4200];
    for (size_t k = j->first; k < j->first + j->count && !j->rc; k++) {
        const rec_ref *r = &j->recs[k];
        snprintf(where, sizeof where, "%s:%ld", j->path, r->lineno);
        j->rc = parse_record(&j->part, j->o, j->eos, j->text + r->off, r->len, (int32_t)k, where, &j->err);
    }
    return NULL;
}

static char *eos_text(hone_tokenizer *tok)
{
    if (!tok || hone_tokenizer_eos(tok) < 0) return NULL;
    int32_t id = hone_tokenizer_eos(tok);
    tok_buf b = {0};
    hone_err err = {0};
    char *eos = NULL;
    if (hone_tokenizer_decode(tok, &id, 1, 0, &b, &err) == 0 && b.n && (eos = malloc(b.n + 1))) {
        memcpy(eos, b.s, b.n);
        eos[b.n] = 0;
    }
    free(b.s);
    return eos;
}

/* a line the loader passes over: records are the other lines, numbered from 0 */
static int blank_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    return i == len;
}

int hone_dataset_records(const hone_dataset *d, const char *path, char ***out, hone_err *err)
{
    *out = calloc(d->n ? d->n : 1, sizeof **out);
    if (!*out) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int32_t top = -1;
    for (size_t i = 0; i < d->n; i++) top = d->ex[i].record > top ? d->ex[i].record : top;
    /* which examples hold each record (an eval split holds each once) */
    long *of = malloc((top >= 0 ? (size_t)top + 1 : 1) * sizeof *of);
    hone_lines *lr = NULL;
    int rc = of ? hone_lines_open(&lr, path, err) : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (int32_t r = 0; of && r <= top; r++) of[r] = -1;
    for (size_t i = 0; !rc && i < d->n; i++)
        if (d->ex[i].record >= 0) of[d->ex[i].record] = (long)i;
    const char *line;
    size_t len;
    long lineno = 0, rec = 0;
    while (!rc && rec <= top && (rc = hone_lines_next(lr, &line, &len, &lineno, err)) == 1) {
        rc = 0;
        if (blank_line(line, len)) continue;
        if (of[rec] >= 0 && !((*out)[of[rec]] = hone_strdup(line))) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        rec++;
    }
    if (lr) hone_lines_close(lr);
    free(of);
    if (rc) {
        for (size_t i = 0; i < d->n; i++) free((*out)[i]);
        free(*out);
        *out = NULL;
    }
    return rc;
}

int hone_dataset_load(hone_dataset *d, const char *path, const hone_data_opts *o, hone_err *err)
{
    /* the records' lines, in memory (the examples will be anyway), up to data.limit */
    hone_lines *lr;
    int rc = hone_lines_open(&lr, path, err);
    if (rc) return rc;
    char *text = NULL;
    rec_ref *recs = NULL;
    size_t ntext = 0, captext = 0, nrec = 0, caprec = 0;
    const char *line;
    size_t len;
    long lineno = 0;
    while ((rc = hone_lines_next(lr, &line, &len, &lineno, err)) == 1) {
        rc = 0;
        if (o->limit > 0 && (long)nrec >= o->limit) break;
        if (nrec >= 0x7fffffff) {
            rc = hone_errf(err, HONE_EINVAL, "%s: more than 2^31 - 1 records", path);
            break;
        }
        if (blank_line(line, len)) continue;
        if (ntext + len + 1 > captext || nrec == caprec) {
            size_t ct = captext, cr = caprec;
            while (ntext + len + 1 > ct) ct = ct ? ct * 2 : 1 << 16;
            if (nrec == cr) cr = cr ? cr * 2 : 1024;
            char *t = realloc(text, ct);
            if (t) text = t;
            rec_ref *r = t ? realloc(recs, cr * sizeof *recs) : NULL;
            if (r) recs = r;
            if (!t || !r) {
                rc = hone_errf(err, HONE_ENOMEM, "%s: out of memory reading the records", path);
                break;
            }
            captext = ct;
            caprec = cr;
        }
        memcpy(text + ntext, line, len);
        text[ntext + len] = 0;
        recs[nrec++] = (rec_ref){ntext, len, lineno};
        ntext += len + 1;
    }
    hone_lines_close(lr);
    if (rc < 0) {
        free(text);
        free(recs);
        return rc;
    }
    /* tokenize in parallel, each thread with its own tokenizer, in contiguous ranges so
     * the merged examples keep file order and the first bad line is reported */
    int nt = o->threads > 1 && o->tok && !o->chat_fn ? o->threads : 1;   /* Lua runs on one thread */
    if ((size_t)nt > nrec / 64 + 1) nt = (int)(nrec / 64 + 1);
    load_job *jobs = calloc((size_t)nt, sizeof *jobs);
    hone_data_opts *opts = calloc((size_t)nt, sizeof *opts);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    char *eos = eos_text(o->tok);
    if (!jobs || !opts || !th) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (int k = 0; k < nt && !rc; k++) {
        opts[k] = *o;
        if (k > 0 && (rc = hone_tokenizer_clone(&opts[k].tok, o->tok, err))) opts[k].tok = NULL;
        size_t per = nrec / (size_t)nt, extra = nrec % (size_t)nt;
        jobs[k] = (load_job){.o = &opts[k], .path = path, .eos = eos, .text = text, .recs = recs,
                             .first = (size_t)k * per + ((size_t)k < extra ? (size_t)k : extra),
                             .count = per + ((size_t)k < extra)};
    }
    int started = 0;
    for (int k = 1; k < nt && !rc; k++, started = k)
        if (pthread_create(&th[k], NULL, load_worker, &jobs[k]) != 0) rc = hone_errf(err, HONE_EIO, "cannot start a thread");
    if (!rc) load_worker(&jobs[0]);
    for (int k = 1; k < started; k++) pthread_join(th[k], NULL);
    size_t n0 = d->n;
    for (int k = 0; k < nt && jobs && !rc; k++) {   /* merge in order; the first failure wins */
        if (jobs[k].rc) {
            *err = jobs[k].err;
            rc = jobs[k].rc;
            break;
        }
        hone_data_stats *a = &d->stats, *b = &jobs[k].part.stats;
        a->records += b->records;
        a->skipped_shape += b->skipped_shape;
        a->skipped_empty += b->skipped_empty;
        a->truncated += b->truncated;
        a->prefix_mismatch += b->prefix_mismatch;
        if (!a->first_skip[0]) memcpy(a->first_skip, b->first_skip, sizeof a->first_skip);
        for (size_t i = 0; i < jobs[k].part.n && !rc; i++) {
            rc = push(d, jobs[k].part.ex[i], err);
            if (!rc) jobs[k].part.ex[i] = (hone_example_rec){0};
        }
    }
    for (int k = 0; k < nt && jobs; k++) {
        hone_dataset_free(&jobs[k].part);
        if (k > 0) hone_tokenizer_free(opts[k].tok);
    }
    free(jobs);
    free(opts);
    free(th);
    free(eos);
    free(text);
    free(recs);
    if (rc) {   /* nothing of a failed file stays */
        for (size_t i = n0; i < d->n; i++) free(d->ex[i].ids), free(d->ex[i].labels), free(d->ex[i].start);
        d->n = n0;
        return rc;
    }
    if (d->n == 0)
        return hone_errf(err, HONE_EINVAL,
                         "%s: no usable record (%ld read: %ld without a text / prompt+completion / messages / "
                         "input_ids field, %ld empty)%s%s",
                         path, d->stats.records, d->stats.skipped_shape, d->stats.skipped_empty,
                         d->stats.first_skip[0] ? "; the first skipped is " : "", d->stats.first_skip);
    return 0;
}

int hone_dataset_label(hone_dataset *d, const hone_feature *collator, void *state, int32_t pad_id,
                       hone_collate_stats *stats, hone_err *err)
{
    for (size_t i = 0; i < d->n; i++) {
        hone_example_rec *e = &d->ex[i];
        int32_t *lab = malloc((size_t)e->n * sizeof *lab);
        if (!lab) return hone_errf(err, HONE_ENOMEM, "out of memory");
        hone_example x = {.ids = e->ids, .labels = e->given_labels ? e->labels : NULL, .n = (size_t)e->n,
                          .prompt_len = (size_t)e->prompt_len, .has_prompt = e->has_prompt};
        int rc = hone_collator_label(collator->vtable, state, &x, lab, pad_id, stats, err);
        if (rc) {
            free(lab);
            return rc;
        }
        free(e->labels);
        e->labels = lab;
    }
    return 0;
}

void hone_dataset_drop_untrained(hone_dataset *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->n; i++) {
        hone_example_rec *e = &d->ex[i];
        int trained = 0;
        for (int t = 0; t < e->n && !trained; t++) trained = e->labels[t] != -100;
        if (e->has_prompt && e->prompt_len >= e->n && !trained) {
            free(e->ids), free(e->labels), free(e->start);
            d->stats.dropped++;
        } else {
            d->ex[kept++] = *e;
        }
    }
    d->n = kept;
}

typedef struct len_idx {
    int len;
    size_t i;
} len_idx;

static int by_length_desc(const void *a, const void *b)
{
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);   /* stable: file order among equals */
}

int hone_dataset_pack(hone_dataset *d, int max_len, double *efficiency, hone_err *err)
{
    size_t n = d->n, nrows = 0;
    size_t *order = malloc((n ? n : 1) * sizeof *order), *row_of = malloc((n ? n : 1) * sizeof *row_of);
    int *room = malloc((n ? n : 1) * sizeof *room);
    /* rows by their free room: head[r] is a row with r tokens free, next[] chains the rest */
    long *head = malloc(((size_t)max_len + 1) * sizeof *head), *next = malloc((n ? n : 1) * sizeof *next);
    if (!order || !row_of || !room || !head || !next) {
        free(order), free(row_of), free(room), free(head), free(next);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    for (int r = 0; r <= max_len; r++) head[r] = -1;
    len_idx *li = malloc((n ? n : 1) * sizeof *li);
    if (!li) {
        free(order), free(row_of), free(room), free(head), free(next);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) li[i] = (len_idx){d->ex[i].n, i};
    qsort(li, n, sizeof *li, by_length_desc);
    for (size_t i = 0; i < n; i++) order[i] = li[i].i;
    free(li);
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        int len = d->ex[i].n, r = len;
        while (r <= max_len && head[r] < 0) r++;   /* the fullest row it fits */
        size_t row;
        if (r <= max_len) {
            row = (size_t)head[r];
            head[r] = next[row];
        } else {
            row = nrows++;
            room[row] = max_len;
        }
        room[row] -= len;
        next[row] = head[room[row]];
        head[room[row]] = (long)row;
        row_of[i] = row;
    }
    hone_example_rec *rows = calloc(nrows ? nrows : 1, sizeof *rows);
    int rc = rows ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t r = 0; r < nrows && !rc; r++) {
        int len = max_len - room[r];
        rows[r].record = -1;
        rows[r].ids = malloc((size_t)len * sizeof(int32_t));
        rows[r].labels = malloc((size_t)len * sizeof(int32_t));
        rows[r].start = malloc((size_t)len * sizeof(int32_t));
        if (!rows[r].ids || !rows[r].labels || !rows[r].start) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    long tokens = 0;
    for (size_t k = 0; k < n && !rc; k++) {   /* documents in the order they were placed */
        size_t i = order[k];
        hone_example_rec *row = &rows[row_of[i]], *e = &d->ex[i];
        int at = row->n;
        memcpy(row->ids + at, e->ids, (size_t)e->n * sizeof *e->ids);
        memcpy(row->labels + at, e->labels, (size_t)e->n * sizeof *e->labels);
        row->labels[at] = -100;
        for (int t = 0; t < e->n; t++) row->start[at + t] = at;
        row->n += e->n;
        row->docs++;
        tokens += e->n;
    }
    if (rc) {
        for (size_t r = 0; rows && r < nrows; r++) free(rows[r].ids), free(rows[r].labels), free(rows[r].start);
        free(rows);
    } else {
        for (size_t i = 0; i < n; i++) free(d->ex[i].ids), free(d->ex[i].labels), free(d->ex[i].start);
        free(d->ex);
        d->ex = rows;
        d->n = d->cap = nrows;
        *efficiency = nrows ? (double)tokens / ((double)nrows * max_len) : 0;
    }
    free(order), free(row_of), free(room), free(head), free(next);
    return rc;
}

void hone_permutation(size_t *perm, size_t n, uint64_t seed)
{
    hone_rng rng;
    hone_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(hone_rng_u64(&rng) % i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int hone_group_by_length(size_t *order, size_t n, const hone_dataset *d, size_t batch, hone_err *err)
{
    size_t mult = batch ? n / (batch * 4) : 0;
    mult = mult > 50 ? 50 : mult ? mult : 1;
    size_t mb = mult * (batch ? batch : 1), best = 0;
    uint64_t *key = malloc((mb < n ? mb : n ? n : 1) * sizeof *key);
    size_t *was = malloc((mb < n ? mb : n ? n : 1) * sizeof *was);
    if (!key || !was) {
        free(key), free(was);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    for (size_t s = 0; s < n; s += mb) {
        size_t m = n - s < mb ? n - s : mb;
        /* longest first; equal lengths keep their order, as Python's stable sorted() */
        for (size_t k = 0; k < m; k++) {
            was[k] = order[s + k];
            key[k] = (uint64_t)(UINT32_MAX - (uint32_t)d->ex[was[k]].n) << 32 | (uint64_t)k;
        }
        qsort(key, m, sizeof *key, cmp_u64);
        for (size_t k = 0; k < m; k++) order[s + k] = was[key[k] & UINT32_MAX];
        if (d->ex[order[s]].n > d->ex[order[best]].n) best = s;   /* the first of the longest */
    }
    if (n) {
        size_t t = order[0];
        order[0] = order[best];
        order[best] = t;
    }
    free(key), free(was);
    return 0;
}

int hone_dataset_split(hone_dataset *d, hone_dataset *eval, double fraction, uint64_t seed, hone_err *err)
{
    size_t ne = (size_t)ceil(fraction * (double)d->n);
    if (ne >= d->n)
        return hone_errf(err, HONE_EINVAL, "data.eval_fraction %g of %zu examples leaves none to train on", fraction, d->n);
    size_t *perm = malloc(d->n * sizeof *perm);
    char *is_eval = calloc(d->n, 1);
    if (!perm || !is_eval) {
        free(perm);
        free(is_eval);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    hone_permutation(perm, d->n, seed);
    for (size_t i = 0; i < ne; i++) is_eval[perm[i]] = 1;
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (is_eval[i] && !rc) rc = push(eval, d->ex[i], err);
        else if (is_eval[i]) {
            free(d->ex[i].ids);
            free(d->ex[i].labels);
        } else d->ex[k++] = d->ex[i];
    }
    d->n = k;
    free(perm);
    free(is_eval);
    return rc;
}
