# quickstart.sh — the quick example fits its price model, and the README's main job
# (experiments/pricer.lua) is a valid experiment with the plan it documents. The demo model
# is fetched by scripts/fetch_model, which tests do not run: a dry run reads only the
# model's config.json, so the checks run beside a stand-in directory holding one, and
# without it the dry run names what is missing.
. "$(dirname "$0")/lib.sh"
cd "$HONE_SRC" || exit 1
expect 0 "largest error 0\.0[0-9]+; optimizer state 128 bytes; a save/reload at step 200 gave identical parameters" -- "$HONE" run experiments/quickstart.lua
cd "$TMP" || exit 1
ln -s "$HONE_SRC/experiments" experiments
expect 2 "pricer.lua: model.path: models/SmolLM2-135M-Instruct/config.json: cannot open" -- "$HONE" run experiments/pricer.lua --dry-run
mkdir -p models/SmolLM2-135M-Instruct
cp "$HONE_SRC/tests/fixtures/models/llama/config.json" models/SmolLM2-135M-Instruct/
expect 0 "optimizer steps         120" -- "$HONE" run experiments/pricer.lua --dry-run
expect 0 "train examples          320 \(of 1200 records" -- "$HONE" run experiments/pricer.lua --dry-run
# the pricer sweep: six members, each accepted
expect 0 "pricer-<timestamp>-r32-lr3e-04-alpha64: ok" -- "$HONE" run experiments/pricer_sweep.lua --dry-run
expect 0 "dry run: 0 of 6 members would be refused" -- "$HONE" run experiments/pricer_sweep.lua --dry-run
[ ! -e runs ] && echo "ok: the dry runs created nothing" || { echo "FAIL: runs/ created"; fails=$((fails+1)); }
finish
