/* bench.c — measuring training throughput honestly: FLOPs are counted from the matrix
 * products the step actually runs (attention's causal blocks, with the fp32 backward's
 * recomputed scores), and the ceiling is OpenBLAS sgemm on a large square product timed
 * in the same process. */
#include "bench.h"
#include "options.h"
#include "hone/hone.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "model.h"
#include "backend.h"
#include "rng.h"
#include "tokenizer.h"
#include "util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of every thread of the process: on a shared machine, the work apart from the wait */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void hone_bench_defaults(hone_bench_opts *o)
{
    memset(o, 0, sizeof *o);
    hone_model_config *c = &o->cfg;
    snprintf(c->arch, sizeof c->arch, "LlamaForCausalLM");
    c->vocab = 32000;
    c->hidden = 1024;
    c->inter = 2816;
    c->layers = 8;
    c->heads = 16;
    c->kv_heads = 4;
    c->head_dim = 64;
    c->max_pos = 4096;
    c->rms_eps = 1e-5f;
    c->rope_theta = 10000.0;
    c->bos_id = c->eos_id = -1;
    o->batch = 4;
    o->seq = 512;
    o->steps = 3;
    o->r = 16;
}

/* sgemm GFLOP/s on an n x n x n product, best of a few */
static double sgemm_rate(int n)
{
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b), *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 0;
    for (int k = 0; k < 4; k++) {
        double t = now();
        be_matmul_forward(hone_backend_cpu(), c, a, b, n, n, n, n, 1.0f, 0.0f);
        t = now() - t;
        double g = 2.0 * n * n * (double)n / t / 1e9;
        if (k > 0 && g > best) best = g;   /* the first warms up */
    }
    free(a), free(b), free(c);
    return best;
}

static double step_flops(const hone_bench_opts *o)
{
    const hone_model_config *c = &o->cfg;
    double N = (double)o->batch * o->seq, T = o->seq, r = o->r, f = 0;
    double qd = (double)c->heads * c->head_dim, kd = (double)c->kv_heads * c->head_dim;
    double in[7] = {c->hidden, c->hidden, c->hidden, qd, c->hidden, c->hidden, c->inter};
    double out[7] = {qd, kd, kd, c->hidden, c->inter, c->inter, c->hidden};
    double fwd = 0;   /* one layer's forward, which checkpointing runs twice */
    for (int i = 0; i < 7; i++) {
        double base = 2 * N * in[i] * out[i], lora = o->full ? 0 : 2 * N * r * (in[i] + out[i]);
        fwd += base + lora;
        f += base + (o->full ? base : 2 * lora);             /* input gradient; weight or A, B gradients */
    }
    /* QK^T and PV over the causal part; the backward's four products, and the fp32 one
     * recomputes the scores (it keeps no probabilities). The bf16 attention of a CPU
     * with AVX-512 but not AVX512-BF16 computes the whole square: its rate reads low. */
    double att = 2 * (double)o->batch * c->heads * T * (T + 1) * c->head_dim;
    fwd += att;
    f += (o->bf16 ? 2 : 2.5) * att + fwd * (o->checkpointing ? 2 : 1);
    f *= c->layers;
    double head = 2 * N * c->hidden * (double)c->vocab;
    f += 2 * head + (o->full ? head : 0);
    return f;
}

