/* generate.c — text generation with a KV cache: the prompts are prefilled together in
 * chunks of up to the model's activation capacity, then all unfinished sequences decode
 * one token per step together. Sampling follows transformers' order: temperature, top-k, top-p. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model_impl.h"
#include "backend.h"

typedef struct gen {
    hone_model *m;
    float *cache;            /* backend: [layers, 2, nseq, maxlen, KVH*hd], one buffer */
    int nseq, maxlen;
    int *pos, *seq;          /* host, per row */
    float *scores;           /* backend: [maxlen] */
    float *logits;           /* host: [rows, V] for sampling (NULL: greedy, argmax on the backend) */
    int32_t *best;           /* host: [rows] the argmax of each row */
} gen;

/* Runs rows (seq[i], pos[i], ids[i]) through the layers, writing their K and V into the
 * cache; leaves the final-normed hidden states of the rows in m->lnf. */
static void infer_rows(gen *g, const int32_t *ids, int N)
{
    hone_model *m = g->m;
    const hone_model_config *c = &m->cfg;
    int C = c->hidden, H = c->heads, KVH = c->kv_heads, hd = c->head_dim;
    size_t kd = (size_t)KVH * hd;
    layer *S = &m->layers[0];   /* layer 0's activation buffers serve as scratch */
    float *h = m->res, *hn = m->res + (size_t)m->Bcap * m->Tcap * C;
    be_upload(m->be, m->ids, ids, (size_t)N * sizeof *ids);
    be_embedding_forward(m->be, h, m->ids, m->embed, N, C);
    for (int l = 0; l < c->layers; l++) {
        layer *L = &m->layers[l];
        be_rmsnorm_forward(m->be, S->ln1, S->rstd1, h, L->ln1_w, N, C, c->rms_eps);
        hone_linear_forward(m, &L->lin[HONE_Q_PROJ], S->q, S->ln1, NULL, N, 0);
        hone_linear_forward(m, &L->lin[HONE_K_PROJ], S->k, S->ln1, NULL, N, 0);
        hone_linear_forward(m, &L->lin[HONE_V_PROJ], S->v, S->ln1, NULL, N, 0);
        be_rope_at(m->be, S->q, g->pos, m->inv_freq, N, H, hd);
        be_rope_at(m->be, S->k, g->pos, m->inv_freq, N, KVH, hd);
        float *cache = g->cache + (size_t)l * 2 * g->nseq * g->maxlen * kd;
        be_kv_write(m->be, cache, S->k, S->v, g->seq, g->pos, N, g->nseq, g->maxlen, (int)kd);
        be_attention_cached(m->be, S->ao, g->scores, S->q, cache, g->seq, g->pos, N, g->nseq, g->maxlen, H, KVH, hd);
        hone_linear_forward(m, &L->lin[HONE_O_PROJ], S->mid, S->ao, NULL, N, 0);
        be_axpy(m->be, S->mid, h, 1.0f, (size_t)N * C);
        be_rmsnorm_forward(m->be, S->ln2, S->rstd2, S->mid, L->ln2_w, N, C, c->rms_eps);
        hone_linear_forward(m, &L->lin[HONE_GATE_PROJ], S->gate, S->ln2, NULL, N, 0);
        hone_linear_forward(m, &L->lin[HONE_UP_PROJ], S->up, S->ln2, NULL, N, 0);
        be_swiglu_forward(m->be, S->sw, S->gate, S->up, N, c->inter);
        hone_linear_forward(m, &L->lin[HONE_DOWN_PROJ], hn, S->sw, NULL, N, 0);
        be_axpy(m->be, hn, S->mid, 1.0f, (size_t)N * C);
        float *t = h;
        h = hn;
        hn = t;
    }
    be_rmsnorm_forward(m->be, m->lnf, m->rstdf, h, m->norm_w, N, C, c->rms_eps);
}

typedef struct cand {
    float logit;
    int id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    return x < y ? 1 : x > y ? -1 : ((const cand *)a)->id - ((const cand *)b)->id;
}

