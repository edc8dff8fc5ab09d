#!/bin/sh
# citer-score: grading against answer records, counts from the generated records or the stats
# record, output formats, labels, errors. Expected numbers are worked out by hand below.
. tests/lib.sh
TOK=examples/tokenizer.json

# ids TEXT: the example tokenizer's ids for TEXT, as a JSON array
ids() { printf '%s\n' "$1" | citer-tokenize -t "$TOK" --ids | sed 's/ /,/g; s/^/[/; s/$/]/'; }
I0=$(ids 'The answer is \boxed{18}.')      # 13 tokens, answer 18: right
I1=$(ids 'So it is \boxed{\frac{3}{4}}.')  # 22 tokens, answer 0.75: right (3/4 = 0.75)
I2=$(ids 'I think \boxed{20}.')            # 12 tokens, answer 19: wrong
I3=$(ids 'Therefore, B.')                  # 6 tokens, mc answer B: right
I4=$(ids 'No idea.')                       # 7 tokens, no answer record: not graded
for n in "$I0:13" "$I1:22" "$I2:12" "$I3:6" "$I4:7"; do
    got=$(echo "${n%:*}" | tr ',' '\n' | wc -l)
    [ "$got" -eq "${n##*:}" ] || fail "tokenizer gives ${n##*:} tokens" "got $got for ${n%:*}"
done

answers() {
    printf '%s\n' \
        '{"kind":"meta","seq":0,"meta":{"role":"answer","answer":"18","format":"math","id":"a"}}' \
        '{"kind":"meta","seq":1,"meta":{"role":"answer","answer":"0.75","format":"math","id":"b"}}' \
        '{"kind":"meta","seq":2,"meta":{"role":"answer","answer":"19","format":"math","id":"c"}}'
}
answer3='{"kind":"meta","seq":3,"meta":{"role":"answer","answer":"B","format":"mc","id":"d"}}'
# routed GEN: generated records with counts: llm_tokens 3+2+0+1+6 = 12 of 13+22+12+6+7 = 60
# tokens (ratio 0.2000), llm_calls 12, catchup_tokens 5+1+0+2+0 = 8
routed() {
    answers
    printf '%s\n' \
        "{\"kind\":\"tokens\",\"seq\":0,\"data\":$I0,\"meta\":{\"role\":\"generated\",\"llm_tokens\":3,\"llm_calls\":3,\"catchup_tokens\":5}}" \
        "{\"kind\":\"tokens\",\"seq\":1,\"data\":$I1,\"meta\":{\"role\":\"generated\",\"llm_tokens\":2,\"llm_calls\":2,\"catchup_tokens\":1}}" \
        "{\"kind\":\"tokens\",\"seq\":2,\"data\":$I2,\"meta\":{\"role\":\"generated\",\"llm_tokens\":0,\"llm_calls\":0,\"catchup_tokens\":0}}" \
        "{\"kind\":\"tokens\",\"seq\":3,\"data\":$I3,\"meta\":{\"role\":\"generated\",\"llm_tokens\":1,\"llm_calls\":1,\"catchup_tokens\":2}}" \
        "$answer3" \
        "{\"kind\":\"tokens\",\"seq\":4,\"data\":$I4,\"meta\":{\"role\":\"generated\",\"llm_tokens\":6,\"llm_calls\":6,\"catchup_tokens\":0}}"
}
stats='{"kind":"meta","meta":{"role":"stats","policy":"router","prompts":5,"tokens":60,"llm_calls":12,"llm_tokens":12,"llm_token_ratio":0.2,"catchup_tokens":8,"seconds":0.5,"tokens_per_second":120.5}}'
{ routed; echo "$stats"; } | citer-dump -r >"$T/routed.cs"
routed | citer-dump -r >"$T/nostats.cs"
# plain generate output: no counts in the records, no stats
{ answers; printf '%s\n' "{\"kind\":\"tokens\",\"seq\":0,\"data\":$I0,\"meta\":{\"role\":\"generated\"}}" \
    "{\"kind\":\"tokens\",\"seq\":1,\"data\":$I1,\"meta\":{\"role\":\"generated\"}}" \
    "{\"kind\":\"tokens\",\"seq\":2,\"data\":$I2,\"meta\":{\"role\":\"generated\"}}" \
    "{\"kind\":\"tokens\",\"seq\":3,\"data\":$I3,\"meta\":{\"role\":\"generated\"}}" "$answer3" \
    "{\"kind\":\"tokens\",\"seq\":4,\"data\":$I4,\"meta\":{\"role\":\"generated\"}}"; } |
    citer-dump -r >"$T/plain.cs"
