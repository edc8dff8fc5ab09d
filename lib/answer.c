/* answer: final-answer extraction and checking for math and multiple-choice items.
 * The rules and where they come from are in answer.h. */
#include "answer.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataset.h"
#include "template.h"
#include "unicode.h"
#include "util.h"

/* ---- a growing string ---- */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    xgrow((void **)&b->s, &b->cap, b->len + n + 1, 1);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

static char *sb_take(sbuf *b)
{
    if (!b->s) return xstrdup("");
    return b->s;
}

/* ---- UTF-8 helpers ---- */

static uint32_t cp_at(const char *s, size_t len, size_t i, int *n)
{
    uint32_t cp;
    *n = utf8_decode((const uint8_t *)s + i, len - i, &cp);
    return cp;
}

/* The code point ending just before byte i (0 when i is 0). */
static uint32_t cp_before(const char *s, size_t len, size_t i)
{
    if (i == 0) return 0;
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
    int n;
    uint32_t cp = cp_at(s, len, j, &n);
    if (j + (size_t)n != i) cp = UC_INVALID_BASE + (unsigned char)s[i - 1];
    return cp;
}

/* Letters, digits, marks and "_": what a regex \w matches, so a word cannot continue there. */
static int is_word_cp(uint32_t cp)
{
    if (cp < 0x80) return isalnum((int)cp) || cp == '_';
    if (cp >= UC_INVALID_BASE) return 0;
    return uc_is_letter(cp) || uc_is_number(cp) || uc_is_mark(cp);
}

/* Byte offset of code point number n of s[0..len) (len when shorter). */
static size_t cp_offset(const char *s, size_t len, size_t n)
{
    size_t i = 0;
    while (n-- && i < len) {
        int k;
        cp_at(s, len, i, &k);
        i += (size_t)k;
    }
    return i;
}

/* s[0..n) lowercased code point by code point; invalid bytes are kept. */
static char *lower_copy(const char *s, size_t n, size_t *out_len)
{
    sbuf b = {0};
    for (size_t i = 0; i < n;) {
        int k;
        uint32_t cp = cp_at(s, n, i, &k);
        if (cp >= UC_INVALID_BASE) {
            sb_putc(&b, s[i]);
        } else {
            uint8_t enc[4];
            int m = utf8_encode(uc_lower(cp), enc);
            sb_putn(&b, (const char *)enc, (size_t)m);
        }
        i += (size_t)k;
    }
    if (out_len) *out_len = b.len;
    return sb_take(&b);
}

/* ---- multiple choice ---- */

typedef struct {
    const char *const *texts; /* NULL: no choice texts */
    const char *const *labels;
    int n;
    char **lower; /* lowercased choice texts */
    size_t *lower_len;
} choices;

/* Whether needle[0..n) occurs in hay[0..hn) as whole words: where the needle begins (ends)
 * with a word character, the text before (after) it must not be one. */
static int find_words(const char *hay, size_t hn, const char *needle, size_t n)
{
    if (n == 0 || n > hn) return 0;
    int k;
    int word_start = is_word_cp(cp_at(needle, n, 0, &k));
    int word_end = is_word_cp(cp_before(needle, n, n));
    for (size_t i = 0; i + n <= hn; i++) {
        if (memcmp(hay + i, needle, n) != 0) continue;
        if (word_start && is_word_cp(cp_before(hay, hn, i))) continue;
        if (word_end && i + n < hn && is_word_cp(cp_at(hay, hn, i + n, &k))) continue;
        return 1;
    }
    return 0;
}

/* The choice whose text occurs in s[0..n) (as whole words, any case); the longest when
 * several do. -1 when none. */
static int choice_in(const choices *c, const char *s, size_t n)
{
    if (!c->texts) return -1;
    size_t ln;
    char *low = lower_copy(s, n, &ln);
    int best = -1;
    for (int i = 0; i < c->n; i++) {
        if (!c->lower[i] || !c->lower_len[i]) continue;
        if (best >= 0 && c->lower_len[i] <= c->lower_len[best]) continue;
        if (find_words(low, ln, c->lower[i], c->lower_len[i])) best = i;
    }
    free(low);
    return best;
}

