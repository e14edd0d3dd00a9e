/* model.c — the Llama-family model: weights in, loss and gradients out.
 *
 * Layer (HF LlamaDecoderLayer):  h += o(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rmsnorm1(h)
 *                                h += down(silu(gate(n2)) * up(n2)),            n2 = rmsnorm2(h)
 * A linear is  y = x W^T (+ b) (+ s * dropout(x) A^T B^T)  with W frozen behind the
 * quantizer (LoRA) or trainable (full fine-tuning). Every activation backward needs is
 * kept in the activation arena; the gradients of the loss come back through the same
 * kernels in reverse.
 */
#include "model_impl.h"
#include "bnb4.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "backend.h"
#include "rng.h"
#include "safetensors.h"
#include "util.h"

const char *const hone_linear_names[HONE_NLINEAR] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                     "gate_proj", "up_proj", "down_proj"};


/* ---- weights on disk --------------------------------------------------------------- */

typedef hone_st_set weights;

static const hone_st_tensor *weights_lookup(void *ctx, const char *name, const hone_st_file **file)
{
    return hone_st_set_find(ctx, name, file);
}

/* reads tensor `name` of shape [d0] or [d0, d1] (d1 = 0 for a vector) into fp32 */
static int read_tensor(const weights *w, const char *name, int d0, int d1, float *out, hone_err *err)
{
    const hone_st_file *f = NULL;
    const hone_st_tensor *t = hone_st_set_find(w, name, &f);
    if (!t) return hone_errf(err, HONE_EINVAL, "%s: missing tensor %s", w->dir, name);
    int ok = d1 ? (t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1) : (t->ndim == 1 && t->shape[0] == d0);
    if (!ok) {
        char got[96] = "";
        size_t off = 0;
        for (int i = 0; i < t->ndim && off < sizeof got; i++)
            off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (d1) return hone_errf(err, HONE_EINVAL, "%s: tensor %s has shape [%s], expected [%d, %d]", f->path, name, got, d0, d1);
        return hone_errf(err, HONE_EINVAL, "%s: tensor %s has shape [%s], expected [%d]", f->path, name, got, d0);
    }
    if (t->dtype != HONE_DT_F32 && t->dtype != HONE_DT_F16 && t->dtype != HONE_DT_BF16)
        return hone_errf(err, HONE_EUNSUPPORTED, "%s: tensor %s has dtype %s (F32, F16 and BF16 are supported)", f->path,
                         name, hone_dtype_name(t->dtype));
    int rc = hone_st_to_f32(f, t, out, 0, t->numel, err);
    hone_st_release(f, t);
    return rc;
}

/* ---- layout ---------------------------------------------------------------------- */

static int lin_in(const hone_model_config *c, int id)
{
    return id == HONE_O_PROJ ? c->heads * c->head_dim : id == HONE_DOWN_PROJ ? c->inter : c->hidden;
}

static int lin_out(const hone_model_config *c, int id)
{
    switch (id) {
    case HONE_Q_PROJ: return c->heads * c->head_dim;
    case HONE_K_PROJ:
    case HONE_V_PROJ: return c->kv_heads * c->head_dim;
    case HONE_O_PROJ:
    case HONE_DOWN_PROJ: return c->hidden;
    default: return c->inter;
    }
}

static const char *lin_group(int id)
{
    return id <= HONE_O_PROJ ? "self_attn" : "mlp";
}

/* A bump allocator over an arena: first pass counts, second pass hands out views. */
typedef struct bump {
    float *base;
    size_t used;
} bump;

static float *take(bump *b, size_t n)
{
    float *p = b->base ? b->base + b->used : NULL;
    b->used += (n + 15) & ~(size_t)15;   /* 64-byte aligned views */
    return p;
}

typedef struct names {
    hone_tensor_info *t;
    size_t n;
    char *buf;
    size_t used;
} names;

static void name_tensor(names *nm, const char *name, const float *p, const float *base, size_t numel, size_t rows,
                        int decay)
{
    size_t len = strlen(name) + 1;
    if (nm->t) {
        memcpy(nm->buf + nm->used, name, len);
        nm->t[nm->n] = (hone_tensor_info){nm->buf + nm->used, (size_t)(p - base), numel, rows, numel / rows, decay};
    }
    nm->used += len;
    nm->n++;
}

