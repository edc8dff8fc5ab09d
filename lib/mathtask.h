/* mathtask: a deterministic generator of GSM8K-style arithmetic word problems, with short
 * step-by-step reference solutions, in CITER's math and multiple-choice item formats.
 *
 * Every problem comes from one of the templates (citer_mathtask_template_names) with 2 to 4
 * arithmetic steps. Each step is one sentence holding one equation "a OP b = c" (OP one of
 * + - * /, every number a non-negative integer, every division exact), and the solution ends
 * with the final answer:
 *
 *   math  "... so 14 * 23 = 322 dollars. The change is 400 - 322 = 78 dollars. The answer is
 *         \boxed{78}."
 *   mc    the same steps, then "Therefore, the answer is 78 (C)." The other three choices are
 *         plausible mistakes: a carry error in one step carried through the rest, a forgotten
 *         last step, the wrong operation in the last step, swapped digits, off by ten.
 *
 * Splits: a problem belongs to the test split when the XXH64 hash of its text (salt
 * CITER_MATHTASK_SPLIT_SALT) is 0 modulo 4, else to train. The generator draws problems and
 * keeps those of the requested split, so a problem text can only ever be in one split, for
 * any seed. The random stream is derived from (seed, split); within one generator a problem
 * text never repeats. The same arguments give the same items on every machine.
 */
#ifndef CITER_MATHTASK_H
#define CITER_MATHTASK_H

#include <stdint.h>

enum { CITER_SPLIT_TRAIN = 0, CITER_SPLIT_TEST = 1 };

#define CITER_MATHTASK_MIN_STEPS 2
#define CITER_MATHTASK_MAX_STEPS 4
#define CITER_MATHTASK_CHOICES 4
#define CITER_MATHTASK_SPLIT_SALT 0x63697465726d6174ull /* "citermat" */

typedef struct {
    char *problem;  /* the question */
    char *solution; /* steps, then "The answer is \boxed{N}." */
    char *cot;      /* steps, then "Therefore, the answer is N (L)." */
    long long answer;
    char *choices[CITER_MATHTASK_CHOICES]; /* choice texts, labelled A, B, C, D */
    int answer_index;                      /* the correct choice */
    const char *template_name;
    int steps;     /* number of equations in the solution */
    uint64_t hash; /* citer_mathtask_hash(problem) */
    int split;     /* CITER_SPLIT_TRAIN or _TEST */
} citer_mathtask;

typedef struct citer_mathgen citer_mathgen;

/* A generator of the split's problems with min_steps..max_steps steps (within 2..4).
 * NULL + citer_error() on bad arguments. */
citer_mathgen *citer_mathgen_new(uint64_t seed, int split, int min_steps, int max_steps);
/* Easy problems: every multiplication has a one-digit factor (2-9), so the arithmetic
 * suits models of a few million parameters. Other numbers keep their ranges; the split of a
 * problem text is unchanged. */
void citer_mathgen_set_easy(citer_mathgen *g, int easy);
/* The next problem into *t (free it with citer_mathtask_free). 0 ok, -1 + citer_error() when
 * no new distinct problem can be found. */
int citer_mathgen_next(citer_mathgen *g, citer_mathtask *t);
void citer_mathgen_free(citer_mathgen *g);
void citer_mathtask_free(citer_mathtask *t);

uint64_t citer_mathtask_hash(const char *problem);
/* The split a problem text belongs to. */
int citer_mathtask_split_of(const char *problem);
/* "train", "test"; and back (-1 if unknown). */
const char *citer_split_name(int split);
int citer_split_from_name(const char *name);

/* The item as one JSON line ending in "\n", malloc'd: format CITER_FMT_MATH gives
 * {"id","problem","solution"}, CITER_FMT_MC gives {"id","question","choices":{"text",
 * "label"},"answerKey","cot"}. id: "<split>-<16 hex digits of the hash>". NULL + citer_error()
 * for another format. */
char *citer_mathtask_json(const citer_mathtask *t, int format);

/* The template names, NULL-terminated. */
const char *const *citer_mathtask_template_names(void);

#endif
