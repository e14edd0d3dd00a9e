/* report.c — report.html for a run: one self-contained page (inline SVG, no scripts, no
 * network) with the training loss and evaluation loss against steps, the learning rate,
 * a table of every evaluation's metrics, and predicted-against-true numbers for the best
 * checkpoint's predictions (the first number in each prediction and reference: prices in
 * the pricer). Everything is read back from the run directory, so it can be redrawn. */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

typedef struct series {
    double *x, *y;
    size_t n, cap;
} series;

static void push(series *s, double x, double y)
{
    if (!isfinite(x) || !isfinite(y)) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        double *a = realloc(s->x, cap * sizeof *a), *b = a ? realloc(s->y, cap * sizeof *b) : NULL;
        if (a) s->x = a;
        if (!a || !b) return;
        s->y = b;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* a chart of up to two series (a line and points) in a 560 x 260 box, with min/max labels */
enum { LOG_X = 1, LOG_Y = 2 }; /* the values on that axis are log10s, labelled as the numbers */

static void chart(FILE *f, const char *title, const series *line, const series *dots, int diagonal, int logs,
                  const char *cls)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const series *all[2] = {line, dots};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; all[k] && i < all[k]->n; i++) {
            x0 = fmin(x0, all[k]->x[i]), x1 = fmax(x1, all[k]->x[i]);
            y0 = fmin(y0, all[k]->y[i]), y1 = fmax(y1, all[k]->y[i]);
        }
    fputs("<figure><figcaption>", f);
    html_text(f, title);
    fputs("</figcaption>\n", f);
    if (!isfinite(x0)) {
        fputs("<p>(nothing to plot)</p></figure>\n", f);
        return;
    }
    if (diagonal) x0 = y0 = fmin(x0, y0), x1 = y1 = fmax(x1, y1);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    const double W = 560, H = 260, L = 60, B = 30, T = 10, R = 10;
#define PX(x) (L + ((x) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (H - B - ((y) - y0) / (y1 - y0) * (H - B - T))
    fprintf(f, "<svg class=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\">\n", cls, W, H, W, H);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#bbb\"/>\n", L, T,
            W - L - R, H - B - T);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n", L - 4, T + 10,
            logs & LOG_Y ? pow(10, y1) : y1);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n", L - 4, H - B,
            logs & LOG_Y ? pow(10, y0) : y0);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%.4g</text>\n", L, H - 10, logs & LOG_X ? pow(10, x0) : x0);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.4g%s</text>\n", W - R, H - 10,
            logs & LOG_X ? pow(10, x1) : x1, logs ? " (log scale)" : "");
    if (diagonal)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4\"/>\n",
                PX(x0), PY(y0), PX(x1), PY(y1));
    if (line && line->n) {
        fputs("<polyline class=\"line\" fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" points=\"", f);
        for (size_t i = 0; i < line->n; i++) fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(line->x[i]), PY(line->y[i]));
        fputs("\"/>\n", f);
    }
    for (size_t i = 0; dots && i < dots->n; i++)
        fprintf(f, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d1242f\"/>\n", PX(dots->x[i]),
                PY(dots->y[i]));
    fputs("</svg></figure>\n", f);
#undef PX
#undef PY
}

static void page_head(FILE *f, const char *dir)
{
    const char *slash = strrchr(dir, '/');
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    html_text(f, slash ? slash + 1 : dir);
    fputs("</title><style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}figure{margin:1em 0}"
          "figcaption{font-weight:bold}</style></head><body>\n<h1>", f);
    html_text(f, slash ? slash + 1 : dir);
    fputs("</h1>\n", f);
}

