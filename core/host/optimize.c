/* optimize.c — the smallest training loop: objective, schedule, optimizer step; and
 * hone.h's hone_optimize_spec, the same loop from a spec, on the host's objective. */
#include "optimize.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "schedule.h"
#include "schema.h"

static int mem_write(void *ctx, const void *data, size_t bytes, hone_err *err)
{
    hone_membuf *m = ctx;
    if (!bytes) return 0;   /* nothing to copy, and no buffer may exist yet */
    if (m->len + bytes > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + bytes) cap *= 2;
        unsigned char *d = realloc(m->data, cap);
        if (!d) return hone_errf(err, HONE_ENOMEM, "out of memory saving state");
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, bytes);
    m->len += bytes;
    return 0;
}

static int mem_read(void *ctx, void *data, size_t bytes, hone_err *err)
{
    hone_membuf *m = ctx;
    if (bytes > m->len - m->pos)
        return hone_errf(err, HONE_EIO, "state is truncated: wanted %zu bytes at offset %zu, %zu left", bytes,
                         m->pos, m->len - m->pos);
    memcpy(data, m->data + m->pos, bytes);
    m->pos += bytes;
    return 0;
}

hone_writer hone_membuf_writer(hone_membuf *m)
{
    return (hone_writer){m, mem_write};
}

hone_reader hone_membuf_reader(hone_membuf *m)
{
    return (hone_reader){m, mem_read};
}

int hone_optimize(const hone_optimize_job *job, float *params, size_t n, double *losses, double *lrs,
                  size_t *state_bytes, hone_err *err)
{
    const hone_optimizer_vt *ovt = job->optimizer->vtable;
    const char *oname = job->optimizer->info->name;
    hone_tensor_info one = {.name = "params", .offset = 0, .numel = n, .rows = n, .cols = 1, .decay = 1};
    const hone_tensor_info *tensors = job->ntensors ? job->tensors : &one;
    size_t ntensors = job->ntensors ? job->ntensors : 1;
    size_t covered = 0;
    for (size_t i = 0; i < ntensors; i++) {
        if (tensors[i].offset != covered || tensors[i].numel != tensors[i].rows * tensors[i].cols)
            return hone_errf(err, HONE_EINVAL, "tensor %s: offset %zu, %zu x %zu, does not follow the one before",
                             tensors[i].name, tensors[i].offset, tensors[i].rows, tensors[i].cols);
        covered += tensors[i].numel;
    }
    if (covered != n) return hone_errf(err, HONE_EINVAL, "the tensors cover %zu of %zu parameters", covered, n);
    hone_sched_ctx sctx = {job->steps, job->warmup_steps, job->lr};
    int rc = hone_schedule_check(job->scheduler, job->scheduler_opts, &sctx, err);
    if (rc) return rc;
    float *grads = calloc(n ? n : 1, sizeof *grads);
    if (!grads) return hone_errf(err, HONE_ENOMEM, "out of memory");
    void *state = NULL;
    rc = ovt->create(&hone_host_table, job->optimizer_opts, tensors, ntensors, n, &state, err);
    if (rc) hone_err_prefix(err, "optimizer %s: create: ", oname);
    for (long s = 0; s < job->steps && rc == 0; s++) {
        rc = job->objective(job->ctx, params, n, &losses[s], grads, err);
        if (rc) break;
        lrs[s] = hone_schedule_lr(job->scheduler, job->scheduler_opts, &sctx, s);
        rc = ovt->step(state, params, grads, lrs[s], s + 1, err);
        if (rc) {
            hone_err_prefix(err, "optimizer %s: step %ld: ", oname, s + 1);
            break;
        }
        if (job->resume_at == s + 1) {
            /* what a resume does: save, throw the optimizer away, load into a new one */
            hone_membuf m = {0};
            hone_writer w = hone_membuf_writer(&m);
            rc = ovt->save(state, &w, err);
            if (rc) hone_err_prefix(err, "optimizer %s: save: ", oname);
            ovt->destroy(state);
            state = NULL;
            if (!rc) {
                rc = ovt->create(&hone_host_table, job->optimizer_opts, tensors, ntensors, n, &state, err);
                if (rc) hone_err_prefix(err, "optimizer %s: create: ", oname);
            }
            if (!rc) {
                hone_reader r = hone_membuf_reader(&m);
                rc = ovt->load(state, &r, err);
                if (rc) hone_err_prefix(err, "optimizer %s: load: ", oname);
                else if (m.pos != m.len)
                    rc = hone_errf(err, HONE_EINVAL, "optimizer %s: load read %zu of the %zu bytes save wrote",
                                   oname, m.pos, m.len);
            }
            free(m.data);
        }
    }
    if (state_bytes) *state_bytes = state && ovt->state_bytes ? ovt->state_bytes(state) : 0;
    ovt->destroy(state);
    free(grads);
    return rc;
}

