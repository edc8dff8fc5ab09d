# Multiple-choice items (CommonsenseQA, ARC, ...).
# [prompt] is CITER's routing-time prompt: generate_prompt() in src/utils/io_format.py
# of github.com/aiming-lab/CITER. [target] is the item's own reasoning (CITER's "cot"
# texts end "Therefore, the answer is <text> (<label>)."); [target-fallback], for items
# without reasoning, is citer's own sentence in that style.
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
