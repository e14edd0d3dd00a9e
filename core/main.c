/* main.c — the hone command line: the one place that prints errors and picks exit codes
 * (0 ok, 1 a failed run, 2 bad usage or bad input). */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "bench.h"
#include "convert.h"
#include "inspect.h"
#include "config.h"
#include "cpu.h"
#include "err.h"
#include "lines.h"
#include "lua_hone.h"
#include "model.h"
#include "options.h"
#include "paths.h"
#include "plugin_check.h"
#include "prequant.h"
#include "registry.h"
#include "rundir.h"
#include "schedule.h"
#include "schema.h"
#include "tokenizer.h"
#include "trainer.h"
#include "report.h"
#include "merge.h"
#include "export_gguf.h"
#include "gguf.h"
#include "util.h"
#include "version.h"

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 };

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hone: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

typedef struct app {
    hone_paths paths;
    hone_registry *reg;
} app;

static void app_free(app *a)
{
    hone_registry_free(a->reg);
    a->reg = NULL;
}

/* finds hone's own dirs and loads every plugin; on failure nothing is left to free */
static int app_init(app *a)
{
    hone_err err = {0};
    int code = 0;
    a->reg = hone_registry_new();
    if (!a->reg) return fail(EXIT_RUN_FAILED, "out of memory");
    const char *env = getenv("HONE_PLUGIN_PATH");
    if (hone_paths_find(&a->paths, &err)) code = fail(EXIT_RUN_FAILED, "%s", err.msg);
    else if (hone_registry_load_dir(a->reg, a->paths.plugin_dir, &err)) code = fail(EXIT_BAD_INPUT, "%s", err.msg);
    else if (env && *env && hone_registry_load_pathlist(a->reg, env, "HONE_PLUGIN_PATH", &err))
        code = fail(EXIT_BAD_INPUT, "%s", err.msg);
    if (code) app_free(a);
    return code;
}

/* ---- hone plugins ----------------------------------------------------------------- */

static void print_options(const hone_option *defs)
{
    size_t n = hone_options_count(defs);
    if (n == 0) {
        printf("options: none\n");
        return;
    }
    int wn = 4, wt = 4, wd = 7, wr = 5;
    char def[64], range[96];
    for (size_t i = 0; i < n; i++) {
        hone_option_default_text(&defs[i], def, sizeof def);
        hone_option_range(&defs[i], range, sizeof range);
        if ((int)strlen(defs[i].name) > wn) wn = (int)strlen(defs[i].name);
        if ((int)strlen(hone_opt_type_name(defs[i].type)) > wt) wt = (int)strlen(hone_opt_type_name(defs[i].type));
        if ((int)strlen(def) > wd) wd = (int)strlen(def);
        if ((int)strlen(range) > wr) wr = (int)strlen(range);
    }
    printf("options:\n  %-*s  %-*s  %-*s  %-*s  %s\n", wn, "name", wt, "type", wd, "default", wr, "range", "help");
    for (size_t i = 0; i < n; i++) {
        hone_option_default_text(&defs[i], def, sizeof def);
        hone_option_range(&defs[i], range, sizeof range);
        printf("  %-*s  %-*s  %-*s  %-*s  %s\n", wn, defs[i].name, wt, hone_opt_type_name(defs[i].type), wd, def,
               wr, range, defs[i].help);
    }
}

/* hone plugins --check FILE.so: one line per step of the conformance round */
static void print_check(void *ctx, const hone_check_event *ev)
{
    (void)ctx;
    printf("%-4s  %s %s: %s%s%s\n", ev->ok ? "ok" : "FAIL", hone_kind_name(ev->kind), ev->feature, ev->step,
           ev->detail[0] ? ": " : "", ev->detail);
}

static int check_plugin(const char *path)
{
    hone_err err = {0};
    hone_check_counts n;
    if (hone_plugin_check(path, print_check, NULL, &n, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    printf("%s: %d feature%s, %d steps passed, %d failed\n", path, n.features, n.features == 1 ? "" : "s", n.passed,
           n.failed);
    return n.failed ? EXIT_RUN_FAILED : 0;
}

static int cmd_plugins(int argc, char **argv)
{
    hone_kind kind = HONE_KIND_COUNT;
    const char *name = NULL;
    if (argc >= 2 && strcmp(argv[1], "--check") == 0)
        return argc == 3 ? check_plugin(argv[2]) : fail(EXIT_BAD_INPUT, "usage: hone plugins --check FILE.so");
    if (argc > 3) return fail(EXIT_BAD_INPUT, "usage: hone plugins [KIND] [NAME] | --check FILE.so");
    if (argc >= 2) {
        if (hone_kind_from_name(argv[1], &kind) != 0) {
            if (argc == 3)
                return fail(EXIT_BAD_INPUT, "unknown kind '%s' (optimizer, scheduler, collator, quantizer)", argv[1]);
            name = argv[1];
        } else if (argc == 3) {
            name = argv[2];
        }
    }
    app a = {0};
    int rc = app_init(&a);
    if (rc) return rc;
    size_t n = hone_registry_count(a.reg);
    if (name) {
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            const hone_feature *f = hone_registry_at(a.reg, i);
            if ((kind != HONE_KIND_COUNT && f->kind != kind) || strcmp(f->info->name, name) != 0) continue;
            printf("%s%s %s\n  %s\n  plugin: %s\n", found++ ? "\n" : "", hone_kind_name(f->kind), f->info->name,
                   f->info->summary, f->file);
            print_options(f->info->options);
        }
        if (!found) {
            char names[2048] = "";
            if (kind != HONE_KIND_COUNT) hone_registry_names(a.reg, kind, names, sizeof names);
            app_free(&a);
            if (kind != HONE_KIND_COUNT)
                return fail(EXIT_BAD_INPUT, "no %s named '%s' (registered: %s)", hone_kind_name(kind), name, names);
            return fail(EXIT_BAD_INPUT, "no feature named '%s' (`hone plugins` lists them)", name);
        }
        app_free(&a);
        return 0;
    }
    int wk = 4, wn = 4, wf = 6;
    for (size_t i = 0; i < n; i++) {
        const hone_feature *f = hone_registry_at(a.reg, i);
        if (kind != HONE_KIND_COUNT && f->kind != kind) continue;
        if ((int)strlen(hone_kind_name(f->kind)) > wk) wk = (int)strlen(hone_kind_name(f->kind));
        if ((int)strlen(f->info->name) > wn) wn = (int)strlen(f->info->name);
        const char *base = strrchr(f->file, '/');
        if ((int)strlen(base ? base + 1 : f->file) > wf) wf = (int)strlen(base ? base + 1 : f->file);
    }
    printf("%-*s  %-*s  %-*s  %s\n", wk, "kind", wn, "name", wf, "plugin", "summary");
    for (int k = 0; k < HONE_KIND_COUNT; k++) {
        if (kind != HONE_KIND_COUNT && k != (int)kind) continue;
        for (size_t i = 0; i < n; i++) {
            const hone_feature *f = hone_registry_at(a.reg, i);
            if ((int)f->kind != k) continue;
            const char *base = strrchr(f->file, '/');
            printf("%-*s  %-*s  %-*s  %s\n", wk, hone_kind_name(f->kind), wn, f->info->name, wf,
                   base ? base + 1 : f->file, f->info->summary);
        }
    }
    printf("\nplugin files:\n");
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        const hone_feature *f = hone_registry_at(a.reg, i);
        if (last && strcmp(last, f->file) == 0) continue;
        printf("  %s\n", f->file);
        last = f->file;
    }
    app_free(&a);
    return 0;
}

