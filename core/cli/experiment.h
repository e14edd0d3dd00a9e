/* experiment.h — the script-driven commands' shared part (experiment.c). */
#ifndef HONE_CLI_EXPERIMENT_H
#define HONE_CLI_EXPERIMENT_H

#include <stddef.h>

#include "cli.h"
#include "lua_hone.h"
#include "rundir.h"
#include "schedule.h"

typedef struct cli_exp {
    hone_ctx *ctx;
    hone_lua *hl;
    hone_node *root;
    hone_config *cfg;        /* NULL when done */
    int done;                /* the script did its work itself and returned nothing */
    hone_term term;
    hone_lua_run lrun;
    hone_hooks hooks;        /* the terminal printer and the script's functions */
} cli_exp;

/* 0, or the exit code (the message printed); free with cli_experiment_free either way */
int cli_experiment_load(cli_exp *e, const char *script, const arg_strings *sets, const char *resume, int dry);
void cli_experiment_free(cli_exp *e);

/* --dry-run: the numbers a run would start with, counted from the files */
typedef struct data_plan {
    long train_records, eval_records;
    const char *eval_source;
    hone_plan plan;
} data_plan;
int cli_plan_run(const hone_config *cfg, data_plan *d, hone_err *err);
void cli_print_plan(const hone_config *cfg, const data_plan *d);

/* --resume RUN_DIR|latest, and the refusal of a changed recipe */
int cli_find_run(const hone_config *cfg, const char *arg, char *path, size_t n, char *name, size_t nn, hone_err *err);
int cli_check_same_config(const hone_config *cfg, const char *run, hone_err *err);
struct cJSON;
int cli_write_json(const char *path, struct cJSON *j, hone_err *err);

#endif