/* Lays out every arena; called twice: with NULL bases to size them, then for real. */
static void layout(hone_model *m, bump *pb, bump *gb, bump *fb, bump *ab, names *nm)
{
    const hone_model_config *c = &m->cfg;
    size_t N = (size_t)m->Bcap * m->Tcap, C = (size_t)c->hidden, I = (size_t)c->inter, V = (size_t)c->vocab;
    size_t qd = (size_t)c->heads * c->head_dim, kd = (size_t)c->kv_heads * c->head_dim;
    char name[256];
    int full = !m->lora;
    bump *wb = full ? pb : fb;   /* where non-linear weights live */

    m->embed = take(wb, V * C);
    if (full) {
        m->dembed = take(gb, V * C);
        name_tensor(nm, "model.embed_tokens.weight", m->embed, pb->base, V * C, V, 1);
    }
    for (int l = 0; l < c->layers; l++) {
        layer *L = &m->layers[l];
        L->ln1_w = take(wb, C);
        L->ln2_w = take(wb, C);
        if (full) {
            L->dln1_w = take(gb, C);
            L->dln2_w = take(gb, C);
            snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
            name_tensor(nm, name, L->ln1_w, pb->base, C, C, 0);
            snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
            name_tensor(nm, name, L->ln2_w, pb->base, C, C, 0);
        }
        for (int i = 0; i < HONE_NLINEAR; i++) {
            linear *ln = &L->lin[i];
            ln->id = i;
            ln->in = lin_in(c, i);
            ln->out = lin_out(c, i);
            int has_bias = c->qkv_bias && i <= HONE_V_PROJ;
            if (full) {
                ln->w = take(pb, (size_t)ln->out * ln->in);
                ln->dw = take(gb, (size_t)ln->out * ln->in);
                snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, lin_group(i), hone_linear_names[i]);
                name_tensor(nm, name, ln->w, pb->base, (size_t)ln->out * ln->in, (size_t)ln->out, 1);
            }
            if (has_bias) {
                ln->bias = take(wb, (size_t)ln->out);
                if (full) {
                    ln->dbias = take(gb, (size_t)ln->out);
                    snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, lin_group(i), hone_linear_names[i]);
                    name_tensor(nm, name, ln->bias, pb->base, (size_t)ln->out, (size_t)ln->out, 0);
                }
            }
        }
    }
    m->norm_w = take(wb, C);
    if (full) {
        m->dnorm_w = take(gb, C);
        name_tensor(nm, "model.norm.weight", m->norm_w, pb->base, C, C, 0);
    }
    if (c->tied) {
        m->lm_head = m->embed;
        m->dlm_head = m->dembed;
    } else {
        m->lm_head = take(wb, V * C);
        if (full) {
            m->dlm_head = take(gb, V * C);
            name_tensor(nm, "lm_head.weight", m->lm_head, pb->base, V * C, V, 1);
        }
    }
    /* LoRA parameters, in PEFT's key order: per layer, per module, A then B */
    if (m->lora)
        for (int l = 0; l < c->layers; l++)
            for (int i = 0; i < HONE_NLINEAR; i++) {
                linear *ln = &m->layers[l].lin[i];
                if (!ln->targeted) continue;
                size_t na = (size_t)m->r * ln->in, nb = (size_t)ln->out * m->r;
                ln->A = take(pb, na);
                ln->dA = take(gb, na);
                snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", l, lin_group(i),
                         hone_linear_names[i]);
                name_tensor(nm, name, ln->A, pb->base, na, (size_t)m->r, 1);
                ln->B = take(pb, nb);
                ln->dB = take(gb, nb);
                snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", l, lin_group(i),
                         hone_linear_names[i]);
                name_tensor(nm, name, ln->B, pb->base, nb, (size_t)ln->out, 1);
                /* with checkpointing, every layer reuses layer 0's activation buffers */
                ln->xa = m->ckpt && l > 0 ? m->layers[0].lin[i].xa : take(ab, N * m->r);
            }

    /* activations */
    m->res = take(ab, (size_t)(c->layers + 1) * N * C);
    for (int l = 0; l < c->layers; l++) {
        layer *L = &m->layers[l];
        if (m->ckpt && l > 0) {
            layer *first = &m->layers[0];
            L->ln1 = first->ln1, L->rstd1 = first->rstd1, L->q = first->q, L->k = first->k, L->v = first->v;
            L->att = first->att, L->ao = first->ao, L->mid = first->mid, L->ln2 = first->ln2;
            L->rstd2 = first->rstd2, L->gate = first->gate, L->up = first->up, L->sw = first->sw;
            continue;
        }
        L->ln1 = take(ab, N * C);
        L->rstd1 = take(ab, N);
        L->q = take(ab, N * qd);
        L->k = take(ab, N * kd);
        L->v = take(ab, N * kd);
        L->att = take(ab, be_att_floats(m->be, m->Bcap, m->Tcap, c->heads));
        L->ao = take(ab, N * qd);
        L->mid = take(ab, N * C);
        L->ln2 = take(ab, N * C);
        L->rstd2 = take(ab, N);
        L->gate = take(ab, N * I);
        L->up = take(ab, N * I);
        L->sw = take(ab, N * I);
    }
    m->lnf = take(ab, N * C);
    m->rstdf = take(ab, N);
    m->logits = take(ab, N * V);
    m->targets = (int32_t *)take(ab, N);
    m->lnf_sel = m->labelled_logits ? take(ab, N * C) : NULL;
    m->ids = (int32_t *)take(ab, N);
    m->doc_start = (int32_t *)take(ab, N);
    m->inv_freq = take(ab, (size_t)c->head_dim / 2);
    m->cos_t = take(ab, (size_t)m->Tcap * c->head_dim / 2);
    m->sin_t = take(ab, (size_t)m->Tcap * c->head_dim / 2);
    size_t widest = C > I ? C : I;
    if (qd > widest) widest = qd;
    m->dres = take(ab, N * C);
    m->dln = take(ab, N * widest);
    m->dq = take(ab, N * qd);
    m->dk = take(ab, N * kd);
    m->dv = take(ab, N * kd);
    m->dao = take(ab, N * qd);
    m->dgate = take(ab, N * I);
    m->dup = take(ab, N * I);
    m->dsw = take(ab, N * I);
    m->dxa = take(ab, N * (size_t)(m->r > 0 ? m->r : 1));
    m->tmp = take(ab, N * (widest > (size_t)qd ? widest : qd));
    size_t biggest = 0;   /* the largest frozen linear, up to the tile cap */
    for (int i = 0; i < HONE_NLINEAR; i++) {
        size_t sz = (size_t)lin_in(c, i) * lin_out(c, i);
        if (sz > biggest) biggest = sz;
    }
    m->tile = take(ab, m->lora ? (biggest < TILE_FLOATS ? biggest : TILE_FLOATS) : 1);
    /* bf16 operands: two halves to a float */
    size_t b16 = m->bf16 ? 1 : 0, r = (size_t)(m->r > 0 ? m->r : 1);
    m->x16 = (uint16_t *)take(ab, b16 * N * widest / 2 + 1);
    m->xd16 = (uint16_t *)take(ab, (m->dropout > 0 ? b16 : 0) * N * widest / 2 + 1);
    m->dy16 = (uint16_t *)take(ab, b16 * N * widest / 2 + 1);
    m->a16 = (uint16_t *)take(ab, b16 * r * widest / 2 + 1);
    m->b16 = (uint16_t *)take(ab, b16 * r * widest / 2 + 1);
    m->xa16 = (uint16_t *)take(ab, b16 * N * r / 2 + 1);
    m->dxa16 = (uint16_t *)take(ab, b16 * N * r / 2 + 1);
}

/* ---- loading ---------------------------------------------------------------------- */

const hone_backend *hone_model_backend(const hone_model *m)
{
    return m->be;
}

const hone_model_config *hone_model_cfg(const hone_model *m)
{
    return &m->cfg;
}

void hone_model_free(hone_model *m)
{
    if (!m) return;
    if (m->qvt) m->qvt->destroy(m->qstate);
    be_free(m->be, m->params);
    be_free(m->be, m->grads);
    be_free(m->be, m->frozen);
    be_free(m->be, m->acts);
    if (m->head16) be_free(m->be, m->head16);
    be_free(m->be, m->packed);
    be_free(m->be, m->masks);
    free(m->sel);
    free(m->tinfo);
    free(m->names);
    free(m->layers);
    free(m);
}

