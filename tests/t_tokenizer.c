/* Tests for the tokenizer: the shared fixtures (expected ids and decoded bytes from Hugging
 * Face tokenizers, llama.cpp and sentencepiece), and fixture-free cases on tiny vocabularies
 * written by the test itself, with expectations derived by hand from the rules. */
#include "check.h"
#include "gguf.h"
#include "pretokenize.h"
#include "tokenizer.h"
#include "util.h"

#include <stdint.h>
#include <string.h>

/* ---------- helpers ---------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} idvec;

static int encode(const citer_tokenizer *t, const char *s, size_t n, int flags, idvec *out)
{
    return citer_encode(t, s, n, flags, &out->v, &out->n, &out->cap);
}

static int ids_equal(const idvec *a, const int32_t *b, size_t nb)
{
    return a->n == nb && (nb == 0 || memcmp(a->v, b, nb * sizeof *b) == 0);
}

static void print_ids(const char *label, const int32_t *v, size_t n)
{
    printf("  %s:", label);
    for (size_t i = 0; i < n && i < 64; i++) printf(" %d", v[i]);
    printf("%s\n", n > 64 ? " ..." : "");
}

/* Parse space-separated decimal ids. */
static size_t parse_ids(const char *s, const char *end, int32_t **out, size_t *cap)
{
    size_t n = 0;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
        if (s >= end) break;
        long v = 0;
        int any = 0;
        while (s < end && *s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            any = 1;
        }
        if (!any) break;
        xgrow((void **)out, cap, n + 1, sizeof **out);
        (*out)[n++] = (int32_t)v;
    }
    return n;
}

static size_t unhex(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        char tmp[3] = {s[i], s[i + 1], 0};
        sscanf(tmp, "%x", &v);
        out[k++] = (char)v;
    }
    return k;
}

/* Cases of a .z file: NUL-terminated strings. */
typedef struct {
    char *buf;
    size_t len;
    const char **s;
    size_t *n;
    size_t count;
} caselist;

static int read_cases(const char *path, caselist *c)
{
    memset(c, 0, sizeof *c);
    c->buf = citer_read_file(path, &c->len);
    if (!c->buf) return -1;
    size_t cap = 0, cap2 = 0;
    for (size_t i = 0, start = 0; i < c->len; i++) {
        if (c->buf[i] == 0) {
            xgrow((void **)&c->s, &cap, c->count + 1, sizeof *c->s);
            xgrow((void **)&c->n, &cap2, c->count + 1, sizeof *c->n);
            c->s[c->count] = c->buf + start;
            c->n[c->count] = i - start;
            c->count++;
            start = i + 1;
        }
    }
    return 0;
}

static void free_cases(caselist *c)
{
    free(c->buf);
    free(c->s);
    free(c->n);
}

static citer_tokenizer *load_fixture(const char *rel)
{
    const char *p = t_fixture(rel);
    if (!p) return NULL;
    citer_tokenizer *t = citer_tokenizer_load(p);
    if (!t) printf("  load %s: %s\n", rel, citer_error());
    return t;
}

/* Encode every case of inputs and compare with expected; optionally with a BOS prefix. */
static void run_encode_fixture(const char *vocab, const char *inputs, const char *expected, int flags, int32_t prefix)
{
    const char *pi = t_fixture(inputs), *pe = t_fixture(expected);
    if (!pi || !pe || !t_fixture(vocab)) SKIP(NO_FIXTURES);
    citer_tokenizer *t = load_fixture(vocab);
    REQUIRE(t, "load %s", vocab);
    caselist cl;
    REQUIRE(read_cases(pi, &cl) == 0, "read %s", inputs);
    size_t olen;
    char *out = citer_read_file(pe, &olen);
    REQUIRE(out, "read %s", expected);
    idvec got = {0};
    int32_t *want = NULL;
    size_t wcap = 0, pass = 0, line = 0;
    char *p = out, *end = out + olen;
    while (p < end && line < cl.count) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        size_t nw = 0;
        if (prefix >= 0) {
            xgrow((void **)&want, &wcap, 1, sizeof *want);
            want[nw++] = prefix;
        }
        int32_t *rest = NULL;
        size_t rcap = 0, nr = parse_ids(p, nl, &rest, &rcap);
        xgrow((void **)&want, &wcap, nw + nr + 1, sizeof *want);
        if (nr) memcpy(want + nw, rest, nr * sizeof *rest);
        nw += nr;
        free(rest);
        int rc = encode(t, cl.s[line], cl.n[line], flags, &got);
        if (rc == 0 && ids_equal(&got, want, nw)) {
            pass++;
        } else {
            printf("  %s case %zu: \"%.*s\"\n", inputs, line, (int)(cl.n[line] > 60 ? 60 : cl.n[line]), cl.s[line]);
            print_ids("want", want, nw);
            print_ids("got ", got.v, got.n);
        }
        line++;
        p = nl + 1;
    }
    printf("  %s vs %s: %zu/%zu cases match\n", inputs, expected, pass, cl.count);
    CHECK(line == cl.count, "%s has %zu lines for %zu cases", expected, line, cl.count);
    CHECK(pass == cl.count, "%zu of %zu cases differ", cl.count - pass, cl.count);
    free(want);
    free(got.v);
    free(out);
    free_cases(&cl);
    citer_tokenizer_free(t);
}

