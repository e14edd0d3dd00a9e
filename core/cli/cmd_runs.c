/* cmd_runs.c — `hone runs [DIR]`: every run under DIR with its status, steps, loss and
 * best checkpoint, and a sweep directory's summary. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* every run directory under dir: its status, steps, loss and best checkpoint */
int cmd_runs(int argc, char **argv)
{
    const char *dir = "runs";
    int npos = 0;
    static const arg_opt none[] = {{0}};
    hone_err perr = {0};
    if (cli_parse("runs", argc, argv, none, &dir, 1, &npos, &perr))
        return fail(EXIT_BAD_INPUT, "%s\nusage: hone runs [DIR]", perr.msg);
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