static void *alloc_floats(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

/* one allocation per role, from the backend */
static float *backend_floats(const hone_model *m, size_t n)
{
    return be_alloc(m->be, (n ? n : 1) * sizeof(float));
}

/* Host memory the weights pass through on their way into the backend's: where its
 * memory is the host's (the CPU), the host writes in place and staging holds only what
 * must be made before it is stored (a linear in fp32 for the quantizer); on a device,
 * every tensor is made here and uploaded. One fp32 buffer and one for a packed linear,
 * each sized to the largest tensor that passes through it. */
typedef struct staging {
    float *f;
    unsigned char *packed;
} staging;

static int staging_new(staging *s, const hone_model *m, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    int host = m->be->ops->host_memory;
    size_t floats = host ? 1 : (size_t)c->vocab * c->hidden, bytes = 1;
    for (int l = 0; l < c->layers; l++)
        for (int i = 0; i < HONE_NLINEAR; i++) {
            const linear *ln = &m->layers[l].lin[i];
            size_t n = (size_t)ln->out * ln->in;
            if ((m->lora || !host) && n > floats) floats = n;
            if (!host && (size_t)m->r * ln->in > floats) floats = (size_t)m->r * ln->in;
            if (m->lora && !host) {
                size_t pb = m->qvt->packed_bytes(m->qstate, (size_t)ln->out, (size_t)ln->in);
                if (pb > bytes) bytes = pb;
            }
        }
    s->f = alloc_floats(floats);
    s->packed = m->lora && !host ? malloc(bytes) : NULL;
    if (!s->f || (m->lora && !host && !s->packed)) {
        free(s->f), free(s->packed);
        return hone_errf(err, HONE_ENOMEM, "out of memory for the weights' staging (%zu floats)", floats);
    }
    return 0;
}

static void staging_free(staging *s)
{
    free(s->f);
    free(s->packed);
}

/* where the host writes floats meant for the backend's dst: dst itself, or staging */
static float *fill_at(const hone_model *m, const staging *s, float *dst)
{
    return m->be->ops->host_memory ? dst : s->f;
}

/* the n floats written at fill_at(dst) into dst */
static void commit(hone_model *m, const staging *s, float *dst, size_t n)
{
    if (!m->be->ops->host_memory) be_upload(m->be, dst, s->f, n * sizeof(float));
}

/* where a linear's packed form is made, and its upload */
static unsigned char *packed_at(const hone_model *m, const staging *s, const linear *ln)
{
    return m->be->ops->host_memory ? m->packed + ln->packed_off : s->packed;
}

static void commit_packed(hone_model *m, const staging *s, const linear *ln)
{
    if (m->be->ops->host_memory) return;
    size_t pb = m->qvt->packed_bytes(m->qstate, (size_t)ln->out, (size_t)ln->in);
    be_upload(m->be, m->packed + ln->packed_off, s->packed, pb);
}

/* a tensor of the checkpoint into the backend's dst */
static int load_tensor(hone_model *m, staging *s, const weights *w, const char *name, int d0, int d1, float *dst,
                       hone_err *err)
{
    int rc = read_tensor(w, name, d0, d1, fill_at(m, s, dst), err);
    if (!rc) commit(m, s, dst, (size_t)d0 * (d1 ? d1 : 1));
    return rc;
}

static int load_weights(hone_model *m, const weights *w, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    char name[256];
    staging s;
    int rc = staging_new(&s, m, err);
    if (rc) return rc;
    rc = load_tensor(m, &s, w, "model.embed_tokens.weight", c->vocab, c->hidden, m->embed, err);
    if (!rc && !c->tied) rc = load_tensor(m, &s, w, "lm_head.weight", c->vocab, c->hidden, m->lm_head, err);
    if (!rc) rc = load_tensor(m, &s, w, "model.norm.weight", c->hidden, 0, m->norm_w, err);
    /* one linear at a time through fp32, then into the quantizer: peak = one weight */
    for (int l = 0; l < c->layers && !rc; l++) {
        layer *L = &m->layers[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        rc = load_tensor(m, &s, w, name, c->hidden, 0, L->ln1_w, err);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        if (!rc) rc = load_tensor(m, &s, w, name, c->hidden, 0, L->ln2_w, err);
        for (int i = 0; i < HONE_NLINEAR && !rc; i++) {
            linear *ln = &L->lin[i];
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, lin_group(i), hone_linear_names[i]);
            if (!m->lora) {
                rc = load_tensor(m, &s, w, name, ln->out, ln->in, ln->w, err);
            } else if (c->prequant[0]) {
                /* a bitsandbytes checkpoint: the codes go in as they are */
                hone_bnb4 parts;
                rc = hone_bnb4_read(&parts, weights_lookup, (void *)w, name, (size_t)ln->out, (size_t)ln->in, err);
                if (!rc)
                    rc = m->qvt->import_bnb4(m->qstate, packed_at(m, &s, ln), (size_t)ln->out, (size_t)ln->in, &parts,
                                             err);
                if (rc) hone_err_prefix(err, "%s: %s: ", w->dir, name);
                else commit_packed(m, &s, ln);
            } else {
                rc = read_tensor(w, name, ln->out, ln->in, s.f, err);
                if (!rc) {
                    rc = m->qvt->quantize(m->qstate, packed_at(m, &s, ln), s.f, (size_t)ln->out, (size_t)ln->in, err);
                    if (rc) hone_err_prefix(err, "quantizing %s: ", name);
                    else commit_packed(m, &s, ln);
                }
            }
            if (!rc && ln->bias) {
                snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, lin_group(i), hone_linear_names[i]);
                rc = load_tensor(m, &s, w, name, ln->out, 0, ln->bias, err);
            }
        }
    }
    staging_free(&s);
    return rc;
}

int hone_model_load(hone_model **out, const char *dir, const hone_model_opts *o, hone_err *err)
{
    hone_model_config c;
    int rc = hone_model_config_load(&c, dir, err);
    return rc ? rc : hone_model_create(out, &c, dir, o, err);
}

/* random weights for benchmarks: N(0, 0.02)-like uniform noise, norms at 1 */
static int random_weights(hone_model *m, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    hone_rng rng;
    hone_rng_seed(&rng, 12345);
    staging s;
    int rc = staging_new(&s, m, err);
    if (rc) return rc;
    for (int l = 0; l <= c->layers && !rc; l++) {
        for (int i = 0; i < (l < c->layers ? HONE_NLINEAR : 0) && !rc; i++) {
            linear *ln = &m->layers[l].lin[i];
            size_t n = (size_t)ln->out * ln->in;
            float *w = m->lora ? s.f : fill_at(m, &s, ln->w);
            for (size_t k = 0; k < n; k++) w[k] = (float)(hone_rng_uniform(&rng) - 0.5) * 0.07f;
            /* the ABI gives every call an error to fill: a quantizer may refuse a shape */
            if (!m->lora) commit(m, &s, ln->w, n);
            else if ((rc = m->qvt->quantize(m->qstate, packed_at(m, &s, ln), w, (size_t)ln->out, (size_t)ln->in, err)))
                hone_err_prefix(err, "quantizing a random weight: ");
            else commit_packed(m, &s, ln);
        }
        for (int j = 0; j < 2 && l < c->layers && !rc; j++) {
            float *nw = j ? m->layers[l].ln2_w : m->layers[l].ln1_w, *at = fill_at(m, &s, nw);
            for (int k = 0; k < c->hidden; k++) at[k] = 1.0f;
            commit(m, &s, nw, (size_t)c->hidden);
        }
    }
    size_t ve = (size_t)c->vocab * c->hidden;
    for (int j = 0; j < (c->tied ? 1 : 2) && !rc; j++) {
        float *dst = j ? m->lm_head : m->embed, *at = fill_at(m, &s, dst);
        for (size_t k = 0; k < ve; k++) at[k] = (float)(hone_rng_uniform(&rng) - 0.5) * 0.07f;
        commit(m, &s, dst, ve);
    }
    float *nf = fill_at(m, &s, m->norm_w);
    for (int k = 0; k < c->hidden && !rc; k++) nf[k] = 1.0f;
    if (!rc) commit(m, &s, m->norm_w, (size_t)c->hidden);
    staging_free(&s);
    return rc;
}

