/* dataset: read JSONL items (mc, math, generic) and render them through a template. */
#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- \boxed{} ---- */

char *citer_last_boxed(const char *text)
{
    const char *best = NULL;
    size_t best_len = 0;
    const char *p = text;
    while ((p = strstr(p, "\\boxed")) != NULL) {
        const char *q = p + 6;
        while (*q == ' ') q++;
        if (*q != '{') {
            p += 6;
            continue;
        }
        const char *start = ++q;
        int depth = 1;
        while (*q && depth) {
            if (*q == '\\' && q[1]) { /* \{ \} \\ are not braces of the group */
                q += 2;
                continue;
            }
            if (*q == '{') depth++;
            else if (*q == '}') depth--;
            q++;
        }
        if (depth) break; /* unterminated: nothing complete after it */
        best = start;
        best_len = (size_t)(q - 1 - start);
        p = q;
    }
    return best ? xstrndup(best, best_len) : NULL;
}

/* ---- JSON helpers ---- */

/* One JSON value from s[0..len) with json-c. A value still open at the end (a bare top-level
 * number, or a truncated text) is given a terminating NUL to finish it. */
static json_object *tokenize(const char *s, size_t len, int flags, enum json_tokener_error *err,
                             size_t *end)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) { /* like xmalloc: running out of memory ends the process */
        fputs("citer: out of memory\n", stderr);
        exit(1);
    }
    json_tokener_set_flags(tok, flags);
    json_object *obj = json_tokener_parse_ex(tok, s, (int)len);
    *err = json_tokener_get_error(tok);
    *end = json_tokener_get_parse_end(tok);
    if (*err == json_tokener_continue) {
        obj = json_tokener_parse_ex(tok, "", 1);
        *err = json_tokener_get_error(tok);
        if (*err != json_tokener_success) *err = json_tokener_continue;
        *end = len;
    }
    json_tokener_free(tok);
    if (*err != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    }
    return obj;
}

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Parse one line into a JSON object. NULL + error when it is not exactly one object. */
static json_object *parse_object(const char *line, size_t len, long lineno)
{
    const char *nul = memchr(line, 0, len);
    if (nul) {
        citer_set_error("line %ld: NUL byte at byte %zu", lineno, (size_t)(nul - line));
        return NULL;
    }
    if (len > (size_t)INT_MAX - 1) {
        citer_set_error("line %ld: line too long (%zu bytes)", lineno, len);
        return NULL;
    }
    /* json-c 0.16 takes 'single-quoted' keys even when strict; JSON has no such thing. */
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (line[i] == '\\') i++;
            else if (line[i] == '"') in_string = 0;
        } else if (line[i] == '"') {
            in_string = 1;
        } else if (line[i] == '\'') {
            citer_set_error("line %ld: invalid JSON at byte %zu: single-quoted string", lineno, i);
            return NULL;
        }
    }
    enum json_tokener_error err;
    size_t end;
    json_object *obj = tokenize(line, len, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8,
                                &err, &end);
    if (err == json_tokener_continue) {
        citer_set_error("line %ld: truncated JSON (a value is not closed)", lineno);
        return NULL;
    }
    if (err != json_tokener_success) {
        /* Strict json-c also refuses text after a complete value; tell that case apart by
         * finding where a lenient parse stops and checking the text before it strictly. */
        enum json_tokener_error err2;
        size_t end2;
        json_object *o2 = tokenize(line, len, 0, &err2, &end2);
        json_object_put(o2);
        if (err2 == json_tokener_success && end2 < len) {
            json_object *o3 = tokenize(line, end2, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8,
                                       &err2, &end2);
            if (o3) {
                json_object_put(o3);
                end = end2;
                while (end < len && is_json_space(line[end])) end++;
                citer_set_error("line %ld: trailing garbage after the JSON value at byte %zu",
                                lineno, end);
                return NULL;
            }
        }
        citer_set_error("line %ld: invalid JSON at byte %zu: %s", lineno, end ? end - 1 : 0,
                        json_tokener_error_desc(err));
        return NULL;
    }
    for (size_t i = end; i < len; i++) {
        if (!is_json_space(line[i])) {
            citer_set_error("line %ld: trailing garbage after the JSON value at byte %zu",
                            lineno, i);
            json_object_put(obj);
            return NULL;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        citer_set_error("line %ld: not a JSON object", lineno);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int has(json_object *o, const char *key) { return json_object_object_get_ex(o, key, NULL); }

static const char *type_name(json_object *v)
{
    return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* A string value, checked. *out borrows from the JSON object. 0 ok, -1 error. */
static int string_value(json_object *v, const char *what, long lineno, const char **out)
{
    if (!json_object_is_type(v, json_type_string)) {
        citer_set_error("line %ld: \"%s\" must be a string, not %s", lineno, what, type_name(v));
        return -1;
    }
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v)) {
        citer_set_error("line %ld: \"%s\" contains a NUL character", lineno, what);
        return -1;
    }
    *out = s;
    return 0;
}

/* A label, answer or id: a string or a number, as text (malloc'd). 0 ok, -1 error. */
static int scalar_value(json_object *v, const char *what, long lineno, char **out)
{
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        *out = xstrdup(json_object_get_string(v));
        return 0;
    }
    if (!json_object_is_type(v, json_type_string)) {
        citer_set_error("line %ld: \"%s\" must be a string or a number, not %s", lineno, what,
                        type_name(v));
        return -1;
    }
    const char *s;
    if (string_value(v, what, lineno, &s) < 0) return -1;
    *out = xstrdup(s);
    return 0;
}

