/* answer: find the final answer in a model's generated text and check it against the
 * reference answer of a dataset item. This is what grades a rollout when CITER labels a hard
 * token (the router learns "the small model's token still leads to a correct answer").
 *
 * Formats (template.h):
 *
 *   math (and generic)  The answer is the contents of the LAST \boxed{...} (braces nested,
 *       citer_last_boxed); failing that, the rest of the line after the last "####" (GSM8K's
 *       marker). No other fallback: a text without either has no answer. Both sides then go
 *       through citer_math_normalize and are compared as strings, so numbers compare as exact
 *       rationals: "0.75", "3/4", "\frac{3}{4}", "\dfrac34" are one answer, "1,234" is 1234,
 *       "$12.50" is 12.5, "10\%" is 10; 0.333 is not 1/3.
 *       CITER (src/utils/io_format.py, extract_math_answer) takes the FIRST \boxed{ and
 *       compares raw strings (after .lower()); the last box and the normalisation are ours.
 *
 *   mc  CITER's route_extract_answer (src/utils/io_format.py), rules tried in this order:
 *       1. for each "Therefore" (case as written), the 50 characters after it: a choice text
 *          found there (case-insensitively) gives its label;
 *       2. for each "Therefore", the same window: the first standalone uppercase label
 *          ("Therefore, B.", "Therefore (C)");
 *       3. anywhere: the first label in parentheses, any case: "(b)";
 *       4. a label at the very start, after spaces, quotes or an opening bracket, within the
 *          first 15 characters: "B. whale", "B) whale", "(B", "\"C\"";
 *       5. a choice text within the first 20 characters.
 *       Differences from CITER, each to avoid a wrong label CITER's regexes can produce:
 *       a choice text must stand as whole words (CITER takes "cat" inside "cattle", and "29"
 *       inside "129"), and of several found in one window the longest wins (not the first in
 *       choice order); a label letter must stand alone (CITER's rule 2 takes the "A" of
 *       "USA") and, when the item's labels are known, must be one of them (CITER returns
 *       "I" from "Therefore, I think ..." and would then count it wrong; we go on looking).
 *       Labels may be longer than one character ("1", "2" in some ARC items). Without the
 *       item's choices, rules 1 and 5 are skipped and any single letter A-Z is a label.
 *       Characters count as code points, case-insensitivity uses simple Unicode lowercase.
 */
#ifndef CITER_ANSWER_H
#define CITER_ANSWER_H

/* The final answer in text: for math/generic the raw extracted answer (not normalised), for
 * mc the label as the item spells it (labels[i]; an uppercase letter when labels is NULL).
 * choice_texts and labels (n_choices each, either may be NULL) are only used for mc.
 * malloc'd; NULL when the text has no answer (or format is unknown). */
char *citer_answer_extract(int format, const char *text, const char *const *choice_texts,
                           const char *const *labels, int n_choices);

/* 1 when generated_text's answer equals reference_answer, 0 when it does not or the text has
 * no answer. For mc this extracts without the item's choices; prefer citer_answer_check.
 * -1 with citer_error() for an unknown format or a NULL reference. */
int citer_answer_correct(int format, const char *generated_text, const char *reference_answer);

/* citer_answer_correct with the item's choices for mc (ignored for other formats). mc labels
 * compare case-insensitively, after trimming spaces. */
int citer_answer_check(int format, const char *generated_text, const char *reference_answer,
                       const char *const *choice_texts, const char *const *labels,
                       int n_choices);

/* A math answer in canonical form, malloc'd. Unicode minus becomes "-"; spaces, "$", "\!",
 * "\,", "\;", "\:", "\left", "\right", "%" and "\%", "^\circ", a trailing period and a leading
 * "+" go; "\dfrac"/"\tfrac" become "\frac"; a trailing "\text{ units}" after a value goes and
 * other "\text{X}" (also \textbf, \mathrm, \mbox) become X; "x=" before the value goes;
 * thousands separators go ("1,000", "1{,}000"). A number (integer, decimal, a/b, \frac{a}{b},
 * \frac12, with a sign) becomes its reduced rational: "12.50" -> "25/2", "-0.0" -> "0",
 * "\frac{6}{8}" -> "3/4", "007" -> "7". Anything else is lowercased (ASCII), as CITER's
 * comparison does. */
char *citer_math_normalize(const char *answer);

/* 1 when two math answers are the same after citer_math_normalize, else 0. */
int citer_math_equal(const char *a, const char *b);

#endif
