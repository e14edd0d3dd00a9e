#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/tokenizer.gguf and tokenizer-expected.json: the synth-bytelevel
test tokenizer's vocabulary and merges as a GGUF "gpt2" tokenizer (pre-tokenizer type
"default", token types with its special token as control), and the ids transformers' own
GGUF tokenizer loader gives for the tokenizer test corpus (without special tokens added).

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_gguf_tokenizer_fixture.py
(transformers 4.51.3, gguf 0.19.0, tokenizers 0.21.4)
"""
import json
import os
import shutil
import tempfile

import gguf
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "tests", "fixtures", "tokenizers", "synth-bytelevel", "tokenizer.json")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")


def write(path, pre, tokens, types, merges):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("synth-bytelevel")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    j = json.load(open(SRC, encoding="utf-8"))
    vocab = j["model"]["vocab"]
    n = max(vocab.values()) + 1
    tokens = [""] * n
    for t, i in vocab.items():
        tokens[i] = t
    types = [1] * n
    for a in j["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    merges = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    for pre in ("smollm", "llama-bpe", "qwen2"):   # the other pre-tokenizer types hone maps
        write(os.path.join(OUT, f"tokenizer-{pre}.gguf"), pre, tokens, types, merges)
    path = os.path.join(OUT, "tokenizer.gguf")
    write(path, "default", tokens, types, merges)
    tmp = tempfile.mkdtemp()

    shutil.copy(path, tmp)
    tok = AutoTokenizer.from_pretrained(tmp, gguf_file="tokenizer.gguf")
    corpus = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "corpus.json"), encoding="utf-8"))
    texts = [t for t in corpus if len(t) < 2000]
    out = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in texts]
    with open(os.path.join(OUT, "tokenizer-expected.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False)
    print(os.path.getsize(path), "bytes;", len(out), "texts;", type(tok).__name__)


if __name__ == "__main__":
    main()
