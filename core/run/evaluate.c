/* evaluate.c — evaluation inside a run and for `hone eval`: the token-weighted eval
 * loss, greedy generation scored by exact_match and the experiment's eval.metrics (each
 * prediction to eval/<tag>.jsonl), the eval row of metrics.jsonl, and best tracking. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hone/hone.h"
#include "run_impl.h"
#include "util.h"

int evaluate_loss(hone_model *m, batcher *b, const hone_dataset *ev, int bs, double *loss, hone_err *err)
{
    size_t *order = malloc((ev->n ? ev->n : 1) * sizeof *order);
    if (!order) return hone_errf(err, HONE_ENOMEM, "out of memory");
    /* batches of similar length (longest first), so they carry little padding; the loss is
     * token-weighted, so the grouping leaves it as it is (to rounding) */
    for (size_t i = 0; i < ev->n; i++) order[i] = i;
    int rc = hone_group_by_length(order, ev->n, ev, ev->n, err);
    double sum = 0;
    long count = 0;
    hone_model_set_eval(m, 1);
    hone_model_set_documents(m, NULL, 0, 0, err);   /* eval examples are never packed */
    for (size_t i = 0; i < ev->n && !rc; i += (size_t)bs) {
        int n = ev->n - i < (size_t)bs ? (int)(ev->n - i) : bs;
        make_batch(b, ev, order, i, n);
        double s;
        long c;
        rc = hone_model_forward(m, b->ids, b->targets, b->B, b->T, &s, &c, err);
        sum += s;
        count += c;
    }
    hone_model_set_eval(m, 0);
    free(order);
    *loss = count ? sum / count : NAN;
    return rc;
}

/* ---- generation metrics ------------------------------------------------------------ */

/* adds v to the mean of `name`; a run's metrics past MAX_METRICS are an error */
static int acc_add(metric_acc *acc, int *nacc, const char *name, double v, hone_err *err)
{
    int i = 0;
    while (i < *nacc && strcmp(acc[i].name, name)) i++;
    if (i == *nacc) {
        if (*nacc == MAX_METRICS)
            return hone_errf(err, HONE_EINVAL, "eval.metrics: more than %d metrics (at \"%s\")", MAX_METRICS, name);
        snprintf(acc[i].name, sizeof acc[i].name, "%s", name);
        acc[i].sum = 0;
        acc[i].n = 0;
        (*nacc)++;
    }
    acc[i].sum += v;
    acc[i].n++;
    return 0;
}

/* the text of ids; one that does not decode becomes "" and is counted in *failed, its
 * message kept in why (for the warning generate_metrics gives) */
static char *decode_ids(hone_tokenizer *tok, const int32_t *ids, int n, long *failed, hone_err *why)
{
    tok_buf b = {0};
    hone_err err = {0};
    if (hone_tokenizer_decode(tok, ids, (size_t)(n > 0 ? n : 0), 1, &b, &err) != 0) {
        free(b.s);
        if (!(*failed)++) *why = err;
        return hone_strdup("");
    }
    char *s = malloc(b.n + 1);
    if (s) {
        memcpy(s, b.s, b.n);
        s[b.n] = 0;
    }
    free(b.s);
    return s;
}

static int same_trimmed(const char *a, const char *b)
{
    while (*a == ' ' || *a == '\n' || *a == '\t') a++;
    while (*b == ' ' || *b == '\n' || *b == '\t') b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la && (a[la - 1] == ' ' || a[la - 1] == '\n' || a[la - 1] == '\t')) la--;
    while (lb && (b[lb - 1] == ' ' || b[lb - 1] == '\n' || b[lb - 1] == '\t')) lb--;
    return la == lb && !memcmp(a, b, la);
}

/* what the metric functions see of each eval example besides its text: its own record
 * (ex.completion, ex.category, ...), read once per run */
int eval_records(const hone_config *cfg, const hone_dataset *ev, char ***recs, hone_err *err)
{
    *recs = NULL;
    const hone_cval *mc = hone_config_cval(cfg, "eval.metrics");
    if (!mc || !mc->nf || !ev->n) return 0;
    const char *src = hone_config_is_set(cfg, "data.eval") ? hone_config_str(cfg, "data.eval") : hone_config_str(cfg, "data.train");
    int rc = hone_dataset_records(ev, src, recs, err);
    return rc ? hone_err_prefix(err, "eval.metrics: ") : 0;
}

