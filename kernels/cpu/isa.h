/* isa.h — which instruction sets the CPU kernels may use, chosen once per process.
 *
 * The CPU and the OS both have to allow a level: AVX-512 needs the ZMM state enabled in
 * XCR0; AMX needs the tile state in XCR0 and, on Linux, the process's permission
 * (arch_prctl ARCH_REQ_XCOMP_PERM), which op_isa_init asks for. A caller may cap the
 * level (to test a lower path on a machine that has the higher one). */
#ifndef HONE_ISA_H
#define HONE_ISA_H

typedef enum {
    OP_ISA_AVX2 = 1,      /* AVX2 + FMA: every kernel's baseline */
    OP_ISA_AVX512 = 2,    /* AVX-512 F/BW/VL */
    OP_ISA_AVX512_BF16 = 3, /* + avx512_bf16 (vdpbf16ps) */
    OP_ISA_AMX_BF16 = 4,  /* + AMX tiles with bf16 products */
} op_isa;

/* Detects the highest level this CPU and OS allow, capped at `cap` (0: no cap), asks
 * for AMX's permission when it gets that far, and makes it the kernels' level. Returns
 * the level chosen. Safe to call again (a later cap lowers or raises within what the
 * machine allows). */
op_isa op_isa_init(op_isa cap);
op_isa op_isa_current(void);
/* the highest level the machine allows, uncapped */
op_isa op_isa_machine(void);
const char *op_isa_name(op_isa isa);   /* "avx2", "avx512", "avx512_bf16", "amx_bf16" */

#endif
