/* dataset.h — training and evaluation examples in memory: token ids, and labels once a
 * collator has made them.
 *
 * Records are JSONL (optionally zstd), one of the shapes of DESIGN §3.3 with the field
 * names of data.*_field: text, prompt + completion, messages, or pre-tokenized
 * {"input_ids": [...], "labels": [...]}. Text is tokenized with the model's tokenizer as
 * TRL prepares it: EOS appended to the text or completion unless it already ends with it,
 * the tokenizer's own BOS (add_special), prompt and prompt + completion tokenized
 * separately so the prompt's length is known. Malformed records stop the load naming file
 * and line; records of no known shape or with nothing in them are skipped and counted.
 */
#ifndef HONE_DATASET_H
#define HONE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"
#include "registry.h"
#include "tokenizer.h"

typedef struct hone_example_rec {
    int32_t *ids;        /* [n] */
    int32_t *labels;     /* [n], -100 = ignored: given (pre-tokenized), or set by hone_dataset_label */
    int n;
    int prompt_len;      /* prompt/completion records: tokens of the prompt */
    int has_prompt;
    int given_labels;    /* labels came with the record, or are a chat record's assistant turns */
    int chat;            /* a chat record: labels = the assistant turns */
    int32_t *start;      /* packed rows: [n] where each position's document begins; else NULL */
    int docs;            /* packed rows: documents in the row */
    int32_t record;      /* its record in the data file, from 0 (non-blank lines); packed rows: -1 */
} hone_example_rec;

typedef struct hone_data_stats {
    long records;            /* records read (after data.limit) */
    long skipped_shape;      /* no text / prompt+completion / messages / input_ids field */
    long skipped_empty;      /* nothing to tokenize */
    long truncated;          /* examples cut to max_seq_length */
    long prefix_mismatch;    /* the prompt's ids are not a prefix of prompt + completion's */
    long dropped;            /* truncation left no completion token: dropped, as TRL 1.16 does */
    char first_skip[4200];   /* file:line of the first skipped record */
} hone_data_stats;

typedef struct hone_dataset {
    hone_example_rec *ex;
    size_t n, cap;
    hone_data_stats stats;
} hone_dataset;

struct cJSON;
/* A chat template written in Lua (data.chat_function): messages in, pieces of text out,
 * each marked trained or not; *texts and *trained malloc'd (each text too). */
typedef int (*hone_chat_fn)(void *ctx, const struct cJSON *messages, char ***texts, int **trained, int *n,
                            hone_err *err);

typedef struct hone_data_opts {
    int max_len, vocab;
    long limit;              /* 0 = all */
    hone_tokenizer *tok;     /* NULL: only pre-tokenized records can be read */
    const char *text_field, *prompt_field, *completion_field, *messages_field;
    const char *chat_template;   /* auto, chatml, llama3, llama2, mistral */
    int threads;                 /* tokenize with this many threads (0 or 1: one) */
    hone_chat_fn chat_fn;        /* set: chat records go through it (on one thread) */
    void *chat_ctx;
} hone_data_opts;

/* Appends the records of a file. */
int hone_dataset_load(hone_dataset *d, const char *path, const hone_data_opts *o, hone_err *err);
/* Labels every example through a collator (collator.h: any version), in order; stats
 * accumulate. */
int hone_dataset_label(hone_dataset *d, const hone_feature *collator, void *state, int32_t pad_id,
                       hone_collate_stats *stats, hone_err *err);
/* Packs labelled examples into rows of at most max_len tokens, best-fit decreasing (TRL's
 * "bfd"): longest first, each into the fullest row it fits. A row's labels keep each
 * document's own, except its first token (TRL's padding-free collator masks position 0 of
 * every document), so no token is predicted across documents. *efficiency: tokens over
 * rows x max_len. */
int hone_dataset_pack(hone_dataset *d, int max_len, double *efficiency, hone_err *err);
/* Drops the prompt/completion examples whose completion truncation cut away entirely (no
 * trained token left), as TRL's SFTTrainer drops fully masked examples; counts them in
 * d->stats.dropped. */
void hone_dataset_drop_untrained(hone_dataset *d);
/* Moves a seeded random ceil(fraction x n) of d's examples into eval. */
int hone_dataset_split(hone_dataset *d, hone_dataset *eval, double fraction, uint64_t seed, hone_err *err);
void hone_dataset_free(hone_dataset *d);
/* The JSON text of each example's record, read back from path (the file d was loaded
 * from): (*out)[i] for d->ex[i], NULL for packed rows; free each and the array. */
int hone_dataset_records(const hone_dataset *d, const char *path, char ***out, hone_err *err);
/* a seeded permutation of [0, n) (Fisher-Yates over hone's RNG) */
void hone_permutation(size_t *perm, size_t n, uint64_t seed);
/* transformers' group_by_length (LengthGroupedSampler) over an epoch's order of d's
 * examples: megabatches of min(n / (4 batch), 50) (at least 1) batches, each sorted longest
 * first, then the longest megabatch's head swapped to the front (a batch that does not fit
 * fails at once). batch = examples per optimizer step. */
int hone_group_by_length(size_t *order, size_t n, const hone_dataset *d, size_t batch, hone_err *err);

#endif
