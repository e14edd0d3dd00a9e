/* lines.h — reading a text file line by line, plain or zstd-compressed (detected by its
 * magic number), without holding the whole file: the base of the JSONL data loader. */
#ifndef HONE_LINES_H
#define HONE_LINES_H

#include <stddef.h>

#include "hone/plugin.h"

typedef struct hone_lines hone_lines;

int hone_lines_open(hone_lines **out, const char *path, hone_err *err);
/* 1: a line (without its newline; NUL-terminated; valid until the next call),
 * 0: end of file, < 0: error (naming the file) */
int hone_lines_next(hone_lines *r, const char **line, size_t *len, long *lineno, hone_err *err);
void hone_lines_close(hone_lines *r);

/* Counts the records of a JSONL file: every non-blank line must be a JSON object; the
 * first that is not is an error naming file and line. */
int hone_jsonl_count(const char *path, long *records, hone_err *err);

#endif
