#!/bin/sh
# citer-reward: case assignment from hand-made score streams, rollouts graded on tiny random
# models, resuming from the journal, errors.
. tests/lib.sh
TB=${CITER_TESTBIN:-$(pwd)/build/tests}

# score FILE: "seq pos ref argmax [h1 h2]" lines on stdin -> a score stream (hidden when given)
score() {
    while read -r s p r a h1 h2; do
        if [ -n "$h1" ]; then
            printf '{"kind":"tensor","seq":%s,"pos":%s,"meta":{"ref":%s,"argmax":%s,"p":0.5,"logp_ref":-1,"hidden":2},"dtype":"f32","data":[%s,%s]}\n' \
                "$s" "$p" "$r" "$a" "$h1" "$h2"
        else
            printf '{"kind":"tensor","seq":%s,"pos":%s,"meta":{"ref":%s,"argmax":%s,"p":0.5,"logp_ref":-1}}\n' \
                "$s" "$p" "$r" "$a"
        fi
    done | citer-dump -r >"$1"
}
# example SEQ PROMPT TARGET ANSWER: the three records citer-tokenize --dataset writes
example() {
    printf '{"kind":"tokens","seq":%s,"meta":{"role":"prompt"},"dtype":"i32","data":[%s]}\n' "$1" "$2"
    printf '{"kind":"tokens","seq":%s,"meta":{"role":"target"},"dtype":"i32","data":[%s]}\n' "$1" "$3"
    printf '{"kind":"meta","seq":%s,"meta":{"role":"answer","answer":"%s","format":"math"}}\n' "$1" "$4"
}
# labels FILE: "seq pos label case" per FEATURE record
labels() {
    citer-dump "$1" | grep '"kind":"feature"' |
        sed -E 's/.*"seq":([0-9]+),"pos":([0-9]+),.*"label":([01]),"case":([123]).*/\1 \2 \3 \4/'
}

# ---- cases 1, 2 and 3 (myopic) need no model ----
# seq 7: prompt [1,2], target [10,11,12]; SLM right at pos 2, LLM right at pos 3, neither at 4.
# seq 8: prompt [3], target [20,21]; SLM right at both.
{ example 7 1,2 10,11,12 3; example 8 3 20,21 5; } | citer-dump -r >"$T/data.cs"
printf '%s\n' '7 2 10 10 1 2' '7 3 11 5 3 4' '7 4 12 6 5 6' '8 1 20 20 7 8' '8 2 21 21 9 0' | score "$T/slm.cs"
printf '%s\n' '7 2 10 1' '7 3 11 11' '7 4 12 8' '8 1 20 0' '8 2 21 0' | score "$T/llm.cs"

if citer-reward --data "$T/data.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm.cs" --myopic \
    -o "$T/lab.cs" 2>"$T/err"; then
    labels "$T/lab.cs" >"$T/got"
    printf '%s\n' '7 2 1 1' '7 3 0 2' '7 4 0 3' '8 1 1 1' '8 2 1 1' >"$T/want"
    if cmp -s "$T/got" "$T/want"; then pass "myopic: cases and labels"; else
        fail "myopic: cases and labels" "$(tr '\n' ' ' <"$T/got")"
    fi
    if citer-dump "$T/lab.cs" | grep -q '"seq":7,"pos":3,.*"data":\[3,4\]'; then
        pass "feature is the SLM score's hidden state"
    else fail "feature is the SLM score's hidden state"; fi
    if citer-dump "$T/lab.cs" | grep -q '"role":"reward_summary","examples":2,"tokens":5,"case1":3,"case2":1,"case3":1,"case3_label1":0,"label1":3,"label0":2'; then
        pass "summary record"
    else fail "summary record" "$(citer-dump "$T/lab.cs" | tail -n 1)"; fi
    if grep -q 'case 1 3, case 2 1, case 3 1' "$T/err"; then pass "summary line"; else
        fail "summary line" "$(cat "$T/err")"; fi
    [ ! -e "$T/lab.cs.journal" ] && pass "journal removed" || fail "journal removed"
    if citer-train -q --val-frac 0 "$T/lab.cs" -o "$T/router1.st" 2>"$T/err"; then pass "citer-train reads the labels"; else
        fail "citer-train reads the labels" "$(head -c 300 "$T/err")"; fi
else
    fail "myopic run" "$(cat "$T/err")"
fi
out=$(citer-reward -q --data "$T/data.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm.cs" --myopic 2>&1 >"$T/lab2.cs")
if [ -z "$out" ] && cmp -s "$T/lab.cs" "$T/lab2.cs"; then pass "stdout, -q"; else fail "stdout, -q" "$out"; fi

