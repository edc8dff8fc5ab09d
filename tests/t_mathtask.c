/* Tests for lib/mathtask: determinism, arithmetic of every solution checked by re-doing each
 * equation, multiple-choice items, disjoint splits, and that every item reads back through
 * lib/dataset in its format. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "check.h"
#include "dataset.h"
#include "mathtask.h"
#include "util.h"

#define S(x) ((x) ? (x) : "(null)")

static const char *const abcd[] = {"A", "B", "C", "D"};

/* n items' JSON lines (both formats interleaved) joined into one string. */
static char *lines_for(uint64_t seed, int split, int lo, int hi, int n)
{
    citer_mathgen *g = citer_mathgen_new(seed, split, lo, hi);
    if (!g) return NULL;
    size_t len = 0, cap = 0;
    char *all = NULL;
    for (int i = 0; i < n; i++) {
        citer_mathtask t;
        if (citer_mathgen_next(g, &t) != 0) break;
        for (int f = 0; f < 2; f++) {
            char *line = citer_mathtask_json(&t, f ? CITER_FMT_MC : CITER_FMT_MATH);
            size_t k = strlen(line);
            xgrow((void **)&all, &cap, len + k + 1, 1);
            memcpy(all + len, line, k + 1);
            len += k;
            free(line);
        }
        citer_mathtask_free(&t);
    }
    citer_mathgen_free(g);
    return all;
}

static void test_determinism(void)
{
    char *a = lines_for(42, CITER_SPLIT_TRAIN, 2, 4, 300);
    char *b = lines_for(42, CITER_SPLIT_TRAIN, 2, 4, 300);
    char *c = lines_for(43, CITER_SPLIT_TRAIN, 2, 4, 300);
    char *d = lines_for(42, CITER_SPLIT_TEST, 2, 4, 300);
    REQUIRE(a && b && c && d, "generation failed: %s", citer_error());
    CHECK(strcmp(a, b) == 0, "same seed, different output");
    CHECK(strcmp(a, c) != 0, "seeds 42 and 43 give the same output");
    CHECK(strcmp(a, d) != 0, "train and test give the same output");
    /* the first line of seed 42 and 43 differ already */
    CHECK(strncmp(a, c, strcspn(a, "\n")) != 0, "first lines equal");
    free(a), free(b), free(c), free(d);
}

/* A non-negative integer at *p (digits only), advancing *p. -1 when there is none. */
static long long number_at(const char **p)
{
    if (!isdigit((unsigned char)**p)) return -1;
    long long v = 0;
    while (isdigit((unsigned char)**p)) v = v * 10 + (*(*p)++ - '0');
    return v;
}

/* Whether the number v appears as a whole number in text. */
static int mentions(const char *text, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    for (const char *p = text; (p = strstr(p, buf)) != NULL; p++)
        if ((p == text || !isdigit((unsigned char)p[-1])) && !isdigit((unsigned char)p[n]))
            return 1;
    return 0;
}

typedef struct {
    int n;
    long long a[16], b[16], r[16];
    char op[16];
} equations;

/* Every "A op B = R" in text, each one checked by doing the arithmetic again. */
static int check_equations(const char *text, equations *eq, const char *problem)
{
    eq->n = 0;
    int bad = 0;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > text && isdigit((unsigned char)p[-1]))) continue;
        const char *q = p;
        long long a = number_at(&q);
        if (q[0] != ' ' || !strchr("+-*/", q[1]) || q[2] != ' ') continue;
        char op = q[1];
        q += 3;
        long long b = number_at(&q);
        if (b < 0 || strncmp(q, " = ", 3) != 0) continue;
        q += 3;
        long long r = number_at(&q);
        if (r < 0) continue;
        long long want = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : -1;
        if (op == '/') {
            CHECK(b != 0 && a % b == 0, "inexact division %lld / %lld in: %s", a, b, text);
            if (b) want = a / b;
        }
        CHECK(r == want, "%lld %c %lld = %lld is wrong in: %s", a, op, b, r, text);
        bad += r != want;
        /* each operand is given in the problem or is an earlier result */
        int known_a = mentions(problem, a), known_b = mentions(problem, b);
        for (int i = 0; i < eq->n; i++) known_a |= eq->r[i] == a, known_b |= eq->r[i] == b;
        CHECK(known_a && known_b, "%lld %c %lld: an operand comes from nowhere: %s / %s", a, op,
              b, problem, text);
        if (eq->n < 16) {
            eq->a[eq->n] = a, eq->b[eq->n] = b, eq->r[eq->n] = r, eq->op[eq->n] = op;
            eq->n++;
        }
        p = q - 1;
    }
    return bad;
}

