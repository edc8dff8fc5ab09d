/* Tests for lib/unicode: categories and White_Space against values read by hand from
 * UnicodeData.txt / PropList.txt (Unicode 15.0), UTF-8 coding against the Unicode
 * standard's Table 3-7 and the WHATWG "maximal subpart" replacement rule, NFC against
 * UAX #15 examples and the whole NormalizationTest.txt when it is installed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "unicode.h"

#define UCD "/usr/share/unicode"

static const char *cat_name(int c)
{
    static const char *names[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                  "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                  "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    return c >= 0 && c < UC_COUNT ? names[c] : "??";
}

static void categories(void)
{
    static const struct {
        uint32_t cp;
        int cat;
    } cases[] = {
        {0x41, UC_Lu},     {0x61, UC_Ll},     {0x01C5, UC_Lt},   {0x02B0, UC_Lm},
        {0x4E2D, UC_Lo},   {0x0301, UC_Mn},   {0x0903, UC_Mc},   {0x20DD, UC_Me},
        {0x0661, UC_Nd},   {0x16EE, UC_Nl},   {0x00BD, UC_No},   {0x00B2, UC_No},
        {0x2460, UC_No},   {0x5F, UC_Pc},     {0x2D, UC_Pd},     {0x28, UC_Ps},
        {0x29, UC_Pe},     {0xAB, UC_Pi},     {0xBB, UC_Pf},     {0x21, UC_Po},
        {0x2B, UC_Sm},     {0x24, UC_Sc},     {0x5E, UC_Sk},     {0xA6, UC_So},
        {0x1F600, UC_So},  {0x4DC0, UC_So},   {0xA0, UC_Zs},     {0x20, UC_Zs},
        {0x2028, UC_Zl},   {0x2029, UC_Zp},   {0x00, UC_Cc},     {0x0A, UC_Cc},
        {0x85, UC_Cc},     {0xAD, UC_Cf},     {0x0378, UC_Cn},   {0xFFFE, UC_Cn},
        {0x10FFFF, UC_Cn}, {0x110000, UC_Cn}, {0xFFFFFFFF, UC_Cn},
        /* <..., First>/<..., Last> ranges and just past them */
        {0x3400, UC_Lo},   {0x4DBF, UC_Lo},   {0x4E00, UC_Lo},   {0x9FFF, UC_Lo},
        {0x20000, UC_Lo},  {0x2A6DF, UC_Lo},  {0x2A6E0, UC_Cn},  {0x31350, UC_Lo},
        {0x323AF, UC_Lo},  {0x323B0, UC_Cn},  {0xAC00, UC_Lo},   {0xD7A3, UC_Lo},
        {0xD7A4, UC_Cn},   {0xD800, UC_Cs},   {0xDFFF, UC_Cs},   {0xE000, UC_Co},
        {0xF8FF, UC_Co},   {0xF0000, UC_Co},  {0xFFFFD, UC_Co},  {0xFFFFE, UC_Cn},
        {0x100000, UC_Co}, {0x10FFFD, UC_Co},
        /* stand-ins for invalid UTF-8 bytes have no category */
        {UC_INVALID_BASE + 0xFF, UC_Cn},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = ucat(cases[i].cp);
        CHECK(c == cases[i].cat, "U+%04X: got %s, want %s", (unsigned)cases[i].cp, cat_name(c),
              cat_name(cases[i].cat));
    }
}

