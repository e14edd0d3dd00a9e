/* replay_check.c — compares a hone run with the TRL run it replays
 * (tests/reference/make_sft_fixtures.py): the fixture's micro-batches are consecutive
 * runs of its order file, as hone forms them; then step by step the loss (relative
 * tolerance LOSS_TOL) and grad_norm (NORM_TOL) of metrics.jsonl against TRL's, and each
 * epoch's eval_loss against the token-weighted mean of TRL's eval forwards. Prints a
 * table and the first step that differs; exit 0 when all agree, 1 when not, 2 on bad
 * input.
 *   replay_check TRL.json ORDER.txt RUN_DIR/metrics.jsonl LOSS_TOL NORM_TOL */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static double rel(double a, double b)
{
    return fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1e-30);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

/* the fixture's micro-batches, in order, against the order file cut into batches of B
 * and windows of G (the last window of an epoch may be short) */
static int check_batches(const cJSON *steps, const char *order_path, int B, int G)
{
    char *text = NULL;
    hone_err err = {0};
    if (hone_read_file(order_path, &text, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int bad = 0;
    const cJSON *step = steps->child;
    int si = 0, mi = 0;   /* the next micro-batch of the fixture: step si, batch mi */
    /* a line's numbers: each takes a digit and a separator, so half the file bounds them */
    long *ids = malloc((strlen(text) / 2 + 1) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "out of memory\n");
        free(text);
        return 2;
    }
    for (char *line = strtok(text, "\n"); line && !bad; line = strtok(NULL, "\n")) {
        int n = 0;
        for (char *p = line, *q;; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p) break;
            ids[n++] = v;
        }
        int in_window = 0;
        for (int at = 0; at < n && !bad; at += B) {
            const cJSON *mbs = cJSON_GetObjectItemCaseSensitive(step, "micro_batches");
            const cJSON *mb = cJSON_GetArrayItem(mbs, mi);
            int want = n - at < B ? n - at : B;
            bad = !mb || cJSON_GetArraySize(mb) != want;
            for (int k = 0; k < want && !bad; k++) bad = cJSON_GetArrayItem(mb, k)->valueint != ids[at + k];
            if (bad) printf("micro-batch %d of step %d is not records %d.. of the order (batch %d, grad_accum %d)\n",
                            mi + 1, si + 1, at, B, G);
            mi++;
            in_window++;
            if (in_window == G || at + B >= n) {   /* the window ends: so must the fixture's step */
                bad |= mi != cJSON_GetArraySize(mbs);
                if (bad && mi != cJSON_GetArraySize(mbs))
                    printf("step %d has %d micro-batches, the order gives %d\n", si + 1, cJSON_GetArraySize(mbs), mi);
                step = step ? step->next : NULL;
                si++;
                mi = 0;
                in_window = 0;
            }
        }
    }
    free(ids);
    free(text);
    if (!bad && step) {
        printf("the fixture has steps beyond the order file\n");
        bad = 1;
    }
    if (!bad) printf("batches: the fixture's %d steps are consecutive runs of the order, %d per micro-batch\n", si, B);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: replay_check TRL.json ORDER.txt METRICS.jsonl LOSS_TOL NORM_TOL\n");
        return 2;
    }
    double loss_tol = atof(argv[4]), norm_tol = atof(argv[5]);
    char *text = NULL, *mtext = NULL;
    hone_err err = {0};
    if (hone_read_file(argv[1], &text, NULL, &err) || hone_read_file(argv[3], &mtext, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    cJSON *trl = cJSON_Parse(text);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(trl, "steps");
    const cJSON *evals = cJSON_GetObjectItemCaseSensitive(trl, "evals");
    const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(trl, "recipe");
    if (!cJSON_IsArray(steps) || !cJSON_IsArray(evals) || !recipe) {
        fprintf(stderr, "%s: not a replay fixture (steps, evals, recipe)\n", argv[1]);
        return 2;
    }
    int bad = check_batches(steps, argv[2], (int)num(recipe, "batch"), (int)num(recipe, "grad_accum"));
    if (bad == 2) return 2;
    /* hone's rows: training steps and evaluations */
    size_t lines = 1;
    for (const char *c = mtext; *c; c++) lines += *c == '\n';
    cJSON **rows = malloc(lines * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    int nrows = 0;
    for (char *line = strtok(mtext, "\n"); line; line = strtok(NULL, "\n"))
        if ((rows[nrows] = cJSON_Parse(line))) nrows++;
    int first_bad = 0, k = 0, ev = 0;
    double worst_loss = 0, worst_norm = 0, worst_eval = 0;
    printf("step  loss (TRL)   loss (hone)  rel      grad_norm (TRL) (hone)   rel\n");
    for (int r = 0; r < nrows; r++) {
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(rows[r], "split");
        if (cJSON_IsString(split)) {
            const cJSON *e = cJSON_GetArrayItem(evals, ev++);
            double want = num(e, "eval_loss_token_weighted"), got = num(rows[r], "eval_loss"), d = rel(got, want);
            printf("epoch %d: eval_loss %.6f, TRL's forwards token-weighted %.6f (rel %.1e); TRL's reported eval_loss "
                   "(a mean of batch means) %.6f\n", ev, got, want, d, num(e, "eval_loss"));
            if (!(d <= loss_tol)) bad = 1;
            worst_eval = d > worst_eval ? d : worst_eval;
            continue;
        }
        const cJSON *s = cJSON_GetArrayItem(steps, k++);
        if (!s) {
            printf("hone logged more steps than TRL took (%d)\n", k - 1);
            bad = 1;
            break;
        }
        double lt = num(s, "loss"), lh = num(rows[r], "loss"), nt = num(s, "grad_norm"), nh = num(rows[r], "grad_norm");
        double dl = rel(lh, lt), dn = rel(nh, nt);
        int off = !(dl <= loss_tol) || !(dn <= norm_tol) || (int)num(rows[r], "step") != k;
        printf("%4d  %.6f  %.6f  %.1e  %.6f  %.6f  %.1e%s\n", k, lt, lh, dl, nt, nh, dn, off ? "  <-" : "");
        if (off && !first_bad) first_bad = k;
        worst_loss = dl > worst_loss ? dl : worst_loss;
        worst_norm = dn > worst_norm ? dn : worst_norm;
    }
    if (k != cJSON_GetArraySize(steps) || ev != cJSON_GetArraySize(evals)) {
        printf("hone logged %d steps and %d evaluations; TRL %d and %d (log_every must be 1)\n", k, ev,
               cJSON_GetArraySize(steps), cJSON_GetArraySize(evals));
        bad = 1;
    }
    if (first_bad) printf("first step that differs: %d\n", first_bad);
    printf("%s: %d steps, worst loss rel %.1e (tol %.0e), grad_norm rel %.1e (tol %.0e), eval_loss rel %.1e\n",
           bad || first_bad ? "differs" : "replayed", k, worst_loss, loss_tol, worst_norm, norm_tol, worst_eval);
    for (int r = 0; r < nrows; r++) cJSON_Delete(rows[r]);
    free(rows);
    cJSON_Delete(trl);
    free(text);
    free(mtext);
    return bad || first_bad ? 1 : 0;
}