int hone_bench_run(const hone_bench_opts *o, hone_err *err)
{
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const hone_backend *be;
    int rc = hone_backend_for("cpu", &be, err);   /* the instruction set, HONE_CPU_ISA applied */
    if (rc) return rc;
    if (o->bf16 && !be_has_bf16(be))
        return hone_errf(err, HONE_EUNSUPPORTED, "--dtype bf16: this CPU's bf16 products need AVX-512");
    be_set_threads(be, threads);
    const hone_model_config *c = &o->cfg;
    char desc[160];
    be_describe(be, desc, sizeof desc);
    printf("hone bench: hidden %d, %d layers, %d heads / %d KV heads (head_dim %d), intermediate %d, vocab %d\n",
           c->hidden, c->layers, c->heads, c->kv_heads, c->head_dim, c->inter, c->vocab);
    printf("            batch %d x seq %d, %s, %d threads, random weights, %s products\n", o->batch, o->seq,
           o->full ? "full fine-tuning" : "LoRA on all seven linears", threads, o->bf16 ? "bf16" : "fp32");
    printf("backend %s\n", desc);
    double peak = sgemm_rate(2048);
    printf("sgemm 2048^3 (OpenBLAS, same process): %.1f GFLOP/s\n", peak);
    hone_model_opts mo = {.quantizer = o->quantizer, .quantizer_opts = o->quantizer_opts, .lora = !o->full, .r = o->r,
                          .alpha = 2.0 * o->r, .targets = 0x7f, .seed = 1, .batch = o->batch, .seq = o->seq,
                          .gradient_checkpointing = o->checkpointing, .labelled_logits = 1,
                          .backend = be, .compute_bf16 = o->bf16};
    hone_model *m = NULL;
    double t = now();
    rc = hone_model_create(&m, c, NULL, &mo, err);
    if (rc) return rc;
    size_t pb, fb, qb, ab;
    hone_model_memory(m, &pb, &fb, &qb, &ab);
    size_t with, without;
    hone_model_activation_bytes(m, &with, &without);
    printf("model built in %.1f s: trainable %.1f MB (+ %.1f MB gradients), frozen fp32 %.1f MB, base %.1f MB\n",
           now() - t, pb / 1e6, pb / 1e6, fb / 1e6, qb / 1e6);
    printf("activations: %.1f MB (gradient checkpointing %s; %.1f MB with it, %.1f MB without)\n", ab / 1e6,
           o->checkpointing ? "on" : "off", with / 1e6, without / 1e6);
    size_t N = (size_t)o->batch * o->seq;
    int32_t *ids = malloc(N * sizeof *ids), *targets = malloc(N * sizeof *targets);
    if (!ids || !targets) {
        free(ids), free(targets);
        hone_model_free(m);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    hone_rng rng;
    hone_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++) ids[i] = (int32_t)(hone_rng_u64(&rng) % (uint64_t)c->vocab);
    for (size_t i = 0; i < N; i++) targets[i] = (i + 1) % o->seq ? ids[i + 1] : -100;
    size_t np;
    float *params = hone_model_params(m, &np), *grads = hone_model_grads(m, NULL);
    double flops = step_flops(o), total = 0, best = 1e30;
    for (int s = 0; s <= o->steps && !rc; s++) {   /* step 0 warms up */
        double t0 = now(), loss;
        long count;
        rc = hone_model_forward(m, ids, targets, o->batch, o->seq, &loss, &count, err);
        double t1 = now();
        if (!rc) rc = hone_model_backward(m, 1.0f / (float)count, err);
        for (size_t i = 0; i < np; i++) params[i] -= 1e-4f * grads[i];   /* a plain SGD update */
        hone_model_zero_grad(m);
        double dt = now() - t0;
        if (s > 0) {
            total += dt;
            best = dt < best ? dt : best;
        }
        printf("step %d: %.2f s (forward %.2f, backward + update %.2f), loss %.4f%s\n", s, dt, t1 - t0, dt - (t1 - t0),
               loss / count, s == 0 ? " (warm-up, not counted)" : "");
    }
    if (!rc) {
        double mean = total / o->steps, gf = flops / mean / 1e9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("\nthroughput: %.1f tokens/s (mean of %d steps; best step %.1f tokens/s)\n", N / mean, o->steps, N / best);
        printf("FLOPs per step (matrix products, forward + backward%s): %.1f GFLOP\n",
               o->checkpointing ? " + recomputed forward" : "", flops / 1e9);
        printf("achieved: %.1f GFLOP/s = %.0f%% of sgemm's %.1f GFLOP/s\n", gf, 100 * gf / peak, peak);
        printf("peak RSS: %.0f MB\n", ru.ru_maxrss / 1024.0);
    }
    free(ids);
    free(targets);
    hone_model_free(m);
    return rc;
}

/* ---- tokenizer throughput ---- */

typedef struct tok_job {
    hone_tokenizer *t;
    char **lines;
    size_t *lens;
    size_t first, count;
    long tokens;
    int rc;
    hone_err err;
} tok_job;

static void *tok_worker(void *arg)
{
    tok_job *j = arg;
    tok_ids ids = {0};
    for (size_t i = j->first; i < j->first + j->count && !j->rc; i++) {
        ids.n = 0;
        j->rc = hone_tokenizer_encode(j->t, j->lines[i], j->lens[i], 0, &ids, &j->err);
        j->tokens += (long)ids.n;
    }
    free(ids.v);
    return NULL;
}

