"""tokenizer_dirs.py — the tokenizers of hone's data fixtures, loaded with transformers:
the committed Qwen3 one (tokenizer.json.zst, decompressed to a temporary directory) and
Llama 2's from ../shared. Used by make_data_fixtures.py and make_trl1_data_fixtures.py."""
import os
import shutil
import subprocess
import tempfile

from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOKENIZERS = {"qwen3": "tests/fixtures/tokenizers/qwen3", "llama2": "../shared/data/tokenizers/llama2"}


def load_tokenizer(name):
    src = os.path.join(ROOT, TOKENIZERS[name])
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "tokenizer.json"), "wb") as fh:
        fh.write(subprocess.run(["zstd", "-dc", os.path.join(src, "tokenizer.json.zst")], check=True,
                                capture_output=True).stdout)
    shutil.copy(os.path.join(src, "tokenizer_config.json"), tmp)
    tok = AutoTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)
    return tok
