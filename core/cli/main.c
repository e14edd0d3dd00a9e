/* main.c — the hone command: a table of commands and a dispatch. Each command lives in
 * its own cmd_*.c, parses its arguments with the one parser (args.c), and reaches the
 * library through hone.h like any other host. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cpu.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("hone %s (%s)\n", hone_version(), hone_git_revision());
    return 0;
}

/* every command: what `hone` and `hone COMMAND --help` print, and what runs it */
static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"run", cmd_run,
     "  run SCRIPT.lua [--set key=value ...] [--resume RUN_DIR|latest] [--dry-run]\n"
     "                                   run an experiment (--dry-run: check it and show the plan)\n"},
    {"plugins", cmd_plugins,
     "  plugins [KIND] [NAME]            list features, or one feature's options\n"
     "  plugins --check FILE.so          run the conformance round on every feature FILE registers\n"},
    {"schedule", cmd_schedule,
     "  schedule NAME --lr LR --steps N [--warmup-ratio R | --warmup-steps W] [--set k=v ...]\n"
     "                                   print \"step,lr\" rows: the lr of each optimizer step\n"},
    {"bench", cmd_bench,
     "  bench [--model-config JSON] [--batch B] [--seq T] [--steps N] [--r R] [--threads N] [--full]\n"
     "        [--checkpointing] [--dtype fp32|bf16]\n"
     "                                | bench --tokenizer PATH --text FILE [--threads N]\n"
     "                                | bench --quant nf4|fp4|none [--double-quant]\n"
     "                                | bench --optimizers [--params N]\n"
     "                                   training throughput against the sgemm ceiling\n"},
    {"generate", cmd_generate,
     "  generate MODEL_DIR [--adapter DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]\n"
     "        [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT ...]\n"
     "        [--quantizer nf4|fp4|int8|none [--double-quant]]\n"
     "                                   generate from a prompt (text, or token ids)\n"},
    {"tokenize", cmd_tokenize,
     "  tokenize --tokenizer PATH [--no-special] [--json] [--decode]\n"
     "                                   stdin lines -> JSON id lists (and back with --decode)\n"},
    {"quantize", cmd_quantize,
     "  quantize MODEL_DIR OUT_DIR --quantizer nf4|fp4 [--set double_quant=true]\n"
     "                                   write a bitsandbytes 4-bit checkpoint (loads with transformers)\n"},
    {"runs", cmd_runs, "  runs [DIR]                       the runs under DIR (default runs): status, steps, loss, best\n"},
    {"report", cmd_report, "  report DIR                       (re)draw DIR/report.html for a run or a sweep directory\n"},
    {"convert", cmd_convert,
     "  convert MODEL.gguf OUT_DIR       a llama.cpp GGUF (llama / mistral) into an HF model directory\n"
     "  convert BASE_DIR --adapter DIR OUT_DIR [--dtype bf16|f32]\n"
     "                                   a PEFT LoRA adapter merged into its base (merge_and_unload)\n"
     "  convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf [--type f16|q8_0]\n"
     "                                   a Llama / Mistral model (and adapter) as a llama.cpp GGUF\n"},
    {"eval", cmd_eval,
     "  eval SCRIPT.lua --adapter DIR [--out FILE] [--set k=v ...]\n"
     "                                   the experiment's evaluation on a checkpoint\n"},
    {"inspect", cmd_inspect,
     "  inspect SCRIPT.lua [--n N] [--split train|eval] [--set k=v ...]\n"
     "                                   N examples as the run would train them, trained tokens marked\n"},
    {"version", cmd_version, "  version                          print the version\n"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void print_usage(FILE *f)
{
    fputs("usage: hone COMMAND ...\n\n", f);
    for (int i = 0; i < NCOMMANDS; i++) fputs(commands[i].usage, f);
    fputs("\n`hone COMMAND --help` shows one command's usage.\n", f);
}

int main(int argc, char **argv)
{
    char why[256];
    if (hone_cpu_check(why, sizeof why) != 0) return fail(EXIT_RUN_FAILED, "%s", why);
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_INPUT : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (int i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage:\n%s", commands[i].usage);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "hone: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return EXIT_BAD_INPUT;
}
