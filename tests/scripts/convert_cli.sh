# convert_cli.sh — `hone convert BASE --adapter DIR OUT`: the merged model is byte for byte
# what peft's merge_and_unload + save_pretrained write (tests/fixtures/merge, from
# tests/reference/make_merge_fixtures.py) for an fp32 base (kept in f32, or cast to bf16)
# and a bf16 base with tied embeddings and rslora; every refusal names what is wrong.
# `--to gguf` (compared with llama.cpp's converter by test_export): a GGUF converts back to
# an HF directory whose tokenizer gives the same ids, and its refusals.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
M="$HONE_SRC/tests/fixtures/models"
X="$HONE_SRC/tests/fixtures/merge"
expect 0 "21 tensors \(14 merged, scaling 2\), 94528 parameters in f32" -- "$HONE" convert "$M/llama" --adapter "$M/llama/adapter" f32 --dtype f32
expect 0 "21 tensors \(14 merged, scaling 2\), 94528 parameters in bf16" -- "$HONE" convert "$M/llama" --adapter "$M/llama/adapter" bf16
expect 0 "20 tensors \(4 merged, scaling 5.65685\), 50160 parameters in bf16" -- "$HONE" convert "$M/llama-gqa" --adapter "$M/llama-gqa/adapter" gqa
for pair in f32:llama-f32 bf16:llama-f32-bf16 gqa:gqa-bf16; do
  cmp -s "${pair%%:*}/model.safetensors" "$X/${pair#*:}.safetensors" && echo "ok: ${pair%%:*} is byte-identical to peft's ${pair#*:}" \
    || { echo "FAIL: ${pair%%:*}/model.safetensors differs from $X/${pair#*:}.safetensors"; fails=$((fails+1)); }
done
grep -q '"torch_dtype":[[:space:]]*"bfloat16"' bf16/config.json && grep -q '"torch_dtype":[[:space:]]*"float32"' f32/config.json \
  && grep -q '"tie_word_embeddings":[[:space:]]*true' gqa/config.json && echo "ok: config.json carries the dtype and the base's settings" \
  || { echo "FAIL: config.json"; fails=$((fails+1)); }
# refusals
expect 1 "f32/model.safetensors exists; hone convert does not overwrite" -- "$HONE" convert "$M/llama" --adapter "$M/llama/adapter" f32
expect 1 "lora_A \[8, 48\] and lora_B \[[0-9]+, 8\] do not fit the base's model.layers.0.self_attn.[qv]_proj.weight \[[0-9]+, 64\]" \
  -- "$HONE" convert "$M/llama" --adapter "$M/llama-gqa/adapter" wrong
expect 1 "pre-quantized checkpoint; merge into the original" -- "$HONE" convert "$M/llama-bnb4" --adapter "$M/llama/adapter" q
mkdir dora && cp "$M/llama/adapter/adapter_model.safetensors" dora/
sed 's/"use_dora": false/"use_dora": true/' "$M/llama/adapter/adapter_config.json" > dora/adapter_config.json
expect 1 "dora/adapter_config.json: use_dora = true is not supported" -- "$HONE" convert "$M/llama" --adapter dora d
# one reader of adapter_config.json: what merging refuses, generation and loading refuse too
mkdir pat && cp "$M/llama/adapter/adapter_model.safetensors" pat/
sed 's/"rank_pattern": {}/"rank_pattern": {"q_proj": 2}/' "$M/llama/adapter/adapter_config.json" > pat/adapter_config.json
grep -q '"q_proj": 2' pat/adapter_config.json || { echo "FAIL: the fixture has no rank_pattern to edit"; fails=$((fails+1)); }
expect 1 "pat/adapter_config.json: a non-empty rank_pattern is not supported" -- "$HONE" convert "$M/llama" --adapter pat p
expect 2 "pat/adapter_config.json: a non-empty rank_pattern is not supported" -- "$HONE" generate "$M/llama" --adapter pat --ids 1,2
mkdir cut && cp "$M/llama/adapter/adapter_config.json" cut/ && head -c 3000 "$M/llama/adapter/adapter_model.safetensors" > cut/adapter_model.safetensors
expect 1 "cut/adapter_model.safetensors" -- "$HONE" convert "$M/llama" --adapter cut c
[ ! -e wrong/model.safetensors ] && [ ! -e d ] && [ ! -e c/model.safetensors ] && echo "ok: nothing written by a refused merge" \
  || { echo "FAIL: a refused merge wrote files"; fails=$((fails+1)); }
expect 2 "--adapter nowhere: not a directory" -- "$HONE" convert "$M/llama" --adapter nowhere o
expect 2 "--dtype f16: bf16 or f32" -- "$HONE" convert "$M/llama" --adapter "$M/llama/adapter" o --dtype f16
expect 2 "usage: hone convert" -- "$HONE" convert "$M/llama" --adapter "$M/llama/adapter"
# --to gguf: the file reads back through hone convert, with the same tokenizer
E="$HONE_SRC/tests/fixtures/export"
expect 0 "21 tensors, 57504 parameters, matrices in Q8_0, norms in F32 \(8 merged, scaling 2\)" \
  -- "$HONE" convert "$E/model" --adapter "$E/adapter" m.gguf --to gguf --type q8_0
expect 0 "rebuilt from the GGUF's gpt2 vocabulary" -- "$HONE" convert m.gguf back
printf 'hone 123 tokens\nPrice is $42.00\n' > lines.txt
"$HONE" tokenize --tokenizer "$E/model/tokenizer.json" < lines.txt > ids-a.txt
"$HONE" tokenize --tokenizer back/tokenizer.json < lines.txt > ids-b.txt
[ -s ids-a.txt ] && cmp -s ids-a.txt ids-b.txt && echo "ok: the round-tripped tokenizer gives the same ids" \
  || { echo "FAIL: tokenizer after GGUF round trip"; paste ids-a.txt ids-b.txt; fails=$((fails+1)); }
expect 1 "m.gguf exists; hone convert does not overwrite" -- "$HONE" convert "$E/model" m.gguf --to gguf
mkdir odd && cp "$E/model/"* odd/ && cp "$HONE_SRC/tests/fixtures/tokenizers/synth-bytelevel/tokenizer.json" odd/
expect 1 "odd/tokenizer.json: hone writes byte-level BPE \(\"gpt2\"\) vocabularies with a pre-tokenizer llama.cpp knows" \
  -- "$HONE" convert odd o.gguf --to gguf
expect 1 "model_type \"qwen2\"; hone writes llama-architecture GGUFs" -- "$HONE" convert "$M/qwen2" q.gguf --to gguf
[ ! -e o.gguf ] && [ ! -e q.gguf ] && echo "ok: nothing written by a refused export" || { echo "FAIL: refused export wrote"; fails=$((fails+1)); }
expect 2 "--type q4_k: f16 or q8_0" -- "$HONE" convert "$E/model" x.gguf --to gguf --type q4_k
expect 2 "--to onnx: only gguf" -- "$HONE" convert "$E/model" x.onnx --to onnx
finish
