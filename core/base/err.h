/* err.h — filling hone_err: the one way errors travel in the core.
 *
 * Library code never prints or exits: it fills a hone_err and returns its code. Callers
 * that know more (the file, the key) put it in front with hone_err_prefix, so the
 * message main() prints reads outermost context first.
 */
#ifndef HONE_ERR_H
#define HONE_ERR_H

#include <stdarg.h>

#include "hone/hone.h"

/* hone_errf and hone_err_prefix are in hone.h: errors are part of the embedding API */
int hone_verrf(hone_err *err, int code, const char *fmt, va_list ap);
void hone_err_clear(hone_err *err);

#endif
