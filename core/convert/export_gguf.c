/* export_gguf.c — `hone convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf`: an HF Llama
 * or Mistral directory (with an adapter merged in, if given) as the GGUF llama.cpp's
 * convert_hf_to_gguf.py writes: its metadata keys, tensor names, q/k rows permuted for
 * llama.cpp's interleaved RoPE, norms in F32 and the rest in F16 or Q8_0, and the
 * byte-level BPE ("gpt2") vocabulary with token types, merges and special ids. */
#include "export_gguf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "err.h"
#include "gguf_write.h"
#include "merge.h"
#include "safetensors.h"
#include "util.h"

typedef struct tensor_job {
    char hf[256];
    int perm;               /* 1: q rows, 2: k rows to permute */
    size_t rows, cols;
} tensor_job;

typedef struct export_ctx {
    hone_merge_src *src;
    tensor_job *jobs;
    size_t njobs;
    long heads, kv_heads;
    float *rope_factors;    /* llama3 rope scaling: rope_freqs.weight */
} export_ctx;

static int fill(void *ctx, const char *name, float *out, hone_err *err)
{
    export_ctx *c = ctx;
    const tensor_job *j = NULL;
    char g[300];
    for (size_t i = 0; i < c->njobs && !j; i++) {
        int perm;
        if (hone_gguf_tensor_name(c->jobs[i].hf, 0, g, sizeof g, &perm) && !strcmp(g, name)) j = &c->jobs[i];
    }
    if (!j) return hone_errf(err, HONE_EINVAL, "GGUF export: no source for %s", name);
    int rc = hone_merge_src_read(c->src, j->hf, out, err);
    if (rc || !j->perm) return rc;
    /* llama.cpp's permute: GGUF row h*hd + 2i + k holds HF row h*hd + k*(hd/2) + i */
    size_t nh = (size_t)(j->perm == 1 ? c->heads : c->kv_heads), hd = j->rows / nh, cols = j->cols;
    float *tmp = malloc(j->rows * cols * sizeof *tmp);
    if (!tmp) return hone_errf(err, HONE_ENOMEM, "out of memory permuting %s", j->hf);
    for (size_t h = 0; h < nh; h++)
        for (size_t k = 0; k < 2; k++)
            for (size_t i = 0; i < hd / 2; i++)
                memcpy(tmp + (h * hd + 2 * i + k) * cols, out + (h * hd + k * (hd / 2) + i) * cols, cols * sizeof *out);
    memcpy(out, tmp, j->rows * cols * sizeof *out);
    free(tmp);
    return 0;
}

static int rope_fill(void *ctx, const char *name, float *out, hone_err *err)
{
    (void)name, (void)err;
    const export_ctx *c = ctx;
    size_t n = 0;
    while (!isnan(c->rope_factors[n])) out[n] = c->rope_factors[n], n++;
    return 0;
}

static long num(const cJSON *cfg, const char *key, long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsNumber(v) && fabs(v->valuedouble) < 1e15 ? (long)v->valuedouble : def;
}

static double dnum(const cJSON *cfg, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* "<s>" or {"content": "<s>"} */
static const char *token_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* convert_hf_to_gguf.py's does_token_look_special */
static int looks_special(const char *t)
{
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]")) return 1;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>")) return 1;
    if (n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>') return 1;
    return 0;
}

/* the pre-tokenizer type llama.cpp knows this tokenizer.json's pre_tokenizer as: equal to
 * what `hone convert` rebuilds for that type, trim_offsets aside (it moves offsets, not ids) */
static void drop_trim(cJSON *j)
{
    if (!j) return;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "trim_offsets");
    for (cJSON *k = j->child; k; k = k->next)
        if (cJSON_IsObject(k) || cJSON_IsArray(k)) drop_trim(k);
}

