/* none.c — the "none" quantizer: the frozen base kept in fp32, or in bf16 (half the
 * memory, rounded to nearest-even as torch's .to(torch.bfloat16) does). It goes through
 * the same quantizer interface as nf4, so the model has one path for every base. */
#include <string.h>

#include "hone/plugin.h"

typedef struct none_state {
    int bf16;
} none_state;

static int none_create(const hone_host *h, const hone_opts *opts, void **state, hone_err *err)
{
    (void)h;
    none_state *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    s->bf16 = strcmp(hone_api->opt_string(opts, "dtype"), "bf16") == 0;
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
    if (state) hone_api->free(state);
}

static const hone_option none_opts[] = {
    HONE_OPTION_STRING("dtype", "fp32", "fp32|bf16", "storage dtype of the frozen weights"),
    HONE_OPTION_END,
};

/* no bitsandbytes form: import_bnb4 and export_bnb4 stay NULL */
static const hone_quantizer_vt none_vt = {
    .info = HONE_QUANTIZER_INFO("none", "no quantization: fp32 or bf16 storage", none_opts),
    .create = none_create,
    .packed_bytes = none_packed_bytes,
    .quantize = none_quantize,
    .dequantize = none_dequantize,
    .destroy = none_destroy,
};

static int register_none(hone_registry *reg, hone_err *err)
{
    return hone_api->register_feature(reg, HONE_KIND_QUANTIZER, &none_vt, err);
}

HONE_PLUGIN_DEFINE("quantizer_none", register_none)
