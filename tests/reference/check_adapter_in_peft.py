#!/usr/bin/env python3
"""Cross-check (by hand, with the reference virtualenv): an adapter hone saved loads in
peft with no missing or unexpected keys, and every LoRA tensor equals the file's.
  ~/.cache/hone-ref-venv/bin/python tests/reference/check_adapter_in_peft.py BASE_DIR ADAPTER_DIR
Run on runs/<run>/checkpoints/epoch-N after training the tiny fixture model."""
import sys, torch, warnings
from transformers import LlamaForCausalLM
from peft import PeftModel
from safetensors.torch import load_file
base, adapter = sys.argv[1], sys.argv[2]
m = LlamaForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    pm = PeftModel.from_pretrained(m, adapter)
    msgs = [str(x.message) for x in w if "missing" in str(x.message).lower() or "unexpected" in str(x.message).lower()]
sd = load_file(adapter + "/adapter_model.safetensors")
n = 0
for name, p in pm.named_parameters():
    if "lora_" in name:
        key = name.replace(".default", "")
        assert torch.equal(p.detach(), sd[key]), key
        n += 1
print("peft loaded", n, "lora tensors, identical to the file; warnings:", msgs, "scaling", pm.base_model.model.model.layers[0].self_attn.q_proj.scaling)