# output follows the data's order, not the seq numbers'
{ example 8 3 20,21 5; example 7 1,2 10,11,12 3; } | citer-dump -r >"$T/data87.cs"
citer-reward -q --data "$T/data87.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm.cs" --myopic -o "$T/lab87.cs"
if [ "$(labels "$T/lab87.cs" | cut -d ' ' -f 1,2 | tr '\n' ' ')" = "8 1 8 2 7 2 7 3 7 4 " ]; then pass "data order"; else
    fail "data order" "$(labels "$T/lab87.cs" | tr '\n' ' ')"; fi

# ---- resume: stop after one example, resume, and after a torn journal ----
{ example 7 1,2 10,11,12 3; example 8 3 20,21 5; example 9 4 30 1; } | citer-dump -r >"$T/data3.cs"
printf '%s\n' '7 2 10 10 1 2' '7 3 11 5 3 4' '7 4 12 6 5 6' '8 1 20 20 7 8' '8 2 21 21 9 0' '9 1 30 2 1 1' | score "$T/slm3.cs"
printf '%s\n' '7 2 10 1' '7 3 11 11' '7 4 12 8' '8 1 20 0' '8 2 21 0' '9 1 30 30' | score "$T/llm3.cs"
R="citer-reward -q --data $T/data3.cs --slm-scores $T/slm3.cs --llm-scores $T/llm3.cs --myopic"
$R -o "$T/full.cs"
$R -o "$T/part.cs" --stop-after-examples 1
rc=$?
if [ "$rc" -eq 3 ] && [ -s "$T/part.cs.journal" ] && [ ! -e "$T/part.cs" ]; then pass "stopped: journal, no output"; else
    fail "stopped: journal, no output" "exit $rc"; fi
$R -o "$T/part.cs" --stop-after-examples 1 # one more
$R -o "$T/part.cs"
if cmp -s "$T/full.cs" "$T/part.cs" && [ ! -e "$T/part.cs.journal" ]; then pass "resumed output identical"; else
    fail "resumed output identical"; fi
$R -o "$T/torn.cs" --stop-after-examples 2
size=$(wc -c <"$T/torn.cs.journal")
head -c $((size - 5)) "$T/torn.cs.journal" >"$T/j" && cat "$T/j" >"$T/torn.cs.journal"
$R -o "$T/torn.cs"
if cmp -s "$T/full.cs" "$T/torn.cs"; then pass "torn journal tail ignored"; else fail "torn journal tail ignored"; fi

# ---- errors ----
expect_error "no args" 2 'citer-reward: .*--data' citer-reward
expect_error "rollouts need --slm" 2 'citer-reward: .*--slm' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm.cs"
printf '%s\n' '7 2 10 10' '7 3 11 5' '7 4 12 6' '8 1 20 20' '8 2 21 21' | score "$T/nohid.cs"
expect_error "missing hidden" 1 'nohid.cs: seq 7 pos 2: no hidden state' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/nohid.cs" --llm-scores "$T/llm.cs" --myopic
printf '%s\n' '7 2 10 1' '7 3 11 11' '7 4 12 8' | score "$T/llm7.cs"
expect_error "mismatched seqs" 1 'llm7.cs: seq 8 pos 1: no score record' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm7.cs" --myopic
printf '%s\n' '7 2 10 1' '7 3 99 11' '7 4 12 8' '8 1 20 0' '8 2 21 0' | score "$T/llmref.cs"
expect_error "wrong ref" 1 'llmref.cs: seq 7 pos 3: .*ref' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llmref.cs" --myopic
{ citer-dump "$T/slm.cs" | head -n 4
  echo '{"kind":"tensor","seq":8,"pos":2,"meta":{"ref":21,"argmax":21,"hidden":1},"dtype":"f32","data":[1]}'; } |
    citer-dump -r >"$T/dim.cs"
expect_error "hidden sizes differ" 1 'dim.cs: seq 8 pos 2: hidden size 1' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/dim.cs" --llm-scores "$T/llm.cs" --myopic
{ example 7 1,2 10,11,12 3; example 7 1,2 10,11,12 3; } | citer-dump -r >"$T/dup.cs"
expect_error "duplicate seq" 1 'dup.cs: seq 7: two targets' \
    citer-reward --data "$T/dup.cs" --slm-scores "$T/slm.cs" --llm-scores "$T/llm.cs" --myopic
head -c 100 "$T/slm.cs" >"$T/cut.cs"
expect_error "corrupt stream" 1 'cut.cs: ' \
    citer-reward --data "$T/data.cs" --slm-scores "$T/cut.cs" --llm-scores "$T/llm.cs" --myopic

