/* bnb4.c — the "nf4" and "fp4" quantizers, bit for bit bitsandbytes' 4-bit formats
 * (docs/numerics.md §1): blocks of block_size consecutive elements of the row-major weight,
 * a float32 absmax per block, two 4-bit codes per byte (even element in the high nibble),
 * and with double_quant the absmax values stored as uint8 codes of the signed dynamic map
 * in blocks of 256 after subtracting their mean.
 *
 * The 4-bit codes follow bitsandbytes' CPU backend exactly (the path that can be
 * reproduced off a GPU): scaled = w * (1/absmax) for full blocks and w / absmax for the
 * last partial block, codes by strict comparison against float32 midpoints of the code
 * table; the absmax mean is torch's float32 sum on one AVX2 thread. Where the CPU and CUDA
 * paths differ, hone takes the CUDA kernels' side: an all-zero block stores absmax 0 and
 * code 0 (the CPU path writes the top code via a NaN, and absmax 1e-38 for a partial
 * block), FP4 code 8 dequantizes to -0 (the CPU path gives +0 or -0 depending on the
 * weight's shape), and the nested absmax codes are kQuantizeBlockwise's binary search over
 * the real map (the C++ CPU search took its lowest entry as -1; docs/numerics.md §1).
 *
 * Packed layout of a rows x cols weight (n elements, nb = ceil(n / block_size) blocks):
 *   [(n + 1) / 2 bytes of codes][pad to 4]
 *   absmax: nb float32, or with double_quant nb uint8 codes [pad to 4]
 *           then ceil(nb / 256) float32 nested absmax and one float32 offset
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "hone/plugin.h"

#include "../common/bnb_dynamic_maps.h"


/* ---- code tables ---------------------------------------------------------------- */

static const float nf4_code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* get_4bit_type("fp4"): [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3] / 12 (the -0 is +0) */
static float fp4_code[16];


/* the code table sorted ascending (torch.argsort order) and float32 midpoints between neighbours */
typedef struct table4 {
    const float *code;
    unsigned char order[16];
    float mid[15];
} table4;

static table4 nf4_table, fp4_table;
static float dyn_signed[256];   /* create_dynamic_map(signed=True) */

static void tables_init(void)
{
    static const float fp4_raw[16] = {0, 0.0625f, 8, 12, 4, 6, 2, 3, 0, -0.0625f, -8, -12, -4, -6, -2, -3};
    for (int i = 0; i < 16; i++) fp4_code[i] = fp4_raw[i] / 12.0f;
    /* torch.argsort of these 16 values (ties keep index order, as torch does here) */
    static const unsigned char nf4_order[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned char fp4_order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};
    table4 *t[2] = {&nf4_table, &fp4_table};
    const float *codes[2] = {nf4_code, fp4_code};
    const unsigned char *orders[2] = {nf4_order, fp4_order};
    for (int k = 0; k < 2; k++) {
        t[k]->code = codes[k];
        memcpy(t[k]->order, orders[k], 16);
        for (int i = 0; i < 15; i++) t[k]->mid[i] = (codes[k][orders[k][i]] + codes[k][orders[k][i + 1]]) / 2.0f;
    }
    const float *v = bnb_dynamic_signed;
    memcpy(dyn_signed, v, sizeof dyn_signed);
}

/* torch.bucketize(x, mid) with right=False for 8 values: how many midpoints are < x (x is
 * never NaN here), counted with 15 vector compares instead of a branchy scan; then the order */
static void code4x8(const table4 *t, const float *x, unsigned char *q)
{
    __m256 v = _mm256_loadu_ps(x);
    __m256i n = _mm256_setzero_si256();
    for (int i = 0; i < 15; i++)   /* a true compare is -1 */
        n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(_mm256_set1_ps(t->mid[i]), v, _CMP_LT_OQ)));
    int c[8];
    _mm256_storeu_si256((__m256i *)c, n);
    for (int j = 0; j < 8; j++) q[j] = t->order[c[j]];
}

/* ---- torch's float32 sum (cascade_sum, contiguous, AVX2: 8 lanes, one thread) ---- */

#define LANES 8

static int ceil_log2(long long x)
{
    if (x <= 2) return 1;
    int k = 63 - __builtin_clzll((unsigned long long)(x - 1));
    return k + 1;
}

