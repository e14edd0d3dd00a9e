/* token_cache.c — tokenized records kept between runs, so sweeps and resumes over the same
 * data do not tokenize again.
 *
 * One zstd file per (data file bytes, tokenizer files, loader settings), named by a
 * 64-bit hash of all of them, under <output_dir>/.cache/tokens/. Written under a temp name
 * and renamed, so a crash leaves no half file; a file that does not parse back exactly
 * (wrong magic or key, truncated, inconsistent sizes) is a miss, never an error.
 *
 * Layout before compression (little-endian): "HONETOK2", u64 key, u64 examples, i64 the
 * five counts of hone_data_stats, u32 + bytes first_skip; then per example i32 n,
 * prompt_len, has_prompt, given_labels, chat, record, ids[n], and labels[n] when
 * given_labels.
 */
#include "token_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "err.h"
#include "util.h"

uint64_t hone_token_cache_key(const char *data_path, const hone_data_opts *o, const char *version, hone_err *err,
                              int *ok)
{
    uint64_t h = HONE_FNV_START;
    static const char magic[] = "hone token cache 2";
    h = hone_fnv1a(h, magic, sizeof magic);
    h = hone_fnv1a(h, version, strlen(version) + 1);
    *ok = hone_fnv1a_file(&h, data_path, err) == 0;
    uint64_t td = o->tok ? hone_tokenizer_digest(o->tok) : 0;
    h = hone_fnv1a(h, &td, sizeof td);
    int32_t nums[3] = {o->max_len, o->vocab, (int32_t)(o->limit > 0x7fffffff ? 0x7fffffff : o->limit)};
    h = hone_fnv1a(h, nums, sizeof nums);
    const char *strs[5] = {o->text_field, o->prompt_field, o->completion_field, o->messages_field, o->chat_template};
    for (int i = 0; i < 5; i++) h = hone_fnv1a(h, strs[i], strlen(strs[i]) + 1);
    return h;
}

static void cache_path(char *out, size_t n, const char *dir, uint64_t key)
{
    snprintf(out, n, "%s/%016llx.tokens.zst", dir, (unsigned long long)key);
}

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} wbuf;

