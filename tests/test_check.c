/* test_check.c — the test harness (check.h) tested, so that it cannot pass what it should
 * fail: each scenario runs in a child process whose stdout is captured, and the parent
 * matches that output and the exit code against what the harness must say (the first
 * differing elements, the largest difference and where, file:line, the counts; 1, 0 or
 * 77). The parent judges with plain printf and its own exit code, never with the harness
 * it is testing. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void close_fails(void)
{
    float got[6] = {1, 2, 3, 4, 5, 6}, want[6] = {1, 2.5f, 3, 4, 5.25f, 6};
    int r = check_close("ramp", got, want, 6, 0.1, 0);
    printf("returned %d\n", r);
    CHECK_TRUE(1 + 1 == 2);   /* a failure does not stop the program */
}

/* boundaries: <= at atol + rtol * |want|, relative to want, NaN and infinities as values */
static void close_semantics(void)
{
    float a = 1.5f, one = 1.0f, half = 0.5f, nan = NAN, inf = INFINITY, big = 1e30f, ninf = -INFINITY;
    printf("pass %d %d %d %d %d\n", check_close("edge", &a, &one, 1, 0.5, 0), check_close("rel", &a, &one, 1, 0, 0.5),
           check_close("rel want", &one, &a, 1, 0, 0.5), check_close("nan", &nan, &nan, 1, 0, 0),
           check_close("inf", &inf, &inf, 1, 0, 0));
    printf("fail %d %d %d %d\n", check_close("rel of want", &one, &half, 1, 0, 0.5),
           check_close("nan vs 1", &nan, &one, 1, 1e30, 1), check_close("inf vs big", &inf, &big, 1, 1e30, 1),
           check_close("-inf vs inf", &ninf, &inf, 1, 1e30, 1));
    /* the double variant keeps what float rounding would lose */
    double g = 1 + 1e-12, w = 1;
    printf("f64 %d %d\n", check_close_f64("f64", &g, &w, 1, 1e-13, 0), check_close_f64("f64 ok", &g, &w, 1, 1e-11, 0));
}

static void equal_fails(void)
{
    float got[3] = {1, -0.0f, 0.1f}, want[3] = {1, 0.0f, 0.1f}, nan = NAN;
    want[2] = nextafterf(0.1f, 1);
    printf("f32 %d %d\n", check_equal_f32("bits", got, want, 3), check_equal_f32("same nan", &nan, &nan, 1));
    int32_t a[3] = {1, 2, 3}, b[3] = {1, 5, 3};
    printf("i32 %d\n", check_equal_i32("ids", a, b, 3));
    printf("bytes %d\n", check_equal_bytes("text", "abcdef", "abXdeY", 6));
}

/* keep the next two lines together: the self-test expects the CHECK on check_line */
static const int check_line = __LINE__ + 3;
static void checks_fail(void)
{
    int r = CHECK(2 + 2 == 5, "arithmetic says %d", 2 + 2);
    printf("returned %d\n", r);
    CHECK_TRUE(1);
    CHECK_CONTAINS("no such key", "key");
    CHECK_CONTAINS("abc", "xyz");
}

static void test_a(void)
{
    CHECK_TRUE(1);
    CHECK(0, "the second check of test_a");
}

static void test_b(void)
{
    CHECK_TRUE(1);
}

static void named_tests(void)
{
    int a = CHECK_RUN(test_a());
    int b = CHECK_RUN(test_b());
    printf("run %d %d\n", a, b);
    check_begin("case %d", 7);
    CHECK(0, "in a named case");
    check_begin("case %d", 8);   /* ends case 7 */
    CHECK_TRUE(1);
}

static void all_pass(void)
{
    float x[2] = {1, 2};
    check_close("x", x, x, 2, 0, 0);
    check_equal_f32("x", x, x, 2);
    CHECK_TRUE(x[0] < x[1]);
}

static void skip_only(void)
{
    check_skip("fixture %s absent", "llama2");
}

static void skip_and_pass(void)
{
    check_skip("one case absent");
    CHECK_TRUE(1);
}

static void skip_and_fail(void)
{
    check_skip("one case absent");
    CHECK(0, "a real failure");
}

static void verbose_pass(void)
{
    setenv("VERBOSE", "1", 1);
    float x = 1;
    check_close("quiet", &x, &x, 1, 0, 0);
    CHECK(1, "said only when verbose");
}

static void last_stats(void)
{
    float got[4] = {1, -2, 3, 0}, want[4] = {1, 2, 3.5f, 0};
    check_close("stats", got, want, 4, 10, 0);
    const check_diff *d = check_last();
    printf("n %zu bad %zu equal %zu max_abs %g at %zu max_rel %g at %zu\n", d->n, d->bad, d->equal, d->max_abs,
           d->at_abs, d->max_rel, d->at_rel);
    float m[3] = {-7, NAN, 3};
    printf("max_abs %g\n", check_max_abs(m, 3));
}

/* a failure already printed survives a crash after it */
static void fail_then_abort(void)
{
    CHECK(0, "before the crash");
    abort();
}

