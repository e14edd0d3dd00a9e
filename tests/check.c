/* check.c — the shared test harness (check.h): counters, failure lines, the element
 * comparisons and their reports, named tests and the summary. One program's checks run
 * on one thread, so the state is plain globals. */
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* differing elements listed on failure: enough to see a pattern, few enough to read */
enum { SHOW = 5 };

static struct {
    int checks, failures, skipped, tests;
    int verbose;   /* -1: VERBOSE not read yet */
    char test[256];
    int in_test, test_checks, test_failures;
    check_diff last;
} S = {.verbose = -1};

static int verbose(void)
{
    if (S.verbose < 0) {
        const char *v = getenv("VERBOSE");
        S.verbose = v && *v && strcmp(v, "0") != 0;
    }
    return S.verbose;
}

/* __FILE__ is the path cmake compiled; the file name is enough to find the line */
static const char *base(const char *file)
{
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

/* the start of a check's line: "test_x.c:12: FAIL in test_y(): " */
static void head(const char *file, int line, int ok)
{
    printf("%s:%d: %s", base(file), line, ok ? "ok" : "FAIL");
    if (S.in_test) printf(" in %s", S.test);
    printf(": ");
}

/* counts one check; says whether its lines are to be printed */
static int count(int ok)
{
    S.checks++;
    if (S.in_test) S.test_checks++;
    if (!ok) {
        S.failures++;
        if (S.in_test) S.test_failures++;
    }
    return !ok || verbose();
}

/* a failure is flushed at once: a crash later in the program must not swallow it */
static int done(int ok)
{
    if (!ok) fflush(stdout);
    return ok;
}

int check_at(const char *file, int line, int ok, const char *fmt, ...)
{
    if (!count(ok)) return ok;
    head(file, line, ok);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return done(ok);
}

int check_contains_at(const char *file, int line, const char *text, const char *needle)
{
    int ok = text && strstr(text, needle);
    if (!count(ok)) return ok;
    head(file, line, ok);
    printf("\"%s\" %s \"%s\"\n", text ? text : "(null)", ok ? "holds" : "lacks", needle);
    return done(ok);
}

/* ---- tolerances ---- */

static double at(const void *p, int f64, size_t i)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* element-wise, relative to want; NaN and infinities compare as values, not distances */
static int close_enough(double g, double w, double atol, double rtol)
{
    if (isnan(g) || isnan(w)) return isnan(g) && isnan(w);
    if (isinf(g) || isinf(w)) return g == w;
    return fabs(g - w) <= atol + rtol * fabs(w);
}

static void diff_stats(const void *got, const void *want, int f64, size_t n)
{
    check_diff *d = &S.last;
    memset(d, 0, sizeof *d);
    d->n = n;
    for (size_t i = 0; i < n; i++) {
        double g = at(got, f64, i), w = at(want, f64, i), a = fabs(g - w);
        d->equal += g == w;
        if (isnan(a)) continue;   /* reported among the differing elements, not as a size */
        double r = a == 0 ? 0 : w == 0 ? INFINITY : a / fabs(w);
        if (a > d->max_abs) d->max_abs = a, d->at_abs = i;
        if (r > d->max_rel) d->max_rel = r, d->at_rel = i;
    }
}

static void print_extremes(const void *got, const void *want, int f64)
{
    const check_diff *d = &S.last;
    printf("  max |got - want| %.3g at [%zu] (got %.9g, want %.9g)\n", d->max_abs, d->at_abs,
           at(got, f64, d->at_abs), at(want, f64, d->at_abs));
    printf("  max |got - want| / |want| %.3g at [%zu]\n", d->max_rel, d->at_rel);
}

static int close_core(const char *file, int line, const char *name, const void *got, const void *want, int f64,
                      size_t n, double atol, double rtol)
{
    diff_stats(got, want, f64, n);
    for (size_t i = 0; i < n; i++) S.last.bad += !close_enough(at(got, f64, i), at(want, f64, i), atol, rtol);
    int ok = S.last.bad == 0;
    if (!count(ok)) return ok;
    head(file, line, ok);
    if (ok) {
        printf("%s: %zu values within %.3g + %.3g * |want|, max |got - want| %.3g\n", name, n, atol, rtol,
               S.last.max_abs);
        return ok;
    }
    printf("%s: %zu of %zu values differ (|got - want| > %.3g + %.3g * |want|)\n", name, S.last.bad, n, atol,
           rtol);
    for (size_t i = 0, shown = 0; i < n && shown < SHOW; i++) {
        double g = at(got, f64, i), w = at(want, f64, i);
        if (close_enough(g, w, atol, rtol)) continue;
        printf("  [%zu] got %.9g want %.9g diff %.3g\n", i, g, w, g - w);
        shown++;
    }
    print_extremes(got, want, f64);
    return done(ok);
}

int check_close_at(const char *file, int line, const char *name, const float *got, const float *want, size_t n,
                   double atol, double rtol)
{
    return close_core(file, line, name, got, want, 0, n, atol, rtol);
}

int check_close_f64_at(const char *file, int line, const char *name, const double *got, const double *want,
                       size_t n, double atol, double rtol)
{
    return close_core(file, line, name, got, want, 1, n, atol, rtol);
}

/* ---- bit for bit ---- */

int check_equal_f32_at(const char *file, int line, const char *name, const float *got, const float *want, size_t n)
{
    diff_stats(got, want, 0, n);
    for (size_t i = 0; i < n; i++) S.last.bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
    int ok = S.last.bad == 0;
    if (!count(ok)) return ok;
    head(file, line, ok);
    if (ok) {
        printf("%s: %zu values bit-identical\n", name, n);
        return ok;
    }
    printf("%s: %zu of %zu values not bit-identical\n", name, S.last.bad, n);
    for (size_t i = 0, shown = 0; i < n && shown < SHOW; i++) {
        if (!memcmp(&got[i], &want[i], sizeof(float))) continue;
        printf("  [%zu] got %a (%.9g) want %a (%.9g)\n", i, (double)got[i], (double)got[i], (double)want[i],
               (double)want[i]);
        shown++;
    }
    print_extremes(got, want, 0);
    return done(ok);
}

int check_equal_i32_at(const char *file, int line, const char *name, const int32_t *got, const int32_t *want,
                       size_t n)
{
    check_diff *d = &S.last;
    memset(d, 0, sizeof *d);
    d->n = n;
    for (size_t i = 0; i < n; i++) d->bad += got[i] != want[i];
    d->equal = n - d->bad;
    int ok = d->bad == 0;
    if (!count(ok)) return ok;
    head(file, line, ok);
    printf("%s: ", name);
    if (ok) {
        printf("%zu values equal\n", n);
        return ok;
    }
    printf("%zu of %zu values differ\n", d->bad, n);
    for (size_t i = 0, shown = 0; i < n && shown < SHOW; i++)
        if (got[i] != want[i]) printf("  [%zu] got %ld want %ld\n", i, (long)got[i], (long)want[i]), shown++;
    return done(ok);
}

int check_equal_bytes_at(const char *file, int line, const char *name, const void *got, const void *want, size_t n)
{
    const unsigned char *g = got, *w = want;
    check_diff *d = &S.last;
    memset(d, 0, sizeof *d);
    d->n = n;
    for (size_t i = 0; i < n; i++) d->bad += g[i] != w[i];
    d->equal = n - d->bad;
    int ok = d->bad == 0;
    if (!count(ok)) return ok;
    head(file, line, ok);
    if (ok) {
        printf("%s: %zu bytes equal\n", name, n);
        return ok;
    }
    printf("%s: %zu of %zu bytes differ\n", name, d->bad, n);
    for (size_t i = 0, shown = 0; i < n && shown < SHOW; i++)
        if (g[i] != w[i]) printf("  byte [%zu] got 0x%02x want 0x%02x\n", i, g[i], w[i]), shown++;
    return done(ok);
}

double check_max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

double check_max_abs_f64(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

const check_diff *check_last(void)
{
    return &S.last;
}

/* ---- tests, skips, the summary ---- */

void check_begin(const char *fmt, ...)
{
    if (S.in_test) check_end();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S.test, sizeof S.test, fmt, ap);
    va_end(ap);
    S.in_test = 1;
    S.test_checks = S.test_failures = 0;
    S.tests++;
}

int check_end(void)
{
    if (!S.in_test) return 1;
    S.in_test = 0;
    int ok = S.test_failures == 0;
    if (!ok) printf("FAIL %s: %d of %d checks failed\n", S.test, S.test_failures, S.test_checks);
    else if (verbose()) printf("ok %s: %d checks\n", S.test, S.test_checks);
    return ok;
}

void check_skip(const char *fmt, ...)
{
    S.skipped++;
    printf("skipped: ");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

int check_failures(void)
{
    return S.failures;
}

int check_summary(const char *program)
{
    check_end();
    printf("%s: %d checks", program, S.checks);
    if (S.tests) printf(" in %d tests", S.tests);
    printf(", %d failed", S.failures);
    if (S.skipped) printf(", %d skipped", S.skipped);
    printf("\n");
    fflush(stdout);
    if (S.failures) return 1;
    return S.skipped && !S.checks ? 77 : 0;
}
