/* bad_check.c — optimizers that load and run but break a promise of plugin.h, for
 * `hone plugins --check` to catch (plugin_check.sh). Built once per BAD_* macro:
 *   BAD_RESUME        counts steps itself instead of using `step`, and does not save the
 *                     count: every save and load round-trips, yet a resumed run differs
 *   BAD_DESTROY_NULL  destroy dereferences its argument: destroy(NULL) crashes
 * Otherwise it is SGD with momentum and a warmup of its own (lr x min(1, t / 4)). */
#include <string.h>

#include "hone/plugin.h"

#ifndef BAD_NAME
#define BAD_NAME "badcheck"
#endif

typedef struct bc {
    size_t n;
    long t;                /* BAD_RESUME: its own step count, never saved */
    float *m;              /* [n] momentum */
} bc;

static void bc_destroy(void *state)
{
    bc *s = state;
#ifndef BAD_DESTROY_NULL
    if (!s) return;
#endif
    hone_api->free(s->m);
    hone_api->free(s);
}

static int bc_create(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                     void **state, hone_err *err)
{
    (void)h, (void)o, (void)t, (void)nt;
    bc *s = hone_api->alloc(sizeof *s, 16);
    float *m = hone_api->alloc((np ? np : 1) * sizeof *m, 64);
    if (!s || !m) {
        hone_api->free(s);
        hone_api->free(m);
        return hone_api->error(err, HONE_ENOMEM, "out of memory");
    }
    memset(m, 0, np * sizeof *m);
    *s = (bc){.n = np, .m = m};
    *state = s;
    return 0;
}

static int bc_step(void *state, float *p, const float *g, double lr, long step, hone_err *err)
{
    (void)err;
    bc *s = state;
#ifdef BAD_RESUME
    step = ++s->t;
#endif
    float warm = step < 4 ? (float)step / 4.0f : 1.0f, flr = (float)lr * warm;
    for (size_t i = 0; i < s->n; i++) {
        s->m[i] = 0.9f * s->m[i] + g[i];
        p[i] -= flr * s->m[i];
    }
    return 0;
}

static int bc_save(void *state, const hone_writer *w, hone_err *err)
{
    bc *s = state;
    return w->write(w->ctx, s->m, s->n * sizeof *s->m, err);
}

static int bc_load(void *state, const hone_reader *r, hone_err *err)
{
    bc *s = state;
    return r->read(r->ctx, s->m, s->n * sizeof *s->m, err);
}

static const hone_optimizer_vt bc_vt = {
    .info = HONE_OPTIMIZER_INFO(BAD_NAME, "a deliberately non-conforming optimizer", NULL),
    .create = bc_create,
    .step = bc_step,
    .save = bc_save,
    .load = bc_load,
    .destroy = bc_destroy,
};

static int bc_init(hone_registry *reg, hone_err *err)
{
    return hone_api->register_feature(reg, HONE_KIND_OPTIMIZER, &bc_vt, err);
}

HONE_PLUGIN_DEFINE(BAD_NAME, bc_init)
