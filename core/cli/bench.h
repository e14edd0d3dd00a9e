/* bench.h — `hone bench`: training throughput of a model config with random weights,
 * against the OpenBLAS sgemm rate measured in the same run. */
#ifndef HONE_BENCH_H
#define HONE_BENCH_H

#include "model_config.h"
#include "registry.h"

typedef struct hone_bench_opts {
    hone_model_config cfg;
    int batch, seq, steps, r, threads, full, checkpointing;
    int bf16;                       /* --dtype bf16: the base's and lm_head's products in bf16 */
    const hone_feature *quantizer;
    const hone_opts *quantizer_opts;
} hone_bench_opts;

/* the default: hidden 1024, 8 layers, 16 heads / 4 KV heads, intermediate 2816,
 * vocab 32000, seq 512, batch 4, LoRA r 16 on all seven linears */
void hone_bench_defaults(hone_bench_opts *o);
/* prints its report on stdout */
int hone_bench_run(const hone_bench_opts *o, hone_err *err);
/* dequantize + sgemm against sgemm on fp32 weights, 4096x4096 and 4096x14336 at 512 and 2048 tokens */
int hone_bench_quant(const hone_feature *q, const hone_opts *qopts, int threads, hone_err *err);
/* encodes every line of text_path; prints MB/s and tokens/s */
/* every registered optimizer's step over nparams parameters (hone bench --optimizers) */
int hone_bench_optimizers(const hone_registry *reg, size_t nparams, int steps, hone_err *err);

int hone_bench_tokenizer(const char *tok_path, const char *text_path, int threads, hone_err *err);

#endif
