# abi_minor.sh — plugin.h's version rule in both directions. A plugin built against the
# 1.1 header (HONE_PLUGIN_ABI, its own init, a version 1 collator) loads and works as it
# did: its collator labels exactly as the built-in lm, through the loader's adapter. A
# plugin claiming a newer minor than this hone is refused, naming the file and both
# versions, before its init runs.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
minor=$(sed -n 's/^#define HONE_ABI_MINOR \([0-9]*\).*/\1/p' "$HONE_SRC/core/include/hone/plugin.h")
old="$ABI_DIR/old_minor"

expect 0 "collator +old_lm +old_minor.so +a 1.1 collator" -- env HONE_PLUGIN_PATH="$old" "$HONE" plugins
expect 0 "momentum +number +0.9 +\[0, 1\)" -- env HONE_PLUGIN_PATH="$old" "$HONE" plugins optimizer old_sgd
expect 2 "plugin .*/new_minor/new_minor.so: built for hone plugin ABI 1\.$((minor + 1)), newer than this hone's 1\.$minor" \
  -- env HONE_PLUGIN_PATH="$ABI_DIR/new_minor" "$HONE" plugins

# the same pre-tokenized records labelled by old_lm (version 1) and lm (version 2)
for i in $(seq 0 19); do
  n=$(( 4 + i % 6 )); ids=""; labels=""
  for k in $(seq 0 $((n - 1))); do
    v=$(( (i * 5 + k * 11) % 96 )); ids="$ids${ids:+, }$v"
    [ $((k % 3)) -eq 0 ] && l=-100 || l=$v; labels="$labels${labels:+, }$l"
  done
  [ $((i % 2)) -eq 0 ] && echo "{\"input_ids\": [$ids], \"labels\": [$labels]}" || echo "{\"input_ids\": [$ids]}"
done > train.jsonl
cat > exp.lua <<LUA
return { model = { path = "$HONE_SRC/tests/fixtures/models/llama" }, output_dir = "runs",
         data = { train = "train.jsonl", max_seq_length = 16 }, collator = "lm" }
LUA
HONE_PLUGIN_PATH="$old" "$HONE" inspect exp.lua --n 20 > lm.txt 2>&1
HONE_PLUGIN_PATH="$old" "$HONE" inspect exp.lua --n 20 --set collator=old_lm > old.txt 2>&1
grep -q "collator lm" lm.txt && grep -q "collator old_lm" old.txt \
  && diff <(sed 's/collator lm/collator X/' lm.txt) <(sed 's/collator old_lm/collator X/' old.txt) > /dev/null \
  && echo "ok: old_lm (collator version 1) labels the 20 examples as lm does" \
  || { echo "FAIL: old_lm and lm label differently"; diff lm.txt old.txt | head -20; fails=$((fails+1)); }
expect 0 "collator old_lm: 81\.7% of 126 tokens trained" -- cat old.txt

# its optimizer runs from Lua as it would have under 1.1
cat > opt.lua <<'LUA'
local hone = require("hone")
local r = hone.optimize { optimizer = { "old_sgd", momentum = 0.5 }, lr = 0.1, steps = 3, params = { 1 },
  loss = function(p) return p[1] * p[1], { 2 * p[1] } end, resume_at = 2 }
-- p: 1 -> 0.8 (b = 2) -> 0.54 (b = 2.6) -> 0.302 (b = 2.38)
assert(math.abs(r.params[1] - 0.302) < 1e-6, "old_sgd: " .. r.params[1])
print("old_sgd: " .. r.state_bytes .. " bytes of state")
LUA
expect 0 "old_sgd: 4 bytes of state" -- env HONE_PLUGIN_PATH="$old" "$HONE" run opt.lua
finish
