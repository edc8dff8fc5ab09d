# Sourced by tests/t_*.sh. Prints the same PASS/FAIL/SKIP lines as tests/check.h.
: "${CITER_BIN:=$(pwd)/bin}"
: "${CITER_FIXTURES:=$(cd .. && pwd)/shared/fixtures}"
PATH=$CITER_BIN:$PATH
export PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/citer-sh-XXXXXX")
trap 'rm -rf "$T"' EXIT
t_failures=0

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+: $2}"; t_failures=$((t_failures + 1)); }
skip() { echo "SKIP: $1: $2"; }

# check NAME COMMAND...: PASS when the command succeeds.
check() {
    name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# fixture REL: path of a shared fixture, or empty when absent.
fixture() {
    if [ -e "$CITER_FIXTURES/$1" ]; then echo "$CITER_FIXTURES/$1"; fi
}
NO_FIXTURES="../shared/fixtures not found (set CITER_FIXTURES to run this case)"

# expect_error NAME EXIT PATTERN COMMAND...: the command must fail with that exit status and
# print exactly one stderr line matching PATTERN (a grep -E regex).
expect_error() {
    name=$1 want=$2 pat=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ "$rc" -ne "$want" ]; then
        fail "$name" "exit $rc, wanted $want; stderr: $(head -c 300 "$T/err")"
    elif [ "$lines" -ne 1 ]; then
        fail "$name" "wanted one stderr line, got $lines: $(head -c 300 "$T/err")"
    elif ! grep -Eq "$pat" "$T/err"; then
        fail "$name" "stderr '$(cat "$T/err")' does not match '$pat'"
    else
        pass "$name"
    fi
}

t_end() { exit 0; }

# route_models: the tiny random SLM and LLM of tests/t_route.c (vocabulary 300, ids 297..299
# special) and its routers, written into $T from $TB/t_route; S and L name the two models. A
# failure to write them fails and ends the script.
route_models() {
    if ! "$TB/t_route" write-models "$T"; then
        fail "write the test models"
        t_end
    fi
    S=$T/slm.gguf
    L=$T/llm.gguf
}
