/* report.h — report.html: a run's curves, evaluations and best-epoch predictions, and a
 * sweep's table, drawn from what the directories hold. The two writers are declared in
 * hone.h (hosts redraw reports); this header says so for the files that include it. */
#ifndef HONE_REPORT_H
#define HONE_REPORT_H

#include "hone/hone.h"

#endif
