/* loop.c — the epochs of a run: each epoch's order, windows of grad_accum
 * micro-batches, the optimizer step, the logged rows, mid-epoch evaluation and
 * checkpoints, the end of each epoch (evaluation, checkpoint, best, early stopping),
 * and a clean stop on SIGINT / SIGTERM.
 *
 * The loss of a step is the summed cross-entropy over its window divided by the
 * window's count of predicted labels (not -100, position 0 of each row left out, as
 * transformers 5's Trainer counts num_items_in_batch on labels[..., 1:]), so grad_accum
 * k x batch b gives the gradients of batch k*b (docs/numerics.md). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clip.h"
#include "err.h"
#include "hone/hone.h"
#include "order.h"
#include "run_impl.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested) _exit(130);   /* the second: at once */
    stop_requested = 1;
}

/* data.order_file's order, else shuffled (or not), then grouped by length */
static int epoch_order(train_run *r, long epoch, hone_err *err)
{
    const hone_config *cfg = r->cfg;
    size_t n = r->train->n;
    if (r->given) memcpy(r->order, r->given + (size_t)epoch * n, n * sizeof *r->order);
    else if (hone_config_bool(cfg, "data.shuffle"))
        hone_permutation(r->order, n, (uint64_t)hone_config_int(cfg, "seed") + 1000003ull * (uint64_t)(epoch + 1));
    else
        for (size_t i = 0; i < n; i++) r->order[i] = i;
    if (!hone_config_bool(cfg, "data.group_by_length")) return 0;
    return hone_group_by_length(r->order, n, r->train, (size_t)r->bs * (size_t)r->ga, err);
}

/* Forward and backward over the window's wn micro-batches from micro-batch w0, each
 * scaled by 1 / the window's label count; *loss: the window's mean. */
static int accumulate(train_run *r, size_t w0, size_t wn, double *loss, hone_err *err)
{
    const hone_dataset *d = r->train;
    size_t first = w0 * r->bs, nex = d->n - first < wn * r->bs ? d->n - first : wn * r->bs;
    long count = count_labels(d, r->order, first, nex);
    double sum = 0;
    int rc = 0;
    for (size_t k = 0; k < wn && !rc; k++) {
        size_t f = first + k * r->bs;
        int n = d->n - f < (size_t)r->bs ? (int)(d->n - f) : r->bs;
        r->pos.tokens += make_batch(&r->b, d, r->order, f, n);
        double s = 0;
        long c;
        rc = hone_model_set_documents(r->m, r->b.packed ? r->b.start : NULL, r->b.B, r->b.T, err);
        if (!rc) rc = hone_model_forward(r->m, r->b.ids, r->b.targets, r->b.B, r->b.T, &s, &c, err);
        if (!rc) rc = hone_model_backward(r->m, count ? 1.0f / (float)count : 0.0f, err);
        sum += s;
    }
    *loss = count ? sum / count : 0;
    return rc;
}

/* The update: clipped, at the scheduled lr; skipped when the loss or the gradient is not
 * finite (the schedule moves on as if it had been taken), up to train.nonfinite_limit. */
static int update(train_run *r, double loss, double *norm, double *lr, hone_err *err)
{
    const hone_optimizer_vt *ovt = r->optimizer->vtable;
    long limit = (long)hone_config_int(r->cfg, "train.nonfinite_limit");
    *norm = hone_clip_grad_norm(hone_model_backend(r->m), r->grads, r->tinfo, r->ntensors,
                                hone_config_num(r->cfg, "train.max_grad_norm"));
    *lr = hone_schedule_lr(r->scheduler, r->sched_opts, &r->sctx, r->pos.step);
    int rc = 0;
    if (!isfinite(loss) || !isfinite(*norm)) {
        r->pos.nonfinite++;
        hone_logf(r->hooks, HONE_LOG_INFO, "step %lld: non-finite loss or gradient (%s); update skipped (%lld of at "
                  "most %ld)", (long long)r->pos.step + 1, !isfinite(loss) ? "loss" : "grad_norm",
                  (long long)r->pos.nonfinite, limit);
        if (r->pos.nonfinite >= limit)
            rc = hone_errf(err, HONE_EINVAL, "%lld steps had a NaN or Inf loss or gradient; stopped (the last good "
                           "checkpoint is kept; lower train.lr or check the data)", (long long)r->pos.nonfinite);
    } else if ((rc = ovt->step(r->ostate, r->params, r->grads, *lr, r->pos.step + 1, err))) {
        hone_err_prefix(err, "optimizer %s: step %lld: ", r->optimizer->info->name, (long long)r->pos.step + 1);
    } else {
        r->pos.last_loss = loss;
        r->loss_log += loss;
        r->steps_log++;
    }
    hone_model_zero_grad(r->m);
    return rc;
}

