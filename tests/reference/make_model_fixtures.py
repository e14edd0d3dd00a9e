#!/usr/bin/env python3
"""Writes tests/fixtures/models/: tiny random Hugging Face model dirs and what the real
Python stack computes on them, for hone's model tests to compare against.

Each case dir holds
  config.json, model.safetensors        the model, as save_pretrained writes it
  adapter/                              a PEFT LoRA adapter (nonzero B) as save_pretrained writes it
  expected.safetensors                  input_ids, labels (I32), logits, loss, loss_sum, n_targets
                                        with the adapter; "grad.<PEFT key>" for the LoRA weights;
                                        for full fine-tuning (no adapter) full_logits, full_loss and
                                        "fullgrad.<HF key>" for every weight; gen.prompt<i> and
                                        gen.out<i>: greedy generate() of 8 tokens with the adapter

Cases: llama (plain, fp32), llama-gqa (GQA, explicit head_dim, tied embeddings, llama3
rope scaling, bf16 storage, rslora adapter on q/v), qwen2 (q/k/v bias, GQA, f16 storage),
mistral (one layer, one KV head, adapter on o/down only).
Computation is fp32 with eager attention, LoRA dropout 0 (deterministic), model in train().

Run in a virtualenv with the real stack (versions used: torch 2.5.1, transformers 4.51.3,
peft 0.15.2):
  python3 -m venv ~/.cache/hone-ref-venv
  ~/.cache/hone-ref-venv/bin/pip install torch==2.5.1 transformers==4.51.3 peft==0.15.2 safetensors
  ~/.cache/hone-ref-venv/bin/python tests/reference/make_model_fixtures.py
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "models")
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def randomize(model, std):
    # larger than the default init so logits and gradients carry signal; norms around 1
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(std * torch.randn_like(p))


def batch(vocab):
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, vocab, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100      # a masked prompt
    labels[1, 9:] = -100      # masked tail (as padding would be)
    return ids, labels


def run(model, ids, labels):
    out = model(input_ids=ids, labels=labels)
    logits = out.logits.float()
    shift_logits, shift_labels = logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
    loss_sum = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
    n = (shift_labels != -100).sum()
    return out.loss, logits, loss_sum, n


def make(name, cls, cfg, dtype, lora, full_grads, nf4=False):
    torch.manual_seed(1234)
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model = cls(cfg).float()
    randomize(model, 0.15)
    model.to(dtype).save_pretrained(d, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    # compute from the stored weights, upcast to fp32, as hone will
    model = cls.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    model.train()
    ids, labels = batch(cfg.vocab_size)
    expected = {"input_ids": ids.to(torch.int32), "labels": labels.to(torch.int32)}

    if full_grads:
        loss, logits, loss_sum, n = run(model, ids, labels)
        loss.backward()
        expected["full_loss"] = loss.detach().reshape(1)
        expected["full_logits"] = logits.detach()
        seen = set()
        for pname, p in model.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            expected["fullgrad." + pname] = p.grad.detach().clone()
        model.zero_grad()

    if nf4:
        # the frozen base through bitsandbytes NF4 with double quant (CPU backend): every
        # linear of the layers quantized and dequantized, as hone's nf4 quantizer stores it
        import bitsandbytes.functional as BF
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if ".layers." in pname and pname.endswith("proj.weight"):
                    q, st = BF.quantize_4bit(p.data.contiguous(), blocksize=64, compress_statistics=True,
                                             quant_type="nf4")
                    p.copy_(BF.dequantize_4bit(q, st).reshape(p.shape))
    peft_model = get_peft_model(model, LoraConfig(**lora))
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_B" in pname:
                p.copy_(0.1 * torch.randn_like(p))
    if nf4:   # the adapter and the model dir come from the plain case; only the numbers differ
        shutil.copytree(os.path.join(OUT, base_case(name), "adapter"), os.path.join(d, "adapter"))
        for pname, p in peft_model.named_parameters():
            if "lora_" in pname:
                src = load_file(os.path.join(d, "adapter", "adapter_model.safetensors"))[pname.replace(".default", "")]
                with torch.no_grad():
                    p.copy_(src)
    else:
        peft_model.save_pretrained(os.path.join(d, "adapter"))
    if os.path.exists(os.path.join(d, "adapter", "README.md")):
        os.remove(os.path.join(d, "adapter", "README.md"))   # PEFT's model card: not needed
    # target_modules is a set inside PEFT: sort it so regenerated fixtures do not churn
    acfg = os.path.join(d, "adapter", "adapter_config.json")
    with open(acfg) as f:
        a = json.load(f)
    a["target_modules"] = sorted(a["target_modules"])
    with open(acfg, "w") as f:
        json.dump(a, f, indent=2, sort_keys=True)
    peft_model.train()
    loss, logits, loss_sum, n = run(peft_model, ids, labels)
    loss.backward()
    for pname, p in peft_model.named_parameters():
        if p.requires_grad:
            expected["grad." + pname.replace(".default", "")] = p.grad.detach().clone()
    expected.update(logits=logits.detach(), loss=loss.detach().reshape(1), loss_sum=loss_sum.detach().reshape(1),
                    n_targets=n.to(torch.float32).reshape(1))
    # greedy generation with the adapter, from two prompts of different lengths (no EOS stop)
    peft_model.eval()
    with torch.no_grad():
        for i, plen in enumerate((5, 9)):
            prompt = ids[i, :plen].unsqueeze(0)
            gen = peft_model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8,
                                      do_sample=False, eos_token_id=None, pad_token_id=0)
            expected[f"gen.prompt{i}"] = prompt[0].to(torch.int32)
            expected[f"gen.out{i}"] = gen[0, plen:].to(torch.int32)
    save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(d, "expected.safetensors"))
    print(f"{name}: loss {loss.item():.6f} over {int(n)} targets, {len(expected)} tensors")


def main():
    make("llama", LlamaForCausalLM,
         LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                     rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
         torch.float32, dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ALL7), full_grads=True)
    make("llama-gqa", LlamaForCausalLM,
         LlamaConfig(vocab_size=80, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                     rms_norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=True,
                     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
         torch.bfloat16, dict(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                              use_rslora=True), full_grads=True)
    make("qwen2", Qwen2ForCausalLM,
         Qwen2Config(vocab_size=72, hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                     rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
                     use_sliding_window=False),
         torch.float16, dict(r=4, lora_alpha=4, lora_dropout=0.0, target_modules=ALL7), full_grads=False)
    make("mistral", MistralForCausalLM,
         MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                       rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=None),
         torch.float32, dict(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["o_proj", "down_proj"]),
         full_grads=False)
    # QLoRA: the llama case again with its base in NF4 (double quant); hone's test loads the
    # same model dir with quantizer nf4 and compares with these numbers
    make("llama-nf4", LlamaForCausalLM,
         LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                     rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
         torch.float32, dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ALL7), full_grads=False, nf4=True)


def base_case(name):
    return name[:-len("-nf4")]


if __name__ == "__main__":
    main()


def make_bnb4_checkpoint():
    """tests/fixtures/models/llama-bnb4/: the llama case saved as a bitsandbytes NF4 (double
    quant) checkpoint, in the layout transformers' save_pretrained writes for a 4-bit model
    (Linear4bit's state dict: QuantState.as_dict(packed=True)). transformers refuses to
    quantize on a CPU without IPEX, so the same state dict is built here from
    bitsandbytes.functional.quantize_4bit, which is what Params4bit calls."""
    import bitsandbytes.functional as BF
    from transformers import BitsAndBytesConfig
    src = os.path.join(OUT, "llama")
    d = os.path.join(OUT, "llama-bnb4")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sd = load_file(os.path.join(src, "model.safetensors"))
    out = {}
    for k, v in sd.items():
        if ".layers." in k and k.endswith("proj.weight"):
            q, st = BF.quantize_4bit(v.contiguous(), blocksize=64, compress_statistics=True, quant_type="nf4")
            out[k] = q
            for sk, sv in st.as_dict(packed=True).items():
                out[k + "." + sk] = sv
        else:
            out[k] = v
    save_file({k: v.contiguous().clone() for k, v in out.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32)
    cfg["quantization_config"] = q.to_dict()
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    print("llama-bnb4:", len(out), "tensors")


make_bnb4_checkpoint()
