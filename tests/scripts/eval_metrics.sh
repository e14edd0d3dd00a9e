# eval_metrics.sh — the example a metric function sees holds its record's own fields
# (ex.completion, ex.category) besides prompt, reference and index; a `best` link that
# cannot be made is reported, not swallowed; metrics.jsonl stays valid JSON whatever the
# metric names (quotes, backslashes, many long ones) and values (NaN).
# A metric function that returns nothing for a whole evaluation
# (early on no prediction parses) neither stops the run nor loses the epoch: the
# checkpoint is written, the evaluation is no candidate for best (a warning names the
# metric), and a later evaluation that computes it becomes best. A best metric no
# evaluation ever computes fails the run at its end, naming what was computed, with every
# checkpoint kept.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
fx="$HONE_SRC/tests/fixtures/sft"
cat > exp.lua <<LUA
local hone = require("hone")
local calls = 0
return hone.experiment {
  project = "absent", output_dir = "runs", seed = 42,
  model = { path = "$fx/model" },
  lora = { r = 4, alpha = 8, target_modules = "all-linear" },
  data = { train = "$fx/train.jsonl", eval = "$fx/eval.jsonl", max_seq_length = 104, eval_limit = 3 },
  train = { lr = 1e-3, epochs = 2, batch_size = 8 },
  eval = {
    generate = { max_new_tokens = 2 },
    -- nothing for the 3 predictions of epoch 1, a number from epoch 2 on
    metrics = { late = function(pred, ex) calls = calls + 1; if calls > 3 then return 1 end end },
    best = { metric = "late", mode = "max" },
  },
}
LUA
expect 0 'warning: epoch 1: eval.best.metric = "late" was not computed \(this evaluation computed eval_loss, exact_match\); it is no candidate for best' -- "$HONE" run exp.lua --set threads=1
run=$(ls -d runs/absent-* | head -1)
expect 0 "epoch-1" -- ls "$run/checkpoints"
expect 0 "checkpoints/epoch-2" -- readlink "$run/best"
sed -i 's/if calls > 3 then return 1 end/return nil/' exp.lua
expect 1 'eval.best.metric = "late": no evaluation of the run computed it \(the last computed eval_loss, exact_match\); every checkpoint is kept' -- "$HONE" run exp.lua --set threads=1
run=$(ls -d runs/absent-* | sed -n 2p)
expect 0 "epoch-1" -- ls "$run/checkpoints"
expect 0 "epoch-2" -- ls "$run/checkpoints"
expect 0 '"status":."failed"' -- cat "$run/summary.json"

# the record's fields: a category per record, scored per category; the completion as written
head -6 "$fx/eval.jsonl" | awk '{ sub(/}$/, ", \"category\": \"" (NR % 2 ? "tv" : "laptop") "\"}"); print }' > eval_cat.jsonl
cat > cat.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "cat", output_dir = "runs", seed = 42,
  model = { path = "$fx/model" },
  lora = { r = 4, alpha = 8, target_modules = "all-linear" },
  data = { train = "$fx/train.jsonl", eval = "eval_cat.jsonl", max_seq_length = 104 },
  train = { lr = 1e-3, epochs = 1, batch_size = 8 },
  eval = {
    generate = { max_new_tokens = 2 },
    metrics = { seen = function(pred, ex)
      assert(ex.reference:find(ex.completion, 1, true) == 1, "completion " .. tostring(ex.completion))
      return { [ex.category] = 1, index = ex.index }
    end },
  },
}
LUA
"$HONE" run cat.lua --set threads=1 > cat.log 2>&1
expect 0 "epoch 1: eval_loss .*seen.laptop 1" -- cat cat.log
expect 0 "epoch 1: eval_loss .*seen.tv 1" -- cat cat.log

# names JSON must escape, 40 names of 120 characters, and a NaN
cat > names.lua <<'LUA'
local spec = dofile("cat.lua")
spec.project = "names"
spec.eval.metrics = { m = function(pred, ex)
  local t = { ['say "hi"\\'] = 1, nan = 0 / 0 }
  for i = 1, 40 do t[string.rep("n", 118) .. string.format("%02d", i)] = i end
  return t
end }
return spec
LUA
"$HONE" run names.lua --set threads=1 > names.log 2>&1
expect 0 "41 metrics, every row JSON" -- python3 -c '
import json, sys, glob
rows = [json.loads(l) for l in open(glob.glob("runs/names-*/metrics.jsonl")[0])]
ev = [r for r in rows if r.get("split") == "eval"][0]
assert ev["m.say \"hi\"\\"] == 1 and ev["m.nan"] is None, ev
print(len([k for k in ev if k.startswith("m.")]) - 1, "metrics, every row JSON")'
# more values than a run keeps, or a name too long, is said, not cut
sed 's/for i = 1, 40 do/for i = 1, 70 do/' names.lua > many.lua
expect 1 "eval.metrics.m \(eval example [0-9]+\): returns more than 64 values" -- "$HONE" run many.lua --set threads=1
sed 's/string.rep("n", 118)/string.rep("n", 130)/' names.lua > long.lua
expect 1 "eval.metrics.m \(eval example [0-9]+\): the name \"n+\.\.\.\" is longer than 127 characters" -- "$HONE" run long.lua --set threads=1

# something in the way of RUN/best (a directory with a file in it): the run says so and goes on
cat > blocked.lua <<LUA
local spec = dofile("cat.lua")
spec.project = "blocked"
spec.hooks = { on_log = function(run, row)
  if row.split == "eval" then os.execute("mkdir -p '" .. run.dir .. "/best/x'") end
end }
return spec
LUA
expect 0 "warning: runs/blocked-[0-9_.-]+/best could not be pointed at checkpoints/epoch-1: (Is a directory|Directory not empty)" -- "$HONE" run blocked.lua --set threads=1
finish
