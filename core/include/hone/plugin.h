/* hone/plugin.h — the plugin ABI, version 1.2: the only header a hone plugin includes.
 *
 * A plugin is a shared object. Written once, in one of its files,
 *
 *     HONE_PLUGIN_DEFINE("myplugin", my_init)
 *
 * defines the only two symbols hone looks up:
 *   hone_plugin_abi   {HONE_ABI_MAJOR, HONE_ABI_MINOR} of this header;
 *   hone_plugin_init  called when hone loads the file: it sets hone_api (the host
 *                     table, the one way a plugin reaches hone) and calls
 *                     my_init(reg, err), which registers the plugin's features
 *                     (HONE_OPTIMIZER_INFO ... below).
 * The core lends its functions through hone_api and never links a plugin against itself,
 * so one plugin binary works with every hone the version rule below admits.
 * docs/abi.md walks through writing one; `hone plugins --check FILE.so` tests one.
 *
 * Versions. The ABI is MAJOR.MINOR. The loader loads a plugin whose major equals hone's
 * and whose minor is at most hone's; any other is refused with a message naming the file
 * and both versions. An older minor needs nothing from its plugin: hone_host and every
 * vtable only grow at their end, each vtable states its own version and size, and the
 * loader reads it at that version (a version the core no longer calls, such as collator
 * version 1, the loader adapts). A newer minor is refused, not tried: its plugin could
 * call a host function past the end of this hone's table or hand over a vtable version
 * this hone cannot read, and nothing at run time could tell. So a loaded plugin never
 * tests host->abi_minor: everything in the header it was built with is there. A new
 * major is a deliberate break: every plugin is rebuilt.
 *   1.0  the first ABI
 *   1.1  tok_encode, tok_token_id
 *   1.2  collator version 2 (label one example; version 1 collated a batch); the
 *        HONE_OPTION_*, HONE_<KIND>_INFO and HONE_PLUGIN_DEFINE macros; option flag
 *        bits above HONE_OPT_UNSET reserved (refused when set)
 *
 * What never changes: in any major, the head of hone_host (abi_major, abi_minor, size)
 * and the form of hone_plugin_abi, so each side can read the other's version; within a
 * major, the head of every vtable (hone_feature_info, embedded first in each), the layout
 * of every struct one side walks as an array by its own sizeof (hone_option,
 * hone_tensor_info, hone_example), and of the plain data a plugin may save (hone_rng) or
 * fill by size (hone_err). Structs the core fills and passes by pointer may grow at their
 * end, read only by plugins of the minor that added the field. Each struct below says
 * which it is.
 *
 * Ownership, in one line: whoever allocates frees. The core owns everything it passes in
 * (options, tensors, spans, examples, buffers), valid for the call unless a function says
 * longer; the plugin owns its state from create until the core's one destroy call.
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
#define HONE_ABI_MINOR 2

#define HONE_EXPORT __attribute__((visibility("default")))
#define HONE_HIDDEN __attribute__((visibility("hidden")))

/* ---- errors ------------------------------------------------------------------ */

enum {
    HONE_OK = 0,
    HONE_EINVAL = -1,      /* bad input: a file, key, option or value is wrong */
    HONE_EIO = -2,         /* a read or write failed */
    HONE_ENOMEM = -3,
    HONE_EUNSUPPORTED = -4,/* valid, but not something this build can do */
    HONE_ESTATE = -5,      /* called at the wrong time (e.g. registering outside init) */
};

/* Filled by whoever fails first (hone_api->error does it); callers add context in front,
 * never overwrite. Every function that takes one gets a valid pointer, never NULL.
 * Never changes: plugins fill msg by its size. */
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

/* hone_option.flags. The bits above HONE_OPT_UNSET are reserved, so the table can gain
 * a meaning without changing its layout: the loader refuses a table that sets them. */
#define HONE_OPT_HAS_MIN  0x01u
#define HONE_OPT_HAS_MAX  0x02u
#define HONE_OPT_MIN_EXCL 0x04u  /* value must be > min, not >= */
#define HONE_OPT_MAX_EXCL 0x08u
#define HONE_OPT_UNSET    0x10u  /* no default: the option is absent unless given */