void free_records(char **recs, size_t n)
{
    for (size_t r = 0; recs && r < n; r++) free(recs[r]);
    free(recs);
}

/* One prediction scored by every metric function (sorted by name: a Lua table's order
 * changes from state to state) into row and acc. */
static int score(const hone_config *cfg, const hone_hooks *hooks, const size_t *forder, size_t nfn,
                 const hone_metric_call *call, cJSON *row, metric_acc *acc, int *nacc, hone_err *err)
{
    const hone_cval *mc = hone_config_cval(cfg, "eval.metrics");
    for (size_t oi = 0; oi < nfn; oi++) {
        size_t fi = forder[oi];
        double vals[MAX_METRICS];
        char names[MAX_METRICS][HONE_METRIC_NAME];
        int nv = 0;
        int rc = hooks && hooks->metric ? hooks->metric(hooks->ctx, mc->frefs[fi], call, vals, names, MAX_METRICS, &nv, err)
                                        : hone_errf(err, HONE_EUNSUPPORTED, "this host cannot call functions");
        if (rc) return hone_err_prefix(err, "eval.metrics.%s (eval example %d): ", mc->fnames[fi], call->index + 1);
        for (int v = 0; v < nv; v++) {
            char full[2 * HONE_METRIC_NAME];
            snprintf(full, sizeof full, "%.*s%s%.*s", HONE_METRIC_NAME - 1, mc->fnames[fi], names[v][0] ? "." : "",
                     HONE_METRIC_NAME - 1, names[v]);
            cJSON_AddNumberToObject(row, full, vals[v]);
            if ((rc = acc_add(acc, nacc, full, vals[v], err))) return rc;
        }
    }
    return 0;
}

/* Greedy generation from each eval example's prompt (its tokens before the first trained
 * one: the record's prompt, or the text through the response template), decoded and
 * scored; the means go to acc, every prediction to out_path. recs: eval_records of ev. */
