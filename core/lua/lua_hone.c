/* lua_hone.c — embedding Lua 5.4: running scripts and the C side of `require("hone")`,
 * written over hone.h alone, like any other host (tests/tools/include_graph.c keeps it so).
 *
 * Rule for every C function Lua calls: check arguments and convert them before allocating
 * anything, and release what was allocated before raising a Lua error, because a Lua
 * error longjmps past C frames.
 */
#include "lua_hone.h"

#include <cjson/cJSON.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hone/hone.h"

struct hone_lua {
    lua_State *L;
    hone_registry *reg;
    char *script;      /* the script hone_lua_run_file ran first: a run's experiment.lua */
    char *resume;      /* the mode (hone_lua_set_mode) */
    int dry_run, resume_used, dry_run_used;
};

static const char REG_KEY = 'r';   /* registry slot holding the hone_registry pointer */
static const char HL_KEY = 'h';    /* registry slot holding the hone_lua itself */

/* ---- Lua value -> tree ---------------------------------------------------------- */

#define MAX_DEPTH 32

/* converts the value at `idx`; on failure fills err (never raises) */
static hone_node *to_node(lua_State *L, int idx, int depth, const char *path, hone_err *err)
{
    idx = lua_absindex(L, idx);
    hone_node *n = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            n = hone_node_new(HONE_NODE_INTEGER);
            if (n) n->integer = lua_tointeger(L, idx);
        } else {
            n = hone_node_new(HONE_NODE_NUMBER);
            if (n) n->num = lua_tonumber(L, idx);
        }
        break;
    case LUA_TBOOLEAN:
        n = hone_node_new(HONE_NODE_BOOL);
        if (n) n->boolean = lua_toboolean(L, idx);
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len) {
            hone_errf(err, HONE_EINVAL, "%s: strings may not contain NUL bytes", *path ? path : "value");
            return NULL;
        }
        n = hone_node_new(HONE_NODE_STRING);
        if (n && !(n->str = strdup(s))) {
            hone_node_free(n);
            n = NULL;
        }
        break;
    }
    case LUA_TFUNCTION:
        n = hone_node_new(HONE_NODE_FUNCTION);
        if (n) {
            lua_pushvalue(L, idx);
            n->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        break;
    case LUA_TTABLE: {
        if (depth >= MAX_DEPTH) {
            hone_errf(err, HONE_EINVAL, "%s: tables nested more than %d deep (a table that contains itself?)",
                      *path ? path : "value", MAX_DEPTH);
            return NULL;
        }
        /* each level holds a key and a value on the Lua stack */
        if (!lua_checkstack(L, 4)) {
            hone_errf(err, HONE_ENOMEM, "%s: Lua stack exhausted", *path ? path : "value");
            return NULL;
        }
        n = hone_node_new(HONE_NODE_TABLE);
        if (!n) break;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            char sub[256];
            hone_node *kid = NULL;
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *k = lua_tostring(L, -2);
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
                kid = to_node(L, -1, depth + 1, sub, err);
                if (kid && !(kid->key = strdup(k))) {
                    hone_node_free(kid);
                    kid = NULL;
                    hone_errf(err, HONE_ENOMEM, "out of memory");
                }
            } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
                lua_Integer i = lua_tointeger(L, -2);
                snprintf(sub, sizeof sub, "%s[%lld]", path, (long long)i);
                kid = to_node(L, -1, depth + 1, sub, err);
                if (kid) kid->index = (long)i;
            } else {
                hone_errf(err, HONE_EINVAL, "%s: table keys must be names or list positions, got a %s key",
                          *path ? path : "value", luaL_typename(L, -2));
            }
            lua_pop(L, 1);
            if (!kid || !hone_node_add(n, kid)) {
                if (err && !err->code) hone_errf(err, HONE_ENOMEM, "out of memory");
                lua_pop(L, 1);
                hone_node_free(n);
                return NULL;
            }
        }
        break;
    }
    default:
        hone_errf(err, HONE_EINVAL, "%s: a %s cannot be part of a configuration", *path ? path : "value",
                  luaL_typename(L, idx));
        return NULL;
    }
    if (!n && err && !err->code) hone_errf(err, HONE_ENOMEM, "out of memory");
    return n;
}

void hone_lua_set_mode(hone_lua *hl, const char *resume, int dry_run)
{
    free(hl->resume);
    hl->resume = resume ? strdup(resume) : NULL;
    hl->dry_run = dry_run;
}

int hone_lua_mode_used(const hone_lua *hl, const char *what)
{
    return !strcmp(what, "resume") ? hl->resume_used : !strcmp(what, "dry_run") ? hl->dry_run_used : 0;
}

static hone_lua *get_hl(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HL_KEY);
    hone_lua *hl = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return hl;
}

