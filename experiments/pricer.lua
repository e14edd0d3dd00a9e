-- pricer.lua — the README's main job: QLoRA-fine-tune SmolLM2-135M-Instruct to read a
-- product listing and answer "Price is $...", evaluating the price error every epoch and
-- keeping the best epoch. The recipe is the course exercise's, scaled to a 2-core CPU.
--
--   scripts/fetch_model && build/hone run experiments/pricer.lua
--
-- Data: experiments/data/pricer (experiments/make_pricer_data.lua documents the price
-- model). Predicting the training mean for every product is off by $200 on average.
local hone = require("hone")
local metrics = require("hone.metrics")

return hone.experiment {
  project = "pricer",
  -- compute_dtype: the course's bnb_4bit_compute_dtype = torch.bfloat16 where the CPU has
  -- bf16 products (AMX, AVX512-BF16), fp32 elsewhere
  model = { path = "models/SmolLM2-135M-Instruct", quantizer = { "nf4", double_quant = true }, compute_dtype = "auto" },
  lora = { r = 32, alpha = 64, dropout = 0.1, target_modules = "all-linear" },
  data = {
    train = "experiments/data/pricer/train.jsonl.zst", eval = "experiments/data/pricer/test.jsonl.zst",
    limit = 320, eval_limit = 60, max_seq_length = 96,
    group_by_length = true,   -- as QLoRA's qlora.py: batches of similar length, less padding
  },
  train = {
    optimizer = "paged_adamw_32bit", lr = 1e-4, scheduler = "cosine", warmup_ratio = 0.1,
    epochs = 3, batch_size = 8, grad_accum = 1, log_every = 5,
  },
  eval = {
    generate = { max_new_tokens = 8 },
    metrics = { price = metrics.price_metrics },
    best = { metric = "price.abs_error", mode = "min" },
  },
}
