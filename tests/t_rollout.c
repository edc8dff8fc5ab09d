/* Shared-prefix rollouts: backend fork / truncate (in process and through the serve protocol)
 * and citer_route_base / _fork / _prompt_from against citer_route_prompt on the whole prefix.
 *
 *   t_rollout                 run the tests (models of their own in a temporary directory)
 */
#include "check.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "model.h"
#include "route.h"
#include "router.h"
#include "random_router.h"
#include "testmodel.h"
#include "util.h"

static char slm_path[4200], llm_path[4200];
static citer_backend *SB, *LB;

static int write_model(const char *path, int dim, int layers, uint64_t seed)
{
    citer_testmodel_spec s;
    citer_testmodel_init(&s, CITER_ARCH_LLAMA);
    s.dim = dim;
    s.n_layers = layers;
    s.n_heads = dim / 16;
    s.n_kv_heads = 1;
    s.head_dim = 16;
    s.ffn_dim = 2 * dim;
    s.seed = seed;
    return citer_testmodel_write_gguf(&s, path);
}

/* A prompt and a reference of 40 tokens, pseudo-random in the byte range. */
#define N_ALL 48
static int32_t all_tokens[N_ALL];

static void make_tokens(void)
{
    uint64_t x = 5;
    for (int i = 0; i < N_ALL; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        all_tokens[i] = (int32_t)(32 + (x >> 33) % 90);
    }
}

/* Greedy next token after tokens[0..n) on a fresh sequence. */
static int32_t next_fresh(citer_backend *b, const int32_t *tokens, int n)
{
    citer_backend_step st;
    if (citer_backend_append(b, 900, tokens, n, 0, NULL, &st) != 0) return -2;
    citer_backend_drop(b, 900);
    return st.next;
}

static void check_fork_truncate(citer_backend *b, const char *what)
{
    citer_backend_step st;
    REQUIRE(citer_backend_append(b, 1, all_tokens, 30, 0, NULL, &st) == 0, "%s: base: %s", what, citer_error());
    CHECK(st.len == 30, "%s: base length %d", what, st.len);
    /* fork, cut to 12, go on with token 20: the same as 0..12 then token 20 appended fresh */
    REQUIRE(citer_backend_fork(b, 2, 1) == 0, "%s: fork: %s", what, citer_error());
    REQUIRE(citer_backend_truncate(b, 2, 12) == 0, "%s: truncate: %s", what, citer_error());
    int32_t t = all_tokens[20];
    REQUIRE(citer_backend_append(b, 2, &t, 1, 0, NULL, &st) == 0, "%s: append: %s", what, citer_error());
    CHECK(st.len == 13, "%s: length after the cut and one token: %d", what, st.len);
    int32_t seq13[13];
    memcpy(seq13, all_tokens, 12 * sizeof *seq13);
    seq13[12] = t;
    citer_backend_step fresh;
    REQUIRE(citer_backend_append(b, 3, seq13, 12, 0, NULL, &fresh) == 0 &&
                citer_backend_append(b, 3, &t, 1, 0, NULL, &fresh) == 0,
            "%s: fresh: %s", what, citer_error());
    /* the same computation (positions 0..12 prefilled, then one decode step) up to the prefill
     * batch size: the argmax agrees and the probability to rounding */
    CHECK(st.next == fresh.next && st.p > fresh.p - 1e-4f && st.p < fresh.p + 1e-4f, "%s: %d %g / %d %g", what,
          st.next, (double)st.p, fresh.next, (double)fresh.p);
    /* the base is untouched by its fork's writes */
    int32_t u = all_tokens[30];
    REQUIRE(citer_backend_append(b, 1, &u, 1, 0, NULL, &st) == 0, "%s: base append: %s", what, citer_error());
    CHECK(st.len == 31 && st.next == next_fresh(b, all_tokens, 31), "%s: base after the fork's writes", what);
    /* a fork replaces what the target held */
    REQUIRE(citer_backend_fork(b, 3, 1) == 0, "%s: fork over: %s", what, citer_error());
    REQUIRE(citer_backend_truncate(b, 3, 31) == 0, "%s: truncate to the length: %s", what, citer_error());
    for (uint64_t s = 1; s <= 3; s++) CHECK(citer_backend_drop(b, s) == 0, "%s: drop %d", what, (int)s);
}

static void t_fork_truncate_in_process(void)
{
    check_fork_truncate(SB, "in process");
    CHECK(citer_backend_fork(SB, 5, 77) != 0 && strstr(citer_error(), "unknown sequence 77"), "fork of nothing: %s",
          citer_error());
    CHECK(citer_backend_truncate(SB, 77, 0) != 0 && strstr(citer_error(), "unknown sequence 77"), "truncate of nothing");
    citer_backend_step st;
    REQUIRE(citer_backend_append(SB, 6, all_tokens, 4, 0, NULL, &st) == 0, "append");
    CHECK(citer_backend_truncate(SB, 6, 5) != 0 && strstr(citer_error(), "beyond the sequence's length 4"),
          "truncate beyond: %s", citer_error());
    CHECK(citer_backend_truncate(SB, 6, -1) != 0, "negative length");
    citer_backend_drop(SB, 6);
}

static const char *bin_dir(void)
{
    const char *b = getenv("CITER_BIN");
    if (b && *b) return b;
    return access("bin/citer-slm", X_OK) == 0 ? "bin" : NULL;
}

