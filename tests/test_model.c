/* test_model.c — the model against transformers + peft (fixtures from
 * tests/reference/make_model_fixtures.py): logits and loss within 1e-5 relative, LoRA
 * and full fine-tuning gradients within 1e-4 relative, per tensor; adapters round-trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "err.h"
#include "model.h"
#include "options.h"
#include "hone/hone.h"
#include "registry.h"
#include "rng.h"
#include "safetensors.h"
#include "util.h"

/* max |got - want| / max |want| <= tol (max |want| taken as at least 1e-30), the measure
 * logits and gradients are held to against transformers */
#define CHECK_REL_MAX(name, got, want, n, tol) \
    check_close(name, got, want, n, (tol) * fmax(1e-30, check_max_abs(want, n)), 0)

static float *expected(hone_st_file *e, const char *name, size_t *n)
{
    const hone_st_tensor *t = hone_st_find(e, name);
    if (!CHECK(t, "expected tensor %s missing", name)) return NULL;
    float *p = malloc(t->numel * sizeof *p);
    hone_err err = {0};
    if (t->dtype == HONE_DT_I32) {
        memcpy(p, t->data, t->numel * 4);
    } else if (hone_st_to_f32(e, t, p, 0, t->numel, &err)) {
        CHECK(0, "%s", err.msg);
    }
    if (n) *n = t->numel;
    return p;
}

typedef struct fixture {
    const char *name;
    /* quantizer none's dtype for the base: a bf16 checkpoint stored in bf16 loses nothing */
    int r, rslora;
    double alpha;
    unsigned targets;
    int full;
    const char *quantizer;   /* NULL = "none" */
} fixture;

