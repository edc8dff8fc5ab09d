#!/bin/sh
# citer-train: training and evaluation from the command line, reproducibility, errors.
. tests/lib.sh

# feats N D SEED: JSON lines of N feature records of D values, 5 records per example id,
# label 1 when the first two values add up to more than 0 (a pseudo-random, learnable rule).
feats() {
    awk -v n="$1" -v d="$2" -v seed="$3" 'BEGIN {
        s = seed
        for (i = 0; i < n; i++) {
            line = ""
            for (j = 0; j < d; j++) {
                s = (s * 1103515245 + 12345) % 2147483648
                v[j] = s / 2147483648 * 4 - 2
                line = line (j ? "," : "") sprintf("%.4f", v[j] * (j + 1) + j)
            }
            lab = (v[0] + v[1] > 0) ? 1 : 0
            printf "{\"kind\":\"feature\",\"seq\":%d,\"pos\":%d,\"dtype\":\"f32\",\"data\":[%s],\"meta\":{\"label\":%d,\"case\":%d}}\n", int(i / 5), i % 5, line, lab, lab ? 1 : 2
        }
    }'
}

feats 1500 6 1 | citer-dump -r >"$T/train.cs"
feats 500 6 2 | citer-dump -r >"$T/test.cs"
opts="--batch 32 --lr 0.003 --epochs 30 --seed 5"

# shellcheck disable=SC2086
citer-train $opts "$T/train.cs" -o "$T/r.st" 2>"$T/summary"
check "training succeeds" [ $? -eq 0 -a -s "$T/r.st" ]
check "one summary line on stderr" \
    grep -Eq '^citer-train: [0-9]+ epochs \(best [0-9]+\), val loss [0-9.]+, val acc [0-9.]+, AUROC [0-9.]+, 1350 train / 150 val records$' "$T/summary"
check "summary is one line" [ "$(wc -l <"$T/summary")" -eq 1 ]

citer-train --eval "$T/r.st" "$T/test.cs" >"$T/eval"
check "--eval on fresh records: accuracy > 0.9" \
    awk '$1 == "accuracy" && $2 > 0.9 { ok = 1 } END { exit !ok }' "$T/eval"
check "--eval: AUROC > 0.97" awk '$1 == "auroc" && $2 > 0.97 { ok = 1 } END { exit !ok }' "$T/eval"
check "--eval: 500 records" grep -qx 'records 500' "$T/eval"
# label balance from the JSON itself
want=$(feats 500 6 2 | grep -c '"label":1')
check "--eval: label balance" \
    awk -v w="$want" '$1 == "label1_fraction" { d = $2 - w / 500; ok = d < 1e-6 && d > -1e-6 } END { exit !ok }' "$T/eval"
check "--eval: five thresholds, LLM fraction rising with tau" \
    awk 'NF == 5 && $1 ~ /^0\./ { n++; if ($2 < last) bad = 1; last = $2 } END { exit !(n == 5 && !bad) }' "$T/eval"
check "--tau" sh -c 'citer-train --eval "$1" --tau 0.25,0.75 "$2" | grep -c "^0\.[27]5 " | grep -qx 2' _ "$T/r.st" "$T/test.cs"

citer-train --scores "$T/r.st" "$T/test.cs" >"$T/scores"
check "--scores: one line per record" [ "$(wc -l <"$T/scores")" -eq 500 ]
check "--scores: seq pos label score" \
    awk 'NF != 4 || $4 < 0 || $4 > 1 || ($3 != 0 && $3 != 1) { bad = 1 } END { exit bad }' "$T/scores"
check "--scores: first record is seq 0 pos 0" sh -c 'head -n 1 "$1" | grep -q "^0 0 [01] "' _ "$T/scores"
# the accuracy --eval reports is the one the scores give at 0.5
acc=$(awk '{ n++; c += (($4 >= 0.5) == ($3 == 1)) } END { printf "%.6f", c / n }' "$T/scores")
check "--scores agree with --eval" grep -qx "accuracy $acc" "$T/eval"