/* An optional scalar key: absent or empty gives NULL. */
static int optional_scalar(json_object *o, const char *key, long lineno, char **out)
{
    *out = NULL;
    json_object *v = get(o, key);
    if (!v) return 0; /* absent or null */
    if (scalar_value(v, key, lineno, out) < 0) return -1;
    if (!**out) {
        free(*out);
        *out = NULL;
    }
    return 0;
}

static int missing(const char *key, long lineno)
{
    citer_set_error("line %ld: missing key \"%s\"", lineno, key);
    return -1;
}

/* ---- format detection ---- */

static int is_gsm8k_original(json_object *o)
{
    json_object *q = get(o, "question"), *a = get(o, "answer");
    return json_object_is_type(q, json_type_string) && json_object_is_type(a, json_type_string) &&
           strstr(json_object_get_string(a), "####") != NULL;
}

static int detect(json_object *o, long lineno)
{
    if (has(o, "choices") || json_object_is_type(get(o, "question"), json_type_object))
        return CITER_FMT_MC;
    if (has(o, "problem") || has(o, "solution") || is_gsm8k_original(o)) return CITER_FMT_MATH;
    if (has(o, "prompt")) return CITER_FMT_GENERIC;
    citer_set_error("line %ld: cannot tell the item format: expected \"question\" and "
                    "\"choices\" (mc), \"problem\" and \"solution\" (math) or \"prompt\" "
                    "(generic)",
                    lineno);
    return -1;
}

int citer_dataset_detect(const char *line, size_t len, long lineno)
{
    json_object *o = parse_object(line, len, lineno);
    if (!o) return -1;
    int f = detect(o, lineno);
    json_object_put(o);
    return f;
}

/* ---- the formats ---- */

/* Field values for the template, owned: every non-NULL entry is freed afterwards. */
typedef struct {
    char *v[CITER_F_COUNT];
    char **texts, **labels; /* mc choices */
    int n;
    size_t cap;
} fields;

static void fields_free(fields *f)
{
    for (int i = 0; i < CITER_F_COUNT; i++) free(f->v[i]);
    citer_choices_free(f->texts, f->labels, f->n);
}

