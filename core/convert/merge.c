/* merge.c — `hone convert BASE_DIR --adapter DIR OUT_DIR`: a PEFT LoRA adapter folded into
 * its base as peft's merge_and_unload folds it — W + (B A) * scaling, the product and the
 * sum in fp32, then one rounding to the stored dtype (docs/numerics.md §3) — and written as an
 * HF model directory one tensor at a time, so merging needs one tensor's worth of memory. */
#include "merge.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gguf_write.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

typedef struct lora_pair {
    char target[256];                 /* the base tensor: "model.layers.0.self_attn.q_proj.weight" */
    const hone_st_tensor *a, *b;      /* lora_A [r, in], lora_B [out, r] */
} lora_pair;

struct hone_merge_src {
    hone_st_set base;
    hone_st_file *adapter;    /* NULL: the base alone */
    lora_pair *pairs;
    size_t np;
    float scale;
    size_t merged;
    cJSON *config;            /* the base's config.json */
};
typedef hone_merge_src merge_ctx;

static lora_pair *pair_of(const merge_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->np; i++)
        if (!strcmp(c->pairs[i].target, name)) return &c->pairs[i];
    return NULL;
}

int hone_merge_src_read(hone_merge_src *c, const char *name, float *out, hone_err *err)
{
    const hone_st_file *f = NULL;
    const hone_st_tensor *w = hone_st_set_find(&c->base, name, &f);
    if (!w) return hone_errf(err, HONE_EINVAL, "%s: no tensor %s", c->base.dir, name);
    int rc = hone_st_to_f32(f, w, out, 0, w->numel, err);
    hone_st_release(f, w);
    const lora_pair *p = pair_of(c, name);
    if (rc || !p) return rc;
    size_t rows = (size_t)w->shape[0], cols = (size_t)w->shape[1], r = (size_t)p->a->shape[0];
    float *a = malloc(r * cols * sizeof *a), *b = malloc(rows * r * sizeof *b), *d = malloc(rows * cols * sizeof *d);
    if (!a || !b || !d) rc = hone_errf(err, HONE_ENOMEM, "out of memory merging %s", name);
    if (!rc) rc = hone_st_to_f32(c->adapter, p->a, a, 0, p->a->numel, err);
    if (!rc) rc = hone_st_to_f32(c->adapter, p->b, b, 0, p->b->numel, err);
    if (!rc) {
        /* peft: (B @ A) * scaling, then W += delta */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)r, 1.0f, b, (int)r, a, (int)cols,
                    0.0f, d, (int)cols);
        for (size_t i = 0; i < rows * cols; i++) out[i] += d[i] * c->scale;
        /* peft adds into the base's own dtype: a bf16 or f16 base holds the sum rounded to
         * it, which is what a Python export of the merged model starts from */
        if (w->dtype == HONE_DT_BF16)
            for (size_t i = 0; i < rows * cols; i++) {
                uint32_t u = (uint32_t)hone_f32_to_bf16(out[i]) << 16;
                memcpy(&out[i], &u, 4);
            }
        else if (w->dtype == HONE_DT_F16)
            for (size_t i = 0; i < rows * cols; i++) out[i] = hone_half_to_f32(hone_f32_to_half(out[i]));
        c->merged++;
    }
    free(a), free(b), free(d);
    return rc;
}

/* the safetensors writer's producer */
static int fill(void *ctx, const hone_st_out *t, float *out, hone_err *err)
{
    return hone_merge_src_read(ctx, t->name, out, err);
}

static int copy_file(const char *from_dir, const char *to_dir, const char *name, hone_err *err)
{
    char from[4300], to[4300], *data = NULL;
    size_t len = 0;
    snprintf(from, sizeof from, "%s/%s", from_dir, name);
    if (!hone_is_file(from)) return 0;
    snprintf(to, sizeof to, "%s/%s", to_dir, name);
    int rc = hone_read_file(from, &data, &len, err);
    if (!rc) rc = hone_write_file(to, data, len, err);
    free(data);
    return rc;
}

/* the scaling of adapter_config.json, after hone_adapter_config_read refused what a plain
 * merge would get wrong: peft's lora_alpha / r, or lora_alpha / sqrt(r) with rslora, a
 * Python float that the tensor product multiplies as float32 */
