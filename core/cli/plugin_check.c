/* plugin_check.c — the conformance rounds of `hone plugins --check` (plugin_check.h).
 *
 * Each feature runs in a forked child that reports its steps as lines on a pipe:
 * "S\tstep" when a step starts, "P\tstep\tdetail" or "F\tstep\tdetail" when it ends,
 * "E" when the round is over. The parent turns the lines into events, so a child that
 * dies (a crash, the 60 s alarm, a plugin calling exit) is reported against the step it
 * had started. The child leaves by _exit: the parent's stdio buffers are not flushed
 * twice, and what the round allocated goes with the process.
 */
#include "plugin_check.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collator.h"
#include "err.h"
#include "optimize.h"
#include "options.h"
#include "rng.h"
#include "hone/hone.h"
#include "util.h"

enum { ROUND_SECONDS = 60, GUARD = 16 };

/* ---- the child's side: lines on the pipe ---------------------------------------- */

typedef struct reporter {
    int fd;
} reporter;

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;   /* the parent is gone: nobody to tell */
        s += w;
        n -= (size_t)w;
    }
}

static void emit(reporter *r, char code, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emit(reporter *r, char code, const char *step, const char *fmt, ...)
{
    char line[1600];
    int n = snprintf(line, sizeof line, "%c\t%s\t", code, step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* one line per event: a plugin's message may hold anything */
    for (char *p = line + n; *p; p++)
        if (*p == '\n' || *p == '\t') *p = ' ';
    size_t len = strlen(line);
    line[len++] = '\n';
    write_all(r->fd, line, len);
}

#define BEGIN(r, step) emit(r, 'S', step, "%s", "")
#define PASS(r, step, ...) emit(r, 'P', step, __VA_ARGS__)
#define FAIL(r, step, ...) emit(r, 'F', step, __VA_ARGS__)

/* ---- options: the defaults, else one unset option at a time --------------------- */

/* a value inside the option's range (for an option that has no default) */
static double inside(const hone_option *d)
{
    int lo = (d->flags & HONE_OPT_HAS_MIN) != 0, hi = (d->flags & HONE_OPT_HAS_MAX) != 0;
    if (lo && hi) return d->type == HONE_OPT_INTEGER ? floor((d->min + d->max) / 2) : (d->min + d->max) / 2;
    if (lo) return d->flags & HONE_OPT_MIN_EXCL ? d->min + 1 : d->min;
    if (hi) return d->flags & HONE_OPT_MAX_EXCL ? d->max - 1 : d->max;
    return 1;
}

/* Set k (0: the defaults; k >= 1: the k-th unset option that can be given a value, alone)
 * resolved into *out, described in what. Returns 1 when there is no set k. */
static int option_set(const hone_option *defs, int k, hone_opts **out, char *what, size_t wn, hone_err *err)
{
    if (k == 0) {
        snprintf(what, wn, "default options");
        return hone_opts_resolve(out, defs, NULL, "options", "the feature", err) ? -1 : 0;
    }
    int seen = 0;
    for (size_t i = 0; defs && defs[i].name; i++) {
        const hone_option *d = &defs[i];
        int numeric = d->type == HONE_OPT_NUMBER || d->type == HONE_OPT_INTEGER;
        int choice = d->type == HONE_OPT_STRING && d->choices;
        if (!(d->flags & HONE_OPT_UNSET) || !(numeric || choice) || ++seen != k) continue;
        hone_node *given = hone_node_new(HONE_NODE_TABLE);
        hone_node *v = hone_node_new(numeric ? (d->type == HONE_OPT_NUMBER ? HONE_NODE_NUMBER : HONE_NODE_INTEGER)
                                             : HONE_NODE_STRING);
        if (!given || !v || !hone_node_add(given, v)) {
            hone_node_free(given);
            hone_node_free(v);
            hone_errf(err, HONE_ENOMEM, "out of memory");
            return -1;
        }
        v->key = hone_strdup(d->name);
        if (numeric) {
            v->num = inside(d);
            v->integer = (long long)v->num;
            snprintf(what, wn, "%s = %g", d->name, v->num);
        } else {
            size_t len = strcspn(d->choices, "|");
            v->str = hone_aprintf("%.*s", (int)len, d->choices);
            snprintf(what, wn, "%s = \"%s\"", d->name, v->str ? v->str : "");
        }
        int rc = v->key && (!choice || v->str) ? hone_opts_resolve(out, defs, given, "options", "the feature", err)
                                               : hone_errf(err, HONE_ENOMEM, "out of memory");
        hone_node_free(given);
        return rc ? -1 : 0;
    }
    return 1;
}

typedef int (*try_fn)(const hone_feature *f, const hone_opts *o, void *ctx, hone_err *err);

/* The first option set that try accepts, in *opts (the caller frees it); reports the
 * step as passed with the set named, or failed with the defaults' refusal. */
static int first_accepted(reporter *r, const char *step, const hone_feature *f, try_fn try, void *ctx,
                          hone_opts **opts)
{
    char what[160], first[1100] = "";
    for (int k = 0;; k++) {
        hone_err e = {0};
        hone_opts *o = NULL;
        int rc = option_set(f->info->options, k, &o, what, sizeof what, &e);
        if (rc == 1) break;
        if (rc == 0) rc = try(f, o, ctx, &e);
        if (rc == 0) {
            if (k == 0) PASS(r, step, "with the %s", what);
            else PASS(r, step, "with %s (the default options are refused: %s)", what, first);
            *opts = o;
            return 0;
        }
        if (k == 0) snprintf(first, sizeof first, "%s", e.msg[0] ? e.msg : "no message");
        hone_opts_free(o);
    }
    FAIL(r, step, "refuses the default options (%s) and each option without a default set alone", first);
    return -1;
}

/* ---- optimizer ------------------------------------------------------------------- */

/* a matrix with decay, a vector without, another matrix: what a LoRA model hands over */
enum { NT = 3, NP = 47, STEPS = 8, SAVE_AT = 4 };
static const hone_tensor_info problem[NT] = {
    {.name = "check.w", .offset = 0, .numel = 30, .rows = 6, .cols = 5, .decay = 1},
    {.name = "check.b", .offset = 30, .numel = 5, .rows = 5, .cols = 1, .decay = 0},
    {.name = "check.v", .offset = 35, .numel = 12, .rows = 4, .cols = 3, .decay = 1},
};

typedef struct opt_round {
    const hone_optimizer_vt *vt;
    float p0[NP], target[NP];
    float hist[STEPS][NP];   /* run A's parameters after each step */
} opt_round;

/* The tensor table is lent for create only (plugin.h): the lent copy is poisoned and
 * freed right after, so an optimizer that kept it reads garbage or crashes here. */
static int create_lent(const hone_optimizer_vt *vt, const hone_opts *o, void **state, hone_err *err)
{
    hone_tensor_info *t = malloc(sizeof problem);
    char *names = malloc(NT * 16);
    if (!t || !names) {
        free(t), free(names);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    memcpy(t, problem, sizeof problem);
    for (int k = 0; k < NT; k++) {
        snprintf(names + 16 * k, 16, "%s", problem[k].name);
        t[k].name = names + 16 * k;
    }
    *state = NULL;
    int rc = vt->create(&hone_host_table, o, t, NT, NP, state, err);
    memset(t, 0xff, sizeof problem);
    memset(names, 'X', NT * 16);
    free(t);
    free(names);
    return rc;
}

static int try_optimizer(const hone_feature *f, const hone_opts *o, void *ctx, hone_err *err)
{
    return create_lent(f->vtable, o, ctx, err);
}

/* a quadratic pull towards target, plus a ripple that moves with the step, so the
 * gradient changes even where the parameters stall */
static void gradient(const opt_round *R, const float *p, float *g, long step)
{
    for (size_t i = 0; i < NP; i++) {
        float ripple = (float)((long)((i * 31 + (size_t)step * 17) % 13) - 6) / 60.0f;
        g[i] = 2.0f * (p[i] - R->target[i]) + ripple;
    }
}

static const unsigned char guard_byte = 0xA5;

static int guard_intact(const void *p, size_t bytes)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++)
        if (b[i] != guard_byte) return 0;
    return 1;
}

/* Steps from..to on p (NP floats followed by the guard). With want, each step's result
 * must equal want[step - 1] bit for bit; else it is recorded there. */
static int run_steps(reporter *r, const char *stepname, const opt_round *R, void *state, float *p, long from, long to,
                     float (*want)[NP], float (*record)[NP], const char *mismatch)
{
    float g[NP], gcopy[NP];
    for (long s = from; s <= to; s++) {
        gradient(R, p, g, s);
        memcpy(gcopy, g, sizeof g);
        hone_err e = {0};
        int rc = R->vt->step(state, p, g, 0.01, s, &e);
        if (rc) {
            FAIL(r, stepname, "step %ld returned %d: %s", s, rc, e.msg[0] ? e.msg : "no message");
            return -1;
        }
        if (memcmp(g, gcopy, sizeof g)) {
            FAIL(r, stepname, "step %ld wrote into grads (they are the core's, read only)", s);
            return -1;
        }
        if (!guard_intact(p + NP, GUARD * sizeof(float))) {
            FAIL(r, stepname, "step %ld wrote past the end of params (%d floats)", s, NP);
            return -1;
        }
        for (size_t i = 0; i < NP; i++)
            if (!isfinite(p[i])) {
                FAIL(r, stepname, "step %ld left params[%zu] = %g", s, i, (double)p[i]);
                return -1;
            }
        if (record) memcpy(record[s - 1], p, NP * sizeof *p);
        if (want && memcmp(want[s - 1], p, NP * sizeof *p)) {
            size_t i = 0;
            while (i < NP && !memcmp(&want[s - 1][i], &p[i], sizeof *p)) i++;
            FAIL(r, stepname, "%s at step %ld (params[%zu] = %.9g, without it %.9g)", mismatch, s, i, (double)p[i],
                 (double)want[s - 1][i]);
            return -1;
        }
    }
    return 0;
}

static void start_params(const opt_round *R, float *p)
{
    memcpy(p, R->p0, sizeof R->p0);
    memset(p + NP, guard_byte, GUARD * sizeof *p);
}

static int save_to(reporter *r, const char *stepname, const opt_round *R, void *state, hone_membuf *m)
{
    *m = (hone_membuf){0};
    hone_writer w = hone_membuf_writer(m);
    hone_err e = {0};
    int rc = R->vt->save(state, &w, &e);
    if (rc) FAIL(r, stepname, "save returned %d: %s", rc, e.msg[0] ? e.msg : "no message");
    return rc;
}

static void check_optimizer(reporter *r, const hone_feature *f)
{
    opt_round *R = calloc(1, sizeof *R);
    float *pa = malloc((NP + GUARD) * sizeof *pa), *pb = malloc((NP + GUARD) * sizeof *pb);
    if (!R || !pa || !pb) {
        FAIL(r, "create", "out of memory in the check");
        return;
    }
    R->vt = f->vtable;
    hone_rng rng;
    hone_rng_seed(&rng, 7);
    for (size_t i = 0; i < NP; i++) {
        R->p0[i] = (float)(2 * hone_rng_uniform(&rng) - 1);
        R->target[i] = (float)(2 * hone_rng_uniform(&rng) - 1);
    }
    const hone_optimizer_vt *vt = R->vt;
    hone_opts *opts = NULL;
    /* live: created and not yet destroyed (a plugin's state may be NULL itself) */
    void *a = NULL, *b = NULL, *c = NULL;
    int live_a = 0, live_b = 0, live_c = 0;
    BEGIN(r, "create");
    if (first_accepted(r, "create", f, try_optimizer, &a, &opts) != 0) goto null_destroy;
    live_a = 1;

    BEGIN(r, "state_bytes");
    size_t bytes_a = vt->state_bytes ? vt->state_bytes(a) : 0;
    if (vt->state_bytes) PASS(r, "state_bytes", "%zu bytes for %d parameters", bytes_a, NP);
    else PASS(r, "state_bytes", "not given (optional)");

    /* run A: the reference, straight through */
    BEGIN(r, "step");
    start_params(R, pa);
    if (run_steps(r, "step", R, a, pa, 1, STEPS, NULL, R->hist, NULL)) goto destroy_a;
    if (!memcmp(R->hist[STEPS - 1], R->p0, sizeof R->p0)) {
        FAIL(r, "step", "%d steps with non-zero gradients changed no parameter", STEPS);
        goto destroy_a;
    }
    PASS(r, "step", "%d steps on %d tensors (%d parameters): grads untouched, nothing past params, all finite",
         STEPS, NT, NP);

    /* run B: the same start, saved after step SAVE_AT, then on without loading */
    BEGIN(r, "save");
    hone_err e = {0};
    if (create_lent(vt, opts, &b, &e)) {
        FAIL(r, "save", "a second create with the same options failed: %s", e.msg);
        goto destroy_a;
    }
    live_b = 1;
    start_params(R, pb);
    if (run_steps(r, "save", R, b, pb, 1, SAVE_AT, R->hist, NULL,
                  "two runs from the same start differ (not deterministic)"))
        goto destroy_b;
    hone_membuf m1 = {0}, m2 = {0}, m3 = {0};
    if (save_to(r, "save", R, b, &m1) || save_to(r, "save", R, b, &m2)) goto free_saves;
    if (m1.len != m2.len || memcmp(m1.data, m2.data, m1.len)) {
        FAIL(r, "save", "a second save right after the first wrote other bytes (%zu, then %zu)", m1.len, m2.len);
        goto free_saves;
    }
    float at_save[NP];
    memcpy(at_save, pb, sizeof at_save);
    if (run_steps(r, "save", R, b, pb, SAVE_AT + 1, STEPS, R->hist, NULL,
                  "stepping on after save differs (save changed the state)"))
        goto free_saves;
    PASS(r, "save", "%zu bytes after step %d; saving twice writes the same bytes and changes nothing", m1.len,
         SAVE_AT);

    BEGIN(r, "destroy");
    vt->destroy(b);
    live_b = 0;
    PASS(r, "destroy", "%s", "");

    /* run C: a fresh state loaded from the save, continued from the saved parameters */
    BEGIN(r, "load");
    if (create_lent(vt, opts, &c, &e)) {
        FAIL(r, "load", "create for the resume failed: %s", e.msg);
        goto free_saves;
    }
    live_c = 1;
    hone_reader rd = hone_membuf_reader(&m1);
    int rc = vt->load(c, &rd, &e);
    if (rc) {
        FAIL(r, "load", "load returned %d: %s", rc, e.msg[0] ? e.msg : "no message");
        goto free_saves;
    }
    if (m1.pos != m1.len) {
        FAIL(r, "load", "load read %zu of the %zu bytes save wrote", m1.pos, m1.len);
        goto free_saves;
    }
    if (save_to(r, "load", R, c, &m3)) goto free_saves;
    if (m3.len != m1.len || memcmp(m3.data, m1.data, m1.len)) {
        FAIL(r, "load", "saving the loaded state writes other bytes than it was loaded from (%zu, loaded %zu)", m3.len,
             m1.len);
        goto free_saves;
    }
    PASS(r, "load", "reads all %zu bytes and saves them back unchanged", m1.len);

    BEGIN(r, "resume");
    memcpy(pb, at_save, sizeof at_save);
    memset(pb + NP, guard_byte, GUARD * sizeof *pb);
    if (run_steps(r, "resume", R, c, pb, SAVE_AT + 1, STEPS, R->hist, NULL,
                  "continuing after load differs from the run without save/load"))
        goto free_saves;
    size_t bytes_c = vt->state_bytes ? vt->state_bytes(c) : 0, bytes_a_end = vt->state_bytes ? vt->state_bytes(a) : 0;
    if (bytes_c != bytes_a_end) {
        FAIL(r, "resume", "state_bytes is %zu after load, %zu without save/load", bytes_c, bytes_a_end);
        goto free_saves;
    }
    PASS(r, "resume", "steps %d-%d after load equal the run without save/load, bit for bit", SAVE_AT + 1, STEPS);

    BEGIN(r, "truncated state");
    if (m1.len > 0) {
        void *d = NULL;
        if (create_lent(vt, opts, &d, &e) == 0) {
            hone_membuf half = {.data = m1.data, .len = m1.len / 2, .cap = m1.len};
            hone_reader hr = hone_membuf_reader(&half);
            hone_err le = {0};
            if (vt->load(d, &hr, &le) == 0)
                FAIL(r, "truncated state", "load accepted state cut to %zu of %zu bytes (it returned 0)", half.len,
                     m1.len);
            else PASS(r, "truncated state", "refused: %s", le.msg[0] ? le.msg : "no message");
            vt->destroy(d);
        } else {
            FAIL(r, "truncated state", "create failed: %s", e.msg);
        }
    } else {
        PASS(r, "truncated state", "save writes nothing: nothing to cut");
    }

free_saves:
    free(m1.data), free(m2.data), free(m3.data);
    if (live_c) vt->destroy(c);
destroy_b:
    if (live_b) vt->destroy(b);
destroy_a:
    if (live_a) vt->destroy(a);
null_destroy:
    BEGIN(r, "destroy(NULL)");
    vt->destroy(NULL);
    PASS(r, "destroy(NULL)", "%s", "");
    hone_opts_free(opts);
    free(R), free(pa), free(pb);
}

/* ---- scheduler ------------------------------------------------------------------- */

static const hone_sched_ctx plans[2] = {
    {.total_steps = 20, .warmup_steps = 3, .base_lr = 1e-3},
    {.total_steps = 7, .warmup_steps = 0, .base_lr = 5e-4},
};

static int try_scheduler(const hone_feature *f, const hone_opts *o, void *ctx, hone_err *err)
{
    (void)ctx;
    const hone_scheduler_vt *vt = f->vtable;
    for (int k = 0; k < 2 && vt->check; k++) {
        int rc = vt->check(&hone_host_table, o, &plans[k], err);
        if (rc) return rc;
    }
    return 0;
}

static void check_scheduler(reporter *r, const hone_feature *f)
{
    const hone_scheduler_vt *vt = f->vtable;
    hone_opts *o = NULL;
    BEGIN(r, "check");
    if (first_accepted(r, "check", f, try_scheduler, NULL, &o) != 0) return;
    double first[20];
    BEGIN(r, "factor");
    for (int k = 0; k < 2; k++) {
        const hone_sched_ctx *c = &plans[k];
        for (long s = 0; s < c->total_steps; s++) {
            double x = vt->factor(&hone_host_table, o, c, s);
            if (!isfinite(x) || x < 0) {
                FAIL(r, "factor", "factor(%ld) = %g on a plan of %ld steps (%ld warmup): a multiplier of the lr must "
                     "be finite and >= 0", s, x, c->total_steps, c->warmup_steps);
                hone_opts_free(o);
                return;
            }
            if (k == 0) first[s] = x;
        }
    }
    PASS(r, "factor", "finite and >= 0 at every step of plans of 20 (3 warmup) and 7 steps");
    BEGIN(r, "pure");
    for (long s = plans[0].total_steps - 1; s >= 0; s--) {
        double x = vt->factor(&hone_host_table, o, &plans[0], s);
        if (memcmp(&x, &first[s], sizeof x)) {
            FAIL(r, "pure", "factor(%ld) was %.17g, then %.17g: a schedule must be a function of its arguments", s,
                 first[s], x);
            hone_opts_free(o);
            return;
        }
    }
    PASS(r, "pure", "the same bits again, asked in reverse order");
    hone_opts_free(o);
}

/* ---- collator -------------------------------------------------------------------- */

static int try_collator(const hone_feature *f, const hone_opts *o, void *ctx, hone_err *err)
{
    return hone_collator_create(f->vtable, &hone_host_table, o, NULL, ctx, err);
}

typedef struct shape {
    const char *name;
    hone_example ex;
} shape;

static void check_collator(reporter *r, const hone_feature *f)
{
    static const int32_t ids[8] = {5, 6, 7, 8, 9, 10, 11, 12};
    static const int32_t own[6] = {-100, -100, 7, 8, -100, 10};
    const shape shapes[3] = {
        {"label (plain)", {.ids = ids, .n = 5}},
        {"label (prompt/completion)", {.ids = ids, .n = 8, .prompt_len = 3, .has_prompt = 1}},
        {"label (own labels)", {.ids = ids, .labels = own, .n = 6}},
    };
    void *state = NULL;
    hone_opts *o = NULL;
    BEGIN(r, "create");
    if (first_accepted(r, "create", f, try_collator, &state, &o) != 0) goto null_destroy;
    int accepted = 0;
    for (int k = 0; k < 3; k++) {
        const hone_example *ex = &shapes[k].ex;
        const char *step = shapes[k].name;
        int32_t lab[8 + GUARD], again[8 + GUARD], ids_copy[8], own_copy[6];
        memcpy(ids_copy, ids, sizeof ids);
        memcpy(own_copy, own, sizeof own);
        memset(lab, guard_byte, sizeof lab);
        memset(again, guard_byte, sizeof again);
        hone_collate_stats st = {0};
        hone_err e = {0};
        BEGIN(r, step);
        int rc = hone_collator_label(f->vtable, state, ex, lab, 0, &st, &e);
        if (rc) {
            if (e.msg[0]) PASS(r, step, "refused: %s", e.msg);
            else FAIL(r, step, "refused it (%d) without a message", rc);
            continue;
        }
        if (!guard_intact(lab + ex->n, GUARD * sizeof *lab)) {
            FAIL(r, step, "wrote past labels[%zu]", ex->n);
            continue;
        }
        size_t bad = ex->n, trained = 0;
        for (size_t t = 0; t < ex->n; t++) {
            if (lab[t] != -100 && lab[t] < 0 && bad == ex->n) bad = t;
            trained += lab[t] != -100;
        }
        if (bad < ex->n) {
            FAIL(r, step, "labels[%zu] = %d: neither -100 (not trained) nor a token id", bad, lab[bad]);
            continue;
        }
        if (memcmp(ids_copy, ids, sizeof ids) || memcmp(own_copy, own, sizeof own)) {
            FAIL(r, step, "changed the example it was given (the core's, read only)");
            continue;
        }
        if (hone_collator_label(f->vtable, state, ex, again, 0, &st, &e) || memcmp(lab, again, ex->n * sizeof *lab)) {
            FAIL(r, step, "labelling the same example again gave other labels");
            continue;
        }
        accepted++;
        PASS(r, step, "%zu of %zu tokens trained", trained, ex->n);
    }
    if (!accepted) {
        BEGIN(r, "label");
        FAIL(r, "label", "refused every shape: plain, prompt/completion and own labels");
    }
    BEGIN(r, "destroy");
    hone_collator_destroy(f->vtable, state);
    PASS(r, "destroy", "%s", "");
null_destroy:
    BEGIN(r, "destroy(NULL)");
    hone_collator_destroy(f->vtable, NULL);
    PASS(r, "destroy(NULL)", "%s", "");
    hone_opts_free(o);
}

/* ---- quantizer ------------------------------------------------------------------- */

static int try_quantizer(const hone_feature *f, const hone_opts *o, void *ctx, hone_err *err)
{
    const hone_quantizer_vt *vt = f->vtable;
    void **state = ctx;
    *state = NULL;
    return vt->create(&hone_host_table, o, state, err);
}

/* the round trip of a uniform weight must land within this RMS of the weight's own: any
 * 4-bit format does (NF4 on uniform data: about 10%), garbage does not */
#define MAX_ROUND_TRIP 0.25

static int check_shape(reporter *r, const hone_quantizer_vt *vt, const void *state, size_t rows, size_t cols,
                       double *err_out)
{
    size_t n = rows * cols, bytes = vt->packed_bytes(state, rows, cols);
    float *w = malloc(n * sizeof *w), *wcopy = malloc(n * sizeof *w), *out = malloc((n + GUARD) * sizeof *out);
    float *part = malloc((n + GUARD) * sizeof *part);
    unsigned char *q1 = malloc(bytes + 64), *q2 = malloc(bytes + 64), *q3 = malloc(bytes + 64);
    int ok = 0;
    if (!w || !wcopy || !out || !part || !q1 || !q2 || !q3) {
        FAIL(r, "quantize", "out of memory in the check");
        goto done;
    }
    hone_rng rng;
    hone_rng_seed(&rng, rows * 1000 + cols);
    for (size_t i = 0; i < n; i++) w[i] = (float)(2 * hone_rng_uniform(&rng) - 1);
    memcpy(wcopy, w, n * sizeof *w);
    /* two different fills: a byte quantize leaves alone shows as a difference */
    memset(q1, guard_byte, bytes + 64);
    memset(q2, 0x5A, bytes + 64);
    hone_err e = {0};
    BEGIN(r, "quantize");
    int rc = vt->quantize(state, q1, w, rows, cols, &e);
    if (rc) {
        FAIL(r, "quantize", "%zu x %zu: returned %d: %s", rows, cols, rc, e.msg[0] ? e.msg : "no message");
        goto done;
    }
    if (!guard_intact(q1 + bytes, 64)) {
        FAIL(r, "quantize", "%zu x %zu: wrote past packed_bytes (%zu)", rows, cols, bytes);
        goto done;
    }
    if (memcmp(w, wcopy, n * sizeof *w)) {
        FAIL(r, "quantize", "%zu x %zu: changed the weight it was given (read only)", rows, cols);
        goto done;
    }
    if (vt->quantize(state, q2, w, rows, cols, &e) || memcmp(q1, q2, bytes)) {
        size_t i = 0;
        while (i < bytes && q1[i] == q2[i]) i++;
        FAIL(r, "quantize", "%zu x %zu: byte %zu of %zu is not the same twice (left unwritten, or not deterministic)",
             rows, cols, i, bytes);
        goto done;
    }
    BEGIN(r, "dequantize");
    memset(out + n, guard_byte, GUARD * sizeof *out);
    vt->dequantize(state, out, q1, rows, cols, 0, rows);
    if (!guard_intact(out + n, GUARD * sizeof *out)) {
        FAIL(r, "dequantize", "%zu x %zu: wrote past the %zu floats asked for", rows, cols, n);
        goto done;
    }
    double se = 0, sw = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) {
            FAIL(r, "dequantize", "%zu x %zu: element %zu is %g", rows, cols, i, (double)out[i]);
            goto done;
        }
        se += ((double)out[i] - w[i]) * ((double)out[i] - w[i]);
        sw += (double)w[i] * w[i];
    }
    *err_out = sqrt(se / sw);
    if (*err_out > MAX_ROUND_TRIP) {
        FAIL(r, "dequantize", "%zu x %zu: the round trip is off by %.1f%% of the weight's RMS (more than %.0f%%)", rows,
             cols, 100 * *err_out, 100 * MAX_ROUND_TRIP);
        goto done;
    }
    /* the model asks for row ranges where the whole does not fit: the same values */
    size_t ranges[3][2] = {{0, 1}, {1, rows > 2 ? rows - 2 : 1}, {rows - 1, 1}};
    for (int k = 0; k < 3; k++) {
        size_t r0 = ranges[k][0], nr = ranges[k][1];
        if (r0 + nr > rows) continue;
        memset(part + nr * cols, guard_byte, GUARD * sizeof *part);
        vt->dequantize(state, part, q1, rows, cols, r0, nr);
        if (!guard_intact(part + nr * cols, GUARD * sizeof *part) ||
            memcmp(part, out + r0 * cols, nr * cols * sizeof *part)) {
            FAIL(r, "dequantize", "%zu x %zu: rows [%zu, %zu) differ from those rows of the whole weight", rows, cols,
                 r0, r0 + nr);
            goto done;
        }
    }
    if (vt->info.version >= 2 && vt->import_bnb4 && vt->export_bnb4) {
        BEGIN(r, "export/import");
        hone_bnb4 parts = {0};
        memset(q3, 0x5A, bytes + 64);
        if ((rc = vt->export_bnb4(state, q1, rows, cols, &parts, &e)) ||
            (rc = vt->import_bnb4(state, q3, rows, cols, &parts, &e))) {
            FAIL(r, "export/import", "%zu x %zu: returned %d: %s", rows, cols, rc, e.msg[0] ? e.msg : "no message");
            goto done;
        }
        if (memcmp(q1, q3, bytes)) {
            FAIL(r, "export/import", "%zu x %zu: importing the exported parts gives other packed bytes", rows, cols);
            goto done;
        }
    }
    ok = 1;
