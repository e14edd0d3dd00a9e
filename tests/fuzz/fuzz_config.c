/* fuzz_config.c — libFuzzer harness for the configuration path a user's input takes:
 * `--set key=value` lines grafted onto a tree (hone_node_set_path), then resolved
 * against the experiment schema and a plugin-style option table. Any input must give
 * either a config or an error message, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "options.h"
#include "schema.h"
#include "hone/hone.h"

static const hone_option opts[] = {
    {"betas", HONE_OPT_NUMLIST, HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX, 0, "0.9,0.999", 0, 1, NULL, 2, "betas"},
    {"eps", HONE_OPT_NUMBER, HONE_OPT_HAS_MIN | HONE_OPT_MIN_EXCL, 1e-8, NULL, 0, 0, NULL, 0, "eps"},
    {"n", HONE_OPT_INTEGER, 0, 1, NULL, 0, 0, NULL, 0, "n"},
    {"flag", HONE_OPT_BOOL, 0, 0, NULL, 0, 0, NULL, 0, "flag"},
    {"kind", HONE_OPT_STRING, 0, 0, "a", 0, 0, "a|b", 0, "kind"},
    {0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    hone_node *plug = hone_node_new(HONE_NODE_TABLE);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        hone_node_set_path(root, line, eq + 1);
        hone_node_set_path(plug, line, eq + 1);
    }
    hone_registry *reg = hone_registry_new();
    hone_err err = {0};
    hone_config *cfg = NULL;
    if (hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == 0) {
        cJSON_Delete(hone_config_json(cfg));
        hone_config_free(cfg);
    }
    hone_opts *o = NULL;
    if (hone_opts_resolve(&o, opts, plug, "opt", "optimizer t", &err) == 0) hone_opts_free(o);
    hone_registry_free(reg);
    hone_node_free(root);
    hone_node_free(plug);
    free(text);
    return 0;
}
