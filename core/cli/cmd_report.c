/* cmd_report.c — `hone report DIR`: redraws a run's or a sweep's report.html from the
 * files it has already written. */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "report.h"

/* `hone report DIR`: redraws a run's or a sweep's report.html from its files */
int cmd_report(int argc, char **argv)
{
    const char *dir = NULL;
    int npos = 0;
    static const arg_opt none[] = {{0}};
    hone_err err = {0};
    if (cli_parse("report", argc, argv, none, &dir, 1, &npos, &err) || !npos)
        return fail(EXIT_BAD_INPUT, "%s", npos ? err.msg : "usage: hone report RUN_DIR|SWEEP_DIR");
    char path[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    int sweep = hone_is_file(path);
    snprintf(path, sizeof path, "%s/%s", dir, sweep ? "summary.csv" : "config.json");
    if (!hone_is_file(path))
        return fail(EXIT_BAD_INPUT, "report: %s: not a run or a finished sweep directory (no %s)", dir, path);
    int rc = sweep ? hone_write_sweep_report(dir, &err) : hone_write_report(dir, &err);
    if (rc) return fail(EXIT_RUN_FAILED, "report: %s", err.msg);
    printf("%s/report.html\n", dir);
    return 0;
}