/* One option a feature accepts. A table of these ends with HONE_OPTION_END (name NULL)
 * and is written with the HONE_OPTION_* macros below. The core fills defaults, checks
 * types, bounds (each element of a numlist) and choices, and rejects unknown keys before
 * the feature ever sees them. Never changes: the core walks the plugin's table by its
 * own sizeof; new meanings go into the reserved flag bits. The table and its strings
 * stay valid while the plugin is loaded (static const data). */
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

/* Ranges, the `range` argument of the option macros: each is flags, min, max. */
#define HONE_ANY           0u, 0, 0                              /* any value */
#define HONE_GE(lo)        HONE_OPT_HAS_MIN, (lo), 0             /* >= lo */
#define HONE_GT(lo)        HONE_OPT_HAS_MIN | HONE_OPT_MIN_EXCL, (lo), 0
#define HONE_LE(hi)        HONE_OPT_HAS_MAX, 0, (hi)             /* <= hi */
#define HONE_LT(hi)        HONE_OPT_HAS_MAX | HONE_OPT_MAX_EXCL, 0, (hi)
#define HONE_IN(lo, hi)    HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX, (lo), (hi)   /* [lo, hi] */
/* [lo, hi) and (lo, hi] */
#define HONE_IN_CO(lo, hi) HONE_OPT_HAS_MIN | HONE_OPT_HAS_MAX | HONE_OPT_MAX_EXCL, (lo), (hi)
#define HONE_IN_OC(lo, hi) HONE_OPT_HAS_MIN | HONE_OPT_MIN_EXCL | HONE_OPT_HAS_MAX, (lo), (hi)

/* One macro per type; the _UNSET forms have no default (absent unless given). A range
 * is three arguments once expanded, which HONE_OPTION_ expands before HONE_OPTION__
 * counts them. */
#define HONE_OPTION__(ty, nm, fl, lo, hi, extra, dflt, dstr, ch, len, hlp)                \
    {.name = (nm), .type = (ty), .flags = (fl) | (extra), .def = (dflt), .def_str = (dstr), \
     .min = (lo), .max = (hi), .choices = (ch), .list_len = (len), .help = (hlp)}
#define HONE_OPTION_(...) HONE_OPTION__(__VA_ARGS__)
#define HONE_OPTION_NUMBER(nm, dflt, range, hlp) \
    HONE_OPTION_(HONE_OPT_NUMBER, nm, range, 0u, dflt, NULL, NULL, 0, hlp)
#define HONE_OPTION_NUMBER_UNSET(nm, range, hlp) \
    HONE_OPTION_(HONE_OPT_NUMBER, nm, range, HONE_OPT_UNSET, 0, NULL, NULL, 0, hlp)
#define HONE_OPTION_INTEGER(nm, dflt, range, hlp) \
    HONE_OPTION_(HONE_OPT_INTEGER, nm, range, 0u, dflt, NULL, NULL, 0, hlp)
#define HONE_OPTION_INTEGER_UNSET(nm, range, hlp) \
    HONE_OPTION_(HONE_OPT_INTEGER, nm, range, HONE_OPT_UNSET, 0, NULL, NULL, 0, hlp)
#define HONE_OPTION_BOOL(nm, dflt, hlp) \
    HONE_OPTION_(HONE_OPT_BOOL, nm, HONE_ANY, 0u, dflt, NULL, NULL, 0, hlp)
/* choices: "a|b|c", or NULL for any string */
#define HONE_OPTION_STRING(nm, dflt, ch, hlp) \
    HONE_OPTION_(HONE_OPT_STRING, nm, HONE_ANY, 0u, 0, dflt, ch, 0, hlp)
#define HONE_OPTION_STRING_UNSET(nm, ch, hlp) \
    HONE_OPTION_(HONE_OPT_STRING, nm, HONE_ANY, HONE_OPT_UNSET, 0, NULL, ch, 0, hlp)
/* dflt: "0.9,0.999"; len: required length, 0 = any; range: each element's */
#define HONE_OPTION_NUMLIST(nm, dflt, len, range, hlp) \
    HONE_OPTION_(HONE_OPT_NUMLIST, nm, range, 0u, 0, dflt, NULL, len, hlp)
#define HONE_OPTION_NUMLIST_UNSET(nm, len, range, hlp) \
    HONE_OPTION_(HONE_OPT_NUMLIST, nm, range, HONE_OPT_UNSET, 0, NULL, NULL, len, hlp)
