# quickstart.sh — the README's main job runs and fits its price model.
. "$(dirname "$0")/lib.sh"
cd "$HONE_SRC" || exit 1
expect 0 "largest error 0\.0[0-9]+; optimizer state 128 bytes; a save/reload at step 200 gave identical parameters" -- "$HONE" run experiments/quickstart.lua
finish
