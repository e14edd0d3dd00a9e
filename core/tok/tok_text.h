/* tok_text.h — the text stages of tokenizer.json: normalizers and pre-tokenizers, each
 * parsed from its JSON once and applied as Hugging Face tokenizers applies it. */
#ifndef HONE_TOK_TEXT_H
#define HONE_TOK_TEXT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hone/plugin.h"
#include "tok_util.h"

typedef struct cJSON cJSON;

/* a pattern: a literal string, a regex, or (internal) a character class */
typedef struct tok_pattern {
    char *literal;
    size_t literal_n;
    pcre2_code *re;
    int (*pred)(uint32_t cp);
} tok_pattern;

enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

typedef struct tok_stage {
    int type;
    struct tok_stage *kids;   /* Sequence */
    size_t nkids;
    tok_pattern pat;          /* Split, Replace, ByteLevel (use_regex), Whitespace */
    char *text;               /* Prepend / Replace content, Metaspace replacement (UTF-8) */
    size_t text_n;
    uint32_t repl_cp;         /* Metaspace replacement character */
    int behavior, invert;     /* Split */
    int flag_a, flag_b;       /* ByteLevel add_prefix_space / use_regex; Strip left / right; Metaspace split;
                                 Digits individual_digits */
    int scheme;               /* Metaspace prepend_scheme: 0 always, 1 first, 2 never */
} tok_stage;

/* one pre-token: text[off, off + n) of its list, and whether it begins the input */
typedef struct tok_piece {
    size_t off, n;
    int at_start;
} tok_piece;

typedef struct tok_plist {
    tok_piece *p;
    size_t n, cap;
    tok_buf text;
} tok_plist;

int tok_plist_add(tok_plist *l, const char *s, size_t n, int at_start);
void tok_plist_clear(tok_plist *l);
void tok_plist_free(tok_plist *l);

/* `json_path` names the stage in messages ("tokenizer.json: normalizer.normalizers[1]") */
int tok_normalizer_parse(tok_stage *st, const cJSON *j, const char *json_path, hone_err *err);
int tok_pretokenizer_parse(tok_stage *st, const cJSON *j, const char *json_path, hone_err *err);
void tok_stage_free(tok_stage *st);

/* normalizes s into out (out is reset first) */
int tok_normalize(const tok_stage *st, const char *s, size_t n, tok_buf *out);
/* pre-tokenizes the pieces of in into out (both reset/used as scratch) */
int tok_pretokenize(const tok_stage *st, tok_plist *in, tok_plist *tmp);

/* the GPT-2 byte <-> unicode map */
extern uint16_t tok_byte_to_cp[256];
int tok_cp_to_byte(uint32_t cp);   /* -1 when cp is not in the map */
void tok_bytemap_init(void);

int tok_pattern_compile(tok_pattern *p, const char *re, size_t n, const char *json_path, hone_err *err);

#endif
