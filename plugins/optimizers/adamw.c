/* adamw.c — the AdamW family: torch.optim.AdamW (adamw, adamw_torch) and bitsandbytes'
 * AdamW with 32-bit state (paged_adamw_32bit) and blockwise 8-bit state (adamw_8bit,
 * adamw_bnb_8bit, paged_adamw_8bit), each in the arithmetic order of its source.
 *
 * torch (docs/numerics.md §5.1, _single_tensor_adamw): decay p *= 1 - lr*wd first, m by lerp
 * (fused multiply-add, as ATen's vectorized lerp), v = v*b2 + (1-b2)*g*g, then
 * p += (-lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps). Scalars are formed in double and rounded
 * once to float, as Python floats reach ATen.
 *
 * bitsandbytes (docs/numerics.md §2, csrc/kernels.cu kOptimizer32bit2State and
 * kOptimizerStatic8bit2StateBlockwise): everything in float32, 1 - beta subtracted in
 * float; p += step_size * m / (sqrt(v) + eps*c2) with step_size = -lr*c2/c1, and the decay
 * p *= 1 - lr*wd after the step. The 8-bit state is two uint8 codes per element (m on
 * the signed dynamic map, v on the unsigned) with a float absmax per 256-block; a step
 * dequantizes, updates, takes the new block absmax (the padded lanes of a partial block
 * count, as in the kernel) and requantizes with quantize_2D's search (nearest code, ties
 * to the search pivot), then fixes m's sign. Tensors under min_8bit_size keep float32
 * state. The kernels' __fdividef / __powf are approximate and CUDA contracts to FMA; here
 * plain float32 operations stand in (a CPU cannot reproduce those last bits).
 *
 * State arena layout (what save writes, tests/test_optim.c reads the 8-bit codes from it),
 * per tensor in order, each region 64-byte aligned:
 *   torch:         m[n] f32, v[n] f32, (amsgrad) vmax[n] f32
 *   bnb, fp32:     m[n] f32, v[n] f32
 *   bnb, 8-bit:    absmax_m[nb] f32, absmax_v[nb] f32, m[n] u8, v[n] u8   (nb = ceil(n/256))
 */
#include <math.h>
#include <string.h>

#include "optimizers.h"

#include "../common/bnb_dynamic_maps.h"

enum { TORCH, BNB32, BNB8 };

typedef struct tslot {
    size_t off, n;         /* the tensor in the flat parameter span */
    int decay, eight;      /* weight decay applies; 8-bit state */
    size_t at;             /* its first state region in the arena */
} tslot;

typedef struct adamw {
    int kind;
    double b1, b2, eps, wd;
    int amsgrad;
    size_t nt;
    tslot *t;
    opt_arena arena;
} adamw;

static void aw_destroy(void *state)
{
    adamw *s = state;
    if (!s) return;
    opt_arena_free(&s->arena);
    hone_api->free(s->t);
    hone_api->free(s);
}

static void qtab_build(void);

static size_t slot_bytes(const adamw *s, size_t n, int eight)
{
    if (eight) {
        size_t nb = (n + 255) / 256;
        return 2 * opt_align64(nb * 4) + 2 * opt_align64(n);
    }
    return (s->kind == TORCH && s->amsgrad ? 3 : 2) * opt_align64(n * 4);
}

static int create(int kind, int paged, const hone_opts *o, const hone_tensor_info *t, size_t nt, void **state,
                  hone_err *err)
{
    adamw *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    memset(s, 0, sizeof *s);
    s->kind = kind;
    opt_betas(o, &s->b1, &s->b2);
    s->eps = hone_api->opt_number(o, "eps");
    s->wd = hone_api->opt_number(o, "weight_decay");
    s->amsgrad = kind == TORCH && hone_api->opt_bool(o, "amsgrad");
    size_t min8 = kind == BNB8 ? (size_t)hone_api->opt_integer(o, "min_8bit_size") : 0;
    if (kind == BNB8) qtab_build();
    s->nt = nt;
    s->t = hone_api->alloc((nt ? nt : 1) * sizeof *s->t, 16);
    if (!s->t) {
        hone_api->free(s);
        return hone_api->error(err, HONE_ENOMEM, "out of memory");
    }
    size_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        s->t[i] = (tslot){t[i].offset, t[i].numel, t[i].decay, kind == BNB8 && t[i].numel >= min8, at};
        at += slot_bytes(s, t[i].numel, s->t[i].eight);
    }
    const char *dir = paged ? hone_api->opt_string(o, "state_dir") : NULL;
    int rc = opt_arena_alloc(&s->arena, at, paged, dir, err);
    if (rc) {
        aw_destroy(s);
        return rc;
    }
    *state = s;
    return 0;
}