/* multi_row_sum over `size` rows of 4 columns; element (i, k) is the LANES-vector at
 * x + (4 * i + k) * vec (vec = LANES for the vector pass, 1 for the scalar pass) */
static void multi_row_sum(float out[4][LANES], const float *x, long long size, int vec)
{
    const int levels = 4;
    int power = ceil_log2(size) / levels;
    if (power < 4) power = 4;
    long long step = 1LL << power, mask = step - 1;
    float acc[4][4][LANES];
    memset(acc, 0, sizeof acc);
    long long i = 0;
    while (i + step <= size) {
        for (long long j = 0; j < step; j++, i++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < vec; l++) acc[0][k][l] += x[(4 * i + k) * vec + l];
        for (int j = 1; j < levels; j++) {
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < vec; l++) {
                    acc[j][k][l] += acc[j - 1][k][l];
                    acc[j - 1][k][l] = 0;
                }
            if ((i & (mask << (j * power))) != 0) break;
        }
    }
    for (; i < size; i++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < vec; l++) acc[0][k][l] += x[(4 * i + k) * vec + l];
    for (int j = 1; j < levels; j++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < vec; l++) acc[0][k][l] += acc[j][k][l];
    memcpy(out, acc[0], sizeof acc[0]);
}

/* row_sum: 4-way interleaved multi_row_sum, leftovers into column 0, then columns folded */
static void row_sum(float out[LANES], const float *x, long long count, int vec)
{
    float part[4][LANES];
    long long size_ilp = count / 4;
    multi_row_sum(part, x, size_ilp, vec);
    for (long long i = size_ilp * 4; i < count; i++)
        for (int l = 0; l < vec; l++) part[0][l] += x[i * vec + l];
    for (int k = 1; k < 4; k++)
        for (int l = 0; l < vec; l++) part[0][l] += part[k][l];
    memcpy(out, part[0], sizeof part[0]);
}

static float torch_sum(const float *x, long long n)
{
    float acc[LANES];
    if (n >= LANES) {   /* vectorized_inner_sum */
        long long vecs = n / LANES;
        row_sum(acc, x, vecs, LANES);
        float total = 0;
        for (long long k = vecs * LANES; k < n; k++) total += x[k];
        for (int l = 0; l < LANES; l++) total += acc[l];
        return total;
    }
    row_sum(acc, x, n, 1);   /* scalar_inner_sum */
    return acc[0];
}

/* ---- the quantizer state and layout ------------------------------------------- */

typedef struct bnb4 {
    const table4 *t;
    int fp4;
    long long bs;
    int dq;
} bnb4;

typedef struct layout {
    size_t n, nb, nb2, codes, absmax, nested, offset, total;
} layout;

static layout plan(const bnb4 *s, size_t rows, size_t cols)
{
    layout L;
    L.n = rows * cols;
    L.nb = (L.n + (size_t)s->bs - 1) / (size_t)s->bs;
    L.nb2 = (L.nb + 255) / 256;
    L.codes = 0;
    L.absmax = ((L.n + 1) / 2 + 3) & ~(size_t)3;
    if (s->dq) {
        L.nested = (L.absmax + L.nb + 3) & ~(size_t)3;
        L.offset = L.nested + 4 * L.nb2;
        L.total = L.offset + 4;
    } else {
        L.nested = L.offset = L.absmax + 4 * L.nb;
        L.total = L.nested;
    }
    return L;
}

static int bnb4_create(const hone_opts *opts, void **state, int fp4, hone_err *err)
{
    long long bs = hone_api->opt_integer(opts, "block_size");
    if (bs != 32 && bs != 64 && bs != 128 && bs != 256 && bs != 512 && bs != 1024 && bs != 2048 && bs != 4096)
        return hone_api->error(err, HONE_EINVAL, "block_size %lld: must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096", bs);
    bnb4 *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    s->fp4 = fp4;
    s->t = fp4 ? &fp4_table : &nf4_table;
    s->bs = bs;
    s->dq = hone_api->opt_bool(opts, "double_quant");
    *state = s;
    return 0;
}

static int nf4_create(const hone_host *h, const hone_opts *opts, void **state, hone_err *err)
{
    (void)h;
    return bnb4_create(opts, state, 0, err);
}

static int fp4_create(const hone_host *h, const hone_opts *opts, void **state, hone_err *err)
{
    (void)h;
    return bnb4_create(opts, state, 1, err);
}

