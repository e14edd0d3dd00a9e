/* args.c — the CLI's one argument parser: each command declares its options as a table
 * (name, type, destination, range, choices) and gets the same handling of values,
 * ranges and mistakes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "util.h"

/* "an integer >= 1", "a number in [0, 1]" */
static void range_text(const arg_opt *o, const char *what, char *out, size_t n)
{
    if (o->min > o->max) snprintf(out, n, "%s", what);
    else if (o->max >= 1e15) snprintf(out, n, "%s >= %.17g", what, o->min);
    else snprintf(out, n, "%s in [%.17g, %.17g]", what, o->min, o->max);
}

static int set_value(const char *cmd, const arg_opt *o, const char *v, hone_err *err)
{
    char range[96];
    long long i;
    double d;
    switch (o->type) {
    case ARG_STRING:
        if (o->choices) {
            size_t n = strlen(v);
            const char *c = o->choices, *hit = NULL;
            while (c && !hit) {
                const char *bar = strchr(c, '|');
                size_t len = bar ? (size_t)(bar - c) : strlen(c);
                if (len == n && !strncmp(c, v, n)) hit = c;
                c = bar ? bar + 1 : NULL;
            }
            if (!hit) return hone_errf(err, HONE_EINVAL, "%s: %s %s: expected %s", cmd, o->name, v, o->choices);
        }
        *(const char **)o->dest = v;
        return 0;
    case ARG_INT:
        range_text(o, "an integer", range, sizeof range);
        if (hone_parse_ll(v, &i) || (o->min <= o->max && (i < o->min || i > o->max)))
            return hone_errf(err, HONE_EINVAL, "%s: %s %s: must be %s", cmd, o->name, v, range);
        *(long long *)o->dest = i;
        return 0;
    case ARG_NUMBER:
        range_text(o, "a number", range, sizeof range);
        if (hone_parse_double(v, &d) || !(o->min > o->max || (d >= o->min && d <= o->max)))
            return hone_errf(err, HONE_EINVAL, "%s: %s %s: must be %s", cmd, o->name, v, range);
        *(double *)o->dest = d;
        return 0;
    case ARG_STRINGS: {
        arg_strings *s = o->dest;
        s->v[s->n++] = v;
        return 0;
    }
    case ARG_FLAG:
        break;
    }
    return hone_errf(err, HONE_EINVAL, "%s: %s takes no value", cmd, o->name);
}

int cli_parse(const char *cmd, int argc, char **argv, const arg_opt *opts, const char **pos, int maxpos,
              int *npos, hone_err *err)
{
    *npos = 0;
    size_t nopts = 0;
    while (opts[nopts].name) nopts++;
    for (size_t k = 0; k < nopts; k++)
        if (opts[k].type == ARG_STRINGS && !((arg_strings *)opts[k].dest)->v) {
            arg_strings *s = opts[k].dest;
            if (!(s->v = calloc((size_t)argc + 1, sizeof *s->v))) return hone_errf(err, HONE_ENOMEM, "out of memory");
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            if (*npos == maxpos) return hone_errf(err, HONE_EINVAL, "%s: unexpected argument %s", cmd, a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const arg_opt *o = NULL;
        for (size_t k = 0; k < nopts && !o; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a, len)) o = &opts[k];
        if (!o) {
            const char *names[64];
            size_t n = 0;
            for (size_t k = 0; k < nopts && n < 64; k++) names[n++] = opts[k].name;
            char word[128];
            snprintf(word, sizeof word, "%.*s", (int)len, a);
            const char *near = hone_closest(word, names, n);
            return hone_errf(err, HONE_EINVAL, "%s: unknown option %s%s%s%s", cmd, word, near ? " (did you mean " : "",
                             near ? near : "", near ? "?)" : "");
        }
        if (o->given) *o->given = 1;
        if (o->type == ARG_FLAG) {
            if (eq) return hone_errf(err, HONE_EINVAL, "%s: %s takes no value", cmd, o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) return hone_errf(err, HONE_EINVAL, "%s: %s needs a value", cmd, o->name);
        int rc = set_value(cmd, o, v, err);
        if (rc) return rc;
    }
    return 0;
}
