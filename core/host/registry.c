/* registry.c — loading plugin .so files and keeping what they register.
 *
 * The loader trusts nothing a plugin says: the file may not be a shared object, may lack
 * the entry points, may be built for another ABI, may register a vtable that is malformed
 * or already taken. Each of those is an error naming the file; a failed init drops the
 * features that plugin had registered so far. The version rule is plugin.h's: the same
 * major, a minor no newer than hone's; vtables of older versions are checked at their
 * own size (core/host/collator.h calls a version 1 collator).
 */
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collator.h"
#include "err.h"
#include "options.h"
#include "rng.h"
#include "tokenizer.h"
#include "util.h"

struct hone_registry {
    hone_feature *feat;
    size_t n, cap;
    char **files;        /* real paths of loaded plugins, owned */
    void **handles;
    size_t nfiles, capfiles;
    const char *loading; /* the file whose init is running, or NULL */
};

static const char *const kind_names[HONE_KIND_COUNT] = {"optimizer", "scheduler", "collator",
                                                         "quantizer"};

const char *hone_kind_name(hone_kind kind)
{
    return (unsigned)kind < HONE_KIND_COUNT ? kind_names[kind] : "?";
}

int hone_kind_from_name(const char *name, hone_kind *kind)
{
    for (int k = 0; k < HONE_KIND_COUNT; k++) {
        size_t len = strlen(kind_names[k]);
        /* accept the plural too: `hone plugins optimizers` */
        if (strcmp(name, kind_names[k]) == 0 ||
            (strncmp(name, kind_names[k], len) == 0 && strcmp(name + len, "s") == 0)) {
            *kind = (hone_kind)k;
            return 0;
        }
    }
    return -1;
}

hone_registry *hone_registry_new(void)
{
    return calloc(1, sizeof(hone_registry));
}

void hone_registry_free(hone_registry *reg)
{
    if (!reg) return;
    /* plugins stay loaded for the process (their vtables may still be referenced) */
    for (size_t i = 0; i < reg->nfiles; i++) free(reg->files[i]);
    free(reg->files);
    free(reg->handles);
    free(reg->feat);
    free(reg);
}

/* ---- registration (called by plugins through the host) ------------------------ */

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    return 1;
}

static int check_vtable(hone_kind kind, const hone_feature_info *info, hone_err *err)
{
    static const uint32_t current[HONE_KIND_COUNT] = {HONE_OPTIMIZER_VERSION, HONE_SCHEDULER_VERSION,
                                                      HONE_COLLATOR_VERSION, HONE_QUANTIZER_VERSION};
    static const size_t sizes[HONE_KIND_COUNT] = {sizeof(hone_optimizer_vt), sizeof(hone_scheduler_vt),
                                                  sizeof(hone_collator_vt), sizeof(hone_quantizer_vt)};
    const char *kn = hone_kind_name(kind);
    if (info->version == 0 || info->version > current[kind])
        return hone_errf(err, HONE_EINVAL,
                         "%s vtable version %u is not one this hone knows (it has %u): rebuild against this hone",
                         kn, info->version, current[kind]);
    size_t need = sizes[kind];
    /* older versions are read at their own size (plugin.h's version rule) */
    if (kind == HONE_KIND_QUANTIZER && info->version == 1) need = offsetof(hone_quantizer_vt, import_bnb4);
    if (kind == HONE_KIND_COLLATOR && info->version == 1) need = sizeof(hone_collator_vt_v1);
    if (info->size < need)
        return hone_errf(err, HONE_EINVAL, "%s vtable size %u is smaller than version %u's %zu", kn,
                         info->size, info->version, need);
    if (!valid_name(info->name))
        return hone_errf(err, HONE_EINVAL, "%s name \"%s\" is not valid (use a-z, 0-9, _ - ., at most 64)",
                         kn, info->name ? info->name : "(null)");
    if (!info->summary)
        return hone_errf(err, HONE_EINVAL, "%s %s has no summary line", kn, info->name);
    int missing = 0;
    switch (kind) {
    case HONE_KIND_OPTIMIZER: {
        const hone_optimizer_vt *v = (const void *)info;
        missing = !v->create || !v->step || !v->save || !v->load || !v->destroy;
        break;
    }
    case HONE_KIND_SCHEDULER: missing = !((const hone_scheduler_vt *)(const void *)info)->factor; break;
    case HONE_KIND_COLLATOR:
        if (info->version == 1) {
            const hone_collator_vt_v1 *v = (const void *)info;
            missing = !v->create || !v->collate || !v->destroy;
        } else {
            const hone_collator_vt *v = (const void *)info;
            missing = !v->create || !v->label || !v->destroy;
        }
        break;
    case HONE_KIND_QUANTIZER: {
        const hone_quantizer_vt *v = (const void *)info;
        missing = !v->create || !v->packed_bytes || !v->quantize || !v->dequantize || !v->destroy;
        break;
    }
    default: break;
    }
    if (missing)
        return hone_errf(err, HONE_EINVAL, "%s %s leaves a required vtable function NULL", kn, info->name);
    int rc = hone_options_check_table(info->options, err);
    if (rc) return hone_err_prefix(err, "%s %s: ", kn, info->name);
    return 0;
}

