/* template: parse prompt templates into literal/placeholder parts and render them per item. */
#include "template.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- formats and fields ---- */

static const char *const format_names[] = {"auto", "mc", "math", "generic"};

const char *citer_dataset_format_name(int format)
{
    if (format < 0 || format > CITER_FMT_GENERIC) return NULL;
    return format_names[format];
}

int citer_dataset_format_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i <= CITER_FMT_GENERIC; i++)
        if (strcmp(name, format_names[i]) == 0) return i;
    return -1;
}

static const char *const field_names[CITER_F_COUNT] = {
    [CITER_F_ID] = "id",
    [CITER_F_ANSWER] = "answer",
    [CITER_F_QUESTION] = "question",
    [CITER_F_CHOICES] = "choices",
    [CITER_F_ANSWER_TEXT] = "answer_text",
    [CITER_F_COT] = "cot",
    [CITER_F_PROBLEM] = "problem",
    [CITER_F_SOLUTION] = "solution",
    [CITER_F_PROMPT] = "prompt",
    [CITER_F_TARGET] = "target",
};

const char *citer_field_name(int field)
{
    return field >= 0 && field < CITER_F_COUNT ? field_names[field] : NULL;
}

int citer_field_in_format(int field, int format)
{
    switch (field) {
    case CITER_F_ID:
    case CITER_F_ANSWER:
        return format >= CITER_FMT_MC && format <= CITER_FMT_GENERIC;
    case CITER_F_QUESTION:
    case CITER_F_CHOICES:
    case CITER_F_ANSWER_TEXT:
    case CITER_F_COT:
        return format == CITER_FMT_MC;
    case CITER_F_PROBLEM:
    case CITER_F_SOLUTION:
        return format == CITER_FMT_MATH;
    case CITER_F_PROMPT:
    case CITER_F_TARGET:
        return format == CITER_FMT_GENERIC;
    }
    return 0;
}

static int field_from_name(const char *s, size_t n)
{
    for (int i = 0; i < CITER_F_COUNT; i++)
        if (strlen(field_names[i]) == n && memcmp(field_names[i], s, n) == 0) return i;
    return -1;
}

/* ---- the compiled template ---- */

enum { SEC_PROMPT, SEC_TARGET, SEC_FALLBACK, SEC_TEXT_COUNT, SEC_OPTIONS = SEC_TEXT_COUNT };
static const char *const section_names[] = {"prompt", "target", "target-fallback", "options"};

typedef struct {
    int field;  /* enum citer_field, or -1 for literal text */
    char *text; /* literal text (field == -1) */
    size_t len;
    int line;   /* template line it came from */
} tpl_part;

typedef struct {
    int present;
    int line; /* header line */
    tpl_part *parts;
    size_t nparts, cap;
} tpl_section;

enum { CHAT_NONE, CHAT_CHATML };

struct citer_template {
    int format; /* declared format, CITER_FMT_AUTO if none */
    int chat;
    char *system; /* NULL when not given */
    tpl_section sec[SEC_TEXT_COUNT];
};

void citer_template_free(citer_template *t)
{
    if (!t) return;
    for (int s = 0; s < SEC_TEXT_COUNT; s++) {
        for (size_t i = 0; i < t->sec[s].nparts; i++) free(t->sec[s].parts[i].text);
        free(t->sec[s].parts);
    }
    free(t->system);
    free(t);
}

int citer_template_format(const citer_template *t) { return t->format; }

int citer_template_has_target(const citer_template *t)
{
    return t->sec[SEC_TARGET].present || t->sec[SEC_FALLBACK].present;
}

static void add_part(tpl_section *s, int field, const char *text, size_t len, int line)
{
    if (field < 0 && len == 0) return;
    /* Adjacent literals merge, keeping the part list short. */
    if (field < 0 && s->nparts && s->parts[s->nparts - 1].field < 0) {
        tpl_part *p = &s->parts[s->nparts - 1];
        p->text = xrealloc(p->text, p->len + len + 1);
        memcpy(p->text + p->len, text, len);
        p->len += len;
        p->text[p->len] = 0;
        return;
    }
    xgrow((void **)&s->parts, &s->cap, s->nparts + 1, sizeof *s->parts);
    tpl_part *p = &s->parts[s->nparts++];
    p->field = field;
    p->text = field < 0 ? xstrndup(text, len) : NULL;
    p->len = field < 0 ? len : 0;
    p->line = line;
}

