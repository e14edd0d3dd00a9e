/* registry.h — the plugin registry and loader.
 *
 * Every feature hone has — built in or not — arrives through hone_registry_load_*: the
 * core dlopens a .so, checks its ABI, calls its hone_plugin_init with the host table, and
 * records what it registered under (kind, name) with the file it came from.
 */
#ifndef HONE_REGISTRY_H
#define HONE_REGISTRY_H

#include <stddef.h>

#include "hone/hone.h"

typedef struct hone_feature {
    hone_kind kind;
    const hone_feature_info *info;   /* == vtable, seen through its head */
    const void *vtable;
    const char *file;                /* the .so it came from (owned by the registry) */
} hone_feature;

hone_registry *hone_registry_new(void);
void hone_registry_free(hone_registry *reg);

/* Load one .so, or every *.so in a directory (sorted by name). Loading a file twice
 * (by its real path) is a no-op. */
int hone_registry_load_file(hone_registry *reg, const char *path, hone_err *err);
int hone_registry_load_dir(hone_registry *reg, const char *dir, hone_err *err);
/* a file or a directory */
int hone_registry_load_path(hone_registry *reg, const char *path, hone_err *err);
/* colon-separated list, as in HONE_PLUGIN_PATH; `what` names the source in messages */
int hone_registry_load_pathlist(hone_registry *reg, const char *list, const char *what,
                                hone_err *err);

const hone_feature *hone_registry_find(const hone_registry *reg, hone_kind kind, const char *name);
size_t hone_registry_count(const hone_registry *reg);
const hone_feature *hone_registry_at(const hone_registry *reg, size_t i);
/* the names of one kind, comma separated, sorted: for "registered: a, b, c" */
void hone_registry_names(const hone_registry *reg, hone_kind kind, char *buf, size_t n);

const char *hone_kind_name(hone_kind kind);

extern const hone_host hone_host_table;
/* plugins' host->log lines to hooks->on_log (a run sets it for its duration; NULL:
 * stderr, "hone: ..."); one run at a time per process, as runs are */
void hone_host_log_to(const hone_hooks *hooks);

#endif
