/* fuzz_file.h — the harnesses whose parser reads a file: the input bytes written to a
 * per-process temp file, named by kind. */
#ifndef HONE_FUZZ_FILE_H
#define HONE_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* path[n] gets /tmp/hone-fuzz-<kind>-<pid><ext>; 0 when written, -1 when not */
static inline int fuzz_to_file(char *path, size_t n, const char *kind, const char *ext, const uint8_t *data,
                               size_t size)
{
    snprintf(path, n, "/tmp/hone-fuzz-%s-%d%s", kind, (int)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(data, 1, size, f);
    fclose(f);
    return 0;
}

#endif