static int adapter_scale(const char *dir, float *scale, hone_err *err)
{
    hone_adapter_config ac;
    int rc = hone_adapter_config_read(dir, &ac, err);
    if (!rc) *scale = (float)(ac.alpha / (ac.rslora ? sqrt((double)ac.r) : (double)ac.r));
    return rc;
}

/* pairs every lora_A with its lora_B and the base tensor they change; anything else in the
 * adapter, or a shape that does not fit, is an error naming the tensor */
static int pair_up(merge_ctx *c, const char *adapter_path, hone_err *err)
{
    static const char prefix[] = "base_model.model.";
    const hone_st_file *f = c->adapter;
    c->pairs = calloc(f->n ? f->n : 1, sizeof *c->pairs);
    if (!c->pairs) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n; i++) {
        const hone_st_tensor *t = &f->t[i];
        const char *name = t->name, *ab = strstr(name, ".lora_A.weight");
        int is_b = 0;
        if (!ab) ab = strstr(name, ".lora_B.weight"), is_b = 1;
        if (strncmp(name, prefix, sizeof prefix - 1) || !ab || ab[sizeof ".lora_A.weight" - 1] ||
            (size_t)(ab - name) - (sizeof prefix - 1) + sizeof ".weight" > sizeof c->pairs[0].target)
            return hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s is not a LoRA A or B matrix of a linear layer",
                             adapter_path, name);
        if (t->ndim != 2) return hone_errf(err, HONE_EINVAL, "%s: tensor %s is not 2-D", adapter_path, name);
        char target[256];
        snprintf(target, sizeof target, "%.*s.weight", (int)(ab - name - (sizeof prefix - 1)), name + sizeof prefix - 1);
        lora_pair *p = pair_of(c, target);
        if (!p) {
            p = &c->pairs[c->np++];
            snprintf(p->target, sizeof p->target, "%s", target);
        }
        *(is_b ? &p->b : &p->a) = t;
    }
    for (size_t i = 0; i < c->np; i++) {
        lora_pair *p = &c->pairs[i];
        const hone_st_file *bf = NULL;
        const hone_st_tensor *w = hone_st_set_find(&c->base, p->target, &bf);
        if (!p->a || !p->b)
            return hone_errf(err, HONE_EINVAL, "%s: %s has lora_%s but not lora_%s", adapter_path, p->target,
                             p->a ? "A" : "B", p->a ? "B" : "A");
        if (!w) return hone_errf(err, HONE_EINVAL, "%s: the base has no tensor %s for the adapter's", adapter_path, p->target);
        if (w->ndim != 2 || p->a->shape[1] != w->shape[1] || p->b->shape[0] != w->shape[0] || p->a->shape[0] != p->b->shape[1])
            return hone_errf(err, HONE_EINVAL,
                             "%s: lora_A [%lld, %lld] and lora_B [%lld, %lld] do not fit the base's %s [%lld, %lld]",
                             adapter_path, (long long)p->a->shape[0], (long long)p->a->shape[1], (long long)p->b->shape[0],
                             (long long)p->b->shape[1], p->target, (long long)w->shape[0],
                             (long long)(w->ndim > 1 ? w->shape[1] : 0));
    }
    return 0;
}

