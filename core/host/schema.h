/* schema.h — the experiment schema (DESIGN §3.2), declared once: key, type, default,
 * range and help. Validation, `--set`, config.json and `hone run --dry-run` all read it. */
#ifndef HONE_SCHEMA_H
#define HONE_SCHEMA_H

#include "config.h"

extern const hone_key hone_experiment_keys[];
extern const size_t hone_experiment_nkeys;
/* a project names run directories: no '/', no control characters (hone_experiment_resolve
 * checks it) */
int hone_project_name_check(const char *project, hone_err *err);

/* hone.optimize { ... }: a plugin-driven optimisation of a Lua objective */
extern const hone_key hone_optimize_keys[];
extern const size_t hone_optimize_nkeys;

#endif