static int read_mc(json_object *o, long lineno, fields *f)
{
    json_object *q = get(o, "question");
    json_object *choices = get(o, "choices");
    const char *qtext;
    if (!q && !has(o, "question")) return missing("question", lineno);
    if (json_object_is_type(q, json_type_object)) {
        json_object *stem = get(q, "stem");
        if (!stem && !has(q, "stem")) return missing("question.stem", lineno);
        if (string_value(stem, "question.stem", lineno, &qtext) < 0) return -1;
        if (!choices && !has(o, "choices")) choices = get(q, "choices");
    } else if (string_value(q, "question", lineno, &qtext) < 0) {
        return -1;
    }
    f->v[CITER_F_QUESTION] = xstrdup(qtext);

    if (!choices && !has(o, "choices")) return missing("choices", lineno);
    size_t n;
    json_object *texts = NULL, *labels = NULL;
    if (json_object_is_type(choices, json_type_object)) {
        texts = get(choices, "text");
        labels = get(choices, "label");
        if (!texts && !has(choices, "text")) return missing("choices.text", lineno);
        if (!labels && !has(choices, "label")) return missing("choices.label", lineno);
        if (!json_object_is_type(texts, json_type_array) ||
            !json_object_is_type(labels, json_type_array)) {
            citer_set_error("line %ld: choices.text and choices.label must be arrays", lineno);
            return -1;
        }
        n = json_object_array_length(texts);
        size_t nl = json_object_array_length(labels);
        if (n != nl) {
            citer_set_error("line %ld: choices.text and choices.label differ in length "
                            "(%zu and %zu)",
                            lineno, n, nl);
            return -1;
        }
    } else if (json_object_is_type(choices, json_type_array)) {
        n = json_object_array_length(choices);
    } else {
        citer_set_error("line %ld: \"choices\" must be an object with \"text\" and \"label\" "
                        "arrays or an array of {\"label\", \"text\"} objects, not %s",
                        lineno, type_name(choices));
        return -1;
    }
    if (n == 0) {
        citer_set_error("line %ld: \"choices\" is empty", lineno);
        return -1;
    }

    char *key = NULL;
    json_object *ak = get(o, "answerKey");
    if (!ak && !has(o, "answerKey")) return missing("answerKey", lineno);
    if (scalar_value(ak, "answerKey", lineno, &key) < 0) return -1;
    f->v[CITER_F_ANSWER] = key;

    /* "A. text" lines, and the text of the answer's choice. */
    char *list = NULL;
    size_t list_len = 0, list_cap = 0;
    int rc = -1;
    char what[64];
    for (size_t i = 0; i < n; i++) {
        json_object *t, *l;
        if (texts) {
            t = json_object_array_get_idx(texts, i);
            l = json_object_array_get_idx(labels, i);
        } else {
            json_object *c = json_object_array_get_idx(choices, i);
            if (!json_object_is_type(c, json_type_object)) {
                citer_set_error("line %ld: choices[%zu] must be an object, not %s", lineno, i,
                                type_name(c));
                goto done;
            }
            t = get(c, "text");
            l = get(c, "label");
            if (!t && !has(c, "text")) {
                snprintf(what, sizeof what, "choices[%zu].text", i);
                missing(what, lineno);
                goto done;
            }
            if (!l && !has(c, "label")) {
                snprintf(what, sizeof what, "choices[%zu].label", i);
                missing(what, lineno);
                goto done;
            }
        }
        const char *text;
        char *label;
        snprintf(what, sizeof what, texts ? "choices.text[%zu]" : "choices[%zu].text", i);
        if (string_value(t, what, lineno, &text) < 0) goto done;
        snprintf(what, sizeof what, texts ? "choices.label[%zu]" : "choices[%zu].label", i);
        if (scalar_value(l, what, lineno, &label) < 0) goto done;
        xgrow((void **)&f->texts, &f->cap, (size_t)f->n + 1, sizeof *f->texts);
        f->labels = xrealloc(f->labels, f->cap * sizeof *f->labels);
        f->texts[f->n] = xstrdup(text);
        f->labels[f->n++] = xstrdup(label);
        if (strcmp(label, key) == 0 && !f->v[CITER_F_ANSWER_TEXT])
            f->v[CITER_F_ANSWER_TEXT] = xstrdup(text);
        size_t need = list_len + strlen(label) + strlen(text) + 4;
        xgrow((void **)&list, &list_cap, need + 1, 1);
        list_len += (size_t)sprintf(list + list_len, "%s%s. %s", i ? "\n" : "", label, text);
        free(label);
    }
    if (!f->v[CITER_F_ANSWER_TEXT]) {
        citer_set_error("line %ld: answerKey \"%s\" is not one of the choice labels", lineno, key);
        goto done;
    }
    f->v[CITER_F_CHOICES] = list;
    list = NULL;

    static const char *const reasoning[] = {"cot",    "rationale", "explanation",
                                            "solution", "target",  "response"};
    for (size_t i = 0; i < sizeof reasoning / sizeof reasoning[0]; i++) {
        if (!has(o, reasoning[i])) continue;
        const char *s;
        if (string_value(get(o, reasoning[i]), reasoning[i], lineno, &s) < 0) goto done;
        if (*s) f->v[CITER_F_COT] = xstrdup(s);
        break;
    }
    rc = 0;
done:
    free(list);
    return rc;
}

