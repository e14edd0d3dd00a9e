/* fuzz_tokenizer_json.c — libFuzzer harness for reading tokenizer.json: any text must load
 * or fail with a message; what loads must encode and decode a fixed sentence safely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hone_tokenizer *t = NULL;
    hone_err err = {0};
    if (hone_tokenizer_from_json(&t, (const char *)data, size, "fuzz.json", &err) != 0) return 0;
    const char *s = "Hello  world! <s> 12,345 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n";
    tok_ids ids = {0};
    tok_buf out = {0};
    if (hone_tokenizer_encode(t, s, strlen(s), 1, &ids, &err) == 0) hone_tokenizer_decode(t, ids.v, ids.n, 0, &out, &err);
    free(ids.v);
    free(out.s);
    hone_tokenizer_free(t);
    return 0;
}
