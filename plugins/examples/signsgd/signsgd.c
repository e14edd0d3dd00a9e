/* signsgd.c — an example optimizer plugin: sign-SGD with momentum ("signum",
 * Bernstein et al. 2018) and decoupled weight decay.
 *
 *   m = beta * m + (1 - beta) * g
 *   p = p * (1 - lr * weight_decay) - lr * sign(m)     (the decay on decay tensors only)
 *
 * It shows everything a custom optimizer needs: the option table, create / step /
 * save / load / destroy, the per-tensor decay flag, and nothing but hone/plugin.h.
 * Build it out of tree with
 *   cc -O2 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags hone-plugin) signsgd.c -o signsgd.so
 * (or `make` here), put its directory on HONE_PLUGIN_PATH, and check it with
 * `hone plugins --check signsgd.so` (docs/abi.md).
 */
#include <string.h>

#include "hone/plugin.h"

/* what step needs of a tensor: create's table is only lent for the call */
typedef struct span {
    size_t offset, numel;
    int decay;
} span;

typedef struct signsgd {
    size_t n, nt;
    double beta, wd;
    span *t;               /* [nt] */
    float *m;              /* [n] momentum */
} signsgd;

static const char magic[8] = "SIGNSGD1";

static void sg_destroy(void *state)
{
    signsgd *s = state;
    if (!s) return;
    hone_api->free(s->t);
    hone_api->free(s->m);
    hone_api->free(s);
}

static int sg_create(const hone_host *h, const hone_opts *opts, const hone_tensor_info *tensors, size_t ntensors,
                     size_t nparams, void **state, hone_err *err)
{
    (void)h;   /* the same table as hone_api */
    signsgd *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    *s = (signsgd){.n = nparams, .nt = ntensors};
    s->beta = hone_api->opt_number(opts, "momentum");
    s->wd = hone_api->opt_number(opts, "weight_decay");
    s->t = hone_api->alloc((ntensors ? ntensors : 1) * sizeof *s->t, 16);
    s->m = hone_api->alloc((nparams ? nparams : 1) * sizeof *s->m, 64);
    if (!s->t || !s->m) {
        sg_destroy(s);
        return hone_api->error(err, HONE_ENOMEM, "out of memory for %zu momentum values", nparams);
    }
    for (size_t k = 0; k < ntensors; k++)
        s->t[k] = (span){.offset = tensors[k].offset, .numel = tensors[k].numel, .decay = tensors[k].decay};
    memset(s->m, 0, nparams * sizeof *s->m);
    *state = s;
    return 0;
}

static int sg_step(void *state, float *p, const float *g, double lr, long step, hone_err *err)
{
    (void)step, (void)err;
    signsgd *s = state;
    float beta = (float)s->beta, flr = (float)lr;
    for (size_t k = 0; k < s->nt; k++) {
        /* biases and norms (decay = 0) keep their value apart from the sign step */
        float decay = s->t[k].decay ? (float)(1.0 - lr * s->wd) : 1.0f;
        for (size_t i = s->t[k].offset; i < s->t[k].offset + s->t[k].numel; i++) {
            float m = beta * s->m[i] + (1.0f - beta) * g[i];
            s->m[i] = m;
            float sign = (float)((m > 0) - (m < 0));
            p[i] = p[i] * decay - flr * sign;
        }
    }
    return 0;
}

static int sg_save(void *state, const hone_writer *w, hone_err *err)
{
    signsgd *s = state;
    uint64_t n = s->n;
    int rc = w->write(w->ctx, magic, sizeof magic, err);
    if (!rc) rc = w->write(w->ctx, &n, sizeof n, err);
    if (!rc) rc = w->write(w->ctx, s->m, s->n * sizeof *s->m, err);
    return rc;
}

static int sg_load(void *state, const hone_reader *r, hone_err *err)
{
    signsgd *s = state;
    char got[8];
    uint64_t n;
    int rc = r->read(r->ctx, got, sizeof got, err);
    if (rc) return rc;
    if (memcmp(got, magic, sizeof magic) != 0) return hone_api->error(err, HONE_EINVAL, "not signsgd state");
    if ((rc = r->read(r->ctx, &n, sizeof n, err))) return rc;
    if (n != s->n)
        return hone_api->error(err, HONE_EINVAL, "state holds %llu parameters, the model has %zu",
                               (unsigned long long)n, s->n);
    return r->read(r->ctx, s->m, s->n * sizeof *s->m, err);
}

static size_t sg_state_bytes(const void *state)
{
    return ((const signsgd *)state)->n * sizeof(float);
}

static const hone_option sg_opts[] = {
    HONE_OPTION_NUMBER("momentum", 0.9, HONE_IN_CO(0, 1), "momentum coefficient beta, in [0, 1)"),
    HONE_OPTION_NUMBER("weight_decay", 0.0, HONE_GE(0), "decoupled weight decay"),
    HONE_OPTION_END,
};

static const hone_optimizer_vt signsgd_vt = {
    .info = HONE_OPTIMIZER_INFO("signsgd",
                                "example plugin: sign-SGD with momentum (signum) and decoupled weight decay",
                                sg_opts),
    .create = sg_create,
    .step = sg_step,
    .save = sg_save,
    .load = sg_load,
    .state_bytes = sg_state_bytes,
    .destroy = sg_destroy,
};

static int sg_init(hone_registry *reg, hone_err *err)
{
    return hone_api->register_feature(reg, HONE_KIND_OPTIMIZER, &signsgd_vt, err);
}

HONE_PLUGIN_DEFINE("signsgd", sg_init)
