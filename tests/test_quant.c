/* test_quant.c — the nf4 / fp4 quantizer plugin against bitsandbytes' CPU backend
 * (fixtures from tests/reference/make_quant_fixtures.py): packed codes, absmax, nested
 * absmax and offset, and dequantized values bit for bit, and torch's float32 mean.
 * Where bitsandbytes' CPU and CUDA paths differ, hone follows CUDA and the test expects
 * exactly that: in all-zero blocks code 0 and absmax 0 (CPU: the top code, and 1e-38
 * for a partial block; under double quant the two dequantize to different non-zero
 * values), and a zero may carry either sign (CPU's FP4 code 8 gives +0 or -0 by shape). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "options.h"
#include "registry.h"
#include "safetensors.h"
#include "hone/hone.h"
#include "util.h"

static const hone_st_tensor *get(hone_st_file *f, const char *name)
{
    const hone_st_tensor *t = hone_st_find(f, name);
    CHECK(t, "missing fixture tensor %s", name);
    return t;
}

/* the plugin's layout (see plugins/quantizers/bnb4.c) */
static size_t off_absmax(size_t n)
{
    return ((n + 1) / 2 + 3) & ~(size_t)3;
}

/* Double quant where bitsandbytes' CUDA kernel and its old C++ CPU search part: a nested
 * value just above the map's lowest entry (docs/numerics.md §1). A 4 x 128 weight, blocks
 * of 64, each block's absmax on one element: rows 0-2 have absmax 373/256 (five blocks)
 * and 372/256; row 3, the outlier, 32/256 and 35/256. All dyadic, so the mean is exactly
 * offset = 2304/256 / 8 = 1.125 in any summation order, the values minus it are 85/256,
 * 84/256, -1 and -253/256, and the nested absmax is 1. Block 7's x = -0.98828125 is more
 * than 0.001 from the midpoint either rule tests, so the kernel's approximate reciprocal
 * (1 ulp at worst) cannot change its code. With the map's c[0] = -0x1.fc6666p-1
 * (-0.99296874) and c[1] = -0x1.f53334p-1 (-0.97890627):
 *   CUDA (dQuantize): x <= c[1], so the search ends at pivot 0 with upper = c[1]; x > c[0]
 *     and not above (c[0] + c[1]) * 0.5 = -0.9859375, so code 0;
 *   C++ (c[0] taken as -1): last entry <= x is 0 (-1); |x - c[1]| = 0.009375 is less than
 *     |x + 1| = 0.01171875, so code 1.
 * Dequantized, block 7's largest element (NF4 code 15, value 1) is c[0] * 1 + 1.125 =
 * 0x1.0e6668p-3 (exact: Sterbenz); the C++ code would give 0x1.2b333p-3. */
static void nested_near_lowest(hone_registry *reg)
{
    hone_err err = {0};
    const hone_feature *nf4 = hone_registry_find(reg, HONE_KIND_QUANTIZER, "nf4");
    hone_node *opt = hone_node_new(HONE_NODE_TABLE);
    hone_node_set_path(opt, "block_size", "64");
    hone_node_set_path(opt, "double_quant", "true");
    hone_opts *o = NULL;
    void *st = NULL;
    if (!CHECK(nf4 && !hone_opts_resolve(&o, nf4->info->options, opt, "q", "nf4", &err) &&
                   !((const hone_quantizer_vt *)nf4->vtable)->create(&hone_host_table, o, &st, &err),
               "nested near map[0]: %s", nf4 ? err.msg : "nf4 not registered")) {
        hone_opts_free(o);
        hone_node_free(opt);
        return;
    }
    const hone_quantizer_vt *vt = nf4->vtable;
    enum { ROWS = 4, COLS = 128, NB = 8 };
    static const float am[NB] = {373 / 256.0f, 373 / 256.0f, 373 / 256.0f, 372 / 256.0f,
                                 373 / 256.0f, 373 / 256.0f, 32 / 256.0f, 35 / 256.0f};
    float w[ROWS * COLS] = {0}, out[ROWS * COLS];
    for (int b = 0; b < NB; b++) w[64 * b + 17] = am[b];
    size_t bytes = vt->packed_bytes(st, ROWS, COLS), at = (off_absmax(ROWS * COLS) + NB + 3) & ~(size_t)3;
    unsigned char *p = malloc(bytes);
    int bad = !p || vt->quantize(st, p, w, ROWS, COLS, &err) != 0;
    float nested = 0, offset = 0;
    if (!bad) {
        memcpy(&nested, p + at, 4);
        memcpy(&offset, p + at + 4, 4);
        vt->dequantize(st, out, p, ROWS, COLS, 0, ROWS);
    }
    const unsigned char *q = bad ? NULL : p + off_absmax(ROWS * COLS);
    const float want = 0x1.0e6668p-3f;   /* c[0] + 1.125 */
    CHECK(!bad && nested == 1.0f && offset == 1.125f && q[6] == 0 && q[7] == 0 && out[64 * 6 + 17] == want &&
              out[64 * 7 + 17] == want,
          "nested near map[0]: nested absmax %a offset %a codes %d %d (want 1, 1.125, 0 0), dequantized %a %a "
          "(want %a)", (double)nested, (double)offset, q ? q[6] : -1, q ? q[7] : -1,
          bad ? 0.0 : (double)out[64 * 6 + 17], bad ? 0.0 : (double)out[64 * 7 + 17], (double)want);
    free(p);
    vt->destroy(st);
    hone_opts_free(o);
    hone_node_free(opt);
}

