/* tokenizer.h — Hugging Face tokenizer.json in C, giving the ids the `tokenizers`
 * package gives: added tokens, normalizer, pre-tokenizer, BPE, post-processor, decoder;
 * bos / eos / pad and add_bos_token / add_eos_token from tokenizer_config.json. */
#ifndef HONE_TOKENIZER_H
#define HONE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"
#include "tok_util.h"

typedef struct hone_tokenizer hone_tokenizer;

/* path: a tokenizer.json, or a dir holding tokenizer.json (and tokenizer_config.json) */
int hone_tokenizer_load(hone_tokenizer **out, const char *path, hone_err *err);
void hone_tokenizer_free(hone_tokenizer *t);
/* from tokenizer.json text alone (no tokenizer_config.json); name labels messages */
int hone_tokenizer_from_json(hone_tokenizer **out, const char *text, size_t n, const char *name, hone_err *err);

/* Appends the ids of text (any bytes: invalid UTF-8 becomes U+FFFD, as Python's
 * decode(errors="replace")); add_special applies the post-processor (BOS / EOS).
 * Not thread-safe: each thread uses its own tokenizer (hone_tokenizer_clone). */
int hone_tokenizer_encode(hone_tokenizer *t, const char *text, size_t n, int add_special, tok_ids *out, hone_err *err);
/* Text of ids (any id outside the vocabulary is an error); skip_special drops special tokens. */
int hone_tokenizer_decode(const hone_tokenizer *t, const int32_t *ids, size_t n, int skip_special, tok_buf *out,
                          hone_err *err);
/* an independent copy sharing nothing mutable, for another thread */
int hone_tokenizer_clone(hone_tokenizer **out, const hone_tokenizer *t, hone_err *err);

int32_t hone_tokenizer_vocab_size(const hone_tokenizer *t);   /* largest id + 1 */
/* a hash of the files the tokenizer was built from (cache keys) */
uint64_t hone_tokenizer_digest(const hone_tokenizer *t);
int32_t hone_tokenizer_token_id(const hone_tokenizer *t, const char *token);   /* -1 if absent */
int32_t hone_tokenizer_bos(const hone_tokenizer *t);   /* -1 if none */
int32_t hone_tokenizer_eos(const hone_tokenizer *t);
int32_t hone_tokenizer_pad(const hone_tokenizer *t);

#endif
