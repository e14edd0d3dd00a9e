# config_validation.sh — experiment scripts are checked against the schema: every bad
# key or value exits 2 with a message naming the script and the key.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
for i in $(seq 1 100); do echo "{\"prompt\": \"p$i\", \"completion\": \"c$i\"}"; done > train.jsonl
mkdir m && cp "$HONE_SRC/tests/fixtures/models/llama/config.json" m/   # what a dry run reads of a model

# exp NAME LUA-BODY: a script returning a valid experiment with BODY's keys merged in
exp() {
  cat > "$1.lua" <<LUA
local hone = require("hone")
local spec = {
  project = "t", model = { path = "m" }, data = { train = "train.jsonl" },
  train = { optimizer = "signsgd", epochs = 2, batch_size = 8 },
}
local extra = { $2 }
for k, v in pairs(extra) do
  if type(v) == "table" and type(spec[k]) == "table" then for kk, vv in pairs(v) do spec[k][kk] = vv end
  else spec[k] = v end
end
return hone.experiment(spec)
LUA
}

exp ok ""
expect 0 "optimizer steps +26" -- "$HONE" run ok.lua --dry-run

exp rank 'lora = { rank = 8 }'
expect 2 "rank.lua: lora.rank: unknown key; did you mean 'lora.r'\?" -- "$HONE" run rank.lua --dry-run
exp alpha 'lora = { lora_alpha = 16 }'
expect 2 "lora.lora_alpha: unknown key; did you mean 'lora.alpha'\?" -- "$HONE" run alpha.lua --dry-run
exp toplr 'lr = 1e-4'
expect 2 "toplr.lua: lr: unknown key; did you mean 'train.lr'\?" -- "$HONE" run toplr.lua --dry-run
exp typo 'data = { shuffel = false }'
expect 2 "data.shuffel: unknown key; did you mean 'data.shuffle'\?" -- "$HONE" run typo.lua --dry-run
exp far 'zzzzqqq = 1'
expect 2 "zzzzqqq: unknown key \(the top level takes: project, output_dir" -- "$HONE" run far.lua --dry-run

exp wrongtype 'train = { lr = "fast" }'
expect 2 "wrongtype.lua: train.lr: expected a number, got string \"fast\"" -- "$HONE" run wrongtype.lua --dry-run
exp r0 'lora = { r = 0 }'
expect 2 "lora.r = 0: out of range, must be >= 1" -- "$HONE" run r0.lua --dry-run
exp drop1 'lora = { dropout = 1 }'
expect 2 "lora.dropout = 1: out of range, must be \[0, 1\)" -- "$HONE" run drop1.lua --dry-run
exp dropneg 'lora = { dropout = -0.1 }'
expect 2 "lora.dropout = -0.1: out of range" -- "$HONE" run dropneg.lua --dry-run
exp lr0 'train = { lr = 0 }'
expect 2 "train.lr = 0: out of range, must be > 0" -- "$HONE" run lr0.lua --dry-run
exp bs0 'train = { batch_size = 0 }'
expect 2 "train.batch_size = 0: out of range, must be >= 1" -- "$HONE" run bs0.lua --dry-run
exp ep0 'train = { epochs = 0 }'
expect 2 "train.epochs = 0: out of range, must be > 0" -- "$HONE" run ep0.lua --dry-run
exp bsf 'train = { batch_size = 2.5 }'
expect 2 "train.batch_size: expected an integer, got number 2.5" -- "$HONE" run bsf.lua --dry-run
exp tm 'lora = { target_modules = { "q_proj", "qq_proj" } }'
expect 2 "lora.target_modules\[2\] = \"qq_proj\": must be one of q_proj" -- "$HONE" run tm.lua --dry-run
exp dev 'device = "tpu"'
expect 2 "device = \"tpu\": must be one of auto\|cpu\|cuda" -- "$HONE" run dev.lua --dry-run

