/* adafactor.c — transformers.optimization.Adafactor.
 *
 * Per tensor and step t: rms(p) (before the step); lr = the schedule's lr, or with
 * relative_step min(warmup_init ? 1e-6*t : 1e-2, 1/sqrt(t)) (the schedule's lr is then
 * unused, as transformers refuses an lr there), times max(eps2, rms(p)) with
 * scale_parameter; beta2t = 1 - t^decay_rate; u = g^2 + eps1. A matrix (cols > 1) keeps
 * factored row and column means of u: r = r*beta2t + (1-beta2t)*mean_row(u), likewise c,
 * and u = g / sqrt(r/mean(r)) / sqrt(c); a vector keeps v = v*beta2t + (1-beta2t)*u and
 * u = g / sqrt(v). Then u /= max(1, rms(u)/clip_threshold), u *= lr, optionally
 * m = beta1*m + (1-beta1)*u and u = m, p -= wd*lr*p, p -= u.
 * Defaults are what transformers' Trainer passes for optim="adafactor": an external lr,
 * scale_parameter = false, relative_step = false (the class's own defaults are true).
 * Means and norms are summed in double and rounded once, where torch sums float32 in its
 * own order, so results agree to float32 rounding rather than bit for bit.
 *
 * State arena per tensor (64-byte aligned regions): matrix row[rows], col[cols]; vector
 * v[n]; with beta1 also m[n] f32.
 */
#include <math.h>
#include <string.h>

#include "optimizers.h"

typedef struct aslot {
    size_t off, n, rows, cols;
    int decay, factored;
    size_t at;
} aslot;

typedef struct adafactor {
    double eps1, eps2, clip, decay_rate, beta1, wd;
    int has_beta1, scale_parameter, relative_step, warmup_init;
    size_t nt, maxn;
    aslot *t;
    float *u;              /* [largest tensor] scratch for the update, allocated once */
    double *csum;          /* [widest matrix] column sums */
    float *cf;             /* [widest matrix] column factors */
    opt_arena arena;
} adafactor;

static void af_destroy(void *state)
{
    adafactor *s = state;
    if (!s) return;
    opt_arena_free(&s->arena);
    hone_api->free(s->t);
    hone_api->free(s->u);
    hone_api->free(s->csum);
    hone_api->free(s->cf);
    hone_api->free(s);
}

static int af_create(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t np,
                     void **state, hone_err *err)
{
    (void)h, (void)np;
    adafactor *s = hone_api->alloc(sizeof *s, 16);
    if (!s) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    memset(s, 0, sizeof *s);
    size_t ne = 0;
    const double *eps = hone_api->opt_list(o, "eps", &ne);
    s->eps1 = eps[0];
    s->eps2 = eps[1];
    s->clip = hone_api->opt_number(o, "clip_threshold");
    s->decay_rate = hone_api->opt_number(o, "decay_rate");
    s->has_beta1 = hone_api->opt_is_set(o, "beta1");
    s->beta1 = s->has_beta1 ? hone_api->opt_number(o, "beta1") : 0.0;
    s->wd = hone_api->opt_number(o, "weight_decay");
    s->scale_parameter = hone_api->opt_bool(o, "scale_parameter");
    s->relative_step = hone_api->opt_bool(o, "relative_step");
    s->warmup_init = hone_api->opt_bool(o, "warmup_init");
    if (s->warmup_init && !s->relative_step) {
        hone_api->free(s);
        return hone_api->error(err, HONE_EINVAL, "warmup_init = true requires relative_step = true (as transformers)");
    }
    s->nt = nt;
    s->t = hone_api->alloc((nt ? nt : 1) * sizeof *s->t, 16);
    if (!s->t) {
        hone_api->free(s);
        return hone_api->error(err, HONE_ENOMEM, "out of memory");
    }
    size_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        aslot *a = &s->t[i];
        *a = (aslot){t[i].offset, t[i].numel, t[i].rows, t[i].cols, t[i].decay, t[i].cols > 1, at};
        at += a->factored ? opt_align64(a->rows * 4) + opt_align64(a->cols * 4) : opt_align64(a->n * 4);
        if (s->has_beta1) at += opt_align64(a->n * 4);
        if (a->n > s->maxn) s->maxn = a->n;
    }
    size_t maxc = 1;
    for (size_t i = 0; i < nt; i++) maxc = t[i].cols > maxc ? t[i].cols : maxc;
    s->u = hone_api->alloc((s->maxn ? s->maxn : 1) * sizeof(float), 64);
    s->csum = hone_api->alloc(maxc * sizeof(double), 64);
    s->cf = hone_api->alloc(maxc * sizeof(float), 64);
    int rc = s->u && s->csum && s->cf ? opt_arena_alloc(&s->arena, at, 0, NULL, err) : hone_api->error(err, HONE_ENOMEM, "out of memory");
    if (rc) {
        af_destroy(s);
        return rc;
    }
    *state = s;
    return 0;
}

static float rms(const float *x, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return (float)sqrt(ss) / (float)sqrt((double)n);
}

