/* cli.h — what the commands of core/cli/ share: exit codes, the error printer, the
 * context, --set, and one declarative argument parser.
 *
 * The CLI is a host of hone.h like any other: library code returns errors, and only
 * here are they printed (to stderr, "hone: ..."). */
#ifndef HONE_CLI_H
#define HONE_CLI_H

#include "hone/hone.h"

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 };

/* "hone: <message>" on stderr; returns code */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* the context with every plugin (HONE_PLUGIN_PATH too); an exit code on failure, printed */
int cli_ctx(hone_ctx **ctx);

/* --set key=value onto root, under prefix ("" or "scheduler.") */
int cli_add_set(hone_node *root, const char *kv, const char *prefix, hone_err *err);

/* ---- arguments ------------------------------------------------------------------- */

typedef enum {
    ARG_FLAG = 1,    /* int: 1 when given */
    ARG_STRING,      /* const char *: the value (choices: "a|b|c" limits it) */
    ARG_INT,         /* long long in [min, max] */
    ARG_NUMBER,      /* double in [min, max] */
    ARG_STRINGS,     /* arg_strings: every occurrence, in order */
} arg_type;

typedef struct arg_strings {
    const char **v;  /* [n]; the parser allocates it, the caller frees v */
    int n;
} arg_strings;

typedef struct arg_opt {
    const char *name;        /* "--out" */
    arg_type type;
    void *dest;
    double min, max;         /* ARG_INT / ARG_NUMBER */
    const char *choices;     /* ARG_STRING, or NULL for any */
    int *given;              /* set to 1 when it appears (NULL: not asked) */
} arg_opt;

/* Parses argv[1..argc) against opts (ended by a {0} entry): "--name value" and
 * "--name=value"; anything not starting with "--" is a positional, up to maxpos of them
 * into pos[]. Errors name the command and the argument (an unknown option with the
 * closest known one). */
int cli_parse(const char *cmd, int argc, char **argv, const arg_opt *opts, const char **pos, int maxpos,
              int *npos, hone_err *err);

/* ---- the commands (one cmd_*.c each) --------------------------------------------- */

int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
