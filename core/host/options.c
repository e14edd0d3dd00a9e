/* options.c — resolving and checking option values against option tables. */
#include "options.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "util.h"

const char *hone_opt_type_name(hone_opt_type t)
{
    switch (t) {
    case HONE_OPT_NUMBER: return "number";
    case HONE_OPT_INTEGER: return "integer";
    case HONE_OPT_BOOL: return "bool";
    case HONE_OPT_STRING: return "string";
    case HONE_OPT_NUMLIST: return "number list";
    }
    return "?";
}

size_t hone_options_count(const hone_option *defs)
{
    size_t n = 0;
    while (defs && defs[n].name) n++;
    return n;
}

void hone_option_range(const hone_option *d, char *buf, size_t n)
{
    int lo = (d->flags & HONE_OPT_HAS_MIN) != 0, hi = (d->flags & HONE_OPT_HAS_MAX) != 0;
    if (lo && hi)
        snprintf(buf, n, "%c%g, %g%c", d->flags & HONE_OPT_MIN_EXCL ? '(' : '[', d->min, d->max,
                 d->flags & HONE_OPT_MAX_EXCL ? ')' : ']');
    else if (lo)
        snprintf(buf, n, "%s %g", d->flags & HONE_OPT_MIN_EXCL ? ">" : ">=", d->min);
    else if (hi)
        snprintf(buf, n, "%s %g", d->flags & HONE_OPT_MAX_EXCL ? "<" : "<=", d->max);
    else if (d->choices)
        snprintf(buf, n, "%s", d->choices);
    else
        buf[0] = '\0';
}

void hone_option_default_text(const hone_option *d, char *buf, size_t n)
{
    if (d->flags & HONE_OPT_UNSET) {
        snprintf(buf, n, "(unset)");
        return;
    }
    switch (d->type) {
    case HONE_OPT_NUMBER: snprintf(buf, n, "%g", d->def); break;
    case HONE_OPT_INTEGER: snprintf(buf, n, "%lld", (long long)d->def); break;
    case HONE_OPT_BOOL: snprintf(buf, n, "%s", d->def != 0 ? "true" : "false"); break;
    case HONE_OPT_STRING: snprintf(buf, n, "\"%s\"", d->def_str ? d->def_str : ""); break;
    case HONE_OPT_NUMLIST: snprintf(buf, n, "{%s}", d->def_str ? d->def_str : ""); break;
    }
}

void hone_value_clear(hone_value *v)
{
    free(v->s);
    free(v->list);
    memset(v, 0, sizeof *v);
}

static int choice_ok(const char *choices, const char *s)
{
    size_t len = strlen(s);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, s, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* "0.9,0.999" or "{0.9, 0.999}" -> list */
static int parse_list(const char *text, double **list, size_t *n)
{
    size_t cap = 4, k = 0;
    double *l = malloc(cap * sizeof *l);
    if (!l) return -1;
    char *buf = hone_strdup(text);
    if (!buf) {
        free(l);
        return -1;
    }
    char *s = buf;
    while (*s == ' ' || *s == '{' || *s == '[') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '}' || e[-1] == ']')) *--e = '\0';
    int rc = 0;
    if (*s) {
        for (char *tok = s;;) {
            char *comma = strchr(tok, ',');
            if (comma) *comma = '\0';
            while (*tok == ' ') tok++;
            char *te = tok + strlen(tok);
            while (te > tok && te[-1] == ' ') *--te = '\0';
            if (k == cap) {
                double *nl = realloc(l, (cap *= 2) * sizeof *l);
                if (!nl) { rc = -1; break; }
                l = nl;
            }
            if (hone_parse_double(tok, &l[k]) != 0) { rc = -1; break; }
            k++;
            if (!comma) break;
            tok = comma + 1;
        }
    }
    free(buf);
    if (rc != 0) {
        free(l);
        return -1;
    }
    *list = l;
    *n = k;
    return 0;
}

int hone_value_default(hone_value *v, const hone_option *d)
{
    memset(v, 0, sizeof *v);
    v->type = d->type;
    if (d->flags & HONE_OPT_UNSET) return 0;
    v->set = 1;
    switch (d->type) {
    case HONE_OPT_NUMBER: v->num = d->def; break;
    case HONE_OPT_INTEGER: v->i = (long long)d->def; break;
    case HONE_OPT_BOOL: v->b = d->def != 0; break;
    case HONE_OPT_STRING:
        v->s = hone_strdup(d->def_str ? d->def_str : "");
        if (!v->s) return HONE_ENOMEM;
        break;
    case HONE_OPT_NUMLIST:
        if (parse_list(d->def_str ? d->def_str : "", &v->list, &v->n) != 0) return HONE_EINVAL;
        break;
    }
    return 0;
}

