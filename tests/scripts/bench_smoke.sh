# bench_smoke.sh — `hone bench` runs end to end on a tiny config and reports its figures
# (a smoke test: the figures themselves are for the README, not asserted).
. "$(dirname "$0")/lib.sh"
cfg="$HONE_SRC/tests/fixtures/models/llama/config.json"
expect 0 "achieved: [0-9.]+ GFLOP/s = [0-9]+% of sgemm" -- "$HONE" bench --model-config "$cfg" --seq 12 --batch 2 --steps 1
expect 0 "activations: .*gradient checkpointing on" -- "$HONE" bench --model-config "$cfg" --seq 12 --batch 2 --steps 1 --checkpointing
expect 0 "full fine-tuning" -- "$HONE" bench --model-config "$cfg" --seq 12 --batch 2 --steps 1 --full
expect 2 "bench: --seq x: must be an integer in \[1, 1048576\]" -- "$HONE" bench --seq x
expect 2 "bench: .*nope.json: cannot open" -- "$HONE" bench --model-config nope.json
finish
