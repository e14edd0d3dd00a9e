/* none.c — the "none" quantizer: the frozen base kept in fp32, or in bf16 (half the
 * memory, rounded to nearest-even as torch's .to(torch.bfloat16) does). It goes through
 * the same quantizer interface as nf4, so the model has one path for every base. */
#include <string.h>

#include "hone/plugin.h"

HONE_PLUGIN_ABI;

typedef struct none_state {
    int bf16;
} none_state;

static const hone_host *host;

static int none_create(const hone_host *h, const hone_opts *opts, void **state, hone_err *err)
{
    none_state *s = h->alloc(sizeof *s, 16);
    if (!s) return h->error(err, HONE_ENOMEM, "out of memory");
    s->bf16 = strcmp(h->opt_string(opts, "dtype"), "bf16") == 0;
    *state = s;
    return 0;
}

static size_t none_packed_bytes(const void *state, size_t rows, size_t cols)
{
    const none_state *s = state;
    return rows * cols * (s->bf16 ? 2 : 4);
}

/* fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static int none_quantize(const void *state, void *packed, const float *w, size_t rows, size_t cols, hone_err *err)
{
    (void)err;
    const none_state *s = state;
    size_t n = rows * cols;
    if (!s->bf16) {
        memcpy(packed, w, n * 4);
        return 0;
    }
    uint16_t *out = packed;
    for (size_t i = 0; i < n; i++) out[i] = to_bf16(w[i]);
    return 0;
}

static void none_dequantize(const void *state, float *out, const void *packed, size_t rows, size_t cols,
                            size_t row0, size_t nrows)
{
    (void)rows;
    const none_state *s = state;
    size_t first = row0 * cols, n = nrows * cols;
    if (!s->bf16) {
        memcpy(out, (const float *)packed + first, n * 4);
        return;
    }
    const uint16_t *in = (const uint16_t *)packed + first;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)in[i] << 16;
        memcpy(&out[i], &u, 4);
    }
}

static void none_destroy(void *state)
{
    if (state) host->free(state);
}

static const hone_option none_opts[] = {
    {"dtype", HONE_OPT_STRING, 0, 0, "fp32", 0, 0, "fp32|bf16", 0, "storage dtype of the frozen weights"},
    {0},
};

static const hone_quantizer_vt none_vt = {
    {HONE_QUANTIZER_VERSION, sizeof(hone_quantizer_vt), "none", "no quantization: fp32 or bf16 storage", none_opts},
    none_create, none_packed_bytes, none_quantize, none_dequantize, none_destroy, NULL, NULL,
};

HONE_EXPORT int hone_plugin_init(const hone_host *h, hone_registry *reg, hone_err *err)
{
    host = h;
    return h->register_feature(reg, HONE_KIND_QUANTIZER, &none_vt, err);
}