/* Case-insensitive equality of s[0..n) and the NUL-terminated t, code point by code point. */
static int same_ci(const char *s, size_t n, const char *t)
{
    size_t tn = strlen(t), a = 0, b = 0;
    while (a < n && b < tn) {
        int ka, kb;
        uint32_t x = cp_at(s, n, a, &ka), y = cp_at(t, tn, b, &kb);
        if (x != y && (x >= UC_INVALID_BASE || y >= UC_INVALID_BASE || uc_lower(x) != uc_lower(y)))
            return 0;
        a += (size_t)ka;
        b += (size_t)kb;
    }
    return a == n && b == tn;
}

/* The label a word s[0..n) stands for, or -1. Without labels a label is one ASCII letter
 * (the index is then the letter's, 0 for A). upper: letters must be written in upper case,
 * so that the article "a" is not label A. */
static int label_of(const choices *c, const char *s, size_t n, int upper)
{
    if (upper) {
        for (size_t i = 0; i < n;) {
            int k;
            uint32_t cp = cp_at(s, n, i, &k);
            if (cp < UC_INVALID_BASE && uc_is_letter(cp) && ucat(cp) != UC_Lu) return -1;
            i += (size_t)k;
        }
    }
    if (!c->labels) {
        if (n != 1 || !isalpha((unsigned char)s[0])) return -1;
        return toupper((unsigned char)s[0]) - 'A';
    }
    for (int i = 0; i < c->n; i++)
        if (c->labels[i] && same_ci(s, n, c->labels[i])) return i;
    return -1;
}

/* The end of the word starting at byte i (i itself when there is no word there). */
static size_t word_end(const char *s, size_t len, size_t i)
{
    while (i < len) {
        int k;
        if (!is_word_cp(cp_at(s, len, i, &k))) break;
        i += (size_t)k;
    }
    return i;
}

/* The first standalone uppercase label in s[0..n): a whole word that is a label. */
static int first_label_word(const choices *c, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int k;
        uint32_t cp = cp_at(s, n, i, &k);
        if (!is_word_cp(cp)) {
            i += (size_t)k;
            continue;
        }
        size_t e = word_end(s, n, i);
        int l = label_of(c, s + i, e - i, 1);
        if (l >= 0) return l;
        i = e;
    }
    return -1;
}

/* The windows of CITER's re.finditer("Therefore(.{0,50})"): after each "Therefore", up to 50
 * characters, not past a line break; the next match starts after the window. Calls fn on
 * each window until it returns a label. */
static int each_therefore(const choices *c, const char *text, size_t len,
                          int (*fn)(const choices *, const char *, size_t))
{
    const char *p = text;
    while ((p = strstr(p, "Therefore")) != NULL) {
        size_t start = (size_t)(p - text) + 9, i = start;
        for (int count = 0; count < 50 && i < len && text[i] != '\n'; count++) {
            int k;
            cp_at(text, len, i, &k);
            i += (size_t)k;
        }
        int l = fn(c, text + start, i - start);
        if (l >= 0) return l;
        p = text + i;
    }
    return -1;
}

/* "(x)" anywhere, x a label in any case. */
static int label_in_parens(const choices *c, const char *text, size_t len)
{
    for (const char *p = text; (p = strchr(p, '(')) != NULL; p++) {
        size_t i = (size_t)(p - text) + 1, e = word_end(text, len, i);
        if (e > i && e < len && text[e] == ')') {
            int l = label_of(c, text + i, e - i, 0);
            if (l >= 0) return l;
        }
    }
    return -1;
}

/* A label opening the text: after spaces, quotes and opening brackets, starting within the
 * first 15 characters. */
static int label_at_start(const choices *c, const char *text, size_t len)
{
    size_t i = 0;
    int count = 0;
    while (i < len && count < 15) {
        int k;
        uint32_t cp = cp_at(text, len, i, &k);
        if (!(uc_is_space(cp) || cp == '(' || cp == '[' || cp == '"' || cp == '\'' ||
              cp == 0x201c || cp == 0x2018))
            break;
        i += (size_t)k;
        count++;
    }
    if (count >= 15) return -1;
    size_t e = word_end(text, len, i);
    return e > i ? label_of(c, text + i, e - i, 1) : -1;
}

