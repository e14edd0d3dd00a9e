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

Set on purpose (tests/reference/trl_replay.py says why; trl.json records it): the LoRA
weights stay fp32 (TRL 1.16 casts those of a quantized model to bf16) and bitsandbytes'
AVX512-BF16 inference path is off; --trl-bf16-adapters and --bnb-cpu-bf16 show what each
does. Records whose prompt alone fills max_length are dropped by TRL 1.16 (no trained
token left); the order and the batches name records of train.jsonl, so such a record is
absent from them.

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

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "sft")
SEED = 42
RECIPE = dict(r=8, alpha=16, dropout=0.0, optim="paged_adamw_32bit", batch=4, grad_accum=2, epochs=2, lr=2e-3, warmup_ratio=0.1, max_grad_norm=1.0,
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--bnb-cpu-bf16", action="store_true", help="leave bitsandbytes' AVX512-BF16 eval path on")
    ap.add_argument("--trl-bf16-adapters", action="store_true", help="keep the bf16 LoRA weights TRL casts to")
    args = ap.parse_args()

    import trl_replay

    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "model"))
    train_recs, eval_recs = pricer_records("train.jsonl.zst", 44), pricer_records("test.jsonl.zst", 12)
    write_jsonl(os.path.join(out, "train.jsonl"), train_recs)
    write_jsonl(os.path.join(out, "eval.jsonl"), eval_recs)
    texts = [r["prompt"] + r["completion"] for r in train_recs + eval_recs]
    tok = make_tokenizer(texts, os.path.join(out, "model"))
    make_model(len(tok), os.path.join(out, "model"))
    meta = trl_replay.run(os.path.join(out, "model"), train_recs, eval_recs, RECIPE, out, seed=SEED,
                          bnb_cpu_bf16=args.bnb_cpu_bf16, bf16_adapters=args.trl_bf16_adapters)
    steps, ev_out, dropped, eval_dropped = meta["steps"], meta["evals"], meta["dropped_train_records"], \
        meta["dropped_eval_records"]

    for d in ("init", "final"):   # only the weights and the config are fixtures
        for f in os.listdir(os.path.join(out, d)):
            if f not in ("adapter_model.safetensors", "adapter_config.json"):
                os.remove(os.path.join(out, d, f))
        cfg_path = os.path.join(out, d, "adapter_config.json")
        cfg = json.load(open(cfg_path))   # peft writes a set: sorted, so a rerun changes nothing
        cfg["target_modules"] = sorted(cfg["target_modules"])
        with open(cfg_path, "w") as fh:
            json.dump(cfg, fh, indent=2, sort_keys=True)
    for s in steps:
        print(f"step {s['step']:2d}  loss {s['loss']:.6f}  grad_norm {s['grad_norm']:.5f}  lr {s['lr']:.3e}  "
              f"batches {[len(m) for m in s['micro_batches']]}")
    for e in ev_out:
        print(f"epoch {e['epoch']}: eval_loss {e['eval_loss']:.6f} (token-weighted {e['eval_loss_token_weighted']:.6f}, "
              f"{e['tokens']} tokens)")
    print("dropped (prompt fills max_length):", dropped, eval_dropped, file=sys.stderr)


if __name__ == "__main__":
    main()