#define HONE_OPTION_END {.name = NULL}

/* Resolved options, owned by the core and read through hone_api->opt_*. A pointer is
 * valid only during the call it is passed to: read what the feature needs in create (or
 * check), copy strings it keeps. */
typedef struct hone_opts hone_opts;

/* ---- kinds and the common vtable head --------------------------------------- */

typedef enum {
    HONE_KIND_OPTIMIZER = 0,
    HONE_KIND_SCHEDULER,
    HONE_KIND_COLLATOR,
    HONE_KIND_QUANTIZER,
    HONE_KIND_COUNT
} hone_kind;

/* The head of every vtable. Never changes: it is embedded first in each one; what a kind
 * gains goes at the end of its vtable under a new version. */
typedef struct hone_feature_info {
    uint32_t version;          /* this kind's vtable version (HONE_<KIND>_VERSION) */
    uint32_t size;             /* sizeof the whole vtable as the plugin saw it */
    const char *name;          /* registry name, e.g. "cosine" */
    const char *summary;       /* one line for `hone plugins` */
    const hone_option *options;/* HONE_OPTION_END-terminated table, or NULL for none */
} hone_feature_info;

/* The head of a vtable of each kind, version and size filled in. */
#define HONE_FEATURE_INFO_(ver, vt, nm, sum, opts) \
    {.version = (ver), .size = sizeof(vt), .name = (nm), .summary = (sum), .options = (opts)}
#define HONE_OPTIMIZER_INFO(nm, sum, opts) \
    HONE_FEATURE_INFO_(HONE_OPTIMIZER_VERSION, hone_optimizer_vt, nm, sum, opts)
#define HONE_SCHEDULER_INFO(nm, sum, opts) \
    HONE_FEATURE_INFO_(HONE_SCHEDULER_VERSION, hone_scheduler_vt, nm, sum, opts)
#define HONE_COLLATOR_INFO(nm, sum, opts) \
    HONE_FEATURE_INFO_(HONE_COLLATOR_VERSION, hone_collator_vt, nm, sum, opts)
#define HONE_QUANTIZER_INFO(nm, sum, opts) \
    HONE_FEATURE_INFO_(HONE_QUANTIZER_VERSION, hone_quantizer_vt, nm, sum, opts)

/* ---- state serialisation (checkpoints) --------------------------------------- */

/* Lent by the core for one save or load call; may grow at the end. */
typedef struct hone_writer {
    void *ctx;
    /* writes all `bytes` or fails with a message */
    int (*write)(void *ctx, const void *data, size_t bytes, hone_err *err);
} hone_writer;

typedef struct hone_reader {
    void *ctx;
    /* reads exactly `bytes` or fails with a message (truncated state is an error) */
    int (*read)(void *ctx, void *data, size_t bytes, hone_err *err);
} hone_reader;

/* ---- random numbers ---------------------------------------------------------- */

/* xoshiro256** state; plain data a feature may save and restore, so it never changes. */
typedef struct hone_rng {
    uint64_t s[4];
} hone_rng;

typedef struct hone_host hone_host;
typedef struct hone_registry hone_registry;

/* ---- optimizer --------------------------------------------------------------- */

#define HONE_OPTIMIZER_VERSION 1

/* One trainable tensor inside the flat parameter span. Never changes: the plugin walks
 * the core's array by its own sizeof; a richer description would come with a new
 * optimizer version. */
typedef struct hone_tensor_info {
    const char *name;      /* e.g. "model.layers.0.self_attn.q_proj.lora_A.weight" */
    size_t offset;         /* first element in the flat span */
    size_t numel;
    size_t rows, cols;     /* 2-D shape, row-major (vectors: rows = numel, cols = 1) */
    int decay;             /* 1 if weight decay applies (transformers' groups) */
} hone_tensor_info;

/* The core calls an optimizer from one thread: create, then step for steps 1, 2, ...;
 * save between steps (checkpoints); destroy once. A resume is create with the same
 * options and tensors, then load, then the next step. */
