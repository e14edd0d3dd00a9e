/* model_config.c — reading config.json and the RoPE frequencies it implies. */
#include "model_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

/* an integer field in [lo, hi]; missing -> def (def < 0: required) */
static int get_int(const cJSON *root, const char *key, int def, int lo, int hi, int *out, const char *path,
                   hone_err *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (def == -1) return hone_errf(err, HONE_EINVAL, "%s: missing \"%s\"", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < lo || j->valuedouble > hi)
        return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be an integer in [%d, %d]", path, key, lo, hi);
    *out = (int)j->valuedouble;
    return 0;
}

static int get_num(const cJSON *root, const char *key, double def, double *out, const char *path, hone_err *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0) || !isfinite(j->valuedouble))
        return hone_errf(err, HONE_EINVAL, "%s: \"%s\" must be a positive number", path, key);
    *out = j->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *key, int def)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

/* bos/eos may be an id or a list of ids (the first is used) */
static int token_id(const cJSON *root, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(j)) j = cJSON_GetArrayItem(j, 0);
    return cJSON_IsNumber(j) && j->valuedouble >= 0 ? (int)j->valuedouble : -1;
}

int hone_model_config_parse(hone_model_config *c, const char *json, const char *path, hone_err *err)
{
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return hone_errf(err, HONE_EINVAL, "%s: not a JSON object", path);
    }
    int rc = 0;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(a0)) snprintf(c->arch, sizeof c->arch, "%s", a0->valuestring);
    else if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "llama")) snprintf(c->arch, sizeof c->arch, "LlamaForCausalLM");
    else if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "mistral")) snprintf(c->arch, sizeof c->arch, "MistralForCausalLM");
    else if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "qwen2")) snprintf(c->arch, sizeof c->arch, "Qwen2ForCausalLM");
    int llama = !strcmp(c->arch, "LlamaForCausalLM"), mistral = !strcmp(c->arch, "MistralForCausalLM"),
        qwen2 = !strcmp(c->arch, "Qwen2ForCausalLM");
    if (!llama && !mistral && !qwen2)
        rc = hone_errf(err, HONE_EUNSUPPORTED,
                       "%s: architecture \"%s\" is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)",
                       path, c->arch[0] ? c->arch : "(none given)");
    const int big = 1 << 24;
    if (!rc) rc = get_int(root, "vocab_size", -1, 1, big, &c->vocab, path, err);
    if (!rc) rc = get_int(root, "hidden_size", -1, 1, big, &c->hidden, path, err);
    if (!rc) rc = get_int(root, "intermediate_size", -1, 1, big, &c->inter, path, err);
    if (!rc) rc = get_int(root, "num_hidden_layers", -1, 1, 4096, &c->layers, path, err);
    if (!rc) rc = get_int(root, "num_attention_heads", -1, 1, 4096, &c->heads, path, err);
    if (!rc) rc = get_int(root, "num_key_value_heads", c->heads, 1, c->heads, &c->kv_heads, path, err);
    if (!rc) rc = get_int(root, "head_dim", c->hidden / c->heads, 2, 4096, &c->head_dim, path, err);
    if (!rc) rc = get_int(root, "max_position_embeddings", 2048, 1, big, &c->max_pos, path, err);
    double eps = 1e-6;
    if (!rc) rc = get_num(root, "rms_norm_eps", 1e-6, &eps, path, err);
    c->rms_eps = (float)eps;
    /* transformers 5 writes rope_theta and the scaling into one rope_parameters object */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (!cJSON_IsObject(rp)) rp = NULL;
    if (!rc) rc = get_num(rp && !cJSON_HasObjectItem(root, "rope_theta") ? rp : root, "rope_theta", 10000.0,
                          &c->rope_theta, path, err);
    if (!rc && c->heads % c->kv_heads != 0)
        rc = hone_errf(err, HONE_EINVAL, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                       c->heads, c->kv_heads);
    if (!rc && c->head_dim % 2 != 0) rc = hone_errf(err, HONE_EINVAL, "%s: head_dim %d must be even for RoPE", path, c->head_dim);
    c->tied = get_bool(root, "tie_word_embeddings", qwen2 ? 0 : 0);
    c->qkv_bias = qwen2 ? 1 : get_bool(root, "attention_bias", 0);
    if (!rc && llama && get_bool(root, "mlp_bias", 0))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: mlp_bias = true is not supported", path);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (!rc && cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0)
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: hidden_act \"%s\" is not supported (silu)", path, act->valuestring);
    /* sliding windows: Mistral sets sliding_window; Qwen2 only when use_sliding_window */
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (!rc && cJSON_IsNumber(sw) && (mistral || get_bool(root, "use_sliding_window", 0))) c->sliding_window = (int)sw->valuedouble;
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!rc && qc && !cJSON_IsNull(qc)) {
        const cJSON *qm = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
        const cJSON *qt = cJSON_GetObjectItemCaseSensitive(qc, "bnb_4bit_quant_type");
        const char *method = cJSON_IsString(qm) ? qm->valuestring : "?";
        if (strcmp(method, "bitsandbytes") != 0 || !get_bool(qc, "load_in_4bit", 0) || !cJSON_IsString(qt) ||
            (strcmp(qt->valuestring, "nf4") != 0 && strcmp(qt->valuestring, "fp4") != 0))
            rc = hone_errf(err, HONE_EUNSUPPORTED,
                           "%s: quantization_config (quant_method \"%s\"): only bitsandbytes 4-bit (nf4 / fp4) "
                           "checkpoints can be loaded; point model.path at the original weights instead",
                           path, method);
        else {
            snprintf(c->prequant, sizeof c->prequant, "%s", qt->valuestring);
            c->prequant_double = get_bool(qc, "bnb_4bit_use_double_quant", 0);
        }
    }
    c->bos_id = token_id(root, "bos_token_id");
    c->eos_id = token_id(root, "eos_token_id");

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) rs = rp;
    if (!rc && rs && !cJSON_IsNull(rs)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(type)) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "(missing)";
        if (!strcmp(t, "default")) c->rope_type = HONE_ROPE_DEFAULT;
        else if (!strcmp(t, "linear") || !strcmp(t, "llama3")) {
            c->rope_type = !strcmp(t, "linear") ? HONE_ROPE_LINEAR : HONE_ROPE_LLAMA3;
            rc = get_num(rs, "factor", -1, &c->rope_factor, path, err);
            if (!rc && c->rope_factor < 0) rc = hone_errf(err, HONE_EINVAL, "%s: rope_scaling needs \"factor\"", path);
            if (!rc && c->rope_type == HONE_ROPE_LLAMA3) {
                rc = get_num(rs, "low_freq_factor", 1.0, &c->low_freq_factor, path, err);
                if (!rc) rc = get_num(rs, "high_freq_factor", 4.0, &c->high_freq_factor, path, err);
                if (!rc) rc = get_int(rs, "original_max_position_embeddings", 8192, 1, big, &c->rope_orig_max, path, err);
                if (!rc && !(c->high_freq_factor > c->low_freq_factor))
                    rc = hone_errf(err, HONE_EINVAL, "%s: rope_scaling high_freq_factor must exceed low_freq_factor", path);
            }
        } else {
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported (linear, llama3)", path, t);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int hone_model_config_load(hone_model_config *c, const char *dir, hone_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    int rc = hone_read_file(path, &text, NULL, err);
    if (rc) return rc;
    rc = hone_model_config_parse(c, text, path, err);
    free(text);
    return rc;
}

void hone_rope_inv_freq(const hone_model_config *c, float *inv)
{
    int half = c->head_dim / 2;
    /* transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all in fp32 */
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c->head_dim;
        inv[i] = 1.0f / powf((float)c->rope_theta, e);
    }
    if (c->rope_type == HONE_ROPE_LINEAR) {
        for (int i = 0; i < half; i++) inv[i] /= (float)c->rope_factor;
    } else if (c->rope_type == HONE_ROPE_LLAMA3) {
        /* _compute_llama3_parameters, in fp32 as torch runs it */
        float factor = (float)c->rope_factor, lo = (float)c->low_freq_factor, hi = (float)c->high_freq_factor;
        float old = (float)c->rope_orig_max;
        float lo_wl = old / lo, hi_wl = old / hi;
        for (int i = 0; i < half; i++) {
            float wl = 2.0f * (float)M_PI / inv[i];
            float v = wl > lo_wl ? inv[i] / factor : inv[i];
            float smooth = (old / wl - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * v / factor + smooth * v;
            int medium = !(wl < hi_wl) && !(wl > lo_wl);
            inv[i] = medium ? smoothed : v;
        }
    }
}
