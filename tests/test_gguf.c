/* test_gguf.c — the GGUF reader against gguf-py (fixtures from
 * tests/reference/make_gguf_fixtures.py): every metadata type, tensor shapes, and F32,
 * F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K dequantized bit for bit as gguf-py does;
 * damaged copies of the file are refused with a message; and hone convert of the tiny
 * llama written as llama.cpp writes it gives transformers' GGUF weights and logits. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "convert.h"
#include "gguf.h"
#include "model.h"
#include "options.h"
#include "registry.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "util.h"

/* text encodes to exactly the JSON array ids */
static int encodes_as(hone_tokenizer *tk, const char *txt, int special, const cJSON *ids)
{
    hone_err err = {0};
    tok_ids got = {0};
    int same = hone_tokenizer_encode(tk, txt, strlen(txt), special, &got, &err) == 0 &&
               got.n == (size_t)cJSON_GetArraySize(ids);
    size_t k = 0;
    for (const cJSON *e = ids ? ids->child : NULL; same && e; e = e->next, k++) same = got.v[k] == e->valueint;
    free(got.v);
    return same;
}

int main(void)
{
    hone_err err = {0};
    hone_gguf *g = NULL;
    hone_st_file *want = NULL;
    char *text = NULL;
    if (hone_gguf_open(&g, HONE_SOURCE_DIR "/tests/fixtures/gguf/tiny.gguf", &err) ||
        hone_st_open(&want, HONE_SOURCE_DIR "/tests/fixtures/gguf/expected.safetensors", &err) ||
        hone_read_file(HONE_SOURCE_DIR "/tests/fixtures/gguf/meta.json", &text, NULL, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    cJSON *meta = cJSON_Parse(text);
    free(text);
    CHECK(g->version == 3, "version 3");
    const hone_gguf_kv *kv;
    kv = hone_gguf_kv_find(g, "general.architecture");
    CHECK(kv && kv->str && !strcmp(kv->str, "llama"), "general.architecture");
    const char *ints[] = {"llama.block_count", "test.u64", "test.i32", "test.u8", "test.i16"};
    for (int i = 0; i < 5; i++) {
        kv = hone_gguf_kv_find(g, ints[i]);
        CHECK(kv && kv->i == (int64_t)cJSON_GetObjectItem(meta, ints[i])->valuedouble, "%s", ints[i]);
    }
    kv = hone_gguf_kv_find(g, "test.f32");
    CHECK(kv && kv->num == 0.25, "test.f32");
    kv = hone_gguf_kv_find(g, "test.f64");
    CHECK(kv && kv->num == -1.5, "test.f64");
    kv = hone_gguf_kv_find(g, "test.bool");
    CHECK(kv && kv->type == HONE_GGUF_BOOL && kv->i == 1, "test.bool");
    kv = hone_gguf_kv_find(g, "test.string");
    CHECK(kv && kv->str && !strcmp(kv->str, "h\xc3\xa9llo \xe2\x9c\x93"), "test.string (UTF-8)");
    kv = hone_gguf_kv_find(g, "test.strings");
    CHECK(kv && kv->n == 3 && kv->strs && !strcmp(kv->strs[0], "a") && !strcmp(kv->strs[1], "") &&
              !strcmp(kv->strs[2], "three"), "test.strings");
    kv = hone_gguf_kv_find(g, "test.ints");
    CHECK(kv && kv->n == 4 && kv->nums && kv->nums[3] == -4, "test.ints");

    const cJSON *shapes = cJSON_GetObjectItem(meta, "tensors"), *s;
    cJSON_ArrayForEach(s, shapes)
    {
        const hone_gguf_tensor *t = hone_gguf_find(g, s->string);
        const hone_st_tensor *w = hone_st_find(want, s->string);
        if (!CHECK(t && w, "tensor %s present", s->string)) continue;
        /* numpy's shape is GGUF's ne reversed */
        int n = cJSON_GetArraySize(s), same = (uint32_t)n == t->ndim;
        for (int d = 0; same && d < n; d++) same = (uint64_t)cJSON_GetArrayItem(s, d)->valueint == t->ne[n - 1 - d];
        CHECK(same, "tensor %s shape", s->string);
        float *out = malloc(t->numel * sizeof *out);
        int rc = hone_gguf_to_f32(g, t, out, &err);
        char what[1400];
        snprintf(what, sizeof what, "tensor %s (%s) vs gguf-py", s->string, hone_ggml_type_name(t->type));
        if (CHECK(!rc, "%s: %s", what, err.msg) && check_equal_f32(what, out, w->data, t->numel))
            printf("ok %s (%s): %llu values bit-identical to gguf-py\n", s->string, hone_ggml_type_name(t->type),
                   (unsigned long long)t->numel);
        free(out);
    }
    /* damaged copies */
    size_t size = g->size;
    uint8_t *copy = malloc(size);
    memcpy(copy, g->map, size);
    struct { const char *what, *want; size_t at; uint8_t byte; size_t cut; } bad[] = {
        {"bad magic", "not a GGUF file", 0, 'X', 0},
        {"version 1", "GGUF version 1", 4, 1, 0},
        {"truncated header", "truncated", 0, 'G', 10},
        {"truncated data", "runs past the end of the file", 0, 'G', size - 8},
        {"huge tensor count", "cannot fit", 15, 0x40, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *b = malloc(size);
        memcpy(b, copy, size);
        b[bad[i].at] = bad[i].byte;
        hone_gguf *h = NULL;
        hone_err e = {0};
        int rc = hone_gguf_parse(&h, b, bad[i].cut ? bad[i].cut : size, "damaged.gguf", &e);
        CHECK(rc && strstr(e.msg, bad[i].want), "%s is refused with '%s' (got: %s)", bad[i].what, bad[i].want,
              rc ? e.msg : "accepted");
        hone_gguf_close(h);
        free(b);
    }
    free(copy);

    /* hone convert: the tiny llama as llama.cpp writes it -> the weights and logits that
     * transformers' own GGUF loader gives */
    char dir[] = "/tmp/hone-convert-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char out_dir[300], path[400];
    snprintf(out_dir, sizeof out_dir, "%s/model", dir);
    hone_convert_info info;
    hone_st_file *conv = NULL, *ref = NULL;
    int rc = hone_convert_gguf(HONE_SOURCE_DIR "/tests/fixtures/gguf/llama.gguf", out_dir, &info, &err);
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (!rc) rc = hone_st_open(&conv, path, &err);
    if (!rc) rc = hone_st_open(&ref, HONE_SOURCE_DIR "/tests/fixtures/gguf/llama-expected.safetensors", &err);
    CHECK(!rc, "convert: %s", err.msg);
    size_t same = 0;
    for (size_t i = 0; !rc && i < conv->n; i++) {
        const hone_st_tensor *a = &conv->t[i], *b = hone_st_find(ref, a->name);
        char what[600];
        snprintf(what, sizeof what, "converted %s vs transformers' GGUF load", a->name);
        same += CHECK(b && a->numel == b->numel, "%s: absent or of another size", what) &&
                check_equal_f32(what, a->data, b->data, a->numel);
    }
    if (!rc) printf("ok convert: %zu tensors bit-identical to transformers' GGUF loader (q/k unpermuted)\n", same);
    hone_registry *r = hone_registry_new();
    rc = rc ? rc : hone_registry_load_dir(r, HONE_BUILD_DIR "/plugins", &err);
    const hone_feature *none = rc ? NULL : hone_registry_find(r, HONE_KIND_QUANTIZER, "none");
    hone_opts *qo = NULL;
    if (none) rc = hone_opts_resolve(&qo, none->info->options, NULL, "q", "none", &err);
    for (int k = 0; !rc && k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "prompt.%d", k);
        const hone_st_tensor *pt = hone_st_find(ref, key);
        snprintf(key, sizeof key, "logits.%d", k);
        const hone_st_tensor *lt = hone_st_find(ref, key);
        int T = (int)pt->numel;
        hone_model_opts o = {.quantizer = none, .quantizer_opts = qo, .alpha = 8, .seed = 1, .batch = 1, .seq = T};
        hone_model *m = NULL;
        rc = hone_model_load(&m, out_dir, &o, &err);
        if (!rc) rc = hone_model_forward(m, pt->data, NULL, 1, T, NULL, NULL, &err);
        /* within 1e-5 of the largest logit */
        const float *want = lt->data;
        double big = check_max_abs(want, lt->numel);
        char what[64];
        snprintf(what, sizeof what, "prompt %d logits vs transformers", k);
        if (CHECK(!rc, "%s: %s", what, err.msg) &&
            check_close(what, hone_model_logits(m), want, lt->numel, 1e-5 * big, 0))
            printf("ok convert: prompt %d logits max diff / max = %.2g\n", k, check_last()->max_abs / big);
        hone_model_free(m);
    }
    hone_opts_free(qo);
    hone_registry_free(r);
    hone_st_close(conv);
    hone_st_close(ref);
    CHECK(hone_convert_gguf(HONE_SOURCE_DIR "/tests/fixtures/gguf/llama.gguf", out_dir, &info, &err) != 0 &&
              strstr(err.msg, "does not overwrite"), "convert refuses to overwrite");
    /* the tokenizer: a gpt2 vocabulary rebuilt as tokenizer.json gives transformers' GGUF
     * tokenizer's ids */
    char tok_dir[400];
    snprintf(tok_dir, sizeof tok_dir, "%s/tok", dir);
    char *etext = NULL;
    hone_tokenizer *tk = NULL;
    rc = hone_convert_gguf_tokenizer(HONE_SOURCE_DIR "/tests/fixtures/gguf/tokenizer.gguf", tok_dir, &err);
    if (!rc) rc = hone_tokenizer_load(&tk, tok_dir, &err);
    if (!rc) rc = hone_read_file(HONE_SOURCE_DIR "/tests/fixtures/gguf/tokenizer-expected.json", &etext, NULL, &err);
    CHECK(!rc, "tokenizer conversion: %s", err.msg);
    cJSON *cases = rc ? NULL : cJSON_Parse(etext);
    int ntexts = 0, nsame = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cases)
    {
        const char *txt = cJSON_GetObjectItem(cs, "text")->valuestring;
        int same = encodes_as(tk, txt, 0, cJSON_GetObjectItem(cs, "ids"));
        ntexts++;
        nsame += same;
        if (!same) printf("  tokenizer differs on: %.60s\n", txt);
    }
    char twhat[200];
    snprintf(twhat, sizeof twhat, "GGUF tokenizer: %d of %d texts tokenize as transformers' GGUF loader", nsame, ntexts);
    if (CHECK(ntexts > 0 && nsame == ntexts, "%s", twhat)) printf("ok %s\n", twhat);
    cJSON_Delete(cases);
    free(etext);
    hone_tokenizer_free(tk);
    /* a SentencePiece ("llama") vocabulary written by llama.cpp's converter: the ids of
     * transformers' GGUF loader, without and with the special tokens */
    rc = hone_convert_gguf_tokenizer(HONE_SOURCE_DIR "/tests/fixtures/gguf/tokenizer-spm.gguf", tok_dir, &err);
    tk = NULL;
    if (!rc) rc = hone_tokenizer_load(&tk, tok_dir, &err);
    if (!rc) rc = hone_read_file(HONE_SOURCE_DIR "/tests/fixtures/gguf/tokenizer-spm-expected.json", &etext, NULL, &err);
    CHECK(!rc, "SentencePiece tokenizer conversion: %s", err.msg);
    cases = rc ? NULL : cJSON_Parse(etext);
    ntexts = nsame = 0;
    cJSON_ArrayForEach(cs, cases)
    {
        const char *txt = cJSON_GetObjectItem(cs, "text")->valuestring;
        for (int special = 0; special < 2; special++) {
            int same = encodes_as(tk, txt, special, cJSON_GetObjectItem(cs, special ? "with_special" : "ids"));
            ntexts++;
            nsame += same;
            if (!same) printf("  SentencePiece tokenizer differs%s on: %.60s\n", special ? " (with specials)" : "", txt);
        }
    }
    snprintf(twhat, sizeof twhat, "GGUF SentencePiece tokenizer: %d of %d encodings as transformers' GGUF loader", nsame,
             ntexts);
    if (CHECK(ntexts > 0 && nsame == ntexts, "%s", twhat)) printf("ok %s\n", twhat);
    cJSON_Delete(cases);
    free(etext);
    etext = NULL;
    hone_tokenizer_free(tk);
    /* the other pre-tokenizer types give tokenizers that load and split digits as theirs do */
    static const struct { const char *pre; size_t n; } pres[] = {{"smollm", 0}, {"llama-bpe", 0}, {"qwen2", 0}};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        char src[600], d[500];
        snprintf(src, sizeof src, "%s/tests/fixtures/gguf/tokenizer-%s.gguf", HONE_SOURCE_DIR, pres[i].pre);
        snprintf(d, sizeof d, "%s/tok-%s", dir, pres[i].pre);
        hone_tokenizer *t2 = NULL;
        tok_ids got = {0};
        rc = hone_convert_gguf_tokenizer(src, d, &err);
        if (!rc) rc = hone_tokenizer_load(&t2, d, &err);
        if (!rc) rc = hone_tokenizer_encode(t2, "price 12345 dollars", 19, 0, &got, &err);
        CHECK(!rc && got.n > 0, "pre-tokenizer %s converts, loads and encodes%s%s", pres[i].pre, rc ? ": " : "",
              rc ? err.msg : "");
        free(got.v);
        hone_tokenizer_free(t2);
    }

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    cJSON_Delete(meta);
    hone_st_close(want);
    hone_gguf_close(g);
    return check_summary("gguf");
}