done:
    free(w), free(wcopy), free(out), free(part), free(q1), free(q2), free(q3);
    return ok;
}

static void check_quantizer(reporter *r, const hone_feature *f)
{
    const hone_quantizer_vt *vt = f->vtable;
    static const size_t shapes[3][2] = {{5, 33}, {64, 64}, {16, 96}};
    void *state = NULL;
    hone_opts *o = NULL;
    BEGIN(r, "create");
    if (first_accepted(r, "create", f, try_quantizer, &state, &o) != 0) goto null_destroy;
    BEGIN(r, "packed_bytes");
    for (int k = 0; k < 3; k++) {
        size_t a = vt->packed_bytes(state, shapes[k][0], shapes[k][1]);
        size_t b = vt->packed_bytes(state, shapes[k][0], shapes[k][1]);
        if (a == 0 || a != b) {
            FAIL(r, "packed_bytes", "%zu x %zu: %zu, then %zu bytes", shapes[k][0], shapes[k][1], a, b);
            goto destroy;
        }
    }
    PASS(r, "packed_bytes", "5 x 33: %zu, 64 x 64: %zu, 16 x 96: %zu bytes", vt->packed_bytes(state, 5, 33),
         vt->packed_bytes(state, 64, 64), vt->packed_bytes(state, 16, 96));
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        double e = 0;
        if (!check_shape(r, vt, state, shapes[k][0], shapes[k][1], &e)) goto destroy;
        worst = e > worst ? e : worst;
    }
    PASS(r, "quantize", "nothing past packed_bytes, every byte written, the same bytes twice");
    PASS(r, "dequantize", "finite, round trip within %.2f%% of the weight's RMS, row ranges equal the whole's rows",
         100 * worst);
    if (vt->info.version >= 2 && vt->import_bnb4 && vt->export_bnb4)
        PASS(r, "export/import", "the exported bitsandbytes parts import to the same packed bytes");
