#!/usr/bin/env python3
"""Writes tests/fixtures/optim/: 20-step optimizer trajectories on fixed gradients.

Three trainable tensors, as a LoRA run has them: A [64, 72] and B [37, 123] (in the weight
decay group; B's 4551 elements end in a partial 256-block) and v [300] (no decay, under
bitsandbytes' 4096-element floor for 8-bit state). The gradients are a formula both sides
compute in float32 (grad() below; tests/test_optim.c has the same), so only the initial
parameters and the results are stored. The learning rate moves every step
(lr0 * (1 - (s-1)/40)), as a schedule would move it.

Where each reference comes from:
- adamw*, sgd*: torch.optim.AdamW / SGD (torch 2.5.1), clipped with
  torch.nn.utils.clip_grad_norm_ where the case says so.
- lion: bitsandbytes.optim.Lion(optim_bits=32) on bitsandbytes 0.50.2's CPU backend, whose
  order (decay, sign step, then the momentum) is the CUDA kernel's.
- adafactor*: transformers.optimization.Adafactor (4.51.3).
- paged_adamw_32bit, adamw_8bit*: the CUDA kernels kOptimizer32bit2State and
  kOptimizerStatic8bit2StateBlockwise typed out below in float32 (numpy), because
  bitsandbytes' CPU backend does not follow their order: it decays before the Adam step
  (the kernels after it), puts eps after the bias correction (the kernels scale eps by
  sqrt(1 - beta2^t)) and rounds codes with bucketize (the kernels with quantize_2D's search,
  ties to the pivot). Plain float32 division and powf stand in for the kernels'
  __fdividef/__powf, whose last bits a CPU cannot reproduce. The script checks the typed-out
  8-bit update against the real CPU backend with weight decay 0, where the two orders agree
  up to rounding, and prints how many codes match.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_optim_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as BF
from safetensors.numpy import save_file
from transformers.optimization import Adafactor

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "optim")
f32 = np.float32
SHAPES = {"A": (64, 72), "B": (37, 123), "v": (300,)}
SCALE = {"A": f32(1.0), "B": f32(1e-3), "v": f32(0.05)}
DECAY = {"A": True, "B": True, "v": False}
NAMES = ["A", "B", "v"]
STEPS = 20


def grad(name, step):
    """float32 gradient of tensor `name` at optimizer step `step` (1-based)."""
    n = int(np.prod(SHAPES[name]))
    salt = {"A": 1, "B": 2, "v": 3}[name]
    i = np.arange(n, dtype=np.uint64)
    x = ((i + np.uint64(1)) * np.uint64(0x9E3779B1)) ^ (np.uint64(step * 7919 + salt) * np.uint64(0x85EBCA77))
    x &= np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(12)
    k = (x % np.uint64(20001)).astype(np.int64) - 10000
    u = k.astype(f32) / f32(10000.0)
    return ((u + f32(0.2)) * SCALE[name]).reshape(SHAPES[name])


def lr_at(lr0, step):
    return lr0 * (1.0 - (step - 1) / 40.0)


def init_params():
    g = torch.Generator().manual_seed(11)
    return {k: (torch.randn(*SHAPES[k], generator=g) * 0.1).numpy() for k in NAMES}


# ---- the bitsandbytes CUDA kernels, typed out in float32 ---------------------------

QMAP1 = BF.create_dynamic_map(signed=True).numpy().astype(f32)
QMAP2 = BF.create_dynamic_map(signed=False).numpy().astype(f32)


def quantize_2d(x, code, signed):
    n = x.shape[0]
    pivot = np.full(n, 127)
    upper_pivot = np.full(n, 255)
    lower_pivot = np.zeros(n, dtype=np.int64)
    lower = np.full(n, f32(-1.0) if signed else f32(0.0), dtype=f32)
    upper = np.full(n, f32(1.0), dtype=f32)
    val = np.full(n, code[127], dtype=f32)
    i = 64
    while i > 0:
        gt = x > val
        lower_pivot = np.where(gt, pivot, lower_pivot)
        lower = np.where(gt, val, lower)
        upper_pivot = np.where(gt, upper_pivot, pivot)
        upper = np.where(gt, upper, val)
        pivot = np.where(gt, pivot + i, pivot - i)
        val = code[pivot]
        i >>= 1
    gt = x > val
    mid_hi = (upper + val) * f32(0.5)
    mid_lo = (lower + val) * f32(0.5)
    return np.where(gt, np.where(x > mid_hi, upper_pivot, pivot), np.where(x < mid_lo, lower_pivot, pivot))


def kernel_adam32(st, p, g, step, lr, b1, b2, eps, wd):
    b1, b2, eps, lr, wd = f32(b1), f32(b2), f32(eps), f32(lr), f32(wd)
    c1 = f32(1) - np.power(b1, f32(step))
    c2 = np.sqrt(f32(1) - np.power(b2, f32(step)))
    step_size = (-lr * c2) / c1
    st["s1"] = st["s1"] * b1 + (f32(1) - b1) * g
    st["s2"] = st["s2"] * b2 + (f32(1) - b2) * (g * g)
    p = p + step_size * (st["s1"] / (np.sqrt(st["s2"]) + eps * c2))
    if wd > 0:
        p = p * (f32(1) - lr * wd)
    return p


def kernel_adam8(st, p, g, step, lr, b1, b2, eps, wd, cpu_coeffs=False):
    # cpu_coeffs: 1 - beta rounded from double, as the CPU backend's alpha= gets it (the
    # kernels subtract in float32); used only to check the rest against the CPU backend
    om1, om2 = (f32(1 - b1), f32(1 - b2)) if cpu_coeffs else (f32(1) - f32(b1), f32(1) - f32(b2))
    b1, b2, eps, lr, wd = f32(b1), f32(b2), f32(eps), f32(lr), f32(wd)
    n = p.shape[0]
    nb = (n + 255) // 256
    c1 = f32(1) - np.power(b1, f32(step))
    c2 = np.sqrt(f32(1) - np.power(b2, f32(step)))
    step_size = (-lr * c2) / c1
    pad = nb * 256 - n
    gp = np.concatenate([g, np.zeros(pad, dtype=f32)])
    c1s = np.concatenate([st["c1"], np.full(pad, 128, dtype=np.uint8)]).astype(np.int64)
    c2s = np.concatenate([st["c2"], np.zeros(pad, dtype=np.uint8)]).astype(np.int64)
    blk = np.arange(nb * 256) // 256
    s2 = QMAP2[c2s] * st["a2"][blk]
    s2 = (s2 * b2) + ((om2 * gp) * gp)
    s1 = QMAP1[c1s] * st["a1"][blk]
    s1 = (s1 * b1) + (om1 * gp)
    a1 = np.abs(s1).reshape(nb, 256).max(axis=1).astype(f32)   # the padded lanes count, as in the kernel
    a2 = np.abs(s2).reshape(nb, 256).max(axis=1).astype(f32)
    p = p + step_size * (s1[:n] / (np.sqrt(s2[:n]) + c2 * eps))
    if wd > 0:
        p = p * (f32(1) - lr * wd)
    with np.errstate(divide="ignore", invalid="ignore"):
        x1 = (s1 / a1[blk]).astype(f32)
        x2 = (s2 / a2[blk]).astype(f32)
    q1 = quantize_2d(x1, QMAP1, True)
    q2 = quantize_2d(x2, QMAP2, False)
    nearest_check(x1, q1, QMAP1)
    nearest_check(x2, q2, QMAP2)
    fix = np.signbit(QMAP1[q1]) != np.signbit(s1)
    q1 = np.where(fix, np.where(s1 > 0, q1 + 1, q1 - 1), q1) & 255
    st["c1"], st["c2"], st["a1"], st["a2"] = q1[:n].astype(np.uint8), q2[:n].astype(np.uint8), a1, a2
    return p.astype(f32)


def run_kernel(case, params, eight_bit, cpu_coeffs=False):
    o = case["options"]
    b1, b2 = o.get("betas", [0.9, 0.999])
    eps, wd = o.get("eps", 1e-8), o.get("weight_decay", 0.0)
    p = {k: params[k].reshape(-1).copy() for k in NAMES}
    st = {}
    for k in NAMES:
        n = p[k].shape[0]
        if eight_bit and n >= 4096:
            nb = (n + 255) // 256
            st[k] = {"c1": np.zeros(n, np.uint8), "c2": np.zeros(n, np.uint8), "a1": np.zeros(nb, f32),
                     "a2": np.zeros(nb, f32)}
        else:
            st[k] = {"s1": np.zeros(n, f32), "s2": np.zeros(n, f32)}
    out = {}
    for s in range(1, STEPS + 1):
        g = {k: grad(k, s).reshape(-1) for k in NAMES}
        g = clip_numpy(g, case["clip"])
        lr = lr_at(case["lr0"], s)
        for k in NAMES:
            w = wd if DECAY[k] else 0.0
            if "c1" in st[k]:
                p[k] = kernel_adam8(st[k], p[k], g[k], s, lr, b1, b2, eps, w, cpu_coeffs)
            else:
                p[k] = kernel_adam32(st[k], p[k], g[k], s, lr, b1, b2, eps, w)
        if s == STEPS:
            out[f"p{s}"] = np.concatenate([p[k] for k in NAMES])
    for k in NAMES:
        if "c1" in st[k]:
            for f in ("c1", "c2", "a1", "a2"):
                out[f"{k}.{f}"] = st[k][f]
    return out


def clip_numpy(g, max_norm):
    """torch.nn.utils.clip_grad_norm_ on the same float32 tensors."""
    if not max_norm:
        return g
    t = {k: torch.from_numpy(v.copy()) for k, v in g.items()}
    ps = []
    for k in NAMES:
        q = torch.nn.Parameter(torch.zeros_like(t[k]))
        q.grad = t[k]
        ps.append(q)
    torch.nn.utils.clip_grad_norm_(ps, max_norm)
    return {k: ps[i].grad.numpy().copy() for i, k in enumerate(NAMES)}


# ---- torch / bitsandbytes / transformers optimizers --------------------------------

def run_torch(case, params):
    ps = {k: torch.nn.Parameter(torch.from_numpy(params[k].copy())) for k in NAMES}
    o = dict(case["options"])
    opt_name = case["optimizer"]
    wd = o.pop("weight_decay", 0.0)
    groups = [{"params": [ps[k] for k in NAMES if DECAY[k]], "weight_decay": wd},
              {"params": [ps[k] for k in NAMES if not DECAY[k]], "weight_decay": 0.0}]
    lr0 = case["lr0"]
    if opt_name == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr0, betas=tuple(o.get("betas", [0.9, 0.999])), eps=o.get("eps", 1e-8),
                                amsgrad=o.get("amsgrad", False))
    elif opt_name == "sgd":
        opt = torch.optim.SGD(groups, lr=lr0, momentum=o.get("momentum", 0.0), dampening=o.get("dampening", 0.0),
                              nesterov=o.get("nesterov", False))
    elif opt_name == "lion":
        opt = bnb.optim.Lion(groups, lr=lr0, betas=tuple(o.get("betas", [0.9, 0.99])), optim_bits=32)
    elif opt_name == "adafactor":
        rel = o.get("relative_step", False)
        opt = Adafactor(groups, lr=None if rel else lr0, eps=tuple(o.get("eps", [1e-30, 1e-3])),
                        clip_threshold=o.get("clip_threshold", 1.0), decay_rate=o.get("decay_rate", -0.8),
                        beta1=o.get("beta1"), scale_parameter=o.get("scale_parameter", False),
                        relative_step=rel, warmup_init=o.get("warmup_init", False))
    else:
        raise ValueError(opt_name)
    out = {}
    for s in range(1, STEPS + 1):
        for k in NAMES:
            ps[k].grad = torch.from_numpy(grad(k, s).copy())
        if case["clip"]:
            torch.nn.utils.clip_grad_norm_([ps[k] for k in NAMES], case["clip"])
        if not (opt_name == "adafactor" and o.get("relative_step", False)):
            for gr in opt.param_groups:
                gr["lr"] = lr_at(lr0, s)
        opt.step()
        if s == STEPS:
            out[f"p{s}"] = np.concatenate([ps[k].detach().numpy().reshape(-1) for k in NAMES])
    return out


CASES = [
    {"name": "adamw_wd_clip", "optimizer": "adamw", "options": {"weight_decay": 0.01}, "clip": 1.0, "lr0": 1e-3},
    {"name": "adamw_wd", "optimizer": "adamw", "options": {"weight_decay": 0.1, "betas": [0.8, 0.95], "eps": 1e-6},
     "clip": 0.0, "lr0": 2e-3},
    {"name": "adamw_amsgrad_clip", "optimizer": "adamw", "options": {"weight_decay": 0.01, "amsgrad": True},
     "clip": 0.5, "lr0": 1e-3},
    {"name": "sgd_nesterov_wd_clip", "optimizer": "sgd",
     "options": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, "clip": 1.0, "lr0": 0.05},
    {"name": "sgd_plain", "optimizer": "sgd", "options": {}, "clip": 0.0, "lr0": 0.1},
    {"name": "sgd_dampening_wd", "optimizer": "sgd", "options": {"momentum": 0.9, "dampening": 0.5,
                                                                  "weight_decay": 0.05}, "clip": 0.0, "lr0": 0.05},
    {"name": "lion_wd_clip", "optimizer": "lion", "options": {"weight_decay": 0.1}, "clip": 1.0, "lr0": 1e-4},
    {"name": "adafactor_trainer", "optimizer": "adafactor", "options": {}, "clip": 1.0, "lr0": 1e-3},
    {"name": "adafactor_relative_beta1_wd", "optimizer": "adafactor",
     "options": {"relative_step": True, "scale_parameter": True, "warmup_init": True, "beta1": 0.9,
                 "weight_decay": 0.01}, "clip": 0.0, "lr0": 1e-3},
    {"name": "paged_adamw_32bit_wd_clip", "optimizer": "paged_adamw_32bit", "options": {"weight_decay": 0.01},
     "clip": 1.0, "lr0": 1e-3},
    {"name": "adamw_8bit_wd_clip", "optimizer": "adamw_8bit", "options": {"weight_decay": 0.01}, "clip": 1.0,
     "lr0": 1e-3},
    {"name": "paged_adamw_8bit_wd", "optimizer": "paged_adamw_8bit",
     "options": {"weight_decay": 0.1, "betas": [0.9, 0.95]}, "clip": 0.0, "lr0": 2e-3},
]


def check_kernel_against_cpu_backend(params):
    """The typed-out 8-bit kernel against bitsandbytes' real CPU backend, one step with weight
    decay 0 and the CPU backend's 1 - beta: the float32 states (their block absmax) must be
    identical. The codes are not: the CPU backend rounds through csrc/common.cpp's search,
    which on the unsigned map does not always return the nearest code; quantize_2D does
    (checked on every quantization of every case by nearest_check)."""
    global STEPS
    steps, STEPS = STEPS, 1
    mine = run_kernel({"options": {}, "clip": 0.0, "lr0": 1e-3}, params, True, cpu_coeffs=True)
    STEPS = steps
    ps = {k: torch.nn.Parameter(torch.from_numpy(params[k].copy())) for k in NAMES}
    opt = bnb.optim.AdamW8bit([ps[k] for k in NAMES], lr=1e-3, weight_decay=0.0)
    for k in NAMES:
        ps[k].grad = torch.from_numpy(grad(k, 1).copy())
    opt.step()
    for k in ("A", "B"):
        st = opt.state[ps[k]]
        assert np.array_equal(st["absmax1"].numpy(), mine[f"{k}.a1"]), k
        assert np.array_equal(st["absmax2"].numpy(), mine[f"{k}.a2"]), k
        same1 = (st["state1"].numpy().reshape(-1) == mine[f"{k}.c1"]).mean()
        same2 = (st["state2"].numpy().reshape(-1) == mine[f"{k}.c2"]).mean()
        print(f"  step 1 vs the CPU backend, {k}: absmax equal; codes equal {same1:.2%} (signed), "
              f"{same2:.2%} (unsigned)")


NEAREST = {"checked": 0}


def nearest_check(x, q, code):
    """quantize_2D's pick is always a nearest code (NaN inputs aside)."""
    ok = ~np.isnan(x)
    d = np.abs(x[ok] - code[q[ok]])
    best = np.abs(x[ok][:, None] - code[None, :]).min(axis=1)
    assert np.array_equal(d, best)
    NEAREST["checked"] += int(ok.sum())


