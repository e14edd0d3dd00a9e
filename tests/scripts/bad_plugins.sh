# bad_plugins.sh — every way a plugin can be broken gives a clear error naming the file,
# exit 2, never a crash. The broken .so files are built by tests/CMakeLists.txt.
. "$(dirname "$0")/lib.sh"
run() { HONE_PLUGIN_PATH="$1" "$HONE" plugins; }

mkdir -p "$TMP/notso"
echo "this is not an ELF file" > "$TMP/notso/fake.so"
expect 2 "plugin .*/notso/fake.so: not a loadable shared object" -- run "$TMP/notso"
expect 2 "plugin .*/noentry/noentry.so: no entry point \(hone_plugin_abi missing\)" -- run "$BAD_DIR/noentry"
expect 2 "plugin .*/abimajor.so: built for hone plugin ABI 99.[0-9]+, this hone has ABI 1.[0-9]+: rebuild against this hone" -- run "$BAD_DIR/abimajor"
expect 2 "plugin .*/initfail.so: init failed: deliberate failure: the licence file is missing" -- run "$BAD_DIR/initfail"
expect 2 "plugin .*/nullstep.so: init failed: optimizer broken leaves a required vtable function NULL" -- run "$BAD_DIR/nullstep"
expect 2 "plugin .*/badoption.so: init failed: optimizer broken: default of option 'beta' = 2: out of range" -- run "$BAD_DIR/badoption"
expect 2 "plugin .*/badflags.so: init failed: optimizer broken: option 'beta' sets flag bits 0x40, which this hone reserves" -- run "$BAD_DIR/badflags"
expect 2 "duplicate optimizer 'dupe': already registered by .*/dup_a/dup_a.so, registered again by .*/dup_a/dup_b.so" -- run "$BAD_DIR/dup_a"
expect 2 "duplicate optimizer 'signsgd': already registered by .*/plugins/signsgd.so, registered again by .*/dup_builtin.so" -- run "$BAD_DIR/dup_builtin"
expect 2 "HONE_PLUGIN_PATH entry /no/such/dir: no such file or directory" -- run /no/such/dir
# the same directory twice (or the build's own plugin dir) is not a duplicate
expect 0 "scheduler +cosine" -- run "$HONE_BUILD/plugins:$HONE_BUILD/plugins"

# registering from anywhere but init is refused, at run time, with the reason
cat > "$TMP/late.lua" <<'LUA'
local hone = require("hone")
hone.optimize { optimizer = "late", lr = 0.1, steps = 1, params = {1}, loss = function(p) return 0, {0} end }
LUA
expect 2 "optimizer late: create: registration outside init" -- env HONE_PLUGIN_PATH="$BAD_DIR/late" "$HONE" run "$TMP/late.lua"

# a script's plugins = {...} go through the same loader
cat > "$TMP/exp.lua" <<LUA
return { model = { path = "m" }, data = { train = "t.jsonl" }, plugins = { "$BAD_DIR/abimajor/abimajor.so" } }
LUA
expect 2 "exp.lua: plugins\[1\]: plugin .*abimajor.so: built for hone plugin ABI 99.[0-9]+" -- "$HONE" run "$TMP/exp.lua" --dry-run
finish
