# citer-tokenize as a tool: fixture cases through the command line, round trips, errors.
. tests/lib.sh
TOK=examples/tokenizer.json
hex() { od -An -tx1 -v | tr -d ' \n'; }

# --- fixture cases, all of a file in one run -------------------------------------------------
if [ -z "$(fixture tokenizers/manifest.txt)" ]; then
    skip "fixture encode cases" "$NO_FIXTURES"
    skip "fixture decode cases" "$NO_FIXTURES"
else
    FX=$CITER_FIXTURES/tokenizers
    grep -v '^#' "$FX/manifest.txt" | while read -r vocab inp want; do
        [ -n "$vocab" ] || continue
        name="encode $inp"
        if ! citer-tokenize -q -t "$FX/$vocab" -z --ids --no-bos <"$FX/$inp" >"$T/got" 2>"$T/err"; then
            fail "$name" "$(cat "$T/err")"; continue
        fi
        sed 's/^ *//; s/ *$//' "$FX/$want" >"$T/want"
        if cmp -s "$T/got" "$T/want"; then pass "$name"; else
            fail "$name" "first difference: $(diff "$T/got" "$T/want" | head -n 3 | tr '\n' ' ')"; fi
    done
    # The vocabulary's own default: llama-spm prepends BOS 1, the others add nothing.
    for v in llama-spm/ggml-vocab-llama-spm.gguf:1 gpt-2/ggml-vocab-gpt-2.gguf: qwen3/tokenizer.json:; do
        vocab=${v%%:*} bos=${v#*:}
        dir=${vocab%%/*}
        citer-tokenize -q -t "$FX/$vocab" -z --ids <"$FX/$dir/cases.z" >"$T/got" 2>"$T/err"
        sed 's/^ *//; s/ *$//' "$FX/$dir/cases.out" | awk -v b="$bos" '{ if (b == "") print; else if ($0 == "") print b; else print b " " $0 }' >"$T/want"
        if cmp -s "$T/got" "$T/want"; then pass "default BOS rule: $dir"; else
            fail "default BOS rule: $dir" "$(diff "$T/got" "$T/want" | head -n 3 | tr '\n' ' ')"; fi
    done
    # decode.tsv: field 1 ids, field 2 hex with special tokens rendered, field 3 with them skipped.
    for dir in qwen3 gpt-2 llama-spm; do
        vocab=$(grep "^$dir/" "$FX/manifest.txt" | head -n 1 | cut -d' ' -f1)
        cut -f1 "$FX/$dir/decode.tsv" >"$T/ids"
        for field in 2 3; do
            flag=; [ $field = 3 ] && flag=--skip-special
            citer-tokenize -q -t "$FX/$vocab" -d --ids -z $flag <"$T/ids" | hex >"$T/got"
            cut -f$field "$FX/$dir/decode.tsv" | sed 's/$/00/' | tr -d '\n' >"$T/want"
            if cmp -s "$T/got" "$T/want"; then pass "decode $dir field $field"; else
                fail "decode $dir field $field" "output bytes differ from decode.tsv"; fi
        done
    done
fi

# --- fresh-clone cases on the example tokenizer -----------------------------------------------
grep -v '^$' examples/data/corpus.txt >"$T/lines"
citer-tokenize -t $TOK "$T/lines" >"$T/s.cst" && citer-tokenize -t $TOK -d "$T/s.cst" >"$T/back"
check "round trip through a stream" cmp -s "$T/lines" "$T/back"

citer-tokenize -t $TOK --ids <"$T/lines" | citer-tokenize -t $TOK -d --ids >"$T/back2"
check "round trip through --ids" cmp -s "$T/lines" "$T/back2"

printf 'one\ntwo\0second\0no terminator' >"$T/z"
citer-tokenize -t $TOK -z "$T/z" | citer-tokenize -t $TOK -d -z >"$T/zback"
printf 'one\ntwo\0second\0no terminator\0' >"$T/zwant"
check "NUL-separated texts keep newlines" cmp -s "$T/zback" "$T/zwant"

n=$(printf 'a\nb\nc' | citer-tokenize -t $TOK --ids | wc -l)
check "three lines, three texts" [ "$n" -eq 3 ]
n=$(printf '' | citer-tokenize -t $TOK --ids | wc -c)
check "no input, no texts" [ "$n" -eq 0 ]

a=$(echo '<|im_start|>' | citer-tokenize -t $TOK --ids)
b=$(echo '<|im_start|>' | citer-tokenize -t $TOK --ids --no-special | wc -w)
check "special token text is one token" [ "$a" = 440 ]
check "--no-special splits it" [ "$b" -gt 1 ]
c=$(echo '<|im_start|>x' | citer-tokenize -t $TOK --ids --skip-special --bos --eos | wc -w)
check "--bos/--eos without a BOS/EOS token add nothing" [ "$c" -eq 2 ]

d=$(printf '439 104\n' | citer-tokenize -t $TOK -d --ids --skip-special)
check "--skip-special drops special tokens" [ "$d" = "h" ]

# seq numbers count texts across all input files
printf 'a\nb\n' >"$T/f1"; printf 'c\n' >"$T/f2"
citer-tokenize -t $TOK "$T/f1" "$T/f2" | citer-dump --no-data >"$T/dump"
check "seq counts texts across files" grep -q '"seq":2' "$T/dump"

# --dataset --text needs no tokenizer; --dataset writes prompt, target and answer records
n=$(citer-tokenize --dataset math --text examples/data/math-sample.jsonl | grep -c '^Solve the following math problem')
check "--dataset --text renders every prompt" [ "$n" -eq "$(grep -c . examples/data/math-sample.jsonl)" ]
citer-tokenize -t $TOK --dataset auto examples/data/mc-sample.jsonl | citer-dump --no-data >"$T/mc.json"
r=$(grep -c '"role":"prompt"' "$T/mc.json") a=$(grep -c '"role":"answer"' "$T/mc.json")
check "mc dataset: a prompt and an answer record per item" [ "$r" -eq 4 -a "$a" -eq 4 ]
check "mc dataset: the answer record carries the answer key" grep -q '"answer":"C"' "$T/mc.json"
check "mc dataset: the answer record carries the choices" grep -q '"role":"answer".*"choices":{"text":\[".*\],"label":\["A","B",' "$T/mc.json"
printf '{"problem": "2+2?", "solution": "no box"}\n' >"$T/nobox.jsonl"
expect_error "math item without an answer" 1 "^citer-tokenize: $T/nobox.jsonl: line 1: " citer-tokenize --dataset math --text "$T/nobox.jsonl"
printf '{"question": "q", "choices": {"text": ["a"], "label": ["A", "B"]}, "answerKey": "A"}\n' >"$T/badmc.jsonl"
expect_error "mc labels and texts differ" 1 "line 1: choices.text and choices.label differ" citer-tokenize --dataset mc --text "$T/badmc.jsonl"
printf 'not json\n' >"$T/notjson.jsonl"
expect_error "dataset line is not JSON" 1 "line 1: " citer-tokenize -t $TOK --dataset auto "$T/notjson.jsonl"
expect_error "unknown template" 1 "^citer-tokenize: nosuch-template: " citer-tokenize --dataset mc --template nosuch-template --text examples/data/mc-sample.jsonl

# --- errors -------------------------------------------------------------------------------------
expect_error "missing tokenizer file" 1 "^citer-tokenize: $T/nope.json: " citer-tokenize -t "$T/nope.json" /dev/null
printf '{"model": ' >"$T/bad.json"
expect_error "malformed tokenizer.json" 1 "^citer-tokenize: $T/bad.json: " citer-tokenize -t "$T/bad.json" /dev/null
expect_error "no tokenizer given" 2 "^citer-tokenize: .*-t" env -u CITER_TOKENIZER citer-tokenize /dev/null
expect_error "unknown option" 2 "^citer-tokenize: " citer-tokenize --frobnicate
expect_error "id out of range" 1 "^citer-tokenize: -: line 1: " sh -c "echo '1 99999' | citer-tokenize -t $TOK -d --ids"
expect_error "not an id" 1 "^citer-tokenize: -: line 2: not a token id" sh -c "printf '1 2\n3 x\n' | citer-tokenize -t $TOK -d --ids"
head -c 40 "$T/s.cst" >"$T/trunc.cst"
expect_error "truncated stream" 1 "^citer-tokenize: $T/trunc.cst: .*byte" citer-tokenize -t $TOK -d "$T/trunc.cst"
expect_error "text is not a stream" 1 "^citer-tokenize: $T/lines: .*magic" citer-tokenize -t $TOK -d "$T/lines"
expect_error "unknown dataset format" 2 "^citer-tokenize: .*--dataset" citer-tokenize -t $TOK --dataset xyz

# -o is atomic: a failing run leaves no output file, a good one leaves a complete one
citer-tokenize -t $TOK -d -o "$T/out.txt" "$T/trunc.cst" 2>/dev/null
check "failed run leaves no -o file" [ ! -e "$T/out.txt" ]
check "no temp files left" [ -z "$(ls "$T" | grep '\.tmp\.')" ]
citer-tokenize -t $TOK -o "$T/out.cst" "$T/lines"
check "-o writes a complete stream" citer-dump --check "$T/out.cst"

# -o to a device writes through it instead of replacing it
mkfifo "$T/fifo"
cat "$T/fifo" >"$T/fifo.out" &
citer-tokenize -t $TOK --ids -o "$T/fifo" "$T/lines"
wait
check "-o FIFO writes through the FIFO" [ -p "$T/fifo" -a -s "$T/fifo.out" ]

# broken pipe: quiet
yes 'The small model writes most of the tokens.' | head -n 20000 >"$T/many"
citer-tokenize -t $TOK --ids "$T/many" 2>"$T/pipe.err" | head -n 1 >/dev/null
check "broken pipe is quiet" [ ! -s "$T/pipe.err" ]
t_end