/* core.mode() -> { resume = DIR or nil, dry_run = bool } */
static int l_mode(lua_State *L)
{
    hone_lua *hl = get_hl(L);
    lua_createtable(L, 0, 2);
    if (hl->resume) {
        lua_pushstring(L, hl->resume);
        lua_setfield(L, -2, "resume");
    }
    lua_pushboolean(L, hl->dry_run);
    lua_setfield(L, -2, "dry_run");
    return 1;
}

/* core.used("resume" | "dry_run"): the script acted on that part of the mode */
static int l_used(lua_State *L)
{
    hone_lua *hl = get_hl(L);
    const char *what = luaL_checkstring(L, 1);
    if (!strcmp(what, "resume")) hl->resume_used = 1;
    else if (!strcmp(what, "dry_run")) hl->dry_run_used = 1;
    else return luaL_error(L, "hone.core.used: \"%s\" is not part of the mode (resume, dry_run)", what);
    return 0;
}

/* ---- calls into the script ------------------------------------------------------- */

/* A call of the script's function at ref whose arguments push() builds: building them
 * allocates, and Lua reports a failed allocation by a long jump, so it happens inside the
 * same protected call as the function, whose error it then is. With ref LUA_NOREF no
 * function is called: push() builds the nres results themselves (a table handed back to
 * the script while C memory it reads from must still be freed). */
typedef struct lua_call_args {
    int ref, nargs, nres;
    void (*push)(lua_State *L, const void *arg);
    const void *arg;
} lua_call_args;

static int call_trampoline(lua_State *L)
{
    const lua_call_args *c = lua_touserdata(L, 1);
    lua_pop(L, 1);
    if (c->ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    c->push(L, c->arg);
    if (c->ref != LUA_NOREF) lua_call(L, c->nargs, c->nres);
    return c->nres;
}

/* LUA_OK with c->nres results on the stack, or the error message (msgh: a handler's index, or 0) */
static int call_protected(lua_State *L, const lua_call_args *c, int msgh)
{
    lua_pushcfunction(L, call_trampoline);
    lua_pushlightuserdata(L, (void *)c);
    return lua_pcall(L, 1, c->nres, msgh);
}

/* ---- data.chat_function ------------------------------------------------------------- */

static void push_messages(lua_State *L, const void *arg)
{
    const cJSON *messages = arg;
    lua_createtable(L, cJSON_GetArraySize(messages), 0);
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring);
        lua_setfield(L, -2, "role");
        lua_pushstring(L, cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring);
        lua_setfield(L, -2, "content");
        lua_rawseti(L, -2, ++i);
    }
}

