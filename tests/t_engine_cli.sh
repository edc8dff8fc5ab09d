#!/bin/sh
# citer-slm / citer-llm: usage and error lines, generation options, and a scripted --serve session
# checked with citer-dump. Numeric agreement with the references is in t_engine_cli.c.
. tests/lib.sh

# ---- fixture-free ----
expect_error "no model is a usage error" 2 "^citer-slm: no model: give -m PATH or set CITER_SLM_MODEL" \
    env -u CITER_SLM_MODEL citer-slm
expect_error "citer-llm names its own variable" 2 "^citer-llm: .*CITER_LLM_MODEL" env -u CITER_LLM_MODEL citer-llm
expect_error "unknown option" 2 "^citer-llm: .*--frobnicate" citer-llm -m x --frobnicate
expect_error "bad --max-tokens" 2 "^citer-llm: --max-tokens: 'many'" citer-llm -m x --max-tokens many
expect_error "bad --top-p" 2 "^citer-llm: --top-p: '2'" citer-llm -m x --top-p 2
# the sampling options share one parser with citer-route: the same messages
for tool in citer-slm citer-route; do
    expect_error "$tool: bad --temperature" 2 "^$tool: --temperature: '-1' is not a number >= 0 " \
        $tool --temperature -1
    expect_error "$tool: bad --top-p" 2 "^$tool: --top-p: '0' is not a number in \(0, 1\] " $tool --top-p 0
    expect_error "$tool: bad --top-k" 2 "^$tool: --top-k: 'k' is not a number >= 0 " $tool --top-k k
done
expect_error "--score and --serve" 2 "^citer-slm: --score and --serve exclude each other" \
    citer-slm -m x --score --serve
expect_error "-o with --serve" 2 "^citer-llm: --serve answers on stdout" citer-llm -m x --serve -o f
expect_error "--logits without --score" 2 "^citer-llm: --logits applies to --score" citer-llm -m x --logits
expect_error "--logits with --serve" 2 "^citer-llm: --logits applies to --score" citer-llm -m x --serve --logits
expect_error "missing model file" 1 "^citer-llm: $T/nothing.gguf: " citer-llm -m "$T/nothing.gguf"
expect_error "model from the environment" 1 "^citer-slm: $T/env.gguf: " env CITER_SLM_MODEL="$T/env.gguf" citer-slm
printf 'this is not a model\n' >"$T/notes.txt"
expect_error "a file that is not a model" 1 "^citer-slm: $T/notes.txt: " citer-slm -m "$T/notes.txt"
check "--help" sh -c 'citer-slm --help | head -n 1 | grep -q "^usage: citer-slm -m MODEL"'
check "--help says which tool emits hidden states" sh -c \
    'citer-slm --help | grep -q "^      --hidden .*(default)" && citer-llm --help | grep -q "^      --no-hidden .*(default)"'
check "--version" sh -c 'citer-llm --version | grep -qx "citer-llm [0-9][0-9.]*"'

# ---- with the stories model ----
M=$(fixture models/stories260K/stories260K-f32.gguf)
if [ -z "$M" ]; then
    for n in generate serve corrupt; do skip "$n" "$NO_FIXTURES"; done
    t_end
fi

# The reference prompt (stories260K.ref.safetensors "tokens").
P='1,403,407,261,378,432,383,286,261,376,268,414,422,395,326,426,326,381,261,370,352,266,268,388,426,346,397,355,267,337,335,345,268,388,322,265,282,295,433,426'
# tokens 10..14 and 15..19 of it
A='1,403,407,261,378,432,383,286,261,376' B='268,414,422,395,326' C='426,326,381,261,370'

field() { # field NAME: the value of "NAME": in each line of stdin
    sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"
}

