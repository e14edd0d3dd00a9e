/* log.h — output from library code: formatted, then handed to the host's log hook.
 *
 * The core never writes to stdout or stderr itself; a run, a data summary or an inspect
 * listing reach the user only through the hooks the host passed (the CLI prints them,
 * hone.train in Lua prints them or hands them to a function). No hook: no output. */
#ifndef HONE_LOG_H
#define HONE_LOG_H

#include "hone/hone.h"

void hone_logf(const hone_hooks *h, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
