/* Tests for lib/dataset and lib/template: item formats, \boxed{} extraction, template
 * rendering and errors. Expected strings are written by hand from the template text and from
 * CITER's prompt wording (src/utils/io_format.py of github.com/aiming-lab/CITER). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataset.h"
#include "util.h"

/* Expected CITER prompts, written out independently of lib/template.c. */
#define MC_TAIL                                                                              \
    "Please format your response in the following way:\n"                                  \
    "[Explanation]. Therefore, the answer is answer (label).\n"                             \
    "Ensure the final sentence includes the answer followed by the label in parentheses.\n" \
    "Answer and Reasoning:"
#define MATH_HEAD                                                                         \
    "Solve the following math problem step by step. Ensure all reasoning is shown clearly " \
    "in LaTeX format, and the final answer should be enclosed using the LaTeX command "     \
    "\\boxed{} to display it in a box.\nQuestion: "

static int streq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}
#define S(x) ((x) ? (x) : "(null)")

/* Parse one line (NUL-terminated) with the default template. */
static int parse(const char *line, int format, citer_example *ex)
{
    return citer_dataset_parse(line, strlen(line), 1, format, NULL, ex);
}

/* Parse a line that must fail, and check the message contains want. */
static void expect_fail(const char *line, int format, const citer_template *tpl, long lineno,
                        const char *want)
{
    citer_example ex;
    int rc = citer_dataset_parse(line, strlen(line), lineno, format, tpl, &ex);
    CHECK(rc == -1, "expected failure for %s, got %d", line, rc);
    if (rc == -1)
        CHECK(strstr(citer_error(), want) != NULL, "error for %s: got \"%s\", want \"%s\"", line,
              citer_error(), want);
    else
        citer_example_free(&ex);
}

static citer_template *tpl_from(const char *text)
{
    return citer_template_parse(text, strlen(text));
}

static void expect_tpl_error(const char *text, const char *want)
{
    citer_template *t = tpl_from(text);
    CHECK(t == NULL, "template should fail: %s", text);
    if (t)
        citer_template_free(t);
    else
        CHECK(streq(citer_error(), want), "template error: got \"%s\", want \"%s\"",
              citer_error(), want);
}

static void test_format_names(void)
{
    CHECK(citer_dataset_format_from_name("mc") == CITER_FMT_MC, "mc");
    CHECK(citer_dataset_format_from_name("math") == CITER_FMT_MATH, "math");
    CHECK(citer_dataset_format_from_name("generic") == CITER_FMT_GENERIC, "generic");
    CHECK(citer_dataset_format_from_name("auto") == CITER_FMT_AUTO, "auto");
    CHECK(citer_dataset_format_from_name("MC") == -1, "case matters");
    CHECK(citer_dataset_format_from_name(NULL) == -1, "NULL");
    CHECK(streq(citer_dataset_format_name(CITER_FMT_MATH), "math"), "name");
    CHECK(citer_dataset_format_name(9) == NULL && citer_dataset_format_name(-1) == NULL, "bad");
}

static void check_boxed(const char *text, const char *want)
{
    char *got = citer_last_boxed(text);
    CHECK(streq(got, want), "last_boxed(%s) = %s, want %s", text, S(got), S(want));
    free(got);
}

static void test_last_boxed(void)
{
    check_boxed("so x = \\boxed{5}.", "5");
    check_boxed("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}");
    check_boxed("first \\boxed{1}, then \\boxed{2}", "2");
    check_boxed("\\boxed{\\left\\{1,2\\right\\}}", "\\left\\{1,2\\right\\}"); /* escaped braces */
    check_boxed("\\boxed{\\{a\\}}", "\\{a\\}");
    check_boxed("\\boxed{a\\\\}", "a\\\\"); /* \\ then a real closing brace */
    check_boxed("\\boxed {3}", "3");
    check_boxed("\\boxed{{{x}}}", "{{x}}");
    check_boxed("\\boxed{1} and an unfinished \\boxed{2", "1");
    check_boxed("\\boxed{}", "");
    check_boxed("no box here", NULL);
    check_boxed("\\boxedx{1}", NULL);
    check_boxed("\\boxed", NULL);
    check_boxed("\\boxed{", NULL);
    check_boxed("\\boxed{\\}", NULL); /* the only '}' is escaped */
    check_boxed("\\boxed{\\sqrt{2}} \\quad \\boxed{x^{2}}", "x^{2}");
    check_boxed("\\boxed{caf\xc3\xa9 \xe2\x82\xac}", "caf\xc3\xa9 \xe2\x82\xac");
}

static const char *cqa_line =
    "{\"id\": \"b9509335e214710a7c3cabde7c975cab\", \"question\": \"If I needed help with "
    "answering questions, what would help me?\", \"choices\": {\"label\": [\"A\", \"B\", \"C\", "
    "\"D\", \"E\"], \"text\": [\"getting tired\", \"better grade\", \"sharing information\", "
    "\"interesting\", \"teaching\"]}, \"answerKey\": \"C\"}";

static const char *cqa_prompt = "Question: If I needed help with answering questions, what would "
                                "help me?\nChoices:\nA. getting tired\nB. better grade\n"
                                "C. sharing information\nD. interesting\nE. teaching\n" MC_TAIL;

static void test_mc_commonsenseqa(void)
{
    citer_example ex;
    REQUIRE(parse(cqa_line, CITER_FMT_MC, &ex) == 0, "%s", citer_error());
    CHECK(streq(ex.prompt, cqa_prompt), "prompt:\n%s", ex.prompt);
    CHECK(streq(ex.target, "Therefore, the answer is sharing information (C)."), "target %s",
          S(ex.target));
    CHECK(streq(ex.answer, "C"), "answer %s", S(ex.answer));
    CHECK(streq(ex.id, "b9509335e214710a7c3cabde7c975cab"), "id %s", S(ex.id));
    CHECK(ex.format == CITER_FMT_MC, "format %d", ex.format);
    CHECK(ex.n_choices == 5 && streq(ex.choice_labels[0], "A") && streq(ex.choice_texts[0], "getting tired") &&
              streq(ex.choice_labels[4], "E") && streq(ex.choice_texts[4], "teaching"),
          "choices in file order (%d)", ex.n_choices);
    citer_example_free(&ex);
    CHECK(ex.prompt == NULL && ex.id == NULL && ex.n_choices == 0, "free clears");
}