/* ---- hone schedule ---------------------------------------------------------------- */

static int add_set(hone_node *root, const char *kv, const char *prefix, hone_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return hone_errf(err, HONE_EINVAL, "--set %s: expected key=value", kv);
    char key[256];
    if (snprintf(key, sizeof key, "%s%.*s", prefix, (int)(eq - kv), kv) >= (int)sizeof key)
        return hone_errf(err, HONE_EINVAL, "--set %s: key too long", kv);
    if (hone_node_set_path(root, key, eq + 1) != 0)
        return hone_errf(err, HONE_EINVAL, "--set %s: not a valid key path", kv);
    return 0;
}

static int cmd_schedule(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return fail(EXIT_BAD_INPUT, "usage: hone schedule NAME --lr LR --steps N [--warmup-ratio R | --warmup-steps W] [--set k=v]");
    app a = {0};
    int rc = app_init(&a);
    if (rc) return rc;
    hone_err err = {0};
    double lr = -1, ratio = 0;
    long long steps = -1, wsteps = 0;
    int have_ratio = 0, have_wsteps = 0;
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    hone_node *spec = root ? hone_node_add(root, hone_node_new(HONE_NODE_TABLE)) : NULL;
    hone_node *nm = spec ? hone_node_add(spec, hone_node_new(HONE_NODE_STRING)) : NULL;
    if (!nm || !(spec->key = hone_strdup("scheduler")) || !(nm->str = hone_strdup(argv[1]))) {
        hone_node_free(root);
        app_free(&a);
        return fail(EXIT_RUN_FAILED, "out of memory");
    }
    nm->index = 1;
    nm->from_cli = 1;
    for (int i = 2; i < argc && rc == 0; i += 2) {   /* every option takes one value */
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) rc = hone_errf(&err, HONE_EINVAL, "%s needs a value", arg);
        else if (!strcmp(arg, "--lr")) {
            if (hone_parse_double(val, &lr) || !(lr > 0)) rc = hone_errf(&err, HONE_EINVAL, "--lr %s: must be a number > 0", val);
        } else if (!strcmp(arg, "--steps")) {
            if (hone_parse_ll(val, &steps) || steps < 1) rc = hone_errf(&err, HONE_EINVAL, "--steps %s: must be an integer >= 1", val);
        } else if (!strcmp(arg, "--warmup-ratio")) {
            have_ratio = 1;
            if (hone_parse_double(val, &ratio) || ratio < 0 || ratio > 1)
                rc = hone_errf(&err, HONE_EINVAL, "--warmup-ratio %s: must be a number in [0, 1]", val);
        } else if (!strcmp(arg, "--warmup-steps")) {
            have_wsteps = 1;
            if (hone_parse_ll(val, &wsteps) || wsteps < 0)
                rc = hone_errf(&err, HONE_EINVAL, "--warmup-steps %s: must be an integer >= 0", val);
        } else if (!strcmp(arg, "--set")) {
            rc = add_set(root, val, "scheduler.", &err);
        } else {
            rc = hone_errf(&err, HONE_EINVAL, "unknown argument %s", arg);
        }
    }
    if (!rc && lr < 0) rc = hone_errf(&err, HONE_EINVAL, "--lr is required");
    if (!rc && steps < 0) rc = hone_errf(&err, HONE_EINVAL, "--steps is required");
    if (!rc && have_ratio && have_wsteps) rc = hone_errf(&err, HONE_EINVAL, "give --warmup-ratio or --warmup-steps, not both");
    static const hone_key keys[] = {
        {HONE_KEY_PLUGIN, {"scheduler", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0, "schedule"}, HONE_KIND_SCHEDULER, 1},
    };
    hone_config *cfg = NULL;
    if (!rc) rc = hone_config_resolve(&cfg, keys, 1, root, a.reg, &err);
    hone_node_free(root);
    if (rc) {
        app_free(&a);
        return fail(EXIT_BAD_INPUT, "schedule: %s", err.msg);
    }
    const hone_cval *c = hone_config_cval(cfg, "scheduler");
    hone_sched_ctx ctx = {(long)steps, hone_warmup_steps((long)steps, ratio, (long)wsteps), lr};
    rc = hone_schedule_check(c->feature, c->opts, &ctx, &err);
    if (!rc) {
        printf("step,lr\n");
        for (long s = 0; s < steps; s++) printf("%ld,%.17g\n", s, hone_schedule_lr(c->feature, c->opts, &ctx, s));
    }
    hone_config_free(cfg);
    app_free(&a);
    return rc ? fail(EXIT_BAD_INPUT, "schedule: %s", err.msg) : 0;
}

/* ---- hone run ----------------------------------------------------------------------- */

static int load_script_plugins(app *a, const hone_node *root, const char *script, hone_err *err)
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
        int rc = hone_registry_load_path(a->reg, path, err);
        if (rc) return hone_err_prefix(err, "plugins[%zu]: ", i + 1);
    }
    return 0;
}

typedef struct data_plan {
    long train_records, eval_records;
    const char *eval_source;
    hone_plan plan;
} data_plan;

