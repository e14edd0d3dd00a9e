/* schedulers.c — every learning-rate schedule of transformers' get_scheduler, with its
 * exact formula (transformers/optimization.py; docs/numerics.md §4.1).
 *
 * Each is a pure function of (options, step, total, warmup): factor(step) multiplies the
 * base lr, and the k-th optimizer step (k from 0) uses factor(k), as LambdaLR does.
 * Arithmetic is double and in the same order as the Python, so values agree to the last
 * bits, not just to a tolerance.
 */
#include <math.h>
#include <string.h>

#include "hone/plugin.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static double warmup_factor(long s, long w)
{
    return (double)s / (double)(w > 1 ? w : 1);
}

/* ---- constant, constant_with_warmup, linear ------------------------------------------ */

static double f_constant(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h, (void)o, (void)c, (void)s;
    return 1.0;
}

static double f_constant_warmup(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h, (void)o;
    if (s < c->warmup_steps) return (double)s / fmax(1.0, (double)c->warmup_steps);
    return 1.0;
}

static double f_linear(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h, (void)o;
    long t = c->total_steps, w = c->warmup_steps;
    if (s < w) return warmup_factor(s, w);
    return fmax(0.0, (double)(t - s) / (double)(t - w > 1 ? t - w : 1));
}

/* ---- cosine family ---------------------------------------------------------------------- */

static double progress_after_warmup(const hone_sched_ctx *c, long s)
{
    long t = c->total_steps, w = c->warmup_steps;
    return (double)(s - w) / (double)(t - w > 1 ? t - w : 1);
}

static double f_cosine(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    if (s < c->warmup_steps) return warmup_factor(s, c->warmup_steps);
    double p = progress_after_warmup(c, s), cycles = hone_api->opt_number(o, "num_cycles");
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * cycles * 2.0 * p)));
}

static double f_cosine_restarts(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    if (s < c->warmup_steps) return warmup_factor(s, c->warmup_steps);
    double p = progress_after_warmup(c, s);
    if (p >= 1.0) return 0.0;
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * fmod(hone_api->opt_number(o, "num_cycles") * p, 1.0))));
}

static double min_lr_rate(const hone_opts *o, const hone_sched_ctx *c)
{
    if (hone_api->opt_is_set(o, "min_lr")) return hone_api->opt_number(o, "min_lr") / c->base_lr;
    return hone_api->opt_number(o, "min_lr_rate");
}

static int check_cosine_min_lr(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, hone_err *err)
{
    (void)h;
    (void)c;
    int a = hone_api->opt_is_set(o, "min_lr"), b = hone_api->opt_is_set(o, "min_lr_rate");
    if (a && b) return hone_api->error(err, HONE_EINVAL, "set one of min_lr or min_lr_rate, not both");
    if (!a && !b) return hone_api->error(err, HONE_EINVAL, "needs min_lr or min_lr_rate (as transformers does)");
    return 0;
}

static double f_cosine_min_lr(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    if (s < c->warmup_steps) return warmup_factor(s, c->warmup_steps);
    double p = progress_after_warmup(c, s), rate = min_lr_rate(o, c);
    double f = 0.5 * (1.0 + cos(M_PI * hone_api->opt_number(o, "num_cycles") * 2.0 * p));
    f = f * (1 - rate) + rate;
    return fmax(0, f);
}

/* ---- polynomial ------------------------------------------------------------------------- */

static int check_polynomial(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, hone_err *err)
{
    (void)h;
    double lr_end = hone_api->opt_number(o, "lr_end");
    if (!(c->base_lr > lr_end))
        return hone_api->error(err, HONE_EINVAL, "lr_end (%g) must be smaller than the initial lr (%g)", lr_end, c->base_lr);
    return 0;
}

