/* fuzz_order.c — libFuzzer harness for data.order_file: the bytes are written to a file and
 * read as two epochs' order of a 7-example dataset whose records are numbered with gaps
 * (records 1 and 4 were skipped); any input must end in the orders or an error naming the
 * file, never a crash or a hang, and a success must name each example once per epoch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    if (fuzz_to_file(path, sizeof path, "order", "", data, size)) return 0;
    static const int32_t records[7] = {0, 2, 3, 5, 6, 7, 8};
    hone_example_rec ex[7] = {{0}};
    for (int i = 0; i < 7; i++) ex[i].record = records[i];
    hone_dataset d = {.ex = ex, .n = 7, .cap = 7, .stats = {.records = 9}};
    size_t orders[14];
    hone_err err = {0};
    if (hone_order_load(path, &d, 2, orders, &err) == 0) {
        for (int e = 0; e < 2; e++) {
            int seen[7] = {0};
            for (int i = 0; i < 7; i++)
                if (orders[e * 7 + i] >= 7 || seen[orders[e * 7 + i]]++) abort();
        }
    }
    unlink(path);
    return 0;
}