# shellcheck disable=SC2086
citer-train -q $opts "$T/train.cs" -o "$T/r2.st" 2>"$T/quiet"
check "same seed: bit-identical file" cmp -s "$T/r.st" "$T/r2.st"
check "-q: nothing on stderr" [ ! -s "$T/quiet" ]
# shellcheck disable=SC2086
citer-train -q $opts --seed 6 "$T/train.cs" -o "$T/r3.st"
check "another seed: another file" sh -c '! cmp -s "$1" "$2"' _ "$T/r.st" "$T/r3.st"
check "stdin works like a file" \
    sh -c 'citer-train -q '"$opts"' -o "$1/r4.st" <"$1/train.cs" && cmp -s "$1/r.st" "$1/r4.st"' _ "$T"
check "two files read as one" \
    sh -c 'citer-train -q --epochs 2 "$1/train.cs" "$1/test.cs" -o "$1/r5.st"' _ "$T"
check "metadata of the file" \
    sh -c 'head -c 4096 "$1" | grep -q "\"layers\":\"6,12,6,1\"" && head -c 4096 "$1" | grep -q "\"format\":\"citer-router\""' _ "$T/r.st"
check "--hidden-mult 3" \
    sh -c 'citer-train -q --epochs 1 --hidden-mult 3 "$1/train.cs" -o "$1/h3.st" && head -c 4096 "$1/h3.st" | grep -q "\"layers\":\"6,18,6,1\""' _ "$T"
check "--init, --class-weight auto, --lambda, --val-frac 0" \
    sh -c 'citer-train --init "$1/r.st" --epochs 2 --class-weight auto --lambda 0.2 --val-frac 0 "$1/train.cs" -o "$1/r6.st" 2>"$1/s6" && grep -q "2 epochs, train loss .* (no validation), 1500 records" "$1/s6"' _ "$T"
check "--class-weight W0,W1 and --weight-decay, --dropout 0" \
    sh -c 'citer-train -q --epochs 2 --class-weight 2,0.5 --weight-decay 0.01 --dropout 0 "$1/train.cs" -o "$1/r7.st"' _ "$T"

# ---- errors: one line, exit 1 ----
citer-dump -r </dev/null >"$T/empty.cs"
expect_error "empty stream" 1 '^citer-train: .*empty.cs: no feature records$' \
    citer-train "$T/empty.cs" -o "$T/x.st"
printf '%s\n' '{"kind":"feature","seq":0,"dtype":"f32","data":[1,2,3]}' \
    '{"kind":"feature","seq":1,"dtype":"f32","data":[1,2],"meta":{"label":1}}' >"$T/mixed.jsonl"
sed 's/^{"kind":"feature","seq":0,"dtype":"f32","data":\[1,2,3\]}/{"kind":"feature","seq":0,"dtype":"f32","data":[1,2,3],"meta":{"label":0}}/' \
    "$T/mixed.jsonl" | citer-dump -r >"$T/mixed.cs"
expect_error "mixed feature sizes" 1 'mixed.cs: record 2 \(seq 1, pos -1\): feature size 2, earlier records have 3$' \
    citer-train "$T/mixed.cs" -o "$T/x.st"
citer-dump -r "$T/mixed.jsonl" >"$T/nolabel.cs"
expect_error "no label" 1 'nolabel.cs: record 1 \(seq 0, pos -1\): no "label" in the metadata$' \
    citer-train "$T/nolabel.cs" -o "$T/x.st"
