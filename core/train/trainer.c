/* trainer.c — one run: data, model, optimizer, schedule, loop, evaluation, checkpoints.
 *
 * The loss of an optimizer step is the summed cross-entropy over the accumulation window
 * divided by the window's count of predicted labels (not -100, position 0 of each row left
 * out, as transformers 5's Trainer counts num_items_in_batch on labels[..., 1:]), so
 * grad_accum k x batch b gives the gradients of batch k*b.
 */
#include "trainer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "clip.h"
#include "report.h"
#include "optimize.h"
#include "dataset.h"
#include "order.h"
#include "prepare.h"
#include "err.h"
#include "model.h"
#include "ops.h"
#include "safetensors.h"
#include "schedule.h"
#include "lua_hone.h"
#include "tokenizer.h"
#include "util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

typedef struct batcher {
    int32_t *ids, *labels, *targets;   /* [B, T] */
    int32_t *start;                    /* [B, T] document starts of packed rows */
    int packed;                        /* the last batch holds packed rows */
    int B, T;
    int32_t pad;
    int pad_to;                        /* > 0: pad every batch to this length */
} batcher;

/* Right-pads examples order[first .. first + n) to the longest; returns tokens used. Packed
 * rows bring their document starts; padding is a document of its own. */
static long make_batch(batcher *b, const hone_dataset *d, const size_t *order, size_t first, int n)
{
    int T = b->pad_to > 0 ? b->pad_to : 1;
    for (int i = 0; i < n; i++)
        if (d->ex[order[first + i]].n > T) T = d->ex[order[first + i]].n;
    long tokens = 0;
    b->packed = 0;
    for (int i = 0; i < n; i++) {
        const hone_example_rec *e = &d->ex[order[first + i]];
        b->packed |= e->start != NULL;
        for (int t = 0; t < T; t++) {
            b->ids[(size_t)i * T + t] = t < e->n ? e->ids[t] : b->pad;
            b->labels[(size_t)i * T + t] = t < e->n ? e->labels[t] : -100;
            b->start[(size_t)i * T + t] = t < e->n ? (e->start ? e->start[t] : 0) : e->n;
        }
        tokens += e->n;
    }
    b->B = n;
    b->T = T;
    hone_shift_labels(b->targets, b->labels, n, T);
    return tokens;
}

/* the labels the window predicts: position 0 of a row is never a target after the shift */
static long count_labels(const hone_dataset *d, const size_t *order, size_t first, size_t n)
{
    long c = 0;
    for (size_t i = 0; i < n; i++) {
        const hone_example_rec *e = &d->ex[order[first + i]];
        for (int t = 1; t < e->n; t++) c += e->labels[t] != -100;
    }
    return c;
}

/* token-weighted mean cross-entropy over the eval set */
static int evaluate(hone_model *m, batcher *b, const hone_dataset *ev, int bs, double *loss, hone_err *err)
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

static int write_json_file(const char *path, cJSON *j, hone_err *err)
{
    char *text = cJSON_Print(j);
    if (!text) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int rc = hone_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return unlink(path);
    struct dirent *e;
    char sub[4400];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
    closedir(d);
    return rmdir(path);
}

/* checkpoints/<name>/: written under a temp name, fsynced and renamed, so a crash never
 * leaves a half checkpoint behind; holds the adapter (or the weights), trainer_state.json
 * and state.zst (train_pos, then the optimizer's saved state) */
static int save_checkpoint(hone_model *m, const hone_config *cfg, const char *run_dir, const char *name,
                           cJSON *state, const hone_membuf *blob, hone_err *err)
{
    char dir[4096], tmp[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/checkpoints/%s", run_dir, name);
    snprintf(tmp, sizeof tmp, "%s/checkpoints/.tmp-%s", run_dir, name);
    int rc = hone_mkdirs(tmp, err);
    const char *base = hone_config_str(cfg, "model.path");
    if (!rc && hone_config_cval(cfg, "lora")->enabled) {
        rc = hone_model_save_adapter(m, tmp, base, err);
    } else if (!rc) {
        /* full fine-tuning: the trained weights under their HF names */
        size_t n;
        const hone_tensor_info *t = hone_model_tensors(m, &n);
        float *p = hone_model_params(m, NULL);
        hone_st_out *out = calloc(n, sizeof *out);
        if (!out) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        for (size_t i = 0; i < n && !rc; i++)
            out[i] = (hone_st_out){t[i].name, HONE_DT_F32, t[i].cols > 1 ? 2 : 1,
                                   {(int64_t)t[i].rows, (int64_t)t[i].cols}, p + t[i].offset, NULL, NULL, NULL};
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        if (!rc) rc = hone_st_write(path, out, n, err);
        free(out);
        char *text = NULL;
        size_t len;
        snprintf(path, sizeof path, "%s/config.json", base);
        if (!rc) rc = hone_read_file(path, &text, &len, err);
        snprintf(path, sizeof path, "%s/config.json", tmp);
        if (!rc) rc = hone_write_file(path, text, len, err);
        free(text);
    }
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if (!rc) rc = write_json_file(path, state, err);
    if (!rc) {   /* state.zst last: its presence marks a checkpoint resume can use */
        size_t bound = ZSTD_compressBound(blob->len);
        void *z = malloc(bound);
        size_t zn = z ? ZSTD_compress(z, bound, blob->data, blob->len, 3) : 0;
        if (!z || ZSTD_isError(zn)) rc = hone_errf(err, HONE_ENOMEM, "cannot compress the training state");
        snprintf(path, sizeof path, "%s/state.zst", tmp);
        if (!rc) rc = hone_write_file(path, z, zn, err);
        free(z);
    }
    if (!rc && hone_is_dir(dir)) remove_tree(dir);   /* an older copy of the same point */
    if (!rc && rename(tmp, dir) != 0)
        rc = hone_errf(err, HONE_EIO, "%s: cannot move the checkpoint into place: %s", dir, strerror(errno));
    if (!rc) hone_fsync_dir_of(dir);   /* the rename itself on disk */
    return rc;
}

/* ---- metrics.jsonl rows ------------------------------------------------------------ */

/* One JSON object on one line, in the layout metrics.jsonl has always had ("key": value,
 * separated by ", "), in a growing membuf: names are escaped, non-finite numbers null. */
typedef struct json_row {
    hone_membuf mb;
    int rc;   /* out of memory: the row is lost, the caller says so */
} json_row;

static void row_put(json_row *r, const char *text, size_t len)
{
    hone_err ignore = {0};
    hone_writer w = hone_membuf_writer(&r->mb);
    if (!r->rc) r->rc = w.write(w.ctx, text, len, &ignore);
}

static void row_key(json_row *r, const char *name)
{
    row_put(r, r->mb.len ? ", \"" : "{\"", r->mb.len ? 3 : 2);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') snprintf(esc, sizeof esc, "\\%c", *c);
        else if (*c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *c);
        else esc[0] = (char)*c, esc[1] = 0;
        row_put(r, esc, strlen(esc));
    }
    row_put(r, "\": ", 3);
}

