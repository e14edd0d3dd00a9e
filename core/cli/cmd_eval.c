/* cmd_eval.c — `hone eval SCRIPT.lua --adapter DIR`: the experiment's evaluation (loss,
 * and generation metrics when it has them) on a checkpoint. */
#include <stdlib.h>

#include "experiment.h"

int cmd_eval(int argc, char **argv)
{
    const char *script = NULL, *adapter = NULL, *out = NULL;
    int npos = 0;
    arg_strings sets = {0};
    const arg_opt opts[] = {
        {.name = "--set", .type = ARG_STRINGS, .dest = &sets},
        {.name = "--adapter", .type = ARG_STRING, .dest = &adapter},
        {.name = "--out", .type = ARG_STRING, .dest = &out},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("eval", argc, argv, opts, &script, 1, &npos, &err) || !npos) {
        free(sets.v);
        return fail(EXIT_BAD_INPUT, "%s", npos ? err.msg
                    : "usage: hone eval SCRIPT.lua --adapter DIR [--out FILE] [--set key=value ...]");
    }
    if (!adapter) {
        free(sets.v);
        return fail(EXIT_BAD_INPUT, "eval: --adapter DIR is required (a checkpoint directory)");
    }
    cli_exp e;
    int code = cli_experiment_load(&e, script, &sets, NULL, 0);
    if (!code && !e.done && hone_run_eval(e.cfg, &e.hooks, adapter, out, &err))
        code = fail(EXIT_RUN_FAILED, "%s: %s", script, err.msg);
    cli_experiment_free(&e);
    free(sets.v);
    return code;
}