head -c 300 "$T/train.cs" >"$T/cut.cs"
expect_error "truncated stream" 1 '^citer-train: .*cut.cs: byte [0-9]+: ' citer-train "$T/cut.cs" -o "$T/x.st"
printf 'garbage, not a stream' >"$T/garbage"
expect_error "corrupt stream" 1 '^citer-train: .*garbage: byte 0: ' citer-train "$T/garbage" -o "$T/x.st"
expect_error "missing file" 1 '^citer-train: .*nope.cs: No such file' citer-train "$T/nope.cs" -o "$T/x.st"
check "no output file left behind by failures" [ ! -e "$T/x.st" ]
feats 20 6 3 | sed 's/"label":0/"label":1/' | citer-dump -r >"$T/ones.cs"
expect_error "one label only" 1 'ones.cs: all [0-9]+ training records have label 1: nothing to learn$' \
    citer-train "$T/ones.cs" -o "$T/x.st"
feats 20 6 3 | sed 's/"seq":[0-9]*/"seq":7/' | citer-dump -r >"$T/oneid.cs"
expect_error "one example id" 1 'at least 2 example ids' citer-train "$T/oneid.cs" -o "$T/x.st"
feats 20 4 3 | citer-dump -r >"$T/d4.cs"
expect_error "--eval: size mismatch" 1 'r.st: the router takes 6 features, the records have 4$' \
    citer-train --eval "$T/r.st" "$T/d4.cs"
expect_error "--init: size mismatch" 1 'r.st: the router takes 6 features, the records have 4$' \
    citer-train --init "$T/r.st" "$T/d4.cs" -o "$T/x.st"
expect_error "--eval: not a router" 1 '^citer-train: .*train.cs: ' citer-train --eval "$T/train.cs" "$T/test.cs"
head -c 1000 "$T/r.st" >"$T/cut.st"
expect_error "--eval: truncated router" 1 '^citer-train: .*cut.st: ' citer-train --eval "$T/cut.st" "$T/test.cs"
expect_error "--eval: no label" 1 'no "label"' citer-train --eval "$T/r.st" "$T/nolabel.cs"
feats 10 6 4 | sed 's/,"meta":{[^}]*}//' | citer-dump -r >"$T/unlabelled.cs"
check "--scores: labels not needed" \
    sh -c 'citer-train --scores "$1" "$2" >"$3" && [ "$(wc -l <"$3")" -eq 10 ] && awk "\$3 != \"-\" { bad = 1 } END { exit bad }" "$3"' _ \
    "$T/r.st" "$T/unlabelled.cs" "$T/unl.out"

# ---- usage errors: exit 2 ----
expect_error "no -o" 2 '^citer-train: -o ROUTER is required for training \(try' citer-train "$T/train.cs"
expect_error "unknown option" 2 "^citer-train: unknown option '--frobnicate'" citer-train --frobnicate
expect_error "missing argument" 2 "^citer-train: option '--lr' needs an argument" citer-train --lr
expect_error "bad --lr" 2 "^citer-train: --lr: 'fast' is not a number" citer-train --lr fast -o x
expect_error "bad --epochs" 2 "^citer-train: --epochs: '0' is not a whole number" citer-train --epochs 0 -o x
expect_error "bad --dropout" 2 "^citer-train: --dropout: '1' is not a number in \[0, 1\)" citer-train --dropout 1 -o x
expect_error "bad --class-weight" 2 "^citer-train: --class-weight: 'heavy' is not auto, none or W0,W1" \
    citer-train --class-weight heavy -o x
expect_error "bad --seed" 2 "^citer-train: --seed: '-1'" citer-train --seed -1 -o x
expect_error "bad --tau" 2 "^citer-train: --tau: '2' is not a number" citer-train --eval "$T/r.st" --tau 0.5,2
expect_error "--eval with --scores" 2 'do not go together' citer-train --eval "$T/r.st" --scores "$T/r.st"
expect_error "--init with --eval" 2 'init is for training' citer-train --eval "$T/r.st" --init "$T/r.st"
check "--help" sh -c 'citer-train --help | grep -q "^usage: citer-train"'
check "--version" sh -c 'test "$(citer-train --version)" = "citer-train 0.1.0"'
t_end