static double eta(const train_run *r)
{
    double t = hone_now();
    return (t - r->t0) / (double)(r->pos.step - r->step0) * (double)(r->plan.total_steps - r->pos.step);
}

/* a metrics row (the mean loss since the last), its hook and its line */
static int log_step(train_run *r, double ep, double lr, double norm, hone_err *err)
{
    double t = hone_now(), tps = (double)(r->pos.tokens - r->tokens_log) / (t - r->tlog), loss = r->loss_log / r->steps_log;
    hone_step_info s = {.step = (long)r->pos.step, .total_steps = r->plan.total_steps, .epoch = ep, .loss = loss,
                        .lr = lr, .grad_norm = norm, .tokens = (long long)r->pos.tokens, .tokens_per_s = tps,
                        .wall_s = r->wall0 + t - r->t0, .eta_s = eta(r), .peak_rss_mb = hone_peak_rss_mb()};
    json_row jr = {0};
    row_num(&jr, "step", "%.0f", (double)s.step);
    row_num(&jr, "epoch", "%.4f", ep);
    row_num(&jr, "loss", "%.9g", loss);
    row_num(&jr, "lr", "%.6g", lr);
    row_num(&jr, "grad_norm", "%.9g", norm);
    row_num(&jr, "tokens_per_s", "%.1f", tps);
    row_num(&jr, "peak_rss_mb", "%.0f", s.peak_rss_mb);
    char *row = row_end(&jr);
    if (!row) return hone_errf(err, HONE_ENOMEM, "out of memory");
    fprintf(r->ectx.metrics, "%s\n", row);
    fflush(r->ectx.metrics);
    s.row = row;
    const hone_hooks *h = r->hooks;
    if (h && h->on_step && !r->ectx.hook_rc)
        hook_failed(&r->ectx, h->on_step(h->ctx, &r->ectx.run, &s, &r->ectx.hook_err), "on_step");
    free(row);
    hone_logf(h, HONE_LOG_INFO, "step %5ld/%ld  epoch %.2f  loss %.4f  lr %.3g  grad_norm %.3g  %.0f tok/s  eta %.0fs",
              s.step, s.total_steps, ep, loss, lr, norm, tps, s.eta_s);
    r->loss_log = 0;
    r->steps_log = 0;
    r->tlog = t;
    r->tokens_log = (long)r->pos.tokens;
    return 0;
}

/* the live bar between the logged lines (a host that is no terminal drops it) */
static void progress(const train_run *r, double ep)
{
    int width = 30, fill = (int)(width * r->pos.step / (r->plan.total_steps ? r->plan.total_steps : 1));
    char bar[64];
    for (int k = 0; k < width; k++) bar[k] = k < fill ? '#' : '.';
    bar[width] = 0;
    hone_logf(r->hooks, HONE_LOG_PROGRESS, "[%s] step %lld/%ld  epoch %.2f  loss %.4f  eta %.0fs", bar,
              (long long)r->pos.step, r->plan.total_steps, ep, r->pos.last_loss, eta(r));
}

/* checkpoints/<name> from where the run stands, best and pruning after it, its hook */
static int checkpoint(train_run *r, const char *name, const ckpt_meta *meta, int improved, hone_err *err)
{
    hone_model_get_draws(r->m, r->pos.draws);
    r->pos.wall_s = r->wall0 + hone_now() - r->t0;
    int rc = state_blob(&r->blob, &r->pos, r->optimizer->vtable, r->ostate, err);
    if (!rc) rc = save_checkpoint(r->m, r->cfg, r->run_dir, name, meta, &r->blob, err);
    if (rc) return rc;
    if (improved) point_best(r->run_dir, name, r->hooks);
    long keep = hone_config_is_set(r->cfg, "save.keep") ? (long)hone_config_int(r->cfg, "save.keep") : 0;
    if (keep) prune_checkpoints(r->run_dir, keep, r->pos.best_name[0] ? r->pos.best_name : NULL, r->hooks);
    const hone_hooks *h = r->hooks;
    if (h && h->on_checkpoint && !r->ectx.hook_rc) {
        char path[4300];
        snprintf(path, sizeof path, "%s/checkpoints/%s", r->run_dir, name);
        hone_checkpoint_info c = {.name = name, .path = path, .step = meta->step, .epoch = meta->epoch,
                                  .best = improved};
        hook_failed(&r->ectx, h->on_checkpoint(h->ctx, &r->ectx.run, &c, &r->ectx.hook_err), "on_checkpoint");
    }
    return 0;
}

