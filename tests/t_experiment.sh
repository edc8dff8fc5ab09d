#!/bin/sh
# examples/Makefile end to end on two tiny models trained here: every target, the summary's
# rows, nothing redone by a second make, only the dependents redone after removing an
# intermediate, and no target left by a failed or interrupted step.
. tests/lib.sh
top=$(pwd)
# The test runs make itself: nothing of an outer make (jobserver, flags) leaks in.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEFILES

citer-gen math -q -n 200 --seed 11 -o "$T/lm.jsonl"
lm() { citer-train lm -q --data "$T/lm.jsonl" --tokenizer examples/tokenizer.json --threads 1 \
    --batch 4 --seq-len 128 --checkpoint-every 0 "$@"; }
if ! lm -o "$T/slm" --dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 64 --steps 30 2>"$T/err" ||
    ! lm -o "$T/llm" --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --steps 40 2>"$T/err"; then
    fail "train the tiny model pair" "$(head -c 300 "$T/err")"
    t_end
fi

O=$T/out
# xmake [VAR=value...] [TARGET...]: the examples graph on the tiny pair, small enough for seconds.
xmake() {
    make -C "$top/examples" BIN="$CITER_BIN" SLM="$T/slm" LLM="$T/llm" TRAIN_N=4 TEST_N=3 STEPS=2 \
        MAX_TOKENS=10 TRAIN_FLAGS="--epochs 5" RANDOM_PS="0.2 0.5" CONFIDENCES="0.5 0.9" \
        QUERY_TAUS=0.5 REWARD_TAU=0.5 TAUS="0.3 0.7" OUT="$O" "$@"
}
RUNS="slm llm random-0.2 random-0.5 confidence-0.5 confidence-0.9 query-0.5 citer-r1-0.5 citer-r2-0.3 citer-r2-0.7"
TARGETS="train.jsonl test.jsonl train.cs test.cs slm-scores.cs llm-scores.cs labels-r1.cs router-r1.st
labels-r2.cs router-r2.st table.txt table.csv plot.svg summary.txt $(for r in $RUNS; do echo "runs/$r.cs"; done)"
if command -v gnuplot >/dev/null 2>&1; then TARGETS="$TARGETS plot.png"; fi

# ---- the whole graph, in parallel ----
if xmake -j2 >"$T/log" 2>&1; then pass "make -j2 runs the graph"; else
    fail "make -j2 runs the graph" "$(tail -n 5 "$T/log" | tr '\n' '|' | head -c 600)"; fi
missing=
for f in $TARGETS; do [ -s "$O/$f" ] || missing="$missing $f"; done
if [ -z "$missing" ]; then pass "every target made"; else fail "every target made" "missing:$missing"; fi
leftover=$(ls "$O" "$O/runs" | grep -E '\.tmp|\.journal$')
check "no temporary files left" [ -z "$leftover" ]

# the summary: a header, then one row per run in this order, six columns each
want="SLM only|LLM only|random p=0.2|random p=0.5|SLM-confidence c=0.5|SLM-confidence c=0.9|query-level tau=0.5|CITER round 1 tau=0.5|CITER round 2 tau=0.3|CITER round 2 tau=0.7|"
got=$(tail -n +2 "$O/summary.txt" | cut -c 1-26 | sed 's/ *$//' | tr '\n' '|')
if [ "$got" = "$want" ]; then pass "summary: every row, in order"; else fail "summary rows" "$got"; fi
check "summary: the columns" grep -Eq '^method +accuracy +LLM ratio +LLM calls +wall s +speed-up$' "$O/summary.txt"
check "summary printed by make" grep -q '^CITER round 2 tau=0.7 ' "$T/log"
# SLM only sends nothing to the LLM, LLM only everything and is its own baseline
check "summary: SLM only row" grep -Eq '^SLM only +[01]\.[0-9]{4} +0\.0000 +0 +[0-9.]+ +[0-9.]+x$' "$O/summary.txt"
check "summary: LLM only row" grep -Eq '^LLM only +[01]\.[0-9]{4} +1\.0000 +[1-9][0-9]* +[0-9.]+ +1\.00x$' "$O/summary.txt"
n=$(grep -c '' "$O/table.csv")
check "table.csv: a header and 10 rows" [ "$n" -eq 11 ]
check "table.txt: the CITER rows" grep -q '^CITER round 2 tau=0.3 ' "$O/table.txt"
check "plot.svg: well-formed, a circle per run" sh -c "python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' '$O/plot.svg' &&
    [ \$(grep -c '<circle' '$O/plot.svg') -eq 10 ] && grep -q '>CITER round 2</text>' '$O/plot.svg'"

# ---- a second make does nothing ----
xmake -j2 >"$T/log2" 2>&1
if grep -q "Nothing to be done" "$T/log2" && ! grep -q "citer-" "$T/log2"; then
    pass "second make: nothing to be done"
else fail "second make: nothing to be done" "$(grep -v 'directory' "$T/log2" | head -c 300)"; fi
check "make -q: up to date" xmake -s --no-print-directory -q
xmake -s --no-print-directory summary >"$T/sum" 2>&1
check "make summary prints the table" cmp -s "$T/sum" "$O/summary.txt"