/* one token from a row of logits (host), by temperature, top-k and top-p */
static int32_t sample(const float *logits, int V, const hone_gen_opts *o, hone_rng *rng, cand *buf)
{
    for (int j = 0; j < V; j++) buf[j] = (cand){logits[j] / (float)o->temperature, j};
    qsort(buf, (size_t)V, sizeof *buf, cmp_cand);
    int n = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    double mx = buf[0].logit, sum = 0;
    for (int j = 0; j < n; j++) sum += exp(buf[j].logit - mx);
    if (o->top_p < 1.0) {   /* the smallest prefix whose probability reaches top_p */
        double acc = 0;
        int keep = 0;
        while (keep < n) {
            acc += exp(buf[keep].logit - mx) / sum;
            keep++;
            if (acc >= o->top_p) break;
        }
        n = keep;
        sum = 0;
        for (int j = 0; j < n; j++) sum += exp(buf[j].logit - mx);
    }
    double u = hone_rng_uniform(rng) * sum, acc = 0;
    for (int j = 0; j < n; j++) {
        acc += exp(buf[j].logit - mx);
        if (u < acc) return buf[j].id;
    }
    return buf[n - 1].id;
}

/* row i's token: the argmax the backend took (greedy), or sampled from its logits */
static int32_t next_token(gen *g, int i, int V, const hone_gen_opts *o, hone_rng *rng, cand *buf)
{
    if (!g->logits) return g->best[i];
    hone_model *m = g->m;
    be_download(m->be, g->logits, m->logits + (size_t)i * V, (size_t)V * sizeof *g->logits);
    return sample(g->logits, V, o, rng, buf);
}

int hone_model_generate_batch(const hone_model *m, int maxlen)
{
    const hone_model_config *c = &m->cfg;
    size_t per = (size_t)(maxlen > 0 ? maxlen : 1) * c->kv_heads * c->head_dim * c->layers * 2 * sizeof(float);
    size_t fit = ((size_t)256 << 20) / per, cap = (size_t)m->Bcap * m->Tcap;
    return (int)(fit < 1 ? 1 : fit < cap ? fit : cap);
}

