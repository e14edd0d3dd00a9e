/* run.c — one run from a resolved experiment: data, model, optimizer, plan, the loop
 * (loop.c), then summary.json and report.html; and `hone eval` on a checkpoint.
 *
 *   experiment -> data (prepare.c) -> model (model.c) -> optimizer (a plugin)
 *              -> plan (schedule.c) -> train_loop -> summary
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hone/hone.h"
#include "model_config.h"
#include "backend.h"
#include "order.h"
#include "prepare.h"
#include "report.h"
#include "run_impl.h"
#include "util.h"

double hone_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double hone_peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static unsigned lora_targets(const hone_cval *tm)
{
    unsigned t = 0;
    for (size_t i = 0; i < tm->nstrs; i++) t |= hone_target_mask(tm->strs[i]);
    return t;
}

/* model.compute_dtype: bf16, or auto where the backend has bf16 products */
static int compute_bf16(const hone_config *cfg, const hone_backend *be)
{
    const char *dt = hone_config_str(cfg, "model.compute_dtype");
    return !strcmp(dt, "bf16") || (!strcmp(dt, "auto") && be_has_bf16(be));
}

/* The model options of an experiment on backend be, for a model with room for batch x
 * seq tokens; training adds the recipe's dropout, checkpointing and NEFTune (evaluation
 * runs without). */
static hone_model_opts model_opts(const hone_config *cfg, const hone_backend *be, int batch, int seq, int training)
{
    const hone_cval *q = hone_config_cval(cfg, "model.quantizer");
    int lora = hone_config_cval(cfg, "lora")->enabled;
    return (hone_model_opts){
        .quantizer = q->feature, .quantizer_opts = q->opts, .lora = lora,
        .r = lora ? (int)hone_config_int(cfg, "lora.r") : 0, .alpha = hone_config_num(cfg, "lora.alpha"),
        .dropout = training ? hone_config_num(cfg, "lora.dropout") : 0, .rslora = hone_config_bool(cfg, "lora.rslora"),
        .targets = lora ? lora_targets(hone_config_cval(cfg, "lora.target_modules")) : 0,
        .seed = training ? (uint64_t)hone_config_int(cfg, "seed") : 1, .batch = batch, .seq = seq,
        .gradient_checkpointing = training && hone_config_bool(cfg, "model.gradient_checkpointing"),
        .neftune_alpha = training && hone_config_is_set(cfg, "train.neftune_noise_alpha")
                             ? hone_config_num(cfg, "train.neftune_noise_alpha") : 0,
        .compute_bf16 = compute_bf16(cfg, be), .labelled_logits = 1, .backend = be,
    };
}

