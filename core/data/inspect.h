/* inspect.h — `hone inspect`: what a run would train, with the loss mask shown. */
#ifndef HONE_INSPECT_H
#define HONE_INSPECT_H

#include "config.h"

/* prints the data summary, nshow examples of the train (or eval) split with trained
 * tokens marked (ANSI colour, or [[brackets]]), and the split's numbers */
int hone_inspect(const hone_config *cfg, int nshow, int eval_split, int color, hone_err *err);

#endif
