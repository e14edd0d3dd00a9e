/* hone/plugin.h — the plugin ABI: the only header a hone plugin includes.
 *
 * A plugin is a shared object that exports two symbols, both made by macros below:
 *   hone_plugin_abi   the ABI version it was built against (HONE_PLUGIN_ABI),
 *   hone_plugin_init  called once at load; it registers features through the host.
 * The core lends a table of functions (hone_host) and never links a plugin against
 * itself, so a plugin built against this header works with any hone of the same ABI
 * major. Rules that keep that promise:
 *   - hone_host starts with abi_major, abi_minor, size, which never move; new host
 *     functions are only appended (abi_minor goes up). A plugin that needs a newer
 *     function checks host->abi_minor first.
 *   - every vtable starts with hone_feature_info, whose first field is the vtable's own
 *     version, so each kind can grow without breaking older plugins.
 *   - the core never looks inside a feature's state.
 */
#ifndef HONE_PLUGIN_H
#define HONE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef HONE_ABI_MAJOR
#define HONE_ABI_MAJOR 1
#endif
#define HONE_ABI_MINOR 1   /* 1 added tok_encode, tok_token_id */

#define HONE_EXPORT __attribute__((visibility("default")))

/* ---- errors ------------------------------------------------------------------ */

enum {
    HONE_OK = 0,
    HONE_EINVAL = -1,      /* bad input: a file, key, option or value is wrong */
    HONE_EIO = -2,         /* a read or write failed */
    HONE_ENOMEM = -3,
    HONE_EUNSUPPORTED = -4,/* valid, but not something this build can do */
    HONE_ESTATE = -5,      /* called at the wrong time (e.g. registering outside init) */
};

/* Filled by whoever fails first; callers add context in front, never overwrite. */
typedef struct hone_err {
    int code;
    char msg[1024];
} hone_err;

/* ---- options ----------------------------------------------------------------- */

typedef enum {
    HONE_OPT_NUMBER = 1,   /* double */
    HONE_OPT_INTEGER,      /* long long */
    HONE_OPT_BOOL,
    HONE_OPT_STRING,
    HONE_OPT_NUMLIST,      /* list of doubles, e.g. betas = {0.9, 0.999} */
} hone_opt_type;

/* hone_option.flags */
#define HONE_OPT_HAS_MIN  0x01u
#define HONE_OPT_HAS_MAX  0x02u
#define HONE_OPT_MIN_EXCL 0x04u  /* value must be > min, not >= */
#define HONE_OPT_MAX_EXCL 0x08u
#define HONE_OPT_UNSET    0x10u  /* no default: the option is absent unless given */

/* One option a feature accepts. A table of these ends with an entry whose name is NULL.
 * The core fills defaults, checks types, bounds and choices, and rejects unknown keys
 * before the feature ever sees them. */
typedef struct hone_option {
    const char *name;
    hone_opt_type type;
    unsigned flags;
    double def;            /* default for number, integer and bool (0/1) */
    const char *def_str;   /* default for string; for numlist "0.9,0.999" */
    double min, max;       /* with HONE_OPT_HAS_MIN / HONE_OPT_HAS_MAX */
    const char *choices;   /* strings only: "linear|cosine|1-sqrt", or NULL for any */
    int list_len;          /* numlist only: required length, 0 = any */
    const char *help;      /* one line */
} hone_option;

typedef struct hone_opts hone_opts;   /* resolved options; read through the host */

/* ---- kinds and the common vtable head --------------------------------------- */

typedef enum {
    HONE_KIND_OPTIMIZER = 0,
    HONE_KIND_SCHEDULER,
    HONE_KIND_COLLATOR,
    HONE_KIND_QUANTIZER,
    HONE_KIND_COUNT
} hone_kind;

typedef struct hone_feature_info {
    uint32_t version;          /* this kind's vtable version (HONE_<KIND>_VERSION) */
    uint32_t size;             /* sizeof the whole vtable as the plugin saw it */
    const char *name;          /* registry name, e.g. "cosine" */
    const char *summary;       /* one line for `hone plugins` */
    const hone_option *options;/* NULL-name-terminated table, or NULL for none */
} hone_feature_info;

/* ---- state serialisation (checkpoints) --------------------------------------- */

typedef struct hone_writer {
    void *ctx;
    int (*write)(void *ctx, const void *data, size_t bytes, hone_err *err);
} hone_writer;

typedef struct hone_reader {
    void *ctx;
    /* reads exactly `bytes` or fails with a message */
    int (*read)(void *ctx, void *data, size_t bytes, hone_err *err);
} hone_reader;

/* ---- random numbers ---------------------------------------------------------- */

/* xoshiro256** state; plain data so a feature can save and restore it. */
typedef struct hone_rng {
    uint64_t s[4];
} hone_rng;