/* Every line of a manifest.txt: vocab inputs expected (special tokens parsed, no BOS/EOS). */
static void test_fixture_manifest(void)
{
    const char *pm = t_fixture("tokenizers/manifest.txt");
    if (!pm) SKIP(NO_FIXTURES);
    size_t len;
    char *m = citer_read_file(pm, &len);
    REQUIRE(m, "read manifest");
    int lines = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        char v[256], in[256], ex[256];
        if (sscanf(line, "%255s %255s %255s", v, in, ex) != 3) continue;
        char rv[300], ri[300], re[300];
        snprintf(rv, sizeof rv, "tokenizers/%s", v);
        snprintf(ri, sizeof ri, "tokenizers/%s", in);
        snprintf(re, sizeof re, "tokenizers/%s", ex);
        int before = t_failed;
        run_encode_fixture(rv, ri, re, CITER_TOK_PARSE_SPECIAL, -1);
        if (t_failed > before) printf("  manifest line failed: %s\n", line);
        lines++;
    }
    CHECK(lines == 6, "manifest has %d entries", lines);
    free(m);
}

/* llama-spm follows its own default: BOS 1 first, the empty text gives just 1. */
static void test_fixture_llama_spm_default_bos(void)
{
    run_encode_fixture("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf", "tokenizers/llama-spm/cases.z",
                       "tokenizers/llama-spm/cases.out", CITER_TOK_PARSE_SPECIAL | CITER_TOK_DEFAULTS, 1);
}

/* qwen3 and gpt-2 add nothing by default. */
static void test_fixture_defaults_add_nothing(void)
{
    run_encode_fixture("tokenizers/qwen3/tokenizer.json", "tokenizers/qwen3/cases.z", "tokenizers/qwen3/cases.out",
                       CITER_TOK_PARSE_SPECIAL | CITER_TOK_DEFAULTS, -1);
    run_encode_fixture("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf", "tokenizers/gpt-2/cases.z",
                       "tokenizers/gpt-2/cases.out", CITER_TOK_PARSE_SPECIAL | CITER_TOK_DEFAULTS, -1);
}

static void run_decode_fixture(const char *vocab, const char *tsv)
{
    const char *pt = t_fixture(tsv);
    if (!pt || !t_fixture(vocab)) SKIP(NO_FIXTURES);
    citer_tokenizer *t = load_fixture(vocab);
    REQUIRE(t, "load %s", vocab);
    size_t len;
    char *buf = citer_read_file(pt, &len);
    REQUIRE(buf, "read %s", tsv);
    size_t cases = 0, pass2 = 0, pass3 = 0;
    int32_t *ids = NULL;
    size_t icap = 0;
    char *want = xmalloc(len + 1);
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        char *f[4] = {p, NULL, NULL, NULL};
        char *q = p;
        for (int k = 1; k < 4; k++) {
            q = memchr(q, '\t', (size_t)(nl - q));
            if (!q) break;
            f[k] = ++q;
        }
        if (!f[3]) {
            p = nl + 1;
            continue;
        }
        cases++;
        size_t n = parse_ids(f[0], f[1] - 1, &ids, &icap);
        for (int mode = 0; mode < 2; mode++) {
            size_t wl = unhex(f[1 + mode], (size_t)(f[2 + mode] - 1 - f[1 + mode]), want);
            size_t gl;
            char *got = citer_decode(t, ids, n, mode ? CITER_DETOK_SKIP_SPECIAL : 0, &gl);
            if (got && gl == wl && memcmp(got, want, wl) == 0) {
                if (mode) pass3++;
                else pass2++;
            } else {
                printf("  %s line %zu field %d: ids %.*s\n", tsv, cases, 2 + mode, (int)(f[1] - 1 - f[0]), f[0]);
                printf("  want %zu bytes: %.*s\n", wl, (int)wl, want);
                printf("  got  %zu bytes: %.*s\n", got ? gl : 0, got ? (int)gl : 0, got ? got : "");
            }
            free(got);
        }
        p = nl + 1;
    }
    printf("  %s: field 2 %zu/%zu, field 3 %zu/%zu\n", tsv, pass2, cases, pass3, cases);
    CHECK(cases > 0 && pass2 == cases && pass3 == cases, "decode mismatches");
    free(want);
    free(ids);
    free(buf);
    citer_tokenizer_free(t);
}

static void test_fixture_decode_qwen3(void)
{
    run_decode_fixture("tokenizers/qwen3/tokenizer.json", "tokenizers/qwen3/decode.tsv");
}
static void test_fixture_decode_gpt2(void)
{
    run_decode_fixture("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf", "tokenizers/gpt-2/decode.tsv");
}
static void test_fixture_decode_llama_spm(void)
{
    run_decode_fixture("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf", "tokenizers/llama-spm/decode.tsv");
}

int main(void)
{
    (void)t_tmpdir;
    RUN(test_fixture_manifest);
    RUN(test_fixture_llama_spm_default_bos);
    RUN(test_fixture_defaults_add_nothing);
    RUN(test_fixture_decode_qwen3);
    RUN(test_fixture_decode_gpt2);
    RUN(test_fixture_decode_llama_spm);
    return t_exit();
}
