/* dataset.h — training and evaluation examples in memory, token ids and labels.
 *
 * Records are JSONL (optionally zstd). Pre-tokenized records {"input_ids": [...],
 * "labels": [...]} are used as given (labels default to the ids). Text records need the
 * tokenizer, which is not built yet: they are refused naming file and line.
 */
#ifndef HONE_DATASET_H
#define HONE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

typedef struct hone_example_rec {
    int32_t *ids;        /* [n] */
    int32_t *labels;     /* [n], -100 = ignored */
    int n;
} hone_example_rec;

typedef struct hone_dataset {
    hone_example_rec *ex;
    size_t n, cap;
    long truncated;      /* examples cut to max_seq_length */
} hone_dataset;

/* Appends the records of a file; ids must lie in [0, vocab). limit: 0 = all. */
int hone_dataset_load(hone_dataset *d, const char *path, int max_len, int vocab, long limit, hone_err *err);
/* Moves a seeded random ceil(fraction x n) of d's examples into eval. */
int hone_dataset_split(hone_dataset *d, hone_dataset *eval, double fraction, uint64_t seed, hone_err *err);
void hone_dataset_free(hone_dataset *d);
/* a seeded permutation of [0, n) (Fisher-Yates over hone's RNG) */
void hone_permutation(size_t *perm, size_t n, uint64_t seed);

#endif
