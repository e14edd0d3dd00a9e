/* convert.c — `hone convert MODEL.gguf OUT_DIR`: a llama.cpp GGUF of a Llama-family model
 * into a Hugging Face directory (config.json, generation_config.json, model.safetensors in
 * fp32), the way transformers' own GGUF loader reads it: metadata keys mapped as its
 * GGUF_CONFIG_MAPPING, tensors renamed from llama.cpp's names, dequantized as gguf-py does,
 * and the q / k rows put back from llama.cpp's interleaved-RoPE order (convert_hf_to_gguf's
 * permute undone) so the half-split RoPE of transformers and hone is right. */
#include "convert.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gguf.h"
#include "safetensors.h"
#include "util.h"

static int kv_int(const hone_gguf *g, const char *arch, const char *key, long long def, long long *out, hone_err *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    const hone_gguf_kv *kv = hone_gguf_kv_find(g, full);
    if (!kv) {
        if (def < 0) return hone_errf(err, HONE_EINVAL, "%s: metadata %s is missing", g->path, full);
        *out = def;
        return 0;
    }
    if (kv->type == HONE_GGUF_STRING || kv->type == HONE_GGUF_ARRAY || kv->i < 0)
        return hone_errf(err, HONE_EINVAL, "%s: metadata %s must be a non-negative integer", g->path, full);
    *out = kv->i;
    return 0;
}

static double kv_num(const hone_gguf *g, const char *arch, const char *key, double def)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    const hone_gguf_kv *kv = hone_gguf_kv_find(g, full);
    return kv && kv->type != HONE_GGUF_STRING && kv->type != HONE_GGUF_ARRAY ? kv->num : def;
}

/* llama.cpp's names of a layer's tensors and HF's; perm: 1 = q rows, 2 = k rows permuted */
static const struct { const char *g, *hf; int perm; } blk_names[] = {
    {"attn_norm.weight", "input_layernorm.weight", 0}, {"attn_q.weight", "self_attn.q_proj.weight", 1},
    {"attn_k.weight", "self_attn.k_proj.weight", 2}, {"attn_v.weight", "self_attn.v_proj.weight", 0},
    {"attn_output.weight", "self_attn.o_proj.weight", 0}, {"ffn_norm.weight", "post_attention_layernorm.weight", 0},
    {"ffn_gate.weight", "mlp.gate_proj.weight", 0}, {"ffn_up.weight", "mlp.up_proj.weight", 0},
    {"ffn_down.weight", "mlp.down_proj.weight", 0},
};
static const char *const top_names[][2] = {
    {"token_embd.weight", "model.embed_tokens.weight"}, {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/* a tensor name in one convention -> the other (to_hf: llama.cpp -> HF); 0 when it has no
 * counterpart */
int hone_gguf_tensor_name(const char *in, int to_hf, char *out, size_t n, int *perm)
{
    *perm = 0;
    for (size_t i = 0; i < sizeof top_names / sizeof *top_names; i++)
        if (!strcmp(in, top_names[i][!to_hf])) return snprintf(out, n, "%s", top_names[i][to_hf]), 1;
    unsigned layer;
    int used = 0;
    if (sscanf(in, to_hf ? "blk.%u.%n" : "model.layers.%u.%n", &layer, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof blk_names / sizeof blk_names[0]; i++)
            if (!strcmp(in + used, to_hf ? blk_names[i].g : blk_names[i].hf)) {
                *perm = blk_names[i].perm;
                return to_hf ? snprintf(out, n, "model.layers.%u.%s", layer, blk_names[i].hf)
                             : snprintf(out, n, "blk.%u.%s", layer, blk_names[i].g),
                       1;
            }
    return 0;
}

/* rows of a [n_head * hd, cols] weight from llama.cpp's order back to HF's: HF row
 * h*hd + j*(hd/2) + i sits at llama.cpp row h*hd + 2i + j */
static int unpermute(float *w, size_t rows, size_t cols, size_t n_head, hone_err *err)
{
    if (!n_head || rows % n_head || (rows / n_head) % 2)
        return hone_errf(err, HONE_EINVAL, "q/k weight of %zu rows does not split into %zu heads of even size", rows, n_head);
    size_t hd = rows / n_head;
    float *tmp = malloc(rows * cols * sizeof *tmp);
    if (!tmp) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t h = 0; h < n_head; h++)
        for (size_t j = 0; j < 2; j++)
            for (size_t i = 0; i < hd / 2; i++)
                memcpy(tmp + (h * hd + j * (hd / 2) + i) * cols, w + (h * hd + 2 * i + j) * cols, cols * sizeof *w);
    memcpy(w, tmp, rows * cols * sizeof *w);
    free(tmp);
    return 0;
}

static int write_json(const char *dir, const char *name, cJSON *j, hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    int rc = text ? hone_write_file(path, text, strlen(text), err) : hone_errf(err, HONE_ENOMEM, "out of memory");
    free(text);
    return rc;
}

/* the pre-tokenizer of a GGUF "tokenizer.ggml.pre" type, as the original tokenizer.json had it */
cJSON *hone_gguf_pre_tokenizer(const char *pre)
{
    static const char *llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}"
                                "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static const char *qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}"
                               "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    char text[1024];
    if (!strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2"))
        snprintf(text, sizeof text, "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, "
                 "\"use_regex\": true}");
    else if (!strcmp(pre, "smollm"))
        snprintf(text, sizeof text, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", "
                 "\"individual_digits\": true}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                 "\"trim_offsets\": true, \"use_regex\": true}]}");
    else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "qwen2")) {
        /* built as objects: cJSON escapes the regex's backslashes for JSON */
        cJSON *seq = cJSON_CreateObject(), *list = cJSON_CreateArray(), *split = cJSON_CreateObject(), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(seq, "type", "Sequence");
        cJSON_AddStringToObject(split, "type", "Split");
        cJSON_AddStringToObject(pat, "Regex", strcmp(pre, "qwen2") ? llama3 : qwen2);
        cJSON_AddItemToObject(split, "pattern", pat);
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddBoolToObject(split, "invert", 0);
        cJSON_AddItemToArray(list, split);
        cJSON_AddItemToArray(list, cJSON_Parse("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                                               "\"trim_offsets\": false, \"use_regex\": false}"));
        cJSON_AddItemToObject(seq, "pretokenizers", list);
        return seq;
    }
    else
        return NULL;
    return cJSON_Parse(text);
}