static void bnb4_destroy(void *state)
{
    if (state) hone_api->free(state);
}

static size_t bnb4_packed_bytes(const void *state, size_t rows, size_t cols)
{
    return plan(state, rows, cols).total;
}

/* CUDA's --use_fast_math flushes subnormal operands and results to zero, keeping the sign */
static float ftz(float x)
{
    return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

/* dQuantize<0> of csrc/kernels.cu, op for op: a 7-step binary search from pivot 127 with
 * bounds -1 and 1, the real map's [255] or [0] where a side was never narrowed, then a
 * float32 midpoint test against the neighbour on x's side; a value on a midpoint keeps the
 * even pivot the search ended at, and NaN (0 * inf: a block whose values are all 0) ends at 0 */
static unsigned char code8(float x)
{
    const float *c = dyn_signed;
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f, val = c[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = c[pivot];
    }
    if (upper_pivot == 255) upper = c[upper_pivot];
    if (lower_pivot == 0) lower = c[lower_pivot];
    if (x > val) return (unsigned char)(x > (upper + val) * 0.5f ? upper_pivot : pivot);
    return (unsigned char)(x < (lower + val) * 0.5f ? lower_pivot : pivot);
}

static int bnb4_quantize(const void *state, void *packed, const float *w, size_t rows, size_t cols, hone_err *err)
{
    const bnb4 *s = state;
    layout L = plan(s, rows, cols);
    unsigned char *out = packed;
    memset(out, 0, L.total);
    float *absmax = s->dq ? hone_api->alloc(L.nb * sizeof(float), 64) : (float *)(out + L.absmax);
    if (!absmax) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    for (size_t b = 0; b < L.nb; b++) {
        size_t first = b * (size_t)s->bs, count = L.n - first < (size_t)s->bs ? L.n - first : (size_t)s->bs;
        int partial = count < (size_t)s->bs;
        float m = 0;
        for (size_t i = 0; i < count; i++) {   /* fmaxf's NaN rule (a NaN is passed over), inlined */
            float a = fabsf(w[first + i]);
            m = a > m ? a : m;
        }
        absmax[b] = m;
        float inv = 1.0f / m;
        size_t todo = count + (count & 1 && first + count == L.n);
        for (size_t i0 = 0; i0 < todo; i0 += 8) {
            float xb[8] = {0};
            unsigned char qb[8];
            size_t k = todo - i0 < 8 ? todo - i0 : 8;
            for (size_t j = 0; j < k; j++) {
                size_t e = first + i0 + j;
                float v = e < L.n ? w[e] : 0.0f;   /* an odd tail pads with a zero */
                float x = partial ? v / m : v * inv;
                x = x > -1.0f ? x : -1.0f;   /* fmaxf then fminf, NaN to -1, without the libm calls */
                xb[j] = x < 1.0f ? x : 1.0f;
            }
            code4x8(s->t, xb, qb);
            for (size_t j = 0; j < k; j++) {
                size_t e = first + i0 + j;
                /* an all-zero block: CUDA's 0 * (1/0) is NaN, which its trees send to code 0 */
                unsigned char q = m == 0.0f ? 0 : qb[j];
                out[e / 2] |= (unsigned char)(e & 1 ? q : q << 4);
            }
        }
    }
    if (s->dq) {
        float offset = torch_sum(absmax, (long long)L.nb) / (float)L.nb;
        float *nested = (float *)(out + L.nested);
        for (size_t b2 = 0; b2 < L.nb2; b2++) {
            size_t first = b2 * 256, count = L.nb - first < 256 ? L.nb - first : 256;
            /* kQuantizeBlockwise<float, 256, 2, 0, General8bit>: torch's subtraction, then the
             * kernel's flushed fabsf / fmaxf from -FLT_MAX, x = value * (1.0f / absmax) */
            float m = -FLT_MAX;
            for (size_t i = 0; i < count; i++) m = fmaxf(m, fabsf(ftz(absmax[first + i] - offset)));
            nested[b2] = m;
            /* the kernel's 1.0f / m is rcp.approx.ftz (within 1 ulp, and not specified bit for
             * bit), so the correctly rounded reciprocal stands in for it */
            float scale = ftz(1.0f / m);
            for (size_t i = 0; i < count; i++)
                out[L.absmax + first + i] = code8(ftz(ftz(absmax[first + i] - offset) * scale));
        }
        memcpy(out + L.offset, &offset, 4);
        hone_api->free(absmax);
    }
    return 0;
}

/* the float32 absmax of blocks [b0, b1) into am */
static void block_absmax(const bnb4 *s, const unsigned char *p, const layout *L, size_t b0, size_t b1, float *am)
{
    if (!s->dq) {
        memcpy(am, p + L->absmax + 4 * b0, 4 * (b1 - b0));
        return;
    }
    const float *nested = (const float *)(p + L->nested);
    float offset;
    memcpy(&offset, p + L->offset, 4);
    for (size_t b = b0; b < b1; b++) am[b - b0] = dyn_signed[p[L->absmax + b]] * nested[b / 256] + offset;
}

static void bnb4_dequantize(const void *state, float *out, const void *packed, size_t rows, size_t cols, size_t row0,
                            size_t nrows)
{
    const bnb4 *s = state;
    const unsigned char *p = packed;
    layout L = plan(s, rows, cols);
    size_t first = row0 * cols, last = first + nrows * cols, bs = (size_t)s->bs;
    float lut[16];   /* FP4 codes 8-15 carry the sign bit: code 8 is -0 */
    for (int i = 0; i < 16; i++) lut[i] = s->fp4 ? (i & 8 ? -1.0f : 1.0f) * s->t->code[i & 7] : s->t->code[i];
    /* one byte -> two floats: the inner loop is a table lookup and two multiplies */
    float pair[256][2];
    for (int b = 0; b < 256; b++) pair[b][0] = lut[b >> 4], pair[b][1] = lut[b & 15];
    for (size_t b = first / bs; b * bs < last; b++) {
        float am;
        block_absmax(s, p, &L, b, b + 1, &am);
        size_t lo = b * bs > first ? b * bs : first, hi = (b + 1) * bs < last ? (b + 1) * bs : last;
        size_t e = lo;
        if (e & 1) {   /* a block that starts on an odd element (odd block sizes never; odd row starts) */
            out[e - first] = lut[p[e / 2] & 15] * am;
            e++;
        }
        float *o = out + (e - first);
        const unsigned char *src = p + e / 2;
        size_t pairs = (hi - e) / 2, k = 0;
        /* AVX2: 16 bytes -> 32 floats; the 16-entry table as two 8-lane permutes */
        __m256 t_lo = _mm256_loadu_ps(lut), t_hi = _mm256_loadu_ps(lut + 8), scale = _mm256_set1_ps(am);
        const __m128i nib = _mm_set1_epi8(15);
        const __m256i seven = _mm256_set1_epi32(7);
        for (; k + 16 <= pairs; k += 16) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)(src + k));
            __m128i h = _mm_and_si128(_mm_srli_epi16(bytes, 4), nib), l = _mm_and_si128(bytes, nib);
            __m128i codes[2] = {_mm_unpacklo_epi8(h, l), _mm_unpackhi_epi8(h, l)};   /* element order */
            for (int c = 0; c < 2; c++)
                for (int g = 0; g < 2; g++) {
                    __m256i idx = _mm256_cvtepu8_epi32(g ? _mm_srli_si128(codes[c], 8) : codes[c]);
                    __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t_lo, idx), _mm256_permutevar8x32_ps(t_hi, idx),
                                                _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven)));
                    _mm256_storeu_ps(o + 2 * k + 16 * c + 8 * g, _mm256_mul_ps(v, scale));
                }
        }
        for (; k < pairs; k++) {
            const float *v = pair[src[k]];
            o[2 * k] = v[0] * am;
            o[2 * k + 1] = v[1] * am;
        }
        e += 2 * pairs;
        if (e < hi) out[e - first] = lut[p[e / 2] >> 4] * am;
    }
}

