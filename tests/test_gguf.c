/* test_gguf.c — the GGUF reader against gguf-py (fixtures from
 * tests/reference/make_gguf_fixtures.py): every metadata type, tensor shapes, and F32,
 * F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K dequantized bit for bit as gguf-py does;
 * then damaged copies of the file are refused with a message. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "safetensors.h"
#include "util.h"

static int failures, checks;

static void check(int ok, const char *what)
{
    checks++;
    if (!ok) {
        printf("FAIL %s\n", what);
        failures++;
    }
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
    check(g->version == 3, "version 3");
    const hone_gguf_kv *kv;
    kv = hone_gguf_kv_find(g, "general.architecture");
    check(kv && kv->str && !strcmp(kv->str, "llama"), "general.architecture");
    const char *ints[] = {"llama.block_count", "test.u64", "test.i32", "test.u8", "test.i16"};
    for (int i = 0; i < 5; i++) {
        kv = hone_gguf_kv_find(g, ints[i]);
        check(kv && kv->i == (int64_t)cJSON_GetObjectItem(meta, ints[i])->valuedouble, ints[i]);
    }
    kv = hone_gguf_kv_find(g, "test.f32");
    check(kv && kv->num == 0.25, "test.f32");
    kv = hone_gguf_kv_find(g, "test.f64");
    check(kv && kv->num == -1.5, "test.f64");
    kv = hone_gguf_kv_find(g, "test.bool");
    check(kv && kv->type == HONE_GGUF_BOOL && kv->i == 1, "test.bool");
    kv = hone_gguf_kv_find(g, "test.string");
    check(kv && kv->str && !strcmp(kv->str, "h\xc3\xa9llo \xe2\x9c\x93"), "test.string (UTF-8)");
    kv = hone_gguf_kv_find(g, "test.strings");
    check(kv && kv->n == 3 && kv->strs && !strcmp(kv->strs[0], "a") && !strcmp(kv->strs[1], "") &&
              !strcmp(kv->strs[2], "three"), "test.strings");
    kv = hone_gguf_kv_find(g, "test.ints");
    check(kv && kv->n == 4 && kv->nums && kv->nums[3] == -4, "test.ints");

    const cJSON *shapes = cJSON_GetObjectItem(meta, "tensors"), *s;
    cJSON_ArrayForEach(s, shapes)
    {
        const hone_gguf_tensor *t = hone_gguf_find(g, s->string);
        const hone_st_tensor *w = hone_st_find(want, s->string);
        char what[1400];
        snprintf(what, sizeof what, "tensor %s present", s->string);
        check(t && w, what);
        if (!t || !w) continue;
        /* numpy's shape is GGUF's ne reversed */
        int n = cJSON_GetArraySize(s), same = (uint32_t)n == t->ndim;
        for (int d = 0; same && d < n; d++) same = (uint64_t)cJSON_GetArrayItem(s, d)->valueint == t->ne[n - 1 - d];
        snprintf(what, sizeof what, "tensor %s shape", s->string);
        check(same, what);
        float *out = malloc(t->numel * sizeof *out);
        int rc = hone_gguf_to_f32(g, t, out, &err);
        size_t diff = 0;
        for (uint64_t i = 0; !rc && i < t->numel; i++) diff += memcmp(out + i, (const float *)w->data + i, 4) != 0;
        snprintf(what, sizeof what, "tensor %s (%s): %zu of %llu values differ from gguf-py%s%s", s->string,
                 hone_ggml_type_name(t->type), diff, (unsigned long long)t->numel, rc ? ": " : "", rc ? err.msg : "");
        check(!rc && !diff, what);
        if (!rc && !diff) printf("ok %s (%s): %llu values bit-identical to gguf-py\n", s->string,
                                 hone_ggml_type_name(t->type), (unsigned long long)t->numel);
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
        char what[1200];
        snprintf(what, sizeof what, "%s is refused with '%s' (got: %s)", bad[i].what, bad[i].want, rc ? e.msg : "accepted");
        check(rc && strstr(e.msg, bad[i].want), what);
        hone_gguf_close(h);
        free(b);
    }
    free(copy);
    cJSON_Delete(meta);
    hone_st_close(want);
    hone_gguf_close(g);
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
