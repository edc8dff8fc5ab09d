/* pretokenize: hand-written matchers for the pre-tokenizer regexes (see pretokenize.h). */
#include "pretokenize.h"
#include "unicode.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Per-code-point class bits, computed once per text. */
enum { F_L = 1, F_N = 2, F_S = 4, F_CRLF = 8, F_P = 16 };

static uint8_t classify(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return F_L;
        if (cp >= '0' && cp <= '9') return F_N;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return F_S | ((cp == '\r' || cp == '\n') ? F_CRLF : 0);
        if (cp < 0x20 || cp == 0x7f) return 0;
        /* ASCII punctuation (Pc Pd Ps Pe Po); $ + < = > ^ ` | ~ are symbols (S) */
        return strchr("$+<=>^`|~", (int)cp) ? 0 : F_P;
    }
    int c = ucat(cp);
    uint8_t f = 0;
    if (c >= UC_Lu && c <= UC_Lo) f |= F_L;
    else if (c >= UC_Nd && c <= UC_No) f |= F_N;
    else if (c >= UC_Pc && c <= UC_Po) f |= F_P;
    if (uc_is_space(cp)) f |= F_S;
    return f;
}

typedef struct {
    const uint32_t *cp;
    const uint8_t *fl;
} ctx;

static size_t run_of(const ctx *c, size_t i, size_t e, uint8_t mask)
{
    while (i < e && (c->fl[i] & mask)) i++;
    return i;
}

/* [^\s\p{L}\p{N}] */
static int is_other(const ctx *c, size_t i) { return !(c->fl[i] & (F_S | F_L | F_N)); }

static size_t run_other(const ctx *c, size_t i, size_t e)
{
    while (i < e && is_other(c, i)) i++;
    return i;
}

/* 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive (Unicode simple folding, so that
 * (?i) 's also matches U+017F long s, as Oniguruma does). */
