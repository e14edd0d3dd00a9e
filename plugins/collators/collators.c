/* collators.c — the loss masks of tokenized examples: which tokens a run trains on.
 * The core calls label once per example at load (plugin.h, collator version 2) and does
 * the batching and padding itself.
 *
 *   lm               every token trained (TRL's plain-text datasets); pre-tokenized
 *                    records keep their own labels.
 *   completion_only  prompt/completion records: loss on the completion only (TRL's
 *                    completion_only_loss). With a response template (a string, or ids):
 *                    DataCollatorForCompletionOnlyLM — the template is searched as a token
 *                    subsequence of the labels, the last match wins, everything up to and
 *                    including it is masked, and an example without it is masked whole
 *                    and counted. A string template is tokenized twice: alone and after a
 *                    newline with the newline's tokens cut off (TRL's documented fix for
 *                    SentencePiece tokenizers, where "### Assistant:" tokenizes
 *                    differently in context); either sequence matches.
 *   chat             chat records, rendered by the loader through data.chat_template with
 *                    the assistant turns (content and end-of-turn token) as labels;
 *                    all_turns trains every token.
 */
#include <string.h>

#include "hone/plugin.h"

enum { LM, COMPLETION, CHAT };

typedef struct coll {
    int kind, all_turns;
    int32_t *tmpl[2];
    size_t tn[2];
    int ntmpl;
} coll;

static void co_destroy(void *state)
{
    coll *c = state;
    if (!c) return;
    for (int i = 0; i < c->ntmpl; i++) hone_api->free(c->tmpl[i]);
    hone_api->free(c);
}

static int add_template(coll *c, int32_t *ids, size_t n)
{
    for (int i = 0; i < c->ntmpl; i++)
        if (c->tn[i] == n && !memcmp(c->tmpl[i], ids, n * sizeof *ids)) {
            hone_api->free(ids);
            return 0;
        }
    c->tmpl[c->ntmpl] = ids;
    c->tn[c->ntmpl++] = n;
    return 0;
}

static int template_ids(coll *c, const hone_tokenizer *tok, const char *text, hone_err *err)
{
    if (!tok) return hone_api->error(err, HONE_EINVAL, "response_template \"%s\" needs a tokenizer: the model has none (set model.tokenizer)", text);
    size_t len = strlen(text), n = 0;
    int32_t *ids = NULL;
    int rc = hone_api->tok_encode(tok, text, len, 0, &ids, &n, err);
    if (rc) return rc;
    if (!n) {
        hone_api->free(ids);
        return hone_api->error(err, HONE_EINVAL, "response_template \"%s\" tokenizes to nothing", text);
    }
    add_template(c, ids, n);
    /* in context: after a newline, minus the newline's own tokens */
    char buf[4096];
    if (len + 2 > sizeof buf) return hone_api->error(err, HONE_EINVAL, "response_template is longer than 4 KB");
    buf[0] = '\n';
    memcpy(buf + 1, text, len + 1);
    int32_t *nl = NULL, *both = NULL;
    size_t nn = 0, nb = 0;
    if ((rc = hone_api->tok_encode(tok, buf, 1, 0, &nl, &nn, err))) return rc;
    if ((rc = hone_api->tok_encode(tok, buf, len + 1, 0, &both, &nb, err))) {
        hone_api->free(nl);
        return rc;
    }
    if (nb > nn && !memcmp(both, nl, nn * sizeof *nl)) {
        memmove(both, both + nn, (nb - nn) * sizeof *both);
        add_template(c, both, nb - nn);
    } else {
        hone_api->free(both);   /* the newline merged into the template: no clean cut */
    }
    hone_api->free(nl);
    return 0;
}

static int co_create(int kind, const hone_opts *o, const hone_tokenizer *tok, void **state, hone_err *err)
{
    coll *c = hone_api->alloc(sizeof *c, 16);
    if (!c) return hone_api->error(err, HONE_ENOMEM, "out of memory");
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->all_turns = kind == CHAT && hone_api->opt_bool(o, "all_turns");
    int rc = 0;
    if (kind == COMPLETION) {
        int s = hone_api->opt_is_set(o, "response_template"), i = hone_api->opt_is_set(o, "response_template_ids");
        if (s && i) rc = hone_api->error(err, HONE_EINVAL, "give response_template or response_template_ids, not both");
        else if (s) rc = template_ids(c, tok, hone_api->opt_string(o, "response_template"), err);
        else if (i) {
            size_t n = 0;
            const double *v = hone_api->opt_list(o, "response_template_ids", &n);
            int32_t *ids = hone_api->alloc((n ? n : 1) * sizeof *ids, 16);
            if (!ids) rc = hone_api->error(err, HONE_ENOMEM, "out of memory");
            for (size_t k = 0; k < n && !rc; k++) {
                if (v[k] != (double)(int32_t)v[k] || v[k] < 0)
                    rc = hone_api->error(err, HONE_EINVAL, "response_template_ids[%zu] = %g is not a token id", k + 1, v[k]);
                else ids[k] = (int32_t)v[k];
            }
            if (!rc && !n) rc = hone_api->error(err, HONE_EINVAL, "response_template_ids is empty");
            if (rc) hone_api->free(ids);
            else add_template(c, ids, n);
        }
    }
    if (rc) {
        co_destroy(c);
        return rc;
    }
    *state = c;
    return 0;
}