static const char *pre_type(const cJSON *tokenizer)
{
    static const char *types[] = {"default", "smollm", "llama-bpe", "qwen2"};
    cJSON *have = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(tokenizer, "pre_tokenizer"), 1);
    drop_trim(have);
    const char *found = NULL;
    for (size_t i = 0; i < sizeof types / sizeof *types && !found; i++) {
        cJSON *want = hone_gguf_pre_tokenizer(types[i]);
        drop_trim(want);
        if (have && want && cJSON_Compare(have, want, 1)) found = types[i];
        cJSON_Delete(want);
    }
    cJSON_Delete(have);
    return found;
}

static cJSON *read_json(const char *dir, const char *name, int required, hone_err *err, int *rc)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!required && !hone_is_file(path)) return NULL;
    cJSON *j = NULL;
    *rc = hone_read_json_object(path, &j, err);
    return j;
}

/* the vocabulary as convert_hf_to_gguf.py's get_vocab_base + SpecialVocab write it */
static int add_vocab(hone_gguf_out *o, const char *dir, const cJSON *cfg, long vocab_size, hone_err *err)
{
    int rc = 0;
    cJSON *tj = read_json(dir, "tokenizer.json", 1, err, &rc);
    if (rc) return rc;
    cJSON *tc = read_json(dir, "tokenizer_config.json", 0, err, &rc);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    const char *pre = pre_type(tj);
    if (!rc && (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") || !cJSON_IsObject(vocab) || !pre))
        rc = hone_errf(err, HONE_EUNSUPPORTED,
                       "%s/tokenizer.json: hone writes byte-level BPE (\"gpt2\") vocabularies with a pre-tokenizer "
                       "llama.cpp knows (default, smollm, llama-bpe, qwen2); this one is not (SentencePiece-style "
                       "vocabularies such as Llama 2's and Mistral's are not exported yet)", dir);
    const char **tokens = calloc((size_t)vocab_size, sizeof *tokens);
    int32_t *types = calloc((size_t)vocab_size, sizeof *types);
    char **pads = calloc((size_t)vocab_size, sizeof *pads);
    if (!rc && (!tokens || !types || !pads)) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (const cJSON *v = vocab ? vocab->child : NULL; v && !rc; v = v->next) {
        long id = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)vocab_size ? (long)v->valuedouble : -1;
        if (id < 0 || id >= vocab_size)
            rc = hone_errf(err, HONE_EINVAL, "%s/tokenizer.json: token id %ld of \"%s\" is outside vocab_size %ld", dir,
                           id, v->string, vocab_size);
        else tokens[id] = v->string, types[id] = 1;   /* NORMAL */
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, added)
    {
        if (rc) break;
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(a, "id");
        long id = cJSON_IsNumber(idv) && idv->valuedouble >= 0 && idv->valuedouble < (double)vocab_size ? (long)idv->valuedouble : -1;
        const char *content = token_text(a);
        if (!content || id < 0 || id >= vocab_size) {
            rc = hone_errf(err, HONE_EINVAL, "%s/tokenizer.json: an added token with id %ld outside vocab_size %ld", dir, id,
                           vocab_size);
            break;
        }
        tokens[id] = content;
        types[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special")) || looks_special(content) ? 3 : 4;
    }
    for (long i = 0; i < vocab_size && !rc; i++)
        if (!tokens[i]) {
            char buf[32];
            snprintf(buf, sizeof buf, "[PAD%ld]", i);
            pads[i] = hone_strdup(buf);
            tokens[i] = pads[i], types[i] = 5;   /* UNUSED */
        }
    size_t nm = (size_t)cJSON_GetArraySize(merges);
    char **ms = calloc(nm ? nm : 1, sizeof *ms);
    if (!rc && !ms) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < nm && !rc; i++) {
        const cJSON *m = cJSON_GetArrayItem(merges, (int)i);
        if (cJSON_IsString(m)) ms[i] = hone_strdup(m->valuestring);
        else if (cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            /* the pair form; gguf-py writes a space inside a part as U+0120 */
            const char *p0 = m->child->valuestring, *p1 = m->child->next->valuestring;
            ms[i] = malloc(2 * (strlen(p0) + strlen(p1)) + 2);
            if (ms[i]) {
                char *w = ms[i];
                for (const char *s = p0;; s = p1) {
                    for (; *s; s++)
                        if (*s == ' ') *w++ = (char)0xC4, *w++ = (char)0xA0;
                        else *w++ = *s;
                    if (s == p1 + strlen(p1)) break;
                    *w++ = ' ';
                }
                *w = 0;
            }
        } else rc = hone_errf(err, HONE_EINVAL, "%s/tokenizer.json: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", dir, i);
        if (!rc && !ms[i]) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    if (!rc) {
        char name[64];
        hone_gguf_out_str(o, "tokenizer.ggml.model", "gpt2");
        hone_gguf_out_str(o, "tokenizer.ggml.pre", pre);
        hone_gguf_out_strs(o, "tokenizer.ggml.tokens", tokens, (size_t)vocab_size);
        hone_gguf_out_i32s(o, "tokenizer.ggml.token_type", types, (size_t)vocab_size);
        hone_gguf_out_strs(o, "tokenizer.ggml.merges", (const char *const *)ms, nm);
        /* special ids: tokenizer_config's tokens among the added ones, else config.json's ids */
        static const char *kinds[][3] = {{"bos", "bos", "bos_token_id"}, {"eos", "eos", "eos_token_id"},
                                         {"unk", "unknown", "unk_token_id"}, {"pad", "padding", "pad_token_id"}};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "%s_token", kinds[k][0]);
            const char *want = token_text(cJSON_GetObjectItemCaseSensitive(tc, name));
            long id = -1;
            cJSON_ArrayForEach(a, added) if (want && token_text(a) && !strcmp(token_text(a), want) && id < 0)
                id = (long)cJSON_GetObjectItemCaseSensitive(a, "id")->valuedouble;   /* checked above */
            if (id < 0) id = num(cfg, kinds[k][2], -1);
            snprintf(name, sizeof name, "tokenizer.ggml.%s_token_id", kinds[k][1]);
            if (id >= 0) hone_gguf_out_u32(o, name, (uint32_t)id);
        }
        /* whether BOS / EOS are added: tokenizer_config's flags, else the post-processor's template */
        int add[2] = {0, 0};
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(tj, "post_processor");
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
        const cJSON *procs = cJSON_GetObjectItemCaseSensitive(pp, "processors"), *p;
        cJSON_ArrayForEach(p, procs) if (!single) single = cJSON_GetObjectItemCaseSensitive(p, "single");
        int n_single = cJSON_GetArraySize(single);
        if (n_single > 0) {
            add[0] = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, 0), "SpecialToken") != NULL;
            add[1] = n_single > 1 && cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, n_single - 1), "SpecialToken");
        }
        const char *flags[2] = {"add_bos_token", "add_eos_token"};
        for (int k = 0; k < 2; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, flags[k]);
            if (cJSON_IsBool(f)) add[k] = cJSON_IsTrue(f);
            snprintf(name, sizeof name, "tokenizer.ggml.%s", flags[k]);
            hone_gguf_out_bool(o, name, add[k]);
        }
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
        if (cJSON_IsString(tmpl)) hone_gguf_out_str(o, "tokenizer.chat_template", tmpl->valuestring);
    }
    for (long i = 0; pads && i < vocab_size; i++) free(pads[i]);
    for (size_t i = 0; ms && i < nm; i++) free(ms[i]);
    free(pads), free(ms), free(tokens), free(types);
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    return rc;
}

