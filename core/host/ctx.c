/* ctx.c — the context of hone.h: hone's own directories and the plugins loaded from
 * them, then from a path list; and the version. */
#include <stdlib.h>

#include "err.h"
#include "hone/hone.h"
#include "paths.h"
#include "registry.h"
#include "version.h"

struct hone_ctx {
    hone_paths paths;
    hone_registry *reg;
};

int hone_ctx_new(hone_ctx **out, const char *plugin_path, hone_err *err)
{
    *out = NULL;
    hone_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->reg = hone_registry_new())) {
        free(c);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    int rc = hone_paths_find(&c->paths, err);
    if (!rc) rc = hone_registry_load_dir(c->reg, c->paths.plugin_dir, err);
    if (!rc && plugin_path && *plugin_path)
        rc = hone_registry_load_pathlist(c->reg, plugin_path, "HONE_PLUGIN_PATH", err);
    if (rc) {
        hone_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void hone_ctx_free(hone_ctx *c)
{
    if (!c) return;
    hone_registry_free(c->reg);
    free(c);
}

hone_registry *hone_ctx_registry(hone_ctx *c) { return c->reg; }
const char *hone_ctx_lua_dir(const hone_ctx *c) { return c->paths.lua_dir; }
const char *hone_version(void) { return HONE_VERSION; }
const char *hone_git_revision(void) { return HONE_GIT_REVISION; }
