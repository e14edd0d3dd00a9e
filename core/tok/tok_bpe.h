/* tok_bpe.h — the BPE model of tokenizer.json, merging as Hugging Face tokenizers'
 * word.rs does: lowest merge rank first, leftmost among equals, in O(n log n). */
#ifndef HONE_TOK_BPE_H
#define HONE_TOK_BPE_H

#include "hone/plugin.h"
#include "tok_util.h"

typedef struct cJSON cJSON;

typedef struct tok_bpe {
    tok_strmap vocab;            /* token -> id */
    char **id_to_token;          /* [nid], NULL for holes */
    size_t *id_len;
    int32_t nid;
    tok_u64map merges;           /* (left id << 32 | right id) -> (rank << 32 | new id) */
    int32_t unk_id;              /* -1: none */
    int fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix;       /* continuing_subword_prefix, end_of_word_suffix (NULL = none) */
    size_t prefix_n, suffix_n;
    int32_t byte_ids[256];       /* <0xXX> tokens, -1 where missing */
    /* word cache: piece -> ids */
    tok_strmap cache;
    int32_t *cache_ids;
    size_t cache_n, cache_cap;
} tok_bpe;

/* model: the "model" object; path names it in messages */
int tok_bpe_load(tok_bpe *b, const cJSON *model, const char *path, hone_err *err);
void tok_bpe_free(tok_bpe *b);
/* appends the ids of one pre-token */
int tok_bpe_encode(tok_bpe *b, const char *s, size_t n, tok_ids *out);

#endif
