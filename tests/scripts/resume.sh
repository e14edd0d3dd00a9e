# resume.sh — a run killed with SIGKILL in epoch 2, or stopped with Ctrl-C, continues with
# --resume to the same adapter bytes as a run that was never stopped; a half-written
# checkpoint is never picked up.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
model="$HONE_SRC/tests/fixtures/models/llama"
# 3000 records: an epoch of ~190 steps, long enough to stop inside
awk 'BEGIN { srand(5); for (i = 0; i < 3000; i++) { n = 6 + i % 7; s = "";
       for (k = 0; k < n; k++) s = s (k ? ", " : "") int(rand() * 96);
       print "{\"input_ids\": [" s "]}" } }' > train.jsonl
cat > exp.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "res", output_dir = "runs", seed = 11, threads = 1,
  model = { path = "$model" },
  lora = { r = 4, alpha = 8, dropout = 0.1, target_modules = "all-linear" },
  data = { train = "train.jsonl", eval_fraction = 0.01, max_seq_length = 16 },
  train = { optimizer = { "adamw", weight_decay = 0.01 }, lr = 1e-3, scheduler = "cosine", warmup_ratio = 0.1,
            epochs = 2, batch_size = 8, grad_accum = 2, log_every = 1 },
}
LUA
expect 0 "done: 372 steps" -- "$HONE" run exp.lua --set output_dir=straight
ref=$(ls -d straight/res-*/checkpoints/epoch-2)
# a run made with --set output_dir=D resumes from D/<run> without repeating the --set (the
# directory says where the run is); a changed recipe is still refused
straight_run=$(dirname "$(dirname "$ref")")
expect 0 "resuming from straight/res-.*/checkpoints/epoch-2" -- "$HONE" run exp.lua --resume "$straight_run"
expect 2 "the experiment differs from the run's config.json at train.lr" -- \
  "$HONE" run exp.lua --resume "$straight_run" --set train.lr=2e-3
[ ! -e runs ] && echo "ok: resuming straight/<run> wrote nothing under runs/" || { echo "FAIL: runs/ created"; fails=$((fails+1)); }

# SIGKILL in the middle of epoch 2
"$HONE" run exp.lua > kill.log 2>&1 &
pid=$!
until grep -q '"step": 200,' runs/res-*/metrics.jsonl 2>/dev/null; do sleep 0.01; done
kill -9 $pid; wait $pid 2>/dev/null
run=$(ls -d runs/res-*)
[ -d "$run/checkpoints/epoch-1" ] && [ ! -d "$run/checkpoints/epoch-2" ] && echo "ok: killed inside epoch 2" \
  || { echo "FAIL: the kill did not land inside epoch 2"; fails=$((fails+1)); }
# a checkpoint caught half-written (no state.zst yet) and a temp dir must be ignored
mkdir -p "$run/checkpoints/.tmp-epoch-2" "$run/checkpoints/step-999"
echo '{"global_step": 999}' > "$run/checkpoints/step-999/trainer_state.json"
expect 0 "resuming from .*checkpoints/epoch-1: step 186, epoch 2" -- sh -c "\"$HONE\" run exp.lua --resume latest | tee resume.log"
# the figures cover the whole run: the seconds before the kill came back with the checkpoint
after=$(sed -n 's/.*(\([0-9.]*\) s after resuming at step 186;.*/\1/p' resume.log)
total=$(sed -n 's/.*"wall_s":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$run/summary.json")
awk -v a="$after" -v t="$total" 'BEGIN { exit !(a > 0 && t > a + 0.05) }' \
  && echo "ok: summary wall_s $total s includes the $after s after resuming and the time before" \
  || { echo "FAIL: wall after resuming '$after', summary wall_s '$total'"; fails=$((fails+1)); }
cmp "$ref/adapter_model.safetensors" "$run/checkpoints/epoch-2/adapter_model.safetensors" \
  && echo "ok: killed + resumed adapter is byte-identical to the straight run" \
  || { echo "FAIL: resumed adapter differs"; fails=$((fails+1)); }
n=$(grep -c '"step"' "$run/metrics.jsonl")
[ "$n" = "374" ] && echo "ok: metrics.jsonl has each step once (372 + 2 eval rows)" \
  || { echo "FAIL: metrics.jsonl has $n rows"; fails=$((fails+1)); }

# Ctrl-C: the step finishes, a checkpoint is written, exit 130; resume continues mid-epoch
rm -rf runs
"$HONE" run exp.lua > int.log 2>&1 &
pid=$!
until grep -q '"step": 100,' runs/res-*/metrics.jsonl 2>/dev/null; do sleep 0.01; done
kill -INT $pid; wait $pid; code=$?
run=$(ls -d runs/res-*)
[ "$code" = 130 ] && grep -q "interrupted: checkpoint .*step-" int.log && grep -q '"status":\s*"interrupted"' "$run/summary.json" \
  && echo "ok: Ctrl-C checkpointed and exited 130" || { echo "FAIL: Ctrl-C: exit $code"; cat int.log | tail -3; fails=$((fails+1)); }
expect 0 "resuming from .*checkpoints/step-[0-9]+: step [0-9]+, epoch 1 \(mid-epoch\)" -- "$HONE" run exp.lua --resume "$run"
cmp "$ref/adapter_model.safetensors" "$run/checkpoints/epoch-2/adapter_model.safetensors" \
  && echo "ok: interrupted + resumed mid-epoch adapter is byte-identical" \
  || { echo "FAIL: mid-epoch resumed adapter differs"; fails=$((fails+1)); }
# a state from before the counter-based dropout stream (HONESTA2) is refused where the run
# draws dropout masks, naming why, and loads where it draws nothing random
old=$(mktemp -d "$TMP/old-XXXX")
cp -r "$straight_run" "$old/"
orun="$old/$(basename "$straight_run")"
for st in "$orun"/checkpoints/*/state.zst; do
  # through a file: a frame from a pipe lacks the content size hone checks
  zstd -q -d -c "$st" | { printf 'HONESTA2'; tail -c +9; } > "$st.raw" && zstd -q -f "$st.raw" -o "$st" && rm "$st.raw"
done
expect 1 "written by a hone whose dropout and NEFTune streams were not yet counter-based \(HONESTA2\)" -- \
  "$HONE" run exp.lua --resume "$orun"
sed -i 's/"dropout":[[:space:]]*0.1/"dropout": 0/' "$orun/config.json"
expect 0 "resuming from .*epoch-2" -- "$HONE" run exp.lua --resume "$orun" --set lora.dropout=0
finish