static void test_mc_reasoning_fields(void)
{
    static const char *keys[] = {"cot", "rationale", "explanation", "solution", "target",
                                 "response"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"question\": \"2+2?\", \"choices\": {\"text\": [\"3\", \"4\"], \"label\": "
                 "[\"A\", \"B\"]}, \"answerKey\": \"B\", \"%s\": \"Two and two make four. "
                 "Therefore, the answer is 4 (b).\"}",
                 keys[i]);
        citer_example ex;
        REQUIRE(parse(line, CITER_FMT_AUTO, &ex) == 0, "%s: %s", keys[i], citer_error());
        CHECK(streq(ex.target, "Two and two make four. Therefore, the answer is 4 (b)."),
              "%s: target %s", keys[i], S(ex.target));
        CHECK(streq(ex.prompt, "Question: 2+2?\nChoices:\nA. 3\nB. 4\n" MC_TAIL), "%s: prompt",
              keys[i]);
        CHECK(ex.id == NULL, "no id");
        citer_example_free(&ex);
    }
    /* An empty reasoning text counts as none: the fallback sentence is used. */
    citer_example ex;
    REQUIRE(parse("{\"question\": \"q\", \"choices\": {\"text\": [\"x\"], \"label\": [\"A\"]}, "
                  "\"answerKey\": \"A\", \"cot\": \"\"}",
                  CITER_FMT_MC, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.target, "Therefore, the answer is x (A)."), "target %s", S(ex.target));
    citer_example_free(&ex);
}

static void test_mc_arc_stem(void)
{
    /* ARC's original layout: question.stem with a list of choice objects, numeric labels. */
    const char *line =
        "{\"id\": 17, \"question\": {\"stem\": \"Which is a mammal?\", \"choices\": "
        "[{\"text\": \"shark\", \"label\": \"1\"}, {\"text\": \"whale\", \"label\": 2}]}, "
        "\"answerKey\": 2}";
    citer_example ex;
    REQUIRE(parse(line, CITER_FMT_AUTO, &ex) == 0, "%s", citer_error());
    CHECK(ex.format == CITER_FMT_MC, "detected %d", ex.format);
    CHECK(streq(ex.prompt, "Question: Which is a mammal?\nChoices:\n1. shark\n2. whale\n" MC_TAIL),
          "prompt:\n%s", ex.prompt);
    CHECK(streq(ex.answer, "2"), "answer %s", S(ex.answer));
    CHECK(streq(ex.id, "17"), "id %s", S(ex.id));
    CHECK(streq(ex.target, "Therefore, the answer is whale (2)."), "target %s", S(ex.target));
    citer_example_free(&ex);

    /* question.stem with top-level choices. */
    REQUIRE(parse("{\"question\": {\"stem\": \"Pick\"}, \"choices\": {\"text\": [\"a\", \"b\"], "
                  "\"label\": [\"A\", \"B\"]}, \"answerKey\": \"A\"}",
                  CITER_FMT_MC, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.prompt, "Question: Pick\nChoices:\nA. a\nB. b\n" MC_TAIL), "prompt:\n%s",
          ex.prompt);
    citer_example_free(&ex);
}

static void test_mc_unicode(void)
{
    /* \u escapes (BMP and a surrogate pair) and raw UTF-8 come out as UTF-8. */
    const char *line =
        "{\"question\": \"Caf\\u00e9 or th\xc3\xa9 \\ud83d\\ude00? \xe5\xa5\xbd\", \"choices\": "
        "{\"text\": [\"\xc3\xa9t\xc3\xa9\", \"\\u00fcber\"], \"label\": [\"\xce\xb1\", \"B\"]}, "
        "\"answerKey\": \"\\u03b1\"}";
    citer_example ex;
    REQUIRE(parse(line, CITER_FMT_MC, &ex) == 0, "%s", citer_error());
    CHECK(streq(ex.prompt, "Question: Caf\xc3\xa9 or th\xc3\xa9 \xf0\x9f\x98\x80? \xe5\xa5\xbd\n"
                           "Choices:\n\xce\xb1. \xc3\xa9t\xc3\xa9\nB. \xc3\xbc" "ber\n" MC_TAIL),
          "prompt:\n%s", ex.prompt);
    CHECK(streq(ex.answer, "\xce\xb1"), "answer %s", S(ex.answer));
    CHECK(streq(ex.target, "Therefore, the answer is \xc3\xa9t\xc3\xa9 (\xce\xb1)."), "target %s",
          S(ex.target));
    citer_example_free(&ex);
}

static void test_math(void)
{
    const char *line = "{\"problem\": \"Compute $\\\\frac{1}{3} + \\\\frac{1}{6}$.\", "
                       "\"solution\": \"The sum is $\\\\frac{3}{6} = \\\\boxed{\\\\frac{1}{2}}$.\"}";
    citer_example ex;
    REQUIRE(parse(line, CITER_FMT_MATH, &ex) == 0, "%s", citer_error());
    CHECK(streq(ex.prompt, MATH_HEAD "Compute $\\frac{1}{3} + \\frac{1}{6}$.\nSolution: "),
          "prompt:\n[%s]", ex.prompt);
    CHECK(streq(ex.target, "The sum is $\\frac{3}{6} = \\boxed{\\frac{1}{2}}$."), "target %s",
          S(ex.target));
    CHECK(streq(ex.answer, "\\frac{1}{2}"), "answer %s", S(ex.answer));
    CHECK(ex.format == CITER_FMT_MATH, "format");
    citer_example_free(&ex);

    /* The last box counts, also over an "answer" key. */
    REQUIRE(parse("{\"problem\": \"p\", \"solution\": \"\\\\boxed{1} no, \\\\boxed{-3}\", "
                  "\"answer\": \"1\"}",
                  CITER_FMT_AUTO, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.answer, "-3"), "answer %s", S(ex.answer));
    citer_example_free(&ex);

    /* No box: the "answer" key (string or number). */
    REQUIRE(parse("{\"problem\": \"p\", \"solution\": \"It is 42.\", \"answer\": \"42\"}",
                  CITER_FMT_MATH, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.answer, "42"), "answer %s", S(ex.answer));
    CHECK(streq(ex.target, "It is 42."), "target");
    citer_example_free(&ex);
    REQUIRE(parse("{\"problem\": \"p\", \"answer\": 42}", CITER_FMT_AUTO, &ex) == 0, "%s",
            citer_error());
    CHECK(streq(ex.answer, "42"), "answer %s", S(ex.answer));
    CHECK(ex.target == NULL, "no solution, no target: %s", S(ex.target));
    citer_example_free(&ex);
    REQUIRE(parse("{\"problem\": \"p\", \"answer\": 0.5}", CITER_FMT_MATH, &ex) == 0, "%s",
            citer_error());
    CHECK(streq(ex.answer, "0.5"), "answer %s", S(ex.answer));
    citer_example_free(&ex);

    /* An empty box is no answer; the "answer" key then serves. */
    REQUIRE(parse("{\"problem\": \"p\", \"solution\": \"\\\\boxed{}\", \"answer\": \"7\"}",
                  CITER_FMT_MATH, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.answer, "7"), "answer %s", S(ex.answer));
    citer_example_free(&ex);
}

