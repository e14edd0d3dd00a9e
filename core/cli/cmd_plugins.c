/* cmd_plugins.c — `hone plugins [KIND] [NAME]`: the registered features, or one
 * feature's options with their types, defaults, ranges and help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "plugin_check.h"
#include "registry.h"

static void print_options(const hone_option *defs)
{
    size_t n = hone_options_count(defs);
    if (n == 0) {
        printf("options: none\n");
        return;
    }
    int wn = 4, wt = 4, wd = 7, wr = 5;
    char def[64], range[96];
    for (size_t i = 0; i < n; i++) {
        hone_option_default_text(&defs[i], def, sizeof def);
        hone_option_range(&defs[i], range, sizeof range);
        if ((int)strlen(defs[i].name) > wn) wn = (int)strlen(defs[i].name);
        if ((int)strlen(hone_opt_type_name(defs[i].type)) > wt) wt = (int)strlen(hone_opt_type_name(defs[i].type));
        if ((int)strlen(def) > wd) wd = (int)strlen(def);
        if ((int)strlen(range) > wr) wr = (int)strlen(range);
    }
    printf("options:\n  %-*s  %-*s  %-*s  %-*s  %s\n", wn, "name", wt, "type", wd, "default", wr, "range", "help");
    for (size_t i = 0; i < n; i++) {
        hone_option_default_text(&defs[i], def, sizeof def);
        hone_option_range(&defs[i], range, sizeof range);
        printf("  %-*s  %-*s  %-*s  %-*s  %s\n", wn, defs[i].name, wt, hone_opt_type_name(defs[i].type), wd, def,
               wr, range, defs[i].help);
    }
}

/* hone plugins --check FILE.so: one line per step of the conformance round */
static void print_check(void *ctx, const hone_check_event *ev)
{
    (void)ctx;
    printf("%-4s  %s %s: %s%s%s\n", ev->ok ? "ok" : "FAIL", hone_kind_name(ev->kind), ev->feature, ev->step,
           ev->detail[0] ? ": " : "", ev->detail);
}

static int check_plugin(const char *path)
{
    hone_err err = {0};
    hone_check_counts n;
    if (hone_plugin_check(path, print_check, NULL, &n, &err)) return fail(EXIT_BAD_INPUT, "%s", err.msg);
    printf("%s: %d feature%s, %d steps passed, %d failed\n", path, n.features, n.features == 1 ? "" : "s", n.passed,
           n.failed);
    return n.failed ? EXIT_RUN_FAILED : 0;
}

int cmd_plugins(int argc, char **argv)
{
    hone_kind kind = HONE_KIND_COUNT;
    const char *name = NULL, *pos[2], *check = NULL;
    int npos = 0;
    hone_err err = {0};
    const arg_opt opts[] = {{.name = "--check", .type = ARG_STRING, .dest = &check}, {0}};
    if (cli_parse("plugins", argc, argv, opts, pos, 2, &npos, &err))
        return fail(EXIT_BAD_INPUT, "%s\nusage: hone plugins [KIND] [NAME] | --check FILE.so", err.msg);
    if (check) return npos ? fail(EXIT_BAD_INPUT, "usage: hone plugins --check FILE.so") : check_plugin(check);
    if (npos >= 1) {
        if (hone_kind_from_name(pos[0], &kind) != 0) {
            if (npos == 2)
                return fail(EXIT_BAD_INPUT, "unknown kind '%s' (optimizer, scheduler, collator, quantizer)", pos[0]);
            name = pos[0];
        } else if (npos == 2) {
            name = pos[1];
        }
    }
    hone_ctx *ctx = NULL;
    int rc = cli_ctx(&ctx);
    if (rc) return rc;
    const hone_registry *reg = hone_ctx_registry(ctx);
    size_t n = hone_registry_count(reg);
    if (name) {
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            const hone_feature *f = hone_registry_at(reg, i);
            if ((kind != HONE_KIND_COUNT && f->kind != kind) || strcmp(f->info->name, name) != 0) continue;
            printf("%s%s %s\n  %s\n  plugin: %s\n", found++ ? "\n" : "", hone_kind_name(f->kind), f->info->name,
                   f->info->summary, f->file);
            print_options(f->info->options);
        }
        if (!found) {
            char names[2048] = "";
            if (kind != HONE_KIND_COUNT) hone_registry_names(reg, kind, names, sizeof names);
            hone_ctx_free(ctx);
            if (kind != HONE_KIND_COUNT)
                return fail(EXIT_BAD_INPUT, "no %s named '%s' (registered: %s)", hone_kind_name(kind), name, names);
            return fail(EXIT_BAD_INPUT, "no feature named '%s' (`hone plugins` lists them)", name);
        }
        hone_ctx_free(ctx);
        return 0;
    }
    int wk = 4, wn = 4, wf = 6;
    for (size_t i = 0; i < n; i++) {
        const hone_feature *f = hone_registry_at(reg, i);
        if (kind != HONE_KIND_COUNT && f->kind != kind) continue;
        if ((int)strlen(hone_kind_name(f->kind)) > wk) wk = (int)strlen(hone_kind_name(f->kind));
        if ((int)strlen(f->info->name) > wn) wn = (int)strlen(f->info->name);
        const char *base = strrchr(f->file, '/');
        if ((int)strlen(base ? base + 1 : f->file) > wf) wf = (int)strlen(base ? base + 1 : f->file);
    }
    printf("%-*s  %-*s  %-*s  %s\n", wk, "kind", wn, "name", wf, "plugin", "summary");
    for (int k = 0; k < HONE_KIND_COUNT; k++) {
        if (kind != HONE_KIND_COUNT && k != (int)kind) continue;
        for (size_t i = 0; i < n; i++) {
            const hone_feature *f = hone_registry_at(reg, i);
            if ((int)f->kind != k) continue;
            const char *base = strrchr(f->file, '/');
            printf("%-*s  %-*s  %-*s  %s\n", wk, hone_kind_name(f->kind), wn, f->info->name, wf,
                   base ? base + 1 : f->file, f->info->summary);
        }
    }
    printf("\nplugin files:\n");
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        const hone_feature *f = hone_registry_at(reg, i);
        if (last && strcmp(last, f->file) == 0) continue;
        printf("  %s\n", f->file);
        last = f->file;
    }
    hone_ctx_free(ctx);
    return 0;
}