static void category_classes(void)
{
    CHECK(uc_is_letter('A') && uc_is_letter(0x4E2D) && uc_is_letter(0x01C5) && uc_is_letter(0x02B0),
          "letters");
    CHECK(!uc_is_letter('1') && !uc_is_letter(0x0301), "non-letters");
    CHECK(uc_is_number('7') && uc_is_number(0xBD) && uc_is_number(0x16EE) && uc_is_number(0xB2),
          "\\p{N} = Nd|Nl|No");
    CHECK(!uc_is_number('a') && !uc_is_number(0x4E00), "non-numbers");
    CHECK(uc_is_mark(0x0301) && uc_is_mark(0x0903) && uc_is_mark(0x20DD), "marks");
    CHECK(uc_is_punct('!') && uc_is_punct('_') && uc_is_punct(0xAB) && !uc_is_punct('+'), "punct");
    CHECK(uc_is_symbol('+') && uc_is_symbol('$') && uc_is_symbol(0x1F600) && !uc_is_symbol('!'),
          "symbols");
}

static void white_space(void)
{
    static const uint32_t yes[] = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20,   0x85,   0xA0,
                                   0x1680, 0x2000, 0x2005, 0x200A, 0x2028, 0x2029, 0x202F,
                                   0x205F, 0x3000};
    static const uint32_t no[] = {0x00, 0x08, 0x0E, 0x1F, 0x21, 'a', 0x84, 0x86, 0x9F, 0xA1,
                                  0x180E, 0x200B, 0x200C, 0x2060, 0xFEFF, 0x3001, 0x110000,
                                  UC_INVALID_BASE + 0x20};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(uc_is_space(yes[i]), "U+%04X should be White_Space", (unsigned)yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!uc_is_space(no[i]), "U+%04X should not be White_Space", (unsigned)no[i]);
}

static void case_mappings(void)
{
    CHECK(uc_fold('A') == 'a' && uc_fold('z') == 'z' && uc_fold('@') == '@', "ASCII fold");
    CHECK(uc_fold(0xC0) == 0xE0, "U+00C0 folds to U+00E0");
    CHECK(uc_fold(0x03A3) == 0x03C3 && uc_fold(0x03C2) == 0x03C3, "sigmas fold to U+03C3");
    CHECK(uc_fold(0x212A) == 'k', "Kelvin sign folds to k");
    CHECK(uc_fold(0x1E9E) == 0xDF, "U+1E9E folds (S) to U+00DF");
    CHECK(uc_fold(0xDF) == 0xDF, "U+00DF has only a full (F) folding");
    CHECK(uc_fold(0x0130) == 0x0130, "U+0130 has only F and T foldings");
    CHECK(uc_fold(0x13F8) == 0x13F0 && uc_fold(0xAB70) == 0x13A0, "Cherokee folds");
    CHECK(uc_fold(0x4E2D) == 0x4E2D && uc_fold(0x110000) == 0x110000, "no folding");
    CHECK(uc_lower('A') == 'a' && uc_lower('a') == 'a', "ASCII lower");
    CHECK(uc_lower(0x0130) == 'i', "U+0130 lowercases to i");
    CHECK(uc_lower(0x212A) == 'k' && uc_lower(0x03A3) == 0x03C3 && uc_lower(0x1E9E) == 0xDF,
          "lower");
    CHECK(uc_lower(0x01C5) == 0x01C6 && uc_lower(0x03C2) == 0x03C2, "lower of Lt / Ll");
}

static void decode_case(const char *bytes, size_t n, int want_len, uint32_t want_cp, int line)
{
    uint32_t cp = 0;
    int len = utf8_decode((const uint8_t *)bytes, n, &cp);
    CHECK(len == want_len && cp == want_cp, "line %d: got len %d cp 0x%X, want len %d cp 0x%X",
          line, len, (unsigned)cp, want_len, (unsigned)want_cp);
}
#define DECODE(b, len, cp) decode_case(b, sizeof(b) - 1, len, cp, __LINE__)
#define BAD(b) decode_case(b, sizeof(b) - 1, 1, UC_INVALID_BASE + (uint8_t)(b)[0], __LINE__)

