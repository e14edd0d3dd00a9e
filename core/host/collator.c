/* collator.c — one way to call a collator, whatever version its plugin registered. */
#include "collator.h"

#include <stdlib.h>

#include "err.h"

int hone_collator_create(const void *vtable, const hone_host *host, const hone_opts *opts,
                         const hone_tokenizer *tok, void **state, hone_err *err)
{
    const hone_feature_info *info = vtable;
    if (info->version == 1) {
        const hone_collator_vt_v1 *v1 = vtable;
        return v1->create(host, opts, tok, state, err);
    }
    const hone_collator_vt *vt = vtable;
    return vt->create(opts, tok, state, err);
}

/* version 1: a batch of one example, so no padding and cols = n, as the core called it */
static int label_v1(const hone_collator_vt_v1 *v1, void *state, const hone_example *ex, int32_t *labels,
                    int32_t pad_id, hone_collate_stats *stats, hone_err *err)
{
    int32_t *ids = malloc(ex->n * sizeof *ids), len = 0;
    if (!ids) return hone_errf(err, HONE_ENOMEM, "out of memory");
    hone_batch_v1 b = {.input_ids = ids, .labels = labels, .lengths = &len, .max_cols = ex->n};
    int rc = v1->collate(state, &b, stats, ex, 1, pad_id, err);
    free(ids);
    return rc;
}

int hone_collator_label(const void *vtable, void *state, const hone_example *ex, int32_t *labels, int32_t pad_id,
                        hone_collate_stats *stats, hone_err *err)
{
    if (((const hone_feature_info *)vtable)->version == 1)
        return label_v1(vtable, state, ex, labels, pad_id, stats, err);
    const hone_collator_vt *vt = vtable;
    for (size_t t = 0; t < ex->n; t++) labels[t] = -100;
    long examples = stats->examples, trained = stats->tokens_trained;
    int rc = vt->label(state, ex, labels, stats, err);
    /* these two are the core's (plugin.h): what a collator wrote there does not count */
    stats->examples = examples + (rc == 0);
    stats->tokens_trained = trained;
    for (size_t t = 0; t < ex->n && rc == 0; t++) stats->tokens_trained += labels[t] != -100;
    return rc;
}

void hone_collator_destroy(const void *vtable, void *state)
{
    if (((const hone_feature_info *)vtable)->version == 1) ((const hone_collator_vt_v1 *)vtable)->destroy(state);
    else ((const hone_collator_vt *)vtable)->destroy(state);
}