/* Compile one line of section text into parts. 0 ok, -1 error. */
static int compile_line(tpl_section *s, const char *l, size_t n, int line)
{
    size_t lit = 0; /* start of pending literal text */
    for (size_t i = 0; i < n;) {
        if (l[i] == '}') {
            if (i + 1 < n && l[i + 1] == '}') {
                add_part(s, -1, l + lit, i + 1 - lit, line);
                i += 2;
                lit = i;
                continue;
            }
            citer_set_error("line %d: lone '}' (write }} for a literal brace)", line);
            return -1;
        }
        if (l[i] != '{') {
            i++;
            continue;
        }
        if (i + 1 < n && l[i + 1] == '{') {
            add_part(s, -1, l + lit, i + 1 - lit, line);
            i += 2;
            lit = i;
            continue;
        }
        size_t j = i + 1;
        while (j < n && ((l[j] >= 'a' && l[j] <= 'z') || l[j] == '_')) j++;
        if (j == i + 1 || j >= n || l[j] != '}') {
            citer_set_error("line %d: '{' does not start a placeholder {name} "
                            "(write {{ for a literal brace)", line);
            return -1;
        }
        add_part(s, -1, l + lit, i - lit, line);
        const char *name = l + i + 1;
        size_t nlen = j - i - 1;
        if (nlen == 2 && memcmp(name, "nl", 2) == 0) {
            add_part(s, -1, "\n", 1, line);
        } else {
            int f = field_from_name(name, nlen);
            if (f < 0) {
                citer_set_error("line %d: unknown placeholder {%.*s}", line, (int)nlen, name);
                return -1;
            }
            add_part(s, f, NULL, 0, line);
        }
        i = j + 1;
        lit = i;
    }
    add_part(s, -1, l + lit, n - lit, line);
    return 0;
}

typedef struct {
    const char *text;
    size_t len;
    int line;
} src_line;

/* Compile a text section from its lines, dropping trailing empty lines. */
static int compile_section(tpl_section *s, const src_line *lines, size_t n)
{
    while (n > 0 && lines[n - 1].len == 0) n--;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) add_part(s, -1, "\n", 1, lines[i].line);
        if (compile_line(s, lines[i].text, lines[i].len, lines[i].line) < 0) return -1;
    }
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) (*s)++, (*n)--;
    while (*n && is_space((*s)[*n - 1])) (*n)--;
}

/* Which section a header line opens, or -1 when the line is not a header. */
static int header_of(const char *l, size_t n)
{
    while (n && is_space(l[n - 1])) n--;
    if (n < 3 || l[0] != '[' || l[n - 1] != ']') return -1;
    for (int s = 0; s <= SEC_OPTIONS; s++)
        if (strlen(section_names[s]) == n - 2 && memcmp(section_names[s], l + 1, n - 2) == 0)
            return s;
    return -1;
}

