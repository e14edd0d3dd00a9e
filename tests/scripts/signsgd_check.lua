-- signsgd_check.lua — drives the example optimizer through hone.optimize: one step by
-- hand, convergence on a quadratic, and an exact resume from saved state.
local hone = require("hone")

local target = { 3.0, -2.0, 0.5, 7.0 }
local function quadratic(p)
  local loss, grad = 0, {}
  for i = 1, #p do
    local d = p[i] - target[i]
    loss = loss + d * d
    grad[i] = 2 * d
  end
  return loss, grad
end

-- one step by hand: g = 2, m = 0.1 * 2, sign(m) = 1, p = 1 - 0.1
local one = hone.optimize { optimizer = "signsgd", lr = 0.1, steps = 2, params = { 1 },
  loss = function(p) return p[1] * p[1], { 2 * p[1] } end }
assert(math.abs(one.losses[1] - 1.0) < 1e-7, "first loss " .. one.losses[1])
assert(math.abs(one.losses[2] - 0.81) < 1e-6, "loss after one step " .. one.losses[2])

local spec = {
  optimizer = { "signsgd", momentum = 0.9, weight_decay = 0.0 },
  scheduler = { "cosine" }, lr = 0.5, steps = 300, warmup_ratio = 0.05,
  params = { 0, 0, 0, 0 }, loss = quadratic,
}
local a = hone.optimize(spec)
for i = 1, #target do
  assert(math.abs(a.params[i] - target[i]) < 0.02, ("param %d = %g, want %g"):format(i, a.params[i], target[i]))
end
assert(a.losses[300] < a.losses[1] / 1000, "did not converge")
assert(a.lrs[1] == 0 and a.lrs[16] == 0.5, "schedule: " .. a.lrs[1] .. " " .. a.lrs[16])
assert(a.state_bytes == 4 * #target, "state bytes " .. a.state_bytes)

-- saving, destroying and reloading the optimizer mid-run changes nothing
spec.resume_at = 137
local b = hone.optimize(spec)
for i = 1, #target do assert(a.params[i] == b.params[i], "resume changed param " .. i) end
for s = 1, 300 do assert(a.losses[s] == b.losses[s], "resume changed loss at step " .. s) end
print(("signsgd: final loss %.3g after 300 steps; resume at 137 is exact; %d bytes of state")
  :format(a.losses[300], a.state_bytes))
