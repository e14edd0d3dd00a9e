/* paths.h — where this hone's own plugins and Lua files are: beside the build tree when
 * run from it, else under the install prefix, found from the executable's own path so an
 * installed hone needs no environment variables. */
#ifndef HONE_PATHS_H
#define HONE_PATHS_H

#include <limits.h>

#include "hone/plugin.h"

typedef struct hone_paths {
    char plugin_dir[PATH_MAX];
    char lua_dir[PATH_MAX];
    int build_tree;          /* 1 when running from the build directory */
} hone_paths;

int hone_paths_find(hone_paths *p, hone_err *err);

#endif
