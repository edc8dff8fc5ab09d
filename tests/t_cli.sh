# Conventions every tool follows: --help, --version, usage errors, a man page.
. tests/lib.sh
for t in "$CITER_BIN"/citer-*; do
    n=$(basename "$t")
    out=$("$t" --help 2>&1); rc=$?
    check "$n --help" [ $rc -eq 0 -a -n "$out" ]
    v=$("$t" --version 2>&1)
    check "$n --version" [ "$v" = "$n 0.1.0" ]
    expect_error "$n unknown option" 2 "^$n: " "$t" --no-such-option
    check "$n has a man page" [ -f "man/man1/$n.1" ]
done
check "citer(7) exists" [ -f man/man7/citer.7 ]
check "citer-stream(5) exists" [ -f man/man5/citer-stream.5 ]
t_end
