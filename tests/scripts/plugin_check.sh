# plugin_check.sh — `hone plugins --check FILE.so`: every built-in plugin (and the 1.1-built
# test plugin) passes the conformance round; optimizers that break a promise fail it with
# the feature and the step named, a crash included; files that do not load are refused.
. "$(dirname "$0")/lib.sh"
for f in "$HONE_BUILD"/plugins/*.so "$ABI_DIR/old_minor/old_minor.so"; do
  expect 0 "$(basename "$f"): [0-9]+ features?, [0-9]+ steps passed, 0 failed" -- "$HONE" plugins --check "$f"
done
expect 0 "ok +optimizer adafactor: resume: steps 5-8 after load equal the run without save/load, bit for bit" \
  -- "$HONE" plugins --check "$HONE_BUILD/plugins/optimizers.so"
expect 0 "ok +scheduler cosine_with_min_lr: check: with min_lr = 0 \(the default options are refused" \
  -- "$HONE" plugins --check "$HONE_BUILD/plugins/schedulers.so"
expect 0 "ok +collator old_lm: label \(own labels\): 3 of 6 tokens trained" \
  -- "$HONE" plugins --check "$ABI_DIR/old_minor/old_minor.so"

# resume not exact: the step count it keeps itself is not in its state
expect 1 "FAIL +optimizer badresume: resume: continuing after load differs from the run without save/load at step 5" \
  -- "$HONE" plugins --check "$BAD_DIR/badresume/badresume.so"
expect 1 "badresume.so: 1 feature, 7 steps passed, 1 failed" -- "$HONE" plugins --check "$BAD_DIR/badresume/badresume.so"
# destroy(NULL) crashes: the child dies, the step is named, the steps before it stand
expect 1 "FAIL +optimizer baddestroy: destroy\(NULL\): (crashed \(signal [0-9]+|the process exited with status)" \
  -- "$HONE" plugins --check "$BAD_DIR/baddestroy/baddestroy.so"
expect 1 "ok +optimizer baddestroy: resume: steps 5-8" -- "$HONE" plugins --check "$BAD_DIR/baddestroy/baddestroy.so"

# what does not load is the loader's error, exit 2
echo "not an ELF file" > "$TMP/fake.so"
expect 2 "plugin .*/fake.so: not a loadable shared object" -- "$HONE" plugins --check "$TMP/fake.so"
expect 2 "plugin .*/new_minor.so: built for hone plugin ABI 1\.[0-9]+, newer than this hone's" \
  -- "$HONE" plugins --check "$ABI_DIR/new_minor/new_minor.so"
expect 2 "plugins: --check needs a value" -- "$HONE" plugins --check
finish