static void utf8_decoding(void)
{
    DECODE("A", 1, 0x41);
    DECODE("\x7F", 1, 0x7F);
    DECODE("\xC2\x80", 2, 0x80);
    DECODE("\xC3\xA9", 2, 0xE9);
    DECODE("\xDF\xBF", 2, 0x7FF);
    DECODE("\xE0\xA0\x80", 3, 0x800);
    DECODE("\xE2\x82\xAC", 3, 0x20AC);
    DECODE("\xED\x9F\xBF", 3, 0xD7FF);
    DECODE("\xEE\x80\x80", 3, 0xE000);
    DECODE("\xEF\xBF\xBF", 3, 0xFFFF);
    DECODE("\xF0\x90\x80\x80", 4, 0x10000);
    DECODE("\xF0\x9F\x98\x80", 4, 0x1F600);
    DECODE("\xF4\x8F\xBF\xBF", 4, 0x10FFFF);
    DECODE("\xC3\xA9xyz", 2, 0xE9);
    BAD("\x80");           /* stray continuation */
    BAD("\xBF\xBF");
    BAD("\xC0\x80");       /* overlong */
    BAD("\xC1\xBF");
    BAD("\xE0\x80\x80");
    BAD("\xE0\x9F\xBF");
    BAD("\xF0\x80\x80\x80");
    BAD("\xF0\x8F\xBF\xBF");
    BAD("\xED\xA0\x80");   /* surrogates */
    BAD("\xED\xBF\xBF");
    BAD("\xF4\x90\x80\x80"); /* beyond U+10FFFF */
    BAD("\xF5\x80\x80\x80");
    BAD("\xFF");
    BAD("\xFE");
    BAD("\xC3");           /* truncated */
    BAD("\xE2\x82");
    BAD("\xF0\x9F\x98");
    BAD("\xC3x");
    BAD("\xE2\x82x");
    /* n bounds the read even when more bytes follow in memory */
    decode_case("\xE2\x82\xAC", 2, 1, UC_INVALID_BASE + 0xE2, __LINE__);
    decode_case("\xF0\x9F\x98\x80", 3, 1, UC_INVALID_BASE + 0xF0, __LINE__);
}

static void utf8_encoding(void)
{
    uint8_t b[4];
    CHECK(utf8_encode('A', b) == 1 && b[0] == 'A', "A");
    CHECK(utf8_encode(0xE9, b) == 2 && !memcmp(b, "\xC3\xA9", 2), "U+00E9");
    CHECK(utf8_encode(0x20AC, b) == 3 && !memcmp(b, "\xE2\x82\xAC", 3), "U+20AC");
    CHECK(utf8_encode(0x1F600, b) == 4 && !memcmp(b, "\xF0\x9F\x98\x80", 4), "U+1F600");
    CHECK(utf8_encode(0x10FFFF, b) == 4 && !memcmp(b, "\xF4\x8F\xBF\xBF", 4), "U+10FFFF");
    CHECK(utf8_encode(0x110000, b) == 0, "beyond Unicode");
    int bad = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        uint32_t back;
        int n = utf8_encode(cp, b);
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n != want || utf8_decode(b, (size_t)n, &back) != n || back != cp) bad++;
    }
    CHECK(bad == 0, "%d code points do not round-trip", bad);
    CHECK(utf8_len('a') == 1 && utf8_len(0x80) == 1 && utf8_len(0xBF) == 1, "utf8_len 1");
    CHECK(utf8_len(0xC0) == 1 && utf8_len(0xC1) == 1, "utf8_len overlong leads");
    CHECK(utf8_len(0xC2) == 2 && utf8_len(0xDF) == 2, "utf8_len 2");
    CHECK(utf8_len(0xE0) == 3 && utf8_len(0xEF) == 3, "utf8_len 3");
    CHECK(utf8_len(0xF0) == 4 && utf8_len(0xF4) == 4, "utf8_len 4");
    CHECK(utf8_len(0xF5) == 1 && utf8_len(0xFF) == 1, "utf8_len invalid leads");
}

#define FFFD "\xEF\xBF\xBD"