static void t_fork_truncate_coprocess(void)
{
    const char *bin = bin_dir();
    if (!bin) SKIP("citer-slm not found (set CITER_BIN)");
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s/citer-slm' --serve -m '%s'", bin, slm_path);
    citer_backend *b = citer_backend_spawn(cmd);
    REQUIRE(b, "spawn: %s", citer_error());
    check_fork_truncate(b, "coprocess");
    CHECK(citer_backend_close(b) == 0, "clean close: %s", citer_error());
    snprintf(cmd, sizeof cmd, "'%s/citer-slm' --serve -m '%s' 2>/dev/null", bin, slm_path); /* it ends torn */
    b = citer_backend_spawn(cmd);
    REQUIRE(b, "spawn: %s", citer_error());
    CHECK(citer_backend_fork(b, 5, 77) != 0 && strstr(citer_error(), "unknown sequence 77"),
          "the server refuses a fork of nothing: %s", citer_error());
    citer_backend_close(b);
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "children reaped");
}

/* Rollouts from one base against whole-prefix generations: tokens, trace and stop equal. */
static void compare_rollouts(citer_backend *s, citer_backend *l, const citer_route_opts *o, const char *what)
{
    citer_route *r = citer_route_new(s, l, o);
    REQUIRE(r, "%s: %s", what, citer_error());
    const int n_prompt = 8, n_target = 40;
    REQUIRE(citer_route_base(r, 1000, all_tokens, n_prompt + n_target) == 0, "%s: base: %s", what, citer_error());
    int same = 0, tried = 0;
    for (int t = 0; t < n_target; t += 3) {
        int n = n_prompt + t + 1;
        int32_t prefix[N_ALL + 1];
        memcpy(prefix, all_tokens, (size_t)(n - 1) * sizeof *prefix);
        prefix[n - 1] = (int32_t)(200 + t); /* "the SLM's token" */
        citer_route_result a, b;
        REQUIRE(citer_route_prompt(r, 7, prefix, n, &a) == 0, "%s: whole: %s", what, citer_error());
        REQUIRE(citer_route_fork(r, 7, 1000, n - 1) == 0, "%s: fork: %s", what, citer_error());
        REQUIRE(citer_route_prompt_from(r, 7, prefix, n, n - 1, &b) == 0, "%s: from: %s", what, citer_error());
        tried++;
        same += a.n == b.n && strcmp(a.stop, b.stop) == 0 && memcmp(a.tokens, b.tokens, (size_t)a.n * 4) == 0 &&
                memcmp(a.trace, b.trace, (size_t)a.n * 12) == 0;
        CHECK(b.slm_ingested == (s && o->policy != CITER_POLICY_LLM ? b.n : 0) &&
                  a.slm_ingested == (s && o->policy != CITER_POLICY_LLM ? n + a.n - 1 : 0),
              "%s t=%d: SLM ingested %d (shared), %d (whole)", what, t, b.slm_ingested, a.slm_ingested);
        CHECK(b.llm_ingested <= a.llm_ingested, "%s: the LLM ingests less", what);
        citer_route_result_free(&a);
        citer_route_result_free(&b);
    }
    CHECK(same == tried, "%s: %d of %d rollouts identical", what, same, tried);
    CHECK(citer_route_drop(r, 1000) == 0, "%s: drop the base", what);
    citer_route_free(r);
}

static void t_route_from_equals_whole(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.max_tokens = 24;
    o.ignore_eos = 1;
    o.policy = CITER_POLICY_SLM;
    compare_rollouts(SB, NULL, &o, "slm");
    citer_router *router = random_router(32, 7);
    o.policy = CITER_POLICY_ROUTER;
    o.router = router;
    compare_rollouts(SB, LB, &o, "router");
    o.policy = CITER_POLICY_LLM;
    compare_rollouts(NULL, LB, &o, "llm");
    citer_router_free(router);
}

static void t_route_from_errors(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.policy = CITER_POLICY_SLM;
    citer_route *r = citer_route_new(SB, NULL, &o);
    citer_route_result res;
    CHECK(citer_route_prompt_from(r, 1, all_tokens, 4, 4, &res) != 0 && strstr(citer_error(), "nothing to append"),
          "have = n: %s", citer_error());
    citer_route_result_free(&res);
    int32_t bad[2] = {5, 100000};
    CHECK(citer_route_base(r, 2, bad, 2) != 0 && strstr(citer_error(), "out of range"), "base token out of range");
    CHECK(citer_route_fork(r, 3, 99, 1) != 0 && strncmp(citer_error(), "slm: ", 5) == 0, "fork of nothing: %s",
          citer_error());
    citer_route_free(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *dir = t_tmpdir();
    snprintf(slm_path, sizeof slm_path, "%s/slm.gguf", dir);
    snprintf(llm_path, sizeof llm_path, "%s/llm.gguf", dir);
    if (write_model(slm_path, 32, 1, 11) != 0 || write_model(llm_path, 64, 2, 22) != 0) {
        printf("FAIL: write test models: %s\n", citer_error());
        return 1;
    }
    SB = citer_backend_load(slm_path);
    LB = citer_backend_load(llm_path);
    if (!SB || !LB) {
        printf("FAIL: load test models: %s\n", citer_error());
        return 1;
    }
    make_tokens();
    RUN(t_fork_truncate_in_process);
    RUN(t_fork_truncate_coprocess);
    RUN(t_route_from_equals_whole);
    RUN(t_route_from_errors);
    citer_backend_close(SB);
    citer_backend_close(LB);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return t_exit();
}
