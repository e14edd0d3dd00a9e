#!/usr/bin/env python3
"""Writes tests/fixtures/schedules.csv: the learning rate of every optimizer step for a set
of `hone schedule` invocations, computed with transformers' schedule formulas typed out
from src/transformers/optimization.py (the lambdas of get_scheduler), applied as LambdaLR
does: lr(step) = base_lr * lambda(step), the k-th optimizer step using lambda(k).

Pure Python (math only), so it runs anywhere:  python3 tests/reference/schedules.py
Warmup steps follow TrainingArguments.get_warmup_steps: warmup_steps if > 0 else
ceil(total * warmup_ratio).
"""
import csv
import math
import os


def warmup(s, w):
    return float(s) / float(max(1, w))


def linear(s, w, t, o, lr):
    if s < w:
        return warmup(s, w)
    return max(0.0, float(t - s) / float(max(1, t - w)))


def cosine(s, w, t, o, lr):
    if s < w:
        return warmup(s, w)
    nc = o.get("num_cycles", 0.5)
    progress = float(s - w) / float(max(1, t - w))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(nc) * 2.0 * progress)))


def cosine_with_restarts(s, w, t, o, lr):
    if s < w:
        return warmup(s, w)
    nc = o.get("num_cycles", 1)
    progress = float(s - w) / float(max(1, t - w))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(nc) * progress) % 1.0))))


def polynomial(s, w, t, o, lr):
    lr_end, power, lr_init = o.get("lr_end", 1e-7), o.get("power", 1.0), lr
    if s < w:
        return warmup(s, w)
    elif s > t:
        return lr_end / lr_init
    lr_range = lr_init - lr_end
    decay_steps = t - w
    pct_remaining = 1 - (s - w) / decay_steps
    decay = lr_range * pct_remaining**power + lr_end
    return decay / lr_init


def constant(s, w, t, o, lr):
    return 1


def constant_with_warmup(s, w, t, o, lr):
    if s < w:
        return float(s) / float(max(1.0, w))
    return 1.0


def inverse_sqrt(s, w, t, o, lr):
    timescale = o.get("timescale") or (w or 10_000)
    if s < w:
        return warmup(s, w)
    shift = timescale - w
    return 1.0 / math.sqrt((s + shift) / timescale)


def cosine_with_min_lr(s, w, t, o, lr):
    rate = o["min_lr"] / lr if "min_lr" in o else o["min_lr_rate"]
    nc = o.get("num_cycles", 0.5)
    if s < w:
        return warmup(s, w)
    progress = float(s - w) / float(max(1, t - w))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(nc) * 2.0 * progress))
    factor = factor * (1 - rate) + rate
    return max(0, factor)


def warmup_stable_decay(s, w, t, o, lr):
    d = o["num_decay_steps"] if "num_decay_steps" in o else math.ceil(t * o["decay_ratio"])
    st = o.get("num_stable_steps", t - w - d)
    wt, dt = o.get("warmup_type", "linear"), o.get("decay_type", "cosine")
    mr, nc = o.get("min_lr_ratio", 0), o.get("num_cycles", 0.5)
    if s < w:
        p = float(s) / float(max(1, w))
        f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}[wt]
        return max(0.0, f * (1.0 - mr) + mr)
    if s < w + st:
        return 1.0
    if s < w + st + d:
        p = float(s - w - st) / float(max(1, d))
        f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * float(nc) * 2.0 * p)),
             "1-sqrt": 1.0 - math.sqrt(p)}[dt]
        return max(0.0, f * (1.0 - mr) + mr)
    return mr


FNS = {f.__name__: f for f in [linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup,
                               inverse_sqrt, cosine_with_min_lr, warmup_stable_decay]}

# (name, lr, steps, warmup_ratio, warmup_steps, options)
CASES = [
    ("cosine", 1e-4, 100, 0.1, 0, {}),
    ("cosine", 2e-4, 37, 0.0, 5, {"num_cycles": 1.25}),
    ("cosine", 1e-3, 1, 0.5, 0, {}),
    ("linear", 5e-5, 100, 0.03, 0, {}),
    ("linear", 1e-4, 10, 0.0, 10, {}),
    ("linear", 3e-4, 7, 0.0, 0, {}),
    ("constant", 1e-4, 20, 0.1, 0, {}),
    ("constant_with_warmup", 1e-4, 30, 0.2, 0, {}),
    ("cosine_with_restarts", 1e-4, 90, 0.1, 0, {"num_cycles": 3}),
    ("polynomial", 1e-4, 50, 0.1, 0, {"lr_end": 1e-6, "power": 2.0}),
    ("polynomial", 1e-4, 40, 0.0, 0, {}),
    ("inverse_sqrt", 1e-3, 60, 0.0, 12, {}),
    ("inverse_sqrt", 1e-3, 30, 0.0, 0, {}),
    ("inverse_sqrt", 1e-3, 30, 0.1, 0, {"timescale": 7}),
    ("cosine_with_min_lr", 1e-4, 80, 0.05, 0, {"min_lr": 1e-5}),
    ("cosine_with_min_lr", 1e-4, 80, 0.05, 0, {"min_lr_rate": 0.1, "num_cycles": 0.75}),
    ("warmup_stable_decay", 1e-4, 100, 0.1, 0, {"num_decay_steps": 20}),
    ("warmup_stable_decay", 1e-4, 100, 0.0, 8,
     {"num_decay_steps": 30, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", 1e-4, 100, 0.0, 8,
     {"num_decay_steps": 30, "num_stable_steps": 40, "warmup_type": "1-sqrt", "decay_type": "linear"}),
    ("warmup_stable_decay", 1e-4, 64, 0.1, 0, {"decay_ratio": 0.25, "num_cycles": 0.4}),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "schedules.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["case", "args", "step", "lr"])
        for i, (name, lr, steps, ratio, wsteps, opts) in enumerate(CASES):
            warm = wsteps if wsteps > 0 else math.ceil(steps * ratio)
            args = f"{name} --lr {lr!r} --steps {steps}"
            args += f" --warmup-steps {wsteps}" if wsteps > 0 else f" --warmup-ratio {ratio!r}"
            for k, v in opts.items():
                args += f" --set {k}={v}"
            for s in range(steps):
                w.writerow([i, args, s, repr(lr * FNS[name](s, warm, steps, opts, lr))])


if __name__ == "__main__":
    main()
