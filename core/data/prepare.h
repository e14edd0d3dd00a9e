/* prepare.h — an experiment's data, tokenized and labelled (see prepare.c). */
#ifndef HONE_PREPARE_H
#define HONE_PREPARE_H

#include "config.h"
#include "dataset.h"
#include "model_config.h"
#include "tokenizer.h"

typedef struct hone_prepared {
    hone_model_config mc;
    hone_tokenizer *tok;            /* NULL when the model has none and none is set */
    hone_dataset train, eval;
    hone_collate_stats cstats;
    const hone_feature *collator;   /* the one that labelled the examples */
    int32_t pad;                    /* the tokenizer's pad, else EOS */
} hone_prepared;

int hone_data_prepare(hone_prepared *p, const hone_config *cfg, hone_err *err);
/* the "data: ..." lines a run prints at start */
void hone_data_print_summary(const hone_prepared *p, int max_len);
void hone_prepared_free(hone_prepared *p);

#endif