static char *extract_mc(const char *text, const char *const *texts, const char *const *labels,
                        int n)
{
    choices c = {texts, labels, n < 0 ? 0 : n, NULL, NULL};
    /* choice texts without labels are labelled A, B, C, ... by position */
    char (*letters)[2] = NULL;
    const char **own_labels = NULL;
    if (!labels && texts && c.n > 0) {
        if (c.n > 26) c.n = 26;
        letters = xcalloc((size_t)c.n, sizeof *letters);
        own_labels = xcalloc((size_t)c.n, sizeof *own_labels);
        for (int i = 0; i < c.n; i++) {
            letters[i][0] = (char)('A' + i);
            own_labels[i] = letters[i];
        }
        c.labels = own_labels;
    }
    if (c.labels && c.n == 0) c.labels = NULL, c.texts = NULL;
    if (c.texts) {
        c.lower = xcalloc((size_t)c.n, sizeof *c.lower);
        c.lower_len = xcalloc((size_t)c.n, sizeof *c.lower_len);
        for (int i = 0; i < c.n; i++) {
            if (!texts[i]) continue;
            /* surrounding spaces of a choice text are not part of what must match */
            const char *t = texts[i];
            size_t tn = strlen(t);
            while (tn && isspace((unsigned char)*t)) t++, tn--;
            while (tn && isspace((unsigned char)t[tn - 1])) tn--;
            c.lower[i] = lower_copy(t, tn, &c.lower_len[i]);
        }
    }

    size_t len = strlen(text);
    int l = each_therefore(&c, text, len, choice_in);
    if (l < 0) l = each_therefore(&c, text, len, first_label_word);
    if (l < 0) l = label_in_parens(&c, text, len);
    if (l < 0) l = label_at_start(&c, text, len);
    if (l < 0) l = choice_in(&c, text, cp_offset(text, len, 20));

    char *out = NULL;
    if (l >= 0) {
        if (c.labels) {
            out = c.labels[l] ? xstrdup(c.labels[l]) : NULL; /* a choice without a label */
        } else {
            out = xmalloc(2);
            out[0] = (char)('A' + l);
            out[1] = 0;
        }
    }
    if (c.lower)
        for (int i = 0; i < c.n; i++) free(c.lower[i]);
    free(c.lower);
    free(c.lower_len);
    free(letters);
    free(own_labels);
    return out;
}

/* ---- math ---- */

/* The rest of the line after the last "####", trimmed; NULL when none or empty. */
static char *after_hashes(const char *text)
{
    const char *p = NULL;
    for (const char *s = text; (s = strstr(s, "####")) != NULL; s += 4) p = s + 4;
    if (!p) return NULL;
    while (*p == '#' || *p == ' ' || *p == '\t') p++;
    size_t n = strcspn(p, "\r\n");
    while (n && isspace((unsigned char)p[n - 1])) n--;
    return n ? xstrndup(p, n) : NULL;
}

static char *extract_math(const char *text)
{
    char *a = citer_last_boxed(text);
    if (a) return a;
    return after_hashes(text);
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* s starts with the control word w (e.g. "\\left") not continued by another letter. */
static int control_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    return strncmp(s, w, n) == 0 && !isalpha((unsigned char)s[n]);
}

/* Spacing, delimiter sizing, dollar and percent signs, Unicode minus and spaces. */
static char *strip_decorations(const char *s)
{
    sbuf b = {0};
    while (*s) {
        const unsigned char *u = (const unsigned char *)s;
        if (u[0] == 0xe2 && u[1] == 0x88 && u[2] == 0x92) { /* U+2212 MINUS SIGN */
            sb_putc(&b, '-');
            s += 3;
        } else if (u[0] == 0xc2 && u[1] == 0xa0) { /* no-break space */
            s += 2;
        } else if (u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0x89 || u[2] == 0xaf)) {
            s += 3; /* thin and narrow no-break spaces */
        } else if (control_word(s, "\\left")) {
            s += 5;
        } else if (control_word(s, "\\right")) {
            s += 6;
        } else if (control_word(s, "\\displaystyle")) {
            s += 13;
        } else if (control_word(s, "\\dfrac") || control_word(s, "\\tfrac")) {
            sb_putn(&b, "\\frac", 5);
            s += 6;
        } else if (s[0] == '\\' && s[1] && (strchr("!,;:%$", s[1]) || isspace((unsigned char)s[1]))) {
            s += 2;
        } else if (*s == '$' || *s == '%') {
            s++;
        } else if (starts(s, "^\\circ") && !isalpha((unsigned char)s[6])) {
            s += 6;
        } else if (starts(s, "^{\\circ}")) {
            s += 8;
        } else if (s[0] == '\\' && s[1]) { /* an escape stays one unit: "\\{" is no "{" */
            sb_putn(&b, s, 2);
            s += 2;
        } else {
            sb_putc(&b, *s++);
        }
    }
    return sb_take(&b);
}

