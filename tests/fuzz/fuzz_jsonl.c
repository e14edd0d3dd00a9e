/* fuzz_jsonl.c — libFuzzer harness for the JSONL line reader (plain and zstd): the bytes
 * are written to a file and read back as records; any input must end in a count or an
 * error naming the file, never a crash or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    if (fuzz_to_file(path, sizeof path, "jsonl", "", data, size)) return 0;
    long n = 0;
    hone_err err = {0};
    hone_jsonl_count(path, &n, &err);
    unlink(path);
    return 0;
}
