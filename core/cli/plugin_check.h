/* plugin_check.h — `hone plugins --check FILE.so`: a conformance round on every feature a
 * plugin file registers, against what plugin.h promises the core relies on.
 *
 *   optimizer  create, state_bytes, step (8 steps on a 3-tensor problem: grads untouched,
 *              nothing written past params, every parameter finite, something moved),
 *              save (twice the same bytes; stepping on after it changes nothing), destroy,
 *              load (reads all save wrote, saves back the same bytes), resume (continuing
 *              after load gives the same bytes as without save/load), truncated state
 *              refused, destroy(NULL)
 *   scheduler  check, factor (finite, >= 0 on two plans), pure (the same bits again, in
 *              reverse order)
 *   collator   create (no tokenizer), label on three shapes (plain, prompt/completion,
 *              own labels): nothing past the labels, -100 or a token id each, the example
 *              untouched, the same labels twice; at least one shape accepted; destroy,
 *              destroy(NULL)
 *   quantizer  create, packed_bytes, quantize (nothing past packed_bytes, every byte
 *              written, the same bytes twice), dequantize (finite, close to the weight, any
 *              row range equal to those rows of the whole), export/import (the same packed
 *              bytes back), destroy, destroy(NULL)
 *
 * A feature is created with its default options; where it refuses them, with each option
 * that has no default set alone to a value inside its range (a schedule may need one of
 * two). Each feature runs in a child process, so a crash or a hang (60 s) is reported
 * against the step that was running, and the round goes on with the next feature.
 * Library code: results go to the caller's callback, nothing is printed.
 */
#ifndef HONE_PLUGIN_CHECK_H
#define HONE_PLUGIN_CHECK_H

#include "registry.h"

typedef struct hone_check_event {
    int ok;                  /* 1: the step passed, 0: it failed */
    hone_kind kind;
    const char *feature;     /* the feature's registry name */
    const char *step;        /* "create", "step", "resume", "destroy(NULL)", ... */
    const char *detail;      /* what was seen (why it failed), or "" */
} hone_check_event;

typedef void (*hone_check_log_fn)(void *ctx, const hone_check_event *ev);

typedef struct hone_check_counts {
    int features, passed, failed;
} hone_check_counts;

/* Loads the plugin at path into a registry of its own and checks every feature it
 * registers, calling log for each step. A file that does not load is the one error
 * (returned, in err); failed steps are counted in *counts, and a file that registers
 * nothing counts as one failure. */
int hone_plugin_check(const char *path, hone_check_log_fn log, void *ctx, hone_check_counts *counts,
                      hone_err *err);

#endif
