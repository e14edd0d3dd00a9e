/* adapter.c — PEFT LoRA adapters: adapter_model.safetensors + adapter_config.json with
 * PEFT's key names and shapes (docs/numerics.md §3.6-3.7), so an adapter moves both ways
 * between hone and transformers + peft. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

/* The LoRA tensors are the model's trainable tensors in LoRA mode, named as PEFT saves them. */
int hone_model_save_adapter(const hone_model *m, const char *dir, const char *base_model, hone_err *err)
{
    size_t n;
    const hone_tensor_info *t = hone_model_tensors(m, &n);
    float *params = hone_model_params((hone_model *)m, NULL);
    if (n == 0 || !strstr(t[0].name, "lora_A"))
        return hone_errf(err, HONE_EINVAL, "%s: this model trains no LoRA adapter (lora = false)", dir);
    int rc = hone_mkdirs(dir, err);
    if (rc) return rc;
    hone_st_out *out = calloc(n, sizeof *out);
    if (!out) return hone_errf(err, HONE_ENOMEM, "out of memory");
    int r = 0;
    unsigned targets = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (hone_st_out){t[i].name, HONE_DT_F32, 2, {(int64_t)t[i].rows, (int64_t)t[i].cols}, params + t[i].offset, NULL,
                                NULL, NULL};
        if (strstr(t[i].name, ".lora_A.")) r = (int)t[i].rows;
        for (int k = 0; k < HONE_NLINEAR; k++)
            if (strstr(t[i].name, hone_linear_names[k])) targets |= 1u << k;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rc = hone_st_write(path, out, n, err);
    free(out);
    if (rc) return rc;

    double alpha, dropout;
    int rslora;
    hone_model_lora_settings(m, &alpha, &dropout, &rslora);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "auto_mapping");
    cJSON_AddStringToObject(j, "base_model_name_or_path", base_model ? base_model : "");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNumberToObject(j, "lora_alpha", alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", dropout);
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", r);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (int k = 0; k < HONE_NLINEAR; k++)
        if (targets & (1u << k)) cJSON_AddItemToArray(tm, cJSON_CreateString(hone_linear_names[k]));
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "use_rslora", rslora);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return hone_errf(err, HONE_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    rc = hone_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}

unsigned hone_target_mask(const char *name)
{
    if (!strcmp(name, "all-linear")) return (1u << HONE_NLINEAR) - 1;
    for (int k = 0; k < HONE_NLINEAR; k++)
        if (!strcmp(name, hone_linear_names[k])) return 1u << k;
    return 0;
}

int hone_adapter_config_read(const char *dir, hone_adapter_config *out, hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    cJSON *j = NULL;
    int rc = hone_read_json_object(path, &j, err);
    if (rc) return rc;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "peft_type"), *r = cJSON_GetObjectItemCaseSensitive(j, "r"),
                *alpha = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha"),
                *bias = cJSON_GetObjectItemCaseSensitive(j, "bias"),
                *tm = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    static const char *const refused[] = {"use_dora", "fan_in_fan_out", "lora_bias"};
    static const char *const patterns[] = {"rank_pattern", "alpha_pattern", "modules_to_save"};
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: peft_type must be \"LORA\"", path);
    else if (!cJSON_IsNumber(r) || r->valuedouble < 1 || !cJSON_IsNumber(alpha))
        rc = hone_errf(err, HONE_EINVAL, "%s: needs r >= 1 and lora_alpha", path);
    else if (cJSON_IsString(bias) && strcmp(bias->valuestring, "none"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: bias = \"%s\" is not supported (\"none\")", path, bias->valuestring);
    for (int k = 0; k < 3 && !rc; k++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, refused[k])))
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: %s = true is not supported", path, refused[k]);
    for (int k = 0; k < 3 && !rc; k++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, patterns[k]);
        if (p && !cJSON_IsNull(p) && cJSON_GetArraySize(p) > 0)
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: a non-empty %s is not supported", path, patterns[k]);
    }
    if (!rc) {
        *out = (hone_adapter_config){.r = (int)r->valuedouble, .alpha = alpha->valuedouble,
                                     .rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "use_rslora"))};
        if (cJSON_IsString(tm)) out->targets = hone_target_mask(tm->valuestring);
        const cJSON *list = cJSON_IsArray(tm) ? tm : NULL, *e;
        cJSON_ArrayForEach(e, list)
        {
            if (cJSON_IsString(e)) out->targets |= hone_target_mask(e->valuestring);
        }
    }
    cJSON_Delete(j);
    return rc;
}

int hone_model_load_adapter(hone_model *m, const char *dir, hone_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    hone_adapter_config ac;
    int rc = hone_adapter_config_read(dir, &ac, err);
    if (rc) return rc;
    double want_alpha, dropout;
    int want_rslora;
    hone_model_lora_settings(m, &want_alpha, &dropout, &want_rslora);
    size_t n;
    const hone_tensor_info *t = hone_model_tensors(m, &n);
    int model_r = n && strstr(t[0].name, "lora_A") ? (int)t[0].rows : 0;
    if (!rc && model_r == 0) rc = hone_errf(err, HONE_EINVAL, "%s: the model trains no LoRA adapter (lora = false)", dir);
    if (!rc && ac.r != model_r) rc = hone_errf(err, HONE_EINVAL, "%s: adapter r = %d but lora.r = %d", path, ac.r, model_r);
    if (!rc && (ac.alpha != want_alpha || ac.rslora != want_rslora))
        rc = hone_errf(err, HONE_EINVAL, "%s: adapter lora_alpha = %g%s but the experiment has lora.alpha = %g%s", path,
                       ac.alpha, ac.rslora ? " (rslora)" : "", want_alpha, want_rslora ? " (rslora)" : "");
    if (rc) return rc;

    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hone_st_file *f = NULL;
    rc = hone_st_open(&f, path, err);
    if (rc) return rc;
    float *params = hone_model_params(m, NULL);
    for (size_t i = 0; i < n && !rc; i++) {
        const hone_st_tensor *st = hone_st_find(f, t[i].name);
        if (!st) {
            rc = hone_errf(err, HONE_EINVAL, "%s: missing tensor %s (does lora.target_modules match the adapter's?)", path,
                           t[i].name);
            break;
        }
        if (st->ndim != 2 || st->shape[0] != (int64_t)t[i].rows || st->shape[1] != (int64_t)t[i].cols)
            rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s has the wrong shape (expected [%zu, %zu])", path, t[i].name,
                           t[i].rows, t[i].cols);
        else rc = hone_st_to_f32(f, st, params + t[i].offset, 0, t[i].numel, err);
    }
    /* a tensor the model has no place for means the target modules differ */
    for (size_t k = 0; k < f->n && !rc; k++) {
        size_t i = 0;
        while (i < n && strcmp(t[i].name, f->t[k].name) != 0) i++;
        if (i == n)
            rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s has no place in this model (does lora.target_modules match?)",
                           path, f->t[k].name);
    }
    hone_st_close(f);
    return rc;
}
