/* schema.c — every key an experiment script may set, with its default and bounds.
 *
 * Defaults follow transformers / PEFT / TRL where they have one (lr 5e-5, batch 8,
 * linear schedule, LoRA r 8 / alpha 8 on q_proj and v_proj, max_length 1024), so a
 * script means what the same settings mean in the Python stack.
 */
#include "schema.h"

#include <float.h>
#include <string.h>

#include "err.h"

#define MIN_ HONE_OPT_HAS_MIN
#define MAX_ HONE_OPT_HAS_MAX
#define GT0 (HONE_OPT_HAS_MIN | HONE_OPT_MIN_EXCL)
#define UNSET HONE_OPT_UNSET

#define SECTION(path, help) {HONE_KEY_SECTION, {path, HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0, help}, 0, 0}
#define NUM(path, flags, def, lo, hi, help) \
    {HONE_KEY_VALUE, {path, HONE_OPT_NUMBER, flags, def, NULL, lo, hi, NULL, 0, help}, 0, 0}
#define INT(path, flags, def, lo, hi, help) \
    {HONE_KEY_VALUE, {path, HONE_OPT_INTEGER, flags, def, NULL, lo, hi, NULL, 0, help}, 0, 0}
#define BOOL(path, def, help) {HONE_KEY_VALUE, {path, HONE_OPT_BOOL, 0, def, NULL, 0, 0, NULL, 0, help}, 0, 0}
#define STR(path, flags, def, choices, help) \
    {HONE_KEY_VALUE, {path, HONE_OPT_STRING, flags, 0, def, 0, 0, choices, 0, help}, 0, 0}
#define PLUGIN(path, kind, flags, def, help) \
    {HONE_KEY_PLUGIN, {path, HONE_OPT_STRING, flags, 0, def, 0, 0, NULL, 0, help}, kind, 0}