static int plan_run(const hone_config *cfg, data_plan *d, hone_err *err)
{
    int rc = hone_train_check(cfg, err);   /* a dry run reports what the run would refuse */
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

static void print_plan(const hone_config *cfg, const data_plan *d)
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


static int write_json(const char *path, cJSON *j, hone_err *err)
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
static int find_run(const hone_config *cfg, const char *arg, char *path, size_t n, char *name, size_t nn, hone_err *err)
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
static int check_same_config(const hone_config *cfg, const char *run, hone_err *err)
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

/* run, or with inspect set, `hone inspect` (the same script and --set handling) */
static int cmd_run_or_inspect(int argc, char **argv, int inspect)
{
    const char *script = NULL, *resume = NULL, *cmd = inspect == 2 ? "eval" : inspect ? "inspect" : "run";
    const char *adapter = NULL, *out_path = NULL;
    int dry = 0, nsets = 0, nshow = 5, eval_split = 0;
    char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets) return fail(EXIT_RUN_FAILED, "out of memory");
    for (int i = 1; i < argc; i++) {
        long long v;
        if (inspect == 2 && (!strcmp(argv[i], "--adapter") || !strcmp(argv[i], "--out"))) {
            if (i + 1 >= argc) {
                free(sets);
                return fail(EXIT_BAD_INPUT, "eval: %s needs a value", argv[i]);
            }
            if (argv[i][2] == 'a') adapter = argv[++i];
            else out_path = argv[++i];
        } else if (inspect == 1 && (!strcmp(argv[i], "--n") || !strcmp(argv[i], "--split"))) {
            if (i + 1 >= argc || (argv[i][2] == 'n' && (hone_parse_ll(argv[i + 1], &v) || v < 0 || v > 1000000)) ||
                (argv[i][2] == 's' && strcmp(argv[i + 1], "train") && strcmp(argv[i + 1], "eval"))) {
                free(sets);
                return fail(EXIT_BAD_INPUT, "inspect: %s needs %s", argv[i],
                            argv[i][2] == 'n' ? "a count (0..1000000)" : "train or eval");
            }
            if (argv[i][2] == 'n') nshow = (int)v;
            else eval_split = !strcmp(argv[i + 1], "eval");
            i++;
        } else if (!inspect && !strcmp(argv[i], "--dry-run")) dry = 1;
        else if (!strcmp(argv[i], "--set") || !strcmp(argv[i], "--resume")) {
            if (i + 1 >= argc) {
                free(sets);
                return fail(EXIT_BAD_INPUT, "%s needs a value", argv[i]);
            }
            if (argv[i][2] == 's') sets[nsets++] = argv[++i];
            else resume = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) sets[nsets++] = argv[i] + 6;
        else if (argv[i][0] == '-') {
            free(sets);
            return fail(EXIT_BAD_INPUT, "%s: unknown option %s", cmd, argv[i]);
        } else if (script) {
            free(sets);
            return fail(EXIT_BAD_INPUT, "%s: one script at a time (got %s and %s)", cmd, script, argv[i]);
        } else script = argv[i];
    }
    if (!script) {
        free(sets);
        return fail(EXIT_BAD_INPUT, inspect == 2 ? "usage: hone eval SCRIPT.lua --adapter DIR [--out FILE] [--set key=value ...]"
                                    : inspect ? "usage: hone inspect SCRIPT.lua [--n N] [--split train|eval] [--set key=value ...]"
                                            : "usage: hone run SCRIPT.lua [--set key=value ...] [--resume RUN_DIR|latest] [--dry-run]");
    }
    if (inspect == 2 && !adapter) {
        free(sets);
        return fail(EXIT_BAD_INPUT, "eval: --adapter DIR is required (a checkpoint directory)");
    }
    app a = {0};
    int rc = app_init(&a);
    if (rc) {
        free(sets);
        return rc;
    }
    hone_err err = {0};
    hone_lua *hl = NULL;
    hone_node *root = NULL;
    hone_config *cfg = NULL;
    int code = 0;
    if (hone_lua_new(&hl, a.paths.lua_dir, a.reg, &err)) {
        code = fail(EXIT_RUN_FAILED, "%s", err.msg);
        goto out;
    }
    if (resume) hone_lua_set_global(hl, "HONE_RESUME", resume);   /* hone.sweep continues that sweep */
    if (dry) hone_lua_set_global(hl, "HONE_DRY_RUN", "1");         /* hone.sweep shows its plan */
    if (hone_lua_run_file(hl, script, &root, &err)) {
        code = fail(EXIT_BAD_INPUT, "%s", err.msg);
        goto out;
    }
    if (!root) {
        /* the script did its work itself (hone.optimize, hone.sweep, ...) and returned nothing */
        if (resume && hone_lua_global_true(hl, "HONE_RESUME_USED")) goto out;
        if (dry && !nsets && hone_lua_global_true(hl, "HONE_DRY_RUN_USED")) goto out;
        if (nsets || dry || resume)
            code = fail(EXIT_BAD_INPUT, "%s: returned no experiment, so --set, --dry-run and --resume have nothing to act on", script);
        goto out;
    }
    int own_output_dir = 0;
    for (int i = 0; i < nsets; i++) {
        own_output_dir |= !strncmp(sets[i], "output_dir=", 11);
        if (add_set(root, sets[i], "", &err)) {
            code = fail(EXIT_BAD_INPUT, "%s", err.msg);
            goto out;
        }
    }
    char real[PATH_MAX];
    if (resume && strcmp(resume, "latest") && !own_output_dir && realpath(resume, real)) {
        /* --resume DIR: the run's output_dir is the directory that holds it (its token cache too) */
        char parent[PATH_MAX + 16];
        char *slash = strrchr(real, '/');
        if (slash) slash[slash == real] = 0;   /* a run directly under / keeps the "/" */
        snprintf(parent, sizeof parent, "output_dir=%s", real);
        if (add_set(root, parent, "", &err)) {
            code = fail(EXIT_BAD_INPUT, "%s", err.msg);
            goto out;
        }
    }
    if (load_script_plugins(&a, root, script, &err) ||
        hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, a.reg, &err) ||
        hone_project_name_check(hone_config_str(cfg, "project"), &err)) {
        code = fail(EXIT_BAD_INPUT, "%s: %s", script, err.msg);
        goto out;
    }
    cfg->lua = hl;   /* data.chat_function and other script functions run in it */
    if (inspect == 2) {
        if (hone_eval_checkpoint(cfg, adapter, out_path, &err)) code = fail(EXIT_RUN_FAILED, "%s: %s", script, err.msg);
        goto out;
    }
    if (inspect) {
        if (hone_inspect(cfg, nshow, eval_split, isatty(STDOUT_FILENO), &err)) code = fail(EXIT_RUN_FAILED, "%s: %s", script, err.msg);
        goto out;
    }
    data_plan dp;
    if (plan_run(cfg, &dp, &err)) {
        code = fail(EXIT_BAD_INPUT, "%s: %s", script, err.msg);
        goto out;
    }
    if (dry) {
        cJSON *j = hone_run_config_json(cfg, script, NULL, nsets, sets);
        char *text = cJSON_Print(j);
        printf("resolved config:\n%s\n\n", text ? text : "(out of memory)");
        free(text);
        cJSON_Delete(j);
        print_plan(cfg, &dp);
        printf("\ndry run: nothing was created\n");
        goto out;
    }
    char path[PATH_MAX], name[300];
    char file[PATH_MAX + 32];
    if (resume) {
        if (find_run(cfg, resume, path, sizeof path, name, sizeof name, &err) || check_same_config(cfg, path, &err)) {
            code = fail(EXIT_BAD_INPUT, "%s: --resume %s: %s", script, resume, err.msg);
            goto out;
        }
    } else {
        if (hone_rundir_create(hone_config_str(cfg, "output_dir"), hone_config_str(cfg, "project"), time(NULL), path,
                               sizeof path, name, sizeof name, &err)) {
            code = fail(EXIT_RUN_FAILED, "%s", err.msg);
            goto out;
        }
        char *src = NULL;
        size_t srclen = 0;
        cJSON *j = hone_run_config_json(cfg, script, name, nsets, sets);
        snprintf(file, sizeof file, "%s/config.json", path);
        rc = write_json(file, j, &err);
        cJSON_Delete(j);
        if (!rc) rc = hone_read_file(script, &src, &srclen, &err);
        snprintf(file, sizeof file, "%s/experiment.lua", path);
        if (!rc) rc = hone_write_file(file, src, srclen, &err);
        free(src);
        if (rc) {
            code = fail(EXIT_RUN_FAILED, "%s", err.msg);
            goto out;
        }
    }
    printf("%s %s (%s)\n", resume ? "resuming run" : "run", name, path);
    fflush(stdout);
    int interrupted = 0;
    if (hone_train(cfg, path, resume != NULL, &interrupted, &err)) {
        /* a run that failed before its loop began still says so in its summary */
        snprintf(file, sizeof file, "%s/summary.json", path);
        if (!hone_is_file(file)) {
            cJSON *sum = cJSON_CreateObject();
            cJSON_AddStringToObject(sum, "status", "failed");
            cJSON_AddStringToObject(sum, "error", err.msg);
            hone_err werr = {0};
            write_json(file, sum, &werr);
            cJSON_Delete(sum);
        }
        code = fail(EXIT_RUN_FAILED, "run %s failed: %s", name, err.msg);
        goto out;
    }
    if (interrupted) code = 130;
