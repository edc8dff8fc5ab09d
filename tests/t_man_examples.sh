# Runs every command in the EXAMPLES section of every man page: lines that start with "$ ".
# A line ending in a backslash continues on the next line. Text lines right after a command
# (up to the next command or roff request) are its expected output (stdout and stderr) and
# must match exactly.
# Commands run with sh in a fresh directory holding a link to the source tree's examples/,
# with the built tools first on PATH.
. tests/lib.sh
top=$(pwd)

unroff() {
    sed -e 's/\\-/-/g' -e 's/\\(aq/'"'"'/g' -e 's/\\(dq/"/g' -e 's/\\(ti/~/g' -e 's/\\(ha/^/g' \
        -e 's/\\(rs/\\/g' -e 's/\\&//g' -e 's/\\e/\\/g'
}

for page in man/man*/*.[1-9]; do
    name=$(basename "$page")
    rm -rf "$T/ex"; mkdir -p "$T/ex"
    awk '/^\.SH/ { ex = ($2 == "EXAMPLES"); next } ex' "$page" | unroff | awk -v dir="$T/ex" '
        function flush() { if (n) { close(dir "/cmd." n); if (has_exp) close(dir "/exp." n) } }
        /^\$ / {
            flush(); n++; has_exp = 0
            line = substr($0, 3); printf "%s\n", line > (dir "/cmd." n)
            cont = (line ~ /\\$/); incmd = 1; next
        }
        incmd && cont { printf "%s\n", $0 > (dir "/cmd." n); cont = ($0 ~ /\\$/); next }
        /^\./ { flush(); incmd = 0; next }
        incmd { printf "%s\n", $0 > (dir "/exp." n); has_exp = 1 }
        END { flush(); print n + 0 > (dir "/count") }'
    count=$(cat "$T/ex/count")
    if [ "$count" -eq 0 ]; then
        fail "$name: EXAMPLES" "no runnable example (lines starting with '\$ ')"
        continue
    fi
    rm -rf "$T/run"; mkdir -p "$T/run"; ln -s "$top/examples" "$T/run/examples"
    i=1
    while [ "$i" -le "$count" ]; do
        cmd=$(cat "$T/ex/cmd.$i")
        if ! (cd "$T/run" && sh -c "$cmd") >"$T/ex.out" 2>&1; then
            fail "$name: example $i" "$(printf '%s' "$cmd" | head -c 200) -> $(head -c 300 "$T/ex.out")"
        elif [ -f "$T/ex/exp.$i" ] && ! cmp -s "$T/ex.out" "$T/ex/exp.$i"; then
            fail "$name: example $i" "output differs from the page: $(diff "$T/ex/exp.$i" "$T/ex.out" | head -n 4 | tr '\n' ' ')"
        else
            pass "$name: example $i"
        fi
        i=$((i + 1))
    done
done
t_end
