/* convert.c — `hone convert MODEL.gguf OUT_DIR`: a llama.cpp GGUF of a Llama-family model
 * into a Hugging Face directory (config.json, generation_config.json, model.safetensors in
 * fp32), the way transformers' own GGUF loader reads it: metadata keys mapped as its
 * GGUF_CONFIG_MAPPING, tensors renamed from llama.cpp's names, dequantized as gguf-py does,
 * and the q / k rows put back from llama.cpp's interleaved-RoPE order (convert_hf_to_gguf's
 * permute undone) so the half-split RoPE of transformers and hone is right. */
#include "convert.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gguf.h"
#include "safetensors.h"
#include "util.h"

static int kv_int(const hone_gguf *g, const char *arch, const char *key, long long def, long long *out, hone_err *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    const hone_gguf_kv *kv = hone_gguf_kv_find(g, full);
    if (!kv) {
        if (def < 0) return hone_errf(err, HONE_EINVAL, "%s: metadata %s is missing", g->path, full);
        *out = def;
        return 0;
    }
    if (kv->type == HONE_GGUF_STRING || kv->type == HONE_GGUF_ARRAY || kv->i < 0)
        return hone_errf(err, HONE_EINVAL, "%s: metadata %s must be a non-negative integer", g->path, full);
    *out = kv->i;
    return 0;
}

static double kv_num(const hone_gguf *g, const char *arch, const char *key, double def)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    const hone_gguf_kv *kv = hone_gguf_kv_find(g, full);
    return kv && kv->type != HONE_GGUF_STRING && kv->type != HONE_GGUF_ARRAY ? kv->num : def;
}