out:
    hone_config_free(cfg);
    hone_node_free(root);
    hone_lua_free(hl);
    app_free(&a);
    free(sets);
    return code;
}

/* ---- hone convert ------------------------------------------------------------------ */

static int cmd_convert(int argc, char **argv)
{
    static const char usage[] = "usage: hone convert MODEL.gguf OUT_DIR\n"
                                "       hone convert BASE_DIR --adapter DIR OUT_DIR [--dtype bf16|f32]\n"
                                "       hone convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf [--type f16|q8_0]";
    const char *pos[2] = {NULL, NULL}, *adapter = NULL, *dtype = NULL, *to = NULL, *qtype = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--adapter") && i + 1 < argc) adapter = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
        else if (!strcmp(argv[i], "--to") && i + 1 < argc) to = argv[++i];
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) qtype = argv[++i];
        else if (argv[i][0] == '-' || npos == 2) return fail(EXIT_BAD_INPUT, "convert: unexpected %s\n%s", argv[i], usage);
        else pos[npos++] = argv[i];
    }
    if (npos != 2) return fail(EXIT_BAD_INPUT, "%s", usage);
    hone_err err = {0};
    if (to && strcmp(to, "gguf")) return fail(EXIT_BAD_INPUT, "convert: --to %s: only gguf", to);
    if (qtype && !to) return fail(EXIT_BAD_INPUT, "convert: --type goes with --to gguf\n%s", usage);
    if (to) {
        uint32_t t = HONE_GGML_F16;
        if (qtype && !strcmp(qtype, "q8_0")) t = HONE_GGML_Q8_0;
        else if (qtype && strcmp(qtype, "f16")) return fail(EXIT_BAD_INPUT, "convert: --type %s: f16 or q8_0", qtype);
        if (dtype) return fail(EXIT_BAD_INPUT, "convert: --dtype is for safetensors output; GGUF takes --type");
        if (!hone_is_dir(pos[0])) return fail(EXIT_BAD_INPUT, "convert: %s: not a model directory", pos[0]);
        if (adapter && !hone_is_dir(adapter)) return fail(EXIT_BAD_INPUT, "convert: --adapter %s: not a directory", adapter);
        hone_export_info xi;
        if (hone_export_gguf(pos[0], adapter, pos[1], t, &xi, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
        printf("%s%s%s -> %s: %zu tensors, %zu parameters, matrices in %s, norms in F32", pos[0], adapter ? " + " : "",
               adapter ? adapter : "", pos[1], xi.tensors, xi.params, t == HONE_GGML_F16 ? "F16" : "Q8_0");
        if (adapter) printf(" (%zu merged, scaling %g)", xi.merged, (double)xi.scale);
        printf("\n");
        return 0;
    }
    if (adapter) {
        hone_dtype dt = HONE_DT_BF16;
        if (dtype && !strcmp(dtype, "f32")) dt = HONE_DT_F32;
        else if (dtype && strcmp(dtype, "bf16")) return fail(EXIT_BAD_INPUT, "convert: --dtype %s: bf16 or f32", dtype);
        if (!hone_is_dir(pos[0])) return fail(EXIT_BAD_INPUT, "convert: %s: not a model directory", pos[0]);
        if (!hone_is_dir(adapter)) return fail(EXIT_BAD_INPUT, "convert: --adapter %s: not a directory", adapter);
        hone_merge_info mi;
        if (hone_merge_adapter(pos[0], adapter, pos[1], dt, &mi, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
        printf("%s + %s -> %s: %zu tensors (%zu merged, scaling %g), %zu parameters in %s; config.json and the "
               "tokenizer files copied\n", pos[0], adapter, pos[1], mi.tensors, mi.merged, (double)mi.scale, mi.params,
               dt == HONE_DT_BF16 ? "bf16" : "f32");
        return 0;
    }
    if (dtype) return fail(EXIT_BAD_INPUT, "convert: --dtype goes with --adapter\n%s", usage);
    hone_convert_info info;
    if (hone_convert_gguf(pos[0], pos[1], &info, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
    printf("%s -> %s: %zu tensors, %zu parameters (%zu dequantized to fp32); config.json, generation_config.json, "
           "model.safetensors\n", pos[0], pos[1], info.tensors, info.params, info.dequantized);
    if (info.tokenizer_written)
        printf("tokenizer: rebuilt from the GGUF's %s vocabulary as tokenizer.json + tokenizer_config.json\n",
               info.tokenizer);
    else if (info.tokenizer[0])
        printf("tokenizer: the GGUF's \"%s\" vocabulary is not converted yet: copy the model's tokenizer.json and "
               "tokenizer_config.json into %s, or set model.tokenizer\n", info.tokenizer, pos[1]);
    return 0;
}

/* ---- hone runs --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `hone report DIR`: redraws a run's or a sweep's report.html from its files */
static int cmd_report(int argc, char **argv)
{
    if (argc != 2) return fail(EXIT_BAD_INPUT, "usage: hone report RUN_DIR|SWEEP_DIR");
    char path[PATH_MAX + 40];
    hone_err err = {0};
    snprintf(path, sizeof path, "%s/sweep.json", argv[1]);
    int sweep = hone_is_file(path);
    snprintf(path, sizeof path, "%s/%s", argv[1], sweep ? "summary.csv" : "config.json");
    if (!hone_is_file(path))
        return fail(EXIT_BAD_INPUT, "report: %s: not a run or a finished sweep directory (no %s)", argv[1], path);
    int rc = sweep ? hone_write_sweep_report(argv[1], &err) : hone_write_report(argv[1], &err);
    if (rc) return fail(EXIT_RUN_FAILED, "report: %s", err.msg);
    printf("%s/report.html\n", argv[1]);
    return 0;
}

/* every run directory under dir: its status, steps, loss and best checkpoint */
static int cmd_runs(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "runs";
    if (argc > 2) return fail(EXIT_BAD_INPUT, "usage: hone runs [DIR]");
    DIR *d = opendir(dir);
    if (!d) return fail(EXIT_BAD_INPUT, "runs: %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    char path[PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/config.json", dir, e->d_name);
        if (!hone_is_file(path)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof *names);
            if (!p) break;
            names = p;
        }
        names[n++] = hone_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    printf("%-36s %-13s %7s %7s %10s  %s\n", "run", "status", "steps", "epochs", "loss", "best");
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/summary.json", dir, names[i]);
        char *text = NULL, best[300] = "-", status[32] = "no summary";
        double steps = 0, epochs = 0, loss = NAN;
        hone_err err = {0};
        if (hone_read_file(path, &text, NULL, &err) == 0) {
            cJSON *j = cJSON_Parse(text);
            const cJSON *st = cJSON_GetObjectItem(j, "status"), *bc = cJSON_GetObjectItem(j, "best_checkpoint");
            const cJSON *bm = cJSON_GetObjectItem(j, "best_metric"), *bv = cJSON_GetObjectItem(j, "best_value");
            if (cJSON_IsString(st)) snprintf(status, sizeof status, "%s", st->valuestring);
            steps = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "steps"));
            epochs = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "epochs"));
            loss = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "train_loss"));
            if (cJSON_IsString(bc) && cJSON_IsString(bm) && cJSON_IsNumber(bv))
                snprintf(best, sizeof best, "%s (%s %.4g)", bc->valuestring, bm->valuestring, bv->valuedouble);
            cJSON_Delete(j);
            free(text);
        } else {
            snprintf(status, sizeof status, "running/killed");   /* no summary yet: live, or stopped hard */
        }
        printf("%-36s %-13s %7.0f %7.0f %10.4f  %s\n", names[i], status, isnan(steps) ? 0 : steps,
               isnan(epochs) ? 0 : epochs, loss, best);
        free(names[i]);
    }
    if (!n) printf("(no runs in %s)\n", dir);
    free(names);
    /* a sweep directory: its summary, sorted by the metric, with the varied keys */
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    char *md = NULL;
    hone_err err = {0};
    if (hone_is_file(path)) {
        snprintf(path, sizeof path, "%s/summary.md", dir);
        if (hone_read_file(path, &md, NULL, &err) == 0) printf("\nsweep summary (%s):\n%s", path, md);
        else printf("\n(the sweep has no summary yet: re-run its script to finish it)\n");
        free(md);
    }
    return 0;
}