exp opt 'train = { optimizer = "adamw_4bit" }'
expect 2 "train.optimizer: unknown optimizer 'adamw_4bit' \(registered optimizers: adafactor, adamw, adamw_8bit, adamw_bnb_8bit, adamw_torch, lion, lion_32bit, paged_adamw_32bit, paged_adamw_8bit, sgd, signsgd\)" -- "$HONE" run opt.lua --dry-run
exp sched 'train = { scheduler = { "cosine", num_cycle = 2 } }'
expect 2 "train.scheduler.num_cycle: unknown option 'num_cycle' for scheduler cosine; did you mean 'num_cycles'\?" -- "$HONE" run sched.lua --dry-run
exp schedname 'train = { scheduler = { num_cycles = 2 } }'
expect 2 "train.scheduler: the scheduler's name must come first" -- "$HONE" run schedname.lua --dry-run
exp optopt 'train = { optimizer = { "signsgd", momentum = 1.5 } }'
expect 2 "train.optimizer.momentum = 1.5: out of range, must be \[0, 1\)" -- "$HONE" run optopt.lua --dry-run
exp q 'model = { path = "m", quantizer = "int4" }'
expect 2 "model.quantizer: unknown quantizer 'int4' \(registered quantizers: fp4, int8, nf4, none\)" -- "$HONE" run q.lua --dry-run
# the default optimizer is adamw with transformers' Trainer defaults
cat > noopt.lua <<'LUA'
return { model = { path = "m" }, data = { train = "train.jsonl" } }
LUA
expect 0 '"plugin":[[:space:]]*".*/optimizers.so"' -- "$HONE" run noopt.lua --dry-run
expect 0 '"betas":[[:space:]]*\[0.9, 0.999\]' -- "$HONE" run noopt.lua --dry-run
exp optbad 'train = { optimizer = { "adamw", betas = { 0.9, 1.0 } } }'
expect 2 "train.optimizer.betas" -- "$HONE" run optbad.lua --dry-run


cat > missing.lua <<'LUA'
return { model = { path = "m" }, train = { optimizer = "signsgd" } }
LUA
expect 2 "missing.lua: data.train: missing required key" -- "$HONE" run missing.lua --dry-run
cat > notable.lua <<'LUA'
return 42
LUA
expect 2 "notable.lua: the script returned a number" -- "$HONE" run notable.lua --dry-run

# a dry run reports what the run would refuse before training
expect 2 "ok.lua: model.path: nope/config.json: cannot open" -- "$HONE" run ok.lua --dry-run --set model.path=nope
expect 2 "ok.lua: device = \"cuda\": the CUDA backend is not built yet" -- "$HONE" run ok.lua --dry-run --set device=cuda
expect 2 "ok.lua: eval.best.mode = \"max\" with eval_loss" -- "$HONE" run ok.lua --dry-run --set eval.best.mode=max
[ ! -e runs ] && echo "ok: the refused runs created nothing" || { echo "FAIL: runs/ created"; fails=$((fails+1)); }

# --set: the same checks, and the override wins
expect 0 '"lr":\s+0.0003' -- "$HONE" run ok.lua --dry-run --set train.lr=3e-4
expect 2 "train.lr: expected a number, got string \"abc\"" -- "$HONE" run ok.lua --dry-run --set train.lr=abc
expect 2 "lora.rank \(from --set\): unknown key; did you mean 'lora.r'\?" -- "$HONE" run ok.lua --dry-run --set lora.rank=8
expect 2 "train.batch_size = 0: out of range" -- "$HONE" run ok.lua --dry-run --set train.batch_size=0
expect 2 "\-\-set trainlr: expected key=value" -- "$HONE" run ok.lua --dry-run --set trainlr
expect 0 '"warmup_steps":\s+3' -- "$HONE" run ok.lua --dry-run --set train.scheduler=warmup_stable_decay --set train.scheduler.num_decay_steps=5 --set train.warmup_steps=3
expect 0 '"momentum":\s+0.5' -- "$HONE" run ok.lua --dry-run --set train.optimizer.momentum=0.5
expect 0 '"lora":\s+false' -- "$HONE" run ok.lua --dry-run --set lora=false
expect 0 '"target_modules":\s+\[' -- "$HONE" run ok.lua --dry-run --set lora.r=16
exp lorafalse 'lora = false'
expect 0 '"lora":\s+false' -- "$HONE" run lorafalse.lua --dry-run