static void test_math_gsm8k(void)
{
    /* GSM8K's original layout: the worked solution in "answer", ending "#### N". */
    const char *line = "{\"question\": \"Tom has 3 boxes of 5 pencils. How many?\", \"answer\": "
                       "\"3 * 5 = <<3*5=15>>15\\n#### 15\"}";
    citer_example ex;
    REQUIRE(parse(line, CITER_FMT_AUTO, &ex) == 0, "%s", citer_error());
    CHECK(ex.format == CITER_FMT_MATH, "detected %d", ex.format);
    CHECK(streq(ex.prompt, MATH_HEAD "Tom has 3 boxes of 5 pencils. How many?\nSolution: "),
          "prompt:\n[%s]", ex.prompt);
    CHECK(streq(ex.target, "3 * 5 = <<3*5=15>>15\n#### 15"), "target %s", S(ex.target));
    CHECK(streq(ex.answer, "15"), "answer %s", S(ex.answer));
    citer_example_free(&ex);

    /* CITER's converted GSM8K: "The final answer is: \boxed{26}". */
    REQUIRE(parse("{\"problem\": \"q\", \"solution\": \"8 + 4 + 6 + 8 = 26\\nThe final answer "
                  "is: \\\\boxed{26}\"}",
                  CITER_FMT_AUTO, &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.answer, "26"), "answer %s", S(ex.answer));
    citer_example_free(&ex);
}

static void test_generic(void)
{
    citer_example ex;
    REQUIRE(parse("{\"prompt\": \"Translate: chat\", \"target\": \"cat\", \"answer\": \"cat\", "
                  "\"id\": \"g1\"}",
                  CITER_FMT_AUTO, &ex) == 0,
            "%s", citer_error());
    CHECK(ex.format == CITER_FMT_GENERIC, "format");
    CHECK(streq(ex.prompt, "Translate: chat"), "prompt %s", ex.prompt);
    CHECK(streq(ex.target, "cat") && streq(ex.answer, "cat") && streq(ex.id, "g1"), "fields");
    citer_example_free(&ex);

    REQUIRE(parse("{\"prompt\": \"Say hi\"}", CITER_FMT_GENERIC, &ex) == 0, "%s", citer_error());
    CHECK(streq(ex.prompt, "Say hi") && !ex.target && !ex.answer && !ex.id, "optional absent");
    citer_example_free(&ex);

    /* CITER's own training files: prompt, "cot", "answerKey". */
    REQUIRE(parse("{\"prompt\": \"P\", \"cot\": \"C\", \"answerKey\": \"26\"}", CITER_FMT_AUTO,
                  &ex) == 0,
            "%s", citer_error());
    CHECK(streq(ex.target, "C") && streq(ex.answer, "26"), "aliases: %s %s", S(ex.target),
          S(ex.answer));
    citer_example_free(&ex);

    /* Null id and empty target count as absent. */
    REQUIRE(parse("{\"prompt\": \"P\", \"target\": \"\", \"id\": null}", CITER_FMT_AUTO, &ex) == 0,
            "%s", citer_error());
    CHECK(!ex.target && !ex.id, "empty/null absent");
    citer_example_free(&ex);
}

static void test_autodetect(void)
{
    CHECK(citer_dataset_detect(cqa_line, strlen(cqa_line), 1) == CITER_FMT_MC, "mc");
    const char *m = "{\"problem\": \"p\", \"solution\": \"\\\\boxed{1}\"}";
    CHECK(citer_dataset_detect(m, strlen(m), 1) == CITER_FMT_MATH, "math");
    const char *g = "{\"prompt\": \"p\"}";
    CHECK(citer_dataset_detect(g, strlen(g), 1) == CITER_FMT_GENERIC, "generic");
    /* CITER's mc training items carry a pre-rendered "prompt" too: still mc. */
    const char *both = "{\"prompt\": \"x\", \"question\": \"q\", \"choices\": {\"text\": [\"a\"], "
                       "\"label\": [\"A\"]}, \"answerKey\": \"A\"}";
    CHECK(citer_dataset_detect(both, strlen(both), 1) == CITER_FMT_MC, "mc with prompt");
    const char *none = "{\"text\": \"hello\"}";
    CHECK(citer_dataset_detect(none, strlen(none), 4) == -1, "undetectable");
    CHECK(strstr(citer_error(), "line 4: cannot tell the item format") != NULL, "%s",
          citer_error());
    /* A question with a plain answer (no ####, no choices) is not guessed. */
    const char *qa = "{\"question\": \"q\", \"answer\": \"a\"}";
    CHECK(citer_dataset_detect(qa, strlen(qa), 1) == -1, "plain question/answer");
    /* Per-line detection through citer_dataset_parse. */
    citer_example ex;
    REQUIRE(parse(g, CITER_FMT_AUTO, &ex) == 0, "%s", citer_error());
    CHECK(ex.format == CITER_FMT_GENERIC, "generic line");
    citer_example_free(&ex);
    REQUIRE(parse(m, CITER_FMT_AUTO, &ex) == 0, "%s", citer_error());
    CHECK(ex.format == CITER_FMT_MATH, "math line");
    citer_example_free(&ex);
}