/* ---- hone tokenize ---------------------------------------------------------------- */

static void print_json_string(const char *s, size_t n)
{
    cJSON *j = cJSON_CreateString("");
    char *copy = hone_strndup(s, n);
    if (j && copy) {
        cJSON_SetValuestring(j, copy);
        char *text = cJSON_PrintUnformatted(j);
        if (text) fputs(text, stdout);
        free(text);
    }
    free(copy);
    cJSON_Delete(j);
}

static int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    int special = 1, json = 0, decode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--decode")) decode = 1;
        else return fail(EXIT_BAD_INPUT, "usage: hone tokenize --tokenizer PATH [--no-special] [--json] [--decode]");
    }
    if (!path) return fail(EXIT_BAD_INPUT, "usage: hone tokenize --tokenizer PATH [--no-special] [--json] [--decode]");
    hone_err err = {0};
    hone_tokenizer *t = NULL;
    if (hone_tokenizer_load(&t, path, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    tok_ids ids = {0};
    tok_buf text = {0};
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        cJSON *j = NULL;
        const char *s = line;
        size_t n = (size_t)len;
        if (json || decode) {
            j = cJSON_ParseWithLength(line, (size_t)len);
            if (decode ? !cJSON_IsArray(j) : !cJSON_IsString(j)) {
                cJSON_Delete(j);
                rc = fail(EXIT_BAD_INPUT, "stdin:%ld: expected %s", lineno, decode ? "a JSON list of ids" : "a JSON string");
                break;
            }
            if (!decode) s = j->valuestring, n = strlen(j->valuestring);
        }
        if (decode) {
            ids.n = 0;
            for (const cJSON *e = j->child; e && !rc; e = e->next)
                if (!cJSON_IsNumber(e) || tok_ids_push(&ids, (int32_t)e->valuedouble))
                    rc = fail(EXIT_BAD_INPUT, "stdin:%ld: ids must be numbers", lineno);
            if (!rc && hone_tokenizer_decode(t, ids.v, ids.n, !special, &text, &err))
                rc = fail(EXIT_BAD_INPUT, "stdin:%ld: %s", lineno, err.msg);
            if (!rc) {
                if (json) print_json_string(text.s, text.n);
                else fwrite(text.s, 1, text.n, stdout);
                putchar('\n');
            }
        } else {
            ids.n = 0;
            if (hone_tokenizer_encode(t, s, n, special, &ids, &err)) rc = fail(EXIT_RUN_FAILED, "stdin:%ld: %s", lineno, err.msg);
            else {
                putchar('[');
                for (size_t i = 0; i < ids.n; i++) printf(i ? ", %d" : "%d", ids.v[i]);
                puts("]");
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    free(ids.v);
    free(text.s);
    hone_tokenizer_free(t);
    return rc;
}

/* ---- hone generate --------------------------------------------------------------- */

/* r, alpha, rslora and target modules of a PEFT adapter dir */
static int adapter_settings(const char *dir, hone_model_opts *mo, hone_err *err)
{
    hone_adapter_config ac;
    int rc = hone_adapter_config_read(dir, &ac, err);
    if (!rc) mo->r = ac.r, mo->alpha = ac.alpha, mo->rslora = ac.rslora, mo->targets = ac.targets;
    return rc;
}

typedef struct stop_ctx {
    hone_tokenizer *tok;
    char **stops;
    int nstops;
    tok_buf text;
} stop_ctx;

/* a stop string anywhere in the decoded continuation ends it */
static int stop_strings(void *vctx, int seq, const int32_t *ids, int n)
{
    (void)seq;
    stop_ctx *c = vctx;
    hone_err err = {0};
    if (hone_tokenizer_decode(c->tok, ids, (size_t)n, 1, &c->text, &err)) return 0;
    for (int i = 0; i < c->nstops; i++)
        if (strstr(c->text.s, c->stops[i])) return 1;
    return 0;
}

static int cmd_generate(int argc, char **argv)
{
    const char *usage = "usage: hone generate MODEL_DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) "
                        "[--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT ...] "
                        "[--quantizer nf4|fp4|int8|none [--double-quant]]";
    char **stops = calloc((size_t)argc, sizeof *stops);
    int nstops = 0;
    if (!stops) return fail(EXIT_RUN_FAILED, "out of memory");
    if (argc < 2 || argv[1][0] == '-') {
        free(stops);
        return fail(EXIT_BAD_INPUT, "%s", usage);
    }
    const char *dir = argv[1], *adapter = NULL, *ids_text = NULL, *prompt = NULL, *qname = NULL;
    int qdouble = 0;
    hone_gen_opts go = {32, 0.0, 0, 1.0, NULL, 0, 42, NULL, NULL};
    for (int i = 2; i < argc; i += 2) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        long long v;
        if (!strcmp(arg, "--double-quant")) {
            qdouble = 1;
            i--;
            continue;
        }
        if (!val) {
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: %s needs a value", arg);
        }
        if (!strcmp(arg, "--adapter")) adapter = val;
        else if (!strcmp(arg, "--quantizer")) qname = val;
        else if (!strcmp(arg, "--stop") && *val) stops[nstops++] = (char *)val;
        else if (!strcmp(arg, "--ids")) ids_text = val;
        else if (!strcmp(arg, "--prompt")) prompt = val;
        else if (!strcmp(arg, "--max-new-tokens") && !hone_parse_ll(val, &v) && v >= 1 && v <= 1 << 20) go.max_new_tokens = (int)v;
        else if (!strcmp(arg, "--top-k") && !hone_parse_ll(val, &v) && v >= 0) go.top_k = (int)v;
        else if (!strcmp(arg, "--seed") && !hone_parse_ll(val, &v) && v >= 0) go.seed = (uint64_t)v;
        else if (!strcmp(arg, "--temperature") && !hone_parse_double(val, &d) && d >= 0) go.temperature = d;
        else if (!strcmp(arg, "--top-p") && !hone_parse_double(val, &d) && d > 0 && d <= 1) go.top_p = d;
        else {
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: bad option %s %s\n%s", arg, val, usage);
        }
    }
    if (!ids_text == !prompt) {
        free(stops);
        return fail(EXIT_BAD_INPUT, "generate: give --prompt TEXT or --ids 1,2,3\n%s", usage);
    }
    hone_err err = {0};
    hone_value val = {0};
    hone_tokenizer *tok = NULL;
    tok_ids pids = {0};
    size_t n = 0;
    if (prompt || nstops) {
        /* the model dir's tokenizer: the prompt goes in with its BOS, as transformers does */
        if (hone_tokenizer_load(&tok, dir, &err) || (prompt && hone_tokenizer_encode(tok, prompt, strlen(prompt), 1, &pids, &err))) {
            hone_tokenizer_free(tok);
            free(pids.v);
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
        }
        n = pids.n;
    }
    if (ids_text) {
        hone_option ids_def = {"ids", HONE_OPT_NUMLIST, 0, 0, NULL, 0, 0, NULL, 0, "ids"};
        hone_node tmp = {.type = HONE_NODE_STRING, .str = (char *)ids_text, .from_cli = 1};
        if (hone_value_from_node(&val, &ids_def, &tmp, "--ids", &err) || val.n == 0) {
            hone_value_clear(&val);
            hone_tokenizer_free(tok);
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: --ids: expected token ids separated by commas");
        }
        n = val.n;
    }
    if (n == 0) {
        hone_tokenizer_free(tok);
        free(pids.v);
        free(stops);
        return fail(EXIT_BAD_INPUT, "generate: the prompt is empty");
    }
    int32_t *ids = malloc(n * sizeof *ids), *out = malloc((size_t)go.max_new_tokens * sizeof *out);
    for (size_t i = 0; ids && i < n; i++) ids[i] = ids_text ? (int32_t)val.list[i] : pids.v[i];
    stop_ctx sc = {tok, stops, nstops, {0}};
    if (nstops) {
        go.stop = stop_strings;
        go.stop_ctx = &sc;
    }
    app a = {0};
    int rc = app_init(&a);
    hone_opts *qo = NULL;
    hone_model *m = NULL;
    hone_model_config mc;
    if (!rc && (!ids || !out)) rc = fail(EXIT_RUN_FAILED, "out of memory");
    if (!rc && hone_model_config_load(&mc, dir, &err)) rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
    /* like from_pretrained, a bitsandbytes checkpoint loads with its own quantization */
    if (!rc && !qname && mc.prequant[0]) {
        qname = mc.prequant;
        qdouble = mc.prequant_double;
    }
    if (!qname) qname = "none";
    const hone_feature *q = rc ? NULL : hone_registry_find(a.reg, HONE_KIND_QUANTIZER, qname);
    hone_node *qn = hone_node_new(HONE_NODE_TABLE);
    if (qdouble) hone_node_set_path(qn, "double_quant", "true");
    if (!rc && !q) rc = fail(EXIT_BAD_INPUT, "generate: --quantizer %s is not registered", qname);
    if (!rc && hone_opts_resolve(&qo, q->info->options, qn, "quantizer", qname, &err))
        rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
    hone_node_free(qn);
    if (!rc) {
        hone_model_opts mo = {.quantizer = q, .quantizer_opts = qo, .lora = 1, .r = 1, .alpha = 1, .seed = 1, .batch = 1,
                              .seq = (int)n < mc.max_pos ? (int)n : mc.max_pos};
        if (mc.eos_id >= 0) {
            go.eos = &mc.eos_id;
            go.neos = 1;
        }
        int len = (int)n, got = 0;
        const int32_t *prompts[1] = {ids};
        if ((adapter && adapter_settings(adapter, &mo, &err)) || hone_model_create(&m, &mc, dir, &mo, &err) ||
            (adapter && hone_model_load_adapter(m, adapter, &err)) ||
            hone_model_generate(m, prompts, &len, 1, &go, &out, &got, &err))
            rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
        else if (prompt) {
            tok_buf text = {0};
            if (hone_tokenizer_decode(tok, out, (size_t)got, 1, &text, &err)) rc = fail(EXIT_RUN_FAILED, "generate: %s", err.msg);
            else {
                /* a stop string ends the text where it begins */
                for (int k = 0; k < nstops; k++) {
                    char *at = strstr(text.s, stops[k]);
                    if (at) text.n = (size_t)(at - text.s), *at = '\0';
                }
                fwrite(text.s, 1, text.n, stdout);
                putchar('\n');
            }
            free(text.s);
        } else {
            printf("[");
            for (int i = 0; i < got; i++) printf("%s%d", i ? ", " : "", out[i]);
            printf("]\n");
        }
    }
    hone_model_free(m);
    hone_opts_free(qo);
    hone_value_clear(&val);
    hone_tokenizer_free(tok);
    free(pids.v);
    free(sc.text.s);
    free(stops);
    free(ids);
    free(out);
    if (a.reg) app_free(&a);
    return rc;
}

/* ---- hone quantize ---------------------------------------------------------------- */

static int cmd_quantize(int argc, char **argv)
{
    const char *usage = "usage: hone quantize MODEL_DIR OUT_DIR --quantizer nf4|fp4 [--set key=value ...]";
    if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-') return fail(EXIT_BAD_INPUT, "%s", usage);
    const char *src = argv[1], *dst = argv[2], *qname = NULL;
    hone_err err = {0};
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) {
            hone_node_free(root);
            return fail(EXIT_BAD_INPUT, "%s", usage);
        }
        if (!strcmp(argv[i], "--quantizer")) qname = argv[i + 1];
        else if (!strcmp(argv[i], "--set")) {
            if (add_set(root, argv[i + 1], "", &err)) {
                hone_node_free(root);
                return fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
            }
        } else {
            hone_node_free(root);
            return fail(EXIT_BAD_INPUT, "quantize: unknown option %s\n%s", argv[i], usage);
        }
    }
    if (!qname) {
        hone_node_free(root);
        return fail(EXIT_BAD_INPUT, "%s", usage);
    }
    app a = {0};
    int rc = app_init(&a);
    hone_opts *qo = NULL;
    hone_model *m = NULL;
    hone_model_config mc;
    const hone_feature *q = rc ? NULL : hone_registry_find(a.reg, HONE_KIND_QUANTIZER, qname);
    if (!rc && !q) rc = fail(EXIT_BAD_INPUT, "quantize: unknown quantizer '%s'", qname);
    char what[64];
    snprintf(what, sizeof what, "quantizer %s", qname);
    if (!rc && hone_opts_resolve(&qo, q->info->options, root, "--set", what, &err)) rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
    if (!rc && hone_model_config_load(&mc, src, &err)) rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
    if (!rc && mc.prequant[0])
        rc = fail(EXIT_BAD_INPUT, "quantize: %s is already a bitsandbytes %s checkpoint; quantize the original weights", src,
                  mc.prequant);
    /* never overwrite a checkpoint: a typo in OUT_DIR must not cost the user a model */
    char outst[4096];
    snprintf(outst, sizeof outst, "%s/model.safetensors", dst);
    if (!rc && access(outst, F_OK) == 0)
        rc = fail(EXIT_BAD_INPUT, "quantize: %s already exists; choose another OUT_DIR or remove it", outst);
    if (!rc) {
        hone_model_opts mo = {.quantizer = q, .quantizer_opts = qo, .lora = 1, .r = 1, .alpha = 1, .seed = 1, .batch = 1,
                              .seq = 1};
        if (hone_model_create(&m, &mc, src, &mo, &err) || hone_model_save_bnb4(m, src, dst, &err))
            rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
        else {
            size_t pb, fb, qb, ab;
            hone_model_memory(m, &pb, &fb, &qb, &ab);
            printf("%s -> %s: bitsandbytes %s checkpoint, base %.1f MB\n", src, dst, qname, qb / 1e6);
        }
    }
    hone_model_free(m);
    hone_opts_free(qo);
    hone_node_free(root);
    if (a.reg) app_free(&a);
    return rc;
}

