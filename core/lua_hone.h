/* lua_hone.h — the Lua boundary: the only part of the core that includes lua.h.
 *
 * It runs experiment scripts with `require("hone")` available, turns what they return into
 * a hone_node tree, and implements the C half of the hone module (hone.optimize, ...).
 */
#ifndef HONE_LUA_HONE_H
#define HONE_LUA_HONE_H

#include "registry.h"
#include "tree.h"

typedef struct hone_lua hone_lua;

/* lua_dir holds hone/init.lua */
int hone_lua_new(hone_lua **out, const char *lua_dir, hone_registry *reg, hone_err *err);
void hone_lua_free(hone_lua *hl);

/* Runs the script; *result is the tree of the table it returned, or NULL when it
 * returned nothing (it did its work itself). Lua errors come back with file and line. */
int hone_lua_run_file(hone_lua *hl, const char *script, hone_node **result, hone_err *err);

/* a global string for the script (HONE_RESUME for sweeps), and whether a global is true */
void hone_lua_set_global(hone_lua *hl, const char *name, const char *value);
int hone_lua_global_true(hone_lua *hl, const char *name);

/* data.chat_function: calls the function at registry ref with messages (a JSON array of
 * {role, content}) as a Lua list of tables; it returns a list whose items are a string
 * (not trained) or { text, train = true|false }. The signature of hone_chat_fn, with
 * ctx pointing at a hone_lua_fn. */
typedef struct hone_lua_fn {
    hone_lua *hl;
    int ref;
} hone_lua_fn;
struct cJSON;
int hone_lua_chat(void *ctx, const struct cJSON *messages, char ***texts, int **trained, int *n, hone_err *err);

/* hooks.on_log / hooks.on_epoch_end: f(run, row) with run = { name, dir } and row a
 * metrics row (JSON text) as a table; an error comes back with its Lua traceback */
int hone_lua_hook(const hone_lua_fn *fn, const char *run_name, const char *run_dir, const char *row_json, int *stop,
                  hone_err *err);   /* *stop: the hook returned "stop" */

/* eval.metrics: calls the function at fn->ref as f(prediction, example) with example =
 * the record's own fields (record: its JSON text, or NULL) and { prompt, reference,
 * index } over them; it returns a number, or a table of named numbers. Up to max values
 * go to out[] with their names (the key, or "" for a plain number) in names[]; more
 * values, or a name of HONE_METRIC_NAME characters or more, is an error. */
enum { HONE_METRIC_NAME = 128 };
int hone_lua_metric(const hone_lua_fn *fn, const char *prediction, const char *prompt, const char *reference,
                    int index, const char *record, double *out, char (*names)[HONE_METRIC_NAME], int max, int *n,
                    hone_err *err);

#endif
