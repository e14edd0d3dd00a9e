-- hone.metrics — helpers for eval.metrics functions, which hone calls as
-- f(prediction, example) with example = { prompt, reference, index } and which return a
-- number, a table of named numbers, or nil to leave an example out of the mean.
--
--   local metrics = require("hone.metrics")
--   eval = { metrics = { price = metrics.price_metrics } }
local M = {}

-- The first number in a text, as a price: "$1,234.50" -> 1234.5, "about 12 dollars" -> 12;
-- nil when there is none.
function M.price(text)
  if type(text) ~= "string" then return nil end
  local s = text:match("%-?%$?%s*%d[%d,]*%.?%d*")
  if not s then return nil end
  s = s:gsub("[%$,%s]", "")
  return tonumber(s)
end

function M.abs_error(pred, truth)
  return math.abs(pred - truth)
end

-- (log(1 + pred) - log(1 + truth))^2, negative prices clamped to 0 as the usual RMSLE does
function M.squared_log_error(pred, truth)
  local a, b = math.log(1 + math.max(pred, 0)), math.log(1 + math.max(truth, 0))
  return (a - b) ^ 2
end

-- 1 when the prediction is within `abs` (default 40) or `rel` (default 0.2) of the truth
function M.hit(pred, truth, abs, rel)
  local e = math.abs(pred - truth)
  return (e <= (abs or 40) or e <= (rel or 0.2) * math.abs(truth)) and 1 or 0
end

-- A ready eval metric for price prediction: parses both texts and returns
-- { abs_error, squared_log_error, hit, parsed }; an unparseable prediction counts as a
-- miss (parsed = 0) and stays out of the error means.
function M.price_metrics(prediction, example)
  local truth = M.price(example.reference)
  if not truth then return nil end
  local pred = M.price(prediction)
  if not pred then return { parsed = 0, hit = 0 } end
  return {
    parsed = 1,
    abs_error = M.abs_error(pred, truth),
    squared_log_error = M.squared_log_error(pred, truth),
    hit = M.hit(pred, truth),
  }
end

return M
