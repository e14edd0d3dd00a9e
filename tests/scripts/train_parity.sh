# train_parity.sh — 6 optimizer steps (batch 2 x grad_accum 2, AdamW with weight decay,
# cosine with warmup, clipping) from the fixture adapter give the adapter transformers'
# Trainer + peft gave (tests/reference/make_train_fixtures.py), within 1e-4 relative.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
fx="$HONE_SRC/tests/fixtures"
cat > parity.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "parity", output_dir = "runs", seed = 42,
  model = { path = "$fx/models/llama" },
  lora = { r = 4, alpha = 8, dropout = 0, target_modules = "all-linear", init_adapter = "$fx/models/llama/adapter" },
  data = { train = "$fx/train/train.jsonl", max_seq_length = 16, shuffle = false },
  train = { optimizer = { "adamw", weight_decay = 0.1 }, lr = 1e-3, scheduler = "cosine", warmup_steps = 2,
            max_grad_norm = 0.5, batch_size = 2, grad_accum = 2, max_steps = 6, log_every = 1 },
}
LUA
expect 0 "done: 6 steps" -- "$HONE" run parity.lua --set threads=1
run=$(ls -d runs/parity-* | head -1)
expect 0 "28 tensors; worst" -- "$HONE_BUILD/tests/st_diff" "$run/checkpoints/epoch-1/adapter_model.safetensors" "$fx/train/adapter_model.safetensors" 1e-4
# the logged losses are the Trainer's, within 1e-6 relative
grep -o '"loss": [0-9.]*' "$run/metrics.jsonl" | cut -d' ' -f2 > losses.txt
expect 0 "6 losses equal" -- awk 'NR == FNR { want[FNR] = $1; next }
  { d = ($1 - want[FNR]) / want[FNR]; if (d < 0) d = -d; if (d > 1e-6) { print "step " FNR ": " $1 " vs " want[FNR]; bad = 1 } }
  END { if (!bad && FNR == 6) print "6 losses equal"; else exit 1 }' "$fx/train/losses.txt" losses.txt
finish
