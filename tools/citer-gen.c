/* citer-gen: write generated arithmetic word problems as JSONL, in CITER's math or
 * multiple-choice format. See citer-gen(1) and mathtask.h. */
#include "mathtask.h"
#include "template.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: citer-gen math|mc [options]\n"
    "Write generated arithmetic word problems with step-by-step solutions as JSON Lines.\n"
    "\n"
    "  math               {\"id\",\"problem\",\"solution\"}, the solution ending in \\boxed{N}\n"
    "  mc                 {\"id\",\"question\",\"choices\",\"answerKey\",\"cot\"}, four choices\n"
    "  --split train|test which split (default train); a problem is only ever in one\n"
    "  -n N               number of items (default 100)\n"
    "  --seed S           random seed, 0 to 2^64-1 (default 1); same seed, same bytes\n"
    "  --steps MIN-MAX    arithmetic steps per solution, within 2-4 (default 2-4); or N\n"
    "  --easy             every multiplication has a one-digit factor (for tiny models)\n"
    "  -o FILE            write to FILE (atomically) instead of stdout\n"
    "  -q, --quiet        no progress\n"
    "  -h, --help         show this help\n"
    "      --version      show the version\n";

/* An option's value: "--opt=V", "-xV" or the next argument. */
static const char *value(int argc, char **argv, int *i, const char *name, size_t long_len)
{
    const char *a = argv[*i];
    if (long_len && a[long_len] == '=') return a + long_len + 1;
    if (!long_len && a[2]) return a + 2;
    if (*i + 1 < argc) return argv[++*i];
    usage_error("%s needs a value", name);
}

static int is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == 0 || a[n] == '=');
}

static int parse_steps(const char *s, int *lo, int *hi)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10), b = a;
    if (errno || end == s) return -1;
    if (*end == '-') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (errno || end == t) return -1;
    }
    if (*end || a < 0 || b < 0 || a > 1000 || b > 1000) return -1;
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

int main(int argc, char **argv)
{
    cli_init("citer-gen");
    const char *out_path = NULL, *format_name = NULL;
    int split = CITER_SPLIT_TRAIN, lo = CITER_MATHTASK_MIN_STEPS, hi = CITER_MATHTASK_MAX_STEPS;
    long n = 100;
    unsigned long long seed = 1;
    int easy = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (format_name) usage_error("unexpected argument '%s'", a);
            format_name = a;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("citer-gen %s\n", CITER_VERSION);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cli_quiet = 1;
        } else if (!strcmp(a, "--easy")) {
            easy = 1;
        } else if (is_opt(a, "--split")) {
            const char *v = value(argc, argv, &i, "--split", 7);
            if ((split = citer_split_from_name(v)) < 0)
                usage_error("--split: '%s' is not train or test", v);
        } else if (!strncmp(a, "-n", 2)) {
            const char *v = value(argc, argv, &i, "-n", 0);
            if (parse_long(v, &n) != 0 || n < 0) usage_error("-n: '%s' is not a count", v);
        } else if (is_opt(a, "--seed")) {
            const char *v = value(argc, argv, &i, "--seed", 6);
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                usage_error("--seed: '%s' is not a number from 0 to 2^64-1", v);
        } else if (is_opt(a, "--steps")) {
            const char *v = value(argc, argv, &i, "--steps", 7);
            if (parse_steps(v, &lo, &hi) != 0) usage_error("--steps: '%s' is not MIN-MAX", v);
            if (lo < CITER_MATHTASK_MIN_STEPS || hi > CITER_MATHTASK_MAX_STEPS || lo > hi)
                usage_error("--steps: %d-%d is not within %d-%d", lo, hi,
                            CITER_MATHTASK_MIN_STEPS, CITER_MATHTASK_MAX_STEPS);
        } else if (!strcmp(a, "-o") || is_opt(a, "--output") || (a[1] == 'o' && a[2])) {
            out_path = value(argc, argv, &i, "-o", a[1] == '-' ? 8 : 0);
        } else {
            usage_error("unknown option '%s'", a);
        }
    }
    if (!format_name) usage_error("say which format: math or mc");
    int format = citer_dataset_format_from_name(format_name);
    if (format != CITER_FMT_MATH && format != CITER_FMT_MC)
        usage_error("unknown format '%s' (math or mc)", format_name);

    citer_mathgen *g = citer_mathgen_new(seed, split, lo, hi);
    if (!g) die("%s", citer_error());
    citer_mathgen_set_easy(g, easy);
    citer_out *out = citer_out_open(out_path);
    if (!out) die("%s: %s", out_path, citer_error());
    setvbuf(out->f, NULL, _IOFBF, 1 << 16);
    for (long i = 0; i < n; i++) {
        citer_mathtask t;
        if (citer_mathgen_next(g, &t) != 0) {
            citer_out_abort(out);
            die("%s", citer_error());
        }
        char *line = citer_mathtask_json(&t, format);
        fputs(line, out->f);
        free(line);
        citer_mathtask_free(&t);
        if ((i & 1023) == 1023) progress("%ld of %ld items", i + 1, n);
    }
    progress_done();
    citer_mathgen_free(g);
    if (citer_out_commit(out) != 0) die("%s: %s", out_path ? out_path : "stdout", citer_error());
    return 0;
}
