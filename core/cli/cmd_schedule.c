/* cmd_schedule.c — `hone schedule NAME --lr LR --steps N`: the lr of every optimizer
 * step as "step,lr" rows, from the same scheduler plugin and plan a run uses. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "err.h"
#include "config.h"
#include "schedule.h"
#include "util.h"

static const char usage[] =
    "usage: hone schedule NAME --lr LR --steps N [--warmup-ratio R | --warmup-steps W] [--set k=v]";

int cmd_schedule(int argc, char **argv)
{
    double lr = -1, ratio = 0;
    long long steps = -1, wsteps = 0;
    int have_ratio = 0, have_wsteps = 0, npos = 0;
    arg_strings sets = {0};
    const char *pos[1];
    const arg_opt opts[] = {
        {.name = "--lr", .type = ARG_NUMBER, .dest = &lr, .min = 1, .max = 0},   /* > 0: checked below */
        {.name = "--steps", .type = ARG_INT, .dest = &steps, .min = 1, .max = 1e15},
        {.name = "--warmup-ratio", .type = ARG_NUMBER, .dest = &ratio, .min = 0, .max = 1, .given = &have_ratio},
        {.name = "--warmup-steps", .type = ARG_INT, .dest = &wsteps, .min = 0, .max = 1e15, .given = &have_wsteps},
        {.name = "--set", .type = ARG_STRINGS, .dest = &sets},
        {0},
    };
    hone_err err = {0};
    int rc = cli_parse("schedule", argc, argv, opts, pos, 1, &npos, &err);
    if (!rc && npos != 1) rc = hone_errf(&err, HONE_EINVAL, "%s", usage + 7);
    if (!rc && lr == -1) rc = hone_errf(&err, HONE_EINVAL, "--lr is required");
    if (!rc && !(lr > 0)) rc = hone_errf(&err, HONE_EINVAL, "--lr %g: must be a number > 0", lr);
    if (!rc && steps < 0) rc = hone_errf(&err, HONE_EINVAL, "--steps is required");
    if (!rc && have_ratio && have_wsteps) rc = hone_errf(&err, HONE_EINVAL, "give --warmup-ratio or --warmup-steps, not both");
    hone_node *root = rc ? NULL : hone_node_new(HONE_NODE_TABLE);
    if (!rc && (!root || hone_node_set_path(root, "scheduler", pos[0])))
        rc = hone_errf(&err, HONE_ENOMEM, "out of memory");
    for (int i = 0; i < sets.n && !rc; i++) rc = cli_add_set(root, sets.v[i], "scheduler.", &err);
    free(sets.v);
    hone_ctx *ctx = NULL;
    if (rc) {
        hone_node_free(root);
        return fail(EXIT_BAD_INPUT, "schedule: %s", err.msg);
    }
    if ((rc = cli_ctx(&ctx))) {
        hone_node_free(root);
        return rc;
    }
    static const hone_key keys[] = {
        {HONE_KEY_PLUGIN, {"scheduler", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0, "schedule"}, HONE_KIND_SCHEDULER, 1},
    };
    hone_config *cfg = NULL;
    rc = hone_config_resolve(&cfg, keys, 1, root, hone_ctx_registry(ctx), &err);
    hone_node_free(root);
    if (!rc) {
        const hone_cval *c = hone_config_cval(cfg, "scheduler");
        hone_sched_ctx sc = {(long)steps, hone_warmup_steps((long)steps, ratio, (long)wsteps), lr};
        rc = hone_schedule_check(c->feature, c->opts, &sc, &err);
        if (!rc) {
            printf("step,lr\n");
            for (long s = 0; s < steps; s++) printf("%ld,%.17g\n", s, hone_schedule_lr(c->feature, c->opts, &sc, s));
        }
    }
    hone_config_free(cfg);
    hone_ctx_free(ctx);
    return rc ? fail(EXIT_BAD_INPUT, "schedule: %s", err.msg) : 0;
}
