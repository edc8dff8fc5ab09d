# An example custom template (not built in): CITER's multiple-choice prompt sent as a
# ChatML user turn (Qwen-style chat models), with a system turn. Use with
#   citer-tokenize --dataset FILE --template examples/templates/mc-chatml.tpl
[options]
format = mc
chat = chatml
system = You are a helpful assistant.
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