/* tokenizer.json + tokenizer_config.json from a GGUF's "gpt2" (byte-level BPE) vocabulary */
/* the rest of tokenizer_config.json after the special tokens, in transformers' key order
 * (legacy: the SentencePiece "legacy" flag); writes it unless rc is set; frees c */
static int finish_tokenizer_config(cJSON *c, const hone_gguf *g, const char *out_dir, int add_bos, int add_eos,
                                   int legacy, long long ctx, const char *cls, int rc, hone_err *err)
{
    cJSON_AddBoolToObject(c, "add_bos_token", add_bos);
    cJSON_AddBoolToObject(c, "add_eos_token", add_eos);
    cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", 0);
    if (legacy) cJSON_AddBoolToObject(c, "legacy", 1);
    cJSON_AddNumberToObject(c, "model_max_length", (double)ctx);
    const hone_gguf_kv *ct = hone_gguf_kv_find(g, "tokenizer.chat_template");
    if (ct && ct->str) cJSON_AddStringToObject(c, "chat_template", ct->str);
    cJSON_AddStringToObject(c, "tokenizer_class", cls);
    if (!rc) rc = write_json(out_dir, "tokenizer_config.json", c, err);
    cJSON_Delete(c);
    return rc;
}

/* an added_tokens entry as tokenizers writes it: matched whole, before the model */
static void add_token(cJSON *added, uint64_t id, const char *content, int special)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", (double)id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", special);
    cJSON_AddItemToArray(added, a);
}

