/* config.h — resolving a configuration tree against a key table (a schema).
 *
 * A schema is a flat table of dotted keys ("train.lr"), each a typed value, a section,
 * a plugin reference, a Lua function, a list of strings, or an "every" (epoch or steps).
 * Resolution fills every default (plugin options included), checks every value, and
 * fails on the first bad key with a message naming it: unknown keys get a suggestion.
 * The result is what config.json records and what the rest of hone reads.
 */
#ifndef HONE_CONFIG_H
#define HONE_CONFIG_H

#include <stddef.h>

#include "hone/hone.h"
#include "options.h"
#include "registry.h"

typedef enum {
    HONE_KEY_VALUE = 0,        /* a leaf of type o.type */
    HONE_KEY_SECTION,          /* a table of keys */
    HONE_KEY_SECTION_OR_FALSE, /* a section that `false` switches off (lora = false) */
    HONE_KEY_PLUGIN,           /* "name" or { "name", opt = value, ... } */
    HONE_KEY_FUNCTION,
    HONE_KEY_FUNCTIONS,        /* { name = function, ... } */
    HONE_KEY_STRLIST,          /* "a" or { "a", "b" }; o.choices checks each */
    HONE_KEY_EVERY,            /* "epoch" or { steps = N } */
    HONE_KEY_TENSORS,          /* numbers (one tensor) or { { name, shape, decay, init }, ... } */
} hone_key_kind;

typedef struct hone_key {
    hone_key_kind kind;
    hone_option o;             /* o.name is the dotted path; defaults, bounds, help */
    hone_kind plugin_kind;     /* HONE_KEY_PLUGIN */
    int required;
} hone_key;

typedef struct hone_cval {
    int given;                 /* set by the script or --set */
    int enabled;               /* sections: 0 when switched off or (optional) absent */
    hone_value v;              /* HONE_KEY_VALUE */
    const hone_feature *feature;  /* HONE_KEY_PLUGIN (NULL: unset) */
    hone_opts *opts;
    char **strs;               /* HONE_KEY_STRLIST */
    size_t nstrs;
    int ref;                   /* HONE_KEY_FUNCTION: Lua registry ref or HONE_NOREF */
    char **fnames;             /* HONE_KEY_FUNCTIONS */
    int *frefs;
    size_t nf;
    long long every_steps;     /* HONE_KEY_EVERY: 0 = every epoch */
    hone_tensor_info *tensors; /* HONE_KEY_TENSORS: [ntensors] in order, names owned; */
    size_t ntensors;           /*   v holds every tensor's initial values, concatenated */
    int named;                 /*   1: the table form (tensors by name), 0: one list */
} hone_cval;

typedef struct hone_config {
    const hone_key *keys;
    size_t nkeys;
    hone_cval *vals;           /* [nkeys] */
    const hone_registry *reg;  /* the features the values name live here */
} hone_config;

/* `root` is the table the script returned (overrides already grafted on). */
int hone_config_resolve(hone_config **out, const hone_key *keys, size_t nkeys, const hone_node *root,
                        const hone_registry *reg, hone_err *err);

/* hone.h has the readers by key (hone_config_num, ...); these see the schema too */
const hone_key *hone_config_key(const hone_config *cfg, const char *path, const hone_cval **val);
const hone_value *hone_config_value(const hone_config *cfg, const char *path);
const hone_cval *hone_config_cval(const hone_config *cfg, const char *path);

#endif
