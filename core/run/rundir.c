/* rundir.c — run directories: names made without races (mkdir either creates the name
 * or fails because someone else has it, and the next suffix is tried), and what a fresh
 * run directory holds before training, written here for every host: config.json and
 * experiment.lua. */
#include "rundir.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "util.h"
#include "version.h"

void hone_run_name(char *out, size_t n, const char *project, time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%d_%H.%M.%S", &tm);
    snprintf(out, n, "%s-%s", project, stamp);
}


int hone_rundir_create(const char *output_dir, const char *project, time_t t, char *path, size_t pathn,
                       char *name, size_t namen, hone_err *err)
{
    int rc = hone_mkdirs(output_dir, err);
    if (rc) return rc;
    char base[256];
    hone_run_name(base, sizeof base, project, t);
    for (int k = 1; k <= 10000; k++) {
        if (k == 1) snprintf(name, namen, "%s", base);
        else snprintf(name, namen, "%s-%d", base, k);
        if (snprintf(path, pathn, "%s/%s", output_dir, name) >= (int)pathn)
            return hone_errf(err, HONE_EINVAL, "%s: run directory path too long", output_dir);
        if (mkdir(path, 0755) == 0) return 0;
        if (errno != EEXIST) return hone_errf(err, HONE_EIO, "%s: cannot create run directory: %s", path, strerror(errno));
    }
    return hone_errf(err, HONE_EIO, "%s/%s: 10000 runs with this name already exist", output_dir, base);
}

/* config.json of a run: the resolved experiment plus who made it and how */
cJSON *hone_run_config_json(const hone_config *cfg, const char *script, const char *name, int nsets,
                            char *const *sets)
{
    cJSON *root = hone_config_json(cfg);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "version", HONE_VERSION);
    cJSON_AddStringToObject(meta, "git_revision", HONE_GIT_REVISION);
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(meta, "host", host);
    cJSON_AddStringToObject(meta, "script", script);
    if (name) cJSON_AddStringToObject(meta, "run_name", name);
    cJSON *s = cJSON_AddArrayToObject(meta, "set");
    for (int i = 0; i < nsets; i++) cJSON_AddItemToArray(s, cJSON_CreateString(sets[i]));
    cJSON_AddItemToObject(root, "hone", meta);
    return root;
}

int hone_rundir_open(const hone_config *cfg, const hone_rundir_opts *o, char *path, size_t pathn, char *name,
                     size_t namen, hone_err *err)
{
    int rc = 0;
    if (o->dir) {
        char dir[4096];   /* o->dir may be path itself */
        if (snprintf(dir, sizeof dir, "%s", o->dir) >= (int)sizeof dir || strlen(dir) >= pathn)
            return hone_errf(err, HONE_EINVAL, "%s: run directory path too long", o->dir);
        const char *slash = strrchr(dir, '/');
        snprintf(name, namen, "%s", slash && slash[1] ? slash + 1 : dir);
        memcpy(path, dir, strlen(dir) + 1);
        rc = hone_mkdirs(path, err);
    } else if (!rc && o->resume) {
        return hone_errf(err, HONE_EINVAL, "resume: which run directory (none given)");
    } else if (!rc) {
        rc = hone_rundir_create(hone_config_str(cfg, "output_dir"), hone_config_str(cfg, "project"), time(NULL), path,
                                pathn, name, namen, err);
    }
    if (rc || o->resume) return rc;
    char file[4200], *src = NULL;
    size_t srclen = 0;
    cJSON *j = hone_run_config_json(cfg, o->script ? o->script : "", name, o->nsets, o->sets);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    snprintf(file, sizeof file, "%s/config.json", path);
    rc = text ? hone_write_file(file, text, strlen(text), err) : hone_errf(err, HONE_ENOMEM, "out of memory");
    free(text);
    /* the script as it was when the run started: what made it, beside what it resolved to */
    if (!rc && o->script && (rc = hone_read_file(o->script, &src, &srclen, err)) == 0) {
        snprintf(file, sizeof file, "%s/experiment.lua", path);
        rc = hone_write_file(file, src, srclen, err);
    }
    free(src);
    return rc;
}