/* llama.cpp tensor name -> HF name; 0 when the tensor has no HF counterpart to write */
static int hf_name(const char *in, char *out, size_t n, int *perm)
{
    static const struct { const char *g, *hf; int perm; } blk[] = {
        {"attn_norm.weight", "input_layernorm.weight", 0}, {"attn_q.weight", "self_attn.q_proj.weight", 1},
        {"attn_k.weight", "self_attn.k_proj.weight", 2}, {"attn_v.weight", "self_attn.v_proj.weight", 0},
        {"attn_output.weight", "self_attn.o_proj.weight", 0}, {"ffn_norm.weight", "post_attention_layernorm.weight", 0},
        {"ffn_gate.weight", "mlp.gate_proj.weight", 0}, {"ffn_up.weight", "mlp.up_proj.weight", 0},
        {"ffn_down.weight", "mlp.down_proj.weight", 0},
    };
    *perm = 0;
    if (!strcmp(in, "token_embd.weight")) return snprintf(out, n, "model.embed_tokens.weight"), 1;
    if (!strcmp(in, "output_norm.weight")) return snprintf(out, n, "model.norm.weight"), 1;
    if (!strcmp(in, "output.weight")) return snprintf(out, n, "lm_head.weight"), 1;
    unsigned layer;
    int used = 0;
    if (sscanf(in, "blk.%u.%n", &layer, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
            if (!strcmp(in + used, blk[i].g)) {
                *perm = blk[i].perm;
                return snprintf(out, n, "model.layers.%u.%s", layer, blk[i].hf), 1;
            }
    return 0;
}

/* rows of a [n_head * hd, cols] weight from llama.cpp's order back to HF's: HF row
 * h*hd + j*(hd/2) + i sits at llama.cpp row h*hd + 2i + j */
static int unpermute(float *w, size_t rows, size_t cols, size_t n_head, hone_err *err)
{
    if (!n_head || rows % n_head || (rows / n_head) % 2)
        return hone_errf(err, HONE_EINVAL, "q/k weight of %zu rows does not split into %zu heads of even size", rows, n_head);
    size_t hd = rows / n_head;
    float *tmp = malloc(rows * cols * sizeof *tmp);
    if (!tmp) return hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t h = 0; h < n_head; h++)
        for (size_t j = 0; j < 2; j++)
            for (size_t i = 0; i < hd / 2; i++)
                memcpy(tmp + (h * hd + j * (hd / 2) + i) * cols, w + (h * hd + 2 * i + j) * cols, cols * sizeof *w);
    memcpy(w, tmp, rows * cols * sizeof *w);
    free(tmp);
    return 0;
}

static int write_json(const char *dir, const char *name, cJSON *j, hone_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    int rc = text ? hone_write_file(path, text, strlen(text), err) : hone_errf(err, HONE_ENOMEM, "out of memory");
    free(text);
    return rc;
}

int hone_convert_gguf(const char *gguf_path, const char *out_dir, hone_convert_info *info, hone_err *err)
{
    memset(info, 0, sizeof *info);
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (hone_is_file(path)) return hone_errf(err, HONE_EINVAL, "%s exists; hone convert does not overwrite", path);
    hone_gguf *g = NULL;
    int rc = hone_gguf_open(&g, gguf_path, err);
    if (rc) return rc;
    const hone_gguf_kv *a = hone_gguf_kv_find(g, "general.architecture");
    const char *arch = a && a->str ? a->str : "";
    if (strcmp(arch, "llama") && strcmp(arch, "mistral"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: general.architecture \"%s\"; hone converts llama and mistral GGUFs",
                       gguf_path, arch);
    long long ctx = 0, hidden = 0, layers = 0, inter = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
    if (!rc) rc = kv_int(g, arch, "context_length", -1, &ctx, err);
    if (!rc) rc = kv_int(g, arch, "embedding_length", -1, &hidden, err);
    if (!rc) rc = kv_int(g, arch, "block_count", -1, &layers, err);
    if (!rc) rc = kv_int(g, arch, "feed_forward_length", -1, &inter, err);
    if (!rc) rc = kv_int(g, arch, "attention.head_count", -1, &heads, err);
    if (!rc) rc = kv_int(g, arch, "attention.head_count_kv", heads, &kv_heads, err);
    if (!rc && (!heads || !kv_heads || heads % kv_heads || hidden % heads))
        rc = hone_errf(err, HONE_EINVAL, "%s: %lld heads, %lld KV heads, hidden %lld do not fit together", gguf_path, heads,
                       kv_heads, hidden);
    if (!rc) rc = kv_int(g, arch, "rope.dimension_count", heads ? hidden / heads : 0, &head_dim, err);
    const hone_gguf_tensor *embd = hone_gguf_find(g, "token_embd.weight");
    if (!rc && (!embd || embd->ndim != 2)) rc = hone_errf(err, HONE_EINVAL, "%s: no 2-D token_embd.weight", gguf_path);
    if (!rc) rc = kv_int(g, arch, "vocab_size", (long long)embd->ne[1], &vocab, err);

    /* the tensors: dequantized, renamed, q/k rows restored */
    hone_st_out *outs = calloc(g->nt ? g->nt : 1, sizeof *outs);
    char (*names)[128] = calloc(g->nt ? g->nt : 1, sizeof *names);
    float **bufs = calloc(g->nt ? g->nt : 1, sizeof *bufs);
    size_t nout = 0;
    int tied = 1;
    if (!rc && (!outs || !names || !bufs)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->nt && !rc; i++) {
        const hone_gguf_tensor *t = &g->t[i];
        int perm = 0;
        if (!hf_name(t->name, names[nout], sizeof names[nout], &perm)) {
            if (!strcmp(t->name, "rope_freqs.weight")) continue;   /* llama3 rope factors: config.json carries them */
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s has no Llama counterpart", gguf_path, t->name);
            break;
        }
        if (!strcmp(t->name, "output.weight")) tied = 0;
        bufs[nout] = malloc(t->numel * sizeof(float));
        if (!bufs[nout]) {
            rc = hone_errf(err, HONE_ENOMEM, "out of memory for %s", t->name);
            break;
        }
        rc = hone_gguf_to_f32(g, t, bufs[nout], err);
        size_t rows = t->ndim > 1 ? (size_t)(t->numel / t->ne[0]) : (size_t)t->ne[0], cols = t->ndim > 1 ? t->ne[0] : 1;
        if (!rc && perm) {
            rc = unpermute(bufs[nout], rows, cols, (size_t)(perm == 1 ? heads : kv_heads), err);
            if (rc) hone_err_prefix(err, "%s: tensor %s: ", gguf_path, t->name);
        }
        outs[nout] = (hone_st_out){names[nout], HONE_DT_F32, t->ndim > 1 ? 2 : 1, {(int64_t)rows, (int64_t)cols},
                                   bufs[nout], NULL};
        if (t->ndim == 1) outs[nout].shape[0] = (int64_t)t->ne[0];
        nout++;
        info->tensors++;
        info->params += t->numel;
        if (t->type != HONE_GGML_F32) info->dequantized++;
    }
    if (!rc) rc = hone_mkdirs(out_dir, err);
    if (!rc) rc = hone_st_write(path, outs, nout, err);
    if (!rc) {
        cJSON *c = cJSON_CreateObject();
        cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
        cJSON_AddItemToArray(archs, cJSON_CreateString(!strcmp(arch, "mistral") ? "MistralForCausalLM" : "LlamaForCausalLM"));
        cJSON_AddStringToObject(c, "model_type", arch);
        cJSON_AddNumberToObject(c, "hidden_size", (double)hidden);
        cJSON_AddNumberToObject(c, "intermediate_size", (double)inter);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)layers);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)heads);
        cJSON_AddNumberToObject(c, "num_key_value_heads", (double)kv_heads);
        cJSON_AddNumberToObject(c, "head_dim", (double)head_dim);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)ctx);
        cJSON_AddNumberToObject(c, "rms_norm_eps", kv_num(g, arch, "attention.layer_norm_rms_epsilon", 1e-6));
        cJSON_AddNumberToObject(c, "rope_theta", kv_num(g, arch, "rope.freq_base", 10000.0));
        cJSON_AddNumberToObject(c, "vocab_size", (double)vocab);
        cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
        cJSON_AddStringToObject(c, "hidden_act", "silu");
        cJSON_AddStringToObject(c, "torch_dtype", "float32");
        cJSON *gen = cJSON_CreateObject();
        const char *ids[] = {"bos", "eos", "padding"};
        for (int k = 0; k < 3; k++) {
            char key[64], name[64];
            snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", ids[k]);
            snprintf(name, sizeof name, "%s_token_id", k == 2 ? "pad" : ids[k]);
            const hone_gguf_kv *kv = hone_gguf_kv_find(g, key);
            if (kv && kv->type != HONE_GGUF_STRING && kv->type != HONE_GGUF_ARRAY) {
                cJSON_AddNumberToObject(c, name, (double)kv->i);
                cJSON_AddNumberToObject(gen, name, (double)kv->i);
            }
        }
        rc = write_json(out_dir, "config.json", c, err);
        if (!rc) rc = write_json(out_dir, "generation_config.json", gen, err);
        cJSON_Delete(c);
        cJSON_Delete(gen);
    }
    const hone_gguf_kv *tm = hone_gguf_kv_find(g, "tokenizer.ggml.model");
    snprintf(info->tokenizer, sizeof info->tokenizer, "%s", tm && tm->str ? tm->str : "");
    for (size_t i = 0; i < nout; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(outs);
    hone_gguf_close(g);
    return rc;
}
