# pricer_data.sh — the pricer dataset generator is deterministic and the shipped files are
# what it generates; records have the prompt / completion format the experiment trains on.
. "$(dirname "$0")/lib.sh"
cd "$HONE_SRC" || exit 1
expect 0 "train.jsonl.zst: 1200 records" -- env PRICER_OUT="$TMP/a" "$HONE" run experiments/make_pricer_data.lua
expect 0 "baseline: predicting the training mean" -- env PRICER_OUT="$TMP/b" "$HONE" run experiments/make_pricer_data.lua
for f in train test; do
  if zstd -dc "$TMP/a/$f.jsonl.zst" | cmp -s - <(zstd -dc "$TMP/b/$f.jsonl.zst") \
     && zstd -dc "$TMP/a/$f.jsonl.zst" | cmp -s - <(zstd -dc "experiments/data/pricer/$f.jsonl.zst"); then
    echo "ok: $f is the same on every run and equals the shipped file"
  else
    echo "FAIL: $f differs between runs or from experiments/data/pricer/$f.jsonl.zst"; fails=$((fails+1))
  fi
done
n=$(zstd -dc experiments/data/pricer/test.jsonl.zst | grep -c '"prompt": "How much does this cost to the nearest dollar?\\n\\n.*\\n\\nPrice is \$", "completion": "[0-9]*\.00"}')
[ "$n" = 120 ] && echo "ok: 120 test records in the prompt / completion format" || { echo "FAIL: $n well-formed test records"; fails=$((fails+1)); }
finish