/* ---- hone bench ------------------------------------------------------------------ */

static int cmd_bench(int argc, char **argv)
{
    hone_bench_opts o;
    hone_bench_defaults(&o);
    hone_err err = {0};
    const char *tok = NULL, *text = NULL, *quant = NULL;
    int dq = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--tokenizer")) tok = argv[i + 1];
        if (i + 1 < argc && !strcmp(argv[i], "--text")) text = argv[i + 1];
        if (i + 1 < argc && !strcmp(argv[i], "--quant")) quant = argv[i + 1];
        if (!strcmp(argv[i], "--double-quant")) dq = 1;
    }
    int optim = 0;
    long long optim_params = 16 << 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--optimizers")) optim = 1;
        if (i + 1 < argc && !strcmp(argv[i], "--params") &&
            (hone_parse_ll(argv[i + 1], &optim_params) || optim_params < 4096 || optim_params > (1LL << 32)))
            return fail(EXIT_BAD_INPUT, "bench: --params %s: expected 4096..2^32", argv[i + 1]);
    }
    if (optim) {
        app a = {0};
        int rc = app_init(&a);
        if (rc) return rc;
        if (hone_bench_optimizers(a.reg, (size_t)optim_params, 5, &err)) rc = fail(EXIT_RUN_FAILED, "bench: %s", err.msg);
        app_free(&a);
        return rc;
    }
    if (quant) {
        app a = {0};
        int rc = app_init(&a);
        if (rc) return rc;
        const hone_feature *q = hone_registry_find(a.reg, HONE_KIND_QUANTIZER, quant);
        hone_node *n = hone_node_new(HONE_NODE_TABLE);
        if (dq) hone_node_set_path(n, "double_quant", "true");
        hone_opts *qo = NULL;
        if (!q) rc = fail(EXIT_BAD_INPUT, "bench: unknown quantizer '%s'", quant);
        else if (hone_opts_resolve(&qo, q->info->options, n, "quantizer", quant, &err) || hone_bench_quant(q, qo, 0, &err))
            rc = fail(EXIT_RUN_FAILED, "bench: %s", err.msg);
        hone_node_free(n);
        hone_opts_free(qo);
        app_free(&a);
        return rc;
    }
    if (tok || text) {
        long long th = 1;
        for (int i = 1; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--threads") && (hone_parse_ll(argv[i + 1], &th) || th < 1 || th > 256))
                return fail(EXIT_BAD_INPUT, "bench: --threads %s: expected 1..256", argv[i + 1]);
        if (!tok || !text) return fail(EXIT_BAD_INPUT, "bench: --tokenizer PATH and --text FILE go together");
        return hone_bench_tokenizer(tok, text, (int)th, &err) ? fail(EXIT_BAD_INPUT, "bench: %s", err.msg) : 0;
    }
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v = 0;
        if (!strcmp(arg, "--full") || !strcmp(arg, "--checkpointing")) {
            *(arg[2] == 'f' ? &o.full : &o.checkpointing) = 1;
            i--;
            continue;
        }
        if (!val) return fail(EXIT_BAD_INPUT, "bench: %s needs a value", arg);
        if (!strcmp(arg, "--model-config")) {
            char *text = NULL;
            if (hone_read_file(val, &text, NULL, &err) || hone_model_config_parse(&o.cfg, text, val, &err)) {
                free(text);
                return fail(EXIT_BAD_INPUT, "bench: %s", err.msg);
            }
            free(text);
            continue;
        }
        if (hone_parse_ll(val, &v) || v < 1 || v > 1 << 20)
            return fail(EXIT_BAD_INPUT, "bench: %s %s: expected a positive integer", arg, val);
        if (!strcmp(arg, "--batch")) o.batch = (int)v;
        else if (!strcmp(arg, "--seq")) o.seq = (int)v;
        else if (!strcmp(arg, "--steps")) o.steps = (int)v;
        else if (!strcmp(arg, "--r")) o.r = (int)v;
        else if (!strcmp(arg, "--threads")) o.threads = (int)v;
        else return fail(EXIT_BAD_INPUT, "bench: unknown option %s (--model-config F --batch B --seq T --steps N --r R --threads N --full --checkpointing)", arg);
    }
    if (o.seq > o.cfg.max_pos) o.cfg.max_pos = o.seq;
    app a = {0};
    int rc = app_init(&a);
    if (rc) return rc;
    const hone_feature *q = hone_registry_find(a.reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qo = NULL;
    if (!q || hone_opts_resolve(&qo, q->info->options, NULL, "quantizer", "quantizer none", &err)) {
        app_free(&a);
        return fail(EXIT_RUN_FAILED, "bench: the \"none\" quantizer is not registered");
    }
    o.quantizer = q;
    o.quantizer_opts = qo;
    rc = hone_bench_run(&o, &err);
    hone_opts_free(qo);
    app_free(&a);
    return rc ? fail(EXIT_RUN_FAILED, "bench: %s", err.msg) : 0;
}

