/* dataset.c — loading JSONL records (text, prompt/completion, pre-tokenized), tokenizing them,
 * truncation, labelling through a collator, and the eval split. */
#include "dataset.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "lines.h"
#include "rng.h"

void hone_dataset_free(hone_dataset *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->ex[i].ids);
        free(d->ex[i].labels);
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

int hone_dataset_load(hone_dataset *d, const char *path, const hone_data_opts *o, hone_err *err)
{
    hone_lines *r;
    int rc = hone_lines_open(&r, path, err);
    if (rc) return rc;
    char *eos = NULL;
    if (o->tok && hone_tokenizer_eos(o->tok) >= 0) {   /* TRL appends the eos token's text */
        int32_t id = hone_tokenizer_eos(o->tok);
        tok_buf b = {0};
        if (hone_tokenizer_decode(o->tok, &id, 1, 0, &b, err) == 0 && b.n) {
            eos = malloc(b.n + 1);
            if (eos) {
                memcpy(eos, b.s, b.n);
                eos[b.n] = 0;
            }
        }
        free(b.s);
    }
    const char *line;
    size_t len;
    long lineno = 0, used = 0;
    char where[4200];
    while ((rc = hone_lines_next(r, &line, &len, &lineno, err)) == 1) {
        rc = 0;
        if (o->limit > 0 && used >= o->limit) break;
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
        if (i == len) continue;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        cJSON *j = cJSON_ParseWithLength(line, len);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            rc = hone_errf(err, HONE_EINVAL, "%s: not a JSON object", where);
            break;
        }
        used++;
        d->stats.records++;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "input_ids");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, o->text_field);
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, o->prompt_field);
        const cJSON *completion = cJSON_GetObjectItemCaseSensitive(j, o->completion_field);
        const cJSON *messages = cJSON_GetObjectItemCaseSensitive(j, o->messages_field);
        hone_example_rec e = {0};
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
                        /* TRL masks len(prompt ids) tokens even when they are not a prefix */
                        e.has_prompt = 1;
                        e.prompt_len = pn;
                        if (pn > e.n || memcmp(pids, e.ids, (size_t)pn * sizeof *pids)) d->stats.prefix_mismatch++;
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
                rc = hone_errf(err, HONE_EUNSUPPORTED,
                               "%s: chat records (\"%s\") need a chat template, which this version of hone does not "
                               "have yet; use text or prompt/completion records", where, o->messages_field);
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
            if (rc) break;
        }
    }
    hone_lines_close(r);
    free(eos);
    if (rc < 0) return rc;
    if (d->n == 0)
        return hone_errf(err, HONE_EINVAL,
                         "%s: no usable record (%ld read: %ld without a text / prompt+completion / messages / "
                         "input_ids field, %ld empty)%s%s",
                         path, d->stats.records, d->stats.skipped_shape, d->stats.skipped_empty,
                         d->stats.first_skip[0] ? "; the first skipped is " : "", d->stats.first_skip);
    return 0;
}

int hone_dataset_label(hone_dataset *d, const hone_collator_vt *vt, void *state, int32_t pad_id,
                       hone_collate_stats *stats, hone_err *err)
{
    for (size_t i = 0; i < d->n; i++) {
        hone_example_rec *e = &d->ex[i];
        int32_t *ids = malloc((size_t)e->n * sizeof *ids), *lab = malloc((size_t)e->n * sizeof *lab), len = 0;
        if (!ids || !lab) {
            free(ids), free(lab);
            return hone_errf(err, HONE_ENOMEM, "out of memory");
        }
        hone_example x = {e->ids, e->given_labels ? e->labels : NULL, (size_t)e->n, (size_t)e->prompt_len,
                          e->has_prompt};
        hone_batch b = {ids, lab, &len, 0, 0, (size_t)e->n};
        int rc = vt->collate(state, &b, stats, &x, 1, pad_id, err);
        free(ids);
        if (rc) {
            free(lab);
            return rc;
        }
        free(e->labels);
        e->labels = lab;
    }
    return 0;
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