static void check_case(const hone_registry *reg, const fixture *fx, const char *tmp)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/%s", HONE_SOURCE_DIR, fx->name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    hone_err err = {0};
    hone_st_file *e = NULL;
    if (hone_st_open(&e, path, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    int32_t *ids = (int32_t *)expected(e, "input_ids", NULL), *labels = (int32_t *)expected(e, "labels", NULL);
    size_t nlog;
    float *want_logits = expected(e, "logits", &nlog), *want_loss = expected(e, "loss", NULL);
    float *full_logits = fx->full ? expected(e, "full_logits", NULL) : NULL;
    float *full_loss = fx->full ? expected(e, "full_loss", NULL) : NULL;
    int B = 2, T = 12;
    int32_t targets[24];
    hone_shift_labels(targets, labels, B, T);

    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, fx->quantizer ? fx->quantizer : "none");
    /* each model twice: logits at every position, and only where a label is (the trainer's
     * way): the loss and gradients must not tell them apart */
    for (int pass = 0; pass < 2 * (fx->full + 1); pass++) {
        int full = pass / 2, labelled = pass % 2;
        hone_model_opts o = {.quantizer = none, .lora = !full, .r = fx->r, .alpha = fx->alpha, .rslora = fx->rslora,
                             .targets = fx->targets, .seed = 42, .batch = B, .seq = T, .labelled_logits = labelled};
        hone_opts *qopts = NULL;
        hone_node *qn = hone_node_new(HONE_NODE_TABLE);
        if (!strcmp(fx->name, "llama-gqa")) hone_node_set_path(qn, "dtype", "bf16");
        if (fx->quantizer) hone_node_set_path(qn, "double_quant", "true");
        int qrc = hone_opts_resolve(&qopts, none->info->options, qn, "q", "quantizer none", &err);
        hone_node_free(qn);
        if (qrc) break;
        o.quantizer_opts = qopts;
        hone_model *m = NULL;
        char label[64];
        snprintf(label, sizeof label, "%s%s%s", fx->name, full ? " full" : "", labelled ? " labelled-logits" : "");
        check_begin("%s", label);
        if (hone_model_load(&m, dir, &o, &err) ||
            (!full && (snprintf(path, sizeof path, "%s/adapter", dir), hone_model_load_adapter(m, path, &err)))) {
            CHECK(0, "%s", err.msg);
            hone_opts_free(qopts);
            hone_model_free(m);
            continue;
        }
        double loss_sum;
        long count;
        if (hone_model_forward(m, ids, targets, B, T, &loss_sum, &count, &err)) {
            CHECK(0, "%s", err.msg);
        } else {
            const float *wl = full ? full_logits : want_logits, *wloss = full ? full_loss : want_loss;
            if (!labelled) CHECK_REL_MAX("logits", hone_model_logits(m), wl, nlog, 1e-5);
            float loss = (float)(loss_sum / count);
            CHECK(fabs(loss - wloss[0]) / wloss[0] <= 1e-5, "loss %.9g, transformers %.9g: rel err %.2e > 1e-5", loss,
                  wloss[0], fabs(loss - wloss[0]) / wloss[0]);
            hone_model_zero_grad(m);
            hone_model_backward(m, 1.0f / (float)count, &err);
            size_t nt;
            const hone_tensor_info *t = hone_model_tensors(m, &nt);
            float *g = hone_model_grads(m, NULL);
            for (size_t i = 0; i < nt; i++) {
                /* transformers' get_decay_parameter_names: no decay on names matching bias,
                 * layernorm, rmsnorm, (^|.)norm($|.), _norm($|.) */
                const char *nm = t[i].name;
                int no_decay = strstr(nm, "bias") || strstr(nm, "layernorm") || strstr(nm, "rmsnorm") ||
                               !strncmp(nm, "norm.", 5) || strstr(nm, ".norm.") || strstr(nm, "_norm.");
                CHECK(t[i].decay != no_decay, "%s has decay %d, transformers' groups say %d", nm, t[i].decay,
                      !no_decay);
            }
            for (size_t i = 0; i < nt; i++) {
                char key[300];
                snprintf(key, sizeof key, "%s%s", full ? "fullgrad." : "grad.", t[i].name);
                size_t n;
                float *want = expected(e, key, &n);
                if (!want) continue;
                if (CHECK(n == t[i].numel, "%s has %zu elements, expected %zu", t[i].name, t[i].numel, n))
                    CHECK_REL_MAX(key, g + t[i].offset, want, n, 1e-4);
                free(want);
            }
            if (!full) {
                /* greedy generation of both prompts in one batch, as transformers' generate() */
                int32_t *pr[2], *gen_out[2], lens[2], got_len[2];
                size_t np[2], ng[2];
                for (int i = 0; i < 2; i++) {
                    char k1[32], k2[32];
                    snprintf(k1, sizeof k1, "gen.prompt%d", i);
                    snprintf(k2, sizeof k2, "gen.out%d", i);
                    pr[i] = (int32_t *)expected(e, k1, &np[i]);
                    gen_out[i] = (int32_t *)expected(e, k2, &ng[i]);
                    lens[i] = (int)np[i];
                }
                int32_t got0[8], got1[8], *got[2] = {got0, got1};
                hone_gen_opts go = {8, 0.0, 0, 1.0, NULL, 0, 1, NULL, NULL};
                if (hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &go, got, got_len, &err)) {
                    CHECK(0, "generate: %s", err.msg);
                } else {
                    for (int i = 0; i < 2; i++) {
                        /* the same length, and the same tokens as far as both go */
                        char what[64];
                        snprintf(what, sizeof what, "greedy generation, prompt %d (%d tokens)", i, lens[i]);
                        CHECK(got_len[i] == (int)ng[i], "%s: %d tokens, transformers %zu", what, got_len[i], ng[i]);
                        check_equal_i32(what, got[i], gen_out[i], got_len[i] < (int)ng[i] ? (size_t)got_len[i] : ng[i]);
                    }
                }
                /* sampling that can only pick the top token is greedy; a seed fixes a sample */
                int32_t s0[8], s1[8], t0[8], t1[8], *sg[2] = {s0, s1}, *tg[2] = {t0, t1}, sl[2], tl[2];
                hone_gen_opts k1 = {8, 1.0, 1, 1.0, NULL, 0, 5, NULL, NULL}, p0 = {8, 0.7, 0, 1e-9, NULL, 0, 6, NULL, NULL};
                int ok = !hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &k1, sg, sl, &err) &&
                         !hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &p0, tg, tl, &err) &&
                         !memcmp(s0, got0, sizeof s0) && !memcmp(s1, got1, sizeof s1) &&
                         !memcmp(t0, got0, sizeof t0) && !memcmp(t1, got1, sizeof t1);
                CHECK(ok, "top_k = 1 and top_p -> 0 sample the greedy tokens");
                hone_gen_opts hot = {8, 1.5, 20, 0.9, NULL, 0, 77, NULL, NULL};
                ok = !hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &hot, sg, sl, &err) &&
                     !hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &hot, tg, tl, &err) &&
                     !memcmp(s0, t0, sizeof s0) && !memcmp(s1, t1, sizeof s1);
                CHECK(ok, "a seeded sample repeats");
                int32_t eos = got0[2];
                hone_gen_opts stop = {8, 0.0, 0, 1.0, &eos, 1, 1, NULL, NULL};
                ok = !hone_model_generate(m, (const int32_t *const *)pr, lens, 2, &stop, sg, sl, &err) && sl[0] <= 3 &&
                     sg[0][sl[0] - 1] == eos;
                CHECK(ok, "generation stops at EOS");
                /* save the adapter and load it into a fresh model: the same tensors; that model
                 * has room for 8 rows, so prefill packs prompt 0 (5) with 3 rows of prompt 1 (9)
                 * and prompt 1 straddles two chunks */
                char out[4200];
                snprintf(out, sizeof out, "%s/%s-adapter", tmp, fx->name);
                hone_model *m2 = NULL;
                hone_model_opts o2 = o;
                o2.batch = 1, o2.seq = 8;
                if (hone_model_save_adapter(m, out, dir, &err) || hone_model_load(&m2, dir, &o2, &err) ||
                    hone_model_load_adapter(m2, out, &err)) {
                    CHECK(0, "adapter round trip: %s", err.msg);
                } else {
                    size_t n1, n2;
                    float *p1 = hone_model_params(m, &n1), *p2 = hone_model_params(m2, &n2);
                    if (CHECK(n1 == n2, "adapter save/load round trip: %zu parameters, %zu loaded", n1, n2))
                        check_equal_f32("adapter save/load round trip", p1, p2, n1);
                    int same = !hone_model_generate(m2, (const int32_t *const *)pr, lens, 2, &go, got, got_len, &err);
                    for (int i = 0; i < 2 && same; i++)
                        same = got_len[i] == (int)ng[i] && !memcmp(got[i], gen_out[i], ng[i] * sizeof(int32_t));
                    CHECK(same, "greedy generation with prompts packed across prefill chunks");
                }
                hone_model_free(m2);
                for (int i = 0; i < 2; i++) free(pr[i]), free(gen_out[i]);
            }
        }
        hone_model_free(m);
        hone_opts_free(qopts);
    }
    check_end();
    free(ids);
    free(labels);
    free(want_logits);
    free(want_loss);
    free(full_logits);
    free(full_loss);
    hone_st_close(e);
}