typedef struct hone_optimizer_vt {
    hone_feature_info info;
    /* tensors: [ntensors] sorted by offset, covering [0, nparams); tensors and their
     * names are valid only during create: copy what step needs. On success *state is the
     * plugin's (the core hands it back to step, save, load, state_bytes and destroy and
     * never looks inside); on failure create frees what it allocated, fills err and
     * leaves *state alone. host is the same table as hone_api. */
    int (*create)(const hone_host *host, const hone_opts *opts,
                  const hone_tensor_info *tensors, size_t ntensors, size_t nparams,
                  void **state, hone_err *err);
    /* One optimizer step. params: [nparams] fp32, updated in place; grads: [nparams],
     * read only. Both are the core's, valid during the call (keep no pointer into them).
     * lr is this step's lr (schedule applied); step counts optimizer steps from 1 (the
     * bias-correction t). */
    int (*step)(void *state, float *params, const float *grads, double lr, long step,
                hone_err *err);
    /* save writes everything the next step depends on; load, called on a fresh state
     * from create, reads back exactly what save wrote. Continuing after load must give
     * the same bytes as never having saved (`hone plugins --check` runs this). */
    int (*save)(void *state, const hone_writer *w, hone_err *err);
    int (*load)(void *state, const hone_reader *r, hone_err *err);
    /* optional (NULL: not reported): optimizer state held, in bytes */
    size_t (*state_bytes)(const void *state);
    /* frees the state; destroy(NULL) is a no-op (the core calls it after a failed create) */
    void (*destroy)(void *state);
} hone_optimizer_vt;

/* ---- scheduler --------------------------------------------------------------- */

#define HONE_SCHEDULER_VERSION 1

/* The plan a schedule is asked about; filled by the core, may grow at the end. */
typedef struct hone_sched_ctx {
    long total_steps;      /* optimizer steps in the run (transformers' max_steps) */
    long warmup_steps;
    double base_lr;        /* the configured lr (some schedules need lr_init) */
} hone_sched_ctx;

/* A scheduler has no state: opts and ctx are the core's, valid during each call. */
typedef struct hone_scheduler_vt {
    hone_feature_info info;
    /* optional: reject option combinations the schedule cannot use (NULL = none); called
     * once per plan, before any factor */
    int (*check)(const hone_host *host, const hone_opts *opts, const hone_sched_ctx *ctx,
                 hone_err *err);
    /* pure: the multiplier of base_lr for the optimizer step `step` (0-based), for any
     * step in any order, any number of times (`hone schedule` prints every step's) */
    double (*factor)(const hone_host *host, const hone_opts *opts, const hone_sched_ctx *ctx,
                     long step);
} hone_scheduler_vt;

/* ---- collator ---------------------------------------------------------------- */

/* 2 (ABI 1.2): label one example; version 1's collate (a padded batch) is gone from
 * this header. Why: labels must exist before batching, because packing, grouping by
 * length, dropping examples without a trained token and the gradient-accumulation
 * window's label count (the loss denominator) all read them, and what the token cache
 * keeps is examples (ids, prompt length, a record's own labels), not batches. So the
 * core labels every example once at load and batches itself. Version 1 was only ever
 * called that way, with a batch of one; the loader still accepts it (ABI 1.0-1.1 plugins
 * keep working, per the version rule) and calls collate on one example. The config key
 * stays `collator`, as TRL users expect. */
#define HONE_COLLATOR_VERSION 2

typedef struct hone_tokenizer hone_tokenizer;   /* read through the host */

/* A tokenized example as the data loader hands it over, valid during the call. Never
 * changes: version 1 collators walk arrays of it by their own sizeof. */
typedef struct hone_example {
    const int32_t *ids;    /* [n] */
    const int32_t *labels; /* [n] the record's own labels: pre-tokenized records' given
                              labels, or a chat record's assistant turns; else NULL */
    size_t n;              /* >= 1 */
    size_t prompt_len;     /* prompt/completion records: tokens of the prompt; else 0 */
    int has_prompt;        /* 1 for prompt/completion records */
} hone_example;

/* Running counts over a dataset; the core zeroes it and sums it. Only template_missing
 * is label's to add to: the core counts examples and tokens_trained itself and
 * overwrites them (version 1 collators count them themselves, as they always did).
 * May grow at the end. */
