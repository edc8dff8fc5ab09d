# Math items (MATH, GSM8K). [prompt] is CITER's routing-time prompt:
# generate_math_prompt() in src/utils/io_format.py of github.com/aiming-lab/CITER.
# The prompt ends in "Solution: " with a trailing space.
[options]
format = math
[prompt]
Solve the following math problem step by step. Ensure all reasoning is shown clearly in LaTeX format, and the final answer should be enclosed using the LaTeX command \boxed{{}} to display it in a box.
Question: {problem}
Solution: 
[target]
{solution}