destroy:
    BEGIN(r, "destroy");
    vt->destroy(state);
    PASS(r, "destroy", "%s", "");
null_destroy:
    BEGIN(r, "destroy(NULL)");
    vt->destroy(NULL);
    PASS(r, "destroy(NULL)", "%s", "");
    hone_opts_free(o);
}

/* ---- the parent's side ------------------------------------------------------------- */

static void run_round(const hone_feature *f, int fd)
{
    reporter r = {fd};
    /* a hang is a finding too: SIGALRM ends the child, the parent names the step */
    alarm(ROUND_SECONDS);
    switch (f->kind) {
    case HONE_KIND_OPTIMIZER: check_optimizer(&r, f); break;
    case HONE_KIND_SCHEDULER: check_scheduler(&r, f); break;
    case HONE_KIND_COLLATOR: check_collator(&r, f); break;
    case HONE_KIND_QUANTIZER: check_quantizer(&r, f); break;
    default: break;
    }
    write_all(fd, "E\n", 2);
}

typedef struct sink {
    hone_check_log_fn log;
    void *ctx;
    hone_check_counts *counts;
} sink;

static void report(sink *s, int ok, const hone_feature *f, const char *step, const char *detail)
{
    hone_check_event ev = {ok, f->kind, f->info->name, step, detail};
    if (ok) s->counts->passed++;
    else s->counts->failed++;
    s->log(s->ctx, &ev);
}