static void test_blank_lines(void)
{
    static const char *blanks[] = {"", " ", "\t \t", "\n", "\r\n", "   \r\n"};
    for (size_t i = 0; i < sizeof blanks / sizeof blanks[0]; i++) {
        citer_example ex;
        ex.prompt = (char *)"x";
        CHECK(citer_dataset_parse(blanks[i], strlen(blanks[i]), 1, CITER_FMT_AUTO, NULL, &ex) ==
                  1,
              "blank %zu", i);
        CHECK(ex.prompt == NULL, "zeroed");
    }
    /* A line with its newline still attached parses. */
    const char *l = "{\"prompt\": \"p\"}\r\n";
    citer_example ex;
    CHECK(citer_dataset_parse(l, strlen(l), 1, CITER_FMT_AUTO, NULL, &ex) == 0, "%s",
          citer_error());
    citer_example_free(&ex);
    /* Length, not NUL, ends the line. */
    CHECK(citer_dataset_parse("{\"prompt\": \"p\"}GARBAGE", 15, 1, CITER_FMT_AUTO, NULL, &ex) == 0,
          "%s", citer_error());
    citer_example_free(&ex);
}

static void test_malformed_json(void)
{
    expect_fail("hello", CITER_FMT_AUTO, NULL, 3, "line 3: invalid JSON");
    expect_fail("[1, 2]", CITER_FMT_AUTO, NULL, 3, "line 3: not a JSON object");
    expect_fail("\"just a string\"", CITER_FMT_MC, NULL, 3, "line 3: not a JSON object");
    expect_fail("42", CITER_FMT_AUTO, NULL, 3, "line 3: not a JSON object");
    expect_fail("{\"prompt\": \"p\"} x", CITER_FMT_AUTO, NULL, 5,
                "line 5: trailing garbage after the JSON value at byte 16");
    expect_fail("{\"prompt\": \"p\"}{\"prompt\": \"q\"}", CITER_FMT_AUTO, NULL, 5,
                "line 5: trailing garbage after the JSON value at byte 15");
    expect_fail("{\"prompt\": \"p\"", CITER_FMT_AUTO, NULL, 6, "line 6: truncated JSON");
    expect_fail("{\"prompt\": \"p\",}", CITER_FMT_AUTO, NULL, 7, "line 7: invalid JSON");
    expect_fail("{'prompt': 'p'}", CITER_FMT_AUTO, NULL, 7, "line 7: invalid JSON at byte 1");
    expect_fail("{'prompt': 1}", CITER_FMT_AUTO, NULL, 7, "line 7: invalid JSON at byte 1");
    expect_fail("{\"prompt\": \"it's\", \"x\": 'a'}", CITER_FMT_AUTO, NULL, 7,
                "line 7: invalid JSON at byte 24");
    expect_fail("{\"prompt\": \"\xff\xfe\"}", CITER_FMT_AUTO, NULL, 8, "line 8: invalid JSON");
    expect_fail("{\"prompt\": \"a\\u0000b\"}", CITER_FMT_AUTO, NULL, 9,
                "line 9: \"prompt\" contains a NUL character");
    const char nul_line[] = "{\"prompt\": \"a\0b\"}";
    citer_example ex;
    CHECK(citer_dataset_parse(nul_line, sizeof nul_line - 1, 2, CITER_FMT_AUTO, NULL, &ex) == -1,
          "raw NUL");
    CHECK(strstr(citer_error(), "line 2: NUL byte at byte 13") != NULL, "%s", citer_error());
    /* Deep nesting is refused, not recursed into. */
    char deep[2100];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"prompt\": \"p\", \"x\": ");
    for (int i = 0; i < 1000; i++) deep[n++] = '[';
    for (int i = 0; i < 1000; i++) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    expect_fail(deep, CITER_FMT_AUTO, NULL, 1, "line 1: invalid JSON");
}

static void test_malformed_items(void)
{
    /* The brief's messages, exactly. */
    expect_fail("{\"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 12, "line 12: missing key \"question\"");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 7,
                "line 7: choices.text and choices.label differ in length (2 and 1)");
    /* mc */
    expect_fail("{\"question\": \"q\", \"answerKey\": \"A\"}", CITER_FMT_MC, NULL, 2,
                "line 2: missing key \"choices\"");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}}",
                CITER_FMT_AUTO, NULL, 2, "line 2: missing key \"answerKey\"");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"]}, \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: missing key \"choices.label\"");
    expect_fail("{\"question\": 5, \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: \"question\" must be a string, not int");
    expect_fail("{\"question\": {\"text\": \"q\"}, \"choices\": {\"text\": [\"a\"], \"label\": "
                "[\"A\"]}, \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: missing key \"question.stem\"");
    expect_fail("{\"question\": \"q\", \"choices\": \"A. a\", \"answerKey\": \"A\"}", CITER_FMT_MC,
                NULL, 2, "line 2: \"choices\" must be an object");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": \"a\", \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: choices.text and choices.label must be arrays");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\", 3], \"label\": [\"A\", "
                "\"B\"]}, \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: \"choices.text[1]\" must be a string, not int");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [[1]]}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2,
                "line 2: \"choices.label[0]\" must be a string or a number, not array");
    expect_fail("{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: choices[0] must be an object, not string");
    expect_fail("{\"question\": \"q\", \"choices\": [{\"label\": \"A\"}], \"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: missing key \"choices[0].text\"");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [], \"label\": []}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_MC, NULL, 2, "line 2: \"choices\" is empty");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"F\"}",
                CITER_FMT_MC, NULL, 2, "line 2: answerKey \"F\" is not one of the choice labels");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": true}",
                CITER_FMT_MC, NULL, 2,
                "line 2: \"answerKey\" must be a string or a number, not boolean");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\", \"cot\": [\"x\"]}",
                CITER_FMT_MC, NULL, 2, "line 2: \"cot\" must be a string, not array");
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\", \"id\": {}}",
                CITER_FMT_MC, NULL, 2, "line 2: \"id\" must be a string or a number, not object");
    /* math */
    expect_fail("{\"solution\": \"\\\\boxed{1}\"}", CITER_FMT_MATH, NULL, 4,
                "line 4: missing key \"problem\"");
    expect_fail("{\"problem\": \"p\", \"solution\": \"The answer is 5.\"}", CITER_FMT_AUTO, NULL, 4,
                "line 4: no answer: \"solution\" has no \\boxed{...}");
    expect_fail("{\"problem\": \"p\", \"solution\": \"\\\\boxed{}\"}", CITER_FMT_MATH, NULL, 4,
                "line 4: no answer");
    expect_fail("{\"problem\": \"p\", \"solution\": \"\\\\boxed{5\"}", CITER_FMT_MATH, NULL, 4,
                "line 4: no answer");
    expect_fail("{\"problem\": \"p\"}", CITER_FMT_MATH, NULL, 4,
                "line 4: missing key \"solution\" (or \"answer\")");
    expect_fail("{\"problem\": [\"p\"], \"solution\": \"\\\\boxed{1}\"}", CITER_FMT_MATH, NULL, 4,
                "line 4: \"problem\" must be a string, not array");
    expect_fail("{\"problem\": \"p\", \"solution\": 5}", CITER_FMT_MATH, NULL, 4,
                "line 4: \"solution\" must be a string, not int");
    expect_fail("{\"problem\": \"p\", \"solution\": \"no box\", \"answer\": null}",
                CITER_FMT_MATH, NULL, 4, "line 4: no answer");
    /* generic */
    expect_fail("{\"target\": \"t\"}", CITER_FMT_GENERIC, NULL, 9, "line 9: missing key \"prompt\"");
    expect_fail("{\"prompt\": 1}", CITER_FMT_GENERIC, NULL, 9,
                "line 9: \"prompt\" must be a string, not int");
    expect_fail("{\"prompt\": \"p\", \"target\": false}", CITER_FMT_GENERIC, NULL, 9,
                "line 9: \"target\" must be a string, not boolean");
    /* a forced format that does not fit the item */
    expect_fail(cqa_line, CITER_FMT_MATH, NULL, 11,
                "line 11: missing key \"solution\" (or \"answer\")");
    expect_fail(cqa_line, CITER_FMT_GENERIC, NULL, 11, "line 11: missing key \"prompt\"");
    expect_fail("{}", CITER_FMT_AUTO, NULL, 11, "line 11: cannot tell the item format");
    citer_example ex;
    CHECK(citer_dataset_parse("{}", 2, 1, 7, NULL, &ex) == -1, "bad format number");
}

