/* paths.c — locating the plugin and Lua directories. */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

int hone_paths_find(hone_paths *p, hone_err *err)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return hone_errf(err, HONE_EIO, "cannot find the hone executable's path (/proc/self/exe)");
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';

    /* the build tree's hone, or a program built beside it (the tests embed hone.h) */
    char build[PATH_MAX];
    size_t bl = realpath(HONE_BUILD_DIR, build) ? strlen(build) : 0;
    if (bl && !strncmp(build, exe, bl) && (exe[bl] == '\0' || exe[bl] == '/')) {
        p->build_tree = 1;
        snprintf(p->plugin_dir, sizeof p->plugin_dir, "%.3000s/plugins", build);
        snprintf(p->lua_dir, sizeof p->lua_dir, "%.3000s/lua", HONE_SOURCE_DIR);
        return 0;
    }
    p->build_tree = 0;
    snprintf(p->plugin_dir, sizeof p->plugin_dir, "%.2000s/../lib/hone/plugins", exe);
    snprintf(p->lua_dir, sizeof p->lua_dir, "%.2000s/../share/hone/lua", exe);
    if (!hone_is_dir(p->plugin_dir))
        return hone_errf(err, HONE_EIO, "hone's plugin directory %s is missing: is hone installed completely?",
                         p->plugin_dir);
    if (!hone_is_dir(p->lua_dir))
        return hone_errf(err, HONE_EIO, "hone's Lua directory %s is missing: is hone installed completely?",
                         p->lua_dir);
    return 0;
}