static void row_num(json_row *r, const char *name, const char *fmt, double v)
{
    char num[64];
    row_key(r, name);
    if (isfinite(v)) snprintf(num, sizeof num, fmt, v);
    else snprintf(num, sizeof num, "null");
    row_put(r, num, strlen(num));
}

/* the finished row (NUL-terminated), or NULL out of memory; the caller frees it */
static char *row_end(json_row *r)
{
    row_put(r, "}", 2);   /* and its NUL */
    if (r->rc) free(r->mb.data);
    return r->rc ? NULL : (char *)r->mb.data;
}

/* ---- generation metrics ------------------------------------------------------------ */

typedef struct metric_acc {
    char name[2 * HONE_METRIC_NAME];   /* "function.name" */
    double sum;
    long n;
} metric_acc;

enum { MAX_METRICS = 64 };

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
 * message kept in why (for the warning gen_eval prints) */
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

/* Greedy generation from each eval example's prompt (its tokens before the first trained
 * one: the record's prompt, or the text through the response template), decoded and
 * scored by exact_match and the experiment's eval.metrics; the means go to acc, every
 * prediction to eval/<tag>.jsonl. */
/* what the metric functions see of each eval example besides its text: its own record
 * (ex.completion, ex.category, ...), read once per run; NULL without metric functions */
static int eval_records(const hone_config *cfg, const hone_dataset *ev, char ***recs, hone_err *err)
{
    *recs = NULL;
    const hone_cval *mc = hone_config_cval(cfg, "eval.metrics");
    if (!mc || !mc->nf || !ev->n) return 0;
    const char *src = hone_config_is_set(cfg, "data.eval") ? hone_config_str(cfg, "data.eval") : hone_config_str(cfg, "data.train");
    int rc = hone_dataset_records(ev, src, recs, err);
    return rc ? hone_err_prefix(err, "eval.metrics: ") : 0;
}

static void free_records(char **recs, size_t n)
{
    for (size_t r = 0; recs && r < n; r++) free(recs[r]);
    free(recs);
}

/* recs: eval_records of ev */
static int gen_eval(hone_model *m, hone_tokenizer *tok, const hone_dataset *ev, char *const *recs,
                    const hone_config *cfg, const char *out_path, metric_acc *acc, int *nacc, hone_err *err)
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
    /* the metric functions by name: a Lua table's order changes from state to state */
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
            }
            for (size_t oi = 0; row && !rc && oi < nfn; oi++) {
                size_t fi = forder[oi];
                hone_lua_fn fn = {cfg->lua, mc->frefs[fi]};
                double vals[MAX_METRICS];
                char names[MAX_METRICS][HONE_METRIC_NAME];
                int nv = 0;
                if (!cfg->lua) break;
                rc = hone_lua_metric(&fn, pred, prompt, ref, (int)which[k], recs ? recs[which[k]] : NULL, vals, names,
                                     MAX_METRICS, &nv, err);
                if (rc) hone_err_prefix(err, "eval.metrics.%s (eval example %zu): ", mc->fnames[fi], which[k] + 1);
                for (int v = 0; v < nv && !rc; v++) {
                    char full[2 * HONE_METRIC_NAME];
                    snprintf(full, sizeof full, "%.*s%s%.*s", HONE_METRIC_NAME - 1, mc->fnames[fi],
                             names[v][0] ? "." : "", HONE_METRIC_NAME - 1, names[v]);
                    cJSON_AddNumberToObject(row, full, vals[v]);
                    rc = acc_add(acc, nacc, full, vals[v], err);
                }
            }
            if (row) {
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
        printf("eval: no eval example has a prompt before its trained tokens; generation metrics skipped\n");
    if (!rc && undecoded)
        printf("warning: eval: %ld texts did not decode and were scored as \"\" (the first: %s)\n", undecoded, why.msg);
    if (f) fclose(f);
    for (int k = 0; out && k < bs; k++) free(out[k]);
    free(out);
    free(prompts);
    free(lens);
    free(out_len);
    free(which);
    return rc;
}

/* The model options of an experiment, for a model with room for batch x seq tokens;
 * training adds the recipe's dropout, checkpointing and NEFTune (evaluation runs without). */
static hone_model_opts model_opts(const hone_config *cfg, int batch, int seq, int training);

static unsigned lora_targets(const hone_cval *tm)
{
    unsigned t = 0;
    for (size_t i = 0; i < tm->nstrs; i++) t |= hone_target_mask(tm->strs[i]);
    return t;
}

/* ---- where a run stands: saved in every checkpoint's state.zst ---------------------- */

typedef struct train_pos {
    int64_t step;            /* optimizer steps done */
    int64_t epoch, window;   /* the next window to run: epoch index and its first micro-batch */
    int64_t tokens, nonfinite, best_epoch, stale;
    char best_name[64];      /* the best checkpoint so far ("" before the first evaluation) */
    double best, last_loss, last_eval;
    hone_rng rng[2];         /* dropout, NEFTune */
    double wall_s;           /* seconds of training so far, over every process that resumed the run */
} train_pos;

/* ---- one evaluation: loss, generation metrics, the metrics row, best tracking ---------- */

typedef struct eval_ctx {
    hone_model *m;
    batcher *b;
    const hone_dataset *eval;
    int bs, generate, maximize;
    hone_tokenizer *tok;
    const hone_config *cfg;
    const char *run_dir, *best_metric;
    FILE *metrics;
    double threshold;
    metric_acc *acc;
    int *nacc;
    hone_lua_fn on_log;       /* ref HONE_NOREF: none */
    const char *run_name;
    int hook_rc;              /* a hook failed: the caller checkpoints, then stops with hook_err */
    hone_err hook_err;
    char **recs;              /* eval_records of eval */
    char computed[1024];      /* the metrics the last evaluation computed, for messages */
    long evals;               /* evaluations this process ran */
} eval_ctx;