/* the experiment's backend, with its thread budget set */
static int backend(const hone_config *cfg, const hone_backend **be, hone_err *err)
{
    int rc = hone_backend_for(hone_config_str(cfg, "device"), be, err);
    if (rc) return rc;
    long threads = (long)hone_config_int(cfg, "threads");
    be_set_threads(*be, threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}

static int longest_example(const hone_dataset *d, int at_least)
{
    for (size_t i = 0; i < d->n; i++) at_least = d->ex[i].n > at_least ? d->ex[i].n : at_least;
    return at_least;
}

int hone_run_check(const hone_config *cfg, hone_err *err)
{
    const hone_backend *be;
    if (hone_backend_for(hone_config_str(cfg, "device"), &be, err)) return err->code;
    if (!strcmp(hone_config_str(cfg, "model.compute_dtype"), "bf16") && !be_has_bf16(be))
        return hone_errf(err, HONE_EUNSUPPORTED, "model.compute_dtype = \"bf16\": the %s backend has no bf16 "
                         "products here (the CPU's need AVX-512%s)", be->ops->name,
                         getenv("HONE_CPU_ISA") ? "; HONE_CPU_ISA may cap it" : "");
    hone_model_config mc;
    if (hone_model_config_load(&mc, hone_config_str(cfg, "model.path"), err)) return hone_err_prefix(err, "model.path: ");
    if (!strcmp(hone_config_str(cfg, "eval.best.mode"), "max") && !strcmp(hone_config_str(cfg, "eval.best.metric"), "eval_loss"))
        return hone_errf(err, HONE_EINVAL, "eval.best.mode = \"max\" with eval_loss: lower is better");
    if (hone_config_is_set(cfg, "data.order_file") && hone_config_bool(cfg, "data.group_by_length"))
        return hone_errf(err, HONE_EINVAL, "data.order_file gives each epoch's order; data.group_by_length = true "
                         "would reorder it (set one of them)");
    if (hone_config_is_set(cfg, "data.order_file") && hone_config_bool(cfg, "data.packing"))
        return hone_errf(err, HONE_EINVAL, "data.order_file orders examples; with data.packing = true the batches "
                         "hold packed rows (set one of them)");
    return 0;
}

/* the lines a run prints before its first step: model, base, activations, optimizer,
 * packing, plan */
static void log_setup(const train_run *r, const hone_model_config *mc, const hone_model_opts *mo, size_t docs,
                      double pack_eff)
{
    size_t nparams = r->nparams;
    const hone_config *cfg = r->cfg;
    const hone_hooks *h = r->hooks;
    const hone_optimizer_vt *ovt = r->optimizer->vtable;
    size_t sb = ovt->state_bytes ? ovt->state_bytes(r->ostate) : 0;
    char be[160];
    be_describe(hone_model_backend(r->m), be, sizeof be);
    hone_logf(h, HONE_LOG_INFO, "backend %s", be);
    const char *dt = hone_config_str(cfg, "model.compute_dtype");
    hone_logf(h, HONE_LOG_INFO, "model %s: %d layers, hidden %d, vocab %d; %s, %zu trainable parameters; %s products%s",
              hone_config_str(cfg, "model.path"), mc->layers, mc->hidden, mc->vocab,
              mo->lora ? "LoRA" : "full fine-tuning", nparams, mo->compute_bf16 ? "bf16" : "fp32",
              !strcmp(dt, "auto") ? " (compute_dtype auto)" : "");
    if (mo->lora) {
        size_t pb, fb, qb, ab;
        hone_model_memory(r->m, &pb, &fb, &qb, &ab);
        long long per = (long long)mc->hidden * mc->heads * mc->head_dim * 2 +
                        (long long)mc->hidden * mc->kv_heads * mc->head_dim * 2 + 3LL * mc->hidden * mc->inter;
        size_t nw = (size_t)(per * mc->layers);
        hone_logf(h, HONE_LOG_INFO, "base: %s, %.1f MB for %zu linear weights (%.3f bits per parameter); embeddings, "
                  "norms and lm_head in fp32: %.1f MB", mo->quantizer->info->name, qb / 1e6, nw,
                  nw ? 8.0 * qb / nw : 0.0, fb / 1e6);
    }
    size_t with, without;
    hone_model_activation_bytes(r->m, &with, &without);
    hone_logf(h, HONE_LOG_INFO, "activations: %.1f MB with gradient checkpointing, %.1f MB without (%s)", with / 1e6,
              without / 1e6, mo->gradient_checkpointing ? "on" : "off");
    hone_logf(h, HONE_LOG_INFO, "optimizer %s: %zu bytes of state (%.2f per trainable parameter)",
              r->optimizer->info->name, sb, nparams ? (double)sb / nparams : 0.0);
    if (hone_config_bool(cfg, "data.packing"))
        hone_logf(h, HONE_LOG_INFO, "packing: %zu examples into %zu rows of %d tokens (%.1f%% filled; attention stays "
                  "inside documents)", docs, r->train->n, (int)hone_config_int(cfg, "data.max_seq_length"),
                  100 * pack_eff);
    hone_logf(h, HONE_LOG_INFO, "plan: %ld optimizer steps, %ld warmup", r->plan.total_steps, r->plan.warmup_steps);
}

/* summary.json, report.html and the last line, whatever the outcome */
static void finish(const train_run *r, int rc, int interrupted, const hone_err *err)
{
    const hone_config *cfg = r->cfg;
    const train_pos *pos = &r->pos;
    double wall = hone_now() - r->t0, total = r->wall0 + wall, tokens = (double)pos->tokens - r->tokens0;
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "status", rc ? "failed" : interrupted ? "interrupted"
                                           : r->stopped_early ? "stopped_early" : "completed");
    if (pos->nonfinite) cJSON_AddNumberToObject(sum, "nonfinite_steps", (double)pos->nonfinite);
    if (rc) cJSON_AddStringToObject(sum, "error", err->msg);
    cJSON_AddNumberToObject(sum, "steps", (double)pos->step);
    cJSON_AddNumberToObject(sum, "epochs", (double)r->epochs_done);
    cJSON_AddNumberToObject(sum, "train_loss", pos->last_loss);
    if (r->ectx.eval->n && pos->best_name[0]) {
        cJSON_AddNumberToObject(sum, "best_epoch", (double)pos->best_epoch);
        cJSON_AddStringToObject(sum, "best_metric", hone_config_str(cfg, "eval.best.metric"));
        cJSON_AddStringToObject(sum, "best_checkpoint", pos->best_name);
        cJSON_AddNumberToObject(sum, "best_value", r->ectx.maximize ? -pos->best : pos->best);
    }
    cJSON_AddNumberToObject(sum, "wall_s", total);
    cJSON_AddNumberToObject(sum, "tokens_per_s", total > 0 ? tokens / total : 0);
    cJSON_AddNumberToObject(sum, "peak_rss_mb", hone_peak_rss_mb());
    hone_err werr = {0};
    char path[4300];
    snprintf(path, sizeof path, "%s/summary.json", r->run_dir);
    if (write_json_file(path, sum, &werr)) hone_logf(r->hooks, HONE_LOG_WARN, "summary.json: %s", werr.msg);
    cJSON_Delete(sum);
    /* the report is a view of files already written: failing to draw it loses nothing */
    if (hone_write_report(r->run_dir, &werr)) hone_logf(r->hooks, HONE_LOG_WARN, "report.html: %s", werr.msg);
    if (rc || interrupted) return;
    if (r->step0)
        hone_logf(r->hooks, HONE_LOG_INFO, "done: %lld steps in %.1f s (%.1f s after resuming at step %ld; %.0f "
                  "tokens/s over the run), final loss %.4f; checkpoints in %s/checkpoints", (long long)pos->step,
                  total, wall, r->step0, total > 0 ? tokens / total : 0, pos->last_loss, r->run_dir);
    else
        hone_logf(r->hooks, HONE_LOG_INFO, "done: %lld steps in %.1f s (%.0f tokens/s), final loss %.4f; checkpoints "
                  "in %s/checkpoints", (long long)pos->step, total, total > 0 ? tokens / total : 0, pos->last_loss,
                  r->run_dir);
}

