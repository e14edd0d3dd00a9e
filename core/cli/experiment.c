/* experiment.c — what `hone run`, `inspect` and `eval` share: the script run in Lua,
 * --set grafted on, the script's own plugins loaded, the experiment resolved, and the
 * hooks its run gets (the terminal printer, the script's functions); the dry run's plan;
 * finding the run --resume names and refusing a changed recipe. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "experiment.h"
#include "lines.h"
#include "registry.h"
#include "util.h"

static int load_script_plugins(hone_registry *reg, const hone_node *root, const char *script, hone_err *err)
{
    const hone_node *pl = hone_node_get(root, "plugins");
    if (!pl) return 0;
    size_t n = pl->type == HONE_NODE_STRING ? 1 : pl->type == HONE_NODE_TABLE ? hone_node_array_len(pl) : 0;
    for (size_t i = 0; i < n; i++) {
        const hone_node *e = pl->type == HONE_NODE_STRING ? pl : hone_node_at(pl, (long)i + 1);
        if (e->type != HONE_NODE_STRING) continue;   /* the schema reports the type error */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", e->str);
        if (e->str[0] != '/' && !hone_is_file(path) && !hone_is_dir(path)) {
            /* relative to the script when not relative to the working directory */
            const char *slash = strrchr(script, '/');
            if (slash) snprintf(path, sizeof path, "%.*s/%s", (int)(slash - script), script, e->str);
        }
        if (!hone_is_file(path) && !hone_is_dir(path))
            return hone_errf(err, HONE_EINVAL, "plugins[%zu]: %s: no such file or directory", i + 1, e->str);
        int rc = hone_registry_load_path(reg, path, err);
        if (rc) return hone_err_prefix(err, "plugins[%zu]: ", i + 1);
    }
    return 0;
}

int cli_plan_run(const hone_config *cfg, data_plan *d, hone_err *err)
{
    int rc = hone_run_check(cfg, err);   /* a dry run reports what the run would refuse */
    if (rc) return rc;
    const char *train = hone_config_str(cfg, "data.train");
    rc = hone_jsonl_count(train, &d->train_records, err);
    if (rc) return hone_err_prefix(err, "data.train: ");
    if (d->train_records == 0) return hone_errf(err, HONE_EINVAL, "data.train: %s holds no records", train);
    long n = d->train_records;
    if (hone_config_is_set(cfg, "data.limit") && hone_config_int(cfg, "data.limit") < n)
        n = (long)hone_config_int(cfg, "data.limit");
    d->eval_records = 0;
    d->eval_source = "none";
    if (hone_config_is_set(cfg, "data.eval")) {
        const char *ev = hone_config_str(cfg, "data.eval");
        rc = hone_jsonl_count(ev, &d->eval_records, err);
        if (rc) return hone_err_prefix(err, "data.eval: ");
        d->eval_source = ev;
    } else if (hone_config_is_set(cfg, "data.eval_fraction")) {
        /* datasets' train_test_split: the test share is rounded up */
        d->eval_records = (long)ceil(hone_config_num(cfg, "data.eval_fraction") * (double)n);
        if (d->eval_records >= n)
            return hone_errf(err, HONE_EINVAL, "data.eval_fraction: holding out %ld of %ld records leaves none to train on",
                             d->eval_records, n);
        n -= d->eval_records;
        d->eval_source = "data.eval_fraction of train";
    }
    hone_plan_steps(&d->plan, n, (long)hone_config_int(cfg, "train.batch_size"),
                    (long)hone_config_int(cfg, "train.grad_accum"), hone_config_num(cfg, "train.epochs"),
                    hone_config_is_set(cfg, "train.max_steps") ? (long)hone_config_int(cfg, "train.max_steps") : 0,
                    hone_config_num(cfg, "train.warmup_ratio"), (long)hone_config_int(cfg, "train.warmup_steps"));
    const hone_cval *s = hone_config_cval(cfg, "train.scheduler");
    hone_sched_ctx sctx = {d->plan.total_steps, d->plan.warmup_steps, hone_config_num(cfg, "train.lr")};
    rc = hone_schedule_check(s->feature, s->opts, &sctx, err);
    if (rc) return hone_err_prefix(err, "train.scheduler: ");
    return 0;
}