static int host_register(hone_registry *reg, hone_kind kind, const void *vtable, hone_err *err)
{
    if (!reg || !reg->loading)
        return hone_errf(err, HONE_ESTATE,
                         "registration outside init: features can only be registered from hone_plugin_init");
    if ((unsigned)kind >= HONE_KIND_COUNT)
        return hone_errf(err, HONE_EINVAL, "unknown feature kind %d", (int)kind);
    if (!vtable) return hone_errf(err, HONE_EINVAL, "NULL %s vtable", hone_kind_name(kind));
    const hone_feature_info *info = vtable;
    int rc = check_vtable(kind, info, err);
    if (rc) return rc;
    const hone_feature *dup = hone_registry_find(reg, kind, info->name);
    if (dup)
        return hone_errf(err, HONE_EINVAL, "duplicate %s '%s': already registered by %s, registered again by %s",
                         hone_kind_name(kind), info->name, dup->file, reg->loading);
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 32;
        hone_feature *f = realloc(reg->feat, cap * sizeof *f);
        if (!f) return hone_errf(err, HONE_ENOMEM, "out of memory");
        reg->feat = f;
        reg->cap = cap;
    }
    reg->feat[reg->n++] = (hone_feature){kind, info, vtable, reg->loading};
    return 0;
}

/* ---- the host table ------------------------------------------------------------ */

/* where plugins' host->log lines go: a run's log hook while it runs, else stderr */
static const hone_hooks *log_sink;

void hone_host_log_to(const hone_hooks *hooks)
{
    log_sink = hooks && hooks->on_log ? hooks : NULL;
}