typedef struct scenario {
    const char *name;
    void (*run)(void);
    int code;   /* exit code; -1: killed by a signal */
    const char *want[12], *absent[3];   /* in want's output; absent's must not be */
} scenario;

static const scenario scenarios[] = {
    {"close fails", close_fails, 1,
     {"ramp: 2 of 6 values differ (|got - want| > 0.1 + 0 * |want|)", "  [1] got 2 want 2.5 diff -0.5\n",
      "  [4] got 5 want 5.25 diff -0.25\n", "max |got - want| 0.5 at [1] (got 2, want 2.5)",
      "max |got - want| / |want| 0.2 at [1]", "returned 0", "demo: 2 checks, 1 failed\n"},
     {"[0]", "[2]"}},
    {"close semantics", close_semantics, 1,
     {"pass 1 1 1 1 1\n", "fail 0 0 0 0\n", "f64 0 1\n", "rel of want: 1 of 1 values differ",
      "nan vs 1: 1 of 1 values differ", "  [0] got nan want 1", "demo: 11 checks, 5 failed\n"},
     {NULL}},
    {"bit for bit", equal_fails, 1,
     {"bits: 2 of 3 values not bit-identical", "  [1] got -0x0p+0 (-0) want 0x0p+0 (0)",
      "  [2] got 0x1.99999ap-4 (0.100000001) want 0x1.99999cp-4 (0.100000009)", "f32 0 1\n",
      "ids: 1 of 3 values differ", "  [1] got 2 want 5\n", "i32 0\n", "text: 2 of 6 bytes differ",
      "  byte [2] got 0x63 want 0x58\n", "  byte [5] got 0x66 want 0x59\n", "bytes 0\n",
      "demo: 4 checks, 3 failed\n"},
     {NULL}},
    {"CHECK", checks_fail, 1,
     {"test_check.c:%d: FAIL: arithmetic says 4\n", "returned 0\n", "FAIL: \"abc\" lacks \"xyz\"\n",
      "demo: 4 checks, 2 failed\n"},
     {"no such key"}},
    {"named tests", named_tests, 1,
     {": FAIL in test_a(): the second check of test_a\n", "FAIL test_a(): 1 of 2 checks failed\n", "run 0 1\n",
      ": FAIL in case 7: in a named case\n", "FAIL case 7: 1 of 1 checks failed\n",
      "demo: 5 checks in 4 tests, 2 failed\n"},
     {"FAIL test_b()", "FAIL case 8"}},
    {"all pass", all_pass, 0, {"demo: 3 checks, 0 failed\n"}, {"FAIL"}},
    {"skip only", skip_only, 77, {"skipped: fixture llama2 absent\n", "demo: 0 checks, 0 failed, 1 skipped\n"}, {NULL}},
    {"skip and pass", skip_and_pass, 0, {"demo: 1 checks, 0 failed, 1 skipped\n"}, {NULL}},
    {"skip and fail", skip_and_fail, 1, {"demo: 1 checks, 1 failed, 1 skipped\n"}, {NULL}},
    {"VERBOSE", verbose_pass, 0,
     {": ok: quiet: 1 values within 0 + 0 * |want|, max |got - want| 0\n", ": ok: said only when verbose\n"},
     {NULL}},
    {"last diff", last_stats, 0, {"n 4 bad 0 equal 2 max_abs 4 at 1 max_rel 2 at 1\n", "max_abs 7\n"}, {NULL}},
    {"crash after a failure", fail_then_abort, -1, {": FAIL: before the crash\n"}, {NULL}},
};

/* runs one scenario in a child; its stdout into *out, its exit code (or -1) returned */
static int run_child(const scenario *s, char **out)
{
    int fd[2];
    if (pipe(fd) != 0) return -2;
    fflush(stdout);   /* or the child would print the parent's buffered lines again */
    pid_t pid = fork();
    if (pid < 0) return -2;
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        s->run();
        exit(check_summary("demo"));
    }
    close(fd[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
    int failed = 0;
    size_t n = sizeof scenarios / sizeof scenarios[0];
    for (size_t i = 0; i < n; i++) {
        const scenario *s = &scenarios[i];
        char *out = NULL;
        int code = run_child(s, &out), ok = code == s->code;
        if (!ok) printf("FAIL %s: exit %d, want %d\n", s->name, code, s->code);
        for (int k = 0; k < 12 && s->want[k]; k++) {
            char want[512];
            snprintf(want, sizeof want, s->want[k], check_line);   /* only "CHECK" has a %d */
            if (out && strstr(out, want)) continue;
            printf("FAIL %s: output lacks \"%s\"\n", s->name, want);
            ok = 0;
        }
        for (int k = 0; k < 3 && s->absent[k]; k++) {
            if (!out || !strstr(out, s->absent[k])) continue;
            printf("FAIL %s: output has \"%s\"\n", s->name, s->absent[k]);
            ok = 0;
        }
        if (ok) printf("ok   %s\n", s->name);
        else printf("---- its output:\n%s----\n", out ? out : "(none)");
        failed += !ok;
        free(out);
    }
    printf("harness self-test: %zu scenarios, %d failed\n", n, failed);
    return failed != 0;
}
