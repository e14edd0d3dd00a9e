-- make_pricer_data.lua — generates the pricer dataset: product listings and their prices,
-- in the prompt / completion format the pricer experiment trains on.
--
--   hone run experiments/make_pricer_data.lua   (writes experiments/data/pricer/*.jsonl.zst)
--
-- The price model (what a model can learn from the text):
--   price = category base × brand factor × Π spec effects × exp(N(0, 0.15²)), rounded to
--   the dollar, at least $1.
-- Each category has a base price and one or two specs whose values scale it (a TV's size,
-- a laptop's memory...); brands are premium (× 1.6), mid (× 1.0) or budget (× 0.6). The
-- noise keeps a floor under any model's error: about 12% mean absolute percentage error.
-- Everything comes from one seeded generator, so the files are the same on every machine.
local seed = tonumber(os.getenv("PRICER_SEED") or "") or 42
local n_train = tonumber(os.getenv("PRICER_TRAIN") or "") or 1200
local n_test = tonumber(os.getenv("PRICER_TEST") or "") or 120
local out_dir = os.getenv("PRICER_OUT") or "experiments/data/pricer"

-- a Park–Miller generator: the same numbers from Lua on every platform
local state = seed % 2147483647
if state <= 0 then state = 1 end
local function uniform()
  state = (state * 48271) % 2147483647
  return (state - 1) / 2147483646
end
local function pick(list) return list[math.min(#list, math.floor(uniform() * #list) + 1)] end
local function normal()   -- Box–Muller
  local u1, u2 = math.max(uniform(), 1e-12), uniform()
  return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
end

local brands = {
  { name = "Lumora", factor = 1.6 }, { name = "Vantix", factor = 1.6 }, { name = "Northcraft", factor = 1.0 },
  { name = "Aldene", factor = 1.0 }, { name = "Keystone", factor = 1.0 }, { name = "Budgetek", factor = 0.6 },
  { name = "Valuline", factor = 0.6 },
}

local categories = {
  { name = "Television", base = 180, nouns = { "LED TV", "Smart TV", "4K Television" },
    specs = { { label = "Screen size", unit = " inch", values = { 32, 43, 50, 55, 65, 75 }, effect = function(v) return (v / 43) ^ 1.8 end } } },
  { name = "Laptop", base = 450, nouns = { "Laptop", "Notebook", "Ultrabook" },
    specs = { { label = "Memory", unit = " GB", values = { 8, 16, 32 }, effect = function(v) return (v / 8) ^ 0.5 end },
              { label = "Storage", unit = " GB SSD", values = { 256, 512, 1024 }, effect = function(v) return (v / 256) ^ 0.25 end } } },
  { name = "Headphones", base = 45, nouns = { "Wireless Headphones", "Earbuds", "Over-Ear Headset" },
    specs = { { label = "Noise cancelling", unit = "", values = { "yes", "no" }, effect = function(v) return v == "yes" and 1.8 or 1.0 end } } },
  { name = "Coffee Maker", base = 60, nouns = { "Coffee Maker", "Espresso Machine", "Drip Brewer" },
    specs = { { label = "Capacity", unit = " cups", values = { 4, 8, 12 }, effect = function(v) return (v / 8) ^ 0.4 end } } },
  { name = "Office Chair", base = 120, nouns = { "Office Chair", "Ergonomic Chair", "Task Chair" },
    specs = { { label = "Material", unit = "", values = { "mesh", "fabric", "leather" }, effect = function(v)
      return ({ mesh = 1.0, fabric = 0.8, leather = 1.5 })[v] end } } },
  { name = "Blender", base = 40, nouns = { "Blender", "Smoothie Maker", "Food Processor" },
    specs = { { label = "Power", unit = " W", values = { 300, 600, 1000, 1500 }, effect = function(v) return (v / 600) ^ 0.6 end } } },
  { name = "Backpack", base = 35, nouns = { "Backpack", "Travel Pack", "Daypack" },
    specs = { { label = "Volume", unit = " L", values = { 15, 25, 35, 50 }, effect = function(v) return (v / 25) ^ 0.5 end } } },
  { name = "Smartwatch", base = 150, nouns = { "Smartwatch", "Fitness Watch", "GPS Watch" },
    specs = { { label = "Cellular", unit = "", values = { "yes", "no" }, effect = function(v) return v == "yes" and 1.4 or 1.0 end } } },
}

local colors = { "black", "white", "silver", "blue", "grey", "red" }
local extras = { "with a two-year warranty", "in a gift box", "with free shipping", "refurbished to new condition",
                 "with a carrying case", "energy efficient" }

local function record()
  local c = pick(categories)
  local b = pick(brands)
  local noun = pick(c.nouns)
  local price = c.base * b.factor
  local details = {}
  for _, s in ipairs(c.specs) do
    local v = pick(s.values)
    price = price * s.effect(v)
    details[#details + 1] = ("%s: %s%s"):format(s.label, tostring(v), s.unit)
  end
  details[#details + 1] = "Color: " .. pick(colors)
  price = price * math.exp(0.15 * normal())
  price = math.max(1, math.floor(price + 0.5))
  local title = ("%s %s %s"):format(b.name, noun, pick({ "Pro", "Plus", "Lite", "X", "2", "S" }))
  local lower = noun:lower()
  local text = ("%s\n%s\n%s %s by %s, %s."):format(title, table.concat(details, "; "),
    lower:match("^[aeiou]") and "An" or "A", lower, b.name, pick(extras))
  return {
    prompt = "How much does this cost to the nearest dollar?\n\n" .. text .. "\n\nPrice is $",
    completion = ("%d.00"):format(price),
  }, price
end

-- JSON strings (the text has no control characters but newlines)
local function js(s) return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"' end

local function write(name, n)
  os.execute("mkdir -p '" .. out_dir .. "'")
  local path = out_dir .. "/" .. name .. ".jsonl"
  local f = assert(io.open(path, "w"))
  local sum, prices = 0, {}
  for i = 1, n do
    local r, price = record()
    sum = sum + price
    prices[i] = price
    f:write('{"prompt": ', js(r.prompt), ', "completion": ', js(r.completion), '}\n')
  end
  f:close()
  local zipped = os.execute("zstd -q -19 -f --rm '" .. path .. "' -o '" .. path .. ".zst'")
  print(("%s: %d records, mean price $%.2f%s"):format(zipped and path .. ".zst" or path, n, sum / n,
    zipped and "" or " (zstd not found: left uncompressed)"))
  return sum / n, prices
end

local mean = write("train", n_train)
local _, test = write("test", n_test)
local mae = 0
for _, p in ipairs(test) do mae = mae + math.abs(p - mean) end
print(("baseline: predicting the training mean ($%.0f) for every test product has a mean absolute error of $%.2f")
  :format(mean, mae / #test))
