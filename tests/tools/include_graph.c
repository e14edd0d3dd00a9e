/* include_graph.c — reads the #include "..." graph of a source tree and fails on what
 * would make the layers a label instead of a boundary:
 *   - a cycle between units (a.c includes b.h while b.c includes a.h: the two are one
 *     unit in disguise; a unit is x.c, x.h and x's private x_impl.h), printed as the
 *     path that closes it;
 *   - a cycle between folders (core/model uses core/data and core/data core/model);
 *   - an include a folder's rule forbids: plugins/ see only hone/plugin.h and
 *     plugins/common/, core/lua/ only hone/hone.h, hone/plugin.h and its own header,
 *     kernels/ only their own folder, and kernels/cpu/ops.h only core/backend/.
 * Usage: include_graph ROOT [DIR ...] (default DIRs: core kernels plugins). Exit 0 when
 * the graph is clean, 1 with every finding printed. */
#define _DEFAULT_SOURCE   /* scandir, alphasort */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_FILES = 4096, MAX_INC = 64, PATHN = 512 };

typedef struct file {
    char path[PATHN];            /* relative to ROOT: "core/model/model.c" */
    char unit[PATHN];            /* without the extension: "core/model/model" */
    char dir[PATHN];
    char inc[MAX_INC][PATHN];    /* the quoted includes as written */
    int ninc;
} file;

static file files[MAX_FILES];
static int nfiles, findings;

