/* tree.h — a Lua-free copy of a configuration table.
 *
 * The Lua binding turns the table a script returns into this tree; `--set` overrides are
 * grafted onto it as text; the schema then validates it in plain C. Functions stay in Lua:
 * a function node holds a Lua registry reference only the binding can use.
 */
#ifndef HONE_TREE_H
#define HONE_TREE_H

#include <stddef.h>

typedef enum {
    HONE_NODE_NUMBER = 1,
    HONE_NODE_INTEGER,
    HONE_NODE_BOOL,
    HONE_NODE_STRING,
    HONE_NODE_TABLE,
    HONE_NODE_FUNCTION,
} hone_node_type;

typedef struct hone_node {
    hone_node_type type;
    char *key;               /* string key, or NULL for an array element */
    long index;              /* 1-based array index when key is NULL */
    double num;
    long long integer;
    int boolean;
    char *str;
    int ref;                 /* function: Lua registry reference */
    int from_cli;            /* string from --set: the schema converts it to the key's type */
    struct hone_node **kids; /* table entries in insertion order */
    size_t nkids, cap;
} hone_node;

hone_node *hone_node_new(hone_node_type type);
void hone_node_free(hone_node *n);
/* appends a child (takes ownership); returns it, or NULL when out of memory */
hone_node *hone_node_add(hone_node *table, hone_node *child);
hone_node *hone_node_get(const hone_node *table, const char *key);
hone_node *hone_node_at(const hone_node *table, long index);   /* array part, 1-based */
size_t hone_node_array_len(const hone_node *table);
const char *hone_node_type_name(const hone_node *n);
/* Sets "a.b.c" = text (from --set), creating tables on the way. A string met on the way
 * becomes a table holding it at [1], which is how `optimizer = "adamw"` grows options. */
int hone_node_set_path(hone_node *root, const char *path, const char *text);

#endif