/* ---- torch.optim.AdamW ----------------------------------------------------------- */

static void torch_tensor(const adamw *s, const tslot *t, float *p, const float *g, double lr, long step)
{
    float *m = (float *)(s->arena.base + t->at), *v = m + opt_align64(t->n * 4) / 4;
    float *vmax = s->amsgrad ? v + opt_align64(t->n * 4) / 4 : NULL;
    double wd = t->decay ? s->wd : 0.0;
    double bc1 = 1.0 - pow(s->b1, (double)step), bc2 = 1.0 - pow(s->b2, (double)step);
    float decay = (float)(1.0 - lr * wd), w = (float)(1.0 - s->b1), b2 = (float)s->b2, om2 = (float)(1.0 - s->b2);
    float nss = (float)(-(lr / bc1)), bc2s = (float)pow(bc2, 0.5), eps = (float)s->eps;
    for (size_t i = 0; i < t->n; i++) {
        float pi = wd != 0.0 ? p[i] * decay : p[i], gi = g[i];
        float mi = fmaf(w, gi - m[i], m[i]);
        float vi = fmaf(om2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            vmax[i] = vmax[i] > vi || isnan(vmax[i]) ? vmax[i] : vi;
            vi = vmax[i];
        }
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = pi + nss * mi / denom;
    }
}

/* ---- bitsandbytes, float32 state ------------------------------------------------- */

static void bnb32_tensor(const adamw *s, const tslot *t, float *p, const float *g, double lr, long step)
{
    float *m = (float *)(s->arena.base + t->at), *v = m + opt_align64(t->n * 4) / 4;
    float b1 = (float)s->b1, b2 = (float)s->b2, eps = (float)s->eps, flr = (float)lr;
    float wd = t->decay ? (float)s->wd : 0.0f;
    float c1 = 1.0f - powf(b1, (float)step), c2 = sqrtf(1.0f - powf(b2, (float)step));
    float step_size = (-flr * c2) / c1, decay = 1.0f - flr * wd;
    for (size_t i = 0; i < t->n; i++) {
        float gi = g[i];
        m[i] = m[i] * b1 + (1.0f - b1) * gi;
        v[i] = v[i] * b2 + (1.0f - b2) * (gi * gi);
        float pi = p[i] + step_size * (m[i] / (sqrtf(v[i]) + eps * c2));
        p[i] = wd > 0.0f ? pi * decay : pi;
    }
}

/* ---- bitsandbytes, blockwise 8-bit state ----------------------------------------- */

/* quantize_2D: a binary search over the 256-entry map from pivot 127, then the nearer of
 * the two neighbours by midpoint (ties stay on the pivot); NaN lands on code 0 */
static unsigned char quantize_2d(const float *code, int is_signed, float x)
{
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = is_signed ? -1.0f : 0.0f, upper = 1.0f, val = code[127];
    for (int i = 64; i > 0; i >>= 1) {   /* written for conditional moves: the branch is a coin flip */
        int gt = x > val;
        lower_pivot = gt ? pivot : lower_pivot;
        lower = gt ? val : lower;
        upper_pivot = gt ? upper_pivot : pivot;
        upper = gt ? upper : val;
        pivot += gt ? i : -i;
        val = code[pivot];
    }
    if (x > val) return (unsigned char)(x > (upper + val) * 0.5f ? upper_pivot : pivot);
    return (unsigned char)(x < (lower + val) * 0.5f ? lower_pivot : pivot);
}

/* quantize_2D is a monotone step function of x, so all floats sharing their top 16 bits
 * (sign, exponent, 7 mantissa bits) get one code unless a step falls inside that range.
 * The table holds the code where the range's two ends agree and 0xFFFF where they do not
 * (or the range holds NaN / inf); those few fall back to the search. Built once, on the
 * first 8-bit optimizer, from quantize_2d itself. */
static uint16_t qtab[2][65536];
static int qtab_ready;

static void qtab_build(void)
{
    if (qtab_ready) return;
    const float *maps[2] = {bnb_dynamic_signed, bnb_dynamic_unsigned};
    for (int k = 0; k < 2; k++)
        for (uint32_t hi = 0; hi < 65536; hi++) {
            uint32_t lo_bits = hi << 16, hi_bits = lo_bits | 0xFFFFu;
            float a, b;
            memcpy(&a, &lo_bits, 4);
            memcpy(&b, &hi_bits, 4);
            unsigned char ca = quantize_2d(maps[k], k == 0, a), cb = quantize_2d(maps[k], k == 0, b);
            qtab[k][hi] = isfinite(a) && isfinite(b) && ca == cb ? ca : 0xFFFF;
        }
    qtab_ready = 1;
}

