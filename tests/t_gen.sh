#!/bin/sh
# citer-gen: determinism, splits, atomic -o, usage errors, and the man page's EXAMPLES.
. tests/lib.sh

MAN=$(pwd)/man/man1/citer-gen.1

check "same seed, same bytes (math)" \
    sh -c 'citer-gen math -n 300 --seed 9 >"$1/a" && citer-gen math -n 300 --seed 9 | cmp -s - "$1/a"' _ "$T"
check "same seed, same bytes (mc)" \
    sh -c 'citer-gen mc -n 300 --seed 9 >"$1/b" && citer-gen mc -n 300 --seed 9 | cmp -s - "$1/b"' _ "$T"
check "different seeds differ" \
    sh -c 'citer-gen math -n 300 --seed 10 >"$1/c" && ! cmp -s "$1/c" "$1/a"' _ "$T"
check "a shorter run is a prefix of a longer one" \
    sh -c 'citer-gen math -n 100 --seed 9 >"$1/a100" && head -n 100 "$1/a" | cmp -s - "$1/a100"' _ "$T"
check "-n counts lines" sh -c 'test "$(citer-gen mc -n 37 | wc -l)" -eq 37'
check "-n 0 writes an empty file" sh -c 'citer-gen math -n 0 -o "$1/zero" && test -f "$1/zero" && test ! -s "$1/zero"' _ "$T"
check "default is 100 train items" \
    sh -c 'test "$(citer-gen math | grep -c "^{\"id\":\"train-")" -eq 100'

# The math and mc outputs of the same arguments hold the same problems.
check "math and mc hold the same problems" sh -c '
    citer-gen math -n 50 --seed 3 | grep -o "\"problem\":\"[^\"]*\"" | sed "s/^\"problem\"//" >"$1/p1"
    citer-gen mc -n 50 --seed 3 | grep -o "\"question\":\"[^\"]*\"" | sed "s/^\"question\"//" >"$1/p2"
    test -s "$1/p1" && cmp -s "$1/p1" "$1/p2"' _ "$T"

# Splits: 2000 of each, over two seeds, share no problem text.
problems() { grep -o '"problem":"[^"]*"' "$@"; }
citer-gen math -n 2000 --seed 1 -o "$T/train1"
citer-gen math -n 2000 --seed 2 -o "$T/train2"
citer-gen math -n 2000 --seed 1 --split test -o "$T/test1"
check "2000 train items, all distinct" \
    sh -c 'test "$(grep -o "\"problem\":\"[^\"]*\"" "$1/train1" | sort -u | wc -l)" -eq 2000' _ "$T"
check "train and test share no problem" \
    sh -c 'test "$(cat "$1/train1" "$1/train2" "$1/test1" | grep -o "\"problem\":\"[^\"]*\"" | sort | uniq -d | wc -l)" -eq "$(cat "$1/train1" "$1/train2" | grep -o "\"problem\":\"[^\"]*\"" | sort | uniq -d | wc -l)"' _ "$T"
check "test ids say test" sh -c 'test "$(grep -c "^{\"id\":\"test-" "$1/test1")" -eq 2000' _ "$T"
check "--steps 3 gives three equations per solution" sh -c '
    citer-gen math --steps 3 -n 200 | while IFS= read -r line; do
        n=$(printf "%s\n" "$line" | grep -o "[0-9][0-9]* [-+*/] [0-9][0-9]* = [0-9][0-9]*" | wc -l)
        test "$n" -eq 3 || exit 1
    done'
check "--easy: every product has a one-digit factor" sh -c '
    citer-gen math --easy -n 300 >"$1/easy" && test "$(wc -l <"$1/easy")" -eq 300 &&
    test "$(grep -o "[0-9][0-9]* [*] [0-9][0-9]* =" "$1/easy" | wc -l)" -gt 300 &&
    ! grep -o "[0-9][0-9]* [*] [0-9][0-9]* =" "$1/easy" | grep -v "[*] [2-9] =$" | grep -vq "^[2-9] [*]"' _ "$T"
check "--easy test items are in the test split, apart from train" sh -c '
    citer-gen math --easy --split test -n 300 | grep -o "\"problem\":\"[^\"]*\"" | sort >"$1/easy-test" &&
    grep -o "\"problem\":\"[^\"]*\"" "$1/easy" | sort | comm -12 - "$1/easy-test" | wc -l | grep -qx 0' _ "$T"
