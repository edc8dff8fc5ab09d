# citer-train lm through the tool: a tiny model trained on generated problems loads in citer-llm.
. tests/lib.sh
citer-gen math -n 100 --seed 3 >"$T/d.jsonl"
check "citer-train lm trains and writes a model directory" \
    citer-train lm -q --data "$T/d.jsonl" -o "$T/m" --vocab 350 --dim 32 --layers 1 --heads 2 --kv-heads 1 \
    --ffn 64 --steps 5 --batch 2 --seq-len 64
for f in config.json model.safetensors tokenizer.json training.tsv; do
    check "citer-train lm wrote $f" [ -s "$T/m/$f" ]
done
n=$(echo 'Tom has 12 apples.' | citer-tokenize -t "$T/m" | citer-llm -m "$T/m" --max-tokens 5 --ignore-eos |
    citer-dump --no-data | grep -c '"role":"generated"')
check "the trained model generates through citer-llm" [ "$n" -eq 1 ]
expect_error "citer-train lm without --data" 2 "^citer-train: " citer-train lm -o "$T/x"
t_end