int hone_model_create(hone_model **out, const hone_model_config *cfg, const char *dir, const hone_model_opts *o,
                      hone_err *err)
{
    hone_model *m = calloc(1, sizeof *m);
    if (!m) return hone_errf(err, HONE_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->be = o->backend ? o->backend : hone_backend_cpu();
    m->bf16 = o->compute_bf16;
    int rc = 0;
    const hone_model_config *c = &m->cfg;
    if (!dir) dir = "(random weights)";
    if (!rc && (o->batch < 1 || o->seq < 1))
        rc = hone_errf(err, HONE_EINVAL, "model: batch and sequence capacity must be >= 1");
    if (!rc && m->bf16 && !be_has_bf16(m->be))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "model.compute_dtype = \"bf16\": the %s backend has no bf16 products "
                       "here (the CPU's need AVX-512)", m->be->ops->name);
    if (!rc && o->seq > c->max_pos)
        rc = hone_errf(err, HONE_EINVAL, "data.max_seq_length %d exceeds the model's max_position_embeddings %d", o->seq,
                       c->max_pos);
    if (!rc && c->sliding_window > 0 && o->seq > c->sliding_window)
        rc = hone_errf(err, HONE_EUNSUPPORTED,
                       "%s: sliding-window attention (window %d) is not supported for sequences longer than the window (%d)",
                       dir, c->sliding_window, o->seq);
    if (!rc && o->lora && o->r < 1) rc = hone_errf(err, HONE_EINVAL, "lora.r must be >= 1");
    if (!rc && !o->lora && o->quantizer && strcmp(o->quantizer->info->name, "none") != 0)
        rc = hone_errf(err, HONE_EINVAL,
                       "full fine-tuning (lora = false) trains every weight in fp32: use model.quantizer = \"none\", not \"%s\"",
                       o->quantizer->info->name);
    if (!rc && o->lora && !o->quantizer) rc = hone_errf(err, HONE_EINVAL, "model: no quantizer given for the frozen base");
    if (!rc && c->prequant[0]) {
        const hone_quantizer_vt *q = o->quantizer ? o->quantizer->vtable : NULL;
        if (!o->lora)
            rc = hone_errf(err, HONE_EUNSUPPORTED, "%s is a bitsandbytes %s checkpoint: it can only be the frozen base of "
                           "a LoRA run, not fully fine-tuned", dir, c->prequant);
        else if (strcmp(o->quantizer->info->name, c->prequant) != 0 || q->info.version < 2 || !q->import_bnb4)
            rc = hone_errf(err, HONE_EINVAL, "%s is a bitsandbytes %s checkpoint%s: set model.quantizer = { \"%s\", "
                           "double_quant = %s }", dir, c->prequant, c->prequant_double ? " with double quant" : "",
                           c->prequant, c->prequant_double ? "true" : "false");
    }
    m->layers = rc ? NULL : calloc((size_t)c->layers, sizeof *m->layers);
    if (!rc && !m->layers) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
    if (rc) {
        hone_model_free(m);
        return rc;
    }
    m->lora = o->lora;
    m->r = o->lora ? o->r : 0;
    m->alpha = o->alpha;
    m->dropout_opt = o->dropout;
    m->rslora = o->rslora;
    m->scale = o->lora ? (float)(o->rslora ? o->alpha / sqrt((double)o->r) : o->alpha / o->r) : 0.0f;
    m->dropout = o->lora ? (float)o->dropout : 0.0f;
    m->Bcap = o->batch;
    m->Tcap = o->seq;
    hone_rng_seed(&m->rng, o->seed);
    m->neftune_alpha = (float)o->neftune_alpha;
    m->labelled_logits = o->labelled_logits;
    m->seed = o->seed;
    if (m->lora) {
        m->qvt = o->quantizer->vtable;
        rc = m->qvt->create(&hone_host_table, o->quantizer_opts, &m->qstate, err);
        if (rc) hone_err_prefix(err, "quantizer %s: ", o->quantizer->info->name);
        /* the packed base and, in the sizing pass, which linears are targeted (bit 0) */
        size_t off = 0, masks = 0;
        for (int l = 0; l < c->layers && !rc; l++)
            for (int i = 0; i < HONE_NLINEAR; i++) {
                linear *ln = &m->layers[l].lin[i];
                size_t bytes = m->qvt->packed_bytes(m->qstate, (size_t)lin_out(c, i), (size_t)lin_in(c, i));
                off = (off + 63) & ~(size_t)63;
                ln->packed_off = off;
                ln->targeted = (o->targets >> i) & 1u;
                off += bytes;
                if (((o->targets >> i) & 1u) && m->dropout > 0) masks += (size_t)m->Bcap * m->Tcap * lin_in(c, i);
            }
        m->npacked = off;
        if (!rc) {
            m->packed = be_alloc(m->be, (off + 63) & ~(size_t)63);
            m->masks = masks ? be_alloc(m->be, masks) : NULL;
            if (!m->packed || (masks && !m->masks)) rc = hone_errf(err, HONE_ENOMEM, "out of memory for the base model");
            size_t mo = 0;
            for (int l = 0; l < c->layers && !rc; l++)
                for (int i = 0; i < HONE_NLINEAR; i++) {
                    linear *ln = &m->layers[l].lin[i];
                    if (ln->targeted && m->masks) {
                        ln->keep = m->masks + mo;
                        mo += (size_t)m->Bcap * m->Tcap * lin_in(c, i);
                    }
                }
        }
    }
    bump pb = {0}, gb = {0}, fb = {0}, ab = {0};
    names nm = {0};
    if (!rc) {
        /* size the activations both ways, for the report */
        m->ckpt = !o->gradient_checkpointing;
        layout(m, &pb, &gb, &fb, &ab, &nm);
        m->acts_alt = ab.used;
        m->ckpt = o->gradient_checkpointing;
        pb = gb = fb = ab = (bump){0};
        nm = (names){0};
        layout(m, &pb, &gb, &fb, &ab, &nm);
        m->nparams = pb.used;
        m->nfrozen = fb.used;
        m->nacts = ab.used;
        m->params = backend_floats(m, pb.used);
        m->grads = backend_floats(m, gb.used);
        m->frozen = backend_floats(m, fb.used);
        m->acts = backend_floats(m, ab.used);
        /* bf16 runs: lm_head's bf16 copy, a frozen weight of its own */
        if (m->bf16) m->head16 = be_alloc(m->be, (size_t)c->vocab * c->hidden * sizeof(uint16_t));
        m->sel = malloc(2 * (size_t)m->Bcap * m->Tcap * sizeof *m->sel);   /* host: sel, then targets */
        m->tinfo = calloc(nm.n ? nm.n : 1, sizeof *m->tinfo);
        m->names = malloc(nm.used ? nm.used : 1);
        if (!m->params || !m->grads || !m->frozen || !m->acts || !m->sel || !m->tinfo || !m->names ||
            (m->bf16 && !m->head16))
            rc = hone_errf(err, HONE_ENOMEM, "out of memory for %zu activations", ab.used);
    }
    if (!rc) {
        bump pb2 = {m->params, 0}, gb2 = {m->grads, 0}, fb2 = {m->frozen, 0}, ab2 = {m->acts, 0};
        names nm2 = {m->tinfo, 0, m->names, 0};
        layout(m, &pb2, &gb2, &fb2, &ab2, &nm2);
        m->ntensors = nm2.n;
        if (!strcmp(dir, "(random weights)")) {
            rc = random_weights(m, err);
        } else {
            weights w;
            rc = hone_st_set_open(&w, dir, err);
            if (!rc) {
                rc = load_weights(m, &w, err);
                hone_st_set_close(&w);
            }
        }
    }
    staging s = {0};
    if (!rc && m->lora) rc = staging_new(&s, m, err);
    if (!rc && m->lora) {
        /* PEFT's init: A ~ kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)), B = 0 */
        for (int l = 0; l < c->layers; l++)
            for (int i = 0; i < HONE_NLINEAR; i++) {
                linear *ln = &m->layers[l].lin[i];
                if (!ln->A) continue;
                float bound = 1.0f / sqrtf((float)ln->in);
                size_t n = (size_t)m->r * ln->in;
                float *at = fill_at(m, &s, ln->A);
                for (size_t k = 0; k < n; k++) at[k] = (float)(2.0 * hone_rng_uniform(&m->rng) - 1.0) * bound;
                commit(m, &s, ln->A, n);
            }
        staging_free(&s);
    }
    if (rc) {
        hone_model_free(m);
        return rc;
    }
    hone_rope_inv_freq(c, m->inv_freq);
    be_rope_tables(m->be, m->cos_t, m->sin_t, m->inv_freq, m->Tcap, c->head_dim);
    *out = m;
    return 0;
}