/* For each "{" of s, the index of its "}" (SIZE_MAX when unclosed); other entries are
 * unused. Backslash-escaped braces do not count. One pass, so deep nesting stays linear. */
static size_t *match_braces(const char *s, size_t n)
{
    size_t *match = xmalloc((n + 1) * sizeof *match), *stack = xmalloc((n + 1) * sizeof *stack);
    size_t depth = 0;
    for (size_t i = 0; i < n; i++) {
        match[i] = SIZE_MAX;
        if (s[i] == '\\' && i + 1 < n) {
            match[++i] = SIZE_MAX;
        } else if (s[i] == '{') {
            stack[depth++] = i;
        } else if (s[i] == '}' && depth) {
            match[stack[--depth]] = i;
        }
    }
    free(stack);
    return match;
}

/* \text{...} and its kin: trailing units after a value go, other wrappers are unwrapped. */
static void strip_text_wrappers(char *s)
{
    static const char *const wrappers[] = {"\\text{",   "\\textbf{", "\\textrm{", "\\textnormal{",
                                           "\\mathrm{", "\\mbox{",   "\\textit{", "\\mathbf{"};
    size_t n = strlen(s), o = 0;
    size_t *match = match_braces(s, n);
    char *drop = xcalloc(n + 1, 1); /* closing braces of unwrapped groups */
    int has_value = 0;              /* output so far holds more than spaces */
    for (size_t i = 0; i < n;) {
        if (drop[i]) {
            i++;
            continue;
        }
        size_t wlen = 0;
        if (s[i] == '\\')
            for (size_t w = 0; w < sizeof wrappers / sizeof wrappers[0] && !wlen; w++)
                if (starts(s + i, wrappers[w])) wlen = strlen(wrappers[w]);
        size_t open = i + wlen - 1;
        if (!wlen || match[open] == SIZE_MAX) {
            has_value |= !isspace((unsigned char)s[i]);
            if (s[i] == '\\' && i + 1 < n && !drop[i + 1]) s[o++] = s[i++]; /* escapes whole */
            s[o++] = s[i++];
            continue;
        }
        const char *c = s + open + 1;
        while (*c == ' ' || *c == '~') c++;
        if (has_value && isalpha((unsigned char)*c)) break; /* "10\text{ inches}": units */
        drop[match[open]] = 1;
        i = open + 1;
    }
    s[o] = 0;
    free(match);
    free(drop);
}

typedef struct {
    int64_t num, den; /* den > 0, reduced */
} rational;

