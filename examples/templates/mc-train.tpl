# Multiple-choice items, with the prompt wording stored in CITER's router-training
# data (datasets/cqa/train_mlp.json of github.com/aiming-lab/CITER): as "mc" but with
# blank lines before "Please format" and "Answer and Reasoning:".
[options]
format = mc
[prompt]
Question: {question}
Choices:
{choices}

Please format your response in the following way:
[Explanation]. Therefore, the answer is answer (label).
Ensure the final sentence includes the answer followed by the label in parentheses.

Answer and Reasoning:
[target]
{cot}
[target-fallback]
Therefore, the answer is {answer_text} ({answer}).