# ---- removing an intermediate redoes what depends on it, and only that ----
touch "$T/marker"
rm "$O/llm-scores.cs"
xmake -j2 >"$T/log3" 2>&1 || fail "make after removing llm-scores.cs" "$(tail -n 3 "$T/log3")"
got=$(cd "$O" && find . -type f -newer "$T/marker" ! -name 'args.*' | sed 's|^\./||' | sort | tr '\n' ' ')
want=$(for f in llm-scores.cs labels-r1.cs router-r1.st labels-r2.cs router-r2.st runs/query-0.5.cs \
    runs/citer-r1-0.5.cs runs/citer-r2-0.3.cs runs/citer-r2-0.7.cs table.txt table.csv plot.svg summary.txt; do
    echo "$f"; done; [ -e "$O/plot.png" ] && echo plot.png)
want=$(echo "$want" | sort | tr '\n' ' ')
if [ "$got" = "$want" ]; then pass "removed llm-scores.cs: only its dependents redone"; else
    fail "removed llm-scores.cs: only its dependents redone" "redone: $got"; fi
touch "$T/marker"
rm "$O/runs/random-0.5.cs"
xmake >/dev/null 2>&1
got=$(cd "$O" && find . -type f -newer "$T/marker" | sed 's|^\./||' | sort | tr '\n' ' ')
want="plot.svg runs/random-0.5.cs summary.txt table.csv table.txt $([ -e "$O/plot.png" ] && echo 'plot.png ')"
want=$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')
if [ "$got" = "$want" ]; then pass "removed one run: only it and the tables redone"; else
    fail "removed one run" "redone: $got"; fi

# ---- a changed variable redoes the steps that read it ----
touch "$T/marker"
xmake TAUS="0.3 0.7" MAX_TOKENS=10 ROUTE_FLAGS="--seed 3" >/dev/null 2>&1
got=$(cd "$O" && find . -type f -newer "$T/marker" -name '*.cs' | grep -c runs/)
check "changed ROUTE_FLAGS: every run redone" [ "$got" -eq 10 ]
got=$(cd "$O" && find . -type f -newer "$T/marker" -name '*.st' | wc -l)
check "changed ROUTE_FLAGS: routers kept" [ "$got" -eq 0 ]

# ---- a failing step leaves no target ----
mkdir -p "$T/bad"
cp "$T/llm/config.json" "$T/llm/tokenizer.json" "$T/bad/"
head -c 1000 "$T/llm/model.safetensors" >"$T/bad/model.safetensors" # cut short
O=$T/out-bad
if xmake -j2 LLM="$T/bad" >"$T/log4" 2>&1; then fail "bad LLM: make fails"; else pass "bad LLM: make fails"; fi
check "bad LLM: the tool said why" grep -q "citer-llm: .*bad" "$T/log4"
check "bad LLM: no llm-scores.cs" [ ! -e "$O/llm-scores.cs" ]
check "bad LLM: nothing after it" test ! -e "$O/labels-r1.cs" -a ! -e "$O/runs/llm.cs"
leftover=$(ls "$O" | grep -E '\.tmp')
check "bad LLM: no temporary files" [ -z "$leftover" ]
check "bad LLM: the steps before it are kept" [ -s "$O/train.cs" ]

# ---- an interrupted step leaves no target, and the next make finishes the graph ----
O=$T/out-int
# (more and longer rollouts than above, so that the round-2 labelling lasts a few seconds)
setsid sh -c 'exec "$@"' sh make -C "$top/examples" BIN="$CITER_BIN" SLM="$T/slm" LLM="$T/llm" TRAIN_N=12 \
    TEST_N=3 STEPS=2 MAX_TOKENS=24 TRAIN_FLAGS="--epochs 5" OUT="$O" "$O/labels-r2.cs" >"$T/log5" 2>&1 &
pid=$!
i=0
while [ $i -lt 300 ] && [ ! -s "$O/labels-r2.cs.journal" ] && kill -0 $pid 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
done
if [ -s "$O/labels-r2.cs.journal" ] && [ ! -e "$O/labels-r2.cs" ]; then
    kill -TERM -$pid 2>/dev/null || kill -TERM $pid
    wait $pid
    check "interrupted: no labels-r2.cs" [ ! -e "$O/labels-r2.cs" ]
    leftover=$(ls "$O" | grep -E '\.tmp')
    check "interrupted: no temporary files" [ -z "$leftover" ]
    if xmake TRAIN_N=12 MAX_TOKENS=24 "$O/labels-r2.cs" >"$T/log6" 2>&1 && [ -s "$O/labels-r2.cs" ] && [ ! -e "$O/labels-r2.cs.journal" ]; then
        pass "interrupted: the next make finishes the step"
    else fail "interrupted: the next make finishes the step" "$(tail -n 3 "$T/log6")"; fi
    got=$(grep -c '^[^ ]*/citer-' "$T/log6")
    check "interrupted: only the interrupted step is redone" [ "$got" -eq 1 ]
else
    wait $pid
    skip "interrupted step" "the labelling ended before it could be interrupted"
fi

# ---- usage ----
got=$(make -C "$top/examples" OUT="$T/none" 2>&1)
case $got in *"SLM is not set"*) pass "no SLM: says so" ;; *) fail "no SLM: says so" "$got" ;; esac
check "no SLM: nothing written" [ ! -e "$T/none" ]
t_end