static int lua_chat(void *ctx, int fn, const struct cJSON *messages, char ***texts, int **trained, int *n,
                    hone_err *err)
{
    lua_State *L = ((hone_lua_run *)ctx)->hl->L;
    int top = lua_gettop(L), rc = 0;
    *texts = NULL;
    *trained = NULL;
    *n = 0;
    lua_call_args call = {fn, 1, 1, push_messages, messages};
    if (call_protected(L, &call, 0) != LUA_OK) {
        rc = hone_errf(err, HONE_EINVAL, "%s", lua_tostring(L, -1));
        lua_settop(L, top);
        return rc;
    }
    if (!lua_istable(L, -1)) {
        rc = hone_errf(err, HONE_EINVAL, "must return a list of pieces, got %s", luaL_typename(L, -1));
        lua_settop(L, top);
        return rc;
    }
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    *texts = calloc((size_t)(len ? len : 1), sizeof **texts);
    *trained = calloc((size_t)(len ? len : 1), sizeof **trained);
    if (!*texts || !*trained) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (lua_Integer k = 1; k <= len && !rc; k++) {
        lua_rawgeti(L, -1, k);
        const char *t = NULL;
        size_t tl = 0;
        int train = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            t = lua_tolstring(L, -1, &tl);
        } else if (lua_istable(L, -1)) {
            lua_rawgeti(L, -1, 1);
            if (lua_type(L, -1) == LUA_TSTRING) t = lua_tolstring(L, -1, &tl);
            lua_getfield(L, -2, "train");
            train = lua_toboolean(L, -1);
            lua_pop(L, 2);   /* the two just pushed; t stays valid while the piece is on the stack */
        }
        if (!t) rc = hone_errf(err, HONE_EINVAL, "piece %lld is neither a string nor { text, train = ... }", (long long)k);
        else if (!((*texts)[k - 1] = malloc(tl + 1))) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        else {
            memcpy((*texts)[k - 1], t, tl);
            (*texts)[k - 1][tl] = 0;
            (*trained)[k - 1] = train;
            *n = (int)k;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (rc) {
        for (int j = 0; j < *n; j++) free((*texts)[j]);
        free(*texts);
        free(*trained);
        *texts = NULL;
        *trained = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- hooks ------------------------------------------------------------------------- */

static int traceback(lua_State *L);

static void push_json(lua_State *L, const cJSON *j, int depth)
{
    if (depth > 32 || !j || cJSON_IsNull(j)) {
        lua_pushnil(L);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        lua_pushnumber(L, j->valuedouble);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        int i = 0;
        for (const cJSON *e = j->child; e; e = e->next) {
            push_json(L, e, depth + 1);
            lua_rawseti(L, -2, ++i);
        }
    } else {
        lua_createtable(L, 0, 8);
        for (const cJSON *e = j->child; e; e = e->next) {
            push_json(L, e, depth + 1);
            lua_setfield(L, -2, e->string);
        }
    }
}

typedef struct hook_args {
    const char *run_name, *run_dir;
    const cJSON *row;
} hook_args;

static void push_hook(lua_State *L, const void *arg)
{
    const hook_args *a = arg;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, a->run_name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, a->run_dir);
    lua_setfield(L, -2, "dir");
    push_json(L, a->row, 0);
}

/* f(run, row) with run = { name, dir } and row a metrics row (JSON text) as a table; an
 * error comes back with its Lua traceback; *stop: the function returned "stop" */
static int call_hook(lua_State *L, int ref, const hone_run_info *run, const char *row_json, int *stop,
                     hone_err *err)
{
    int top = lua_gettop(L), rc = 0;
    lua_pushcfunction(L, traceback);
    cJSON *row = cJSON_Parse(row_json);   /* parsed outside: a Lua error must not leak it */
    hook_args a = {run->name, run->dir, row};
    lua_call_args call = {ref, 2, 1, push_hook, &a};
    int status = call_protected(L, &call, top + 1);
    cJSON_Delete(row);
    if (status != LUA_OK) rc = hone_errf(err, HONE_EINVAL, "%s", lua_tostring(L, -1));
    else if (stop && lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "stop")) *stop = 1;
    lua_settop(L, top);
    return rc;
}

/* ---- eval.metrics ------------------------------------------------------------------- */

typedef struct metric_args {
    const char *prediction, *prompt, *reference;
    int index;
    const cJSON *rec;
} metric_args;

/* f(prediction, example): the record's own fields, then prompt, reference and index */
static void push_metric(lua_State *L, const void *arg)
{
    const metric_args *a = arg;
    lua_pushstring(L, a->prediction);
    lua_createtable(L, 0, 3 + (a->rec ? cJSON_GetArraySize(a->rec) : 0));
    for (const cJSON *f = cJSON_IsObject(a->rec) ? a->rec->child : NULL; f; f = f->next) {   /* ex.completion */
        push_json(L, f, 1);
        lua_setfield(L, -2, f->string);
    }
    lua_pushstring(L, a->prompt);
    lua_setfield(L, -2, "prompt");
    lua_pushstring(L, a->reference);
    lua_setfield(L, -2, "reference");
    lua_pushinteger(L, a->index);
    lua_setfield(L, -2, "index");
}

/* eval.metrics: f(prediction, example) with example = the record's own fields and
 * { prompt, reference, index } over them; a number, or a table of named numbers, sorted
 * by name */
static int lua_metric(void *ctx, int fn, const hone_metric_call *c, double *out, char (*names)[HONE_METRIC_NAME],
                      int max, int *n, hone_err *err)
{
    lua_State *L = ((hone_lua_run *)ctx)->hl->L;
    int top = lua_gettop(L), rc = 0;
    *n = 0;
    cJSON *rec = c->record ? cJSON_Parse(c->record) : NULL;   /* parsed outside: a Lua error must not leak it */
    metric_args a = {c->prediction, c->prompt, c->reference, c->index, rec};
    lua_call_args call = {fn, 2, 1, push_metric, &a};
    int status = call_protected(L, &call, 0);
    cJSON_Delete(rec);
    if (status != LUA_OK) {
        rc = hone_errf(err, HONE_EINVAL, "%s", lua_tostring(L, -1));
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        out[0] = lua_tonumber(L, -1);
        names[0][0] = 0;
        *n = 1;
    } else if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER) {
                rc = hone_errf(err, HONE_EINVAL, "a returned table must map names to numbers");
            } else if (*n == max) {
                rc = hone_errf(err, HONE_EINVAL, "returns more than %d values", max);
            } else if (lua_rawlen(L, -2) >= HONE_METRIC_NAME) {
                rc = hone_errf(err, HONE_EINVAL, "the name \"%.40s...\" is longer than %d characters",
                               lua_tostring(L, -2), HONE_METRIC_NAME - 1);
            } else {
                snprintf(names[*n], HONE_METRIC_NAME, "%s", lua_tostring(L, -2));
                out[(*n)++] = lua_tonumber(L, -1);
            }
            if (rc) {
                lua_pop(L, 2);
                break;
            }
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        rc = hone_errf(err, HONE_EINVAL, "must return a number or a table of numbers, got %s", luaL_typename(L, -1));
    }
    lua_settop(L, top);
    /* by name: Lua's table order differs from state to state, the logs must not */
    for (int i = 1; i < *n; i++)
        for (int k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char t[HONE_METRIC_NAME];
            double v = out[k];
            memcpy(t, names[k], HONE_METRIC_NAME);
            memcpy(names[k], names[k - 1], HONE_METRIC_NAME);
            memcpy(names[k - 1], t, HONE_METRIC_NAME);
            out[k] = out[k - 1];
            out[k - 1] = v;
        }
    return rc;
}

