/* arena.c — the optimizer plugin's state arena, its file-backed (paged) variant, and
 * the plugin's entry point registering every optimizer. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "optimizers.h"

int opt_arena_alloc(opt_arena *a, size_t bytes, int paged, const char *dir, hone_err *err)
{
    memset(a, 0, sizeof *a);
    size_t n = bytes ? bytes : 64;
    if (!paged) {
        a->base = hone_api->alloc(n, 64);
        if (!a->base) return hone_api->error(err, HONE_ENOMEM, "out of memory for %zu bytes of optimizer state", n);
        memset(a->base, 0, n);
        a->bytes = bytes;
        return 0;
    }
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/hone-optimizer-state-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return hone_api->error(err, HONE_EIO, "state_dir %s: cannot create the state file: %s", dir, strerror(errno));
    unlink(path);   /* the file lives as long as the mapping and never outlives the process */
    if (ftruncate(fd, (off_t)n) != 0) {
        int e = errno;
        close(fd);
        return hone_api->error(err, HONE_EIO, "state_dir %s: cannot size the state file to %zu bytes: %s", dir, n,
                               strerror(e));
    }
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return hone_api->error(err, HONE_EIO, "state_dir %s: cannot map the state file: %s", dir, strerror(e));
    a->base = p;
    a->bytes = bytes;
    a->mapped = 1;
    return 0;
}

void opt_arena_free(opt_arena *a)
{
    if (!a->base) return;
    if (a->mapped) munmap(a->base, a->bytes ? a->bytes : 64);
    else hone_api->free(a->base);
    a->base = NULL;
}

int opt_arena_save(const opt_arena *a, const char *magic, const hone_writer *w, hone_err *err)
{
    uint64_t n = a->bytes;
    int rc = w->write(w->ctx, magic, 8, err);
    if (!rc) rc = w->write(w->ctx, &n, sizeof n, err);
    if (!rc && n) rc = w->write(w->ctx, a->base, a->bytes, err);
    return rc;
}

int opt_arena_load(opt_arena *a, const char *magic, const char *who, const hone_reader *r, hone_err *err)
{
    char got[8];
    uint64_t n;
    int rc = r->read(r->ctx, got, sizeof got, err);
    if (rc) return rc;
    if (memcmp(got, magic, 8) != 0)
        return hone_api->error(err, HONE_EINVAL, "the saved state is not %s state (magic %.8s, expected %.8s)", who, got,
                               magic);
    if ((rc = r->read(r->ctx, &n, sizeof n, err))) return rc;
    if (n != a->bytes)
        return hone_api->error(err, HONE_EINVAL,
                               "the saved %s state holds %llu bytes; this model and these options need %zu "
                               "(a different model, adapter rank or option)",
                               who, (unsigned long long)n, a->bytes);
    return n ? r->read(r->ctx, a->base, a->bytes, err) : 0;
}

void opt_betas(const hone_opts *o, double *b1, double *b2)
{
    size_t n = 0;
    const double *b = hone_api->opt_list(o, "betas", &n);
    *b1 = b[0];
    *b2 = b[1];
}

static int register_all(hone_registry *reg, hone_err *err)
{
    const hone_optimizer_vt *all[] = {
        &opt_adamw_vt, &opt_adamw_torch_vt, &opt_paged_adamw_32bit_vt, &opt_adamw_8bit_vt, &opt_adamw_bnb_8bit_vt,
        &opt_paged_adamw_8bit_vt, &opt_sgd_vt, &opt_lion_vt, &opt_lion_32bit_vt, &opt_adafactor_vt,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int rc = hone_api->register_feature(reg, HONE_KIND_OPTIMIZER, all[i], err);
        if (rc) return rc;
    }
    return 0;
}

HONE_PLUGIN_DEFINE("optimizers", register_all)
