/* test_optim.c — the optimizer plugins against torch, bitsandbytes and transformers
 * (fixtures from tests/reference/make_optim_fixtures.py): 20 steps on fixed gradients with
 * a moving lr, weight decay groups and global-norm clipping; parameters after step 20
 * within 1e-6 of the reference relative to the tensor's largest value (torch-exact
 * optimizers), 8-bit state codes and absmax equal; resume after step 10 in the same
 * process equal to the straight run bit for bit.
 *
 *   test_optim                      every case
 *   test_optim save CASE FILE       steps 1-10, then parameters and state to FILE
 *   test_optim resume CASE FILE     a fresh process: load FILE, steps 11-20, compare with
 *                                   steps 1-20 run here, bit for bit
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clip.h"
#include "err.h"
#include "optimize.h"
#include "options.h"
#include "registry.h"
#include "safetensors.h"
#include "hone/hone.h"
#include "util.h"

#define NT 3
#define STEPS 20
static const char *tnames[NT] = {"A", "B", "v"};
static hone_tensor_info tinfo[NT];
static float scale[NT] = {1.0f, 1e-3f, 0.05f};
static size_t nparams;

static void layout(const cJSON *meta)
{
    const cJSON *shapes = cJSON_GetObjectItem(meta, "shapes");
    size_t off = 0;
    for (int k = 0; k < NT; k++) {
        const cJSON *s = cJSON_GetObjectItem(shapes, tnames[k]);
        size_t rows = (size_t)cJSON_GetArrayItem(s, 0)->valueint;
        size_t cols = cJSON_GetArraySize(s) > 1 ? (size_t)cJSON_GetArrayItem(s, 1)->valueint : 1;
        int decay = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "decay"), tnames[k]));
        tinfo[k] = (hone_tensor_info){tnames[k], off, rows * cols, rows, cols, decay};
        off += rows * cols;
    }
    nparams = off;
}

/* the fixture script's grad(): a 32-bit hash per element, in float32 */
static void make_grads(float *g, long step)
{
    for (int k = 0; k < NT; k++) {
        for (size_t i = 0; i < tinfo[k].numel; i++) {
            uint64_t x = ((uint64_t)(i + 1) * 0x9E3779B1ull) ^ ((uint64_t)(step * 7919 + k + 1) * 0x85EBCA77ull);
            x &= 0xFFFFFFFFull;
            x ^= x >> 15;
            x = (x * 0x2C1B3C6Dull) & 0xFFFFFFFFull;
            x ^= x >> 12;
            float u = (float)((long)(x % 20001) - 10000) / 10000.0f;
            g[tinfo[k].offset + i] = (u + 0.2f) * scale[k];
        }
    }
}

typedef struct runner {
    const hone_optimizer_vt *vt;
    hone_opts *opts;
    void *state;
    double clip, lr0;
} runner;

static int runner_open(runner *r, hone_registry *reg, const cJSON *c, hone_err *err)
{
    memset(r, 0, sizeof *r);
    const char *name = cJSON_GetObjectItem(c, "optimizer")->valuestring;
    const hone_feature *f = hone_registry_find(reg, HONE_KIND_OPTIMIZER, name);
    if (!f) return hone_errf(err, HONE_EINVAL, "optimizer %s is not registered", name);
    r->vt = f->vtable;
    r->clip = cJSON_GetObjectItem(c, "clip")->valuedouble;
    r->lr0 = cJSON_GetObjectItem(c, "lr0")->valuedouble;
    hone_node *given = hone_node_new(HONE_NODE_TABLE);
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(c, "options"))
    {
        char text[256] = "";
        if (cJSON_IsBool(o)) snprintf(text, sizeof text, "%s", cJSON_IsTrue(o) ? "true" : "false");
        else if (cJSON_IsNumber(o)) snprintf(text, sizeof text, "%.17g", o->valuedouble);
        else if (cJSON_IsArray(o)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, o) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%.17g",
                                              *text ? "," : "", e->valuedouble);
        }
        hone_node_set_path(given, o->string, text);
    }
    int rc = hone_opts_resolve(&r->opts, f->info->options, given, "optimizer", name, err);
    hone_node_free(given);
    if (!rc) rc = r->vt->create(&hone_host_table, r->opts, tinfo, NT, nparams, &r->state, err);
    return rc;
}

static void runner_close(runner *r)
{
    if (r->vt) r->vt->destroy(r->state);
    hone_opts_free(r->opts);
    memset(r, 0, sizeof *r);
}

static int run_steps(runner *r, float *p, float *g, long from, long to, hone_err *err)
{
    for (long s = from; s <= to; s++) {
        make_grads(g, s);
        hone_clip_grad_norm(hone_backend_cpu(), g, tinfo, NT, r->clip);
        double lr = r->lr0 * (1.0 - (double)(s - 1) / 40.0);
        int rc = r->vt->step(r->state, p, g, lr, s, err);
        if (rc) return rc;
    }
    return 0;
}

static const cJSON *find_case(const cJSON *meta, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(meta, "cases"))
    if (!strcmp(cJSON_GetObjectItem(c, "name")->valuestring, name)) return c;
    return NULL;
}