int generate_metrics(hone_model *m, hone_tokenizer *tok, const hone_dataset *ev, char *const *recs,
                     const hone_config *cfg, const hone_hooks *hooks, const char *out_path, metric_acc *acc,
                     int *nacc, hone_err *err)
{
    *nacc = 0;
    const hone_cval *mc = hone_config_cval(cfg, "eval.metrics");
    long limit = hone_config_is_set(cfg, "data.eval_limit") ? (long)hone_config_int(cfg, "data.eval_limit") : (long)ev->n;
    int max_new = (int)hone_config_int(cfg, "eval.generate.max_new_tokens");
    int longest = 0;
    for (size_t i = 0; i < ev->n; i++) longest = ev->ex[i].n > longest ? ev->ex[i].n : longest;
    /* at least a training batch of prompts at once (the model has rows for that many) */
    int bs = hone_model_generate_batch(m, longest + max_new), tbs = (int)hone_config_int(cfg, "train.batch_size");
    bs = bs > tbs ? bs : tbs;
    size_t forder[MAX_METRICS], nfn = mc ? mc->nf : 0;
    if (nfn > MAX_METRICS) return hone_errf(err, HONE_EINVAL, "eval.metrics: more than %d functions", MAX_METRICS);
    int rc = 0;
    FILE *f = out_path ? fopen(out_path, "w") : NULL;
    if (out_path && !f) rc = hone_errf(err, HONE_EIO, "%s: cannot create: %s", out_path, strerror(errno));
    for (size_t k = 0; k < nfn; k++) {
        size_t j = k;
        while (j > 0 && strcmp(mc->fnames[forder[j - 1]], mc->fnames[k]) > 0) {
            forder[j] = forder[j - 1];
            j--;
        }
        forder[j] = k;
    }
    int32_t eos = hone_tokenizer_eos(tok);
    hone_gen_opts go = {.max_new_tokens = max_new, .temperature = 0, .top_p = 1, .eos = &eos, .neos = eos >= 0};
    const int32_t **prompts = malloc((size_t)bs * sizeof *prompts);
    int *lens = malloc((size_t)bs * sizeof *lens), *out_len = malloc((size_t)bs * sizeof *out_len);
    int32_t **out = calloc((size_t)bs, sizeof *out);
    size_t *which = malloc((size_t)bs * sizeof *which);
    if (!rc && (!prompts || !lens || !out_len || !out || !which)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (int k = 0; k < bs && !rc; k++)
        if (!(out[k] = malloc((size_t)max_new * sizeof **out))) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    size_t i = 0;
    long done = 0, undecoded = 0;
    hone_err why = {0};
    while (!rc && i < ev->n && done < limit) {
        int n = 0;
        for (; i < ev->n && n < bs && done < limit; i++) {
            const hone_example_rec *e = &ev->ex[i];
            int p = 0;
            while (p < e->n && e->labels[p] == -100) p++;
            if (p == 0 || p == e->n) continue;   /* nothing to prompt with, or nothing to predict */
            prompts[n] = e->ids;
            lens[n] = p;
            which[n++] = i;
            done++;
        }
        if (!n) break;
        rc = hone_model_generate(m, prompts, lens, n, &go, out, out_len, err);
        for (int k = 0; k < n && !rc; k++) {
            const hone_example_rec *e = &ev->ex[which[k]];
            int p = lens[k];
            char *prompt = decode_ids(tok, e->ids, p, &undecoded, &why);
            char *pred = decode_ids(tok, out[k], out_len[k], &undecoded, &why);
            /* the reference: the trained tokens */
            int32_t *ref_ids = malloc((size_t)e->n * sizeof *ref_ids);
            int nr = 0;
            for (int t = p; ref_ids && t < e->n; t++)
                if (e->labels[t] != -100) ref_ids[nr++] = e->ids[t];
            char *ref = decode_ids(tok, ref_ids, nr, &undecoded, &why);
            free(ref_ids);
            if (!prompt || !pred || !ref) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
            cJSON *row = rc ? NULL : cJSON_CreateObject();
            if (row) {
                cJSON_AddNumberToObject(row, "index", (double)which[k]);
                cJSON_AddStringToObject(row, "prompt", prompt);
                cJSON_AddStringToObject(row, "prediction", pred);
                cJSON_AddStringToObject(row, "reference", ref);
                double em = same_trimmed(pred, ref);
                cJSON_AddNumberToObject(row, "exact_match", em);
                rc = acc_add(acc, nacc, "exact_match", em, err);
                hone_metric_call call = {.prediction = pred, .prompt = prompt, .reference = ref,
                                         .record = recs ? recs[which[k]] : NULL, .index = (int)which[k]};
                if (!rc) rc = score(cfg, hooks, forder, nfn, &call, row, acc, nacc, err);
                char *line = cJSON_PrintUnformatted(row);
                if (line && f) fprintf(f, "%s\n", line);
                free(line);
                cJSON_Delete(row);
            }
            free(prompt);
            free(pred);
            free(ref);
        }
    }
    if (!rc && done == 0)
        hone_logf(hooks, HONE_LOG_INFO, "eval: no eval example has a prompt before its trained tokens; generation "
                  "metrics skipped");
    if (!rc && undecoded)
        hone_logf(hooks, HONE_LOG_WARN, "eval: %ld texts did not decode and were scored as \"\" (the first: %s)",
                  undecoded, why.msg);
    if (f) fclose(f);
    for (int k = 0; out && k < bs; k++) free(out[k]);
    free(out);
    free(prompts);
    free(lens);
    free(out_len);
    free(which);
    return rc;
}

/* ---- one evaluation in a run ------------------------------------------------------- */

void hook_failed(eval_ctx *c, int rc, const char *hook)
{
    if (!rc || c->hook_rc) return;
    c->hook_rc = rc;
    if (!c->hook_err.msg[0]) snprintf(c->hook_err.msg, sizeof c->hook_err.msg, "%s failed", hook);
}

int run_eval(eval_ctx *c, train_pos *pos, const char *tag, double ep, int *improved, hone_err *err)
{
    double eval_loss = NAN;
    *improved = 0;
    double t0 = hone_now();
    c->evals++;
    int rc = evaluate_loss(c->m, c->b, c->eval, c->bs, &eval_loss, err);
    double t1 = hone_now();
    char path[4300];
    snprintf(path, sizeof path, "%s/eval", c->run.dir);
    if (!rc && c->generate) rc = hone_mkdirs(path, err);
    snprintf(path, sizeof path, "%s/eval/%s.jsonl", c->run.dir, tag);
    if (!rc && c->generate)
        rc = generate_metrics(c->m, c->tok, c->eval, c->recs, c->cfg, c->hooks, path, c->acc, &c->nacc, err);
    if (rc) return rc;
    double t2 = hone_now();
    char shown[4096] = "";
    double score = eval_loss;
    int found = !strcmp(c->best_metric, "eval_loss");
    hone_metric metrics[1 + MAX_METRICS] = {{"eval_loss", eval_loss}};
    snprintf(c->computed, sizeof c->computed, "eval_loss");
    for (int k = 0; k < c->nacc; k++) {
        double mean = c->acc[k].n ? c->acc[k].sum / c->acc[k].n : NAN;
        metrics[1 + k] = (hone_metric){c->acc[k].name, mean};
        size_t sl = strlen(shown), cl = strlen(c->computed);
        snprintf(shown + sl, sizeof shown - sl, "  %.159s %.4g", c->acc[k].name, mean);
        snprintf(c->computed + cl, sizeof c->computed - cl, ", %.159s", c->acc[k].name);
        if (!strcmp(c->acc[k].name, c->best_metric)) {
            score = mean;
            found = 1;
        }
    }
    /* a metric function may return nothing for a whole evaluation (early on no prediction
     * parses): this evaluation is then no candidate for best, and the run goes on */
    pos->last_eval = found ? score : NAN;
    json_row jr = {0};
    row_key(&jr, "split");
    row_put(&jr, "\"eval\"", 6);
    row_num(&jr, "epoch", "%.4g", ep);
    row_num(&jr, "step", "%.0f", (double)pos->step);
    row_num(&jr, "eval_loss", "%.9g", eval_loss);
    for (int k = 0; k < c->nacc; k++) row_num(&jr, c->acc[k].name, "%.6g", metrics[1 + k].value);
    char *row = row_end(&jr);
    if (!row) return hone_errf(err, HONE_ENOMEM, "out of memory");
    fprintf(c->metrics, "%s\n", row);
    fflush(c->metrics);
    if (c->hooks && c->hooks->on_eval && !c->hook_rc) {
        hone_eval_info info = {.tag = tag, .step = (long)pos->step, .epoch = ep, .metrics = metrics,
                               .n = 1 + (size_t)c->nacc, .loss_s = t1 - t0, .generate_s = t2 - t1, .row = row};
        hook_failed(c, c->hooks->on_eval(c->hooks->ctx, &c->run, &info, &c->hook_err), "on_eval");
    }
    free(row);
    char label[64];
    snprintf(label, sizeof label, "%s", tag);
    char *dash = strchr(label, '-');
    if (dash) *dash = ' ';   /* "epoch 2", "step 50" */
    if (c->generate)
        hone_logf(c->hooks, HONE_LOG_INFO, "%s: eval_loss %.4f%s  (%.0f s loss, %.0f s generation)", label, eval_loss,
                  shown, t1 - t0, t2 - t1);
    else
        hone_logf(c->hooks, HONE_LOG_INFO, "%s: eval_loss %.4f%s  (%.0f s)", label, eval_loss, shown, t1 - t0);
    double signed_score = c->maximize ? -score : score;
    if (!found) {
        hone_logf(c->hooks, HONE_LOG_WARN, "%s: eval.best.metric = \"%s\" was not computed (this evaluation computed "
                  "%s); it is no candidate for best", label, c->best_metric, c->computed);
    } else if (signed_score < pos->best - c->threshold || !pos->best_name[0]) {
        pos->best = signed_score;
        pos->stale = 0;
        snprintf(pos->best_name, sizeof pos->best_name, "%s", tag);
        *improved = 1;
    } else {
        pos->stale++;
    }
    return 0;
}
