/* config.c — schema resolution: tree in, checked configuration out. */
#include "config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

/* Hugging Face / PEFT / TRL names users type out of habit, and hone's name for each. */
static const char *const aliases[][2] = {
    {"rank", "r"},
    {"lora_r", "r"},
    {"lora_alpha", "alpha"},
    {"lora_dropout", "dropout"},
    {"use_rslora", "rslora"},
    {"learning_rate", "lr"},
    {"num_train_epochs", "epochs"},
    {"per_device_train_batch_size", "batch_size"},
    {"gradient_accumulation_steps", "grad_accum"},
    {"lr_scheduler_type", "scheduler"},
    {"optim", "optimizer"},
    {"max_length", "max_seq_length"},
    {"logging_steps", "log_every"},
    {"model_name_or_path", "path"},
    {"output", "output_dir"},
};

static long find_key(const hone_key *keys, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].o.name, path) == 0) return (long)i;
    return -1;
}

static const char *leaf_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* Is keys[i] a direct child of section `parent` ("" = top)? */
static int is_child(const hone_key *k, const char *parent)
{
    size_t pl = strlen(parent);
    const char *name = k->o.name;
    if (pl) {
        if (strncmp(name, parent, pl) != 0 || name[pl] != '.') return 0;
        name += pl + 1;
    }
    return strchr(name, '.') == NULL;
}

static int unknown_key(const hone_key *keys, size_t n, const char *parent, const hone_node *kid,
                       hone_err *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", parent, *parent ? "." : "", kid->key);
    const char *origin = kid->from_cli ? " (from --set)" : "";
    const char *sib[128];
    size_t ns = 0;
    for (size_t i = 0; i < n && ns < 128; i++)
        if (is_child(&keys[i], parent)) sib[ns++] = leaf_of(keys[i].o.name);
    const char *best = NULL;
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0] && !best; a++)
        if (strcmp(kid->key, aliases[a][0]) == 0)
            for (size_t s = 0; s < ns; s++)
                if (strcmp(sib[s], aliases[a][1]) == 0) best = sib[s];
    /* the right name in the wrong section: `lr` at the top means train.lr */
    for (size_t i = 0; i < n && !best; i++)
        if (strcmp(leaf_of(keys[i].o.name), kid->key) == 0)
            return hone_errf(err, HONE_EINVAL, "%s%s: unknown key; did you mean '%s'?", full, origin,
                             keys[i].o.name);
    if (!best) best = hone_closest(kid->key, sib, ns);
    if (best)
        return hone_errf(err, HONE_EINVAL, "%s%s: unknown key; did you mean '%s%s%s'?", full, origin,
                         parent, *parent ? "." : "", best);
    char list[1024];
    size_t off = 0;
    list[0] = '\0';
    for (size_t s = 0; s < ns && off < sizeof list; s++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", s ? ", " : "", sib[s]);
    return hone_errf(err, HONE_EINVAL, "%s%s: unknown key (%s%s takes: %s)", full, origin,
                     *parent ? parent : "the top level", *parent ? "" : "", list);
}

static void free_strs(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

static void cval_clear(hone_cval *c)
{
    for (size_t i = 0; i < c->ntensors; i++) free((char *)c->tensors[i].name);
    free(c->tensors);
    hone_value_clear(&c->v);
    hone_opts_free(c->opts);
    free_strs(c->strs, c->nstrs);
    free_strs(c->fnames, c->nf);
    free(c->frefs);
    memset(c, 0, sizeof *c);
    c->ref = HONE_NOREF;
}

void hone_config_free(hone_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nkeys; i++) cval_clear(&cfg->vals[i]);
    free(cfg->vals);
    free(cfg);
}

