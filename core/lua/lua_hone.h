/* lua_hone.h — the Lua boundary: the only part of the tree that includes lua.h.
 *
 * It runs experiment scripts with `require("hone")` available, turns what they return into
 * a hone_node tree, and implements the C half of the hone module (hone.optimize, ...).
 */
#ifndef HONE_LUA_HONE_H
#define HONE_LUA_HONE_H

#include "hone/hone.h"

typedef struct hone_lua hone_lua;

/* lua_dir holds hone/init.lua */
int hone_lua_new(hone_lua **out, const char *lua_dir, hone_registry *reg, hone_err *err);
void hone_lua_free(hone_lua *hl);

/* Runs the script; *result is the tree of the table it returned, or NULL when it
 * returned nothing (it did its work itself). Lua errors come back with file and line. */
int hone_lua_run_file(hone_lua *hl, const char *script, hone_node **result, hone_err *err);

/* The mode the command line runs the script in, which a script that does its own work
 * (hone.sweep) reads with hone.core.mode() and acknowledges with hone.core.used(what):
 * resume (the directory --resume names, or NULL) and dry_run. */
void hone_lua_set_mode(hone_lua *hl, const char *resume, int dry_run);
/* whether the script acted on "resume" / "dry_run" */
int hone_lua_mode_used(const hone_lua *hl, const char *what);

/* The hooks of a run whose experiment came from this state: the script's functions
 * (eval.metrics, data.chat_function, hooks.on_log on every metrics row, hooks.on_epoch_end)
 * called through one protected trampoline, errors with their Lua traceback; log lines to
 * log(log_ctx, ...) (NULL: dropped). r holds what the hooks need and must outlive the run. */
typedef struct hone_lua_run {
    hone_lua *hl;
    int on_log, on_epoch_end;     /* the experiment's hooks.* (HONE_NOREF: none) */
    hone_log_fn log;
    void *log_ctx;
    int log_ref;                  /* hone.train's opts.log function, or HONE_NOREF */
    int log_rc;                   /* it failed: the next hook stops the run with log_err */
    hone_err log_err;
} hone_lua_run;
void hone_lua_hooks(hone_lua_run *r, hone_lua *hl, const hone_config *cfg, hone_log_fn log, void *log_ctx,
                    hone_hooks *out);

#endif