int hone_model_generate(hone_model *m, const int32_t *const *prompts, const int *lens, int nseq,
                        const hone_gen_opts *o, int32_t **out, int *out_len, hone_err *err)
{
    const hone_model_config *c = &m->cfg;
    int cap = m->Bcap * m->Tcap, V = c->vocab, longest = 0;
    if (nseq < 1 || o->max_new_tokens < 1) return hone_errf(err, HONE_EINVAL, "generate: nothing to generate");
    if (nseq > cap) return hone_errf(err, HONE_EINVAL, "generate: %d prompts exceed the batch capacity %d", nseq, cap);
    for (int s = 0; s < nseq; s++) {
        if (lens[s] < 1) return hone_errf(err, HONE_EINVAL, "generate: prompt %d is empty", s);
        for (int t = 0; t < lens[s]; t++)
            if (prompts[s][t] < 0 || prompts[s][t] >= V)
                return hone_errf(err, HONE_EINVAL, "generate: prompt %d has token %d outside the vocabulary", s,
                                 prompts[s][t]);
        longest = lens[s] > longest ? lens[s] : longest;
    }
    gen g = {.m = m, .nseq = nseq, .maxlen = longest + o->max_new_tokens};
    if (g.maxlen > c->max_pos)
        return hone_errf(err, HONE_EINVAL, "generate: %d prompt + %d new tokens exceed max_position_embeddings %d",
                         longest, o->max_new_tokens, c->max_pos);
    size_t per = (size_t)nseq * g.maxlen * c->kv_heads * c->head_dim;
    g.cache = be_alloc(m->be, (size_t)c->layers * 2 * per * sizeof(float));
    g.scores = be_alloc(m->be, (size_t)g.maxlen * sizeof *g.scores);
    g.pos = calloc((size_t)cap, sizeof *g.pos);
    g.seq = calloc((size_t)cap, sizeof *g.seq);
    g.best = malloc((size_t)cap * sizeof *g.best);
    int greedy = o->temperature <= 0;
    g.logits = greedy ? NULL : malloc((size_t)V * sizeof *g.logits);
    int32_t *ids = malloc((size_t)cap * sizeof *ids), *next = malloc((size_t)nseq * sizeof *next);
    int *done = calloc((size_t)nseq, sizeof *done);
    cand *buf = greedy ? NULL : malloc((size_t)V * sizeof *buf);
    int rc = g.pos && g.seq && g.best && (greedy || (g.logits && buf)) && ids && next && done
                 ? 0 : hone_errf(err, HONE_ENOMEM, "out of memory");
    if (!rc && (!g.cache || !g.scores))
        rc = hone_errf(err, HONE_ENOMEM, "out of memory for the KV cache (%zu MB)", per * 8 * (size_t)c->layers >> 20);
    hone_rng rng;
    hone_rng_seed(&rng, o->seed);
    int was_eval = m->eval;
    m->eval = 1;
    /* prefill: the prompts' rows one sequence after another, packed into chunks of at most
     * `cap` rows (a prompt may straddle two), so each chunk streams the weights once; a
     * sequence whose last row is in the chunk takes its token 1 from that row */
    for (int s = 0, t = 0; s < nseq && !rc;) {
        int n = 0, nlast = 0;
        while (n < cap && s < nseq) {
            ids[n] = prompts[s][t];
            g.pos[n] = t;
            g.seq[n++] = s;
            if (++t == lens[s]) s++, t = 0;
        }
        infer_rows(&g, ids, n);
        for (int i = 0; i < n; i++)   /* the last rows to the front of lnf, in order (nlast <= i) */
            if (g.pos[i] == lens[g.seq[i]] - 1) {
                if (nlast != i) be_copy(m->be, m->lnf + (size_t)nlast * c->hidden, m->lnf + (size_t)i * c->hidden,
                                        (size_t)c->hidden * sizeof(float));
                g.seq[nlast++] = g.seq[i];
            }
        hone_head_forward(m, m->logits, m->lnf, nlast);
        if (greedy) be_argmax(m->be, g.best, m->logits, nlast, V);
        for (int i = 0; i < nlast; i++) {
            int q = g.seq[i];
            next[q] = next_token(&g, i, V, o, &rng, buf);
            out[q][0] = next[q];
            out_len[q] = 1;
            for (int e = 0; e < o->neos; e++) done[q] |= next[q] == o->eos[e];
            if (!done[q] && o->stop) done[q] = o->stop(o->stop_ctx, q, out[q], 1);
        }
    }
    /* decode: one row per unfinished sequence */
    for (int step = 1; step < o->max_new_tokens && !rc; step++) {
        int n = 0;
        for (int s = 0; s < nseq; s++) {
            if (done[s]) continue;
            ids[n] = next[s];
            g.pos[n] = lens[s] + out_len[s] - 1;
            g.seq[n] = s;
            n++;
        }
        if (n == 0) break;
        infer_rows(&g, ids, n);
        hone_head_forward(m, m->logits, m->lnf, n);
        if (greedy) be_argmax(m->be, g.best, m->logits, n, V);
        for (int i = 0; i < n; i++) {
            int s = g.seq[i];
            next[s] = next_token(&g, i, V, o, &rng, buf);
            out[s][out_len[s]++] = next[s];
            for (int e = 0; e < o->neos; e++) done[s] |= next[s] == o->eos[e];
            if (!done[s] && o->stop) done[s] = o->stop(o->stop_ctx, s, out[s], out_len[s]);
        }
    }
    if (!rc) rc = be_sync(m->be, err);
    be_free(m->be, g.cache);
    be_free(m->be, g.scores);
    free(g.pos), free(g.seq), free(g.best), free(g.logits);
    free(ids), free(next), free(done), free(buf);
    m->B = 0;   /* the activations no longer hold a training forward */
    m->eval = was_eval;
    return rc;
}
