/* check.h — the one harness hone's C test programs share: checks that record a failure
 * with file:line and carry on, float comparisons that say where and by how much two
 * arrays differ, bit-exact comparisons, named test functions, and the summary line with
 * the exit code. A program runs every check it has, whatever fails on the way, and ends
 * main with `return check_summary("name");`:
 *   0   every check passed
 *   1   a check failed
 *   77  nothing was checked and something was skipped (ctest's SKIP_RETURN_CODE)
 * Everything goes to stdout, in the order it happened; VERBOSE=1 in the environment
 * also prints the checks that pass. */
#ifndef HONE_TESTS_CHECK_H
#define HONE_TESTS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define CHECK_FMT(a, b) __attribute__((format(printf, a, b)))

/* CHECK(cond, fmt, ...): a failure, with file:line and the message, when cond is false.
 * Its value is cond's truth, so a test can go on only where it makes sense. */
#define CHECK(cond, ...) check_at(__FILE__, __LINE__, !!(cond), __VA_ARGS__)
/* CHECK_TRUE(cond): a CHECK whose message is cond's own text */
#define CHECK_TRUE(cond) check_at(__FILE__, __LINE__, !!(cond), "%s", #cond)
/* CHECK_CONTAINS(text, needle): text (an error message, say) holds needle */
#define CHECK_CONTAINS(text, needle) check_contains_at(__FILE__, __LINE__, text, needle)

int check_at(const char *file, int line, int ok, const char *fmt, ...) CHECK_FMT(4, 5);
int check_contains_at(const char *file, int line, const char *text, const char *needle);

/* check_close(name, got, want, n, atol, rtol): element i passes when
 *   |got[i] - want[i]| <= atol + rtol * |want[i]|   (numpy's isclose: relative to want),
 * computed in double. NaN differs from everything but NaN; an infinity equals only the same
 * infinity. A tolerance relative to the array's largest value instead is atol =
 * tol * check_max_abs(want, n) with rtol = 0. On failure it prints how many elements
 * differ, the first few (index, got, want, diff) and the largest absolute and relative
 * difference with their indices. Returns whether every element passed.
 * check_close_f64: the same for double arrays (a reference computed in double). */
#define check_close(...) check_close_at(__FILE__, __LINE__, __VA_ARGS__)
#define check_close_f64(...) check_close_f64_at(__FILE__, __LINE__, __VA_ARGS__)
int check_close_at(const char *file, int line, const char *name, const float *got, const float *want, size_t n,
                   double atol, double rtol);
int check_close_f64_at(const char *file, int line, const char *name, const double *got, const double *want,
                       size_t n, double atol, double rtol);

/* bit for bit: check_equal_f32 compares the bits (so -0 differs from +0 and a NaN equals
 * the same NaN) and prints differing values as %a and %.9g; check_equal_i32 compares
 * int32 (token ids); check_equal_bytes compares n bytes. Each prints how many differ and
 * the first few, and returns whether all are equal. */
#define check_equal_f32(...) check_equal_f32_at(__FILE__, __LINE__, __VA_ARGS__)
#define check_equal_i32(...) check_equal_i32_at(__FILE__, __LINE__, __VA_ARGS__)
#define check_equal_bytes(...) check_equal_bytes_at(__FILE__, __LINE__, __VA_ARGS__)
int check_equal_f32_at(const char *file, int line, const char *name, const float *got, const float *want, size_t n);
int check_equal_i32_at(const char *file, int line, const char *name, const int32_t *got, const int32_t *want,
                       size_t n);
int check_equal_bytes_at(const char *file, int line, const char *name, const void *got, const void *want, size_t n);

/* the largest |x[i]|, NaN ignored (the scale of "relative to the tensor's largest value") */
double check_max_abs(const float *x, size_t n);
double check_max_abs_f64(const double *x, size_t n);

/* what the last check_close / check_equal_* found, for a test's own report line */
typedef struct check_diff {
    size_t n;         /* elements compared */
    size_t bad;       /* out of tolerance (or not bit-identical) */
    size_t equal;     /* got == want as values (-0 == +0) */
    double max_abs;   /* largest |got - want|, NaN elements left out */
    double max_rel;   /* largest |got - want| / |want| (infinite where want is 0) */
    size_t at_abs, at_rel;
} check_diff;
const check_diff *check_last(void);

/* named tests: the checks between check_begin and check_end (or the next check_begin)
 * carry the name in their failure lines; check_end says whether they all passed.
 * CHECK_RUN(test_x(args)) runs one test function under its own call's text. */
void check_begin(const char *fmt, ...) CHECK_FMT(1, 2);
int check_end(void);
#define CHECK_RUN(call) (check_begin("%s", #call), (void)(call), check_end())

/* something that could not be checked here (a file outside the repository is absent) */
void check_skip(const char *fmt, ...) CHECK_FMT(1, 2);
/* failures so far, for a test that stops after too many */
int check_failures(void);
/* "program: N checks in T tests, F failed[, S skipped]" and the exit code above */
int check_summary(const char *program);

#endif
