#!/usr/bin/env python3
"""bench_vs_torch — hone's training step against transformers + peft on the same config, in one run.

The same LoRA training step runs on both sides, each in a fresh process, alternately
(torch fp32, hone fp32, torch bf16, hone bf16; --rounds times), with the same threads:

  hone      `hone bench`: a synthetic model (random weights), LoRA r on all seven linears
            (alpha 2r, no dropout), random token ids [batch, seq]; per step: forward with
            the causal LM loss (labels = the ids shifted by one, the last position of each
            row unlabelled; mean over the labelled tokens), backward, a plain SGD update of
            the LoRA weights (lr 1e-4), zeroing the gradients. Step 0 warms up; tokens/s is
            batch * seq / the mean of the timed steps.
  torch     transformers' LlamaForCausalLM (or the config's architecture) from the same
            config.json, random init, attn_implementation="sdpa", fp32 weights; peft
            LoraConfig(r, lora_alpha=2r, lora_dropout=0, all seven linears); per step:
            loss = model(input_ids=ids, labels=ids).loss (transformers shifts the labels:
            the same loss), backward, torch.optim.SGD(lr=1e-4).step(), zero_grad. bf16 is
            torch.autocast("cpu", dtype=torch.bfloat16) around the forward and the loss,
            fp32 master weights. The same warm-up step and the same tokens/s.

hone bf16 is `hone bench --dtype bf16`; where hone refuses it (a CPU without AVX-512, or
an older hone without the option) the table says "refused" and the script still exits 0.

Peak RSS is each process's own maximum resident set (wait4's rusage), the Python
interpreter and torch's libraries included on the torch side.

The Python stack: --python, else ~/.cache/hone-bench-venv, else ~/.cache/hone-sft-venv
(tests/reference/make_sft_fixtures.py's) when it has torch, transformers and peft; else
~/.cache/hone-bench-venv is made and torch, transformers and peft are installed into it
from PyPI (pinned below; torch's PyPI wheel brings its CUDA libraries, several GB).
$HONE_BENCH_VENV names another venv to use or make instead (then nothing is reused).

Exit status: 0 all runs done, 1 a run failed, 2 bad arguments, 3 no Python stack (PyPI
unreachable, the install failed, or --no-install).

This file is also the torch worker (--torch-worker, run with the venv's python).
"""
import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PINS = ["torch==2.15.0", "transformers==5.24.0", "peft==0.21.2"]
MINIMUM = {"torch": (2, 1), "transformers": (4, 40), "peft": (0, 10)}
# $HONE_BENCH_VENV: the one venv to use or make (no reuse)
VENV = os.environ.get("HONE_BENCH_VENV") or os.path.expanduser("~/.cache/hone-bench-venv")
REUSE = [] if os.environ.get("HONE_BENCH_VENV") else [os.path.expanduser("~/.cache/hone-sft-venv")]
HONE_BF16 = ["--dtype", "bf16"]   # what hone bench will take for bf16 compute
REFUSED = re.compile(r"unknown option --dtype|compute_dtype|computes in fp32|bf16.*(not (yet )?(built|supported|available)|"
                     r"unsupported|need AVX-512)")
LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# hone bench's default model (core/cli/bench.c, hone_bench_defaults), written out so both sides read one file
DEFAULT_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 1024,
    "intermediate_size": 2816, "num_hidden_layers": 8, "num_attention_heads": 16, "num_key_value_heads": 4,
    "head_dim": 64, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
}
DEFAULTS = {"batch": 4, "seq": 512, "steps": 3, "r": 16}
# --quick: a tiny model (GQA kept) for a smoke test of the script, not a measurement
QUICK_CONFIG = dict(DEFAULT_CONFIG, vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128)
QUICK = {"batch": 2, "seq": 64, "steps": 2, "r": 8}
ARCH_TYPE = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}


# ---------------------------------------------------------------- the torch side

