/* err.c — formatting error messages into hone_err. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hone_verrf(hone_err *err, int code, const char *fmt, va_list ap)
{
    if (!err) return code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->code = code;
    return code;
}

int hone_errf(hone_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hone_verrf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int hone_err_prefix(hone_err *err, const char *fmt, ...)
{
    if (!err) return HONE_EINVAL;
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t hl = strlen(head), ol = strnlen(err->msg, sizeof err->msg - 1);
    if (hl > sizeof err->msg - 1) hl = sizeof err->msg - 1;
    if (hl + ol > sizeof err->msg - 1) ol = sizeof err->msg - 1 - hl;
    memmove(err->msg + hl, err->msg, ol);   /* keep the start of the old message */
    memcpy(err->msg, head, hl);
    err->msg[hl + ol] = '\0';
    return err->code;
}

void hone_err_clear(hone_err *err)
{
    if (!err) return;
    err->code = 0;
    err->msg[0] = '\0';
}
