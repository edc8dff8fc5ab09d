#!/bin/sh
# citer-dump: JSON Lines round trips, --check, errors, broken pipes.
. tests/lib.sh

# Hand-written lines in the form citer-dump prints (so the dump of their stream must equal them).
cat >"$T/in.jsonl" <<'EOF'
{"kind":"tokens","seq":0,"pos":0,"dtype":"i32","shape":[5],"meta":{"role":"prompt"},"data":[1,2,3,-4,2147483647]}
{"kind":"tensor","seq":0,"pos":4,"dtype":"f32","shape":[2,3],"data":[0.5,-1,"inf","-inf","nan",-0.0]}
{"kind":"tensor","seq":1,"pos":-1,"dtype":"f16","shape":[1,1,1,3],"data":[65504,5.96046448e-08,"0x7e01"]}
{"kind":"tensor","seq":1,"pos":-1,"dtype":"bf16","shape":[2],"data":[1.5,-3.38953139e+38]}
{"kind":"feature","seq":2,"pos":7,"dtype":"u8","shape":[4],"meta":{"label": 1, "role":"router"},"data":[0,1,128,255]}
{"kind":"request","seq":3,"pos":-1,"dtype":"none","shape":[],"meta":{"op":"ping"}}
{"kind":"response","seq":3,"pos":-1,"dtype":"i32","shape":[0],"data":[]}
{"kind":"meta","seq":18446744073709551615,"pos":-9223372036854775808,"dtype":"none","shape":[],"meta_text":"{\n  \"multi\": \"line\"\n}"}
EOF

check "reverse then dump gives the same lines" \
    sh -c 'citer-dump -r "$1" >"$2/s1" && citer-dump "$2/s1" | cmp -s - "$1"' _ "$T/in.jsonl" "$T"
check "dump | dump -r is byte-identical" \
    sh -c 'citer-dump "$1/s1" | citer-dump -r | cmp -s - "$1/s1"' _ "$T"

# Layout sizes by hand: header 16, each record 48 + meta + payload + 8, END 56.
printf '{"kind":"tokens","seq":0,"pos":0,"dtype":"i32","shape":[3],"data":[1,2,3]}\n' >"$T/one.jsonl"
check "a 3-token stream is 16+(48+12+8)+56 bytes" \
    sh -c 'test "$(citer-dump -r "$1" | wc -c)" -eq 140' _ "$T/one.jsonl"
check "--check summary" \
    sh -c 'test "$(citer-dump -r "$1" | citer-dump -c)" = "stdin: 1 record, 1 stream, 140 bytes"' _ "$T/one.jsonl"
check "empty input to -r makes an empty stream" \
    sh -c 'test "$(citer-dump -r </dev/null | citer-dump -c)" = "stdin: 0 records, 1 stream, 72 bytes"'
check "--check -q prints nothing" \
    sh -c 'test -z "$(citer-dump -c -q "$1/s1")"' _ "$T"

# Concatenated streams read as one; with --ends the round trip keeps them apart.
cat "$T/s1" "$T/s1" >"$T/cat"
check "concatenation: records and streams counted" \
    sh -c 'citer-dump -c "$1/cat" | grep -q ": 16 records, 2 streams, "' _ "$T"
check "concatenation: --ends round trip is byte-identical" \
    sh -c 'citer-dump -e "$1/cat" | citer-dump -r | cmp -s - "$1/cat"' _ "$T"
check "without --ends the records join one stream" \
    sh -c 'citer-dump "$1/cat" | citer-dump -r | citer-dump -c | grep -q ": 16 records, 1 stream, "' _ "$T"

check "--head 2" sh -c 'test "$(citer-dump --head 2 "$1/s1" | wc -l)" -eq 2' _ "$T"
check "--no-data" \
    sh -c 'citer-dump --no-data "$1/s1" | head -1 | grep -qx "{\"kind\":\"tokens\",\"seq\":0,\"pos\":0,\"dtype\":\"i32\",\"shape\":\[5\],\"meta\":{\"role\":\"prompt\"}}"' _ "$T"

# -o writes atomically: nothing is left behind on failure.
check "-o writes the file" sh -c 'citer-dump -r -o "$1/o.cs" "$1/one.jsonl" && citer-dump -c -q "$1/o.cs"' _ "$T"
head -c 100 "$T/s1" >"$T/trunc"
expect_error "truncated input is one line with the byte offset" 1 \
    '^citer-dump: .*trunc: byte [0-9]+: truncated record' citer-dump "$T/trunc"
