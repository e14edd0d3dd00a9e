#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/tokenizer-spm.gguf and tokenizer-spm-expected.json: a small
SentencePiece BPE model with byte fallback (trained here on the tokenizer test corpus, 400
pieces, one user-defined symbol) written as a GGUF "llama" vocabulary by llama.cpp's own
convert_hf_to_gguf.py (--vocab-only), and what transformers' GGUF tokenizer loader makes
of it: the ids of every corpus text, with and without special tokens, and the
tokenizer.json it builds (for reading, not compared byte for byte).

  LLAMA_CPP=/path/to/llama.cpp ~/.cache/hone-ref-venv/bin/python tests/reference/make_gguf_spm_fixture.py
(sentencepiece 0.2, transformers 4.51.3, gguf 0.19.0, llama.cpp from the llama-cpp-python
0.3.36 sdist)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")
LLAMA_CPP = os.environ["LLAMA_CPP"]

corpus = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "corpus.json"), encoding="utf-8"))
texts = [t for t in corpus if len(t) < 2000]
tmp = tempfile.mkdtemp()
with open(os.path.join(tmp, "train.txt"), "w", encoding="utf-8") as f:
    for t in corpus:
        f.write(t.replace("\n", " ") + "\n")
spm.SentencePieceTrainer.train(input=os.path.join(tmp, "train.txt"), model_prefix=os.path.join(tmp, "tokenizer"),
                               vocab_size=400, model_type="bpe", byte_fallback=True, character_coverage=0.98,
                               user_defined_symbols=["<tool>"], bos_id=1, eos_id=2, unk_id=0,
                               num_threads=1, minloglevel=2)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 400, "hidden_size": 32,
           "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2},
          open(os.path.join(tmp, "config.json"), "w"))
gguf_path = os.path.join(OUT, "tokenizer-spm.gguf")
subprocess.run([sys.executable, os.path.join(LLAMA_CPP, "convert_hf_to_gguf.py"), tmp, "--vocab-only", "--outfile",
                gguf_path], check=True, cwd=LLAMA_CPP, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

d = tempfile.mkdtemp()
shutil.copy(gguf_path, d)
tok = AutoTokenizer.from_pretrained(d, gguf_file="tokenizer-spm.gguf")
sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "tokenizer.model"))
out = [{"text": t, "ids": tok.encode(t, add_special_tokens=False), "with_special": tok.encode(t)} for t in texts]
agree = sum(o["ids"] == sp.encode(o["text"]) for o in out)
with open(os.path.join(OUT, "tokenizer-spm-expected.json"), "w", encoding="utf-8") as fh:
    json.dump(out, fh, ensure_ascii=False)
print(os.path.getsize(gguf_path), "bytes;", len(out), "texts;", type(tok).__name__,
      f"; sentencepiece itself agrees on {agree} of {len(out)}")
print(tok.backend_tokenizer.to_str()[:1500])
