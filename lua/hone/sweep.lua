-- hone.sweep — grid and random search over any keys of an experiment spec.
--
--   hone.sweep {
--     base = spec,                                  -- an experiment spec
--     grid = { ["lora.r"] = {8, 16}, ["train.lr"] = {1e-4, 3e-4} },   -- cartesian product
--     paired = { {["lora.r"] = 8, ["lora.alpha"] = 16}, ... },        -- bundles varied together
--     random = { n = 4, space = { ["train.lr"] = hone.loguniform(1e-5, 1e-3) } },
--     derive = function(cfg) cfg.lora.alpha = 2 * cfg.lora.r end,    -- dependent keys
--     parallel = 2, metric = "eval_loss", mode = "min", seed = 1,
--     early_terminate = { type = "median", min_epochs = 1 },   -- or { type = "halving", eta = 2 }
--     allow_failures = false,   -- true: return normally even when members failed
--   }
--
-- Members run as child processes (up to `parallel` at once, the cores split between them)
-- in <output_dir>/<project>-<timestamp>-sweep/<project>-<timestamp>-<varied keys>/.
-- sweep.json holds the plan; re-running the same sweep reuses its directory: finished
-- members are skipped, unfinished ones resume from their checkpoints, failed ones rerun.
-- A member that fails (a config the schema refuses, an error while training) is recorded
-- and the others go on. The summary (summary.csv, summary.md, and printed) is sorted by
-- the metric. Returns { dir, members = { {name, status, values, best...}, ... }, failed }.
local core = require("hone.core")

local M = {}

-- what hone.sweep (and hone.train) return is a result, not a spec: a script may end with
-- `return hone.sweep { ... }` and `hone run` then has nothing more to run
M.result_mt = { __hone_result = true }

local function deepcopy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deepcopy(v) end
  return c
end