# plain generate output with a stats record: counts come from it
{ answers; printf '%s\n' "{\"kind\":\"tokens\",\"seq\":0,\"data\":$I0,\"meta\":{\"role\":\"generated\"}}" \
    '{"kind":"meta","meta":{"role":"stats","tokens":13,"llm_calls":0,"llm_tokens":0,"llm_token_ratio":0,"catchup_tokens":0,"tokens_per_second":40}}'; } |
    citer-dump -r >"$T/plainstats.cs"

H=label,examples,graded,accuracy,llm_ratio,llm_calls,catchup_tokens,tokens_per_second,seconds,speedup,bytes_per_token,flops_per_token
# accuracy: 3 right of 4 graded (seq 4 has no answer record)
want="$H
run,5,4,0.7500,0.2000,12,8,120.5,0.500,,,
nostats,5,4,0.7500,0.2000,12,8,,,,,
plain,5,4,0.7500,,,,,,,,
one,1,1,1.0000,0.0000,0,0,40.0,,,,"
got=$(citer-score -t "$TOK" --csv -l run "$T/routed.cs" --label nostats "$T/nostats.cs" \
    -l plain "$T/plain.cs" -l one "$T/plainstats.cs" 2>&1)
if [ "$got" = "$want" ]; then pass "csv rows: accuracy, ratio, counts, stats"; else
    fail "csv rows" "$(printf '%s' "$got" | tr '\n' '|')"; fi

want='{"label":"run","examples":5,"graded":4,"accuracy":0.7500,"llm_ratio":0.2000,"llm_calls":12,"catchup_tokens":8,"tokens_per_second":120.5,"seconds":0.500,"speedup":null,"bytes_per_token":null,"flops_per_token":null}
{"label":"nostats","examples":5,"graded":4,"accuracy":0.7500,"llm_ratio":0.2000,"llm_calls":12,"catchup_tokens":8,"tokens_per_second":null,"seconds":null,"speedup":null,"bytes_per_token":null,"flops_per_token":null}'
got=$(citer-score -t "$TOK" --json -l run "$T/routed.cs" -l nostats "$T/nostats.cs" 2>&1)
if [ "$got" = "$want" ]; then pass "json lines"; else fail "json lines" "$got"; fi

# mc answers with their choices (citer-tokenize --dataset writes them): a choice's text after
# "Therefore" counts, whole words only, labels that are not letters too; without the choices
# only labels are found.
M0=$(ids 'Therefore, the answer is whale.')
M1=$(ids 'Therefore, the answer is a candle flame.')
M2=$(ids 'Therefore, the answer is cattle.')
mcans() { # SEQ ANSWER TEXTS LABELS
    printf '{"kind":"meta","seq":%s,"meta":{"role":"answer","answer":"%s","format":"mc","choices":{"text":[%s],"label":[%s]}}}\n' "$@"
}
{ mcans 0 B '"shark","whale"' '"A","B"'; mcans 1 3 '"a mirror","the Moon","a candle flame"' '"1","2","3"'
  mcans 2 A '"cat","cattle dog"' '"A","B"'
  for i in 0 1 2; do eval "d=\$M$i"; printf '{"kind":"tokens","seq":%s,"data":%s,"meta":{"role":"generated"}}\n' $i "$d"; done; } |
    citer-dump -r >"$T/mc.cs"
got=$(citer-score -t "$TOK" --csv -l mc "$T/mc.cs" 2>&1 | tail -n 1 | cut -d , -f 1-4)
# whale -> B right; "a candle flame" -> 3 right; "cattle" is not "cat" nor "cattle dog": no answer
if [ "$got" = "mc,3,3,0.6667" ]; then pass "mc graded with the choices"; else fail "mc graded with the choices" "$got"; fi
citer-dump "$T/mc.cs" | sed 's/,"choices":{[^}]*}//' | citer-dump -r >"$T/mc-bare.cs"
got=$(citer-score -t "$TOK" --csv -l mc "$T/mc-bare.cs" 2>&1 | tail -n 1 | cut -d , -f 1-4)
if [ "$got" = "mc,3,3,0.0000" ]; then pass "mc without choices: labels only"; else fail "mc without choices" "$got"; fi
printf '{"kind":"meta","seq":0,"meta":{"role":"answer","answer":"B","format":"mc","choices":{"text":["x"],"label":[]}}}\n' |
    citer-dump -r >"$T/mcbad.cs"