/* ---- the hooks of a run ------------------------------------------------------------- */

static int lua_on_step(void *ctx, const hone_run_info *run, const hone_step_info *st, hone_err *err)
{
    hone_lua_run *r = ctx;
    if (r->log_rc) return *err = r->log_err, r->log_rc;
    if (r->on_log == LUA_NOREF) return 0;
    int rc = call_hook(r->hl->L, r->on_log, run, st->row, NULL, err);
    return rc ? hone_err_prefix(err, "hooks.on_log: ") : 0;
}

static int lua_on_eval(void *ctx, const hone_run_info *run, const hone_eval_info *e, hone_err *err)
{
    hone_lua_run *r = ctx;
    if (r->log_rc) return *err = r->log_err, r->log_rc;
    if (r->on_log == LUA_NOREF) return 0;
    int rc = call_hook(r->hl->L, r->on_log, run, e->row, NULL, err);
    return rc ? hone_err_prefix(err, "hooks.on_log: ") : 0;
}

static int lua_on_epoch_end(void *ctx, const hone_run_info *run, const hone_epoch_info *e, int *stop, hone_err *err)
{
    hone_lua_run *r = ctx;
    if (r->log_rc) return *err = r->log_err, r->log_rc;
    if (r->on_epoch_end == LUA_NOREF) return 0;
    int rc = call_hook(r->hl->L, r->on_epoch_end, run, e->row, stop, err);
    return rc ? hone_err_prefix(err, "hooks.on_epoch_end: ") : 0;
}

typedef struct log_args {
    int level;
    const char *line;
} log_args;

static void push_log(lua_State *L, const void *arg)
{
    const log_args *a = arg;
    lua_pushstring(L, a->level == HONE_LOG_WARN ? "warn" : a->level == HONE_LOG_PROGRESS ? "progress" : "info");
    lua_pushstring(L, a->line);
}

/* hone.train's opts.log: f(level, line); its first error stops the run at the next hook */
static void lua_log(void *ctx, int level, const char *line)
{
    hone_lua_run *r = ctx;
    if (r->log_ref == LUA_NOREF) {
        if (r->log) r->log(r->log_ctx, level, line);
        return;
    }
    if (r->log_rc) return;
    lua_State *L = r->hl->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    log_args a = {level, line};
    lua_call_args call = {r->log_ref, 2, 0, push_log, &a};
    if (call_protected(L, &call, top + 1) != LUA_OK) {
        r->log_rc = hone_errf(&r->log_err, HONE_EINVAL, "log: %s", lua_tostring(L, -1));
    }
    lua_settop(L, top);
}

void hone_lua_hooks(hone_lua_run *r, hone_lua *hl, const hone_config *cfg, hone_log_fn log, void *log_ctx,
                    hone_hooks *out)
{
    *r = (hone_lua_run){.hl = hl, .on_log = hone_config_function(cfg, "hooks.on_log"),
                        .on_epoch_end = hone_config_function(cfg, "hooks.on_epoch_end"), .log = log,
                        .log_ctx = log_ctx, .log_ref = LUA_NOREF};
    *out = (hone_hooks){.ctx = r, .on_log = lua_log, .on_step = lua_on_step, .on_eval = lua_on_eval,
                        .on_epoch_end = lua_on_epoch_end, .metric = lua_metric, .chat = lua_chat};
}

/* ---- hone.optimize ---------------------------------------------------------------- */

typedef struct params_args {
    const float *params;
    size_t n;
    const hone_tensor_info *tensors;
    size_t ntensors;
    int named;
} params_args;

