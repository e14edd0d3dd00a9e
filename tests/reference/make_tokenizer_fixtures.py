#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/: a varied corpus, small tokenizers that exercise every
tokenizer.json component hone supports, and the ids / decoded texts the Hugging Face
`tokenizers` package gives for each corpus entry.

  corpus.json              the texts
  qwen3/                   the real Qwen3 tokenizer (byte-level BPE, split regex, NFC)
  synth-*/tokenizer.json   tokenizers trained here on the corpus, then edited to switch on
                           components (byte fallback, legacy merges, ignore_merges, ...)
  expected-<name>.json     per text: ids (add_special_tokens=True), ids_plain (False),
                           decoded (decode(ids_plain)), decoded_skip (skip_special_tokens)
The Llama 2 tokenizer is read from ../shared/data (its licence keeps it out of the repo);
only its expected ids are written here (expected-llama2.json).

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_tokenizer_fixtures.py
(tokenizers 0.21.4 from PyPI made the committed files)
"""
import json
import os
import shutil
import subprocess

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken, Regex

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "tokenizers")
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data", "tokenizers")


def corpus():
    texts = [
        "",
        "Hello world!",
        "The quick brown fox jumps over the lazy dog. It wasn't me; they'd say I'll go.",
        "How much does this cost to the nearest dollar?\n\nAcme Widget Pro 3000\nWeight: 2.5 lbs\n\nPrice is $1,299.99",
        "Prices: $0.99, $12.50, €1.234,56, ¥10000, 3.14159, -42, 1e-5, 100%, 2024-11-28",
        "def f(x):\n    return x ** 2  # square\n\tif x > 0:\n\t\tprint(\"pos\")\n",
        "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
        "   leading spaces", "trailing spaces   ", "many     inner      spaces", " ", "  ", "\t\t", "\n", "\n\n\n",
        "line1\r\nline2\rline3\n\r\nline4",
        "tabs\tin\tthe\tmiddle",
        "emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️",
        "中文测试：你好，世界！日本語のテキスト。한국어 텍스트.",
        "العربية: مرحبا بالعالم", "עברית: שלום עולם",
        "combining: e\u0301 a\u0308 n\u0303 \u1e9b\u0323 Å vs A\u030a",
        "ligatures and width: ﬁ ﬂ ＡＢＣ ① ½ ㎏ ™",
        "Turkish İstanbul ıi and Greek ΣΑΣ σας",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
        "special <s> inside </s> text <unk> here",
        "<|endoftext|>", "x<|endoftext|>y",
        "[MASK] and [SEP] and <extra>",
        "URLs: https://example.com/path?q=1&r=2#frag and mail@example.org",
        "MiXeD CaSe WoRdS and ALLCAPS",
        "numbers 1234567890 0000 12 345 6789",
        "punctuation!!! ??? ... --- ;;; ::: \"quoted\" 'single' (parens) [brackets] {braces}",
        "Zero-width\u200bspace and nbsp\u00a0here and narrow\u202fnbsp",
        "nul byte? no. bell\u0007 and del\u007f and \u0085 next line",
        "a" * 10000,
        "ab" * 2500 + " " + "xyz" * 1000,
        "Price is $" + "9" * 300,
    ]
    texts += ["word%d" % i for i in range(5)]
    return texts


def train_bpe(texts, **kw):
    margs = {k: v for k, v in (("unk_token", kw.pop("unk", None)), ("continuing_subword_prefix", kw.pop("prefix", None)),
                               ("end_of_word_suffix", kw.pop("suffix", None))) if v is not None}
    tok = Tokenizer(models.BPE(fuse_unk=kw.pop("fuse_unk", False), **margs))
    if "normalizer" in kw:
        tok.normalizer = kw.pop("normalizer")
    if "pre" in kw:
        tok.pre_tokenizer = kw.pop("pre")
    if "decoder" in kw:
        tok.decoder = kw.pop("decoder")
    special = kw.pop("special", [])
    targs = {k: v for k, v in (("continuing_subword_prefix", kw.pop("trainer_prefix", None)),
                               ("end_of_word_suffix", kw.pop("trainer_suffix", None))) if v is not None}
    trainer = trainers.BpeTrainer(vocab_size=kw.pop("vocab", 600), special_tokens=special, show_progress=False,
                                  initial_alphabet=kw.pop("alphabet", []), **targs)
    tok.train_from_iterator(texts * 3, trainer)
    return tok


def edit_json(tok, fn):
    j = json.loads(tok.to_str())
    fn(j)
    return Tokenizer.from_str(json.dumps(j)), j


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    texts = corpus()
    with open(os.path.join(OUT, "corpus.json"), "w") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
    train_texts = [t for t in texts if len(t) < 1000] + [
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore"]
    toks = {}

    # qwen3: the real file, copied compressed
    os.makedirs(os.path.join(OUT, "qwen3"))
    for f in ("tokenizer.json.zst", "tokenizer_config.json"):
        shutil.copy(os.path.join(SHARED, "qwen3", f), os.path.join(OUT, "qwen3", f))
    raw = subprocess.run(["zstd", "-dc", os.path.join(SHARED, "qwen3", "tokenizer.json.zst")], capture_output=True,
                         check=True).stdout
    toks["qwen3"] = Tokenizer.from_str(raw.decode())

    # synth-meta: SentencePiece-like (Metaspace "first", split), byte fallback, unk fused,
    # added tokens with lstrip / rstrip / single_word / normalized, Metaspace decoder chain
    t = train_bpe(train_texts, unk="<unk>", fuse_unk=True, special=["<unk>", "<s>", "</s>"],
                  normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s{3,}"), "   ")]),
                  pre=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
                  decoder=decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True),
                                             decoders.ByteFallback(), decoders.Fuse()]))
    t.add_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, single_word=False, normalized=False, special=True),
                  AddedToken("word", single_word=True, normalized=True, special=False),
                  AddedToken("ＡＢＣ", normalized=True, special=False)])
    t.add_special_tokens([AddedToken("[SEP]", rstrip=True, normalized=False)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                     special_tokens=[("<s>", 1), ("</s>", 2)])

    def byte_fallback(j):
        v = j["model"]["vocab"]
        n = max(v.values()) + 1
        for b in range(256):
            key = "<0x%02X>" % b
            if key not in v:
                v[key] = n
                n += 1
        j["model"]["byte_fallback"] = True
        # drop a few characters from the vocab so byte fallback and unk both happen
        for ch in ["中", "😀", "ع"]:
            v.pop(ch, None)
        j["model"]["merges"] = [m for m in j["model"]["merges"]
                                if all(p in v for p in (m if isinstance(m, list) else m.split(" ")))
                                and "".join(m if isinstance(m, list) else m.split(" ")) in v]
    toks["synth-meta"], jm = edit_json(t, byte_fallback)

    # synth-bytelevel: GPT-2 style ByteLevel(add_prefix_space, use_regex) after a Split with
    # Contiguous digits; legacy "a b" merges; ignore_merges
    t = train_bpe(train_texts, pre=pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d"), behavior="contiguous"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)]),
        decoder=decoders.ByteLevel(), alphabet=pre_tokenizers.ByteLevel.alphabet(), special=["<|endoftext|>"])
    t.post_processor = processors.ByteLevel(trim_offsets=False)

    def legacy(j):
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
        j["model"]["ignore_merges"] = True
    toks["synth-bytelevel"], _ = edit_json(t, legacy)

    # synth-wordpiece-like: prefix "##" and suffix "</w>", lowercase + strip + NFD normalizer,
    # Whitespace + Digits(individual) + Punctuation pre-tokenizers, Replace/Strip decoders
    t = train_bpe(train_texts, unk="<unk>", prefix="##", suffix="</w>", trainer_prefix="##", trainer_suffix="</w>",
                  special=["<unk>", "[CLS]", "[SEP]"],
                  normalizer=normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.Strip()]),
                  pre=pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated"),
                                               pre_tokenizers.Digits(individual_digits=True)]),
                  decoder=decoders.Sequence([decoders.Replace("##", ""), decoders.Replace("</w>", " "),
                                             decoders.Fuse(), decoders.Strip(" ", 0, 1)]))
    t.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    toks["synth-suffix"] = t

    # synth-split: every Split behaviour and invert, Prepend + NFKD + Replace(String)
    t = train_bpe(train_texts, unk="<unk>", special=["<unk>"],
                  normalizer=normalizers.Sequence([normalizers.NFKD(), normalizers.Prepend("^"),
                                                   normalizers.Replace("\t", "    ")]),
                  pre=pre_tokenizers.Sequence([
                      pre_tokenizers.Split(" ", behavior="merged_with_next"),
                      pre_tokenizers.Split(Regex(r"[.,;:!?]"), behavior="merged_with_previous"),
                      pre_tokenizers.Split(Regex(r"\p{Lu}+"), behavior="contiguous", invert=True),
                      pre_tokenizers.Split(Regex(r"\x{7f}"), behavior="removed"),
                      pre_tokenizers.Split(Regex(r"\n"), behavior="isolated")]))
    toks["synth-split"] = t

    # synth-ws: Whitespace + contiguous Digits, a Sequence post-processor
    t = train_bpe(train_texts, unk="<unk>", special=["<unk>", "<bos>"],
                  pre=pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=False)]))
    t.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                            processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])])
    toks["synth-ws"] = t

    # synth-tiny: 96 ids, to pair with the tiny test model (vocab 96) for text generation
    t = train_bpe([x for x in train_texts if x.isascii()], vocab=96, unk="<unk>", special=["<unk>", "<s>", "</s>"],
                  pre=pre_tokenizers.Metaspace(), decoder=decoders.Metaspace())
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    toks["synth-tiny"] = t

    for name, tok in toks.items():
        if name.startswith("synth"):
            os.makedirs(os.path.join(OUT, name), exist_ok=True)
            tok.save(os.path.join(OUT, name, "tokenizer.json"))
            tok = Tokenizer.from_file(os.path.join(OUT, name, "tokenizer.json"))
        write_expected(name, tok, texts)
    # invalid UTF-8: hone reads bytes; the reference is Python's decode(errors="replace")
    bad = [b"\xff", b"abc\xfe\xffdef", b"\xc3", b"x\xe2\x82", b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 big",
           b"\xc0\xaf overlong", b"ok \xe2\x82\xac euro \x80\x80", b"\xf0\x9f\x98 cut emoji", b"<|im_end|>\xff"]
    for name in ("qwen3", "synth-meta"):
        tok = toks[name] if name == "qwen3" else Tokenizer.from_file(os.path.join(OUT, name, "tokenizer.json"))
        rows = [{"hex": b.hex(), "ids": tok.encode(b.decode("utf-8", errors="replace"), add_special_tokens=False).ids}
                for b in bad]
        with open(os.path.join(OUT, "expected-%s-bytes.json" % name), "w") as f:
            json.dump(rows, f, separators=(",", ":"))
    llama = os.path.join(SHARED, "llama2", "tokenizer.json.zst")
    if os.path.exists(llama):
        raw = subprocess.run(["zstd", "-dc", llama], capture_output=True, check=True).stdout
        write_expected("llama2", Tokenizer.from_str(raw.decode()), texts)


def decode(tok, ids, skip):
    # tokenizers' Strip decoder panics on an empty token (strip.rs indexes chars[len - 1]);
    # such rows record null and hone's test checks only that hone does not crash
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException:
        return None


def write_expected(name, tok, texts):
    rows = []
    for s in texts:
        ids = tok.encode(s, add_special_tokens=True).ids
        plain = tok.encode(s, add_special_tokens=False).ids
        rows.append({"ids": ids, "ids_plain": plain, "decoded": decode(tok, plain, False),
                     "decoded_skip": decode(tok, ids, True)})
    with open(os.path.join(OUT, "expected-%s.json" % name), "w") as f:
        json.dump(rows, f, ensure_ascii=False, separators=(",", ":"))
    print(name, sum(len(r["ids"]) for r in rows), "ids")


if __name__ == "__main__":
    main()
