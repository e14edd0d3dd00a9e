# tokenize_cli.sh — `hone tokenize`: stdin lines to id lists and back, with and without
# special tokens, JSON-string input, and clear errors. Expected ids are the Hugging Face
# `tokenizers` package's (the same as tests/fixtures/tokenizers/expected-qwen3.json).
. "$(dirname "$0")/lib.sh"
Q="$HONE_SRC/tests/fixtures/tokenizers/qwen3"
T="$HONE_SRC/tests/fixtures/tokenizers/synth-tiny"
expect 0 "^\[9707, 1879, 0\]$" -- sh -c "echo 'Hello world!' | '$HONE' tokenize --tokenizer '$Q'"
expect 0 "^\[151644, 872, 15588, 151645\]$" -- sh -c "echo '<|im_start|>user hi<|im_end|>' | '$HONE' tokenize --tokenizer '$Q'"
expect 0 "^Hello world!$" -- sh -c "echo '[9707, 1879, 0]' | '$HONE' tokenize --tokenizer '$Q' --decode"
expect 0 "^\"a\\\\nb\"$" -- sh -c "echo '[64, 198, 65]' | '$HONE' tokenize --tokenizer '$Q' --decode --json"
expect 0 "^\[64, 198, 65\]$" -- sh -c "echo '\"a\\\\nb\"' | '$HONE' tokenize --tokenizer '$Q' --json"
# BOS from the template, and --no-special without it
expect 0 "^\[1, " -- sh -c "echo 'the price' | '$HONE' tokenize --tokenizer '$T'"
first=$(echo 'the price' | "$HONE" tokenize --tokenizer "$T" --no-special | cut -c2-3)
[ "$first" != "1," ] && echo "ok: --no-special leaves out BOS" || { echo "FAIL: BOS with --no-special"; fails=$((fails+1)); }
# skip_special on decode with --no-special
expect 0 "^the$" -- sh -c "echo '[1, 94, 63, 60]' | '$HONE' tokenize --tokenizer '$T' --decode --no-special"
# invalid UTF-8 never crashes; bad input is named
expect 0 "^\[" -- sh -c "printf 'ab\377\376cd\n' | '$HONE' tokenize --tokenizer '$Q'"
expect 2 "stdin:2: expected a JSON list of ids" -- sh -c "printf '[1]\nnope\n' | '$HONE' tokenize --tokenizer '$Q' --decode"
expect 2 "stdin:1: token id 999999 is not in the vocabulary" -- sh -c "echo '[999999]' | '$HONE' tokenize --tokenizer '$Q' --decode"
expect 2 "usage: hone tokenize" -- "$HONE" tokenize
echo '{"model": {"type": "Unigram", "vocab": []}}' > "$TMP/uni.json"
expect 2 "uni.json: model: model.type \"Unigram\" is not supported" -- sh -c "echo x | '$HONE' tokenize --tokenizer '$TMP/uni.json'"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "BertPreTokenizer"}}' > "$TMP/bert.json"
expect 2 "bert.json: pre_tokenizer: pre-tokenizer type \"BertPreTokenizer\" is not supported" -- sh -c "echo x | '$HONE' tokenize --tokenizer '$TMP/bert.json'"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]}}' > "$TMP/pc.json"
expect 2 "pc.json: normalizer.normalizers\[1\]: normalizer type \"Precompiled\" is not supported" -- sh -c "echo x | '$HONE' tokenize --tokenizer '$TMP/pc.json'"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' > "$TMP/merge.json"
expect 2 "merge.json: model: model.merges\[0\]: a part is not in the vocabulary" -- sh -c "echo x | '$HONE' tokenize --tokenizer '$TMP/merge.json'"
finish