int hone_merge_src_open(hone_merge_src **out, const char *base_dir, const char *adapter_dir, hone_err *err)
{
    char path[4300], *text = NULL;
    hone_merge_src *c = calloc(1, sizeof *c);
    if (!c) return hone_errf(err, HONE_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/config.json", base_dir);
    int rc = hone_read_file(path, &text, NULL, err);
    if (!rc) {
        c->config = cJSON_Parse(text);
        if (!cJSON_IsObject(c->config)) rc = hone_errf(err, HONE_EINVAL, "%s: not a JSON object", path);
        else if (cJSON_GetObjectItemCaseSensitive(c->config, "quantization_config"))
            rc = hone_errf(err, HONE_EUNSUPPORTED,
                           "%s: the base is a pre-quantized checkpoint; merge into the original (bf16 or fp32) model, "
                           "as the adapter's deltas are not representable in 4 bits", path);
    }
    free(text);
    if (!rc) rc = hone_st_set_open(&c->base, base_dir, err);
    for (size_t i = 0; i < c->base.n && !rc; i++)
        for (size_t k = 0; k < c->base.files[i]->n && !rc; k++) {
            const hone_st_tensor *t = &c->base.files[i]->t[k];
            if (t->dtype != HONE_DT_F32 && t->dtype != HONE_DT_BF16 && t->dtype != HONE_DT_F16)
                rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s is %s; hone converts F32, BF16 and F16 checkpoints",
                               base_dir, t->name, hone_dtype_name(t->dtype));
        }
    if (!rc && adapter_dir) {
        rc = adapter_scale(adapter_dir, &c->scale, err);
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", adapter_dir);
        if (!rc) rc = hone_st_open(&c->adapter, path, err);
        if (!rc) rc = pair_up(c, path, err);
    }
    if (rc) hone_merge_src_close(c);
    else *out = c;
    return rc;
}

const hone_st_set *hone_merge_src_weights(const hone_merge_src *s) { return &s->base; }
const cJSON *hone_merge_src_config(const hone_merge_src *s) { return s->config; }

void hone_merge_src_stats(const hone_merge_src *s, size_t *merged, float *scale)
{
    *merged = s->merged;
    *scale = s->scale;
}

void hone_merge_src_close(hone_merge_src *s)
{
    if (!s) return;
    free(s->pairs);
    hone_st_close(s->adapter);
    hone_st_set_close(&s->base);
    cJSON_Delete(s->config);
    free(s);
}

int hone_merge_adapter(const char *base_dir, const char *adapter_dir, const char *out_dir, hone_dtype dtype,
                       hone_merge_info *info, hone_err *err)
{
    memset(info, 0, sizeof *info);
    char path[4300];
    if (dtype != HONE_DT_F32 && dtype != HONE_DT_BF16)
        return hone_errf(err, HONE_EINVAL, "merge: the output dtype is bf16 or f32");
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (hone_is_file(path)) return hone_errf(err, HONE_EINVAL, "%s exists; hone convert does not overwrite", path);
    hone_merge_src *c = NULL;
    int rc = hone_merge_src_open(&c, base_dir, adapter_dir, err);
    if (rc) return rc;

    /* every base tensor, in the output dtype, produced as the writer reaches it */
    size_t total = 0, n = 0;
    for (size_t i = 0; i < c->base.n; i++) total += c->base.files[i]->n;
    hone_st_out *outs = calloc(total ? total : 1, sizeof *outs);
    if (!outs) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->base.n && !rc; i++)
        for (size_t k = 0; k < c->base.files[i]->n; k++) {
            const hone_st_tensor *t = &c->base.files[i]->t[k];
            hone_st_out *o = &outs[n++];
            o->name = t->name, o->dtype = dtype, o->ndim = t->ndim, o->fill = fill, o->ctx = c;
            memcpy(o->shape, t->shape, sizeof o->shape);
            info->params += t->numel;
        }
    if (!rc) rc = hone_mkdirs(out_dir, err);
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (!rc) rc = hone_st_write(path, outs, n, err);
    if (!rc) {
        cJSON *cfg = cJSON_Duplicate(c->config, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "torch_dtype");
        cJSON_AddStringToObject(cfg, "torch_dtype", dtype == HONE_DT_BF16 ? "bfloat16" : "float32");
        char *json = cJSON_Print(cfg);
        cJSON_Delete(cfg);
        snprintf(path, sizeof path, "%s/config.json", out_dir);
        rc = json ? hone_write_file(path, json, strlen(json), err) : hone_errf(err, HONE_ENOMEM, "out of memory");
        free(json);
    }
    static const char *beside[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                   "special_tokens_map.json", "tokenizer.model", "chat_template.jinja"};
    for (size_t k = 0; k < sizeof beside / sizeof *beside && !rc; k++) rc = copy_file(base_dir, out_dir, beside[k], err);
    info->tensors = n;
    hone_merge_src_stats(c, &info->merged, &info->scale);
    free(outs);
    hone_merge_src_close(c);
    return rc;
}
