/* cmd_generate.c — `hone generate MODEL_DIR`: text (or token ids) from a prompt, with
 * an adapter, a quantized base, sampling and stop strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "model_config.h"
#include "options.h"
#include "registry.h"
#include "tokenizer.h"
#include "util.h"

/* r, alpha, rslora and target modules of a PEFT adapter dir */
static int adapter_settings(const char *dir, hone_model_opts *mo, hone_err *err)
{
    hone_adapter_config ac;
    int rc = hone_adapter_config_read(dir, &ac, err);
    if (!rc) mo->r = ac.r, mo->alpha = ac.alpha, mo->rslora = ac.rslora, mo->targets = ac.targets;
    return rc;
}

typedef struct stop_ctx {
    hone_tokenizer *tok;
    char **stops;
    int nstops;
    tok_buf text;
} stop_ctx;

/* a stop string anywhere in the decoded continuation ends it */
static int stop_strings(void *vctx, int seq, const int32_t *ids, int n)
{
    (void)seq;
    stop_ctx *c = vctx;
    hone_err err = {0};
    if (hone_tokenizer_decode(c->tok, ids, (size_t)n, 1, &c->text, &err)) return 0;
    for (int i = 0; i < c->nstops; i++)
        if (strstr(c->text.s, c->stops[i])) return 1;
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    const char *usage = "usage: hone generate MODEL_DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) "
                        "[--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT ...] "
                        "[--quantizer nf4|fp4|int8|none [--double-quant]]";
    const char *dir = NULL, *adapter = NULL, *ids_text = NULL, *prompt = NULL, *qname = NULL;
    int qdouble = 0, npos = 0;
    long long max_new = 32, top_k = 0, seed = 42;
    double temperature = 0, top_p = 1;
    arg_strings stop_args = {0};
    const arg_opt opts[] = {
        {.name = "--adapter", .type = ARG_STRING, .dest = &adapter},
        {.name = "--quantizer", .type = ARG_STRING, .dest = &qname},
        {.name = "--double-quant", .type = ARG_FLAG, .dest = &qdouble},
        {.name = "--stop", .type = ARG_STRINGS, .dest = &stop_args},
        {.name = "--ids", .type = ARG_STRING, .dest = &ids_text},
        {.name = "--prompt", .type = ARG_STRING, .dest = &prompt},
        {.name = "--max-new-tokens", .type = ARG_INT, .dest = &max_new, .min = 1, .max = 1 << 20},
        {.name = "--top-k", .type = ARG_INT, .dest = &top_k, .min = 0, .max = 1e15},
        {.name = "--seed", .type = ARG_INT, .dest = &seed, .min = 0, .max = 1e18},
        {.name = "--temperature", .type = ARG_NUMBER, .dest = &temperature, .min = 0, .max = 1e300},
        {.name = "--top-p", .type = ARG_NUMBER, .dest = &top_p, .min = 0, .max = 1},
        {0},
    };
    hone_err perr = {0};
    int bad = cli_parse("generate", argc, argv, opts, &dir, 1, &npos, &perr);
    if (bad || !npos || !(top_p > 0)) {
        free(stop_args.v);
        if (bad) return fail(EXIT_BAD_INPUT, "%s\n%s", perr.msg, usage);
        return fail(EXIT_BAD_INPUT, "%s", npos ? "generate: --top-p must be in (0, 1]" : usage);
    }
    /* empty stop strings stop nothing */
    char **stops = calloc((size_t)stop_args.n + 1, sizeof *stops);
    int nstops = 0;
    for (int i = 0; stops && i < stop_args.n; i++)
        if (*stop_args.v[i]) stops[nstops++] = (char *)stop_args.v[i];
    free(stop_args.v);
    if (!stops) return fail(EXIT_RUN_FAILED, "out of memory");
    hone_gen_opts go = {.max_new_tokens = (int)max_new, .temperature = temperature, .top_k = (int)top_k,
                        .top_p = top_p, .seed = (uint64_t)seed};
    if (!ids_text == !prompt) {
        free(stops);
        return fail(EXIT_BAD_INPUT, "generate: give --prompt TEXT or --ids 1,2,3\n%s", usage);
    }
    hone_err err = {0};
    hone_value val = {0};
    hone_tokenizer *tok = NULL;
    tok_ids pids = {0};
    size_t n = 0;
    if (prompt || nstops) {
        /* the model dir's tokenizer: the prompt goes in with its BOS, as transformers does */
        if (hone_tokenizer_load(&tok, dir, &err) || (prompt && hone_tokenizer_encode(tok, prompt, strlen(prompt), 1, &pids, &err))) {
            hone_tokenizer_free(tok);
            free(pids.v);
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
        }
        n = pids.n;
    }
    if (ids_text) {
        hone_option ids_def = {"ids", HONE_OPT_NUMLIST, 0, 0, NULL, 0, 0, NULL, 0, "ids"};
        hone_node tmp = {.type = HONE_NODE_STRING, .str = (char *)ids_text, .from_cli = 1};
        if (hone_value_from_node(&val, &ids_def, &tmp, "--ids", &err) || val.n == 0) {
            hone_value_clear(&val);
            hone_tokenizer_free(tok);
            free(stops);
            return fail(EXIT_BAD_INPUT, "generate: --ids: expected token ids separated by commas");
        }
        n = val.n;
    }
    if (n == 0) {
        hone_tokenizer_free(tok);
        free(pids.v);
        free(stops);
        return fail(EXIT_BAD_INPUT, "generate: the prompt is empty");
    }
    int32_t *ids = malloc(n * sizeof *ids), *out = malloc((size_t)go.max_new_tokens * sizeof *out);
    for (size_t i = 0; ids && i < n; i++) ids[i] = ids_text ? (int32_t)val.list[i] : pids.v[i];
    stop_ctx sc = {tok, stops, nstops, {0}};
    if (nstops) {
        go.stop = stop_strings;
        go.stop_ctx = &sc;
    }
    hone_ctx *ctx = NULL;
    int rc = cli_ctx(&ctx);
    hone_opts *qo = NULL;
    hone_model *m = NULL;
    hone_model_config mc;
    if (!rc && (!ids || !out)) rc = fail(EXIT_RUN_FAILED, "out of memory");
    if (!rc && hone_model_config_load(&mc, dir, &err)) rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
    /* like from_pretrained, a bitsandbytes checkpoint loads with its own quantization */
    if (!rc && !qname && mc.prequant[0]) {
        qname = mc.prequant;
        qdouble = mc.prequant_double;
    }
    if (!qname) qname = "none";
    const hone_feature *q = rc ? NULL : hone_registry_find(hone_ctx_registry(ctx), HONE_KIND_QUANTIZER, qname);
    hone_node *qn = hone_node_new(HONE_NODE_TABLE);
    if (qdouble) hone_node_set_path(qn, "double_quant", "true");
    if (!rc && !q) rc = fail(EXIT_BAD_INPUT, "generate: --quantizer %s is not registered", qname);
    if (!rc && hone_opts_resolve(&qo, q->info->options, qn, "quantizer", qname, &err))
        rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
    hone_node_free(qn);
    if (!rc) {
        hone_model_opts mo = {.quantizer = q, .quantizer_opts = qo, .lora = 1, .r = 1, .alpha = 1, .seed = 1, .batch = 1,
                              .seq = (int)n < mc.max_pos ? (int)n : mc.max_pos};
        if (mc.eos_id >= 0) {
            go.eos = &mc.eos_id;
            go.neos = 1;
        }
        int len = (int)n, got = 0;
        const int32_t *prompts[1] = {ids};
        if ((adapter && adapter_settings(adapter, &mo, &err)) || hone_model_create(&m, &mc, dir, &mo, &err) ||
            (adapter && hone_model_load_adapter(m, adapter, &err)) ||
            hone_model_generate(m, prompts, &len, 1, &go, &out, &got, &err))
            rc = fail(EXIT_BAD_INPUT, "generate: %s", err.msg);
        else if (prompt) {
            tok_buf text = {0};
            if (hone_tokenizer_decode(tok, out, (size_t)got, 1, &text, &err)) rc = fail(EXIT_RUN_FAILED, "generate: %s", err.msg);
            else {
                /* a stop string ends the text where it begins */
                for (int k = 0; k < nstops; k++) {
                    char *at = strstr(text.s, stops[k]);
                    if (at) text.n = (size_t)(at - text.s), *at = '\0';
                }
                fwrite(text.s, 1, text.n, stdout);
                putchar('\n');
            }
            free(text.s);
        } else {
            printf("[");
            for (int i = 0; i < got; i++) printf("%s%d", i ? ", " : "", out[i]);
            printf("]\n");
        }
    }
    hone_model_free(m);
    hone_opts_free(qo);
    hone_value_clear(&val);
    hone_tokenizer_free(tok);
    free(pids.v);
    free(sc.text.s);
    free(stops);
    free(ids);
    free(out);
    hone_ctx_free(ctx);
    return rc;
}