static void check_errors(const hone_registry *reg, const char *tmp)
{
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qopts = NULL;
    hone_err err = {0};
    hone_opts_resolve(&qopts, none->info->options, NULL, "q", "quantizer none", &err);
    hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8, .targets = 0x7f,
                         .seed = 1, .batch = 1, .seq = 8};
    char dir[4200], src[4200];
    snprintf(src, sizeof src, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    hone_model *m = NULL;
    /* a config.json of the wrong architecture, and a model dir with a tensor missing */
    snprintf(dir, sizeof dir, "%s/bad-model", tmp);
    hone_mkdirs(dir, &err);
    char path[4300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *gpt2 = "{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 10}";
    hone_write_file(path, gpt2, strlen(gpt2), &err);
    int rc = hone_model_load(&m, dir, &o, &err);
    CHECK(rc && strstr(err.msg, "GPT2LMHeadModel"), "unsupported architecture: %s", err.msg);
    char *cfg = NULL;
    snprintf(path, sizeof path, "%s/config.json", src);
    hone_read_file(path, &cfg, NULL, &err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    hone_write_file(path, cfg, strlen(cfg), &err);
    free(cfg);
    float w[4] = {0};
    hone_st_out one = {"model.embed_tokens.weight", HONE_DT_F32, 2, {2, 2}, w, NULL, NULL, NULL};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    hone_st_write(path, &one, 1, &err);
    rc = hone_model_load(&m, dir, &o, &err);
    CHECK(rc && strstr(err.msg, "model.embed_tokens.weight has shape [2, 2], expected [96, 64]"),
          "wrong shape names the tensor: %s", err.msg);
    one.shape[0] = 96;
    one.shape[1] = 64;
    float *big = calloc(96 * 64, sizeof *big);
    one.data = big;
    hone_st_write(path, &one, 1, &err);
    rc = hone_model_load(&m, dir, &o, &err);
    CHECK(rc && strstr(err.msg, "missing tensor lm_head.weight"), "missing tensor is named: %s", err.msg);
    free(big);
    hone_opts_free(qopts);
}

/* gradient checkpointing recomputes the same numbers: bitwise equal gradients, dropout on */
static void check_checkpointing(const hone_registry *reg)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qopts = NULL;
    hone_err err = {0};
    hone_opts_resolve(&qopts, none->info->options, NULL, "q", "quantizer none", &err);
    int32_t ids[24], targets[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 7) % 96, targets[i] = i % 12 == 11 ? -100 : ((i + 1) * 7) % 96;
    float *g[2] = {0};
    size_t n[2] = {0}, acts[2][2];
    for (int full = 0; full <= 1; full++) {
        for (int ck = 0; ck <= 1; ck++) {
            hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = !full, .r = 4, .alpha = 8,
                                 .dropout = full ? 0.0 : 0.1, .targets = 0x7f, .seed = 9, .batch = 2, .seq = 12,
                                 .gradient_checkpointing = ck};
            hone_model *m = NULL;
            double s;
            long c;
            if (hone_model_load(&m, dir, &o, &err) || hone_model_forward(m, ids, targets, 2, 12, &s, &c, &err) ||
                hone_model_backward(m, 1.0f / c, &err)) {
                CHECK(0, "checkpointing: %s", err.msg);
                hone_model_free(m);
                continue;
            }
            float *gr = hone_model_grads(m, &n[ck]);
            g[ck] = malloc(n[ck] * sizeof(float));
            memcpy(g[ck], gr, n[ck] * sizeof(float));
            hone_model_activation_bytes(m, &acts[ck][0], &acts[ck][1]);
            hone_model_free(m);
        }
        const char *what = full ? "ckpt full" : "ckpt lora";
        if (CHECK(g[0] && g[1] && n[0] == n[1], "%s: gradients of both runs, of one size", what))
            check_equal_f32(full ? "ckpt full: gradients with and without checkpointing"
                                 : "ckpt lora: gradients with and without checkpointing", g[0], g[1], n[0]);
        CHECK(acts[1][0] < acts[0][1], "%s: checkpointing needs fewer activation bytes", what);
        free(g[0]);
        free(g[1]);
        g[0] = g[1] = NULL;
    }
    hone_opts_free(qopts);
}

