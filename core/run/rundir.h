/* rundir.h — run names and run directories (hone_rundir_open, in hone.h, uses these). */
#ifndef HONE_RUNDIR_H
#define HONE_RUNDIR_H

#include <stddef.h>
#include <time.h>

#include "hone/hone.h"

/* "<project>-<YYYY-MM-DD_HH.MM.SS>" in local time */
void hone_run_name(char *out, size_t n, const char *project, time_t t);
/* Creates output_dir/<name> (then -2, -3, ... when taken, so runs started in the same
 * second get distinct names). path, name: out. */
int hone_rundir_create(const char *output_dir, const char *project, time_t t, char *path, size_t pathn,
                       char *name, size_t namen, hone_err *err);

typedef struct cJSON cJSON;
/* config.json: the resolved experiment plus {"hone": {version, git_revision, host, script,
 * run_name, set}} */
cJSON *hone_run_config_json(const hone_config *cfg, const char *script, const char *name, int nsets,
                            char *const *sets);

#endif