int main(void)
{
    hone_err err = {0};
    hone_registry *reg = hone_registry_new();
    if (hone_registry_load_dir(reg, HONE_BUILD_DIR "/plugins", &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    hone_st_file *f = NULL;
    char *text = NULL;
    if (hone_st_open(&f, HONE_SOURCE_DIR "/tests/fixtures/quant/bnb4.safetensors", &err) ||
        hone_read_file(HONE_SOURCE_DIR "/tests/fixtures/quant/cases.json", &text, NULL, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    cJSON *cases = cJSON_Parse(text);
    free(text);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char *qt = cJSON_GetObjectItem(c, "quant_type")->valuestring;
        int bs = cJSON_GetObjectItem(c, "blocksize")->valueint, dq = cJSON_IsTrue(cJSON_GetObjectItem(c, "double_quant"));
        const cJSON *shape = cJSON_GetObjectItem(c, "shape");
        size_t rows = (size_t)cJSON_GetArrayItem(shape, 0)->valueint, cols = (size_t)cJSON_GetArrayItem(shape, 1)->valueint;
        size_t n = rows * cols, nb = (n + (size_t)bs - 1) / (size_t)bs;
        char key[256];
        snprintf(key, sizeof key, "input.%s", cJSON_GetObjectItem(c, "input")->valuestring);
        const hone_st_tensor *in = get(f, key);
        snprintf(key, sizeof key, "%s.packed", name);
        const hone_st_tensor *pk = get(f, key);
        snprintf(key, sizeof key, "%s.absmax", name);
        const hone_st_tensor *am = get(f, key);
        snprintf(key, sizeof key, "%s.dequant", name);
        const hone_st_tensor *dqv = get(f, key);
        snprintf(key, sizeof key, "%s.zero_blocks", name);
        const hone_st_tensor *zb = get(f, key);
        if (!in || !pk || !am || !dqv || !zb) continue;
        const unsigned char *zero = zb->data;

        const hone_feature *q = hone_registry_find(reg, HONE_KIND_QUANTIZER, qt);
        hone_node *opt = hone_node_new(HONE_NODE_TABLE);
        char v[32];
        snprintf(v, sizeof v, "%d", bs);
        hone_node_set_path(opt, "block_size", v);
        hone_node_set_path(opt, "double_quant", dq ? "true" : "false");
        hone_opts *o = NULL;
        void *st = NULL;
        const hone_quantizer_vt *vt = q ? q->vtable : NULL;
        if (!q || hone_opts_resolve(&o, q->info->options, opt, "q", qt, &err) || vt->create(&hone_host_table, o, &st, &err)) {
            CHECK(0, "%s: %s", name, q ? err.msg : "quantizer not registered");
            hone_node_free(opt);
            hone_opts_free(o);
            continue;
        }
        float *w = malloc(n * sizeof *w), *out = malloc(n * sizeof *out);
        hone_st_to_f32(f, in, w, 0, n, &err);
        size_t bytes = vt->packed_bytes(st, rows, cols);
        unsigned char *p = malloc(bytes);
        int bad = vt->quantize(st, p, w, rows, cols, &err) != 0;
        const unsigned char *want = pk->data;
        /* codes: every nibble outside all-zero blocks */
        size_t code_diff = 0;
        size_t zero_codes = 0;
        for (size_t e = 0; e < n + (n & 1); e++) {
            if (zero[(e < n ? e : n - 1) / (size_t)bs]) {   /* CUDA's code 0 */
                zero_codes += (e & 1 ? p[e / 2] & 15 : p[e / 2] >> 4) != 0;
                continue;
            }
            unsigned a = e & 1 ? p[e / 2] & 15 : p[e / 2] >> 4, b = e & 1 ? want[e / 2] & 15 : want[e / 2] >> 4;
            code_diff += a != b;
        }
        /* absmax (float32 or uint8 codes) */
        size_t am_diff = 0;
        for (size_t b = 0; b < nb; b++) {
            if (zero[b]) {
                float a;
                memcpy(&a, p + off_absmax(n) + 4 * b, 4);
                am_diff += !dq && a != 0.0f;   /* CUDA's 0 (the nested code follows the CPU's value) */
                continue;
            }
            am_diff += dq ? p[off_absmax(n) + b] != ((const unsigned char *)am->data)[b]
                          : memcmp(p + off_absmax(n) + 4 * b, (const char *)am->data + 4 * b, 4) != 0;
        }
        size_t nested_diff = 0;
        if (dq) {
            size_t nb2 = (nb + 255) / 256, at = (off_absmax(n) + nb + 3) & ~(size_t)3;
            snprintf(key, sizeof key, "%s.nested_absmax", name);
            const hone_st_tensor *na = get(f, key);
            snprintf(key, sizeof key, "%s.offset", name);
            const hone_st_tensor *of = get(f, key);
            if (na && of) {
                nested_diff += memcmp(p + at, na->data, 4 * nb2) != 0;
                nested_diff += memcmp(p + at + 4 * nb2, of->data, 4) != 0;
                if (nested_diff) {
                    float mine, theirs;
                    memcpy(&mine, p + at + 4 * nb2, 4);
                    memcpy(&theirs, of->data, 4);
                    printf("  %s offset %a vs %a\n", name, mine, theirs);
                }
            }
        }
        /* dequantized values, whole weight and a row range */
        vt->dequantize(st, out, p, rows, cols, 0, rows);
        size_t deq_diff = 0;
        const float *wd = dqv->data;
        for (size_t e = 0; e < n; e++) {
            int d;
            if (zero[e / (size_t)bs]) d = !dq && out[e] != 0.0f;   /* zero, or (double quant) CUDA's own value */
            else d = out[e] == 0.0f && wd[e] == 0.0f ? 0 : memcmp(&out[e], &wd[e], 4) != 0;
            if (d && getenv("VERBOSE") && deq_diff < 3) printf("  %s [%zu] %a vs %a\n", name, e, out[e], wd[e]);
            deq_diff += d;
        }
        size_t r0 = rows / 3, nr = rows - r0 > 2 ? 2 : rows - r0;
        vt->dequantize(st, out, p, rows, cols, r0, nr);
        for (size_t e = 0; e < nr * cols; e++) {
            size_t g = r0 * cols + e;
            if (!zero[g / (size_t)bs]) deq_diff += out[e] == 0.0f && wd[g] == 0.0f ? 0 : memcmp(&out[e], &wd[g], 4) != 0;
        }
        code_diff += zero_codes;
        int same = !bad && !code_diff && !am_diff && !nested_diff && !deq_diff;
        if (CHECK(same, "%s: codes %zu absmax %zu nested %zu dequant %zu differ%s", name, code_diff, am_diff,
                  nested_diff, deq_diff, bad ? " (quantize failed)" : ""))
            printf("ok   %-28s %zu elements, %zu bytes (%.3f bits per element)\n", name, n, bytes, 8.0 * bytes / n);
        vt->destroy(st);
        free(w), free(out), free(p);
        hone_opts_free(o);
        hone_node_free(opt);
    }
    cJSON_Delete(cases);

    /* torch's float32 mean (the double-quant offset) for many sizes: a weight whose i-th
     * block of 64 holds a_i once, so the absmax array is exactly a */
    const hone_st_tensor *ms = get(f, "mean.sizes"), *mv = get(f, "mean.values");
    const hone_feature *nf4 = hone_registry_find(reg, HONE_KIND_QUANTIZER, "nf4");
    hone_node *opt = hone_node_new(HONE_NODE_TABLE);
    hone_node_set_path(opt, "double_quant", "true");
    hone_opts *o = NULL;
    void *st = NULL;
    const hone_quantizer_vt *vt = nf4->vtable;
    if (ms && mv && !hone_opts_resolve(&o, nf4->info->options, opt, "q", "nf4", &err) &&
        !vt->create(&hone_host_table, o, &st, &err)) {
        size_t mean_bad = 0;
        for (int64_t k = 0; k < ms->shape[0]; k++) {
            int64_t m = ((const int64_t *)ms->data)[k];
            float *w = calloc((size_t)m * 64, sizeof *w);
            for (int64_t i = 0; i < m; i++) w[i * 64] = (float)((double)((i * 2654435761LL) % 1000003) / 1000003.0 * 0.3);
            size_t bytes = vt->packed_bytes(st, (size_t)m, 64), nb2 = ((size_t)m + 255) / 256;
            unsigned char *p = malloc(bytes);
            vt->quantize(st, p, w, (size_t)m, 64, &err);
            float got, want = ((const float *)mv->data)[k];
            memcpy(&got, p + bytes - 4, 4);
            (void)nb2;
            if (memcmp(&got, &want, 4) != 0) {
                printf("FAIL torch mean of %lld values: %a, torch %a\n", (long long)m, got, want);
                mean_bad++;
            }
            free(w);
            free(p);
        }
        if (CHECK(!mean_bad, "torch float32 mean: %zu sizes differ", mean_bad))
            printf("ok   torch float32 mean (cascade sum) for %lld sizes up to %lld\n", (long long)ms->shape[0],
                   (long long)((const int64_t *)ms->data)[ms->shape[0] - 1]);
        vt->destroy(st);
    }
    hone_opts_free(o);
    hone_node_free(opt);

    /* int8: CB, SCB and the dequantized weight against bitsandbytes' int8_vectorwise_quant */
    const hone_feature *i8 = hone_registry_find(reg, HONE_KIND_QUANTIZER, "int8");
    static const char *const i8_inputs[] = {"odd", "bf16", "big", "ramp"};
    for (size_t k = 0; k < 4 && i8; k++) {
        char key[128];
        snprintf(key, sizeof key, "input.%s", i8_inputs[k]);
        const hone_st_tensor *in = get(f, key);
        snprintf(key, sizeof key, "int8.%s.cb", i8_inputs[k]);
        const hone_st_tensor *cb = get(f, key);
        snprintf(key, sizeof key, "int8.%s.scb", i8_inputs[k]);
        const hone_st_tensor *scb = get(f, key);
        snprintf(key, sizeof key, "int8.%s.dequant", i8_inputs[k]);
        const hone_st_tensor *dq8 = get(f, key);
        if (!in || !cb || !scb || !dq8) continue;
        size_t rows = (size_t)in->shape[0], cols = (size_t)in->shape[1], n = rows * cols;
        const hone_quantizer_vt *v8 = i8->vtable;
        hone_opts *o8 = NULL;
        void *s8 = NULL;
        hone_opts_resolve(&o8, i8->info->options, NULL, "q", "int8", &err);
        v8->create(&hone_host_table, o8, &s8, &err);
        float *w = malloc(n * sizeof *w), *out = malloc(n * sizeof *out);
        unsigned char *p = malloc(v8->packed_bytes(s8, rows, cols));
        hone_st_to_f32(f, in, w, 0, n, &err);
        v8->quantize(s8, p, w, rows, cols, &err);
        v8->dequantize(s8, out, p, rows, cols, 0, rows);
        size_t at = (n + 3) & ~(size_t)3;
        int same = !memcmp(p, cb->data, n) && !memcmp(p + at, scb->data, 4 * rows) && !memcmp(out, dq8->data, 4 * n);
        if (CHECK(same, "int8 %s differs from bitsandbytes", i8_inputs[k]))
            printf("ok   int8.%-23s %zu elements, CB, SCB and dequantized values identical\n", i8_inputs[k], n);
        v8->destroy(s8);
        hone_opts_free(o8);
        free(w), free(out), free(p);
    }
    nested_near_lowest(reg);
    hone_st_close(f);
    hone_registry_free(reg);
    return check_summary("quant");
}