static int64_t gcd64(int64_t a, int64_t b)
{
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void reduce(rational *r)
{
    int64_t g = gcd64(r->num, r->den);
    if (g > 1) r->num /= g, r->den /= g;
    if (r->num == 0) r->den = 1;
}

/* A plain decimal at s[*i]: digits with an optional fraction, or ".5". 1 ok, 0 not a
 * number there, -1 too large for 64 bits. */
static int parse_decimal(const char *s, size_t *i, rational *r)
{
    size_t j = *i;
    int64_t num = 0, den = 1;
    int digits = 0, overflow = 0;
    while (isdigit((unsigned char)s[j])) {
        if (__builtin_mul_overflow(num, 10, &num) || __builtin_add_overflow(num, s[j] - '0', &num))
            overflow = 1;
        j++, digits++;
    }
    if (s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
        j++;
        while (isdigit((unsigned char)s[j])) {
            if (__builtin_mul_overflow(num, 10, &num) ||
                __builtin_add_overflow(num, s[j] - '0', &num) ||
                __builtin_mul_overflow(den, 10, &den))
                overflow = 1;
            j++, digits++;
        }
    }
    if (!digits) return 0;
    *i = j;
    if (overflow) return -1;
    r->num = num;
    r->den = den;
    reduce(r);
    return 1;
}

/* A signed decimal: "-" or "+" then a decimal. */
static int parse_signed(const char *s, size_t *i, rational *r)
{
    size_t j = *i;
    int neg = 0;
    if (s[j] == '-' || s[j] == '+') neg = s[j++] == '-';
    int rc = parse_decimal(s, &j, r);
    if (rc <= 0) return rc;
    if (neg) r->num = -r->num;
    *i = j;
    return 1;
}

/* An argument of \frac: "{signed decimal}" or one digit ("\frac12"). */
static int parse_frac_arg(const char *s, size_t *i, rational *r)
{
    size_t j = *i;
    if (isdigit((unsigned char)s[j])) {
        r->num = s[j] - '0';
        r->den = 1;
        *i = j + 1;
        return 1;
    }
    if (s[j] != '{') return 0;
    j++;
    int rc = parse_signed(s, &j, r);
    if (rc <= 0) return rc;
    if (s[j] != '}') return 0;
    *i = j + 1;
    return 1;
}

static int divide(rational a, rational b, rational *out)
{
    if (b.num == 0) return 0;
    /* (a.num/a.den) / (b.num/b.den) = (a.num*b.den) / (a.den*b.num), both reduced first */
    int64_t g1 = gcd64(a.num, b.num), g2 = gcd64(a.den, b.den);
    if (g1 == 0) g1 = 1;
    int64_t n1 = a.num / g1, d2 = b.num / g1, d1 = a.den / g2, n2 = b.den / g2;
    int64_t num, den;
    if (__builtin_mul_overflow(n1, n2, &num) || __builtin_mul_overflow(d1, d2, &den)) return -1;
    if (num == INT64_MIN || den == INT64_MIN) return -1; /* cannot be negated */
    if (den < 0) num = -num, den = -den;
    out->num = num;
    out->den = den;
    reduce(out);
    return 1;
}

/* The whole of s as a number: [sign] decimal [/ signed decimal] or [sign] \frac{a}{b}.
 * 1 ok, 0 not a number, -1 a number too large for 64 bits. */
static int parse_number(const char *s, rational *r)
{
    size_t i = 0;
    int neg = 0;
    if (s[i] == '-' || s[i] == '+') neg = s[i++] == '-';
    int rc;
    if (strncmp(s + i, "\\frac", 5) == 0) {
        rational a, b;
        i += 5;
        if ((rc = parse_frac_arg(s, &i, &a)) <= 0) return rc;
        if ((rc = parse_frac_arg(s, &i, &b)) <= 0) return rc;
        if ((rc = divide(a, b, r)) <= 0) return rc;
    } else {
        if ((rc = parse_decimal(s, &i, r)) <= 0) return rc;
        if (s[i] == '/') {
            rational b;
            i++;
            if ((rc = parse_signed(s, &i, &b)) <= 0) return rc;
            if ((rc = divide(*r, b, r)) <= 0) return rc;
        }
    }
    if (s[i]) return 0;
    if (neg) r->num = -r->num;
    return 1;
}

/* A plain decimal too long for 64 bits, in canonical text: no leading zeros in the integer
 * part, no trailing zeros in the fraction, no "-" on zero. NULL when s is not one. */
static char *canonical_long_decimal(const char *s)
{
    int neg = 0;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    size_t int_len = strspn(s, "0123456789");
    const char *frac = s + int_len;
    size_t frac_len = 0;
    if (*frac == '.') frac_len = strspn(frac + 1, "0123456789"), frac++;
    else frac = "";
    if (frac[frac_len] || (!int_len && !frac_len)) return NULL;
    while (int_len > 1 && *s == '0') s++, int_len--;
    while (frac_len && frac[frac_len - 1] == '0') frac_len--;
    int zero = 1;
    for (size_t k = 0; k < int_len; k++) zero &= s[k] == '0';
    zero &= frac_len == 0;
    sbuf b = {0};
    if (neg && !zero) sb_putc(&b, '-');
    if (int_len) sb_putn(&b, s, int_len);
    else sb_putc(&b, '0');
    if (frac_len) {
        sb_putc(&b, '.');
        sb_putn(&b, frac, frac_len);
    }
    return sb_take(&b);
}

/* "1,234,567" (and with a decimal fraction): a number with thousands separators. */
static int has_thousands_commas(const char *s)
{
    if (*s == '-') s++;
    size_t lead = strspn(s, "0123456789");
    if (lead < 1 || lead > 3 || s[lead] != ',') return 0;
    s += lead;
    while (*s == ',') {
        if (strspn(s + 1, "0123456789") != 3) return 0;
        s += 4;
    }
    if (*s == '.') s += 1 + strspn(s + 1, "0123456789");
    return *s == 0;
}

char *citer_math_normalize(const char *answer)
{
    char *s = strip_decorations(answer ? answer : "");
    strip_text_wrappers(s);

    /* no whitespace at all */
    size_t n = 0;
    for (size_t i = 0; s[i]; i++)
        if (!isspace((unsigned char)s[i])) s[n++] = s[i];
    s[n] = 0;

    /* "1{,}000": LaTeX's thousands separator, between digits */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            s[k++] = s[i++];
        } else if (i && isdigit((unsigned char)s[i - 1]) && strncmp(s + i, "{,}", 3) == 0 &&
                   isdigit((unsigned char)s[i + 3])) {
            s[k++] = ',';
            i += 2;
            continue;
        }
        s[k++] = s[i];
    }
    s[k] = 0;
    n = k;

    /* outer braces "{5}", a sentence's final period, "x=" before the value, a leading "+":
     * again while that changes something, as taking one away can uncover another ("{5}.",
     * "x={5}"); a few rounds are enough for anything but contrived input */
    for (int round = 0; round < 16; round++) {
        size_t before = n;
        size_t *match = match_braces(s, n);
        k = 0;
        while (2 * k + 1 < n && s[k] == '{' && match[k] == n - 1 - k) k++;
        free(match);
        if (k) {
            memmove(s, s + k, n - 2 * k);
            n -= 2 * k;
            s[n] = 0;
        }
        while (n && s[n - 1] == '.' && (n < 2 || s[n - 2] != '\\')) s[--n] = 0;
        size_t skip = 0;
        for (;;) {
            size_t v = 0;
            while (skip + v < n && v < 3 && isalpha((unsigned char)s[skip + v])) v++;
            if (v < 1 || v > 2 || s[skip + v] != '=' || !s[skip + v + 1]) break;
            skip += v + 1;
        }
        if (s[skip] == '+' && s[skip + 1]) skip++;
        if (skip) {
            memmove(s, s + skip, n - skip + 1);
            n -= skip;
        }
        if (n == before) break;
    }
    if (has_thousands_commas(s)) {
        size_t k = 0;
        for (size_t i = 0; s[i]; i++)
            if (s[i] != ',') s[k++] = s[i];
        s[k] = 0;
        n = k;
    }

    rational r;
    int rc = parse_number(s, &r);
    if (rc > 0) {
        char buf[64];
        if (r.den == 1) snprintf(buf, sizeof buf, "%lld", (long long)r.num);
        else snprintf(buf, sizeof buf, "%lld/%lld", (long long)r.num, (long long)r.den);
        free(s);
        return xstrdup(buf);
    }
    if (rc < 0) {
        char *d = canonical_long_decimal(s);
        if (d) {
            free(s);
            return d;
        }
    }
    for (size_t i = 0; s[i]; i++) s[i] = (char)tolower((unsigned char)s[i]);
    return s;
}

