/* cmd_tokenize.c — `hone tokenize`: stdin lines to JSON id lists with a tokenizer.json
 * (and back with --decode), as the tokenizers package gives them. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"
#include "util.h"

static void print_json_string(const char *s, size_t n)
{
    cJSON *j = cJSON_CreateString("");
    char *copy = hone_strndup(s, n);
    if (j && copy) {
        cJSON_SetValuestring(j, copy);
        char *text = cJSON_PrintUnformatted(j);
        if (text) fputs(text, stdout);
        free(text);
    }
    free(copy);
    cJSON_Delete(j);
}

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL, *usage = "usage: hone tokenize --tokenizer PATH [--no-special] [--json] [--decode]";
    int no_special = 0, json = 0, decode = 0, npos = 0;
    const arg_opt opts[] = {
        {.name = "--tokenizer", .type = ARG_STRING, .dest = &path},
        {.name = "--no-special", .type = ARG_FLAG, .dest = &no_special},
        {.name = "--json", .type = ARG_FLAG, .dest = &json},
        {.name = "--decode", .type = ARG_FLAG, .dest = &decode},
        {0},
    };
    hone_err err = {0};
    if (cli_parse("tokenize", argc, argv, opts, NULL, 0, &npos, &err)) return fail(EXIT_BAD_INPUT, "%s\n%s", err.msg, usage);
    if (!path) return fail(EXIT_BAD_INPUT, "%s", usage);
    int special = !no_special;
    hone_tokenizer *t = NULL;
    if (hone_tokenizer_load(&t, path, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    tok_ids ids = {0};
    tok_buf text = {0};
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        cJSON *j = NULL;
        const char *s = line;
        size_t n = (size_t)len;
        if (json || decode) {
            j = cJSON_ParseWithLength(line, (size_t)len);
            if (decode ? !cJSON_IsArray(j) : !cJSON_IsString(j)) {
                cJSON_Delete(j);
                rc = fail(EXIT_BAD_INPUT, "stdin:%ld: expected %s", lineno, decode ? "a JSON list of ids" : "a JSON string");
                break;
            }
            if (!decode) s = j->valuestring, n = strlen(j->valuestring);
        }
        if (decode) {
            ids.n = 0;
            for (const cJSON *e = j->child; e && !rc; e = e->next)
                if (!cJSON_IsNumber(e) || tok_ids_push(&ids, (int32_t)e->valuedouble))
                    rc = fail(EXIT_BAD_INPUT, "stdin:%ld: ids must be numbers", lineno);
            if (!rc && hone_tokenizer_decode(t, ids.v, ids.n, !special, &text, &err))
                rc = fail(EXIT_BAD_INPUT, "stdin:%ld: %s", lineno, err.msg);
            if (!rc) {
                if (json) print_json_string(text.s, text.n);
                else fwrite(text.s, 1, text.n, stdout);
                putchar('\n');
            }
        } else {
            ids.n = 0;
            if (hone_tokenizer_encode(t, s, n, special, &ids, &err)) rc = fail(EXIT_RUN_FAILED, "stdin:%ld: %s", lineno, err.msg);
            else {
                putchar('[');
                for (size_t i = 0; i < ids.n; i++) printf(i ? ", %d" : "%d", ids.v[i]);
                puts("]");
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    free(ids.v);
    free(text.s);
    hone_tokenizer_free(t);
    return rc;
}
