# example_plugin.sh — the example optimizer built out of tree: install hone into a temp
# prefix, build plugins/examples/signsgd with only the installed header (via the
# pkg-config file), put it on HONE_PLUGIN_PATH, and use it from a Lua script.
. "$(dirname "$0")/lib.sh"
prefix="$TMP/prefix"
cmake --install "$HONE_BUILD" --prefix "$prefix" > "$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; exit 1; }
for f in bin/hone lib/hone/plugins/schedulers.so include/hone/plugin.h lib/pkgconfig/hone-plugin.pc share/hone/lua/hone/init.lua; do
  [ -e "$prefix/$f" ] && echo "ok: installed $f" || { echo "FAIL: $f not installed"; fails=$((fails+1)); }
done
[ ! -e "$prefix/lib/hone/plugins/signsgd.so" ] && echo "ok: the example is not installed as a built-in" \
  || { echo "FAIL: example installed"; fails=$((fails+1)); }

# build it from a copy of its directory, far from the source tree
cp -r "$HONE_SRC/plugins/examples/signsgd" "$TMP/src"
mkdir -p "$TMP/myplugins"
expect 0 "" -- env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -C "$TMP/src" OUT="$TMP/myplugins"
expect 0 "-I.*prefix/lib/pkgconfig/../../include" -- env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags hone-plugin

# the installed hone finds its own plugins and Lua files without any environment
expect 0 "scheduler +cosine" -- env -u HONE_PLUGIN_PATH "$prefix/bin/hone" plugins
expect 2 "no optimizer named 'signsgd' \(registered: adafactor, adamw, .*sgd\)" -- env -u HONE_PLUGIN_PATH "$prefix/bin/hone" plugins optimizer signsgd
export HONE_PLUGIN_PATH="$TMP/myplugins"
expect 0 "optimizer +signsgd +signsgd.so +example plugin" -- "$prefix/bin/hone" plugins
expect 0 "weight_decay +number +0 +>= 0 +decoupled weight decay" -- "$prefix/bin/hone" plugins optimizer signsgd
expect 0 "signsgd: final loss .* resume at 137 is exact; 16 bytes of state" -- "$prefix/bin/hone" run "$HONE_SRC/tests/scripts/signsgd_check.lua"
# the stranger's conformance round, from the installed hone on the file built out of tree
expect 0 "signsgd.so: 1 feature, 9 steps passed, 0 failed" -- "$prefix/bin/hone" plugins --check "$TMP/myplugins/signsgd.so"
finish