/* llama.cpp's rope_freqs for rope_type llama3 (LlamaModel.generate_extra_tensors), in the
 * float32 arithmetic torch does it in */
static float *llama3_factors(const cJSON *rs, double theta, long dim)
{
    float *f = malloc(((size_t)dim / 2 + 1) * sizeof *f);
    if (!f) return NULL;
    float factor = (float)dnum(rs, "factor", 8.0), lo = (float)dnum(rs, "low_freq_factor", 1.0),
          hi = (float)dnum(rs, "high_freq_factor", 4.0), old = (float)dnum(rs, "original_max_position_embeddings", 8192);
    double lo_wavelen = old / lo, hi_wavelen = old / hi;
    long n = 0;
    for (long i = 0; i < dim; i += 2) {
        float freq = 1.0f / powf((float)theta, (float)i / (float)dim);
        float wavelen = (1.0f / freq) * (float)(2 * M_PI);
        if (wavelen < (float)hi_wavelen) f[n++] = 1;
        else if (wavelen > (float)lo_wavelen) f[n++] = factor;
        else {
            float smooth = ((1.0f / wavelen) * old - lo) / (hi - lo);
            f[n++] = 1.0f / ((1 - smooth) / factor + smooth);
        }
    }
    f[n] = NAN;
    return f;
}