static void test_template_errors(void)
{
    expect_tpl_error("[prompt]\nQuestion: {questoin}\n", "line 2: unknown placeholder {questoin}");
    expect_tpl_error("# c\n\n[prompt]\nok\nsee {Question}\n",
                     "line 5: '{' does not start a placeholder {name} (write {{ for a literal "
                     "brace)");
    expect_tpl_error("[prompt]\nset {a, b}\n",
                     "line 2: '{' does not start a placeholder {name} (write {{ for a literal "
                     "brace)");
    expect_tpl_error("[prompt]\nopen {question\n",
                     "line 2: '{' does not start a placeholder {name} (write {{ for a literal "
                     "brace)");
    expect_tpl_error("[prompt]\n\\boxed{}\n",
                     "line 2: '{' does not start a placeholder {name} (write {{ for a literal "
                     "brace)");
    expect_tpl_error("[prompt]\nx } y\n", "line 2: lone '}' (write }} for a literal brace)");
    expect_tpl_error("[prompt]\n{}\n",
                     "line 2: '{' does not start a placeholder {name} (write {{ for a literal "
                     "brace)");
    expect_tpl_error("Question: {question}\n[prompt]\n",
                     "line 1: text before the first section (expected [prompt], [target], "
                     "[target-fallback] or [options])");
    expect_tpl_error("[target]\n{cot}\n", "no [prompt] section");
    expect_tpl_error("", "no [prompt] section");
    expect_tpl_error("[prompt]\na\n[target]\nb\n[prompt]\nc\n",
                     "line 5: section [prompt] appears twice (first at line 1)");
    expect_tpl_error("[options]\n[prompt]\na\n[options]\n",
                     "line 4: section [options] appears twice (first at line 1)");
    expect_tpl_error("[options]\nformat = mc\nstyle = x\n[prompt]\na\n",
                     "line 3: unknown option \"style\" (known: format, chat, system)");
    expect_tpl_error("[options]\nformat mc\n[prompt]\na\n",
                     "line 2: expected \"key = value\" in [options]");
    expect_tpl_error("[options]\nformat = mcq\n[prompt]\na\n",
                     "line 2: unknown format \"mcq\" (known: mc, math, generic)");
    expect_tpl_error("[options]\nformat = auto\n[prompt]\na\n",
                     "line 2: unknown format \"auto\" (known: mc, math, generic)");
    expect_tpl_error("[options]\nchat = llama\n[prompt]\na\n",
                     "line 2: unknown chat style \"llama\" (known: none, chatml)");
    expect_tpl_error("[options]\nformat = mc\nformat = math\n[prompt]\na\n",
                     "line 3: option \"format\" given twice (first at line 2)");
    expect_tpl_error("[options]\n\nsystem = Be brief.\n[prompt]\na\n",
                     "line 3: option \"system\" needs chat = chatml");
    /* A declared format checks placeholders at load time, with the line. */
    expect_tpl_error("[prompt]\nQ: {question}\n[target]\n\n{solution}\n[options]\nformat = mc\n",
                     "line 5: placeholder {solution} is not available for mc items");
    expect_tpl_error("[options]\nformat = math\n[prompt]\n{choices}\n",
                     "line 4: placeholder {choices} is not available for math items");
    const char bad[] = "[prompt]\na\0b\n";
    CHECK(citer_template_parse(bad, sizeof bad - 1) == NULL, "NUL in template");
    CHECK(streq(citer_error(), "line 2: NUL byte in template"), "%s", citer_error());
    CHECK(citer_template_load("/nonexistent/citer/t.tpl") == NULL, "missing file");
    CHECK(citer_template_builtin("nope") == NULL, "unknown builtin");
    CHECK(strstr(citer_error(), "unknown built-in template \"nope\"") != NULL, "%s",
          citer_error());
    CHECK(citer_template_default(CITER_FMT_AUTO) == NULL, "no default for auto");
}