typedef struct hone_host hone_host;
typedef struct hone_registry hone_registry;

/* ---- optimizer --------------------------------------------------------------- */

#define HONE_OPTIMIZER_VERSION 1

/* One trainable tensor inside the flat parameter span. */
typedef struct hone_tensor_info {
    const char *name;      /* e.g. "model.layers.0.self_attn.q_proj.lora_A.weight" */
    size_t offset;         /* first element in the flat span */
    size_t numel;
    size_t rows, cols;     /* 2-D shape (rows = numel, cols = 1 for vectors) */
    int decay;             /* 1 if weight decay applies (transformers' groups) */
} hone_tensor_info;

typedef struct hone_optimizer_vt {
    hone_feature_info info;
    /* params: the tensors (sorted by offset, covering [0, nparams)) */
    int (*create)(const hone_host *host, const hone_opts *opts,
                  const hone_tensor_info *tensors, size_t ntensors, size_t nparams,
                  void **state, hone_err *err);
    /* One optimizer step. params, grads: [nparams] fp32. lr is this step's lr (schedule
     * applied); step counts optimizer steps from 1 (the bias-correction t). */
    int (*step)(void *state, float *params, const float *grads, double lr, long step,
                hone_err *err);
    int (*save)(void *state, const hone_writer *w, hone_err *err);
    int (*load)(void *state, const hone_reader *r, hone_err *err);
    size_t (*state_bytes)(const void *state);   /* optimizer state held, in bytes */
    void (*destroy)(void *state);               /* destroy(NULL) is a no-op */
} hone_optimizer_vt;

/* ---- scheduler --------------------------------------------------------------- */

#define HONE_SCHEDULER_VERSION 1

typedef struct hone_sched_ctx {
    long total_steps;      /* optimizer steps in the run (transformers' max_steps) */
    long warmup_steps;
    double base_lr;        /* the configured lr (some schedules need lr_init) */
} hone_sched_ctx;

typedef struct hone_scheduler_vt {
    hone_feature_info info;
    /* optional: reject option combinations the schedule cannot use (NULL = none) */
    int (*check)(const hone_host *host, const hone_opts *opts, const hone_sched_ctx *ctx,
                 hone_err *err);
    /* pure: the multiplier of base_lr for the optimizer step `step` (0-based) */
    double (*factor)(const hone_host *host, const hone_opts *opts, const hone_sched_ctx *ctx,
                     long step);
} hone_scheduler_vt;

/* ---- collator ---------------------------------------------------------------- */

#define HONE_COLLATOR_VERSION 1

typedef struct hone_tokenizer hone_tokenizer;   /* read through the host */

/* A tokenized example as the data loader hands it over. */
typedef struct hone_example {
    const int32_t *ids;    /* [n] */
    const int32_t *labels; /* [n] given labels (pre-tokenized records), or NULL */
    size_t n;
    size_t prompt_len;     /* prompt/completion records: tokens of the prompt; else 0 */
    int has_prompt;        /* 1 for prompt/completion records */
} hone_example;

/* One collated batch: rows x cols, row-major, right-padded. */
typedef struct hone_batch {
    int32_t *input_ids;    /* [rows, cols] */
    int32_t *labels;       /* [rows, cols], -100 = ignored */
    int32_t *lengths;      /* [rows] tokens before padding */
    size_t rows, cols;     /* cols: filled by the collator, <= max_cols */
    size_t max_cols;       /* capacity of a row (max_seq_length) */
} hone_batch;

typedef struct hone_collate_stats {
    long examples;
    long template_missing; /* examples masked whole: no response template */
    long truncated;
    long tokens_trained;   /* labels != -100 */
} hone_collate_stats;

typedef struct hone_collator_vt {
    hone_feature_info info;
    int (*create)(const hone_host *host, const hone_opts *opts, const hone_tokenizer *tok,
                  void **state, hone_err *err);
    int (*collate)(void *state, hone_batch *out, hone_collate_stats *stats,
                   const hone_example *examples, size_t n, int32_t pad_id, hone_err *err);
    void (*destroy)(void *state);
} hone_collator_vt;

/* ---- quantizer --------------------------------------------------------------- */

#define HONE_QUANTIZER_VERSION 2   /* 2 added import_bnb4 / export_bnb4 */

/* One weight in bitsandbytes' serialized 4-bit form (Linear4bit's state dict,
 * QuantState.as_dict(packed=True)); all arrays little-endian, sizes in elements. */