/* ---- bitsandbytes' serialized form ---- */

static int bnb4_import(const void *state, void *packed, size_t rows, size_t cols, const hone_bnb4 *in, hone_err *err)
{
    const bnb4 *s = state;
    layout L = plan(s, rows, cols);
    const char *want = s->fp4 ? "fp4" : "nf4";
    if (!in->quant_type || strcmp(in->quant_type, want) != 0)
        return hone_api->error(err, HONE_EINVAL, "quant_type \"%s\", but the quantizer is %s", in->quant_type ? in->quant_type : "?",
                           want);
    if (in->blocksize != s->bs)
        return hone_api->error(err, HONE_EINVAL, "blocksize %d, but block_size is %lld", in->blocksize, s->bs);
    if ((in->nested_absmax != NULL) != s->dq)
        return hone_api->error(err, HONE_EINVAL, "the checkpoint %s double quantization, but double_quant is %s",
                           in->nested_absmax ? "uses" : "does not use", s->dq ? "true" : "false");
    if (in->nabsmax != L.nb || in->absmax_u8 != s->dq)
        return hone_api->error(err, HONE_EINVAL, "%zu absmax values of the wrong type for %zu blocks", in->nabsmax, L.nb);
    for (int i = 0; i < 16; i++)
        if (in->quant_map[i] != s->t->code[i])
            return hone_api->error(err, HONE_EUNSUPPORTED, "quant_map[%d] = %g is not bitsandbytes' %s code", i,
                               (double)in->quant_map[i], want);
    unsigned char *out = packed;
    memset(out, 0, L.total);
    memcpy(out, in->weight, (L.n + 1) / 2);
    if (!s->dq) {
        memcpy(out + L.absmax, in->absmax, 4 * L.nb);
        return 0;
    }
    if (in->nested_blocksize != 256)
        return hone_api->error(err, HONE_EUNSUPPORTED, "nested_blocksize %d (bitsandbytes uses 256)", in->nested_blocksize);
    for (int i = 0; i < 256; i++)
        if (in->nested_quant_map[i] != dyn_signed[i])
            return hone_api->error(err, HONE_EUNSUPPORTED, "nested_quant_map[%d] is not the signed dynamic map", i);
    memcpy(out + L.absmax, in->absmax, L.nb);
    memcpy(out + L.nested, in->nested_absmax, 4 * L.nb2);
    memcpy(out + L.offset, &in->nested_offset, 4);
    return 0;
}

