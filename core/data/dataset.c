/* dataset.c — loading pre-tokenized JSONL records, truncation and the eval split. */
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

int hone_dataset_load(hone_dataset *d, const char *path, int max_len, int vocab, long limit, hone_err *err)
{
    hone_lines *r;
    int rc = hone_lines_open(&r, path, err);
    if (rc) return rc;
    const char *line;
    size_t len;
    long lineno = 0, used = 0;
    char where[4200];
    while ((rc = hone_lines_next(r, &line, &len, &lineno, err)) == 1) {
        if (limit > 0 && used >= limit) break;
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) continue;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        cJSON *j = cJSON_ParseWithLength(line, len);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            rc = hone_errf(err, HONE_EINVAL, "%s: not a JSON object", where);
            break;
        }
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "input_ids");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
        hone_example_rec e = {0};
        int nl = 0;
        if (!ids) {
            rc = hone_errf(err, HONE_EUNSUPPORTED,
                           "%s: text records (text / prompt+completion / messages) need the tokenizer, which this version "
                           "of hone does not have yet; use pre-tokenized {\"input_ids\": [...], \"labels\": [...]} records",
                           where);
        } else {
            rc = ints(ids, &e.ids, &e.n, 0, vocab, 0, "input_ids", where, err);
            if (!rc && e.n == 0) rc = hone_errf(err, HONE_EINVAL, "%s: input_ids is empty", where);
            if (!rc && labels) {
                rc = ints(labels, &e.labels, &nl, 0, vocab, 1, "labels", where, err);
                if (!rc && nl != e.n)
                    rc = hone_errf(err, HONE_EINVAL, "%s: %d labels for %d input_ids", where, nl, e.n);
            } else if (!rc) {
                e.labels = malloc((size_t)e.n * sizeof *e.labels);
                if (!e.labels) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
                else memcpy(e.labels, e.ids, (size_t)e.n * sizeof *e.labels);
            }
        }
        cJSON_Delete(j);
        if (!rc && e.n > max_len) {   /* keep the start, as TRL's truncation does */
            e.n = max_len;
            d->truncated++;
        }
        if (!rc) rc = push(d, e, err);
        if (rc) {
            free(e.ids);
            free(e.labels);
            break;
        }
        used++;
    }
    hone_lines_close(r);
    if (rc < 0) return rc;
    if (used == 0) return hone_errf(err, HONE_EINVAL, "%s: no records", path);
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