static void push_floats(lua_State *L, const float *v, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* a list of numbers, or { name = list } for the tensor form (each flat, row-major) */
static void push_params(lua_State *L, const void *arg)
{
    const params_args *a = arg;
    if (!a->named) {
        push_floats(L, a->params, a->n);
        return;
    }
    lua_createtable(L, 0, (int)a->ntensors);
    for (size_t k = 0; k < a->ntensors; k++) {
        const hone_tensor_info *t = &a->tensors[k];
        push_floats(L, a->params + t->offset, t->numel);
        lua_setfield(L, -2, t->name);
    }
}

/* the list at the top of the stack into g[n] */
static int read_gradient(lua_State *L, float *g, size_t n, const char *what, hone_err *err)
{
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) != n)
        return hone_errf(err, HONE_EINVAL, "loss function's %s must be a list of %zu numbers", what, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (!lua_isnumber(L, -1)) rc = hone_errf(err, HONE_EINVAL, "%s[%zu] is not a number", what, i + 1);
        else g[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return rc;
}

/* the spec's loss(p) -> loss, gradient, in the state hone.optimize was called from */
static int lua_objective(void *ctx, const hone_objective_call *c, hone_err *err)
{
    lua_State *L = ctx;
    int top = lua_gettop(L);
    params_args a = {c->params, c->n, c->tensors, c->ntensors, c->named};
    lua_call_args call = {c->fn, 1, 2, push_params, &a};
    if (call_protected(L, &call, 0) != LUA_OK) {
        hone_errf(err, HONE_EINVAL, "loss function: %s", lua_tostring(L, -1));
        lua_settop(L, top);
        return HONE_EINVAL;
    }
    int rc = 0;
    if (!lua_isnumber(L, -2)) {
        rc = hone_errf(err, HONE_EINVAL, "loss function must return a number and a gradient table, got %s first",
                       luaL_typename(L, -2));
    } else if (!c->named) {
        *c->loss = lua_tonumber(L, -2);
        rc = read_gradient(L, c->grads, c->n, "gradient", err);
    } else if (!lua_istable(L, -1)) {
        rc = hone_errf(err, HONE_EINVAL, "loss function's gradient must be a table { name = list }, got %s",
                       luaL_typename(L, -1));
    } else {
        *c->loss = lua_tonumber(L, -2);
        for (size_t k = 0; k < c->ntensors && rc == 0; k++) {
            char what[160];
            snprintf(what, sizeof what, "gradient.%s", c->tensors[k].name);
            lua_getfield(L, -1, c->tensors[k].name);
            rc = read_gradient(L, c->grads + c->tensors[k].offset, c->tensors[k].numel, what, err);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    return rc;
}

static hone_registry *get_registry(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_KEY);
    hone_registry *reg = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return reg;
}

static void push_doubles(lua_State *L, const double *v, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* the result table, built inside a protected call (it allocates) */
static void push_optimized(lua_State *L, const void *arg)
{
    const hone_optimize_result *r = arg;
    lua_createtable(L, 0, 4);
    params_args out = {r->params, r->n, r->tensors, r->ntensors, r->named};
    push_params(L, &out);
    lua_setfield(L, -2, "params");
    push_doubles(L, r->losses, (size_t)r->steps);
    lua_setfield(L, -2, "losses");
    push_doubles(L, r->lrs, (size_t)r->steps);
    lua_setfield(L, -2, "lrs");
    lua_pushinteger(L, (lua_Integer)r->state_bytes);
    lua_setfield(L, -2, "state_bytes");
}

/* hone.optimize { optimizer = ..., scheduler = ..., lr = ..., steps = ..., params = {...},
 *                 loss = function(p) return loss, grad end }
 * -> { params = {...}, losses = {...}, lrs = {...}, state_bytes = N }
 * params = { { name = "w", shape = { 4, 8 }, decay = true, init = {...} }, ... } instead
 * makes several tensors: p, the gradient and the result's params are then { w = {...} } */
static int l_optimize(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    hone_err err = {0};
    hone_node *root = to_node(L, 1, 0, "", &err);
    hone_optimize_result r;
    int rc = root ? hone_optimize_spec(get_registry(L), root, lua_objective, L, &r, &err) : HONE_EINVAL;
    hone_node_free(root);
    if (!rc) {
        lua_call_args build = {LUA_NOREF, 0, 1, push_optimized, &r};
        int status = call_protected(L, &build, 0);
        hone_optimize_result_free(&r);
        if (status == LUA_OK) return 1;
        return lua_error(L);
    }
    luaL_where(L, 1);
    lua_pushfstring(L, "hone.optimize: %s", err.msg);
    lua_concat(L, 2);
    return lua_error(L);
}

/* hone.plugins(kind) -> sorted list of registered names */
static int l_plugins(lua_State *L)
{
    hone_kind kind;
    if (hone_kind_from_name(luaL_checkstring(L, 1), &kind) != 0)
        return luaL_error(L, "hone.plugins: unknown kind '%s' (optimizer, scheduler, collator, quantizer)",
                          lua_tostring(L, 1));
    hone_registry *reg = get_registry(L);
    lua_newtable(L);
    const char *name;
    for (size_t i = 0; (name = hone_feature_name(reg, kind, i)); i++) {
        lua_pushstring(L, name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ---- hone.train ------------------------------------------------------------------- */

/* the run's summary.json and metrics.jsonl as the run table's fields */
static void push_run_results(lua_State *L, const char *dir)
{
    char path[4300], *text = NULL;
    hone_err err = {0};
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (hone_read_file(path, &text, NULL, &err) == 0) {
        cJSON *j = cJSON_Parse(text);
        for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
            push_json(L, e, 0);
            lua_setfield(L, -2, e->string);
        }
        const cJSON *bc = cJSON_GetObjectItem(j, "best_checkpoint");
        if (cJSON_IsString(bc)) {
            lua_createtable(L, 0, 4);
            lua_pushstring(L, bc->valuestring);
            lua_setfield(L, -2, "checkpoint");
            lua_pushfstring(L, "%s/checkpoints/%s", dir, bc->valuestring);
            lua_setfield(L, -2, "dir");
            push_json(L, cJSON_GetObjectItem(j, "best_metric"), 0);
            lua_setfield(L, -2, "metric");
            push_json(L, cJSON_GetObjectItem(j, "best_value"), 0);
            lua_setfield(L, -2, "value");
            lua_setfield(L, -2, "best");
        }
        cJSON_Delete(j);
        free(text);
        text = NULL;
    }
    lua_newtable(L);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    size_t len = 0;
    int i = 0;
    if (hone_read_file(path, &text, &len, &err) == 0) {
        for (char *line = text, *nl; line < text + len; line = nl + 1) {
            nl = memchr(line, '\n', (size_t)(text + len - line));
            if (!nl) nl = text + len;
            cJSON *row = cJSON_ParseWithLength(line, (size_t)(nl - line));
            if (row) {
                push_json(L, row, 0);
                lua_rawseti(L, -2, ++i);
            }
            cJSON_Delete(row);
        }
        free(text);
    }
    lua_setfield(L, -2, "history");
}

/* hone.train(spec [, opts]): runs an experiment from Lua and returns the run table
 * { name, dir, status, steps, best = { checkpoint, dir, metric, value }, history = metrics
 * rows }; a spec the schema refuses raises an error, a run that fails returns status
 * "failed". opts: { dir = exact run directory (made if missing), resume = continue it,
 * log = function(level, line) that receives every line the run would print ("info",
 * "warn", "progress"; default: printed as hone run prints them) }. */
static int l_train(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    hone_lua *hl = get_hl(L);
    hone_err err = {0};
    hone_node *root = to_node(L, 1, 0, "", &err);
    hone_config *cfg = NULL;
    char path[4096], name[300];
    int rc = root ? 0 : HONE_EINVAL;
    if (!rc && hone_node_get(root, "plugins"))
        rc = hone_errf(&err, HONE_EUNSUPPORTED, "plugins = {...} is not read by hone.train; put the plugin directories "
                       "on HONE_PLUGIN_PATH");
    if (!rc) rc = hone_experiment_resolve(&cfg, get_registry(L), root, &err);
    hone_rundir_opts ro = {.script = hl->script};
    int log_ref = LUA_NOREF;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "dir");
        ro.dir = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!rc && !ro.dir && !lua_isnil(L, -1))
            rc = hone_errf(&err, HONE_EINVAL, "opts.dir must be a directory path, got %s", luaL_typename(L, -1));
        lua_getfield(L, 2, "resume");
        ro.resume = ro.dir && lua_toboolean(L, -1);
        lua_getfield(L, 2, "log");
        if (!rc && !lua_isnil(L, -1) && !lua_isfunction(L, -1))
            rc = hone_errf(&err, HONE_EINVAL, "opts.log must be a function(level, line), got %s", luaL_typename(L, -1));
        if (lua_isfunction(L, -1)) log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        else lua_pop(L, 1);
        lua_pop(L, 2);   /* ro.dir stays valid: the string lives in the opts table */
    }
    if (!rc) rc = hone_rundir_open(cfg, &ro, path, sizeof path, name, sizeof name, &err);
    hone_node_free(root);
    if (rc) {
        hone_config_free(cfg);
        luaL_unref(L, LUA_REGISTRYINDEX, log_ref);
        return luaL_error(L, "hone.train: %s", err.msg);
    }
    hone_term term;
    hone_term_init(&term);
    hone_lua_run run;
    hone_hooks hooks;
    hone_lua_hooks(&run, hl, cfg, hone_term_log, &term, &hooks);
    run.log_ref = log_ref;
    hone_logf(&hooks, HONE_LOG_INFO, "run %s (%s)", name, path);
    int interrupted = 0;
    hone_err terr = {0};
    int trc = hone_run_train(cfg, &hooks, path, ro.resume, &interrupted, &terr);
    hone_term_end(&term);
    hone_config_free(cfg);
    luaL_unref(L, LUA_REGISTRYINDEX, log_ref);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "dir");
    push_run_results(L, path);
    if (trc) {
        lua_pushstring(L, "failed");
        lua_setfield(L, -2, "status");
        lua_pushstring(L, terr.msg);
        lua_setfield(L, -2, "error");
        fprintf(stderr, "hone: run %s failed: %s\n", name, terr.msg);
    }
    return 1;
}

/* ---- processes (sweeps run members side by side) ------------------------------------ */

/* core.spawn(fn, ...): forks; the child calls fn(...) and exits 0 when it returns true,
 * 1 when it returns anything else or raises (printing the error); the parent gets the pid */
static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return luaL_error(L, "spawn: fork failed: %s", strerror(errno));
    if (pid == 0) {
        int n = lua_gettop(L);
        lua_pushcfunction(L, traceback);
        lua_insert(L, 1);
        int ok = lua_pcall(L, n - 1, 1, 1) == LUA_OK && lua_toboolean(L, -1);
        if (!ok && lua_type(L, -1) == LUA_TSTRING) fprintf(stderr, "hone: %s\n", lua_tostring(L, -1));
        fflush(stdout);
        fflush(stderr);
        _exit(ok ? 0 : 1);
    }
    lua_pushinteger(L, pid);
    return 1;
}

