/* tok_util.h — what the tokenizer files share: UTF-8, growable byte strings, and hash
 * maps (string -> id, u64 -> u64) over one allocation each. */
#ifndef HONE_TOK_UTIL_H
#define HONE_TOK_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- UTF-8 ---- */

/* Decodes one code point at s[0..n); returns its byte length (1-4), or 0 with *cp = the
 * byte when s starts an invalid or truncated sequence. */
int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
int tok_utf8_put(char *out, uint32_t cp);   /* writes 1-4 bytes, returns the count */
/* Copies s with every invalid sequence replaced by U+FFFD, one per maximal subpart (as
 * Python's decode(errors="replace") and Rust's from_utf8_lossy do). Returns malloc'd. */
char *tok_utf8_repair(const char *s, size_t n, size_t *out_n);
int tok_is_whitespace(uint32_t cp);          /* Rust char::is_whitespace */
int tok_is_alnum(uint32_t cp);               /* Rust char::is_alphanumeric */
int tok_is_numeric(uint32_t cp);             /* Rust char::is_numeric */

/* ---- growable buffers ---- */

typedef struct tok_buf {
    char *s;
    size_t n, cap;
} tok_buf;

int tok_buf_add(tok_buf *b, const char *s, size_t n);   /* 0 ok, -1 out of memory */
int tok_buf_addc(tok_buf *b, char c);
int tok_buf_reserve(tok_buf *b, size_t extra);   /* room for extra more bytes and a NUL */

typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;

int tok_ids_push(tok_ids *a, int32_t id);

/* [a, b) ranges of a text with a tag (a match flag, or an added token's id) */
typedef struct tok_span {
    size_t a, b;
    int32_t tag;
} tok_span;

typedef struct tok_spans {
    tok_span *v;
    size_t n, cap;
} tok_spans;

int tok_spans_add(tok_spans *s, size_t a, size_t b, int32_t tag);

/* ---- string -> int32 ---- */

typedef struct tok_strmap {
    uint64_t *hash;          /* 0 = empty slot */
    uint32_t *off, *len;     /* into pool */
    int32_t *val;
    size_t cap, count;
    char *pool;
    size_t pool_n, pool_cap;
} tok_strmap;

int tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val);   /* replaces; -1 out of memory */
int tok_strmap_get(const tok_strmap *m, const char *s, size_t n, int32_t *val);   /* 1 found */
void tok_strmap_free(tok_strmap *m);
uint64_t tok_hash(const char *s, size_t n);

/* ---- u64 -> u64 ---- */

typedef struct tok_u64map {
    uint64_t *key, *val;     /* key UINT64_MAX = empty */
    size_t cap, count;
} tok_u64map;

int tok_u64map_put(tok_u64map *m, uint64_t key, uint64_t val);
int tok_u64map_get(const tok_u64map *m, uint64_t key, uint64_t *val);
void tok_u64map_free(tok_u64map *m);

#endif
