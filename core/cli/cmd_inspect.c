/* cmd_inspect.c — `hone inspect SCRIPT.lua`: N examples as the run would train them,
 * the trained tokens marked, and the split's numbers. */
#include <stdlib.h>

#include "experiment.h"

int cmd_inspect(int argc, char **argv)
{
    const char *script = NULL, *split = "train";
    long long nshow = 5;
    int npos = 0;
    arg_strings sets = {0};
    const arg_opt opts[] = {
        {.name = "--set", .type = ARG_STRINGS, .dest = &sets},
        {.name = "--n", .type = ARG_INT, .dest = &nshow, .min = 0, .max = 1000000},
        {.name = "--split", .type = ARG_STRING, .dest = &split, .choices = "train|eval"},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("inspect", argc, argv, opts, &script, 1, &npos, &err) || !npos) {
        free(sets.v);
        return fail(EXIT_BAD_INPUT, "%s", npos ? err.msg
                    : "usage: hone inspect SCRIPT.lua [--n N] [--split train|eval] [--set key=value ...]");
    }
    cli_exp e;
    int code = cli_experiment_load(&e, script, &sets, NULL, 0);
    if (!code && !e.done &&
        hone_run_inspect(e.cfg, &e.hooks, (int)nshow, split[0] == 'e', e.term.tty, &err))
        code = fail(EXIT_RUN_FAILED, "%s: %s", script, err.msg);
    cli_experiment_free(&e);
    free(sets.v);
    return code;
}
