/* bad_plugins.c — deliberately broken plugins, one per loader failure the core must
 * report cleanly. Built several times with a different BAD_* macro each (tests/CMakeLists). */
#include <string.h>

#include "hone/plugin.h"

static hone_registry *saved_reg;

static int noop_create(const hone_host *h, const hone_opts *o, const hone_tensor_info *t, size_t nt, size_t n,
                       void **state, hone_err *err)
{
    (void)o, (void)t, (void)nt, (void)n;
#ifdef BAD_LATE_REGISTER
    /* registering after init must be refused by the core */
    extern const hone_optimizer_vt bad_vt;
    int rc = h->register_feature(saved_reg, HONE_KIND_OPTIMIZER, &bad_vt, err);
    if (rc) return rc;
#endif
    (void)h, (void)err;
    *state = NULL;
    return 0;
}
__attribute__((unused)) static int noop_step(void *s, float *p, const float *g, double lr, long step, hone_err *err)
{
    (void)s, (void)p, (void)g, (void)lr, (void)step, (void)err;
#ifdef BAD_LOGS
    /* not broken: an optimizer that talks, for the run's log hook to receive */
    hone_api->log(step == 1 ? HONE_LOG_WARN : HONE_LOG_INFO, BAD_NAME ": step %ld", step);
#endif
    return 0;
}
static int noop_save(void *s, const hone_writer *w, hone_err *err)
{
    (void)s, (void)w, (void)err;
    return 0;
}
static int noop_load(void *s, const hone_reader *r, hone_err *err)
{
    (void)s, (void)r, (void)err;
    return 0;
}
static void noop_destroy(void *s)
{
    (void)s;
}

#ifndef BAD_NAME
#define BAD_NAME "broken"
#endif

static const hone_option opts[] = {
#ifdef BAD_OPTION_DEFAULT
    HONE_OPTION_NUMBER("beta", 2.0, HONE_IN(0, 1), "in [0, 1]"),
#endif
#ifdef BAD_OPTION_FLAGS
    /* a flag bit 1.2 reserves */
    {.name = "beta", .type = HONE_OPT_NUMBER, .flags = 0x40u, .help = "reserved flags"},
#endif
    HONE_OPTION_END,
};

HONE_EXPORT const hone_optimizer_vt bad_vt = {
    .info = HONE_OPTIMIZER_INFO(BAD_NAME, "a deliberately broken test plugin", opts),
    .create = noop_create,
#ifndef BAD_NULL_STEP
    .step = noop_step,
#endif
    .save = noop_save,
    .load = noop_load,
    .destroy = noop_destroy,
};

#ifndef BAD_NO_ENTRY
static int bad_init(hone_registry *reg, hone_err *err)
{
    saved_reg = reg;
#ifdef BAD_INIT_FAILS
    int rc = hone_api->register_feature(reg, HONE_KIND_OPTIMIZER, &bad_vt, err);
    if (rc) return rc;
    return hone_api->error(err, HONE_EINVAL, "deliberate failure: the licence file is missing");
#else
    return hone_api->register_feature(reg, HONE_KIND_OPTIMIZER, &bad_vt, err);
#endif
}

HONE_PLUGIN_DEFINE(BAD_NAME, bad_init)
#else
HONE_EXPORT int some_other_function(void);
HONE_EXPORT int some_other_function(void)
{
    return (int)strlen(bad_vt.info.name) + (saved_reg != NULL);
}
#endif