/* the start of the last match of any template in lab[0, n), or -1; *end: one past it */
static long last_match(const coll *c, const int32_t *lab, size_t n, size_t *end)
{
    long best = -1;
    for (int t = 0; t < c->ntmpl; t++) {
        size_t m = c->tn[t];
        for (size_t i = 0; i + m <= n; i++)
            if (lab[i] == c->tmpl[t][0] && !memcmp(lab + i, c->tmpl[t], m * sizeof *lab) && (long)i >= best) {
                if ((long)i > best || i + m > *end) *end = i + m;
                best = (long)i;
            }
    }
    return best;
}

static int co_label(void *state, const hone_example *e, int32_t *lab, hone_collate_stats *stats, hone_err *err)
{
    coll *c = state;
    for (size_t t = 0; t < e->n; t++) lab[t] = e->labels ? e->labels[t] : e->ids[t];
    if (c->kind == CHAT) {
        /* the loader marks a chat record's assistant turns as its labels */
        if (!e->labels)
            return hone_api->error(err, HONE_EINVAL, "chat: this record has no messages; use the lm or "
                                                     "completion_only collator for text records");
        if (c->all_turns)
            for (size_t t = 0; t < e->n; t++) lab[t] = e->ids[t];
    }
    if (c->kind == COMPLETION) {
        size_t masked = 0;
        if (c->ntmpl) {
            size_t end = 0;
            long at = last_match(c, lab, e->n, &end);
            if (at < 0) {
                masked = e->n;
                stats->template_missing++;
            } else {
                masked = end;
            }
        } else if (e->has_prompt) {
            masked = e->prompt_len < e->n ? e->prompt_len : e->n;
        } else {
            return hone_api->error(err, HONE_EINVAL,
                                   "completion_only: this record has no prompt/completion fields and no "
                                   "response_template is set; give one, or use the lm collator");
        }
        for (size_t t = 0; t < masked; t++) lab[t] = -100;
    }
    return 0;
}

static int create_lm(const hone_opts *o, const hone_tokenizer *tok, void **state, hone_err *err)
{
    return co_create(LM, o, tok, state, err);
}

static int create_completion(const hone_opts *o, const hone_tokenizer *tok, void **state, hone_err *err)
{
    return co_create(COMPLETION, o, tok, state, err);
}

static int create_chat(const hone_opts *o, const hone_tokenizer *tok, void **state, hone_err *err)
{
    return co_create(CHAT, o, tok, state, err);
}

static const hone_option chat_opts[] = {
    HONE_OPTION_BOOL("all_turns", 0, "train every token, not only the assistant turns"),
    HONE_OPTION_END,
};

static const hone_option completion_opts[] = {
    HONE_OPTION_STRING_UNSET("response_template", NULL,
                             "text that starts every response, e.g. \"### Assistant:\"; loss only after its last "
                             "occurrence"),
    HONE_OPTION_NUMLIST_UNSET("response_template_ids", 0, HONE_ANY, "the template as token ids, used as given"),
    HONE_OPTION_NUMBER("max_missing_fraction", 0.5, HONE_IN(0, 1),
                       "stop before training when more than this fraction of examples lack the template"),
    HONE_OPTION_END,
};

#define COLLATOR(nm, summary, opts, make) \
    {.info = HONE_COLLATOR_INFO(nm, summary, opts), .create = make, .label = co_label, .destroy = co_destroy}

static const hone_collator_vt lm_vt = COLLATOR("lm", "language modelling: every token trained", NULL, create_lm);
static const hone_collator_vt completion_vt =
    COLLATOR("completion_only", "loss on the completion only: after the prompt, or after a response template",
             completion_opts, create_completion);
static const hone_collator_vt chat_vt =
    COLLATOR("chat",
             "chat records through data.chat_template: loss on the assistant turns (their content and end-of-turn "
             "token)",
             chat_opts, create_chat);

static int register_all(hone_registry *reg, hone_err *err)
{
    int rc = hone_api->register_feature(reg, HONE_KIND_COLLATOR, &lm_vt, err);
    if (!rc) rc = hone_api->register_feature(reg, HONE_KIND_COLLATOR, &completion_vt, err);
    if (!rc) rc = hone_api->register_feature(reg, HONE_KIND_COLLATOR, &chat_vt, err);
    return rc;
}

HONE_PLUGIN_DEFINE("collators", register_all)