int hone_bench_tokenizer(const char *tok_path, const char *text_path, int threads, hone_err *err)
{
    char *text = NULL;
    size_t n = 0;
    int rc = hone_read_file(text_path, &text, &n, err);
    if (rc) return rc;
    size_t nl = 0, cap = 1024;
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    for (char *p = text, *end = text + n; p < end && lines && lens;) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        if (nl == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
            if (!lines || !lens) break;
        }
        lines[nl] = p;
        lens[nl++] = (size_t)(e - p);
        p = e + 1;
    }
    if (!lines || !lens) {
        free(text), free(lines), free(lens);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    if (threads < 1) threads = 1;
    tok_job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    for (int k = 0; k < threads && !rc; k++) {
        rc = hone_tokenizer_load(&jobs[k].t, tok_path, err);
        jobs[k].lines = lines, jobs[k].lens = lens;
        jobs[k].first = nl * (size_t)k / (size_t)threads;
        jobs[k].count = nl * (size_t)(k + 1) / (size_t)threads - jobs[k].first;
    }
    long tokens = 0;
    double t0 = now(), c0 = cpu_now();
    for (int k = 0; k < threads && !rc; k++) pthread_create(&tids[k], NULL, tok_worker, &jobs[k]);
    for (int k = 0; k < threads && !rc; k++) pthread_join(tids[k], NULL);
    double dt = now() - t0, cpu = cpu_now() - c0;
    for (int k = 0; k < threads && !rc; k++) {
        tokens += jobs[k].tokens;
        if (jobs[k].rc) rc = hone_errf(err, jobs[k].rc, "%s", jobs[k].err.msg);
    }
    if (!rc)
        printf("hone tokenizer: %.1f MB, %zu lines, %ld tokens in %.3f s (cpu %.3f s) with %d thread%s: %.2f MB/s, "
               "%.0f tokens/s\n", n / 1e6, nl, tokens, dt, cpu, threads, threads > 1 ? "s" : "", n / 1e6 / dt, tokens / dt);
    for (int k = 0; k < threads; k++) hone_tokenizer_free(jobs[k].t);
    free(jobs), free(tids), free(lines), free(lens), free(text);
    return rc;
}

/* ---- quantized matrix products ---- */