static void describe(const hone_node *n, char *buf, size_t len)
{
    switch (n->type) {
    case HONE_NODE_NUMBER: snprintf(buf, len, "number %g", n->num); break;
    case HONE_NODE_INTEGER: snprintf(buf, len, "integer %lld", n->integer); break;
    case HONE_NODE_BOOL: snprintf(buf, len, "boolean %s", n->boolean ? "true" : "false"); break;
    case HONE_NODE_STRING: snprintf(buf, len, "string \"%.60s\"", n->str); break;
    default: snprintf(buf, len, "a %s", hone_node_type_name(n)); break;
    }
}

int hone_value_check(const hone_value *v, const hone_option *d, const char *path, hone_err *err)
{
    if (!v->set) return 0;
    char range[96];
    hone_option_range(d, range, sizeof range);
    if (d->type == HONE_OPT_STRING) {
        if (d->choices && !choice_ok(d->choices, v->s))
            return hone_errf(err, HONE_EINVAL, "%s = \"%.80s\": must be one of %s", path, v->s,
                             d->choices);
        return 0;
    }
    if (d->type == HONE_OPT_BOOL) return 0;
    if (d->type == HONE_OPT_NUMLIST && d->list_len > 0 && v->n != (size_t)d->list_len)
        return hone_errf(err, HONE_EINVAL, "%s: expected a list of %d numbers, got %zu", path,
                         d->list_len, v->n);
    size_t count = d->type == HONE_OPT_NUMLIST ? v->n : 1;
    for (size_t k = 0; k < count; k++) {
        double x = d->type == HONE_OPT_NUMBER ? v->num
                   : d->type == HONE_OPT_INTEGER ? (double)v->i : v->list[k];
        if (!isfinite(x))
            return hone_errf(err, HONE_EINVAL, "%s: must be a finite number, got %g", path, x);
        int low = (d->flags & HONE_OPT_HAS_MIN) &&
                  ((d->flags & HONE_OPT_MIN_EXCL) ? !(x > d->min) : !(x >= d->min));
        int high = (d->flags & HONE_OPT_HAS_MAX) &&
                   ((d->flags & HONE_OPT_MAX_EXCL) ? !(x < d->max) : !(x <= d->max));
        if (low || high) {
            if (d->type == HONE_OPT_NUMLIST)
                return hone_errf(err, HONE_EINVAL, "%s[%zu] = %g: out of range, must be %s", path,
                                 k + 1, x, range);
            return hone_errf(err, HONE_EINVAL, "%s = %g: out of range, must be %s", path, x, range);
        }
    }
    return 0;
}

