/* checkpoint.c — checkpoints and the state format, in one place.
 *
 * checkpoints/<name>/ holds the adapter (or the trained weights with the base's
 * config.json), trainer_state.json (as transformers' Trainer names its fields) and
 * state.zst: "HONESTA2", the train_pos, then the optimizer's own saved state, zstd
 * compressed. A checkpoint is written under a temp name, fsynced and renamed, and
 * state.zst is written last: a directory with it is complete, so a crash never leaves a
 * half checkpoint for resume to pick. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "err.h"
#include "hone/hone.h"
#include "run_impl.h"
#include "safetensors.h"
#include "util.h"

/* HONESTA3: the dropout and NEFTune streams as counters. HONESTA2 kept xoshiro states
 * there and HONESTA1 had no wall_s: both still load where the run draws nothing random
 * (no dropout, no NEFTune), and are refused where it does, as the masks would differ */
static const char state_magic[8] = "HONESTA3", state_magic_v2[8] = "HONESTA2", state_magic_v1[8] = "HONESTA1";

int write_json_file(const char *path, cJSON *j, hone_err *err)
{
    char *text = cJSON_Print(j);
    if (!text) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int rc = hone_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return unlink(path);
    struct dirent *e;
    char sub[4400];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
    closedir(d);
    return rmdir(path);
}

int state_blob(hone_membuf *mb, const train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, hone_err *err)
{
    mb->len = 0;
    hone_writer w = hone_membuf_writer(mb);
    int rc = w.write(w.ctx, state_magic, 8, err);
    if (!rc) rc = w.write(w.ctx, pos, sizeof *pos, err);
    if (!rc) rc = ovt->save(ostate, &w, err);
    return rc;
}

/* full fine-tuning: the trained weights under their HF names, and the base's config */
static int save_weights(hone_model *m, const char *base, const char *dir, hone_err *err)
{
    char path[4300];
    size_t n;
    const hone_tensor_info *t = hone_model_tensors(m, &n);
    float *p = hone_model_params(m, NULL);
    hone_st_out *out = calloc(n, sizeof *out);
    int rc = out ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++)
        out[i] = (hone_st_out){t[i].name, HONE_DT_F32, t[i].cols > 1 ? 2 : 1,
                               {(int64_t)t[i].rows, (int64_t)t[i].cols}, p + t[i].offset, NULL, NULL, NULL};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = hone_st_write(path, out, n, err);
    free(out);
    char *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", base);
    if (!rc) rc = hone_read_file(path, &text, &len, err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!rc) rc = hone_write_file(path, text, len, err);
    free(text);
    return rc;
}

static cJSON *trainer_state(const ckpt_meta *meta)
{
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "epoch", meta->epoch);
    cJSON_AddNumberToObject(st, "global_step", (double)meta->step);
    cJSON_AddNumberToObject(st, "max_steps", (double)meta->max_steps);
    cJSON_AddNumberToObject(st, "train_loss", meta->train_loss);
    if (meta->has_eval) cJSON_AddNumberToObject(st, "eval_loss", meta->eval_loss);
    if (meta->best_epoch) cJSON_AddNumberToObject(st, "best_epoch", (double)meta->best_epoch);
    return st;
}

int save_checkpoint(hone_model *m, const hone_config *cfg, const char *run_dir, const char *name,
                    const ckpt_meta *meta, const hone_membuf *blob, hone_err *err)
{
    char dir[4096], tmp[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/checkpoints/%s", run_dir, name);
    snprintf(tmp, sizeof tmp, "%s/checkpoints/.tmp-%s", run_dir, name);
    int rc = hone_mkdirs(tmp, err);
    const char *base = hone_config_str(cfg, "model.path");
    if (!rc && hone_config_cval(cfg, "lora")->enabled) rc = hone_model_save_adapter(m, tmp, base, err);
    else if (!rc) rc = save_weights(m, base, tmp, err);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    cJSON *st = trainer_state(meta);
    if (!rc) rc = st ? write_json_file(path, st, err) : hone_errf(err, HONE_ENOMEM, "out of memory");
    cJSON_Delete(st);
    if (!rc) {   /* state.zst last: its presence marks a checkpoint resume can use */
        size_t bound = ZSTD_compressBound(blob->len);
        void *z = malloc(bound);
        size_t zn = z ? ZSTD_compress(z, bound, blob->data, blob->len, 3) : 0;
        if (!z || ZSTD_isError(zn)) rc = hone_errf(err, HONE_ENOMEM, "cannot compress the training state");
        snprintf(path, sizeof path, "%s/state.zst", tmp);
        if (!rc) rc = hone_write_file(path, z, zn, err);
        free(z);
    }
    if (!rc && hone_is_dir(dir)) remove_tree(dir);   /* an older copy of the same point */
    if (!rc && rename(tmp, dir) != 0)
        rc = hone_errf(err, HONE_EIO, "%s: cannot move the checkpoint into place: %s", dir, strerror(errno));
    if (!rc) hone_fsync_dir_of(dir);   /* the rename itself on disk */
    return rc;
}

/* the global_step in checkpoints_dir/name/trainer_state.json, or -1 */
static long checkpoint_step(const char *checkpoints_dir, const char *name)
{
    char path[4600], *text = NULL;
    hone_err ignore = {0};
    snprintf(path, sizeof path, "%s/%.255s/trainer_state.json", checkpoints_dir, name);
    if (hone_read_file(path, &text, NULL, &ignore)) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *gs = cJSON_GetObjectItem(j, "global_step");
    long step = cJSON_IsNumber(gs) && gs->valuedouble >= 0 ? (long)gs->valuedouble : -1;
    cJSON_Delete(j);
    return step;
}

/* the newest checkpoint of run_dir that has its state (complete ones only: a half write
 * never got renamed), by global_step */
int newest_checkpoint(const char *run_dir, char *out, size_t n, hone_err *err)
{
    char dir[4200], path[4600];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/state.zst", dir, e->d_name);
        if (!hone_is_file(path)) continue;
        long step = checkpoint_step(dir, e->d_name);
        if (step > best) {
            best = step;
            snprintf(out, n, "%s/%s", dir, e->d_name);
        }
    }
    if (d) closedir(d);
    if (best < 0) return hone_errf(err, HONE_EINVAL, "%s: no complete checkpoint to resume from", run_dir);
    return 0;
}

