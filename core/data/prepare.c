/* prepare.c — from an experiment's config to labelled examples: the model's vocabulary,
 * the tokenizer, the records of data.train / data.eval (or the eval split), and the
 * collator's labels (unset: prompt/completion records get completion_only, chat records
 * chat, anything else lm); shared by `hone run` and `hone inspect`. */
#include "prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collator.h"
#include "err.h"
#include "options.h"
#include "hone/hone.h"
#include "registry.h"
#include "token_cache.h"
#include "version.h"
#include "util.h"

/* model.tokenizer, else the model dir's tokenizer.json when it has one (pre-tokenized
 * data needs none) */
static int load_tokenizer(const hone_config *cfg, const char *mdir, hone_tokenizer **tok, hone_err *err)
{
    char path[4200];
    *tok = NULL;
    if (hone_config_is_set(cfg, "model.tokenizer")) {
        int rc = hone_tokenizer_load(tok, hone_config_str(cfg, "model.tokenizer"), err);
        return rc ? hone_err_prefix(err, "model.tokenizer: ") : 0;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", mdir);
    int has = hone_is_file(path);
    if (!has) {
        snprintf(path, sizeof path, "%s/tokenizer.json.zst", mdir);
        has = hone_is_file(path);
    }
    if (!has) return 0;
    int rc = hone_tokenizer_load(tok, mdir, err);
    return rc ? hone_err_prefix(err, "model.path: ") : 0;
}

/* The collator: the experiment's, else by record shape (prompt/completion: completion
 * only, as TRL's completion_only_loss; anything else: lm). Labels every example, and
 * stops when too many lack a response template. */
static int label_examples(const hone_config *cfg, hone_tokenizer *tok, hone_dataset *train, hone_dataset *eval,
                          int32_t pad, const hone_feature **used, hone_collate_stats *st, hone_err *err)
{
    const hone_cval *cc = hone_config_cval(cfg, "collator");
    const hone_feature *f = cc && cc->feature ? cc->feature : NULL;
    const hone_opts *opts = f ? cc->opts : NULL;
    hone_opts *own = NULL;
    if (!f) {
        int prompts = 0, chats = 0;
        for (size_t i = 0; i < train->n; i++) {
            prompts |= train->ex[i].has_prompt;
            chats |= train->ex[i].chat;
        }
        f = hone_registry_find(cfg->reg, HONE_KIND_COLLATOR, prompts ? "completion_only" : chats ? "chat" : "lm");
        if (!f) return hone_errf(err, HONE_EUNSUPPORTED, "the built-in collators are not installed (collators.so)");
        int rc = hone_opts_resolve(&own, f->info->options, NULL, "collator", f->info->name, err);
        if (rc) return rc;
        opts = own;
    }
    void *state = NULL;
    int rc = hone_collator_create(f->vtable, &hone_host_table, opts, (const hone_tokenizer *)tok, &state, err);
    if (rc) hone_err_prefix(err, "collator %s: ", f->info->name);
    hone_dataset *sets[2] = {train, eval};
    for (int k = 0; k < 2 && !rc; k++) {
        rc = hone_dataset_label(sets[k], f, state, pad, st, err);
        if (rc) hone_err_prefix(err, "collator %s: ", f->info->name);
    }
    if (!rc && f->info->options && hone_opts_get(opts, "max_missing_fraction") && st->examples) {
        double frac = (double)st->template_missing / (double)st->examples, cap = hone_opt_number(opts, "max_missing_fraction");
        if (frac > cap)
            rc = hone_errf(err, HONE_EINVAL,
                           "collator %s: %ld of %ld examples (%.0f%%) lack the response template, more than "
                           "max_missing_fraction = %g; check the template against `hone inspect`",
                           f->info->name, st->template_missing, st->examples, 100 * frac, cap);
    }
    long trained = 0;
    for (int k = 0; k < 2 && !rc; k++)
        for (size_t i = 0; i < sets[k]->n; i++)
            for (int t = 0; t < sets[k]->ex[i].n; t++) trained += sets[k]->ex[i].labels[t] != -100;
    if (!rc && trained == 0) rc = hone_errf(err, HONE_EINVAL, "no token of the data is trained: every label is masked");
    hone_collator_destroy(f->vtable, state);
    hone_opts_free(own);
    *used = f;
    return rc;
}

void hone_data_log_summary(const hone_prepared *p, int max_len, const hone_hooks *h)
{
    const hone_dataset *train = &p->train, *eval = &p->eval;
    const hone_feature *collator = p->collator;
    const hone_collate_stats *cs = &p->cstats;
    const hone_data_stats *a = &train->stats, *b = &eval->stats;
    long tokens = 0;
    for (size_t i = 0; i < train->n; i++) tokens += train->ex[i].n;
    for (size_t i = 0; i < eval->n; i++) tokens += eval->ex[i].n;
    hone_logf(h, HONE_LOG_INFO, "data: %zu train, %zu eval examples; collator %s: %.1f%% of %ld tokens trained", train->n, eval->n,
           collator->info->name, tokens ? 100.0 * cs->tokens_trained / tokens : 0.0, tokens);
    long skipped = a->skipped_shape + b->skipped_shape + a->skipped_empty + b->skipped_empty;
    if (skipped)
        hone_logf(h, HONE_LOG_INFO, "data: skipped %ld records: %ld without a text / prompt+completion / messages / input_ids field, %ld "
               "empty (first: %s)", skipped, a->skipped_shape + b->skipped_shape, a->skipped_empty + b->skipped_empty,
               a->first_skip[0] ? a->first_skip : b->first_skip);
    if (a->truncated + b->truncated) hone_logf(h, HONE_LOG_INFO, "data: %ld examples truncated to %d tokens", a->truncated + b->truncated, max_len);
    if (cs->template_missing)
        hone_logf(h, HONE_LOG_INFO, "data: %ld examples lack the response template and are masked whole", cs->template_missing);
    if (a->dropped + b->dropped)
        hone_logf(h, HONE_LOG_INFO, "data: %ld train and %ld eval examples dropped: truncation to %d tokens left no completion token "
               "(TRL drops them too)", a->dropped, b->dropped, max_len);
    if (a->prefix_mismatch + b->prefix_mismatch)
        hone_logf(h, HONE_LOG_INFO, "data: %ld prompts tokenize differently at the start of prompt + completion: their completions start "
               "where the two diverge (TRL warns the same)",
               a->prefix_mismatch + b->prefix_mismatch);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* a data file through the token cache: the tokens of an earlier run, or tokenized now
 * (on o->threads threads) and kept for the next. A Lua chat function bypasses the cache:
 * what it renders cannot be keyed. */
static int load_cached(hone_dataset *d, const char *path, const hone_data_opts *o, const char *cache_dir,
                       const char *key_name, const hone_hooks *h, hone_err *err)
{
    int ok = 0, hit = 0;
    hone_err kerr = {0};
    uint64_t key = hone_token_cache_key(path, o, HONE_VERSION, &kerr, &ok);
    if (o->chat_fn) cache_dir = NULL;
    if (ok && cache_dir && o->tok) {
        hone_token_cache_load(d, cache_dir, key, &hit);
        if (hit) {
            hone_logf(h, HONE_LOG_INFO, "data: %s: %zu examples from the token cache (%s/%016llx.tokens.zst)", key_name, d->n, cache_dir,
                   (unsigned long long)key);
            return 0;
        }
    }
    double t0 = now();
    int rc = hone_dataset_load(d, path, o, err);
    if (rc) return rc;
    if (o->tok) {
        int th = o->threads > 1 && !o->chat_fn ? o->threads : 1;
        hone_logf(h, HONE_LOG_INFO, "data: %s: %ld records tokenized in %.2f s on %d thread%s", key_name, d->stats.records, now() - t0, th,
               th > 1 ? "s" : "");
        hone_err werr = {0};
        if (ok && cache_dir && hone_token_cache_store(d, cache_dir, key, &werr))
            hone_logf(h, HONE_LOG_INFO, "data: the token cache was not written (%s); the run goes on", werr.msg);
    }
    return 0;
}

/* data.chat_function through the host's chat hook */
typedef struct chat_call {
    const hone_hooks *hooks;
    int fn;
} chat_call;

static int call_chat(void *ctx, const struct cJSON *messages, char ***texts, int **trained, int *n, hone_err *err)
{
    const chat_call *c = ctx;
    return c->hooks->chat(c->hooks->ctx, c->fn, messages, texts, trained, n, err);
}

int hone_data_prepare(hone_prepared *p, const hone_config *cfg, const hone_hooks *hooks, hone_err *err)
{
    memset(p, 0, sizeof *p);
    const char *mdir = hone_config_str(cfg, "model.path");
    int rc = hone_model_config_load(&p->mc, mdir, err);
    if (rc) return hone_err_prefix(err, "model.path: ");
    int max_len = (int)hone_config_int(cfg, "data.max_seq_length");
    long limit = hone_config_is_set(cfg, "data.limit") ? (long)hone_config_int(cfg, "data.limit") : 0;
    uint64_t seed = (uint64_t)hone_config_int(cfg, "seed");
    rc = load_tokenizer(cfg, mdir, &p->tok, err);
    long long th = hone_config_int(cfg, "threads");
    int threads = th > 0 ? (int)th : (int)sysconf(_SC_NPROCESSORS_ONLN);
    chat_call chat = {hooks, hone_config_function(cfg, "data.chat_function")};
    if (!rc && chat.fn != HONE_NOREF && !(hooks && hooks->chat))
        rc = hone_errf(err, HONE_EUNSUPPORTED, "data.chat_function: this host cannot call functions");
    hone_data_opts dopt = {max_len, p->mc.vocab, limit, p->tok, hone_config_str(cfg, "data.text_field"),
                           hone_config_str(cfg, "data.prompt_field"), hone_config_str(cfg, "data.completion_field"),
                           hone_config_str(cfg, "data.messages_field"), hone_config_str(cfg, "data.chat_template"),
                           threads, chat.fn != HONE_NOREF ? call_chat : NULL, &chat};
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/.cache/tokens", hone_config_str(cfg, "output_dir"));
    if (!rc) {
        rc = load_cached(&p->train, hone_config_str(cfg, "data.train"), &dopt, cache, "data.train", hooks, err);
        if (rc) hone_err_prefix(err, "data.train: ");
    }
    if (!rc && hone_config_is_set(cfg, "data.eval")) {
        dopt.limit = 0;
        rc = load_cached(&p->eval, hone_config_str(cfg, "data.eval"), &dopt, cache, "data.eval", hooks, err);
        if (rc) hone_err_prefix(err, "data.eval: ");
    } else if (!rc && hone_config_is_set(cfg, "data.eval_fraction")) {
        rc = hone_dataset_split(&p->train, &p->eval, hone_config_num(cfg, "data.eval_fraction"), seed, err);
    }
    hone_tokenizer *tok = p->tok;
    p->pad = tok && hone_tokenizer_pad(tok) >= 0 ? hone_tokenizer_pad(tok)
             : tok && hone_tokenizer_eos(tok) >= 0 ? hone_tokenizer_eos(tok)
             : p->mc.eos_id >= 0 && p->mc.eos_id < p->mc.vocab ? p->mc.eos_id : 0;
    if (!rc) rc = label_examples(cfg, tok, &p->train, &p->eval, p->pad, &p->collator, &p->cstats, err);
    if (!rc) {
        hone_dataset_drop_untrained(&p->train);
        hone_dataset_drop_untrained(&p->eval);
        if (p->train.n == 0)
            rc = hone_errf(err, HONE_EINVAL, "data.train: every example's completion was cut away by truncation to "
                           "data.max_seq_length = %d", max_len);
    }
    if (rc) hone_prepared_free(p);
    return rc;
}

void hone_prepared_free(hone_prepared *p)
{
    hone_dataset_free(&p->train);
    hone_dataset_free(&p->eval);
    hone_tokenizer_free(p->tok);
    p->tok = NULL;
}
