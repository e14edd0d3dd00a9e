/* schedule.c — optimizer-step counting and scheduled learning rates. */
#include "schedule.h"

#include <math.h>

#include "err.h"

long hone_warmup_steps(long total, double warmup_ratio, long warmup_steps)
{
    if (warmup_steps > 0) return warmup_steps;
    return (long)ceil((double)total * warmup_ratio);
}

static long ceil_div(long a, long b)
{
    return (a + b - 1) / b;
}

void hone_plan_steps(hone_plan *p, long examples, long batch_size, long grad_accum, double epochs,
                     long max_steps, double warmup_ratio, long warmup_steps)
{
    p->examples = examples;
    p->micro_batches = ceil_div(examples, batch_size);
    p->steps_per_epoch = ceil_div(p->micro_batches, grad_accum);
    if (p->steps_per_epoch < 1) p->steps_per_epoch = 1;
    if (max_steps > 0) {
        p->total_steps = max_steps;
        p->epochs = ceil_div(max_steps, p->steps_per_epoch);
    } else {
        p->total_steps = (long)ceil(epochs * (double)p->steps_per_epoch);
        p->epochs = (long)ceil(epochs);
    }
    p->warmup_steps = hone_warmup_steps(p->total_steps, warmup_ratio, warmup_steps);
}

int hone_schedule_check(const hone_feature *sched, const hone_opts *opts, const hone_sched_ctx *ctx,
                        hone_err *err)
{
    const hone_scheduler_vt *vt = sched->vtable;
    if (!vt->check) return 0;
    int rc = vt->check(&hone_host_table, opts, ctx, err);
    if (rc) hone_err_prefix(err, "scheduler %s: ", sched->info->name);
    return rc;
}

double hone_schedule_lr(const hone_feature *sched, const hone_opts *opts, const hone_sched_ctx *ctx, long step)
{
    const hone_scheduler_vt *vt = sched->vtable;
    return ctx->base_lr * vt->factor(&hone_host_table, opts, ctx, step);
}