static int af_step(void *state, float *params, const float *grads, double lr_sched, long step, hone_err *err)
{
    (void)err;
    adafactor *s = state;
    double beta2t = 1.0 - pow((double)step, s->decay_rate);
    float fb = (float)beta2t, fomb = (float)(1.0 - beta2t), eps1 = (float)s->eps1;
    for (size_t k = 0; k < s->nt; k++) {
        const aslot *a = &s->t[k];
        float *p = params + a->off, *u = s->u;
        const float *g = grads + a->off;
        unsigned char *st = s->arena.base + a->at;
        double rel = lr_sched;
        if (s->relative_step) {
            double min_step = s->warmup_init ? 1e-6 * (double)step : 1e-2, r = 1.0 / sqrt((double)step);
            rel = min_step < r ? min_step : r;
        }
        float lr = (float)rel;
        if (s->scale_parameter) {
            float r = rms(p, a->n), e2 = (float)s->eps2;
            lr = (r > e2 ? r : e2) * (float)rel;
        }
        if (a->factored) {
            float *row = (float *)st, *col = (float *)(st + opt_align64(a->rows * 4));
            /* one row-major pass for both means; the column sums go to scratch */
            double *csum = s->csum;
            memset(csum, 0, a->cols * sizeof *csum);
            for (size_t i = 0; i < a->rows; i++) {
                const float *gr = g + i * a->cols;
                double sum = 0;
                for (size_t j = 0; j < a->cols; j++) {
                    double u2 = (double)(gr[j] * gr[j] + eps1);
                    sum += u2;
                    csum[j] += u2;
                }
                row[i] = fmaf((float)(sum / (double)a->cols), fomb, row[i] * fb);
            }
            float *cf = s->cf;
            for (size_t j = 0; j < a->cols; j++) {
                col[j] = fmaf((float)(csum[j] / (double)a->rows), fomb, col[j] * fb);
                cf[j] = 1.0f / sqrtf(col[j]);
            }
            double rsum = 0;
            for (size_t i = 0; i < a->rows; i++) rsum += row[i];
            float rmean = (float)(rsum / (double)a->rows);
            for (size_t i = 0; i < a->rows; i++) {
                float rf = 1.0f / sqrtf(row[i] / rmean);
                const float *gr = g + i * a->cols;
                float *ur = u + i * a->cols;
                for (size_t j = 0; j < a->cols; j++) ur[j] = rf * cf[j] * gr[j];
            }
        } else {
            float *v = (float *)st;
            for (size_t i = 0; i < a->n; i++) {
                v[i] = fmaf(g[i] * g[i] + eps1, fomb, v[i] * fb);
                u[i] = 1.0f / sqrtf(v[i]) * g[i];
            }
        }
        float div = rms(u, a->n) / (float)s->clip;
        if (div < 1.0f) div = 1.0f;
        for (size_t i = 0; i < a->n; i++) u[i] = u[i] / div * lr;
        if (s->has_beta1) {
            float *m = (float *)(st + (a->factored ? opt_align64(a->rows * 4) + opt_align64(a->cols * 4)
                                                   : opt_align64(a->n * 4)));
            float b1 = (float)s->beta1, omb1 = (float)(1.0 - s->beta1);
            for (size_t i = 0; i < a->n; i++) {
                m[i] = fmaf(u[i], omb1, m[i] * b1);
                u[i] = m[i];
            }
        }
        float ndecay = a->decay && s->wd != 0.0 ? (float)-s->wd * lr : 0.0f;
        for (size_t i = 0; i < a->n; i++) {
            float pi = ndecay != 0.0f ? fmaf(p[i], ndecay, p[i]) : p[i];
            p[i] = pi - u[i];
        }
    }
    return 0;
}

static int af_save(void *state, const hone_writer *w, hone_err *err)
{
    return opt_arena_save(&((adafactor *)state)->arena, "ADAFACT1", w, err);
}

static int af_load(void *state, const hone_reader *r, hone_err *err)
{
    return opt_arena_load(&((adafactor *)state)->arena, "ADAFACT1", "Adafactor", r, err);
}

static size_t af_state_bytes(const void *state)
{
    return ((const adafactor *)state)->arena.bytes;
}

static const hone_option af_opts[] = {
    HONE_OPTION_NUMLIST("eps", "1e-30,1e-3", 2, HONE_GE(0),
                        "{regularizer of the squared gradient, floor of the parameter scale}"),
    HONE_OPTION_NUMBER("clip_threshold", 1.0, HONE_GT(0), "cap on the RMS of the update"),
    HONE_OPTION_NUMBER("decay_rate", -0.8, HONE_LT(0), "beta2 at step t is 1 - t^decay_rate"),
    HONE_OPTION_NUMBER_UNSET("beta1", HONE_IN_CO(0, 1),
                             "first-moment coefficient; unset = no first moment (transformers' None)"),
    HONE_OPTION_NUMBER("weight_decay", 0.0, HONE_GE(0), "weight decay on LoRA matrices and weights (not biases or norms)"),
    HONE_OPTION_BOOL("scale_parameter", 0,
                     "scale the lr by the parameter's RMS (the Trainer passes false; the class default is true)"),
    HONE_OPTION_BOOL("relative_step", 0,
                     "use Adafactor's own lr 1/sqrt(t) and ignore the schedule's (the Trainer passes false)"),
    HONE_OPTION_BOOL("warmup_init", 0, "with relative_step: lr grows as 1e-6*t first"),
    HONE_OPTION_END,
};

const hone_optimizer_vt opt_adafactor_vt = {
    .info = HONE_OPTIMIZER_INFO("adafactor",
                                "transformers' Adafactor: factored second moments for matrices (as the Trainer configures it)",
                                af_opts),
    .create = af_create,
    .step = af_step,
    .save = af_save,
    .load = af_load,
    .state_bytes = af_state_bytes,
    .destroy = af_destroy,
};