expect_error "choices of two lengths" 1 'mcbad.cs: seq 0: "choices"' citer-score -t "$TOK" "$T/mcbad.cs"

# text table: default label is the file name, unknown values are "-", columns aligned
cp "$T/plain.cs" "$T/p.cs"
got=$(cd "$T" && citer-score -t "$OLDPWD/$TOK" p.cs 2>&1)
want='label  examples  graded  accuracy  llm_ratio  llm_calls  catchup_tokens  tokens_per_second  seconds  speedup  bytes_per_token  flops_per_token
p.cs          5       4    0.7500          -          -               -                  -        -        -                -                -'
if [ "$got" = "$want" ]; then pass "text table"; else fail "text table" "$got"; fi

# --baseline: speed-up = the baseline's seconds / the row's: 0.5 / 0.5 = 1, 0.5 / 0.2 = 2.5,
# 0.5 / 2 = 0.25; unknown for a row without seconds
{ routed; echo "$stats" | sed 's/"seconds":0.5/"seconds":0.2/'; } | citer-dump -r >"$T/fast.cs"
{ routed; echo "$stats" | sed 's/"seconds":0.5/"seconds":2/'; } | citer-dump -r >"$T/slow.cs"
got=$(citer-score -t "$TOK" --csv --baseline base -l base "$T/routed.cs" -l fast "$T/fast.cs" \
    -l slow "$T/slow.cs" -l none "$T/nostats.cs" | cut -d, -f1,9,10 | tr '\n' ' ')
want="label,seconds,speedup base,0.500,1.00 fast,0.200,2.50 slow,2.000,0.25 none,, "
if [ "$got" = "$want" ]; then pass "--baseline: speed-up over a labelled row"; else fail "--baseline" "$got"; fi
got=$(citer-score -t "$TOK" --csv --baseline "$T/routed.cs" "$T/fast.cs" "$T/routed.cs" | cut -d, -f10 | tr '\n' ' ')
check "--baseline: a file name is a label" [ "$got" = "speedup 2.50 1.00 " ]
expect_error "--baseline: no such label" 2 "^citer-score: --baseline nope: no FILE has that label" \
    citer-score -t "$TOK" --baseline nope "$T/routed.cs"

# a stream with no answer records at all: accuracy unknown
routed | grep -v '"role":"answer"' | citer-dump -r >"$T/noanswers.cs"
got=$(citer-score -t "$TOK" --csv "$T/noanswers.cs" | tail -n 1 | cut -d, -f2-4)
check "no answer records: nothing graded, accuracy empty" [ "$got" = "5,0," ]

# -o writes the same bytes atomically
citer-score -t "$TOK" --csv "$T/routed.cs" >"$T/stdout.csv"
citer-score -t "$TOK" --csv -o "$T/o.csv" "$T/routed.cs"
check "-o FILE" cmp -s "$T/stdout.csv" "$T/o.csv"
check "-o leaves no temp file" [ "$(ls "$T" | grep -c 'o\.csv')" -eq 1 ]

# --plot FILE.svg: written by citer-score itself. Rows, as (LLM-token ratio, accuracy):
#   CITER round 2 tau=0.3  routed.cs      (0.2, 0.75)
#   CITER round 2 tau=0.5  plainstats.cs  (0, 1)
#   random p=0.2           nostats.cs     (0.2, 0.75)
#   a<b & c k=1            routed.cs      (0.2, 0.75)
#   k=2                    routed.cs      (0.2, 0.75)  (no text before the '=' token: own series)
#   no answers             noanswers.cs   no accuracy: left out with a warning
# Accuracy axis: 0.75 - 0.05 and 1 + 0.05 rounded out to tenths, within 0..1: 0.7..1. Geometry
# (citer-score(1)): cx = 70 + 500 ratio, cy = 410 - 380 (accuracy - 0.7) / 0.3, so
# (0.2, 0.75) -> (170.0, 346.7) and (0, 1) -> (70.0, 30.0).
svg_rows() {
    citer-score -t "$TOK" "$@" -l 'CITER round 2 tau=0.3' "$T/routed.cs" -l 'CITER round 2 tau=0.5' "$T/plainstats.cs" \
        -l 'random p=0.2' "$T/nostats.cs" -l 'a<b & c k=1' "$T/routed.cs" -l 'k=2' "$T/routed.cs" \
        -l 'no answers' "$T/noanswers.cs"
}
svg_rows --csv --plot "$T/plot.svg" >"$T/svg.out" 2>"$T/svg.err"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$T/plot.svg" ]; then pass "--plot FILE.svg: written"; else
    fail "--plot FILE.svg: written" "exit $rc: $(cat "$T/svg.err")"; fi
