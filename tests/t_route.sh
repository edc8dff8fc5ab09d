#!/bin/sh
# citer-route from the command line: baselines equal to citer-slm / citer-llm, in-process equal
# to coprocess, records and pass-through, statistics, coprocess failures, usage errors.
. tests/lib.sh
TB=${CITER_TESTBIN:-$(pwd)/build/tests}

# Tiny random models over one vocabulary of 300 (ids 297..299 are special), and routers:
# router-slm.st always prefers the SLM, router-llm.st the LLM, router.st varies, router-d16.st
# has the wrong input size.
route_models

printf '%s\n' \
    '{"kind":"meta","seq":0,"meta":{"answer":"42"}}' \
    '{"kind":"tokens","seq":1,"meta":{"role":"prompt"},"dtype":"i32","data":[5,80,17,200,33,9]}' \
    '{"kind":"tokens","seq":1,"meta":{"role":"target"},"dtype":"i32","data":[1,2,3]}' \
    '{"kind":"meta","seq":1,"meta":{"answer":"7"}}' \
    '{"kind":"tokens","seq":2,"dtype":"i32","data":[250,3]}' \
    '{"kind":"tokens","seq":3,"meta":{"role":"prompt"},"dtype":"i32","data":[120,121,122,123,7,64]}' |
    citer-dump -r >"$T/p.cs"

# gen FILE: "seq stop [tokens]" per generated record
gen() {
    citer-dump "$1" | grep '"role":"generated"' |
        sed -E 's/.*"seq":([0-9]+),.*"stop":"([a-z]+)".*"data":(\[[^]]*\]).*/\1 \2 \3/'
}
# same_gen NAME A B: the generated records of A and B agree (and there are three)
same_gen() {
    gen "$2" >"$T/ga" && gen "$3" >"$T/gb"
    if [ "$(wc -l <"$T/ga")" -eq 3 ] && cmp -s "$T/ga" "$T/gb"; then pass "$1"; else
        fail "$1" "$(diff "$T/ga" "$T/gb" | head -n 4 | tr '\n' ' ')"
    fi
}
# nostats FILE: the records as JSON lines, the stats record left out
nostats() { citer-dump "$1" | grep -v '"role":"stats"'; }

for eos in "" --ignore-eos; do
    citer-llm -m "$L" --max-tokens 40 $eos "$T/p.cs" >"$T/llm.cs"
    citer-slm -m "$S" --max-tokens 40 $eos "$T/p.cs" >"$T/slm.cs"
    citer-route -q --llm "$L" --policy llm --max-tokens 40 $eos "$T/p.cs" >"$T/r.cs"
    same_gen "--policy llm = citer-llm $eos" "$T/llm.cs" "$T/r.cs"
    citer-route -q --slm "$S" --policy slm --max-tokens 40 $eos "$T/p.cs" >"$T/r.cs"
    same_gen "--policy slm = citer-slm $eos" "$T/slm.cs" "$T/r.cs"
    citer-route -q --slm "$S" --llm "$L" -r "$T/router-llm.st" --max-tokens 40 $eos "$T/p.cs" >"$T/r.cs"
    same_gen "router that always says LLM = citer-llm $eos" "$T/llm.cs" "$T/r.cs"
    citer-route -q --slm "$S" --llm "$L" -r "$T/router-slm.st" --max-tokens 40 $eos "$T/p.cs" >"$T/r.cs"
    same_gen "router that always says SLM = citer-slm $eos" "$T/slm.cs" "$T/r.cs"
done
gen "$T/llm.cs" >"$T/ga"
gen "$T/slm.cs" >"$T/gb"
check "the two models disagree (the tests above mean something)" sh -c '! cmp -s "$1/ga" "$1/gb"' _ "$T"

# ---- records ----
citer-route --slm "$S" --llm "$L" -r "$T/router.st" -t 0.5 --max-tokens 12 --ignore-eos "$T/p.cs" \
    >"$T/r.cs" 2>"$T/summary"
