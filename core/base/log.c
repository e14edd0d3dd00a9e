/* log.c — output from library code: formatted, then handed to the host's log hook (the
 * core never writes to stdout or stderr itself; no hook, no output); and hone.h's
 * terminal printer, the CLI's hook and hone.train's default, kept here so there is one. */
#include "hone/hone.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void hone_logf(const hone_hooks *h, int level, const char *fmt, ...)
{
    if (!h || !h->on_log) return;
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        h->on_log(h->ctx, level, small);
        return;
    }
    /* a long line (an inspect listing, a resolved config): formatted again at its size */
    char *big = malloc((size_t)n + 1);
    if (!big) {
        h->on_log(h->ctx, level, small);   /* cut rather than lost */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    h->on_log(h->ctx, level, big);
    free(big);
}

/* ---- the terminal printer -------------------------------------------------------- */

void hone_term_init(hone_term *t)
{
    t->tty = isatty(STDOUT_FILENO);
    t->shown = 0;
}

void hone_term_end(hone_term *t)
{
    if (t->shown) fputs("\r\033[K", stdout);
    t->shown = 0;
    fflush(stdout);
}

void hone_term_log(void *term, int level, const char *line)
{
    hone_term *t = term;
    if (level == HONE_LOG_PROGRESS) {
        if (!t->tty) return;
        printf("\r\033[K%s", line);
        t->shown = 1;
    } else {
        if (t->shown) fputs("\r\033[K", stdout);   /* over the progress line */
        t->shown = 0;
        printf("%s%s\n", level == HONE_LOG_WARN ? "warning: " : "", line);
    }
    fflush(stdout);
}
