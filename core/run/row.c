/* row.c — metrics.jsonl rows: one JSON object per line, written into a growing buffer
 * (any number of metrics, any name), names escaped, NaN and Inf as null. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_impl.h"

void row_put(json_row *r, const char *text, size_t len)
{
    hone_err ignore = {0};
    hone_writer w = hone_membuf_writer(&r->mb);
    if (!r->rc) r->rc = w.write(w.ctx, text, len, &ignore);
}

void row_key(json_row *r, const char *name)
{
    row_put(r, r->mb.len ? ", \"" : "{\"", r->mb.len ? 3 : 2);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') snprintf(esc, sizeof esc, "\\%c", *c);
        else if (*c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *c);
        else esc[0] = (char)*c, esc[1] = 0;
        row_put(r, esc, strlen(esc));
    }
    row_put(r, "\": ", 3);
}

void row_num(json_row *r, const char *name, const char *fmt, double v)
{
    char num[64];
    row_key(r, name);
    if (isfinite(v)) snprintf(num, sizeof num, fmt, v);
    else snprintf(num, sizeof num, "null");
    row_put(r, num, strlen(num));
}

char *row_end(json_row *r)
{
    row_put(r, "}", 2);   /* and its NUL */
    if (r->rc) free(r->mb.data);
    return r->rc ? NULL : (char *)r->mb.data;
}