int read_state(const char *ckpt, train_pos *pos, const hone_optimizer_vt *ovt, void *ostate, int draws,
               hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/state.zst", ckpt);
    char *z = NULL;
    size_t zn = 0;
    int rc = hone_read_file(path, &z, &zn, err);
    if (rc) return rc;
    unsigned long long raw = ZSTD_getFrameContentSize(z, zn);
    hone_membuf mb = {0};
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > ((size_t)1 << 40) ||
        !(mb.data = malloc(raw ? (size_t)raw : 1))) {
        free(z);
        return hone_errf(err, HONE_EINVAL, "%s: not a hone training state", path);
    }
    size_t got = ZSTD_decompress(mb.data, (size_t)raw, z, zn);
    free(z);
    mb.len = ZSTD_isError(got) ? 0 : got;
    hone_reader r = hone_membuf_reader(&mb);
    char magic[8];
    int v1 = 0, v2 = 0;
    if (ZSTD_isError(got) || got != raw || r.read(r.ctx, magic, 8, err) ||
        (memcmp(magic, state_magic, 8) && !(v2 = !memcmp(magic, state_magic_v2, 8)) &&
         !(v1 = !memcmp(magic, state_magic_v1, 8))) ||
        r.read(r.ctx, pos, v1 ? offsetof(train_pos, wall_s) : sizeof *pos, err))
        rc = hone_errf(err, HONE_EINVAL, "%s: not a hone training state (or damaged)", path);
    if (!rc && (v1 || v2) && draws)
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: written by a hone whose dropout and NEFTune streams were not yet "
                       "counter-based (%.8s): this run draws them, and would continue with other masks; resume it "
                       "with the hone that wrote it, or start again", path, magic);
    if (v1 || v2) memset(pos->draws, 0, sizeof pos->draws), memset(pos->spare, 0, sizeof pos->spare);
    if (v1) pos->wall_s = NAN;   /* unknown: the run's figures then cover this process only */
    if (!rc && (rc = ovt->load(ostate, &r, err))) hone_err_prefix(err, "%s: optimizer state: ", path);
    free(mb.data);
    return rc;
}

/* the rows after the checkpoint are about to be redone */
void truncate_metrics(const char *path, long step, const hone_hooks *hooks)
{
    char *text = NULL;
    size_t len = 0;
    hone_err err = {0};
    if (hone_read_file(path, &text, &len, &err)) {
        hone_logf(hooks, HONE_LOG_WARN, "%s; its rows after step %ld stay and will appear twice", err.msg, step);
        return;
    }
    char *out = malloc(len + 1);
    size_t at = 0;
    for (char *line = text, *nl; out && line < text + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) nl = text + len;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
        const cJSON *st = cJSON_GetObjectItem(j, "step");
        if (j && (!cJSON_IsNumber(st) || st->valuedouble <= step)) {
            memcpy(out + at, line, (size_t)(nl - line));
            at += (size_t)(nl - line);
            out[at++] = '\n';
        }
        cJSON_Delete(j);
    }
    if (!out || hone_write_file(path, out, at, &err))
        hone_logf(hooks, HONE_LOG_WARN, "%s: its rows after step %ld could not be dropped (%s); they will appear twice",
                  path, step, out ? err.msg : "out of memory");
    free(out);
    free(text);
}

void prune_checkpoints(const char *run_dir, long keep, const char *best_name, const hone_hooks *hooks)
{
    char dir[4200], path[4600];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct { char name[256]; long step; } list[1024];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        if (e->d_name[0] == '.') continue;
        long step = checkpoint_step(dir, e->d_name);
        if (step >= 0) {
            snprintf(list[n].name, sizeof list[n].name, "%s", e->d_name);
            list[n++].step = step;
        }
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int k = 0; k < n; k++) newer += list[k].step > list[i].step;
        if (newer >= keep && !(best_name && !strcmp(list[i].name, best_name))) {
            snprintf(path, sizeof path, "%s/%.255s", dir, list[i].name);
            if (remove_tree(path) != 0)
                hone_logf(hooks, HONE_LOG_WARN, "save.keep: %s could not be removed: %s", path, strerror(errno));
        }
    }
}

void point_best(const char *run_dir, const char *name, const hone_hooks *hooks)
{
    char link[4200], tmp[4300], target[400];
    snprintf(link, sizeof link, "%s/best", run_dir);
    snprintf(tmp, sizeof tmp, "%s/.best-tmp", run_dir);
    snprintf(target, sizeof target, "checkpoints/%s", name);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        hone_logf(hooks, HONE_LOG_WARN, "%s could not be pointed at %s: %s (the checkpoint itself is written)", link,
                  target, strerror(errno));
        unlink(tmp);
    }
}