check "--plot svg: well-formed XML" python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$T/plot.svg"
check "--plot svg: an svg document with axis names" sh -c "grep -q '<svg xmlns=\"http://www.w3.org/2000/svg\"' '$T/plot.svg' &&
    grep -q '>LLM-token ratio</text>' '$T/plot.svg' && grep -q '>accuracy</text>' '$T/plot.svg'"
check "--plot svg: no script, nothing external" sh -c "! grep -Eqi 'script|href|@import|url\\(' '$T/plot.svg'"
check "--plot svg: one marker per row with both values" [ "$(grep -c '<circle' "$T/plot.svg")" -eq 5 ]
got=$(sed -n 's/^<text x="626" y="[0-9]*">\(.*\)<\/text>$/\1/p' "$T/plot.svg" | tr '\n' '|')
want='CITER round 2|random|a&lt;b &amp; c|k=2|'
if [ "$got" = "$want" ]; then pass "--plot svg: legend of the series"; else fail "--plot svg: legend" "$got"; fi
check "--plot svg: labels escaped" sh -c "grep -q '<title>a&lt;b &amp; c k=1</title>' '$T/plot.svg' && ! grep -q 'a<b' '$T/plot.svg'"
check "--plot svg: (0.2, 0.75) at (170.0, 346.7)" grep -q '<circle cx="170.0" cy="346.7" r="4" [^>]*><title>random p=0.2</title>' "$T/plot.svg"
check "--plot svg: (0, 1) at (70.0, 30.0)" grep -q '<circle cx="70.0" cy="30.0" r="4" [^>]*><title>CITER round 2 tau=0.5</title>' "$T/plot.svg"
check "--plot svg: a series joined in order of ratio" grep -q 'points="70.0,30.0 170.0,346.7"' "$T/plot.svg"
check "--plot svg: a row's parameter beside its point" grep -q '>tau=0.3</text>' "$T/plot.svg"
if [ "$(wc -l <"$T/svg.err")" -eq 1 ] && grep -q '^citer-score: --plot: no answers: no accuracy' "$T/svg.err"; then
    pass "--plot svg: a row without accuracy left out, with a warning"
else fail "--plot svg: a row without accuracy" "$(cat "$T/svg.err")"; fi
check "--plot svg: the table still on stdout" [ "$(wc -l <"$T/svg.out")" -eq 7 ]
check "--plot svg: no temp file left" [ "$(ls "$T" | grep -c 'plot\.svg')" -eq 1 ]
svg_rows --csv >"$T/svg.want" 2>/dev/null
svg_rows --csv -o "$T/svg.csv" --plot "$T/plot2.svg" >"$T/svg.out" 2>/dev/null
check "-o and --plot svg together" sh -c "cmp -s '$T/svg.want' '$T/svg.csv' && [ ! -s '$T/svg.out' ] && cmp -s '$T/plot.svg' '$T/plot2.svg'"
citer-score -t "$TOK" --plot "$T/none.svg" "$T/noanswers.cs" >/dev/null 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$T/none.svg" ] && grep -q "no plot written" "$T/err" && [ "$(ls "$T" | grep -c none)" -eq 0 ]; then
    pass "--plot svg: nothing to plot: exit 0, no file, says so"
else fail "--plot svg: nothing to plot" "exit $rc: $(cat "$T/err")"; fi
expect_error "--plot svg: unwritable path" 1 "^citer-score: $T/nodir/p.svg: " \
    citer-score -t "$TOK" -o "$T/unwritten.csv" --plot "$T/nodir/p.svg" "$T/routed.cs"
check "--plot svg: unwritable path: no table written either" [ ! -e "$T/unwritten.csv" ]

