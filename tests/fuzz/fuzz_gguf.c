/* fuzz_gguf.c — libFuzzer harness for the GGUF reader: any bytes parse to a GGUF whose
 * every tensor dequantizes and whose vocabulary (gpt2 or SentencePiece) rebuilds as a
 * tokenizer.json that loads, or to an error naming what is wrong; never a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "convert.h"
#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hone_gguf *g = NULL;
    hone_err err = {0};
    if (hone_gguf_parse(&g, data, size, "fuzz.gguf", &err) == 0) {
        for (size_t i = 0; i < g->nt; i++) {
            if (g->t[i].numel > (1u << 22)) continue;   /* large is fine, but not what fuzzing is for */
            float *out = malloc(g->t[i].numel * sizeof *out);
            if (out) hone_gguf_to_f32(g, &g->t[i], out, &err);
            free(out);
        }
        if (hone_gguf_kv_find(g, "tokenizer.ggml.model")) {
            char dir[64];
            snprintf(dir, sizeof dir, "/tmp/hone-fuzz-gguf-%d", (int)getpid());
            hone_tokenizer *tk = NULL;
            if (hone_convert_gguf_tokenizer_of(g, dir, &err) == 0 && hone_tokenizer_load(&tk, dir, &err) == 0) {
                tok_ids ids = {0};
                hone_tokenizer_encode(tk, "Price is $12.50 \xe2\x82\xac", 17, 1, &ids, &err);
                free(ids.v);
                hone_tokenizer_free(tk);
            }
        }
        hone_gguf_close(g);
    }
    return 0;
}