int hone_bench_quant(const hone_feature *q, const hone_opts *qopts, int threads, hone_err *err)
{
    be_set_threads(hone_backend_cpu(), threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    const hone_quantizer_vt *vt = q->vtable;
    void *st = NULL;
    int rc = vt->create(&hone_host_table, qopts, &st, err);
    if (rc) return rc;
    static const int shapes[2][2] = {{4096, 4096}, {4096, 14336}};   /* out x in */
    static const int tokens[2] = {512, 2048};
    printf("quantizer %s: dequantize (whole weight, as the model does up to 64M elements) + sgemm, against sgemm "
           "on fp32 weights\n", q->info->name);
    printf("%-14s %7s %12s %12s %9s %14s\n", "weight", "tokens", "fp32 (s)", "quant (s)", "overhead", "dequant GB/s");
    hone_rng rng;
    hone_rng_seed(&rng, 3);
    for (int si = 0; si < 2 && !rc; si++) {
        int OC = shapes[si][0], IC = shapes[si][1], tile = OC;
        size_t nw = (size_t)OC * IC;
        float *w = malloc(nw * sizeof *w), *tilebuf = malloc((size_t)tile * IC * sizeof(float));
        unsigned char *packed = malloc(vt->packed_bytes(st, (size_t)OC, (size_t)IC));
        if (!w || !tilebuf || !packed) rc = hone_errf(err, HONE_ENOMEM, "out of memory");
        for (size_t i = 0; i < nw && !rc; i++) w[i] = (float)(hone_rng_uniform(&rng) - 0.5) * 0.05f;
        if (!rc) rc = vt->quantize(st, packed, w, (size_t)OC, (size_t)IC, err);
        /* dequantize alone: GB/s of fp32 output (into a buffer already paged in) */
        if (!rc) memset(tilebuf, 0, (size_t)tile * IC * sizeof(float));
        double t0 = now();
        for (int r0 = 0; r0 < OC && !rc; r0 += tile) vt->dequantize(st, tilebuf, packed, (size_t)OC, (size_t)IC, (size_t)r0, (size_t)tile);
        double deq = now() - t0;
        for (int ti = 0; ti < 2 && !rc; ti++) {
            int N = tokens[ti];
            float *x = malloc((size_t)N * IC * sizeof *x), *out = malloc((size_t)N * OC * sizeof *out);
            if (!x || !out) {
                free(x), free(out);
                rc = hone_errf(err, HONE_ENOMEM, "out of memory");
                break;
            }
            for (size_t i = 0; i < (size_t)N * IC; i++) x[i] = (float)(hone_rng_uniform(&rng) - 0.5);
            double best_f = 1e30, best_q = 1e30;
            for (int rep = 0; rep < 5; rep++) {
                double a = now();
                be_matmul_forward(hone_backend_cpu(), out, x, w, N, IC, OC, OC, 1.0f, 0.0f);
                double b = now();
                for (int r0 = 0; r0 < OC; r0 += tile) {
                    vt->dequantize(st, tilebuf, packed, (size_t)OC, (size_t)IC, (size_t)r0, (size_t)tile);
                    be_matmul_forward(hone_backend_cpu(), out + r0, x, tilebuf, N, IC, tile, OC, 1.0f, 0.0f);
                }
                double c = now();
                if (rep > 0) {   /* the first round warms up */
                    best_f = b - a < best_f ? b - a : best_f;
                    best_q = c - b < best_q ? c - b : best_q;
                }
            }
            char name[32];
            snprintf(name, sizeof name, "%dx%d", OC, IC);
            printf("%-14s %7d %12.3f %12.3f %8.1f%% %14.2f\n", name, N, best_f, best_q, 100.0 * (best_q - best_f) / best_f,
                   nw * 4.0 / deq / 1e9);
            free(x), free(out);
        }
        free(w), free(tilebuf), free(packed);
    }
    vt->destroy(st);
    return rc;
}

/* every registered optimizer stepping the same parameters: ms per step, ns per parameter,
 * state bytes per parameter, against one streaming pass over the same memory (read
 * params and grads, write params) as the floor any optimizer pays */
int hone_bench_optimizers(const hone_registry *reg, size_t nparams, int steps, hone_err *err)
{
    enum { NT = 4 };
    hone_tensor_info t[NT];
    size_t per = nparams / NT, cols = 2048, rows = per / cols ? per / cols : 1;
    per = rows * cols;
    for (int k = 0; k < NT; k++) t[k] = (hone_tensor_info){"w", (size_t)k * per, per, rows, cols, 1};
    size_t n = per * NT;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    if (!p || !g) {
        free(p), free(g);
        return hone_errf(err, HONE_ENOMEM, "out of memory for %zu parameters", n);
    }
    hone_rng rng;
    hone_rng_seed(&rng, 5);
    for (size_t i = 0; i < n; i++) {
        p[i] = (float)(hone_rng_uniform(&rng) - 0.5) * 0.1f;
        g[i] = (float)(hone_rng_uniform(&rng) - 0.5) * 1e-2f;
    }
    double best_stream = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double a = now();
        for (size_t i = 0; i < n; i++) p[i] = p[i] - 1e-7f * g[i];
        double b = now() - a;
        best_stream = b < best_stream ? b : best_stream;
    }
    printf("optimizer step over %zu parameters (%d tensors of %zux%zu), best of %d steps, one thread\n", n, NT, rows,
           cols, steps);
    printf("floor: one pass p -= c*g over the same memory takes %.1f ms (%.1f GB/s)\n", best_stream * 1e3,
           n * 12.0 / best_stream / 1e9);
    printf("%-20s %10s %12s %14s %10s\n", "optimizer", "ms/step", "ns/param", "state B/param", "x floor");
    int rc = 0;
    for (size_t i = 0; i < hone_registry_count(reg) && !rc; i++) {
        const hone_feature *f = hone_registry_at(reg, i);
        if (f->kind != HONE_KIND_OPTIMIZER) continue;
        const hone_optimizer_vt *vt = f->vtable;
        hone_opts *o = NULL;
        void *st = NULL;
        hone_node *given = hone_node_new(HONE_NODE_TABLE);
        if (!strcmp(f->info->name, "sgd")) hone_node_set_path(given, "momentum", "0.9");
        rc = hone_opts_resolve(&o, f->info->options, given, "optimizer", f->info->name, err);
        hone_node_free(given);
        if (!rc) rc = vt->create(&hone_host_table, o, t, NT, n, &st, err);
        double best = 1e30;
        for (int s = 1; s <= steps && !rc; s++) {
            double a = now();
            rc = vt->step(st, p, g, 1e-4, s, err);
            double b = now() - a;
            best = b < best ? b : best;
        }
        if (!rc)
            printf("%-20s %10.1f %12.2f %14.2f %10.2f\n", f->info->name, best * 1e3, best * 1e9 / n,
                   vt->state_bytes ? (double)vt->state_bytes(st) / n : 0.0, best / best_stream);
        if (st) vt->destroy(st);
        hone_opts_free(o);
    }
    free(p), free(g);
    return rc;
}