/* Checks what needs the data, the model or a tokenizer: best metric, generation. */
static int check_eval(const hone_config *cfg, const hone_prepared *prep, int *generate, hone_err *err)
{
    const char *best = hone_config_str(cfg, "eval.best.metric");
    const hone_cval *mfns = hone_config_cval(cfg, "eval.metrics");
    int wants = hone_config_cval(cfg, "eval.generate")->given || (mfns && mfns->nf);
    *generate = prep->tok && prep->eval.n && wants;
    if (!prep->tok && wants)
        return hone_errf(err, HONE_EINVAL, "eval.metrics / eval.generate need a tokenizer to decode predictions "
                         "(set model.tokenizer)");
    if (strcmp(best, "eval_loss") && !*generate)
        return hone_errf(err, HONE_EINVAL, "eval.best.metric = \"%s\" is not computed: only eval_loss is, without "
                         "eval.metrics or eval.generate", best);
    return 0;
}

/* data.order_file: every epoch's order from outside, read before the model so a bad
 * file fails at once */
static int load_order(train_run *r, size_t **given, hone_err *err)
{
    const char *of = hone_config_str(r->cfg, "data.order_file");
    size_t n = r->train->n ? r->train->n : 1;
    *given = NULL;
    if (!hone_config_is_set(r->cfg, "data.order_file")) return 0;
    if (!(*given = malloc((size_t)r->plan.epochs * n * sizeof **given))) return hone_errf(err, HONE_ENOMEM, "out of memory");
    if (hone_order_load(of, r->train, r->plan.epochs, *given, err)) return hone_err_prefix(err, "data.order_file: ");
    hone_logf(r->hooks, HONE_LOG_INFO, "data: each epoch's order from %s", of);
    return 0;
}

