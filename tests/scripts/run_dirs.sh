# run_dirs.sh — `hone run` names and creates the run directory (config.json with every key
# resolved, a copy of the script); a run that fails (here: text records and a model
# directory without a tokenizer) says why and leaves a summary saying it failed.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
for i in $(seq 1 20); do echo "{\"text\": \"t$i\"}"; done > train.jsonl
mkdir m && cp "$HONE_SRC/tests/fixtures/models/llama/config.json" m/   # a config, no tokenizer
cat > exp.lua <<'LUA'
local hone = require("hone")
return hone.experiment {
  project = "pricer", output_dir = "out/runs",
  model = { path = "m" }, data = { train = "train.jsonl" },
  train = { optimizer = { "signsgd", momentum = 0.8 }, scheduler = "cosine", lr = 2e-4 },
}
LUA
expect 1 "run pricer-[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}\.[0-9]{2}\.[0-9]{2} failed: data.train: train.jsonl:1: text records need a tokenizer" -- "$HONE" run exp.lua --set lora.r=4
dir=$(ls -d out/runs/pricer-* | head -1)
[ -f "$dir/config.json" ] && [ -f "$dir/experiment.lua" ] && cmp -s exp.lua "$dir/experiment.lua" \
  && echo "ok: $dir has config.json and the script" || { echo "FAIL: run dir incomplete"; fails=$((fails+1)); }
python3 - "$dir/config.json" <<'PY' && echo "ok: config.json resolved" || fails=$((fails+1))
import json, sys
c = json.load(open(sys.argv[1]))
assert c["lora"]["r"] == 4 and c["lora"]["alpha"] == 8, c["lora"]
assert c["train"]["optimizer"]["options"] == {"momentum": 0.8, "weight_decay": 0}, c["train"]["optimizer"]
assert c["train"]["scheduler"]["options"]["num_cycles"] == 0.5
assert c["train"]["lr"] == 2e-4 and c["train"]["batch_size"] == 8
assert c["hone"]["version"] and c["hone"]["git_revision"] and c["hone"]["set"] == ["lora.r=4"]
assert c["hone"]["run_name"].startswith("pricer-")
PY
grep -q '"status":\s*"failed"' "$dir/summary.json" && echo "ok: summary.json says failed" || { echo "FAIL: summary"; fails=$((fails+1)); }

# runs started in the same second get distinct names
rm -rf out
for k in 1 2 3 4; do "$HONE" run exp.lua > /dev/null 2>&1 & done
wait
n=$(ls out/runs | wc -l); u=$(ls out/runs | sort -u | wc -l)
[ "$n" = 4 ] && [ "$u" = 4 ] && echo "ok: 4 concurrent runs, 4 dirs: $(ls out/runs | tr '\n' ' ')" \
  || { echo "FAIL: $n dirs for 4 runs"; fails=$((fails+1)); }
ls out/runs | grep -Eq -- '_[0-9]{2}\.[0-9]{2}\.[0-9]{2}-2$' && echo "ok: a -2 suffix was used" \
  || echo "note: the 4 runs did not share a second; the unit test covers the suffix"

expect 2 "\-\-resume nowhere: no such run directory" -- "$HONE" run exp.lua --resume nowhere
expect 2 "\-\-resume latest: the experiment differs from the run.s config.json at train.lr" -- "$HONE" run exp.lua --resume latest --set train.lr=0.5
expect 2 "project: \"a/b\" cannot name a run directory" -- "$HONE" run exp.lua --set project=a/b
expect 2 "run: unknown option --dryrun \(did you mean --dry-run\?\)" -- "$HONE" run exp.lua --dryrun
# one parser for every command: --name=value, a missing value, a flag given a value, a range
expect 0 "dry run: nothing was created" -- "$HONE" run exp.lua --dry-run --set=train.lr=0.01
expect 2 "run: --resume needs a value" -- "$HONE" run exp.lua --resume
expect 2 "run: --dry-run takes no value" -- "$HONE" run exp.lua --dry-run=yes
expect 2 "run: unexpected argument other.lua" -- "$HONE" run exp.lua other.lua
expect 2 "inspect: --n -1: must be an integer in \[0, 1000000\]" -- "$HONE" inspect exp.lua --n=-1
expect 0 "  inspect SCRIPT.lua \[--n N\]" -- "$HONE" inspect --help
expect 2 "usage: hone run" -- "$HONE" run
expect 2 "exp.lua: no such script" -- "$HONE" run nothere/exp.lua
expect 2 "usage: hone convert MODEL.gguf OUT_DIR" -- "$HONE" convert
expect 1 "convert: nowhere.gguf: cannot open" -- "$HONE" convert nowhere.gguf out
expect 2 "unknown command 'frobnicate'" -- "$HONE" frobnicate
finish