# -- generate --
cat >"$T/gen.jsonl" <<EOF
{"kind":"tokens","seq":1,"pos":0,"dtype":"i32","shape":[10],"meta":{"role":"prompt"},"data":[$A]}
{"kind":"tokens","seq":1,"pos":10,"dtype":"i32","shape":[5],"meta":{"role":"target"},"data":[$B]}
{"kind":"meta","seq":1,"pos":-1,"dtype":"none","shape":[],"meta":{"role":"answer","text":"Tim"}}
{"kind":"tokens","seq":2,"pos":0,"dtype":"i32","shape":[40],"data":[$P]}
EOF
citer-dump -r "$T/gen.jsonl" >"$T/gen.cs"
citer-llm -q -m "$M" --max-tokens 8 "$T/gen.cs" -o "$T/gen.out" 2>"$T/err"
citer-dump --no-data "$T/gen.out" >"$T/gen.txt" 2>>"$T/err"
check "generate: one record per prompt, META passed on, targets left out" \
    test "$(sed 's/^{"kind":"\([a-z]*\)","seq":\([0-9]*\),"pos":\(-*[0-9]*\),.*/\1:\2:\3/' "$T/gen.txt" | tr '\n' ' ')" \
    = "tokens:1:10 meta:1:-1 tokens:2:40 "
check "generate: metadata of a generated record" \
    grep -q '"meta":{"role":"generated","stop":"max","n_prompt":40,"n_generated":8}' "$T/gen.txt"
check "generate: the answer's metadata is unchanged" grep -q '"meta":{"role":"answer","text":"Tim"}' "$T/gen.txt"
check "generate: nothing on stderr with -q" test ! -s "$T/err"
check "citer-slm adds a hidden-state record [n, D]" sh -c \
    'citer-slm -m "$1" --max-tokens 8 "$2" | citer-dump --no-data | grep -c "\"kind\":\"tensor\",\"seq\":[12],\"pos\":[0-9]*,\"dtype\":\"f32\",\"shape\":\[8,64\],\"meta\":{\"role\":\"hidden\"}" | grep -qx 2' \
    _ "$M" "$T/gen.cs"
check "--no-hidden" sh -c 'test "$(citer-slm --no-hidden -m "$1" --max-tokens 3 "$2" | citer-dump | grep -c tensor)" = 0' \
    _ "$M" "$T/gen.cs"
check "--max-tokens 0" sh -c \
    'citer-llm -m "$1" --max-tokens 0 "$2" | citer-dump | grep -q "\"shape\":\[0\],\"meta\":{\"role\":\"generated\",\"stop\":\"max\",\"n_prompt\":40,\"n_generated\":0},\"data\":\[\]"' \
    _ "$M" "$T/gen.cs"
# stdin in, stdout out; the greedy continuation starts with the reference's first greedy tokens
check "generate: stdin to stdout, greedy = reference" sh -c \
    'citer-llm -m "$1" --max-tokens 4 <"$2" | citer-dump | grep -q "\"data\":\[385,328,432,281\]"' _ "$M" "$T/gen.cs"
citer-llm -m "$M" --temperature 1.5 --seed 5 --max-tokens 32 "$T/gen.cs" | citer-dump >"$T/s5a"
citer-llm -m "$M" --temperature 1.5 --seed 5 --max-tokens 32 "$T/gen.cs" | citer-dump >"$T/s5b"
citer-llm -m "$M" --temperature 1.5 --seed 6 --max-tokens 32 "$T/gen.cs" | citer-dump >"$T/s6"
check "sampling: the same seed gives the same tokens" cmp -s "$T/s5a" "$T/s5b"
check "sampling: another seed gives other tokens" sh -c '! cmp -s "$1" "$2"' _ "$T/s5a" "$T/s6"
# A stop string: the generation ends early, its tokens a prefix of the unstopped one.
if citer-llm -m "$M" --stop e --max-tokens 32 "$T/gen.cs" -o "$T/stop.out" 2>"$T/err"; then
    stopped=$(citer-dump "$T/stop.out" | grep '"seq":2,' | sed 's/.*"data":\[\(.*\)\].*/\1/')
    full=$(citer-llm -m "$M" --max-tokens 32 "$T/gen.cs" | citer-dump | grep '"seq":2,' | sed 's/.*"data":\[\(.*\)\].*/\1/')
    check "--stop: stops early with stop \"stop\"" sh -c \
        'citer-dump "$1" | grep "\"seq\":2," | grep -q "\"stop\":\"stop\""' _ "$T/stop.out"
    case $full in "$stopped"*) pass "--stop: the stopped tokens are a prefix of the full run" ;;
        *) fail "--stop: the stopped tokens are a prefix of the full run" "$stopped vs $full" ;; esac
