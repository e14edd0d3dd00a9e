/* cpu.h — the CPU features hone's kernels are compiled for. */
#ifndef HONE_CPU_H
#define HONE_CPU_H

/* 0 if this CPU has AVX2 and FMA; else -1 with a message in buf */
int hone_cpu_check(char *buf, unsigned long n);

#endif
