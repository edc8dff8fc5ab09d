#!/bin/sh
# Runs every unit-test program and shell test, counts PASS/FAIL/SKIP lines and ends with
# "N passed, N failed, N skipped". A test program that dies without printing FAIL counts as one failure.
# Usage: tests/run.sh [NAME-FILTER]    (run from the repository root; make test sets CITER_BIN, CITER_TESTBIN)

: "${CITER_BIN:=$(pwd)/bin}"
: "${CITER_TESTBIN:=$(pwd)/build/tests}"
export CITER_BIN CITER_TESTBIN
[ -n "$CITER_FIXTURES" ] || CITER_FIXTURES=$(cd .. && pwd)/shared/fixtures
export CITER_FIXTURES
filter=$1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run_one() {
    name=$1; shift
    out=$(mktemp)
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
        echo "FAIL: $name (exit status $rc)"
    fi
    rm -f "$out"
}

for t in "$CITER_TESTBIN"/t_*; do
    [ -x "$t" ] || continue
    case $t in *"$filter"*) ;; *) continue ;; esac
    echo "== $(basename "$t")"
    run_one "$(basename "$t")" "$t"
done | tee -a "$log"

for s in tests/t_*.sh; do
    [ -f "$s" ] || continue
    case $s in *"$filter"*) ;; *) continue ;; esac
    echo "== $(basename "$s")"
    run_one "$(basename "$s")" sh "$s"
done | tee -a "$log"

p=$(grep -c '^PASS: ' "$log")
f=$(grep -c '^FAIL: ' "$log")
s=$(grep -c '^SKIP: ' "$log")
echo
if [ "$s" -gt 0 ]; then
    echo "skipped:"
    grep '^SKIP: ' "$log" | sed 's/^/  /'
fi
if [ "$f" -gt 0 ]; then
    echo "failed:"
    grep '^FAIL: ' "$log" | sed 's/^/  /'
fi
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
