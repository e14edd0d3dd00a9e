# sft_replay.sh — hone replays a TRL SFTTrainer QLoRA run step for step
# (tests/reference/make_sft_fixtures.py: TRL 1.16, transformers 5.24, peft 0.21,
# bitsandbytes 0.50.2): from the adapter PEFT initialised and in the order TRL's
# group_by_length sampler drew, every step's loss within 1e-5 and grad_norm within 1e-4
# (relative), each epoch's eval loss within 1e-5 of TRL's forwards, the final adapter
# within 1e-4. Then the order file's refusals.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
fx="$HONE_SRC/tests/fixtures/sft"
cat > replay.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "replay", output_dir = "runs", seed = 42,
  model = { path = "$fx/model", quantizer = { "nf4", double_quant = true } },
  lora = { r = 8, alpha = 16, dropout = 0, target_modules = "all-linear", init_adapter = "$fx/init" },
  data = { train = "$fx/train.jsonl", eval = "$fx/eval.jsonl", max_seq_length = 104,
           order_file = "$fx/order.txt" },
  train = { optimizer = "paged_adamw_32bit", lr = 2e-3, scheduler = "cosine", warmup_ratio = 0.1,
            max_grad_norm = 1.0, batch_size = 4, grad_accum = 2, epochs = 2, log_every = 1 },
}
LUA
expect 0 "3 train and 3 eval examples dropped: truncation to 104 tokens left no completion token" -- \
  "$HONE" run replay.lua --set threads=1
run=$(ls -d runs/replay-* | head -1)
expect 0 "replayed: 12 steps" -- "$HONE_BUILD/tests/replay_check" "$fx/trl.json" "$fx/order.txt" "$run/metrics.jsonl" 1e-5 1e-4
"$HONE_BUILD/tests/replay_check" "$fx/trl.json" "$fx/order.txt" "$run/metrics.jsonl" 1e-5 1e-4 | tail -16
expect 0 "tensors; worst" -- "$HONE_BUILD/tests/st_diff" "$run/checkpoints/epoch-2/adapter_model.safetensors" "$fx/final/adapter_model.safetensors" 1e-4

# the check can fail: a 1% higher learning rate moves the loss from step 3 on (steps 1-2 learn
# nothing: lr 0, then B = 0 gives A no gradient)
"$HONE" run replay.lua --set threads=1 --set train.lr=2.02e-3 > /dev/null
other=$(ls -d runs/replay-* | sed -n 2p)
expect 1 "first step that differs: 3" -- "$HONE_BUILD/tests/replay_check" "$fx/trl.json" "$fx/order.txt" "$other/metrics.jsonl" 1e-5 1e-4

# the order file, refused with its file and line named
printf '0 2 3\n' > short.txt
expect 1 "short.txt:1: names 3 of the 41 training examples \(record 4 is missing\)" -- "$HONE" run replay.lua --set data.order_file=short.txt
printf '0 0\n' > twice.txt
expect 1 "twice.txt:1: record 0 appears twice" -- "$HONE" run replay.lua --set data.order_file=twice.txt
printf '0 x7\n' > word.txt
expect 1 'word.txt:1: "x7" is not a record number' -- "$HONE" run replay.lua --set data.order_file=word.txt
printf '0 1\n' > dropped.txt
expect 1 "dropped.txt:1: record 1 is not a training example" -- "$HONE" run replay.lua --set data.order_file=dropped.txt
printf '44\n' > range.txt
expect 1 "range.txt:1: record 44 is out of range: the run reads 44 records of data.train" -- "$HONE" run replay.lua --set data.order_file=range.txt
head -1 "$fx/order.txt" > one.txt
expect 1 "one.txt: 1 epoch of order for a run of 2 epochs" -- "$HONE" run replay.lua --set data.order_file=one.txt
expect 1 "data.order_file: .*nope.txt: cannot open" -- "$HONE" run replay.lua --set data.order_file=nope.txt
expect 2 "data.group_by_length = true would reorder it" -- "$HONE" run replay.lua --set data.group_by_length=true
finish
