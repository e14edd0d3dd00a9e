/* test_run.c — the embedding API as another program uses it: hone/hone.h only (and the
 * tests' harness).
 *
 * It builds an experiment from key=value texts, runs it on the tiny fixture model with C
 * hooks, and checks what the hooks saw (every logged step, every evaluation with its
 * metrics, every checkpoint on disk, each epoch's end), that the library printed nothing
 * itself, that on_epoch_end can stop a run and that a failing hook stops it after its
 * checkpoint with the hook's error. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hone/hone.h"

typedef struct seen {
    int steps, evals, checkpoints, epochs, lines, done_line, plugin_lines;
    long last_step;
    int stop_after;          /* on_epoch_end asks to stop after this epoch (0: never) */
    int fail_at;             /* on_checkpoint fails at this checkpoint (0: never) */
    char first_ckpt[4200];
} seen;

static void on_log(void *ctx, int level, const char *line)
{
    seen *s = ctx;
    s->lines++;
    if (level == HONE_LOG_INFO && !strncmp(line, "done: ", 6)) s->done_line = 1;
    /* the test optimizer's host->log lines: step 1 a warning, the rest information */
    if (!strcmp(line, "logs: step 1")) s->plugin_lines += level == HONE_LOG_WARN;
    else if (!strncmp(line, "logs: step ", 11)) s->plugin_lines += level == HONE_LOG_INFO;
}

static int on_step(void *ctx, const hone_run_info *run, const hone_step_info *st, hone_err *err)
{
    (void)err;
    seen *s = ctx;
    CHECK(run->name && run->dir && strstr(run->dir, run->name), "run info %s %s", run->name, run->dir);
    CHECK(st->step > s->last_step && st->step <= st->total_steps, "step %ld after %ld", st->step, s->last_step);
    CHECK(isfinite(st->loss) && st->lr > 0 && st->tokens > 0 && st->wall_s > 0, "step %ld's figures", st->step);
    CHECK(st->row && strstr(st->row, "\"loss\": "), "step row %s", st->row ? st->row : "(null)");
    s->last_step = st->step;
    s->steps++;
    return 0;
}

static int on_eval(void *ctx, const hone_run_info *run, const hone_eval_info *e, hone_err *err)
{
    (void)run, (void)err;
    seen *s = ctx;
    CHECK(e->n >= 1 && !strcmp(e->metrics[0].name, "eval_loss") && isfinite(e->metrics[0].value),
          "eval %s: eval_loss first", e->tag);
    CHECK(!strncmp(e->tag, "epoch-", 6) && strstr(e->row, "\"split\": \"eval\""), "eval tag %s row %s", e->tag, e->row);
    s->evals++;
    return 0;
}

static int on_checkpoint(void *ctx, const hone_run_info *run, const hone_checkpoint_info *c, hone_err *err)
{
    (void)run;
    seen *s = ctx;
    char file[4400];
    snprintf(file, sizeof file, "%s/adapter_model.safetensors", c->path);
    CHECK(hone_is_file(file), "checkpoint %s has no adapter", c->path);
    if (!s->checkpoints++) snprintf(s->first_ckpt, sizeof s->first_ckpt, "%s", c->path);
    if (s->fail_at && s->checkpoints == s->fail_at) {
        snprintf(err->msg, sizeof err->msg, "tracker unreachable at %s", c->name);
        return err->code = HONE_EIO;
    }
    return 0;
}

static int on_epoch_end(void *ctx, const hone_run_info *run, const hone_epoch_info *e, int *stop, hone_err *err)
{
    (void)run, (void)err;
    seen *s = ctx;
    s->epochs++;
    CHECK(e->epoch == s->epochs && e->checkpoint && strstr(e->row, "\"checkpoint\": "), "epoch %ld", e->epoch);
    if (s->stop_after && e->epoch == s->stop_after) *stop = 1;
    return 0;
}

static int set(hone_node *root, const char *path, const char *fmt, const char *arg)
{
    char text[4200];
    snprintf(text, sizeof text, fmt, arg);
    return hone_node_set_path(root, path, text);
}

/* the experiment of train_tiny.sh, built the way --set builds one */
static hone_config *experiment(hone_ctx *ctx, const char *tmp, const char *src, const char *optimizer)
{
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    int rc = !root;
    rc |= set(root, "project", "%s", "api");
    rc |= set(root, "output_dir", "%s/runs", tmp);
    rc |= set(root, "model.path", "%s/tests/fixtures/models/llama", src);
    rc |= set(root, "lora.r", "%s", "4");
    rc |= set(root, "lora.alpha", "%s", "8");
    rc |= set(root, "data.train", "%s/train.jsonl", tmp);
    rc |= set(root, "data.eval_fraction", "%s", "0.125");
    rc |= set(root, "data.max_seq_length", "%s", "12");
    rc |= set(root, "train.lr", "%s", "2e-3");
    rc |= set(root, "train.epochs", "%s", "3");
    rc |= set(root, "train.batch_size", "%s", "8");
    rc |= set(root, "train.log_every", "%s", "2");
    rc |= set(root, "train.optimizer", "%s", optimizer);
    hone_config *cfg = NULL;
    hone_err err = {0};
    CHECK(!rc, "building the tree");
    if (!rc && hone_experiment_resolve(&cfg, hone_ctx_registry(ctx), root, &err)) CHECK(0, "resolve: %s", err.msg);
    hone_node_free(root);
    return cfg;
}