static size_t contraction(const ctx *c, size_t i, size_t e, int fold)
{
    if (c->cp[i] != '\'' || i + 1 >= e) return i;
    uint32_t a = c->cp[i + 1];
    if (fold) a = uc_fold(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= e) return i;
    uint32_t b = c->cp[i + 2];
    if (fold) b = uc_fold(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return i;
}

/* \s+(?!\S)|\s+ at a whitespace code point: the run, minus its last code point when a
 * non-space follows and the run is longer than one (the lookahead backtracks by one). */
static size_t space_run(const ctx *c, size_t i, size_t e)
{
    size_t k = run_of(c, i, e, F_S);
    if (k == e || k - i < 2) return k;
    return k - 1;
}

static size_t m_gpt2(const ctx *c, size_t i, size_t e)
{
    size_t k = contraction(c, i, e, 0);
    if (k > i) return k;
    int sp = c->cp[i] == ' ' && i + 1 < e;
    if (sp && (c->fl[i + 1] & F_L)) return run_of(c, i + 1, e, F_L);
    if (c->fl[i] & F_L) return run_of(c, i, e, F_L);
    if (sp && (c->fl[i + 1] & F_N)) return run_of(c, i + 1, e, F_N);
    if (c->fl[i] & F_N) return run_of(c, i, e, F_N);
    if (sp && is_other(c, i + 1)) return run_other(c, i + 1, e);
    if (is_other(c, i)) return run_other(c, i, e);
    return space_run(c, i, e);
}

static size_t m_llama3(const ctx *c, size_t i, size_t e, size_t max_digits)
{
    size_t k = contraction(c, i, e, 1);
    if (k > i) return k;
    uint8_t f = c->fl[i];
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (!(f & (F_CRLF | F_L | F_N)) && i + 1 < e && (c->fl[i + 1] & F_L)) return run_of(c, i + 1, e, F_L);
    if (f & F_L) return run_of(c, i, e, F_L);
    /* \p{N}{1,max} */
    if (f & F_N) {
        k = i + 1;
        while (k < e && k - i < max_digits && (c->fl[k] & F_N)) k++;
        return k;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    if (c->cp[i] == ' ' && i + 1 < e && is_other(c, i + 1)) return run_of(c, run_other(c, i + 1, e), e, F_CRLF);
    if (is_other(c, i)) return run_of(c, run_other(c, i, e), e, F_CRLF);
    /* \s*[\r\n]+ : up to the last CR/LF of the whitespace run */
    k = run_of(c, i, e, F_S);
    for (size_t j = k; j > i; j--)
        if (c->fl[j - 1] & F_CRLF) return j;
    /* \s+(?!\S)|\s+ */
    return space_run(c, i, e);
}

/* DeepSeek LLM's letter class, range by range as written in its tokenizer.json regex. */
static const uint32_t ds_letters[][2] = {
    {0x41,0x5A},{0x61,0x7A},{0xB5,0xB5},{0xC0,0xD6},{0xD8,0xF6},{0xF8,0x1BA},{0x1BC,0x1BF},
    {0x1C4,0x293},{0x295,0x2AF},{0x370,0x373},{0x376,0x377},{0x37B,0x37D},{0x37F,0x37F},
    {0x386,0x386},{0x388,0x38A},{0x38C,0x38C},{0x38E,0x3A1},{0x3A3,0x3F5},{0x3F7,0x481},
    {0x48A,0x52F},{0x531,0x556},{0x10A0,0x10C5},{0x13A0,0x13F5},{0x13F8,0x13FD},{0x1C90,0x1CBA},
    {0x1CBD,0x1CBF},{0x1D00,0x1D2B},{0x1D6B,0x1D77},{0x1D79,0x1D9A},{0x1E00,0x1F15},{0x1F18,0x1F1D},
    {0x1F20,0x1F45},{0x1F48,0x1F4D},{0x1F50,0x1F57},{0x1F59,0x1F59},{0x1F5B,0x1F5B},{0x1F5D,0x1F5D},
    {0x1F5F,0x1F7D},{0x1F80,0x1FB4},{0x1FB6,0x1FBC},{0x1FBE,0x1FBE},{0x1FC2,0x1FC4},{0x1FC6,0x1FCC},
    {0x1FD0,0x1FD3},{0x1FD6,0x1FDB},{0x1FE0,0x1FEC},{0x1FF2,0x1FF4},{0x1FF6,0x1FFC},{0x2102,0x2102},
    {0x2107,0x2107},{0x210A,0x2113},{0x2115,0x2115},{0x2119,0x211D},{0x2124,0x2124},{0x2126,0x2126},
    {0x2128,0x2128},{0x212A,0x212D},{0x212F,0x2134},{0x2139,0x2139},{0x213C,0x213F},{0x2145,0x2149},
    {0x214E,0x214E},{0x2183,0x2184},{0x2C00,0x2C7B},{0x2C7E,0x2CE4},{0x2CEB,0x2CEE},{0x2CF2,0x2CF3},
    {0xA640,0xA66D},{0xA680,0xA69B},{0xA722,0xA76F},{0xA771,0xA787},{0xA78B,0xA78E},{0xAB70,0xABBF},
    {0xFB00,0xFB06},{0xFB13,0xFB17},{0xFF21,0xFF3A},{0xFF41,0xFF5A},{0x10400,0x1044F},
    {0x104B0,0x104D3},{0x104D8,0x104FB},{0x10C80,0x10CB2},{0x10CC0,0x10CF2},{0x118A0,0x118DF},
    {0x1E900,0x1E943},
};

static int in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int is_ds_letter(uint32_t cp) { return in_ranges(cp, ds_letters, sizeof ds_letters / sizeof ds_letters[0]); }

static int is_ds_punct(uint32_t cp)
{
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x7E) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
           (cp >= 0xFF1A && cp <= 0xFF5E) || (cp >= 0x2018 && cp <= 0x201F) || (cp >= 0x3000 && cp <= 0x3002);
}

static int is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x0800 && cp <= 0x4E00) || (cp >= 0xAC00 && cp <= 0xD7FF);
}

static int is_punct_extra(uint32_t cp, int backtick)
{
    return cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' || cp == '~' ||
           cp == '|' || (backtick && cp == '`');
}

/* \s?X+ for a class given as predicate on code point or class mask. */
static size_t space_opt_run(const ctx *c, size_t i, size_t e, int (*pred)(uint32_t), uint8_t mask)
{
#define IN(j) (pred ? pred(c->cp[j]) : (c->fl[j] & mask) != 0)
    size_t j = i;
    if ((c->fl[i] & F_S) && i + 1 < e && IN(i + 1)) j = i + 1;
    else if (!IN(i)) return i;
    while (j < e && IN(j)) j++;
    return j;
#undef IN
}

/* One match attempt at i within [.., e). Returns the match end, or i for no match, in which
 * case *next is where the next attempt may start (after i at least). */