/* after a checkpoint: a failed hook stops the run with its error, a signal stops it */
static int after_checkpoint(train_run *r, const char *name, int *interrupted, hone_err *err)
{
    if (r->ectx.hook_rc) {
        hone_logf(r->hooks, HONE_LOG_INFO, "checkpoint %s/checkpoints/%s written before stopping for the failed hook",
                  r->run_dir, name);
        *err = r->ectx.hook_err;
        return r->ectx.hook_rc;
    }
    if (stop_requested) {
        hone_logf(r->hooks, HONE_LOG_INFO, "interrupted: checkpoint %s/checkpoints/%s written; continue with --resume",
                  r->run_dir, name);
        *interrupted = 1;
    }
    return 0;
}

/* Within an epoch, after a step: eval.every and save.every, and the checkpoint a new
 * best, a signal or a failed hook asks for (the next window of this epoch comes next). */
static int mid_epoch(train_run *r, double ep, int *interrupted, hone_err *err)
{
    long eval_every = (long)hone_config_cval(r->cfg, "eval.every")->every_steps;
    long save_every = (long)hone_config_cval(r->cfg, "save.every")->every_steps;
    char name[64];
    snprintf(name, sizeof name, "step-%lld", (long long)r->pos.step);
    int improved = 0, rc = 0;
    if (r->ectx.eval->n && eval_every > 0 && r->pos.step % eval_every == 0)
        rc = run_eval(&r->ectx, &r->pos, name, ep, &improved, err);
    if (rc || !(stop_requested || improved || r->ectx.hook_rc || (save_every > 0 && r->pos.step % save_every == 0)))
        return rc;
    ckpt_meta meta = {.epoch = ep, .step = (long)r->pos.step, .max_steps = r->plan.total_steps,
                      .train_loss = r->pos.last_loss};
    rc = checkpoint(r, name, &meta, improved, err);
    return rc ? rc : after_checkpoint(r, name, interrupted, err);
}

/* the epoch's hook: f(run, { epoch, step, train_loss, checkpoint, <metric>, best }) */
static void epoch_hook(train_run *r, long epoch, const char *name)
{
    const hone_hooks *h = r->hooks;
    if (!h || !h->on_epoch_end || r->ectx.hook_rc) return;
    json_row jr = {0};
    row_num(&jr, "epoch", "%.17g", (double)epoch);
    row_num(&jr, "step", "%.17g", (double)r->pos.step);
    row_num(&jr, "train_loss", "%.17g", r->pos.last_loss);
    row_key(&jr, "checkpoint");
    row_put(&jr, "\"", 1);
    row_put(&jr, name, strlen(name));
    row_put(&jr, "\"", 1);
    if (r->ectx.eval->n) row_num(&jr, r->ectx.best_metric, "%.17g", r->pos.last_eval);
    if (r->pos.best_name[0]) {
        row_key(&jr, "best");
        row_put(&jr, "\"", 1);
        row_put(&jr, r->pos.best_name, strlen(r->pos.best_name));
        row_put(&jr, "\"", 1);
    }
    char *row = row_end(&jr);
    int stop = 0;
    hone_epoch_info e = {.epoch = epoch, .step = (long)r->pos.step, .train_loss = r->pos.last_loss,
                         .checkpoint = name, .best = r->pos.best_name[0] ? r->pos.best_name : NULL, .row = row};
    if (!row) hook_failed(&r->ectx, hone_errf(&r->ectx.hook_err, HONE_ENOMEM, "out of memory"), "on_epoch_end");
    else hook_failed(&r->ectx, h->on_epoch_end(h->ctx, &r->ectx.run, &e, &stop, &r->ectx.hook_err), "on_epoch_end");
    if (stop && !r->ectx.hook_rc) {
        hone_logf(h, HONE_LOG_INFO, "stopped early: hooks.on_epoch_end returned \"stop\" after epoch %ld", epoch);
        r->stopped_early = 1;
    }
    free(row);
}

