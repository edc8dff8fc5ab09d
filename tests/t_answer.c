/* Tests for lib/answer: math answer extraction and normalisation, and CITER's multiple-choice
 * extraction rules (src/utils/io_format.py, route_extract_answer, of github.com/aiming-lab/CITER).
 * Expected values are worked out by hand from those rules and from arithmetic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "check.h"
#include "template.h"
#include "util.h"

#define S(x) ((x) ? (x) : "(null)")

static int streq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void check_norm(const char *in, const char *want)
{
    char *got = citer_math_normalize(in);
    CHECK(streq(got, want), "normalize(\"%s\") = \"%s\", want \"%s\"", in, S(got), want);
    free(got);
}

static void test_normalize(void)
{
    check_norm("42", "42");
    check_norm(" 42 ", "42");
    check_norm("007", "7");
    check_norm("+5", "5");
    check_norm("-0", "0");
    check_norm("-0.0", "0");
    check_norm("12.50", "25/2");
    check_norm("12.0", "12");
    check_norm("12.00", "12");
    check_norm("12.", "12");
    check_norm("0.75", "3/4");
    check_norm(".5", "1/2");
    check_norm("\\frac{3}{4}", "3/4");
    check_norm("\\dfrac{6}{8}", "3/4");
    check_norm("\\tfrac{6}{8}", "3/4");
    check_norm("\\frac12", "1/2");
    check_norm("\\frac{10}{5}", "2");
    check_norm("-\\frac{1}{2}", "-1/2");
    check_norm("\\frac{-1}{2}", "-1/2");
    check_norm("\\frac{1}{-2}", "-1/2");
    check_norm("\\frac{1.5}{3}", "1/2");
    check_norm("6/8", "3/4");
    check_norm("1/0", "1/0");         /* not a number: kept as text */
    check_norm("\\frac{1}{0}", "\\frac{1}{0}");
    check_norm("1,234", "1234");
    check_norm("1,234,567.50", "2469135/2");
    check_norm("1{,}000", "1000");
    check_norm("1,23", "1,23");       /* not thousands groups: a list stays a list */
    check_norm("(1,2)", "(1,2)");
    check_norm("$12.50", "25/2");
    check_norm("\\$12.50", "25/2");
    check_norm("10\\%", "10");
    check_norm("10%", "10");
    check_norm("90^\\circ", "90");
    check_norm("90^{\\circ}", "90");
    check_norm("\xe2\x88\x92" "5", "-5"); /* U+2212 MINUS SIGN */
    check_norm("1\xc2\xa0" "000", "1000"); /* no-break space inside a number */
    check_norm("10\\text{ inches}", "10");
    check_norm("10 \\text{cm}^2", "10");
    check_norm("\\text{(B)}", "(b)");
    check_norm("\\textbf{Monday}", "monday");
    check_norm("\\mbox{5}", "5");
    check_norm("x = 5", "5");
    check_norm("x=\\frac{1}{2}", "1/2");
    check_norm("\\left( 3, 4 \\right)", "(3,4)");
    check_norm("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}");
    check_norm("\\dfrac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}");
    check_norm("{5}", "5");
    check_norm("5.", "5");
    check_norm("3\\!000", "3000");
    check_norm("3\\,000", "3000");
    check_norm("", "");
    check_norm("\\frac{", "\\frac{");
    check_norm("\\text{", "\\text{");
    /* beyond 64 bits: canonical decimal text */
    check_norm("000123456789012345678901234567890", "123456789012345678901234567890");
    check_norm("123456789012345678901234567890.500", "123456789012345678901234567890.5");
    check_norm("-00000000000000000000000000.000000000000000000000000", "0");
    check_norm("9223372036854775807", "9223372036854775807");
    check_norm("-9223372036854775807", "-9223372036854775807");
}

static void test_math_equal(void)
{
    CHECK(citer_math_equal("\\frac{3}{4}", "0.75"), "3/4 == 0.75");
    CHECK(citer_math_equal("1/2", "\\frac{1}{2}"), "1/2");
    CHECK(citer_math_equal("0.5", "1/2"), "0.5");
    CHECK(citer_math_equal("1,234", "1234"), "thousands");
    CHECK(citer_math_equal("$12.50", "12.5"), "dollars");
    CHECK(citer_math_equal("10%", "10"), "percent");
    CHECK(citer_math_equal("\xe2\x88\x92" "5", "-5"), "unicode minus");
    CHECK(!citer_math_equal("0.333", "\\frac{1}{3}"), "no float tolerance");
    CHECK(!citer_math_equal("0.3333333333", "\\frac{1}{3}"), "no float tolerance (long)");
    CHECK(!citer_math_equal("5", "-5"), "sign");
    CHECK(!citer_math_equal("10", "0.1"), "percent is not a scale");
    CHECK(!citer_math_equal("", ""), "empty is never an answer");
    CHECK(citer_math_equal("\\text{Monday}", "monday"), "text, any case");
    CHECK(citer_math_equal("2\\sqrt{3}", "2 \\sqrt{3}"), "spaces");
    CHECK(!citer_math_equal("12", "21"), "different");
}