static inline unsigned char quantize_fast(int k, const float *code, float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint16_t c = qtab[k][bits >> 16];
    return c != 0xFFFF ? (unsigned char)c : quantize_2d(code, k == 0, x);
}

static void bnb8_tensor(const adamw *s, const tslot *t, float *p, const float *g, double lr, long step)
{
    size_t n = t->n, nb = (n + 255) / 256;
    float *am = (float *)(s->arena.base + t->at), *av = (float *)(s->arena.base + t->at + opt_align64(nb * 4));
    unsigned char *cm = s->arena.base + t->at + 2 * opt_align64(nb * 4), *cv = cm + opt_align64(n);
    const float *q1 = bnb_dynamic_signed, *q2 = bnb_dynamic_unsigned;
    float b1 = (float)s->b1, b2 = (float)s->b2, eps = (float)s->eps, flr = (float)lr;
    float wd = t->decay ? (float)s->wd : 0.0f, decay = 1.0f - flr * wd;
    float c1 = 1.0f - powf(b1, (float)step), c2 = sqrtf(1.0f - powf(b2, (float)step));
    float step_size = (-flr * c2) / c1;
    float m[256], v[256], xm[256], xv[256];
    int k1[256], k2[256];
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * 256, len = n - first < 256 ? n - first : 256;
        float amax_m = -3.402823466e38f, amax_v = -3.402823466e38f;
        for (size_t j = 0; j < 256; j++) {
            /* lanes past the end load g = 0, code 128 (m) and code 0 (v), as the kernel's */
            float gi = j < len ? g[first + j] : 0.0f;
            unsigned char c1s = j < len ? cm[first + j] : 128, c2s = j < len ? cv[first + j] : 0;
            if (!isnan(gi) && !isinf(gi)) {
                v[j] = q2[c2s] * av[b];
                v[j] = (v[j] * b2) + (((1.0f - b2) * gi) * gi);
                m[j] = q1[c1s] * am[b];
                m[j] = (m[j] * b1) + ((1.0f - b1) * gi);
            } else {
                m[j] = v[j] = 0.0f;
            }
            /* fmaxf's choice: a NaN operand loses (amax itself is never NaN) */
            amax_m = fabsf(m[j]) > amax_m ? fabsf(m[j]) : amax_m;
            amax_v = fabsf(v[j]) > amax_v ? fabsf(v[j]) : amax_v;
        }
        am[b] = amax_m;
        av[b] = amax_v;
        for (size_t j = 0; j < len; j++) {
            float gi = g[first + j];
            if (!isnan(gi) && !isinf(gi)) {
                float pi = p[first + j] + step_size * (m[j] / (sqrtf(v[j]) + c2 * eps));
                p[first + j] = wd > 0.0f ? pi * decay : pi;
            }
            xm[j] = m[j] / amax_m;
            xv[j] = v[j] / amax_v;
        }
        for (size_t j = 0; j < len; j++) {
            k1[j] = quantize_fast(0, q1, xm[j]);
            k2[j] = quantize_fast(1, q2, xv[j]);
        }
        for (size_t j = 0; j < len; j++) {
            int c = k1[j];
            if (signbit(q1[c]) != signbit(m[j])) c = m[j] > 0.0f ? c + 1 : c - 1;
            cm[first + j] = (unsigned char)c;
            cv[first + j] = (unsigned char)k2[j];
        }
    }
}

static int aw_step(void *state, float *params, const float *grads, double lr, long step, hone_err *err)
{
    (void)err;
    adamw *s = state;
    for (size_t i = 0; i < s->nt; i++) {
        const tslot *t = &s->t[i];
        float *p = params + t->off;
        const float *g = grads + t->off;
        if (s->kind == TORCH) torch_tensor(s, t, p, g, lr, step);
        else if (t->eight) bnb8_tensor(s, t, p, g, lr, step);
        else bnb32_tensor(s, t, p, g, lr, step);
    }
    return 0;
}

static const char *magic(const adamw *s)
{
    return s->kind == TORCH ? "ADAMWTO1" : s->kind == BNB32 ? "ADAMW321" : "ADAMW8B1";
}

