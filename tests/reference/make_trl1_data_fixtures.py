#!/usr/bin/env python3
"""Writes tests/fixtures/data/cases-trl1.json: prompt/completion records and the input_ids
and labels TRL 1.16's SFTTrainer._prepare_dataset makes of them, for tests/test_data.c.

Where TRL 1.x parts from 0.19 (cases.json, make_data_fixtures.py):
- the completion starts where the prompt's and the prompt + completion's ids diverge
  (common_prefix_length), not after len(prompt ids) tokens, when the prompt does not
  tokenize as a prefix (a word that goes on into the completion, "lap" + "top");
- after truncation, examples left without a trained token (the prompt alone fills
  max_length) are dropped.
Each case lists the records TRL kept ("kept"), so the test can drop what TRL dropped.

  ~/.cache/hone-sft-venv/bin/python tests/reference/make_trl1_data_fixtures.py
(trl 1.16.0, transformers 5.24.0; the venv of make_sft_fixtures.py)
"""
import json
import os
import tempfile
import sys
import warnings

warnings.filterwarnings("ignore")
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_dirs import TOKENIZERS, load_tokenizer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "data")
PAIRS = [
    ("Q: what does a 2kg bag of rice cost?\nA:", " $3.49"),
    ("A new lap", "top for work"),            # the word goes on: the prompt is not a prefix
    ("Price is $1", "23.00"),
    ("The kettle is in stock and", "n't on sale"),
    ("a long prompt that will be cut by the maximum length of this case so nothing is left", " yes"),
    ("Item: kettle\nPrice:", " 24.99{eos}"),
]


class Prep:
    """what _prepare_dataset reads of the trainer, as SFTTrainer.__init__ sets it"""

    def __init__(self, tok):
        self._tokenizer, self.chat_template, self.completion_only_loss = tok, None, True


def trl_prepare(tok, records, max_length):
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_length=max_length, dataset_num_proc=None, report_to=[],
                     use_cpu=True, bf16=False)
    ds = Dataset.from_list([dict(r, record=i) for i, r in enumerate(records)])
    ds = SFTTrainer._prepare_dataset(Prep(tok), ds, tok, args, False, None, "train")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    coll = DataCollatorForLanguageModeling(pad_token_id=pad)
    out = []
    for ex in ds:
        b = coll([{"input_ids": ex["input_ids"], "labels": ex["labels"]}])
        out.append({"record": ex["record"], "input_ids": b["input_ids"][0].tolist(), "labels": b["labels"][0].tolist()})
    return out


def main():
    cases = []
    for name in TOKENIZERS:
        if not os.path.exists(os.path.join(ROOT, TOKENIZERS[name])):
            print("skipped", name, "(absent)")
            continue
        tok = load_tokenizer(name)
        pc = [{"prompt": p, "completion": c.replace("{eos}", tok.eos_token)} for p, c in PAIRS]
        for p, c in PAIRS[:4]:
            a, b = tok(p)["input_ids"], tok(p + c)["input_ids"]
            print(name, repr(p), "prefix" if b[:len(a)] == a else "NOT a prefix")
        cases.append({"name": f"{name}-trl1-prompt-completion", "tokenizer": TOKENIZERS[name], "records": pc,
                      "collator": None, "options": {}, "max_length": 16, "drop_untrained": True,
                      "expected": trl_prepare(tok, pc, 16)})
        print(name, "kept", [e["record"] for e in cases[-1]["expected"]])
    meta = {"versions": {"trl": trl.__version__, "transformers": transformers.__version__}, "cases": cases}
    with open(os.path.join(OUT, "cases-trl1.json"), "w") as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
