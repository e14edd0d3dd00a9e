"""trl_replay.py — runs TRL's SFTTrainer on a QLoRA job and records what it did, step by
step, in a form hone can replay (data.order_file, lora.init_adapter) and check
(tests/tools/replay_check). Used by make_sft_fixtures.py (the committed fixture) and
compare_pricer.py (the main job, TRL beside hone).

run(...) writes into out: init/ (the adapter PEFT initialised), final/ (after the last
step), order.txt (each epoch's training records as the sampler drew them, one line per
epoch, record numbers of the train list from 0) and trl.json (versions, the recipe, per
optimizer step the micro-batches' records, the loss (the sum over the window of TRL's
normalised micro-batch losses), grad_norm and lr; per evaluation TRL's eval_loss (the
batch-size-weighted mean of per-batch means) and the token-weighted mean of the same
forwards, with each eval batch). Records TRL drops (truncation left no trained token) are
absent from the order and listed.

Set on purpose unless asked otherwise, both said in trl.json:
- TRL 1.16 casts the LoRA weights of a quantized model to bf16 (SFTTrainer.__init__,
  "to follow the recommendations from the original paper"), whatever bf16 says; the LoRA
  products then run in bf16. They are cast back to fp32 before training (the optimizer is
  made in train()): PEFT's fp32 LoRA, which can be replayed exactly. bf16_adapters=True
  keeps TRL's cast.
- bitsandbytes 0.50.2 on a CPU with AVX512-BF16 repacks a Linear4bit's weight in place the
  first time it runs without gradients (model.eval(), as in evaluation) and from then on
  computes it with a bf16 inference kernel, in training too, where no gradient flows back
  through it (the op has no autograd kernel; torch warns "an autograd kernel was not
  registered"). The path is turned off (support_avx512bf16_for_cpu = False) so runs hold
  the fp32 math on every CPU; bnb_cpu_bf16=True leaves it on.
- bitsandbytes 0.50.2's CPU 8-bit blockwise quantizer (the nested absmax codes of double
  quant) looks the code up in a 65,536-bin table (csrc/cpu_ops.cpp, build_quantize_lut),
  which is not always the nearest code: 0.22% of SmolLM2-135M's nested codes are one step
  off, which moves the NF4 base's loss by 4e-4. exact_nested() puts the search of
  bitsandbytes' CUDA kernel in its place (csrc/kernels.cu, kQuantizeBlockwise and
  dQuantize<0>: x = value * (1 / absmax), a binary search over the real map, the midpoint
  test; docs/numerics.md §1), which is what hone writes and what made the Hub's
  "-bnb-4bit" checkpoints; bnb_cpu_lut=True keeps the table.
"""
import json
import os
import tempfile

import torch


def _ftz(t):
    """CUDA's --use_fast_math: subnormals flushed to a zero of the same sign"""
    return torch.where(t.abs() < torch.finfo(torch.float32).tiny, t * 0, t)


def cuda_quantize_codes(blocks, code):
    """kQuantizeBlockwise<float, 256, 2, 0, General8bit> (bitsandbytes 0.50 csrc/kernels.cu)
    on a [blocks, blocksize] float32 tensor padded with zeros, op for op in float32: absmax
    = max |v| (flushed), x = v * (1 / absmax), then dQuantize<0>. The kernel's reciprocal is
    rcp.approx (within 1 ulp); the correctly rounded one stands in for it, as in hone.
    Returns the codes (int64, same shape) and the absmax per block."""
    c = code.float()
    v = _ftz(blocks.float())
    a = v.abs()   # fmaxf from -FLT_MAX passes a NaN over
    am = torch.where(a.isnan(), -torch.finfo(torch.float32).max, a).amax(dim=1)
    scale = _ftz(torch.reciprocal(am))
    x = _ftz(v * scale[:, None]).reshape(-1)
    # dQuantize<0>: 7 halvings from pivot 127, the bounds start at -1 and 1
    pivot = torch.full_like(x, 127, dtype=torch.int64)
    lower_pivot, upper_pivot = torch.zeros_like(pivot), torch.full_like(pivot, 255)
    lower, upper = torch.full_like(x, -1.0), torch.full_like(x, 1.0)
    val = c[pivot]
    for i in (64, 32, 16, 8, 4, 2, 1):
        gt = x > val   # NaN: never, so it walks down to 0
        lower_pivot, lower = torch.where(gt, pivot, lower_pivot), torch.where(gt, val, lower)
        upper_pivot, upper = torch.where(gt, upper_pivot, pivot), torch.where(gt, upper, val)
        pivot = torch.where(gt, pivot + i, pivot - i)
        val = c[pivot]
    upper = torch.where(upper_pivot == 255, c[255], upper)   # a side never narrowed: the map's end
    lower = torch.where(lower_pivot == 0, c[0], lower)
    up = torch.where(x > (upper + val) * 0.5, upper_pivot, pivot)
    down = torch.where(x < (lower + val) * 0.5, lower_pivot, pivot)
    return torch.where(x > val, up, down).view(blocks.shape), am


