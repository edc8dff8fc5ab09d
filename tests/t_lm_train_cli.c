/* citer-train lm (citer_lm_train_main, run in a child process as the tool would run it):
 * output directory contents, loading the result with the engine, resume, fine-tuning, errors. */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "lm_train_cli.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

static char err_text[4096];

/* Run the mode with a NULL-terminated argument list; returns the exit status, stderr in err_text. */
static int run(const char *first, ...)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "lm";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char errp[4200];
    snprintf(errp, sizeof errp, "%s/stderr", t_tmpdir());
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errp, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        cli_init("citer-train");
        exit(citer_lm_train_main(argc, (char **)argv));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    size_t len;
    char *e = citer_read_file(errp, &len);
    snprintf(err_text, sizeof err_text, "%s", e ? e : "");
    free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *dir(const char *name)
{
    static char buf[8][4200];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = citer_read_file(a, &la), *y = citer_read_file(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x), free(y);
    return same;
}

#define TINY "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--batch", "4", "--seq-len", "48", \
             "--lr", "3e-3", "-q"

static void test_train_and_load(void)
{
    const char *out = dir("math");
    int rc = run("--data", "examples/data/math-sample.jsonl", "--vocab", "300", "--steps", "30", "-o", out, TINY, NULL);
    REQUIRE(rc == 0, "exit %d: %s", rc, err_text);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                           "training.tsv", "checkpoint.safetensors"};
    char p[4400];
    struct stat st;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECK(stat(p, &st) == 0, "%s missing", files[i]);
    }
    citer_model *m = citer_model_load(out);
    REQUIRE(m, "%s", citer_error());
    citer_tokenizer *t = citer_tokenizer_load(out);
    REQUIRE(t, "%s", citer_error());
    CHECK(citer_tokenizer_vocab_size(t) == 300 && m->cfg.vocab_size == 300, "vocab %d / %d",
          citer_tokenizer_vocab_size(t), m->cfg.vocab_size);
    CHECK(m->cfg.eos == citer_token_id(t, "<|endoftext|>"), "eos %d", m->cfg.eos);
    CHECK(m->cfg.tied_embeddings && m->cfg.n_kv_heads == 2 && m->cfg.dim == 32, "%s", citer_model_describe(m));
    snprintf(p, sizeof p, "%s/training.tsv", out);
    size_t len;
    char *log = citer_read_file(p, &len);
    int lines = 0;
    for (size_t i = 0; log && i < len; i++) lines += log[i] == '\n';
    CHECK(lines == 31, "training.tsv has %d lines", lines);
    free(log);
    citer_tokenizer_free(t);
    citer_model_free(m);
}

static void test_resume_identical(void)
{
    const char *a = dir("full"), *b = dir("split");
    int rc = run("--data", "examples/data/corpus.txt", "--vocab", "280", "--steps", "20", "--checkpoint-every", "5",
                 "-o", a, TINY, NULL);
    REQUIRE(rc == 0, "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--vocab", "280", "--steps", "20", "--checkpoint-every", "5",
             "--stop-after", "10", "-o", b, TINY, NULL);
    REQUIRE(rc == 0, "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--steps", "20", "--checkpoint-every", "5", "--resume", "-o", b,
             TINY, NULL);
    REQUIRE(rc == 0, "exit %d: %s", rc, err_text);
    char pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    CHECK(same_file(pa, pb), "20 steps and 10 + resumed 10 give different weights");
    snprintf(pa, sizeof pa, "%s/training.tsv", a);
    snprintf(pb, sizeof pb, "%s/training.tsv", b);
    size_t la, lb;
    char *x = citer_read_file(pa, &la), *y = citer_read_file(pb, &lb);
    REQUIRE(x && y, "logs");
    /* the losses (second column) agree line by line; tokens/s may differ */
    int lines = 0, same = 1;
    for (char *p = x, *q = y; p && q && *p && *q; lines++) {
        long s1, s2;
        double l1, l2;
        if (sscanf(p, "%ld %lf", &s1, &l1) == 2 && sscanf(q, "%ld %lf", &s2, &l2) == 2) same &= s1 == s2 && l1 == l2;
        p = strchr(p, '\n'), q = strchr(q, '\n');
        p = p ? p + 1 : NULL, q = q ? q + 1 : NULL;
    }
    CHECK(same && lines == 21, "logs differ (%d lines)", lines);
    free(x), free(y);
    /* resuming on other data is refused */
    rc = run("--data", "examples/data/math-sample.jsonl", "--steps", "20", "--resume", "-o", b, TINY, NULL);
    CHECK(rc == 1 && strstr(err_text, "differs from the checkpoint"), "exit %d: %s", rc, err_text);
}

static void test_finetune(void)
{
    const char *base = dir("math"), *out = dir("tuned");
    struct stat st;
    if (stat(base, &st) != 0) SKIP("needs test_train_and_load's model");
    int rc = run("--data", "examples/data/math-sample.jsonl", "--init", base, "--steps", "5", "--f16", "-o", out,
                 "--batch", "2", "--seq-len", "32", "-q", NULL);
    REQUIRE(rc == 0, "exit %d: %s", rc, err_text);
    citer_model *m = citer_model_load(out);
    REQUIRE(m, "%s", citer_error());
    CHECK(m->cfg.dim == 32 && m->tok_embd.type == 1 /* F16 */, "%s", citer_model_describe(m));
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/tokenizer.json", base);
    snprintf(b, sizeof b, "%s/tokenizer.json", out);
    CHECK(same_file(a, b), "fine-tuned model has another tokenizer");
    citer_model_free(m);
}

static void test_errors(void)
{
    int rc = run("-o", dir("x"), NULL);
    CHECK(rc == 2 && strstr(err_text, "--data"), "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/math-sample.jsonl", NULL);
    CHECK(rc == 2, "no -o: exit %d", rc);
    rc = run("--data", "no/such/file.jsonl", "-o", dir("x"), NULL);
    CHECK(rc == 1 && !strncmp(err_text, "citer-train: no/such/file.jsonl: ", 33), "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--dim", "abc", "-o", dir("x"), NULL);
    CHECK(rc == 2 && strstr(err_text, "--dim"), "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--dim", "30", "--heads", "4", "-o", dir("x"), "-q", NULL);
    CHECK(rc == 2 && strstr(err_text, "heads"), "exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--resume", "-o", dir("fresh"), "-q", NULL);
    CHECK(rc == 1, "resume without a checkpoint: exit %d: %s", rc, err_text);
    rc = run("--data", "examples/data/corpus.txt", "--loss-on", "target", "-o", dir("x"), NULL);
    CHECK(rc == 2, "--loss-on target on text: exit %d", rc);
    rc = run("--bogus", NULL);
    CHECK(rc == 2, "unknown option: exit %d", rc);
}

int main(void)
{
    RUN(test_train_and_load);
    RUN(test_resume_identical);
    RUN(test_finetune);
    RUN(test_errors);
    return t_exit();
}