static size_t match(int stage, const ctx *c, size_t i, size_t e, size_t *next)
{
    size_t k;
    *next = i + 1;
    switch (stage) {
    case PT_GPT2: return m_gpt2(c, i, e);
    case PT_LLAMA3: return m_llama3(c, i, e, 3);
    case PT_QWEN2: return m_llama3(c, i, e, 1);
    case PT_DIGIT: return (c->fl[i] & F_N) ? i + 1 : i;
    case PT_DIGITS: return run_of(c, i, e, F_N);
    case PT_DIGIT3:
        for (k = i; k < i + 3; k++)
            if (k >= e || c->cp[k] < '0' || c->cp[k] > '9') return i;
        return i + 3;
    case PT_PUNCT_FALCON:
    case PT_PUNCT_DEFAULT:
        k = i;
        while (k < e && ((c->fl[k] & F_P) || is_punct_extra(c->cp[k], stage == PT_PUNCT_FALCON))) k++;
        return k;
    case PT_CRLF: return (c->fl[i] & F_CRLF) ? i + 1 : i;
    case PT_DS_LETTERS: return space_opt_run(c, i, e, is_ds_letter, 0);
    case PT_DS_PUNCT: return space_opt_run(c, i, e, is_ds_punct, 0);
    case PT_SPACE_LETTERS: return space_opt_run(c, i, e, NULL, F_L);
    case PT_SPACE_PUNCT: return space_opt_run(c, i, e, NULL, F_P);
    case PT_TRAIL_SPACE:
        k = run_of(c, i, e, F_S);
        if (k == e) return k;
        if (k > i) *next = k; /* no later start inside this run can reach the end either */
        return i;
    case PT_CJK:
        k = i;
        while (k < e && is_cjk(c->cp[k])) k++;
        return k;
    }
    return i;
}

static void push(size_t **p, size_t *n, size_t *cap, size_t v)
{
    if (*n == *cap) xgrow((void **)p, cap, *n + 1, sizeof **p);
    (*p)[(*n)++] = v;
}

/* Split code points [a, e) with one stage, appending piece ends to out. */
static void split_stage(int stage, const ctx *c, size_t a, size_t e, size_t **out, size_t *n, size_t *cap)
{
    size_t i = a, gap = a;
    while (i < e) {
        size_t next;
        size_t k = match(stage, c, i, e, &next);
        if (k > i) {
            if (gap < i) push(out, n, cap, i);
            push(out, n, cap, k);
            i = gap = k;
        } else {
            i = next;
        }
    }
    if (gap < e) push(out, n, cap, e);
}

void pretok_buf_free(pretok_buf *b)
{
    free(b->cp);
    free(b->fl);
    free(b->off);
    free(b->pa);
    free(b->pb);
    free(b->ends);
    memset(b, 0, sizeof *b);
}

size_t pretokenize(const int *stages, int n_stages, const uint8_t *s, size_t n, pretok_buf *b)
{
    if (n == 0) return 0;
    if (n_stages == 0) {
        if (b->ecap < 1) xgrow((void **)&b->ends, &b->ecap, 1, sizeof *b->ends);
        b->ends[0] = n;
        return 1;
    }
    if (b->cap < n + 1) {
        size_t cap = b->cap;
        xgrow((void **)&b->cp, &cap, n + 1, sizeof *b->cp);
        cap = b->cap;
        xgrow((void **)&b->fl, &cap, n + 1, sizeof *b->fl);
        cap = b->cap;
        xgrow((void **)&b->off, &cap, n + 1, sizeof *b->off);
        b->cap = cap;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len;
        if (s[i] < 0x80) {
            cp = s[i];
            len = 1;
        } else {
            len = utf8_decode(s + i, n - i, &cp);
        }
        b->cp[m] = cp;
        b->fl[m] = classify(cp);
        b->off[m] = i;
        m++;
        i += (size_t)len;
    }
    b->off[m] = n;
    ctx c = {b->cp, b->fl};

    size_t na = 0, nb;
    split_stage(stages[0], &c, 0, m, &b->pa, &na, &b->pcap_a);
    for (int st = 1; st < n_stages; st++) {
        nb = 0;
        size_t start = 0;
        for (size_t p = 0; p < na; p++) {
            split_stage(stages[st], &c, start, b->pa[p], &b->pb, &nb, &b->pcap_b);
            start = b->pa[p];
        }
        size_t *t = b->pa; b->pa = b->pb; b->pb = t;
        size_t tc = b->pcap_a; b->pcap_a = b->pcap_b; b->pcap_b = tc;
        na = nb;
    }
    if (b->ecap < na) xgrow((void **)&b->ends, &b->ecap, na, sizeof *b->ends);
    for (size_t p = 0; p < na; p++) b->ends[p] = b->off[b->pa[p]];
    return na;
}

/* ---- names ---- */