/* ---- forward ---------------------------------------------------------------------- */

/* rows of a frozen weight that fit the tile buffer */
static int tile_rows(const linear *ln)
{
    size_t rows = TILE_FLOATS / (size_t)ln->in;
    return rows >= (size_t)ln->out ? ln->out : (int)(rows ? rows : 1);
}

/* x[n] rounded to bf16 into buf, for the products that read it (bf16 runs) */
static const uint16_t *to16(hone_model *m, uint16_t *buf, const float *x, size_t n)
{
    be_to_bf16(m->be, buf, x, n);
    return buf;
}

/* The frozen weight's product, dequantized up to TILE_FLOATS at a time (in bf16 runs
 * rounded as the product reads it); in16 is `in` in bf16 (bf16 runs):
 * forward: y[N, out] = x W^T;  backward: dx[N, in] += dy W */
static void base_product(hone_model *m, const linear *ln, float *out, const float *in, const uint16_t *in16, int N,
                         int backward)
{
    const void *packed = m->lora ? m->packed + ln->packed_off : NULL;
    int rows = m->lora ? tile_rows(ln) : ln->out;
    for (int r0 = 0; r0 < ln->out; r0 += rows) {
        int nr = ln->out - r0 < rows ? ln->out - r0 : rows;
        const float *w = ln->w ? ln->w + (size_t)r0 * ln->in : NULL;
        if (m->lora) {
            m->qvt->dequantize(m->qstate, m->tile, packed, (size_t)ln->out, (size_t)ln->in, (size_t)r0, (size_t)nr);
            w = m->tile;
        }
        if (m->bf16) {   /* the fp32 weight rounded as the product reads it */
            if (backward) be_matmul_bf16_backward_input_w32(m->be, out, in16 + r0, w, N, ln->in, nr, ln->out, 1.0f, 1.0f);
            else be_matmul_bf16_forward_w32(m->be, out + r0, in16, w, N, ln->in, nr, ln->out, 1.0f, 0.0f);
        } else if (backward) {
            be_matmul_backward_input(m->be, out, in + r0, w, N, ln->in, nr, ln->out, 1.0f, 1.0f);
        } else {
            be_matmul_forward(m->be, out + r0, in, w, N, ln->in, nr, ln->out, 1.0f, 0.0f);
        }
    }
}

/* the input of A: x itself, or x through dropout (mask drawn in the forward) */
static const float *lora_input(hone_model *m, const linear *ln, const float *x, int N, int draw)
{
    if (!ln->keep || m->eval) return x;
    size_t n = (size_t)N * ln->in;
    float inv = 1.0f / (1.0f - m->dropout);
    if (draw) {
        be_dropout_mask(m->be, ln->keep, n, m->dropout, m->seed, HONE_STREAM_DROPOUT, m->draws[0]);
        m->draws[0] += n;
    }
    be_dropout_forward(m->be, m->tmp, x, ln->keep, inv, n);
    return m->tmp;
}

/* lm_head in bf16: the frozen one's copy is made at its first use; a trained one is
 * rounded again at every use */
static const uint16_t *head16(hone_model *m)
{
    const hone_model_config *c = &m->cfg;
    if (!m->head16_made) be_to_bf16(m->be, m->head16, m->lm_head, (size_t)c->vocab * c->hidden);
    m->head16_made = !m->dlm_head;
    return m->head16;
}

void hone_head_forward(hone_model *m, float *logits, const float *x, int rows)
{
    const hone_model_config *c = &m->cfg;
    if (m->bf16) {
        const uint16_t *x16 = to16(m, m->x16, x, (size_t)rows * c->hidden);
        be_matmul_bf16_forward(m->be, logits, x16, head16(m), rows, c->hidden, c->vocab, c->vocab, 1.0f, 0.0f);
    } else {
        be_matmul_forward(m->be, logits, x, m->lm_head, rows, c->hidden, c->vocab, c->vocab, 1.0f, 0.0f);
    }
}

/* dx[rows, hidden] = dlogits lm_head */
static void head_backward_input(hone_model *m, float *dx, const float *dlogits, int rows)
{
    const hone_model_config *c = &m->cfg;
    if (m->bf16) {
        /* the logits' gradient, [rows, vocab], rounded as the product reads it */
        be_matmul_bf16_backward_input_f32(m->be, dx, dlogits, head16(m), rows, c->hidden, c->vocab, c->vocab, 1.0f,
                                          0.0f);
    } else {
        be_matmul_backward_input(m->be, dx, dlogits, m->lm_head, rows, c->hidden, c->vocab, c->vocab, 1.0f, 0.0f);
    }
}

void hone_linear_forward(hone_model *m, linear *ln, float *y, const float *x, const uint16_t *x16, int N, int draw)
{
    if (m->bf16 && !x16) x16 = to16(m, m->x16, x, (size_t)N * ln->in);
    base_product(m, ln, y, x, x16, N, 0);
    if (ln->bias) be_bias_forward(m->be, y, ln->bias, N, ln->out);
    if (!ln->A) return;
    const float *xd = lora_input(m, ln, x, N, draw);
    if (m->bf16) {
        /* as torch's autocast runs PEFT's lora_A and lora_B: bf16 products, fp32 weights */
        const uint16_t *xd16 = xd == x ? x16 : to16(m, m->xd16, xd, (size_t)N * ln->in);
        be_matmul_bf16_forward(m->be, ln->xa, xd16, to16(m, m->a16, ln->A, (size_t)m->r * ln->in), N, ln->in, m->r,
                               m->r, 1.0f, 0.0f);
        be_matmul_bf16_forward(m->be, y, to16(m, m->xa16, ln->xa, (size_t)N * m->r),
                               to16(m, m->b16, ln->B, (size_t)ln->out * m->r), N, m->r, ln->out, ln->out, m->scale,
                               1.0f);
        return;
    }
    be_matmul_forward(m->be, ln->xa, xd, ln->A, N, ln->in, m->r, m->r, 1.0f, 0.0f);
    be_matmul_forward(m->be, y, ln->xa, ln->B, N, m->r, ln->out, ln->out, m->scale, 1.0f);
}