def torch_worker(a):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings
    warnings.filterwarnings("ignore")
    import torch
    import transformers
    import peft
    from transformers import AutoConfig, AutoModelForCausalLM
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, {blas()}, {torch.get_num_threads()} threads")
    print(f"rss after imports: {rss_now_mb():.0f} MB")
    cfg = AutoConfig.from_pretrained(os.path.dirname(a.config))
    cfg.max_position_embeddings = max(cfg.max_position_embeddings, a.seq)
    cfg.use_cache = False
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")   # fp32, torch's default
    if model.config._attn_implementation != "sdpa":
        sys.exit(f"torch worker: attention is {model.config._attn_implementation}, not sdpa")
    lc = peft.LoraConfig(r=a.r, lora_alpha=2 * a.r, lora_dropout=0.0, target_modules=LINEARS, bias="none",
                         task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lc)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    ntrain = sum(p.numel() for p in trainable)
    nall = sum(p.numel() for p in model.parameters())
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()})
    print(f"{type(model.get_base_model()).__name__} (sdpa) + peft LoRA r {a.r}, alpha {2 * a.r}, built in "
          f"{time.perf_counter() - t:.1f} s: trainable {ntrain * 4 / 1e6:.1f} MB, all {nall * 4 / 1e6:.1f} MB, "
          f"weights {'/'.join(dtypes)}, compute {a.dtype}")
    opt = torch.optim.SGD(trainable, lr=1e-4)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), generator=g)
    n = a.batch * a.seq
    total, best = 0.0, 1e30
    for s in range(a.steps + 1):   # step 0 warms up
        t0 = time.perf_counter()
        if a.dtype == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
        t1 = time.perf_counter()
        loss.backward()
        opt.step()
        opt.zero_grad()
        dt = time.perf_counter() - t0
        if s > 0:
            total += dt
            best = min(best, dt)
        print(f"step {s}: {dt:.2f} s (forward {t1 - t0:.2f}, backward + update {dt - (t1 - t0):.2f}), "
              f"loss {loss.item():.4f}{' (warm-up, not counted)' if s == 0 else ''}", flush=True)
    mean = total / a.steps
    print(f"\nthroughput: {n / mean:.1f} tokens/s (mean of {a.steps} steps; best step {n / best:.1f} tokens/s)")


def blas():
    import torch
    show = torch.__config__.show()
    info = re.search(r"BLAS_INFO=(\w+)", show)
    dnn = re.search(r"MKL-DNN (v[0-9.]+)", show)
    return f"BLAS {info.group(1) if info else '?'}, oneDNN {dnn.group(1) if dnn else '-'}"


def rss_now_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- the Python stack

def version_tuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def stack_versions(py):
    """{package: version} of torch, transformers, peft in py, or None when one is missing"""
    code = ("import importlib.metadata as m, json\n"
            "print(json.dumps({p: m.version(p) for p in ('torch', 'transformers', 'peft')}))")
    try:
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def suitable(py):
    v = stack_versions(py) if os.access(py, os.X_OK) else None
    if not v:
        return None, "no torch, transformers and peft"
    old = [f"{p} {v[p]} < {'.'.join(map(str, MINIMUM[p]))}" for p in MINIMUM if version_tuple(v[p]) < MINIMUM[p]]
    return (None, ", ".join(old)) if old else (v, "")


def find_python(a):
    if a.python:
        v, why = suitable(a.python)
        if not v:
            stop(3, f"--python {a.python}: {why}")
        return a.python, v
    for venv in [VENV] + REUSE:
        py = os.path.join(venv, "bin", "python")
        v, _ = suitable(py)
        if v:
            return py, v
    if a.no_install:
        stop(3, f"no Python stack with torch, transformers and peft in {' or '.join([VENV] + REUSE)} (--no-install)")
    return install(), None


def install():
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/"
    print(f"bench_vs_torch: making {VENV} with {' '.join(PINS)} from {index} (once; torch's wheel brings its CUDA "
          "libraries, several GB)", flush=True)
    try:
        urllib.request.urlopen(index + "torch/", timeout=20).close()
    except Exception as e:   # noqa: BLE001 — any failure means the same thing here
        stop(3, f"the package index {index} is not reachable ({e}); torch, transformers and peft cannot be installed. "
                f"Install them into {VENV} by hand, or pass --python PYTHON that has them")
    py = os.path.join(VENV, "bin", "python")
    if not os.access(py, os.X_OK):
        r = subprocess.run([sys.executable, "-m", "venv", VENV])
        if r.returncode:
            stop(3, f"python3 -m venv {VENV} failed (on Debian: apt-get install python3-venv)")
    r = subprocess.run([py, "-m", "pip", "install", "--disable-pip-version-check", *PINS])
    if r.returncode:
        stop(3, f"pip install {' '.join(PINS)} into {VENV} failed (exit {r.returncode}; its output is above)")
    v, why = suitable(py)
    if not v:
        stop(3, f"{VENV} after the install: {why}")
    return py


