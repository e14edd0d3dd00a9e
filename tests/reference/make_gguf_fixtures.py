#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/: a small GGUF file (gguf-py 0.19's GGUFWriter, format v3)
holding metadata of every value type and tensors in F32, F16, BF16, Q8_0, Q4_0, Q4_1,
Q4_K and Q6_K, and expected.safetensors with each tensor dequantized to float32 by
gguf-py's own dequantizers (gguf.quants.dequantize), plus meta.json with the metadata
values tests/test_gguf.c checks.

The K-quant tensors hold random blocks with finite fp16 scales: gguf-py quantizes K-quants
only through llama.cpp, so their bytes are made directly and dequantized by gguf-py.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_gguf_fixtures.py
(gguf 0.19.0, numpy from PyPI)
"""
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf")


def k_blocks(rng, qtype, n_blocks):
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == Q.Q4_K:   # d, dmin: fp16 at bytes 0..3
        raw[:, 0:2] = np.float16(rng.uniform(0.001, 0.02, n_blocks)).view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:4] = np.float16(rng.uniform(0.001, 0.02, n_blocks)).view(np.uint8).reshape(n_blocks, 2)
    elif qtype == Q.Q6_K:   # d: fp16 in the last two bytes
        raw[:, -2:] = np.float16(rng.uniform(0.001, 0.02, n_blocks)).view(np.uint8).reshape(n_blocks, 2)
    return raw


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(3)
    path = os.path.join(OUT, "tiny.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint32("llama.block_count", 2)
    w.add_uint64("test.u64", 1 << 40)
    w.add_int32("test.i32", -7)
    w.add_float32("test.f32", 0.25)
    w.add_float64("test.f64", -1.5)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ✓")
    w.add_array("test.strings", ["a", "", "three"])
    w.add_array("test.ints", [1, 2, 3, -4])
    w.add_uint8("test.u8", 200)
    w.add_int16("test.i16", -300)
    expected = {}
    rows, cols = 4, 256   # cols: a multiple of every block size (256 for K-quants)
    x = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    for name, qtype in [("f32", Q.F32), ("f16", Q.F16), ("bf16", Q.BF16), ("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0),
                        ("q4_1", Q.Q4_1)]:
        if qtype == Q.F32:
            data = x
        elif qtype == Q.F16:
            data = x.astype(np.float16)
        else:
            data = quants.quantize(x, qtype)
        w.add_tensor(f"t.{name}", data, raw_dtype=qtype)
        expected[f"t.{name}"] = quants.dequantize(data, qtype).reshape(rows, cols).astype(np.float32)
    for name, qtype in [("q4_k", Q.Q4_K), ("q6_k", Q.Q6_K)]:
        raw = k_blocks(rng, qtype, rows).reshape(rows, -1)
        w.add_tensor(f"t.{name}", raw, raw_dtype=qtype)
        expected[f"t.{name}"] = quants.dequantize(raw, qtype).reshape(rows, cols).astype(np.float32)
    # a 1-D tensor and an odd shape in F32
    v = rng.standard_normal(7).astype(np.float32)
    w.add_tensor("t.vec", v)
    expected["t.vec"] = v
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, os.path.join(OUT, "expected.safetensors"))
    meta = {"general.architecture": "llama", "llama.block_count": 2, "test.u64": 1 << 40, "test.i32": -7,
            "test.f32": 0.25, "test.f64": -1.5, "test.bool": True, "test.string": "héllo ✓",
            "test.strings": ["a", "", "three"], "test.ints": [1, 2, 3, -4], "test.u8": 200, "test.i16": -300,
            "tensors": {k: list(v.shape) for k, v in expected.items()}}
    with open(os.path.join(OUT, "meta.json"), "w") as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=1)
    print(os.path.getsize(path), "bytes;", sorted(expected))


if __name__ == "__main__":
    main()