local function set_path(spec, path, value)
  local t = spec
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    local k = parts[i]
    if type(t[k]) ~= "table" then
      -- a plugin given by name ("cosine") grows options: { "cosine", k = v }
      t[k] = t[k] == nil and {} or { t[k] }
    end
    t = t[k]
  end
  t[parts[#parts]] = value
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- the short name of a key in member names: the last part, "lr" for train.lr
local function short(path)
  return path:match("([^.]+)$")
end

local function fmt(v)
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return (string.format("%.0e", v):gsub("e%+", "e"))
  end
  return tostring(v):gsub("[^%w%.%-]", "_")
end

-- random draws: hone.uniform(a, b), hone.loguniform(a, b), hone.choice{...}
function M.uniform(a, b) return { draw = function(u) return a + (b - a) * u end } end
function M.loguniform(a, b)
  return { draw = function(u) return math.exp(math.log(a) + (math.log(b) - math.log(a)) * u) end }
end
function M.choice(list) return { draw = function(u) return list[math.min(#list, math.floor(u * #list) + 1)] end } end

-- the members: a list of { values = { path = value }, order = { paths } }
local function expand(s)
  local members = { { values = {}, order = {} } }
  local function product(paths, choices_of)
    for _, p in ipairs(paths) do
      local out = {}
      for _, m in ipairs(members) do
        for _, v in ipairs(choices_of(p)) do
          local c = { values = deepcopy(m.values), order = { table.unpack(m.order) } }
          c.values[p] = v
          c.order[#c.order + 1] = p
          out[#out + 1] = c
        end
      end
      members = out
    end
  end
  if s.grid then
    product(sorted_keys(s.grid), function(p)
      local v = s.grid[p]
      if type(v) ~= "table" then error(("sweep grid[%q] must be a list of values"):format(p), 3) end
      return v
    end)
  end
  if s.paired then
    local out = {}
    for _, m in ipairs(members) do
      for _, bundle in ipairs(s.paired) do
        local c = { values = deepcopy(m.values), order = { table.unpack(m.order) } }
        for _, p in ipairs(sorted_keys(bundle)) do
          c.values[p] = bundle[p]
          c.order[#c.order + 1] = p
        end
        out[#out + 1] = c
      end
    end
    members = out
  end
  if s.random then
    local n = s.random.n or error("sweep random needs n", 3)
    local space = s.random.space or {}
    -- a small LCG so the draws depend on the sweep's seed alone
    local state = (s.seed or 1) % 2147483647
    if state <= 0 then state = 1 end
    local function u()
      state = (state * 48271) % 2147483647
      return (state - 1) / 2147483646
    end
    local out = {}
    for _, m in ipairs(members) do
      for _ = 1, n do
        local c = { values = deepcopy(m.values), order = { table.unpack(m.order) } }
        for _, p in ipairs(sorted_keys(space)) do
          c.values[p] = space[p].draw(u())
          c.order[#c.order + 1] = p
        end
        out[#out + 1] = c
      end
    end
    members = out
  end
  return members
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

local function write_file(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

-- a minimal JSON encoder for the plan and a reader for summary.json's flat fields
local function json(v)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for _, x in ipairs(v) do parts[#parts + 1] = json(x) end
      return "[" .. table.concat(parts, ", ") .. "]"
    end
    local parts = {}
    for _, k in ipairs(sorted_keys(v)) do parts[#parts + 1] = string.format("%q: %s", tostring(k), json(v[k])) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif t == "string" then
    return string.format("%q", v)
  elseif t == "number" then
    return string.format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end

local function summary_field(text, key)
  if not text then return nil end
  local s = text:match('"' .. key .. '":%s*"([^"]*)"')
  if s then return s end
  local n = text:match('"' .. key .. '":%s*([%-%d%.eE+]+)')
  return n and tonumber(n)
end

-- the eval rows of a member so far: epoch -> metric value
local function eval_by_epoch(dir, metric)
  local out = {}
  for _, row in ipairs(core.read_jsonl(dir .. "/metrics.jsonl") or {}) do
    local e, v = row.epoch, row[metric]
    if row.split == "eval" and type(e) == "number" and type(v) == "number" and e == math.floor(e) then out[e] = v end
  end
  return out
end

local function median(list)
  table.sort(list)
  local n = #list
  if n == 0 then return nil end
  if n % 2 == 1 then return list[(n + 1) / 2] end
  return (list[n / 2] + list[n / 2 + 1]) / 2
end

function M.sweep(hone, s)
  if type(s) ~= "table" or type(s.base) ~= "table" then error("hone.sweep needs { base = spec, ... }", 2) end
  local base = s.base
  local metric, mode = s.metric or "eval_loss", s.mode or "min"
  local members = expand(s)
  local project = base.project or "hone"
  local out_dir = base.output_dir or "runs"

  -- the plan: member names from every key that varies, the derived ones included; the
  -- same plan reuses its sweep directory
  local function leaves(t, prefix, out)
    for k, v in pairs(t) do
      local path = prefix == "" and tostring(k) or (prefix .. "." .. tostring(k))
      if type(v) == "table" then leaves(v, path, out)
      elseif type(v) ~= "function" then out[path] = v end
    end
    return out
  end
  local specs = {}
  for i, m in ipairs(members) do
    local spec = deepcopy(base)
    for path, v in pairs(m.values) do set_path(spec, path, v) end
    if s.derive then pcall(s.derive, spec) end
    specs[i] = leaves(spec, "", {})
  end
  local derived = {}
  for path, v in pairs(specs[1] or {}) do
    for i = 2, #specs do
      if specs[i][path] ~= v then derived[path] = true end
    end
  end
  for i = 2, #specs do for path in pairs(specs[i]) do if specs[1][path] == nil then derived[path] = true end end end
  local plan = {}
  for i, m in ipairs(members) do
    local tag, seen = {}, {}
    for _, p in ipairs(m.order) do
      tag[#tag + 1] = short(p) .. fmt(m.values[p])
      seen[p] = true
    end
    for _, p in ipairs(sorted_keys(derived)) do
      if not seen[p] and specs[i][p] ~= nil then tag[#tag + 1] = short(p) .. fmt(specs[i][p]) end
    end
    plan[i] = { tag = table.concat(tag, "-"), values = m.values }
  end
  local plan_json = json({ project = project, members = plan, metric = metric, mode = mode })
  local run_mode = core.mode()   -- how hone run runs this script: --dry-run, --resume DIR
  if run_mode.dry_run then
    -- hone run SCRIPT --dry-run: each member's verdict from the schema; nothing is created
    print(("sweep plan: %d members, metric %s (%s)"):format(#plan, metric, mode))
    local bad = 0
    for i = 1, #plan do
      local spec = deepcopy(base)
      for path, v in pairs(plan[i].values) do set_path(spec, path, v) end
      local ok, why = true, nil
      if s.derive then ok, why = pcall(s.derive, spec) end
      if ok then ok, why = core.check(spec) end
      if not ok then bad = bad + 1 end
      print(("  %s-<timestamp>-%s: %s"):format(project, plan[i].tag, ok and "ok" or ("refused: " .. tostring(why))))
    end
    print(("dry run: %d of %d members would be refused; nothing was created"):format(bad, #plan))
    core.used("dry_run")
    return setmetatable({ dry_run = true, members = plan, failed = bad }, M.result_mt)
  end
  assert(core.mkdirs(out_dir))
  local sweep_dir
  local resume = run_mode.resume   -- hone run SCRIPT --resume SWEEP_DIR
  if resume then
    local old = read_file(resume .. "/sweep.json")
    if not old then error(("--resume %s: not a sweep directory (no sweep.json)"):format(resume), 2) end
    if old ~= plan_json then error(("--resume %s: the sweep's plan differs from this script's"):format(resume), 2) end
    core.used("resume")
  end
  -- an earlier sweep of the same plan continues (the newest, as names sort by time)
  local parent = resume and resume:match("^(.*)/[^/]+$") or out_dir
  local prefix = project .. "-"
  for _, name in ipairs(core.list(parent)) do
    if name:sub(1, #prefix) == prefix and name:sub(-6) == "-sweep" then
      local d = parent .. "/" .. name
      local old = read_file(d .. "/sweep.json")
      if old and old == plan_json and (not resume or d == resume) then sweep_dir = d end
    end
  end
  local stamp
  if resume and not sweep_dir then sweep_dir = resume end
  if sweep_dir then
    stamp = sweep_dir:match("/" .. project:gsub("%-", "%%-") .. "%-(.-)%-sweep$")
    print(("sweep %s: the same plan, continuing (%d members)"):format(sweep_dir, #plan))
  else
    stamp = os.date("%Y-%m-%d_%H.%M.%S")
    sweep_dir = out_dir .. "/" .. project .. "-" .. stamp .. "-sweep"
    assert(core.mkdirs(sweep_dir))
    write_file(sweep_dir .. "/sweep.json", plan_json)
    print(("sweep %s: %d members"):format(sweep_dir, #plan))
  end

  local parallel = math.max(1, s.parallel or 1)
  local threads = math.max(1, math.floor(core.ncores() / parallel))
  local et = s.early_terminate

  local function member_spec(i)
    local spec = deepcopy(base)
    for path, v in pairs(plan[i].values) do set_path(spec, path, v) end
    if s.derive then s.derive(spec) end
    spec.output_dir = sweep_dir
    spec.threads = spec.threads and spec.threads > 0 and spec.threads or threads
    if et and et.type ~= "median" and et.type ~= "halving" then
      error(("early_terminate.type %q: median or halving"):format(tostring(et.type)), 3)
    end
    if et then
      spec.hooks = spec.hooks or {}
      local user = spec.hooks.on_epoch_end
      local min_epochs = et.min_epochs or 1
      local eta = et.eta or 2
      spec.hooks.on_epoch_end = function(run, row)
        if user then
          local r = user(run, row)
          if r == "stop" then return r end
        end
        local mine = row[metric]
        if type(mine) ~= "number" or row.epoch < min_epochs then return nil end
        if et.type == "halving" then   -- rungs at min_epochs * eta^k only
          local e = min_epochs
          while e < row.epoch do e = e * eta end
          if e ~= row.epoch then return nil end
        end
        local others = {}
        for j = 1, #plan do
          local d = sweep_dir .. "/" .. project .. "-" .. stamp .. "-" .. plan[j].tag
          if d ~= run.dir then
            local v = eval_by_epoch(d, metric)[row.epoch]
            if v then others[#others + 1] = v end
          end
        end
        -- median: worse than the middle member; halving: outside the best 1/eta
        local q = et.type == "halving" and 1 / eta or 0.5
        local cut
        if #others > 0 then
          table.sort(others, function(a, b) if mode == "max" then return a > b end return a < b end)
          cut = et.type == "median" and median(others) or others[math.max(1, math.ceil(q * (#others + 1)))]
        end
        if cut and ((mode == "min" and mine > cut) or (mode == "max" and mine < cut)) then
          print(("sweep: %s %s %.4g is worse than the %s %.4g of %d members at epoch %d: stopping it")
            :format(run.name, metric, mine, et.type == "median" and "median" or ("best 1/" .. eta .. " cut"), cut,
                    #others, row.epoch))
          return "stop"
        end
      end
    end
    return spec
  end

  local function member_dir(i) return sweep_dir .. "/" .. project .. "-" .. stamp .. "-" .. plan[i].tag end

  -- what each member needs: skip the finished, resume the unfinished, rerun the failed
  local todo = {}
  for i = 1, #plan do
    local st = summary_field(read_file(member_dir(i) .. "/summary.json"), "status")
    if st == "completed" or st == "stopped_early" then
      print(("  %s: %s, skipped"):format(plan[i].tag, st))
    else
      local has_ckpt = false
      for _, c in ipairs(core.list(member_dir(i) .. "/checkpoints")) do
        has_ckpt = has_ckpt or core.is_file(member_dir(i) .. "/checkpoints/" .. c .. "/state.zst")
      end
      todo[#todo + 1] = { i = i, resume = has_ckpt and st ~= "failed" }
    end
  end

  local function run_member(t)
    local ok, spec = pcall(member_spec, t.i)
    if not ok then
      assert(core.mkdirs(member_dir(t.i)))
      write_file(member_dir(t.i) .. "/summary.json", json({ status = "failed", error = tostring(spec) }) .. "\n")
      return false
    end
    local ok2, run = pcall(hone.train, spec, { dir = member_dir(t.i), resume = t.resume })
    if not ok2 then
      assert(core.mkdirs(member_dir(t.i)))
      write_file(member_dir(t.i) .. "/summary.json", json({ status = "failed", error = tostring(run) }) .. "\n")
      return false
    end
    return run.status == "completed" or run.status == "stopped_early"
  end

  -- the data is tokenized once, by the first member run alone when several run at once
  local t0 = core.now()
  local running, next_i, failed = 0, 1, 0
  local function start(t)
    local pid = core.spawn(run_member, t)
    running = running + 1
    return pid
  end
  if parallel > 1 and #todo > 0 then
    start(todo[1])
    local _, code = core.wait()
    running = running - 1
    if code ~= 0 then failed = failed + 1 end
    next_i = 2
  end
  while next_i <= #todo or running > 0 do
    while running < parallel and next_i <= #todo do
      start(todo[next_i])
      next_i = next_i + 1
    end
    local pid, code = core.wait()
    if not pid then break end
    running = running - 1
    if code ~= 0 then failed = failed + 1 end
  end
  local wall = core.now() - t0

  -- the summary, sorted by the metric
  local rows = {}
  local varied = {}
  for _, m in ipairs(members) do for _, p in ipairs(m.order) do varied[p] = true end end
  local vkeys = sorted_keys(varied)
  local failed_total = 0
  for i = 1, #plan do
    local text = read_file(member_dir(i) .. "/summary.json")
    local r = {
      name = project .. "-" .. stamp .. "-" .. plan[i].tag, values = plan[i].values,
      status = summary_field(text, "status") or "unfinished",
      best = summary_field(text, "best_checkpoint"), value = summary_field(text, "best_value"),
      tokens_per_s = summary_field(text, "tokens_per_s"), wall_s = summary_field(text, "wall_s"),
      error = summary_field(text, "error"),
    }
    if r.status ~= "completed" and r.status ~= "stopped_early" then failed_total = failed_total + 1 end
    rows[#rows + 1] = r
  end
  table.sort(rows, function(a, b)
    local x, y = type(a.value) == "number" and a.value, type(b.value) == "number" and b.value
    if x and y then if mode == "max" then return x > y end return x < y end
    if x ~= y then return x ~= false end
    return a.name < b.name
  end)
  local head = { "member", "status" }
  for _, k in ipairs(vkeys) do head[#head + 1] = k end
  for _, h in ipairs({ "best", metric, "tokens/s", "wall s" }) do head[#head + 1] = h end
  local csv = { table.concat(head, ",") }
  local md = { "| " .. table.concat(head, " | ") .. " |", "|" .. string.rep("---|", #head) }
  print(("\nsweep summary (%s, sorted by %s, %s):"):format(sweep_dir, metric, mode))
  print(table.concat(head, "\t"))
  for _, r in ipairs(rows) do
    local cells = { r.name, r.status }
    for _, k in ipairs(vkeys) do cells[#cells + 1] = r.values[k] ~= nil and tostring(r.values[k]) or "" end
    cells[#cells + 1] = r.best or ""
    cells[#cells + 1] = type(r.value) == "number" and string.format("%.6g", r.value) or ""
    cells[#cells + 1] = type(r.tokens_per_s) == "number" and string.format("%.0f", r.tokens_per_s) or ""
    cells[#cells + 1] = type(r.wall_s) == "number" and string.format("%.1f", r.wall_s) or ""
    csv[#csv + 1] = table.concat(cells, ",")
    md[#md + 1] = "| " .. table.concat(cells, " | ") .. " |"
    print(table.concat(cells, "\t") .. (r.error and ("\t(" .. r.error .. ")") or ""))
  end
  write_file(sweep_dir .. "/summary.csv", table.concat(csv, "\n") .. "\n")
  write_file(sweep_dir .. "/summary.md", table.concat(md, "\n") .. "\n")
  local drawn, why = core.sweep_report(sweep_dir)
  if not drawn then io.stderr:write("warning: report.html: " .. tostring(why) .. "\n") end
  print(("%d members, %d failed; %.1f s wall with parallel = %d"):format(#plan, failed_total, wall, parallel))
  local result = { dir = sweep_dir, members = rows, failed = failed_total, wall_s = wall }
  if failed_total > 0 and not s.allow_failures then
    -- the exit status tells: hone run ends non-zero (pcall, or allow_failures = true, to go on)
    error(("sweep: %d of %d members failed (%s/summary.md)"):format(failed_total, #plan, sweep_dir), 2)
  end
  return setmetatable(result, M.result_mt)
end

return M