int citer_math_equal(const char *a, const char *b)
{
    char *x = citer_math_normalize(a), *y = citer_math_normalize(b);
    int eq = *x && strcmp(x, y) == 0;
    free(x);
    free(y);
    return eq;
}

/* ---- public ---- */

char *citer_answer_extract(int format, const char *text, const char *const *choice_texts,
                           const char *const *labels, int n_choices)
{
    if (!text) return NULL;
    switch (format) {
    case CITER_FMT_MC: return extract_mc(text, choice_texts, labels, n_choices);
    case CITER_FMT_MATH:
    case CITER_FMT_GENERIC: return extract_math(text);
    default: return NULL;
    }
}

static int trimmed_equal_ci(const char *a, const char *b)
{
    while (isspace((unsigned char)*a)) a++;
    while (isspace((unsigned char)*b)) b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na && isspace((unsigned char)a[na - 1])) na--;
    while (nb && isspace((unsigned char)b[nb - 1])) nb--;
    return na && na == nb && strncasecmp(a, b, na) == 0;
}

int citer_answer_check(int format, const char *generated_text, const char *reference_answer,
                       const char *const *choice_texts, const char *const *labels,
                       int n_choices)
{
    if (format != CITER_FMT_MC && format != CITER_FMT_MATH && format != CITER_FMT_GENERIC) {
        citer_set_error("answer check: unknown item format %d", format);
        return -1;
    }
    if (!reference_answer) {
        citer_set_error("answer check: the item has no reference answer");
        return -1;
    }
    char *got = citer_answer_extract(format, generated_text ? generated_text : "", choice_texts,
                                     labels, n_choices);
    if (!got) return 0;
    int ok = format == CITER_FMT_MC ? trimmed_equal_ci(got, reference_answer)
                                    : citer_math_equal(got, reference_answer);
    free(got);
    return ok;
}

int citer_answer_correct(int format, const char *generated_text, const char *reference_answer)
{
    return citer_answer_check(format, generated_text, reference_answer, NULL, NULL, 0);
}