else
    fail "--stop" "$(cat "$T/err")"
fi
check "without a limit a story ends at EOS (2) or at --max-tokens" sh -c \
    'citer-llm -m "$1" "$2" | citer-dump | grep "\"seq\":2," | grep -Eq "\"stop\":\"eos\".*,2\]\}$|\"stop\":\"max\""' \
    _ "$M" "$T/gen.cs"
printf '{"kind":"tokens","seq":0,"pos":0,"dtype":"i32","shape":[2],"data":[1,9999]}\n' | citer-dump -r >"$T/bad.cs"
expect_error "token id out of range" 1 \
    "^citer-llm: $T/bad.cs: record 1 \(seq 0\): token 9999 at index 1 is out of range \(vocabulary 512\)$" \
    citer-llm -m "$M" "$T/bad.cs"
printf '{"kind":"tokens","seq":0,"pos":0,"dtype":"f32","shape":[1],"data":[1]}\n' | citer-dump -r >"$T/badt.cs"
expect_error "tokens that are not i32" 1 "^citer-llm: stdin: record 1 \(seq 0\): tokens record is not i32" \
    sh -c 'citer-llm -m "$1" <"$2"' _ "$M" "$T/badt.cs"
expect_error "-o leaves nothing behind on failure" 1 "record 1" citer-llm -m "$M" -o "$T/none.cs" "$T/bad.cs"
check "-o: no output file after a failure" test ! -e "$T/none.cs"

# The context length (512) ends a generation too.
long=$(yes 261 | head -n 510 | tr '\n' ',' | sed 's/,$//')
printf '{"kind":"tokens","seq":0,"pos":0,"dtype":"i32","shape":[510],"data":[%s]}\n' "$long" | citer-dump -r >"$T/long.cs"
check "generate: at most the context length" sh -c \
    'citer-llm -m "$1" "$2" | citer-dump --no-data | grep -q "\"stop\":\"max\",\"n_prompt\":510,\"n_generated\":2}"' \
    _ "$M" "$T/long.cs"
printf '{"kind":"tokens","seq":3,"pos":0,"dtype":"i32","shape":[0],"data":[]}\n' | citer-dump -r >"$T/empty.cs"
expect_error "generate: an empty prompt" 1 "record 1 \(seq 3\): empty prompt" citer-llm -m "$M" "$T/empty.cs"

# -- score: plain pairs and prompt/target roles --
cat >"$T/score.jsonl" <<EOF
{"kind":"tokens","seq":4,"pos":0,"dtype":"i32","shape":[10],"data":[$A]}
{"kind":"tokens","seq":4,"pos":10,"dtype":"i32","shape":[5],"data":[$B]}
{"kind":"tokens","seq":5,"pos":0,"dtype":"i32","shape":[10],"meta":{"role":"prompt"},"data":[$A]}
{"kind":"meta","seq":5,"pos":-1,"dtype":"none","shape":[],"meta":{"role":"answer"}}
{"kind":"tokens","seq":5,"pos":10,"dtype":"i32","shape":[5],"meta":{"role":"target"},"data":[$B]}
EOF
citer-dump -r "$T/score.jsonl" | citer-llm -m "$M" --score | citer-dump >"$T/score.txt"
check "score: one record per target token, positions 10..14" \
    test "$(grep '"kind":"tensor"' "$T/score.txt" | field pos | tr '\n' ' ')" = "10 11 12 13 14 10 11 12 13 14 "