/* ---- hone_optimize_spec: the spec resolved, the host's objective called ------------- */

typedef struct spec_objective {
    hone_objective_hook hook;
    void *ctx;
    hone_objective_call call;
} spec_objective;

static int call_hook(void *vctx, const float *params, size_t n, double *loss, float *grads, hone_err *err)
{
    spec_objective *o = vctx;
    o->call.params = params;
    o->call.n = n;
    o->call.loss = loss;
    o->call.grads = grads;
    return o->hook(o->ctx, &o->call, err);
}

int hone_optimize_spec(const hone_registry *reg, const hone_node *spec, hone_objective_hook objective, void *ctx,
                       hone_optimize_result *out, hone_err *err)
{
    memset(out, 0, sizeof *out);
    hone_config *cfg = NULL;
    int rc = hone_config_resolve(&cfg, hone_optimize_keys, hone_optimize_nkeys, spec, reg, err);
    if (rc) return rc;
    const hone_cval *oc = hone_config_cval(cfg, "optimizer"), *sc = hone_config_cval(cfg, "scheduler");
    const hone_cval *pc = hone_config_cval(cfg, "params");
    long steps = (long)hone_config_int(cfg, "steps");
    hone_optimize_job job = {
        .optimizer = oc->feature, .optimizer_opts = oc->opts,
        .scheduler = sc->feature, .scheduler_opts = sc->opts,
        .lr = hone_config_num(cfg, "lr"), .steps = steps,
        .warmup_steps = hone_warmup_steps(steps, hone_config_num(cfg, "warmup_ratio"),
                                          (long)hone_config_int(cfg, "warmup_steps")),
        .resume_at = (long)hone_config_int(cfg, "resume_at"),
        .tensors = pc->tensors, .ntensors = pc->ntensors,
        .objective = call_hook,
    };
    spec_objective so = {objective, ctx, {.fn = hone_config_function(cfg, "loss"), .tensors = pc->tensors,
                                          .ntensors = pc->ntensors, .named = pc->named}};
    job.ctx = &so;
    *out = (hone_optimize_result){.n = pc->v.n, .tensors = pc->tensors, .ntensors = pc->ntensors,
                                  .named = pc->named, .steps = steps, .spec = cfg};
    out->params = malloc((out->n ? out->n : 1) * sizeof *out->params);
    out->losses = malloc((size_t)steps * sizeof *out->losses);
    out->lrs = malloc((size_t)steps * sizeof *out->lrs);
    if (!out->params || !out->losses || !out->lrs) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < out->n && !rc; i++) out->params[i] = (float)pc->v.list[i];
    if (!rc) rc = hone_optimize(&job, out->params, out->n, out->losses, out->lrs, &out->state_bytes, err);
    if (rc) hone_optimize_result_free(out);
    return rc;
}

void hone_optimize_result_free(hone_optimize_result *r)
{
    free(r->params);
    free(r->losses);
    free(r->lrs);
    hone_config_free(r->spec);
    memset(r, 0, sizeof *r);
}