# --plot FILE.png (gnuplot) never fails the run
citer-score -t "$TOK" --plot "$T/plot.png" "$T/routed.cs" >"$T/out" 2>"$T/err"
rc=$?
if command -v gnuplot >/dev/null 2>&1; then
    check "--plot writes a PNG" [ "$rc" -eq 0 -a -s "$T/plot.png" ]
else
    if [ "$rc" -eq 0 ] && grep -q "gnuplot is not installed" "$T/err"; then
        pass "--plot without gnuplot: exit 0, says so"
    else fail "--plot without gnuplot" "exit $rc: $(cat "$T/err")"; fi
fi

# cost per token from two f32 test models (t_route write-models):
#   small: D 32, 1 layer, q 2x16, kv 1x16, ffn 64, vocab 300, untied head:
#     32*32 + 2*32*16 + 32*32 + 3*32*64 = 9216 per layer, + 300*32 head = 18816 params, 75264 bytes
#   large: D 64, 2 layers, q 4x16, kv 2x16, ffn 128: 36864 per layer, x2, + 300*64 = 92928
#     params, 371712 bytes
#   ratio 0.2: bytes 75264 + 0.2*371712 = 149606.4, FLOPs 2*(18816 + 0.2*92928) = 74803.2
TB=${CITER_TESTBIN:-$(pwd)/build/tests}
if [ ! -x "$TB/t_route" ]; then
    skip "bytes and FLOPs per token" "$TB/t_route not built (make test builds it)"
elif "$TB/t_route" write-models "$T"; then
    got=$(citer-score -t "$TOK" --csv --slm-model "$T/slm.gguf" --llm-model "$T/llm.gguf" "$T/routed.cs" "$T/plain.cs" | tail -n 2 | cut -d, -f5,11,12)
    want="0.2000,149606,74803
,,"
    if [ "$got" = "$want" ]; then pass "bytes and FLOPs per token"; else
        fail "bytes and FLOPs per token" "$(printf '%s' "$got" | tr '\n' '|')"; fi
else
    fail "write the test models"
fi

# errors
head -c 300 "$T/routed.cs" >"$T/trunc.cs"
expect_error "truncated stream" 1 "^citer-score: .*trunc.cs: " citer-score -t "$TOK" "$T/trunc.cs"
cp "$T/routed.cs" "$T/bad.cs"
printf 'X' | dd of="$T/bad.cs" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_error "corrupt stream" 1 "^citer-score: .*bad.cs: .*byte" citer-score -t "$TOK" "$T/bad.cs"
expect_error "missing file" 1 "^citer-score: $T/none.cs: " citer-score -t "$TOK" "$T/none.cs"
{ answers; answers; } | citer-dump -r >"$T/dup.cs"
expect_error "two answers for one seq" 1 "seq 0: two answer records" citer-score -t "$TOK" "$T/dup.cs"
echo '{"kind":"meta","seq":0,"meta":{"role":"answer","answer":"1","format":"essay"}}' | citer-dump -r >"$T/fmt.cs"
expect_error "unknown answer format" 1 "unknown answer format 'essay'" citer-score -t "$TOK" "$T/fmt.cs"
echo '{"kind":"tokens","seq":0,"data":[99999],"meta":{"role":"generated"}}' | citer-dump -r >"$T/range.cs"
expect_error "token id out of range" 1 "^citer-score: .*range.cs: seq 0: " citer-score -t "$TOK" "$T/range.cs"
expect_error "bad model" 1 "^citer-score: $T/none.gguf: " citer-score -t "$TOK" --slm-model "$T/none.gguf" --llm-model "$T/none.gguf" "$T/routed.cs"
expect_error "no FILE" 2 "no FILE" citer-score -t "$TOK"
expect_error "no tokenizer" 2 "no tokenizer" env -u CITER_TOKENIZER citer-score "$T/routed.cs"
expect_error "one model only" 2 "go together" citer-score -t "$TOK" --slm-model x "$T/routed.cs"
expect_error "label without FILE" 2 "no FILE follows" citer-score -t "$TOK" "$T/routed.cs" -l x
expect_error "unknown option" 2 "" citer-score -t "$TOK" --bogus "$T/routed.cs"
check "--version" sh -c 'citer-score --version | grep -q "^citer-score "'
check "--help" sh -c 'citer-score --help | grep -q "^usage: citer-score"'
t_end
