#!/usr/bin/env python3
"""Writes tests/fixtures/merge/*.safetensors: what peft's merge_and_unload + save_pretrained
make of the tiny fixture models and their adapters, for `hone convert BASE --adapter DIR`.

  llama-f32.safetensors       tests/fixtures/models/llama (fp32 base, all seven linears,
                              r 4, alpha 8) merged in fp32
  llama-f32-bf16.safetensors  the same merged model cast with .to(torch.bfloat16)
  gqa-bf16.safetensors        tests/fixtures/models/llama-gqa (bf16 base, tied embeddings,
                              q/v, r 8, rslora) loaded in bf16 and merged

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_merge_fixtures.py
(torch 2.5.1, transformers 4.51.3, peft 0.15.2)
"""
import os
import shutil
import tempfile

import torch
from peft import PeftModel
from transformers import LlamaForCausalLM

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
OUT = os.path.join(ROOT, "tests", "fixtures", "merge")


def merged(name, dtype):
    base = LlamaForCausalLM.from_pretrained(os.path.join(MODELS, name), torch_dtype=dtype)
    model = PeftModel.from_pretrained(base, os.path.join(MODELS, name, "adapter"))
    return model.merge_and_unload()


def save(model, file):
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d, safe_serialization=True)
        shutil.copy(os.path.join(d, "model.safetensors"), os.path.join(OUT, file))


os.makedirs(OUT, exist_ok=True)
m = merged("llama", torch.float32)
save(m, "llama-f32.safetensors")
save(m.to(torch.bfloat16), "llama-f32-bf16.safetensors")
save(merged("llama-gqa", torch.bfloat16), "gqa-bf16.safetensors")
print("wrote", sorted(os.listdir(OUT)))
