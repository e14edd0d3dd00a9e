/* fuzz_records.c — libFuzzer harness for the record loader: the bytes as a JSONL file of
 * text / prompt+completion / messages / pre-tokenized records, tokenized with the Qwen3
 * tokenizer (chat through the auto-picked chatml template), then packed. Any input must
 * end in examples or an error naming file and line, never a crash or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "fuzz_file.h"
#include "tokenizer.h"

static hone_tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hone_err err = {0};
    if (!tok && hone_tokenizer_load(&tok, HONE_SOURCE_DIR "/tests/fixtures/tokenizers/qwen3", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    char path[64];
    if (fuzz_to_file(path, sizeof path, "records", ".jsonl", data, size)) return 0;
    hone_data_opts o = {64, hone_tokenizer_vocab_size(tok), 0, tok, "text", "prompt", "completion", "messages", "auto", 2, NULL, NULL};
    hone_dataset d = {0};
    if (hone_dataset_load(&d, path, &o, &err) == 0) {
        for (size_t i = 0; i < d.n; i++)
            if (!d.ex[i].labels) {
                d.ex[i].labels = malloc((size_t)d.ex[i].n * sizeof(int32_t));
                if (d.ex[i].labels) memcpy(d.ex[i].labels, d.ex[i].ids, (size_t)d.ex[i].n * sizeof(int32_t));
                else abort();
            }
        double eff;
        hone_dataset_pack(&d, 64, &eff, &err);
    }
    hone_dataset_free(&d);
    unlink(path);
    return 0;
}
