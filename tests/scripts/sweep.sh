# sweep.sh — hone.sweep: a 3 x 2 grid (r x lr, alpha derived) gives 6 members and a
# 6-row summary; a member made invalid fails alone and is recorded; re-running skips what
# finished; a killed sweep continues; parallel = 2; median early termination.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
model="$HONE_SRC/tests/fixtures/models/llama"
awk 'BEGIN { srand(3); for (i = 0; i < 64; i++) { n = 6 + i % 5; s = "";
       for (k = 0; k < n; k++) s = s (k ? ", " : "") int(rand() * 96); print "{\"input_ids\": [" s "]}" } }' > train.jsonl
awk 'BEGIN { srand(5); for (i = 0; i < 1500; i++) { n = 6 + i % 7; s = "";
       for (k = 0; k < n; k++) s = s (k ? ", " : "") int(rand() * 96); print "{\"input_ids\": [" s "]}" } }' > big.jsonl
cat > sweep.lua <<LUA
local hone = require("hone")
local bad = os.getenv("BAD") == "1"
local r = hone.sweep {
  base = {
    project = "sw", output_dir = os.getenv("OUT") or "runs", seed = 3, model = { path = "$model" },
    lora = { r = 4, alpha = 8, target_modules = "all-linear" },
    data = { train = os.getenv("DATA") or "train.jsonl", eval_fraction = 0.125, max_seq_length = 12 },
    train = { epochs = 2, batch_size = 8 },
  },
  grid = { ["lora.r"] = { 2, 4, 8 }, ["train.lr"] = { 1e-3, 3e-3 } },
  derive = function(cfg)
    cfg.lora.alpha = 2 * cfg.lora.r
    if bad and cfg.lora.r == 8 and cfg.train.lr == 3e-3 then cfg.lora.dropout = 2 end
  end,
  parallel = tonumber(os.getenv("PAR") or "1"),
  early_terminate = os.getenv("ET") and { type = "median", min_epochs = 1 } or nil,
}
print(("sweep done: %d members, %d failed"):format(#r.members, r.failed))
LUA
# --dry-run: each member's verdict from the schema, and nothing created
expect 0 "sw-<timestamp>-r8-lr3e-03-alpha16-dropout2: refused: lora.dropout = 2: out of range" -- env BAD=1 "$HONE" run sweep.lua --dry-run
expect 0 "dry run: 1 of 6 members would be refused; nothing was created" -- env BAD=1 "$HONE" run sweep.lua --dry-run
[ ! -e runs ] && echo "ok: the dry run created nothing" || { echo "FAIL: dry run created runs/"; fails=$((fails+1)); }
expect 0 "sweep done: 6 members, 0 failed" -- "$HONE" run sweep.lua
s=$(ls -d runs/sw-*-sweep)
[ "$(ls -d "$s"/sw-* | wc -l)" = 6 ] && [ "$(wc -l < "$s/summary.csv")" = 7 ] && grep -q "r8-lr3e-03-alpha16" "$s/summary.md" \
  && [ "$(grep -c '<svg class="sweep"' "$s/report.html")" = 2 ] \
  && echo "ok: 6 member dirs, a 6-row summary.csv and summary.md, report.html with r and lr plots" || { echo "FAIL: sweep layout"; ls "$s"; fails=$((fails+1)); }
grep -q '"alpha": 16' "$s"/sw-*-r8-lr1e-03-alpha16/config.json 2>/dev/null || grep -q '"alpha":[[:space:]]*16' "$s"/sw-*-r8-lr1e-03-alpha16/config.json \
  && echo "ok: derive set alpha = 2r" || { echo "FAIL: derive"; fails=$((fails+1)); }
# a member's run directory holds what every run's does: the script that made it too
m=$(ls -d "$s"/sw-*-r8-lr1e-03-alpha16)
cmp -s sweep.lua "$m/experiment.lua" && grep -q '"script":[[:space:]]*"sweep.lua"' "$m/config.json" \
  && echo "ok: a sweep member has experiment.lua (the sweep script) and config.json names it" \
  || { echo "FAIL: sweep member experiment.lua / script"; ls "$m"; fails=$((fails+1)); }
expect 0 "r2-lr1e-03-alpha4: completed, skipped" -- "$HONE" run sweep.lua
# a sweep script may end as an experiment script does: `return hone.sweep { ... }`
sed -e 's/^local r = hone.sweep {/return hone.sweep {/' -e '/^print(("sweep done/d' sweep.lua > sweep_return.lua
expect 0 "^6 members, 0 failed" -- "$HONE" run sweep_return.lua
expect 0 "dry run: 0 of 6 members would be refused" -- "$HONE" run sweep_return.lua --dry-run
expect 0 "\| sw-[0-9_.-]+-r[248]-lr[13]e-03-alpha[0-9]+ \| completed \| [248] \| 0.00[13] \| epoch-[12] \|" -- "$HONE" runs "$s"

# a member made invalid fails alone; the exit status says so
expect 2 "sweep: 1 of 6 members failed" -- env BAD=1 OUT=bad "$HONE" run sweep.lua
grep -q "sw-.*-r8-lr3e-03-alpha16-dropout2,failed" bad/sw-*-sweep/summary.csv && [ "$(grep -c ',completed,' bad/sw-*-sweep/summary.csv)" = 5 ] \
  && echo "ok: the invalid member is recorded as failed, the other 5 completed" || { echo "FAIL: failed member"; fails=$((fails+1)); }
expect 0 "lora.dropout = 2: out of range" -- grep -h "error" bad/sw-*-sweep/sw-*-r8-lr3e-03-*/summary.json

# killed in the middle, then re-run: finished members are skipped, the rest complete
env OUT=kill DATA=big.jsonl setsid "$HONE" run sweep.lua > kill.log 2>&1 &
pid=$!
until [ "$(ls kill/sw-*-sweep/sw-*/summary.json 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.05; done
kill -9 -- -$pid 2>/dev/null; wait $pid 2>/dev/null
done_before=$(ls kill/sw-*-sweep/sw-*/summary.json | wc -l)
[ "$done_before" -lt 6 ] && echo "ok: killed with $done_before of 6 members finished" \
  || { echo "FAIL: the kill came too late"; fails=$((fails+1)); }
expect 0 "sweep done: 6 members, 0 failed" -- env OUT=kill DATA=big.jsonl "$HONE" run sweep.lua
n=$(grep -c "completed, skipped" <<<"$(env OUT=kill DATA=big.jsonl "$HONE" run sweep.lua)")
[ "$n" = 6 ] && echo "ok: a third run skips all 6" || { echo "FAIL: $n skipped"; fails=$((fails+1)); }

# two members at a time
expect 0 "6 members, 0 failed; [0-9.]+ s wall with parallel = 2" -- env OUT=par PAR=2 "$HONE" run sweep.lua
# median early termination
expect 0 "is worse than the median .* stopping it" -- env OUT=et ET=1 "$HONE" run sweep.lua
grep -q ",stopped_early," et/sw-*-sweep/summary.csv && echo "ok: stopped members are recorded as stopped_early" \
  || { echo "FAIL: no stopped_early member"; fails=$((fails+1)); }
# --resume SWEEP_DIR continues that sweep; successive halving stops members at its rungs
expect 0 "sweep .*par/sw-.*-sweep: the same plan, continuing" -- env OUT=elsewhere PAR=2 "$HONE" run sweep.lua --resume "$(ls -d par/sw-*-sweep)"
sed 's/type = "median"/type = "halving", eta = 3/' sweep.lua > halving.lua
expect 0 "is worse than the best 1/3 cut .* stopping it" -- env OUT=hv ET=1 "$HONE" run halving.lua
expect 2 "not a sweep directory" -- "$HONE" run sweep.lua --resume runs
finish
