# generate_cli.sh — `hone generate` with and without an adapter gives transformers'
# greedy tokens (the expected ids below came from generate(..., do_sample=False) on the
# same fixture with transformers 4.51.3 + peft 0.15.2), and its arguments are checked.
. "$(dirname "$0")/lib.sh"
M="$HONE_SRC/tests/fixtures/models/llama"
expect 0 "^\[54, 33, 55, 17, 68, 39\]$" -- "$HONE" generate "$M" --ids 5,9,13,2 --max-new-tokens 6
expect 0 "^\[22, 61, 69, 82, 39, 61\]$" -- "$HONE" generate "$M" --adapter "$M/adapter" --ids 5,9,13,2 --max-new-tokens 6
expect 0 "^\[[0-9, ]+\]$" -- "$HONE" generate "$M" --ids 5,9 --temperature 0.8 --top-k 10 --top-p 0.9 --seed 3
# text in and out through the model dir's tokenizer (transformers gives 'PR' for this prompt)
cp "$M/config.json" "$M/model.safetensors" "$HONE_SRC/tests/fixtures/tokenizers/synth-tiny/tokenizer.json" "$TMP/"
expect 0 "^PR$" -- "$HONE" generate "$TMP" --prompt "the price is" --max-new-tokens 12
expect 0 "^P$" -- "$HONE" generate "$TMP" --prompt "the price is" --max-new-tokens 12 --stop R
expect 2 "tokenizer.json.zst: cannot open" -- "$HONE" generate "$M" --prompt "hello"
expect 2 "give --prompt TEXT or --ids" -- "$HONE" generate "$M" --prompt "hello" --ids 1
expect 2 "generate: token 500 outside the vocabulary|prompt 0 has token 500 outside the vocabulary" -- "$HONE" generate "$M" --ids 1,500
expect 2 "--top-p 2: must be a number in \[0, 1\]" -- "$HONE" generate "$M" --ids 1 --top-p 2
expect 2 "expected token ids separated by commas" -- "$HONE" generate "$M" --ids a,b
expect 2 "config.json: cannot open" -- "$HONE" generate /nonexistent --ids 1
finish
