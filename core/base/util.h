/* util.h — small helpers the core shares: strings, files, "did you mean". */
#ifndef HONE_UTIL_H
#define HONE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "hone/plugin.h"

char *hone_strdup(const char *s);
char *hone_strndup(const char *s, size_t n);
/* printf into a fresh malloc'd string */
char *hone_aprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The candidate closest to `word` by edit distance, or NULL when none is close enough
 * to be a plausible typo. */
const char *hone_closest(const char *word, const char *const *cands, size_t n);
size_t hone_edit_distance(const char *a, const char *b);

/* Whole file into memory (NUL-terminated); errors name the path. */
int hone_read_file(const char *path, char **data, size_t *len, hone_err *err);
/* A JSON file whose top level is an object, parsed (free with cJSON_Delete); errors name the
 * path. */
struct cJSON;
int hone_read_json_object(const char *path, struct cJSON **out, hone_err *err);
/* Write a file, fsync it and the directory: the data is on disk when this returns. */
int hone_write_file(const char *path, const void *data, size_t len, hone_err *err);
/* a whole regular file mapped read-only (*map NULL for an empty file); errors name the path */
int hone_map_file(const char *path, const uint8_t **map, size_t *size, hone_err *err);
void hone_unmap_file(const uint8_t *map, size_t size);
/* fsync the directory holding path (after a rename into it) */
int hone_fsync_dir_of(const char *path);
int hone_is_dir(const char *path);
int hone_is_file(const char *path);
/* mkdir -p */
int hone_mkdirs(const char *path, hone_err *err);
/* 64-bit FNV-1a, continued from h (start with HONE_FNV_START): cache keys, not security */
#define HONE_FNV_START 0xcbf29ce484222325ull
uint64_t hone_fnv1a(uint64_t h, const void *data, size_t n);
/* the same over a file's bytes, streamed */
int hone_fnv1a_file(uint64_t *h, const char *path, hone_err *err);
/* number text -> double, the whole string or fail */
int hone_parse_double(const char *s, double *out);
int hone_parse_ll(const char *s, long long *out);

#endif
