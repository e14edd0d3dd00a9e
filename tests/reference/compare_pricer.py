#!/usr/bin/env python3
"""compare_pricer.py — the main job (experiments/pricer.lua) trained by TRL's SFTTrainer and
by hone side by side, from the same initial adapter in the same order, on this machine.

TRL runs the pricer's recipe (SmolLM2-135M-Instruct in NF4 + double quant, LoRA r 32 /
alpha 64 on all seven linears, paged_adamw_32bit, lr 1e-4 cosine with warmup 0.1, batch 8,
3 epochs, max_length 96, group_by_length, the first 320 training records, evaluation on
the 120 test records after every epoch) through tests/reference/trl_replay.py; hone then
runs experiments/pricer.lua in fp32 (as TRL computes here) with lora.init_adapter = TRL's initial adapter and
data.order_file = the order TRL's sampler drew. Printed: each epoch's eval loss of both
(TRL's reported figure, a mean of batch means, and the token-weighted mean of its
forwards, which is what hone reports), and with --dropout 0 the step-by-step check.

  --dropout D      LoRA dropout (the recipe's 0.1; 0 makes the two runs the same math)
  --as-users-get-it  keep TRL's bf16 LoRA weights, bitsandbytes' AVX512-BF16 eval path and its
                   CPU table lookup for the nested absmax codes (what TRL 1.16 + bitsandbytes
                   0.50.2 do on this CPU; trl_replay.py says what each is); else all three off
  --bf16-adapters  keep only TRL's bf16 LoRA weights (what TRL does on a GPU too)

  scripts/fetch_model && ~/.cache/hone-sft-venv/bin/python tests/reference/compare_pricer.py OUT_DIR [--dropout 0]
"""
import argparse
import json
import os
import subprocess
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trl_replay  # noqa: E402


def records(name, n=None):
    raw = subprocess.run(["zstdcat", os.path.join(ROOT, "experiments", "data", "pricer", name)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    return [json.loads(line) for line in raw[:n]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--as-users-get-it", action="store_true")
    ap.add_argument("--bf16-adapters", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = os.path.abspath(args.out)
    model = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct")
    recipe = dict(r=32, alpha=64, dropout=args.dropout, optim="paged_adamw_32bit", batch=8, grad_accum=1, epochs=3,
                  lr=1e-4, warmup_ratio=0.1, max_grad_norm=1.0, max_length=96, eval_batch=8)
    trl_json = os.path.join(out, "trl", "trl.json")
    if not os.path.exists(trl_json):
        trl_replay.run(model, records("train.jsonl.zst", 320), records("test.jsonl.zst"), recipe,
                       os.path.join(out, "trl"), bnb_cpu_bf16=args.as_users_get_it,
                       bf16_adapters=args.as_users_get_it or args.bf16_adapters, bnb_cpu_lut=args.as_users_get_it)
    meta = json.load(open(trl_json))
    runs = os.path.join(out, "hone-runs")
    subprocess.run([os.path.join(ROOT, "build", "hone"), "run", os.path.join(ROOT, "experiments", "pricer.lua"),
                    "--set", f"output_dir={runs}", "--set", f"lora.init_adapter={out}/trl/init",
                    "--set", f"data.order_file={out}/trl/order.txt", "--set", "data.group_by_length=false",
                    "--set", f"lora.dropout={args.dropout}", "--set", "train.log_every=1",
                    "--set", "model.compute_dtype=fp32"], check=True, cwd=ROOT)
    run = sorted(d for d in os.listdir(runs) if d.startswith("pricer-"))[-1]
    rows = [json.loads(line) for line in open(os.path.join(runs, run, "metrics.jsonl"))]
    hone_evals = [r["eval_loss"] for r in rows if r.get("split") == "eval"]
    print(f"\npricer, dropout {args.dropout}, TRL "
          f"(LoRA {meta['lora_dtype_trained']}, bnb AVX512-BF16 eval path {'on' if meta['bnb_cpu_bf16_eval_path'] else 'off'}, "
          f"nested codes {'by table' if meta['bnb_cpu_nested_lut'] else 'nearest'})")
    print("epoch  TRL eval_loss (reported)  TRL token-weighted  hone eval_loss")
    for e, h in zip(meta["evals"], hone_evals):
        print(f"{e['epoch']:5d}  {e['eval_loss']:24.4f}  {e['eval_loss_token_weighted']:18.4f}  {h:14.4f}")
    check = [os.path.join(ROOT, "build", "tests", "replay_check"), trl_json, os.path.join(out, "trl", "order.txt"),
             os.path.join(runs, run, "metrics.jsonl"), "1e-4", "1e-3"]
    res = subprocess.run(check, capture_output=True, text=True)
    print(res.stdout.strip().splitlines()[-1])
    with open(os.path.join(out, "replay_check.txt"), "w") as fh:
        fh.write(res.stdout)


if __name__ == "__main__":
    main()