def exact_nested():
    """bitsandbytes.functional.quantize_blockwise on the CPU with the CUDA kernel's codes (see above)"""
    import bitsandbytes.functional as F

    original = F.quantize_blockwise

    def quantize_blockwise(A, code=None, absmax=None, out=None, blocksize=4096, nested=False):
        if A.device.type != "cpu" or nested or absmax is not None or out is not None or A.dtype != torch.float32:
            return original(A, code=code, absmax=absmax, out=out, blocksize=blocksize, nested=nested)
        if code is None:
            code = F.name2qmap.setdefault("dynamic", F.create_dynamic_map())
        n = A.numel()
        flat = A.reshape(-1)
        pad = (-n) % blocksize
        blocks = torch.cat([flat, flat.new_zeros(pad)]).view(-1, blocksize)
        q, am = cuda_quantize_codes(blocks, code)
        return q.reshape(-1)[:n].to(torch.uint8).view(A.shape), F.QuantState(absmax=am, code=code.clone(),
                                                                              blocksize=blocksize, dtype=A.dtype)

    F.quantize_blockwise = quantize_blockwise


class Recorder:
    """What the run did: the order the sampler drew, each micro-batch's records and loss."""

    def __init__(self):
        self.epochs, self.micro, self.steps, self.eval_batches = [], [], [], []