/* core.wait(): the next child to end: pid, exit code (or 128 + signal), or nil when none is left */
static int l_wait(lua_State *L)
{
    int status = 0;
    pid_t pid;
    do pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    if (pid < 0) return 0;
    lua_pushinteger(L, pid);
    lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 2;
}

/* core.now(): monotonic seconds */
static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    return 1;
}

/* a Lua-facing result: true, or nil and the message */
static int push_result(lua_State *L, int rc, const hone_err *err)
{
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, err->msg);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.check(spec): the schema's verdict on a spec without running it; true, or nil and
 * the message hone run would print */
static int l_check(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    hone_err err = {0};
    hone_node *root = to_node(L, 1, 0, "", &err);
    hone_config *cfg = NULL;
    int rc = root ? 0 : HONE_EINVAL;
    if (!rc) rc = hone_experiment_resolve(&cfg, get_registry(L), root, &err);
    if (!rc) rc = hone_run_check(cfg, &err);   /* what the member's run would refuse at once */
    hone_config_free(cfg);
    hone_node_free(root);
    return push_result(L, rc, &err);
}

/* core.resolve(spec): the experiment as a run would see it, every key with its value,
 * defaults and plugin options included (functions as "<lua function>"); a spec the
 * schema refuses raises the error hone run would print */
