/* batch.c — micro-batches from examples: right padding to the longest (or to
 * data.max_seq_length), the document starts of packed rows, the shifted targets, and
 * the label count that divides a window's loss (transformers 5's num_items_in_batch). */
#include <stdlib.h>

#include "err.h"
#include "run_impl.h"

int batcher_alloc(batcher *b, int rows, int cols, int32_t pad, hone_err *err)
{
    size_t n = (size_t)rows * (size_t)cols;
    b->pad = pad;
    b->ids = malloc(n * sizeof(int32_t));
    b->labels = malloc(n * sizeof(int32_t));
    b->start = malloc(n * sizeof(int32_t));
    b->targets = malloc(n * sizeof(int32_t));
    if (!b->ids || !b->labels || !b->start || !b->targets) return hone_errf(err, HONE_ENOMEM, "out of memory");
    return 0;
}

void batcher_free(batcher *b)
{
    free(b->ids);
    free(b->labels);
    free(b->start);
    free(b->targets);
}

/* Packed rows bring their document starts; padding is a document of its own. */
long make_batch(batcher *b, const hone_dataset *d, const size_t *order, size_t first, int n)
{
    int T = b->pad_to > 0 ? b->pad_to : 1;
    for (int i = 0; i < n; i++)
        if (d->ex[order[first + i]].n > T) T = d->ex[order[first + i]].n;
    long tokens = 0;
    b->packed = 0;
    for (int i = 0; i < n; i++) {
        const hone_example_rec *e = &d->ex[order[first + i]];
        b->packed |= e->start != NULL;
        for (int t = 0; t < T; t++) {
            b->ids[(size_t)i * T + t] = t < e->n ? e->ids[t] : b->pad;
            b->labels[(size_t)i * T + t] = t < e->n ? e->labels[t] : -100;
            b->start[(size_t)i * T + t] = t < e->n ? (e->start ? e->start[t] : 0) : e->n;
        }
        tokens += e->n;
    }
    b->B = n;
    b->T = T;
    hone_shift_labels(b->targets, b->labels, n, T);
    return tokens;
}

/* position 0 of a row is never a target after the shift */
long count_labels(const hone_dataset *d, const size_t *order, size_t first, size_t n)
{
    long c = 0;
    for (size_t i = 0; i < n; i++) {
        const hone_example_rec *e = &d->ex[order[first + i]];
        for (int t = 1; t < e->n; t++) c += e->labels[t] != -100;
    }
    return c;
}
