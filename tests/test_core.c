/* test_core.c — unit tests of the core's plain-C parts: trees and --set, option
 * resolution, schema validation messages, run names, the line reader, the RNG, and the
 * plugin side of the version rule (HONE_PLUGIN_DEFINE's own check). */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "backend.h"
#include "check.h"
#include "config.h"
#include "err.h"
#include "lines.h"
#include "options.h"
#include "registry.h"
#include "rng.h"
#include "rundir.h"
#include "safetensors.h"
#include "schedule.h"
#include "schema.h"
#include "hone/hone.h"
#include "util.h"

static hone_node *str_node(const char *key, const char *s)
{
    hone_node *n = hone_node_new(HONE_NODE_STRING);
    n->key = key ? hone_strdup(key) : NULL;
    n->str = hone_strdup(s);
    return n;
}

static void test_tree(void)
{
    hone_node *root = hone_node_new(HONE_NODE_TABLE);
    hone_node *train = hone_node_add(root, hone_node_new(HONE_NODE_TABLE));
    train->key = hone_strdup("train");
    hone_node_add(train, str_node("optimizer", "adamw"));
    CHECK_TRUE(hone_node_set_path(root, "train.optimizer.eps", "1e-6") == 0);
    hone_node *opt = hone_node_get(train, "optimizer");
    CHECK_TRUE(opt->type == HONE_NODE_TABLE);
    CHECK_TRUE(!strcmp(hone_node_at(opt, 1)->str, "adamw"));
    CHECK_TRUE(hone_node_get(opt, "eps")->from_cli);
    CHECK_TRUE(hone_node_set_path(root, "train.optimizer", "lion") == 0);
    CHECK_TRUE(!strcmp(hone_node_at(opt, 1)->str, "lion"));
    CHECK_TRUE(hone_node_get(opt, "eps") != NULL);   /* options survive a name change */
    CHECK_TRUE(hone_node_set_path(root, "a..b", "1") != 0);
    CHECK_TRUE(hone_node_set_path(root, "new.key", "x") == 0);
    CHECK_TRUE(!strcmp(hone_node_get(hone_node_get(root, "new"), "key")->str, "x"));
    hone_node_free(root);
}

static const hone_option test_opts[] = {
    {"betas", HONE_OPT_NUMLIST, HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX | HONE_OPT_MAX_EXCL, 0, "0.9,0.999", 0, 1, NULL, 2, "betas"},
    {"eps", HONE_OPT_NUMBER, HONE_OPT_HAS_MIN | HONE_OPT_MIN_EXCL, 1e-8, NULL, 0, 0, NULL, 0, "eps"},
    {"steps", HONE_OPT_INTEGER, HONE_OPT_HAS_MIN, 3, NULL, 1, 0, NULL, 0, "steps"},
    {"kind", HONE_OPT_STRING, 0, 0, "a", 0, 0, "a|b", 0, "kind"},
    {"flag", HONE_OPT_BOOL, 0, 1, NULL, 0, 0, NULL, 0, "flag"},
    {"maybe", HONE_OPT_NUMBER, HONE_OPT_UNSET, 0, NULL, 0, 0, NULL, 0, "unset by default"},
    {0},
};