typedef struct hone_bnb4 {
    const char *quant_type;        /* "nf4" or "fp4" */
    int blocksize;
    const uint8_t *weight;         /* [(rows * cols + 1) / 2] packed codes */
    const void *absmax;            /* float32, or uint8 codes when nested */
    int absmax_u8;
    size_t nabsmax;
    const float *quant_map;        /* [16] */
    const float *nested_absmax;    /* [ceil(nabsmax / nested_blocksize)], or NULL */
    const float *nested_quant_map; /* [256], or NULL */
    int nested_blocksize;
    float nested_offset;
} hone_bnb4;

typedef struct hone_quantizer_vt {
    hone_feature_info info;
    int (*create)(const hone_host *host, const hone_opts *opts, void **state, hone_err *err);
    /* bytes needed to store a rows x cols weight */
    size_t (*packed_bytes)(const void *state, size_t rows, size_t cols);
    /* packed: [packed_bytes]; w: [rows, cols] fp32 */
    int (*quantize)(const void *state, void *packed, const float *w, size_t rows, size_t cols,
                    hone_err *err);
    /* out: [nrows, cols] fp32 = rows [row0, row0 + nrows) of the weight. Thread-safe:
     * the CPU matrix product calls it per tile from many threads. */
    void (*dequantize)(const void *state, float *out, const void *packed, size_t rows,
                       size_t cols, size_t row0, size_t nrows);
    void (*destroy)(void *state);
    /* version 2, optional (NULL = the format has no bitsandbytes form): */
    /* packed from a bitsandbytes checkpoint's parts (checked against this state's options) */
    int (*import_bnb4)(const void *state, void *packed, size_t rows, size_t cols, const hone_bnb4 *in,
                       hone_err *err);
    /* the parts of packed in bitsandbytes' form; pointers into packed or static tables */
    int (*export_bnb4)(const void *state, const void *packed, size_t rows, size_t cols, hone_bnb4 *out,
                       hone_err *err);
} hone_quantizer_vt;

/* ---- the host table ---------------------------------------------------------- */

enum { HONE_LOG_DEBUG = 0, HONE_LOG_INFO, HONE_LOG_WARN };

struct hone_host {
    /* frozen: never moved, never removed */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size;             /* sizeof(hone_host) of the running hone */

    /* registration: only valid inside hone_plugin_init; `vtable` must outlive the
     * process (a static const struct) and start with hone_feature_info */
    int (*register_feature)(hone_registry *reg, hone_kind kind, const void *vtable,
                            hone_err *err);

    /* messages */
    void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    int (*error)(hone_err *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));   /* fills err, returns code */

    /* memory: host memory aligned to `align` (a power of two, >= sizeof(void*)) */
    void *(*alloc)(size_t bytes, size_t align);
    void (*free)(void *p);
    /* device memory; fails with HONE_EUNSUPPORTED where no device backend is running */
    int (*device_alloc)(void **p, size_t bytes, hone_err *err);
    void (*device_free)(void *p);

    /* option readers; name must be one of the feature's declared options */
    double (*opt_number)(const hone_opts *o, const char *name);
    long long (*opt_integer)(const hone_opts *o, const char *name);
    int (*opt_bool)(const hone_opts *o, const char *name);
    const char *(*opt_string)(const hone_opts *o, const char *name);
    const double *(*opt_list)(const hone_opts *o, const char *name, size_t *n);
    int (*opt_is_set)(const hone_opts *o, const char *name); /* given, or has a default */

    /* random numbers (xoshiro256**, seeded through splitmix64) */
    void (*rng_seed)(hone_rng *r, uint64_t seed);
    uint64_t (*rng_u64)(hone_rng *r);
    double (*rng_uniform)(hone_rng *r);   /* [0, 1) with 53 random bits */

    /* tokenizers (abi_minor >= 1), for collators: the ids of text (add_special: the
     * post-processor's BOS / EOS), *ids allocated with alloc (free with free); and a
     * token's id, -1 if absent. Not thread-safe on one tokenizer. */
    int (*tok_encode)(const hone_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                      size_t *n, hone_err *err);
    int32_t (*tok_token_id)(const hone_tokenizer *tok, const char *token);
};

/* ---- what a plugin defines --------------------------------------------------- */

/* Put HONE_PLUGIN_ABI; once in a plugin, then define hone_plugin_init with HONE_EXPORT. */
#define HONE_PLUGIN_ABI \
    HONE_EXPORT const uint32_t hone_plugin_abi[2] = {HONE_ABI_MAJOR, HONE_ABI_MINOR}

typedef int (*hone_plugin_init_fn)(const hone_host *host, hone_registry *reg, hone_err *err);

/* Registers the plugin's features; on failure fills err and returns non-zero, and the
 * core drops whatever it registered. */
HONE_EXPORT int hone_plugin_init(const hone_host *host, hone_registry *reg, hone_err *err);

#ifdef __cplusplus
}
#endif
#endif