static int cmd_run(int argc, char **argv) { return cmd_run_or_inspect(argc, argv, 0); }
static int cmd_inspect(int argc, char **argv) { return cmd_run_or_inspect(argc, argv, 1); }
static int cmd_eval(int argc, char **argv) { return cmd_run_or_inspect(argc, argv, 2); }

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("hone %s (%s)\n", HONE_VERSION, HONE_GIT_REVISION);
    return 0;
}

/* every command: what `hone` and `hone COMMAND --help` print, and what runs it */
static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"run", cmd_run,
     "  run SCRIPT.lua [--set key=value ...] [--resume RUN_DIR|latest] [--dry-run]\n"
     "                                   run an experiment (--dry-run: check it and show the plan)\n"},
    {"plugins", cmd_plugins,
     "  plugins [KIND] [NAME]            list features, or one feature's options\n"
     "  plugins --check FILE.so          run the conformance round on every feature FILE registers\n"},
    {"schedule", cmd_schedule,
     "  schedule NAME --lr LR --steps N [--warmup-ratio R | --warmup-steps W] [--set k=v ...]\n"
     "                                   print \"step,lr\" rows: the lr of each optimizer step\n"},
    {"bench", cmd_bench,
     "  bench [--model-config JSON] [--batch B] [--seq T] [--steps N] [--r R] [--threads N] [--full]\n"
     "        [--checkpointing]       | bench --tokenizer PATH --text FILE [--threads N]\n"
     "                                | bench --quant nf4|fp4|none [--double-quant]\n"
     "                                | bench --optimizers [--params N]\n"
     "                                   training throughput against the sgemm ceiling\n"},
    {"generate", cmd_generate,
     "  generate MODEL_DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]\n"
     "        [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT ...]\n"
     "        [--quantizer nf4|fp4|int8|none [--double-quant]]\n"
     "                                   generate from a prompt (text, or token ids)\n"},
    {"tokenize", cmd_tokenize,
     "  tokenize --tokenizer PATH [--no-special] [--json] [--decode]\n"
     "                                   stdin lines -> JSON id lists (and back with --decode)\n"},
    {"quantize", cmd_quantize,
     "  quantize MODEL_DIR OUT_DIR --quantizer nf4|fp4 [--set double_quant=true]\n"
     "                                   write a bitsandbytes 4-bit checkpoint (loads with transformers)\n"},
    {"runs", cmd_runs, "  runs [DIR]                       the runs under DIR (default runs): status, steps, loss, best\n"},
    {"report", cmd_report, "  report DIR                       (re)draw DIR/report.html for a run or a sweep directory\n"},
    {"convert", cmd_convert,
     "  convert MODEL.gguf OUT_DIR       a llama.cpp GGUF (llama / mistral) into an HF model directory\n"
     "  convert BASE_DIR --adapter DIR OUT_DIR [--dtype bf16|f32]\n"
     "                                   a PEFT LoRA adapter merged into its base (merge_and_unload)\n"
     "  convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf [--type f16|q8_0]\n"
     "                                   a Llama / Mistral model (and adapter) as a llama.cpp GGUF\n"},
    {"eval", cmd_eval,
     "  eval SCRIPT.lua --adapter DIR [--out FILE] [--set k=v ...]\n"
     "                                   the experiment's evaluation on a checkpoint\n"},
    {"inspect", cmd_inspect,
     "  inspect SCRIPT.lua [--n N] [--split train|eval] [--set k=v ...]\n"
     "                                   N examples as the run would train them, trained tokens marked\n"},
    {"version", cmd_version, "  version                          print the version\n"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void print_usage(FILE *f)
{
    fputs("usage: hone COMMAND ...\n\n", f);
    for (int i = 0; i < NCOMMANDS; i++) fputs(commands[i].usage, f);
    fputs("\n`hone COMMAND --help` shows one command's usage.\n", f);
}

int main(int argc, char **argv)
{
    char why[256];
    if (hone_cpu_check(why, sizeof why) != 0) return fail(EXIT_RUN_FAILED, "%s", why);
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_INPUT : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (int i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage:\n%s", commands[i].usage);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "hone: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return EXIT_BAD_INPUT;
}