/* the child's lines into events; what it could not say (a crash) from its exit status */
static void read_round(sink *s, const hone_feature *f, char *text, int status)
{
    char last[128] = "start";
    int ended = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *step = strchr(line, '\t'), *detail = NULL;
        if (step) {
            *step++ = '\0';
            detail = strchr(step, '\t');
            if (detail) *detail++ = '\0';
        }
        if (line[0] == 'E') ended = 1;
        else if (line[0] == 'S' && step) snprintf(last, sizeof last, "%s", step);
        else if ((line[0] == 'P' || line[0] == 'F') && step) report(s, line[0] == 'P', f, step, detail ? detail : "");
    }
    char why[200];
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(why, sizeof why, "did not finish in %d s", ROUND_SECONDS);
    else if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "crashed (signal %d, %s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        snprintf(why, sizeof why, "the process exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (!ended)
        snprintf(why, sizeof why, "the plugin ended the process (exit status 0) before the round was over");
    else return;
    report(s, 0, f, last, why);
}

static int check_feature(sink *s, const hone_feature *f, hone_err *err)
{
    int fds[2];
    if (pipe(fds) != 0) return hone_errf(err, HONE_EIO, "cannot make a pipe for the check");
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return hone_errf(err, HONE_EIO, "cannot fork for the check");
    }
    if (pid == 0) {
        close(fds[0]);
        run_round(f, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    for (ssize_t got = 1; text && got > 0;) {
        if (len + 1024 > cap) {
            char *t = realloc(text, cap *= 2);
            if (!t) break;
            text = t;
        }
        got = read(fds[0], text + len, cap - len - 1);
        if (got > 0) len += (size_t)got;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!text) return hone_errf(err, HONE_ENOMEM, "out of memory");
    text[len] = '\0';
    read_round(s, f, text, status);
    free(text);
    return 0;
}

int hone_plugin_check(const char *path, hone_check_log_fn log, void *ctx, hone_check_counts *counts, hone_err *err)
{
    *counts = (hone_check_counts){0};
    hone_registry *reg = hone_registry_new();
    if (!reg) return hone_errf(err, HONE_ENOMEM, "out of memory");
    /* a registry of its own: the file's features only, and no clash with hone's own */
    int rc = hone_registry_load_file(reg, path, err);
    sink s = {log, ctx, counts};
    size_t n = rc ? 0 : hone_registry_count(reg);
    if (!rc && n == 0) {
        hone_feature none = {HONE_KIND_COUNT, &(hone_feature_info){.name = "(none)"}, NULL, path};
        report(&s, 0, &none, "init", "the plugin registers no feature");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        counts->features++;
        rc = check_feature(&s, hone_registry_at(reg, i), err);
    }
    hone_registry_free(reg);
    return rc;
}