static void check_extract_math(const char *text, const char *want)
{
    char *got = citer_answer_extract(CITER_FMT_MATH, text, NULL, NULL, 0);
    CHECK(streq(got, want), "extract(\"%s\") = \"%s\", want \"%s\"", text, S(got), S(want));
    free(got);
}

static void test_math_extract(void)
{
    check_extract_math("so the answer is \\boxed{29}.", "29");
    check_extract_math("\\boxed{\\frac{3}{4}}", "\\frac{3}{4}");
    check_extract_math("first \\boxed{1} then \\boxed{2}", "2"); /* the last box wins */
    check_extract_math("\\boxed{\\boxed{7}}", "\\boxed{7}");
    check_extract_math("\\boxed{a{b{c}}d}", "a{b{c}}d");
    check_extract_math("answer: \\boxed{12} and an unclosed \\boxed{13", "12");
    check_extract_math("Natalia sold 48+24 = 72 clips.\n#### 72", "72");
    check_extract_math("#### 1,000 \nmore text", "1,000");
    check_extract_math("\\boxed{5}\n#### 6", "5"); /* the box comes first */
    check_extract_math("The answer is 29.", NULL);
    check_extract_math("", NULL);
    check_extract_math("####   \n", NULL);
}

static void test_math_correct(void)
{
    CHECK(citer_answer_correct(CITER_FMT_MATH, "x = \\boxed{\\frac{3}{4}}.", "0.75") == 1, "3/4");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "He has \\boxed{1,234} coins.", "1234") == 1,
          "1,234");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{\\$12.50}", "12.5") == 1, "$12.50");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{10\\%}", "10") == 1, "10 percent");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{\xe2\x88\x92" "5}", "-5") == 1, "minus");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{3} no, \\boxed{4}", "3") == 0,
          "the last box is the answer");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "The answer is 29.", "29") == 0, "no box");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{}", "29") == 0, "empty box");
    CHECK(citer_answer_correct(CITER_FMT_MATH, NULL, "29") == 0, "no text");
    CHECK(citer_answer_correct(CITER_FMT_GENERIC, "\\boxed{29}", "29") == 1, "generic");
    CHECK(citer_answer_correct(CITER_FMT_MATH, "\\boxed{29}", NULL) == -1, "no reference");
    CHECK(citer_answer_correct(77, "\\boxed{29}", "29") == -1, "bad format");
    CHECK(strstr(citer_error(), "format") != NULL, "message: %s", citer_error());
}

/* CommonsenseQA-like item */
static const char *const texts[] = {"dolphin", "whale", "shark", "black cat", "cat"};
static const char *const labels[] = {"A", "B", "C", "D", "E"};

static void check_mc(const char *text, const char *want)
{
    char *got = citer_answer_extract(CITER_FMT_MC, text, texts, labels, 5);
    CHECK(streq(got, want), "mc(\"%s\") = %s, want %s", text, S(got), S(want));
    free(got);
}

static void check_mc_bare(const char *text, const char *want)
{
    char *got = citer_answer_extract(CITER_FMT_MC, text, NULL, NULL, 0);
    CHECK(streq(got, want), "mc without choices(\"%s\") = %s, want %s", text, S(got), S(want));
    free(got);
}

