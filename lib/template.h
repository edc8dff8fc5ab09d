/* template: prompt templates that turn a dataset item into prompt and target text.
 *
 * A template is a small text file of sections (see citer-template(5) and examples/templates/):
 *
 *   # comments and blank lines may precede the first section
 *   [options]                 optional: "key = value" lines, '#' comments
 *   format = mc               the item format the template is written for: mc, math, generic
 *                             (placeholders are then checked against that format when loading)
 *   chat = chatml             wrap the prompt as a ChatML user turn (default: none)
 *   system = You are ...      with chat = chatml: a system turn before the user turn
 *   [prompt]                  required: the prompt text
 *   Question: {question}
 *   [target]                  optional: the reference (chain-of-thought) target text
 *   {cot}
 *   [target-fallback]         optional: used when [target] needs a field the item lacks
 *   Therefore, the answer is {answer_text} ({answer}).
 *
 * Text sections: the lines after the header up to the next header, joined by newlines;
 * trailing empty lines are dropped (so a section never ends in a newline unless it ends in
 * {nl}). A line that is exactly "[prompt]", "[target]", "[target-fallback]" or "[options]"
 * always starts a section; any other line is text, '#' included. Trailing spaces are kept.
 *
 * Placeholders: {name} is replaced by the item's field; {{ and }} are literal braces, {nl} a
 * newline; any other '{' or '}' is an error. Values are inserted as they are (not re-scanned).
 *   every format: {id} {answer}
 *   mc:      {question} {choices} ("A. text" lines joined by newlines) {answer_text} {cot}
 *   math:    {problem} {solution}
 *   generic: {prompt} {target}
 * Optional fields ({id}, {cot}, {solution}, {target}, generic {answer}) may be absent or empty:
 * a [prompt] that needs an absent field is an error for that item; a [target] that needs one
 * falls back to [target-fallback], and without a usable fallback the item has no target.
 *
 * With chat = chatml the rendered prompt becomes
 *   [<|im_start|>system\nSYSTEM<|im_end|>\n]<|im_start|>user\nPROMPT<|im_end|>\n<|im_start|>assistant\n
 * and the target is left as it is (the end-of-turn token is the tokenizer's business).
 */
#ifndef CITER_TEMPLATE_H
#define CITER_TEMPLATE_H

#include <stddef.h>

/* Dataset item formats (see dataset.h). */
enum citer_dataset_format {
    CITER_FMT_AUTO = 0,    /* detect from the item's keys */
    CITER_FMT_MC = 1,      /* multiple choice: CommonsenseQA / ARC */
    CITER_FMT_MATH = 2,    /* problem + solution with \boxed{answer}: MATH, GSM8K */
    CITER_FMT_GENERIC = 3, /* prompt [+ target] [+ answer] */
};

/* "auto", "mc", "math", "generic"; NULL for an unknown value. */
const char *citer_dataset_format_name(int format);
/* The format for a name (as above); -1 if unknown. */
int citer_dataset_format_from_name(const char *name);

/* Placeholder fields, the index into the values array of citer_template_render. */
enum citer_field {
    CITER_F_ID,
    CITER_F_ANSWER,
    CITER_F_QUESTION,
    CITER_F_CHOICES,
    CITER_F_ANSWER_TEXT,
    CITER_F_COT,
    CITER_F_PROBLEM,
    CITER_F_SOLUTION,
    CITER_F_PROMPT,
    CITER_F_TARGET,
    CITER_F_COUNT
};
const char *citer_field_name(int field); /* "id", "answer", ...; NULL if out of range */
/* Whether items of this format (not AUTO) can carry the field. */
int citer_field_in_format(int field, int format);

typedef struct citer_template citer_template;

/* Parse template text (len bytes, need not be NUL-terminated). NULL + citer_error()
 * ("line 7: unknown placeholder {questoin}") on failure. */
citer_template *citer_template_parse(const char *text, size_t len);
/* Read and parse a template file. */
citer_template *citer_template_load(const char *path);
void citer_template_free(citer_template *t);

/* Built-in templates, so an installed tool needs no files. Names:
 *   "mc", "math", "generic"      the defaults for each format (CITER's inference prompts)
 *   "mc-train", "math-train"     the prompt wording of CITER's released router-training data
 * citer_template_builtin_text returns the template's source text (NULL if unknown);
 * citer_template_builtin parses it (NULL + citer_error() if unknown). */
const char *citer_template_builtin_text(const char *name);
citer_template *citer_template_builtin(const char *name);
/* The default template for a format (MC, MATH or GENERIC); NULL + citer_error() otherwise. */
citer_template *citer_template_default(int format);
/* Space-separated list of the built-in names, for help texts. */
const char *citer_template_builtin_names(void);

/* The format the template declares (format = ...), or CITER_FMT_AUTO if none. */
int citer_template_format(const citer_template *t);
/* Whether the template has a [target] or [target-fallback] section. */
int citer_template_has_target(const citer_template *t);

/* Render for one item. values[CITER_F_COUNT] holds each field's text, NULL when the item
 * lacks it (the dataset parser passes NULL for empty optional fields). *prompt gets the
 * prompt (chat-wrapped if the template says so); *target the target text or NULL when there
 * is none. Both are malloc'd. 0 ok, -1 with citer_error() on failure, e.g.
 * "template line 5: the item has no \"id\" for {id}". */
int citer_template_render(const citer_template *t, const char *const *values, char **prompt,
                          char **target);

#endif