static void render_one(const citer_template *t, const char *line, char **prompt, char **target)
{
    citer_example ex;
    *prompt = *target = NULL;
    if (citer_dataset_parse(line, strlen(line), 1, CITER_FMT_AUTO, t, &ex) != 0) {
        CHECK(0, "parse %s: %s", line, citer_error());
        return;
    }
    *prompt = ex.prompt;
    *target = ex.target;
    ex.prompt = ex.target = NULL;
    citer_example_free(&ex);
}

static void test_template_render(void)
{
    /* Escapes, {nl}, '#' kept inside sections, trailing empty lines dropped, trailing spaces
     * kept, CRLF lines, [target] falling back when the item has no reasoning. */
    const char *text = "# leading comment\r\n"
                       "\r\n"
                       "[prompt]\r\n"
                       "# Task {{{id}}}\r\n"
                       "{question} -> }}{{\r\n"
                       "{choices}\r\n"
                       "Answer: \r\n"
                       "\r\n"
                       "\r\n"
                       "[target]\r\n"
                       "Reasoning: {cot}{nl}\r\n"
                       "[target-fallback]\r\n"
                       "The answer is ({answer}) {answer_text}.\r\n";
    citer_template *t = tpl_from(text);
    REQUIRE(t, "%s", citer_error());
    CHECK(citer_template_format(t) == CITER_FMT_AUTO, "no declared format");
    CHECK(citer_template_has_target(t), "has target");
    char *p, *g;
    render_one(t,
               "{\"id\": \"q1\", \"question\": \"Why?\", \"choices\": {\"text\": [\"x\", \"y\"], "
               "\"label\": [\"A\", \"B\"]}, \"answerKey\": \"B\"}",
               &p, &g);
    CHECK(streq(p, "# Task {q1}\nWhy? -> }{\nA. x\nB. y\nAnswer: "), "prompt [%s]", S(p));
    CHECK(streq(g, "The answer is (B) y."), "fallback target [%s]", S(g));
    free(p);
    free(g);
    render_one(t,
               "{\"id\": \"q2\", \"question\": \"{q}\", \"choices\": {\"text\": [\"{x}\"], "
               "\"label\": [\"A\"]}, \"answerKey\": \"A\", \"explanation\": \"Because.\"}",
               &p, &g);
    /* Values are inserted as they are, braces included. */
    CHECK(streq(p, "# Task {q2}\n{q} -> }{\nA. {x}\nAnswer: "), "prompt [%s]", S(p));
    CHECK(streq(g, "Reasoning: Because.\n"), "target [%s]", S(g));
    free(p);
    free(g);
    /* A [prompt] needing an absent optional field is an error naming the template line. */
    expect_fail("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                "\"answerKey\": \"A\"}",
                CITER_FMT_AUTO, t, 6, "line 6: template line 4: the item has no value for {id}");
    /* An undeclared template used with another format's item. */
    expect_fail("{\"id\": \"m\", \"problem\": \"p\", \"answer\": 1}", CITER_FMT_AUTO, t, 2,
                "line 2: template line 5: the item has no value for {question}");
    citer_template_free(t);

    /* No target sections: no target. A header with trailing blanks still counts. */
    t = tpl_from("[prompt]  \n{problem}\n");
    REQUIRE(t, "%s", citer_error());
    CHECK(!citer_template_has_target(t), "no target");
    render_one(t, "{\"problem\": \"1+1\", \"solution\": \"\\\\boxed{2}\"}", &p, &g);
    CHECK(streq(p, "1+1") && g == NULL, "prompt [%s] target [%s]", S(p), S(g));
    free(p);
    free(g);
    citer_template_free(t);

    /* An empty section renders as empty text; "[Note]" lines are text. */
    t = tpl_from("[prompt]\n[Note]\n{prompt}\n[target]\n");
    REQUIRE(t, "%s", citer_error());
    render_one(t, "{\"prompt\": \"hi\", \"target\": \"ignored\"}", &p, &g);
    CHECK(streq(p, "[Note]\nhi") && streq(g, ""), "prompt [%s] target [%s]", S(p), S(g));
    free(p);
    free(g);
    citer_template_free(t);

    /* A declared format refuses items of another format. */
    t = tpl_from("[options]\nformat = generic\n[prompt]\n{prompt}\n");
    REQUIRE(t, "%s", citer_error());
    CHECK(citer_template_format(t) == CITER_FMT_GENERIC, "declared");
    expect_fail("{\"prompt\": \"p\"}", CITER_FMT_MATH, t, 3,
                "line 3: the template is for generic items, this is a math item");
    /* ...and AUTO takes the template's format without guessing: an mc-looking item is
     * read as generic. */
    render_one(t, "{\"prompt\": \"p\", \"choices\": 1}", &p, &g);
    CHECK(streq(p, "p"), "prompt [%s]", S(p));
    free(p);
    free(g);
    citer_template_free(t);
}