/* calls a hook with a metrics row; a failure is kept for the caller, which checkpoints first */
static void call_hook(const hone_lua_fn *fn, const char *hook, const char *run_name, const char *run_dir,
                      const char *row, int *stop, int *hook_rc, hone_err *hook_err)
{
    if (fn->ref == HONE_NOREF || !fn->hl || *hook_rc) return;
    *hook_rc = hone_lua_hook(fn, run_name, run_dir, row, stop, hook_err);
    if (*hook_rc) hone_err_prefix(hook_err, "hooks.%s: ", hook);
}

/* tag names the checkpoint this evaluation belongs to (epoch-N or step-N) */
static int run_eval(eval_ctx *c, train_pos *pos, const char *tag, double ep, int *improved, hone_err *err)
{
    double eval_loss = NAN;
    *improved = 0;
    double t0 = now();
    c->evals++;
    int rc = evaluate(c->m, c->b, c->eval, c->bs, &eval_loss, err);
    double t1 = now();
    char path[4300];
    snprintf(path, sizeof path, "%s/eval", c->run_dir);
    if (!rc && c->generate) rc = hone_mkdirs(path, err);
    snprintf(path, sizeof path, "%s/eval/%s.jsonl", c->run_dir, tag);
    if (!rc && c->generate) rc = gen_eval(c->m, c->tok, c->eval, c->recs, c->cfg, path, c->acc, c->nacc, err);
    if (rc) return rc;
    double t2 = now();
    char shown[4096] = "";
    double score = eval_loss;
    int found = !strcmp(c->best_metric, "eval_loss");
    snprintf(c->computed, sizeof c->computed, "eval_loss");
    for (int k = 0; k < *c->nacc; k++) {
        double mean = c->acc[k].n ? c->acc[k].sum / c->acc[k].n : NAN;
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
    for (int k = 0; k < *c->nacc; k++)
        row_num(&jr, c->acc[k].name, "%.6g", c->acc[k].n ? c->acc[k].sum / c->acc[k].n : NAN);
    char *row = row_end(&jr);
    if (!row) return hone_errf(err, HONE_ENOMEM, "out of memory");
    fprintf(c->metrics, "%s\n", row);
    fflush(c->metrics);
    call_hook(&c->on_log, "on_log", c->run_name, c->run_dir, row, NULL, &c->hook_rc, &c->hook_err);
    free(row);
    char label[64];
    snprintf(label, sizeof label, "%s", tag);
    char *dash = strchr(label, '-');
    if (dash) *dash = ' ';   /* "epoch 2", "step 50" */
    if (isatty(STDOUT_FILENO)) fputs("\r\033[K", stdout);   /* over the progress bar */
    if (c->generate)
        printf("%s: eval_loss %.4f%s  (%.0f s loss, %.0f s generation)\n", label, eval_loss, shown, t1 - t0, t2 - t1);
    else
        printf("%s: eval_loss %.4f%s  (%.0f s)\n", label, eval_loss, shown, t1 - t0);
    double signed_score = c->maximize ? -score : score;
    if (!found) {
        printf("warning: %s: eval.best.metric = \"%s\" was not computed (this evaluation computed %s); it is no "
               "candidate for best\n", label, c->best_metric, c->computed);
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


/* HONESTA1 states (before wall_s) still load, with no time carried over */
static const char state_magic[8] = "HONESTA2", state_magic_v1[8] = "HONESTA1";

static int state_blob(hone_membuf *mb, const train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, hone_err *err)
{
    mb->len = 0;
    hone_writer w = hone_membuf_writer(mb);
    int rc = w.write(w.ctx, state_magic, 8, err);
    if (!rc) rc = w.write(w.ctx, pos, sizeof *pos, err);
    if (!rc) rc = ovt->save(ostate, &w, err);
    return rc;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested) _exit(130);   /* the second: at once */
    stop_requested = 1;
}

/* the global_step in checkpoints_dir/name/trainer_state.json, or -1 */
static long checkpoint_step(const char *checkpoints_dir, const char *name)
{
    char path[4600], *text = NULL;
    hone_err ignore = {0};
    snprintf(path, sizeof path, "%s/%.255s/trainer_state.json", checkpoints_dir, name);
    if (hone_read_file(path, &text, NULL, &ignore)) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *gs = cJSON_GetObjectItem(j, "global_step");
    long step = cJSON_IsNumber(gs) && gs->valuedouble >= 0 ? (long)gs->valuedouble : -1;
    cJSON_Delete(j);
    return step;
}

/* the newest checkpoint of run_dir that has its state (complete ones only: a half write
 * never got renamed), by global_step */
static int newest_checkpoint(const char *run_dir, char *out, size_t n, hone_err *err)
{
    char dir[4200], path[4600];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/state.zst", dir, e->d_name);
        if (!hone_is_file(path)) continue;
        long step = checkpoint_step(dir, e->d_name);
        if (step > best) {
            best = step;
            snprintf(out, n, "%s/%s", dir, e->d_name);
        }
    }
    if (d) closedir(d);
    if (best < 0) return hone_errf(err, HONE_EINVAL, "%s: no complete checkpoint to resume from", run_dir);
    return 0;
}

static int read_state(const char *ckpt, train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/state.zst", ckpt);
    char *z = NULL;
    size_t zn = 0;
    int rc = hone_read_file(path, &z, &zn, err);
    if (rc) return rc;
    unsigned long long raw = ZSTD_getFrameContentSize(z, zn);
    hone_membuf mb = {0};
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > ((size_t)1 << 40) ||
        !(mb.data = malloc(raw ? (size_t)raw : 1))) {
        free(z);
        return hone_errf(err, HONE_EINVAL, "%s: not a hone training state", path);
    }
    size_t got = ZSTD_decompress(mb.data, (size_t)raw, z, zn);
    free(z);
    mb.len = ZSTD_isError(got) ? 0 : got;
    hone_reader r = hone_membuf_reader(&mb);
    char magic[8];
    int v1 = 0;
    if (ZSTD_isError(got) || got != raw || r.read(r.ctx, magic, 8, err) ||
        (memcmp(magic, state_magic, 8) && !(v1 = !memcmp(magic, state_magic_v1, 8))) ||
        r.read(r.ctx, pos, v1 ? offsetof(train_pos, wall_s) : sizeof *pos, err))
        rc = hone_errf(err, HONE_EINVAL, "%s: not a hone training state (or damaged)", path);
    if (v1) pos->wall_s = NAN;   /* unknown: the run's figures then cover this process only */
    if (!rc && (rc = ovt->load(ostate, &r, err))) hone_err_prefix(err, "%s: optimizer state: ", path);
    free(mb.data);
    return rc;
}

