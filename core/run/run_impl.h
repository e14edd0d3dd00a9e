/* run_impl.h — what the parts of a run share inside core/run/: the batch buffers, where
 * a run stands (the resume state), one evaluation's context, metrics rows.
 *
 *   run.c         experiment -> data -> model -> optimizer -> plan -> loop -> summary
 *   loop.c        the epochs: windows of micro-batches, the step, logging
 *   evaluate.c    eval loss, generation metrics and eval/<tag>.jsonl, best tracking
 *   checkpoint.c  save, load, prune, best; the state format in one place
 *   rundir.c      run names, config.json and experiment.lua
 */
#ifndef HONE_RUN_IMPL_H
#define HONE_RUN_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "dataset.h"
#include "hone/hone.h"
#include "model.h"
#include "optimize.h"
#include "schedule.h"
#include "tokenizer.h"

double hone_now(void);        /* monotonic seconds */
double hone_peak_rss_mb(void);

/* ---- batches ----------------------------------------------------------------------- */

typedef struct batcher {
    int32_t *ids, *labels, *targets;   /* [B, T] */
    int32_t *start;                    /* [B, T] document starts of packed rows */
    int packed;                        /* the last batch holds packed rows */
    int B, T;
    int32_t pad;
    int pad_to;                        /* > 0: pad every batch to this length */
} batcher;

/* room for rows x cols; 0 or HONE_ENOMEM */
int batcher_alloc(batcher *b, int rows, int cols, int32_t pad, hone_err *err);
void batcher_free(batcher *b);
/* examples order[first .. first + n) right-padded to the longest; returns their tokens */
long make_batch(batcher *b, const hone_dataset *d, const size_t *order, size_t first, int n);
/* the labels a window predicts (its loss denominator) */
long count_labels(const hone_dataset *d, const size_t *order, size_t first, size_t n);

/* ---- metrics rows ------------------------------------------------------------------ */

/* One JSON object on one line, in the layout metrics.jsonl has always had ("key": value,
 * separated by ", "): names escaped, non-finite numbers null. */
typedef struct json_row {
    hone_membuf mb;
    int rc;   /* out of memory: the row is lost, the caller says so */
} json_row;
void row_put(json_row *r, const char *text, size_t len);
void row_key(json_row *r, const char *name);
void row_num(json_row *r, const char *name, const char *fmt, double v);
char *row_end(json_row *r);   /* the row (NUL-terminated; the caller frees), or NULL */

/* ---- where a run stands: saved in every checkpoint's state.zst -------------------- */

typedef struct train_pos {
    int64_t step;            /* optimizer steps done */
    int64_t epoch, window;   /* the next window to run: epoch index and its first micro-batch */
    int64_t tokens, nonfinite, best_epoch, stale;
    char best_name[64];      /* the best checkpoint so far ("" before the first evaluation) */
    double best, last_loss, last_eval;
    uint64_t draws[2];       /* where the dropout and NEFTune streams stand (HONESTA3) */
    uint64_t spare[6];       /* the bytes HONESTA2 kept xoshiro states in: the layout stays */
    double wall_s;           /* seconds of training so far, over every process that resumed the run */
} train_pos;

/* ---- evaluation -------------------------------------------------------------------- */

typedef struct metric_acc {
    char name[2 * HONE_METRIC_NAME];   /* "function.name" */
    double sum;
    long n;
} metric_acc;

enum { MAX_METRICS = 64 };

typedef struct eval_ctx {
    hone_model *m;
    batcher *b;
    const hone_dataset *eval;
    int bs, generate, maximize;
    hone_tokenizer *tok;
    const hone_config *cfg;
    const hone_hooks *hooks;
    hone_run_info run;
    const char *best_metric;
    FILE *metrics;
    double threshold;
    metric_acc acc[MAX_METRICS];
    int nacc;
    int hook_rc;              /* a hook failed: the loop checkpoints, then stops with hook_err */
    hone_err hook_err;
    char **recs;              /* eval_records of eval */
    char computed[1024];      /* the metrics the last evaluation computed, for messages */
    long evals;               /* evaluations this process ran */
} eval_ctx;