void cli_print_plan(const hone_config *cfg, const data_plan *d)
{
    const hone_plan *p = &d->plan;
    const hone_cval *s = hone_config_cval(cfg, "train.scheduler");
    hone_sched_ctx sctx = {p->total_steps, p->warmup_steps, hone_config_num(cfg, "train.lr")};
    printf("plan:\n");
    printf("  train examples          %ld (of %ld records in %s)\n", p->examples, d->train_records,
           hone_config_str(cfg, "data.train"));
    printf("  eval examples           %ld (%s)\n", d->eval_records, d->eval_source);
    if (hone_config_bool(cfg, "data.packing"))
        printf("  (data.packing: the run packs examples into rows first and steps over rows, so it takes fewer\n"
               "   steps than counted here from records; `hone inspect` shows the packing)\n");
    printf("  micro-batches / epoch   %ld (batch_size %lld)\n", p->micro_batches, hone_config_int(cfg, "train.batch_size"));
    printf("  optimizer steps / epoch %ld (grad_accum %lld)\n", p->steps_per_epoch, hone_config_int(cfg, "train.grad_accum"));
    printf("  epochs                  %ld\n", p->epochs);
    printf("  optimizer steps         %ld\n", p->total_steps);
    printf("  warmup steps            %ld\n", p->warmup_steps);
    printf("  lr (%s)     first %.6g, peak %.6g, last %.6g\n", s->feature->info->name,
           hone_schedule_lr(s->feature, s->opts, &sctx, 0),
           hone_schedule_lr(s->feature, s->opts, &sctx, p->warmup_steps < p->total_steps ? p->warmup_steps : 0),
           hone_schedule_lr(s->feature, s->opts, &sctx, p->total_steps - 1));
}

int cli_write_json(const char *path, cJSON *j, hone_err *err)
{
    char *text = cJSON_Print(j);
    if (!text) return hone_errf(err, HONE_ENOMEM, "out of memory");
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    withnl[len] = '\n';
    int rc = hone_write_file(path, withnl, len + 1, err);
    free(withnl);
    return rc;
}

/* --resume RUN_DIR | latest: the run directory to continue ("latest": the newest run of
 * this project under output_dir) */
int cli_find_run(const hone_config *cfg, const char *arg, char *path, size_t n, char *name, size_t nn, hone_err *err)
{
    if (strcmp(arg, "latest")) {
        if (!hone_is_dir(arg)) return hone_errf(err, HONE_EINVAL, "no such run directory");
        snprintf(path, n, "%s", arg);
    } else {
        const char *out = hone_config_str(cfg, "output_dir"), *project = hone_config_str(cfg, "project");
        DIR *d = opendir(out);
        char best[300] = "";
        size_t pl = strlen(project);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (!strncmp(e->d_name, project, pl) && e->d_name[pl] == '-' && strcmp(e->d_name, best) > 0)
                snprintf(best, sizeof best, "%s", e->d_name);
        if (d) closedir(d);
        if (!best[0]) return hone_errf(err, HONE_EINVAL, "no run of project '%s' in %s", project, out);
        snprintf(path, n, "%s/%s", out, best);
    }
    const char *slash = strrchr(path, '/');
    snprintf(name, nn, "%.290s", slash ? slash + 1 : path);
    return 0;
}

/* the first key where two resolved configs differ, as a dotted path */
static int first_difference(const cJSON *a, const cJSON *b, char *out, size_t n, const char *prefix)
{
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, a)
        {
            char sub[512];
            snprintf(sub, sizeof sub, "%s%s%s", prefix, *prefix ? "." : "", x->string);
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y) {
                snprintf(out, n, "%s", sub);
                return 1;
            }
            if (first_difference(x, y, out, n, sub)) return 1;
        }
        cJSON_ArrayForEach(x, b) if (!cJSON_GetObjectItemCaseSensitive(a, x->string))
        {
            snprintf(out, n, "%s%s%s", prefix, *prefix ? "." : "", x->string);
            return 1;
        }
        return 0;
    }
    if (cJSON_Compare(a, b, 1)) return 0;
    snprintf(out, n, "%s", *prefix ? prefix : "(the whole config)");
    return 1;
}