/* model.compute_dtype = "bf16": the base's and lm_head's products in bf16 with fp32
 * accumulation give the fp32 loss and LoRA gradients within bf16's rounding (2^-8 of
 * each operand), on the NF4 fixture as QLoRA runs it */
/* The backend's dropout masks and NEFTune noise are the reference stream's draws
 * (rng.c's Philox, one at a time), from any starting index, on every instruction set
 * this machine has (the 16-lane path and the scalar one), a counter crossing 2^32 too */
static void check_draws(void)
{
    const hone_backend *be = NULL;
    hone_err err = {0};
    if (!CHECK(hone_backend_for("cpu", &be, &err) == 0, "%s", err.msg)) return;
    enum { N = 70001 };
    uint8_t *keep = malloc(N);
    float *x = calloc(N, sizeof *x);
    if (!CHECK(keep && x, "out of memory")) return;
    const uint64_t starts[] = {0, 3, 5, (1ull << 34) - 37};
    for (int isa = 0; isa < 2; isa++) {
        if (isa) setenv("HONE_CPU_ISA", "avx2", 1);
        CHECK(hone_backend_for("cpu", &be, &err) == 0, "%s", err.msg);
        for (size_t s = 0; s < sizeof starts / sizeof *starts; s++) {
            uint64_t i0 = starts[s];
            memset(x, 0, N * sizeof *x);
            be_dropout_mask(be, keep, N, 0.3f, 11, 1, i0);
            be_uniform_noise(be, x, N, 0.5f, 11, 2, i0);
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++) {
                float u = hone_philox_uniform(11, 1, i0 + (uint64_t)i), v = hone_philox_uniform(11, 2, i0 + (uint64_t)i);
                if (keep[i] != (u >= 0.3f) || x[i] != (2.0f * v - 1.0f) * 0.5f) bad = i;
            }
            CHECK(bad < 0, "draws from %llu (%s): element %d differs from the reference stream", (unsigned long long)i0,
                  isa ? "avx2" : "best", bad);
        }
    }
    unsetenv("HONE_CPU_ISA");
    CHECK(hone_backend_for("cpu", &be, &err) == 0, "%s", err.msg);
    free(keep);
    free(x);
}