/* token-weighted mean cross-entropy over ev */
int evaluate_loss(hone_model *m, batcher *b, const hone_dataset *ev, int bs, double *loss, hone_err *err);
/* the records the metric functions see (NULL without metric functions); free_records */
int eval_records(const hone_config *cfg, const hone_dataset *ev, char ***recs, hone_err *err);
void free_records(char **recs, size_t n);
/* greedy generation scored by exact_match and eval.metrics into acc; predictions to
 * out_path when set */
int generate_metrics(hone_model *m, hone_tokenizer *tok, const hone_dataset *ev, char *const *recs,
                     const hone_config *cfg, const hone_hooks *hooks, const char *out_path, metric_acc *acc,
                     int *nacc, hone_err *err);
/* One evaluation in a run: loss, generation metrics, the metrics row and its hook, and
 * whether it is the new best. tag: the checkpoint it belongs to (epoch-N or step-N). */
int run_eval(eval_ctx *c, train_pos *pos, const char *tag, double ep, int *improved, hone_err *err);

/* a hook's failure is kept in c (the first one), for the loop to checkpoint and stop */
void hook_failed(eval_ctx *c, int rc, const char *hook);

/* ---- checkpoints ------------------------------------------------------------------- */

typedef struct ckpt_meta {          /* what trainer_state.json records */
    double epoch;
    long step, max_steps;
    double train_loss;
    int has_eval;
    double eval_loss;
    long best_epoch;                 /* 0: none */
} ckpt_meta;

/* The training state (train_pos, then the optimizer's state) into mb. */
int state_blob(hone_membuf *mb, const train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, hone_err *err);
/* checkpoints/<name>/, written under a temp name, fsynced and renamed */
int save_checkpoint(hone_model *m, const hone_config *cfg, const char *run_dir, const char *name,
                    const ckpt_meta *meta, const hone_membuf *blob, hone_err *err);
int newest_checkpoint(const char *run_dir, char *out, size_t n, hone_err *err);
/* draws: the run uses dropout or NEFTune (a state from before the counter-based streams
 * is then refused) */
int read_state(const char *ckpt, train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, int draws,
               hone_err *err);
/* metrics.jsonl keeps its rows up to step (a failure is a warning) */
void truncate_metrics(const char *path, long step, const hone_hooks *hooks);
/* save.keep: the newest `keep` stay, and the best */
void prune_checkpoints(const char *run_dir, long keep, const char *best_name, const hone_hooks *hooks);
/* run_dir/best -> checkpoints/<name>, replaced atomically */
void point_best(const char *run_dir, const char *name, const hone_hooks *hooks);
int write_json_file(const char *path, struct cJSON *j, hone_err *err);

/* ---- the loop ---------------------------------------------------------------------- */

/* Everything the epochs need, set up by run.c. */
typedef struct train_run {
    const hone_config *cfg;
    const hone_hooks *hooks;
    const char *run_dir;
    hone_dataset *train;
    hone_model *m;
    float *params, *grads;    /* [nparams] */
    size_t nparams;
    const hone_tensor_info *tinfo;
    size_t ntensors;
    const hone_feature *optimizer;
    void *ostate;
    const hone_feature *scheduler;
    const hone_opts *sched_opts;
    hone_sched_ctx sctx;
    hone_plan plan;
    batcher b;
    size_t *order;            /* [train->n] */
    const size_t *given;      /* [epochs, train->n] data.order_file, or NULL */
    int bs, ga;
    eval_ctx ectx;
    train_pos pos;
    hone_membuf blob;
    double t0, wall0;         /* this process's start; the time before the resumed checkpoint */
    double tokens0;           /* tokens not in wall0 (a state from before wall_s was saved) */
    long step0, epochs_done;
    int stopped_early;
    /* the logged row: the mean loss over steps_log steps since tlog, tokens since tokens_log */
    double loss_log, tlog;
    long steps_log, tokens_log;
} train_run;

/* Runs the epochs from r->pos; *interrupted on SIGINT / SIGTERM after a checkpoint. */
int train_loop(train_run *r, int *interrupted, hone_err *err);

#endif
