/* cpu.c — refusing to start on a CPU without AVX2 + FMA, which the kernels assume: a
 * clear message at start beats an illegal-instruction crash mid-run. This file itself
 * is compiled without AVX flags' help so the check runs anywhere. */
#include "cpu.h"

#include <stdio.h>

int hone_cpu_check(char *buf, unsigned long n)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2"), fma = __builtin_cpu_supports("fma");
    if (avx2 && fma) return 0;
    snprintf(buf, n, "this CPU lacks %s%s%s, which hone's CPU kernels need (x86-64 with AVX2 and FMA: Intel "
             "Haswell / AMD Zen or newer)", avx2 ? "" : "AVX2", !avx2 && !fma ? " and " : "", fma ? "" : "FMA");
    return -1;
}