/* metrics.jsonl keeps what happened up to the checkpoint; the rest is about to be redone */
static void truncate_metrics(const char *path, long step)
{
    char *text = NULL;
    size_t len = 0;
    hone_err err = {0};
    if (hone_read_file(path, &text, &len, &err)) {
        printf("warning: %s; its rows after step %ld stay and will appear twice\n", err.msg, step);
        return;
    }
    char *out = malloc(len + 1);
    size_t at = 0;
    for (char *line = text, *nl; out && line < text + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) nl = text + len;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
        const cJSON *st = cJSON_GetObjectItem(j, "step");
        if (j && (!cJSON_IsNumber(st) || st->valuedouble <= step)) {
            memcpy(out + at, line, (size_t)(nl - line));
            at += (size_t)(nl - line);
            out[at++] = '\n';
        }
        cJSON_Delete(j);
    }
    if (!out || hone_write_file(path, out, at, &err))
        printf("warning: %s: its rows after step %ld could not be dropped (%s); they will appear twice\n", path, step,
               out ? err.msg : "out of memory");
    free(out);
    free(text);
}

/* save.keep: the newest `keep` checkpoints stay, and the best */
static void prune_checkpoints(const char *run_dir, long keep, const char *best_name)
{
    char dir[4200], path[4600];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct { char name[256]; long step; } list[1024];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        if (e->d_name[0] == '.') continue;
        long step = checkpoint_step(dir, e->d_name);
        if (step >= 0) {
            snprintf(list[n].name, sizeof list[n].name, "%s", e->d_name);
            list[n++].step = step;
        }
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int k = 0; k < n; k++) newer += list[k].step > list[i].step;
        if (newer >= keep && !(best_name && !strcmp(list[i].name, best_name))) {
            snprintf(path, sizeof path, "%s/%.255s", dir, list[i].name);
            if (remove_tree(path) != 0)
                printf("warning: save.keep: %s could not be removed: %s\n", path, strerror(errno));
        }
    }
}

/* run_dir/best -> checkpoints/<name>, replaced atomically */
static void point_best(const char *run_dir, const char *name)
{
    char link[4200], tmp[4300], target[400];
    snprintf(link, sizeof link, "%s/best", run_dir);
    snprintf(tmp, sizeof tmp, "%s/.best-tmp", run_dir);
    snprintf(target, sizeof target, "checkpoints/%s", name);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        printf("warning: %s could not be pointed at %s: %s (the checkpoint itself is written)\n", link, target,
               strerror(errno));
        unlink(tmp);
    }
}