check "score: ref is the target token" \
    test "$(grep '"seq":5' "$T/score.txt" | field ref | tr '\n' ' ')" = "268 414 422 395 326 "
check "score: no payload without --hidden" sh -c \
    'test "$(grep -c "\"dtype\":\"none\",\"shape\":\[\],\"meta\":{\"ref\"" "$1")" = 10' _ "$T/score.txt"
check "score: plain pair and roles score alike" sh -c \
    'test "$(grep "\"seq\":4" "$1" | sed "s/\"seq\":4//")" = "$(grep "\"seq\":5,\"pos\":1" "$1" | sed "s/\"seq\":5//")"' \
    _ "$T/score.txt"
printf '{"kind":"tokens","seq":0,"pos":0,"dtype":"i32","shape":[1],"meta":{"role":"target"},"data":[1]}\n' |
    citer-dump -r >"$T/orphan.cs"
expect_error "score: a target without a prompt" 1 "record 1 \(seq 0\): target record without a prompt" \
    citer-slm -m "$M" --score "$T/orphan.cs"

# -- serve: a scripted session --
req() { # req SEQ META [TOKENS]
    if [ -n "$3" ]; then
        n=$(echo "$3" | tr ',' '\n' | wc -l)
        printf '{"kind":"request","seq":%s,"pos":-1,"dtype":"i32","shape":[%s],"meta":%s,"data":[%s]}\n' "$1" "$n" "$2" "$3"
    else
        printf '{"kind":"request","seq":%s,"pos":-1,"dtype":"none","shape":[],"meta":%s}\n' "$1" "$2"
    fi
}
{
    req 0 '{"op":"info"}'                       # 1
    req 1 '{"op":"append"}' "$A"                # 2  len 10
    req 1 '{"op":"append","all":true}' "$B"     # 3  len 15, next N15
    req 2 '{"op":"fork","from":1}'              # 4  len 15
    req 1 '{"op":"truncate","len":10}'          # 5
    req 1 '{"op":"append"}' "$B"                # 6  replay: next N15 again
    req 2 '{"op":"append","hidden":true}' "$C"  # 7  len 20 on the fork
    req 1 '{"op":"drop"}'                       # 8
    req 2 '{"op":"truncate","len":15}'          # 9
    req 2 '{"op":"append","hidden":true}' "$C"  # 10 the fork did not see the drop: same as 7
    req 1 '{"op":"drop"}'                       # 11 error: unknown sequence
    req 2 '{"op":"truncate","len":99}'          # 12 error: beyond the length
    req 2 '{"op":"append"}' "1,9999"            # 13 error: token out of range
    req 2 '{"op":"fly"}'                        # 14 error: unknown op
    req 3 '{"op":"fork","from":77}'             # 15 error: unknown sequence
    req 3 '{"op":"truncate","len":0}'           # 16 error: unknown sequence
    req 2 '{"nop":1}'                           # 17 error: no op
    req 0 '{"op":"info"}'                       # 18
} >"$T/session.jsonl"
citer-dump -r "$T/session.jsonl" >"$T/session.cs"
citer-llm -m "$M" --serve <"$T/session.cs" >"$T/resp.cs" 2>"$T/err"
check "serve: exit 0 and nothing on stderr" sh -c 'test $? -eq 0 && test ! -s "$1"' _ "$T/err"
citer-dump "$T/resp.cs" >"$T/resp.txt"
line() { sed -n "${1}p" "$T/resp.txt"; }
check "serve: one response per request, same seq, in order" \
    test "$(field seq <"$T/resp.txt" | tr '\n' ' ')" = "0 1 1 2 1 1 2 1 2 2 1 2 2 2 3 3 2 0 "
