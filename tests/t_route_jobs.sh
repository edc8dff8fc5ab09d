#!/bin/sh
# citer-route -j N: the output is the one of -j 1 (but for the timing fields of the stats record)
# for every policy, with models loaded here or run as commands; failures in a worker end the run
# with one line and no partial prompt; usage errors.
. tests/lib.sh
TB=${CITER_TESTBIN:-$(pwd)/build/tests}

# The tiny random models and routers of t_route.sh (vocabulary 300, ids 297..299 special).
route_models

# 11 prompts of different lengths, META records between them, a target record to ignore.
i=1
while [ $i -le 11 ]; do
    n=$((i % 4 + 1)) toks="$((i * 13 % 290))" k=1
    while [ $k -lt $((i % 5 + 2)) ]; do toks="$toks,$(((i * 31 + k * 7) % 290))"; k=$((k + 1)); done
    echo "{\"kind\":\"tokens\",\"seq\":$i,\"meta\":{\"role\":\"prompt\"},\"dtype\":\"i32\",\"data\":[$toks]}"
    [ $n -eq 2 ] && echo "{\"kind\":\"tokens\",\"seq\":$i,\"meta\":{\"role\":\"target\"},\"dtype\":\"i32\",\"data\":[1,2]}"
    echo "{\"kind\":\"meta\",\"seq\":$i,\"meta\":{\"answer\":\"$i\"}}"
    i=$((i + 1))
done | citer-dump -r >"$T/p.cs"

# norm FILE: the records as JSON lines, the stats record without its timing fields
norm() { citer-dump "$1" | sed -E 's/,"slm_seconds":.*//'; }
# same NAME A B: A and B hold the same records (timings aside), 11 prompts of them
same() {
    norm "$2" >"$T/a" && norm "$3" >"$T/b"
    if [ "$(grep -c '"role":"generated"' "$T/a")" -eq 11 ] && grep -q '"role":"stats"' "$T/a" && cmp -s "$T/a" "$T/b"; then
        pass "$1"
    else
        fail "$1" "$(diff "$T/a" "$T/b" | head -n 4 | cut -c 1-200 | tr '\n' ' ')"
    fi
}

for p in "-r $T/router.st -t 0.45" "--policy random:0.5 --seed 4" "--policy llm" "--policy slm" \
    "--policy confidence:0.6" "-r $T/router.st --policy query:0.5" \
    "--policy random:0.3 --temperature 0.8 --top-k 50 --seed 2"; do
    # shellcheck disable=SC2086
    citer-route -q --slm "$S" --llm "$L" $p --max-tokens 16 "$T/p.cs" -o "$T/j1.cs"
    for j in 2 3; do
        # shellcheck disable=SC2086
        citer-route -q --slm "$S" --llm "$L" $p --max-tokens 16 -j $j "$T/p.cs" -o "$T/jn.cs"
        same "-j $j = -j 1: $p" "$T/j1.cs" "$T/jn.cs"
    done
done
# shellcheck disable=SC2086
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 "$T/p.cs" -o "$T/j1.cs"
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 -j 16 "$T/p.cs" -o "$T/jn.cs"
same "-j 16, more jobs than prompts" "$T/j1.cs" "$T/jn.cs"
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 -j 2 --threads 4 "$T/p.cs" -o "$T/jn.cs"
same "-j 2 --threads 4" "$T/j1.cs" "$T/jn.cs"
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 -j 3 - <"$T/p.cs" >"$T/jn.cs"
same "-j 3 from stdin to stdout" "$T/j1.cs" "$T/jn.cs"
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 "$T/p.cs" "$T/p.cs" -o "$T/j1x2.cs"
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 16 -j 2 "$T/p.cs" "$T/p.cs" -o "$T/jnx2.cs"
check "-j 2 over two input files = -j 1" sh -c 'citer-dump "$1/j1x2.cs" | sed -E "s/,\"slm_seconds\":.*//" >"$1/a" &&
    citer-dump "$1/jnx2.cs" | sed -E "s/,\"slm_seconds\":.*//" | cmp -s - "$1/a" && grep -q "\"prompts\":22," "$1/a"' _ "$T"

# Model commands: every worker starts its own.
scmd="citer-slm --serve -m '$S'"
lcmd="citer-llm --serve -m '$L'"
citer-route -q --slm-cmd "$scmd" --llm-cmd "$lcmd" -r "$T/router.st" --max-tokens 16 -j 3 "$T/p.cs" -o "$T/jn.cs"
same "-j 3 with model commands = -j 1 in-process" "$T/j1.cs" "$T/jn.cs"
citer-route -q --slm "$S" --llm-cmd "$lcmd" --policy random:0.5 --max-tokens 16 "$T/p.cs" -o "$T/j1.cs"
citer-route -q --slm "$S" --llm-cmd "$lcmd" --policy random:0.5 --max-tokens 16 -j 2 "$T/p.cs" -o "$T/jn.cs"
same "-j 2, in-process SLM and a command LLM" "$T/j1.cs" "$T/jn.cs"