typedef struct hone_collate_stats {
    long examples;
    long template_missing; /* examples masked whole: no response template */
    long truncated;        /* unused: truncation happens before labelling (data stats) */
    long tokens_trained;   /* labels != -100 */
} hone_collate_stats;

/* The core labels each training and evaluation example once, right after loading, from
 * one thread, in file order: create, label per example, destroy. */
typedef struct hone_collator_vt {
    hone_feature_info info;
    /* tok: the model's tokenizer, NULL when it has none; valid until destroy (read it
     * through hone_api->tok_*). State ownership as for optimizers. */
    int (*create)(const hone_opts *opts, const hone_tokenizer *tok, void **state,
                  hone_err *err);
    /* labels: [ex->n], the core's, filled with -100 (not trained) on entry: set each
     * trained position to the token the model should predict there (ids[t] for causal
     * LM; the core shifts). Write nothing past ex->n. Refusing an example (a shape this
     * collator cannot label) is an error with a message saying what to use instead. */
    int (*label)(void *state, const hone_example *ex, int32_t *labels,
                 hone_collate_stats *stats, hone_err *err);
    void (*destroy)(void *state);          /* destroy(NULL) is a no-op */
} hone_collator_vt;

/* ---- quantizer --------------------------------------------------------------- */

#define HONE_QUANTIZER_VERSION 2   /* 2 added import_bnb4 / export_bnb4 */

/* One weight in bitsandbytes' serialized 4-bit form (Linear4bit's state dict,
 * QuantState.as_dict(packed=True)); all arrays little-endian, sizes in elements.
 * Filled by whichever side is asked (the core for import, the plugin for export, into
 * the core's zeroed struct); may grow at the end. */
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

/* A quantizer stores the frozen base of a LoRA model: create once per model, quantize
 * (or import_bnb4) each frozen weight once at load, dequantize row ranges of it at every
 * forward and backward, destroy with the model. The core calls one model's quantizer from
 * one thread at a time (the matrix products after it are what runs on many). state is
 * const in every call but create and destroy: keep no scratch in it. */
typedef struct hone_quantizer_vt {
    hone_feature_info info;
    /* state ownership as for optimizers; host is the same table as hone_api */
    int (*create)(const hone_host *host, const hone_opts *opts, void **state, hone_err *err);
    /* bytes needed to store a rows x cols weight; pure */
    size_t (*packed_bytes)(const void *state, size_t rows, size_t cols);
    /* packed: [packed_bytes] bytes of the core's, 64-byte aligned, written whole;
     * w: [rows, cols] fp32, read only, valid during the call */
    int (*quantize)(const void *state, void *packed, const float *w, size_t rows, size_t cols,
                    hone_err *err);
    /* out: [nrows, cols] fp32 = rows [row0, row0 + nrows) of the weight, the same values
     * as those rows of a whole-weight call. The model asks for the whole weight where it
     * fits 64M floats, else for the most rows that do. */
    void (*dequantize)(const void *state, float *out, const void *packed, size_t rows,
                       size_t cols, size_t row0, size_t nrows);
    void (*destroy)(void *state);          /* destroy(NULL) is a no-op */
    /* version 2, optional (NULL = the format has no bitsandbytes form): */
    /* packed from a bitsandbytes checkpoint's parts, valid during the call (checked
     * against this state's options) */
    int (*import_bnb4)(const void *state, void *packed, size_t rows, size_t cols,
                       const hone_bnb4 *in, hone_err *err);
    /* the parts of packed in bitsandbytes' form; pointers into packed or static tables,
     * valid while packed is */
    int (*export_bnb4)(const void *state, const void *packed, size_t rows, size_t cols,
                       hone_bnb4 *out, hone_err *err);
} hone_quantizer_vt;

/* ---- the host table ---------------------------------------------------------- */

enum { HONE_LOG_DEBUG = 0, HONE_LOG_INFO, HONE_LOG_WARN };

/* hone's functions, lent for the life of the process. Grows only at its end (size says
 * how far this hone's goes); nothing in it moves or goes. */
struct hone_host {
    /* frozen: never moved, never removed, the same in every major */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size;             /* sizeof(hone_host) of the running hone */

    /* registration: only inside hone_plugin_init (ESTATE after). `vtable` and all it
     * points to (names, summary, option table) must stay valid for the process: a static
     * const struct. A failed init drops what it registered and unloads the plugin. */
    int (*register_feature)(hone_registry *reg, hone_kind kind, const void *vtable,
                            hone_err *err);