static int resolve_plugin(hone_cval *c, const hone_key *k, const hone_node *n, const hone_registry *reg,
                          hone_err *err)
{
    const char *path = k->o.name, *kn = hone_kind_name(k->plugin_kind);
    const hone_node *name = n;
    if (n && n->type == HONE_NODE_TABLE) {
        name = hone_node_at(n, 1);
        if (!name)
            return hone_errf(err, HONE_EINVAL, "%s: the %s's name must come first: { \"name\", option = value }",
                             path, kn);
    }
    const char *fname = n ? (name->type == HONE_NODE_STRING ? name->str : NULL) : k->o.def_str;
    if (!fname)
        return hone_errf(err, HONE_EINVAL, "%s: expected a %s name (a string) or { \"name\", ... }, got a %s",
                         path, kn, hone_node_type_name(name));
    const hone_feature *f = hone_registry_find(reg, k->plugin_kind, fname);
    if (!f) {
        char names[1024];
        hone_registry_names(reg, k->plugin_kind, names, sizeof names);
        if (!n)
            return hone_errf(err, HONE_EINVAL,
                             "%s: the default %s '%s' is not registered (registered %ss: %s); set %s",
                             path, kn, fname, kn, names, path);
        return hone_errf(err, HONE_EINVAL, "%s: unknown %s '%s' (registered %ss: %s)", path, kn, fname, kn,
                         names);
    }
    char what[128];
    snprintf(what, sizeof what, "%s %s", kn, fname);
    c->feature = f;
    return hone_opts_resolve(&c->opts, f->info->options, n && n->type == HONE_NODE_TABLE ? n : NULL, path,
                             what, err);
}

static int resolve_strlist(hone_cval *c, const hone_key *k, const hone_node *n, hone_err *err)
{
    const char *path = k->o.name;
    size_t len = n->type == HONE_NODE_STRING ? 1 : n->type == HONE_NODE_TABLE ? hone_node_array_len(n) : 0;
    if (n->type != HONE_NODE_STRING && (n->type != HONE_NODE_TABLE || len != n->nkids))
        return hone_errf(err, HONE_EINVAL, "%s: expected a string or a list of strings, got a %s", path,
                         hone_node_type_name(n));
    c->strs = calloc(len ? len : 1, sizeof *c->strs);
    if (!c->strs) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const hone_node *e = n->type == HONE_NODE_STRING ? n : hone_node_at(n, (long)i + 1);
        if (e->type != HONE_NODE_STRING)
            return hone_errf(err, HONE_EINVAL, "%s[%zu]: expected a string, got a %s", path, i + 1,
                             hone_node_type_name(e));
        hone_value tmp = {.set = 1, .type = HONE_OPT_STRING, .s = e->str};
        char sub[300];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i + 1);
        int rc = hone_value_check(&tmp, &k->o, len == 1 && n->type == HONE_NODE_STRING ? path : sub, err);
        if (rc) return rc;
        c->strs[i] = hone_strdup(e->str);
        c->nstrs = i + 1;
        if (!c->strs[i]) return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    return 0;
}

static int resolve_functions(hone_cval *c, const hone_key *k, const hone_node *n, hone_err *err)
{
    if (n->type != HONE_NODE_TABLE)
        return hone_errf(err, HONE_EINVAL, "%s: expected a table of name = function, got a %s", k->o.name,
                         hone_node_type_name(n));
    c->fnames = calloc(n->nkids ? n->nkids : 1, sizeof *c->fnames);
    c->frefs = calloc(n->nkids ? n->nkids : 1, sizeof *c->frefs);
    if (!c->fnames || !c->frefs) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nkids; i++) {
        const hone_node *e = n->kids[i];
        if (!e->key)
            return hone_errf(err, HONE_EINVAL, "%s: entry [%ld] needs a name (name = function)", k->o.name,
                             e->index);
        if (e->type != HONE_NODE_FUNCTION)
            return hone_errf(err, HONE_EINVAL, "%s.%s: expected a function, got a %s", k->o.name, e->key,
                             hone_node_type_name(e));
        c->fnames[i] = hone_strdup(e->key);
        c->frefs[i] = e->ref;
        c->nf = i + 1;
        if (!c->fnames[i]) return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    return 0;
}

static int resolve_every(hone_cval *c, const hone_key *k, const hone_node *n, hone_err *err)
{
    long long steps = -1;
    if (n->type == HONE_NODE_STRING && strcmp(n->str, "epoch") == 0) steps = 0;
    else if (n->type == HONE_NODE_STRING && n->from_cli && hone_parse_ll(n->str, &steps) == 0 && steps >= 1) {}
    else if (n->type == HONE_NODE_TABLE && n->nkids == 1) {
        const hone_node *s = hone_node_get(n, "steps");
        if (s && s->type == HONE_NODE_INTEGER && s->integer >= 1) steps = s->integer;
        else if (s && s->type == HONE_NODE_NUMBER && s->num >= 1 && s->num == (double)(long long)s->num)
            steps = (long long)s->num;
        else steps = -1;
    }
    if (steps < 0)
        return hone_errf(err, HONE_EINVAL, "%s: expected \"epoch\" or { steps = N } with N >= 1", k->o.name);
    c->every_steps = steps;
    return 0;
}

