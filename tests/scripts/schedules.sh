# schedules.sh — `hone schedule` against tests/fixtures/schedules.csv, written by
# tests/reference/schedules.py from transformers' formulas: every lr within 1e-12 relative.
. "$(dirname "$0")/lib.sh"
fixture="$HONE_SRC/tests/fixtures/schedules.csv"
ncases=$(tail -n +2 "$fixture" | cut -d, -f1 | sort -un | wc -l)
[ "$ncases" -ge 20 ] || { echo "FAIL: fixture has $ncases cases"; exit 1; }
for c in $(seq 0 $((ncases - 1))); do
  args=$(awk -F, -v c="$c" '$1 == c { print $2; exit }' "$fixture")
  # shellcheck disable=SC2086
  if ! "$HONE" schedule $args > "$TMP/out.csv" 2> "$TMP/err"; then
    echo "FAIL: hone schedule $args: $(cat "$TMP/err")"; fails=$((fails+1)); continue
  fi
  awk -F, -v c="$c" '$1 == c { print $3 "," $4 }' "$fixture" > "$TMP/want.csv"
  result=$(tail -n +2 "$TMP/out.csv" | paste -d, - "$TMP/want.csv" | awk -F, '
    { n++; if ($1 != $3) { print "step mismatch " $1 " vs " $3; bad++; next }
      a = $2 + 0; b = $4 + 0; d = a - b; if (d < 0) d = -d
      m = (a < 0 ? -a : a); mb = (b < 0 ? -b : b); if (mb > m) m = mb
      r = (m > 0) ? d / m : 0; if (r > worst) worst = r
      if (r > 1e-12) { print "step " $1 ": " a " vs " b; bad++ } }
    END { if (n == 0) { print "no rows"; bad++ } printf "rows %d worst %.3g\n", n, worst; exit bad > 0 }')
  if [ $? -ne 0 ]; then echo "FAIL: $args: $result"; fails=$((fails+1)); else echo "ok: $args ($result)"; fi
done
# the schedule's own checks
expect 2 "lr_end \(0.001\) must be smaller than the initial lr" -- "$HONE" schedule polynomial --lr 1e-4 --steps 10 --set lr_end=1e-3
expect 2 "needs min_lr or min_lr_rate" -- "$HONE" schedule cosine_with_min_lr --lr 1e-4 --steps 10
expect 2 "needs num_decay_steps" -- "$HONE" schedule warmup_stable_decay --lr 1e-4 --steps 10
expect 2 "unknown scheduler 'cosin' \(registered schedulers: constant, .*cosine" -- "$HONE" schedule cosin --lr 1e-4 --steps 10
expect 2 "scheduler.num_cycle: unknown option 'num_cycle' for scheduler cosine; did you mean 'num_cycles'" -- "$HONE" schedule cosine --lr 1e-4 --steps 10 --set num_cycle=1
expect 2 "\-\-steps 0: must be an integer >= 1" -- "$HONE" schedule cosine --lr 1e-4 --steps 0
expect 2 "not both" -- "$HONE" schedule cosine --lr 1e-4 --steps 5 --warmup-ratio 0.1 --warmup-steps 2
finish
