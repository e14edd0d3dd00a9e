/* fuzz_gguf.c — libFuzzer harness for the GGUF reader: any bytes parse to a GGUF whose
 * every tensor dequantizes, or to an error naming what is wrong; never a crash. */
#include <stdint.h>
#include <stdlib.h>

#include "gguf.h"

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
        hone_gguf_close(g);
    }
    return 0;
}
