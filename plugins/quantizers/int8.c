/* int8.c — the "int8" quantizer: LLM.int8() weight storage as bitsandbytes' Int8Params
 * makes it (int8_vectorwise_quant without a threshold): per row SCB = max |w| in float32
 * and CB = round-half-even(w * (127 / SCB)) as int8; dequantized as CB * SCB * (1/127)
 * with bitsandbytes' constant 7.874015718698502e-3. A zero row stores zeros.
 *
 * Layout of a rows x cols weight: [rows * cols int8][pad to 4][rows float32 SCB].
 * (LLM.int8's outlier threshold splits activation columns inside its matmul; hone's
 * matrix products are fp32, so there is nothing for it to act on here.)
 */
#include <math.h>
#include <string.h>

#include "hone/plugin.h"

static size_t scb_at(size_t rows, size_t cols)
{
    return (rows * cols + 3) & ~(size_t)3;
}

static int i8_create(const hone_host *h, const hone_opts *opts, void **state, hone_err *err)
{
    (void)opts, (void)err;
    *state = NULL;   /* no options, no state */
    (void)h;
    return 0;
}

static size_t i8_packed_bytes(const void *state, size_t rows, size_t cols)
{
    (void)state;
    return scb_at(rows, cols) + 4 * rows;
}

static int i8_quantize(const void *state, void *packed, const float *w, size_t rows, size_t cols, hone_err *err)
{
    (void)state, (void)err;
    signed char *cb = packed;
    float *scb = (float *)((char *)packed + scb_at(rows, cols));
    memset(packed, 0, scb_at(rows, cols));
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        float m = 0;
        for (size_t c = 0; c < cols; c++) m = fmaxf(m, fabsf(row[c]));
        scb[r] = m;
        if (m == 0.0f) continue;   /* torch would compute 0 * inf; a zero row stays zero */
        float k = 127.0f / m;
        for (size_t c = 0; c < cols; c++) cb[r * cols + c] = (signed char)nearbyintf(row[c] * k);
    }
    return 0;
}

static void i8_dequantize(const void *state, float *out, const void *packed, size_t rows, size_t cols, size_t row0,
                          size_t nrows)
{
    (void)state;
    const signed char *cb = packed;
    const float *scb = (const float *)((const char *)packed + scb_at(rows, cols));
    const float inv127 = 7.874015718698502e-3f;
    for (size_t r = row0; r < row0 + nrows; r++)
        for (size_t c = 0; c < cols; c++) out[(r - row0) * cols + c] = ((float)cb[r * cols + c] * scb[r]) * inv127;
}

static void i8_destroy(void *state)
{
    (void)state;
}

/* no options; no bitsandbytes 4-bit form */
static const hone_quantizer_vt int8_vt = {
    .info = HONE_QUANTIZER_INFO("int8", "LLM.int8() weight storage: row-wise absmax int8", NULL),
    .create = i8_create,
    .packed_bytes = i8_packed_bytes,
    .quantize = i8_quantize,
    .dequantize = i8_dequantize,
    .destroy = i8_destroy,
};

static int register_int8(hone_registry *reg, hone_err *err)
{
    return hone_api->register_feature(reg, HONE_KIND_QUANTIZER, &int8_vt, err);
}

HONE_PLUGIN_DEFINE("quantizer_int8", register_int8)