static void load_init(hone_st_file *f, float *p)
{
    hone_err err = {0};
    char key[64];
    for (int k = 0; k < NT; k++) {
        snprintf(key, sizeof key, "init.%s", tnames[k]);
        const hone_st_tensor *t = hone_st_find(f, key);
        if (!t || hone_st_to_f32(f, t, p + tinfo[k].offset, 0, tinfo[k].numel, &err)) {
            CHECK(0, "fixture %s", key);
            exit(check_summary("optimizers"));   /* no parameters to step */
        }
    }
}

/* the 8-bit codes and absmax in the saved arena (layout in plugins/optimizers/adamw.c) */
static void check_codes(const char *cname, const hone_membuf *m, hone_st_file *f, size_t min8)
{
    size_t at = 16;
    for (int k = 0; k < NT; k++) {
        size_t n = tinfo[k].numel, nb = (n + 255) / 256;
        if (n < min8) {
            at += 2 * ((n * 4 + 63) & ~(size_t)63);
            continue;
        }
        size_t a64 = (nb * 4 + 63) & ~(size_t)63, n64 = (n + 63) & ~(size_t)63;
        const unsigned char *base = m->data + at;
        const void *mine[4] = {base + 2 * a64, base + 2 * a64 + n64, base, base + a64};
        const char *part[4] = {"c1", "c2", "a1", "a2"};
        size_t bytes[4] = {n, n, nb * 4, nb * 4};
        for (int q = 0; q < 4; q++) {
            char key[128];
            snprintf(key, sizeof key, "%s.%s.%s", cname, tnames[k], part[q]);
            const hone_st_tensor *t = hone_st_find(f, key);
            if (!CHECK(t, "missing fixture %s", key)) continue;
            /* the codes byte for byte, absmax as float32 bits */
            if (q < 2) check_equal_bytes(key, mine[q], t->data, bytes[q]);
            else check_equal_f32(key, mine[q], t->data, bytes[q] / 4);
        }
        at += 2 * a64 + 2 * n64;
    }
}

static int run_case(hone_registry *reg, hone_st_file *f, const cJSON *c)
{
    const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
    hone_err err = {0};
    runner r;
    float *p = malloc(nparams * 4), *g = malloc(nparams * 4), *p2 = malloc(nparams * 4);
    load_init(f, p);
    memcpy(p2, p, nparams * 4);
    int rc = runner_open(&r, reg, c, &err);
    if (!rc) rc = run_steps(&r, p, g, 1, STEPS, &err);
    if (rc) {
        CHECK(0, "%s: %s", cname, err.msg);
        runner_close(&r);
        free(p), free(g), free(p2);
        return 1;
    }
    /* against the reference */
    char key[128];
    snprintf(key, sizeof key, "%s.p20", cname);
    const hone_st_tensor *want = hone_st_find(f, key);
    const float *w = want ? want->data : NULL;
    double worst = 0, tol = 1e-6;
    size_t exact = 0;
    CHECK(w, "%s: fixture %s missing", cname, key);
    /* each tensor within tol of its largest reference value */
    for (int k = 0; k < NT && w; k++) {
        const float *pk = p + tinfo[k].offset, *wk = w + tinfo[k].offset;
        double big = check_max_abs(wk, tinfo[k].numel);
        char what[160];
        snprintf(what, sizeof what, "%s: %s after 20 steps vs the reference", cname, tnames[k]);
        check_close(what, pk, wk, tinfo[k].numel, tol * big, 0);
        worst = fmax(worst, check_last()->max_abs / big);
        exact += check_last()->equal;
    }
    printf("%-30s max |p - ref| / max |ref| = %.2e, %5.1f%% of values bit-identical\n", cname, worst,
           w ? 100.0 * exact / nparams : 0.0);

    hone_membuf m = {0};
    hone_writer wr = hone_membuf_writer(&m);
    if (strstr(cname, "8bit")) {
        r.vt->save(r.state, &wr, &err);
        const cJSON *mo = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "options"), "min_8bit_size");
        check_codes(cname, &m, f, mo ? (size_t)mo->valueint : 4096);
        m.len = 0;
    }
    runner_close(&r);

    /* resume in the same process: 10 steps, save, a fresh optimizer loads, 10 more */
    load_init(f, p2);
    rc = runner_open(&r, reg, c, &err);
    if (!rc) rc = run_steps(&r, p2, g, 1, 10, &err);
    if (!rc) rc = r.vt->save(r.state, &wr, &err);
    runner_close(&r);
    hone_reader rd = hone_membuf_reader(&m);
    if (!rc) rc = runner_open(&r, reg, c, &err);
    if (!rc) rc = r.vt->load(r.state, &rd, &err);
    if (!rc) rc = run_steps(&r, p2, g, 11, STEPS, &err);
    if (CHECK(!rc, "%s: resume: %s", cname, err.msg)) {
        char what[160];
        snprintf(what, sizeof what, "%s: steps 1-10 + resume + 11-20 vs steps 1-20", cname);
        check_equal_f32(what, p2, p, nparams);
    }
    /* a state of another size is refused with a message */
    if (!rc && m.len > 24) {
        m.pos = 0;
        uint64_t wrong = 12345;
        memcpy(m.data + 8, &wrong, 8);
        CHECK(!(r.vt->load(r.state, &rd, &err) == 0 || !strstr(err.msg, "12345")), "%s: a bad state was accepted (%s)",
              cname, err.msg);
    }
    runner_close(&r);
    free(m.data);
    free(p), free(g), free(p2);
    return 0;
}

