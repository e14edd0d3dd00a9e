/* tree.c — building and querying configuration trees. */
#include "hone/hone.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

hone_node *hone_node_new(hone_node_type type)
{
    hone_node *n = calloc(1, sizeof *n);
    if (n) n->type = type;
    return n;
}

void hone_node_free(hone_node *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nkids; i++) hone_node_free(n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->str);
    free(n);
}

hone_node *hone_node_add(hone_node *t, hone_node *child)
{
    if (!child) return NULL;
    if (t->nkids == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        hone_node **k = realloc(t->kids, cap * sizeof *k);
        if (!k) {
            hone_node_free(child);
            return NULL;
        }
        t->kids = k;
        t->cap = cap;
    }
    t->kids[t->nkids++] = child;
    return child;
}

hone_node *hone_node_get(const hone_node *t, const char *key)
{
    if (!t || t->type != HONE_NODE_TABLE) return NULL;
    for (size_t i = 0; i < t->nkids; i++)
        if (t->kids[i]->key && strcmp(t->kids[i]->key, key) == 0) return t->kids[i];
    return NULL;
}

hone_node *hone_node_at(const hone_node *t, long index)
{
    if (!t || t->type != HONE_NODE_TABLE) return NULL;
    for (size_t i = 0; i < t->nkids; i++)
        if (!t->kids[i]->key && t->kids[i]->index == index) return t->kids[i];
    return NULL;
}

size_t hone_node_array_len(const hone_node *t)
{
    size_t n = 0;
    while (hone_node_at(t, (long)n + 1)) n++;
    return n;
}

const char *hone_node_type_name(const hone_node *n)
{
    if (!n) return "nil";
    switch (n->type) {
    case HONE_NODE_NUMBER: return "number";
    case HONE_NODE_INTEGER: return "integer";
    case HONE_NODE_BOOL: return "boolean";
    case HONE_NODE_STRING: return "string";
    case HONE_NODE_TABLE: return "table";
    case HONE_NODE_FUNCTION: return "function";
    }
    return "?";
}

static hone_node *new_keyed(hone_node_type type, const char *key, size_t keylen)
{
    hone_node *n = hone_node_new(type);
    if (!n) return NULL;
    n->key = hone_strndup(key, keylen);
    if (!n->key) {
        free(n);
        return NULL;
    }
    return n;
}

int hone_node_set_path(hone_node *root, const char *path, const char *text)
{
    hone_node *cur = root;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0) return -1;
        char key[128];
        if (len >= sizeof key) return -1;
        memcpy(key, p, len);
        key[len] = '\0';
        hone_node *kid = hone_node_get(cur, key);
        if (!dot) {
            if (kid && kid->type == HONE_NODE_TABLE && hone_node_at(kid, 1)) {
                /* `--set train.optimizer=lion` on {"adamw", ...}: replace the name only */
                kid = hone_node_at(kid, 1);
            } else if (kid && kid->type == HONE_NODE_TABLE) {
                /* `--set lora=false` on a section: the value replaces the table */
                for (size_t i = 0; i < kid->nkids; i++) hone_node_free(kid->kids[i]);
                kid->nkids = 0;
            } else if (!kid) {
                kid = hone_node_add(cur, new_keyed(HONE_NODE_STRING, key, len));
                if (!kid) return -1;
            }
            free(kid->str);
            kid->str = hone_strdup(text);
            kid->type = HONE_NODE_STRING;
            kid->from_cli = 1;
            return kid->str ? 0 : -1;
        }
        if (!kid) {
            kid = hone_node_add(cur, new_keyed(HONE_NODE_TABLE, key, len));
            if (!kid) return -1;
        } else if (kid->type == HONE_NODE_STRING) {
            /* a plugin given by name grows an options table: "adamw" -> {"adamw"} */
            hone_node *name = hone_node_new(HONE_NODE_STRING);
            if (!name) return -1;
            name->index = 1;
            name->str = kid->str;
            name->from_cli = kid->from_cli;
            kid->str = NULL;
            kid->type = HONE_NODE_TABLE;
            kid->from_cli = 0;
            if (!hone_node_add(kid, name)) return -1;
        } else if (kid->type != HONE_NODE_TABLE) {
            /* e.g. `lora = false` then `--set lora.r=8`: the override wins */
            kid->type = HONE_NODE_TABLE;
        }
        cur = kid;
        p = dot + 1;
    }
}