static void test_mc_rules(void)
{
    check_mc("It is a mammal. Therefore, the answer is whale (B).", "B");
    /* rule 1 beats the letter: the choice text after Therefore decides */
    check_mc("Therefore, the answer is whale (C).", "B");
    check_mc("THEREFORE the answer is whale", NULL); /* "Therefore" is case-sensitive */
    check_mc("Therefore the answer is a Shark", "C");
    /* whole words only, the longest choice wins */
    check_mc("Therefore, the answer is black cat (D).", "D");
    check_mc("Therefore, the answer is cattle (E).", "E"); /* "cat" in "cattle" is no match */
    check_mc("Therefore, the answer is cat.", "E");
    /* rule 2: a standalone uppercase label in the window */
    check_mc("Therefore, B.", "B");
    check_mc("Therefore, the USA (I think) says C.", "C");
    check_mc("Therefore, I pick C", "C"); /* "I" is not a label of this item */
    /* the window is 50 characters after Therefore, on one line */
    check_mc("Therefore, after thinking about it for a very long time indeed, whale.", NULL);
    check_mc("Therefore\nthe answer is the whale", NULL);
    /* rule 3: a label in parentheses, any case, anywhere */
    check_mc("I think (b) fits best.", "B");
    check_mc("(b)", "B");
    check_mc("Options (x) and (c)", "C"); /* (x) is not a label: go on */
    /* rule 4: a label opening the answer */
    check_mc("B. whale", "B");
    check_mc("B) whale", "B");
    check_mc("  \"D\" is right", "D");
    check_mc("\xe2\x80\x9c" "C\xe2\x80\x9d is right", "C"); /* curly quotes */
    check_mc("b. whale", "B"); /* rule 5: "whale" in the first 20 characters */
    check_mc("Because whales are big.", NULL); /* no choice text as a whole word */
    /* rule 5: a choice text within the first 20 characters */
    check_mc("whale", "B");
    check_mc("A whale, of course.", "A"); /* CITER's rule 4 reads the article as label A */
    check_mc("It must be the whale.", "B");
    check_mc("It must certainly be the whale.", NULL); /* past 20 characters */
    /* a sentence mentioning two letters: the first standalone label after Therefore */
    check_mc("Therefore, between B and D the answer is D.", "B");
    check_mc("Between B and D I would say (D).", "D");
    /* nothing */
    check_mc("", NULL);
    check_mc("I do not know.", NULL);
    /* without the item's choices: letters only */
    check_mc_bare("Therefore, the answer is whale (B).", "B");
    check_mc_bare("(c)", "C");
    check_mc_bare("whale", NULL);
    check_mc_bare("Therefore, I think B", "I"); /* as CITER: any uppercase letter */
}

static void test_mc_labels(void)
{
    /* ARC items sometimes use digits for labels */
    static const char *const t[] = {"red", "green", "blue", "white"};
    static const char *const l[] = {"1", "2", "3", "4"};
    char *got = citer_answer_extract(CITER_FMT_MC, "Therefore, the answer is (3).", t, l, 4);
    CHECK(streq(got, "3"), "digit label: %s", S(got));
    free(got);
    got = citer_answer_extract(CITER_FMT_MC, "Therefore the sky is blue.", t, l, 4);
    CHECK(streq(got, "3"), "digit label by text: %s", S(got));
    free(got);
    /* choice texts with no labels are labelled A, B, ... */
    static const char *const holes[] = {"1", NULL, "3", "4"};
    got = citer_answer_extract(CITER_FMT_MC, "Therefore green.", t, holes, 4);
    CHECK(got == NULL, "a choice without a label gives no answer: %s", S(got));
    free(got);
    got = citer_answer_extract(CITER_FMT_MC, "Therefore green.", t, NULL, 4);
    CHECK(streq(got, "B"), "positional label: %s", S(got));
    free(got);
    /* numbers as choices: "29" does not match inside "129" */
    static const char *const nums[] = {"29", "129", "1290", "92"};
    static const char *const abcd[] = {"A", "B", "C", "D"};
    got = citer_answer_extract(CITER_FMT_MC, "Therefore, the answer is 129 (B).", nums, abcd, 4);
    CHECK(streq(got, "B"), "129: %s", S(got));
    free(got);
    got = citer_answer_extract(CITER_FMT_MC, "Therefore, the answer is 1,290 (C).", nums, abcd, 4);
    CHECK(streq(got, "C"), "1,290 is not a choice text; the label decides: %s", S(got));
    free(got);
}

static void test_mc_correct(void)
{
    const char *msg = "Whales are mammals. Therefore, the answer is whale (B).";
    CHECK(citer_answer_check(CITER_FMT_MC, msg, "B", texts, labels, 5) == 1, "B");
    CHECK(citer_answer_check(CITER_FMT_MC, msg, " b ", texts, labels, 5) == 1, "b");
    CHECK(citer_answer_check(CITER_FMT_MC, msg, "A", texts, labels, 5) == 0, "A");
    CHECK(citer_answer_check(CITER_FMT_MC, "no idea", "A", texts, labels, 5) == 0, "none");
    CHECK(citer_answer_correct(CITER_FMT_MC, msg, "B") == 1, "without choices");
    CHECK(citer_answer_correct(CITER_FMT_MC, "(b) whale", "B") == 1, "lowercase");
    CHECK(citer_answer_correct(CITER_FMT_MC, "", "B") == 0, "empty");
}