static int write_tokenizer(const hone_gguf *g, const char *out_dir, long long ctx, hone_err *err)
{
    const hone_gguf_kv *tok = hone_gguf_kv_find(g, "tokenizer.ggml.tokens");
    const hone_gguf_kv *mer = hone_gguf_kv_find(g, "tokenizer.ggml.merges");
    const hone_gguf_kv *typ = hone_gguf_kv_find(g, "tokenizer.ggml.token_type");
    const hone_gguf_kv *pre = hone_gguf_kv_find(g, "tokenizer.ggml.pre");
    if (!tok || !tok->strs || !mer || !mer->strs)
        return hone_errf(err, HONE_EINVAL, "%s: a gpt2 tokenizer needs tokenizer.ggml.tokens and .merges (string arrays)",
                         g->path);
    if (typ && (!typ->nums || typ->n != tok->n))
        return hone_errf(err, HONE_EINVAL, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", g->path,
                         (unsigned long long)(typ ? typ->n : 0), (unsigned long long)tok->n);
    const char *pre_name = pre && pre->str ? pre->str : "default";
    cJSON *pt = hone_gguf_pre_tokenizer(pre_name);
    if (!pt)
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: tokenizer.ggml.pre \"%s\" is not one hone knows (default, gpt-2, "
                         "smollm, llama-bpe, qwen2)", g->path, pre_name);
    cJSON *j = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", "1.0");
    cJSON_AddNullToObject(j, "truncation");
    cJSON_AddNullToObject(j, "padding");
    cJSON *added = cJSON_AddArrayToObject(j, "added_tokens");
    for (uint64_t i = 0; i < tok->n; i++) {
        int t = typ ? (int)typ->nums[i] : 1;
        if (t != 3 && t != 4) continue;   /* control and user-defined tokens match before BPE */
        add_token(added, i, tok->strs[i], t == 3);
    }
    cJSON_AddNullToObject(j, "normalizer");
    cJSON_AddItemToObject(j, "pre_tokenizer", pt);
    cJSON_AddItemToObject(j, "post_processor", cJSON_Parse("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                                                           "\"trim_offsets\": false, \"use_regex\": true}"));
    cJSON_AddItemToObject(j, "decoder", cJSON_Parse("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                                                    "\"trim_offsets\": false, \"use_regex\": true}"));
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    for (uint64_t i = 0; i < tok->n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(vocab, tok->strs[i]))   /* the first id of a repeated string wins */
            cJSON_AddNumberToObject(vocab, tok->strs[i], (double)i);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (uint64_t i = 0; i < mer->n; i++) cJSON_AddItemToArray(merges, cJSON_CreateString(mer->strs[i]));
    cJSON_AddItemToObject(j, "model", model);
    int rc = write_json(out_dir, "tokenizer.json", j, err);
    cJSON_Delete(j);

    cJSON *c = cJSON_CreateObject();
    const char *ids[] = {"bos", "eos", "padding", "unknown"}, *names[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (int k = 0; k < 4; k++) {
        char key[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", ids[k]);
        const hone_gguf_kv *kv = hone_gguf_kv_find(g, key);
        if (kv && kv->type != HONE_GGUF_STRING && kv->type != HONE_GGUF_ARRAY && kv->i >= 0 && (uint64_t)kv->i < tok->n)
            cJSON_AddStringToObject(c, names[k], tok->strs[kv->i]);
    }
    const hone_gguf_kv *ab = hone_gguf_kv_find(g, "tokenizer.ggml.add_bos_token");
    const hone_gguf_kv *ae = hone_gguf_kv_find(g, "tokenizer.ggml.add_eos_token");
    return finish_tokenizer_config(c, g, out_dir, ab && ab->i, ae && ae->i, 0, ctx, "PreTrainedTokenizerFast", rc, err);
}

/* ---- SentencePiece ("llama") vocabularies ------------------------------------------ */

/* a string -> first and last index map over the GGUF's tokens (open addressing) */
typedef struct tok_index {
    size_t cap;
    int64_t *first, *last;   /* -1: empty */
    char **strs;
} tok_index;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int64_t *slot(const tok_index *x, const char *s, size_t n)
{
    for (size_t k = fnv(s, n) & (x->cap - 1);; k = (k + 1) & (x->cap - 1)) {
        if (x->first[k] < 0) return &x->first[k];
        const char *t = x->strs[x->first[k]];
        if (strlen(t) == n && !memcmp(t, s, n)) return &x->first[k];
    }
}

/* index of the last token spelled s[0..n), or -1 */
static int64_t lookup(const tok_index *x, const char *s, size_t n)
{
    int64_t *f = slot(x, s, n);
    return *f < 0 ? -1 : x->last[f - x->first];
}

typedef struct spm_merge {
    const char *l, *r;
    size_t ln;               /* the left piece is l[0..ln), the right r (to its end) */
    float score, sl, sr;     /* the merged token's score; the pieces' */
    size_t order;            /* position before sorting: the sorts are stable */
} spm_merge;

static int by_pieces(const void *a, const void *b)
{
    const spm_merge *x = a, *y = b;
    if (x->sl != y->sl) return x->sl > y->sl ? -1 : 1;
    if (x->sr != y->sr) return x->sr > y->sr ? -1 : 1;
    return x->order < y->order ? -1 : 1;
}

static int by_score(const void *a, const void *b)
{
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : 1;
}

/* tokenizer.json + tokenizer_config.json from a GGUF's SentencePiece vocabulary, as
 * transformers' GGUF loader (GGUFLlamaConverter) rebuilds it: BPE with byte fallback over
 * the pieces, merges made from the scores (every split of a piece into two pieces, pieces
 * by score), the Llama normalizer and decoder, control tokens as special added tokens */
static int write_tokenizer_spm(const hone_gguf *g, const char *out_dir, long long ctx, hone_err *err)
{
    const hone_gguf_kv *tok = hone_gguf_kv_find(g, "tokenizer.ggml.tokens");
    const hone_gguf_kv *sc = hone_gguf_kv_find(g, "tokenizer.ggml.scores");
    const hone_gguf_kv *typ = hone_gguf_kv_find(g, "tokenizer.ggml.token_type");
    if (!tok || !tok->strs || !sc || !sc->nums || sc->n != tok->n || tok->n == 0)
        return hone_errf(err, HONE_EINVAL, "%s: a llama tokenizer needs tokenizer.ggml.tokens and .scores of one length",
                         g->path);
    if (typ && (!typ->nums || typ->n != tok->n))
        return hone_errf(err, HONE_EINVAL, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", g->path,
                         (unsigned long long)(typ ? typ->n : 0), (unsigned long long)tok->n);
    size_t n = (size_t)tok->n;
    tok_index x = {0};
    for (x.cap = 16; x.cap < 2 * n; x.cap *= 2) {}
    x.first = malloc(x.cap * sizeof *x.first), x.last = malloc(x.cap * sizeof *x.last), x.strs = tok->strs;
    size_t mcap = 1024, nm = 0;
    spm_merge *m = malloc(mcap * sizeof *m);
    if (!x.first || !x.last || !m) {
        free(x.first), free(x.last), free(m);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    memset(x.first, 0xff, x.cap * sizeof *x.first);
    for (size_t i = 0; i < n; i++) {
        int64_t *f = slot(&x, tok->strs[i], strlen(tok->strs[i]));
        if (*f < 0) *f = (int64_t)i;
        x.last[f - x.first] = (int64_t)i;   /* a Python dict keeps the first place and the last value */
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *t = tok->strs[i];
        size_t len = strlen(t);
        if (*slot(&x, t, len) != (int64_t)i) continue;   /* a repeat: its first place was done */
        float score = (float)sc->nums[lookup(&x, t, len)];
        size_t start = nm;
        /* every split at a character (not byte) boundary into two pieces of the vocabulary */
        for (size_t k = 1; k < len && !rc; k++) {
            if (((uint8_t)t[k] & 0xC0) == 0x80) continue;
            int64_t l = lookup(&x, t, k), r = lookup(&x, t + k, len - k);
            if (l < 0 || r < 0) continue;
            if (nm == mcap) {
                spm_merge *b = realloc(m, 2 * mcap * sizeof *m);
                if (!b) {
                    rc = hone_errf(err, HONE_ENOMEM, "out of memory");
                    break;
                }
                m = b, mcap *= 2;
            }
            m[nm] = (spm_merge){t, t + k, k, score, (float)sc->nums[l], (float)sc->nums[r], nm};
            nm++;
        }
        qsort(m + start, nm - start, sizeof *m, by_pieces);
    }
    for (size_t i = 0; i < nm; i++) m[i].order = i;
    qsort(m, nm, sizeof *m, by_score);

    const hone_gguf_kv *unk = hone_gguf_kv_find(g, "tokenizer.ggml.unknown_token_id");
    const hone_gguf_kv *bos = hone_gguf_kv_find(g, "tokenizer.ggml.bos_token_id");
    const hone_gguf_kv *eos = hone_gguf_kv_find(g, "tokenizer.ggml.eos_token_id");
    const hone_gguf_kv *pad = hone_gguf_kv_find(g, "tokenizer.ggml.padding_token_id");
    const hone_gguf_kv *asp = hone_gguf_kv_find(g, "tokenizer.ggml.add_space_prefix");
    const hone_gguf_kv *ab = hone_gguf_kv_find(g, "tokenizer.ggml.add_bos_token");
    const hone_gguf_kv *ae = hone_gguf_kv_find(g, "tokenizer.ggml.add_eos_token");
#define TOKEN_OF(kv) ((kv) && (kv)->type != HONE_GGUF_STRING && (kv)->type != HONE_GGUF_ARRAY && (kv)->i >= 0 && \
                      (uint64_t)(kv)->i < n ? tok->strs[(kv)->i] : NULL)
    int prefix = !asp || asp->i != 0, add_bos = !ab || ab->i != 0, add_eos = ae && ae->i != 0;
    const char *bos_t = TOKEN_OF(bos), *eos_t = TOKEN_OF(eos);
    if (!bos_t) add_bos = 0;
    if (!eos_t) add_eos = 0;

    cJSON *j = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", "1.0");
    cJSON_AddNullToObject(j, "truncation");
    cJSON_AddNullToObject(j, "padding");
    cJSON *added = cJSON_AddArrayToObject(j, "added_tokens");
    for (size_t i = 0; i < n; i++) {
        if (!typ || (int)typ->nums[i] != 3) continue;   /* control tokens */
        add_token(added, i, tok->strs[i], 1);
    }
    cJSON *norm = cJSON_AddObjectToObject(j, "normalizer"), *nl = cJSON_CreateArray();
    cJSON_AddStringToObject(norm, "type", "Sequence");
    if (prefix) cJSON_AddItemToArray(nl, cJSON_Parse("{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}"));
    cJSON_AddItemToArray(nl, cJSON_Parse("{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}"));
    cJSON_AddItemToObject(norm, "normalizers", nl);
    cJSON_AddNullToObject(j, "pre_tokenizer");
    if (add_bos || add_eos) {
        /* LlamaTokenizerFast's template: [BOS] $A [EOS], and the same around $B */
        cJSON *pp = cJSON_AddObjectToObject(j, "post_processor"), *single = cJSON_CreateArray(), *pair = cJSON_CreateArray();
        cJSON *specials = cJSON_CreateObject();
        cJSON_AddStringToObject(pp, "type", "TemplateProcessing");
        for (int half = 0; half < 2; half++) {
            cJSON *arrs[2] = {single, pair};
            for (int a = half; a < 2; a++) {
                char piece[160];
                if (add_bos) {
                    snprintf(piece, sizeof piece, "{\"SpecialToken\": {\"id\": \"\", \"type_id\": %d}}", half);
                    cJSON *e = cJSON_Parse(piece);
                    cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "SpecialToken"), "id"), bos_t);
                    cJSON_AddItemToArray(arrs[a], e);
                }
                snprintf(piece, sizeof piece, "{\"Sequence\": {\"id\": \"%s\", \"type_id\": %d}}", half ? "B" : "A", half);
                cJSON_AddItemToArray(arrs[a], cJSON_Parse(piece));
                if (add_eos) {
                    snprintf(piece, sizeof piece, "{\"SpecialToken\": {\"id\": \"\", \"type_id\": %d}}", half);
                    cJSON *e = cJSON_Parse(piece);
                    cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "SpecialToken"), "id"), eos_t);
                    cJSON_AddItemToArray(arrs[a], e);
                }
            }
        }
        for (int k = 0; k < 2; k++) {
            const char *t = k ? eos_t : bos_t;
            if (!(k ? add_eos : add_bos) || cJSON_GetObjectItemCaseSensitive(specials, t)) continue;
            cJSON *sp = cJSON_AddObjectToObject(specials, t);
            cJSON_AddStringToObject(sp, "id", t);
            cJSON *ids = cJSON_AddArrayToObject(sp, "ids");
            cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)(k ? eos : bos)->i));
            cJSON *ts = cJSON_AddArrayToObject(sp, "tokens");
            cJSON_AddItemToArray(ts, cJSON_CreateString(t));
        }
        cJSON_AddItemToObject(pp, "single", single);
        cJSON_AddItemToObject(pp, "pair", pair);
        cJSON_AddItemToObject(pp, "special_tokens", specials);
    } else
        cJSON_AddNullToObject(j, "post_processor");
    cJSON *dec = cJSON_AddObjectToObject(j, "decoder"), *dl = cJSON_CreateArray();
    cJSON_AddStringToObject(dec, "type", "Sequence");
    cJSON_AddItemToArray(dl, cJSON_Parse("{\"type\": \"ByteFallback\"}"));
    cJSON_AddItemToArray(dl, cJSON_Parse("{\"type\": \"Fuse\"}"));
    cJSON_AddItemToArray(dl, cJSON_Parse("{\"type\": \"Replace\", \"pattern\": {\"String\": \"\u2581\"}, \"content\": \" \"}"));
    if (prefix) cJSON_AddItemToArray(dl, cJSON_Parse("{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}"));
    cJSON_AddItemToObject(dec, "decoders", dl);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (TOKEN_OF(unk)) cJSON_AddStringToObject(model, "unk_token", TOKEN_OF(unk));
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    for (size_t i = 0; i < n; i++)
        if (*slot(&x, tok->strs[i], strlen(tok->strs[i])) == (int64_t)i)
            cJSON_AddNumberToObject(vocab, tok->strs[i], (double)lookup(&x, tok->strs[i], strlen(tok->strs[i])));
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < nm; i++) {
        cJSON *pr = cJSON_CreateArray();
        char *l = malloc(m[i].ln + 1);
        if (l) memcpy(l, m[i].l, m[i].ln), l[m[i].ln] = 0;
        cJSON_AddItemToArray(pr, cJSON_CreateString(l ? l : ""));
        cJSON_AddItemToArray(pr, cJSON_CreateString(m[i].r));
        free(l);
        cJSON_AddItemToArray(merges, pr);
    }
    cJSON_AddItemToObject(j, "model", model);
    if (!rc) rc = write_json(out_dir, "tokenizer.json", j, err);
    cJSON_Delete(j);
    free(m), free(x.first), free(x.last);

    cJSON *c = cJSON_CreateObject();
    const struct { const hone_gguf_kv *kv; const char *name; } sp[] = {
        {bos, "bos_token"}, {eos, "eos_token"}, {unk, "unk_token"}, {pad, "pad_token"}};
    for (int k = 0; k < 4; k++)
        if (TOKEN_OF(sp[k].kv)) cJSON_AddStringToObject(c, sp[k].name, TOKEN_OF(sp[k].kv));