/* The answer after the last "####" of a GSM8K solution, trimmed; NULL if none or empty. */
static char *gsm8k_answer(const char *solution)
{
    const char *p = NULL;
    for (const char *s = solution; (s = strstr(s, "####")) != NULL; s += 4) p = s + 4;
    if (!p) return NULL;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    return n ? xstrndup(p, n) : NULL;
}

static int read_math(json_object *o, long lineno, fields *f)
{
    const char *problem_key = has(o, "problem") ? "problem" : "question";
    const char *s;
    if (!has(o, problem_key)) return missing("problem", lineno);
    if (string_value(get(o, problem_key), problem_key, lineno, &s) < 0) return -1;
    f->v[CITER_F_PROBLEM] = xstrdup(s);

    int answer_is_solution = 0; /* GSM8K original: "answer" holds the worked solution */
    if (has(o, "solution")) {
        if (string_value(get(o, "solution"), "solution", lineno, &s) < 0) return -1;
        if (*s) f->v[CITER_F_SOLUTION] = xstrdup(s);
    } else if (is_gsm8k_original(o)) {
        if (string_value(get(o, "answer"), "answer", lineno, &s) < 0) return -1;
        f->v[CITER_F_SOLUTION] = xstrdup(s);
        answer_is_solution = 1;
    }

    char *ans = NULL;
    if (f->v[CITER_F_SOLUTION]) {
        ans = citer_last_boxed(f->v[CITER_F_SOLUTION]);
        if (ans && !*ans) {
            free(ans);
            ans = NULL;
        }
        if (!ans) ans = gsm8k_answer(f->v[CITER_F_SOLUTION]);
    }
    if (!ans && !answer_is_solution && optional_scalar(o, "answer", lineno, &ans) < 0) return -1;
    if (!ans) {
        if (!f->v[CITER_F_SOLUTION] && !has(o, "answer")) {
            citer_set_error("line %ld: missing key \"solution\" (or \"answer\")", lineno);
        } else {
            citer_set_error("line %ld: no answer: \"solution\" has no \\boxed{...} (nor "
                            "\"#### answer\") and there is no non-empty \"answer\"",
                            lineno);
        }
        return -1;
    }
    f->v[CITER_F_ANSWER] = ans;
    return 0;
}

static int read_generic(json_object *o, long lineno, fields *f)
{
    const char *s;
    if (!has(o, "prompt")) return missing("prompt", lineno);
    if (string_value(get(o, "prompt"), "prompt", lineno, &s) < 0) return -1;
    f->v[CITER_F_PROMPT] = xstrdup(s);
    const char *tkey = has(o, "target") ? "target" : has(o, "cot") ? "cot" : NULL;
    if (tkey) {
        if (string_value(get(o, tkey), tkey, lineno, &s) < 0) return -1;
        if (*s) f->v[CITER_F_TARGET] = xstrdup(s);
    }
    const char *akey = has(o, "answer") ? "answer" : "answerKey";
    return optional_scalar(o, akey, lineno, &f->v[CITER_F_ANSWER]);
}

/* ---- one line ---- */

static int blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n') return 0;
    return 1;
}

