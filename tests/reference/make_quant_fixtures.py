#!/usr/bin/env python3
"""Writes tests/fixtures/quant/bnb4.safetensors: bitsandbytes' 4-bit quantization on its
CPU backend for tensors of awkward shapes, and torch's float32 mean for many sizes.

For each input x: input.<x> (F32 or BF16). For each case <c>: <c>.packed (U8), <c>.absmax (F32, or U8 codes
with double quant), <c>.nested_absmax and <c>.offset (double quant), <c>.dequant (F32:
dequantize_4bit to float32), <c>.zero_blocks (U8 flags: all-zero blocks, where hone
follows the CUDA kernels instead; see the plugin). cases.json lists
name, quant_type, blocksize, double_quant, shape, dtype.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_quant_fixtures.py
(bitsandbytes 0.50.2 and torch 2.5.1 from PyPI made the committed file; torch on 1 thread)
"""
import json
import os

import numpy as np
import torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "quant")

NF4_MIDS = [-0.8480963706970215, -0.6106328964233398, -0.4599952697753906, -0.33967941999435425,
            -0.23460739850997925, -0.13791173696517944, -0.045525018125772476, 0.03979014977812767,
            0.120255246758461, 0.2035212516784668, 0.2920137643814087, 0.3893125355243683, 0.5016634464263916,
            0.6427869200706482, 0.8614784479141235]


def inputs():
    g = torch.Generator().manual_seed(5)
    t = {}
    t["odd"] = torch.randn(7, 37, generator=g)                        # 259: partial last block, odd count
    z = torch.randn(4, 64, generator=g)
    z[1] = 0                                                           # an all-zero block
    t["zero_block"] = z
    zt = torch.randn(3, 43, generator=g)
    zt.view(-1)[128:] = 0                                              # an all-zero partial last block
    t["zero_tail"] = zt
    # values exactly on the float32 midpoints (absmax 1 so the scale is exact), and +-0
    th = torch.zeros(2, 64)
    th[0, 0] = 1.0
    th[0, 1:16] = torch.tensor(NF4_MIDS)
    th[0, 16:31] = -torch.tensor(NF4_MIDS)
    th[0, 31] = -0.0
    code = F.get_4bit_type("fp4", device="cpu")
    srt = torch.sort(code).values
    th[1, 0] = -1.0
    th[1, 1:16] = (srt[:-1] + srt[1:]) / 2
    th[1, 16:32] = torch.tensor([1e-3, -1e-3, 2.6e-3, -2.6e-3, 1e-30, -1e-30, 0.99, -0.99] * 2)
    t["thresholds"] = th
    t["bf16"] = (torch.randn(16, 48, generator=g) * 0.05).to(torch.bfloat16)
    t["big"] = torch.randn(150, 128, generator=g) * torch.linspace(0.01, 3, 128)   # 300 blocks: 2 nested blocks
    t["ramp"] = torch.linspace(-2, 5, 999).reshape(27, 37)
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    tensors, cases = {}, []
    ins = inputs()
    plan = []
    for name, x in ins.items():
        for qt in ("nf4", "fp4"):
            for dq in (False, True):
                plan.append((name, x, qt, 64, dq))
    for bs in (32, 128, 4096):
        plan.append(("odd", ins["odd"], "nf4", bs, bs == 128))
    plan.append(("big", ins["big"], "fp4", 256, True))
    for name, x, qt, bs, dq in plan:
        c = "%s.%s.b%d%s" % (name, qt, bs, ".dq" if dq else "")
        packed, st = F.quantize_4bit(x, blocksize=bs, compress_statistics=dq, quant_type=qt)
        deq = F.dequantize_4bit(packed, st)
        if deq.dtype != torch.float32:   # the float32 values bnb computes before its cast
            st.dtype = torch.float32
            deq = F.dequantize_4bit(packed, st)
        flat = x.float().reshape(-1)
        nb = -(-flat.numel() // bs)
        zero = torch.tensor([int(flat[b * bs:(b + 1) * bs].abs().max() == 0) for b in range(nb)], dtype=torch.uint8)
        tensors["input." + name] = x.contiguous().clone()
        tensors[c + ".packed"] = packed.reshape(-1).contiguous().clone()
        tensors[c + ".absmax"] = st.absmax.contiguous().clone()
        tensors[c + ".dequant"] = deq.reshape(-1).float().contiguous().clone()
        tensors[c + ".zero_blocks"] = zero
        if dq:
            tensors[c + ".nested_absmax"] = st.state2.absmax.contiguous().clone()
            tensors[c + ".offset"] = st.offset.reshape(1).float()
        cases.append({"name": c, "input": name, "quant_type": qt, "blocksize": bs, "double_quant": dq, "shape": list(x.shape),
                      "dtype": str(x.dtype).replace("torch.", "")})
    # LLM.int8 weight storage (Int8Params: int8_vectorwise_quant, no threshold) and its dequant
    for name in ("odd", "bf16", "big", "ramp"):
        x = ins[name].float()
        cb, scb, _ = F.int8_vectorwise_quant(x.clone())
        tensors["int8.%s.cb" % name] = cb.contiguous()
        tensors["int8.%s.scb" % name] = scb.contiguous()
        tensors["int8.%s.dequant" % name] = F.int8_vectorwise_dequant(cb, scb).contiguous()
    # torch's float32 mean, as double quant takes it, over deterministic arrays
    sizes = [1, 3, 7, 8, 9, 31, 63, 64, 65, 100, 257, 1000, 4097, 20000, 32767]
    means = []
    for n in sizes:
        i = np.arange(n, dtype=np.int64)
        a = torch.from_numpy((((i * 2654435761) % 1000003) / 1000003.0 * 0.3).astype(np.float32))
        means.append(a.mean().item())
    tensors["mean.sizes"] = torch.tensor(sizes, dtype=torch.int64)
    tensors["mean.values"] = torch.tensor(means, dtype=torch.float32)
    save_file({k: v.clone() for k, v in tensors.items()}, os.path.join(OUT, "bnb4.safetensors"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(len(cases), "cases,", os.path.getsize(os.path.join(OUT, "bnb4.safetensors")), "bytes")


if __name__ == "__main__":
    main()
