#!/usr/bin/env python3
"""Writes tests/fixtures/train/: what transformers' Trainer + peft make of 6 optimizer steps
on the tiny llama fixture, for tests/scripts/train_parity.sh.

  train.jsonl               24 pre-tokenized records (lengths 5..16, the first labels masked)
  adapter_model.safetensors the LoRA adapter after 6 steps
  losses.txt                the loss the Trainer logged at each step, one per line

Settings (hone's side is in the test script): the fixture's nonzero-B adapter
(tests/fixtures/models/llama/adapter) as the start, LoRA r 4 / alpha 8 / dropout 0 on all
seven linears; per_device_train_batch_size 2, gradient_accumulation_steps 2, max_steps 6,
learning_rate 1e-3, weight_decay 0.1, adamw_torch, cosine with 2 warmup steps,
max_grad_norm 0.5 (clips), fp32, records in file order (the train sampler is sequential),
right padding; Trainer normalizes each step's loss by the window's count of labels
(transformers 5 counts labels[..., 1:], the predicted ones; 4.x counted position 0 too,
which moved the losses but, through Adam and clipping, not the adapter).

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_train_fixtures.py
(torch 2.15.0, transformers 5.24.0, peft 0.21.2; the venv of make_sft_fixtures.py)
"""
import json
import os
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import save_file
from torch.utils.data import SequentialSampler
from transformers import LlamaForCausalLM, Trainer, TrainingArguments

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "tests", "fixtures", "models", "llama")
OUT = os.path.join(ROOT, "tests", "fixtures", "train")


def records():
    g = torch.Generator().manual_seed(7)
    out = []
    for i in range(24):
        n = 5 + (i * 5) % 12
        ids = torch.randint(0, 96, (n,), generator=g).tolist()
        labels = [-100, -100] + ids[2:] if i % 3 else list(ids)
        out.append({"input_ids": ids, "labels": labels})
    return out


class Seq(Trainer):
    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)


def collate(batch):
    T = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), T), 0, dtype=torch.long)
    lab = torch.full((len(batch), T), -100, dtype=torch.long)
    att = torch.zeros((len(batch), T), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        lab[i, :n] = torch.tensor(b["labels"])
        att[i, :n] = 1
    return {"input_ids": ids, "labels": lab, "attention_mask": att}


def main():
    os.makedirs(OUT, exist_ok=True)
    recs = records()
    with open(os.path.join(OUT, "train.jsonl"), "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    base = LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, os.path.join(MODEL, "adapter"), is_trainable=True)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             max_steps=6, learning_rate=1e-3, weight_decay=0.1, optim="adamw_torch",
                             lr_scheduler_type="cosine", warmup_steps=2, max_grad_norm=0.5, logging_steps=1,
                             report_to=[], save_strategy="no", seed=42, dataloader_drop_last=False,
                             remove_unused_columns=False, use_cpu=True)
    trainer = Seq(model=model, args=args, train_dataset=recs, data_collator=collate)
    trainer.train()
    with open(os.path.join(OUT, "losses.txt"), "w") as fh:
        for row in trainer.state.log_history:
            if "loss" in row and "grad_norm" in row:
                print(row)
                fh.write(repr(row["loss"]) + "\n")
    sd = {k.replace(".default", ""): v.detach().clone().contiguous()
          for k, v in model.state_dict().items() if "lora_" in k}
    sd = {("base_model.model." + k if not k.startswith("base_model.") else k): v for k, v in sd.items()}
    save_file(sd, os.path.join(OUT, "adapter_model.safetensors"))
    print(len(sd), "tensors;", list(sd)[:2])


if __name__ == "__main__":
    main()