/* the first number in a text ("$1,234.50" -> 1234.5), NAN when there is none */
static double first_number(const char *s)
{
    for (; *s; s++)
        if ((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9')) {
            char buf[64];
            size_t n = 0;
            for (; *s && n + 1 < sizeof buf && ((*s >= '0' && *s <= '9') || *s == '.' || *s == ','); s++)
                if (*s != ',') buf[n++] = *s;
            buf[n] = 0;
            return strtod(buf, NULL);
        }
    return NAN;
}

int hone_write_report(const char *run_dir, hone_err *err)
{
    char path[4300], *text = NULL;
    size_t len = 0;
    series loss = {0}, lr = {0}, eval_loss = {0}, scatter = {0};
    cJSON *evals = cJSON_CreateArray(), *summary = NULL;
    hone_err missing = {0}; /* every input is optional: a run stopped early may lack some */
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    if (hone_read_file(path, &text, &len, &missing) == 0) {
        for (char *line = text, *nl; line < text + len; line = nl + 1) {
            nl = memchr(line, '\n', (size_t)(text + len - line));
            if (!nl) nl = text + len;
            cJSON *row = cJSON_ParseWithLength(line, (size_t)(nl - line));
            double step = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "step"));
            if (row && cJSON_GetObjectItem(row, "split")) {
                push(&eval_loss, step, cJSON_GetNumberValue(cJSON_GetObjectItem(row, "eval_loss")));
                cJSON_AddItemToArray(evals, row);
                continue;
            }
            push(&loss, step, cJSON_GetNumberValue(cJSON_GetObjectItem(row, "loss")));
            push(&lr, step, cJSON_GetNumberValue(cJSON_GetObjectItem(row, "lr")));
            cJSON_Delete(row);
        }
        free(text);
        text = NULL;
    }
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    if (hone_read_file(path, &text, NULL, &missing) == 0) summary = cJSON_Parse(text);
    free(text);
    text = NULL;
    const cJSON *best = cJSON_GetObjectItem(summary, "best_checkpoint");
    if (cJSON_IsString(best)) {
        snprintf(path, sizeof path, "%s/eval/%s.jsonl", run_dir, best->valuestring);
        if (hone_read_file(path, &text, &len, &missing) == 0) {
            for (char *line = text, *nl; line < text + len; line = nl + 1) {
                nl = memchr(line, '\n', (size_t)(text + len - line));
                if (!nl) nl = text + len;
                cJSON *row = cJSON_ParseWithLength(line, (size_t)(nl - line));
                const cJSON *p = cJSON_GetObjectItem(row, "prediction"), *r = cJSON_GetObjectItem(row, "reference");
                if (cJSON_IsString(p) && cJSON_IsString(r)) push(&scatter, first_number(r->valuestring), first_number(p->valuestring));
                cJSON_Delete(row);
            }
            free(text);
        }
    }
    snprintf(path, sizeof path, "%s/report.html", run_dir);
    FILE *f = fopen(path, "w");
    int rc = f ? 0 : hone_errf(err, HONE_EIO, "%s: cannot create", path);
    if (f) {
        page_head(f, run_dir);
        fputs("<p>", f);
        const cJSON *st = cJSON_GetObjectItem(summary, "status");
        fprintf(f, "status %s, %.0f steps, %.0f epochs, final train loss %.4f", cJSON_IsString(st) ? st->valuestring : "?",
                cJSON_GetNumberValue(cJSON_GetObjectItem(summary, "steps")),
                cJSON_GetNumberValue(cJSON_GetObjectItem(summary, "epochs")),
                cJSON_GetNumberValue(cJSON_GetObjectItem(summary, "train_loss")));
        if (cJSON_IsString(best)) {
            fputs("; best ", f);
            html_text(f, best->valuestring);
        }
        fputs("</p>\n", f);
        chart(f, "training loss (line) and evaluation loss (points) by step", &loss, &eval_loss, 0, 0, "loss");
        chart(f, "learning rate by step", &lr, NULL, 0, 0, "lr");
        fputs("<h2>evaluations</h2>\n<table><tr>", f);
        const cJSON *first = cJSON_GetArrayItem(evals, 0), *e;
        for (const cJSON *k = first ? first->child : NULL; k; k = k->next)
            if (strcmp(k->string, "split")) {
                fputs("<th>", f);
                html_text(f, k->string);
                fputs("</th>", f);
            }
        fputs("</tr>\n", f);
        cJSON_ArrayForEach(e, evals)
        {
            fputs("<tr>", f);
            for (const cJSON *k = first->child; k; k = k->next)
                if (strcmp(k->string, "split"))
                    fprintf(f, "<td>%.5g</td>", cJSON_GetNumberValue(cJSON_GetObjectItem(e, k->string)));
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        /* prices span decades: both axes logarithmic when every value is positive */
        int positive = 1;
        for (size_t i = 0; i < scatter.n; i++) positive &= scatter.x[i] > 0 && scatter.y[i] > 0;
        for (size_t i = 0; positive && i < scatter.n; i++) scatter.x[i] = log10(scatter.x[i]), scatter.y[i] = log10(scatter.y[i]);
        if (scatter.n)
            chart(f, "best checkpoint: predicted (up) against true (across)", NULL, &scatter, 1,
                  positive ? LOG_X | LOG_Y : 0, "scatter");
        fputs("</body></html>\n", f);
        if (fclose(f) != 0) rc = hone_errf(err, HONE_EIO, "%s: write failed", path);
    }
    cJSON_Delete(evals);
    cJSON_Delete(summary);
    free(loss.x), free(loss.y), free(lr.x), free(lr.y), free(eval_loss.x), free(eval_loss.y);
    free(scatter.x), free(scatter.y);
    return rc;
}