/* a shape: { n } or { rows, cols }, each an integer >= 1 */
static int tensor_shape(const hone_node *n, const char *path, size_t *rows, size_t *cols, hone_err *err)
{
    size_t len = n->type == HONE_NODE_TABLE ? hone_node_array_len(n) : 0;
    long long d[2] = {1, 1};
    int ok = n->type == HONE_NODE_TABLE && len == n->nkids && (len == 1 || len == 2);
    for (size_t i = 0; i < len && ok; i++) {
        const hone_node *e = hone_node_at(n, (long)i + 1);
        if (e->type == HONE_NODE_INTEGER) d[i] = e->integer;
        else if (e->type == HONE_NODE_NUMBER && e->num == (double)(long long)e->num) d[i] = (long long)e->num;
        else ok = 0;
        ok = ok && d[i] >= 1 && d[i] <= (1LL << 31);
    }
    /* hone_tensor_info is 2-D: an optimizer sees matrices and vectors */
    if (!ok) return hone_errf(err, HONE_EINVAL, "%s: expected { n } or { rows, cols } with integers >= 1", path);
    *rows = (size_t)d[0];
    *cols = (size_t)d[1];
    return 0;
}

/* One tensor table { name = "w", shape = { 4, 8 }, decay = true, init = { ... } } into
 * t (offset set by the caller) and its initial values into *init. */
static int one_tensor(const hone_node *e, const char *path, hone_tensor_info *t, hone_value *init, hone_err *err)
{
    static const hone_option init_def = {.name = "init", .type = HONE_OPT_NUMLIST, .help = "initial values"};
    const hone_node *name = NULL, *shape = NULL, *decay = NULL, *values = NULL;
    char sub[320];
    for (size_t i = 0; i < e->nkids; i++) {
        const hone_node *kid = e->kids[i];
        const char *key = kid->key ? kid->key : "";
        const hone_node **slot = !strcmp(key, "name") ? &name : !strcmp(key, "shape") ? &shape
                                 : !strcmp(key, "decay") ? &decay : !strcmp(key, "init") ? &values : NULL;
        if (!slot) {
            if (!kid->key)
                return hone_errf(err, HONE_EINVAL, "%s[%ld]: unexpected list entry (a tensor takes name, shape, "
                                 "decay, init)", path, kid->index);
            return hone_errf(err, HONE_EINVAL, "%s.%s: unknown key (a tensor takes name, shape, decay, init)", path,
                             key);
        }
        *slot = kid;
    }
    if (!name || name->type != HONE_NODE_STRING || !name->str[0])
        return hone_errf(err, HONE_EINVAL, "%s.name: every tensor needs a name (a non-empty string)", path);
    if (decay && decay->type != HONE_NODE_BOOL)
        return hone_errf(err, HONE_EINVAL, "%s.decay: expected true or false, got a %s", path,
                         hone_node_type_name(decay));
    if (!values) return hone_errf(err, HONE_EINVAL, "%s.init: missing (the tensor's initial values)", path);
    snprintf(sub, sizeof sub, "%s.init", path);
    int rc = hone_value_from_node(init, &init_def, values, sub, err);
    if (rc) return rc;
    size_t rows = init->n, cols = 1;
    snprintf(sub, sizeof sub, "%s.shape", path);
    if (shape && (rc = tensor_shape(shape, sub, &rows, &cols, err))) return rc;
    if (rows * cols != init->n)
        return hone_errf(err, HONE_EINVAL, "%s: shape %zu x %zu has %zu elements, init has %zu", path, rows, cols,
                         rows * cols, init->n);
    *t = (hone_tensor_info){.name = hone_strdup(name->str), .numel = init->n, .rows = rows, .cols = cols,
                            .decay = decay ? decay->boolean : 1};
    return t->name ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
}

/* hone.optimize's params: a list of numbers is one tensor named "params" (decay on, as
 * a weight); a list of tensor tables is several, laid out one after another */
