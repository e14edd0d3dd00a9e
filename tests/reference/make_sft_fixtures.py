#!/usr/bin/env python3
"""Writes tests/fixtures/sft/: a whole TRL SFTTrainer QLoRA run, recorded step by step, for
tests/scripts/sft_replay.sh to replay with hone.

The job is the pricer's recipe on a tiny Llama: prompt/completion records (the first 44 and
12 of experiments/data/pricer, completion-only loss), an NF4 + double-quant base, LoRA r 8 /
alpha 16 / dropout 0 on all seven linears, paged_adamw_32bit, cosine with warmup ratio 0.1,
max_grad_norm 1.0, batch 4 x gradient accumulation 2, group_by_length, max_length 104, two
epochs, an evaluation after each.

  sft/model/             config.json, model.safetensors (bf16), tokenizer.json (a byte-level
                         BPE of 320 ids trained here on the records), tokenizer_config.json
  sft/train.jsonl, eval.jsonl
  sft/init/              the adapter PEFT initialised (save_pretrained before training)
  sft/final/             adapter_model.safetensors after the last step
  sft/order.txt          the training records of every epoch in the order TRL's sampler drew
                         them, one epoch per line (record numbers of train.jsonl, 0-based)
  sft/trl.json           versions; per optimizer step: the micro-batches (record numbers),
                         the loss (sum over the window of TRL's normalised micro-batch
                         losses), grad_norm and lr; per evaluation: TRL's eval_loss (the
                         batch-size-weighted mean of per-batch means) and the token-weighted
                         mean of the same forward passes, with each eval batch

Three things are set on purpose, all said in trl.json:
- TRL 1.16 casts the LoRA weights of a quantized model to bf16 after creating them
  (SFTTrainer.__init__, "to follow the recommendations from the original paper"), whatever
  bf16 says; the LoRA products then run in bf16. The script casts them back to fp32 before
  training (the optimizer is made in train()), so the fixture is PEFT's fp32 LoRA, which
  can be replayed exactly; --trl-bf16-adapters keeps TRL's cast.
- bitsandbytes 0.50.2 on a CPU with AVX512-BF16 repacks a Linear4bit's weight in place the
  first time it runs without gradients (model.eval(), as in evaluation) and from then on
  computes it with a bf16 inference kernel, in training too, where no gradient flows back
  through it (the op has no autograd kernel). The script turns that path off
  (support_avx512bf16_for_cpu = False) so the fixture holds the fp32 math on every CPU;
  run with --bnb-cpu-bf16 to see what it does to a run.
- The records whose prompt alone fills max_length are dropped by TRL 1.16 (no trained
  token left); the order and the batches name records of train.jsonl, so such a record is
  simply absent.

  python3 -m venv ~/.cache/hone-sft-venv
  ~/.cache/hone-sft-venv/bin/pip install trl==1.16.0 transformers==5.24.0 peft==0.21.2 \\
      bitsandbytes==0.50.2 torch==2.15.0 datasets
  ~/.cache/hone-sft-venv/bin/python tests/reference/make_sft_fixtures.py
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "sft")
SEED = 42
RECIPE = dict(r=8, alpha=16, batch=4, grad_accum=2, epochs=2, lr=2e-3, warmup_ratio=0.1, max_grad_norm=1.0,
              max_length=104, eval_batch=4)


def pricer_records(name, n):
    raw = subprocess.run(["zstdcat", os.path.join(ROOT, "experiments", "data", "pricer", name)],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in raw.splitlines()[:n]]


def write_jsonl(path, recs):
    with open(path, "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


def make_tokenizer(texts, out_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(out_dir)
    return fast


def make_model(vocab, out_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                      rms_norm_eps=1e-5, rope_theta=50000.0, tie_word_embeddings=False, bos_token_id=None,
                      eos_token_id=0, pad_token_id=0, initializer_range=0.1)
    torch.manual_seed(1234)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)


class Recorder:
    """What the run did: the order the sampler drew, each micro-batch's records and loss."""

    def __init__(self):
        self.epochs, self.micro, self.steps, self.eval_batches, self.evals = [], [], [], [], []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--bnb-cpu-bf16", action="store_true", help="leave bitsandbytes' AVX512-BF16 eval path on")
    ap.add_argument("--trl-bf16-adapters", action="store_true", help="keep the bf16 LoRA weights TRL casts to")
    args = ap.parse_args()

    import bitsandbytes as bnb
    import peft
    import transformers
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(1)
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "model"))
    train_recs, eval_recs = pricer_records("train.jsonl.zst", 44), pricer_records("test.jsonl.zst", 12)
    write_jsonl(os.path.join(out, "train.jsonl"), train_recs)
    write_jsonl(os.path.join(out, "eval.jsonl"), eval_recs)
    texts = [r["prompt"] + r["completion"] for r in train_recs + eval_recs]
    tok = make_tokenizer(texts, os.path.join(out, "model"))
    make_model(len(tok), os.path.join(out, "model"))
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "model"), quantization_config=q,
                                                 dtype=torch.float32, device_map="cpu")
    n4 = 0
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            n4 += 1
            if not args.bnb_cpu_bf16:
                mod.support_avx512bf16_for_cpu = False
    assert n4 == 14, n4

    lcfg = LoraConfig(r=RECIPE["r"], lora_alpha=RECIPE["alpha"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    tmp = tempfile.mkdtemp()
    cfg = SFTConfig(output_dir=tmp, num_train_epochs=RECIPE["epochs"], per_device_train_batch_size=RECIPE["batch"],
                    per_device_eval_batch_size=RECIPE["eval_batch"], gradient_accumulation_steps=RECIPE["grad_accum"],
                    learning_rate=RECIPE["lr"], lr_scheduler_type="cosine", warmup_steps=RECIPE["warmup_ratio"],
                    max_grad_norm=RECIPE["max_grad_norm"], optim="paged_adamw_32bit", weight_decay=0.0,
                    train_sampling_strategy="group_by_length", eval_strategy="epoch", logging_steps=1,
                    save_strategy="no", seed=SEED, bf16=False, fp16=False, gradient_checkpointing=False,
                    max_length=RECIPE["max_length"], report_to=[], use_cpu=True, dataloader_num_workers=0)
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
    if not args.trl_bf16_adapters:
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
        "recipe": RECIPE, "bnb_cpu_bf16_eval_path": bool(args.bnb_cpu_bf16),
        "lora_dtype_trl_made": lora_dtypes, "lora_dtype_trained": "bfloat16" if args.trl_bf16_adapters else "float32",
        "dropped_train_records": dropped, "dropped_eval_records": eval_dropped,
        "steps": steps, "evals": ev_out,
    }
    with open(os.path.join(out, "trl.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    for d in ("init", "final"):   # only the weights and the config are fixtures
        for f in os.listdir(os.path.join(out, d)):
            if f not in ("adapter_model.safetensors", "adapter_config.json"):
                os.remove(os.path.join(out, d, f))
    for s in steps:
        print(f"step {s['step']:2d}  loss {s['loss']:.6f}  grad_norm {s['grad_norm']:.5f}  lr {s['lr']:.3e}  "
              f"batches {[len(m) for m in s['micro_batches']]}")
    for e in ev_out:
        print(f"epoch {e['epoch']}: eval_loss {e['eval_loss']:.6f} (token-weighted {e['eval_loss_token_weighted']:.6f}, "
              f"{e['tokens']} tokens)")
    print("dropped (prompt fills max_length):", dropped, eval_dropped, file=sys.stderr)


if __name__ == "__main__":
    main()