static int bnb4_export(const void *state, const void *packed, size_t rows, size_t cols, hone_bnb4 *out, hone_err *err)
{
    (void)err;
    const bnb4 *s = state;
    layout L = plan(s, rows, cols);
    const unsigned char *p = packed;
    memset(out, 0, sizeof *out);
    out->quant_type = s->fp4 ? "fp4" : "nf4";
    out->blocksize = (int)s->bs;
    out->weight = p;
    out->absmax = p + L.absmax;
    out->absmax_u8 = s->dq;
    out->nabsmax = L.nb;
    out->quant_map = s->t->code;
    if (s->dq) {
        out->nested_absmax = (const float *)(p + L.nested);
        out->nested_quant_map = dyn_signed;
        out->nested_blocksize = 256;
        memcpy(&out->nested_offset, p + L.offset, 4);
    }
    return 0;
}

static const hone_option bnb4_opts[] = {
    HONE_OPTION_INTEGER("block_size", 64, HONE_IN(32, 4096),
                        "elements per absmax block: 32, 64, ..., 4096 (bitsandbytes' default 64)"),
    HONE_OPTION_BOOL("double_quant", 0, "store the absmax values as 8-bit codes (bnb_4bit_use_double_quant)"),
    HONE_OPTION_END,
};

#define BNB4_VT(nm, summary, make)                                                                   \
    {.info = HONE_QUANTIZER_INFO(nm, summary, bnb4_opts), .create = make, .packed_bytes = bnb4_packed_bytes, \
     .quantize = bnb4_quantize, .dequantize = bnb4_dequantize, .destroy = bnb4_destroy,              \
     .import_bnb4 = bnb4_import, .export_bnb4 = bnb4_export}

static const hone_quantizer_vt nf4_vt = BNB4_VT("nf4", "bitsandbytes NF4 (4-bit NormalFloat), bit-exact", nf4_create);
static const hone_quantizer_vt fp4_vt = BNB4_VT("fp4", "bitsandbytes FP4 (e2m1), bit-exact", fp4_create);

static int register_bnb4(hone_registry *reg, hone_err *err)
{
    tables_init();
    int rc = hone_api->register_feature(reg, HONE_KIND_QUANTIZER, &nf4_vt, err);
    return rc ? rc : hone_api->register_feature(reg, HONE_KIND_QUANTIZER, &fp4_vt, err);
}

HONE_PLUGIN_DEFINE("quantizer_bnb4", register_bnb4)
