/* schedule.h — step counting and learning rates as transformers' Trainer computes them
 * (docs/numerics.md §4): the one place the trainer, `hone schedule`, `--dry-run` and
 * hone.optimize get them from. */
#ifndef HONE_SCHEDULE_H
#define HONE_SCHEDULE_H

#include "options.h"
#include "registry.h"

/* warmup_steps > 0 wins; else ceil(total x ratio) */
long hone_warmup_steps(long total, double warmup_ratio, long warmup_steps);

typedef struct hone_plan {
    long examples;           /* training examples used */
    long micro_batches;      /* per epoch: ceil(examples / batch) */
    long steps_per_epoch;    /* optimizer steps per epoch: max(ceil(micro / grad_accum), 1) */
    long epochs;             /* whole epochs started (ceil) */
    long total_steps;        /* optimizer steps in the run */
    long warmup_steps;
} hone_plan;

/* epochs may be fractional; max_steps <= 0 means unset */
void hone_plan_steps(hone_plan *p, long examples, long batch_size, long grad_accum, double epochs,
                     long max_steps, double warmup_ratio, long warmup_steps);

/* validates the schedule's options against the run (e.g. polynomial lr_end < lr) */
int hone_schedule_check(const hone_feature *sched, const hone_opts *opts, const hone_sched_ctx *ctx,
                        hone_err *err);
/* the lr the optimizer step `step` (0-based) uses */
double hone_schedule_lr(const hone_feature *sched, const hone_opts *opts, const hone_sched_ctx *ctx, long step);

#endif