static int check_bf16(const hone_registry *reg)
{
    const hone_backend *be = NULL;
    hone_err err = {0};
    if (hone_backend_for("cpu", &be, &err) || !be_has_bf16(be)) {
        check_skip("bf16: this CPU has no bf16 products (they need AVX-512)");
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/llama-nf4", HONE_SOURCE_DIR);
    const hone_feature *nf4 = hone_registry_find(reg, HONE_KIND_QUANTIZER, "nf4");
    hone_node *qn = hone_node_new(HONE_NODE_TABLE);
    hone_node_set_path(qn, "double_quant", "true");
    hone_opts *qopts = NULL;
    hone_opts_resolve(&qopts, nf4->info->options, qn, "q", "quantizer nf4", &err);
    hone_node_free(qn);
    int32_t ids[24], targets[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 7) % 96, targets[i] = i % 12 == 11 ? -100 : ((i + 1) * 7) % 96;
    double loss[2] = {0};
    float *g[2] = {0};
    size_t n[2] = {0};
    for (int bf = 0; bf <= 1; bf++) {
        hone_model_opts o = {.backend = be, .quantizer = nf4, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8,
                             .targets = 0x7f, .seed = 9, .batch = 2, .seq = 12, .compute_bf16 = bf};
        hone_model *m = NULL;
        long c;
        if (hone_model_load(&m, dir, &o, &err) || hone_model_forward(m, ids, targets, 2, 12, &loss[bf], &c, &err) ||
            hone_model_backward(m, 1.0f / c, &err)) {
            CHECK(0, "bf16 %d: %s", bf, err.msg);
            hone_model_free(m);
            continue;
        }
        loss[bf] /= c;
        float *gr = hone_model_grads(m, &n[bf]);
        g[bf] = malloc(n[bf] * sizeof(float));
        memcpy(g[bf], gr, n[bf] * sizeof(float));
        hone_model_free(m);
    }
    if (g[0] && g[1] && n[0] == n[1]) {
        double dot = 0, a = 0, b = 0, diff = 0;
        for (size_t i = 0; i < n[0]; i++) {
            dot += (double)g[0][i] * g[1][i], a += (double)g[0][i] * g[0][i], b += (double)g[1][i] * g[1][i];
            diff += ((double)g[0][i] - g[1][i]) * ((double)g[0][i] - g[1][i]);
        }
        double rel = sqrt(diff / a), lrel = fabs(loss[1] - loss[0]) / loss[0];
        CHECK(lrel < 4e-3 && rel < 2e-2 && dot / sqrt(a * b) > 0.9995,
              "bf16 vs fp32: loss %.7f / %.7f (rel %.2e), LoRA gradients rel %.2e, cosine %.6f", loss[0], loss[1], lrel,
              rel, dot / sqrt(a * b));
        printf("bf16 vs fp32 (NF4 base): loss %.7f / %.7f (rel %.2e), LoRA gradients rel %.2e, cosine %.6f\n", loss[0],
               loss[1], lrel, rel, dot / sqrt(a * b));
        CHECK(lrel > 0, "bf16: the products must not be fp32 ones (the loss is bit-identical)");
    } else {
        CHECK(0, "bf16: gradients of both runs, of one size");
    }
    free(g[0]);
    free(g[1]);
    hone_opts_free(qopts);
    return 1;
}

/* a checkpoint split into shards with model.safetensors.index.json loads the same */
static void check_sharded(const hone_registry *reg, const char *tmp)
{
    char src[4096], dir[4200], path[4400];
    snprintf(src, sizeof src, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    snprintf(dir, sizeof dir, "%s/sharded", tmp);
    hone_err err = {0};
    hone_mkdirs(dir, &err);
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    hone_st_file *f = NULL;
    if (hone_st_open(&f, path, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    /* tensors alternate between two shards */
    hone_st_out *outs[2] = {calloc(f->n, sizeof(hone_st_out)), calloc(f->n, sizeof(hone_st_out))};
    float **data = calloc(f->n, sizeof *data);
    size_t cnt[2] = {0, 0};
    char *index = malloc(65536);
    size_t off = (size_t)snprintf(index, 65536, "{\"metadata\": {}, \"weight_map\": {");
    for (size_t i = 0; i < f->n; i++) {
        const hone_st_tensor *t = &f->t[i];
        int sh = (int)(i % 2);
        data[i] = malloc(t->numel * sizeof(float));
        hone_st_to_f32(f, t, data[i], 0, t->numel, &err);
        hone_st_out *o = &outs[sh][cnt[sh]++];
        *o = (hone_st_out){t->name, HONE_DT_F32, t->ndim, {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}, data[i], NULL, NULL, NULL};
        off += (size_t)snprintf(index + off, 65536 - off, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                t->name, sh + 1);
    }
    snprintf(index + off, 65536 - off, "}}");
    for (int sh = 0; sh < 2; sh++) {
        snprintf(path, sizeof path, "%s/model-0000%d-of-00002.safetensors", dir, sh + 1);
        hone_st_write(path, outs[sh], cnt[sh], &err);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    hone_write_file(path, index, strlen(index), &err);
    char *cfg = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", src);
    hone_read_file(path, &cfg, &len, &err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    hone_write_file(path, cfg, len, &err);
    free(cfg);
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qopts = NULL;
    hone_opts_resolve(&qopts, none->info->options, NULL, "q", "quantizer none", &err);
    hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8, .targets = 0x7f,
                         .seed = 1, .batch = 1, .seq = 8};
    hone_model *a = NULL, *b = NULL;
    int32_t ids[8] = {1, 5, 9, 13, 17, 21, 25, 29};
    double s;
    long c;
    int ok = !hone_model_load(&a, src, &o, &err) && !hone_model_load(&b, dir, &o, &err) &&
             !hone_model_forward(a, ids, NULL, 1, 8, &s, &c, &err);
    float *la = ok ? malloc(8 * 96 * sizeof(float)) : NULL;
    if (ok) {
        memcpy(la, hone_model_logits(a), 8 * 96 * sizeof(float));
        ok = !hone_model_forward(b, ids, NULL, 1, 8, &s, &c, &err) && !memcmp(la, hone_model_logits(b), 8 * 96 * sizeof(float));
    }
    CHECK(ok, "sharded: two shards + index load the same model%s%s", err.msg[0] ? ": " : "", err.msg);
    free(la);
    hone_model_free(a);
    hone_model_free(b);
    hone_opts_free(qopts);
    for (size_t i = 0; i < f->n; i++) free(data[i]);
    free(data);
    free(outs[0]);
    free(outs[1]);
    free(index);
    hone_st_close(f);
}

/* a bitsandbytes NF4 checkpoint loads without re-quantizing and gives exactly what hone's
 * own NF4 quantization of the original weights gives */
static void check_prequant(const hone_registry *reg)
{
    char src[4096], bnb[4096];
    snprintf(src, sizeof src, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    snprintf(bnb, sizeof bnb, "%s/tests/fixtures/models/llama-bnb4", HONE_SOURCE_DIR);
    hone_err err = {0};
    const hone_feature *nf4 = hone_registry_find(reg, HONE_KIND_QUANTIZER, "nf4");
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_node *qn = hone_node_new(HONE_NODE_TABLE);
    hone_node_set_path(qn, "double_quant", "true");
    hone_opts *qo = NULL, *qn0 = NULL;
    hone_opts_resolve(&qo, nf4->info->options, qn, "q", "nf4", &err);
    hone_opts_resolve(&qn0, nf4->info->options, NULL, "q", "nf4", &err);
    hone_model_opts o = {.quantizer = nf4, .quantizer_opts = qo, .lora = 1, .r = 4, .alpha = 8, .targets = 0x7f,
                         .seed = 1, .batch = 1, .seq = 12};
    hone_model *a = NULL, *b = NULL;
    int32_t ids[12] = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26};
    double s;
    long c;
    int ok = !hone_model_load(&a, src, &o, &err) && !hone_model_load(&b, bnb, &o, &err) &&
             !hone_model_forward(a, ids, NULL, 1, 12, &s, &c, &err);
    float *la = ok ? malloc(12 * 96 * sizeof(float)) : NULL;
    if (ok) {
        memcpy(la, hone_model_logits(a), 12 * 96 * sizeof(float));
        ok = !hone_model_forward(b, ids, NULL, 1, 12, &s, &c, &err) && !memcmp(la, hone_model_logits(b), 12 * 96 * sizeof(float));
    }
    CHECK(ok, "bnb4: a bitsandbytes checkpoint = hone's own NF4, bit for bit%s%s", err.msg[0] ? ": " : "", err.msg);
    hone_model_free(b);
    b = NULL;
    /* the wrong quantizer settings are named */
    hone_model_opts wrong = {.quantizer = none, .lora = 1, .r = 4, .alpha = 8, .targets = 0x7f, .seed = 1,
                             .batch = 1, .seq = 12};
    hone_opts *nopts = NULL;
    hone_opts_resolve(&nopts, none->info->options, NULL, "q", "none", &err);
    wrong.quantizer_opts = nopts;
    ok = hone_model_load(&b, bnb, &wrong, &err) != 0 && strstr(err.msg, "set model.quantizer = { \"nf4\", double_quant = true }");
    CHECK(ok, "bnb4: a bnb checkpoint with another quantizer says which to set: %s", err.msg);
    o.quantizer_opts = qn0;
    ok = hone_model_load(&b, bnb, &o, &err) != 0 && strstr(err.msg, "uses double quantization, but double_quant is false");
    CHECK(ok, "bnb4: double_quant must match the checkpoint: %s", err.msg);
    free(la);
    hone_model_free(a);
    hone_model_free(b);
    hone_opts_free(qo);
    hone_opts_free(qn0);
    hone_opts_free(nopts);
    hone_node_free(qn);
}

/* rope_scaling "linear" divides every frequency by the factor */
static void check_rope_linear(void)
{
    const char *base = "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 16, "
                       "\"intermediate_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2%s}";
    char a[512], b[512];
    snprintf(a, sizeof a, base, "");
    snprintf(b, sizeof b, base, ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}");
    hone_model_config ca, cb;
    hone_err err = {0};
    int ok = !hone_model_config_parse(&ca, a, "a", &err) && !hone_model_config_parse(&cb, b, "b", &err);
    float fa[4], fb[4];
    if (ok) {
        hone_rope_inv_freq(&ca, fa);
        hone_rope_inv_freq(&cb, fb);
        for (int i = 0; i < 4; i++) ok = ok && fb[i] == fa[i] / 4.0f;
    }
    CHECK(ok, "rope: linear scaling divides inv_freq by the factor");
    snprintf(b, sizeof b, base, ", \"quantization_config\": {\"quant_method\": \"gptq\"}");
    ok = hone_model_config_parse(&cb, b, "q/config.json", &err) != 0 && strstr(err.msg, "quant_method \"gptq\"");
    CHECK(ok, "config: a non-bitsandbytes quantized checkpoint is refused plainly: %s", err.msg);
    snprintf(b, sizeof b, base, ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}");
    ok = hone_model_config_parse(&cb, b, "b/config.json", &err) != 0 && strstr(err.msg, "rope_scaling type \"yarn\" is not supported");
    CHECK(ok, "rope: an unsupported rope type is named: %s", err.msg);
}

/* NEFTune perturbs training forwards only: eval losses equal the plain model's, training
 * losses move; and the noise is transformers' U(-mag, mag) on every embedding element,
 * mag = alpha / sqrt(T x hidden): its largest value near mag and never past it, mean 0,
 * variance mag^2 / 3 */
static void check_neftune(const hone_registry *reg)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qopts = NULL;
    hone_err err = {0};
    hone_opts_resolve(&qopts, none->info->options, NULL, "q", "quantizer none", &err);
    int32_t ids[24], targets[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 5) % 96, targets[i] = ((i + 1) * 5) % 96;
    double loss[2][2];
    enum { N = 2 * 12 * 64 };   /* B x T x hidden of the fixture */
    static float embedded[2][N];
    for (int k = 0; k < 2; k++) {
        hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8,
                             .targets = 0x7f, .seed = 9, .batch = 2, .seq = 12, .neftune_alpha = k ? 5.0 : 0.0};
        hone_model *m = NULL;
        long c;
        if (hone_model_load(&m, dir, &o, &err) || hone_model_forward(m, ids, targets, 2, 12, &loss[k][0], &c, &err)) {
            CHECK(0, "neftune: %s", err.msg);
        } else {
            memcpy(embedded[k], hone_model_embedded(m), sizeof embedded[k]);
            hone_model_set_eval(m, 1);
            hone_model_forward(m, ids, targets, 2, 12, &loss[k][1], &c, &err);
        }
        hone_model_free(m);
    }
    CHECK(!(loss[0][1] != loss[1][1] || loss[0][0] != loss[0][1] || loss[1][0] == loss[0][0]),
          "neftune: train %.9g / %.9g, eval %.9g / %.9g (without / with): eval must be equal, train must move",
          loss[0][0], loss[1][0], loss[0][1], loss[1][1]);
    double mag = 5.0 / sqrt(12.0 * 64.0), top = 0, sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double d = (double)embedded[1][i] - embedded[0][i];
        top = fabs(d) > top ? fabs(d) : top;
        sum += d;
        sq += d * d;
    }
    double mean = sum / N, var = sq / N - mean * mean;
    /* N = 1536 draws: the mean's sd is mag / sqrt(3 N) = 0.015 mag, the variance's ~3.6% */
    int ok = top <= mag * (1 + 1e-6) && top > 0.99 * mag && fabs(mean) < 0.06 * mag &&
             fabs(var / (mag * mag / 3) - 1) < 0.15;
    CHECK(ok, "neftune: noise U(-mag, mag), mag = alpha / sqrt(T x hidden): max %.6g, mean %.3g, variance %.6g; "
          "want max <= %.6g (and near it), mean ~0, variance %.6g", top, mean, var, mag, mag * mag / 3);
    hone_opts_free(qopts);
}

/* Packing: two documents in one row, attention kept inside each and positions restarting,
 * give each document's loss and the sum of their gradients exactly as the documents alone */
static void check_packing(const hone_registry *reg)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/llama", HONE_SOURCE_DIR);
    const hone_feature *none = hone_registry_find(reg, HONE_KIND_QUANTIZER, "none");
    hone_opts *qopts = NULL;
    hone_err err = {0};
    hone_opts_resolve(&qopts, none->info->options, NULL, "q", "quantizer none", &err);
    enum { LA = 7, LB = 5, T = LA + LB };
    int32_t ids[T], tg[T], start[T];
    for (int t = 0; t < T; t++) {
        ids[t] = (t * 11 + 3) % 96;
        start[t] = t < LA ? 0 : LA;
    }
    for (int t = 0; t < T; t++) tg[t] = t == LA - 1 || t == T - 1 ? -100 : ids[t + 1];   /* no prediction across */
    double loss[3];
    long cnt[3];
    float *g[3] = {0};
    size_t n = 0;
    for (int k = 0; k < 3; k++) {   /* A alone, B alone, A and B packed */
        hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8,
                             .targets = 0x7f, .seed = 9, .batch = 1, .seq = T};
        hone_model *m = NULL;
        const int32_t *x = k == 1 ? ids + LA : ids, *y = k == 1 ? tg + LA : tg;
        int len = k == 0 ? LA : k == 1 ? LB : T;
        int rc = hone_model_load(&m, dir, &o, &err);
        if (!rc && k == 2) rc = hone_model_set_documents(m, start, 1, T, &err);
        if (!rc) rc = hone_model_forward(m, x, y, 1, len, &loss[k], &cnt[k], &err);
        if (!rc) rc = hone_model_backward(m, 1.0f, &err);
        if (rc) {
            CHECK(0, "packing: %s", err.msg);
            hone_model_free(m);
            hone_opts_free(qopts);
            for (int j = 0; j < k; j++) free(g[j]);
            return;
        }
        float *gr = hone_model_grads(m, &n);
        g[k] = malloc(n * sizeof(float));
        memcpy(g[k], gr, n * sizeof(float));
        hone_model_free(m);
    }
    /* the packed gradient against the sum of the two alone, in double: within 1e-5 of its max */
    double *got = malloc(n * sizeof *got), *sum = malloc(n * sizeof *sum);
    for (size_t i = 0; i < n; i++) got[i] = g[2][i], sum[i] = (double)g[0][i] + g[1][i];
    double ld = fabs(loss[2] - (loss[0] + loss[1])) / (loss[0] + loss[1]);
    CHECK(cnt[2] == cnt[0] + cnt[1], "packing: %ld tokens counted, %ld + %ld alone", cnt[2], cnt[0], cnt[1]);
    CHECK(!(ld > 1e-6), "packing: loss %.9g vs %.9g + %.9g (rel %.2g)", loss[2], loss[0], loss[1], ld);
    check_close_f64("packing: gradient vs the documents' alone, summed", got, sum, n,
                    1e-5 * check_max_abs_f64(sum, n), 0);
    free(got);
    free(sum);
    /* a malformed start list is refused */
    hone_model_opts o = {.quantizer = none, .quantizer_opts = qopts, .lora = 1, .r = 4, .alpha = 8, .targets = 0x7f,
                         .seed = 9, .batch = 1, .seq = T};
    hone_model *m = NULL;
    start[3] = 2;
    CHECK(!(hone_model_load(&m, dir, &o, &err) == 0 && hone_model_set_documents(m, start, 1, T, &err) == 0),
          "packing: a start list with a jump back was accepted");
    hone_model_free(m);
    for (int k = 0; k < 3; k++) free(g[k]);
    hone_opts_free(qopts);
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/hone-model-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    hone_registry *reg = hone_registry_new();
    hone_err err = {0};
    if (hone_registry_load_dir(reg, HONE_BUILD_DIR "/plugins", &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "bf16")) {   /* its own ctest entry: skipped where the CPU cannot */
        CHECK_RUN(check_bf16(reg));
        hone_registry_free(reg);
        rmdir(tmp);
        return check_summary("model bf16");
    }
    const fixture cases[] = {
        {"llama", 4, 0, 8, 0x7f, 1, NULL},
        {"llama-gqa", 8, 1, 16, (1u << HONE_Q_PROJ) | (1u << HONE_V_PROJ), 1, NULL},
        {"qwen2", 4, 0, 4, 0x7f, 0, NULL},
        {"mistral", 2, 0, 4, (1u << HONE_O_PROJ) | (1u << HONE_DOWN_PROJ), 0, NULL},
        /* QLoRA: the base in NF4 with double quant, against torch on bitsandbytes' dequantized weights */
        {"llama-nf4", 4, 0, 8, 0x7f, 0, "nf4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(reg, &cases[i], tmp);
    CHECK_RUN(check_errors(reg, tmp));
    CHECK_RUN(check_checkpointing(reg));
    CHECK_RUN(check_neftune(reg));
    CHECK_RUN(check_packing(reg));
    CHECK_RUN(check_sharded(reg, tmp));
    CHECK_RUN(check_rope_linear());
    check_draws();
    CHECK_RUN(check_prequant(reg));
    hone_registry_free(reg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("could not remove %s\n", tmp);
    return check_summary("model");
}
