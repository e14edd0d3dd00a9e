"""make_group_fixtures.py — transformers' group_by_length order (get_length_grouped_indices)
for a few datasets, with the random permutation it started from, so test_data checks
hone_group_by_length on the same permutation (tests/fixtures/data/group_by_length.json).

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_group_fixtures.py
"""
import json
import os

import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

cases = []
# (examples, batch = batch_size x grad_accum, length range): one megabatch smaller than the
# data, the 50-batch cap, a tiny set, a partial last megabatch, many equal lengths
for n, batch, lo, hi, seed in ((320, 8, 40, 96, 1), (1000, 4, 1, 300, 2), (7, 8, 3, 9, 3), (33, 2, 5, 40, 4),
                               (200, 5, 10, 13, 5)):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 100)).tolist()
    order = get_length_grouped_indices(lengths, batch, generator=torch.Generator().manual_seed(seed + 100))
    cases.append({"lengths": lengths, "batch": batch, "perm": perm, "order": order})

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data", "group_by_length.json")
with open(out, "w") as f:
    json.dump({"transformers": __import__("transformers").__version__, "cases": cases}, f)
print(out)
