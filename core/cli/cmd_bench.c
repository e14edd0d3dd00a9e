/* cmd_bench.c — `hone bench`: training throughput of a synthetic model against the
 * sgemm ceiling, and the tokenizer, quantizer and optimizer benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "model_config.h"
#include "options.h"
#include "registry.h"
#include "util.h"

/* --quant: a quantizer's round trip */
static int bench_quant(const char *quant, int dq)
{
    hone_ctx *ctx = NULL;
    hone_err err = {0};
    int rc = cli_ctx(&ctx);
    if (rc) return rc;
    const hone_feature *q = hone_registry_find(hone_ctx_registry(ctx), HONE_KIND_QUANTIZER, quant);
    hone_node *n = hone_node_new(HONE_NODE_TABLE);
    if (dq) hone_node_set_path(n, "double_quant", "true");
    hone_opts *qo = NULL;
    if (!q) rc = fail(EXIT_BAD_INPUT, "bench: unknown quantizer '%s'", quant);
    else if (hone_opts_resolve(&qo, q->info->options, n, "quantizer", quant, &err) || hone_bench_quant(q, qo, 0, &err))
        rc = fail(EXIT_RUN_FAILED, "bench: %s", err.msg);
    hone_node_free(n);
    hone_opts_free(qo);
    hone_ctx_free(ctx);
    return rc;
}

/* the training step of a synthetic model with an unquantized base */
static int bench_model(hone_bench_opts *o)
{
    hone_ctx *ctx = NULL;
    hone_err err = {0};
    int rc = cli_ctx(&ctx);
    if (rc) return rc;
    if (o->seq > o->cfg.max_pos) o->cfg.max_pos = o->seq;
    const hone_feature *q = hone_registry_find(hone_ctx_registry(ctx), HONE_KIND_QUANTIZER, "none");
    hone_opts *qo = NULL;
    if (!q || hone_opts_resolve(&qo, q->info->options, NULL, "quantizer", "quantizer none", &err)) {
        hone_ctx_free(ctx);
        return fail(EXIT_RUN_FAILED, "bench: the \"none\" quantizer is not registered");
    }
    o->quantizer = q;
    o->quantizer_opts = qo;
    rc = hone_bench_run(o, &err);
    hone_opts_free(qo);
    hone_ctx_free(ctx);
    return rc ? fail(EXIT_RUN_FAILED, "bench: %s", err.msg) : 0;
}

int cmd_bench(int argc, char **argv)
{
    hone_bench_opts o;
    hone_bench_defaults(&o);
    hone_err err = {0};
    const char *tok = NULL, *text = NULL, *quant = NULL, *model_config = NULL, *dtype = "fp32";
    int dq = 0, optim = 0, npos = 0, have_threads = 0;
    long long params = 16 << 20, batch = o.batch, seq = o.seq, steps = o.steps, r = o.r, threads = 1;
    const arg_opt opts[] = {
        {.name = "--model-config", .type = ARG_STRING, .dest = &model_config},
        {.name = "--batch", .type = ARG_INT, .dest = &batch, .min = 1, .max = 1 << 20},
        {.name = "--seq", .type = ARG_INT, .dest = &seq, .min = 1, .max = 1 << 20},
        {.name = "--steps", .type = ARG_INT, .dest = &steps, .min = 1, .max = 1 << 20},
        {.name = "--r", .type = ARG_INT, .dest = &r, .min = 1, .max = 1 << 20},
        {.name = "--threads", .type = ARG_INT, .dest = &threads, .min = 1, .max = 1 << 20, .given = &have_threads},
        {.name = "--full", .type = ARG_FLAG, .dest = &o.full},
        {.name = "--checkpointing", .type = ARG_FLAG, .dest = &o.checkpointing},
        {.name = "--dtype", .type = ARG_STRING, .dest = &dtype, .choices = "fp32|bf16"},
        {.name = "--tokenizer", .type = ARG_STRING, .dest = &tok},
        {.name = "--text", .type = ARG_STRING, .dest = &text},
        {.name = "--quant", .type = ARG_STRING, .dest = &quant},
        {.name = "--double-quant", .type = ARG_FLAG, .dest = &dq},
        {.name = "--optimizers", .type = ARG_FLAG, .dest = &optim},
        {.name = "--params", .type = ARG_INT, .dest = &params, .min = 4096, .max = (double)(1LL << 32)},
        {0},
    };
    if (cli_parse("bench", argc, argv, opts, NULL, 0, &npos, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    if (optim) {
        hone_ctx *ctx = NULL;
        int rc = cli_ctx(&ctx);
        if (rc) return rc;
        if (hone_bench_optimizers(hone_ctx_registry(ctx), (size_t)params, 5, &err))
            rc = fail(EXIT_RUN_FAILED, "bench: %s", err.msg);
        hone_ctx_free(ctx);
        return rc;
    }
    if (quant) return bench_quant(quant, dq);
    if (tok || text) {
        if (threads > 256) return fail(EXIT_BAD_INPUT, "bench: --threads %lld: expected 1..256", threads);
        if (!tok || !text) return fail(EXIT_BAD_INPUT, "bench: --tokenizer PATH and --text FILE go together");
        return hone_bench_tokenizer(tok, text, (int)threads, &err) ? fail(EXIT_BAD_INPUT, "bench: %s", err.msg) : 0;
    }
    if (model_config) {
        char *json = NULL;
        int rc = hone_read_file(model_config, &json, NULL, &err) || hone_model_config_parse(&o.cfg, json, model_config, &err);
        free(json);
        if (rc) return fail(EXIT_BAD_INPUT, "bench: %s", err.msg);
    }
    o.batch = (int)batch, o.seq = (int)seq, o.steps = (int)steps, o.r = (int)r;
    if (have_threads) o.threads = (int)threads;
    o.bf16 = !strcmp(dtype, "bf16");
    return bench_model(&o);
}
