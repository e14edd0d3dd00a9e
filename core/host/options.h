/* options.h — typed, checked option values: one mechanism for plugin options and for the
 * experiment schema's leaves.
 *
 * An option table (hone_option[]) describes names, types, defaults and bounds. Resolving
 * a configuration table against it fills defaults, converts `--set` text, checks types,
 * ranges and choices, and rejects unknown names with a "did you mean".
 */
#ifndef HONE_OPTIONS_H
#define HONE_OPTIONS_H

#include <stddef.h>

#include "hone/plugin.h"
#include "hone/hone.h"

typedef struct cJSON cJSON;

typedef struct hone_value {
    int set;                 /* 0: no value (an option with HONE_OPT_UNSET, not given) */
    hone_opt_type type;
    double num;              /* number */
    long long i;             /* integer */
    int b;                   /* bool */
    char *s;                 /* string */
    double *list;            /* numlist */
    size_t n;
} hone_value;

struct hone_opts {
    const hone_option *defs; /* NULL-name-terminated */
    size_t n;
    hone_value *vals;        /* [n] */
};

/* Checks a feature's option table itself (at registration), so a plugin's mistake is
 * reported against its file, not against a user's script. */
int hone_options_check_table(const hone_option *defs, hone_err *err);
size_t hone_options_count(const hone_option *defs);

/* Resolves `given` (a table or NULL) against defs. `path` prefixes messages
 * ("train.optimizer"); keys listed in skip (array index 1 = the plugin name) are ignored.
 * `what` names the owner in unknown-key messages ("optimizer adamw"). */
int hone_opts_resolve(hone_opts **out, const hone_option *defs, const hone_node *given,
                      const char *path, const char *what, hone_err *err);
void hone_opts_free(hone_opts *o);

/* One value from a node, checked against def. */
int hone_value_from_node(hone_value *v, const hone_option *def, const hone_node *n,
                         const char *path, hone_err *err);
int hone_value_default(hone_value *v, const hone_option *def);
void hone_value_clear(hone_value *v);
int hone_value_check(const hone_value *v, const hone_option *def, const char *path, hone_err *err);

const hone_value *hone_opts_get(const hone_opts *o, const char *name);
cJSON *hone_value_json(const hone_value *v);
cJSON *hone_opts_json(const hone_opts *o);
const char *hone_opt_type_name(hone_opt_type t);
/* "> 0", "[0, 1)", ">= 1" or "" */
void hone_option_range(const hone_option *d, char *buf, size_t n);
/* the default as text ("0.9,0.999", "true", "(unset)") */
void hone_option_default_text(const hone_option *d, char *buf, size_t n);

/* the host's option readers */
double hone_opt_number(const hone_opts *o, const char *name);
long long hone_opt_integer(const hone_opts *o, const char *name);
int hone_opt_bool(const hone_opts *o, const char *name);
const char *hone_opt_string(const hone_opts *o, const char *name);
const double *hone_opt_list(const hone_opts *o, const char *name, size_t *n);
int hone_opt_is_set(const hone_opts *o, const char *name);

#endif