static void test_options(void)
{
    hone_err err = {0};
    CHECK_TRUE(hone_options_check_table(test_opts, &err) == 0);
    hone_opts *o = NULL;
    CHECK_TRUE(hone_opts_resolve(&o, test_opts, NULL, "train.optimizer", "optimizer t", &err) == 0);
    size_t n;
    const double *b = hone_opt_list(o, "betas", &n);
    CHECK_TRUE(n == 2 && b[0] == 0.9 && b[1] == 0.999);
    CHECK_TRUE(hone_opt_number(o, "eps") == 1e-8);
    CHECK_TRUE(hone_opt_integer(o, "steps") == 3);
    CHECK_TRUE(hone_opt_bool(o, "flag") == 1);
    CHECK_TRUE(!strcmp(hone_opt_string(o, "kind"), "a"));
    CHECK_TRUE(!hone_opt_is_set(o, "maybe"));
    hone_opts_free(o);

    hone_node *t = hone_node_new(HONE_NODE_TABLE);
    hone_node_add(t, str_node("betas2", "x"));
    CHECK_TRUE(hone_opts_resolve(&o, test_opts, t, "train.optimizer", "optimizer t", &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown option 'betas2' for optimizer t; did you mean 'betas'?");
    hone_node_free(t);

    /* --set text is converted by the option's type */
    t = hone_node_new(HONE_NODE_TABLE);
    hone_node_set_path(t, "betas", "0.8, 0.95");
    hone_node_set_path(t, "steps", "7");
    hone_node_set_path(t, "flag", "false");
    CHECK_TRUE(hone_opts_resolve(&o, test_opts, t, "opt", "optimizer t", &err) == 0);
    b = hone_opt_list(o, "betas", &n);
    CHECK_TRUE(n == 2 && b[0] == 0.8 && b[1] == 0.95);
    CHECK_TRUE(hone_opt_integer(o, "steps") == 7 && hone_opt_bool(o, "flag") == 0);
    hone_opts_free(o);
    hone_node_free(t);

    struct { const char *key, *text, *msg; } bad[] = {
        {"betas", "0.9", "expected a list of 2 numbers, got 1"},
        {"betas", "0.9,1.0", "opt.betas[2] = 1: out of range, must be [0, 1)"},
        {"eps", "0", "opt.eps = 0: out of range, must be > 0"},
        {"eps", "fast", "opt.eps: expected a number"},
        {"steps", "2.5", "opt.steps: expected an integer"},
        {"steps", "0", "must be >= 1"},
        {"kind", "c", "must be one of a|b"},
        {"flag", "maybe", "expected true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = hone_node_new(HONE_NODE_TABLE);
        hone_node_set_path(t, bad[i].key, bad[i].text);
        hone_err_clear(&err);
        CHECK_TRUE(hone_opts_resolve(&o, test_opts, t, "opt", "optimizer t", &err) == HONE_EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].msg);
        hone_node_free(t);
    }

    /* an option table with a default outside its own range is the plugin's bug */
    static const hone_option broken[] = {
        {"beta", HONE_OPT_NUMBER, HONE_OPT_HAS_MAX, 2, NULL, 0, 1, NULL, 0, "beta"}, {0}};
    CHECK_TRUE(hone_options_check_table(broken, &err) != 0);
    CHECK_CONTAINS(err.msg, "default of option 'beta' = 2: out of range");
}

static void test_closest(void)
{
    const char *c[] = {"r", "alpha", "dropout", "target_modules", "rslora"};
    CHECK_TRUE(hone_closest("alpah", c, 5) && !strcmp(hone_closest("alpah", c, 5), "alpha"));
    CHECK_TRUE(hone_closest("dropuot", c, 5) && !strcmp(hone_closest("dropuot", c, 5), "dropout"));
    CHECK_TRUE(hone_closest("zzzzzzzzz", c, 5) == NULL);
    CHECK_TRUE(hone_edit_distance("kitten", "sitting") == 3);
}

static hone_node *table(const char *key)
{
    hone_node *n = hone_node_new(HONE_NODE_TABLE);
    n->key = key ? hone_strdup(key) : NULL;
    return n;
}

static void test_schema(void)
{
    hone_registry *reg = hone_registry_new();
    hone_err err = {0};
    hone_config *cfg = NULL;
    /* lora = { rank = 8 } names lora.rank and suggests lora.r */
    hone_node *root = table(NULL);
    hone_node *lora = hone_node_add(root, table("lora"));
    hone_node *rank = hone_node_add(lora, hone_node_new(HONE_NODE_INTEGER));
    rank->key = hone_strdup("rank");
    rank->integer = 8;
    CHECK_TRUE(hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "lora.rank: unknown key; did you mean 'lora.r'?");
    hone_node_free(root);

    /* the right name at the wrong level */
    root = table(NULL);
    hone_node *lr = hone_node_add(root, hone_node_new(HONE_NODE_NUMBER));
    lr->key = hone_strdup("lr");
    lr->num = 1e-4;
    CHECK_TRUE(hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "lr: unknown key; did you mean 'train.lr'?");
    hone_node_free(root);

    /* HF names map to hone's */
    root = table(NULL);
    hone_node_set_path(root, "train.learning_rate", "1e-4");
    CHECK_TRUE(hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "train.learning_rate (from --set): unknown key; did you mean 'train.lr'?");
    hone_node_free(root);

    /* missing required key */
    root = table(NULL);
    CHECK_TRUE(hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "model.path: missing required key");
    hone_node_free(root);

    /* the default plugin is not registered in an empty registry: said plainly */
    root = table(NULL);
    hone_node_set_path(root, "model.path", "m");
    hone_node_set_path(root, "data.train", "t.jsonl");
    CHECK_TRUE(hone_config_resolve(&cfg, hone_experiment_keys, hone_experiment_nkeys, root, reg, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "model.quantizer: the default quantizer 'none' is not registered");
    hone_node_free(root);
    hone_registry_free(reg);
}

static void test_plan(void)
{
    hone_plan p;
    /* 1000 examples, batch 16 -> 63 micro-batches; grad_accum 4 -> 16 steps/epoch */
    hone_plan_steps(&p, 1000, 16, 4, 3, 0, 0.1, 0);
    CHECK_TRUE(p.micro_batches == 63 && p.steps_per_epoch == 16 && p.total_steps == 48 && p.warmup_steps == 5);
    hone_plan_steps(&p, 1000, 16, 4, 3, 20, 0.1, 0);   /* max_steps wins */
    CHECK_TRUE(p.total_steps == 20 && p.epochs == 2 && p.warmup_steps == 2);
    hone_plan_steps(&p, 10, 16, 4, 1.5, 0, 0, 7);     /* fewer micro-batches than grad_accum */
    CHECK_TRUE(p.steps_per_epoch == 1 && p.total_steps == 2 && p.epochs == 2 && p.warmup_steps == 7);
}

static void test_rundir(const char *tmp)
{
    char out[512], path[1024], name[300], path2[1024], name2[300];
    hone_err err = {0};
    snprintf(out, sizeof out, "%s/runs", tmp);
    time_t t = 1700000000;
    CHECK_TRUE(hone_rundir_create(out, "pricer", t, path, sizeof path, name, sizeof name, &err) == 0);
    CHECK_TRUE(hone_rundir_create(out, "pricer", t, path2, sizeof path2, name2, sizeof name2, &err) == 0);
    char expect[300];
    hone_run_name(expect, sizeof expect, "pricer", t);
    CHECK_TRUE(!strcmp(name, expect));
    char expect2[310];
    snprintf(expect2, sizeof expect2, "%s-2", expect);
    CHECK_TRUE(!strcmp(name2, expect2));
    CHECK_TRUE(hone_is_dir(path) && hone_is_dir(path2));
    CHECK_TRUE(strlen(expect) == strlen("pricer-2023-11-14_22.13.20"));
    CHECK_TRUE(hone_project_name_check("a/b", &err) != 0);
    CHECK_TRUE(hone_project_name_check("..", &err) != 0);
    CHECK_TRUE(hone_project_name_check("pricer", &err) == 0);
}

static void test_lines(const char *tmp)
{
    const char text[] = "{\"a\": 1}\r\n\n  \n{\"b\": \"x\"}\n{\"c\": 3}";
    char plain[512], zst[512], trunc[512], bad[512];
    hone_err err = {0};
    snprintf(plain, sizeof plain, "%s/d.jsonl", tmp);
    snprintf(zst, sizeof zst, "%s/d.jsonl.zst", tmp);
    snprintf(trunc, sizeof trunc, "%s/t.jsonl.zst", tmp);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    CHECK_TRUE(hone_write_file(plain, text, sizeof text - 1, &err) == 0);
    size_t cap = ZSTD_compressBound(sizeof text);
    char *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, text, sizeof text - 1, 3);
    CHECK_TRUE(!ZSTD_isError(zn));
    CHECK_TRUE(hone_write_file(zst, z, zn, &err) == 0);
    CHECK_TRUE(hone_write_file(trunc, z, zn - 3, &err) == 0);
    free(z);
    for (int k = 0; k < 2; k++) {
        hone_lines *r;
        CHECK_TRUE(hone_lines_open(&r, k ? zst : plain, &err) == 0);
        const char *line;
        size_t len;
        long no;
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 1 && no == 1 && !strcmp(line, "{\"a\": 1}"));
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 1 && no == 2 && len == 0);
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 1 && no == 3);
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 1 && no == 4);
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 1 && no == 5 && !strcmp(line, "{\"c\": 3}"));
        CHECK_TRUE(hone_lines_next(r, &line, &len, &no, &err) == 0);
        hone_lines_close(r);
        long count = 0;
        CHECK_TRUE(hone_jsonl_count(k ? zst : plain, &count, &err) == 0 && count == 3);
    }
    long count;
    CHECK_TRUE(hone_jsonl_count(trunc, &count, &err) != 0);
    CHECK_CONTAINS(err.msg, "truncated zstd stream");
    const char badtext[] = "{\"a\": 1}\n[1, 2]\n";
    CHECK_TRUE(hone_write_file(bad, badtext, sizeof badtext - 1, &err) == 0);
    CHECK_TRUE(hone_jsonl_count(bad, &count, &err) != 0);
    CHECK_CONTAINS(err.msg, "bad.jsonl:2: not a JSON object");

    /* a line far longer than the buffer */
    size_t big = 3u << 20;
    char *longline = malloc(big + 16);
    memset(longline, 'x', big);
    memcpy(longline, "{\"t\":\"", 6);
    memcpy(longline + big - 2, "\"}", 2);
    longline[big] = '\n';
    CHECK_TRUE(hone_write_file(plain, longline, big + 1, &err) == 0);
    free(longline);
    CHECK_TRUE(hone_jsonl_count(plain, &count, &err) == 0 && count == 1);
}

