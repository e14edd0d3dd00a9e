/* fuzz_tokenize.c — libFuzzer harness: any bytes through the Qwen3, SentencePiece-like and
 * Llama-3-kind test tokenizers (encode, then decode what came out) must not crash or hang;
 * the last has 256 special tokens and added tokens that are prefixes of one another. */
#include <stdint.h>
#include <stdlib.h>

#include "tokenizer.h"

#define NTOK 3
static hone_tokenizer *toks[NTOK];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) {
        hone_err err = {0};
        if (hone_tokenizer_load(&toks[0], HONE_SOURCE_DIR "/tests/fixtures/tokenizers/qwen3", &err) ||
            hone_tokenizer_load(&toks[1], HONE_SOURCE_DIR "/tests/fixtures/tokenizers/synth-meta", &err) ||
            hone_tokenizer_load(&toks[2], HONE_SOURCE_DIR "/tests/fixtures/tokenizers/synth-llama3", &err))
            abort();
    }
    for (int k = 0; k < NTOK; k++) {
        tok_ids ids = {0};
        tok_buf out = {0};
        hone_err err = {0};
        if (hone_tokenizer_encode(toks[k], (const char *)data, size, 1, &ids, &err) == 0)
            hone_tokenizer_decode(toks[k], ids.v, ids.n, k & 1, &out, &err);
        /* arbitrary ids too: out-of-range ones must be errors, not reads */
        int32_t raw[64];
        size_t n = size / 4 < 64 ? size / 4 : 64;
        for (size_t i = 0; i < n; i++) raw[i] = (int32_t)((uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                                                         (uint32_t)data[4 * i + 2] << 16) % 160000 - 100;
        hone_tokenizer_decode(toks[k], raw, n, 0, &out, &err);
        free(ids.v);
        free(out.s);
    }
    return 0;
}