const hone_key hone_experiment_keys[] = {
    STR("project", 0, "hone", NULL, "project name: runs are named <project>-<YYYY-MM-DD_HH.MM.SS>"),
    STR("output_dir", 0, "runs", NULL, "directory that holds the run directories"),
    INT("seed", MIN_, 42, 0, 0, "seed for LoRA init, dropout, shuffling and splits"),
    STR("device", 0, "auto", "auto|cpu|cuda", "where to train: auto picks cuda when a GPU is usable"),
    INT("threads", MIN_, 0, 0, 0, "CPU threads (OpenBLAS and hone's pool share them); 0 = all cores"),

    SECTION("model", "the base model"),
    {HONE_KEY_VALUE, {"model.path", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                      "Hugging Face model dir: config.json, *.safetensors, tokenizer.json"}, 0, 1},
    PLUGIN("model.quantizer", HONE_KIND_QUANTIZER, 0, "none",
           "how the frozen base is stored: \"nf4\", \"fp4\", \"int8\", \"none\" or { name, options }"),
    STR("model.compute_dtype", 0, "fp32", "fp32|bf16|auto",
        "dtype of the matrix products (auto: bf16 where the backend has bf16 products, else fp32)"),
    BOOL("model.gradient_checkpointing", 0, "recompute activations in backward to save memory"),
    STR("model.tokenizer", UNSET, NULL, NULL, "tokenizer.json to use instead of the model dir's"),

    {HONE_KEY_SECTION_OR_FALSE, {"lora", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                                 "LoRA adapter settings; false = full fine-tuning"}, 0, 0},
    INT("lora.r", MIN_, 8, 1, 0, "LoRA rank (PEFT r)"),
    NUM("lora.alpha", GT0, 8, 0, 0, "LoRA alpha: the update is scaled by alpha / r"),
    NUM("lora.dropout", MIN_ | MAX_ | HONE_OPT_MAX_EXCL, 0, 0, 1, "dropout on the input of A, in [0, 1)"),
    {HONE_KEY_STRLIST, {"lora.target_modules", HONE_OPT_STRING, 0, 0, "q_proj,v_proj", 0, 0,
                        "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|all-linear", 0,
                        "linear layers that get adapters, or \"all-linear\""}, 0, 0},
    BOOL("lora.rslora", 0, "rank-stabilised LoRA: scale by alpha / sqrt(r)"),
    STR("lora.init_adapter", UNSET, NULL, NULL, "a PEFT adapter dir to start from"),

    SECTION("data", "training and evaluation data"),
    {HONE_KEY_VALUE, {"data.train", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                      "training records: .jsonl or .jsonl.zst"}, 0, 1},
    STR("data.eval", UNSET, NULL, NULL, "evaluation records (.jsonl or .jsonl.zst)"),
    NUM("data.eval_fraction", UNSET | GT0 | MAX_ | HONE_OPT_MAX_EXCL, 0, 0, 1,
        "without data.eval: hold out this fraction of train (split by seed)"),
    INT("data.max_seq_length", MIN_, 1024, 2, 0, "tokens per example; longer ones are truncated"),
    INT("data.eval_limit", UNSET | MIN_, 0, 1, 0, "generate for at most this many eval examples"),
    INT("data.limit", UNSET | MIN_, 0, 1, 0, "use only the first N training records"),
    BOOL("data.shuffle", 1, "a new order every epoch from (seed, epoch); false keeps file order"),
    STR("data.order_file", UNSET, NULL, NULL, "each epoch's order of the training records, one line of record "
        "numbers (from 0) per epoch, instead of data.shuffle"),
    BOOL("data.packing", 0, "pack several examples into each row"),
    BOOL("data.group_by_length", 0, "batch examples of similar length (transformers' group_by_length): "
         "less padding, same examples per epoch"),
    STR("data.padding", 0, "longest", "longest|max_length", "pad each batch to its longest example, or to max_seq_length"),
    STR("data.text_field", 0, "text", NULL, "record field holding plain text"),
    STR("data.prompt_field", 0, "prompt", NULL, "record field holding the prompt"),
    STR("data.completion_field", 0, "completion", NULL, "record field holding the completion"),
    STR("data.messages_field", 0, "messages", NULL, "record field holding chat messages"),
    STR("data.chat_template", 0, "auto", "auto|chatml|llama3|llama2|mistral",
        "how messages become text; auto picks by the tokenizer's special tokens"),
    {HONE_KEY_FUNCTION, {"data.chat_function", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                         "function(messages) returning pieces: a string (not trained) or { text, train = true }"},
     0, 0},

    PLUGIN("collator", HONE_KIND_COLLATOR, UNSET, NULL,
           "which tokens each example trains (its loss mask); unset = chosen by record shape"),

    SECTION("train", "the optimisation"),
    NUM("train.epochs", GT0, 3, 0, 0, "passes over the training data (transformers num_train_epochs)"),
    INT("train.batch_size", MIN_, 8, 1, 0, "examples per micro-batch (per_device_train_batch_size)"),
    INT("train.grad_accum", MIN_, 1, 1, 0, "micro-batches per optimizer step (gradient_accumulation_steps)"),
    INT("train.max_steps", UNSET | MIN_, 0, 1, 0, "stop after this many optimizer steps (overrides epochs)"),
    PLUGIN("train.optimizer", HONE_KIND_OPTIMIZER, 0, "adamw", "optimizer name or { name, options }"),
    NUM("train.lr", GT0, 5e-5, 0, 0, "peak learning rate (transformers learning_rate)"),
    PLUGIN("train.scheduler", HONE_KIND_SCHEDULER, 0, "linear", "lr schedule name or { name, options }"),
    NUM("train.warmup_ratio", MIN_ | MAX_, 0, 0, 1, "warmup steps = ceil(total steps x ratio)"),
    INT("train.warmup_steps", MIN_, 0, 0, 0, "warmup steps; > 0 overrides warmup_ratio"),
    NUM("train.neftune_noise_alpha", UNSET | GT0, 0, 0, 0,
        "NEFTune: uniform noise of alpha / sqrt(seq * hidden) on the embeddings while training"),
    NUM("train.max_grad_norm", MIN_, 1.0, 0, 0, "clip the global gradient L2 norm; 0 = off"),
    INT("train.log_every", MIN_, 10, 1, 0, "log every N optimizer steps"),
    INT("train.nonfinite_limit", MIN_, 10, 1, 0, "stop after this many steps with a NaN or Inf loss or gradient"),

    SECTION("eval", "evaluation"),
    {HONE_KEY_EVERY, {"eval.every", HONE_OPT_STRING, 0, 0, "epoch", 0, 0, NULL, 0,
                      "\"epoch\" or { steps = N }"}, 0, 0},
    SECTION("eval.generate", "greedy generation for metrics"),
    INT("eval.generate.max_new_tokens", MIN_, 16, 1, 0, "tokens generated per eval example"),
    {HONE_KEY_FUNCTIONS, {"eval.metrics", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                          "{ name = function(prediction, example) return number end }"}, 0, 0},
    SECTION("eval.best", "which checkpoint is best"),
    STR("eval.best.metric", 0, "eval_loss", NULL, "metric that picks the best epoch"),
    STR("eval.best.mode", 0, "min", "min|max", "whether lower or higher is better"),
    {HONE_KEY_SECTION, {"eval.early_stopping", HONE_OPT_STRING, UNSET, 0, NULL, 0, 0, NULL, 0,
                        "stop when eval.best's metric stops improving"}, 0, 0},
    INT("eval.early_stopping.patience", MIN_, 1, 1, 0, "evaluations without improvement before stopping"),
    NUM("eval.early_stopping.threshold", MIN_, 0, 0, 0, "smallest change that counts as improvement"),

    SECTION("save", "checkpoints"),
    {HONE_KEY_EVERY, {"save.every", HONE_OPT_STRING, 0, 0, "epoch", 0, 0, NULL, 0,
                      "\"epoch\" or { steps = N }"}, 0, 0},
    INT("save.keep", UNSET | MIN_, 0, 1, 0, "keep the newest N checkpoints plus the best"),

    {HONE_KEY_STRLIST, {"plugins", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                        "extra plugin .so files or directories to load"}, 0, 0},

    SECTION("hooks", "Lua functions called during the run"),
    {HONE_KEY_FUNCTION, {"hooks.on_log", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                         "function(row) called with each metrics row"}, 0, 0},
    {HONE_KEY_FUNCTION, {"hooks.on_epoch_end", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                         "function(epoch, metrics) called after each evaluation"}, 0, 0},
};
const size_t hone_experiment_nkeys = sizeof hone_experiment_keys / sizeof hone_experiment_keys[0];