static void test_template_chat(void)
{
    citer_template *t = tpl_from("[options]\n"
                                 "chat = chatml\n"
                                 "system = You are a careful solver.\n"
                                 "format = math\n"
                                 "[prompt]\n"
                                 "Problem: {problem}\n"
                                 "[target]\n"
                                 "{solution}\n");
    REQUIRE(t, "%s", citer_error());
    char *p, *g;
    render_one(t, "{\"problem\": \"2x=4\", \"solution\": \"x=\\\\boxed{2}\"}", &p, &g);
    CHECK(streq(p, "<|im_start|>system\nYou are a careful solver.<|im_end|>\n"
                   "<|im_start|>user\nProblem: 2x=4<|im_end|>\n<|im_start|>assistant\n"),
          "prompt [%s]", S(p));
    CHECK(streq(g, "x=\\boxed{2}"), "target [%s]", S(g));
    free(p);
    free(g);
    citer_template_free(t);

    t = tpl_from("[options]\nchat = chatml\n[prompt]\n{prompt}\n");
    REQUIRE(t, "%s", citer_error());
    render_one(t, "{\"prompt\": \"Hi\"}", &p, &g);
    CHECK(streq(p, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "prompt [%s]",
          S(p));
    free(p);
    free(g);
    citer_template_free(t);

    /* The example file. */
    t = citer_template_load("examples/templates/mc-chatml.tpl");
    if (!t) SKIP("examples/templates/mc-chatml.tpl not found (run from the repository root)");
    render_one(t, cqa_line, &p, &g);
    char want[2048];
    snprintf(want, sizeof want,
             "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n%s"
             "<|im_end|>\n<|im_start|>assistant\n",
             cqa_prompt);
    CHECK(streq(p, want), "prompt [%s]", S(p));
    free(p);
    free(g);
    citer_template_free(t);
}

static void test_builtin_variants(void)
{
    citer_template *t = citer_template_builtin("mc-train");
    REQUIRE(t, "%s", citer_error());
    char *p, *g;
    render_one(t, cqa_line, &p, &g);
    /* As stored in CITER's datasets/cqa/train_mlp.json for this question. */
    CHECK(streq(p, "Question: If I needed help with answering questions, what would help me?\n"
                   "Choices:\nA. getting tired\nB. better grade\nC. sharing information\n"
                   "D. interesting\nE. teaching\n\nPlease format your response in the "
                   "following way:\n[Explanation]. Therefore, the answer is answer (label).\n"
                   "Ensure the final sentence includes the answer followed by the label in "
                   "parentheses.\n\nAnswer and Reasoning:"),
          "prompt [%s]", S(p));
    free(p);
    free(g);
    citer_template_free(t);

    t = citer_template_builtin("math-train");
    REQUIRE(t, "%s", citer_error());
    render_one(t, "{\"problem\": \"How old is Jared?\", \"solution\": \"\\\\boxed{48}\"}", &p, &g);
    CHECK(streq(p, "Solve the following math problem step by step. Ensure all reasoning is "
                   "shown clearly in LaTeX format, and you should enclose your answer with "
                   "\\boxed{}.\nQuestion: How old is Jared?\nSolution: "),
          "prompt [%s]", S(p));
    free(p);
    free(g);
    citer_template_free(t);

    static const char *names[] = {"mc", "math", "generic", "mc-train", "math-train"};
    for (size_t i = 0; i < 5; i++) {
        t = citer_template_builtin(names[i]);
        CHECK(t != NULL, "builtin %s: %s", names[i], citer_error());
        citer_template_free(t);
    }
    for (int f = CITER_FMT_MC; f <= CITER_FMT_GENERIC; f++) {
        t = citer_template_default(f);
        CHECK(t && citer_template_format(t) == f, "default %d", f);
        citer_template_free(t);
    }
}

/* The files under examples/templates/ are the built-in templates, byte for byte. */
static void test_builtin_files(void)
{
    static const char *names[] = {"mc", "math", "generic", "mc-train", "math-train"};
    for (size_t i = 0; i < 5; i++) {
        char path[256];
        snprintf(path, sizeof path, "examples/templates/%s.tpl", names[i]);
        size_t len;
        char *text = citer_read_file(path, &len);
        if (!text) SKIP("examples/templates/ not found (run from the repository root)");
        const char *want = citer_template_builtin_text(names[i]);
        CHECK(want && len == strlen(want) && memcmp(text, want, len) == 0,
              "%s differs from the built-in template", path);
        free(text);
    }
}

static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fwrite(text, 1, len, f);
    fclose(f);
    return path;
}

static void test_reader(void)
{
    /* BOM, CRLF, blank lines; the first item fixes the format for the file. */
    const char text[] = "\xEF\xBB\xBF{\"id\": 1, \"problem\": \"a\", \"solution\": \"\\\\boxed{1}\"}\r\n"
                        "\r\n"
                        "   \n"
                        "{\"id\": 2, \"question\": \"b\", \"answer\": \"x\\n#### 2\"}\n"
                        "{\"id\": 3, \"problem\": \"c\", \"answer\": 3}";
    const char *path = write_file("r.jsonl", text, sizeof text - 1);
    REQUIRE(path, "write");
    citer_dataset_reader *r = citer_dataset_open(path, CITER_FMT_AUTO, NULL);
    REQUIRE(r, "%s", citer_error());
    CHECK(citer_dataset_reader_format(r) == CITER_FMT_AUTO, "format unknown before reading");
    static const char *ids[] = {"1", "2", "3"}, *answers[] = {"1", "2", "3"};
    static const long lines[] = {1, 4, 5};
    citer_example ex;
    int n = 0, rc;
    while ((rc = citer_dataset_next(r, &ex)) == 1) {
        if (n < 3) {
            CHECK(streq(ex.id, ids[n]) && streq(ex.answer, answers[n]), "item %d: %s %s", n,
                  S(ex.id), S(ex.answer));
            CHECK(citer_dataset_lineno(r) == lines[n], "line %ld", citer_dataset_lineno(r));
            CHECK(ex.format == CITER_FMT_MATH, "format");
        }
        n++;
        citer_example_free(&ex);
    }
    CHECK(rc == 0 && n == 3, "rc %d n %d: %s", rc, n, rc < 0 ? citer_error() : "");
    CHECK(citer_dataset_reader_format(r) == CITER_FMT_MATH, "format fixed");
    citer_dataset_close(r);

    /* A later line of another shape is an error naming its line and key. */
    const char mixed[] = "{\"prompt\": \"p\"}\n\n{\"problem\": \"q\", \"answer\": 1}\n";
    path = write_file("m.jsonl", mixed, sizeof mixed - 1);
    r = citer_dataset_open(path, CITER_FMT_AUTO, NULL);
    REQUIRE(r, "%s", citer_error());
    CHECK(citer_dataset_next(r, &ex) == 1, "first");
    citer_example_free(&ex);
    CHECK(citer_dataset_next(r, &ex) == -1, "second fails");
    CHECK(streq(citer_error(), "line 3: missing key \"prompt\""), "%s", citer_error());
    citer_dataset_close(r);

    /* A given template and format. */
    citer_template *t = tpl_from("[options]\nformat = mc\n[prompt]\n{question}|{choices}\n");
    REQUIRE(t, "%s", citer_error());
    const char mc[] = "{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, "
                      "\"answerKey\": \"A\"}\nnot json\n";
    path = write_file("mc.jsonl", mc, sizeof mc - 1);
    r = citer_dataset_open(path, CITER_FMT_AUTO, t);
    REQUIRE(r, "%s", citer_error());
    CHECK(citer_dataset_reader_format(r) == CITER_FMT_MC, "from template");
    CHECK(citer_dataset_next(r, &ex) == 1, "item");
    CHECK(streq(ex.prompt, "q|A. a") && ex.target == NULL, "prompt %s", S(ex.prompt));
    citer_example_free(&ex);
    CHECK(citer_dataset_next(r, &ex) == -1, "bad line");
    CHECK(strstr(citer_error(), "line 2: invalid JSON") != NULL, "%s", citer_error());
    citer_dataset_close(r);
    citer_template_free(t);

    /* Empty file; missing file. */
    path = write_file("e.jsonl", "\n\n", 2);
    r = citer_dataset_open(path, CITER_FMT_AUTO, NULL);
    REQUIRE(r, "%s", citer_error());
    CHECK(citer_dataset_next(r, &ex) == 0, "empty");
    citer_dataset_close(r);
    CHECK(citer_dataset_open("/nonexistent/citer/d.jsonl", CITER_FMT_AUTO, NULL) == NULL,
          "missing");
    CHECK(citer_dataset_open(path, 9, NULL) == NULL, "bad format");
}