/* save / resume across processes, through a file */
static void file_mode(hone_registry *reg, hone_st_file *f, const cJSON *meta, const char *mode, const char *cname,
                      const char *path)
{
    const cJSON *c = find_case(meta, cname);
    if (!CHECK(c, "no case %s", cname)) return;
    hone_err err = {0};
    runner r;
    float *p = malloc(nparams * 4), *g = malloc(nparams * 4);
    load_init(f, p);
    int rc = runner_open(&r, reg, c, &err);
    hone_membuf m = {0};
    if (!strcmp(mode, "save")) {
        hone_writer wr = hone_membuf_writer(&m);
        if (!rc) rc = run_steps(&r, p, g, 1, 10, &err);
        if (!rc) rc = wr.write(wr.ctx, p, nparams * 4, &err);
        if (!rc) rc = r.vt->save(r.state, &wr, &err);
        if (!rc) rc = hone_write_file(path, (const char *)m.data, m.len, &err);
    } else {
        float *straight = malloc(nparams * 4);
        memcpy(straight, p, nparams * 4);
        char *text = NULL;
        size_t len = 0;
        if (!rc) rc = hone_read_file(path, &text, &len, &err);
        m.data = (unsigned char *)text;
        m.len = len;
        hone_reader rd = hone_membuf_reader(&m);
        if (!rc) rc = rd.read(rd.ctx, p, nparams * 4, &err);
        if (!rc) rc = r.vt->load(r.state, &rd, &err);
        if (!rc) rc = run_steps(&r, p, g, 11, STEPS, &err);
        runner_close(&r);
        if (!rc) rc = runner_open(&r, reg, c, &err);
        if (!rc) rc = run_steps(&r, straight, g, 1, STEPS, &err);
        char what[160];
        snprintf(what, sizeof what, "%s: steps 11-20 resumed in a fresh process vs steps 1-20", cname);
        if (!rc && check_equal_f32(what, p, straight, nparams))
            printf("ok %s: resumed from %s in a fresh process, bit-identical to the straight run\n", cname, path);
        free(straight);
    }
    CHECK(!rc, "%s: %s", cname, err.msg);
    runner_close(&r);
    free(m.data);
    free(p), free(g);
}

int main(int argc, char **argv)
{
    hone_err err = {0};
    hone_registry *reg = hone_registry_new();
    hone_st_file *f = NULL;
    char *text = NULL;
    if (hone_registry_load_dir(reg, HONE_BUILD_DIR "/plugins", &err) ||
        hone_st_open(&f, HONE_SOURCE_DIR "/tests/fixtures/optim/optim.safetensors", &err) ||
        hone_read_file(HONE_SOURCE_DIR "/tests/fixtures/optim/cases.json", &text, NULL, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    cJSON *meta = cJSON_Parse(text);
    free(text);
    layout(meta);
    int rc = 0;
    if (argc == 4) {
        file_mode(reg, f, meta, argv[1], argv[2], argv[3]);
    } else {
        /* the gradient formula is the script's */
        float *g = malloc(nparams * 4);
        for (long s = 1; s <= STEPS; s += STEPS - 1) {
            make_grads(g, s);
            char key[32];
            snprintf(key, sizeof key, "grad%ld.B", s);
            const hone_st_tensor *t = hone_st_find(f, key);
            if (CHECK(t, "fixture %s missing", key)) check_equal_f32(key, g + tinfo[1].offset, t->data, tinfo[1].numel);
        }
        free(g);
        /* option combinations torch / transformers refuse are refused with a message */
        static const char *bad[][2] = {
            {"{\"optimizer\": \"sgd\", \"options\": {\"nesterov\": true}, \"clip\": 0, \"lr0\": 0.1}",
             "nesterov = true needs momentum > 0"},
            {"{\"optimizer\": \"adafactor\", \"options\": {\"warmup_init\": true}, \"clip\": 0, \"lr0\": 0.1}",
             "warmup_init = true requires relative_step = true"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cJSON *c = cJSON_Parse(bad[i][0]);
            runner r;
            hone_err e = {0};
            int refused = runner_open(&r, reg, c, &e) != 0 && strstr(e.msg, bad[i][1]);
            CHECK(refused, "%s was not refused (%s)", bad[i][0], e.msg);
            runner_close(&r);
            cJSON_Delete(c);
        }
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(meta, "cases")) run_case(reg, f, c);
    }
    rc = check_summary("optimizers");
    cJSON_Delete(meta);
    hone_st_close(f);
    hone_registry_free(reg);
    return rc;
}