check "serve: every record is a response" sh -c 'test "$(grep -c "^{\"kind\":\"response\"" "$1")" = 18' _ "$T/resp.txt"
check "serve: info" sh -c 'echo "$1" | grep -q "\"vocab\":512,\"dim\":64,.*\"eos\":\[2[],]"' _ "$(line 1)"
check "serve: append gives len" test "$(line 2 | field len) $(line 3 | field len)" = "10 15"
n15=$(line 3 | field next)
# Expected tokens: argmax of the reference logits (stories260K.ref.safetensors) at positions 9..19.
check "serve: next after 10 tokens is the reference argmax" test "$(line 2 | field next)" = 298
check "serve: all:true gives the reference argmax at every appended position" sh -c \
    'echo "$1" | grep -q "\"next\":426,.*\"argmax\":\[414,422,395,405,426\]"' _ "$(line 3)"
check "serve: next after 20 tokens on the fork" test "$(line 7 | field next)" = 268
check "serve: fork has the length of its source" test "$(line 4 | field len)" = 15
check "serve: truncate" test "$(line 5 | field len)" = 10
check "serve: append, truncate, replay gives the same next" test "$(line 6 | field next)" = "$n15"
check "serve: llm sends a hidden state when asked: f32 [64], pos 19" sh -c \
    'echo "$1" | grep -q "\"pos\":19,\"dtype\":\"f32\",\"shape\":\[64\]"' _ "$(line 7)"
check "serve: no hidden state unless asked" sh -c 'echo "$1" | grep -q "\"dtype\":\"none\""' _ "$(line 6)"
check "serve: a fork keeps its positions when the source is dropped" test "$(line 10)" = "$(line 7)"
check "serve: drop" sh -c 'echo "$1" | grep -q "\"op\":\"drop\",\"len\":0"' _ "$(line 8)"
check "serve: drop of an unknown sequence" sh -c 'echo "$1" | grep -q "\"error\":\"unknown sequence 1\""' _ "$(line 11)"
check "serve: truncate beyond the length" sh -c 'echo "$1" | grep -q "\"error\":\"len 99 is beyond"' _ "$(line 12)"
check "serve: bad token id" sh -c 'echo "$1" | grep -q "\"error\":\"token 9999 (index 1) is out of range"' _ "$(line 13)"
check "serve: unknown op" sh -c 'echo "$1" | grep -q "\"error\":\"unknown op '"'"'fly'"'"'\""' _ "$(line 14)"
check "serve: fork from an unknown sequence" sh -c 'echo "$1" | grep -q "\"error\":\"unknown sequence 77\""' _ "$(line 15)"
check "serve: truncate of an unknown sequence" sh -c 'echo "$1" | grep -q "\"error\":\"unknown sequence 3\""' _ "$(line 16)"
check "serve: a request without op" sh -c 'echo "$1" | grep -q "\"error\":\"request has no"' _ "$(line 17)"
check "serve: a failed append leaves the sequence as it was" sh -c \
    'echo "$1" | grep -q "\"sequences\":1"' _ "$(line 18)"
