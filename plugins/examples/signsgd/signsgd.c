/* signsgd.c — an example optimizer plugin: sign-SGD with momentum ("signum",
 * Bernstein et al. 2018) and decoupled weight decay.
 *
 *   m = beta * m + (1 - beta) * g
 *   p = p * (1 - lr * weight_decay) - lr * sign(m)
 *
 * It shows everything a custom optimizer needs: the option table, create / step /
 * save / load / destroy, and nothing but hone/plugin.h. Build it out of tree with
 *   cc -O2 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags hone-plugin) signsgd.c -o signsgd.so
 * (or `make` here) and put its directory on HONE_PLUGIN_PATH.
 */
#include <string.h>

#include "hone/plugin.h"

typedef struct signsgd {
    size_t n;
    double beta, wd;
    float *m;              /* [n] momentum */
} signsgd;

static const char magic[8] = "SIGNSGD1";

static void sg_destroy(void *state)
{
    signsgd *s = state;
    if (!s) return;
    hone_api->free(s->m);
    hone_api->free(s);
}

static int sg_create(const hone_host *h, const hone_opts *opts, const hone_tensor_info *tensors, size_t ntensors,
                     size_t nparams, void **state, hone_err *err)
{
    (void)h, (void)tensors, (void)ntensors;
    signsgd *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    s->n = nparams;
    s->beta = hone_api->opt_number(opts, "momentum");
    s->wd = hone_api->opt_number(opts, "weight_decay");
    s->m = hone_api->alloc((nparams ? nparams : 1) * sizeof *s->m, 64);
    if (!s->m) {
        hone_api->free(s);
        return hone_api->error(err, HONE_ENOMEM, "out of memory for %zu momentum values", nparams);
    }
    memset(s->m, 0, nparams * sizeof *s->m);
    *state = s;
    return 0;
}

static int sg_step(void *state, float *p, const float *g, double lr, long step, hone_err *err)
{
    (void)step, (void)err;
    signsgd *s = state;
    float beta = (float)s->beta, decay = (float)(1.0 - lr * s->wd), flr = (float)lr;
    for (size_t i = 0; i < s->n; i++) {
        float m = beta * s->m[i] + (1.0f - beta) * g[i];
        s->m[i] = m;
        float sign = (float)((m > 0) - (m < 0));
        p[i] = p[i] * decay - flr * sign;
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
        return hone_api->error(err, HONE_EINVAL, "state holds %llu parameters, the model has %zu", (unsigned long long)n, s->n);
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