int hone_value_from_node(hone_value *v, const hone_option *d, const hone_node *n,
                         const char *path, hone_err *err)
{
    memset(v, 0, sizeof *v);
    v->type = d->type;
    v->set = 1;
    char got[96];
    describe(n, got, sizeof got);
    const char *cli = n->type == HONE_NODE_STRING && n->from_cli ? n->str : NULL;
    switch (d->type) {
    case HONE_OPT_NUMBER:
        if (n->type == HONE_NODE_NUMBER) v->num = n->num;
        else if (n->type == HONE_NODE_INTEGER) v->num = (double)n->integer;
        else if (cli && hone_parse_double(cli, &v->num) == 0) {}
        else return hone_errf(err, HONE_EINVAL, "%s: expected a number, got %s", path, got);
        break;
    case HONE_OPT_INTEGER: {
        double x;
        if (n->type == HONE_NODE_INTEGER) v->i = n->integer;
        else if (n->type == HONE_NODE_NUMBER && n->num == floor(n->num) && fabs(n->num) < 9e15)
            v->i = (long long)n->num;
        else if (cli && hone_parse_ll(cli, &v->i) == 0) {}
        else if (cli && hone_parse_double(cli, &x) == 0 && x == floor(x) && fabs(x) < 9e15)
            v->i = (long long)x;
        else return hone_errf(err, HONE_EINVAL, "%s: expected an integer, got %s", path, got);
        break;
    }
    case HONE_OPT_BOOL:
        if (n->type == HONE_NODE_BOOL) v->b = n->boolean;
        else if (cli && (!strcasecmp(cli, "true") || !strcmp(cli, "1") || !strcasecmp(cli, "yes")))
            v->b = 1;
        else if (cli && (!strcasecmp(cli, "false") || !strcmp(cli, "0") || !strcasecmp(cli, "no")))
            v->b = 0;
        else return hone_errf(err, HONE_EINVAL, "%s: expected true or false, got %s", path, got);
        break;
    case HONE_OPT_STRING:
        if (n->type != HONE_NODE_STRING)
            return hone_errf(err, HONE_EINVAL, "%s: expected a string, got %s", path, got);
        v->s = hone_strdup(n->str);
        if (!v->s) return hone_errf(err, HONE_ENOMEM, "out of memory");
        break;
    case HONE_OPT_NUMLIST:
        if (cli) {
            if (parse_list(cli, &v->list, &v->n) != 0)
                return hone_errf(err, HONE_EINVAL, "%s: expected numbers separated by commas, got \"%.60s\"",
                                 path, cli);
        } else if (n->type == HONE_NODE_TABLE) {
            size_t len = hone_node_array_len(n);
            if (len != n->nkids)
                return hone_errf(err, HONE_EINVAL, "%s: expected a list of numbers, got a table with keys",
                                 path);
            v->list = calloc(len ? len : 1, sizeof *v->list);
            if (!v->list) return hone_errf(err, HONE_ENOMEM, "out of memory");
            v->n = len;
            for (size_t k = 0; k < len; k++) {
                const hone_node *e = hone_node_at(n, (long)k + 1);
                if (e->type == HONE_NODE_NUMBER) v->list[k] = e->num;
                else if (e->type == HONE_NODE_INTEGER) v->list[k] = (double)e->integer;
                else {
                    describe(e, got, sizeof got);
                    hone_value_clear(v);
                    return hone_errf(err, HONE_EINVAL, "%s[%zu]: expected a number, got %s", path,
                                     k + 1, got);
                }
            }
        } else {
            return hone_errf(err, HONE_EINVAL, "%s: expected a list of numbers, got %s", path, got);
        }
        break;
    }
    int rc = hone_value_check(v, d, path, err);
    if (rc) hone_value_clear(v);
    return rc;
}

int hone_options_check_table(const hone_option *defs, hone_err *err)
{
    for (size_t i = 0; defs && defs[i].name; i++) {
        const hone_option *d = &defs[i];
        if (!d->name[0]) return hone_errf(err, HONE_EINVAL, "option %zu has an empty name", i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(defs[j].name, d->name) == 0)
                return hone_errf(err, HONE_EINVAL, "option '%s' is declared twice", d->name);
        if (d->type < HONE_OPT_NUMBER || d->type > HONE_OPT_NUMLIST)
            return hone_errf(err, HONE_EINVAL, "option '%s' has an unknown type %d", d->name, (int)d->type);
        if (!d->help) return hone_errf(err, HONE_EINVAL, "option '%s' has no help line", d->name);
        /* refused, not ignored: a later minor may give these bits a meaning */
        unsigned known = HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX | HONE_OPT_MIN_EXCL | HONE_OPT_MAX_EXCL | HONE_OPT_UNSET;
        if (d->flags & ~known)
            return hone_errf(err, HONE_EINVAL, "option '%s' sets flag bits 0x%x, which this hone reserves",
                             d->name, d->flags & ~known);
        hone_value v;
        if (hone_value_default(&v, d) != 0)
            return hone_errf(err, HONE_EINVAL, "option '%s': default \"%s\" is not a number list",
                             d->name, d->def_str ? d->def_str : "");
        char path[160];
        snprintf(path, sizeof path, "default of option '%s'", d->name);
        int rc = hone_value_check(&v, d, path, err);
        hone_value_clear(&v);
        if (rc) return rc;
    }
    return 0;
}

void hone_opts_free(hone_opts *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) hone_value_clear(&o->vals[i]);
    free(o->vals);
    free(o);
}