static void host_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (log_sink) {
        char line[1024];
        vsnprintf(line, sizeof line, fmt, ap);
        log_sink->on_log(log_sink->ctx, level >= HONE_LOG_WARN ? HONE_LOG_WARN : HONE_LOG_INFO, line);
    } else {
        fputs(level >= HONE_LOG_WARN ? "hone: warning: " : "hone: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}

static int host_error(hone_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hone_verrf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

static void *host_alloc(size_t bytes, size_t align)
{
    void *p = NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (posix_memalign(&p, align, bytes ? bytes : 1) != 0) return NULL;
    return p;
}

static void host_free(void *p)
{
    free(p);
}

static int host_device_alloc(void **p, size_t bytes, hone_err *err)
{
    (void)bytes;
    *p = NULL;
    return hone_errf(err, HONE_EUNSUPPORTED, "no device backend is running: device memory is only lent on CUDA runs");
}

static void host_device_free(void *p)
{
    (void)p;
}

static int host_tok_encode(const hone_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                           size_t *n, hone_err *err)
{
    tok_ids out = {0};
    /* encoding mutates only the tokenizer's scratch; plugins are told it is not thread-safe */
    int rc = hone_tokenizer_encode((hone_tokenizer *)tok, text, len, add_special, &out, err);
    *ids = NULL;
    *n = 0;
    if (rc) {
        free(out.v);
        return rc;
    }
    *ids = host_alloc((out.n ? out.n : 1) * sizeof(int32_t), 16);
    if (!*ids) {
        free(out.v);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    memcpy(*ids, out.v, out.n * sizeof(int32_t));
    *n = out.n;
    free(out.v);
    return 0;
}

const hone_host hone_host_table = {
    .abi_major = HONE_ABI_MAJOR,
    .abi_minor = HONE_ABI_MINOR,
    .size = sizeof(hone_host),
    .register_feature = host_register,
    .log = host_log,
    .error = host_error,
    .alloc = host_alloc,
    .free = host_free,
    .device_alloc = host_device_alloc,
    .device_free = host_device_free,
    .opt_number = hone_opt_number,
    .opt_integer = hone_opt_integer,
    .opt_bool = hone_opt_bool,
    .opt_string = hone_opt_string,
    .opt_list = hone_opt_list,
    .opt_is_set = hone_opt_is_set,
    .rng_seed = hone_rng_seed,
    .rng_u64 = hone_rng_u64,
    .rng_uniform = hone_rng_uniform,
    .tok_encode = host_tok_encode,
    .tok_token_id = hone_tokenizer_token_id,
};

/* ---- loading ------------------------------------------------------------------- */

int hone_registry_load_file(hone_registry *reg, const char *path, hone_err *err)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) return hone_errf(err, HONE_EIO, "plugin %s: no such file", path);
    if (!hone_is_file(real)) return hone_errf(err, HONE_EINVAL, "plugin %s: not a regular file", path);
    for (size_t i = 0; i < reg->nfiles; i++)
        if (strcmp(reg->files[i], real) == 0) return 0;

    dlerror();
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return hone_errf(err, HONE_EINVAL, "plugin %s: not a loadable shared object (%s)", path,
                         why ? why : "dlopen failed");
    }
    const uint32_t *abi = dlsym(h, "hone_plugin_abi");
    hone_plugin_init_fn init;
    *(void **)&init = dlsym(h, "hone_plugin_init");
    if (!abi || !init) {
        dlclose(h);
        return hone_errf(err, HONE_EINVAL,
                         "plugin %s: no entry point (%s missing): not a hone plugin, or built without HONE_PLUGIN_DEFINE",
                         path, !abi ? "hone_plugin_abi" : "hone_plugin_init");
    }
    /* plugin.h's version rule: the same major, a minor no newer than ours */
    if (abi[0] != HONE_ABI_MAJOR) {
        uint32_t maj = abi[0], min = abi[1];
        dlclose(h);
        return hone_errf(err, HONE_EINVAL,
                         "plugin %s: built for hone plugin ABI %u.%u, this hone has ABI %u.%u: rebuild against this hone",
                         path, maj, min, HONE_ABI_MAJOR, HONE_ABI_MINOR);
    }
    if (abi[1] > HONE_ABI_MINOR) {
        uint32_t min = abi[1];
        dlclose(h);
        return hone_errf(err, HONE_EINVAL,
                         "plugin %s: built for hone plugin ABI %u.%u, newer than this hone's %u.%u: upgrade hone, "
                         "or rebuild the plugin against this hone's plugin.h",
                         path, HONE_ABI_MAJOR, min, HONE_ABI_MAJOR, HONE_ABI_MINOR);
    }
    if (reg->nfiles == reg->capfiles) {
        size_t cap = reg->capfiles ? reg->capfiles * 2 : 16;
        char **f = realloc(reg->files, cap * sizeof *f);
        void **hs = f ? realloc(reg->handles, cap * sizeof *hs) : NULL;
        if (f) reg->files = f;
        if (!f || !hs) {
            dlclose(h);
            return hone_errf(err, HONE_ENOMEM, "out of memory");
        }
        reg->handles = hs;
        reg->capfiles = cap;
    }
    char *owned = hone_strdup(real);
    if (!owned) {
        dlclose(h);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    size_t before = reg->n;
    reg->loading = owned;
    hone_err perr = {0};
    int rc = init(&hone_host_table, reg, &perr);
    reg->loading = NULL;
    if (rc != 0) {
        reg->n = before;   /* drop what this plugin registered */
        free(owned);
        dlclose(h);
        return hone_errf(err, HONE_EINVAL, "plugin %s: init failed: %s", path,
                         perr.msg[0] ? perr.msg : "(it gave no message)");
    }
    reg->files[reg->nfiles] = owned;
    reg->handles[reg->nfiles] = h;
    reg->nfiles++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hone_registry_load_dir(hone_registry *reg, const char *dir, hone_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return hone_errf(err, HONE_EIO, "plugin directory %s: cannot open", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { rc = hone_errf(err, HONE_ENOMEM, "out of memory"); break; }
            names = nn;
        }
        names[n] = hone_aprintf("%s/%s", dir, e->d_name);
        if (!names[n]) { rc = hone_errf(err, HONE_ENOMEM, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) rc = hone_registry_load_file(reg, names[i], err);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int hone_registry_load_path(hone_registry *reg, const char *path, hone_err *err)
{
    if (hone_is_dir(path)) return hone_registry_load_dir(reg, path, err);
    return hone_registry_load_file(reg, path, err);
}

int hone_registry_load_pathlist(hone_registry *reg, const char *list, const char *what, hone_err *err)
{
    char *copy = hone_strdup(list);
    if (!copy) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int rc = 0;
    for (char *save = NULL, *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save)) {
        if (!hone_is_dir(p) && !hone_is_file(p)) {
            rc = hone_errf(err, HONE_EIO, "%s entry %s: no such file or directory", what, p);
            break;
        }
        rc = hone_registry_load_path(reg, p, err);
    }
    free(copy);
    return rc;
}

const hone_feature *hone_registry_find(const hone_registry *reg, hone_kind kind, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (reg->feat[i].kind == kind && strcmp(reg->feat[i].info->name, name) == 0) return &reg->feat[i];
    return NULL;
}

size_t hone_registry_count(const hone_registry *reg)
{
    return reg->n;
}

const hone_feature *hone_registry_at(const hone_registry *reg, size_t i)
{
    return i < reg->n ? &reg->feat[i] : NULL;
}

void hone_registry_names(const hone_registry *reg, hone_kind kind, char *buf, size_t n)
{
    const char *sorted[256];
    size_t k = 0;
    for (size_t i = 0; i < reg->n && k < 256; i++)
        if (reg->feat[i].kind == kind) sorted[k++] = reg->feat[i].info->name;
    qsort(sorted, k, sizeof *sorted, cmp_str);
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", sorted[i]);
    if (k == 0) snprintf(buf, n, "(none)");
}

const char *hone_feature_name(const hone_registry *reg, hone_kind kind, size_t i)
{
    for (size_t k = 0; k < reg->n; k++)
        if (reg->feat[k].kind == kind && i-- == 0) return reg->feat[k].info->name;
    return NULL;
}