/* the LoRA side's backward in bf16: dy16 is dy, x16 the layer's input in bf16 */
static void lora_backward_bf16(hone_model *m, linear *ln, float *dx, const uint16_t *dy16, const float *x,
                               const uint16_t *x16, int N)
{
    int r = m->r;
    be_matmul_bf16_backward_weight(m->be, ln->dB, dy16, to16(m, m->xa16, ln->xa, (size_t)N * r), N, r, ln->out,
                                   m->scale);
    const uint16_t *b16 = to16(m, m->b16, ln->B, (size_t)ln->out * r);
    be_matmul_bf16_backward_input(m->be, m->dxa, dy16, b16, N, r, ln->out, ln->out, m->scale, 0.0f);
    const uint16_t *dxa16 = to16(m, m->dxa16, m->dxa, (size_t)N * r);
    const float *xd = lora_input(m, ln, x, N, 0);
    const uint16_t *xd16 = xd == x ? x16 : to16(m, m->xd16, xd, (size_t)N * ln->in);
    be_matmul_bf16_backward_weight(m->be, ln->dA, dxa16, xd16, N, ln->in, r, 1.0f);
    const uint16_t *a16 = to16(m, m->a16, ln->A, (size_t)r * ln->in);
    if (!ln->keep || m->eval) {
        be_matmul_bf16_backward_input(m->be, dx, dxa16, a16, N, ln->in, r, r, 1.0f, 1.0f);
    } else {
        be_matmul_bf16_backward_input(m->be, m->tmp, dxa16, a16, N, ln->in, r, r, 1.0f, 0.0f);
        be_dropout_backward(m->be, dx, m->tmp, ln->keep, 1.0f / (1.0f - m->dropout), (size_t)N * ln->in);
    }
}

/* dx[N, in] += the input gradient; parameter gradients +=. x16: x in bf16 (bf16 runs) */
static void linear_backward(hone_model *m, linear *ln, float *dx, const float *dy, const float *x,
                            const uint16_t *x16, int N)
{
    if (ln->dw) be_matmul_backward_weight(m->be, ln->dw, dy, x, N, ln->in, ln->out, ln->out, 1.0f);
    if (ln->dbias) be_bias_backward(m->be, ln->dbias, dy, N, ln->out);
    const uint16_t *dy16 = m->bf16 ? to16(m, m->dy16, dy, (size_t)N * ln->out) : NULL;
    base_product(m, ln, dx, dy, dy16, N, 1);
    if (!ln->A) return;
    if (m->bf16) {
        lora_backward_bf16(m, ln, dx, dy16, x, x16, N);
        return;
    }
    be_matmul_backward_weight(m->be, ln->dB, dy, ln->xa, N, m->r, ln->out, ln->out, m->scale);
    be_matmul_backward_input(m->be, m->dxa, dy, ln->B, N, m->r, ln->out, ln->out, m->scale, 0.0f);
    const float *xd = lora_input(m, ln, x, N, 0);
    be_matmul_backward_weight(m->be, ln->dA, m->dxa, xd, N, ln->in, m->r, m->r, 1.0f);
    if (!ln->keep || m->eval) {
        be_matmul_backward_input(m->be, dx, m->dxa, ln->A, N, ln->in, m->r, m->r, 1.0f, 1.0f);
    } else {
        float inv = 1.0f / (1.0f - m->dropout);
        be_matmul_backward_input(m->be, m->tmp, m->dxa, ln->A, N, ln->in, m->r, m->r, 1.0f, 0.0f);
        size_t n = (size_t)N * ln->in;
        be_dropout_backward(m->be, dx, m->tmp, ln->keep, inv, n);
    }
}

/* a shared input rounded to bf16 once for the linears that read it (NULL in fp32 runs) */
static const uint16_t *input16(hone_model *m, const float *x, size_t n)
{
    return m->bf16 ? to16(m, m->x16, x, n) : NULL;
}

/* the same in the backward, where only LoRA's A gradient reads it: linears [i0, i1) */
static const uint16_t *lora_input16(hone_model *m, const layer *L, int i0, int i1, const float *x, size_t n)
{
    for (int i = i0; i < i1; i++)
        if (L->lin[i].A) return input16(m, x, n);
    return NULL;
}

/* one decoder layer from res[l] into res[l + 1]; draw = 0 recomputes with the dropout
 * masks of the first pass (gradient checkpointing) */
static void layer_forward(hone_model *m, int l, int B, int T, int draw)
{
    const hone_model_config *c = &m->cfg;
    int N = B * T, C = c->hidden, H = c->heads, KVH = c->kv_heads, hd = c->head_dim;
    layer *L = &m->layers[l];
    float *h = m->res + (size_t)l * m->Bcap * m->Tcap * C, *hn = h + (size_t)m->Bcap * m->Tcap * C;
    be_rmsnorm_forward(m->be, L->ln1, L->rstd1, h, L->ln1_w, N, C, c->rms_eps);
    const uint16_t *x16 = input16(m, L->ln1, (size_t)N * C);
    hone_linear_forward(m, &L->lin[HONE_Q_PROJ], L->q, L->ln1, x16, N, draw);
    hone_linear_forward(m, &L->lin[HONE_K_PROJ], L->k, L->ln1, x16, N, draw);
    hone_linear_forward(m, &L->lin[HONE_V_PROJ], L->v, L->ln1, x16, N, draw);
    const int32_t *start = m->packed_rows ? m->doc_start : NULL;
    be_rope_forward(m->be, L->q, m->cos_t, m->sin_t, start, B, T, H, hd);
    be_rope_forward(m->be, L->k, m->cos_t, m->sin_t, start, B, T, KVH, hd);
    if (m->bf16) be_attention_bf16_forward(m->be, L->ao, L->att, L->q, L->k, L->v, start, B, T, H, KVH, hd);
    else be_attention_forward(m->be, L->ao, L->att, L->q, L->k, L->v, start, B, T, H, KVH, hd);
    hone_linear_forward(m, &L->lin[HONE_O_PROJ], L->mid, L->ao, NULL, N, draw);
    be_axpy(m->be, L->mid, h, 1.0f, (size_t)N * C);
    be_rmsnorm_forward(m->be, L->ln2, L->rstd2, L->mid, L->ln2_w, N, C, c->rms_eps);
    x16 = input16(m, L->ln2, (size_t)N * C);
    hone_linear_forward(m, &L->lin[HONE_GATE_PROJ], L->gate, L->ln2, x16, N, draw);
    hone_linear_forward(m, &L->lin[HONE_UP_PROJ], L->up, L->ln2, x16, N, draw);
    be_swiglu_forward(m->be, L->sw, L->gate, L->up, N, c->inter);
    hone_linear_forward(m, &L->lin[HONE_DOWN_PROJ], hn, L->sw, NULL, N, draw);
    be_axpy(m->be, hn, L->mid, 1.0f, (size_t)N * C);
}

