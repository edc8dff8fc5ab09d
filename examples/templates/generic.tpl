# Generic items: the prompt and target as the item gives them.
[options]
format = generic
[prompt]
{prompt}
[target]
{target}
