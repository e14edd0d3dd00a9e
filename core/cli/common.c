/* common.c — what every command uses: the error printer, the context, --set. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"

int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hone: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_ctx(hone_ctx **ctx)
{
    hone_err err = {0};
    if (hone_ctx_new(ctx, getenv("HONE_PLUGIN_PATH"), &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    return 0;
}

int cli_add_set(hone_node *root, const char *kv, const char *prefix, hone_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return hone_errf(err, HONE_EINVAL, "--set %s: expected key=value", kv);
    char key[256];
    if (snprintf(key, sizeof key, "%s%.*s", prefix, (int)(eq - kv), kv) >= (int)sizeof key)
        return hone_errf(err, HONE_EINVAL, "--set %s: key too long", kv);
    if (hone_node_set_path(root, key, eq + 1) != 0)
        return hone_errf(err, HONE_EINVAL, "--set %s: not a valid key path", kv);
    return 0;
}