# data problems name the file and line
printf '{"text": "a"}\nnot json\n' > bad.jsonl
exp baddata 'data = { train = "bad.jsonl" }'
expect 2 "baddata.lua: data.train: bad.jsonl:2: not a JSON object" -- "$HONE" run baddata.lua --dry-run
exp nodata 'data = { train = "nope.jsonl" }'
expect 2 "data.train: nope.jsonl: cannot open" -- "$HONE" run nodata.lua --dry-run
: > empty.jsonl
exp emptydata 'data = { train = "empty.jsonl" }'
expect 2 "data.train: empty.jsonl holds no records" -- "$HONE" run emptydata.lua --dry-run

# the plan: examples, micro-batches, steps and warmup as transformers counts them
exp plan 'data = { train = "train.jsonl", eval_fraction = 0.05 }, train = { optimizer = "signsgd", epochs = 3, batch_size = 16, grad_accum = 2, warmup_ratio = 0.1 }'
expect 0 "train examples +95 \(of 100 records" -- "$HONE" run plan.lua --dry-run
expect 0 "eval examples +5 \(data.eval_fraction" -- "$HONE" run plan.lua --dry-run
expect 0 "micro-batches / epoch +6 \(batch_size 16\)" -- "$HONE" run plan.lua --dry-run
expect 0 "optimizer steps / epoch 3 \(grad_accum 2\)" -- "$HONE" run plan.lua --dry-run
expect 0 "optimizer steps +9$" -- "$HONE" run plan.lua --dry-run
expect 0 "warmup steps +1$" -- "$HONE" run plan.lua --dry-run
expect 0 "optimizer steps +4$" -- "$HONE" run plan.lua --dry-run --set train.max_steps=4
# a dry run creates nothing
[ ! -e runs ] && echo "ok: dry runs created no runs/ dir" || { echo "FAIL: a dry run created runs/"; fails=$((fails+1)); }
# every command prints its own usage with --help, on stdout, exit 0
for c in run plugins schedule bench generate tokenize quantize runs report convert eval inspect version; do
  expect 0 "^  $c( |$)" -- "$HONE" "$c" --help
done
expect 2 "unknown command 'nope'" -- "$HONE" nope
# hone.resolve: a script reads any resolved value, the defaults and plugin options too
cat > resolve.lua <<'LUA'
local hone = require("hone")
local r = hone.resolve { project = "t", model = { path = "m" }, data = { train = "train.jsonl" },
                         train = { optimizer = { "adamw", weight_decay = 0.1 }, epochs = 2 } }
print(("resolved: lr %g, r %d, epochs %g, weight_decay %g, betas[2] %g, scheduler %s"):format(r.train.lr, r.lora.r,
  r.train.epochs, r.train.optimizer.options.weight_decay, r.train.optimizer.options.betas[2], r.train.scheduler.name))
local ok, msg = pcall(hone.resolve, { project = "t", model = { path = "m" }, data = { train = "train.jsonl" },
                                      train = { lr = -1 } })
print("refused: " .. tostring(msg))
LUA
expect 0 "resolved: lr 5e-05, r 8, epochs 2, weight_decay 0.1, betas.2. 0.999, scheduler linear" -- "$HONE" run resolve.lua
expect 0 "refused: hone.resolve: train.lr = -1: out of range, must be > 0" -- "$HONE" run resolve.lua
# the CPU's instruction set: chosen at run start and shown; HONE_CPU_ISA caps it, and a
# level it does not know is refused by name before anything runs
expect 2 "HONE_CPU_ISA=sse: expected avx2, avx512, avx512_bf16 or amx_bf16" -- env HONE_CPU_ISA=sse "$HONE" run ok.lua --dry-run
finish
