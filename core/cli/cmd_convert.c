/* cmd_convert.c — `hone convert`: a llama.cpp GGUF into an HF model directory, a PEFT
 * adapter merged into its base, or a model (and adapter) written as a GGUF. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "convert.h"
#include "export_gguf.h"
#include "gguf.h"
#include "merge.h"
#include "util.h"

int cmd_convert(int argc, char **argv)
{
    static const char usage[] = "usage: hone convert MODEL.gguf OUT_DIR\n"
                                "       hone convert BASE_DIR --adapter DIR OUT_DIR [--dtype bf16|f32]\n"
                                "       hone convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf [--type f16|q8_0]";
    const char *pos[2] = {NULL, NULL}, *adapter = NULL, *dtype = NULL, *to = NULL, *qtype = NULL;
    int npos = 0;
    const arg_opt opts[] = {
        {.name = "--adapter", .type = ARG_STRING, .dest = &adapter},
        {.name = "--dtype", .type = ARG_STRING, .dest = &dtype},
        {.name = "--to", .type = ARG_STRING, .dest = &to},
        {.name = "--type", .type = ARG_STRING, .dest = &qtype},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("convert", argc, argv, opts, pos, 2, &npos, &err)) return fail(EXIT_BAD_INPUT, "%s\n%s", err.msg, usage);
    if (npos != 2) return fail(EXIT_BAD_INPUT, "%s", usage);
    if (to && strcmp(to, "gguf")) return fail(EXIT_BAD_INPUT, "convert: --to %s: only gguf", to);
    if (qtype && !to) return fail(EXIT_BAD_INPUT, "convert: --type goes with --to gguf\n%s", usage);
    if (to) {
        uint32_t t = HONE_GGML_F16;
        if (qtype && !strcmp(qtype, "q8_0")) t = HONE_GGML_Q8_0;
        else if (qtype && strcmp(qtype, "f16")) return fail(EXIT_BAD_INPUT, "convert: --type %s: f16 or q8_0", qtype);
        if (dtype) return fail(EXIT_BAD_INPUT, "convert: --dtype is for safetensors output; GGUF takes --type");
        if (!hone_is_dir(pos[0])) return fail(EXIT_BAD_INPUT, "convert: %s: not a model directory", pos[0]);
        if (adapter && !hone_is_dir(adapter)) return fail(EXIT_BAD_INPUT, "convert: --adapter %s: not a directory", adapter);
        hone_export_info xi;
        if (hone_export_gguf(pos[0], adapter, pos[1], t, &xi, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
        printf("%s%s%s -> %s: %zu tensors, %zu parameters, matrices in %s, norms in F32", pos[0], adapter ? " + " : "",
               adapter ? adapter : "", pos[1], xi.tensors, xi.params, t == HONE_GGML_F16 ? "F16" : "Q8_0");
        if (adapter) printf(" (%zu merged, scaling %g)", xi.merged, (double)xi.scale);
        printf("\n");
        return 0;
    }
    if (adapter) {
        hone_dtype dt = HONE_DT_BF16;
        if (dtype && !strcmp(dtype, "f32")) dt = HONE_DT_F32;
        else if (dtype && strcmp(dtype, "bf16")) return fail(EXIT_BAD_INPUT, "convert: --dtype %s: bf16 or f32", dtype);
        if (!hone_is_dir(pos[0])) return fail(EXIT_BAD_INPUT, "convert: %s: not a model directory", pos[0]);
        if (!hone_is_dir(adapter)) return fail(EXIT_BAD_INPUT, "convert: --adapter %s: not a directory", adapter);
        hone_merge_info mi;
        if (hone_merge_adapter(pos[0], adapter, pos[1], dt, &mi, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
        printf("%s + %s -> %s: %zu tensors (%zu merged, scaling %g), %zu parameters in %s; config.json and the "
               "tokenizer files copied\n", pos[0], adapter, pos[1], mi.tensors, mi.merged, (double)mi.scale, mi.params,
               dt == HONE_DT_BF16 ? "bf16" : "f32");
        return 0;
    }
    if (dtype) return fail(EXIT_BAD_INPUT, "convert: --dtype goes with --adapter\n%s", usage);
    hone_convert_info info;
    if (hone_convert_gguf(pos[0], pos[1], &info, &err)) return fail(EXIT_RUN_FAILED, "convert: %s", err.msg);
    printf("%s -> %s: %zu tensors, %zu parameters (%zu dequantized to fp32); config.json, generation_config.json, "
           "model.safetensors\n", pos[0], pos[1], info.tensors, info.params, info.dequantized);
    if (info.tokenizer_written)
        printf("tokenizer: rebuilt from the GGUF's %s vocabulary as tokenizer.json + tokenizer_config.json\n",
               info.tokenizer);
    else if (info.tokenizer[0])
        printf("tokenizer: the GGUF's \"%s\" vocabulary is not converted yet: copy the model's tokenizer.json and "
               "tokenizer_config.json into %s, or set model.tokenizer\n", info.tokenizer, pos[1]);
    return 0;
}
