#!/usr/bin/env python3
"""Writes tests/fixtures/export/: a tiny Llama (bf16, GQA, llama3 rope scaling, untied
lm_head, head_dim in config) with a byte-level BPE tokenizer and a LoRA adapter, and what
llama.cpp's own convert_hf_to_gguf.py makes of it — expected-f16.gguf, expected-q8_0.gguf,
and expected-merged-f16.gguf (the adapter merged by peft's merge_and_unload first) — for
`hone convert MODEL_DIR [--adapter DIR] OUT.gguf --to gguf`.

The tokenizer is tests/fixtures/tokenizers/synth-bytelevel's vocabulary and merges with
SmolLM's pre-tokenizer, a non-special added token and 8 unused ids. convert_hf_to_gguf.py
names pre-tokenizers by hashing real models' outputs, so the script tells it "smollm".

  LLAMA_CPP=/path/to/llama.cpp ~/.cache/hone-ref-venv/bin/python tests/reference/make_export_fixtures.py
(llama.cpp from the llama-cpp-python 0.3.36 sdist on PyPI, vendor/llama.cpp; torch 2.5.1,
transformers 4.51.3, peft 0.15.2, sentencepiece)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(7)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "export")
LLAMA_CPP = os.environ["LLAMA_CPP"]

os.makedirs(OUT, exist_ok=True)
model_dir, adapter_dir = os.path.join(OUT, "model"), os.path.join(OUT, "adapter")
shutil.rmtree(model_dir, ignore_errors=True)
shutil.rmtree(adapter_dir, ignore_errors=True)

cfg = LlamaConfig(vocab_size=608, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5,
                  rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16})
model = LlamaForCausalLM(cfg).to(torch.bfloat16)
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.5)
model.save_pretrained(model_dir, safe_serialization=True)

tok = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "synth-bytelevel", "tokenizer.json")))
tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
tok["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
tok["added_tokens"].append({"id": 600, "content": "hone", "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": True, "special": False})
json.dump(tok, open(os.path.join(model_dir, "tokenizer.json"), "w"), ensure_ascii=False)
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
           "unk_token": "<|endoftext|>", "model_max_length": 64,
           "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"},
          open(os.path.join(model_dir, "tokenizer_config.json"), "w"))

lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
with torch.no_grad():
    for n, p in lora.named_parameters():
        if "lora_" in n:
            p.normal_(0, 0.3)
lora.save_pretrained(adapter_dir)
os.remove(os.path.join(adapter_dir, "README.md"))   # peft's model card


def convert(src, out, outtype):
    # llama.cpp names pre-tokenizers by a hash of real models' outputs; this one is SmolLM's
    code = ("import sys; sys.argv = sys.argv[1:]; sys.path.insert(0, %r); import runpy, conversion.base as b; "
            "b.TextModel.get_vocab_base_pre = lambda self, t: 'smollm'; "
            "runpy.run_path(%r, run_name='__main__')") % (LLAMA_CPP, os.path.join(LLAMA_CPP, "convert_hf_to_gguf.py"))
    subprocess.run([sys.executable, "-c", code, "convert_hf_to_gguf.py", src, "--outtype", outtype, "--outfile", out],
                   check=True, cwd=LLAMA_CPP)


convert(model_dir, os.path.join(OUT, "expected-f16.gguf"), "f16")
convert(model_dir, os.path.join(OUT, "expected-q8_0.gguf"), "q8_0")
with tempfile.TemporaryDirectory() as d:
    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16)
    PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().save_pretrained(d, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(model_dir, f), d)
    convert(d, os.path.join(OUT, "expected-merged-f16.gguf"), "f16")
print("wrote", sorted(os.listdir(OUT)))