# ---- rollouts on tiny random models ----
route_models
# Target "\boxed{3} x" in the models' byte-level vocabulary; at the last token ('x', 120) the SLM
# says 'y' (121) and the LLM 5: case 3. With one rollout token the text is "\boxed{3} y" plus one
# token, so its answer is 3 whatever the model writes.
TGT=$(printf '\\boxed{3} x\n' | citer-tokenize -t "$T/slm.gguf" --ids --no-bos --no-eos | tr ' ' ',')
n=$(echo "$TGT" | tr ',' '\n' | wc -l)
for ans in 3 4; do
    example 1 5,6 "$TGT" $ans | citer-dump -r >"$T/rd$ans.cs"
done
i=0
: >"$T/s" && : >"$T/l"
for tok in $(echo "$TGT" | tr ',' ' '); do
    p=$((2 + i)) i=$((i + 1))
    if [ $i -lt "$n" ]; then echo "1 $p $tok $tok 0.5 0.5" >>"$T/s"; else echo "1 $p $tok 121 0.5 0.5" >>"$T/s"; fi
    echo "1 $p $tok 5" >>"$T/l"
done
score "$T/rs.cs" <"$T/s"
score "$T/rl.cs" <"$T/l"
for ans in 3 4; do
    want=$([ $ans = 3 ] && echo 1 || echo 0)
    citer-reward -q --data "$T/rd$ans.cs" --slm-scores "$T/rs.cs" --llm-scores "$T/rl.cs" --slm "$T/slm.gguf" \
        --max-tokens 1 -o "$T/r$ans.cs" 2>"$T/err"
    got=$(labels "$T/r$ans.cs" | tail -n 1)
    if [ "$got" = "1 $((1 + n)) $want 3" ]; then pass "slm rollout, answer $ans: label $want"; else
        fail "slm rollout, answer $ans: label $want" "got '$got' $(cat "$T/err")"; fi
    citer-reward -q --data "$T/rd$ans.cs" --slm-scores "$T/rs.cs" --llm-scores "$T/rl.cs" --slm "$T/slm.gguf" \
        --llm "$T/llm.gguf" -r "$T/router-llm.st" -t 0.5 --max-tokens 1 -o "$T/q$ans.cs" 2>"$T/err"
    got=$(labels "$T/q$ans.cs" | tail -n 1)
    if [ "$got" = "1 $((1 + n)) $want 3" ]; then pass "routed rollout, answer $ans: label $want"; else
        fail "routed rollout, answer $ans: label $want" "got '$got' $(cat "$T/err")"; fi
done
# ---- shared prefixes and the rollout stage on its own: the same labels every way ----
# Three examples whose targets hold a \boxed answer; every position but each third is case 3
# (the SLM says 'y', or 'x' where the reference is 'y'; the LLM says 5).
: >"$T/d" && : >"$T/s" && : >"$T/l"
seq_no=0
for item in 'so \boxed{3} and that is it.|3' 'x \boxed{12} y|12' 'we get \boxed{7}, done|5'; do
    seq_no=$((seq_no + 1))
    tgt=$(printf '%s\n' "${item%|*}" | citer-tokenize -t "$T/slm.gguf" --ids --no-bos --no-eos | tr ' ' ',')
    example $seq_no 5,6,7 "$tgt" "${item#*|}" >>"$T/d"
    i=0
    for tok in $(echo "$tgt" | tr ',' ' '); do
        p=$((3 + i)) i=$((i + 1))
        if [ $((i % 3)) = 0 ]; then a=$tok; elif [ "$tok" = 121 ]; then a=120; else a=121; fi
        echo "$seq_no $p $tok $a 0.$i 0.5" >>"$T/s"
        echo "$seq_no $p $tok 5" >>"$T/l"
    done