static int resolve_tensors(hone_cval *c, const hone_key *k, const hone_node *n, hone_err *err)
{
    const char *path = k->o.name;
    size_t len = n->type == HONE_NODE_TABLE ? hone_node_array_len(n) : 0;
    int named = len > 0 && len == n->nkids && hone_node_at(n, 1)->type == HONE_NODE_TABLE;
    if (!named) {
        int rc = hone_value_from_node(&c->v, &k->o, n, path, err);
        if (rc) return rc;
        c->tensors = calloc(1, sizeof *c->tensors);
        if (c->tensors) c->tensors[0] = (hone_tensor_info){.name = hone_strdup("params"), .numel = c->v.n,
                                                           .rows = c->v.n, .cols = 1, .decay = 1};
        if (!c->tensors || !c->tensors[0].name) return hone_errf(err, HONE_ENOMEM, "out of memory");
        c->ntensors = 1;
        return 0;
    }
    c->tensors = calloc(len, sizeof *c->tensors);
    double *all = NULL;
    size_t total = 0;
    int rc = c->tensors ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < len && !rc; i++) {
        const hone_node *e = hone_node_at(n, (long)i + 1);
        char sub[300];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i + 1);
        if (e->type != HONE_NODE_TABLE) {
            rc = hone_errf(err, HONE_EINVAL, "%s: expected a tensor { name, shape, decay, init } like %s[1], got a %s",
                           sub, path, hone_node_type_name(e));
            break;
        }
        hone_value init = {0};
        rc = one_tensor(e, sub, &c->tensors[i], &init, err);
        if (!rc) {
            c->ntensors = i + 1;
            c->tensors[i].offset = total;
            for (size_t j = 0; j < i && !rc; j++)
                if (!strcmp(c->tensors[j].name, c->tensors[i].name))
                    rc = hone_errf(err, HONE_EINVAL, "%s.name: \"%s\" is %s[%zu]'s name already", sub,
                                   c->tensors[i].name, path, j + 1);
        }
        double *grown = rc ? NULL : realloc(all, (total + init.n + 1) * sizeof *all);
        if (!rc && !grown) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        if (!rc) {
            all = grown;
            memcpy(all + total, init.list, init.n * sizeof *all);
            total += init.n;
        }
        hone_value_clear(&init);
    }
    if (rc) {
        free(all);
        return rc;
    }
    c->v = (hone_value){.set = 1, .type = HONE_OPT_NUMLIST, .list = all, .n = total};
    c->named = 1;
    return 0;
}

static int resolve_section(hone_config *cfg, const char *parent, const hone_node *t, const hone_registry *reg,
                           hone_err *err);

static int resolve_entry(hone_config *cfg, long idx, const hone_node *kid, const hone_registry *reg,
                         hone_err *err)
{
    const hone_key *k = &cfg->keys[idx];
    hone_cval *c = &cfg->vals[idx];
    c->given = 1;
    switch (k->kind) {
    case HONE_KEY_VALUE: return hone_value_from_node(&c->v, &k->o, kid, k->o.name, err);
    case HONE_KEY_SECTION_OR_FALSE:
        if (kid->type == HONE_NODE_BOOL ||
            (kid->type == HONE_NODE_STRING && kid->from_cli &&
             (!strcmp(kid->str, "false") || !strcmp(kid->str, "true")))) {
            c->enabled = kid->type == HONE_NODE_BOOL ? kid->boolean : strcmp(kid->str, "true") == 0;
            return 0;
        }
        /* fall through */
    case HONE_KEY_SECTION:
        if (kid->type != HONE_NODE_TABLE)
            return hone_errf(err, HONE_EINVAL, "%s: expected a table%s, got %s", k->o.name,
                             k->kind == HONE_KEY_SECTION_OR_FALSE ? " or false" : "", hone_node_type_name(kid));
        c->enabled = 1;
        return resolve_section(cfg, k->o.name, kid, reg, err);
    case HONE_KEY_PLUGIN: return resolve_plugin(c, k, kid, reg, err);
    case HONE_KEY_FUNCTION:
        if (kid->type != HONE_NODE_FUNCTION)
            return hone_errf(err, HONE_EINVAL, "%s: expected a function, got a %s", k->o.name,
                             hone_node_type_name(kid));
        c->ref = kid->ref;
        return 0;
    case HONE_KEY_FUNCTIONS: return resolve_functions(c, k, kid, err);
    case HONE_KEY_STRLIST: return resolve_strlist(c, k, kid, err);
    case HONE_KEY_EVERY: return resolve_every(c, k, kid, err);
    case HONE_KEY_TENSORS: return resolve_tensors(c, k, kid, err);
    }
    return 0;
}