static int parse_option(citer_template *t, const char *l, size_t n, int line, int *seen)
{
    trim(&l, &n);
    if (n == 0 || l[0] == '#') return 0;
    const char *eq = memchr(l, '=', n);
    if (!eq) {
        citer_set_error("line %d: expected \"key = value\" in [options]", line);
        return -1;
    }
    const char *k = l, *v = eq + 1;
    size_t kn = (size_t)(eq - l), vn = n - kn - 1;
    trim(&k, &kn);
    trim(&v, &vn);
    static const char *const keys[] = {"format", "chat", "system"};
    int key = -1;
    for (int i = 0; i < 3; i++)
        if (strlen(keys[i]) == kn && memcmp(keys[i], k, kn) == 0) key = i;
    if (key < 0) {
        citer_set_error("line %d: unknown option \"%.*s\" (known: format, chat, system)", line,
                        (int)kn, k);
        return -1;
    }
    if (seen[key]) {
        citer_set_error("line %d: option \"%s\" given twice (first at line %d)", line,
                        keys[key], seen[key]);
        return -1;
    }
    seen[key] = line;
    char *val = xstrndup(v, vn);
    int rc = 0;
    if (key == 0) {
        int f = citer_dataset_format_from_name(val);
        if (f <= CITER_FMT_AUTO) {
            citer_set_error("line %d: unknown format \"%s\" (known: mc, math, generic)", line,
                            val);
            rc = -1;
        } else {
            t->format = f;
        }
    } else if (key == 1) {
        if (strcmp(val, "none") == 0) {
            t->chat = CHAT_NONE;
        } else if (strcmp(val, "chatml") == 0) {
            t->chat = CHAT_CHATML;
        } else {
            citer_set_error("line %d: unknown chat style \"%s\" (known: none, chatml)", line,
                            val);
            rc = -1;
        }
    } else {
        t->system = val;
        val = NULL;
    }
    free(val);
    return rc;
}

citer_template *citer_template_parse(const char *text, size_t len)
{
    citer_template *t = xcalloc(1, sizeof *t);
    src_line *lines = NULL;
    size_t nlines = 0, cap = 0;
    int cur = -1, lineno = 0, options_line = 0;
    int seen[3] = {0, 0, 0};
    const char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 byte order mark */

    while (p < end || cur >= 0) {
        const char *l = p;
        size_t n = 0;
        int at_end = p >= end;
        if (!at_end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            p = nl ? nl + 1 : end;
            lineno++;
            if (n && l[n - 1] == '\r') n--;
            if (memchr(l, 0, n)) {
                citer_set_error("line %d: NUL byte in template", lineno);
                goto fail;
            }
        }
        int h = at_end ? SEC_OPTIONS + 1 : header_of(l, n);
        if (h >= 0) {
            /* A header (or the end) closes the text section being collected. */
            if (cur >= 0 && cur < SEC_TEXT_COUNT &&
                compile_section(&t->sec[cur], lines, nlines) < 0)
                goto fail;
            nlines = 0;
            if (at_end) break;
            if (h < SEC_TEXT_COUNT && t->sec[h].present) {
                citer_set_error("line %d: section [%s] appears twice (first at line %d)",
                                lineno, section_names[h], t->sec[h].line);
                goto fail;
            }
            if (h == SEC_OPTIONS) {
                if (options_line) {
                    citer_set_error("line %d: section [options] appears twice (first at line %d)",
                                    lineno, options_line);
                    goto fail;
                }
                options_line = lineno;
            }
            if (h < SEC_TEXT_COUNT) {
                t->sec[h].present = 1;
                t->sec[h].line = lineno;
            }
            cur = h;
            continue;
        }
        if (cur < 0) {
            size_t m = n;
            const char *s = l;
            trim(&s, &m);
            if (m == 0 || s[0] == '#') continue;
            citer_set_error("line %d: text before the first section "
                            "(expected [prompt], [target], [target-fallback] or [options])",
                            lineno);
            goto fail;
        }
        if (cur == SEC_OPTIONS) {
            if (parse_option(t, l, n, lineno, seen) < 0) goto fail;
            continue;
        }
        xgrow((void **)&lines, &cap, nlines + 1, sizeof *lines);
        lines[nlines++] = (src_line){l, n, lineno};
    }
    free(lines);
    lines = NULL;

    if (!t->sec[SEC_PROMPT].present) {
        citer_set_error("no [prompt] section");
        goto fail;
    }
    if (t->system && t->chat == CHAT_NONE) {
        citer_set_error("line %d: option \"system\" needs chat = chatml", seen[2]);
        goto fail;
    }
    /* With a declared format, every placeholder must be one that format's items carry. */
    if (t->format != CITER_FMT_AUTO) {
        for (int s = 0; s < SEC_TEXT_COUNT; s++)
            for (size_t i = 0; i < t->sec[s].nparts; i++) {
                const tpl_part *pt = &t->sec[s].parts[i];
                if (pt->field >= 0 && !citer_field_in_format(pt->field, t->format)) {
                    citer_set_error("line %d: placeholder {%s} is not available for %s items",
                                    pt->line, field_names[pt->field],
                                    format_names[t->format]);
                    goto fail;
                }
            }
    }
    return t;
fail:
    free(lines);
    citer_template_free(t);
    return NULL;
}

