# quickstart.sh — the quick example fits its price model, and the README's main job
# (experiments/pricer.lua) is a valid experiment with the plan it documents (the demo
# model itself is fetched by scripts/fetch_model, which tests do not need).
. "$(dirname "$0")/lib.sh"
cd "$HONE_SRC" || exit 1
expect 0 "largest error 0\.0[0-9]+; optimizer state 128 bytes; a save/reload at step 200 gave identical parameters" -- "$HONE" run experiments/quickstart.lua
expect 0 "optimizer steps         120" -- "$HONE" run experiments/pricer.lua --dry-run
expect 0 "train examples          320 \(of 1200 records" -- "$HONE" run experiments/pricer.lua --dry-run
# the pricer sweep: six members, each accepted by the schema
expect 0 "pricer-<timestamp>-r32-lr3e-04-alpha64: ok" -- "$HONE" run experiments/pricer_sweep.lua --dry-run
expect 0 "dry run: 0 of 6 members would be refused" -- "$HONE" run experiments/pricer_sweep.lua --dry-run
finish