expect_error "-o on failure" 1 'byte [0-9]+' citer-dump -o "$T/fail.out" "$T/trunc"
check "-o leaves no file on failure" sh -c '! ls "$1" | grep -q fail.out' _ "$T"

# Corruption: a changed byte in the payload of record 1 (offset 16 + 48 + meta 17 + 2).
cp "$T/s1" "$T/corrupt"
printf 'X' | dd of="$T/corrupt" bs=1 seek=83 conv=notrunc 2>/dev/null
expect_error "corrupt byte: checksum mismatch at the record's offset" 1 \
    '^citer-dump: .*corrupt: byte 16: checksum mismatch in record 1$' citer-dump "$T/corrupt"
expect_error "--check of a corrupt stream" 1 'byte 16: checksum mismatch' citer-dump -c "$T/corrupt"
head -c 4000 /dev/urandom >"$T/random"
expect_error "random bytes" 1 '^citer-dump: .*random: byte 0: bad magic \(not a citer stream\)$' \
    citer-dump "$T/random"
expect_error "empty input" 1 'byte 0: empty input' citer-dump /dev/null
head -c $(($(wc -c <"$T/s1") - 56)) "$T/s1" >"$T/noend"
expect_error "missing END" 1 'byte [0-9]+: stream ends without END record' citer-dump "$T/noend"
expect_error "missing file" 1 '^citer-dump: .*nonexistent: No such file' citer-dump "$T/nonexistent"

# Every truncation of a small stream is an error with a byte offset (and never a crash).
n=$(wc -c <"$T/s1")
bad=0 len=0
while [ $len -lt "$n" ]; do
    head -c $len "$T/s1" | citer-dump -c -q 2>"$T/err"
    rc=$?
    if [ $rc -ne 1 ] || [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q ': byte [0-9]*: ' "$T/err"; then
        bad=$((bad + 1))
    fi
    len=$((len + 7))
done
check "every 7th truncation is one error line, exit 1" test $bad -eq 0

# -r input errors: file and line.
printf '{"kind":"tokens","data":[1]}\n{"kind":"tokens",\n' >"$T/badjson"
expect_error "-r: malformed JSON" 1 '^citer-dump: .*badjson: line 2: not JSON' citer-dump -r "$T/badjson"
printf '{"kind":"tensor","dtype":"f32","shape":[3],"data":[1,2]}\n' >"$T/badshape"
expect_error "-r: data does not fit the shape" 1 'line 1: "data" has 2 values but the shape holds 3' \
    citer-dump -r "$T/badshape"
printf '{"kind":"meta","meta":{"a":1},"colour":1}\n' >"$T/badkey"
expect_error "-r: unknown key" 1 'line 1: unknown key "colour"' citer-dump -r "$T/badkey"
printf '{"kind":"tokens","data":[1]}\n{"kind":"end","seq":2}\n' >"$T/badend"
expect_error "-r: wrong end count" 1 'line 2: end line counts 2 records but 1 precede it' \
    citer-dump -r "$T/badend"
check "-r: --no-data output is refused back" \
    sh -c 'citer-dump --no-data "$1/s1" | citer-dump -r >/dev/null 2>&1; test $? -eq 1' _ "$T"

# Broken pipe: quiet.
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "{\"kind\":\"tokens\",\"seq\":%d,\"pos\":0,\"dtype\":\"i32\",\"shape\":[4],\"data\":[%d,2,3,4]}\n", i, i }' \
    | citer-dump -r >"$T/big"
check "big stream built" citer-dump -c -q "$T/big"
check "broken pipe: dump | head -1 prints one line and no message" \
    sh -c 'out=$(citer-dump "$1/big" 2>"$1/pipe.err" | head -1) && test -n "$out" && test ! -s "$1/pipe.err"' _ "$T"
check "broken pipe: dump -r | head -c 10 is quiet" \
    sh -c 'citer-dump "$1/big" | citer-dump -r 2>"$1/pipe2.err" | head -c 10 >/dev/null; test ! -s "$1/pipe2.err"' _ "$T"

expect_error "unknown option" 2 "unknown option '--bogus'" citer-dump --bogus
check "--help" sh -c 'citer-dump --help | grep -q "^usage: citer-dump"'
check "--version" sh -c 'citer-dump --version | grep -q "^citer-dump [0-9]"'
t_end
