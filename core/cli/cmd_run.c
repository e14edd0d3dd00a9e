/* cmd_run.c — `hone run SCRIPT.lua`: the experiment resolved, its run directory made
 * (or the run --resume names reopened), trained; `--dry-run` checks everything a run
 * would refuse and shows the plan without creating anything. Exits 130 when a signal
 * stopped the run after its checkpoint. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "experiment.h"
#include "hone/hone.h"
#include "util.h"

static const char usage[] = "usage: hone run SCRIPT.lua [--set key=value ...] [--resume RUN_DIR|latest] [--dry-run]";

/* the resolved config and the plan; nothing is created */
static int dry_run(cli_exp *e, const char *script, const arg_strings *sets, const data_plan *dp)
{
    cJSON *j = hone_run_config_json(e->cfg, script, NULL, sets->n, (char *const *)sets->v);
    char *text = cJSON_Print(j);
    printf("resolved config:\n%s\n\n", text ? text : "(out of memory)");
    free(text);
    cJSON_Delete(j);
    cli_print_plan(e->cfg, dp);
    printf("\ndry run: nothing was created\n");
    return 0;
}

/* a run that failed before its loop began still says so in its summary */
static void summary_failed(const char *path, const hone_err *err)
{
    char file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/summary.json", path);
    if (hone_is_file(file)) return;
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "status", "failed");
    cJSON_AddStringToObject(sum, "error", err->msg);
    hone_err werr = {0};
    cli_write_json(file, sum, &werr);
    cJSON_Delete(sum);
}

int cmd_run(int argc, char **argv)
{
    const char *script = NULL, *resume = NULL;
    int dry = 0, npos = 0;
    arg_strings sets = {0};
    const arg_opt opts[] = {
        {.name = "--set", .type = ARG_STRINGS, .dest = &sets},
        {.name = "--resume", .type = ARG_STRING, .dest = &resume},
        {.name = "--dry-run", .type = ARG_FLAG, .dest = &dry},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("run", argc, argv, opts, &script, 1, &npos, &err) || !npos) {
        free(sets.v);
        return fail(EXIT_BAD_INPUT, "%s", npos ? err.msg : usage);
    }
    cli_exp e;
    int code = cli_experiment_load(&e, script, &sets, resume, dry);
    if (code || e.done) goto out;
    data_plan dp;   /* what the run would refuse, refused before anything is created */
    if (cli_plan_run(e.cfg, &dp, &err)) {
        code = fail(EXIT_BAD_INPUT, "%s: %s", script, err.msg);
        goto out;
    }
    if (dry) {
        code = dry_run(&e, script, &sets, &dp);
        goto out;
    }
    char path[PATH_MAX], name[300];
    if (resume && (cli_find_run(e.cfg, resume, path, sizeof path, name, sizeof name, &err) ||
                   cli_check_same_config(e.cfg, path, &err))) {
        code = fail(EXIT_BAD_INPUT, "%s: --resume %s: %s", script, resume, err.msg);
        goto out;
    }
    hone_rundir_opts ro = {.dir = resume ? path : NULL, .script = script, .sets = (char *const *)sets.v,
                           .nsets = sets.n, .resume = resume != NULL};
    if (hone_rundir_open(e.cfg, &ro, path, sizeof path, name, sizeof name, &err)) {
        code = fail(EXIT_RUN_FAILED, "%s", err.msg);
        goto out;
    }
    hone_logf(&e.hooks, HONE_LOG_INFO, "%s %s (%s)", resume ? "resuming run" : "run", name, path);
    int interrupted = 0;
    int rc = hone_run_train(e.cfg, &e.hooks, path, resume != NULL, &interrupted, &err);
    hone_term_end(&e.term);
    if (rc) {
        summary_failed(path, &err);
        code = fail(EXIT_RUN_FAILED, "run %s failed: %s", name, err.msg);
    } else if (interrupted) {
        code = 130;
    }
out:
    cli_experiment_free(&e);
    free(sets.v);
    return code;
}
