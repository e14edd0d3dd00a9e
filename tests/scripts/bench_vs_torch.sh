# bench_vs_torch.sh — scripts/bench_vs_torch runs end to end on its tiny --quick config:
# every run reports, the table and the ratios are printed, and hone's refusal of bf16
# (on a CPU without AVX-512) reads "refused (...)". A smoke test of the script: no figure is
# asserted (speed is shown by the benchmark's own ratios, not by timed tests). Skipped
# (77) where no venv with torch, transformers and peft exists: the test never installs
# them (the script does that, once, from PyPI, when run by hand).
. "$(dirname "$0")/lib.sh"
s="$HONE_SRC/scripts/bench_vs_torch"
expect 2 "--rounds 0: must be at least 1" -- "$s" --rounds 0
expect 2 "--quick and --config: one or the other" -- "$s" --quick --config x.json
out=$("$s" --quick --rounds 1 --threads 1 --no-install 2>&1); rc=$?
if [ "$rc" = 3 ]; then echo "skipped: $out"; exit 77; fi
if [ "$rc" != 0 ]; then echo "FAIL: exit $rc"; echo "$out" | tail -30; exit 1; fi
echo "$out"
for pat in "^machine: .*flags: " "^versions: hone .*torch [0-9.]+, transformers [0-9.]+, peft [0-9.]+" \
           "^round 1, torch fp32: [0-9.]+ tokens/s" "^round 1, hone fp32: [0-9.]+ tokens/s" \
           "^round 1, torch bf16: [0-9.]+ tokens/s" "^round 1, hone bf16: ([0-9.]+ tokens/s|refused \(.*need AVX-512\))" \
           "^\| hone fp32 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ GB \|$" \
           "^hone fp32 / torch fp32: [0-9.]+x$" "^hone fp32 / best torch \(torch (fp32|bf16)\): [0-9.]+x$"; do
  if grep -Eq -- "$pat" <<<"$out"; then echo "ok: /$pat/"; else echo "FAIL: output lacks /$pat/"; fails=$((fails+1)); fi
done
if grep -q "WARNING" <<<"$out"; then echo "FAIL: $(grep WARNING <<<"$out")"; fails=$((fails+1)); fi
finish