static void put(wbuf *b, const void *data, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

int hone_token_cache_store(const hone_dataset *d, const char *dir, uint64_t key, hone_err *err)
{
    wbuf b = {0};
    uint64_t n = d->n;
    int64_t counts[5] = {d->stats.records, d->stats.skipped_shape, d->stats.skipped_empty, d->stats.truncated,
                         d->stats.prefix_mismatch};
    uint32_t sl = (uint32_t)strlen(d->stats.first_skip);
    put(&b, "HONETOK2", 8);
    put(&b, &key, 8);
    put(&b, &n, 8);
    put(&b, counts, sizeof counts);
    put(&b, &sl, 4);
    put(&b, d->stats.first_skip, sl);
    for (size_t i = 0; i < d->n; i++) {
        const hone_example_rec *e = &d->ex[i];
        int32_t h[6] = {e->n, e->prompt_len, e->has_prompt, e->given_labels, e->chat, e->record};
        put(&b, h, sizeof h);
        put(&b, e->ids, (size_t)e->n * sizeof *e->ids);
        if (e->given_labels) put(&b, e->labels, (size_t)e->n * sizeof *e->labels);
    }
    if (b.oom) {
        free(b.p);
        return hone_errf(err, HONE_ENOMEM, "out of memory writing the token cache");
    }
    size_t bound = ZSTD_compressBound(b.n);
    void *z = malloc(bound);
    if (!z) {
        free(b.p);
        return hone_errf(err, HONE_ENOMEM, "out of memory writing the token cache");
    }
    size_t zn = ZSTD_compress(z, bound, b.p, b.n, 3);
    free(b.p);
    int rc = ZSTD_isError(zn) ? hone_errf(err, HONE_EIO, "token cache: %s", ZSTD_getErrorName(zn)) : 0;
    char path[4200], tmp[4300];
    cache_path(path, sizeof path, dir, key);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    if (!rc) rc = hone_mkdirs(dir, err);
    if (!rc) rc = hone_write_file(tmp, z, zn, err);
    if (!rc && rename(tmp, path) != 0) {
        rc = hone_errf(err, HONE_EIO, "%s: cannot move the token cache into place: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(z);
    return rc;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t n, at;
} rbuf;

static int get(rbuf *b, void *out, size_t n)
{
    if (n > b->n - b->at) return -1;
    memcpy(out, b->p + b->at, n);
    b->at += n;
    return 0;
}

/* the examples of one cache file into d; -1 when it does not parse back exactly */
static int parse(hone_dataset *d, const unsigned char *p, size_t n, uint64_t key)
{
    rbuf b = {p, n, 0};
    char magic[8];
    uint64_t k, count;
    int64_t counts[5];
    uint32_t sl;
    if (get(&b, magic, 8) || memcmp(magic, "HONETOK2", 8) || get(&b, &k, 8) || k != key || get(&b, &count, 8) ||
        get(&b, counts, sizeof counts) || get(&b, &sl, 4) || sl >= sizeof d->stats.first_skip ||
        get(&b, d->stats.first_skip, sl) || count > n)
        return -1;
    d->stats.first_skip[sl] = 0;
    d->stats.records = counts[0];
    d->stats.skipped_shape = counts[1];
    d->stats.skipped_empty = counts[2];
    d->stats.truncated = counts[3];
    d->stats.prefix_mismatch = counts[4];
    d->ex = calloc(count ? count : 1, sizeof *d->ex);
    if (!d->ex) return -1;
    d->cap = count;
    for (uint64_t i = 0; i < count; i++) {
        int32_t h[6];
        if (get(&b, h, sizeof h) || h[0] <= 0 || (size_t)h[0] > (b.n - b.at) / 4 || h[5] < 0) return -1;
        hone_example_rec *e = &d->ex[d->n++];
        *e = (hone_example_rec){.n = h[0], .prompt_len = h[1], .has_prompt = h[2], .given_labels = h[3], .chat = h[4],
                                .record = h[5]};
        e->ids = malloc((size_t)e->n * sizeof *e->ids);
        if (!e->ids || get(&b, e->ids, (size_t)e->n * sizeof *e->ids)) return -1;
        if (e->given_labels) {
            e->labels = malloc((size_t)e->n * sizeof *e->labels);
            if (!e->labels || get(&b, e->labels, (size_t)e->n * sizeof *e->labels)) return -1;
        }
    }
    return b.at == b.n ? 0 : -1;
}

int hone_token_cache_load(hone_dataset *d, const char *dir, uint64_t key, int *hit)
{
    *hit = 0;
    char path[4200];
    cache_path(path, sizeof path, dir, key);
    if (!hone_is_file(path)) return 0;
    char *z = NULL;
    size_t zn = 0;
    hone_err err = {0};
    if (hone_read_file(path, &z, &zn, &err)) return 0;
    unsigned long long raw = ZSTD_getFrameContentSize(z, zn);
    int ok = 0;
    if (raw != ZSTD_CONTENTSIZE_ERROR && raw != ZSTD_CONTENTSIZE_UNKNOWN && raw < ((size_t)1 << 40)) {
        unsigned char *p = malloc(raw ? (size_t)raw : 1);
        size_t got = p ? ZSTD_decompress(p, (size_t)raw, z, zn) : 0;
        ok = p && !ZSTD_isError(got) && got == raw && parse(d, p, (size_t)raw, key) == 0;
        free(p);
    }
    free(z);
    if (!ok) {   /* a damaged file is a miss: tokenize again (and overwrite it) */
        hone_dataset_free(d);
        return 0;
    }
    *hit = 1;
    return 0;
}
