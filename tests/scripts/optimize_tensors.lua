-- optimize_tensors.lua — hone.optimize on several named tensors, as an optimizer sees a
-- model's: shapes reach tensor-aware optimizers and decay flags reach every one.
--   adafactor: a matrix keeps factored row and column second moments (its first step
--              computed here by hand, and its state size), a vector a full one;
--   signsgd:   weight decay on decay tensors only;
--   both:      save, destroy and reload mid-run changes nothing.
local hone = require("hone")

local R, C = 16, 32
-- a gradient whose square is not rank one, so the factored estimate differs from the full one
local function gw(i, j) return ((i * 7 + j * 3) % 11 - 5) / 5 + 0.1 end
local function gb(j) return ((j * 5) % 7 - 3) / 3 + 0.2 end
local w0, b0 = {}, {}
for i = 1, R do for j = 1, C do w0[(i - 1) * C + j] = ((i * 13 + j * 17) % 19) / 19 - 0.5 end end
for j = 1, C do b0[j] = ((j * 3) % 5) / 5 end

-- a linear loss: the gradient is the constant above, whatever the parameters
local function linear(p)
  local loss, g = 0, { w = {}, b = {} }
  for i = 1, R do for j = 1, C do
    local k = (i - 1) * C + j
    g.w[k] = gw(i, j)
    loss = loss + g.w[k] * p.w[k]
  end end
  for j = 1, C do g.b[j] = gb(j); loss = loss + g.b[j] * p.b[j] end
  return loss, g
end

local function tensors()
  return { { name = "w", shape = { R, C }, init = w0 }, { name = "b", shape = { C }, decay = false, init = b0 } }
end

local lr = 0.01
local one = hone.optimize { optimizer = "adafactor", lr = lr, steps = 1, params = tensors(), loss = linear }

-- step 1 of transformers' Adafactor (beta2 = 1 - 1^-0.8 = 0, eps1 = 1e-30, clip 1):
-- matrix: r_i = mean_j g^2, c_j = mean_i g^2, u = g / sqrt(r_i / mean(r)) / sqrt(c_j)
local r, c, rmean = {}, {}, 0
for i = 1, R do r[i] = 0 end
for j = 1, C do c[j] = 0 end
for i = 1, R do for j = 1, C do
  local g2 = gw(i, j) ^ 2 + 1e-30
  r[i] = r[i] + g2 / C
  c[j] = c[j] + g2 / R
end end
for i = 1, R do rmean = rmean + r[i] / R end
local u, ss = {}, 0
for i = 1, R do for j = 1, C do
  local k = (i - 1) * C + j
  u[k] = gw(i, j) / math.sqrt(r[i] / rmean) / math.sqrt(c[j])
  ss = ss + u[k] ^ 2
end end
local div = math.max(1, math.sqrt(ss / (R * C)))
local factored_differs = false
for k = 1, R * C do
  local want = w0[k] - u[k] / div * lr
  assert(math.abs(one.params.w[k] - want) < 1e-6,
    ("adafactor w[%d] = %.9g, factored second moment gives %.9g"):format(k, one.params.w[k], want))
  -- the full (unfactored) rule would move every element by lr * sign(g)
  local full = w0[k] - lr * (u[k] > 0 and 1 or -1)
  factored_differs = factored_differs or math.abs(want - full) > 1e-4
end
assert(factored_differs, "this gradient cannot tell a factored second moment from a full one")
-- vector: v = g^2, u = g / sqrt(v) = sign(g), rms 1
for j = 1, C do
  local want = b0[j] - lr * (gb(j) > 0 and 1 or -1)
  assert(math.abs(one.params.b[j] - want) < 1e-6, ("adafactor b[%d] = %.9g, want %.9g"):format(j, one.params.b[j], want))
end
-- state: row and column means for w (64-byte aligned regions), a full v for b
assert(one.state_bytes == 64 + 128 + 128, "adafactor state bytes " .. one.state_bytes)

-- signsgd with a zero gradient: m stays 0, so only the decay moves a parameter
local zero = function(p)
  local g = { w = {}, b = {} }
  for k = 1, R * C do g.w[k] = 0 end
  for j = 1, C do g.b[j] = 0 end
  return 0, g
end
local d = hone.optimize { optimizer = { "signsgd", weight_decay = 0.5 }, lr = 0.1, steps = 4, params = tensors(),
  loss = zero }
for k = 1, R * C do
  local want = w0[k]
  for _ = 1, 4 do want = want * 0.95 end
  assert(math.abs(d.params.w[k] - want) < 1e-6, ("signsgd decayed w[%d] to %.9g, want %.9g"):format(k, d.params.w[k], want))
end
for j = 1, C do
  assert(math.abs(d.params.b[j] - b0[j]) < 1e-7,
    ("signsgd decayed b[%d] (decay = false): %.9g, was %.9g"):format(j, d.params.b[j], b0[j]))
end

-- resume: save at step 7, destroy, reload, continue; every parameter and loss the same
for _, opt in ipairs { "adafactor", "signsgd" } do
  local spec = { optimizer = opt, lr = lr, steps = 20, params = tensors(), loss = linear }
  local a = hone.optimize(spec)
  spec.resume_at = 7
  local b = hone.optimize(spec)
  for k = 1, R * C do assert(a.params.w[k] == b.params.w[k], opt .. ": resume changed w[" .. k .. "]") end
  for j = 1, C do assert(a.params.b[j] == b.params.b[j], opt .. ": resume changed b[" .. j .. "]") end
  for s = 1, 20 do assert(a.losses[s] == b.losses[s], opt .. ": resume changed the loss at step " .. s) end
end

print(("optimize tensors: adafactor factors the %dx%d matrix (%d bytes of state), signsgd decays only w; "
  .. "resume exact"):format(R, C, one.state_bytes))