citer_template *citer_template_load(const char *path)
{
    size_t len;
    char *text = citer_read_file(path, &len);
    if (!text) return NULL;
    citer_template *t = citer_template_parse(text, len);
    free(text);
    return t;
}

/* ---- rendering ---- */

typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    xgrow((void **)&b->s, &b->cap, b->n + n + 1, 1);
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_adds(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* The first part whose field the item lacks, or NULL when the section can be rendered. */
static const tpl_part *missing_field(const tpl_section *s, const char *const *v)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].field >= 0 && !v[s->parts[i].field]) return &s->parts[i];
    return NULL;
}

static void render_section(strbuf *b, const tpl_section *s, const char *const *v)
{
    for (size_t i = 0; i < s->nparts; i++) {
        const tpl_part *p = &s->parts[i];
        if (p->field < 0)
            sb_add(b, p->text, p->len);
        else
            sb_adds(b, v[p->field]);
    }
}

int citer_template_render(const citer_template *t, const char *const *values, char **prompt,
                          char **target)
{
    *prompt = NULL;
    *target = NULL;
    const tpl_part *miss = missing_field(&t->sec[SEC_PROMPT], values);
    if (miss) {
        citer_set_error("template line %d: the item has no value for {%s}", miss->line,
                        field_names[miss->field]);
        return -1;
    }
    strbuf b = {0};
    sb_add(&b, "", 0);
    if (t->chat == CHAT_CHATML) {
        if (t->system) {
            sb_adds(&b, "<|im_start|>system\n");
            sb_adds(&b, t->system);
            sb_adds(&b, "<|im_end|>\n");
        }
        sb_adds(&b, "<|im_start|>user\n");
    }
    render_section(&b, &t->sec[SEC_PROMPT], values);
    if (t->chat == CHAT_CHATML) sb_adds(&b, "<|im_end|>\n<|im_start|>assistant\n");
    *prompt = b.s;

    for (int s = SEC_TARGET; s <= SEC_FALLBACK; s++) {
        if (!t->sec[s].present || missing_field(&t->sec[s], values)) continue;
        strbuf tb = {0};
        sb_add(&tb, "", 0);
        render_section(&tb, &t->sec[s], values);
        *target = tb.s;
        break;
    }
    return 0;
}

/* ---- built-in templates ----
 * The mc and math prompts are CITER's own wording, from https://github.com/aiming-lab/CITER
 * (read in its fork Yoda-wu/CITER at commit 73b93611): "mc" and "math" are generate_prompt()
 * and generate_math_prompt() of src/utils/io_format.py, which build the prompts at routing
 * time (src/pipeline/token_route.py); "mc-train" and "math-train" are the slightly different
 * prompts stored in its router-training data (datasets/cqa/train_mlp.json,
 * datasets/gsm8k/train_mlp.json). CITER uses plain text, no chat template. Its reference
 * targets are the items' "cot" texts (GPT-written reasoning ending "Therefore, the answer is
 * <text> (<label>).") and, for math, the solution with its \boxed{} answer. The mc
 * [target-fallback] sentence for items without reasoning is ours, in that style. */

static const char tpl_mc[] =
    "# Multiple-choice items (CommonsenseQA, ARC, ...).\n"
    "# [prompt] is CITER's routing-time prompt: generate_prompt() in src/utils/io_format.py\n"
    "# of github.com/aiming-lab/CITER. [target] is the item's own reasoning (CITER's \"cot\"\n"
    "# texts end \"Therefore, the answer is <text> (<label>).\"); [target-fallback], for items\n"
    "# without reasoning, is citer's own sentence in that style.\n"
    "[options]\n"
    "format = mc\n"
    "[prompt]\n"
    "Question: {question}\n"
    "Choices:\n"
    "{choices}\n"
    "Please format your response in the following way:\n"
    "[Explanation]. Therefore, the answer is answer (label).\n"
    "Ensure the final sentence includes the answer followed by the label in parentheses.\n"
    "Answer and Reasoning:\n"
    "[target]\n"
    "{cot}\n"
    "[target-fallback]\n"
    "Therefore, the answer is {answer_text} ({answer}).\n";

