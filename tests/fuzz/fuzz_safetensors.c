/* fuzz_safetensors.c — libFuzzer harness for the safetensors header parser: any bytes
 * must parse or fail with a message; every tensor a successful parse reports must lie
 * inside the buffer, which reading all of it as floats checks under ASan. */
#include <stdint.h>
#include <stdlib.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hone_st_file *f = NULL;
    hone_err err = {0};
    if (hone_st_parse(&f, data, size, "fuzz.safetensors", &err) != 0) return 0;
    for (size_t i = 0; i < f->n; i++) {
        const hone_st_tensor *t = &f->t[i];
        if (t->numel > (1u << 20)) continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out) hone_st_to_f32(f, t, out, 0, t->numel, &err);
        free(out);
        if (hone_st_find(f, t->name) != t) abort();
    }
    hone_st_close(f);
    return 0;
}