/* The model: the base (or, resuming a full fine-tune, the checkpoint's weights), then the
 * adapter to resume from or to start from. */
static int load_model(train_run *r, const hone_model_opts *mo, int resume, const char *ckpt, hone_err *err)
{
    const hone_config *cfg = r->cfg;
    if (mo->lora && mo->targets == 0) return hone_errf(err, HONE_EINVAL, "lora.target_modules: no module to adapt");
    int rc = hone_model_load(&r->m, resume && !mo->lora ? ckpt : hone_config_str(cfg, "model.path"), mo, err);
    if (!rc && resume && mo->lora && (rc = hone_model_load_adapter(r->m, ckpt, err))) hone_err_prefix(err, "resume: ");
    if (!rc && !resume && mo->lora && hone_config_is_set(cfg, "lora.init_adapter") &&
        (rc = hone_model_load_adapter(r->m, hone_config_str(cfg, "lora.init_adapter"), err)))
        hone_err_prefix(err, "lora.init_adapter: ");
    if (rc) return rc;
    r->params = hone_model_params(r->m, &r->nparams);
    r->grads = hone_model_grads(r->m, NULL);
    r->tinfo = hone_model_tensors(r->m, &r->ntensors);
    const hone_cval *oc = hone_config_cval(cfg, "train.optimizer");
    const hone_optimizer_vt *ovt = oc->feature->vtable;
    if ((rc = ovt->create(&hone_host_table, oc->opts, r->tinfo, r->ntensors, r->nparams, &r->ostate, err)))
        return hone_err_prefix(err, "train.optimizer %s: ", oc->feature->info->name);
    return hone_schedule_check(r->scheduler, r->sched_opts, &r->sctx, err);
}

