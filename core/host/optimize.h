/* optimize.h — drive an optimizer plugin and a schedule on an objective given as a
 * callback. hone.optimize exposes it to Lua: plugin authors check a new optimizer on a
 * function they can reason about, including that it resumes exactly from its saved state. */
#ifndef HONE_OPTIMIZE_H
#define HONE_OPTIMIZE_H

#include <stddef.h>

#include "options.h"
#include "registry.h"

/* params: [n] in; loss: out; grads: [n] out */
typedef int (*hone_objective_fn)(void *ctx, const float *params, size_t n, double *loss, float *grads,
                                 hone_err *err);

typedef struct hone_optimize_job {
    const hone_feature *optimizer;
    const hone_opts *optimizer_opts;
    const hone_feature *scheduler;
    const hone_opts *scheduler_opts;
    double lr;
    long steps;
    long warmup_steps;
    long resume_at;          /* 0 = never */
    const hone_tensor_info *tensors;   /* [ntensors] covering [0, n) in order; */
    size_t ntensors;                   /*   0: one tensor "params" of n, with decay */
    hone_objective_fn objective;
    void *ctx;
} hone_optimize_job;

/* params: [n] updated in place; losses, lrs: [steps] (the loss before each step, the lr
 * it used); state_bytes: the optimizer's state size. The optimizer sees job->tensors as
 * a model's trainable tensors (shapes, decay flags), so tensor-aware optimizers can be
 * checked on a problem of several. */
int hone_optimize(const hone_optimize_job *job, float *params, size_t n, double *losses, double *lrs,
                  size_t *state_bytes, hone_err *err);

/* an in-memory hone_writer / hone_reader pair (also what checkpoints build on) */
typedef struct hone_membuf {
    unsigned char *data;
    size_t len, cap, pos;
} hone_membuf;
hone_writer hone_membuf_writer(hone_membuf *m);
hone_reader hone_membuf_reader(hone_membuf *m);

#endif
