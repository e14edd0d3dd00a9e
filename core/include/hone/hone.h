/* hone.h — the embedding API: what the CLI, the Lua binding and any other program
 * that runs hone are written against.
 *
 * A context holds hone's own directories and the loaded plugins. An experiment is a
 * value tree (what a script returns) resolved against the schema: every default filled
 * in, every value checked, each readable by its dotted key. A run talks back through
 * hooks: every line it would print goes to on_log, and the step, evaluation, epoch and
 * checkpoint hooks carry what a tracker records. Nothing here prints or exits: errors
 * come back as an int and a hone_err (plugin.h), with the file, key or tensor named.
 */
#ifndef HONE_HONE_H
#define HONE_HONE_H

#include <stddef.h>

#include "hone/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors -------------------------------------------------------------------- */

/* fills err (message formatted, code) and returns code */
int hone_errf(hone_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* puts context in front of err's message ("data.train: "); returns err->code */
int hone_err_prefix(hone_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the value tree ------------------------------------------------------------ */

/* A configuration table without Lua: the binding turns what a script returns into
 * this tree, `--set` overrides are grafted onto it as text, and the schema checks it in
 * plain C. A function stays with its host: a function node holds a handle (for Lua a
 * registry reference) that only the host's hooks (metric, chat, ...) know how to call. */
typedef enum {
    HONE_NODE_NUMBER = 1,
    HONE_NODE_INTEGER,
    HONE_NODE_BOOL,
    HONE_NODE_STRING,
    HONE_NODE_TABLE,
    HONE_NODE_FUNCTION,
} hone_node_type;

#define HONE_NOREF (-2)          /* a function handle that names no function (LUA_NOREF) */

typedef struct hone_node {
    hone_node_type type;
    char *key;                   /* string key, or NULL for an array element */
    long index;                  /* 1-based array index when key is NULL */
    double num;
    long long integer;
    int boolean;
    char *str;
    int ref;                     /* function: the host's handle */
    int from_cli;                /* string from --set: converted to the key's type */
    struct hone_node **kids;     /* table entries in insertion order */
    size_t nkids, cap;
} hone_node;

hone_node *hone_node_new(hone_node_type type);
void hone_node_free(hone_node *n);
/* appends a child (takes ownership); returns it, or NULL when out of memory */
hone_node *hone_node_add(hone_node *table, hone_node *child);
hone_node *hone_node_get(const hone_node *table, const char *key);
hone_node *hone_node_at(const hone_node *table, long index);   /* array part, 1-based */
size_t hone_node_array_len(const hone_node *table);
const char *hone_node_type_name(const hone_node *n);
/* Sets "a.b.c" = text (from --set), creating tables on the way. A string met on the
 * way becomes a table holding it at [1], which is how `optimizer = "adamw"` grows
 * options. */
int hone_node_set_path(hone_node *root, const char *path, const char *text);

/* ---- context ------------------------------------------------------------------- */

typedef struct hone_ctx hone_ctx;

/* Finds hone's own plugin and Lua directories (beside the build tree, else under the
 * install prefix) and loads every plugin there, then those on plugin_path (a
 * colon-separated list of files or directories, as HONE_PLUGIN_PATH; NULL: none). */
int hone_ctx_new(hone_ctx **out, const char *plugin_path, hone_err *err);
void hone_ctx_free(hone_ctx *ctx);
hone_registry *hone_ctx_registry(hone_ctx *ctx);
const char *hone_ctx_lua_dir(const hone_ctx *ctx);
/* a kind by its name ("optimizer", ...); 0, or -1 when there is none */
int hone_kind_from_name(const char *name, hone_kind *kind);
/* the name of the i-th feature of a kind, in load order; NULL past the last */
const char *hone_feature_name(const hone_registry *reg, hone_kind kind, size_t i);
const char *hone_version(void);          /* "0.1.0" */
const char *hone_git_revision(void);

/* ---- experiments --------------------------------------------------------------- */

/* The resolved experiment. It never holds the interpreter its functions live in: the
 * hooks a run is given call them. */
typedef struct hone_config hone_config;

/* root: the tree a script returned, overrides already set on it */
int hone_experiment_resolve(hone_config **out, const hone_registry *reg, const hone_node *root, hone_err *err);
void hone_config_free(hone_config *cfg);

/* Resolution also refuses a project name that cannot name a run directory. */

/* Any resolved value, defaults included, by dotted key ("train.lr"). */
double hone_config_num(const hone_config *cfg, const char *path);
long long hone_config_int(const hone_config *cfg, const char *path);
int hone_config_bool(const hone_config *cfg, const char *path);
const char *hone_config_str(const hone_config *cfg, const char *path);   /* NULL if unset */
int hone_config_is_set(const hone_config *cfg, const char *path);
/* a function key's handle (HONE_NOREF when unset) */
int hone_config_function(const hone_config *cfg, const char *path);
/* every key, nested as a script writes it; functions appear as "<lua function>" */
struct cJSON;
struct cJSON *hone_config_json(const hone_config *cfg);

/* ---- hooks --------------------------------------------------------------------- */

/* A level beyond plugin.h's DEBUG / INFO / WARN: a transient status line (the progress
 * bar) that a terminal redraws in place and any other host drops. */
enum { HONE_LOG_PROGRESS = 8 };

/* One line of output (no trailing newline; it may hold newlines of its own). WARN lines
 * come without their "warning: " prefix: the host adds its own. */
typedef void (*hone_log_fn)(void *ctx, int level, const char *line);

/* A log hook that prints as the CLI does: lines to stdout, warnings with "warning: ",
 * and on a terminal the progress line redrawn in place (elsewhere dropped). Pass a
 * hone_term as ctx; hone_term_end clears a progress line left on screen. */
typedef struct hone_term {
    int tty, shown;
} hone_term;
void hone_term_init(hone_term *t);
void hone_term_log(void *term, int level, const char *line);
void hone_term_end(hone_term *t);

typedef struct hone_run_info {
    const char *name;            /* "<project>-<YYYY-MM-DD_HH.MM.SS>" */
    const char *dir;
} hone_run_info;

/* A logged optimizer step (every train.log_every steps): the loss is the mean over
 * the steps since the last row. row: the metrics.jsonl row, JSON object text. */
typedef struct hone_step_info {
    long step, total_steps;
    double epoch;                /* fractional: 1.5 = half way through the second */
    double loss, lr, grad_norm;
    long long tokens;            /* trained so far, padding not counted */
    double tokens_per_s, wall_s, eta_s, peak_rss_mb;
    const char *row;
} hone_step_info;

typedef struct hone_metric {
    const char *name;            /* "eval_loss", "exact_match", "<function>.<key>" */
    double value;                /* NaN: not computed */
} hone_metric;

typedef struct hone_eval_info {
    const char *tag;             /* the checkpoint it belongs to: "epoch-2", "step-50" */
    long step;
    double epoch;
    const hone_metric *metrics;  /* [n]: eval_loss, then the generation metrics */
    size_t n;
    double loss_s, generate_s;   /* seconds spent on each part */
    const char *row;
} hone_eval_info;

typedef struct hone_epoch_info {
    long epoch, step;            /* epoch: 1-based, the one just finished */
    double train_loss;
    const char *checkpoint;      /* its name under checkpoints/ */
    const char *best;            /* the best checkpoint so far, or NULL */
    const char *row;             /* { epoch, step, train_loss, checkpoint, <metric>, best } */
} hone_epoch_info;

typedef struct hone_checkpoint_info {
    const char *name, *path;     /* "epoch-2", "<run>/checkpoints/epoch-2" */
    long step;
    double epoch;
    int best;                    /* it is now the best */
} hone_checkpoint_info;

/* What an eval.metrics function is called with. record: the example's own JSON record
 * (its fields: ex.completion, ex.category, ...), or NULL. */
typedef struct hone_metric_call {
    const char *prediction, *prompt, *reference, *record;
    int index;                   /* the eval example, 0-based */
} hone_metric_call;

enum { HONE_METRIC_NAME = 128 }; /* a metric's name is shorter */

/* Every hook may be NULL. A hook that fails fills err and returns non-zero: the run
 * writes its checkpoint first, then stops with that error. The info pointers live for
 * the call only. */
typedef struct hone_hooks {
    void *ctx;                   /* passed to each */
    hone_log_fn on_log;
    int (*on_step)(void *ctx, const hone_run_info *run, const hone_step_info *s, hone_err *err);
    int (*on_eval)(void *ctx, const hone_run_info *run, const hone_eval_info *e, hone_err *err);
    /* *stop = 1 ends the run after this epoch (its checkpoint is written) */
    int (*on_epoch_end)(void *ctx, const hone_run_info *run, const hone_epoch_info *e, int *stop,
                        hone_err *err);
    int (*on_checkpoint)(void *ctx, const hone_run_info *run, const hone_checkpoint_info *c,
                         hone_err *err);
    /* eval.metrics: the function with handle fn scores one prediction; up to max values
     * go to values[] with their names in names[] ("" for a plain number) */
    int (*metric)(void *ctx, int fn, const hone_metric_call *call, double *values,
                  char (*names)[HONE_METRIC_NAME], int max, int *n, hone_err *err);
    /* data.chat_function: messages (a JSON array of {role, content}) to pieces of text,
     * each trained or not; *texts and *trained malloc'd, the caller frees them */
    int (*chat)(void *ctx, int fn, const struct cJSON *messages, char ***texts, int **trained, int *n,
                hone_err *err);
} hone_hooks;

/* A line through hooks->on_log (no hooks or no on_log: nowhere): how library code
 * prints, and how a host can print beside a run. */
void hone_logf(const hone_hooks *hooks, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- runs ---------------------------------------------------------------------- */

/* What a run refuses before it reads any data (an unusable device or dtype, a model
 * directory without a readable config.json, contradictory settings). A dry run reports
 * the same. */
int hone_run_check(const hone_config *cfg, hone_err *err);

/* The run directory: a new one under output_dir ("<project>-<time>", then -2, -3, ...
 * when taken), or exactly dir when given (created if missing). A fresh run gets
 * config.json (the resolved experiment, the script and the --set overrides) and
 * experiment.lua (the script's text) — one writer for every host; resume = 1 opens an
 * existing run and writes nothing. path, name: out. */
typedef struct hone_rundir_opts {
    const char *dir;             /* exact directory, or NULL */
    const char *script;          /* the script's path (NULL: not written) */
    char *const *sets;           /* the overrides, "key=value" */
    int nsets;
    int resume;
} hone_rundir_opts;
int hone_rundir_open(const hone_config *cfg, const hone_rundir_opts *o, char *path, size_t pathn,
                     char *name, size_t namen, hone_err *err);

/* Trains the experiment into run_dir (which exists). resume: continue from the newest
 * complete checkpoint there. *interrupted is set when a SIGINT / SIGTERM stopped the run
 * after checkpointing (the CLI exits 130). summary.json and report.html are written
 * whatever the outcome. */
int hone_run_train(const hone_config *cfg, const hone_hooks *hooks, const char *run_dir, int resume,
                   int *interrupted, hone_err *err);

/* Evaluation loss and generation metrics of a checkpoint (an adapter directory for LoRA
 * experiments, a weights directory for full fine-tuning); predictions to out_path if
 * set. */
int hone_run_eval(const hone_config *cfg, const hone_hooks *hooks, const char *ckpt, const char *out_path,
                  hone_err *err);

/* What a run would train: the data summary, nshow examples of the train (or eval)
 * split with the trained tokens marked (ANSI colour, or [[brackets]]), the numbers. */
int hone_run_inspect(const hone_config *cfg, const hone_hooks *hooks, int nshow, int eval_split, int color,
                     hone_err *err);

/* report.html of a run directory from its metrics.jsonl, summary.json and
 * eval/<best>.jsonl (each optional); of a sweep directory from its summary.csv, with
 * links to each member's report. Fail only when the page cannot be written. */
int hone_write_report(const char *run_dir, hone_err *err);
int hone_write_sweep_report(const char *sweep_dir, hone_err *err);

/* ---- hone.optimize: an optimizer plugin on the host's own function ---------------- */

/* What a plugin author checks a new optimizer with: a spec { optimizer, scheduler, lr,
 * steps, warmup_ratio, warmup_steps, params, loss, resume_at } as hone.optimize takes
 * it (params: a list of numbers, one tensor with decay; or named tensors { name, shape,
 * decay, init }), run for `steps` optimizer steps on the function the spec's `loss`
 * handle names, which the host evaluates. */
typedef struct hone_objective_call {
    int fn;                            /* the spec's loss function */
    const float *params;               /* [n], flat, the tensors one after another */
    size_t n;
    const hone_tensor_info *tensors;   /* [ntensors] (plugin.h): names, shapes, offsets */
    size_t ntensors;
    int named;                         /* the spec gave named tensors */
    double *loss;                      /* out */
    float *grads;                      /* [n] out */
} hone_objective_call;
typedef int (*hone_objective_hook)(void *ctx, const hone_objective_call *call, hone_err *err);

typedef struct hone_optimize_result {
    float *params;                     /* [n] the values after the last step */
    size_t n;
    const hone_tensor_info *tensors;   /* [ntensors], as in the calls */
    size_t ntensors;
    int named;
    double *losses, *lrs;              /* [steps]: the loss before each step, the lr it used */
    long steps;
    size_t state_bytes;                /* the optimizer's state */
    hone_config *spec;                 /* owns tensors */
} hone_optimize_result;

/* Errors name the spec key at fault, or the step and what the optimizer said. */
int hone_optimize_spec(const hone_registry *reg, const hone_node *spec, hone_objective_hook objective, void *ctx,
                       hone_optimize_result *out, hone_err *err);
void hone_optimize_result_free(hone_optimize_result *r);

/* ---- files (what a host needs beside runs: sweeps list and read run directories) */

/* the whole file, NUL-terminated; errors name the path */
int hone_read_file(const char *path, char **data, size_t *len, hone_err *err);
/* written, fsynced, and the directory too: on disk when this returns */
int hone_write_file(const char *path, const void *data, size_t len, hone_err *err);
int hone_mkdirs(const char *path, hone_err *err);   /* mkdir -p */
int hone_is_dir(const char *path);
int hone_is_file(const char *path);

#ifdef __cplusplus
}
#endif
#endif