int citer_dataset_parse(const char *line, size_t len, long lineno, int format,
                        const citer_template *tpl, citer_example *ex)
{
    memset(ex, 0, sizeof *ex);
    if (format < CITER_FMT_AUTO || format > CITER_FMT_GENERIC) {
        citer_set_error("unknown dataset format %d", format);
        return -1;
    }
    if (blank(line, len)) return 1;
    json_object *o = parse_object(line, len, lineno);
    if (!o) return -1;

    int rc = -1;
    fields f = {{0}, NULL, NULL, 0, 0};
    citer_template *own = NULL;
    int tf = tpl ? citer_template_format(tpl) : CITER_FMT_AUTO;
    if (format == CITER_FMT_AUTO) format = tf != CITER_FMT_AUTO ? tf : detect(o, lineno);
    if (format < 0) goto out;
    if (tf != CITER_FMT_AUTO && tf != format) {
        citer_set_error("line %ld: the template is for %s items, this is a %s item", lineno,
                        citer_dataset_format_name(tf), citer_dataset_format_name(format));
        goto out;
    }
    if (optional_scalar(o, "id", lineno, &f.v[CITER_F_ID]) < 0) goto out;
    int r = format == CITER_FMT_MC     ? read_mc(o, lineno, &f)
            : format == CITER_FMT_MATH ? read_math(o, lineno, &f)
                                       : read_generic(o, lineno, &f);
    if (r < 0) goto out;
    if (!tpl) {
        own = citer_template_default(format);
        if (!own) goto out;
        tpl = own;
    }
    if (citer_template_render(tpl, (const char *const *)f.v, &ex->prompt, &ex->target) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", citer_error());
        citer_set_error("line %ld: %s", lineno, msg);
        goto out;
    }
    ex->id = f.v[CITER_F_ID];
    ex->answer = f.v[CITER_F_ANSWER];
    f.v[CITER_F_ID] = f.v[CITER_F_ANSWER] = NULL;
    ex->format = format;
    ex->choice_texts = f.texts;
    ex->choice_labels = f.labels;
    ex->n_choices = f.n;
    f.texts = f.labels = NULL;
    f.n = 0;
    rc = 0;
out:
    fields_free(&f);
    citer_template_free(own);
    json_object_put(o);
    return rc;
}

void citer_example_free(citer_example *ex)
{
    if (!ex) return;
    free(ex->id);
    free(ex->prompt);
    free(ex->target);
    free(ex->answer);
    citer_choices_free(ex->choice_texts, ex->choice_labels, ex->n_choices);
    memset(ex, 0, sizeof *ex);
}

/* ---- reading a file ---- */

struct citer_dataset_reader {
    FILE *f;
    int format;
    const citer_template *tpl;
    citer_template *own_tpl; /* the default template, once the format is known */
    char *buf;
    size_t cap;
    long lineno;
    long item_line;
};

citer_dataset_reader *citer_dataset_open(const char *path, int format, const citer_template *tpl)
{
    if (format < CITER_FMT_AUTO || format > CITER_FMT_GENERIC) {
        citer_set_error("unknown dataset format %d", format);
        return NULL;
    }
    int stdin_ = strcmp(path, "-") == 0;
    FILE *f = stdin_ ? stdin : fopen(path, "rb");
    if (!f) {
        citer_set_error("%s", strerror(errno));
        return NULL;
    }
    citer_dataset_reader *r = xcalloc(1, sizeof *r);
    r->f = f;
    r->tpl = tpl;
    r->format = format;
    if (format == CITER_FMT_AUTO && tpl) r->format = citer_template_format(tpl);
    return r;
}

int citer_dataset_next(citer_dataset_reader *r, citer_example *ex)
{
    memset(ex, 0, sizeof *ex);
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) {
                citer_set_error("line %ld: read error: %s", r->lineno + 1,
                                strerror(errno ? errno : EIO));
                return -1;
            }
            return 0;
        }
        r->lineno++;
        const char *line = r->buf;
        size_t len = (size_t)n;
        if (r->lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3; /* UTF-8 byte order mark */
            len -= 3;
        }
        if (blank(line, len)) continue;
        if (r->format == CITER_FMT_AUTO) {
            int fmt = citer_dataset_detect(line, len, r->lineno);
            if (fmt < 0) return -1;
            r->format = fmt;
        }
        if (!r->tpl) {
            r->own_tpl = citer_template_default(r->format);
            if (!r->own_tpl) return -1;
            r->tpl = r->own_tpl;
        }
        r->item_line = r->lineno;
        int rc = citer_dataset_parse(line, len, r->lineno, r->format, r->tpl, ex);
        return rc < 0 ? -1 : 1;
    }
}

