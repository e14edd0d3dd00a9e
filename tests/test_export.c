/* test_export.c — `hone convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf` against
 * llama.cpp's own convert_hf_to_gguf.py (fixtures from tests/reference/make_export_fixtures.py):
 * every metadata key llama.cpp reads and every tensor's bytes — F16, Q8_0, the llama3
 * rope_freqs, q/k rows permuted, the vocabulary with its token types — equal, for the
 * model alone and with a LoRA adapter merged in. Only general.name (llama.cpp prettifies
 * the directory name) and general.size_label (a label it estimates) are not compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "export_gguf.h"
#include "gguf.h"
#include "gguf_write.h"

static int cosmetic(const char *key)
{
    return !strcmp(key, "general.name") || !strcmp(key, "general.size_label") || !strcmp(key, "general.basename") ||
           !strcmp(key, "general.finetune");
}

static int same_kv(const hone_gguf_kv *a, const hone_gguf_kv *b)
{
    if (a->type != b->type) return 0;
    if (a->type == HONE_GGUF_STRING) return !strcmp(a->str, b->str);
    if (a->type != HONE_GGUF_ARRAY) return a->i == b->i && (a->num == b->num || (a->num != a->num && b->num != b->num));
    if (a->atype != b->atype || a->n != b->n) return 0;
    for (uint64_t i = 0; i < a->n; i++)
        if (a->atype == HONE_GGUF_STRING ? strcmp(a->strs[i], b->strs[i]) != 0 : a->nums[i] != b->nums[i]) return 0;
    return 1;
}

static void compare(const char *case_name, const char *model, const char *adapter, uint32_t type, const char *expected)
{
    char out[512], path[512];
    snprintf(out, sizeof out, "%s/export-test-%d-%s.gguf", HONE_BUILD_DIR, (int)getpid(), case_name);
    snprintf(path, sizeof path, "%s/tests/fixtures/export/%s", HONE_SOURCE_DIR, expected);
    hone_err err = {0};
    hone_export_info info;
    hone_gguf *got = NULL, *want = NULL;
    if (hone_export_gguf(model, adapter, out, type, &info, &err) || hone_gguf_open(&got, out, &err) ||
        hone_gguf_open(&want, path, &err)) {
        CHECK(0, "%s: %s", case_name, err.msg);
        hone_gguf_close(got);
        unlink(out);
        return;
    }
    for (size_t i = 0; i < want->nkv; i++) {
        if (cosmetic(want->kv[i].key)) continue;
        const hone_gguf_kv *g = hone_gguf_kv_find(got, want->kv[i].key);
        if (CHECK(g, "%s: key %s missing", case_name, want->kv[i].key))
            CHECK(same_kv(g, &want->kv[i]), "%s: key %s differs", case_name, want->kv[i].key);
    }
    for (size_t i = 0; i < got->nkv; i++)
        CHECK(cosmetic(got->kv[i].key) || hone_gguf_kv_find(want, got->kv[i].key), "%s: extra key %s", case_name,
              got->kv[i].key);
    CHECK(got->nt == want->nt, "%s: %zu tensors, llama.cpp's %zu", case_name, got->nt, want->nt);
    for (size_t i = 0; i < want->nt; i++) {
        const hone_gguf_tensor *w = &want->t[i], *g = hone_gguf_find(got, w->name);
        if (!CHECK(g, "%s: tensor %s missing", case_name, w->name)) continue;
        char what[600];
        snprintf(what, sizeof what, "%s: tensor %s", case_name, w->name);
        /* the type and shape, then the bytes */
        int shape = g->type == w->type && g->ndim == w->ndim && g->nbytes == w->nbytes &&
                    !memcmp(g->ne, w->ne, sizeof g->ne);
        if (CHECK(shape, "%s: type or shape differs", what))
            check_equal_bytes(what, g->data, w->data, w->nbytes);
    }
    printf("%s: %zu keys, %zu tensors (%zu parameters, %zu merged) compared with llama.cpp's\n", case_name, want->nkv,
           want->nt, info.params, info.merged);
    hone_gguf_close(got);
    hone_gguf_close(want);
    unlink(out);
}

int main(void)
{
    const char *model = HONE_SOURCE_DIR "/tests/fixtures/export/model";
    compare("f16", model, NULL, HONE_GGML_F16, "expected-f16.gguf");
    compare("q8_0", model, NULL, HONE_GGML_Q8_0, "expected-q8_0.gguf");
    compare("merged-f16", model, HONE_SOURCE_DIR "/tests/fixtures/export/adapter", HONE_GGML_F16,
            "expected-merged-f16.gguf");

    /* the half conversion at its edges, against values numpy's astype(float16) gives */
    static const struct { float f; uint16_t h; } halves[] = {
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3c00}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00},
        {1e-8f, 0x0000}, {3e-8f, 0x0001}, {5.960464477539063e-08f, 0x0001}, {6.097555160522461e-05f, 0x03ff},
        {6.103515625e-05f, 0x0400}, {1.00048828125f, 0x3c00}, {1.00146484375f, 0x3c02}, {-2.5f, 0xc100},
    };
    for (size_t i = 0; i < sizeof halves / sizeof *halves; i++)
        CHECK(hone_f32_to_half(halves[i].f) == halves[i].h, "half(%g) = 0x%04x, numpy 0x%04x", (double)halves[i].f,
              hone_f32_to_half(halves[i].f), halves[i].h);
    return check_summary("export");
}
