/* lines.c — streaming line reader over plain or zstd files. */
#include "lines.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "err.h"
#include "util.h"

#define MAX_LINE (256u << 20)   /* a record longer than 256 MB is not a record */

struct hone_lines {
    FILE *f;
    char *path;
    ZSTD_DStream *z;          /* NULL for plain text */
    unsigned char *in;        /* compressed input buffer */
    size_t in_cap;
    ZSTD_inBuffer zin;
    size_t zret;              /* last ZSTD_decompressStream result: 0 = frame complete */
    char *buf;                /* decoded bytes: [start, end) not yet consumed */
    size_t start, end, cap;
    int eof;
    long lineno;
};

int hone_lines_open(hone_lines **out, const char *path, hone_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return hone_errf(err, HONE_EIO, "%s: cannot open: %s", path, strerror(errno));
    hone_lines *r = calloc(1, sizeof *r);
    if (!r) {
        fclose(f);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    r->f = f;
    r->path = hone_strdup(path);
    r->cap = 1 << 16;
    r->buf = malloc(r->cap);
    unsigned char magic[4];
    size_t got = fread(magic, 1, 4, f);
    rewind(f);
    if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
        r->z = ZSTD_createDStream();
        r->in_cap = ZSTD_DStreamInSize();
        r->in = malloc(r->in_cap);
        if (r->z) ZSTD_initDStream(r->z);
    }
    if (!r->path || !r->buf || (got == 4 && magic[0] == 0x28 && (!r->z || !r->in))) {
        hone_lines_close(r);
        return hone_errf(err, HONE_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

void hone_lines_close(hone_lines *r)
{
    if (!r) return;
    if (r->f) fclose(r->f);
    ZSTD_freeDStream(r->z);
    free(r->in);
    free(r->buf);
    free(r->path);
    free(r);
}

/* appends more decoded bytes at buf[end]; 0 at end of input */
static int fill(hone_lines *r, hone_err *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end + 1 >= r->cap) {
        if (r->cap >= MAX_LINE)
            return hone_errf(err, HONE_EINVAL, "%s:%ld: line longer than %u MB", r->path, r->lineno + 1,
                             MAX_LINE >> 20);
        char *nb = realloc(r->buf, r->cap * 2);
        if (!nb) return hone_errf(err, HONE_ENOMEM, "out of memory");
        r->buf = nb;
        r->cap *= 2;
    }
    size_t room = r->cap - r->end - 1;
    if (!r->z) {
        size_t got = fread(r->buf + r->end, 1, room, r->f);
        if (got == 0 && ferror(r->f)) return hone_errf(err, HONE_EIO, "%s: read failed", r->path);
        r->end += got;
        return got > 0;
    }
    for (;;) {
        if (r->zin.pos == r->zin.size) {
            size_t got = fread(r->in, 1, r->in_cap, r->f);
            if (got == 0) {
                if (ferror(r->f)) return hone_errf(err, HONE_EIO, "%s: read failed", r->path);
                if (r->zret != 0)
                    return hone_errf(err, HONE_EINVAL, "%s: truncated zstd stream", r->path);
                return 0;
            }
            r->zin = (ZSTD_inBuffer){r->in, got, 0};
        }
        ZSTD_outBuffer zout = {r->buf + r->end, room, 0};
        r->zret = ZSTD_decompressStream(r->z, &zout, &r->zin);
        if (ZSTD_isError(r->zret))
            return hone_errf(err, HONE_EINVAL, "%s: bad zstd data: %s", r->path, ZSTD_getErrorName(r->zret));
        r->end += zout.pos;
        if (zout.pos > 0) return 1;
    }
}

int hone_lines_next(hone_lines *r, const char **line, size_t *len, long *lineno, hone_err *err)
{
    size_t scan = r->start;
    for (;;) {
        char *nl = memchr(r->buf + scan, '\n', r->end - scan);
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->start));
            if (n > 0 && r->buf[r->start + n - 1] == '\r') n--;
            r->buf[r->start + n] = '\0';
            *line = r->buf + r->start;
            *len = n;
            r->start = (size_t)(nl - r->buf) + 1;
            *lineno = ++r->lineno;
            return 1;
        }
        if (r->eof) break;
        size_t consumed = r->start;
        scan = r->end;
        int rc = fill(r, err);
        if (rc < 0) return rc;
        scan -= consumed;
        if (rc == 0) r->eof = 1;
    }
    if (r->start == r->end) return 0;
    /* last line without a newline */
    size_t n = r->end - r->start;
    r->buf[r->end] = '\0';
    *line = r->buf + r->start;
    *len = n;
    r->start = r->end;
    *lineno = ++r->lineno;
    return 1;
}

int hone_jsonl_count(const char *path, long *records, hone_err *err)
{
    hone_lines *r;
    int rc = hone_lines_open(&r, path, err);
    if (rc) return rc;
    long n = 0, lineno = 0;
    const char *line;
    size_t len;
    while ((rc = hone_lines_next(r, &line, &len, &lineno, err)) == 1) {
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) continue;
        if (strlen(line) != len) {
            rc = hone_errf(err, HONE_EINVAL, "%s:%ld: a NUL byte inside the line", path, lineno);
            break;
        }
        cJSON *j = cJSON_ParseWithLength(line, len);
        int ok = j && cJSON_IsObject(j);
        cJSON_Delete(j);
        if (!ok) {
            rc = hone_errf(err, HONE_EINVAL, "%s:%ld: not a JSON object", path, lineno);
            break;
        }
        n++;
    }
    hone_lines_close(r);
    if (rc < 0) return rc;
    *records = n;
    return 0;
}