static void check_item(const citer_mathtask *t)
{
    equations eq;
    int bad = check_equations(t->solution, &eq, t->problem);
    CHECK(eq.n == t->steps, "%d equations, %d steps: %s", eq.n, t->steps, t->solution);
    if (bad || eq.n == 0) return;
    long long last = eq.r[eq.n - 1];
    CHECK(last == t->answer && last > 0, "answer %lld, last result %lld", t->answer, last);
    char ref[32];
    snprintf(ref, sizeof ref, "%lld", last);
    CHECK(citer_answer_correct(CITER_FMT_MATH, t->solution, ref) == 1, "boxed answer: %s",
          t->solution);
    char *boxed = citer_last_boxed(t->solution);
    CHECK(boxed && strcmp(boxed, ref) == 0, "\\boxed{%s}, want %s", S(boxed), ref);
    free(boxed);
    size_t sl = strlen(t->solution);
    CHECK(sl > 8 && strcmp(t->solution + sl - 1, ".") == 0, "solution ends: %s", t->solution);
    CHECK(strchr(t->problem, '?') != NULL, "no question: %s", t->problem);

    /* mc: four distinct positive numbers, the key's text is the answer */
    int k = t->answer_index;
    REQUIRE(k >= 0 && k < 4, "answer index %d", k);
    for (int i = 0; i < 4; i++) {
        const char *p = t->choices[i];
        long long v = number_at(&p);
        CHECK(v > 0 && *p == 0, "choice %d \"%s\" is not a positive number", i, t->choices[i]);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(t->choices[i], t->choices[j]) != 0, "choices %d and %d are both %s", j,
                  i, t->choices[i]);
    }
    CHECK(strcmp(t->choices[k], ref) == 0, "key text %s, answer %s", t->choices[k], ref);
    char tail[96];
    snprintf(tail, sizeof tail, " Therefore, the answer is %s (%c).", ref, 'A' + k);
    size_t cl = strlen(t->cot), tl = strlen(tail);
    CHECK(cl > tl && strcmp(t->cot + cl - tl, tail) == 0, "cot ends: %s", t->cot);
    /* the steps are the same in both */
    const char *sb = strstr(t->solution, " The answer is \\boxed{");
    CHECK(sb && cl > tl && (size_t)(sb - t->solution) == cl - tl &&
              strncmp(t->solution, t->cot, cl - tl) == 0,
          "steps differ: %s / %s", t->solution, t->cot);
    const char *const *texts = (const char *const *)t->choices;
    CHECK(citer_answer_check(CITER_FMT_MC, t->cot, abcd[k], texts, abcd, 4) == 1,
          "the cot's answer is not extracted: %s", t->cot);
}

static void test_items(void)
{
    int per_template[16][5] = {{0}};
    const char *const *names = citer_mathtask_template_names();
    int nt = 0;
    while (names[nt]) nt++;
    CHECK(nt >= 8, "only %d templates", nt);
    for (int split = 0; split < 2; split++) {
        citer_mathgen *g = citer_mathgen_new(7, split, 2, 4);
        REQUIRE(g, "%s", citer_error());
        for (int i = 0; i < 2000; i++) {
            citer_mathtask t;
            REQUIRE(citer_mathgen_next(g, &t) == 0, "%s", citer_error());
            check_item(&t);
            CHECK(t.split == split && citer_mathtask_split_of(t.problem) == split,
                  "item %d is in the wrong split", i);
            CHECK(t.steps >= 2 && t.steps <= 4, "steps %d", t.steps);
            for (int j = 0; j < nt && j < 16; j++)
                if (strcmp(t.template_name, names[j]) == 0) per_template[j][t.steps]++;
            citer_mathtask_free(&t);
        }
        citer_mathgen_free(g);
    }
    for (int j = 0; j < nt && j < 16; j++)
        for (int s = 2; s <= 4; s++)
            CHECK(per_template[j][s] > 0, "template %s never made %d steps", names[j], s);
}