static void lossy_case(const char *in, size_t n, const char *want, int line)
{
    uint8_t out[3 * 64];
    size_t got = utf8_lossy((const uint8_t *)in, n, out);
    int ok = got == strlen(want) && !memcmp(out, want, got);
    CHECK(ok, "line %d: got %zu bytes, want %zu", line, got, strlen(want));
}
#define LOSSY(in, want) lossy_case(in, sizeof(in) - 1, want, __LINE__)

static void utf8_lossy_cases(void)
{
    LOSSY("", "");
    LOSSY("plain ascii", "plain ascii");
    LOSSY("caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80");
    LOSSY("\xE4\xB8", FFFD);                     /* truncated: one maximal subpart */
    LOSSY("\xC0\x80", FFFD FFFD);                /* C0 is never valid: two */
    LOSSY("\xED\xA0\x80", FFFD FFFD FFFD);       /* surrogate: ED then two strays */
    LOSSY("\xF0\x9F" "ok", FFFD "ok");
    LOSSY("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
    LOSSY("\xFF", FFFD);
    LOSSY("Hello \xF0\x90\x80World", "Hello " FFFD "World"); /* Rust's documented example */
    LOSSY("\x80\x80", FFFD FFFD);
    LOSSY("\xE2\x82\xE2\x82\xAC", FFFD "\xE2\x82\xAC");
    LOSSY("a\xF1\x80\x80", "a" FFFD);
    LOSSY("\xE0\x80\xAF", FFFD FFFD FFFD);
}

/* NFC of a UTF-8 string compared with the expected UTF-8. */
static void nfc_case(const char *in, size_t n, const char *want, int line)
{
    size_t len = 0;
    char *got = uc_nfc(in, n, &len);
    CHECK(len == strlen(want) && !memcmp(got, want, len) && got[len] == 0,
          "line %d: NFC gave %zu bytes, want %zu", line, len, strlen(want));
    free(got);
}
#define NFC(in, want) nfc_case(in, sizeof(in) - 1, want, __LINE__)

static void nfc_examples(void)
{
    NFC("", "");
    NFC("hello, world", "hello, world");
    NFC("e\xCC\x81", "\xC3\xA9");                             /* e + U+0301 -> U+00E9 */
    NFC("caf" "e\xCC\x81" "!", "caf\xC3\xA9!");
    NFC("\xC3\xA9", "\xC3\xA9");
    NFC("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"); /* L V T -> U+AC01 */
    NFC("\xE1\x84\x80\xE1\x85\xA1", "\xEA\xB0\x80");             /* L V -> U+AC00 */
    NFC("\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81");             /* LV T -> LVT */
    NFC("\xE2\x84\xAB", "\xC3\x85");                   /* U+212B Angstrom -> U+00C5 */
    NFC("\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC");   /* U+0958 excluded: stays 0915 093C */
    NFC("\xE0\xA4\x95\xE0\xA4\xBC", "\xE0\xA4\x95\xE0\xA4\xBC");
    /* D + dot above + dot below: reorder (220 before 230), then compose U+1E0C */
    NFC("D\xCC\x87\xCC\xA3", "\xE1\xB8\x8C\xCC\x87");
    NFC("\xCD\x84", "\xCC\x88\xCC\x81");               /* U+0344 -> 0308 0301 */
    /* out-of-order marks that are NFC_QC=Yes: U+0305 (ccc 230) then U+0316 (ccc 220) */
    NFC("xa\xCC\x85\xCC\x96", "xa\xCC\x96\xCC\x85");
    CHECK(!uc_nfc_quick("a\xCC\x85\xCC\x96", 5), "ccc order is part of the quick check");
    /* invalid bytes pass through and block composition */
    NFC("e\xFF\xCC\x81", "e\xFF\xCC\x81");
    NFC("\xCC\x81\xFF" "e\xCC\x81\xC0", "\xCC\x81\xFF\xC3\xA9\xC0");
    NFC("ab\xE2\x82" "e\xCC\x81", "ab\xE2\x82\xC3\xA9");
    CHECK(uc_nfc_quick("plain ascii", 11), "ASCII is NFC");
    CHECK(uc_nfc_quick("caf\xC3\xA9", 5), "precomposed e-acute is NFC");
    CHECK(!uc_nfc_quick("e\xCC\x81", 3), "e + combining acute is not certainly NFC");
    CHECK(!uc_nfc_quick("\xE2\x84\xAB", 3), "Angstrom sign is not NFC");
    CHECK(uc_nfc_quick("\xFF\xFE", 2), "invalid bytes are starters");
    CHECK(uc_ccc(0x0301) == 230 && uc_ccc(0x0323) == 220 && uc_ccc('a') == 0, "ccc");
    CHECK(uc_ccc(0x110000) == 0 && uc_ccc(UC_INVALID_BASE + 0x80) == 0, "ccc beyond Unicode");
}

static void nfc_long_mark_run(void)
{
    /* 'a' then 1000 marks alternating U+0301 (ccc 230) and U+0323 (ccc 220): a run long
     * enough for the counting sort. */
    size_t n = 1 + 1000 * 2;
    char *in = malloc(n);
    REQUIRE(in != NULL, "malloc");
    in[0] = 'a';
    for (int i = 0; i < 1000; i++) memcpy(in + 1 + 2 * i, i % 2 ? "\xCC\xA3" : "\xCC\x81", 2);
    size_t len;
    char *out = uc_nfc(in, n, &len);
    /* U+1EA1 (a with dot below) = 0061 0323 is a primary composite, so a + 0323 -> U+1EA1,
     * then 499 more U+0323 and 500 U+0301 in that order. */
    int ok = len == 3 + 499 * 2 + 500 * 2 && !memcmp(out, "\xE1\xBA\xA1", 3);
    for (int i = 0; ok && i < 999; i++)
        ok = !memcmp(out + 3 + 2 * i, i < 499 ? "\xCC\xA3" : "\xCC\x81", 2);
    CHECK(ok, "long run of marks sorted and composed");
    free(in);
    free(out);
}

/* Parse "XXXX YYYY" into UTF-8. */
static size_t parse_cps(const char *f, char *out)
{
    size_t n = 0;
    char *end;
    for (;;) {
        while (*f == ' ') f++;
        if (!*f) break;
        unsigned long cp = strtoul(f, &end, 16);
        if (end == f) break;
        n += (size_t)utf8_encode((uint32_t)cp, (uint8_t *)out + n);
        f = end;
    }
    out[n] = 0;
    return n;
}

static int nfc_equals(const char *in, size_t n, const char *want, size_t wn)
{
    size_t len;
    char *got = uc_nfc(in, n, &len);
    int ok = len == wn && !memcmp(got, want, len);
    free(got);
    if (ok && uc_nfc_quick(in, n)) ok = n == wn && !memcmp(in, want, n);
    return ok;
}

static uint8_t *part1_listed;

static void nfc_conformance(void)
{
    FILE *probe = fopen(UCD "/NormalizationTest.txt.bz2", "rb");
    if (!probe) SKIP(UCD "/NormalizationTest.txt.bz2 not found (install unicode-data)");
    fclose(probe);
    if (system("command -v bzip2 >/dev/null 2>&1") != 0) SKIP("bzip2 not installed");
    FILE *f = popen("bzip2 -dc " UCD "/NormalizationTest.txt.bz2", "r");
    REQUIRE(f != NULL, "popen bzip2");
    part1_listed = calloc(0x110000, 1);
    char line[1024], col[5][256];
    size_t cl[5];
    int part = -1, lines = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (line[0] == '@') {
            part = atoi(line + 5);
            continue;
        }
        char *p = line;
        int k = 0;
        for (; k < 5; k++) {
            char *semi = strchr(p, ';');
            if (!semi) break;
            *semi = 0;
            cl[k] = parse_cps(p, col[k]);
            p = semi + 1;
        }
        if (k < 5) {
            CHECK(0, "malformed line: %s", line);
            continue;
        }
        lines++;
        if (part == 1) {
            uint32_t cp;
            if (utf8_decode((const uint8_t *)col[0], cl[0], &cp) == (int)cl[0])
                part1_listed[cp] = 1;
        }
        /* c2 == NFC(c1) == NFC(c2) == NFC(c3); c4 == NFC(c4) == NFC(c5) */
        int ok = nfc_equals(col[0], cl[0], col[1], cl[1]) &&
                 nfc_equals(col[1], cl[1], col[1], cl[1]) &&
                 nfc_equals(col[2], cl[2], col[1], cl[1]) &&
                 nfc_equals(col[3], cl[3], col[3], cl[3]) &&
                 nfc_equals(col[4], cl[4], col[3], cl[3]);
        if (!ok && ++failures <= 10)
            CHECK(ok, "NormalizationTest test line %d fails (c1 %s)", lines, line);
    }
    int rc = pclose(f);
    CHECK(rc == 0, "bzip2 exited with status %d", rc);
    CHECK(lines > 19000, "only %d test lines read", lines);
    CHECK(failures == 0, "%d of %d lines fail", failures, lines);
    printf("  %d NormalizationTest lines checked\n", lines);
}

