# quantize_cli.sh — `hone quantize` writes the same bytes bitsandbytes + transformers'
# save_pretrained wrote for the committed fixture (llama-bnb4 was made by
# tests/reference/make_model_fixtures.py), a config.json transformers can read back, and a
# checkpoint hone itself loads to the same greedy tokens; bad arguments are refused.
. "$(dirname "$0")/lib.sh"
M="$HONE_SRC/tests/fixtures/models/llama"
B="$HONE_SRC/tests/fixtures/models/llama-bnb4"
expect 0 "bitsandbytes nf4 checkpoint" -- "$HONE" quantize "$M" "$TMP/q" --quantizer nf4 --set double_quant=true
if cmp "$TMP/q/model.safetensors" "$B/model.safetensors"; then echo "ok: model.safetensors byte-identical to bitsandbytes'"
else echo "FAIL: model.safetensors differs from $B"; fails=$((fails+1)); fi
for k in '"quant_method":[[:space:]]*"bitsandbytes"' '"load_in_4bit":[[:space:]]*true' '"bnb_4bit_quant_type":[[:space:]]*"nf4"' \
         '"bnb_4bit_use_double_quant":[[:space:]]*true' '"bnb_4bit_compute_dtype":[[:space:]]*"float32"'; do
  if grep -Eq -- "$k" "$TMP/q/config.json"; then echo "ok: config.json has $k"
  else echo "FAIL: config.json lacks $k"; fails=$((fails+1)); fi
done
# hone loads its own output exactly as it loads bitsandbytes' checkpoint
want=$("$HONE" generate "$B" --ids 5,9,13,2 --max-new-tokens 6 2>&1)
expect 0 "^$(sed 's/[][]/\\&/g' <<<"$want")$" -- "$HONE" generate "$TMP/q" --ids 5,9,13,2 --max-new-tokens 6
expect 0 "bitsandbytes fp4 checkpoint" -- "$HONE" quantize "$M" "$TMP/f" --quantizer fp4
expect 0 '"bnb_4bit_quant_type":[[:space:]]*"fp4"' -- cat "$TMP/f/config.json"
expect 0 "^\[[0-9, ]+\]$" -- "$HONE" generate "$TMP/f" --ids 5,9,13,2 --max-new-tokens 6
# refusals
expect 2 "usage: hone quantize" -- "$HONE" quantize "$M"
expect 2 "quantize: unknown quantizer 'int4'" -- "$HONE" quantize "$M" "$TMP/x" --quantizer int4
expect 2 "quantize: unknown option --frob" -- "$HONE" quantize "$M" "$TMP/x" --quantizer nf4 --frob 1
expect 2 "double_quant" -- "$HONE" quantize "$M" "$TMP/x" --quantizer nf4 --set double_quant=maybe
expect 2 "config.json: cannot open" -- "$HONE" quantize /nonexistent "$TMP/x" --quantizer nf4
expect 2 "already a bitsandbytes nf4 checkpoint" -- "$HONE" quantize "$B" "$TMP/x" --quantizer nf4
expect 2 "model.safetensors already exists" -- "$HONE" quantize "$M" "$TMP/q" --quantizer nf4
finish
