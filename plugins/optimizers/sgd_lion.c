/* sgd_lion.c — torch.optim.SGD and Lion (bitsandbytes' Lion, the paper's update).
 *
 * SGD (torch _single_tensor_sgd): d = g + wd*p; with momentum the buffer starts as d and
 * then b = b*momentum + (1 - dampening)*d; nesterov steps along d + momentum*b; p -= lr*d.
 * Lion (bitsandbytes CPU backend and 8-bit kernel order): p *= 1 - lr*wd, then
 * p -= lr * sign(b1*m + (1-b1)*g), then m = b2*m + (1-b2)*g. bitsandbytes' 32-bit CUDA
 * kernel instead folds the decay into the gradient (g += wd*p); hone keeps the decoupled
 * form every other path uses.
 * Additions with a scale are fused multiply-adds, as ATen's vectorized add(alpha=) is.
 *
 * State arena: SGD momentum buffer [nparams] f32 (none without momentum); Lion m [nparams].
 */
#include <math.h>
#include <string.h>

#include "optimizers.h"

typedef struct sgdlion {
    int lion;
    double momentum, dampening, wd, b1, b2;
    int nesterov;
    size_t n, nt;
    hone_tensor_info *t;   /* offsets, sizes and decay flags (names not kept) */
    opt_arena arena;
} sgdlion;

static void sl_destroy(void *state)
{
    sgdlion *s = state;
    if (!s) return;
    opt_arena_free(&s->arena);
    hone_api->free(s->t);
    hone_api->free(s);
}

static int sl_create(int lion, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np, void **state,
                     hone_err *err)
{
    sgdlion *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    memset(s, 0, sizeof *s);
    s->lion = lion;
    s->n = np;
    s->nt = nt;
    s->wd = hone_api->opt_number(o, "weight_decay");
    if (lion) {
        opt_betas(o, &s->b1, &s->b2);
    } else {
        s->momentum = hone_api->opt_number(o, "momentum");
        s->dampening = hone_api->opt_number(o, "dampening");
        s->nesterov = hone_api->opt_bool(o, "nesterov");
        if (s->nesterov && (s->momentum <= 0 || s->dampening != 0)) {
            hone_api->free(s);
            return hone_api->error(err, HONE_EINVAL, "nesterov = true needs momentum > 0 and dampening = 0 (as torch)");
        }
    }
    s->t = hone_api->alloc((nt ? nt : 1) * sizeof *s->t, 16);
    if (!s->t) {
        hone_api->free(s);
        return hone_api->error(err, HONE_ENOMEM, "out of memory");
    }
    memcpy(s->t, t, nt * sizeof *t);
    size_t bytes = lion || s->momentum != 0 ? np * sizeof(float) : 0;
    int rc = opt_arena_alloc(&s->arena, bytes, 0, NULL, err);
    if (rc) {
        sl_destroy(s);
        return rc;
    }
    *state = s;
    return 0;
}

static int sl_step(void *state, float *params, const float *grads, double lr, long step, hone_err *err)
{
    (void)err;
    sgdlion *s = state;
    float *buf = (float *)s->arena.base;
    for (size_t k = 0; k < s->nt; k++) {
        size_t off = s->t[k].offset, n = s->t[k].numel;
        double wd = s->t[k].decay ? s->wd : 0.0;
        float *p = params + off, *b = buf + off;
        const float *g = grads + off;
        if (s->lion) {
            float decay = (float)(1.0 - lr * wd), b1 = (float)s->b1, b2 = (float)s->b2;
            float om1 = (float)(1.0 - s->b1), om2 = (float)(1.0 - s->b2), nlr = (float)-lr;
            for (size_t i = 0; i < n; i++) {
                float pi = wd > 0.0 ? p[i] * decay : p[i];
                float u = fmaf(g[i], om1, b[i] * b1);
                float sign = (float)((u > 0.0f) - (u < 0.0f));
                p[i] = fmaf(sign, nlr, pi);
                b[i] = fmaf(g[i], om2, b[i] * b2);
            }
            continue;
        }
        float fwd = (float)wd, mom = (float)s->momentum, damp = (float)(1.0 - s->dampening), nlr = (float)-lr;
        for (size_t i = 0; i < n; i++) {
            float d = wd != 0.0 ? fmaf(p[i], fwd, g[i]) : g[i];
            if (s->momentum != 0.0) {
                b[i] = step == 1 ? d : fmaf(d, damp, b[i] * mom);
                d = s->nesterov ? fmaf(b[i], mom, d) : b[i];
            }
            p[i] = fmaf(d, nlr, p[i]);
        }
    }
    return 0;
}

static int sl_save(void *state, const hone_writer *w, hone_err *err)
{
    sgdlion *s = state;
    return opt_arena_save(&s->arena, s->lion ? "LION0001" : "SGD00001", w, err);
}

static int sl_load(void *state, const hone_reader *r, hone_err *err)
{
    sgdlion *s = state;
    return opt_arena_load(&s->arena, s->lion ? "LION0001" : "SGD00001", s->lion ? "Lion" : "SGD", r, err);
}

static size_t sl_state_bytes(const void *state)
{
    return ((const sgdlion *)state)->arena.bytes;
}

static int create_sgd(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                      void **state, hone_err *err)
{
    (void)h;
    return sl_create(0, o, t, nt, np, state, err);
}

static int create_lion(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                       void **state, hone_err *err)
{
    (void)h;
    return sl_create(1, o, t, nt, np, state, err);
}

#define WD                                              \
    HONE_OPTION_NUMBER("weight_decay", 0.0, HONE_GE(0), \
                       "weight decay on LoRA matrices and weights (not biases or norms), as the Trainer's weight_decay")

static const hone_option sgd_opts[] = {
    HONE_OPTION_NUMBER("momentum", 0.0, HONE_GE(0), "momentum factor (0 = plain SGD)"),
    HONE_OPTION_NUMBER("dampening", 0.0, HONE_IN(0, 1), "dampening of the momentum's new gradient"),
    HONE_OPTION_BOOL("nesterov", 0, "Nesterov momentum (needs momentum > 0, dampening 0)"),
    WD,
    HONE_OPTION_END,
};

static const hone_option lion_opts[] = {
    HONE_OPTION_NUMLIST("betas", "0.9,0.99", 2, HONE_IN_CO(0, 1),
                        "{beta1 (the step's interpolation), beta2 (the momentum's)}"),
    WD,
    HONE_OPTION_END,
};

#define VT(nm, summary, opts, make)                                                   \
    {.info = HONE_OPTIMIZER_INFO(nm, summary, opts), .create = make, .step = sl_step, \
     .save = sl_save, .load = sl_load, .state_bytes = sl_state_bytes, .destroy = sl_destroy}

const hone_optimizer_vt opt_sgd_vt =
    VT("sgd", "torch.optim.SGD: momentum, dampening, nesterov, weight decay", sgd_opts, create_sgd);
const hone_optimizer_vt opt_lion_vt =
    VT("lion", "Lion (sign of interpolated momentum, decoupled decay) as bitsandbytes' Lion (4 bytes/param)",
       lion_opts, create_lion);
const hone_optimizer_vt opt_lion_32bit_vt =
    VT("lion_32bit", "the same as lion (transformers' optim name)", lion_opts, create_lion);
