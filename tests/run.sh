#!/usr/bin/env bash
# Runs every tier of tests and ends with one line: "N passed, N failed".
#   tests/run.sh BUILD [unit|integration]
# Unit tests are Check programs (build/tests/test_*): each test case counts once.
# Integration tests are tests/integration/*.sh: each prints "ok - name" or "not ok - name"
# per assertion; a script that dies without saying so counts as one failure.
set -uo pipefail
build=${1:?usage: tests/run.sh BUILD [unit|integration]}
tier=${2:-all}
root=$(cd "$(dirname "$0")/.." && pwd)
export CW_BUILD="$root/$build" CW_ROOT="$root"
passed=0 failed=0
failures=()

run_unit() {
  for t in "$CW_BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$(cd "$root" && CK_FORK=yes CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30} timeout 300 "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -vE '^(Running suite|[0-9]+%: Checks)' | grep -E ':[EF]:' || true
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: [0-9]+' | tail -n 1)
    if [ -z "$line" ]; then
      echo "FAIL $name: no Check summary (exit $rc)"; printf '%s\n' "$out" | tail -n 20
      failed=$((failed + 1)); failures+=("$name"); continue
    fi
    n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    bad=$((f + e))
    # A sanitizer report after the tests ran, or a crash of the runner, fails the program.
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
      echo "FAIL $name: exit status $rc after all tests passed"; printf '%s\n' "$out" | tail -n 30
      bad=1; n=$((n + 1))
    fi
    passed=$((passed + n - bad)); failed=$((failed + bad))
    [ "$bad" -gt 0 ] && failures+=("$name")
    echo "unit $name: $((n - bad))/$n"
  done
}

run_integration() {
  for s in "$root"/tests/integration/*.sh; do
    [ -f "$s" ] || continue
    name=$(basename "$s" .sh)
    log="$CW_BUILD/itests/$name.log"
    mkdir -p "$(dirname "$log")"
    start=$(date +%s)
    # The watchdog: no integration script may run longer than this.
    timeout --kill-after=10 "${CW_ITEST_TIMEOUT:-600}" bash "$s" >"$log" 2>&1
    rc=$?
    ok=$(grep -cE '^ok( |$)' "$log")
    nok=$(grep -cE '^not ok( |$)' "$log")
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
      nok=1; echo "not ok - $name exited $rc" >>"$log"
    fi
    passed=$((passed + ok)); failed=$((failed + nok))
    echo "integration $name: $ok passed, $nok failed ($(( $(date +%s) - start ))s)"
    # Figures a test reports (accuracy on the labelled set...) are shown pass or fail.
    sed -n 's/^# figure: /  /p' "$log"
    if [ "$nok" -gt 0 ]; then
      failures+=("$name"); grep -E '^(not ok|#)' "$log" | head -n 40; echo "--- last lines of $log"; tail -n 30 "$log"
    fi
  done
}

case "$tier" in
  unit) run_unit ;;
  integration) run_integration ;;
  all) run_unit; run_integration ;;
  *) echo "unknown tier: $tier" >&2; exit 2 ;;
esac

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
