/* collator.h — calling a collator of any version the loader accepts.
 *
 * Version 2 (ABI 1.2) labels one example. Version 1 (ABI 1.0-1.1) collated a padded
 * batch; 1.2's header no longer shows it, but its plugins still load (plugin.h's version
 * rule), so its layout lives on here and hone_collator_label calls it with a batch of
 * one, exactly as the core always did. Everything else calls collators through these
 * three functions, never through a vtable, so the versions stay in one file.
 */
#ifndef HONE_COLLATOR_H
#define HONE_COLLATOR_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

/* ABI 1.0-1.1: one collated batch, rows x cols, row-major, right-padded */
typedef struct hone_batch_v1 {
    int32_t *input_ids;    /* [rows, cols] */
    int32_t *labels;       /* [rows, cols], -100 = ignored */
    int32_t *lengths;      /* [rows] tokens before padding */
    size_t rows, cols;     /* cols: filled by the collator, <= max_cols */
    size_t max_cols;       /* capacity of a row */
} hone_batch_v1;

/* ABI 1.0-1.1: the collator vtable, version 1 */
typedef struct hone_collator_vt_v1 {
    hone_feature_info info;
    int (*create)(const hone_host *host, const hone_opts *opts, const hone_tokenizer *tok,
                  void **state, hone_err *err);
    int (*collate)(void *state, hone_batch_v1 *out, hone_collate_stats *stats,
                   const hone_example *examples, size_t n, int32_t pad_id, hone_err *err);
    void (*destroy)(void *state);
} hone_collator_vt_v1;

/* vtable: a registered collator's (a hone_feature's vtable); host: the table a version 1
 * collator's create is given. tok may be NULL (a model without a tokenizer). */
int hone_collator_create(const void *vtable, const hone_host *host, const hone_opts *opts,
                         const hone_tokenizer *tok, void **state, hone_err *err);
/* labels: [ex->n]. stats: running counts (examples and tokens_trained kept by the core
 * for version 2). pad_id: what version 1 pads its batch of one with. */
int hone_collator_label(const void *vtable, void *state, const hone_example *ex, int32_t *labels, int32_t pad_id,
                        hone_collate_stats *stats, hone_err *err);
void hone_collator_destroy(const void *vtable, void *state);

#endif
