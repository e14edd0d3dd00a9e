# lib.sh — helpers for hone's shell tests: run a command, check its exit code and output.
set -u
fails=0
TMP=$(mktemp -d /tmp/hone-sh-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# expect CODE PATTERN -- CMD...: CMD exits with CODE and its stdout+stderr matches PATTERN (grep -E)
expect() {
  local code=$1 pat=$2; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$code" ]; then
    echo "FAIL: exit $rc, wanted $code: $*"; echo "$out" | head -20; fails=$((fails+1)); return
  fi
  if ! grep -Eq -- "$pat" <<<"$out"; then
    echo "FAIL: output lacks /$pat/: $*"; echo "$out" | head -20; fails=$((fails+1)); return
  fi
  echo "ok: $* -> $code /$pat/"
}

finish() {
  if [ "$fails" -gt 0 ]; then echo "$fails failure(s)"; exit 1; fi
  echo "all passed"
}