    /* messages: log writes a line to hone's stderr (a plugin never prints itself);
     * error fills err and returns code, for `return hone_api->error(err, ...)` */
    void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    int (*error)(hone_err *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* memory: host memory aligned to `align` (a power of two; smaller than a pointer
     * counts as a pointer's), NULL when out of memory; free it with free (free(NULL) is
     * a no-op), never with the C library's */
    void *(*alloc)(size_t bytes, size_t align);
    void (*free)(void *p);
    /* device memory: fails with HONE_EUNSUPPORTED in this build (no device backend) */
    int (*device_alloc)(void **p, size_t bytes, hone_err *err);
    void (*device_free)(void *p);

    /* option readers; name must be one of the feature's declared options (an undeclared
     * one reads as 0 / NULL). Strings and lists belong to o: valid while o is. */
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

    /* 1.1: tokenizers, for collators. tok_encode: the ids of text[0, len) (add_special:
     * the post-processor's BOS / EOS) in *ids, allocated with alloc (the caller frees it
     * with free), *n of them. tok_token_id: a token's id, -1 if absent. Not thread-safe
     * on one tokenizer. */
    int (*tok_encode)(const hone_tokenizer *tok, const char *text, size_t len, int add_special,
                      int32_t **ids, size_t *n, hone_err *err);
    int32_t (*tok_token_id)(const hone_tokenizer *tok, const char *token);
};

/* ---- what a plugin defines --------------------------------------------------- */

/* The host table, set by hone_plugin_init before the plugin's init runs, then constant.
 * Hidden: each plugin has its own, defined by HONE_PLUGIN_DEFINE. */
extern HONE_HIDDEN const hone_host *hone_api;

/* The plugin's own init: registers its features through hone_api->register_feature. On
 * failure it fills err and returns non-zero; the core drops whatever it registered. */
typedef int (*hone_plugin_register_fn)(hone_registry *reg, hone_err *err);

/* HONE_PLUGIN_DEFINE(name, init) in exactly one file of a plugin: defines hone_api, the
 * exported hone_plugin_abi and the exported hone_plugin_init, which refuses a host older
 * than this header (a host that did not apply the version rule) naming the plugin, sets
 * hone_api and returns init(reg, err). */
#define HONE_PLUGIN_DEFINE(name, init)                                                   \
    const hone_host *hone_api;                                                           \
    HONE_EXPORT const uint32_t hone_plugin_abi[2] = {HONE_ABI_MAJOR, HONE_ABI_MINOR};    \
    HONE_EXPORT int hone_plugin_init(const hone_host *host, hone_registry *reg,          \
                                     hone_err *err)                                      \
    {                                                                                    \
        /* a host of another major may not have error: nothing beyond the head is safe */ \
        if (host->abi_major != HONE_ABI_MAJOR) return HONE_EUNSUPPORTED;                 \
        if (host->abi_minor < HONE_ABI_MINOR)                                            \
            return host->error(err, HONE_EUNSUPPORTED,                                   \
                               "%s needs hone plugin ABI %u.%u, the host has %u.%u", name, \
                               (unsigned)HONE_ABI_MAJOR, (unsigned)HONE_ABI_MINOR,       \
                               (unsigned)host->abi_major, (unsigned)host->abi_minor);    \
        hone_api = host;                                                                 \
        hone_plugin_register_fn init_ = (init);                                          \
        return init_(reg, err);                                                          \
    }

/* Only hone_plugin_abi, for sources written against ABI 1.0-1.1 that define their own
 * hone_plugin_init; new plugins use HONE_PLUGIN_DEFINE. */
#define HONE_PLUGIN_ABI \
    HONE_EXPORT const uint32_t hone_plugin_abi[2] = {HONE_ABI_MAJOR, HONE_ABI_MINOR}

typedef int (*hone_plugin_init_fn)(const hone_host *host, hone_registry *reg, hone_err *err);

HONE_EXPORT extern const uint32_t hone_plugin_abi[2];
HONE_EXPORT int hone_plugin_init(const hone_host *host, hone_registry *reg, hone_err *err);

#ifdef __cplusplus
}
#endif
#endif
