# plugins_listing.sh — `hone plugins` lists every built-in feature with its file and
# summary, and one feature's options with type, default, range and help.
. "$(dirname "$0")/lib.sh"
expect 0 "scheduler +cosine +schedulers.so +linear warmup, then cosine decay" -- "$HONE" plugins
expect 0 "optimizer +signsgd +signsgd.so" -- "$HONE" plugins
expect 0 "quantizer +none" -- "$HONE" plugins quantizer
for s in constant constant_with_warmup linear cosine cosine_with_restarts polynomial inverse_sqrt \
         cosine_with_min_lr warmup_stable_decay; do
  expect 0 "scheduler +$s " -- "$HONE" plugins scheduler
done
expect 0 "num_cycles +number +0.5 +>= 0 +waves of the cosine" -- "$HONE" plugins scheduler cosine
expect 0 "momentum +number +0.9 +\[0, 1\)" -- "$HONE" plugins optimizer signsgd
expect 0 "lr_end +number +1e-07" -- "$HONE" plugins polynomial
expect 0 "options: none" -- "$HONE" plugins scheduler linear
expect 2 "no scheduler named 'cosin' \(registered: constant, " -- "$HONE" plugins scheduler cosin
expect 2 "unknown kind 'schedulr'" -- "$HONE" plugins schedulr cosine
expect 2 "no feature named 'nothing'" -- "$HONE" plugins nothing
# "optimizers" (plural) works as a kind
expect 0 "optimizer +signsgd" -- "$HONE" plugins optimizers
finish