/* one CSV line split in place on commas (the sweep writes no quoted cells) */
static int split_csv(char *line, char **cell, int max)
{
    int n = 0;
    for (char *c = line; n < max;) {
        cell[n++] = c;
        c = strchr(c, ',');
        if (!c) break;
        *c++ = 0;
    }
    return n;
}

int hone_write_sweep_report(const char *sweep_dir, hone_err *err)
{
    enum { MAXC = 64, MAXR = 4096 };
    char path[4300], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/summary.csv", sweep_dir);
    if (hone_read_file(path, &text, &len, err)) return -1;
    char *lines[MAXR];
    int nl = 0;
    for (char *l = text, *e; l < text + len && nl < MAXR; l = e + 1) {
        e = memchr(l, '\n', (size_t)(text + len - l));
        if (!e) e = text + len;
        *e = 0;
        if (e > l) lines[nl++] = l;
    }
    char *head[MAXC];
    int nc = nl ? split_csv(lines[0], head, MAXC) : 0;
    if (nc < 6 || strcmp(head[0], "member")) {
        free(text);
        return hone_errf(err, HONE_EINVAL, "%s: not a sweep summary (expected member,status,...,best,metric,tokens/s,wall s)",
                         path);
    }
    char *(*cells)[MAXC] = calloc((size_t)nl, sizeof *cells);
    int *ncells = calloc((size_t)nl, sizeof *ncells);
    if (!cells || !ncells) {
        free(cells), free(ncells), free(text);
        return hone_errf(err, HONE_ENOMEM, "out of memory drawing %s/report.html", sweep_dir);
    }
    for (int i = 1; i < nl; i++) ncells[i] = split_csv(lines[i], cells[i], MAXC);
    snprintf(path, sizeof path, "%s/report.html", sweep_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(cells), free(ncells), free(text);
        return hone_errf(err, HONE_EIO, "%s: cannot create", path);
    }
    page_head(f, sweep_dir);
    const int metric = nc - 3;
    fprintf(f, "<p>%d members, sorted by ", nl - 1);
    html_text(f, head[metric]);
    fputs("</p>\n<table><tr>", f);
    for (int c = 0; c < nc; c++) {
        fputs("<th>", f);
        html_text(f, head[c]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int i = 1; i < nl; i++) {
        fputs("<tr>", f);
        for (int c = 0; c < nc; c++) {
            const char *v = c < ncells[i] ? cells[i][c] : "";
            fputs(c == 0 ? "<td style=\"text-align:left\"><a href=\"" : "<td>", f);
            if (c == 0) {
                html_text(f, v);
                fputs("/report.html\">", f);
            }
            html_text(f, v);
            fputs(c == 0 ? "</a></td>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    /* the metric against each varied key that is a number, on a log axis when the values
     * span a factor of more than 2 (lr, r) */
    for (int k = 2; k < nc - 4; k++) {
        series pts = {0};
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 1; i < nl; i++) {
            char *end;
            if (k >= ncells[i] || metric >= ncells[i]) continue;
            double x = strtod(cells[i][k], &end), y;
            if (end == cells[i][k] || *end) continue;
            y = strtod(cells[i][metric], &end);
            if (end == cells[i][metric] || *end) continue;
            push(&pts, x, y);
            lo = fmin(lo, x), hi = fmax(hi, x);
        }
        int logx = lo > 0 && hi > 2 * lo;
        for (size_t i = 0; logx && i < pts.n; i++) pts.x[i] = log10(pts.x[i]);
        char title[512];
        snprintf(title, sizeof title, "%s against %s", head[metric], head[k]);
        if (pts.n) chart(f, title, NULL, &pts, 0, logx ? LOG_X : 0, "sweep");
        free(pts.x), free(pts.y);
    }
    fputs("</body></html>\n", f);
    int rc = fclose(f) != 0 ? hone_errf(err, HONE_EIO, "%s: write failed", path) : 0;
    free(cells), free(ncells), free(text);
    return rc;
}