check "--steps=2-2 is --steps 2" \
    sh -c 'citer-gen math --steps 2 -n 5 >"$1/s2" && citer-gen math --steps=2-2 -n 5 | cmp -s - "$1/s2"' _ "$T"

# -o: atomic, same bytes as stdout.
check "-o writes what stdout gets" \
    sh -c 'citer-gen mc -n 300 --seed 9 -o "$1/o.jsonl" && cmp -s "$1/o.jsonl" "$1/b"' _ "$T"
expect_error "-o into a missing directory" 1 '^citer-gen: .*nodir' \
    citer-gen math -n 5 -o "$T/nodir/x.jsonl"
check "no temporary file left" sh -c '! ls -a "$1" | grep -q "tmp"' _ "$T"
citer-gen math -n 100000000 -o "$T/killed.jsonl" &
pid=$!
sleep 0.3
kill "$pid"
wait "$pid"
check "a killed run leaves neither the file nor a temporary one" \
    sh -c '! ls -a "$1" | grep -q "^killed\.jsonl"' _ "$T"

# Usage errors: exit 2 and one line.
expect_error "no format" 2 '^citer-gen: say which format' citer-gen
expect_error "unknown format" 2 "unknown format 'generic'" citer-gen generic
expect_error "two formats" 2 "unexpected argument 'mc'" citer-gen math mc
expect_error "bad split" 2 ": --split: 'dev'" citer-gen math --split dev
expect_error "steps out of range" 2 ': --steps: 1-4 is not within 2-4' citer-gen math --steps 1-4
expect_error "steps reversed" 2 ': --steps: 4-2 is not within 2-4' citer-gen math --steps 4-2
expect_error "steps not numbers" 2 ": --steps: 'x' is not MIN-MAX" citer-gen math --steps x
expect_error "negative count" 2 ": -n: '-3' is not a count" citer-gen math -n -3
expect_error "bad seed" 2 ": --seed: '-1'" citer-gen math --seed -1
expect_error "seed too large" 2 ": --seed: '18446744073709551616'" citer-gen math --seed 18446744073709551616
expect_error "missing value" 2 ': -n needs a value' citer-gen math -n
expect_error "unknown option" 2 "unknown option '--bogus'" citer-gen math --bogus
check "largest seed" sh -c 'citer-gen math -n 2 --seed 18446744073709551615 | grep -q "^{\"id\""'
check "--help" sh -c 'citer-gen --help | grep -q "^usage: citer-gen"'
check "--version" sh -c 'citer-gen --version | grep -q "^citer-gen [0-9]"'
check "broken pipe is quiet" \
    sh -c 'citer-gen math -n 100000 2>"$1/pipe.err" | head -1 >/dev/null; test ! -s "$1/pipe.err"' _ "$T"

# The man page: every "$ " line of EXAMPLES runs, in a scratch directory, and prints what the
# page shows after it (up to the next command or the end of the block).
if [ ! -f "$MAN" ]; then
    fail "man page" "$MAN is missing"
else
    mkdir -p "$T/ex"
    sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$MAN" |
        sed -e "s/\\\\(aq/'/g" -e 's/\\-/-/g' -e 's/\\e/\\/g' >"$T/ex.txt"
    ncmd=0
    : >"$T/ex/expect"
    exec 3<"$T/ex.txt"
    run_pending() {
        [ -n "$cmd" ] || return 0
        ncmd=$((ncmd + 1))
        if (cd "$T/ex" && sh -c "$cmd") >"$T/ex/got" 2>"$T/ex/err"; then
            if cmp -s "$T/ex/got" "$T/ex/expect"; then
                pass "man example: $cmd"
            else
                fail "man example: $cmd" "output differs from the page: $(head -c 200 "$T/ex/got")"
            fi
        else
            fail "man example: $cmd" "failed: $(head -c 200 "$T/ex/err")"
        fi
        cmd=
        : >"$T/ex/expect"
    }
    cmd=
    while IFS= read -r line <&3; do
        case $line in
        '$ '*) run_pending; cmd=${line#\$ } ;;
        .*) run_pending ;;
        *) [ -n "$cmd" ] && printf '%s\n' "$line" >>"$T/ex/expect" ;;
        esac
    done
    run_pending
    exec 3<&-
    check "the man page has examples" test "$ncmd" -ge 4
fi
t_end
