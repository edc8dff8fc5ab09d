# Math items with a short prompt, for small models with short contexts (the demo pair of
# examples/models was trained on it). The prompt ends in "Solution: " with a trailing space.
[options]
format = math
[prompt]
Question: {problem}
Solution: 
[target]
{solution}
