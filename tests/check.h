/* Minimal test harness. Each case prints one line the runner counts:
 *   PASS: name      FAIL: name      SKIP: name: reason
 * Details of a failure are printed above its FAIL line. A skip never counts as a pass. */
#ifndef CITER_CHECK_H
#define CITER_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int t_failed;
static const char *t_skip;
static int t_total_failed;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            t_failed++;                                                          \
            printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
        }                                                                        \
    } while (0)

/* A failed REQUIRE ends the case at once. */
#define REQUIRE(cond, ...)                                                       \
    do {                                                                         \
        if (!(cond)) {                                                           \
            CHECK(cond, __VA_ARGS__);                                            \
            return;                                                              \
        }                                                                        \
    } while (0)

#define SKIP(reason)                                                             \
    do {                                                                         \
        t_skip = (reason);                                                       \
        return;                                                                  \
    } while (0)

__attribute__((unused)) static void t_run(const char *name, void (*fn)(void))
{
    t_failed = 0;
    t_skip = NULL;
    fn();
    if (t_failed) {
        printf("FAIL: %s\n", name);
        t_total_failed++;
    } else if (t_skip) {
        printf("SKIP: %s: %s\n", name, t_skip);
    } else {
        printf("PASS: %s\n", name);
    }
    fflush(stdout);
}

#define RUN(fn) t_run(#fn, fn)

__attribute__((unused)) static int t_exit(void) { return t_total_failed ? 1 : 0; }

/* Path of a file under the shared fixtures (../shared/fixtures or $CITER_FIXTURES),
 * or NULL when it is absent: the caller then SKIPs with a clear reason. */
__attribute__((unused)) static const char *t_fixture(const char *rel)
{
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("CITER_FIXTURES");
    if (!root || !*root) root = "../shared/fixtures";
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    struct stat st;
    return stat(b, &st) == 0 ? b : NULL;
}

#define NO_FIXTURES "../shared/fixtures not found (set CITER_FIXTURES to run this case)"

/* A scratch directory for the test's own files. */
__attribute__((unused)) static const char *t_tmpdir(void)
{
    static char dir[4096];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/citer-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

#endif