/* builds a safetensors image: 8-byte length, header text, data bytes */
static size_t st_image(uint8_t *out, const char *header, size_t datalen)
{
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, header, hl);
    memset(out + 8 + hl, 0, datalen);
    return 8 + hl + datalen;
}

static void test_safetensors(const char *tmp)
{
    hone_err err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", tmp);
    float a[6] = {1, -2, 3.5f, 1e-3f, 65504, -0.0f}, b[3] = {1.00390625f, 3.14159f, -7};
    hone_st_out out[2] = {
        {"model.b", HONE_DT_BF16, 1, {3}, b, NULL, NULL, NULL},
        {"model.a", HONE_DT_F32, 2, {2, 3}, a, NULL, NULL, NULL},
    };
    CHECK_TRUE(hone_st_write(path, out, 2, &err) == 0);
    hone_st_file *f = NULL;
    CHECK_TRUE(hone_st_open(&f, path, &err) == 0);
    if (f) {
        const hone_st_tensor *ta = hone_st_find(f, "model.a"), *tb = hone_st_find(f, "model.b");
        CHECK_TRUE(ta && tb && f->n == 2);
        CHECK_TRUE(ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 && ta->dtype == HONE_DT_F32);
        CHECK_TRUE(ta->begin == 0);   /* 4-byte dtype first, as the Rust writer orders */
        float got[6];
        CHECK_TRUE(hone_st_to_f32(f, ta, got, 0, 6, &err) == 0 && !memcmp(got, a, sizeof a));
        CHECK_TRUE(hone_st_to_f32(f, tb, got, 0, 3, &err) == 0);
        CHECK_TRUE(got[0] == 1.0f && got[2] == -7.0f);
        CHECK_TRUE(got[1] == 3.140625f);   /* bf16 round to nearest even */
        CHECK_TRUE(hone_st_to_f32(f, tb, got, 2, 2, &err) != 0);
        uint64_t hl;
        memcpy(&hl, f->map, 8);
        CHECK_TRUE(hl % 8 == 0 && f->map[8] == '{');
        hone_st_close(f);
    }
    static uint8_t img[4096];
    struct { const char *header; size_t data; const char *msg; } bad[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, "lie outside the 10-byte data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps the previous tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "a hole in the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "tensors cover 8 of the 12 data bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "8 bytes of data for 3 elements of F32"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor a: dtype Q4 is not supported"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "needs dtype, shape and data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "tensor a appears twice"},
        {"[1,2]", 0, "the header is not a JSON object"},
        {"{\"a\":", 0, "the header is not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "shape overflows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = st_image(img, bad[i].header, bad[i].data);
        hone_err_clear(&err);
        CHECK_TRUE(hone_st_parse(&f, img, n, "bad.safetensors", &err) != 0);
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
    /* a header length that runs past the end of the file */
    size_t n = st_image(img, "{}", 0);
    img[0] = 200;
    CHECK_TRUE(hone_st_parse(&f, img, n, "short.safetensors", &err) != 0);
    CHECK_CONTAINS(err.msg, "short.safetensors: header claims 200 bytes but the file has 2");
    CHECK_TRUE(hone_st_parse(&f, img, 5, "tiny.safetensors", &err) != 0);
    CHECK_CONTAINS(err.msg, "too short");
}

static void test_rng(void)
{
    /* known answers: xoshiro256** from the state {1, 2, 3, 4} (the reference vector of
     * Vigna's algorithm as rand_xoshiro tests it), and splitmix64 from 0 (its published
     * first outputs), which seeding places in the state */
    static const uint64_t xo[10] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL, 1216172134540287360ULL,
                                    607988272756665600ULL, 16172922978634559625ULL, 8476171486693032832ULL,
                                    10595114339597558777ULL, 2904607092377533576ULL};
    hone_rng k = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++) CHECK_TRUE(hone_rng_u64(&k) == xo[i]);
    hone_rng_seed(&k, 0);
    CHECK_TRUE(k.s[0] == 0xe220a8397b1dcdafULL && k.s[1] == 0x6e789e6aa1b965f4ULL && k.s[2] == 0x06c45d188009454fULL);
    hone_rng a, b;
    hone_rng_seed(&a, 42);
    hone_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK_TRUE(hone_rng_u64(&a) == hone_rng_u64(&b));
    hone_rng_seed(&b, 43);
    CHECK_TRUE(hone_rng_u64(&a) != hone_rng_u64(&b));
    double u = hone_rng_uniform(&a);
    CHECK_TRUE(u >= 0 && u < 1);
    /* Philox4x32-10: Random123's known answers (tests/kat_vectors, the three
     * "philox4x32 10" lines: counter, key, result) */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        hone_philox4x32(out, kat[v], kat[v] + 4);
        CHECK(!memcmp(out, kat[v] + 6, sizeof out), "philox4x32-10 vector %d: %08x %08x %08x %08x", v + 1, out[0],
              out[1], out[2], out[3]);
    }
    for (int i = 0; i < 11; i++) {
        float one = hone_philox_uniform(7, 1, 5 + (uint64_t)i);
        CHECK(one >= 0 && one < 1, "philox draw %d: %a", i, (double)one);
    }
    CHECK_TRUE(hone_philox_uniform(7, 1, 0) != hone_philox_uniform(7, 2, 0));
}

