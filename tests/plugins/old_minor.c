/* old_minor.c — a plugin written and built as ABI 1.1 plugins were: against the 1.1
 * header (tests/plugins/abi-1.1/hone/plugin.h, a verbatim copy of hone's before 1.2),
 * with HONE_PLUGIN_ABI, its own hone_plugin_init and host pointer, a version 1 collator
 * (collate: a padded batch) and an optimizer. The version rule says a 1.2 hone loads it
 * unchanged and calls it as 1.1 did; abi_minor.sh checks that it does.
 *
 *   old_lm   collator: every token trained, a record's own labels kept (what lm does)
 *   old_sgd  optimizer: SGD with momentum, decay on decay tensors; state saves and loads
 */
#include <string.h>

#include "hone/plugin.h"

#if HONE_ABI_MINOR != 1 || HONE_COLLATOR_VERSION != 1
#error "old_minor.c must be built against the ABI 1.1 header (tests/plugins/abi-1.1)"
#endif

HONE_PLUGIN_ABI;

static const hone_host *host;

/* ---- old_lm ------------------------------------------------------------------------ */

static int lm_create(const hone_host *h, const hone_opts *o, const hone_tokenizer *tok, void **state, hone_err *err)
{
    (void)h, (void)o, (void)tok, (void)err;
    *state = NULL;
    return 0;
}

static int lm_collate(void *state, hone_batch *out, hone_collate_stats *stats, const hone_example *ex, size_t n,
                      int32_t pad_id, hone_err *err)
{
    (void)state;
    size_t cols = 1;
    for (size_t i = 0; i < n; i++) cols = ex[i].n > cols ? ex[i].n : cols;
    if (cols > out->max_cols) return host->error(err, HONE_EINVAL, "%zu tokens do not fit %zu", cols, out->max_cols);
    out->rows = n;
    out->cols = cols;
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = out->input_ids + i * cols, *lab = out->labels + i * cols;
        for (size_t t = 0; t < cols; t++) {
            ids[t] = t < ex[i].n ? ex[i].ids[t] : pad_id;
            lab[t] = t < ex[i].n ? (ex[i].labels ? ex[i].labels[t] : ex[i].ids[t]) : -100;
            stats->tokens_trained += lab[t] != -100;
        }
        out->lengths[i] = (int32_t)ex[i].n;
    }
    stats->examples += (long)n;
    return 0;
}

static void lm_destroy(void *state)
{
    (void)state;
}

static const hone_collator_vt old_lm = {
    {HONE_COLLATOR_VERSION, sizeof(hone_collator_vt), "old_lm", "a 1.1 collator: every token trained", NULL},
    lm_create, lm_collate, lm_destroy,
};

/* ---- old_sgd ----------------------------------------------------------------------- */

typedef struct sgd {
    size_t n, nt;
    double momentum, wd;
    hone_tensor_info *t;
    float *buf;            /* [n] momentum */
} sgd;

static void sgd_destroy(void *state)
{
    sgd *s = state;
    if (!s) return;
    host->free(s->t);
    host->free(s->buf);
    host->free(s);
}

static int sgd_create(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                      void **state, hone_err *err)
{
    sgd *s = h->alloc(sizeof *s, 16);
    if (!s) return h->error(err, HONE_ENOMEM, "out of memory");
    memset(s, 0, sizeof *s);
    s->n = np;
    s->nt = nt;
    s->momentum = h->opt_number(o, "momentum");
    s->wd = h->opt_number(o, "weight_decay");
    s->t = h->alloc((nt ? nt : 1) * sizeof *s->t, 16);
    s->buf = h->alloc((np ? np : 1) * sizeof *s->buf, 64);
    if (!s->t || !s->buf) {
        sgd_destroy(s);
        return h->error(err, HONE_ENOMEM, "out of memory");
    }
    memcpy(s->t, t, nt * sizeof *t);
    memset(s->buf, 0, np * sizeof *s->buf);
    *state = s;
    return 0;
}

static int sgd_step(void *state, float *p, const float *g, double lr, long step, hone_err *err)
{
    (void)step, (void)err;
    sgd *s = state;
    for (size_t k = 0; k < s->nt; k++) {
        float decay = s->t[k].decay ? (float)(1.0 - lr * s->wd) : 1.0f;
        for (size_t i = s->t[k].offset; i < s->t[k].offset + s->t[k].numel; i++) {
            s->buf[i] = (float)s->momentum * s->buf[i] + g[i];
            p[i] = p[i] * decay - (float)lr * s->buf[i];
        }
    }
    return 0;
}

static int sgd_save(void *state, const hone_writer *w, hone_err *err)
{
    sgd *s = state;
    return w->write(w->ctx, s->buf, s->n * sizeof *s->buf, err);
}

static int sgd_load(void *state, const hone_reader *r, hone_err *err)
{
    sgd *s = state;
    return r->read(r->ctx, s->buf, s->n * sizeof *s->buf, err);
}

static size_t sgd_state_bytes(const void *state)
{
    return ((const sgd *)state)->n * sizeof(float);
}

static const hone_option sgd_opts[] = {
    {"momentum", HONE_OPT_NUMBER, HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX | HONE_OPT_MAX_EXCL, 0.9, NULL, 0, 1, NULL, 0,
     "momentum factor"},
    {"weight_decay", HONE_OPT_NUMBER, HONE_OPT_HAS_MIN, 0.0, NULL, 0, 0, NULL, 0, "decay on decay tensors"},
    {0},
};

static const hone_optimizer_vt old_sgd = {
    {HONE_OPTIMIZER_VERSION, sizeof(hone_optimizer_vt), "old_sgd", "a 1.1 optimizer: SGD with momentum", sgd_opts},
    sgd_create, sgd_step, sgd_save, sgd_load, sgd_state_bytes, sgd_destroy,
};

HONE_EXPORT int hone_plugin_init(const hone_host *h, hone_registry *reg, hone_err *err)
{
    host = h;
    int rc = h->register_feature(reg, HONE_KIND_COLLATOR, &old_lm, err);
    return rc ? rc : h->register_feature(reg, HONE_KIND_OPTIMIZER, &old_sgd, err);
}
