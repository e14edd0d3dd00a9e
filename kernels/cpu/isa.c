/* isa.c — instruction-set detection for the kernels (see isa.h): cpuid for what the CPU
 * has, xgetbv for what the OS saves on a context switch, arch_prctl for AMX. */
#define _DEFAULT_SOURCE   /* syscall */
#include "isa.h"

#include <cpuid.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static op_isa current = OP_ISA_AVX2, machine;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static op_isa detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return OP_ISA_AVX2;   /* no OSXSAVE */
    uint64_t xcr0 = xgetbv0();
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return OP_ISA_AVX2;
    unsigned ebx7 = b, edx7 = d;
    int avx512 = (ebx7 & (1u << 16)) && (ebx7 & (1u << 30)) && (ebx7 & (1u << 31)) &&   /* F, BW, VL */
                 (xcr0 & 0xe6) == 0xe6;   /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM saved by the OS */
    if (!avx512) return OP_ISA_AVX2;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    if (!(a & (1u << 5))) return OP_ISA_AVX512;   /* avx512_bf16 */
    int amx = (edx7 & (1u << 24)) && (edx7 & (1u << 22)) &&    /* amx_tile, amx_bf16 */
              (xcr0 & (3u << 17)) == (3u << 17);               /* XTILECFG, XTILEDATA */
    return amx ? OP_ISA_AMX_BF16 : OP_ISA_AVX512_BF16;
}

op_isa op_isa_machine(void)
{
    if (!machine) machine = detect();
    return machine;
}

op_isa op_isa_init(op_isa cap)
{
    op_isa isa = op_isa_machine();
    if (cap && cap < isa) isa = cap;
    /* Linux hands out the 8 KB tile state only to a process that asks */
    if (isa == OP_ISA_AMX_BF16 && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        isa = OP_ISA_AVX512_BF16;
    current = isa;
    return isa;
}

op_isa op_isa_current(void)
{
    return current;
}

const char *op_isa_name(op_isa isa)
{
    switch (isa) {
    case OP_ISA_AVX2: return "avx2";
    case OP_ISA_AVX512: return "avx512";
    case OP_ISA_AVX512_BF16: return "avx512_bf16";
    case OP_ISA_AMX_BF16: return "amx_bf16";
    }
    return "?";
}
