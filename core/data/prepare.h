/* prepare.h — an experiment's data, tokenized and labelled (see prepare.c). */
#ifndef HONE_PREPARE_H
#define HONE_PREPARE_H

#include "config.h"
#include "hone/hone.h"
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

/* hooks: the log and data.chat_function's caller */
int hone_data_prepare(hone_prepared *p, const hone_config *cfg, const hone_hooks *hooks, hone_err *err);
/* the "data: ..." lines a run logs at start */
void hone_data_log_summary(const hone_prepared *p, int max_len, const hone_hooks *h);
void hone_prepared_free(hone_prepared *p);

#endif
