# lua_errors.sh — Lua syntax and runtime errors come back with the file and line; the
# hone module's own misuse errors name what is wrong.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
printf 'local hone = require("hone")\nreturn hone.experiment {\n  project = "x",\n  model = { path = "m" \n}\n' > syntax.lua
expect 2 "syntax.lua:[0-9]+: .*expected" -- "$HONE" run syntax.lua
printf 'local hone = require("hone")\nlocal t = nil\nlocal x = t.field\nreturn {}\n' > runtime.lua
expect 2 "runtime.lua:3: attempt to index a nil value \(local 't'\)" -- "$HONE" run runtime.lua
printf 'error("my own message")\n' > raise.lua
expect 2 "raise.lua:1: my own message" -- "$HONE" run raise.lua
# a module beside the script can be required, and its errors name it
printf 'return { broken = function() return nil + 1 end }\n' > helper.lua
printf 'local h = require("helper")\nh.broken()\n' > useshelper.lua
expect 2 "helper.lua:1: attempt to perform arithmetic on a nil value" -- "$HONE" run useshelper.lua
printf 'local hone = require("hone")\nreturn hone.sweep { }\n' > sweep.lua
expect 2 "sweep.lua: hone.sweep needs \{ base = spec" -- "$HONE" run sweep.lua
printf 'local hone = require("hone")\nreturn hone.experiment("x")\n' > notable.lua
expect 2 "notable.lua: hone.experiment expects a table, got string" -- "$HONE" run notable.lua
printf 'local t = {}\nt.self = t\nreturn { model = t }\n' > cycle.lua
expect 2 "model.self.self.*nested more than 32 deep" -- "$HONE" run cycle.lua
printf 'return { project = "x", [true] = 1 }\n' > boolkey.lua
expect 2 "table keys must be names or list positions, got a boolean key" -- "$HONE" run boolkey.lua
printf 'return { project = io.stdout }\n' > userdata.lua
expect 2 "project: a userdata cannot be part of a configuration" -- "$HONE" run userdata.lua
printf 'local x = 1\n' > nothing.lua
expect 0 "" -- "$HONE" run nothing.lua
expect 2 "returned no experiment, so --set, --dry-run and --resume have nothing to act on" -- "$HONE" run nothing.lua --dry-run

# hone.optimize checks its table like an experiment
printf 'local hone = require("hone")\nhone.optimize { optimizer = "signsgd", lr = 0.1, steps = 3, params = {1}, loss = function(p) return 0, {0} end, stepz = 1 }\n' > o1.lua
expect 2 "o1.lua:2: hone.optimize: stepz: unknown key; did you mean 'steps'\?" -- "$HONE" run o1.lua
printf 'local hone = require("hone")\nhone.optimize { optimizer = "signsgd", lr = 0.1, params = {1, 2}, loss = function(p) return 0, {0} end }\n' > o2.lua
expect 2 "loss function's gradient must be a list of 2 numbers" -- "$HONE" run o2.lua
printf 'local hone = require("hone")\nhone.optimize { optimizer = "signsgd", lr = 0.1, params = {1}, loss = function(p) error("boom") end }\n' > o3.lua
expect 2 "loss function: .*o3.lua:2: boom" -- "$HONE" run o3.lua
printf 'local hone = require("hone")\nhone.optimize { lr = 0.1, params = {1}, loss = function(p) return 0, {0} end }\n' > o4.lua
expect 2 "optimizer: missing required key" -- "$HONE" run o4.lua
# ... and its named tensors
opt() { printf 'local hone = require("hone")\nhone.optimize { optimizer = "signsgd", lr = 0.1, steps = 1, params = %s, loss = %s }\n' "$1" "$2" > "$3"; }
opt '{ { name = "w", shape = { 3 }, init = { 1, 2 } } }' 'function(p) return 0, { w = { 0, 0 } } end' t1.lua
expect 2 "params\[1\]: shape 3 x 1 has 3 elements, init has 2" -- "$HONE" run t1.lua
opt '{ { name = "w", init = { 1 } }, { name = "w", init = { 2 } } }' 'function(p) return 0, { w = { 0 } } end' t2.lua
expect 2 "params\[2\].name: \"w\" is params\[1\]'s name already" -- "$HONE" run t2.lua
opt '{ { name = "w", init = { 1 }, decy = false } }' 'function(p) return 0, { w = { 0 } } end' t3.lua
expect 2 "params\[1\].decy: unknown key \(a tensor takes name, shape, decay, init\)" -- "$HONE" run t3.lua
opt '{ { name = "w", init = { 1 } }, { name = "b", shape = { 1, 2 }, init = { 1, 2 } } }' 'function(p) return 0, { w = { 0 } } end' t4.lua
expect 2 "loss function's gradient.b must be a list of 2 numbers" -- "$HONE" run t4.lua
opt '{ { name = "w", shape = { 2, 0 }, init = { } } }' 'function(p) return 0, { w = { } } end' t5.lua
expect 2 "params\[1\].shape: expected \{ n \} or \{ rows, cols \} with integers >= 1" -- "$HONE" run t5.lua
finish