static double f_polynomial(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    long t = c->total_steps, w = c->warmup_steps;
    double lr_end = hone_api->opt_number(o, "lr_end"), power = hone_api->opt_number(o, "power"), lr_init = c->base_lr;
    if (s < w) return warmup_factor(s, w);
    /* transformers divides by t - w unguarded; at s == t == w that is 0/0: the end value */
    if (s > t || t == w) return lr_end / lr_init;
    double lr_range = lr_init - lr_end;
    double pct_remaining = 1 - (double)(s - w) / (double)(t - w);
    double decay = lr_range * pow(pct_remaining, power) + lr_end;
    return decay / lr_init;
}

/* ---- inverse_sqrt ------------------------------------------------------------------------ */

static double f_inverse_sqrt(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    long w = c->warmup_steps;
    long ts = hone_api->opt_is_set(o, "timescale") ? (long)hone_api->opt_integer(o, "timescale") : (w ? w : 10000);
    if (s < w) return warmup_factor(s, w);
    long shift = ts - w;
    return 1.0 / sqrt((double)(s + shift) / (double)ts);
}

/* ---- warmup_stable_decay ----------------------------------------------------------------- */

static long wsd_decay_steps(const hone_opts *o, const hone_sched_ctx *c)
{
    if (hone_api->opt_is_set(o, "num_decay_steps")) return (long)hone_api->opt_integer(o, "num_decay_steps");
    return (long)ceil((double)c->total_steps * hone_api->opt_number(o, "decay_ratio"));
}

static int check_wsd(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, hone_err *err)
{
    (void)h;
    (void)c;
    int a = hone_api->opt_is_set(o, "num_decay_steps"), b = hone_api->opt_is_set(o, "decay_ratio");
    if (a && b) return hone_api->error(err, HONE_EINVAL, "set one of num_decay_steps or decay_ratio, not both");
    if (!a && !b)
        return hone_api->error(err, HONE_EINVAL, "needs num_decay_steps (as transformers does) or decay_ratio");
    return 0;
}

static double wsd_shape(const char *type, double p, double cycles, int warmup)
{
    if (!strcmp(type, "linear")) return warmup ? p : 1.0 - p;
    if (!strcmp(type, "cosine")) return warmup ? 0.5 * (1.0 - cos(M_PI * p)) : 0.5 * (1.0 + cos(M_PI * cycles * 2.0 * p));
    return warmup ? 1.0 - sqrt(1.0 - p) : 1.0 - sqrt(p);   /* "1-sqrt" */
}

static double f_wsd(const hone_host *h, const hone_opts *o, const hone_sched_ctx *c, long s)
{
    (void)h;
    long w = c->warmup_steps, d = wsd_decay_steps(o, c);
    long st = hone_api->opt_is_set(o, "num_stable_steps") ? (long)hone_api->opt_integer(o, "num_stable_steps")
                                                   : c->total_steps - w - d;
    double min_ratio = hone_api->opt_number(o, "min_lr_ratio"), cycles = hone_api->opt_number(o, "num_cycles");
    if (s < w) {
        double f = wsd_shape(hone_api->opt_string(o, "warmup_type"), (double)s / (double)(w > 1 ? w : 1), cycles, 1);
        return fmax(0.0, f * (1.0 - min_ratio) + min_ratio);
    }
    if (s < w + st) return 1.0;
    if (s < w + st + d) {
        double p = (double)(s - w - st) / (double)(d > 1 ? d : 1);
        double f = wsd_shape(hone_api->opt_string(o, "decay_type"), p, cycles, 0);
        return fmax(0.0, f * (1.0 - min_ratio) + min_ratio);
    }
    return min_ratio;
}

/* ---- option tables and registration ------------------------------------------------------- */