static int resolve_section(hone_config *cfg, const char *parent, const hone_node *t, const hone_registry *reg,
                           hone_err *err)
{
    for (size_t i = 0; i < t->nkids; i++) {
        const hone_node *kid = t->kids[i];
        if (!kid->key)
            return hone_errf(err, HONE_EINVAL, "%s%s[%ld]: unexpected list entry; keys are name = value",
                             parent, *parent ? "" : "(top level)", kid->index);
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", parent, *parent ? "." : "", kid->key);
        long idx = find_key(cfg->keys, cfg->nkeys, full);
        if (idx < 0) return unknown_key(cfg->keys, cfg->nkeys, parent, kid, err);
        int rc = resolve_entry(cfg, idx, kid, reg, err);
        if (rc) return rc;
    }
    return 0;
}

/* Is key i inside a section that is off (lora = false) or absent-and-optional? */
static int in_disabled_section(const hone_config *cfg, size_t i)
{
    const char *name = cfg->keys[i].o.name;
    for (size_t j = 0; j < cfg->nkeys; j++) {
        const hone_key *s = &cfg->keys[j];
        if (s->kind != HONE_KEY_SECTION && s->kind != HONE_KEY_SECTION_OR_FALSE) continue;
        size_t sl = strlen(s->o.name);
        if (strncmp(name, s->o.name, sl) == 0 && name[sl] == '.' && !cfg->vals[j].enabled) return 1;
    }
    return 0;
}