int hone_run_train(const hone_config *cfg, const hone_hooks *hooks, const char *run_dir, int resume,
                   int *interrupted, hone_err *err)
{
    *interrupted = 0;
    int rc = hone_run_check(cfg, err);
    if (rc) return rc;
    hone_host_log_to(hooks);   /* a plugin's log lines are the run's too */
    const hone_backend *be;
    if ((rc = backend(cfg, &be, err))) return rc;
    hone_prepared prep;
    if ((rc = hone_data_prepare(&prep, cfg, hooks, err))) {
        hone_host_log_to(NULL);
        return rc;
    }
    int max_len = (int)hone_config_int(cfg, "data.max_seq_length");
    hone_data_log_summary(&prep, max_len, hooks);   /* before packing replaces the examples by rows */
    double pack_eff = 0;
    size_t docs = prep.train.n;
    if (hone_config_bool(cfg, "data.packing")) rc = hone_dataset_pack(&prep.train, max_len, &pack_eff, err);
    int longest = longest_example(&prep.eval, longest_example(&prep.train, 1));
    if (!strcmp(hone_config_str(cfg, "data.padding"), "max_length") && max_len > longest) longest = max_len;

    const hone_cval *sc = hone_config_cval(cfg, "train.scheduler");
    const char *slash = strrchr(run_dir, '/');
    train_run r = {.cfg = cfg, .hooks = hooks, .run_dir = run_dir, .train = &prep.train,
                   .optimizer = hone_config_cval(cfg, "train.optimizer")->feature, .scheduler = sc->feature,
                   .sched_opts = sc->opts, .bs = (int)hone_config_int(cfg, "train.batch_size"),
                   .ga = (int)hone_config_int(cfg, "train.grad_accum"),
                   .pos = {.best = INFINITY, .last_loss = NAN, .last_eval = NAN}};
    r.ectx = (eval_ctx){.b = &r.b, .eval = &prep.eval, .bs = r.bs, .tok = prep.tok, .cfg = cfg, .hooks = hooks,
                        .run = {slash ? slash + 1 : run_dir, run_dir},
                        .maximize = !strcmp(hone_config_str(cfg, "eval.best.mode"), "max"),
                        .best_metric = hone_config_str(cfg, "eval.best.metric")};
    const hone_cval *es = hone_config_cval(cfg, "eval.early_stopping");
    if (es && es->enabled) r.ectx.threshold = hone_config_num(cfg, "eval.early_stopping.threshold");
    hone_model_opts mo = model_opts(cfg, be, r.bs, longest, 1);
    char ckpt[4600] = "", path[4200];
    if (!rc && resume) rc = newest_checkpoint(run_dir, ckpt, sizeof ckpt, err);
    int summarize = !rc;   /* from here on, summary.json says how the run ended */
    r.t0 = r.tlog = hone_now();
    hone_plan_steps(&r.plan, (long)prep.train.n, r.bs, r.ga, hone_config_num(cfg, "train.epochs"),
                    hone_config_is_set(cfg, "train.max_steps") ? (long)hone_config_int(cfg, "train.max_steps") : 0,
                    hone_config_num(cfg, "train.warmup_ratio"), (long)hone_config_int(cfg, "train.warmup_steps"));
    r.sctx = (hone_sched_ctx){r.plan.total_steps, r.plan.warmup_steps, hone_config_num(cfg, "train.lr")};
    size_t *given = NULL;
    if (!rc && !(r.order = malloc((prep.train.n ? prep.train.n : 1) * sizeof *r.order)))
        rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    if (!rc) rc = load_order(&r, &given, err);
    r.given = given;
    if (!rc) rc = load_model(&r, &mo, resume, ckpt, err);
    r.ectx.m = r.m;
    if (!rc) rc = batcher_alloc(&r.b, r.bs, longest, prep.pad, err);
    if (!strcmp(hone_config_str(cfg, "data.padding"), "max_length")) r.b.pad_to = max_len;
    if (!rc) log_setup(&r, &prep.mc, &mo, docs, pack_eff);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int draws = (mo.lora && mo.dropout > 0) || mo.neftune_alpha > 0;
    if (!rc && resume && !(rc = read_state(ckpt, &r.pos, r.optimizer->vtable, r.ostate, draws, err))) {
        hone_model_set_draws(r.m, r.pos.draws);
        truncate_metrics(path, (long)r.pos.step, hooks);
        hone_logf(hooks, HONE_LOG_INFO, "resuming from %s: step %lld, epoch %lld%s", ckpt, (long long)r.pos.step,
                  (long long)r.pos.epoch + 1, r.pos.window ? " (mid-epoch)" : "");
    }
    if (!rc && !(r.ectx.metrics = fopen(path, "a")))
        rc = hone_errf(err, HONE_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!rc) rc = check_eval(cfg, &prep, &r.ectx.generate, err);
    if (!rc && r.ectx.generate) rc = eval_records(cfg, &prep.eval, &r.ectx.recs, err);
    if (!rc) {
        r.t0 = r.tlog = hone_now();
        r.wall0 = r.pos.wall_s;
        r.tokens0 = isnan(r.wall0) ? (double)r.pos.tokens : 0;
        if (isnan(r.wall0)) r.wall0 = 0;
        r.step0 = (long)r.pos.step;
        r.epochs_done = (long)r.pos.epoch;
        r.tokens_log = (long)r.pos.tokens;
        rc = train_loop(&r, interrupted, err);
        if (!rc && !*interrupted && r.ectx.evals && !r.pos.best_name[0])
            rc = hone_errf(err, HONE_EINVAL, "eval.best.metric = \"%s\": no evaluation of the run computed it (the "
                           "last computed %s); every checkpoint is kept", r.ectx.best_metric, r.ectx.computed);
    }
    if (r.ectx.metrics) fclose(r.ectx.metrics);
    if (summarize) finish(&r, rc, *interrupted, err);
    free(r.blob.data);
    free(r.order);
    free(given);
    free_records(r.ectx.recs, prep.eval.n);
    batcher_free(&r.b);
    ((const hone_optimizer_vt *)r.optimizer->vtable)->destroy(r.ostate);
    hone_model_free(r.m);
    hone_prepared_free(&prep);
    hone_host_log_to(NULL);
    return rc;
}

