/* inspect.c — `hone inspect`: labelled examples with the trained tokens marked, and the
 * numbers that tell a wrong loss mask at a glance (trained fraction, template misses,
 * truncation, lengths, padding waste). The examples are exactly what a run would train:
 * the same preparation (prepare.c), labels from the same collator. */
#include "hone/hone.h"

#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "optimize.h"
#include "prepare.h"

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* an example's listing is built here, then logged as one piece */
static void put(hone_membuf *mb, const char *s, size_t n)
{
    hone_err ignore = {0};
    hone_writer w = hone_membuf_writer(mb);
    w.write(w.ctx, s, n, &ignore);   /* out of memory: the listing comes out cut */
}

static void putf(hone_membuf *mb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(hone_membuf *mb, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) put(mb, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* tokens [t, u) of ids: the text the decoder adds for them after ids[0, t), so spaces and
 * characters split over tokens come out as the whole example decodes them */
static void put_span(hone_membuf *mb, hone_tokenizer *tok, const int32_t *ids, int t, int u, int trained, int color)
{
    const char *open = trained ? (color ? "\x1b[1;32m" : "[[") : (color ? "\x1b[2m" : "");
    const char *close = trained ? (color ? "\x1b[0m" : "]]") : (color ? "\x1b[0m" : "");
    put(mb, open, strlen(open));
    tok_buf a = {0}, b = {0};
    hone_err err = {0};
    if (tok && hone_tokenizer_decode(tok, ids, (size_t)t, 0, &a, &err) == 0 &&
        hone_tokenizer_decode(tok, ids, (size_t)u, 0, &b, &err) == 0) {
        if (b.n >= a.n && !memcmp(a.s, b.s, a.n)) put(mb, b.s + a.n, b.n - a.n);
        else if (hone_tokenizer_decode(tok, ids + t, (size_t)(u - t), 0, &b, &err) == 0) put(mb, b.s, b.n);
    } else {
        for (int i = t; i < u; i++) putf(mb, "%s%d", i > t ? " " : "", ids[i]);
    }
    free(a.s);
    free(b.s);
    put(mb, close, strlen(close));
}

int hone_run_inspect(const hone_config *cfg, const hone_hooks *h, int nshow, int eval_split, int color,
                     hone_err *err)
{
    hone_prepared p;
    int rc = hone_data_prepare(&p, cfg, h, err);
    if (rc) return rc;
    int max_len = (int)hone_config_int(cfg, "data.max_seq_length");
    hone_data_log_summary(&p, max_len, h);
    const hone_dataset *d = eval_split ? &p.eval : &p.train;
    if (eval_split && !d->n) {
        hone_prepared_free(&p);
        return hone_errf(err, HONE_EINVAL, "--split eval: the experiment has no eval data (data.eval or data.eval_fraction)");
    }
    hone_logf(h, HONE_LOG_INFO, "\n%s: %zu examples; %s", eval_split ? "eval" : "train", d->n,
           color ? "trained tokens in \x1b[1;32mgreen\x1b[0m, masked ones \x1b[2mdim\x1b[0m"
                 : "trained tokens [[in double brackets]], masked ones bare");
    for (size_t i = 0; i < d->n && (int)i < nshow; i++) {
        const hone_example_rec *e = &d->ex[i];
        int trained = 0;
        for (int t = 0; t < e->n; t++) trained += e->labels[t] != -100;
        hone_logf(h, HONE_LOG_INFO, "\n--- example %zu: %d tokens, %d trained", i + 1, e->n, trained);
        hone_membuf mb = {0};
        for (int t = 0; t < e->n;) {
            int on = e->labels[t] != -100, u = t;
            while (u < e->n && (e->labels[u] != -100) == on) u++;
            put_span(&mb, p.tok, e->ids, t, u, on, color);
            t = u;
        }
        put(&mb, "", 1);
        hone_logf(h, HONE_LOG_INFO, "%s", mb.data ? (char *)mb.data : "");
        free(mb.data);
    }
    /* the numbers, over the whole split */
    int *len = malloc((d->n ? d->n : 1) * sizeof *len);
    if (!len) {
        hone_prepared_free(&p);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    long tokens = 0, trained = 0, none = 0, padded = 0;
    int bs = (int)hone_config_int(cfg, "train.batch_size");
    for (size_t i = 0; i < d->n; i++) {
        len[i] = d->ex[i].n;
        tokens += d->ex[i].n;
        long tr = 0;
        for (int t = 0; t < d->ex[i].n; t++) tr += d->ex[i].labels[t] != -100;
        trained += tr;
        none += tr == 0;
    }
    for (size_t i = 0; i < d->n; i += (size_t)bs) {   /* batches in file order, padded to their longest */
        int longest = 0;
        for (size_t k = i; k < d->n && k < i + (size_t)bs; k++) longest = len[k] > longest ? len[k] : longest;
        padded += (long)longest * (long)((d->n - i) < (size_t)bs ? d->n - i : (size_t)bs);
    }
    qsort(len, d->n, sizeof *len, cmp_int);
    hone_logf(h, HONE_LOG_INFO, "\nstats (%s): %zu examples, %ld tokens, %.1f%% trained; %ld examples with no "
              "trained token; %ld lacking the response template; %ld truncated to %d",
           eval_split ? "eval" : "train", d->n, tokens, tokens ? 100.0 * trained / tokens : 0.0, none,
           p.cstats.template_missing, d->stats.truncated, max_len);
    if (d->n)
        hone_logf(h, HONE_LOG_INFO, "lengths: min %d, p50 %d, p90 %d, p99 %d, max %d; padding to the longest in "
                  "batches of %d wastes %.1f%% of the rows",
               len[0], len[(d->n - 1) / 2], len[(size_t)((d->n - 1) * 0.9)], len[(size_t)((d->n - 1) * 0.99)],
               len[d->n - 1], bs, padded ? 100.0 * (double)(padded - tokens) / (double)padded : 0.0);
    free(len);
    if (hone_config_bool(cfg, "data.packing") && !eval_split) {
        double eff = 0;
        size_t docs = p.train.n;
        rc = hone_dataset_pack(&p.train, max_len, &eff, err);
        if (!rc)
            hone_logf(h, HONE_LOG_INFO, "packing efficiency %.1f%% (%zu rows of %d for %zu examples; the eval split "
                      "is not packed)", 100 * eff,
                   p.train.n, max_len, docs);
    }
    hone_prepared_free(&p);
    return rc;
}