/* The sample files shipped for the manual pages. */
static void test_sample_files(void)
{
    static const struct {
        const char *path;
        const char *answers[5];
        int n;
    } files[] = {
        {"examples/data/mc-sample.jsonl", {"B", "C", "3", "A"}, 4},
        {"examples/data/math-sample.jsonl", {"18", "\\frac{1}{2}", "2", "11", "8"}, 5},
    };
    for (int i = 0; i < 2; i++) {
        citer_dataset_reader *r = citer_dataset_open(files[i].path, CITER_FMT_AUTO, NULL);
        if (!r) SKIP("examples/data/ not found (run from the repository root)");
        citer_example ex;
        int n = 0, rc;
        while ((rc = citer_dataset_next(r, &ex)) == 1) {
            if (n < files[i].n)
                CHECK(streq(ex.answer, files[i].answers[n]), "%s item %d: %s", files[i].path, n,
                      S(ex.answer));
            if (i == 0) CHECK(ex.target != NULL, "%s item %d has a target", files[i].path, n);
            n++;
            citer_example_free(&ex);
        }
        CHECK(rc == 0 && n == files[i].n, "%s: rc %d n %d %s", files[i].path, rc, n,
              rc < 0 ? citer_error() : "");
        citer_dataset_close(r);
    }
}

/* Corrupted lines and templates (byte changes, cuts, inserted braces and quotes, from a fixed
 * seed) never crash, and every failure is a one-line message. */
static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(rng_state >> 33) % n;
}

static void mutate(char *buf, size_t *len, size_t cap)
{
    static const char pool[] = "{}[]\"\\:,'0 \n\xff\xc3#";
    int edits = 1 + (int)rnd(4);
    for (int e = 0; e < edits && *len > 0; e++) {
        size_t at = rnd((unsigned)*len);
        switch (rnd(4)) {
        case 0: buf[at] = pool[rnd(sizeof pool - 1)]; break;
        case 1: *len = at; break;
        case 2:
            if (*len + 1 < cap) {
                memmove(buf + at + 1, buf + at, *len - at);
                buf[at] = pool[rnd(sizeof pool - 1)];
                (*len)++;
            }
            break;
        default:
            memmove(buf + at, buf + at + 1, *len - at - 1);
            (*len)--;
        }
    }
}

static void test_corrupted_input(void)
{
    static const char *seeds[] = {
        "{\"id\": \"x\", \"question\": \"q?\", \"choices\": {\"text\": [\"a\", \"b\"], "
        "\"label\": [\"A\", \"B\"]}, \"answerKey\": \"B\", \"cot\": \"c\"}",
        "{\"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"t\", \"label\": 1}]}, "
        "\"answerKey\": 1}",
        "{\"problem\": \"p\", \"solution\": \"\\\\boxed{\\\\frac{1}{2}} \\\\{\", \"answer\": 3}",
        "{\"question\": \"q\", \"answer\": \"w\\n#### 4\"}",
        "{\"prompt\": \"p\\u00e9\", \"target\": \"t\", \"answer\": \"a\"}",
    };
    char buf[512];
    int bad_msgs = 0;
    for (int round = 0; round < 4000; round++) {
        const char *seed = seeds[round % 5];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        mutate(buf, &len, sizeof buf);
        for (int f = CITER_FMT_AUTO; f <= CITER_FMT_GENERIC; f++) {
            citer_example ex;
            int rc = citer_dataset_parse(buf, len, 1, f, NULL, &ex);
            if (rc == 0) {
                CHECK(ex.prompt && ex.format >= CITER_FMT_MC, "ok without prompt");
                citer_example_free(&ex);
            } else if (rc < 0) {
                const char *e = citer_error();
                if (strncmp(e, "line 1: ", 8) != 0 || strchr(e, '\n')) bad_msgs++;
            }
        }
    }
    CHECK(bad_msgs == 0, "%d messages not of the form \"line 1: ...\"", bad_msgs);

    const char *tseed = citer_template_builtin_text("mc");
    for (int round = 0; round < 2000; round++) {
        size_t len = strlen(tseed);
        char *t = malloc(len + 16);
        memcpy(t, tseed, len);
        mutate(t, &len, len + 16);
        citer_template *tp = citer_template_parse(t, len);
        if (tp) {
            citer_example ex;
            if (citer_dataset_parse(seeds[0], strlen(seeds[0]), 1, CITER_FMT_AUTO, tp, &ex) == 0)
                citer_example_free(&ex);
            citer_template_free(tp);
        } else {
            CHECK(strchr(citer_error(), '\n') == NULL, "one-line message: %s", citer_error());
        }
        free(t);
    }
}

int main(void)
{
    (void)t_fixture; /* every case here is fixture-free */
    RUN(test_format_names);
    RUN(test_last_boxed);
    RUN(test_mc_commonsenseqa);
    RUN(test_mc_reasoning_fields);
    RUN(test_mc_arc_stem);
    RUN(test_mc_unicode);
    RUN(test_math);
    RUN(test_math_gsm8k);
    RUN(test_generic);
    RUN(test_autodetect);
    RUN(test_blank_lines);
    RUN(test_malformed_json);
    RUN(test_malformed_items);
    RUN(test_template_errors);
    RUN(test_template_render);
    RUN(test_template_chat);
    RUN(test_builtin_variants);
    RUN(test_builtin_files);
    RUN(test_reader);
    RUN(test_sample_files);
    RUN(test_corrupted_input);
    return t_exit();
}