def main():
    os.makedirs(OUT, exist_ok=True)
    params = init_params()
    tensors = {f"init.{k}": params[k].reshape(-1) for k in NAMES}
    for s in (1, STEPS):   # lets the C test check its gradient formula
        tensors[f"grad{s}.B"] = grad("B", s).reshape(-1)
    check_kernel_against_cpu_backend(params)
    for case in CASES:
        opt = case["optimizer"]
        if opt in ("paged_adamw_32bit",):
            out = run_kernel(case, params, False)
        elif opt in ("adamw_8bit", "paged_adamw_8bit"):
            out = run_kernel(case, params, True)
        else:
            out = run_torch(case, params)
        for k, v in out.items():
            tensors[f"{case['name']}.{k}"] = np.ascontiguousarray(v)
        print(case["name"], "p20[:3]", out["p20"][:3])
    save_file(tensors, os.path.join(OUT, "optim.safetensors"))
    meta = {"shapes": {k: list(SHAPES[k]) for k in NAMES}, "decay": DECAY, "steps": STEPS,
            "versions": {"torch": torch.__version__, "bitsandbytes": bnb.__version__}, "cases": CASES}
    with open(os.path.join(OUT, "cases.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"quantize_2D gave a nearest code for all {NEAREST['checked']} values")
    print("maps: signed[126..129]", QMAP1[126:130], "unsigned[0..2]", QMAP2[:3])


if __name__ == "__main__":
    main()
