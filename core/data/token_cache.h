/* token_cache.h — tokenized records kept between runs (see token_cache.c). */
#ifndef HONE_TOKEN_CACHE_H
#define HONE_TOKEN_CACHE_H

#include <stdint.h>

#include "dataset.h"

/* the key of a data file under these loader settings and tokenizer; *ok = 0 when the file
 * cannot be read (the load itself will then say why) */
uint64_t hone_token_cache_key(const char *data_path, const hone_data_opts *o, const char *version, hone_err *err,
                              int *ok);
/* d empty; *hit = 1 when the cache held the key and it parsed back whole */
int hone_token_cache_load(hone_dataset *d, const char *dir, uint64_t key, int *hit);
int hone_token_cache_store(const hone_dataset *d, const char *dir, uint64_t key, hone_err *err);

#endif