static const struct { const char *pattern; int stage; } known_regex[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", PT_QWEN2},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", PT_LLAMA3},
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", PT_GPT2},
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", PT_GPT2},
    {"\\p{N}", PT_DIGIT},
    {"\\p{N}+", PT_DIGITS},
    {"\\p{N}{1}", PT_DIGIT},
    {"[0-9][0-9][0-9]", PT_DIGIT3},
    {"[\\p{P}\\$\\+<=>\\^~\\|`]+", PT_PUNCT_FALCON},
    {"[\\p{P}\\$\\+<=>\\^~\\|]+", PT_PUNCT_DEFAULT},
    {"[\r\n]", PT_CRLF},
    {"[\\r\\n]", PT_CRLF},
    {"\\s?[!-/:-~！-／：-～‘-‟　-。]+", PT_DS_PUNCT},
    {"\\s+$", PT_TRAIL_SPACE},
    {"[一-龥ࠀ-一가-퟿]+", PT_CJK},
    {"\\s?\\p{L}+", PT_SPACE_LETTERS},
    {"\\s?\\p{P}+", PT_SPACE_PUNCT},
};

int pretok_stage_by_regex(const char *pattern)
{
    for (size_t i = 0; i < sizeof known_regex / sizeof known_regex[0]; i++)
        if (strcmp(pattern, known_regex[i].pattern) == 0) return known_regex[i].stage;
    /* DeepSeek's letter list is long: recognise it by its exact head and tail. */
    static const char head[] = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-";
    static const char tail[] = "𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
    size_t n = strlen(pattern), nh = sizeof head - 1, nt = sizeof tail - 1;
    if (n > nh + nt && memcmp(pattern, head, nh) == 0 && strcmp(pattern + n - nt, tail) == 0) return PT_DS_LETTERS;
    return PT_NONE;
}

static const char *const stage_names[PT_COUNT] = {
    "none", "gpt2", "llama3", "qwen2", "digit", "digits", "digit3", "punct-falcon", "punct-default",
    "crlf", "deepseek-letters", "deepseek-punct", "trailing-space", "cjk", "space-letters", "space-punct",
};

const char *pretok_stage_name(int stage)
{
    return stage >= 0 && stage < PT_COUNT ? stage_names[stage] : "?";
}

int pretok_stages_by_gguf_pre(const char *name, int *st, int *clean_spaces, int *ignore_merges)
{
    *clean_spaces = 1;
    *ignore_merges = 0;
#define IS(s) (strcmp(name, s) == 0)
    if (!name || !*name || IS("default")) {
        st[0] = PT_PUNCT_DEFAULT; st[1] = PT_GPT2; st[2] = PT_DIGITS; st[3] = PT_DIGIT3;
        return 4;
    }
    if (IS("gpt-2") || IS("phi-2") || IS("jina-es") || IS("jina-de") || IS("gigachat") || IS("jina-v1-en") ||
        IS("jina-v2-es") || IS("jina-v2-de") || IS("jina-v2-code") || IS("roberta-bpe") || IS("mpt") ||
        IS("olmo") || IS("jais")) {
        st[0] = PT_GPT2;
        return 1;
    }
    if (IS("llama3") || IS("llama-v3") || IS("llama-bpe") || IS("falcon3") || IS("dbrx") || IS("smaug-bpe")) {
        *ignore_merges = IS("llama3") || IS("llama-v3") || IS("llama-bpe") || IS("falcon3");
        st[0] = PT_LLAMA3;
        return 1;
    }
    if (IS("qwen2") || IS("deepseek-r1-qwen") || IS("megrez")) {
        *clean_spaces = 0;
        st[0] = PT_QWEN2;
        return 1;
    }
    if (IS("starcoder") || IS("refact") || IS("command-r") || IS("smollm") || IS("codeshell") || IS("exaone") ||
        IS("minerva-7b")) {
        if (IS("command-r") || IS("smollm")) *clean_spaces = 0;
        st[0] = PT_DIGIT; st[1] = PT_GPT2;
        return 2;
    }
    if (IS("falcon")) {
        st[0] = PT_PUNCT_FALCON; st[1] = PT_GPT2; st[2] = PT_DIGIT3;
        return 3;
    }
    if (IS("deepseek-llm")) {
        *clean_spaces = 0;
        st[0] = PT_CRLF; st[1] = PT_DS_LETTERS; st[2] = PT_DS_PUNCT; st[3] = PT_TRAIL_SPACE; st[4] = PT_CJK;
        st[5] = PT_DIGITS;
        return 6;
    }
    if (IS("deepseek-coder")) {
        *clean_spaces = 0;
        st[0] = PT_CRLF; st[1] = PT_SPACE_LETTERS; st[2] = PT_SPACE_PUNCT; st[3] = PT_CJK; st[4] = PT_DIGIT;
        return 5;
    }
#undef IS
    return -1;
}