int hone_export_gguf(const char *model_dir, const char *adapter_dir, const char *out_path, uint32_t type,
                     hone_export_info *info, hone_err *err)
{
    memset(info, 0, sizeof *info);
    if (type != HONE_GGML_F16 && type != HONE_GGML_Q8_0)
        return hone_errf(err, HONE_EINVAL, "GGUF export: the type is f16 or q8_0");
    if (hone_is_file(out_path)) return hone_errf(err, HONE_EINVAL, "%s exists; hone convert does not overwrite", out_path);
    export_ctx c = {0};
    int rc = hone_merge_src_open(&c.src, model_dir, adapter_dir, err);
    if (rc) return rc;
    const cJSON *cfg = hone_merge_src_config(c.src);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    if (!cJSON_IsString(mt) || (strcmp(mt->valuestring, "llama") && strcmp(mt->valuestring, "mistral")))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s/config.json: model_type \"%s\"; hone writes llama-architecture GGUFs "
                       "(llama, mistral)", model_dir, cJSON_IsString(mt) ? mt->valuestring : "?");
    long hidden = num(cfg, "hidden_size", 0), heads = num(cfg, "num_attention_heads", 0);
    long kv_heads = num(cfg, "num_key_value_heads", heads), vocab = num(cfg, "vocab_size", 0);
    long head_dim = num(cfg, "head_dim", heads ? hidden / heads : 0);
    if (!rc && (hidden <= 0 || heads <= 0 || kv_heads <= 0 || vocab <= 0 || head_dim <= 0 || head_dim % 2))
        rc = hone_errf(err, HONE_EINVAL, "%s/config.json: hidden_size, num_attention_heads, num_key_value_heads, "
                       "vocab_size and head_dim do not fit together", model_dir);
    c.heads = heads, c.kv_heads = kv_heads;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!rt) rt = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *rope = cJSON_IsString(rt) ? rt->valuestring : "default";
    if (!rc && strcmp(rope, "default") && strcmp(rope, "llama3") && strcmp(rope, "linear"))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "%s/config.json: rope_scaling type \"%s\" is not exported (default, "
                       "linear, llama3)", model_dir, rope);
    double theta = dnum(cfg, "rope_theta", 10000.0);
    if (!rc && !strcmp(rope, "llama3") && !(c.rope_factors = llama3_factors(rs, theta, head_dim)))
        rc = hone_errf(err, HONE_ENOMEM, "out of memory");

    hone_gguf_out *o = hone_gguf_out_new();
    if (!rc && !o) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    if (!rc) {
        const char *slash = strrchr(model_dir, '/');
        char base[256];
        snprintf(base, sizeof base, "%s", slash && slash[1] ? slash + 1 : model_dir);
        hone_gguf_out_str(o, "general.architecture", "llama");
        hone_gguf_out_str(o, "general.type", "model");
        hone_gguf_out_str(o, "general.name", base);
        hone_gguf_out_u32(o, "llama.block_count", (uint32_t)num(cfg, "num_hidden_layers", 0));
        hone_gguf_out_u32(o, "llama.context_length", (uint32_t)num(cfg, "max_position_embeddings", 2048));
        hone_gguf_out_u32(o, "llama.embedding_length", (uint32_t)hidden);
        hone_gguf_out_u32(o, "llama.feed_forward_length", (uint32_t)num(cfg, "intermediate_size", 0));
        hone_gguf_out_u32(o, "llama.attention.head_count", (uint32_t)heads);
        hone_gguf_out_u32(o, "llama.attention.head_count_kv", (uint32_t)kv_heads);
        if (!strcmp(rope, "linear")) {
            hone_gguf_out_str(o, "llama.rope.scaling.type", "linear");
            hone_gguf_out_f32(o, "llama.rope.scaling.factor", (float)dnum(rs, "factor", 1.0));
        }
        hone_gguf_out_f32(o, "llama.rope.freq_base", (float)theta);
        hone_gguf_out_f32(o, "llama.attention.layer_norm_rms_epsilon", (float)dnum(cfg, "rms_norm_eps", 1e-6));
        if (cJSON_GetObjectItemCaseSensitive(cfg, "head_dim")) {
            hone_gguf_out_u32(o, "llama.attention.key_length", (uint32_t)head_dim);
            hone_gguf_out_u32(o, "llama.attention.value_length", (uint32_t)head_dim);
        }
        hone_gguf_out_u32(o, "general.file_type", type == HONE_GGML_F16 ? 1 : 7);
        hone_gguf_out_u32(o, "llama.vocab_size", (uint32_t)vocab);
        hone_gguf_out_u32(o, "llama.rope.dimension_count", (uint32_t)head_dim);
        hone_gguf_out_u32(o, "general.quantization_version", 2);
        rc = add_vocab(o, model_dir, cfg, vocab, err);
    }

    /* the tensors: generated rope factors first, then the checkpoint's in its order */
    if (!rc && c.rope_factors) {
        uint64_t ne[1] = {(uint64_t)head_dim / 2};
        rc = hone_gguf_out_tensor(o, "rope_freqs.weight", HONE_GGML_F32, 1, ne, rope_fill, &c, err);
    }
    const hone_st_set *w = hone_merge_src_weights(c.src);
    size_t total = 0;
    for (size_t i = 0; i < w->n; i++) total += w->files[i]->n;
    c.jobs = calloc(total ? total : 1, sizeof *c.jobs);
    if (!rc && !c.jobs) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->n && !rc; i++)
        for (size_t k = 0; k < w->files[i]->n && !rc; k++) {
            const hone_st_tensor *t = &w->files[i]->t[k];
            size_t len = strlen(t->name);
            if (len >= 19 && !strcmp(t->name + len - 19, "rotary_emb.inv_freq")) continue;   /* recomputed by llama.cpp */
            tensor_job *j = &c.jobs[c.njobs];
            char g[300];
            if (!hone_gguf_tensor_name(t->name, 0, g, sizeof g, &j->perm) || t->ndim < 1 || t->ndim > 2) {
                rc = hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s has no llama.cpp counterpart", model_dir, t->name);
                break;
            }
            snprintf(j->hf, sizeof j->hf, "%s", t->name);
            j->rows = (size_t)t->shape[0], j->cols = t->ndim > 1 ? (size_t)t->shape[1] : 1;
            size_t nh = (size_t)(j->perm == 1 ? heads : kv_heads);
            if (j->perm && (j->rows % nh || (j->rows / nh) % 2)) {
                rc = hone_errf(err, HONE_EINVAL, "%s: tensor %s: %zu rows do not split into %zu heads of even size",
                               model_dir, t->name, j->rows, nh);
                break;
            }
            uint64_t ne[2] = {j->cols, j->rows};
            if (t->ndim == 1) ne[0] = j->rows;
            size_t glen = strlen(g);
            uint32_t tt = t->ndim == 1 || (glen > 12 && !strcmp(g + glen - 12, "_norm.weight")) ? HONE_GGML_F32 : type;
            if (tt == HONE_GGML_Q8_0 && ne[0] % 32) tt = HONE_GGML_F16;   /* convert_hf_to_gguf.py's fallback */
            rc = hone_gguf_out_tensor(o, g, tt, (uint32_t)t->ndim, ne, fill, &c, err);
            c.njobs++;
            info->tensors++;
            info->params += t->numel;
        }
    if (!rc) rc = hone_gguf_out_write(o, out_path, err);
    if (!rc) hone_merge_src_stats(c.src, &info->merged, &info->scale);
    hone_gguf_out_free(o);
    free(c.jobs);
    free(c.rope_factors);
    hone_merge_src_close(c.src);
    return rc;
}