static const char tpl_mc_train[] =
    "# Multiple-choice items, with the prompt wording stored in CITER's router-training\n"
    "# data (datasets/cqa/train_mlp.json of github.com/aiming-lab/CITER): as \"mc\" but with\n"
    "# blank lines before \"Please format\" and \"Answer and Reasoning:\".\n"
    "[options]\n"
    "format = mc\n"
    "[prompt]\n"
    "Question: {question}\n"
    "Choices:\n"
    "{choices}\n"
    "\n"
    "Please format your response in the following way:\n"
    "[Explanation]. Therefore, the answer is answer (label).\n"
    "Ensure the final sentence includes the answer followed by the label in parentheses.\n"
    "\n"
    "Answer and Reasoning:\n"
    "[target]\n"
    "{cot}\n"
    "[target-fallback]\n"
    "Therefore, the answer is {answer_text} ({answer}).\n";

/* Note the trailing space after "Solution:". */
static const char tpl_math[] =
    "# Math items (MATH, GSM8K). [prompt] is CITER's routing-time prompt:\n"
    "# generate_math_prompt() in src/utils/io_format.py of github.com/aiming-lab/CITER.\n"
    "# The prompt ends in \"Solution: \" with a trailing space.\n"
    "[options]\n"
    "format = math\n"
    "[prompt]\n"
    "Solve the following math problem step by step. Ensure all reasoning is shown clearly "
    "in LaTeX format, and the final answer should be enclosed using the LaTeX command "
    "\\boxed{{}} to display it in a box.\n"
    "Question: {problem}\n"
    "Solution: \n"
    "[target]\n"
    "{solution}\n";

static const char tpl_math_train[] =
    "# Math items, with the prompt wording stored in CITER's router-training data\n"
    "# (datasets/gsm8k/train_mlp.json of github.com/aiming-lab/CITER).\n"
    "# The prompt ends in \"Solution: \" with a trailing space.\n"
    "[options]\n"
    "format = math\n"
    "[prompt]\n"
    "Solve the following math problem step by step. Ensure all reasoning is shown clearly "
    "in LaTeX format, and you should enclose your answer with \\boxed{{}}.\n"
    "Question: {problem}\n"
    "Solution: \n"
    "[target]\n"
    "{solution}\n";

static const char tpl_generic[] =
    "# Generic items: the prompt and target as the item gives them.\n"
    "[options]\n"
    "format = generic\n"
    "[prompt]\n"
    "{prompt}\n"
    "[target]\n"
    "{target}\n";

static const struct {
    const char *name;
    const char *text;
} builtins[] = {
    {"mc", tpl_mc},
    {"math", tpl_math},
    {"generic", tpl_generic},
    {"mc-train", tpl_mc_train},
    {"math-train", tpl_math_train},
};

const char *citer_template_builtin_names(void) { return "mc math generic mc-train math-train"; }

const char *citer_template_builtin_text(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0) return builtins[i].text;
    return NULL;
}

citer_template *citer_template_builtin(const char *name)
{
    const char *text = citer_template_builtin_text(name);
    if (!text) {
        citer_set_error("unknown built-in template \"%s\" (known: %s)", name ? name : "",
                        citer_template_builtin_names());
        return NULL;
    }
    return citer_template_parse(text, strlen(text));
}

citer_template *citer_template_default(int format)
{
    if (format < CITER_FMT_MC || format > CITER_FMT_GENERIC) {
        citer_set_error("no default template for format %d", format);
        return NULL;
    }
    return citer_template_builtin(format_names[format]);
}