static void push_resolved(lua_State *L, const void *arg)
{
    push_json(L, arg, 0);
}

static int l_resolve(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    hone_err err = {0};
    hone_node *root = to_node(L, 1, 0, "", &err);
    hone_config *cfg = NULL;
    int rc = root ? hone_experiment_resolve(&cfg, get_registry(L), root, &err) : HONE_EINVAL;
    hone_node_free(root);
    cJSON *j = rc ? NULL : hone_config_json(cfg);
    hone_config_free(cfg);
    if (!rc && !j) rc = hone_errf(&err, HONE_ENOMEM, "out of memory");
    if (rc) return luaL_error(L, "hone.resolve: %s", err.msg);
    lua_call_args build = {LUA_NOREF, 0, 1, push_resolved, j};
    int status = call_protected(L, &build, 0);
    cJSON_Delete(j);
    return status == LUA_OK ? 1 : lua_error(L);
}

/* core.sweep_report(dir): draws dir/report.html from its summary.csv; nil, message on failure */
static int l_sweep_report(lua_State *L)
{
    hone_err err = {0};
    int rc = hone_write_sweep_report(luaL_checkstring(L, 1), &err);
    return push_result(L, rc, &err);
}

/* core.mkdirs(path): path and its parents; true, or nil and a message */
static int l_mkdirs(lua_State *L)
{
    hone_err err = {0};
    int rc = hone_mkdirs(luaL_checkstring(L, 1), &err);
    return push_result(L, rc, &err);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct name_list {
    char **names;
    size_t n;
} name_list;

static void push_name_list(lua_State *L, const void *arg)
{
    const name_list *a = arg;
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
        lua_pushstring(L, a->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* core.list(dir): its entries' names but . and .., sorted; an empty list where dir is not
 * a directory */
static int l_list(lua_State *L)
{
    DIR *d = opendir(luaL_checkstring(L, 1));
    name_list a = {0};
    size_t cap = 0;
    int oom = 0;
    for (struct dirent *e; d && !oom && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (a.n == cap) {
            char **p = realloc(a.names, (cap = cap ? 2 * cap : 64) * sizeof *a.names);
            if (!p) oom = 1;
            else a.names = p;
        }
        if (!oom && !(a.names[a.n] = strdup(e->d_name))) oom = 1;
        else if (!oom) a.n++;
    }
    if (d) closedir(d);
    if (!oom && a.n) qsort(a.names, a.n, sizeof *a.names, by_name);
    /* the table is built in a protected call: a failed allocation there must not leak the names */
    lua_call_args build = {LUA_NOREF, 0, 1, push_name_list, &a};
    int status = oom ? LUA_ERRMEM : call_protected(L, &build, 0);
    for (size_t i = 0; i < a.n; i++) free(a.names[i]);
    free(a.names);
    if (oom) return luaL_error(L, "out of memory listing a directory");
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

/* core.is_file(path) */
static int l_is_file(lua_State *L)
{
    lua_pushboolean(L, hone_is_file(luaL_checkstring(L, 1)));
    return 1;
}

static void push_json_list(lua_State *L, const void *arg)
{
    const cJSON *rows = arg;
    lua_createtable(L, cJSON_GetArraySize(rows), 0);
    lua_Integer k = 0;
    for (const cJSON *r = rows->child; r; r = r->next) {
        push_json(L, r, 0);
        lua_rawseti(L, -2, ++k);
    }
}

/* core.read_jsonl(path): its rows as tables, or nil and a message; a line that is not
 * JSON is left out (a row a crash cut short) */
static int l_read_jsonl(lua_State *L)
{
    hone_err err = {0};
    char *text = NULL;
    size_t len = 0;
    if (hone_read_file(luaL_checkstring(L, 1), &text, &len, &err)) return push_result(L, HONE_EIO, &err);
    cJSON *rows = cJSON_CreateArray();
    for (char *line = text, *nl; rows && line < text + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) nl = text + len;
        cJSON *row = cJSON_ParseWithLength(line, (size_t)(nl - line));
        if (row) cJSON_AddItemToArray(rows, row);
    }
    free(text);
    if (!rows) return luaL_error(L, "out of memory reading a JSONL file");
    lua_call_args build = {LUA_NOREF, 0, 1, push_json_list, rows};
    int status = call_protected(L, &build, 0);
    cJSON_Delete(rows);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

/* core.ncores(): online cores */
static int l_ncores(lua_State *L)
{
    lua_pushinteger(L, sysconf(_SC_NPROCESSORS_ONLN));
    return 1;
}

static int open_core(lua_State *L)
{
    static const luaL_Reg fns[] = {{"optimize", l_optimize}, {"plugins", l_plugins}, {"train", l_train}, {"spawn", l_spawn},
                                   {"wait", l_wait}, {"ncores", l_ncores}, {"now", l_now},
                                   {"sweep_report", l_sweep_report}, {"check", l_check}, {"mkdirs", l_mkdirs},
                                   {"list", l_list}, {"is_file", l_is_file}, {"read_jsonl", l_read_jsonl},
                                   {"mode", l_mode}, {"used", l_used}, {"resolve", l_resolve},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, hone_version());
    lua_setfield(L, -2, "version");
    return 1;
}

/* ---- the state ---------------------------------------------------------------------- */

int hone_lua_new(hone_lua **out, const char *lua_dir, hone_registry *reg, hone_err *err)
{
    hone_lua *hl = calloc(1, sizeof *hl);
    if (!hl) return hone_errf(err, HONE_ENOMEM, "out of memory");
    hl->L = luaL_newstate();
    if (!hl->L) {
        free(hl);
        return hone_errf(err, HONE_ENOMEM, "cannot create a Lua state");
    }
    hl->reg = reg;
    lua_State *L = hl->L;
    luaL_openlibs(L);
    lua_pushlightuserdata(L, reg);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &REG_KEY);
    lua_pushlightuserdata(L, hl);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HL_KEY);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_core);
    lua_setfield(L, -2, "hone.core");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    *out = hl;
    return 0;
}

void hone_lua_free(hone_lua *hl)
{
    if (!hl) return;
    lua_close(hl->L);
    free(hl->script);
    free(hl->resume);
    free(hl);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int hone_lua_run_file(hone_lua *hl, const char *script, hone_node **result, hone_err *err)
{
    lua_State *L = hl->L;
    *result = NULL;
    int top = lua_gettop(L);
    if (!hone_is_file(script)) return hone_errf(err, HONE_EINVAL, "%s: no such script", script);
    if (!hl->script && !(hl->script = strdup(script))) return hone_errf(err, HONE_ENOMEM, "out of memory");
    /* let the script `require` files that sit beside it */
    char *dir = strdup(script);
    if (!dir) return hone_errf(err, HONE_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s/?.lua", lua_tostring(L, -1), dir);
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    free(dir);

    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, script) != LUA_OK) {
        hone_errf(err, HONE_EINVAL, "%s", lua_tostring(L, -1));
        lua_settop(L, top);
        return HONE_EINVAL;
    }
    if (lua_pcall(L, 0, 1, top + 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* an error raised through a tail call (`return hone.experiment(...)`) carries no
         * position: name the script at least */
        const char *at = strstr(msg, ".lua:"), *space = strchr(msg, ' ');
        int placed = at && (!space || at < space);
        hone_errf(err, HONE_EINVAL, "%s%s%s", placed ? "" : script, placed ? "" : ": ", msg);
        lua_settop(L, top);
        return HONE_EINVAL;
    }
    int rc = 0;
    /* what hone.sweep or hone.train returned: the script did its work (`return hone.sweep {...}`,
     * written the way experiment scripts end), like a script that returns nothing */
    if (lua_getmetatable(L, -1)) {
        lua_getfield(L, -1, "__hone_result");
        int done = lua_toboolean(L, -1);
        lua_pop(L, 2);
        if (done) lua_pushnil(L), lua_replace(L, -2);
    }
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            rc = hone_errf(err, HONE_EINVAL, "%s: the script returned a %s; return an experiment table (or nothing)",
                           script, luaL_typename(L, -1));
        else if (!(*result = to_node(L, -1, 0, "", err)))
            rc = err->code ? err->code : HONE_ENOMEM;
    }
    lua_settop(L, top);
    return rc;
}