static const hone_option cosine_opts[] = {
    HONE_OPTION_NUMBER("num_cycles", 0.5, HONE_GE(0), "waves of the cosine; 0.5 = one half-wave down to 0"),
    HONE_OPTION_END,
};
static const hone_option restart_opts[] = {
    HONE_OPTION_NUMBER("num_cycles", 1, HONE_GT(0), "number of hard restarts"),
    HONE_OPTION_END,
};
static const hone_option poly_opts[] = {
    HONE_OPTION_NUMBER("lr_end", 1e-7, HONE_GE(0), "final lr (must be below the initial lr)"),
    HONE_OPTION_NUMBER("power", 1.0, HONE_GT(0), "power of the decay (1 = linear)"),
    HONE_OPTION_END,
};
static const hone_option isqrt_opts[] = {
    HONE_OPTION_INTEGER_UNSET("timescale", HONE_GE(1), "time scale; unset = warmup steps, or 10000 without warmup"),
    HONE_OPTION_END,
};
static const hone_option minlr_opts[] = {
    HONE_OPTION_NUMBER("num_cycles", 0.5, HONE_GE(0), "waves of the cosine"),
    HONE_OPTION_NUMBER_UNSET("min_lr", HONE_GE(0), "lr the cosine ends at"),
    HONE_OPTION_NUMBER_UNSET("min_lr_rate", HONE_IN(0, 1), "end lr as a fraction of the initial lr"),
    HONE_OPTION_END,
};
static const hone_option wsd_opts[] = {
    HONE_OPTION_INTEGER_UNSET("num_decay_steps", HONE_GE(0), "steps of the decay phase"),
    HONE_OPTION_NUMBER_UNSET("decay_ratio", HONE_IN_OC(0, 1),
                             "decay steps = ceil(total x ratio) (hone's shorthand for num_decay_steps)"),
    HONE_OPTION_INTEGER_UNSET("num_stable_steps", HONE_GE(0), "steps at the peak lr; unset = total - warmup - decay"),
    HONE_OPTION_STRING("warmup_type", "linear", "linear|cosine|1-sqrt", "shape of the warmup"),
    HONE_OPTION_STRING("decay_type", "cosine", "linear|cosine|1-sqrt", "shape of the decay"),
    HONE_OPTION_NUMBER("min_lr_ratio", 0, HONE_IN(0, 1), "lr floor as a fraction of the initial lr"),
    HONE_OPTION_NUMBER("num_cycles", 0.5, HONE_GE(0), "waves of a cosine decay"),
    HONE_OPTION_END,
};

#define SCHEDULE(nm, summary, opts, chk, fn) \
    {.info = HONE_SCHEDULER_INFO(nm, summary, opts), .check = chk, .factor = fn}

static const hone_scheduler_vt schedules[] = {
    SCHEDULE("constant", "the base lr at every step", NULL, NULL, f_constant),
    SCHEDULE("constant_with_warmup", "linear warmup from 0, then the base lr", NULL, NULL, f_constant_warmup),
    SCHEDULE("linear", "linear warmup, then linear decay to 0 (transformers' default)", NULL, NULL, f_linear),
    SCHEDULE("cosine", "linear warmup, then cosine decay to 0", cosine_opts, NULL, f_cosine),
    SCHEDULE("cosine_with_restarts", "linear warmup, then cosine decay with hard restarts", restart_opts, NULL,
             f_cosine_restarts),
    SCHEDULE("polynomial", "linear warmup, then polynomial decay to lr_end", poly_opts, check_polynomial,
             f_polynomial),
    SCHEDULE("inverse_sqrt", "linear warmup, then 1/sqrt decay", isqrt_opts, NULL, f_inverse_sqrt),
    SCHEDULE("cosine_with_min_lr", "linear warmup, then cosine decay to min_lr", minlr_opts, check_cosine_min_lr,
             f_cosine_min_lr),
    SCHEDULE("warmup_stable_decay", "warmup, a stable phase at the peak, then decay (WSD)", wsd_opts, check_wsd,
             f_wsd),
};

static int register_all(hone_registry *reg, hone_err *err)
{
    for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++) {
        int rc = hone_api->register_feature(reg, HONE_KIND_SCHEDULER, &schedules[i], err);
        if (rc) return rc;
    }
    return 0;
}

HONE_PLUGIN_DEFINE("schedulers", register_all)