int hone_train_check(const hone_config *cfg, hone_err *err)
{
    if (!strcmp(hone_config_str(cfg, "device"), "cuda"))
        return hone_errf(err, HONE_EUNSUPPORTED, "device = \"cuda\": the CUDA backend is not built yet; use \"cpu\"");
    if (!strcmp(hone_config_str(cfg, "model.compute_dtype"), "bf16"))
        return hone_errf(err, HONE_EUNSUPPORTED, "model.compute_dtype = \"bf16\": the CPU computes in fp32");
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

int hone_train(const hone_config *cfg, const char *run_dir, int resume, int *interrupted, hone_err *err)
{
    const char *mdir = hone_config_str(cfg, "model.path");
    int rc = hone_train_check(cfg, err);
    if (rc) return rc;
    long threads = (long)hone_config_int(cfg, "threads");
    op_set_threads(threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN));

    hone_prepared prep;
    rc = hone_data_prepare(&prep, cfg, err);
    if (rc) return rc;
    hone_model_config mc = prep.mc;
    hone_dataset train = prep.train, eval = prep.eval;
    int32_t pad = prep.pad;
    int max_len = (int)hone_config_int(cfg, "data.max_seq_length");
    uint64_t seed = (uint64_t)hone_config_int(cfg, "seed");
    hone_tokenizer *tok = prep.tok;
    hone_data_print_summary(&prep, max_len);   /* before packing replaces the examples by rows */
    double pack_eff = 0;
    size_t docs = train.n;
    if (hone_config_bool(cfg, "data.packing") && (rc = hone_dataset_pack(&train, max_len, &pack_eff, err))) {
        hone_dataset_free(&train);
        hone_dataset_free(&eval);
        hone_tokenizer_free(tok);
        return rc;
    }
    int longest = 1;
    for (size_t i = 0; i < train.n; i++) longest = train.ex[i].n > longest ? train.ex[i].n : longest;
    for (size_t i = 0; i < eval.n; i++) longest = eval.ex[i].n > longest ? eval.ex[i].n : longest;
    if (!strcmp(hone_config_str(cfg, "data.padding"), "max_length") && max_len > longest) longest = max_len;
    int bs = (int)hone_config_int(cfg, "train.batch_size"), ga = (int)hone_config_int(cfg, "train.grad_accum");

    const hone_cval *q = hone_config_cval(cfg, "model.quantizer");
    int lora = hone_config_cval(cfg, "lora")->enabled;
    hone_model_opts mo = model_opts(cfg, bs, longest, 1);
    hone_model *m = NULL;
    char ckpt[4600] = "";
    if (resume && (rc = newest_checkpoint(run_dir, ckpt, sizeof ckpt, err))) {
        hone_dataset_free(&train);
        hone_dataset_free(&eval);
        hone_tokenizer_free(tok);
        return rc;
    }
    hone_plan plan;
    hone_plan_steps(&plan, (long)train.n, bs, ga, hone_config_num(cfg, "train.epochs"),
                    hone_config_is_set(cfg, "train.max_steps") ? (long)hone_config_int(cfg, "train.max_steps") : 0,
                    hone_config_num(cfg, "train.warmup_ratio"), (long)hone_config_int(cfg, "train.warmup_steps"));
    size_t *order = malloc((train.n ? train.n : 1) * sizeof *order), *given = NULL;
    if (!rc && hone_config_is_set(cfg, "data.order_file")) {
        /* the order of every epoch from outside, neither shuffled nor grouped; read
         * before the model, so a bad file fails at once */
        const char *of = hone_config_str(cfg, "data.order_file");
        if (!(given = malloc((size_t)plan.epochs * (train.n ? train.n : 1) * sizeof *given)))
            rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        else if ((rc = hone_order_load(of, &train, plan.epochs, given, err)))
            hone_err_prefix(err, "data.order_file: ");
        else
            printf("data: each epoch's order from %s\n", of);
    }
    if (lora && mo.targets == 0) rc = hone_errf(err, HONE_EINVAL, "lora.target_modules: no module to adapt");
    if (!rc) rc = hone_model_load(&m, resume && !lora ? ckpt : mdir, &mo, err);
    if (!rc && resume && lora) {
        rc = hone_model_load_adapter(m, ckpt, err);
        if (rc) hone_err_prefix(err, "resume: ");
    } else if (!rc && lora && hone_config_is_set(cfg, "lora.init_adapter")) {
        rc = hone_model_load_adapter(m, hone_config_str(cfg, "lora.init_adapter"), err);
        if (rc) hone_err_prefix(err, "lora.init_adapter: ");
    }
    size_t nparams = 0, ntensors = 0;
    float *params = m ? hone_model_params(m, &nparams) : NULL, *grads = m ? hone_model_grads(m, NULL) : NULL;
    const hone_tensor_info *tinfo = m ? hone_model_tensors(m, &ntensors) : NULL;

    const hone_cval *oc = hone_config_cval(cfg, "train.optimizer"), *sc = hone_config_cval(cfg, "train.scheduler");
    const hone_optimizer_vt *ovt = oc->feature->vtable;
    void *ostate = NULL;
    if (!rc) {
        rc = ovt->create(&hone_host_table, oc->opts, tinfo, ntensors, nparams, &ostate, err);
        if (rc) hone_err_prefix(err, "train.optimizer %s: ", oc->feature->info->name);
    }
    hone_sched_ctx sctx = {plan.total_steps, plan.warmup_steps, hone_config_num(cfg, "train.lr")};
    if (!rc) rc = hone_schedule_check(sc->feature, sc->opts, &sctx, err);

    batcher b = {0};
    b.pad = pad;
    if (!strcmp(hone_config_str(cfg, "data.padding"), "max_length")) b.pad_to = max_len;
    b.ids = malloc((size_t)bs * longest * sizeof(int32_t));
    b.labels = malloc((size_t)bs * longest * sizeof(int32_t));
    b.start = malloc((size_t)bs * longest * sizeof(int32_t));
    b.targets = malloc((size_t)bs * longest * sizeof(int32_t));
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *metrics = rc ? NULL : fopen(path, "a");
    if (!rc && (!b.ids || !b.labels || !b.targets || !b.start || !order)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    if (!rc && !metrics) rc = hone_errf(err, HONE_EIO, "%s: cannot open: %s", path, strerror(errno));

    if (!rc) {
        size_t sb = ovt->state_bytes ? ovt->state_bytes(ostate) : 0;
        printf("model %s: %d layers, hidden %d, vocab %d; %s, %zu trainable parameters\n", mdir, mc.layers, mc.hidden,
               mc.vocab, lora ? "LoRA" : "full fine-tuning", nparams);
        if (lora) {
            size_t pb, fb, qb, ab, nw = 0;
            hone_model_memory(m, &pb, &fb, &qb, &ab);
            long long per = (long long)mc.hidden * mc.heads * mc.head_dim * 2 +
                            (long long)mc.hidden * mc.kv_heads * mc.head_dim * 2 + 3LL * mc.hidden * mc.inter;
            nw = (size_t)(per * mc.layers);
            printf("base: %s, %.1f MB for %zu linear weights (%.3f bits per parameter); embeddings, norms and lm_head "
                   "in fp32: %.1f MB\n", q->feature->info->name, qb / 1e6, nw, nw ? 8.0 * qb / nw : 0.0, fb / 1e6);
        }
        size_t with, without;
        hone_model_activation_bytes(m, &with, &without);
        printf("activations: %.1f MB with gradient checkpointing, %.1f MB without (%s)\n", with / 1e6, without / 1e6,
               mo.gradient_checkpointing ? "on" : "off");
        printf("optimizer %s: %zu bytes of state (%.2f per trainable parameter)\n", oc->feature->info->name, sb,
               nparams ? (double)sb / nparams : 0.0);
        if (hone_config_bool(cfg, "data.packing"))
            printf("packing: %zu examples into %zu rows of %d tokens (%.1f%% filled; attention stays inside documents)\n",
                   docs, train.n, max_len, 100 * pack_eff);
        printf("plan: %ld optimizer steps, %ld warmup\n", plan.total_steps, plan.warmup_steps);
    }
    train_pos pos = {.best = INFINITY, .last_loss = NAN, .last_eval = NAN};
    hone_membuf blob = {0};
    if (!rc && resume) {
        rc = read_state(ckpt, &pos, ovt, ostate, err);
        if (!rc) {
            hone_model_set_rng(m, pos.rng);
            truncate_metrics(path, (long)pos.step);
            printf("resuming from %s: step %lld, epoch %lld%s\n", ckpt, (long long)pos.step, (long long)pos.epoch + 1,
                   pos.window ? " (mid-epoch)" : "");
        }
    }
    if (metrics) fclose(metrics);
    metrics = rc ? NULL : fopen(path, "a");
    if (!rc && !metrics) rc = hone_errf(err, HONE_EIO, "%s: cannot open: %s", path, strerror(errno));
    long log_every = (long)hone_config_int(cfg, "train.log_every"), tokens_log = (long)pos.tokens, steps_log = 0;
    long save_every = (long)hone_config_cval(cfg, "save.every")->every_steps;
    long keep = hone_config_is_set(cfg, "save.keep") ? (long)hone_config_int(cfg, "save.keep") : 0;
    long max_nonfinite = (long)hone_config_int(cfg, "train.nonfinite_limit");
    int maximize = !strcmp(hone_config_str(cfg, "eval.best.mode"), "max");
    const hone_cval *es = hone_config_cval(cfg, "eval.early_stopping");
    long patience = es && es->enabled ? (long)hone_config_int(cfg, "eval.early_stopping.patience") : 0;
    double threshold = es && es->enabled ? hone_config_num(cfg, "eval.early_stopping.threshold") : 0;
    const char *best_metric = hone_config_str(cfg, "eval.best.metric");
    const hone_cval *mfns = hone_config_cval(cfg, "eval.metrics");
    int generate = tok && eval.n && (hone_config_cval(cfg, "eval.generate")->given || (mfns && mfns->nf));
    if (!rc && !tok && (hone_config_cval(cfg, "eval.generate")->given || (mfns && mfns->nf)))
        rc = hone_errf(err, HONE_EINVAL, "eval.metrics / eval.generate need a tokenizer to decode predictions "
                       "(set model.tokenizer)");
    if (!rc && strcmp(best_metric, "eval_loss") && !generate)
        rc = hone_errf(err, HONE_EINVAL, "eval.best.metric = \"%s\" is not computed: only eval_loss is, without "
                       "eval.metrics or eval.generate", best_metric);
    metric_acc acc[MAX_METRICS];
    int nacc = 0;
    double max_norm = hone_config_num(cfg, "train.max_grad_norm"), loss_log = 0, t0 = now(), tlog = t0;
    double wall0 = pos.wall_s, tokens0 = isnan(wall0) ? (double)pos.tokens : 0;
    if (isnan(wall0)) wall0 = 0;
    long step0 = (long)pos.step, epochs_done = (long)pos.epoch, stopped_early = 0;
    long eval_every = (long)hone_config_cval(cfg, "eval.every")->every_steps;
    int tty = isatty(STDOUT_FILENO);
    const char *slash = strrchr(run_dir, '/');
    char **recs = NULL;
    if (!rc && generate) rc = eval_records(cfg, &eval, &recs, err);
    eval_ctx ectx = {.m = m, .b = &b, .eval = &eval, .recs = recs, .bs = bs, .generate = generate, .maximize = maximize,
                     .tok = tok, .cfg = cfg, .run_dir = run_dir, .best_metric = best_metric, .metrics = metrics,
                     .threshold = threshold, .acc = acc, .nacc = &nacc,
                     .on_log = {cfg->lua, hone_config_cval(cfg, "hooks.on_log")->ref},
                     .run_name = slash ? slash + 1 : run_dir};
    hone_lua_fn on_epoch_end = {cfg->lua, hone_config_cval(cfg, "hooks.on_epoch_end")->ref};
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    size_t nmb = (size_t)plan.micro_batches;
    for (long epoch = (long)pos.epoch; !rc && epoch < plan.epochs && pos.step < plan.total_steps && !stopped_early;
         epoch++) {
        if (given) memcpy(order, given + (size_t)epoch * train.n, train.n * sizeof *order);
        else if (hone_config_bool(cfg, "data.shuffle"))
            hone_permutation(order, train.n, seed + 1000003ull * (uint64_t)(epoch + 1));
        else
            for (size_t i = 0; i < train.n; i++) order[i] = i;
        if (hone_config_bool(cfg, "data.group_by_length") &&
            (rc = hone_group_by_length(order, train.n, &train, (size_t)bs * (size_t)ga, err)))
            break;
        size_t w_start = epoch == pos.epoch ? (size_t)pos.window : 0;
        for (size_t w0 = w_start; w0 < nmb && !rc && pos.step < plan.total_steps; w0 += (size_t)ga) {
            size_t wn = nmb - w0 < (size_t)ga ? nmb - w0 : (size_t)ga;   /* micro-batches in this window */
            size_t first = w0 * bs, nex = train.n - first < wn * bs ? train.n - first : wn * bs;
            long count = count_labels(&train, order, first, nex);
            double wsum = 0;
            for (size_t k = 0; k < wn && !rc; k++) {
                size_t f = first + k * bs;
                int n = train.n - f < (size_t)bs ? (int)(train.n - f) : bs;
                pos.tokens += make_batch(&b, &train, order, f, n);
                double s = 0;
                long c;
                rc = hone_model_set_documents(m, b.packed ? b.start : NULL, b.B, b.T, err);
                if (!rc) rc = hone_model_forward(m, b.ids, b.targets, b.B, b.T, &s, &c, err);
                if (!rc) rc = hone_model_backward(m, count ? 1.0f / (float)count : 0.0f, err);
                wsum += s;
            }
            if (rc) break;
            double norm = hone_clip_grad_norm(grads, tinfo, ntensors, max_norm);
            double lr = hone_schedule_lr(sc->feature, sc->opts, &sctx, pos.step);
            double step_loss = count ? wsum / count : 0;
            if (!isfinite(step_loss) || !isfinite(norm)) {
                /* skip the update; the schedule moves on as if it had been taken */
                pos.nonfinite++;
                printf("step %lld: %s loss or gradient (%s); update skipped (%lld of at most %ld)\n",
                       (long long)pos.step + 1, "non-finite", !isfinite(step_loss) ? "loss" : "grad_norm",
                       (long long)pos.nonfinite, max_nonfinite);
                if (pos.nonfinite >= max_nonfinite) {
                    rc = hone_errf(err, HONE_EINVAL, "%lld steps had a NaN or Inf loss or gradient; stopped (the last "
                                   "good checkpoint is kept; lower train.lr or check the data)", (long long)pos.nonfinite);
                    break;
                }
            } else {
                rc = ovt->step(ostate, params, grads, lr, pos.step + 1, err);
                if (rc) {
                    hone_err_prefix(err, "optimizer %s: step %lld: ", oc->feature->info->name, (long long)pos.step + 1);
                    break;
                }
                pos.last_loss = step_loss;
                loss_log += step_loss;
                steps_log++;
            }
            hone_model_zero_grad(m);
            pos.step++;
            pos.epoch = epoch;
            pos.window = (int64_t)(w0 + wn);
            double ep = (double)epoch + (double)(w0 + wn) / (double)nmb;
            if ((pos.step % log_every == 0 || pos.step == plan.total_steps) && steps_log) {
                double t = now(), tps = (double)(pos.tokens - tokens_log) / (t - tlog);
                double eta = (t - t0) / (double)(pos.step - step0) * (double)(plan.total_steps - pos.step);
                json_row jr = {0};
                row_num(&jr, "step", "%.0f", (double)pos.step);
                row_num(&jr, "epoch", "%.4f", ep);
                row_num(&jr, "loss", "%.9g", loss_log / steps_log);
                row_num(&jr, "lr", "%.6g", lr);
                row_num(&jr, "grad_norm", "%.9g", norm);
                row_num(&jr, "tokens_per_s", "%.1f", tps);
                row_num(&jr, "peak_rss_mb", "%.0f", peak_rss_mb());
                char *row = row_end(&jr);
                if (!row) {
                    rc = hone_errf(err, HONE_ENOMEM, "out of memory");
                    break;
                }
                fprintf(metrics, "%s\n", row);
                fflush(metrics);
                call_hook(&ectx.on_log, "on_log", ectx.run_name, run_dir, row, NULL, &ectx.hook_rc, &ectx.hook_err);
                free(row);
                printf("%sstep %5lld/%ld  epoch %.2f  loss %.4f  lr %.3g  grad_norm %.3g  %.0f tok/s  eta %.0fs\n",
                       tty ? "\r\033[K" : "",
                       (long long)pos.step, plan.total_steps, ep, loss_log / steps_log, lr, norm, tps, eta);
                fflush(stdout);
                loss_log = 0;
                steps_log = 0;
                tlog = t;
                tokens_log = (long)pos.tokens;
            }
            if (tty) {   /* a live bar between the logged lines */
                double t = now(), eta = (t - t0) / (double)(pos.step - step0) * (double)(plan.total_steps - pos.step);
                int width = 30, fill = (int)(width * pos.step / (plan.total_steps ? plan.total_steps : 1));
                char bar[64];
                for (int k = 0; k < width; k++) bar[k] = k < fill ? '#' : '.';
                bar[width] = 0;
                printf("\r\033[K[%s] step %lld/%ld  epoch %.2f  loss %.4f  eta %.0fs", bar, (long long)pos.step,
                       plan.total_steps, ep, pos.last_loss, eta);
                fflush(stdout);
            }
            int at_end = w0 + wn >= nmb || pos.step >= plan.total_steps, step_improved = 0;
            double tpause = now();   /* evaluation and saving stay out of the logged tokens/s */
            if (!at_end && eval.n && eval_every > 0 && pos.step % eval_every == 0) {
                char tag[64];
                snprintf(tag, sizeof tag, "step-%lld", (long long)pos.step);
                rc = run_eval(&ectx, &pos, tag, ep, &step_improved, err);
                if (rc) break;
            }
            if (!at_end && (stop_requested || step_improved || ectx.hook_rc ||
                            (save_every > 0 && pos.step % save_every == 0))) {
                /* a mid-epoch checkpoint: the next window of this epoch comes next */
                hone_model_get_rng(m, pos.rng);
                pos.wall_s = wall0 + now() - t0;
                rc = state_blob(&blob, &pos, ovt, ostate, err);
                cJSON *st = cJSON_CreateObject();
                cJSON_AddNumberToObject(st, "epoch", ep);
                cJSON_AddNumberToObject(st, "global_step", (double)pos.step);
                cJSON_AddNumberToObject(st, "max_steps", (double)plan.total_steps);
                cJSON_AddNumberToObject(st, "train_loss", pos.last_loss);
                char name[64];
                snprintf(name, sizeof name, "step-%lld", (long long)pos.step);
                if (!rc) rc = save_checkpoint(m, cfg, run_dir, name, st, &blob, err);
                cJSON_Delete(st);
                if (!rc && step_improved) point_best(run_dir, name);
                if (!rc && keep) prune_checkpoints(run_dir, keep, pos.best_name[0] ? pos.best_name : NULL);
                if (!rc && ectx.hook_rc) {
                    printf("\ncheckpoint %s/checkpoints/%s written before stopping for the failed hook\n", run_dir, name);
                    *err = ectx.hook_err;
                    rc = ectx.hook_rc;
                    break;
                }
                if (!rc && stop_requested) {
                    if (tty) fputs("\r\033[K", stdout);
                    printf("interrupted: checkpoint %s/checkpoints/%s written; continue with --resume\n", run_dir, name);
                    *interrupted = 1;
                    break;
                }
            }
            tlog += now() - tpause;
        }
        if (rc || *interrupted) break;
        double tpause = now();
        epochs_done = epoch + 1;
        pos.epoch = epoch + 1;
        pos.window = 0;
        int improved = 0;
        if (eval.n) {
            char tag[64];
            snprintf(tag, sizeof tag, "epoch-%ld", epoch + 1);
            rc = run_eval(&ectx, &pos, tag, (double)(epoch + 1), &improved, err);
            if (rc) break;
            if (improved) pos.best_epoch = epoch + 1;
        }
        hone_model_get_rng(m, pos.rng);
        cJSON *st = cJSON_CreateObject();
        cJSON_AddNumberToObject(st, "epoch", (double)(epoch + 1));
        cJSON_AddNumberToObject(st, "global_step", (double)pos.step);
        cJSON_AddNumberToObject(st, "max_steps", (double)plan.total_steps);
        cJSON_AddNumberToObject(st, "train_loss", pos.last_loss);
        if (eval.n) cJSON_AddNumberToObject(st, "eval_loss", pos.last_eval);
        if (pos.best_epoch) cJSON_AddNumberToObject(st, "best_epoch", (double)pos.best_epoch);
        char name[64];
        snprintf(name, sizeof name, "epoch-%ld", epoch + 1);
        pos.wall_s = wall0 + now() - t0;
        rc = state_blob(&blob, &pos, ovt, ostate, err);
        if (!rc) rc = save_checkpoint(m, cfg, run_dir, name, st, &blob, err);
        cJSON_Delete(st);
        if (!rc && improved) point_best(run_dir, name);
        if (!rc && keep) prune_checkpoints(run_dir, keep, pos.best_name[0] ? pos.best_name : NULL);
        if (!rc) {
            cJSON *er = cJSON_CreateObject();
            cJSON_AddNumberToObject(er, "epoch", (double)(epoch + 1));
            cJSON_AddNumberToObject(er, "step", (double)pos.step);
            cJSON_AddNumberToObject(er, "train_loss", pos.last_loss);
            cJSON_AddStringToObject(er, "checkpoint", name);
            if (eval.n) cJSON_AddNumberToObject(er, best_metric, pos.last_eval);
            if (pos.best_name[0]) cJSON_AddStringToObject(er, "best", pos.best_name);
            char *row = cJSON_PrintUnformatted(er);
            cJSON_Delete(er);
            int stop = 0;
            if (row) call_hook(&on_epoch_end, "on_epoch_end", ectx.run_name, run_dir, row, &stop, &ectx.hook_rc, &ectx.hook_err);
            if (stop && !ectx.hook_rc) {
                printf("stopped early: hooks.on_epoch_end returned \"stop\" after epoch %ld\n", epoch + 1);
                stopped_early = 1;
            }
            free(row);
        }
        if (!rc && ectx.hook_rc) {
            printf("checkpoint %s/checkpoints/%s written before stopping for the failed hook\n", run_dir, name);
            *err = ectx.hook_err;
            rc = ectx.hook_rc;
            break;
        }
        if (!rc && patience && pos.stale >= patience) {
            printf("early stopping: %s has not improved by more than %g for %lld evaluation%s (best %.4f at "
                   "%s)\n", best_metric, threshold, (long long)pos.stale, pos.stale > 1 ? "s" : "",
                   maximize ? -pos.best : pos.best, pos.best_name);
            stopped_early = 1;
        }
        if (!rc && stop_requested) {
            printf("interrupted: checkpoint %s/checkpoints/%s written; continue with --resume\n", run_dir, name);
            *interrupted = 1;
        }
        tlog += now() - tpause;
    }
    if (!rc && !*interrupted && ectx.evals && !pos.best_name[0])
        rc = hone_errf(err, HONE_EINVAL, "eval.best.metric = \"%s\": no evaluation of the run computed it (the last "
                       "computed %s); every checkpoint is kept", best_metric, ectx.computed);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(blob.data);
    long step = (long)pos.step;
    double best = pos.best, last_loss = pos.last_loss, tokens = (double)pos.tokens - tokens0;
    long best_epoch = (long)pos.best_epoch;
    /* a resumed run's figures cover the whole run: the time before the checkpoint is in pos */
    double wall = now() - t0, total = wall0 + wall;
    if (metrics) fclose(metrics);
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "status", rc ? "failed" : *interrupted ? "interrupted" : stopped_early ? "stopped_early" : "completed");
    if (pos.nonfinite) cJSON_AddNumberToObject(sum, "nonfinite_steps", (double)pos.nonfinite);
    if (rc) cJSON_AddStringToObject(sum, "error", err->msg);
    cJSON_AddNumberToObject(sum, "steps", (double)step);
    cJSON_AddNumberToObject(sum, "epochs", (double)epochs_done);
    cJSON_AddNumberToObject(sum, "train_loss", last_loss);
    if (eval.n && pos.best_name[0]) {
        cJSON_AddNumberToObject(sum, "best_epoch", (double)best_epoch);
        cJSON_AddStringToObject(sum, "best_metric", hone_config_str(cfg, "eval.best.metric"));
        cJSON_AddStringToObject(sum, "best_checkpoint", pos.best_name);
        cJSON_AddNumberToObject(sum, "best_value", !strcmp(hone_config_str(cfg, "eval.best.mode"), "max") ? -best : best);
    }
    cJSON_AddNumberToObject(sum, "wall_s", total);
    cJSON_AddNumberToObject(sum, "tokens_per_s", total > 0 ? tokens / total : 0);
    cJSON_AddNumberToObject(sum, "peak_rss_mb", peak_rss_mb());
    hone_err werr = {0};
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    write_json_file(path, sum, &werr);
    cJSON_Delete(sum);
    /* the report is a view of files already written: failing to draw it loses nothing */
    if (hone_write_report(run_dir, &werr)) fprintf(stderr, "warning: report.html: %s\n", werr.msg);
    if (tty) fputs("\r\033[K", stdout);
    if (!rc && !*interrupted && step0)
        printf("done: %ld steps in %.1f s (%.1f s after resuming at step %ld; %.0f tokens/s over the run), "
               "final loss %.4f; checkpoints in %s/checkpoints\n", step, total, wall, step0,
               total > 0 ? tokens / total : 0, last_loss, run_dir);
    else if (!rc && !*interrupted)
        printf("done: %ld steps in %.1f s (%.0f tokens/s), final loss %.4f; checkpoints in %s/checkpoints\n", step, total,
               total > 0 ? tokens / total : 0, last_loss, run_dir);
    free(order);
    free(given);
    free_records(recs, eval.n);
    free(b.ids);
    free(b.labels);
    free(b.targets);
    free(b.start);
    ovt->destroy(ostate);
    hone_model_free(m);
    hone_tokenizer_free(tok);
    hone_dataset_free(&train);
    hone_dataset_free(&eval);
    return rc;
}