#undef TOKEN_OF
    return finish_tokenizer_config(c, g, out_dir, add_bos, add_eos, 1, ctx, "LlamaTokenizerFast", rc, err);
}

int hone_convert_gguf_tokenizer_of(const hone_gguf *g, const char *out_dir, hone_err *err)
{
    const hone_gguf_kv *tm = hone_gguf_kv_find(g, "tokenizer.ggml.model");
    int rc = 0;
    if (!tm || !tm->str) rc = hone_errf(err, HONE_EINVAL, "%s: no tokenizer.ggml.model", g->path);
    else if (strcmp(tm->str, "gpt2") && strcmp(tm->str, "llama"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tokenizer.ggml.model \"%s\": hone rebuilds gpt2 (byte-level BPE) "
                       "and llama (SentencePiece) vocabularies", g->path, tm->str);
    if (!rc) rc = hone_mkdirs(out_dir, err);
    if (!rc) rc = strcmp(tm->str, "llama") ? write_tokenizer(g, out_dir, 0, err) : write_tokenizer_spm(g, out_dir, 0, err);
    return rc;
}

int hone_convert_gguf_tokenizer(const char *gguf_path, const char *out_dir, hone_err *err)
{
    hone_gguf *g = NULL;
    int rc = hone_gguf_open(&g, gguf_path, err);
    if (rc) return rc;
    rc = hone_convert_gguf_tokenizer_of(g, out_dir, err);
    hone_gguf_close(g);
    return rc;
}

int hone_convert_gguf(const char *gguf_path, const char *out_dir, hone_convert_info *info, hone_err *err)
{
    memset(info, 0, sizeof *info);
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (hone_is_file(path)) return hone_errf(err, HONE_EINVAL, "%s exists; hone convert does not overwrite", path);
    hone_gguf *g = NULL;
    int rc = hone_gguf_open(&g, gguf_path, err);
    if (rc) return rc;
    const hone_gguf_kv *a = hone_gguf_kv_find(g, "general.architecture");
    const char *arch = a && a->str ? a->str : "";
    if (strcmp(arch, "llama") && strcmp(arch, "mistral"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: general.architecture \"%s\"; hone converts llama and mistral GGUFs",
                       gguf_path, arch);
    long long ctx = 0, hidden = 0, layers = 0, inter = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
    if (!rc) rc = kv_int(g, arch, "context_length", -1, &ctx, err);
    if (!rc) rc = kv_int(g, arch, "embedding_length", -1, &hidden, err);
    if (!rc) rc = kv_int(g, arch, "block_count", -1, &layers, err);
    if (!rc) rc = kv_int(g, arch, "feed_forward_length", -1, &inter, err);
    if (!rc) rc = kv_int(g, arch, "attention.head_count", -1, &heads, err);
    if (!rc) rc = kv_int(g, arch, "attention.head_count_kv", heads, &kv_heads, err);
    if (!rc && (!heads || !kv_heads || heads % kv_heads || hidden % heads))
        rc = hone_errf(err, HONE_EINVAL, "%s: %lld heads, %lld KV heads, hidden %lld do not fit together", gguf_path, heads,
                       kv_heads, hidden);
    if (!rc) rc = kv_int(g, arch, "rope.dimension_count", heads ? hidden / heads : 0, &head_dim, err);
    const hone_gguf_tensor *embd = hone_gguf_find(g, "token_embd.weight");
    if (!rc && (!embd || embd->ndim != 2)) rc = hone_errf(err, HONE_EINVAL, "%s: no 2-D token_embd.weight", gguf_path);
    if (!rc) rc = kv_int(g, arch, "vocab_size", (long long)embd->ne[1], &vocab, err);

    /* the tensors: dequantized, renamed, q/k rows restored */
    hone_st_out *outs = calloc(g->nt ? g->nt : 1, sizeof *outs);
    char (*names)[128] = calloc(g->nt ? g->nt : 1, sizeof *names);
    float **bufs = calloc(g->nt ? g->nt : 1, sizeof *bufs);
    size_t nout = 0;
    int tied = 1;
    if (!rc && (!outs || !names || !bufs)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->nt && !rc; i++) {
        const hone_gguf_tensor *t = &g->t[i];
        int perm = 0;
        if (!hone_gguf_tensor_name(t->name, 1, names[nout], sizeof names[nout], &perm)) {
            if (!strcmp(t->name, "rope_freqs.weight")) continue;   /* llama3 rope factors: config.json carries them */
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s has no Llama counterpart", gguf_path, t->name);
            break;
        }
        if (!strcmp(t->name, "output.weight")) tied = 0;
        bufs[nout] = malloc(t->numel * sizeof(float));
        if (!bufs[nout]) {
            rc = hone_errf(err, HONE_ENOMEM, "out of memory for %s", t->name);
            break;
        }
        rc = hone_gguf_to_f32(g, t, bufs[nout], err);
        size_t rows = t->ndim > 1 ? (size_t)(t->numel / t->ne[0]) : (size_t)t->ne[0], cols = t->ndim > 1 ? t->ne[0] : 1;
        if (!rc && perm) {
            rc = unpermute(bufs[nout], rows, cols, (size_t)(perm == 1 ? heads : kv_heads), err);
            if (rc) hone_err_prefix(err, "%s: tensor %s: ", gguf_path, t->name);
        }
        outs[nout] = (hone_st_out){names[nout], HONE_DT_F32, t->ndim > 1 ? 2 : 1, {(int64_t)rows, (int64_t)cols},
                                   bufs[nout], NULL, NULL, NULL};
        if (t->ndim == 1) outs[nout].shape[0] = (int64_t)t->ne[0];
        nout++;
        info->tensors++;
        info->params += t->numel;
        if (t->type != HONE_GGML_F32) info->dequantized++;
    }
    if (!rc) rc = hone_mkdirs(out_dir, err);
    if (!rc) rc = hone_st_write(path, outs, nout, err);
    if (!rc) {
        cJSON *c = cJSON_CreateObject();
        cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
        cJSON_AddItemToArray(archs, cJSON_CreateString(!strcmp(arch, "mistral") ? "MistralForCausalLM" : "LlamaForCausalLM"));
        cJSON_AddStringToObject(c, "model_type", arch);
        cJSON_AddNumberToObject(c, "hidden_size", (double)hidden);
        cJSON_AddNumberToObject(c, "intermediate_size", (double)inter);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)layers);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)heads);
        cJSON_AddNumberToObject(c, "num_key_value_heads", (double)kv_heads);
        cJSON_AddNumberToObject(c, "head_dim", (double)head_dim);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)ctx);
        cJSON_AddNumberToObject(c, "rms_norm_eps", kv_num(g, arch, "attention.layer_norm_rms_epsilon", 1e-6));
        cJSON_AddNumberToObject(c, "rope_theta", kv_num(g, arch, "rope.freq_base", 10000.0));
        cJSON_AddNumberToObject(c, "vocab_size", (double)vocab);
        cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
        cJSON_AddStringToObject(c, "hidden_act", "silu");
        cJSON_AddStringToObject(c, "torch_dtype", "float32");
        cJSON *gen = cJSON_CreateObject();
        const char *ids[] = {"bos", "eos", "padding"};
        for (int k = 0; k < 3; k++) {
            char key[64], name[64];
            snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", ids[k]);
            snprintf(name, sizeof name, "%s_token_id", k == 2 ? "pad" : ids[k]);
            const hone_gguf_kv *kv = hone_gguf_kv_find(g, key);
            if (kv && kv->type != HONE_GGUF_STRING && kv->type != HONE_GGUF_ARRAY) {
                cJSON_AddNumberToObject(c, name, (double)kv->i);
                cJSON_AddNumberToObject(gen, name, (double)kv->i);
            }
        }
        rc = write_json(out_dir, "config.json", c, err);
        if (!rc) rc = write_json(out_dir, "generation_config.json", gen, err);
        cJSON_Delete(c);
        cJSON_Delete(gen);
    }
    const hone_gguf_kv *tm = hone_gguf_kv_find(g, "tokenizer.ggml.model");
    snprintf(info->tokenizer, sizeof info->tokenizer, "%s", tm && tm->str ? tm->str : "");
    if (!rc && tm && tm->str && (!strcmp(tm->str, "gpt2") || !strcmp(tm->str, "llama"))) {
        rc = strcmp(tm->str, "llama") ? write_tokenizer(g, out_dir, ctx, err) : write_tokenizer_spm(g, out_dir, ctx, err);
        info->tokenizer_written = !rc;
    }
    for (size_t i = 0; i < nout; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(outs);
    hone_gguf_close(g);
    return rc;
}