static void nfc_unlisted_are_stable(void)
{
    if (!part1_listed) SKIP("needs NormalizationTest.txt (see nfc_conformance)");
    int bad = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        int c = ucat(cp);
        if (c == UC_Cn || c == UC_Cs || part1_listed[cp]) continue;
        uint8_t b[4];
        int n = utf8_encode(cp, b);
        if (!nfc_equals((const char *)b, (size_t)n, (const char *)b, (size_t)n) && ++bad <= 5)
            printf("  U+%04X is not stable under NFC\n", (unsigned)cp);
    }
    CHECK(bad == 0, "%d unlisted code points change under NFC", bad);
    free(part1_listed);
    part1_listed = NULL;
}

static void tables_regenerate(void)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0) SKIP("python3 not installed");
    FILE *probe = fopen(UCD "/UnicodeData.txt", "r");
    if (!probe) SKIP(UCD " not found (install unicode-data)");
    fclose(probe);
    char path[4200], cmd[8600];
    snprintf(path, sizeof path, "%s/unicode_tables.c", t_tmpdir());
    snprintf(cmd, sizeof cmd, "python3 tools/gen-unicode-tables.py " UCD " > '%s' 2>/dev/null",
             path);
    REQUIRE(system(cmd) == 0, "generator failed: %s", cmd);
    FILE *a = fopen(path, "rb"), *b = fopen("lib/unicode_tables.c", "rb");
    REQUIRE(a && b, "cannot open the generated or the committed table (cwd must be the repo root)");
    int ca, cb;
    long off = 0;
    do {
        ca = getc(a);
        cb = getc(b);
        off++;
    } while (ca == cb && ca != EOF);
    CHECK(ca == cb, "lib/unicode_tables.c differs from the generator's output at byte %ld",
          off - 1);
    fclose(a);
    fclose(b);
    remove(path);
    rmdir(t_tmpdir());
}

int main(void)
{
    (void)t_fixture; /* no fixtures needed: the reference data is the system's unicode-data */
    RUN(categories);
    RUN(category_classes);
    RUN(white_space);
    RUN(case_mappings);
    RUN(utf8_decoding);
    RUN(utf8_encoding);
    RUN(utf8_lossy_cases);
    RUN(nfc_examples);
    RUN(nfc_long_mark_run);
    RUN(nfc_conformance);
    RUN(nfc_unlisted_are_stable);
    RUN(tables_regenerate);
    return t_exit();
}