/* HONE_PLUGIN_DEFINE's init refuses a host older than its header by itself (for a host
 * that skipped the loader's check), naming the plugin, and touches nothing of a host of
 * another major */
static void test_plugin_define(void)
{
    void *h = dlopen(HONE_BUILD_DIR "/plugins/signsgd.so", RTLD_NOW | RTLD_LOCAL);
    CHECK_TRUE(h != NULL);
    if (!h) return;
    hone_plugin_init_fn init;
    *(void **)&init = dlsym(h, "hone_plugin_init");
    CHECK_TRUE(init != NULL);
    hone_host older = hone_host_table;
    older.abi_minor = HONE_ABI_MINOR - 1;
    hone_err err = {0};
    CHECK_TRUE(init && init(&older, NULL, &err) == HONE_EUNSUPPORTED);
    char want[128];
    snprintf(want, sizeof want, "signsgd needs hone plugin ABI %d.%d, the host has %d.%d", HONE_ABI_MAJOR,
             HONE_ABI_MINOR, HONE_ABI_MAJOR, HONE_ABI_MINOR - 1);
    CHECK_CONTAINS(err.msg, want);
    hone_host other = {.abi_major = HONE_ABI_MAJOR + 1, .abi_minor = 0, .size = 12};
    hone_err none = {0};
    CHECK_TRUE(init && init(&other, NULL, &none) == HONE_EUNSUPPORTED && none.msg[0] == '\0');
    dlclose(h);
}