/* resuming with another experiment would not continue the same run */
int cli_check_same_config(const hone_config *cfg, const char *run, hone_err *err)
{
    char file[PATH_MAX + 32], *text = NULL;
    snprintf(file, sizeof file, "%s/config.json", run);
    int rc = hone_read_file(file, &text, NULL, err);
    if (rc) return rc;
    cJSON *was = cJSON_Parse(text), *now = hone_config_json(cfg);
    free(text);
    cJSON_DeleteItemFromObjectCaseSensitive(was, "hone");
    /* where the run lives is not part of its recipe: the directory given to --resume says */
    cJSON_DeleteItemFromObjectCaseSensitive(was, "output_dir");
    cJSON_DeleteItemFromObjectCaseSensitive(now, "output_dir");
    char where[512] = "";
    if (!was) rc = hone_errf(err, HONE_EINVAL, "%s: not JSON", file);
    else if (first_difference(now, was, where, sizeof where, ""))
        rc = hone_errf(err, HONE_EINVAL, "the experiment differs from the run's config.json at %s; resume with the "
                       "settings the run began with", where);
    cJSON_Delete(was);
    cJSON_Delete(now);
    return rc;
}

int cli_experiment_load(cli_exp *e, const char *script, const arg_strings *sets, const char *resume, int dry)
{
    memset(e, 0, sizeof *e);
    hone_err err = {0};
    int code = cli_ctx(&e->ctx);
    if (code) return code;
    if (hone_lua_new(&e->hl, hone_ctx_lua_dir(e->ctx), hone_ctx_registry(e->ctx), &err))
        return fail(EXIT_RUN_FAILED, "%s", err.msg);
    hone_lua_set_mode(e->hl, resume, dry);   /* hone.sweep continues that sweep, or shows its plan */
    if (hone_lua_run_file(e->hl, script, &e->root, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    if (!e->root) {
        /* the script did its work itself (hone.optimize, hone.sweep, ...) and returned nothing */
        e->done = 1;
        if (resume && hone_lua_mode_used(e->hl, "resume")) return 0;
        if (dry && !sets->n && hone_lua_mode_used(e->hl, "dry_run")) return 0;
        if (sets->n || dry || resume)
            return fail(EXIT_BAD_INPUT, "%s: returned no experiment, so --set, --dry-run and --resume have nothing "
                        "to act on", script);
        return 0;
    }
    int own_output_dir = 0;
    for (int i = 0; i < sets->n; i++) {
        own_output_dir |= !strncmp(sets->v[i], "output_dir=", 11);
        if (cli_add_set(e->root, sets->v[i], "", &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    }
    char real[PATH_MAX];
    if (resume && strcmp(resume, "latest") && !own_output_dir && realpath(resume, real)) {
        /* --resume DIR: the run's output_dir is the directory that holds it (its token cache too) */
        char parent[PATH_MAX + 16];
        char *slash = strrchr(real, '/');
        if (slash) slash[slash == real] = 0;   /* a run directly under / keeps the "/" */
        snprintf(parent, sizeof parent, "output_dir=%s", real);
        if (cli_add_set(e->root, parent, "", &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    }
    if (load_script_plugins(hone_ctx_registry(e->ctx), e->root, script, &err) ||
        hone_experiment_resolve(&e->cfg, hone_ctx_registry(e->ctx), e->root, &err))
        return fail(EXIT_BAD_INPUT, "%s: %s", script, err.msg);
    /* data.chat_function and the other script functions run in the script's state */
    hone_term_init(&e->term);
    hone_lua_hooks(&e->lrun, e->hl, e->cfg, hone_term_log, &e->term, &e->hooks);
    return 0;
}

void cli_experiment_free(cli_exp *e)
{
    hone_term_end(&e->term);
    hone_config_free(e->cfg);
    hone_node_free(e->root);
    hone_lua_free(e->hl);
    hone_ctx_free(e->ctx);
}