/* The end of epoch index `epoch`: evaluation, the checkpoint, best, the hook, early
 * stopping. */
static int end_epoch(train_run *r, long epoch, int *interrupted, hone_err *err)
{
    r->epochs_done = epoch + 1;
    r->pos.epoch = epoch + 1;
    r->pos.window = 0;
    char name[64];
    snprintf(name, sizeof name, "epoch-%ld", epoch + 1);
    int improved = 0, rc = 0, has_eval = r->ectx.eval->n > 0;
    if (has_eval && (rc = run_eval(&r->ectx, &r->pos, name, (double)(epoch + 1), &improved, err))) return rc;
    if (improved) r->pos.best_epoch = epoch + 1;
    ckpt_meta meta = {.epoch = (double)(epoch + 1), .step = (long)r->pos.step, .max_steps = r->plan.total_steps,
                      .train_loss = r->pos.last_loss, .has_eval = has_eval, .eval_loss = r->pos.last_eval,
                      .best_epoch = (long)r->pos.best_epoch};
    if ((rc = checkpoint(r, name, &meta, improved, err))) return rc;
    epoch_hook(r, epoch + 1, name);
    long patience = 0;
    double threshold = 0;
    const hone_cval *es = hone_config_cval(r->cfg, "eval.early_stopping");
    if (es && es->enabled) {
        patience = (long)hone_config_int(r->cfg, "eval.early_stopping.patience");
        threshold = hone_config_num(r->cfg, "eval.early_stopping.threshold");
    }
    if (!r->ectx.hook_rc && patience && r->pos.stale >= patience) {
        hone_logf(r->hooks, HONE_LOG_INFO, "early stopping: %s has not improved by more than %g for %lld evaluation%s "
                  "(best %.4f at %s)", r->ectx.best_metric, threshold, (long long)r->pos.stale,
                  r->pos.stale > 1 ? "s" : "", r->ectx.maximize ? -r->pos.best : r->pos.best, r->pos.best_name);
        r->stopped_early = 1;
    }
    return after_checkpoint(r, name, interrupted, err);
}

int train_loop(train_run *r, int *interrupted, hone_err *err)
{
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    long log_every = (long)hone_config_int(r->cfg, "train.log_every"), total = r->plan.total_steps;
    size_t nmb = (size_t)r->plan.micro_batches, ga = (size_t)r->ga;
    int rc = 0;
    for (long epoch = (long)r->pos.epoch; !rc && !*interrupted && epoch < r->plan.epochs && r->pos.step < total &&
                                          !r->stopped_early; epoch++) {
        if ((rc = epoch_order(r, epoch, err))) break;
        for (size_t w0 = epoch == r->pos.epoch ? (size_t)r->pos.window : 0; w0 < nmb && r->pos.step < total;
             w0 += ga) {
            size_t wn = nmb - w0 < ga ? nmb - w0 : ga;   /* micro-batches in this window */
            double loss, norm, lr;
            if ((rc = accumulate(r, w0, wn, &loss, err)) || (rc = update(r, loss, &norm, &lr, err))) break;
            r->pos.step++;
            r->pos.epoch = epoch;
            r->pos.window = (int64_t)(w0 + wn);
            double ep = (double)epoch + (double)(w0 + wn) / (double)nmb;
            if ((r->pos.step % log_every == 0 || r->pos.step == total) && r->steps_log &&
                (rc = log_step(r, ep, lr, norm, err)))
                break;
            progress(r, ep);
            double tpause = hone_now();   /* evaluation and saving stay out of the logged tokens/s */
            if (w0 + wn < nmb && r->pos.step < total && (rc = mid_epoch(r, ep, interrupted, err))) break;
            r->tlog += hone_now() - tpause;
            if (*interrupted) break;
        }
        if (rc || *interrupted) break;
        double tpause = hone_now();
        rc = end_epoch(r, epoch, interrupted, err);
        r->tlog += hone_now() - tpause;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
