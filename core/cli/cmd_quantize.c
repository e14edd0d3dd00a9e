/* cmd_quantize.c — `hone quantize MODEL_DIR OUT_DIR --quantizer nf4|fp4`: a bitsandbytes
 * 4-bit checkpoint that transformers loads as its own. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "model_config.h"
#include "options.h"
#include "bnb4_save.h"
#include "registry.h"

int cmd_quantize(int argc, char **argv)
{
    const char *usage = "usage: hone quantize MODEL_DIR OUT_DIR --quantizer nf4|fp4 [--set key=value ...]";
    const char *pos[2], *qname = NULL;
    int npos = 0;
    arg_strings sets = {0};
    const arg_opt opts[] = {
        {.name = "--quantizer", .type = ARG_STRING, .dest = &qname},
        {.name = "--set", .type = ARG_STRINGS, .dest = &sets},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("quantize", argc, argv, opts, pos, 2, &npos, &err) || npos != 2) {
        free(sets.v);
        return fail(EXIT_BAD_INPUT, "%s%s%s", err.msg, err.msg[0] ? "\n" : "", usage);
    }
    const char *src = pos[0], *dst = pos[1];
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    for (int i = 0; i < sets.n; i++)
        if (cli_add_set(root, sets.v[i], "", &err)) {
            free(sets.v);
            hone_node_free(root);
            return fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
        }
    free(sets.v);
    if (!qname) {
        hone_node_free(root);
        return fail(EXIT_BAD_INPUT, "%s", usage);
    }
    hone_ctx *ctx = NULL;
    int rc = cli_ctx(&ctx);
    hone_opts *qo = NULL;
    hone_model *m = NULL;
    hone_model_config mc;
    const hone_feature *q = rc ? NULL : hone_registry_find(hone_ctx_registry(ctx), HONE_KIND_QUANTIZER, qname);
    if (!rc && !q) rc = fail(EXIT_BAD_INPUT, "quantize: unknown quantizer '%s'", qname);
    char what[64];
    snprintf(what, sizeof what, "quantizer %s", qname);
    if (!rc && hone_opts_resolve(&qo, q->info->options, root, "--set", what, &err)) rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
    if (!rc && hone_model_config_load(&mc, src, &err)) rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
    if (!rc && mc.prequant[0])
        rc = fail(EXIT_BAD_INPUT, "quantize: %s is already a bitsandbytes %s checkpoint; quantize the original weights", src,
                  mc.prequant);
    /* never overwrite a checkpoint: a typo in OUT_DIR must not cost the user a model */
    char outst[4096];
    snprintf(outst, sizeof outst, "%s/model.safetensors", dst);
    if (!rc && access(outst, F_OK) == 0)
        rc = fail(EXIT_BAD_INPUT, "quantize: %s already exists; choose another OUT_DIR or remove it", outst);
    if (!rc) {
        hone_model_opts mo = {.quantizer = q, .quantizer_opts = qo, .lora = 1, .r = 1, .alpha = 1, .seed = 1, .batch = 1,
                              .seq = 1};
        if (hone_model_create(&m, &mc, src, &mo, &err) || hone_model_save_bnb4(m, src, dst, &err))
            rc = fail(EXIT_BAD_INPUT, "quantize: %s", err.msg);
        else {
            size_t pb, fb, qb, ab;
            hone_model_memory(m, &pb, &fb, &qb, &ab);
            printf("%s -> %s: bitsandbytes %s checkpoint, base %.1f MB\n", src, dst, qname, qb / 1e6);
        }
    }
    hone_model_free(m);
    hone_opts_free(qo);
    hone_node_free(root);
    hone_ctx_free(ctx);
    return rc;
}
