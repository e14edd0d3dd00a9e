/* trainer.h — the training loop of `hone run`: epochs of micro-batches, gradient
 * accumulation with transformers' loss normalisation, clipping, the scheduled optimizer
 * step, logging to metrics.jsonl, per-epoch evaluation loss and checkpoints. */
#ifndef HONE_TRAINER_H
#define HONE_TRAINER_H

#include "config.h"

/* Trains the resolved experiment into run_dir (which exists). */
int hone_train(const hone_config *cfg, const char *run_dir, hone_err *err);

#endif
