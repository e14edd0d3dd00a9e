/* err.h — filling hone_err: the one way errors travel in the core.
 *
 * Library code never prints or exits: it fills a hone_err and returns its code. Callers
 * that know more (the file, the key) put it in front with hone_err_prefix, so the
 * message main() prints reads outermost context first.
 */
#ifndef HONE_ERR_H
#define HONE_ERR_H

#include <stdarg.h>

#include "hone/plugin.h"

int hone_errf(hone_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int hone_verrf(hone_err *err, int code, const char *fmt, va_list ap);
int hone_err_prefix(hone_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hone_err_clear(hone_err *err);

#endif