static void test_steps_range(void)
{
    for (int s = 2; s <= 4; s++) {
        citer_mathgen *g = citer_mathgen_new(1, CITER_SPLIT_TRAIN, s, s);
        REQUIRE(g, "%s", citer_error());
        for (int i = 0; i < 200; i++) {
            citer_mathtask t;
            REQUIRE(citer_mathgen_next(g, &t) == 0, "%s", citer_error());
            CHECK(t.steps == s, "steps %d, wanted %d", t.steps, s);
            citer_mathtask_free(&t);
        }
        citer_mathgen_free(g);
    }
    CHECK(!citer_mathgen_new(1, 0, 1, 4), "1-4 accepted");
    CHECK(strstr(citer_error(), "within 2-4") != NULL, "message: %s", citer_error());
    CHECK(!citer_mathgen_new(1, 0, 3, 2), "3-2 accepted");
    CHECK(!citer_mathgen_new(1, 0, 2, 5), "2-5 accepted");
    CHECK(!citer_mathgen_new(1, 2, 2, 4), "split 2 accepted");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Problems of n items of each (seed, split), sorted. */
static char **problems(uint64_t seed, int split, int n)
{
    citer_mathgen *g = citer_mathgen_new(seed, split, 2, 4);
    char **p = xcalloc((size_t)n, sizeof *p);
    for (int i = 0; i < n; i++) {
        citer_mathtask t;
        if (citer_mathgen_next(g, &t) != 0) {
            p[i] = xstrdup("");
            continue;
        }
        p[i] = t.problem;
        t.problem = NULL;
        citer_mathtask_free(&t);
    }
    citer_mathgen_free(g);
    qsort(p, (size_t)n, sizeof *p, cmp_str);
    return p;
}

static int common(char **a, char **b, int n)
{
    int i = 0, j = 0, c = 0;
    while (i < n && j < n) {
        int d = strcmp(a[i], b[j]);
        if (d == 0) c++, i++, j++;
        else if (d < 0) i++;
        else j++;
    }
    return c;
}

static void free_all(char **p, int n)
{
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

static void test_splits(void)
{
    enum { N = 2000 };
    char **train1 = problems(1, CITER_SPLIT_TRAIN, N), **train2 = problems(2, CITER_SPLIT_TRAIN, N);
    char **test1 = problems(1, CITER_SPLIT_TEST, N), **test2 = problems(2, CITER_SPLIT_TEST, N);
    CHECK(common(train1, test1, N) == 0, "train and test of seed 1 share problems");
    CHECK(common(train1, test2, N) == 0, "train of seed 1 and test of seed 2 share problems");
    CHECK(common(train2, test1, N) == 0, "train of seed 2 and test of seed 1 share problems");
    for (int i = 1; i < N; i++) {
        CHECK(strcmp(train1[i - 1], train1[i]) != 0, "train repeats: %s", train1[i]);
        CHECK(strcmp(test1[i - 1], test1[i]) != 0, "test repeats: %s", test1[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK(citer_mathtask_split_of(train1[i]) == CITER_SPLIT_TRAIN, "train item in test");
        CHECK(citer_mathtask_split_of(test2[i]) == CITER_SPLIT_TEST, "test item in train");
    }
    free_all(train1, N), free_all(train2, N), free_all(test1, N), free_all(test2, N);
    CHECK(citer_split_from_name("train") == CITER_SPLIT_TRAIN, "train");
    CHECK(citer_split_from_name("test") == CITER_SPLIT_TEST, "test");
    CHECK(citer_split_from_name("dev") == -1, "dev");
    CHECK(strcmp(citer_split_name(CITER_SPLIT_TEST), "test") == 0, "name");
}

static void test_dataset_roundtrip(void)
{
    citer_mathgen *g = citer_mathgen_new(99, CITER_SPLIT_TEST, 2, 4);
    REQUIRE(g, "%s", citer_error());
    for (int i = 0; i < 500; i++) {
        citer_mathtask t;
        REQUIRE(citer_mathgen_next(g, &t) == 0, "%s", citer_error());
        char ans[32];
        snprintf(ans, sizeof ans, "%lld", t.answer);
        char key[2] = {(char)('A' + t.answer_index), 0};
        for (int f = 0; f < 2; f++) {
            int fmt = f ? CITER_FMT_MC : CITER_FMT_MATH;
            char *line = citer_mathtask_json(&t, fmt);
            size_t n = strlen(line);
            CHECK(n && line[n - 1] == '\n' && !memchr(line, '\n', n - 1), "one line: %s", line);
            for (int as = 0; as < 2; as++) {
                citer_example ex;
                int rc = citer_dataset_parse(line, n, i + 1, as ? CITER_FMT_AUTO : fmt, NULL, &ex);
                CHECK(rc == 0, "does not parse (%s): %s", citer_error(), line);
                if (rc != 0) continue;
                CHECK(ex.format == fmt, "format %d, wanted %d", ex.format, fmt);
                CHECK(ex.answer && strcmp(ex.answer, f ? key : ans) == 0, "answer %s: %s",
                      S(ex.answer), line);
                CHECK(ex.id && strncmp(ex.id, "test-", 5) == 0 && strlen(ex.id) == 21, "id %s",
                      S(ex.id));
                CHECK(ex.prompt && strstr(ex.prompt, t.problem), "prompt lacks the problem");
                if (f) CHECK(ex.target && strstr(ex.target, t.cot), "mc target lacks the cot");
                citer_example_free(&ex);
            }
            free(line);
        }
        citer_mathtask_free(&t);
    }
    citer_mathgen_free(g);
    citer_mathtask t0 = {0};
    CHECK(citer_mathtask_json(&t0, CITER_FMT_GENERIC) == NULL, "generic accepted");
}

/* A hand-written expectation of the line format, so that a change of layout is noticed. */
static void test_json_layout(void)
{
    citer_mathtask t = {0};
    t.problem = "Tom has 3 * 4 things?";
    t.solution = "So 3 * 4 = 12. The answer is \\boxed{12}.";
    t.cot = "So 3 * 4 = 12. Therefore, the answer is 12 (C).";
    char *ch[4] = {"10", "21", "12", "13"};
    memcpy(t.choices, ch, sizeof ch);
    t.answer_index = 2;
    t.hash = 0x0123456789abcdefull;
    t.split = CITER_SPLIT_TRAIN;
    char *m = citer_mathtask_json(&t, CITER_FMT_MATH);
    CHECK(m && strcmp(m, "{\"id\":\"train-0123456789abcdef\",\"problem\":\"Tom has 3 * 4 "
                         "things?\",\"solution\":\"So 3 * 4 = 12. The answer is "
                         "\\\\boxed{12}.\"}\n") == 0,
          "math line: %s", S(m));
    char *c = citer_mathtask_json(&t, CITER_FMT_MC);
    CHECK(c && strcmp(c, "{\"id\":\"train-0123456789abcdef\",\"question\":\"Tom has 3 * 4 "
                         "things?\",\"choices\":{\"text\":[\"10\",\"21\",\"12\",\"13\"],"
                         "\"label\":[\"A\",\"B\",\"C\",\"D\"]},\"answerKey\":\"C\",\"cot\":\"So "
                         "3 * 4 = 12. Therefore, the answer is 12 (C).\"}\n") == 0,
          "mc line: %s", S(c));
    free(m);
    free(c);
}

int main(void)
{
    RUN(test_determinism);
    RUN(test_items);
    RUN(test_steps_range);
    RUN(test_splits);
    RUN(test_dataset_roundtrip);
    RUN(test_json_layout);
    return t_exit();
}