citer-dump "$T/r.cs" | sed -E 's/^\{"kind":"([a-z]+)","seq":([0-9]+),"pos":(-?[0-9]+).*"role":"([a-z_]+)".*/\1 \2 \3 \4/;
    s/^\{"kind":"([a-z]+)","seq":([0-9]+).*/\1 \2/' >"$T/layout"
cat >"$T/layout.want" <<'EOF'
meta 0
tokens 1 6 generated
tensor 1 6 route
tensor 1 6 route_scores
meta 1
tokens 2 2 generated
tensor 2 2 route
tensor 2 2 route_scores
tokens 3 6 generated
tensor 3 6 route
tensor 3 6 route_scores
meta 0 -1 stats
EOF
check "record layout: per prompt generated, route, route_scores; META in place; stats last" \
    cmp -s "$T/layout" "$T/layout.want"
check "META records pass unchanged" sh -c \
    'citer-dump "$1/r.cs" | grep -F "{\"kind\":\"meta\",\"seq\":1,\"pos\":-1,\"dtype\":\"none\",\"shape\":[],\"meta\":{\"answer\":\"7\"}}" >/dev/null' _ "$T"
check "route record: i32 [12,3]" sh -c \
    'citer-dump "$1/r.cs" | grep "\"role\":\"route\"" | grep -c "\"dtype\":\"i32\",\"shape\":\[12,3\]" | grep -qx 3' _ "$T"
check "route_scores record: f32 [12,2]" sh -c \
    'citer-dump "$1/r.cs" | grep "\"role\":\"route_scores\"" | grep -c "\"dtype\":\"f32\",\"shape\":\[12,2\]" | grep -qx 3' _ "$T"
# The trace agrees with the tokens: source 1 -> llm_token, 0 -> slm_token; llm_token -1 iff source 0
citer-dump "$T/r.cs" | awk '
    /"role":"generated"/ { sub(/.*"data":\[/, ""); sub(/\].*/, ""); n = split($0, tok, ",") }
    /"role":"route"/ { sub(/.*"data":\[/, ""); sub(/\].*/, ""); split($0, tr, ",")
        for (i = 1; i <= n; i++) {
            s = tr[3 * i - 2]; st = tr[3 * i - 1]; lt = tr[3 * i]
            if (s == 1) { llm++; if (lt != tok[i]) bad = 1 } else { slm++; if (st != tok[i] || lt != -1) bad = 1 }
        } }
    END { exit !(bad == 0 && llm > 0 && slm > 0) }' >/dev/null
check "trace agrees with the tokens; both models wrote tokens" [ $? -eq 0 ]
check "stats: tokens, LLM tokens, ratio, catch-up agree with the per-prompt records" sh -c '
    citer-dump "$1/r.cs" | awk "
        /\"role\":\"generated\"/ { match(\$0, /\"n_generated\":[0-9]+/); g += substr(\$0, RSTART + 14, RLENGTH - 14)
            match(\$0, /\"llm_tokens\":[0-9]+/); k += substr(\$0, RSTART + 13, RLENGTH - 13)
            match(\$0, /\"catchup_tokens\":[0-9]+/); x += substr(\$0, RSTART + 17, RLENGTH - 17) }
        /\"role\":\"stats\"/ { s = \$0 }
        END { want = sprintf(\"\\\"prompts\\\":3,\\\"tokens\\\":%d,\\\"llm_calls\\\":%d,\\\"llm_tokens\\\":%d,\\\"llm_token_ratio\\\":%.6f,\\\"catchup_tokens\\\":%d,\", g, k, k, k / g, x)
              exit !(g == 36 && index(s, want) > 0) }"' _ "$T"
check "stats: timing fields" sh -c 'citer-dump "$1/r.cs" | grep "\"role\":\"stats\"" |
    grep -Eq "\"slm_seconds\":[0-9.]+,\"llm_seconds\":[0-9.]+,\"router_seconds\":[0-9.]+,\"router_us_per_token\":[0-9.]+,\"seconds\":[0-9.]+,\"tokens_per_second\":[0-9.]+}"' _ "$T"
check "one summary line on stderr" grep -Eq \
    '^citer-route: 3 prompts, 36 tokens, [0-9]+ from the large model \([0-9.]+%\) in [0-9]+ calls, [0-9]+ catch-up tokens, [0-9.]+ tokens/s$' \
    "$T/summary"
check "summary is one line" [ "$(wc -l <"$T/summary")" -eq 1 ]
citer-route -q --slm "$S" --llm "$L" -r "$T/router.st" --max-tokens 12 --ignore-eos "$T/p.cs" -o "$T/o.cs" 2>"$T/quiet"
check "-q: nothing on stderr" [ ! -s "$T/quiet" ]
check "-o writes the same records" sh -c 'citer-dump "$1/o.cs" | grep -v stats >"$1/a" && citer-dump "$1/r.cs" | grep -v stats | cmp -s - "$1/a"' _ "$T"

# ---- in-process = coprocess ----
scmd="citer-slm --serve -m '$S'"
lcmd="citer-llm --serve -m '$L'"
for p in "-r $T/router.st -t 0.45" "--policy random:0.5 --seed 4" "--policy confidence:0.6" \
    "-r $T/router.st --policy query:0.5" "--policy random:0.3 --temperature 0.8 --top-k 50 --seed 2"; do
    # shellcheck disable=SC2086
    citer-route -q --slm "$S" --llm "$L" $p --max-tokens 16 "$T/p.cs" -o "$T/in.cs" &&
        citer-route -q --slm-cmd "$scmd" --llm-cmd "$lcmd" $p --max-tokens 16 "$T/p.cs" -o "$T/co.cs" &&
        nostats "$T/in.cs" >"$T/a" && nostats "$T/co.cs" >"$T/b"
    if [ $? -eq 0 ] && cmp -s "$T/a" "$T/b"; then pass "in-process = coprocess: $p"; else
        fail "in-process = coprocess: $p" "$(diff "$T/a" "$T/b" | head -c 300)"
    fi
done
# shellcheck disable=SC2086
citer-route -q --slm "$S" --llm-cmd "$lcmd" --policy random:0.5 --max-tokens 16 "$T/p.cs" -o "$T/mix.cs"
check "in-process SLM with a coprocess LLM: the same again" sh -c \
    'citer-route -q --slm "$2" --llm "$3" --policy random:0.5 --max-tokens 16 "$1/p.cs" | citer-dump | grep -v stats >"$1/a" &&
     citer-dump "$1/mix.cs" | grep -v stats | cmp -s - "$1/a"' _ "$T" "$S" "$L"

# ---- fixture pair: stories260K writes, saltyduckegg-llama2xs helps ----
SS=$(fixture models/stories260K/stories260K-f32.gguf)
LS=$(fixture models/saltyduckegg-llama2xs/saltyduckegg-llama2xs-f32.gguf)
if [ -z "$SS" ] || [ -z "$LS" ]; then
    skip "stories pair: baselines, stop strings" "$NO_FIXTURES"
else
    printf 'Once upon a time\nThe little dog ran to the park\nLily had a red ball.\n' |
        citer-tokenize -t "$SS" >"$T/sp.cs"
    citer-llm -m "$LS" --max-tokens 48 "$T/sp.cs" >"$T/llm.cs"
    citer-slm -m "$SS" --max-tokens 48 "$T/sp.cs" >"$T/slm.cs"
    citer-route -q --slm "$SS" --llm "$LS" --policy llm --max-tokens 48 "$T/sp.cs" >"$T/r.cs"
    same_gen "stories: --policy llm = citer-llm" "$T/llm.cs" "$T/r.cs"
    citer-route -q --slm "$SS" --llm "$LS" --policy slm --max-tokens 48 "$T/sp.cs" >"$T/r.cs"
    same_gen "stories: --policy slm = citer-slm" "$T/slm.cs" "$T/r.cs"
    citer-llm -m "$LS" --max-tokens 48 --stop . "$T/sp.cs" >"$T/llm.cs"
    citer-route -q --slm "$SS" --llm "$LS" --policy llm --max-tokens 48 --stop . "$T/sp.cs" >"$T/r.cs"
    same_gen "stories: --stop . like citer-llm" "$T/llm.cs" "$T/r.cs"
    check "stories: a stop string stopped something" grep -q ' stop ' "$T/ga"
    citer-route -q --slm "$SS" --llm "$LS" --policy random:0.4 --max-tokens 48 "$T/sp.cs" -o "$T/in.cs"
    citer-route -q --slm-cmd "citer-slm --serve -m '$SS'" --llm-cmd "citer-llm --serve -m '$LS'" \
        --policy random:0.4 --max-tokens 48 "$T/sp.cs" -o "$T/co.cs"
    check "stories: in-process = coprocess" sh -c 'citer-dump "$1/in.cs" | grep -v stats >"$1/a" &&
        citer-dump "$1/co.cs" | grep -v stats | cmp -s - "$1/a"' _ "$T"
    expect_error "stories: --stop with command models needs --tokenizer" 2 'needs a tokenizer' \
        citer-route --slm-cmd "citer-slm --serve -m '$SS'" --policy slm --stop . "$T/sp.cs"
    citer-route -q --slm-cmd "citer-slm --serve -m '$SS'" --tokenizer "$SS" --policy slm --max-tokens 48 \
        --stop . "$T/sp.cs" >"$T/r.cs"
    citer-slm -m "$SS" --max-tokens 48 --stop . "$T/sp.cs" >"$T/slm.cs"
    same_gen "stories: --tokenizer with a command SLM" "$T/slm.cs" "$T/r.cs"
fi

# ---- coprocess failures: one line, exit 1, no record of the failed prompt ----
fake="exec '$TB/t_route' fake"
run_fail() { # NAME PATTERN ARGS...: exit 1, one stderr line matching PATTERN
    name=$1 pat=$2; shift 2
    expect_error "$name" 1 "$pat" citer-route --slm "$S" "$@" "$T/p.cs"
}
run_fail "LLM command exits at once" '^citer-route: llm: the server closed its output without answering info \(server exit status 3\)$' \
    --llm-cmd 'exit 3' --policy llm
run_fail "LLM command writes garbage" '^citer-route: llm: bad answer to info: byte 0: bad magic' \
    --llm-cmd 'echo garbage' --policy llm
run_fail "LLM command not found" '^citer-route: llm: .*exit status 127\)$' \
    --llm-cmd '/nonexistent/citer-llm 2>/dev/null' --policy llm
run_fail "LLM closes after its first response" \
    '^citer-route: llm: the server closed its output without answering append \(server exit status 0\)$' \
    --llm-cmd "$fake cut 1 '$L'" --policy llm
check "... and nothing of the failed prompt is written" sh -c \
    '! citer-dump "$1/out" 2>/dev/null | grep -q generated' _ "$T"
run_fail "LLM answers with a bad checksum" '^citer-route: llm: bad answer to append: byte [0-9]+: .*checksum' \
    --llm-cmd "$fake badsum 3 '$L'" --policy random:0.5
run_fail "LLM answers for another sequence" '^citer-route: llm: the answer to append is for sequence 1001, not 1 ' \
    --llm-cmd "$fake wrong 1 '$L'" --policy llm
run_fail "LLM answers an error" '^citer-route: llm: the server refused append: out of cheese' \
    --llm-cmd "$fake error 1 '$L'" --policy llm
expect_error "SLM command fails" 1 '^citer-route: slm: bad answer to append: byte [0-9]+: bad record sync' \
    citer-route --slm-cmd "$fake garbage 2 '$S'" --policy slm "$T/p.cs"
# The LLM dies in the second prompt: info, then 3 appends and a drop for the first (--max-tokens 3).
citer-route --slm "$S" --llm-cmd "$fake cut 5 '$L'" --policy llm --max-tokens 3 --ignore-eos "$T/p.cs" \
    >"$T/part.cs" 2>"$T/err"
check "failure in prompt 2: exit 1" [ $? -eq 1 ]
check "failure in prompt 2: one line" [ "$(wc -l <"$T/err")" -eq 1 ]
citer-dump "$T/part.cs" >"$T/part.json" 2>"$T/part.err"
check "the output stream has no END: a reader sees it truncated" [ -s "$T/part.err" ]
check "prompt 1 is complete, prompt 2 absent" sh -c \
    'grep -c "\"seq\":1,.*\"role\":\"route" "$1/part.json" | grep -qx 2 && ! grep -q "\"seq\":2," "$1/part.json"' _ "$T"
citer-route -q --slm "$S" --llm-cmd "$fake cut 5 '$L'" --policy llm --max-tokens 3 --ignore-eos "$T/p.cs" \
    -o "$T/fail.cs" 2>/dev/null
check "-o: a failed run leaves no file" [ ! -e "$T/fail.cs" ]
check "no stray files beside it" sh -c '! ls "$1" | grep -q "fail.cs."' _ "$T"

# ---- usage errors and start-up errors ----
expect_error "no router and no policy" 2 '^citer-route: no router: give -r ROUTER or a --policy' \
    citer-route --slm "$S" --llm "$L" "$T/p.cs"
expect_error "--slm and --slm-cmd" 2 '^citer-route: --slm and --slm-cmd exclude each other' \
    citer-route --slm "$S" --slm-cmd x --policy slm
expect_error "no large model" 2 '^citer-route: no large model' \
    env -u CITER_LLM_MODEL citer-route --slm "$S" --policy random:0.5
expect_error "router input size" 1 "^citer-route: .*router-d16.st: the router's input size 16 is not the small model's hidden size 32$" \
    citer-route --slm "$S" --llm "$L" -r "$T/router-d16.st" "$T/p.cs"
expect_error "missing router file" 1 '^citer-route: .*nope.st: ' \
    citer-route --slm "$S" --llm "$L" -r "$T/nope.st" "$T/p.cs"
expect_error "missing model" 1 '^citer-route: slm: .*nope.gguf: ' \
    citer-route --slm "$T/nope.gguf" --policy slm "$T/p.cs"
expect_error "bad threshold" 2 '^citer-route: --threshold' citer-route -t 2 --policy slm
expect_error "query needs a router" 2 '^citer-route: policy query needs a router' \
    citer-route --slm "$S" --llm "$L" --policy query
printf '%s\n' '{"kind":"tokens","seq":5,"dtype":"i32","data":[1,300]}' | citer-dump -r >"$T/bad.cs"
expect_error "token out of range" 1 '^citer-route: .*bad.cs: record 1 \(seq 5\): prompt token 300 at index 1 is out of range' \
    citer-route --slm "$S" --policy slm "$T/bad.cs"
t_end
