/* order.h — data.order_file: each epoch's order of the training examples (see order.c). */
#ifndef HONE_ORDER_H
#define HONE_ORDER_H

#include <stddef.h>

#include "dataset.h"

/* Reads `epochs` lines of record numbers into orders[epochs][d->n] (example indices of d);
 * a bad number, an unknown or repeated record, or a line that is not a whole epoch fails
 * naming the file and line. Lines after the last epoch are not read. */
int hone_order_load(const char *path, const hone_dataset *d, long epochs, size_t *orders, hone_err *err);

#endif
