/* trainer.h — the training loop of `hone run`: epochs of micro-batches, gradient
 * accumulation with transformers' loss normalisation, clipping, the scheduled optimizer
 * step, logging to metrics.jsonl, per-epoch evaluation loss, checkpoints that resume
 * exactly, best / early stopping, and a clean stop on Ctrl-C. */
#ifndef HONE_TRAINER_H
#define HONE_TRAINER_H

#include "config.h"

/* What hone_train refuses before it reads any data: an unusable device or dtype, a model
 * directory without a readable config.json, contradictory eval.best / data.order_file
 * settings. `hone run --dry-run` reports the same. */
int hone_train_check(const hone_config *cfg, hone_err *err);

/* Trains the resolved experiment into run_dir (which exists). resume: continue from the
 * newest complete checkpoint in run_dir. *interrupted is set when a SIGINT / SIGTERM
 * stopped the run after checkpointing (the caller exits 130). */
int hone_train(const hone_config *cfg, const char *run_dir, int resume, int *interrupted, hone_err *err);

/* `hone eval`: evaluation loss and generation metrics of a checkpoint (an adapter dir for
 * LoRA experiments, a weights dir for full fine-tuning); predictions to out_path if set */
int hone_eval_checkpoint(const hone_config *cfg, const char *ckpt, const char *out_path, hone_err *err);

#endif