static int aw_save(void *state, const hone_writer *w, hone_err *err)
{
    adamw *s = state;
    return opt_arena_save(&s->arena, magic(s), w, err);
}

static int aw_load(void *state, const hone_reader *r, hone_err *err)
{
    adamw *s = state;
    return opt_arena_load(&s->arena, magic(s), "AdamW", r, err);
}

static size_t aw_state_bytes(const void *state)
{
    return ((const adamw *)state)->arena.bytes;
}

static int create_torch(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                        void **state, hone_err *err)
{
    (void)h, (void)np;
    return create(TORCH, 0, o, t, nt, state, err);
}

static int create_bnb32_paged(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                              void **state, hone_err *err)
{
    (void)h, (void)np;
    return create(BNB32, 1, o, t, nt, state, err);
}

static int create_bnb8(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                       void **state, hone_err *err)
{
    (void)h, (void)np;
    return create(BNB8, 0, o, t, nt, state, err);
}

static int create_bnb8_paged(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                             void **state, hone_err *err)
{
    (void)h, (void)np;
    return create(BNB8, 1, o, t, nt, state, err);
}

#define BETAS(b2def) \
    HONE_OPTION_NUMLIST("betas", "0.9," b2def, 2, HONE_IN_CO(0, 1), \
                        "{beta1, beta2}, each in [0, 1) (adam_beta1, adam_beta2)")
#define EPS HONE_OPTION_NUMBER("eps", 1e-8, HONE_GE(0), "added to the denominator (adam_epsilon)")
/* transformers' Trainer passes args.weight_decay (0.0) whatever the class default is */
#define WD                                                         \
    HONE_OPTION_NUMBER("weight_decay", 0.0, HONE_GE(0),            \
                       "decoupled weight decay on LoRA matrices and weights (not biases or norms), " \
                       "as the Trainer's weight_decay")
#define STATE_DIR                                                  \
    HONE_OPTION_STRING_UNSET("state_dir", NULL,                    \
                             "directory of the file the state is mapped from (default $TMPDIR, else /tmp)")
#define MIN8                                                       \
    HONE_OPTION_INTEGER("min_8bit_size", 4096, HONE_GE(1),         \
                        "tensors with fewer elements keep float32 state (bitsandbytes' min_8bit_size)")

static const hone_option torch_opts[] = {
    BETAS("0.999"), EPS, WD,
    HONE_OPTION_BOOL("amsgrad", 0, "use the maximum of past second moments (AMSGrad)"),
    HONE_OPTION_END,
};
static const hone_option bnb32_paged_opts[] = {BETAS("0.999"), EPS, WD, STATE_DIR, HONE_OPTION_END};
static const hone_option bnb8_opts[] = {BETAS("0.999"), EPS, WD, MIN8, HONE_OPTION_END};
static const hone_option bnb8_paged_opts[] = {BETAS("0.999"), EPS, WD, MIN8, STATE_DIR, HONE_OPTION_END};

#define VT(nm, summary, opts, make)                                                   \
    {.info = HONE_OPTIMIZER_INFO(nm, summary, opts), .create = make, .step = aw_step, \
     .save = aw_save, .load = aw_load, .state_bytes = aw_state_bytes, .destroy = aw_destroy}

const hone_optimizer_vt opt_adamw_vt =
    VT("adamw", "torch.optim.AdamW: decoupled decay, bias correction, eps outside the sqrt (8 bytes/param)",
       torch_opts, create_torch);
const hone_optimizer_vt opt_adamw_torch_vt =
    VT("adamw_torch", "the same as adamw (transformers' optim name)", torch_opts, create_torch);
const hone_optimizer_vt opt_paged_adamw_32bit_vt =
    VT("paged_adamw_32bit",
       "bitsandbytes AdamW, float32 state in the kernel's order, state mapped from a file so it can page out",
       bnb32_paged_opts, create_bnb32_paged);
const hone_optimizer_vt opt_adamw_8bit_vt =
    VT("adamw_8bit", "bitsandbytes AdamW8bit: blockwise 8-bit state (2 bytes/param + absmax)", bnb8_opts,
       create_bnb8);
const hone_optimizer_vt opt_adamw_bnb_8bit_vt =
    VT("adamw_bnb_8bit", "the same as adamw_8bit (transformers' optim name)", bnb8_opts, create_bnb8);
const hone_optimizer_vt opt_paged_adamw_8bit_vt =
    VT("paged_adamw_8bit", "adamw_8bit with its state mapped from a file so it can page out", bnb8_paged_opts,
       create_bnb8_paged);
