-- quickstart.lua — hone's first job, while the model and trainer are being built: fit a
-- small price model through the plugin registry.
--
-- Products have a category (3 kinds), a brand tier and a weight; their log-price follows
-- a known linear model plus noise. hone.optimize fits it with an optimizer plugin (adamw,
-- torch.optim.AdamW's update) under a cosine schedule with warmup (the schedulers plugin), checks
-- that a save / reload of the optimizer mid-run changes nothing, and prints the fit.
-- Run:  build/hone run experiments/quickstart.lua
local hone = require("hone")

-- a small deterministic generator (so every run prints the same numbers)
local state = 12345
local function rand()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local function gauss()
  local u, v = math.max(rand(), 1e-12), rand()
  return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * v)
end

-- electronics is the base category; kitchen and toys are offsets from it
local names = { "base", "kitchen", "toys", "brand tier", "log weight" }
local truth = { 3.5, -1.1, -1.8, 0.35, 0.8 }
local rows, prices = {}, {}
for i = 1, 400 do
  local cat = 1 + math.floor(rand() * 3)
  local x = { 1, cat == 2 and 1 or 0, cat == 3 and 1 or 0,
              math.floor(rand() * 4), math.log(0.1 + 5 * rand()) }
  local y = 0
  for k = 1, #x do y = y + truth[k] * x[k] end
  rows[i], prices[i] = x, y + 0.1 * gauss()
end

local function mse(w)
  local loss, grad = 0, {}
  for k = 1, #w do grad[k] = 0 end
  for i = 1, #rows do
    local x, pred = rows[i], 0
    for k = 1, #w do pred = pred + w[k] * x[k] end
    local d = pred - prices[i]
    loss = loss + d * d
    for k = 1, #w do grad[k] = grad[k] + 2 * d * x[k] end
  end
  for k = 1, #w do grad[k] = grad[k] / #rows end
  return loss / #rows, grad
end

local spec = {
  optimizer = "adamw",
  scheduler = "cosine", lr = 0.2, warmup_ratio = 0.05, steps = 400,
  params = { 0, 0, 0, 0, 0 }, loss = mse,
}
print(("fitting %d products, %d parameters: optimizers %s, schedulers %d registered")
  :format(#rows, #truth, table.concat(hone.plugins("optimizer"), ", "), #hone.plugins("scheduler")))
local fit = hone.optimize(spec)
print("step      lr         loss")
for s = 1, spec.steps, 50 do print(("%4d  %9.6f  %11.6f"):format(s - 1, fit.lrs[s], fit.losses[s])) end
print(("%4d  %9.6f  %11.6f"):format(spec.steps - 1, fit.lrs[spec.steps], fit.losses[spec.steps]))

spec.resume_at = 200
local resumed = hone.optimize(spec)
for k = 1, #truth do
  assert(resumed.params[k] == fit.params[k], "resuming the optimizer changed parameter " .. names[k])
end

print("\nparameter      true    fitted")
local worst = 0
for k = 1, #truth do
  print(("%-12s %6.3f  %8.3f"):format(names[k], truth[k], fit.params[k]))
  worst = math.max(worst, math.abs(fit.params[k] - truth[k]))
end
print(("\nlargest error %.3f; optimizer state %d bytes; a save/reload at step 200 gave identical parameters")
  :format(worst, fit.state_bytes))
assert(worst < 0.1, "the fit is off by " .. worst)
