# Shared by the end-to-end CLI scripts (sourced after they set $dfptrain and $work).
fail() { echo "FAIL: $*"; exit 1; }

# expect_bad_input WHAT ARGS...: dfptrain ARGS exits with status 2 and prints one "error:" line,
# which names WHAT.
expect_bad_input() {
  local what=$1; shift
  "$dfptrain" "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "exit status $rc, not 2, for: $*"
  [ "$(grep -c "error:" "$work/err")" -eq 1 ] || fail "not one error line for '$*': $(cat "$work/err")"
  grep -q -- "$what" "$work/err" || fail "the error for '$*' does not name '$what': $(cat "$work/err")"
}