/* Odd bytes never crash: invalid UTF-8, truncated sequences, huge texts. */
static void test_robust(void)
{
    const char *odd[] = {"\xff\xfe(", "Therefore\xe2\x88", "\xe2(\xe2)", "(\x80)",
                         "Therefore \xc3", "\\boxed{\xe2\x88}", "((((((", "Therefore"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        char *a = citer_answer_extract(CITER_FMT_MC, odd[i], texts, labels, 5);
        free(a);
        a = citer_answer_extract(CITER_FMT_MC, odd[i], NULL, NULL, 0);
        free(a);
        a = citer_answer_extract(CITER_FMT_MATH, odd[i], NULL, NULL, 0);
        free(a);
        a = citer_math_normalize(odd[i]);
        free(a);
    }
    size_t n = 1 << 20;
    char *big = xmalloc(n + 64);
    for (size_t i = 0; i < n; i++) big[i] = "Therefore x "[i % 12];
    strcpy(big + n, " \\boxed{17} (c)");
    CHECK(citer_answer_correct(CITER_FMT_MATH, big, "17") == 1, "big math text");
    char *a = citer_answer_extract(CITER_FMT_MC, big, texts, labels, 5);
    CHECK(streq(a, "C"), "big mc text: %s", S(a));
    free(a);
    free(big);
}

/* Random strings of pieces that matter to the rules: nothing crashes (run under ASan by
 * make check-asan), and normalising is idempotent. */
static void test_random(void)
{
    static const char *const pieces[] = {
        "\\boxed{", "{", "}", "\\", "\\frac", "\\text{", " units", "1", "23", ".", ",", "-",
        "/", "$", "%", "(", ")", "(B)", "Therefore", ", the answer is ", "whale", "cat", "B",
        "A", "a", "\xe2\x88\x92", "\xe2\x80\x9c", "\xc3", "\xff", "####", "\n", " ", "x=",
        "\\left", "\\dfrac", "^\\circ", "{,}", "0", "9999999999"};
    const int np = (int)(sizeof pieces / sizeof pieces[0]);
    uint64_t state = 12345;
    char buf[512];
    int not_idempotent = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int count = (int)(state >> 59) + 1;
        for (int k = 0; k < count; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const char *pc = pieces[(state >> 33) % (uint64_t)np];
            size_t pl = strlen(pc);
            if (len + pl >= sizeof buf) break;
            memcpy(buf + len, pc, pl);
            len += pl;
        }
        buf[len] = 0;
        free(citer_answer_extract(CITER_FMT_MC, buf, texts, labels, 5));
        free(citer_answer_extract(CITER_FMT_MC, buf, NULL, NULL, 0));
        free(citer_answer_extract(CITER_FMT_MATH, buf, NULL, NULL, 0));
        char *n1 = citer_math_normalize(buf), *n2 = citer_math_normalize(n1);
        if (strcmp(n1, n2) != 0 && not_idempotent++ < 5)
            printf("  not idempotent: \"%s\" -> \"%s\" -> \"%s\"\n", buf, n1, n2);
        free(n1);
        free(n2);
    }
    CHECK(not_idempotent == 0, "%d strings normalise differently twice", not_idempotent);
}

/* Deep nesting and long inputs stay fast (linear passes). */
static void test_deep(void)
{
    size_t depth = 200000;
    char *s = xmalloc(depth * 8 + 16);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++) memcpy(s + n, "\\text{", 6), n += 6;
    s[n++] = '7';
    for (size_t i = 0; i < depth; i++) s[n++] = '}';
    s[n] = 0;
    double t0 = now_seconds();
    char *r = citer_math_normalize(s);
    CHECK(streq(r, "7"), "nested \\text: %.20s", S(r));
    free(r);
    n = 0;
    for (size_t i = 0; i < depth; i++) s[n++] = '{';
    s[n++] = '8';
    for (size_t i = 0; i < depth; i++) s[n++] = '}';
    s[n] = 0;
    r = citer_math_normalize(s);
    CHECK(streq(r, "8"), "nested braces: %.20s", S(r));
    free(r);
    n = 0;
    for (size_t i = 0; i < depth; i++) memcpy(s + n, "x={", 3), n += 3;
    s[n++] = '9';
    for (size_t i = 0; i < depth; i++) s[n++] = '}';
    s[n] = 0;
    r = citer_math_normalize(s); /* contrived: only some layers come off, but quickly */
    CHECK(r != NULL, "x={x={...}}");
    free(r);
    CHECK(now_seconds() - t0 < 5, "took %.1f s", now_seconds() - t0);
    free(s);
}

int main(void)
{
    RUN(test_normalize);
    RUN(test_math_equal);
    RUN(test_math_extract);
    RUN(test_math_correct);
    RUN(test_mc_rules);
    RUN(test_mc_labels);
    RUN(test_mc_correct);
    RUN(test_robust);
    RUN(test_random);
    RUN(test_deep);
    return t_exit();
}