def run(model_dir, train_recs, eval_recs, recipe, out, seed=42, bnb_cpu_bf16=False, bf16_adapters=False,
        bnb_cpu_lut=False):
    """recipe: r, alpha, dropout, batch, grad_accum, epochs, lr, warmup_ratio, max_grad_norm,
    max_length, eval_batch, optim. Returns trl.json's content."""
    import bitsandbytes as bnb
    import peft
    import transformers
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    os.makedirs(out, exist_ok=True)
    if not bnb_cpu_lut:
        exact_nested()
    tok = AutoTokenizer.from_pretrained(model_dir)
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=q,
                                                 dtype=torch.float32, device_map="cpu")
    n4 = 0
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            n4 += 1
            if not bnb_cpu_bf16:
                mod.support_avx512bf16_for_cpu = False
    assert n4 > 0, "no Linear4bit in the model"

    lcfg = LoraConfig(r=recipe["r"], lora_alpha=recipe["alpha"], lora_dropout=recipe["dropout"], bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    tmp = tempfile.mkdtemp()
    cfg = SFTConfig(output_dir=tmp, num_train_epochs=recipe["epochs"], per_device_train_batch_size=recipe["batch"],
                    per_device_eval_batch_size=recipe["eval_batch"], gradient_accumulation_steps=recipe["grad_accum"],
                    learning_rate=recipe["lr"], lr_scheduler_type="cosine", warmup_steps=recipe["warmup_ratio"],
                    max_grad_norm=recipe["max_grad_norm"], optim=recipe["optim"], weight_decay=0.0,
                    train_sampling_strategy="group_by_length", eval_strategy="epoch", logging_steps=1,
                    save_strategy="no", seed=seed, bf16=False, fp16=False, gradient_checkpointing=False,
                    max_length=recipe["max_length"], report_to=[], use_cpu=True, dataloader_num_workers=0)
    rec = Recorder()
    train_ds = Dataset.from_list([dict(r, record=i) for i, r in enumerate(train_recs)])
    eval_ds = Dataset.from_list([dict(r, record=i) for i, r in enumerate(eval_recs)])

    class Sampler(torch.utils.data.Sampler):
        def __init__(self, inner, dataset):
            self.inner, self.records = inner, dataset["record"]

        def __len__(self):
            return len(self.inner)

        def __iter__(self):
            order = list(self.inner)
            rec.epochs.append([self.records[i] for i in order])
            return iter(order)

    class Replayed(SFTTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return Sampler(super()._get_train_sampler(train_dataset), self.train_dataset)

        def training_step(self, model, inputs, num_items_in_batch=None):
            ids = inputs["input_ids"]
            loss = super().training_step(model, inputs, num_items_in_batch)
            rec.micro.append((ids.clone(), float(loss)))
            return loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            res = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not model.training:
                loss = res[0] if isinstance(res, tuple) else res
                n = int((inputs["labels"][:, 1:] != -100).sum())
                rec.eval_batches.append((inputs["input_ids"].clone(), float(loss), n))
            return res

    class Steps(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            rec.steps.append(rec.micro)
            rec.micro = []

    trainer = Replayed(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tok,
                       peft_config=lcfg, callbacks=[Steps()])
    lora_dtypes = sorted({str(p.dtype) for p in trainer.model.parameters() if p.requires_grad})
    if not bf16_adapters:
        for p in trainer.model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    # every record's tokens as TRL prepared them, to name the records of each batch
    prepared = {}
    for split, ds in (("train", trainer.train_dataset), ("eval", trainer.eval_dataset)):
        for row in ds:
            prepared[(split, tuple(row["input_ids"]))] = row["record"]
    dropped = sorted(set(range(len(train_recs))) - set(trainer.train_dataset["record"]))
    eval_dropped = sorted(set(range(len(eval_recs))) - set(trainer.eval_dataset["record"]))

    def records_of(split, ids):
        outl = []
        for row in ids.tolist():
            while row and row[-1] == tok.pad_token_id and (split, tuple(row)) not in prepared:
                row = row[:-1]   # right padding (the pad is EOS, which also ends every record)
            outl.append(prepared[(split, tuple(row))])
        return outl

    trainer.model.save_pretrained(os.path.join(out, "init"))
    trainer.train()
    trainer.model.save_pretrained(os.path.join(out, "final"))

    logs = [r for r in trainer.state.log_history if "loss" in r and "grad_norm" in r]
    evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    assert len(logs) == len(rec.steps), (len(logs), len(rec.steps))
    steps = []
    for k, (mbs, lg) in enumerate(zip(rec.steps, logs)):
        loss = sum(l for _, l in mbs)
        assert abs(loss - lg["loss"]) <= 1e-6 * abs(loss), (k, loss, lg["loss"])
        steps.append({"step": k + 1, "micro_batches": [records_of("train", ids) for ids, _ in mbs],
                      "loss": loss, "grad_norm": lg["grad_norm"], "lr": lg["learning_rate"]})
    # the drawn order is the order the batches trained
    drawn = [i for mb in (m for s in steps for m in s["micro_batches"]) for i in mb]
    assert drawn == [i for e in rec.epochs for i in e], "the sampler's order is not the order trained"
    per_eval = len(rec.eval_batches) // len(evals)
    ev_out = []
    for e, row in enumerate(evals):
        bl = rec.eval_batches[e * per_eval:(e + 1) * per_eval]
        bs = [ids.shape[0] for ids, _, _ in bl]
        batch_mean = sum(b * l for b, (_, l, _) in zip(bs, bl)) / sum(bs)
        assert abs(batch_mean - row["eval_loss"]) <= 1e-6 * batch_mean, (batch_mean, row["eval_loss"])
        token_mean = sum(l * n for _, l, n in bl) / sum(n for _, _, n in bl)
        ev_out.append({"epoch": e + 1, "eval_loss": row["eval_loss"], "eval_loss_token_weighted": token_mean,
                       "tokens": sum(n for _, _, n in bl),
                       "batches": [{"records": records_of("eval", ids), "loss": l, "tokens": n} for ids, l, n in bl]})
    with open(os.path.join(out, "order.txt"), "w") as fh:
        for ep in rec.epochs:
            fh.write(" ".join(map(str, ep)) + "\n")
    meta = {
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "bitsandbytes": bnb.__version__, "torch": torch.__version__},
        "recipe": recipe, "bnb_cpu_bf16_eval_path": bool(bnb_cpu_bf16),
        "bnb_cpu_nested_lut": bool(bnb_cpu_lut),
        "lora_dtype_trl_made": lora_dtypes, "lora_dtype_trained": "bfloat16" if bf16_adapters else "float32",
        "dropped_train_records": dropped, "dropped_eval_records": eval_dropped,
        "steps": steps, "evals": ev_out,
    }
    with open(os.path.join(out, "trl.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    return meta
