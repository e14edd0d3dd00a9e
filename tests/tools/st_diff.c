/* st_diff.c — compares two safetensors files tensor by tensor: the same names and shapes,
 * and values within a relative tolerance (max |a - b| over max |b| per tensor). Prints
 * the worst tensor; exit 0 within tolerance, 1 otherwise, 2 on bad input.
 *   st_diff A.safetensors B.safetensors TOL */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: st_diff A.safetensors B.safetensors TOL\n");
        return 2;
    }
    hone_err err = {0};
    hone_st_file *a = NULL, *b = NULL;
    if (hone_st_open(&a, argv[1], &err) || hone_st_open(&b, argv[2], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    double tol = atof(argv[3]), worst = 0;
    const char *worst_name = "";
    int bad = a->n != b->n;
    if (bad) printf("%s has %zu tensors, %s has %zu\n", argv[1], a->n, argv[2], b->n);
    for (size_t i = 0; i < a->n && !bad; i++) {
        const hone_st_tensor *x = &a->t[i], *y = hone_st_find(b, x->name);
        if (!y || y->numel != x->numel) {
            printf("%s: missing or of another size in %s\n", x->name, argv[2]);
            bad = 1;
            break;
        }
        float *u = malloc(x->numel * sizeof *u), *v = malloc(x->numel * sizeof *v);
        if (!u || !v || hone_st_to_f32(a, x, u, 0, x->numel, &err) || hone_st_to_f32(b, y, v, 0, y->numel, &err)) {
            printf("%s: %s\n", x->name, err.msg);
            bad = 1;
        }
        double d = 0, m = 0;
        for (uint64_t k = 0; k < x->numel && !bad; k++) {
            d = fmax(d, fabs((double)u[k] - v[k]));
            m = fmax(m, fabs((double)v[k]));
        }
        double rel = m > 0 ? d / m : d;
        if (rel > worst) {
            worst = rel;
            worst_name = x->name;
        }
        free(u);
        free(v);
    }
    if (!bad) printf("%zu tensors; worst max|a-b|/max|b| = %.3g (%s); tolerance %g\n", a->n, worst, worst_name, tol);
    hone_st_close(a);
    hone_st_close(b);
    return bad || worst > tol;
}
