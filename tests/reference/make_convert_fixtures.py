#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/llama.gguf and llama-expected.safetensors: the tiny llama
fixture model written as llama.cpp's convert_hf_to_gguf.py writes a llama (tensor names,
metadata, q/k rows permuted for its interleaved RoPE) in a mix of GGUF types (F32, F16,
BF16, Q8_0, Q4_0, Q4_1), and what transformers' own GGUF loader makes of it: every weight
(dequantized by gguf-py, q/k permutation undone) and the logits of two prompts.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_convert_fixtures.py
(transformers 4.51.3, gguf 0.19.0, torch 2.5.1)
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants
from safetensors.numpy import load_file, save_file
from transformers import LlamaForCausalLM

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "tests", "fixtures", "models", "llama")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")


def permute(w, n_head, n_head_kv):   # convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    sd = load_file(os.path.join(SRC, "model.safetensors"))
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    path = os.path.join(OUT, "llama.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    kinds = {"q": Q.Q4_0, "k": Q.Q4_1, "v": Q.Q8_0, "o": Q.Q4_0, "gate": Q.F16, "up": Q.BF16, "down": Q.Q4_1}

    def put(name, x, qtype):
        x = np.ascontiguousarray(x.astype(np.float32))
        if qtype == Q.F32:
            w.add_tensor(name, x)
        elif qtype == Q.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, quants.quantize(x, qtype), raw_dtype=qtype)

    put("token_embd.weight", sd["model.embed_tokens.weight"], Q.Q8_0)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        put(f"blk.{l}.attn_norm.weight", sd[p + "input_layernorm.weight"], Q.F32)
        put(f"blk.{l}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], H, H), kinds["q"])
        put(f"blk.{l}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], H, KV), kinds["k"])
        put(f"blk.{l}.attn_v.weight", sd[p + "self_attn.v_proj.weight"], kinds["v"])
        put(f"blk.{l}.attn_output.weight", sd[p + "self_attn.o_proj.weight"], kinds["o"])
        put(f"blk.{l}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"], Q.F32)
        put(f"blk.{l}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"], kinds["gate"])
        put(f"blk.{l}.ffn_up.weight", sd[p + "mlp.up_proj.weight"], kinds["up"])
        put(f"blk.{l}.ffn_down.weight", sd[p + "mlp.down_proj.weight"], kinds["down"])
    put("output_norm.weight", sd["model.norm.weight"], Q.F32)
    put("output.weight", sd["lm_head.weight"], Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    tmp = tempfile.mkdtemp()
    shutil.copy(path, tmp)
    model = LlamaForCausalLM.from_pretrained(tmp, gguf_file="llama.gguf", torch_dtype=torch.float32)
    model.eval()
    expected = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    prompts = [[1, 17, 5, 44, 90, 3, 3, 61], [1, 2, 95, 40]]
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            expected[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].numpy().copy()
            expected[f"prompt.{i}"] = np.array(ids, dtype=np.int32)
    save_file(expected, os.path.join(OUT, "llama-expected.safetensors"))
    print(os.path.getsize(path), "bytes;", len(expected), "expected tensors;", model.config.to_dict()["vocab_size"])


if __name__ == "__main__":
    main()