done
citer-dump -r <"$T/d" >"$T/sd.cs"
score "$T/ss.cs" <"$T/s"
score "$T/sl.cs" <"$T/l"
C="--data $T/sd.cs --slm-scores $T/ss.cs --llm-scores $T/sl.cs --max-tokens 6"
ROUTED="--llm $T/llm.gguf -r $T/router.st -t 0.5"
for mode in slm routed; do
    if [ $mode = slm ]; then RO=""; RP="--policy slm"; else RO=$ROUTED; RP=$ROUTED; fi
    citer-reward $C --slm "$T/slm.gguf" $RO -o "$T/in-$mode.cs" 2>"$T/err-$mode"
    citer-reward -q $C --slm "$T/slm.gguf" $RO --no-prefix-sharing -o "$T/ns-$mode.cs"
    c3=$(citer-dump "$T/in-$mode.cs" | grep -o '"case3":[0-9]*,"case3_label1":[0-9]*')
    if [ "$c3" != '"case3":0,"case3_label1":0' ] && [ -n "$c3" ] && cmp -s "$T/in-$mode.cs" "$T/ns-$mode.cs"; then
        pass "$mode: shared prefixes give the unshared labels ($c3)"
    else fail "$mode: shared prefixes give the unshared labels" "$c3"; fi
    if grep -q 'rollouts in .* tokens ingested (shared prefixes)' "$T/err-$mode"; then pass "$mode: rollout summary line"; else
        fail "$mode: rollout summary line" "$(cat "$T/err-$mode")"; fi
    citer-reward -q $C --emit-rollouts -o "$T/req.cs"
    citer-route -q --slm "$T/slm.gguf" $RP --max-tokens 6 "$T/req.cs" >"$T/out-$mode.cs"
    citer-reward -q $C --tokenizer "$T/slm.gguf" --rollouts "$T/out-$mode.cs" -o "$T/st-$mode.cs"
    if cmp -s "$T/in-$mode.cs" "$T/st-$mode.cs"; then pass "$mode: emit, citer-route, --rollouts: the same features"; else
        fail "$mode: emit, citer-route, --rollouts: the same features"; fi
    # two shards, run apart, joined back
    for i in 0 1; do
        citer-reward -q $C --emit-rollouts --shard $i/2 >"$T/req$i.cs"
        citer-route -q --slm "$T/slm.gguf" $RP --max-tokens 6 -o "$T/out$i-$mode.cs" "$T/req$i.cs"
    done
    citer-reward -q $C --slm "$T/slm.gguf" --rollouts "$T/out1-$mode.cs,$T/out0-$mode.cs" -o "$T/sh-$mode.cs"
    if cmp -s "$T/in-$mode.cs" "$T/sh-$mode.cs"; then pass "$mode: two shards: the same features"; else
        fail "$mode: two shards: the same features"; fi
done
n0=$(citer-dump "$T/req0.cs" | grep -c '"role":"prompt"')
n1=$(citer-dump "$T/req1.cs" | grep -c '"role":"prompt"')
nall=$(citer-dump "$T/req.cs" | grep -c '"role":"prompt"')
if [ $((n0 + n1)) = "$nall" ] && [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] &&
    citer-dump "$T/req.cs" | grep -q '"role":"rollout_requests","rollouts":'"$nall"',"all_rollouts":'"$nall"',"shard":0,"shards":1'; then
    pass "shards split the requests ($n0 + $n1 = $nall)"
else fail "shards split the requests" "$n0 $n1 $nall"; fi
if citer-dump "$T/req.cs" | grep -q '"seq":0,.*"role":"rollout","example":1,"pos":3,"slm_token":' &&
    citer-dump "$T/req.cs" | grep -q '"seq":0,.*"role":"answer","format":"math","answer":"3"'; then
    pass "request records: rollout and answer"
else fail "request records: rollout and answer" "$(citer-dump "$T/req.cs" | head -n 3)"; fi
expect_error "a missing shard" 1 'citer-reward: seq [0-9]+ pos [0-9]+: no rollout result' \
    citer-reward $C --slm "$T/slm.gguf" --rollouts "$T/out0-routed.cs"
expect_error "a shard twice" 1 'two rollouts|appears twice' \
    citer-reward $C --slm "$T/slm.gguf" --rollouts "$T/out0-routed.cs,$T/out0-routed.cs"
sed 's/"data":\[5,6,7\]/"data":[5,6,8]/' "$T/d" | citer-dump -r >"$T/sd2.cs" # another prompt, same length
expect_error "--rollouts of other data" 1 'rollout [0-9]+: its prompt is not seq' \
    citer-reward --data "$T/sd2.cs" --slm-scores "$T/ss.cs" --llm-scores "$T/sl.cs" --slm "$T/slm.gguf" \
    --rollouts "$T/out-slm.cs"
expect_error "--shard without --emit-rollouts" 2 'citer-reward: --shard applies to --emit-rollouts' \
    citer-reward $C --myopic --shard 0/2
expect_error "bad --shard" 2 "citer-reward: --shard: '2/2' is not I/N" citer-reward $C --emit-rollouts --shard 2/2
expect_error "--emit-rollouts with --myopic" 2 'citer-reward: --emit-rollouts excludes' citer-reward $C --emit-rollouts --myopic
expect_error "router without --llm" 2 'citer-reward: .*-r needs --llm' \
    citer-reward --data "$T/rd3.cs" --slm-scores "$T/rs.cs" --llm-scores "$T/rl.cs" --slm "$T/slm.gguf" -r "$T/router.st"
t_end