void hone_shift_labels(int32_t *targets, const int32_t *labels, int B, int T)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            targets[(size_t)b * T + t] = t + 1 < T ? labels[(size_t)b * T + t + 1] : -100;
}

int hone_model_set_documents(hone_model *m, const int32_t *start, int B, int T, hone_err *err)
{
    if (!start) {
        m->packed_rows = 0;
        return 0;
    }
    if (B < 1 || T < 1 || B > m->Bcap || T > m->Tcap)
        return hone_errf(err, HONE_EINVAL, "batch %dx%d exceeds the model's capacity %dx%d", B, T, m->Bcap, m->Tcap);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t s = start[(size_t)b * T + t];
            int32_t prev = t ? start[(size_t)b * T + t - 1] : 0;
            if (s < 0 || s > t || (s != t && s != prev))
                return hone_errf(err, HONE_EINVAL, "document starts: row %d position %d has start %d", b, t, s);
        }
    be_upload(m->be, m->doc_start, start, (size_t)B * T * sizeof *start);
    m->packed_rows = 1;
    return 0;
}

int hone_model_forward(hone_model *m, const int32_t *ids, const int32_t *targets, int B, int T, double *loss_sum,
                       long *count, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    if (B < 1 || T < 1 || B > m->Bcap || T > m->Tcap)
        return hone_errf(err, HONE_EINVAL, "batch %dx%d exceeds the model's capacity %dx%d", B, T, m->Bcap, m->Tcap);
    int N = B * T, C = c->hidden;
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return hone_errf(err, HONE_EINVAL, "token id %d at position %d is outside the vocabulary (%d)", ids[i], i,
                             c->vocab);
    m->B = B;
    m->T = T;
    be_upload(m->be, m->ids, ids, (size_t)N * sizeof *ids);
    /* rope tables are per position; a shorter T uses the first rows, which needs the
     * [T, hd/2] layout to be position-major, as it is */
    be_embedding_forward(m->be, m->res, m->ids, m->embed, N, C);
    if (m->neftune_alpha > 0 && !m->eval) {
        /* NEFTune as transformers' hook: U(-mag, mag) on every element of the embedding
         * output, mag = alpha / sqrt(T * C) with T the padded length; the noise adds, so
         * the backward is unchanged */
        float mag = m->neftune_alpha / sqrtf((float)T * (float)C);
        be_uniform_noise(m->be, m->res, (size_t)N * C, mag, m->seed, HONE_STREAM_NEFTUNE, m->draws[1]);
        m->draws[1] += (size_t)N * C;
    }
    for (int l = 0; l < c->layers; l++) layer_forward(m, l, B, T, 1);
    float *hl = m->res + (size_t)c->layers * m->Bcap * m->Tcap * C;
    be_rmsnorm_forward(m->be, m->lnf, m->rstdf, hl, m->norm_w, N, C, c->rms_eps);
    m->nsel = 0;
    if (!targets || !m->labelled_logits)
        hone_head_forward(m, m->logits, m->lnf, N);
    if (!targets) return be_sync(m->be, err);
    long n = 0;
    int32_t *tsel = m->sel + N;   /* host: the selected rows' targets */
    for (int i = 0; i < N; i++) {
        if (targets[i] >= c->vocab || targets[i] < -100 || (targets[i] < 0 && targets[i] != -100))
            return hone_errf(err, HONE_EINVAL, "label %d at position %d is outside the vocabulary (%d) and not -100",
                             targets[i], i, c->vocab);
        if (targets[i] >= 0) tsel[n] = targets[i], m->sel[n++] = i;
    }
    int rows = N;
    if (!m->labelled_logits) be_upload(m->be, m->targets, targets, (size_t)N * sizeof *targets);
    if (m->labelled_logits) {
        /* unlabelled positions add nothing to the loss or the gradients: skip their logits */
        be_gather_rows(m->be, m->lnf_sel, m->lnf, m->sel, (int)n, C);
        be_upload(m->be, m->targets, tsel, (size_t)n * sizeof *tsel);
        rows = m->nsel = (int)n;
        if (rows) hone_head_forward(m, m->logits, m->lnf_sel, rows);
    }
    /* the per-position losses go to dres, free until backward */
    *loss_sum = be_cross_entropy_forward(m->be, m->dres, m->logits, m->targets, rows, c->vocab);
    *count = n;
    return be_sync(m->be, err);   /* the first op that failed, if one did */
}

const float *hone_model_logits(const hone_model *m)
{
    return m->logits;
}

const float *hone_model_embedded(const hone_model *m)
{
    return m->res;   /* the residual stream's first slice: layer 0's input */
}

/* ---- backward --------------------------------------------------------------------- */