/* sorted, so findings come out in the same order on every machine */
static void scan(const char *root, const char *rel)
{
    char full[2 * PATHN];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    struct dirent **list = NULL;
    int nlist = scandir(full, &list, NULL, alphasort);
    for (int li = 0; li < nlist; li++) {
        struct dirent *e = list[li];
        if (e->d_name[0] == '.') continue;
        char sub[PATHN], path[2 * PATHN];
        snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
        snprintf(path, sizeof path, "%s/%s", root, sub);
        struct stat st;
        if (stat(path, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            scan(root, sub);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 3 || e->d_name[n - 2] != '.' || (e->d_name[n - 1] != 'c' && e->d_name[n - 1] != 'h')) continue;
        if (nfiles == MAX_FILES) {
            fprintf(stderr, "include_graph: more than %d files\n", MAX_FILES);
            exit(2);
        }
        file *f = &files[nfiles++];
        snprintf(f->path, sizeof f->path, "%s", sub);
        /* x.c, x.h and x_impl.h (x's private half, shared by the files that implement it)
         * are one unit */
        size_t sl = strlen(sub);
        sl -= sl > 7 && !strcmp(sub + sl - 7, "_impl.h") ? 7 : 2;
        snprintf(f->unit, sizeof f->unit, "%.*s", (int)sl, sub);
        snprintf(f->dir, sizeof f->dir, "%s", sub);
        *strrchr(f->dir, '/') = 0;
        FILE *in = fopen(path, "r");
        char line[1024];
        while (in && fgets(line, sizeof line, in)) {
            const char *p = line;
            while (*p == ' ' || *p == '\t') p++;
            if (*p++ != '#') continue;
            while (*p == ' ' || *p == '\t') p++;
            if (strncmp(p, "include", 7)) continue;
            const char *q = strchr(p, '"'), *r = q ? strchr(q + 1, '"') : NULL;
            if (!q || !r || f->ninc == MAX_INC) continue;
            snprintf(f->inc[f->ninc++], PATHN, "%.*s", (int)(r - q - 1), q + 1);
        }
        if (in) fclose(in);
    }
    for (int li = 0; li < nlist; li++) free(list[li]);
    free(list);
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* the file an include names: "hone/plugin.h" as written from core/include, else the
 * header of that name in the including file's folder, else the only one in the tree */
static int resolve(const file *from, const char *inc)
{
    int hit = -1;
    for (int i = 0; i < nfiles; i++) {
        const char *p = files[i].path;
        size_t pl = strlen(p), il = strlen(inc);
        if (strchr(inc, '/')) {
            if (pl >= il && !strcmp(p + pl - il, inc) && (pl == il || p[pl - il - 1] == '/')) return i;
            continue;
        }
        if (strcmp(base(p), inc)) continue;
        if (!strcmp(files[i].dir, from->dir)) return i;
        hit = hit < 0 ? i : hit;
    }
    return hit;
}

/* ---- cycles, by depth-first search over units or folders ---------------------------- */

static char nodes[MAX_FILES][PATHN];
static int nnodes;
static unsigned char *adj;     /* [nnodes, nnodes] */
static int color[MAX_FILES], parent[MAX_FILES];

static int node(const char *name)
{
    for (int i = 0; i < nnodes; i++)
        if (!strcmp(nodes[i], name)) return i;
    snprintf(nodes[nnodes], PATHN, "%s", name);
    return nnodes++;
}

static void report_cycle(const char *what, int from, int to)
{
    printf("cycle between %s: %s", what, nodes[to]);
    int path[MAX_FILES], n = 0;
    for (int v = from; v != to && n < MAX_FILES; v = parent[v]) path[n++] = v;
    for (int k = n - 1; k >= 0; k--) printf(" -> %s", nodes[path[k]]);
    printf(" -> %s\n", nodes[to]);
    findings++;
}

static void dfs(const char *what, int v)
{
    color[v] = 1;
    for (int w = 0; w < nnodes; w++) {
        if (!adj[(size_t)v * nnodes + w]) continue;
        if (color[w] == 1) report_cycle(what, v, w);
        else if (color[w] == 0) {
            parent[w] = v;
            dfs(what, w);
        }
    }
    color[v] = 2;
}

static void cycles(const char *what, int by_dir)
{
    nnodes = 0;
    for (int i = 0; i < nfiles; i++) node(by_dir ? files[i].dir : files[i].unit);
    adj = calloc((size_t)nnodes * nnodes, 1);
    if (!adj) exit(2);
    for (int i = 0; i < nfiles; i++)
        for (int k = 0; k < files[i].ninc; k++) {
            int t = resolve(&files[i], files[i].inc[k]);
            if (t < 0) continue;   /* a generated or system header */
            int a = node(by_dir ? files[i].dir : files[i].unit), b = node(by_dir ? files[t].dir : files[t].unit);
            if (a != b) adj[(size_t)a * nnodes + b] = 1;
        }
    memset(color, 0, sizeof color);
    for (int v = 0; v < nnodes; v++)
        if (!color[v]) dfs(what, v);
    free(adj);
}

/* ---- the folders' own rules ------------------------------------------------------- */

static int starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static void rules(void)
{
    for (int i = 0; i < nfiles; i++) {
        const file *f = &files[i];
        for (int k = 0; k < f->ninc; k++) {
            int t = resolve(f, f->inc[k]);
            const char *to = t < 0 ? f->inc[k] : files[t].path, *why = NULL;
            if (starts(f->path, "plugins/") && strcmp(to, "core/include/hone/plugin.h") && !starts(to, "plugins/common/") &&
                strcmp(files[t < 0 ? i : t].dir, f->dir))
                why = "a plugin sees hone/plugin.h and plugins/common/ only";
            else if (starts(f->path, "core/lua/") && strcmp(to, "core/include/hone/hone.h") &&
                     strcmp(to, "core/include/hone/plugin.h") && !starts(to, "core/lua/"))
                why = "the Lua binding is written over hone/hone.h and hone/plugin.h only";
            else if (starts(f->path, "kernels/") && t >= 0 && strcmp(files[t].dir, f->dir))
                why = "kernels know nothing of hone beyond their folder";
            else if (!strcmp(to, "kernels/cpu/ops.h") && !starts(f->path, "core/backend/") &&
                     !starts(f->path, "kernels/"))
                why = "the CPU kernels are reached through the backend table (core/backend/) only";
            if (why) {
                printf("%s includes \"%s\": %s\n", f->path, f->inc[k], why);
                findings++;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: include_graph ROOT [DIR ...]\n");
        return 2;
    }
    static const char *const dflt[] = {"core", "kernels", "plugins"};
    int ndirs = argc > 2 ? argc - 2 : 3;
    for (int d = 0; d < ndirs; d++) scan(argv[1], argc > 2 ? argv[2 + d] : dflt[d]);
    cycles("units", 0);
    cycles("folders", 1);
    rules();
    printf("include graph: %d files, %d finding%s\n", nfiles, findings, findings == 1 ? "" : "s");
    return findings != 0;
}
