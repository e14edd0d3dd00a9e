/* order.c — data.order_file: the training examples of every epoch in an order given from
 * outside (another trainer's sampler, say), instead of hone's shuffling and grouping.
 *
 * One epoch per line, each a whitespace-separated list of record numbers of data.train
 * (from 0, counting non-blank lines, as a datasets row index counts them); blank lines
 * are skipped. Every line must name each training example exactly once, so the epoch's
 * batches, steps and schedule are those of the plan. Consecutive numbers form the
 * micro-batches: batch_size of them each, grad_accum micro-batches per step.
 */
#include "order.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

int hone_order_load(const char *path, const hone_dataset *d, long epochs, size_t *orders, hone_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = hone_read_file(path, &text, &len, err);
    if (rc) return rc;
    /* which example holds each record of the file; -1: none (skipped, dropped, held out) */
    size_t nrec = d->stats.records > 0 ? (size_t)d->stats.records : 1;
    long *example = malloc(nrec * sizeof *example);
    long *seen = malloc(d->n ? d->n * sizeof *seen : sizeof *seen);   /* the epoch that last named it */
    if (!example || !seen) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t r = 0; !rc && r < nrec; r++) example[r] = -1;
    for (size_t i = 0; !rc && i < d->n; i++) {
        seen[i] = -1;
        if (d->ex[i].record >= 0 && (size_t)d->ex[i].record < nrec) example[d->ex[i].record] = (long)i;
    }
    long epoch = 0, lineno = 0;
    char *line = text, *end = text + len;
    while (!rc && line < end && epoch < epochs) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) nl = end;
        *nl = 0;
        lineno++;
        size_t got = 0;
        char *p = line;
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            errno = 0;
            char *q;
            long long r = strtoll(p, &q, 10);
            if (q == p || (*q && *q != ' ' && *q != '\t' && *q != '\r') || errno || r < 0) {
                size_t w = strcspn(p, " \t\r");
                rc = hone_errf(err, HONE_EINVAL, "%s:%ld: \"%.*s\" is not a record number (a whole number >= 0)",
                               path, lineno, (int)(w > 40 ? 40 : w), p);
                break;
            }
            if ((unsigned long long)r >= nrec) {
                rc = hone_errf(err, HONE_EINVAL, "%s:%ld: record %lld is out of range: the run reads %ld records of "
                               "data.train (numbered from 0)", path, lineno, r, d->stats.records);
                break;
            }
            long i = example[r];
            if (i < 0) {
                rc = hone_errf(err, HONE_EINVAL, "%s:%ld: record %lld is not a training example (skipped, dropped "
                               "by truncation, or held out by data.eval_fraction: the run's first lines count them)",
                               path, lineno, r);
                break;
            }
            if (seen[i] == epoch) {
                rc = hone_errf(err, HONE_EINVAL, "%s:%ld: record %lld appears twice", path, lineno, r);
                break;
            }
            seen[i] = epoch;   /* distinct training examples: got never passes d->n */
            orders[(size_t)epoch * d->n + got++] = (size_t)i;
            p = q;
        }
        if (!rc && got == 0) {   /* a blank line */
            line = nl + 1;
            continue;
        }
        if (!rc && got < d->n) {
            size_t first = 0;
            while (first < d->n && seen[first] == epoch) first++;
            rc = hone_errf(err, HONE_EINVAL, "%s:%ld: names %zu of the %zu training examples (record %d is missing); "
                           "each line is one whole epoch", path, lineno, got, d->n, d->ex[first].record);
        }
        epoch++;
        line = nl + 1;
    }
    if (!rc && epoch < epochs)
        rc = hone_errf(err, HONE_EINVAL, "%s: %ld epoch%s of order for a run of %ld epochs (one line per epoch)", path,
                       epoch, epoch == 1 ? "" : "s", epochs);
    free(example);
    free(seen);
    free(text);
    return rc;
}
