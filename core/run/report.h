/* report.h — report.html: a run's curves, evaluations and best-epoch predictions, drawn
 * from what the run directory holds. */
#ifndef HONE_REPORT_H
#define HONE_REPORT_H

#include "hone/plugin.h"

/* Reads run_dir's metrics.jsonl, summary.json and eval/<best>.jsonl (each optional) and
 * writes run_dir/report.html. Fails only when the page cannot be written. */
int hone_write_report(const char *run_dir, hone_err *err);

/* Reads sweep_dir/summary.csv (as hone.sweep writes it) and writes sweep_dir/report.html:
 * the table with links to each member's report, and the metric against each varied key. */
int hone_write_sweep_report(const char *sweep_dir, hone_err *err);

#endif