def stop(code, msg):
    print(f"bench_vs_torch: {msg}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- runs

def run(cmd, env=None):
    """(exit status, stdout + stderr, peak RSS in MB, seconds) of one fresh process"""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        except OSError as e:
            return 127, str(e), 0.0, 0.0
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        dt = time.perf_counter() - t
        out.seek(0)
        return p.returncode, out.read().decode(errors="replace"), ru.ru_maxrss / 1024, dt


def figure(text, pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def machine():
    model = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    want = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    return model, [w for w in want if w in flags], [w for w in want if w not in flags]


def hone_revision(hone, src):
    r = subprocess.run([hone, "--version"], capture_output=True, text=True)
    binary = r.stdout.strip() or "?"
    git = subprocess.run(["git", "-C", src, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return binary, git.stdout.strip() or "?"


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench_vs_torch",
                                 description="hone bench against transformers + peft (fp32 and bf16 autocast) on the same "
                                             "config, alternately in fresh processes, with the ratios.")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the runs (default 2)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="threads on both sides (default: all cores)")
    ap.add_argument("--steps", type=int, help="timed steps per run, after one warm-up step (default 3; --quick 2)")
    ap.add_argument("--batch", type=int, help="default 4 (--quick 2)")
    ap.add_argument("--seq", type=int, help="default 512 (--quick 64)")
    ap.add_argument("--r", type=int, help="LoRA rank, alpha 2r (default 16; --quick 8)")
    ap.add_argument("--config", help="a Hugging Face config.json for both sides (default: hone bench's model)")
    ap.add_argument("--dtypes", default="fp32,bf16",
                    help="which runs: fp32, bf16 or both (default fp32,bf16; torch's bf16 autocast is slow on a CPU "
                         "without AVX-512)")
    ap.add_argument("--quick", action="store_true", help="a tiny model, for a smoke test of the script")
    ap.add_argument("--python", help="a python with torch, transformers and peft (default: the venv, made if missing)")
    ap.add_argument("--no-install", action="store_true", help="exit 3 instead of making the venv")
    ap.add_argument("--hone", default=os.environ.get("HONE"), help="the hone binary (default: $HONE, else build/hone)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every process's whole output")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a)

    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("rounds", "threads", "steps", "batch", "seq", "r"):
        v = getattr(a, name)
        if v is not None and v < 1:
            ap.error(f"--{name} {v}: must be at least 1")
    if a.quick and a.config:
        ap.error("--quick and --config: one or the other")
    dtypes = a.dtypes.split(",")
    if not dtypes or any(d not in ("fp32", "bf16") for d in dtypes):
        ap.error(f"--dtypes {a.dtypes}: expected fp32, bf16 or fp32,bf16")
    base = QUICK if a.quick else DEFAULTS
    for k, v in base.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    hone = a.hone or os.path.join(src, "build", "hone")
    if not os.access(hone, os.X_OK):
        stop(2, f"no hone binary at {hone} (build it: scripts/setup, or pass --hone)")

    work = tempfile.mkdtemp(prefix="hone-vs-torch-")
    atexit.register(shutil.rmtree, work, True)
    cfg_path = os.path.join(work, "config.json")
    if a.config:
        try:
            with open(a.config) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            stop(2, f"--config {a.config}: {e}")
        if not isinstance(cfg, dict):
            stop(2, f"--config {a.config}: not a JSON object")
        if "model_type" not in cfg:   # AutoConfig needs it; hone reads architectures
            arch = (cfg.get("architectures") or ["LlamaForCausalLM"])[0]
            if arch not in ARCH_TYPE:
                stop(2, f"--config {a.config}: architecture {arch} (hone trains {', '.join(ARCH_TYPE)})")
            cfg["model_type"] = ARCH_TYPE[arch]
    else:
        cfg = QUICK_CONFIG if a.quick else DEFAULT_CONFIG
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)

    py, versions = find_python(a)
    versions = versions or stack_versions(py)
    model, have, lack = machine()
    hone_bin, hone_git = hone_revision(hone, src)
    print(f"machine: {model}, {os.cpu_count()} cores; flags: {' '.join(have) or '-'}"
          f"{' (not: ' + ' '.join(lack) + ')' if lack else ''}")
    print(f"versions: {hone_bin} (source tree {hone_git}); torch {versions['torch']}, transformers "
          f"{versions['transformers']}, peft {versions['peft']} ({py})")
    print(f"config: {'--quick (tiny)' if a.quick else a.config or 'hone bench default'}: hidden {cfg.get('hidden_size')}, "
          f"{cfg.get('num_hidden_layers')} layers, {cfg.get('num_attention_heads')}/{cfg.get('num_key_value_heads', cfg.get('num_attention_heads'))} "
          f"heads, intermediate {cfg.get('intermediate_size')}, vocab {cfg.get('vocab_size')}; batch {a.batch} x seq {a.seq}, "
          f"LoRA r {a.r} alpha {2 * a.r} on all seven linears, no dropout, SGD; {a.threads} thread{'s' if a.threads > 1 else ''}; 1 warm-up + "
          f"{a.steps} timed steps per run; {a.rounds} round(s)")
    print(flush=True)

    shape = ["--batch", str(a.batch), "--seq", str(a.seq), "--steps", str(a.steps), "--r", str(a.r),
             "--threads", str(a.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    variants = [f"{side} {d}" for d in ("fp32", "bf16") if d in dtypes for side in ("torch", "hone")]
    results = {v: [] for v in variants}   # (tokens/s, peak RSS MB)
    failed, hone_bf16_refused, flops, trainable, torch_info = [], None, None, {}, None
    for rnd in range(1, a.rounds + 1):
        for v in variants:
            side, dtype = v.split()
            if v == "hone bf16" and hone_bf16_refused:
                continue
            if side == "torch":
                cmd = [py, os.path.abspath(__file__), "--torch-worker", "--dtype", dtype, "--config", cfg_path] + shape
            else:
                cmd = [hone, "bench", "--model-config", cfg_path] + shape + (HONE_BF16 if dtype == "bf16" else [])
            print(f"round {rnd}, {v}: ", end="", flush=True)
            rc, out, rss, wall = run(cmd, env)
            if a.verbose:
                print("\n" + "\n".join("    " + l for l in out.rstrip().splitlines()))
            tps = figure(out, r"throughput: ([0-9.]+) tokens/s")
            if v == "hone bf16" and rc and REFUSED.search(out):
                hone_bf16_refused = out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
                print(f"refused ({hone_bf16_refused})")
                continue
            if rc or tps is None:
                tail = "\n".join("    " + l for l in out.rstrip().splitlines()[-15:])
                print(f"FAILED (exit {rc}{', no throughput line' if not rc else ''}):\n{tail}")
                failed.append(f"round {rnd} {v}")
                continue
            best = figure(out, r"best step ([0-9.]+) tokens/s")
            mb = figure(out, r"trainable ([0-9.]+) MB")
            if mb is not None:
                trainable[side] = mb
            extra = ""
            if side == "hone":
                sg, gf = figure(out, r"sgemm[^:]*: ([0-9.]+) GFLOP/s"), figure(out, r"achieved: ([0-9.]+) GFLOP/s")
                if gf is not None:   # GFLOP per step, from hone's count of the products and its mean step
                    flops = gf * a.batch * a.seq / tps
                extra = f", {gf:.1f} GFLOP/s, {100 * gf / sg:.0f}% of its sgemm's {sg:.1f}" if gf and sg else ""
            elif torch_info is None:
                torch_info = next((l for l in out.splitlines() if l.startswith("torch ")), None)
            print(f"{tps:.1f} tokens/s (best step {best:.1f}), peak RSS {rss:.0f} MB, {wall:.0f} s wall{extra}", flush=True)
            results[v].append((tps, rss))
    if len(trainable) == 2 and abs(trainable["torch"] - trainable["hone"]) > 0.15:
        print(f"\nWARNING: the sides train different parameter counts: hone {trainable['hone']} MB, torch {trainable['torch']} MB")

    if torch_info:
        print(f"\n{torch_info}")
    print(f"\n{a.threads} thread{'s' if a.threads > 1 else ''}; batch {a.batch} x seq {a.seq}; tokens/s over {a.rounds} round(s) of {a.steps} timed steps"
          + (f"; GFLOP/s from hone's count of the step's matrix products: {flops:.4g} GFLOP per step" if flops else "") + "\n")
    print("| run | tokens/s (min) | tokens/s (median) | GFLOP/s (median) | peak RSS |")
    print("|---|---|---|---|---|")
    med = {}
    for v in variants:
        r = results[v]
        if not r:
            why = "refused" if v == "hone bf16" and hone_bf16_refused else "failed"
            print(f"| {v} | {why} | | | |")
            continue
        t = [x[0] for x in r]
        med[v] = statistics.median(t)
        gf = f"{flops * med[v] / (a.batch * a.seq):.1f}" if flops else ""
        print(f"| {v} | {min(t):.1f} | {med[v]:.1f} | {gf} | {max(x[1] for x in r) / 1024:.2f} GB |")
    torch_best = max((v for v in ("torch fp32", "torch bf16") if v in med), key=lambda v: med[v], default=None)

    def ratio(num, den, label):
        if den is None:
            print(f"{label}: - (no torch figure)")
        elif num in med and den in med:
            print(f"{label}: {med[num] / med[den]:.2f}x")
        else:
            missing = num if num not in med else den
            print(f"{label}: - ({missing} {'refused' if missing == 'hone bf16' and hone_bf16_refused else 'missing'})")

    print("\nratios of the medians:")
    ratio("hone fp32", "torch fp32", "hone fp32 / torch fp32")
    best_label = f"best torch ({torch_best})" if torch_best else "best torch"
    if "bf16" in dtypes:
        ratio("hone bf16", torch_best, f"hone bf16 / {best_label}")
    ratio("hone fp32", torch_best, f"hone fp32 / {best_label}")
    if hone_bf16_refused:
        print(f"hone bf16: refused here ({hone_bf16_refused})")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