int hone_run_eval(const hone_config *cfg, const hone_hooks *hooks, const char *ckpt, const char *out_path,
                  hone_err *err)
{
    const hone_backend *be;
    int rc = backend(cfg, &be, err);
    if (rc) return rc;
    hone_prepared prep;
    rc = hone_data_prepare(&prep, cfg, hooks, err);
    if (rc) return rc;
    hone_dataset *ev = prep.eval.n ? &prep.eval : &prep.train;
    if (!prep.eval.n) hone_logf(hooks, HONE_LOG_INFO, "eval: the experiment has no eval split; evaluating on data.train");
    int longest = longest_example(ev, 1), bs = (int)hone_config_int(cfg, "train.batch_size");
    int lora = hone_config_cval(cfg, "lora")->enabled;
    char probe[4300];
    snprintf(probe, sizeof probe, "%s/adapter_config.json", ckpt);
    if (lora && !hone_is_file(probe)) rc = hone_errf(err, HONE_EINVAL, "%s: no adapter_config.json (not a LoRA adapter)", ckpt);
    hone_model_opts mo = model_opts(cfg, be, bs, longest, 0);
    hone_model *m = NULL;
    if (!rc) rc = hone_model_load(&m, lora ? hone_config_str(cfg, "model.path") : ckpt, &mo, err);
    if (!rc && lora) rc = hone_model_load_adapter(m, ckpt, err);
    batcher b = {0};
    if (!rc) rc = batcher_alloc(&b, bs, longest, prep.pad, err);
    double loss = NAN;
    metric_acc acc[MAX_METRICS];
    int nacc = 0;
    const hone_cval *mfns = hone_config_cval(cfg, "eval.metrics");
    int generate = prep.tok && (hone_config_cval(cfg, "eval.generate")->given || (mfns && mfns->nf));
    if (!rc) rc = evaluate_loss(m, &b, ev, bs, &loss, err);
    char **recs = NULL;
    if (!rc && generate) rc = eval_records(cfg, ev, &recs, err);
    if (!rc && generate) rc = generate_metrics(m, prep.tok, ev, recs, cfg, hooks, out_path, acc, &nacc, err);
    free_records(recs, ev->n);
    if (!rc) {
        char line[8192];
        int at = snprintf(line, sizeof line, "%s: %zu examples, eval_loss %.4f", ckpt, ev->n, loss);
        for (int k = 0; k < nacc && at > 0 && (size_t)at < sizeof line; k++)
            at += snprintf(line + at, sizeof line - (size_t)at, "  %s %.4g", acc[k].name,
                           acc[k].n ? acc[k].sum / acc[k].n : NAN);
        hone_logf(hooks, HONE_LOG_INFO, "%s", line);
        if (out_path && generate) hone_logf(hooks, HONE_LOG_INFO, "predictions in %s", out_path);
    }
    batcher_free(&b);
    hone_model_free(m);
    hone_prepared_free(&prep);
    return rc;
}