int hone_opts_resolve(hone_opts **out, const hone_option *defs, const hone_node *given,
                      const char *path, const char *what, hone_err *err)
{
    size_t n = hone_options_count(defs);
    hone_opts *o = calloc(1, sizeof *o);
    if (!o) return hone_errf(err, HONE_ENOMEM, "out of memory");
    o->defs = defs;
    o->n = n;
    o->vals = calloc(n ? n : 1, sizeof *o->vals);
    if (!o->vals) {
        free(o);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    char sub[256];
    if (given && given->type == HONE_NODE_TABLE) {
        const char **names = calloc(n ? n : 1, sizeof *names);
        if (!names) {
            hone_opts_free(o);
            return hone_errf(err, HONE_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) names[i] = defs[i].name;
        for (size_t k = 0; k < given->nkids; k++) {
            const hone_node *kid = given->kids[k];
            if (!kid->key) {
                if (kid->index == 1) continue;   /* the feature's name */
                free(names);
                hone_opts_free(o);
                return hone_errf(err, HONE_EINVAL, "%s: unexpected list entry [%ld]; options are name = value",
                                 path, kid->index);
            }
            size_t i = 0;
            while (i < n && strcmp(defs[i].name, kid->key) != 0) i++;
            if (i == n) {
                const char *best = hone_closest(kid->key, names, n);
                if (best)
                    hone_errf(err, HONE_EINVAL, "%s.%s: unknown option '%s' for %s; did you mean '%s'?",
                              path, kid->key, kid->key, what, best);
                else if (n)
                    hone_errf(err, HONE_EINVAL, "%s.%s: unknown option '%s' for %s (`hone plugins` %s lists them)",
                              path, kid->key, kid->key, what, what);
                else
                    hone_errf(err, HONE_EINVAL, "%s.%s: %s takes no options", path, kid->key, what);
                free(names);
                hone_opts_free(o);
                return HONE_EINVAL;
            }
        }
        free(names);
    }
    for (size_t i = 0; i < n; i++) {
        const hone_node *v = hone_node_get(given, defs[i].name);
        snprintf(sub, sizeof sub, "%s.%s", path, defs[i].name);
        int rc = v ? hone_value_from_node(&o->vals[i], &defs[i], v, sub, err)
                   : hone_value_default(&o->vals[i], &defs[i]);
        if (rc) {
            hone_opts_free(o);
            return rc;
        }
    }
    *out = o;
    return 0;
}

const hone_value *hone_opts_get(const hone_opts *o, const char *name)
{
    if (!o) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->defs[i].name, name) == 0) return &o->vals[i];
    return NULL;
}

cJSON *hone_value_json(const hone_value *v)
{
    if (!v->set) return cJSON_CreateNull();
    switch (v->type) {
    case HONE_OPT_NUMBER: return cJSON_CreateNumber(v->num);
    case HONE_OPT_INTEGER: return cJSON_CreateNumber((double)v->i);
    case HONE_OPT_BOOL: return cJSON_CreateBool(v->b);
    case HONE_OPT_STRING: return cJSON_CreateString(v->s);
    case HONE_OPT_NUMLIST: return cJSON_CreateDoubleArray(v->list, (int)v->n);
    }
    return cJSON_CreateNull();
}

cJSON *hone_opts_json(const hone_opts *o)
{
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; o && i < o->n; i++)
        cJSON_AddItemToObject(obj, o->defs[i].name, hone_value_json(&o->vals[i]));
    return obj;
}

/* Reading an undeclared option is a bug in the plugin; it reads as zero/NULL. */
double hone_opt_number(const hone_opts *o, const char *name)
{
    const hone_value *v = hone_opts_get(o, name);
    if (!v || !v->set) return 0;
    return v->type == HONE_OPT_INTEGER ? (double)v->i : v->type == HONE_OPT_BOOL ? v->b : v->num;
}

long long hone_opt_integer(const hone_opts *o, const char *name)
{
    const hone_value *v = hone_opts_get(o, name);
    if (!v || !v->set) return 0;
    return v->type == HONE_OPT_NUMBER ? (long long)v->num : v->type == HONE_OPT_BOOL ? v->b : v->i;
}

int hone_opt_bool(const hone_opts *o, const char *name)
{
    const hone_value *v = hone_opts_get(o, name);
    return v && v->set && v->type == HONE_OPT_BOOL ? v->b : 0;
}

const char *hone_opt_string(const hone_opts *o, const char *name)
{
    const hone_value *v = hone_opts_get(o, name);
    return v && v->set && v->type == HONE_OPT_STRING ? v->s : NULL;
}

const double *hone_opt_list(const hone_opts *o, const char *name, size_t *n)
{
    const hone_value *v = hone_opts_get(o, name);
    if (!v || !v->set || v->type != HONE_OPT_NUMLIST) {
        if (n) *n = 0;
        return NULL;
    }
    if (n) *n = v->n;
    return v->list;
}

int hone_opt_is_set(const hone_opts *o, const char *name)
{
    const hone_value *v = hone_opts_get(o, name);
    return v && v->set;
}