long citer_dataset_lineno(const citer_dataset_reader *r) { return r->item_line; }

int citer_dataset_reader_format(const citer_dataset_reader *r) { return r->format; }

void citer_dataset_close(citer_dataset_reader *r)
{
    if (!r) return;
    if (r->f && r->f != stdin) fclose(r->f);
    citer_template_free(r->own_tpl);
    free(r->buf);
    free(r);
}

void citer_choices_free(char **texts, char **labels, int n)
{
    for (int i = 0; i < n; i++) {
        if (texts) free(texts[i]);
        if (labels) free(labels[i]);
    }
    free(texts);
    free(labels);
}

void citer_choices_json(json_object *meta, char *const *texts, char *const *labels, int n)
{
    if (n <= 0) return;
    json_object *c = json_object_new_object(), *t = json_object_new_array(), *l = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object_array_add(t, json_object_new_string(texts[i]));
        json_object_array_add(l, json_object_new_string(labels[i]));
    }
    json_object_object_add(c, "text", t);
    json_object_object_add(c, "label", l);
    json_object_object_add(meta, "choices", c);
}

int citer_answer_key_read(json_object *meta, citer_answer_key *k)
{
    *k = (citer_answer_key){NULL, CITER_FMT_MATH, NULL, NULL, 0};
    json_object *v;
    if (!meta || !json_object_object_get_ex(meta, "answer", &v) || !json_object_is_type(v, json_type_string)) {
        citer_set_error("answer record without an \"answer\" string");
        return -1;
    }
    const char *answer = json_object_get_string(v), *fmt = NULL;
    if (json_object_object_get_ex(meta, "format", &v) && json_object_is_type(v, json_type_string))
        fmt = json_object_get_string(v);
    int format = fmt ? citer_dataset_format_from_name(fmt) : CITER_FMT_MATH;
    if (format < 0 || format == CITER_FMT_AUTO) {
        citer_set_error("unknown answer format '%s'", fmt);
        return -1;
    }
    if (citer_choices_read(meta, &k->choice_texts, &k->choice_labels, &k->n_choices) != 0) return -1;
    k->answer = xstrdup(answer);
    k->format = format;
    return 0;
}

void citer_answer_key_free(citer_answer_key *k)
{
    free(k->answer);
    citer_choices_free(k->choice_texts, k->choice_labels, k->n_choices);
    *k = (citer_answer_key){NULL, CITER_FMT_MATH, NULL, NULL, 0};
}

int citer_choices_read(json_object *meta, char ***texts, char ***labels, int *n)
{
    json_object *c, *t, *l;
    *texts = *labels = NULL;
    *n = 0;
    if (!meta || !json_object_object_get_ex(meta, "choices", &c)) return 0;
    if (!json_object_is_type(c, json_type_object) || !json_object_object_get_ex(c, "text", &t) ||
        !json_object_object_get_ex(c, "label", &l) || !json_object_is_type(t, json_type_array) ||
        !json_object_is_type(l, json_type_array) || json_object_array_length(t) != json_object_array_length(l) ||
        json_object_array_length(t) > 100000) {
        citer_set_error("\"choices\" is not {\"text\": [...], \"label\": [...]} of one length");
        return -1;
    }
    int k = (int)json_object_array_length(t);
    for (int i = 0; i < k; i++)
        if (!json_object_is_type(json_object_array_get_idx(t, (size_t)i), json_type_string) ||
            !json_object_is_type(json_object_array_get_idx(l, (size_t)i), json_type_string)) {
            citer_set_error("choices: text[%d] and label[%d] must be strings", i, i);
            return -1;
        }
    *texts = xmalloc((size_t)(k + 1) * sizeof **texts);
    *labels = xmalloc((size_t)(k + 1) * sizeof **labels);
    for (int i = 0; i < k; i++) {
        (*texts)[i] = xstrdup(json_object_get_string(json_object_array_get_idx(t, (size_t)i)));
        (*labels)[i] = xstrdup(json_object_get_string(json_object_array_get_idx(l, (size_t)i)));
    }
    *n = k;
    return 0;
}