static hone_model_opts model_opts(const hone_config *cfg, int batch, int seq, int training)
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
        .labelled_logits = 1,
    };
}

/* `hone eval`: the experiment's evaluation (loss, and generation metrics when configured)
 * on an adapter or fully fine-tuned checkpoint directory */
int hone_eval_checkpoint(const hone_config *cfg, const char *ckpt, const char *out_path, hone_err *err)
{
    long threads = (long)hone_config_int(cfg, "threads");
    op_set_threads(threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    hone_prepared prep;
    int rc = hone_data_prepare(&prep, cfg, err);
    if (rc) return rc;
    hone_dataset *ev = prep.eval.n ? &prep.eval : &prep.train;
    if (!prep.eval.n) printf("eval: the experiment has no eval split; evaluating on data.train\n");
    int longest = 1, bs = (int)hone_config_int(cfg, "train.batch_size");
    for (size_t i = 0; i < ev->n; i++) longest = ev->ex[i].n > longest ? ev->ex[i].n : longest;
    int lora = hone_config_cval(cfg, "lora")->enabled;
    char probe[4300];
    snprintf(probe, sizeof probe, "%s/adapter_config.json", ckpt);
    int is_adapter = hone_is_file(probe);
    if (lora && !is_adapter) rc = hone_errf(err, HONE_EINVAL, "%s: no adapter_config.json (not a LoRA adapter)", ckpt);
    hone_model_opts mo = model_opts(cfg, bs, longest, 0);
    hone_model *m = NULL;
    if (!rc) rc = hone_model_load(&m, lora ? hone_config_str(cfg, "model.path") : ckpt, &mo, err);
    if (!rc && lora) rc = hone_model_load_adapter(m, ckpt, err);
    batcher b = {0};
    b.pad = prep.pad;
    b.ids = malloc((size_t)bs * longest * sizeof(int32_t));
    b.labels = malloc((size_t)bs * longest * sizeof(int32_t));
    b.start = malloc((size_t)bs * longest * sizeof(int32_t));
    b.targets = malloc((size_t)bs * longest * sizeof(int32_t));
    if (!rc && (!b.ids || !b.labels || !b.start || !b.targets)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    double loss = NAN;
    metric_acc acc[MAX_METRICS];
    int nacc = 0;
    const hone_cval *mfns = hone_config_cval(cfg, "eval.metrics");
    int generate = prep.tok && (hone_config_cval(cfg, "eval.generate")->given || (mfns && mfns->nf));
    if (!rc) rc = evaluate(m, &b, ev, bs, &loss, err);
    char **recs = NULL;
    if (!rc && generate) rc = eval_records(cfg, ev, &recs, err);
    if (!rc && generate) rc = gen_eval(m, prep.tok, ev, recs, cfg, out_path, acc, &nacc, err);
    free_records(recs, ev->n);
    if (!rc) {
        printf("%s: %zu examples, eval_loss %.4f", ckpt, ev->n, loss);
        for (int k = 0; k < nacc; k++) printf("  %s %.4g", acc[k].name, acc[k].n ? acc[k].sum / acc[k].n : NAN);
        printf("\n");
        if (out_path && generate) printf("predictions in %s\n", out_path);
    }
    free(b.ids), free(b.labels), free(b.start), free(b.targets);
    hone_model_free(m);
    hone_prepared_free(&prep);
    return rc;
}