/* a run with hooks s; stdout must stay empty (the library prints nothing itself) */
static int run(hone_config *cfg, seen *s, const char *tmp, hone_err *err)
{
    hone_hooks h = {.ctx = s, .on_log = on_log, .on_step = on_step, .on_eval = on_eval,
                    .on_checkpoint = on_checkpoint, .on_epoch_end = on_epoch_end};
    char path[4200], name[300], out[4200];
    hone_rundir_opts ro = {0};
    int rc = hone_rundir_open(cfg, &ro, path, sizeof path, name, sizeof name, err);
    if (rc) return rc;
    snprintf(out, sizeof out, "%s/stdout.txt", tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    int interrupted = 0;
    rc = hone_run_train(cfg, &h, path, 0, &interrupted, err);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    struct stat st;
    CHECK(stat(out, &st) == 0 && st.st_size == 0, "the library wrote %lld bytes to stdout", (long long)st.st_size);
    CHECK(!interrupted, "interrupted");
    return rc;
}

int main(void)
{
    char tmp[] = "/tmp/hone-api-XXXXXX", file[4200];
    if (!mkdtemp(tmp)) return 1;
    /* 64 arithmetic sequences, as train_tiny.sh writes them */
    snprintf(file, sizeof file, "%s/train.jsonl", tmp);
    FILE *f = fopen(file, "w");
    for (int i = 0; f && i < 64; i++) {
        int a = (i * 37) % 8, n = 8 + i % 5;
        fprintf(f, "{\"input_ids\": [");
        for (int k = 0; k < n; k++) fprintf(f, "%s%d", k ? ", " : "", (a + 3 * k) % 96);
        fprintf(f, "], \"labels\": [-100, -100");
        for (int k = 2; k < n; k++) fprintf(f, ", %d", (a + 3 * k) % 96);
        fprintf(f, "]}\n");
    }
    if (f) fclose(f);

    hone_ctx *ctx = NULL;
    hone_err err = {0};
    if (hone_ctx_new(&ctx, HONE_LOG_PLUGIN, &err)) {
        fprintf(stderr, "FAIL: context: %s\n", err.msg);
        return 1;
    }
    hone_config *cfg = experiment(ctx, tmp, HONE_SOURCE_DIR, "adamw");
    CHECK(cfg && hone_config_num(cfg, "train.lr") == 2e-3 && hone_config_int(cfg, "lora.r") == 4,
          "resolved values read back");
    CHECK(cfg && hone_config_num(cfg, "train.max_grad_norm") == 1.0, "a default is readable");

    seen s = {0};
    if (cfg && run(cfg, &s, tmp, &err)) CHECK(0, "run: %s", err.msg);
    /* 56 examples / 8 = 7 steps an epoch, 21 in all; a row every 2 steps and at the end */
    CHECK(s.steps == 11 && s.last_step == 21, "%d step rows, last step %ld", s.steps, s.last_step);
    CHECK(s.evals == 3 && s.checkpoints == 3 && s.epochs == 3, "evals %d checkpoints %d epochs %d", s.evals,
          s.checkpoints, s.epochs);
    CHECK(s.done_line && s.lines > 5, "log lines %d, done line %d", s.lines, s.done_line);

    seen stop = {.stop_after = 1};
    if (cfg && run(cfg, &stop, tmp, &err)) CHECK(0, "stopped run: %s", err.msg);
    CHECK(stop.epochs == 1 && stop.checkpoints == 1, "on_epoch_end stop: %d epochs", stop.epochs);

    seen failing = {.fail_at = 2};
    int rc = cfg ? run(cfg, &failing, tmp, &err) : 0;
    CHECK(rc == HONE_EIO && strstr(err.msg, "tracker unreachable at epoch-2"), "a failing hook: %d %s", rc, err.msg);
    CHECK(failing.checkpoints == 2 && failing.epochs == 1, "it stopped after its checkpoint: %d, %d",
          failing.checkpoints, failing.epochs);
    char sum[4400], *text = NULL;
    snprintf(sum, sizeof sum, "%s/../../summary.json", failing.first_ckpt);
    CHECK(hone_read_file(sum, &text, NULL, &err) == 0 && strstr(text, "\"failed\""), "summary says failed");
    free(text);

    /* a plugin's host->log lines reach the run's log hook, at their level */
    hone_config_free(cfg);
    cfg = experiment(ctx, tmp, HONE_SOURCE_DIR, "logs");
    seen talk = {0};
    if (cfg && run(cfg, &talk, tmp, &err)) CHECK(0, "run with the logging optimizer: %s", err.msg);
    CHECK(talk.plugin_lines == 21, "%d of the optimizer's 21 lines reached on_log at their level", talk.plugin_lines);

    hone_config_free(cfg);
    hone_ctx_free(ctx);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: %s not removed\n", tmp);
    return check_summary("run api");
}
