# report.sh — report.html for a run and for a sweep: drawn from the run directory's files
# by `hone report`, with the loss and lr curves, the evaluations table and the scatter of
# predicted against true prices. With "chromium" as argument the pages are rendered in
# headless Chromium and the plots' geometry is read back from the browser (skipped, exit
# 77, where Debian's chromium is not installed).
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
run=runs/demo-2026-01-01_00.00.00
mkdir -p "$run/eval"
echo '{}' > "$run/config.json"
for s in $(seq 5 5 100); do
  awk -v s="$s" 'BEGIN { printf "{\"step\": %d, \"epoch\": %.3f, \"loss\": %.4f, \"lr\": %.3g, \"grad_norm\": 1}\n", s, s / 50, 3 / (1 + s / 10), 1e-4 * (1 - s / 110) }'
  [ $((s % 50)) = 0 ] && echo "{\"split\": \"eval\", \"epoch\": $((s / 50)), \"step\": $s, \"eval_loss\": 0.$((9 - s / 50)), \"price.abs_error\": $((200 - s))}"
done > "$run/metrics.jsonl"
for i in $(seq 1 12); do
  echo "{\"index\": $i, \"prompt\": \"p\", \"prediction\": \"\$$((i * 37)).00 each\", \"reference\": \"$((i * 40)).00\"}"
done > "$run/eval/epoch-2.jsonl"
echo '{"prediction": "no number", "reference": "12.00"}' >> "$run/eval/epoch-2.jsonl"
cat > "$run/summary.json" <<JSON
{"status": "completed", "steps": 100, "epochs": 2, "train_loss": 0.43, "best_epoch": 2,
 "best_metric": "price.abs_error", "best_checkpoint": "epoch-2", "best_value": 100}
JSON
sw=runs/demo-2026-01-01_00.00.01-sweep
mkdir -p "$sw"
echo '{}' > "$sw/sweep.json"
{
  echo "member,status,lora.r,train.lr,best,price.abs_error,tokens/s,wall s"
  k=0
  for r in 8 16 32; do for lr in 1e-04 3e-04; do
    k=$((k + 1)); echo "demo-r$r-lr$lr,completed,$r,$lr,epoch-2,$((100 + 7 * k)),120,30.5"
  done; done
  echo "demo-bad,failed,64,1e-04,,,,"
} > "$sw/summary.csv"

if [ "${1:-}" = chromium ]; then
  browser=$(command -v chromium || command -v chromium-browser) || { echo "skipped: no chromium (scripts/setup --test installs it)"; exit 77; }
  "$HONE" report "$run" > /dev/null && "$HONE" report "$sw" > /dev/null || { echo "FAIL: hone report"; exit 1; }
  # the browser measures every plot: its box, the polylines with real extent, and the
  # circles that are what the page shows at their centres (drawn, not hidden or off-box)
  probe='<script>
const out = [];
for (const svg of document.querySelectorAll("svg")) {
  const box = svg.getBoundingClientRect();
  const lines = [...svg.querySelectorAll("polyline")].filter(p => { const b = p.getBBox(); return b.width > 100 && b.height > 20; }).length;
  let dots = 0;
  for (const c of svg.querySelectorAll("circle")) {
    const b = c.getBoundingClientRect(), hit = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
    if (hit && hit.tagName === "circle" && b.x >= box.x && b.right <= box.right && b.y >= box.y && b.bottom <= box.bottom) dots++;
  }
  out.push(svg.getAttribute("class") + ":" + Math.round(box.width) + "x" + Math.round(box.height) + ":lines=" + lines + ":dots=" + dots);
}
document.body.setAttribute("data-plots", out.join(" "));
document.body.setAttribute("data-rows", document.querySelectorAll("tr").length);
</script>'
  render() {
    { sed 's#</body></html>##' "$1/report.html"; echo "$probe</body></html>"; } > "$1/probe.html"
    timeout 60 "$browser" --headless --no-sandbox --disable-gpu --window-size=1200,3000 --dump-dom \
      "file://$PWD/$1/probe.html" 2>/dev/null | grep -o 'data-plots="[^"]*" data-rows="[0-9]*"'
  }
  got=$(render "$run")
  want='data-plots="loss:560x260:lines=1:dots=2 lr:560x260:lines=1:dots=0 scatter:560x260:lines=0:dots=12" data-rows="3"'
  [ "$got" = "$want" ] && echo "ok: run report in chromium: $got" || { echo "FAIL: run report: got [$got], wanted [$want]"; fails=$((fails+1)); }
  got=$(render "$sw")
  want='data-plots="sweep:560x260:lines=0:dots=6 sweep:560x260:lines=0:dots=6" data-rows="8"'
  [ "$got" = "$want" ] && echo "ok: sweep report in chromium: $got" || { echo "FAIL: sweep report: got [$got], wanted [$want]"; fails=$((fails+1)); }
  finish
fi

expect 0 "$run/report.html" -- "$HONE" report "$run"
h="$run/report.html"
grep -q '<svg class="loss"' "$h" && grep -q '<svg class="lr"' "$h" && grep -q '<svg class="scatter"' "$h" \
  && [ "$(grep -c '<circle class="dot"' "$h")" = 14 ] && grep -q '<td>2</td><td>100</td><td>0.7</td><td>100</td>' "$h" \
  && grep -q '480 (log scale)' "$h" \
  && echo "ok: loss, lr and scatter plots; 2 eval points + 12 prices; the evaluations table" \
  || { echo "FAIL: run report"; cat "$h"; fails=$((fails+1)); }
expect 0 "$sw/report.html" -- "$HONE" report "$sw"
h="$sw/report.html"
[ "$(grep -c '<svg class="sweep"' "$h")" = 2 ] && grep -q 'price.abs_error against lora.r' "$h" \
  && grep -q '<a href="demo-r8-lr1e-04/report.html">' "$h" && grep -q '<td>failed</td>' "$h" \
  && echo "ok: sweep table with member links, the metric against r and lr" || { echo "FAIL: sweep report"; cat "$h"; fails=$((fails+1)); }
# a run without metrics or evaluations still gets a page; bad directories are refused
mkdir -p runs/empty && echo '{}' > runs/empty/config.json
expect 0 "runs/empty/report.html" -- "$HONE" report runs/empty
grep -q 'nothing to plot' runs/empty/report.html && echo "ok: an empty run's page says there is nothing to plot" \
  || { echo "FAIL: empty run page"; fails=$((fails+1)); }
expect 2 "report: nowhere: not a run or a finished sweep directory" -- "$HONE" report nowhere
mkdir -p runs/half-sweep && echo '{}' > runs/half-sweep/sweep.json
expect 2 "no runs/half-sweep/summary.csv" -- "$HONE" report runs/half-sweep
echo "nothing,here" > runs/half-sweep/summary.csv
expect 1 "summary.csv: not a sweep summary" -- "$HONE" report runs/half-sweep
expect 2 "usage: hone report" -- "$HONE" report
finish