check "serve: citer-slm sends hidden states by default" sh -c \
    'citer-dump -r "$1" | citer-slm -m "$2" --serve | citer-dump --no-data | sed -n 2p | grep -q "\"shape\":\[64\]"' \
    _ "$T/session.jsonl" "$M"
{
    req 1 '{"op":"append","hidden":true,"logits":true}' "$A"
    req 1 '{"op":"append","sample":{"temperature":1.5,"seed":11}}' "$B"
    req 1 '{"op":"truncate","len":10}'
    req 1 '{"op":"append","sample":{"temperature":1.5,"seed":11}}' "$B"
    printf '{"kind":"request","seq":1,"pos":-1,"dtype":"f32","shape":[1],"meta":{"op":"append"},"data":[1]}\n'
    req 1 '{"op":"append","sample":3}' "$B"
    printf '{"kind":"request","seq":1,"pos":-1,"dtype":"none","shape":[]}\n'
    printf '{"kind":"meta","seq":1,"pos":-1,"dtype":"none","shape":[],"meta":{"note":"no answer"}}\n'
    req 1 '{"op":"truncate","len":-1}'
} | citer-dump -r | citer-llm -m "$M" --serve | citer-dump --no-data >"$T/resp2.txt"
line2() { sed -n "${1}p" "$T/resp2.txt"; }
check "serve: hidden and logits: f32 [D+V] with both sizes named" sh -c \
    'echo "$1" | grep -q "\"shape\":\[576\],\"meta\":{.*\"hidden\":64,\"logits\":512}"' _ "$(line2 1)"
check "serve: sampling with a seed repeats" sh -c \
    'test -n "$1" && test "$1" = "$2"' _ "$(line2 2 | field sampled)" "$(line2 4 | field sampled)"
check "serve: append of f32 is an error" sh -c 'echo "$1" | grep -q "\"error\":\"append needs an i32"' _ "$(line2 5)"
check "serve: sample must be an object" sh -c 'echo "$1" | grep -q "\"error\":\"sample is not an object"' _ "$(line2 6)"
check "serve: a request without metadata" sh -c 'echo "$1" | grep -q "\"error\":\"request metadata"' _ "$(line2 7)"
check "serve: META records get no answer" sh -c \
    'test "$(wc -l <"$1")" = 8 && sed -n 8p "$1" | grep -q "\"error\":\"truncate needs"' _ "$T/resp2.txt"
check "serve: an empty request stream" sh -c \
    'citer-dump -r </dev/null | citer-llm -m "$1" --serve | citer-dump -c | grep -q ": 0 records, 1 stream"' _ "$M"

# Responses are flushed one by one: the answer to the first request arrives while the input is
# still open.
mkfifo "$T/fifo"
citer-llm -m "$M" --serve <"$T/fifo" >"$T/live.cs" &
srv=$!
exec 3>"$T/fifo"
req 1 '{"op":"append"}' "$A" | citer-dump -r >"$T/one.cs"
head -c $(($(wc -c <"$T/one.cs") - 56)) "$T/one.cs" >&3 # header and the request, no END yet
i=0
while [ "$(wc -c <"$T/live.cs")" -lt 100 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "serve: a response before the input ends" test "$(wc -c <"$T/live.cs")" -ge 100
tail -c 56 "$T/one.cs" >&3
exec 3>&-
wait $srv
check "serve: clean end after END" sh -c 'test $1 -eq 0 && citer-dump -c -q "$2"' _ $? "$T/live.cs"

# A corrupt or cut request stream ends the server with one line and exit 1.
size=$(wc -c <"$T/session.cs")
cp "$T/session.cs" "$T/corrupt.cs"
printf 'X' | dd of="$T/corrupt.cs" bs=1 seek=$((16 + 48 + 20)) conv=notrunc 2>/dev/null
expect_error "serve: corrupt request stream" 1 "^citer-llm: stdin: byte [0-9]+: .*checksum" \
    sh -c 'citer-llm -m "$1" --serve <"$2"' _ "$M" "$T/corrupt.cs"
head -c $((size - 56)) "$T/session.cs" >"$T/cut.cs"
expect_error "serve: request stream without END" 1 "^citer-llm: stdin: byte [0-9]+: .*truncated" \
    sh -c 'citer-llm -m "$1" --serve <"$2"' _ "$M" "$T/cut.cs"
check "serve: answers before the corruption were sent" sh -c \
    'citer-llm -m "$1" --serve <"$2" 2>/dev/null | citer-dump 2>/dev/null | grep -c response | grep -qx 18' _ "$M" "$T/cut.cs"
t_end
