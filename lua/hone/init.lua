-- hone — the Lua side of `require("hone")`.
--
-- Experiment scripts build a spec with hone.experiment and return it; `hone run`
-- validates it against the schema (core/host/schema.c) and runs it. The C half of the module
-- (hone.core) holds what needs the registry: hone.optimize and hone.plugins.
local core = require("hone.core")

local hone = {}

hone.version = core.version

-- Marks a table as an experiment spec. Validation happens in `hone run`, against the
-- schema and the registered plugins, so errors name the key at fault.
function hone.experiment(spec)
  if type(spec) ~= "table" then
    error("hone.experiment expects a table, got " .. type(spec), 2)
  end
  return spec
end

-- hone.optimize { optimizer = ..., scheduler = ..., lr = ..., steps = ..., params = {...},
--                 loss = function(p) return loss, grad end [, resume_at = k] }
-- Runs an optimizer plugin and a schedule on a Lua objective; returns
-- { params = ..., losses = ..., lrs = ..., state_bytes = ... }.
hone.optimize = core.optimize

-- hone.resolve(spec) -> the experiment as a run sees it: every key with its value,
-- defaults and plugin options included (hone.resolve(spec).train.lr); a bad spec raises
-- the error hone run would print
hone.resolve = core.resolve

-- hone.plugins("optimizer") -> the registered names of that kind
hone.plugins = core.plugins

-- hone.sweep { base = spec, grid = {...}, paired = {...}, random = { n, space }, derive = fn,
--              parallel = N, metric = ..., mode = "min"|"max", early_terminate = {...} }
-- (see lua/hone/sweep.lua); hone.uniform / loguniform / choice for random spaces.
local sweep = require("hone.sweep")
function hone.sweep(spec) return sweep.sweep(hone, spec) end   -- a tail call: errors name the script
hone.uniform, hone.loguniform, hone.choice = sweep.uniform, sweep.loguniform, sweep.choice

-- hone.train(spec) runs an experiment and returns the run:
--   { name, dir, status, steps, epochs, train_loss, best = { checkpoint, dir, metric, value },
--     history = { metrics rows... } }
-- so a script can chain runs (e.g. seed the next from run.best.dir).
-- (a result, like hone.sweep's: see sweep.result_mt)
function hone.train(...) return setmetatable(core.train(...), sweep.result_mt) end

return hone