# No prompt at all: no worker, the stats record alone.
printf '%s\n' '{"kind":"meta","seq":0,"meta":{"answer":"1"}}' | citer-dump -r >"$T/none.cs"
citer-route -q --slm "$S" --policy slm -j 4 "$T/none.cs" >"$T/jn.cs"
check "-j 4 without prompts: the META record and the stats" sh -c \
    'citer-dump "$1/jn.cs" | grep -c . | grep -qx 2 && citer-dump "$1/jn.cs" | grep -q "\"prompts\":0,"' _ "$T"

# ---- failures: one line, exit 1, no partial prompt ----
# Prompt 5 of 9 has a token out of range: -j 1 writes prompts 1..4 and stops; so must -j N.
i=1
while [ $i -le 9 ]; do
    t=$((i * 7))
    [ $i -eq 5 ] && t=300
    echo "{\"kind\":\"tokens\",\"seq\":$i,\"dtype\":\"i32\",\"data\":[5,$t,17]}"
    i=$((i + 1))
done | citer-dump -r >"$T/bad.cs"
pat='^citer-route: .*bad.cs: record 5 \(seq 5\): prompt token 300 at index 1 is out of range'
citer-route --slm "$S" --policy slm --max-tokens 4 "$T/bad.cs" >"$T/part1.cs" 2>"$T/err1"
for j in 2 3 4; do
    expect_error "-j $j: a bad prompt in a worker" 1 "$pat" \
        citer-route --slm "$S" --policy slm --max-tokens 4 -j $j "$T/bad.cs" -o "$T/fail.cs"
    check "-j $j: ... leaves no file" [ ! -e "$T/fail.cs" ]
    citer-route --slm "$S" --policy slm --max-tokens 4 -j $j "$T/bad.cs" >"$T/partn.cs" 2>"$T/errn"
    check "-j $j: ... the same message and the same partial output as -j 1" \
        sh -c 'cmp -s "$1/err1" "$1/errn" && cmp -s "$1/part1.cs" "$1/partn.cs"' _ "$T"
done
check "-j 1 wrote prompts 1..4 and nothing of 5 (the test above means something)" sh -c \
    'citer-dump "$1/part1.cs" 2>/dev/null | grep -c "\"role\":\"generated\"" | grep -qx 4' _ "$T"
check "no stray files beside the output" sh -c '! ls "$1" | grep -q "fail.cs."' _ "$T"
# A worker that dies: its model command kills it.
expect_error "a worker killed by a signal" 1 '^citer-route: job [12] of 2 \(pid [0-9]+\) was killed by signal 9$' \
    citer-route --slm "$S" --llm-cmd 'kill -9 $PPID' --policy llm -j 2 "$T/p.cs" -o "$T/fail.cs"
check "... leaves no file" [ ! -e "$T/fail.cs" ]
# A model command that fails in every worker: the message of -j 1.
fake="exec '$TB/t_route' fake"
expect_error "a model command failing in a worker" 1 \
    '^citer-route: llm: the server closed its output without answering append \(server exit status 0\)$' \
    citer-route --slm "$S" --llm-cmd "$fake cut 5 '$L'" --policy llm --max-tokens 3 --ignore-eos -j 2 "$T/p.cs"
expect_error "a model command that does not start" 1 '^citer-route: llm: .*exit status 3\)$' \
    citer-route --slm "$S" --llm-cmd 'exit 3' --policy llm -j 2 "$T/p.cs"
expect_error "-j with the wrong router size" 1 "router-d16.st: the router's input size 16 is not the small model's hidden size 32$" \
    citer-route --slm "$S" --llm "$L" -r "$T/router-d16.st" -j 2 "$T/p.cs"

# ---- usage ----
expect_error "-j 0" 2 "^citer-route: --jobs: '0' is not a number >= 1" citer-route --slm "$S" --policy slm -j 0
expect_error "-j x" 2 "^citer-route: --jobs: 'x' is not a number >= 1" citer-route --slm "$S" --policy slm --jobs x
expect_error "-j 1000" 2 '^citer-route: --jobs: at most 256' citer-route --slm "$S" --policy slm -j 1000
check "--help tells of --jobs" sh -c 'citer-route --help | grep -q -- "-j, --jobs N"'
t_end
