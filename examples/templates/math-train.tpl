# Math items, with the prompt wording stored in CITER's router-training data
# (datasets/gsm8k/train_mlp.json of github.com/aiming-lab/CITER).
# The prompt ends in "Solution: " with a trailing space.
[options]
format = math
[prompt]
Solve the following math problem step by step. Ensure all reasoning is shown clearly in LaTeX format, and you should enclose your answer with \boxed{{}}.
Question: {problem}
Solution: 
[target]
{solution}
