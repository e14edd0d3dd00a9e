-- pricer_sweep.lua — the pricer (experiments/pricer.lua) over r in {8, 16, 32} and lr in
-- {1e-4, 3e-4} with alpha = 2r: six members, two at a time with a core each, compared by
-- the best epoch's mean absolute price error. The sweep directory gets summary.csv,
-- summary.md and report.html; `hone runs SWEEP_DIR` prints the table again.
--
--   scripts/fetch_model && build/hone run experiments/pricer_sweep.lua [--dry-run]
--
-- Each member is the main job (about 10 minutes on 2 cores), so the sweep takes about an
-- hour there; re-running the script continues an interrupted sweep.
local hone = require("hone")

local base = require("pricer")   -- the experiment table experiments/pricer.lua returns

hone.sweep {
  base = base,
  grid = { ["lora.r"] = { 8, 16, 32 }, ["train.lr"] = { 1e-4, 3e-4 } },
  derive = function(cfg) cfg.lora.alpha = 2 * cfg.lora.r end,
  parallel = 2,
  metric = "price.abs_error", mode = "min",
}
