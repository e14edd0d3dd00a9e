/* optimizers.h — what the built-in optimizer plugin's files share: one state arena per
 * optimizer (optionally file-backed for the paged_* names) and the option readers every
 * optimizer uses. The host is hone_api (plugin.h), set by arena.c's HONE_PLUGIN_DEFINE.
 *
 * All state of an optimizer lives in one zero-filled arena, so saving it is writing the
 * arena and resuming is reading it back: nothing to re-derive, bit-exact by construction.
 */
#ifndef HONE_OPTIMIZERS_H
#define HONE_OPTIMIZERS_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

typedef struct opt_arena {
    unsigned char *base;
    size_t bytes;
    int mapped;            /* 1: mmap of an unlinked file (paged_*), 0: host memory */
} opt_arena;

/* Zero-filled; with paged set, backed by an unlinked file in dir so the kernel can write
 * cold state to disk under memory pressure instead of needing swap. */
int opt_arena_alloc(opt_arena *a, size_t bytes, int paged, const char *dir, hone_err *err);
void opt_arena_free(opt_arena *a);
/* magic (8 bytes) | u64 arena bytes | arena */
int opt_arena_save(const opt_arena *a, const char *magic, const hone_writer *w, hone_err *err);
int opt_arena_load(opt_arena *a, const char *magic, const char *who, const hone_reader *r, hone_err *err);

static inline size_t opt_align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* betas option as two doubles */
void opt_betas(const hone_opts *o, double *b1, double *b2);

extern const hone_optimizer_vt opt_adamw_vt, opt_adamw_torch_vt;
extern const hone_optimizer_vt opt_paged_adamw_32bit_vt, opt_adamw_8bit_vt, opt_adamw_bnb_8bit_vt,
    opt_paged_adamw_8bit_vt;
extern const hone_optimizer_vt opt_sgd_vt, opt_lion_vt, opt_lion_32bit_vt, opt_adafactor_vt;

#endif