/* the CPU backend's table is complete: the model calls every entry without a check */
static void test_backend_table(void)
{
    const hone_backend *be = hone_backend_cpu();
    CHECK_TRUE(be && be->ops && !strcmp(be->ops->name, "cpu"));
    /* after the name, the table is function pointers only */
    typedef void (*fn)(void);
    const fn *f = (const fn *)((const char *)be->ops + offsetof(hone_backend_ops, alloc));
    size_t n = (sizeof(hone_backend_ops) - offsetof(hone_backend_ops, alloc)) / sizeof(fn);
    for (size_t i = 0; i < n; i++) CHECK(f[i] != NULL, "backend cpu: entry %zu of %zu is NULL", i, n);
    const hone_backend *named = NULL;
    hone_err err = {0};
    CHECK_TRUE(hone_backend_for("auto", &named, &err) == 0 && named == be);
    CHECK_TRUE(hone_backend_for("cuda", &named, &err) == HONE_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "the CUDA backend is not built yet");
    CHECK_TRUE(hone_backend_for("tpu", &named, &err) == HONE_EINVAL);
    CHECK_CONTAINS(err.msg, "device = \"tpu\": not a device hone knows");
}

int main(void)
{
    char tmp[] = "/tmp/hone-test-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    CHECK_RUN(test_tree());
    CHECK_RUN(test_options());
    CHECK_RUN(test_closest());
    CHECK_RUN(test_schema());
    CHECK_RUN(test_plan());
    CHECK_RUN(test_rundir(tmp));
    CHECK_RUN(test_lines(tmp));
    CHECK_RUN(test_safetensors(tmp));
    CHECK_RUN(test_rng());
    CHECK_RUN(test_plugin_define());
    CHECK_RUN(test_backend_table());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_summary("core units");
}