int hone_model_backward(hone_model *m, float scale, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    if (m->B == 0) return hone_errf(err, HONE_ESTATE, "backward without a forward");
    int B = m->B, T = m->T, N = B * T, C = c->hidden, H = c->heads, KVH = c->kv_heads, hd = c->head_dim;
    size_t NC = (size_t)N * C, stride = (size_t)m->Bcap * m->Tcap * C;
    if (m->labelled_logits) {
        /* the labelled rows only; the others' gradient at the final norm is zero */
        int ns = m->nsel;
        be_zero(m->be, m->dln, NC * sizeof(float));
        if (ns) be_cross_entropy_backward(m->be, m->logits, m->logits, m->targets, ns, c->vocab, scale);
        if (ns && m->dlm_head)
            be_matmul_backward_weight(m->be, m->dlm_head, m->logits, m->lnf_sel, ns, C, c->vocab, c->vocab, 1.0f);
        if (ns) head_backward_input(m, m->lnf_sel, m->logits, ns);
        be_scatter_rows(m->be, m->dln, m->lnf_sel, m->sel, ns, C);
    } else {
        be_cross_entropy_backward(m->be, m->logits, m->logits, m->targets, N, c->vocab, scale);
        if (m->dlm_head) be_matmul_backward_weight(m->be, m->dlm_head, m->logits, m->lnf, N, C, c->vocab, c->vocab, 1.0f);
        head_backward_input(m, m->dln, m->logits, N);
    }
    be_zero(m->be, m->dres, NC * sizeof(float));
    float *hl = m->res + (size_t)c->layers * stride;
    be_rmsnorm_backward(m->be, m->dres, m->dnorm_w, m->dln, hl, m->norm_w, m->rstdf, N, C);
    for (int l = c->layers - 1; l >= 0; l--) {
        layer *L = &m->layers[l];
        float *h = m->res + (size_t)l * stride;
        if (m->ckpt) layer_forward(m, l, B, T, 0);   /* the layer's activations again, from its input */
        /* MLP: dres is the gradient at the layer output = at mid (residual) and at down's output */
        be_zero(m->be, m->dsw, (size_t)N * c->inter * sizeof(float));
        const uint16_t *x16 = lora_input16(m, L, HONE_DOWN_PROJ, HONE_DOWN_PROJ + 1, L->sw, (size_t)N * c->inter);
        linear_backward(m, &L->lin[HONE_DOWN_PROJ], m->dsw, m->dres, L->sw, x16, N);
        be_swiglu_backward(m->be, m->dgate, m->dup, m->dsw, L->gate, L->up, N, c->inter);
        be_zero(m->be, m->dln, NC * sizeof(float));
        x16 = lora_input16(m, L, HONE_GATE_PROJ, HONE_UP_PROJ + 1, L->ln2, NC);
        linear_backward(m, &L->lin[HONE_GATE_PROJ], m->dln, m->dgate, L->ln2, x16, N);
        linear_backward(m, &L->lin[HONE_UP_PROJ], m->dln, m->dup, L->ln2, x16, N);
        be_rmsnorm_backward(m->be, m->dres, L->dln2_w, m->dln, L->mid, L->ln2_w, L->rstd2, N, C);
        /* attention: dres is now the gradient at mid = h + o(ao) */
        be_zero(m->be, m->dao, (size_t)N * H * hd * sizeof(float));
        x16 = lora_input16(m, L, HONE_O_PROJ, HONE_O_PROJ + 1, L->ao, (size_t)N * H * hd);
        linear_backward(m, &L->lin[HONE_O_PROJ], m->dao, m->dres, L->ao, x16, N);
        const int32_t *start = m->packed_rows ? m->doc_start : NULL;
        if (m->bf16)
            be_attention_bf16_backward(m->be, m->dq, m->dk, m->dv, m->dao, L->ao, L->att, L->q, L->k, L->v, start, B, T,
                                       H, KVH, hd);
        else
            be_attention_backward(m->be, m->dq, m->dk, m->dv, m->dao, L->ao, L->att, L->q, L->k, L->v, start, B, T, H,
                                  KVH, hd);
        be_rope_backward(m->be, m->dq, m->cos_t, m->sin_t, start, B, T, H, hd);
        be_rope_backward(m->be, m->dk, m->cos_t, m->sin_t, start, B, T, KVH, hd);
        be_zero(m->be, m->dln, NC * sizeof(float));
        x16 = lora_input16(m, L, HONE_Q_PROJ, HONE_V_PROJ + 1, L->ln1, NC);
        linear_backward(m, &L->lin[HONE_Q_PROJ], m->dln, m->dq, L->ln1, x16, N);
        linear_backward(m, &L->lin[HONE_K_PROJ], m->dln, m->dk, L->ln1, x16, N);
        linear_backward(m, &L->lin[HONE_V_PROJ], m->dln, m->dv, L->ln1, x16, N);
        be_rmsnorm_backward(m->be, m->dres, L->dln1_w, m->dln, h, L->ln1_w, L->rstd1, N, C);
    }
    if (m->dembed) be_embedding_backward(m->be, m->dembed, m->dres, m->ids, N, C);
    return be_sync(m->be, err);
}

void hone_model_zero_grad(hone_model *m)
{
    be_zero(m->be, m->grads, m->nparams * sizeof(float));
}

float *hone_model_params(hone_model *m, size_t *n)
{
    if (n) *n = m->nparams;
    return m->params;
}

float *hone_model_grads(hone_model *m, size_t *n)
{
    if (n) *n = m->nparams;
    return m->grads;
}

const hone_tensor_info *hone_model_tensors(const hone_model *m, size_t *n)
{
    *n = m->ntensors;
    return m->tinfo;
}

void hone_model_lora_settings(const hone_model *m, double *alpha, double *dropout, int *rslora)
{
    *alpha = m->alpha;
    *dropout = m->dropout_opt;
    *rslora = m->rslora;
}

void hone_model_activation_bytes(const hone_model *m, size_t *with_ckpt, size_t *without)
{
    *with_ckpt = (m->ckpt ? m->nacts : m->acts_alt) * sizeof(float);
    *without = (m->ckpt ? m->acts_alt : m->nacts) * sizeof(float);
}

void hone_model_memory(const hone_model *m, size_t *params, size_t *frozen, size_t *packed, size_t *acts)
{
    *params = m->nparams * sizeof(float);
    *frozen = m->nfrozen * sizeof(float);
    *packed = m->npacked;
    *acts = m->nacts * sizeof(float);
}

void hone_model_get_draws(const hone_model *m, uint64_t out[2])
{
    out[0] = m->draws[0];
    out[1] = m->draws[1];
}

void hone_model_set_draws(hone_model *m, const uint64_t in[2])
{
    m->draws[0] = in[0];
    m->draws[1] = in[1];
}

void hone_model_set_eval(hone_model *m, int eval)
{
    m->eval = eval;
}

/* ---- the base, for format writers -------------------------------------------------- */

static void base_put(hone_base_tensor *out, size_t max, size_t *n, const char *name, int ndim, int64_t d0, int64_t d1,
                     const float *data, int linear)
{
    if (*n < max) {
        hone_base_tensor *t = &out[*n];
        *t = (hone_base_tensor){.ndim = ndim, .shape = {d0, d1}, .data = data, .linear = linear};
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    (*n)++;
}

size_t hone_model_base_tensors(const hone_model *m, hone_base_tensor *out, size_t max)
{
    const hone_model_config *c = &m->cfg;
    int64_t V = c->vocab, C = c->hidden;
    size_t n = 0;
    char name[128];
    base_put(out, max, &n, "model.embed_tokens.weight", 2, V, C, m->embed, -1);
    if (!c->tied) base_put(out, max, &n, "lm_head.weight", 2, V, C, m->lm_head, -1);
    base_put(out, max, &n, "model.norm.weight", 1, C, 0, m->norm_w, -1);
    for (int li = 0; li < c->layers; li++) {
        const layer *L = &m->layers[li];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", li);
        base_put(out, max, &n, name, 1, C, 0, L->ln1_w, -1);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", li);
        base_put(out, max, &n, name, 1, C, 0, L->ln2_w, -1);
        for (int i = 0; i < HONE_NLINEAR; i++) {
            const linear *ln = &L->lin[i];
            const char *group = i <= HONE_O_PROJ ? "self_attn" : "mlp";
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", li, group, hone_linear_names[i]);
            base_put(out, max, &n, name, 2, ln->out, ln->in, NULL, li * HONE_NLINEAR + i);
            if (!ln->bias) continue;
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", li, group, hone_linear_names[i]);
            base_put(out, max, &n, name, 1, ln->out, 0, ln->bias, -1);
        }
    }
    return n;
}

int hone_model_has_bnb4(const hone_model *m)
{
    return m->lora && m->qvt && m->qvt->info.version >= 2 && m->qvt->export_bnb4;
}

int hone_model_export_bnb4(const hone_model *m, int which, hone_bnb4 *out, hone_err *err)
{
    if (!hone_model_has_bnb4(m)) return hone_errf(err, HONE_EUNSUPPORTED, "only nf4 / fp4 bases have a bitsandbytes layout");
    if (which < 0 || which >= m->cfg.layers * HONE_NLINEAR)
        return hone_errf(err, HONE_EINVAL, "linear %d: the model has %d", which, m->cfg.layers * HONE_NLINEAR);
    const linear *ln = &m->layers[which / HONE_NLINEAR].lin[which % HONE_NLINEAR];
    return m->qvt->export_bnb4(m->qstate, m->packed + ln->packed_off, (size_t)ln->out, (size_t)ln->in, out, err);
}
