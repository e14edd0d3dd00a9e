# train_tiny.sh — `hone run` trains the tiny fixture model on pre-tokenized records: the
# loss goes down, every epoch leaves a PEFT adapter checkpoint, an adapter can seed a new
# run, full fine-tuning saves the weights, and bad records are refused by file and line.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
model="$HONE_SRC/tests/fixtures/models/llama"
# 64 arithmetic sequences a, a+3, a+6, ... (mod 96): learnable; the first two labels masked
for i in $(seq 0 63); do
  a=$(( (i * 37) % 8 )); n=$(( 8 + i % 5 )); ids=""; labels="-100, -100"
  for k in $(seq 0 $((n - 1))); do
    v=$(( (a + 3 * k) % 96 )); ids="$ids${ids:+, }$v"; [ "$k" -ge 2 ] && labels="$labels, $v"
  done
  echo "{\"input_ids\": [$ids], \"labels\": [$labels]}"
done > train.jsonl
cat > exp.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "tiny", output_dir = "runs", seed = 3,
  model = { path = "$model" },
  lora = { r = 8, alpha = 16, dropout = 0.05, target_modules = "all-linear" },
  data = { train = "train.jsonl", eval_fraction = 0.125, max_seq_length = 12 },
  train = { optimizer = { "adamw", weight_decay = 0.01 }, lr = 2e-3, scheduler = "cosine", warmup_ratio = 0.1,
            epochs = 4, batch_size = 8, grad_accum = 2, log_every = 2 },
}
LUA
expect 0 "done: 16 steps" -- "$HONE" run exp.lua
expect 0 "backend cpu: avx2[ ;]" -- env HONE_CPU_ISA=avx2 "$HONE" run exp.lua --set train.max_steps=1
run=$(ls -d runs/tiny-* | head -1)
first=$(grep -m1 '"loss"' "$run/metrics.jsonl" | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
last=$(grep '"loss"' "$run/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.7) }' && echo "ok: loss $first -> $last" \
  || { echo "FAIL: loss did not go down: $first -> $last"; fails=$((fails+1)); }
for e in 1 2 3 4; do
  for f in adapter_model.safetensors adapter_config.json trainer_state.json; do
    [ -f "$run/checkpoints/epoch-$e/$f" ] || { echo "FAIL: missing epoch-$e/$f"; fails=$((fails+1)); }
  done
done
grep -q '"split": "eval"' "$run/metrics.jsonl" && grep -q '"status":\s*"completed"' "$run/summary.json" \
  && echo "ok: eval rows and a completed summary" || { echo "FAIL: metrics/summary"; fails=$((fails+1)); }
ls runs/*/checkpoints | grep -q '^\.tmp' && { echo "FAIL: a temp checkpoint was left"; fails=$((fails+1)); }

expect 0 "done: 2 steps" -- "$HONE" run exp.lua --set train.neftune_noise_alpha=5 --set train.max_steps=2
expect 0 "done: 2 steps" -- "$HONE" run exp.lua --set data.padding=max_length --set train.max_steps=2
# every optimizer trains through the same loop and reports its state at start
# (the tiny model's LoRA tensors are all under bitsandbytes' 4096-element floor: fp32 state)
expect 0 "optimizer adamw_8bit: 139264 bytes of state \(8\.00 per trainable parameter\)" -- "$HONE" run exp.lua --set train.optimizer=adamw_8bit --set train.max_steps=2
expect 0 "optimizer adamw_8bit: [0-9]+ bytes of state \(2\.[0-9]+ per trainable parameter\)" -- "$HONE" run exp.lua --set train.optimizer=adamw_8bit --set train.optimizer.min_8bit_size=64 --set train.max_steps=2
for o in adamw adamw_torch paged_adamw_32bit adamw_bnb_8bit paged_adamw_8bit sgd lion adafactor; do
  expect 0 "optimizer $o: [0-9]+ bytes of state" -- "$HONE" run exp.lua --set train.optimizer=$o --set train.max_steps=2
done
expect 0 "done: 2 steps" -- "$HONE" run exp.lua --set train.optimizer=paged_adamw_8bit --set train.optimizer.state_dir="$TMP" --set train.max_steps=2
expect 1 "train.optimizer paged_adamw_32bit: state_dir $TMP/nope: cannot create the state file: No such file" -- "$HONE" run exp.lua --set train.optimizer=paged_adamw_32bit --set train.optimizer.state_dir="$TMP/nope" --set train.max_steps=2

# eval.every = { steps = N }: evaluation rows inside epochs, best/ may point at a step checkpoint
cat > evs.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "evs", output_dir = "evs", seed = 3, model = { path = "$model" },
  data = { train = "train.jsonl", eval_fraction = 0.125, max_seq_length = 12 },
  train = { epochs = 2, batch_size = 4 }, eval = { every = { steps = 5 } },
}
LUA
expect 0 "step 5: eval_loss [0-9.]+" -- "$HONE" run evs.lua
e=$(ls -d evs/evs-*)
n=$(grep -c '"split": "eval"' "$e/metrics.jsonl")
[ "$n" = 7 ] && [ -L "$e/best" ] && [ -d "$e/$(readlink "$e/best")" ] \
  && echo "ok: 7 evaluations (steps 5, 10, 15, 20, 25 and both epoch ends), best -> $(readlink "$e/best")" \
  || { echo "FAIL: eval.every: $n eval rows"; fails=$((fails+1)); }
# hooks: on_log with every metrics row, on_epoch_end after each checkpoint; a failing hook
# stops the run with its traceback after a checkpoint
cat > hooks.lua <<LUA
local hone = require("hone")
local logs, ends = 0, 0
return hone.experiment {
  project = "hk", output_dir = "hk", seed = 3, model = { path = "$model" },
  data = { train = "train.jsonl", eval_fraction = 0.125, max_seq_length = 12 },
  train = { epochs = 2, batch_size = 8, log_every = 2 },
  hooks = {
    on_log = function(run, row)
      logs = logs + 1
      if row.split == "eval" then print(("hook: %s eval_loss %.4f at step %d"):format(run.name, row.eval_loss, row.step)) end
    end,
    on_epoch_end = function(run, r)
      ends = ends + 1
      print(("hook: epoch %d ended, checkpoint %s, best %s, %d rows logged so far"):format(r.epoch, r.checkpoint, r.best, logs))
    end,
  },
}
LUA
expect 0 "hook: epoch 2 ended, checkpoint epoch-2, best epoch-[12], 9 rows logged so far" -- "$HONE" run hooks.lua
expect 0 "hook: hk-[0-9_.-]+ eval_loss [0-9.]+ at step 7" -- "$HONE" run hooks.lua
sed 's/logs = logs + 1/logs = logs + 1; if logs == 3 then error("boom in the hook") end/' hooks.lua > hookbad.lua
expect 1 "hooks.on_log: hookbad.lua:9: boom in the hook" -- "$HONE" run hookbad.lua
expect 1 "stack traceback" -- "$HONE" run hookbad.lua
hb=$(ls -td hk/hk-*/ | head -1)
ls "$hb/checkpoints" | grep -q '^step-' && echo "ok: a checkpoint was written before stopping for the hook" \
  || { echo "FAIL: no checkpoint after the failed hook"; fails=$((fails+1)); }
# hone.train from Lua: runs chain, each returning its run table
cat > chain.lua <<LUA
local hone = require("hone")
local spec = {
  project = "chain", output_dir = "chain", seed = 3, model = { path = "$model" },
  lora = { r = 4, alpha = 8, target_modules = "all-linear" },
  data = { train = "train.jsonl", eval_fraction = 0.125, max_seq_length = 12 },
  train = { epochs = 2, batch_size = 8 },
}
local first = hone.train(spec)
assert(first.status == "completed", first.status)
assert(#first.history == 4, "history rows: " .. #first.history)
spec.lora.init_adapter = first.best.dir
spec.train.epochs = 1
local second = hone.train(spec)
print(("chained: %s best %s %.4f -> %s %s, %d steps"):format(first.name, first.best.checkpoint, first.best.value,
  second.name, second.status, second.steps))
local ok, msg = pcall(hone.train, { project = "chain", model = { path = "$model" } })
print("bad spec: " .. tostring(msg))
-- opts.log receives every line the run prints (nothing else reaches the terminal)
local lines, done = {}, nil
local third = hone.train(spec, { log = function(level, line)
  lines[#lines + 1] = level .. ": " .. line
  if line:match("^done: ") then done = line end
end })
print(("captured %d lines, the last %s, done line %s"):format(#lines, lines[#lines], tostring(done ~= nil)))
assert(third.status == "completed" and third.dir:match("chain/chain%-"), third.status)
-- a log function that raises stops the run at its next hook, with a checkpoint
local bad = hone.train(spec, { log = function() error("log sink gone") end })
print("failing log: " .. bad.status .. " " .. tostring(bad.error))
print("log not a function: " .. select(2, pcall(hone.train, spec, { log = "stdout" })))
LUA
expect 0 "chained: chain-[0-9_.-]+ best epoch-[12] [0-9.]+ -> chain-[0-9_.-]+ completed, 7 steps" -- "$HONE" run chain.lua
expect 0 "bad spec: .*data.train: missing required key" -- "$HONE" run chain.lua
expect 0 "captured [0-9]+ lines, the last info: done: 7 steps.*, done line true" -- "$HONE" run chain.lua
"$HONE" run chain.lua > chain.out 2>&1
n=$(grep -c "^plan: [0-9]* optimizer steps" chain.out)
[ "$n" = 2 ] && echo "ok: the captured run printed nothing (2 of 3 runs on stdout)" \
  || { echo "FAIL: plan lines on stdout: $n, wanted 2"; fails=$((fails+1)); }
expect 0 "failing log: failed log: .*log sink gone" -- "$HONE" run chain.lua
expect 0 "log not a function: .*hone.train: opts.log must be a function\(level, line\), got string" -- "$HONE" run chain.lua
# save.keep keeps the newest and the best; best/ points at the best epoch
expect 0 "done: 16 steps" -- "$HONE" run exp.lua --set output_dir=keep --set save.keep=1
kdir=$(ls -d keep/tiny-*)
best=$(readlink "$kdir/best")
n=$(ls "$kdir/checkpoints" | wc -l)
{ [ -d "$kdir/$best" ] && [ -d "$kdir/checkpoints/epoch-4" ] && [ "$n" -le 2 ]; } \
  && echo "ok: save.keep=1 left $(ls "$kdir/checkpoints" | tr '\n' ' ')and best -> $best" \
  || { echo "FAIL: save.keep / best: $n checkpoints, best -> $best"; fails=$((fails+1)); }
# early stopping, and too many NaN steps
expect 0 "early stopping: eval_loss has not improved" -- "$HONE" run exp.lua --set output_dir=es --set eval.early_stopping.patience=1 --set eval.early_stopping.threshold=10
grep -q '"status":\s*"stopped_early"' es/tiny-*/summary.json && echo "ok: summary says stopped_early" \
  || { echo "FAIL: summary status"; fails=$((fails+1)); }
expect 1 "10 steps had a NaN or Inf loss or gradient; stopped" -- "$HONE" run exp.lua --set output_dir=nan --set train.optimizer=sgd --set train.lr=1e30 --set train.epochs=20
# an adapter seeds a new run; a mismatched one is refused
expect 0 "done: 4 steps" -- "$HONE" run exp.lua --set lora.init_adapter="$run/checkpoints/epoch-4" --set train.max_steps=4
expect 1 "lora.init_adapter: .*adapter r = 8 but lora.r = 4" -- "$HONE" run exp.lua --set lora.init_adapter="$run/checkpoints/epoch-4" --set lora.r=4

# full fine-tuning writes the weights under their HF names
expect 0 "full fine-tuning, [0-9]+ trainable parameters" -- "$HONE" run exp.lua --set lora=false --set train.max_steps=2
ls runs/*/checkpoints/epoch-1/model.safetensors > /dev/null 2>&1 && echo "ok: full fine-tuning checkpoint" \
  || { echo "FAIL: no model.safetensors"; fails=$((fails+1)); }

# bad records name the file and line
good='{"input_ids": [1, 2, 3]}'
printf '%s\n%s\n{"text": "hello"}\n' "$good" "$good" > text.jsonl
expect 1 "text.jsonl:3: text records need a tokenizer: the model directory has no tokenizer.json \\(set model.tokenizer\\)" -- "$HONE" run exp.lua --set data.train=text.jsonl
printf '%s\n%s\n{"input_ids": [1, 2, 300]}\n' "$good" "$good" > oov.jsonl
expect 1 "oov.jsonl:3: input_ids\[2\] = 300 is not a token id in \[0, 96\)" -- "$HONE" run exp.lua --set data.train=oov.jsonl
printf '%s\n%s\n{"input_ids": [1, 2, 3], "labels": [1, 2]}\n' "$good" "$good" > short.jsonl
expect 1 "short.jsonl:3: 2 labels for 3 input_ids" -- "$HONE" run exp.lua --set data.train=short.jsonl
# text records through a tokenizer (the fixture model's 96-token vocabulary is synth-tiny's)
mkdir tok && cp "$HONE_SRC/tests/fixtures/tokenizers/synth-tiny/tokenizer.json" tok/
echo '{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}' > tok/tokenizer_config.json
for i in $(seq 1 40); do
  echo "{\"text\": \"item $i costs $((i * 7 % 50)) dollars\"}"
  echo "{\"prompt\": \"item $i costs \", \"completion\": \"$((i * 7 % 50)) dollars\"}" >> pc.jsonl
  echo "{\"text\": \"item $i ### Answer: $((i * 7 % 50))\"}" >> tmpl.jsonl
done > text.jsonl
echo '{"note": "no known field"}' >> text.jsonl
echo '{"text": ""}' >> text.jsonl
t="--set model.tokenizer=tok --set train.max_steps=2 --set data.max_seq_length=64"
expect 0 "collator lm: 100.0% of [0-9]+ tokens trained" -- "$HONE" run exp.lua --set data.train=text.jsonl $t
expect 0 "skipped 2 records: 1 without a text / prompt\+completion / messages / input_ids field, 1 empty \(first: text.jsonl:41\)" -- "$HONE" run exp.lua --set data.train=text.jsonl $t
expect 0 "collator completion_only: [1-6][0-9]\.[0-9]% of [0-9]+ tokens trained" -- "$HONE" run exp.lua --set data.train=pc.jsonl $t
expect 0 "collator lm: 100.0%" -- "$HONE" run exp.lua --set data.train=pc.jsonl --set collator=lm $t
expect 0 "collator completion_only: [0-9]+\.[0-9]% of" -- "$HONE" run exp.lua --set data.train=tmpl.jsonl --set collator=completion_only --set "collator.response_template=### Answer:" $t
expect 1 "collator completion_only: 40 of 40 examples \(100%\) lack the response template, more than max_missing_fraction = 0.5" -- "$HONE" run exp.lua --set data.train=tmpl.jsonl --set collator=completion_only --set "collator.response_template=### Reply:" $t
expect 1 "completion_only: this record has no prompt/completion fields and no response_template" -- "$HONE" run exp.lua --set data.train=text.jsonl --set collator=completion_only $t
# the token cache: a second run over the same data and tokenizer reads the tokens back
# and trains identically; a changed file or a damaged cache file is tokenized again
rm -rf runs/.cache
expect 0 "data.train: 40 records tokenized in" -- "$HONE" run exp.lua --set data.train=pc.jsonl $t
first_loss=$(grep -h '"loss"' $(ls -td runs/tiny-*/ | head -1)metrics.jsonl | tail -1 | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
expect 0 "data.train: 40 examples from the token cache" -- "$HONE" run exp.lua --set data.train=pc.jsonl $t
again=$(grep -h '"loss"' $(ls -td runs/tiny-*/ | head -1)metrics.jsonl | tail -1 | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
[ "$first_loss" = "$again" ] && echo "ok: cached tokens train identically ($again)" || { echo "FAIL: loss $first_loss vs $again from the cache"; fails=$((fails+1)); }
for f in runs/.cache/tokens/*.tokens.zst; do printf 'garbage' > "$f"; done
expect 0 "data.train: 40 records tokenized in" -- "$HONE" run exp.lua --set data.train=pc.jsonl $t
{ cat pc.jsonl; echo '{"prompt": "one more ", "completion": "record"}'; } > pc2.jsonl
expect 0 "data.train: 41 records tokenized in" -- "$HONE" run exp.lua --set data.train=pc2.jsonl $t
expect 0 "data.train: 40 records tokenized in" -- "$HONE" run exp.lua --set data.train=pc2.jsonl --set data.limit=40 $t
expect 0 "hone.metrics: all checks passed" -- "$HONE" run "$HONE_SRC/tests/scripts/metrics_check.lua"
# generation metrics: greedy predictions from each eval prompt, exact_match and Lua metrics
cat > gen.lua <<LUA
local hone = require("hone")
local metrics = require("hone.metrics")
return hone.experiment {
  project = "gen", output_dir = "runs", seed = 3,
  model = { path = "$model", tokenizer = "tok" },
  data = { train = "pc.jsonl", eval_fraction = 0.2, max_seq_length = 64 },
  train = { epochs = 2, batch_size = 4 },
  eval = { generate = { max_new_tokens = 6 },
           metrics = { price = metrics.price_metrics, chars = function(p, ex) return #p end },
           best = { metric = "price.parsed", mode = "max" } },
}
LUA
expect 0 "epoch 2: eval_loss [0-9.]+  exact_match [0-9.]+ .*chars [0-9.]+" -- "$HONE" run gen.lua
g=$(ls -d runs/gen-* | tail -1)
rows=$(wc -l < "$g/eval/epoch-2.jsonl")
[ "$rows" = 8 ] && grep -q '"prompt":"item' "$g/eval/epoch-2.jsonl" && grep -q '"reference":' "$g/eval/epoch-2.jsonl" \
  && grep -q '"chars":' "$g/metrics.jsonl" && grep -q '"best_metric":[[:space:]]*"price.parsed"' "$g/summary.json" \
  && grep -q '<svg class="loss"' "$g/report.html" && grep -q '<th>price.abs_error</th>' "$g/report.html" \
  && echo "ok: eval/epoch-2.jsonl has 8 predictions; metrics rows, summary and report.html carry the metrics" \
  || { echo "FAIL: generation eval files ($rows rows)"; fails=$((fails+1)); }
expect 0 "gen-[0-9_.-]+ +completed +16 +2 +[0-9.]+  epoch-[12] \(price.parsed [0-9.]+\)" -- "$HONE" runs runs
expect 2 "runs: nowhere: No such file or directory" -- "$HONE" runs nowhere
# hone eval: the experiment's evaluation on a checkpoint gives the run's own numbers
want=$(grep '"split": "eval", "epoch": 2' "$g/metrics.jsonl" | sed 's/.*"eval_loss": \([0-9.]*\).*/\1/')
want4=$(awk -v x="$want" 'BEGIN { printf "%.4f", x }')
expect 0 "epoch-2: 8 examples, eval_loss $want4  exact_match" -- "$HONE" eval gen.lua --adapter "$g/checkpoints/epoch-2" --out preds.jsonl
cmp -s preds.jsonl "$g/eval/epoch-2.jsonl" && echo "ok: hone eval's predictions equal the run's epoch-2 predictions" \
  || { echo "FAIL: hone eval predictions differ from the run's"; diff preds.jsonl "$g/eval/epoch-2.jsonl" | head -20; fails=$((fails+1)); }
expect 2 "eval: --adapter DIR is required" -- "$HONE" eval gen.lua
expect 1 "nope: no adapter_config.json" -- "$HONE" eval gen.lua --adapter nope
sed 's/metric = "price.parsed"/metric = "nope"/' gen.lua > gen2.lua
expect 1 "eval.best.metric = \"nope\": no evaluation of the run computed it \(the last computed eval_loss, exact_match, chars, price.hit" -- "$HONE" run gen2.lua
sed 's/return #p end/return "x" end/' gen.lua > gen3.lua
expect 1 "eval.metrics.chars \(eval example [0-9]+\): must return a number or a table of numbers, got string" -- "$HONE" run gen3.lua
# packing: best-fit rows of max_seq_length, attention inside documents
expect 0 "packing: 35 examples into [0-9]+ rows of 64 tokens \([0-9]+\.[0-9]% filled" -- "$HONE" run exp.lua --set data.train=text.jsonl --set data.packing=true $t
expect 0 "packing efficiency [0-9]+\.[0-9]% \([0-9]+ rows of 64 for 35 examples" -- "$HONE" inspect exp.lua --set data.train=text.jsonl --set data.packing=true $t --n 0
# hone inspect shows what the run would train, marked
expect 0 "<s> item [0-9]+ costs \[\[[0-9]+ dollars</s>\]\]" -- "$HONE" inspect exp.lua --set data.train=pc.jsonl --set data.eval_fraction=0.1 $t --n 3
expect 0 "stats \(train\): 36 examples, [0-9]+ tokens, [0-9.]+% trained; 0 examples with no trained token; 0 lacking" -- "$HONE" inspect exp.lua --set data.train=pc.jsonl $t --set data.eval_fraction=0.1 --n 0
expect 0 "stats \(eval\): 4 examples" -- "$HONE" inspect exp.lua --set data.train=pc.jsonl $t --set data.eval_fraction=0.1 --n 1 --split eval
expect 0 "<s> item [0-9]+ ### Answer:\[\[ [0-9]+</s>\]\]" -- "$HONE" inspect exp.lua --set data.train=tmpl.jsonl --set collator=completion_only --set "collator.response_template=### Answer:" $t --n 1
sed 's/ eval_fraction = 0.125,//' exp.lua > noeval.lua
expect 1 "--split eval: the experiment has no eval data" -- "$HONE" inspect noeval.lua $t --split eval
expect 2 "inspect: --split test: expected train.eval" -- "$HONE" inspect exp.lua --split test
# chat records: the template by the tokenizer (synth-tiny has <s> only: llama2), loss on assistant turns
for i in $(seq 1 20); do
  echo "{\"messages\": [{\"role\": \"user\", \"content\": \"item $i?\"}, {\"role\": \"assistant\", \"content\": \"$((i * 7 % 50)) dollars\"}]}"
done > chat.jsonl
expect 0 "collator chat: [1-6][0-9]\.[0-9]% of [0-9]+ tokens trained" -- "$HONE" run exp.lua --set data.train=chat.jsonl $t
# (synth-tiny has no "N": it decodes as <unk>)
expect 0 "<s> \[I<unk>ST\] item [0-9]+\? \[/I<unk>ST\]\[\[ [0-9]+ dollars </s>\]\]" -- "$HONE" inspect exp.lua --set data.train=chat.jsonl $t --n 1
expect 0 "collator chat: 100.0%" -- "$HONE" run exp.lua --set data.train=chat.jsonl --set collator=chat --set collator.all_turns=true $t
# a chat template written in Lua (data.chat_function)
cat > chatfn.lua <<LUA
local hone = require("hone")
return hone.experiment {
  project = "tiny", output_dir = "runs", seed = 3,
  model = { path = "$model", tokenizer = "tok" },
  data = { train = "chat.jsonl", max_seq_length = 64,
           chat_function = function(messages)
             local out = {}
             for _, m in ipairs(messages) do
               if m.role == "assistant" then out[#out + 1] = { "A: " .. m.content .. "</s>", train = true }
               else out[#out + 1] = "Q: " .. m.content .. "\n" end
             end
             return out
           end },
  train = { max_steps = 2, batch_size = 4 },
}
LUA
expect 0 ": item [0-9]+\?" -- "$HONE" inspect chatfn.lua --n 1
expect 0 "\[\[A: [0-9]+ dollars</s>\]\]" -- "$HONE" inspect chatfn.lua --n 1
expect 0 "done: 2 steps" -- "$HONE" run chatfn.lua
sed 's/return out/return 42/' chatfn.lua > chatbad.lua
expect 1 "chat.jsonl:1: data.chat_function: must return a list of pieces, got number" -- "$HONE" run chatbad.lua
{ head -3 chat.jsonl; echo '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}'; } > badchat.jsonl
expect 1 "badchat.jsonl:4: messages\[1\]: role \"bot\" is not system, user or assistant" -- "$HONE" run exp.lua --set data.train=badchat.jsonl $t
zstd -q text.jsonl -o text.jsonl.zst
expect 0 "collator lm: 100.0%" -- "$HONE" run exp.lua --set data.train=text.jsonl.zst $t
printf '{"text": "a"}\n{"prompt": "x"}\n' > half.jsonl
expect 1 "half.jsonl:2: a prompt/completion record needs both \"prompt\" and \"completion\"" -- "$HONE" run exp.lua --set data.train=half.jsonl $t
printf '{"a": 1}\n{"b": 2}\n' > none.jsonl
expect 1 "none.jsonl: no usable record \(2 read: 2 without a text / prompt\+completion / messages / input_ids field, 0 empty\); the first skipped is none.jsonl:1" -- "$HONE" run exp.lua --set data.train=none.jsonl $t
# bf16 products: refused by name where the CPU (or HONE_CPU_ISA) has none, trained where it has
expect 2 "model.compute_dtype = \"bf16\": the cpu backend has no bf16 products here \(the CPU's need AVX-512; HONE_CPU_ISA" -- \
  env HONE_CPU_ISA=avx2 "$HONE" run exp.lua --set model.compute_dtype=bf16
if "$HONE" run exp.lua --set model.compute_dtype=bf16 --dry-run > /dev/null 2>&1; then
  expect 0 "done: 16 steps" -- "$HONE" run exp.lua --set model.compute_dtype=bf16
  b=$(ls -td runs/tiny-* | head -1)
  last=$(grep '"loss"' "$b/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.7) }' && echo "ok: bf16 loss $first -> $last" \
    || { echo "FAIL: bf16 loss did not go down: $first -> $last"; fails=$((fails+1)); }
  expect 0 "; bf16 products \(compute_dtype auto\)" -- "$HONE" run exp.lua --set model.compute_dtype=auto --set train.max_steps=1
else
  echo "note: no bf16 products on this CPU: the bf16 run is not tried here"
fi
# auto: bf16 where the backend has bf16 products, fp32 where it has none
expect 0 "; fp32 products \(compute_dtype auto\)" -- \
  env HONE_CPU_ISA=avx2 "$HONE" run exp.lua --set model.compute_dtype=auto --set train.max_steps=1
expect 0 "; fp32 products$" -- "$HONE" run exp.lua --set train.max_steps=1
finish