int hone_config_resolve(hone_config **out, const hone_key *keys, size_t nkeys, const hone_node *root,
                        const hone_registry *reg, hone_err *err)
{
    hone_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return hone_errf(err, HONE_ENOMEM, "out of memory");
    cfg->keys = keys;
    cfg->reg = reg;
    cfg->nkeys = nkeys;
    cfg->vals = calloc(nkeys, sizeof *cfg->vals);
    if (!cfg->vals) {
        free(cfg);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nkeys; i++) {
        cfg->vals[i].ref = HONE_NOREF;
        /* sections are on unless optional (UNSET) or switched off */
        cfg->vals[i].enabled = !(keys[i].o.flags & HONE_OPT_UNSET);
    }
    int rc = 0;
    if (!root || root->type != HONE_NODE_TABLE)
        rc = hone_errf(err, HONE_EINVAL, "expected the script to return a table (an experiment), got %s",
                       root ? hone_node_type_name(root) : "nothing");
    if (!rc) rc = resolve_section(cfg, "", root, reg, err);
    for (size_t i = 0; i < nkeys && !rc; i++) {
        const hone_key *k = &keys[i];
        hone_cval *c = &cfg->vals[i];
        if (c->given || in_disabled_section(cfg, i)) continue;
        if (k->required) {
            rc = hone_errf(err, HONE_EINVAL, "%s: missing required key (%s)", k->o.name, k->o.help);
            break;
        }
        switch (k->kind) {
        case HONE_KEY_VALUE:
            rc = hone_value_default(&c->v, &k->o);
            break;
        case HONE_KEY_PLUGIN:
            if (!(k->o.flags & HONE_OPT_UNSET)) rc = resolve_plugin(c, k, NULL, reg, err);
            break;
        case HONE_KEY_STRLIST:
            if (k->o.def_str && !(k->o.flags & HONE_OPT_UNSET)) {
                hone_node tmp = {.type = HONE_NODE_TABLE};
                char *copy = hone_strdup(k->o.def_str);
                hone_node items[16], *ptrs[16];
                size_t n = 0;
                for (char *save = NULL, *p = strtok_r(copy, ",", &save); p && n < 16;
                     p = strtok_r(NULL, ",", &save), n++) {
                    items[n] = (hone_node){.type = HONE_NODE_STRING, .index = (long)n + 1, .str = p};
                    ptrs[n] = &items[n];
                }
                tmp.kids = ptrs;
                tmp.nkids = n;
                rc = resolve_strlist(c, k, &tmp, err);
                free(copy);
            }
            break;
        case HONE_KEY_EVERY:
            c->every_steps = 0;
            break;
        default: break;
        }
    }
    if (rc) {
        hone_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

const hone_key *hone_config_key(const hone_config *cfg, const char *path, const hone_cval **val)
{
    long i = find_key(cfg->keys, cfg->nkeys, path);
    if (i < 0) return NULL;
    if (val) *val = &cfg->vals[i];
    return &cfg->keys[i];
}

const hone_cval *hone_config_cval(const hone_config *cfg, const char *path)
{
    const hone_cval *c = NULL;
    return hone_config_key(cfg, path, &c) ? c : NULL;
}

int hone_config_function(const hone_config *cfg, const char *path)
{
    const hone_cval *c = hone_config_cval(cfg, path);
    return c ? c->ref : HONE_NOREF;
}

const hone_value *hone_config_value(const hone_config *cfg, const char *path)
{
    const hone_cval *c = hone_config_cval(cfg, path);
    return c ? &c->v : NULL;
}

double hone_config_num(const hone_config *cfg, const char *path)
{
    const hone_value *v = hone_config_value(cfg, path);
    if (!v || !v->set) return 0;
    return v->type == HONE_OPT_INTEGER ? (double)v->i : v->num;
}

long long hone_config_int(const hone_config *cfg, const char *path)
{
    const hone_value *v = hone_config_value(cfg, path);
    if (!v || !v->set) return 0;
    return v->type == HONE_OPT_NUMBER ? (long long)v->num : v->i;
}

int hone_config_bool(const hone_config *cfg, const char *path)
{
    const hone_value *v = hone_config_value(cfg, path);
    return v && v->set && v->b;
}

const char *hone_config_str(const hone_config *cfg, const char *path)
{
    const hone_value *v = hone_config_value(cfg, path);
    return v && v->set && v->type == HONE_OPT_STRING ? v->s : NULL;
}

int hone_config_is_set(const hone_config *cfg, const char *path)
{
    const hone_value *v = hone_config_value(cfg, path);
    return v && v->set;
}

static cJSON *section_object(cJSON *root, const char *path)
{
    /* walk/create the objects for every dotted component but the last */
    cJSON *cur = root;
    const char *p = path;
    for (const char *dot; (dot = strchr(p, '.')); p = dot + 1) {
        char part[128];
        snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, part);
        if (!next || !cJSON_IsObject(next)) {
            if (next) cJSON_DeleteItemFromObjectCaseSensitive(cur, part);
            next = cJSON_AddObjectToObject(cur, part);
        }
        cur = next;
    }
    return cur;
}

cJSON *hone_config_json(const hone_config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < cfg->nkeys; i++) {
        const hone_key *k = &cfg->keys[i];
        const hone_cval *c = &cfg->vals[i];
        if (in_disabled_section(cfg, i)) continue;
        cJSON *parent = section_object(root, k->o.name);
        const char *leaf = leaf_of(k->o.name);
        cJSON *item = NULL;
        switch (k->kind) {
        case HONE_KEY_VALUE: item = hone_value_json(&c->v); break;
        case HONE_KEY_SECTION:
        case HONE_KEY_SECTION_OR_FALSE:
            if (!c->enabled) item = k->kind == HONE_KEY_SECTION_OR_FALSE && c->given ? cJSON_CreateFalse()
                                                                                   : cJSON_CreateNull();
            else if (!cJSON_GetObjectItemCaseSensitive(parent, leaf)) item = cJSON_CreateObject();
            break;
        case HONE_KEY_PLUGIN:
            if (!c->feature) {
                item = cJSON_CreateNull();
                break;
            }
            item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "name", c->feature->info->name);
            cJSON_AddItemToObject(item, "options", hone_opts_json(c->opts));
            cJSON_AddStringToObject(item, "plugin", c->feature->file);
            break;
        case HONE_KEY_FUNCTION:
            item = c->ref != HONE_NOREF ? cJSON_CreateString("<lua function>") : cJSON_CreateNull();
            break;
        case HONE_KEY_FUNCTIONS:
            item = cJSON_CreateObject();
            for (size_t f = 0; f < c->nf; f++) cJSON_AddStringToObject(item, c->fnames[f], "<lua function>");
            break;
        case HONE_KEY_STRLIST:
            item = cJSON_CreateArray();
            for (size_t s = 0; s < c->nstrs; s++) cJSON_AddItemToArray(item, cJSON_CreateString(c->strs[s]));
            break;
        case HONE_KEY_TENSORS: item = hone_value_json(&c->v); break;
        case HONE_KEY_EVERY:
            if (c->every_steps == 0) item = cJSON_CreateString("epoch");
            else {
                item = cJSON_CreateObject();
                cJSON_AddNumberToObject(item, "steps", (double)c->every_steps);
            }
            break;
        }
        if (item) cJSON_AddItemToObject(parent, leaf, item);
    }
    return root;
}
