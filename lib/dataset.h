/* dataset: JSONL evaluation/training items rendered into prompt, target and reference answer.
 *
 * One JSON object per line; blank lines are skipped; line numbers count every line from 1.
 * Formats (enum citer_dataset_format in template.h) and the keys read:
 *
 *   mc       CommonsenseQA / ARC / OpenBookQA style
 *            "question": string, or an object with "stem" (ARC's original files)
 *            "choices": {"text": [...], "label": [...]} or [{"label": .., "text": ..}, ...]
 *                       (top level, or inside the question object)
 *            "answerKey": one of the labels                     -> answer, {answer}
 *            reasoning, optional: the first of "cot", "rationale", "explanation", "solution",
 *                       "target", "response"                    -> {cot}
 *   math     MATH / converted GSM8K style
 *            "problem" (or "question"): string
 *            "solution": string, optional; its LAST \boxed{...} is the answer
 *            "answer": used when the solution has no \boxed{} answer. A GSM8K original
 *                       item ("question", "answer": "... #### 72") reads as solution
 *                       "... #### 72" with answer "72".
 *            no extractable answer is an error
 *   generic  "prompt": string; "target" (or "cot"): string, optional;
 *            "answer" (or "answerKey"): optional
 *   every    "id": string or number, optional
 *
 * Labels, answers and ids may be JSON strings or numbers. Format detection (CITER_FMT_AUTO)
 * looks at the keys: "choices" or an object "question" -> mc; "problem", "solution", or a
 * GSM8K "question" + "answer" with "####" -> math; "prompt" -> generic.
 *
 * Errors are one line naming the input line and the key: "line 12: missing key \"question\"",
 * "line 3: not a JSON object", "line 7: choices.text and choices.label differ in length (5 and 4)".
 */
#ifndef CITER_DATASET_H
#define CITER_DATASET_H

#include <stddef.h>

#include "template.h"

typedef struct {
    char *id;     /* the item's "id", NULL when it has none */
    char *prompt; /* rendered prompt text */
    char *target; /* rendered reference target (chain of thought), NULL when none */
    char *answer; /* reference answer: mc label, math final answer, generic "answer"; NULL
                   * only for a generic item without one */
    int format;   /* the item's format: CITER_FMT_MC, _MATH or _GENERIC */
    char **choice_texts, **choice_labels; /* mc: the choices in file order, labels as text */
    int n_choices;                        /* 0 for other formats */
} citer_example;

/* Parse and render one line (len bytes, need not be NUL-terminated; a trailing "\r" or "\n"
 * is ignored). lineno is only used in messages. format: the item format, or CITER_FMT_AUTO
 * to detect it from this line's keys (or take the template's declared format). tpl: NULL for
 * the default template of the item's format. Returns 0 with *ex filled (free it with
 * citer_example_free), 1 for a blank line (*ex zeroed), -1 with citer_error(). */
int citer_dataset_parse(const char *line, size_t len, long lineno, int format,
                        const citer_template *tpl, citer_example *ex);

/* The format of one line's item (never AUTO), or -1 with citer_error(). */
int citer_dataset_detect(const char *line, size_t len, long lineno);

void citer_example_free(citer_example *ex);

/* The choices of an mc item as the META answer record of citer-tokenize --dataset carries
 * them: "choices": {"text": [...], "label": [...]} (strings, one length). citer_choices_json
 * adds that member to the object meta (a json_object *). citer_choices_read reads it back from
 * meta into malloc'd arrays (*n = 0 and NULLs when absent); 0, or -1 + citer_error(). */
struct json_object;
void citer_choices_json(struct json_object *meta, char *const *texts, char *const *labels, int n);
int citer_choices_read(struct json_object *meta, char ***texts, char ***labels, int *n);
void citer_choices_free(char **texts, char **labels, int n);

/* What an answer record says an item's answer is: the graders' input. */
typedef struct {
    char *answer;
    int format;                           /* CITER_FMT_MATH, _MC or _GENERIC */
    char **choice_texts, **choice_labels; /* mc items whose record has choices */
    int n_choices;
} citer_answer_key;
/* From an answer record's metadata: "answer" (a string), "format" (default math), "choices".
 * 0, or -1 + citer_error() (*k left empty). */
int citer_answer_key_read(struct json_object *meta, citer_answer_key *k);
void citer_answer_key_free(citer_answer_key *k);

/* The contents of the last complete \boxed{...} in text, braces nested to any depth and
 * backslash-escaped braces (\{ \}) not counted: "so \boxed{\frac{1}{2}}." -> "\frac{1}{2}".
 * malloc'd; NULL when there is none. */
char *citer_last_boxed(const char *text);

/* A JSONL file read item by item. With CITER_FMT_AUTO the first item decides the format of
 * the whole file (unless the template declares one), so a later line of another shape gets a
 * "missing key" error rather than a silent change of format. */
typedef struct citer_dataset_reader citer_dataset_reader;
/* path "-" is stdin. tpl may be NULL (default template); it must outlive the reader.
 * NULL + citer_error() when the file cannot be opened. */
citer_dataset_reader *citer_dataset_open(const char *path, int format, const citer_template *tpl);
/* 1 with *ex filled, 0 at the end, -1 with citer_error() ("line 12: ..."). */
int citer_dataset_next(citer_dataset_reader *r, citer_example *ex);
long citer_dataset_lineno(const citer_dataset_reader *r); /* line of the last item read */
int citer_dataset_reader_format(const citer_dataset_reader *r); /* AUTO until the first item */
void citer_dataset_close(citer_dataset_reader *r);

#endif