int hone_project_name_check(const char *p, hone_err *err)
{
    if (!*p || !strcmp(p, ".") || !strcmp(p, "..") || strlen(p) > 100)
        return hone_errf(err, HONE_EINVAL, "project: \"%s\" cannot name a run directory", p);
    for (const char *c = p; *c; c++)
        if (*c == '/' || (unsigned char)*c < 0x20)
            return hone_errf(err, HONE_EINVAL, "project: \"%s\" cannot name a run directory (no '/' or control characters)", p);
    return 0;
}

int hone_experiment_resolve(hone_config **out, const hone_registry *reg, const hone_node *root, hone_err *err)
{
    int rc = hone_config_resolve(out, hone_experiment_keys, hone_experiment_nkeys, root, reg, err);
    if (!rc && (rc = hone_project_name_check(hone_config_str(*out, "project"), err))) {
        hone_config_free(*out);
        *out = NULL;
    }
    return rc;
}

const hone_key hone_optimize_keys[] = {
    {HONE_KEY_PLUGIN, {"optimizer", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                       "optimizer name or { name, options }"}, HONE_KIND_OPTIMIZER, 1},
    PLUGIN("scheduler", HONE_KIND_SCHEDULER, 0, "constant", "lr schedule name or { name, options }"),
    {HONE_KEY_VALUE, {"lr", HONE_OPT_NUMBER, GT0, 0, NULL, 0, 0, NULL, 0, "peak learning rate"}, 0, 1},
    INT("steps", MIN_, 100, 1, 0, "optimizer steps"),
    NUM("warmup_ratio", MIN_ | MAX_, 0, 0, 1, "warmup steps = ceil(steps x ratio)"),
    INT("warmup_steps", MIN_, 0, 0, 0, "warmup steps; > 0 overrides warmup_ratio"),
    {HONE_KEY_TENSORS, {"params", HONE_OPT_NUMLIST, 0, 0, NULL, 0, 0, NULL, 0,
                        "initial values: a list of numbers (one tensor), or tensors "
                        "{ { name = \"w\", shape = { rows, cols }, decay = true, init = { ... } }, ... }"}, 0, 1},
    {HONE_KEY_FUNCTION, {"loss", HONE_OPT_STRING, 0, 0, NULL, 0, 0, NULL, 0,
                         "function(params) return loss, gradient end"}, 0, 1},
    INT("resume_at", UNSET | MIN_, 0, 1, 0,
        "after this step, save the optimizer state, destroy it, and continue from a fresh one loaded "
        "from the save (a resume check)"),
};
const size_t hone_optimize_nkeys = sizeof hone_optimize_keys / sizeof hone_optimize_keys[0];
