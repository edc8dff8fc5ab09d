/* route and backend: CITER's decoding loop checked against a slow reference that recomputes
 * both models from scratch at every step, baselines, lazy sync accounting, in-process against
 * coprocess backends, and coprocess failures.
 *
 * The binary also serves its shell test (t_route.sh):
 *   t_route write-models DIR           tiny random SLM / LLM GGUFs and routers into DIR
 *   t_route fake MODE K MODEL          a serve-protocol server for MODEL that answers K requests
 *                                      properly, then misbehaves: MODE cut (closes), garbage,
 *                                      badsum (checksum), wrong (another sequence), error */
#include "check.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "engine_cli.h"
#include "forward.h"
#include "model.h"
#include "route.h"
#include "router.h"
#include "random_router.h"
#include "sampler.h"
#include "serve.h"
#include "stream.h"
#include "testmodel.h"
#include "util.h"

static char slm_path[4200], llm_path[4200], self_exe[4096];

/* ---- fixtures of our own: two random models over one vocabulary, and routers ---- */

static int write_models(const char *dir)
{
    citer_testmodel_spec s;
    citer_testmodel_init(&s, CITER_ARCH_LLAMA);
    s.dim = 32;
    s.n_layers = 1;
    s.n_heads = 2;
    s.n_kv_heads = 1;
    s.head_dim = 16;
    s.ffn_dim = 64;
    s.seed = 11;
    char p[4200];
    snprintf(p, sizeof p, "%s/slm.gguf", dir);
    if (citer_testmodel_write_gguf(&s, p) != 0) return -1;
    citer_testmodel_init(&s, CITER_ARCH_LLAMA); /* D=64, 2 layers, same vocabulary */
    s.seed = 22;
    snprintf(p, sizeof p, "%s/llm.gguf", dir);
    return citer_testmodel_write_gguf(&s, p);
}

/* A router whose score is sigmoid(bias) whatever the input. */
static citer_router *constant_router(int dim, float bias)
{
    int hidden = 4;
    citer_router *r = citer_router_new(dim, 1, &hidden);
    r->layer[1].bias[0] = bias;
    citer_router_prepare(r);
    return r;
}

static int write_routers(const char *dir)
{
    char p[4200];
    citer_router *r = constant_router(32, 30);
    snprintf(p, sizeof p, "%s/router-slm.st", dir);
    int rc = citer_router_save(r, p);
    citer_router_free(r);
    r = constant_router(32, -30);
    snprintf(p, sizeof p, "%s/router-llm.st", dir);
    rc |= citer_router_save(r, p);
    citer_router_free(r);
    r = random_router(32, 7);
    snprintf(p, sizeof p, "%s/router.st", dir);
    rc |= citer_router_save(r, p);
    citer_router_free(r);
    r = constant_router(16, 0);
    snprintf(p, sizeof p, "%s/router-d16.st", dir);
    rc |= citer_router_save(r, p);
    citer_router_free(r);
    return rc;
}

/* ---- the fake server ---- */

typedef struct {
    citer_engine *e;
    FILE *in, *out;
} serve_arg;

static void *serve_thread(void *p)
{
    serve_arg *a = p;
    citer_serve(a->e, a->in, "pipe", a->out);
    fclose(a->out);
    return NULL;
}

static int fake_server(const char *mode, int k, const char *model)
{
    citer_engine e = {0};
    if (!(e.model = citer_model_load(model))) {
        fprintf(stderr, "fake: %s\n", citer_error());
        return 1;
    }
    citer_engine_find_eos(&e);
    int req[2], resp[2];
    if (pipe(req) || pipe(resp)) return 1;
    serve_arg a = {&e, fdopen(req[0], "rb"), fdopen(resp[1], "wb")};
    pthread_t th;
    pthread_create(&th, NULL, serve_thread, &a);
    FILE *to = fdopen(req[1], "wb"), *from = fdopen(resp[0], "rb");
    citer_reader *in = citer_reader_new(stdin, "stdin"), *back = citer_reader_new(from, "server");
    citer_writer *fw = citer_writer_new(to), *out = citer_writer_new(stdout);
    citer_record rec, ans;
    for (int n = 1; citer_read(in, &rec) == 1; n++) {
        citer_write(fw, &rec);
        fflush(to);
        citer_record_free(&rec);
        if (citer_read(back, &ans) != 1) break;
        if (n <= k) {
            citer_write(out, &ans);
            fflush(stdout);
            citer_record_free(&ans);
            continue;
        }
        if (strcmp(mode, "garbage") == 0) {
            fputs("garbage instead of a record, long enough to fill a record header.......\n", stdout);
        } else if (strcmp(mode, "badsum") == 0) {
            char *buf;
            size_t len;
            FILE *m = open_memstream(&buf, &len);
            citer_writer *mw = citer_writer_new(m);
            citer_write(mw, &ans);
            fclose(m);
            citer_writer_free(mw);
            buf[len - 1] ^= 1; /* the record's checksum */
            fwrite(buf + 16, 1, len - 16, stdout); /* without a second stream header */
            free(buf);
        } else if (strcmp(mode, "wrong") == 0) {
            ans.seq += 1000;
            citer_write(out, &ans);
        } else if (strcmp(mode, "error") == 0) {
            citer_record er;
            citer_record_init(&er, CITER_RESPONSE, CITER_DT_NONE, ans.seq, -1);
            er.meta = "{\"op\":\"append\",\"error\":\"out of cheese\"}";
            citer_write(out, &er);
        }
        fflush(stdout);
        _exit(0); /* cut: nothing more, the pipe closes */
    }
    _exit(0);
}

/* ---- the slow reference ---- */

typedef struct {
    citer_model *m;
    int D, V;
} refmodel;

/* Final hidden state and greedy token after the whole prefix, computed from nothing. */
static int32_t ref_predict(const refmodel *rm, const int32_t *ids, int n, float *hidden_last, float *p)
{
    citer_seq *s = citer_seq_new(rm->m);
    float *hid = xmalloc((size_t)n * rm->D * sizeof *hid), *logits = xmalloc((size_t)rm->V * sizeof *logits);
    int rc = citer_forward(rm->m, s, ids, n, hid, logits, 0);
    int32_t am = -2;
    if (rc == 0) {
        if (hidden_last) memcpy(hidden_last, hid + (size_t)(n - 1) * rm->D, (size_t)rm->D * sizeof *hid);
        am = citer_argmax(logits, rm->V, p);
    }
    free(hid);
    free(logits);
    citer_seq_free(s);
    return am;
}

/* Replays res against the reference: every token, every recorded SLM and LLM prediction, every
 * score. Returns the number of mismatches (details printed by CHECK). */
static int replay(const refmodel *sm, const refmodel *lm, const citer_router *router, const int32_t *prompt,
                  int np, const citer_route_result *res)
{
    int before = t_failed;
    int32_t *all = xmalloc((size_t)(np + res->n) * sizeof *all);
    memcpy(all, prompt, (size_t)np * sizeof *all);
    float *h = xmalloc((size_t)sm->D * sizeof *h);
    for (int i = 0; i < res->n; i++) {
        int len = np + i, src = res->trace[3 * i];
        int32_t st = res->trace[3 * i + 1], lt = res->trace[3 * i + 2];
        if (st >= 0) {
            float p;
            int32_t a = ref_predict(sm, all, len, h, &p);
            CHECK(a == st, "step %d: SLM token %d, reference %d", i, st, a);
            CHECK(fabsf(p - res->scores[2 * i + 1]) <= 1e-5f, "step %d: SLM p %g, reference %g", i,
                  (double)res->scores[2 * i + 1], (double)p);
            if (router) {
                float sc = citer_router_score(router, h);
                CHECK(fabsf(sc - res->scores[2 * i]) <= 1e-5f, "step %d: score %g, reference %g", i,
                      (double)res->scores[2 * i], (double)sc);
            }
        }
        if (src == 1) {
            int32_t a = ref_predict(lm, all, len, NULL, NULL);
            CHECK(a == lt, "step %d: LLM token %d, reference %d", i, lt, a);
            CHECK(res->tokens[i] == lt, "step %d: token %d, LLM's %d", i, res->tokens[i], lt);
        } else {
            CHECK(src == 0 && lt == -1, "step %d: source %d, LLM token %d", i, src, lt);
            CHECK(res->tokens[i] == st, "step %d: token %d, SLM's %d", i, res->tokens[i], st);
        }
        all[len] = res->tokens[i];
    }
    free(h);
    free(all);
    return t_failed - before;
}

/* ---- shared setup ---- */

static refmodel SM, LM;
static citer_backend *SB, *LB; /* in-process backends */

static const int32_t prompts[3][6] = {{5, 80, 17, 200, 33, 9}, {250, 3}, {120, 121, 122, 123, 7, 64}};
static const int prompt_len[3] = {6, 2, 6};

static int route_all(citer_backend *s, citer_backend *l, const citer_route_opts *o, citer_route_result res[3])
{
    citer_route *r = citer_route_new(s, l, o);
    if (!r) {
        printf("  route_new: %s\n", citer_error());
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = citer_route_prompt(r, (uint64_t)i + 1, prompts[i], prompt_len[i], &res[i]);
        if (rc) printf("  prompt %d: %s\n", i, citer_error());
    }
    citer_route_free(r);
    return rc;
}

static void free_all(citer_route_result res[3])
{
    for (int i = 0; i < 3; i++) citer_route_result_free(&res[i]);
}

/* Greedy generation of one model the plain way (prompt batched, then token by token). */
static int greedy(const refmodel *rm, const int32_t *prompt, int np, int max, int32_t *out)
{
    citer_engine e = {0};
    e.model = rm->m;
    citer_engine_find_eos(&e);
    citer_seq *s = citer_seq_new(rm->m);
    float *logits = xmalloc((size_t)rm->V * sizeof *logits);
    int n = 0;
    citer_forward(rm->m, s, prompt, np, NULL, logits, 0);
    while (n < max) {
        int32_t t = citer_argmax(logits, rm->V, NULL);
        out[n++] = t;
        if (citer_engine_is_eos(&e, t) || n == max) break;
        citer_forward(rm->m, s, &t, 1, NULL, logits, 0);
    }
    free(logits);
    citer_seq_free(s);
    return n;
}

/* ---- cases ---- */

static void t_policy_parse(void)
{
    int p;
    double v;
    CHECK(citer_policy_parse("router", 0.5, &p, &v) == 0 && p == CITER_POLICY_ROUTER, "router");
    CHECK(citer_policy_parse("slm", 0.5, &p, &v) == 0 && p == CITER_POLICY_SLM, "slm");
    CHECK(citer_policy_parse("llm", 0.5, &p, &v) == 0 && p == CITER_POLICY_LLM, "llm");
    CHECK(citer_policy_parse("random:0.25", 0.5, &p, &v) == 0 && p == CITER_POLICY_RANDOM && v == 0.25, "random");
    CHECK(citer_policy_parse("confidence:0.9", 0.5, &p, &v) == 0 && p == CITER_POLICY_CONFIDENCE && v == 0.9, "conf");
    CHECK(citer_policy_parse("query", 0.3, &p, &v) == 0 && p == CITER_POLICY_QUERY && v == 0.3, "query");
    CHECK(citer_policy_parse("query:0.7", 0.3, &p, &v) == 0 && v == 0.7, "query:0.7");
    CHECK(citer_policy_parse("random", 0.5, &p, &v) != 0, "random needs p");
    CHECK(citer_policy_parse("random:1.5", 0.5, &p, &v) != 0, "p > 1");
    CHECK(citer_policy_parse("slm:0.5", 0.5, &p, &v) != 0, "slm takes none");
    CHECK(citer_policy_parse("oracle", 0.5, &p, &v) != 0 && strstr(citer_error(), "oracle"), "%s", citer_error());
}

static void t_baselines_equal_plain_greedy(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.max_tokens = 24;
    citer_router *r1 = constant_router(32, 30), *r0 = constant_router(32, -30);
    const refmodel *which[4] = {&SM, &LM, &SM, &LM};
    for (int k = 0; k < 4; k++) {
        o.policy = k == 0 ? CITER_POLICY_SLM : k == 1 ? CITER_POLICY_LLM : CITER_POLICY_ROUTER;
        o.router = k == 2 ? r1 : k == 3 ? r0 : NULL;
        citer_route_result res[3];
        REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
        for (int i = 0; i < 3; i++) {
            int32_t ref[64];
            int n = greedy(which[k], prompts[i], prompt_len[i], 24, ref);
            CHECK(res[i].n == n && memcmp(res[i].tokens, ref, (size_t)n * sizeof *ref) == 0,
                  "case %d prompt %d: %d tokens, reference %d", k, i, res[i].n, n);
            int llm = k == 1 || k == 3;
            CHECK(res[i].llm_tokens == (llm ? n : 0), "case %d: llm tokens %d", k, res[i].llm_tokens);
            CHECK(res[i].catchup == 0, "case %d: catch-up %d", k, res[i].catchup);
            if (llm) CHECK(res[i].llm_ingested == prompt_len[i] + n - 1, "llm ingested %d", res[i].llm_ingested);
        }
        free_all(res);
    }
    citer_router_free(r0);
    citer_router_free(r1);
}

/* The lazy-sync accounting, from the trace alone. */
static void check_accounting(const citer_route_result *res)
{
    int calls = 0, catchup = 0, pending = 0, last_call = -1, slm_runs = 0;
    for (int i = 0; i < res->n; i++) {
        if (res->trace[3 * i] == 1) {
            calls++;
            catchup += pending;
            pending = 0;
            last_call = i;
        } else {
            pending++;
        }
        slm_runs += res->trace[3 * i + 1] >= 0;
    }
    CHECK(res->llm_calls == calls && res->llm_tokens == calls, "calls %d/%d, trace %d", res->llm_calls,
          res->llm_tokens, calls);
    CHECK(res->catchup == catchup, "catch-up %d, trace says %d", res->catchup, catchup);
    int ingested = last_call < 0 ? 0 : res->n_prompt + last_call;
    CHECK(res->llm_ingested == ingested, "LLM ingested %d, wanted prompt + tokens before its last call = %d",
          res->llm_ingested, ingested);
    if (slm_runs)
        CHECK(res->slm_ingested == res->n_prompt + slm_runs - 1, "SLM ingested %d (%d runs)", res->slm_ingested,
              slm_runs);
}

static void t_random_policy_matches_reference(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.policy = CITER_POLICY_RANDOM;
    o.param = 0.4;
    o.max_tokens = 20;
    o.ignore_eos = 1;
    o.seed = 3;
    citer_router *router = random_router(32, 7);
    o.router = router; /* scores recorded, not used */
    citer_route_result res[3];
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    int llm = 0, slm = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(res[i].n == 20, "prompt %d: %d tokens", i, res[i].n);
        CHECK(replay(&SM, &LM, router, prompts[i], prompt_len[i], &res[i]) == 0, "prompt %d replay", i);
        check_accounting(&res[i]);
        llm += res[i].llm_tokens;
        slm += res[i].n - res[i].llm_tokens;
    }
    CHECK(llm > 5 && slm > 5, "mixed routing: %d LLM, %d SLM tokens", llm, slm);
    /* same seed, same decisions; another seed, others */
    citer_route_result again[3];
    REQUIRE(route_all(SB, LB, &o, again) == 0, "route");
    for (int i = 0; i < 3; i++)
        CHECK(memcmp(again[i].trace, res[i].trace, (size_t)res[i].n * 3 * sizeof(int32_t)) == 0, "reproducible");
    free_all(again);
    o.seed = 4;
    REQUIRE(route_all(SB, LB, &o, again) == 0, "route");
    int differ = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < res[i].n && j < again[i].n; j++) differ |= again[i].trace[3 * j] != res[i].trace[3 * j];
    CHECK(differ, "another seed draws other decisions");
    free_all(again);
    free_all(res);
    citer_router_free(router);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void t_router_policy_matches_reference(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    citer_router *router = random_router(32, 7);
    o.router = router;
    o.max_tokens = 20;
    o.ignore_eos = 1;
    /* tau between two middle scores of an SLM-only run, so both models write tokens */
    o.policy = CITER_POLICY_SLM;
    citer_route_result res[3];
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    float sc[60];
    int n = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < res[i].n; j++) sc[n++] = res[i].scores[2 * j];
    free_all(res);
    qsort(sc, (size_t)n, sizeof *sc, cmp_float);
    REQUIRE(sc[n / 2] - sc[n / 2 - 1] > 1e-4f, "middle scores too close: %g %g", (double)sc[n / 2 - 1], (double)sc[n / 2]);
    o.policy = CITER_POLICY_ROUTER;
    o.threshold = (sc[n / 2] + sc[n / 2 - 1]) / 2;
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    int llm = 0, slm = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(replay(&SM, &LM, router, prompts[i], prompt_len[i], &res[i]) == 0, "prompt %d replay", i);
        check_accounting(&res[i]);
        for (int j = 0; j < res[i].n; j++) {
            int want = res[i].scores[2 * j] < o.threshold;
            CHECK(res[i].trace[3 * j] == want, "prompt %d step %d: score %g, tau %g, source %d", i, j,
                  (double)res[i].scores[2 * j], o.threshold, res[i].trace[3 * j]);
            llm += want;
            slm += !want;
        }
    }
    CHECK(llm > 3 && slm > 3, "mixed routing: %d LLM, %d SLM tokens", llm, slm);
    free_all(res);
    citer_router_free(router);
}

static void t_confidence_and_query(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.max_tokens = 16;
    o.ignore_eos = 1;
    o.policy = CITER_POLICY_CONFIDENCE;
    o.param = 0.5;
    citer_route_result res[3];
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    for (int i = 0; i < 3; i++) {
        CHECK(replay(&SM, &LM, NULL, prompts[i], prompt_len[i], &res[i]) == 0, "confidence replay %d", i);
        for (int j = 0; j < res[i].n; j++)
            CHECK(res[i].trace[3 * j] == (res[i].scores[2 * j + 1] < 0.5f), "confidence decision");
        CHECK(res[i].scores[0] == -1, "no router, no score");
    }
    free_all(res);

    /* query: one decision per prompt, from the score at the prompt's last position */
    citer_router *router = random_router(32, 7);
    o.router = router;
    o.policy = CITER_POLICY_QUERY;
    float qs[3];
    float *h = xmalloc(32 * sizeof *h);
    for (int i = 0; i < 3; i++) {
        ref_predict(&SM, prompts[i], prompt_len[i], h, NULL);
        qs[i] = citer_router_score(router, h);
    }
    free(h);
    o.param = (qs[0] + qs[1]) / 2; /* one prompt on each side */
    REQUIRE(fabsf(qs[0] - qs[1]) > 1e-4f, "query scores too close");
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    for (int i = 0; i < 3; i++) {
        int all_llm = qs[i] < o.param;
        CHECK(fabsf(res[i].query_score - qs[i]) <= 1e-5f, "query score %g, reference %g", (double)res[i].query_score,
              (double)qs[i]);
        int32_t ref[32];
        int n = greedy(all_llm ? &LM : &SM, prompts[i], prompt_len[i], 16, ref);
        (void)n;
        for (int j = 0; j < res[i].n; j++) {
            CHECK(res[i].trace[3 * j] == all_llm, "prompt %d step %d: one decision per prompt", i, j);
            CHECK(res[i].tokens[j] == ref[j], "prompt %d step %d: token %d, plain greedy %d", i, j, res[i].tokens[j], ref[j]);
        }
        if (all_llm) CHECK(res[i].slm_ingested == prompt_len[i], "the SLM stops after the decision");
    }
    CHECK((qs[0] < o.param) != (qs[1] < o.param), "both decisions taken");
    free_all(res);
    citer_router_free(router);
}

static void t_stops(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.policy = CITER_POLICY_RANDOM;
    o.param = 0.5;
    o.max_tokens = 0;
    citer_route_result res[3];
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    CHECK(res[0].n == 0 && strcmp(res[0].stop, "max") == 0 && res[0].llm_calls == 0, "--max-tokens 0");
    free_all(res);

    /* a stop string taken from the text of a longer run stops at the first step whose text holds it */
    o.max_tokens = 12;
    o.ignore_eos = 1;
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    const citer_tokenizer *tok = citer_backend_tokenizer(SB);
    REQUIRE(tok, "the random SLM has a tokenizer");
    size_t len;
    char *text = citer_decode(tok, res[0].tokens + 3, 2, 0, &len);
    REQUIRE(text && len > 0, "decode");
    const char *stops[1] = {text};
    int want = 0;
    for (int k = 1; k <= res[0].n && !want; k++) {
        char *t = citer_decode(tok, res[0].tokens, (size_t)k, 0, &len);
        if (strstr(t, text)) want = k;
        free(t);
    }
    o.stops = stops;
    o.n_stops = 1;
    o.tok = tok;
    citer_route_result st[3];
    REQUIRE(route_all(SB, LB, &o, st) == 0, "route");
    CHECK(st[0].n == want && strcmp(st[0].stop, "stop") == 0, "stopped after %d tokens (%s), wanted %d", st[0].n,
          st[0].stop, want);
    CHECK(memcmp(st[0].tokens, res[0].tokens, (size_t)st[0].n * sizeof(int32_t)) == 0, "same tokens up to the stop");
    free(text);
    free_all(st);
    free_all(res);

    /* eos: the run without --ignore-eos ends at the first end token of either model */
    o.n_stops = 0;
    o.max_tokens = 200;
    o.ignore_eos = 0;
    o.policy = CITER_POLICY_SLM;
    REQUIRE(route_all(SB, LB, &o, res) == 0, "route");
    for (int i = 0; i < 3; i++) {
        const citer_backend_info *in = citer_backend_get_info(SB);
        int at = -1;
        for (int j = 0; j < res[i].n && at < 0; j++)
            for (int k = 0; k < in->n_eos; k++)
                if (res[i].tokens[j] == in->eos[k]) at = j;
        CHECK(strcmp(res[i].stop, "eos") == 0 ? at == res[i].n - 1 : at < 0, "prompt %d: stop %s, eos at %d of %d", i,
              res[i].stop, at, res[i].n);
    }
    free_all(res);
}

static void t_new_errors(void)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    CHECK(!citer_route_new(SB, LB, &o) && strstr(citer_error(), "router"), "router policy without router: %s",
          citer_error());
    citer_router *r = constant_router(16, 0);
    o.router = r;
    CHECK(!citer_route_new(SB, LB, &o) && strstr(citer_error(), "16") && strstr(citer_error(), "32"), "dim: %s",
          citer_error());
    citer_router_free(r);
    o.router = NULL;
    o.policy = CITER_POLICY_SLM;
    citer_route *ok = citer_route_new(SB, NULL, &o);
    CHECK(ok != NULL, "slm policy needs no LLM");
    citer_route_result res;
    CHECK(ok && citer_route_prompt(ok, 1, prompts[0], 0, &res) != 0 && strstr(citer_error(), "empty"), "empty prompt");
    citer_route_result_free(&res);
    int32_t bad = 300;
    CHECK(ok && citer_route_prompt(ok, 1, &bad, 1, &res) != 0 && strstr(citer_error(), "out of range"), "%s",
          citer_error());
    citer_route_result_free(&res);
    citer_route_free(ok);
    o.policy = CITER_POLICY_RANDOM;
    o.param = 0.5;
    CHECK(!citer_route_new(SB, NULL, &o) && strstr(citer_error(), "large"), "random needs both");
    o.policy = CITER_POLICY_LLM;
    const char *stops[1] = {"x"};
    o.stops = stops;
    o.n_stops = 1;
    CHECK(!citer_route_new(NULL, LB, &o) && strstr(citer_error(), "tokenizer"), "stops need a tokenizer");
}

/* ---- coprocesses ---- */

static const char *bin_dir(void)
{
    const char *b = getenv("CITER_BIN");
    static char buf[4096];
    if (b && *b) return b;
    snprintf(buf, sizeof buf, "bin");
    return access("bin/citer-slm", X_OK) == 0 ? buf : NULL;
}

static int no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static void t_coprocess_equals_in_process(void)
{
    const char *bin = bin_dir();
    if (!bin) SKIP("citer-slm not found (set CITER_BIN)");
    char cmd[2][9000];
    snprintf(cmd[0], sizeof cmd[0], "'%s/citer-slm' --serve -m '%s'", bin, slm_path);
    snprintf(cmd[1], sizeof cmd[1], "'%s/citer-llm' --serve -m '%s'", bin, llm_path);
    citer_backend *s = citer_backend_spawn(cmd[0]), *l = citer_backend_spawn(cmd[1]);
    REQUIRE(s && l, "spawn: %s", citer_error());
    CHECK(citer_backend_get_info(s)->dim == 32 && citer_backend_get_info(l)->dim == 64 &&
              citer_backend_get_info(s)->vocab == 300,
          "info");
    CHECK(citer_backend_get_info(s)->n_eos == citer_backend_get_info(SB)->n_eos &&
              citer_backend_get_info(s)->eos[0] == citer_backend_get_info(SB)->eos[0],
          "same eos");
    citer_router *router = random_router(32, 7);
    citer_route_opts o;
    citer_route_defaults(&o);
    o.router = router;
    o.max_tokens = 16;
    o.threshold = 0.5;
    for (int k = 0; k < 3; k++) {
        o.policy = k == 0 ? CITER_POLICY_ROUTER : CITER_POLICY_RANDOM;
        o.param = 0.5;
        o.temperature = k == 2 ? 0.9f : 0;
        o.top_k = k == 2 ? 40 : 0;
        o.seed = 9;
        citer_route_result a[3], b[3];
        REQUIRE(route_all(SB, LB, &o, a) == 0, "in process");
        REQUIRE(route_all(s, l, &o, b) == 0, "coprocess");
        for (int i = 0; i < 3; i++) {
            CHECK(a[i].n == b[i].n && strcmp(a[i].stop, b[i].stop) == 0, "case %d prompt %d: %d / %d tokens", k, i,
                  a[i].n, b[i].n);
            int n = a[i].n < b[i].n ? a[i].n : b[i].n;
            CHECK(memcmp(a[i].tokens, b[i].tokens, (size_t)n * 4) == 0 &&
                      memcmp(a[i].trace, b[i].trace, (size_t)n * 12) == 0 &&
                      memcmp(a[i].scores, b[i].scores, (size_t)n * 8) == 0,
                  "case %d prompt %d: tokens, trace and scores bit for bit", k, i);
            CHECK(a[i].catchup == b[i].catchup && a[i].llm_ingested == b[i].llm_ingested, "accounting");
        }
        free_all(a);
        free_all(b);
    }
    CHECK(citer_backend_requests(s) > 20, "requests counted");
    CHECK(citer_backend_close(s) == 0, "clean close: %s", citer_error());
    CHECK(citer_backend_close(l) == 0, "clean close: %s", citer_error());
    CHECK(no_children(), "children reaped");
    citer_router_free(router);
}

/* A backend over cmd that must fail at its first append (or at start when at_start). */
static void expect_failure(const char *cmd, int at_start, const char *want)
{
    citer_backend *b = citer_backend_spawn(cmd);
    if (at_start) {
        CHECK(!b && strstr(citer_error(), want), "%s: '%s', wanted '%s'", cmd, b ? "(started)" : citer_error(), want);
    } else {
        REQUIRE(b, "%s: %s", cmd, citer_error());
        citer_backend_step st;
        int32_t t[3] = {1, 2, 3};
        int rc = citer_backend_append(b, 1, t, 3, 1, NULL, &st);
        CHECK(rc != 0 && strstr(citer_error(), want), "%s: rc %d '%s', wanted '%s'", cmd, rc, citer_error(), want);
        CHECK(!strchr(citer_error(), '\n'), "one line");
        CHECK(citer_backend_append(b, 1, t, 3, 1, NULL, &st) != 0, "broken stays broken");
        citer_backend_close(b);
    }
    CHECK(no_children(), "%s: children reaped", cmd);
}

static void t_coprocess_failures(void)
{
    expect_failure("exit 3", 1, "closed its output without answering info (server exit status 3)");
    expect_failure("echo garbage", 1, "bad magic");
    expect_failure("/nonexistent/citer-llm --serve 2>/dev/null", 1, "exit status 127");
    char cmd[9000];
    const char *modes[][2] = {{"cut", "closed its output without answering append"},
                              {"garbage", "bad record sync"},
                              {"badsum", "checksum"},
                              {"wrong", "for sequence 1001, not 1"},
                              {"error", "refused append: out of cheese"}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        snprintf(cmd, sizeof cmd, "exec '%s' fake %s 1 '%s'", self_exe, modes[i][0], slm_path);
        expect_failure(cmd, 0, modes[i][1]);
    }
    /* a server that answers garbage to info */
    snprintf(cmd, sizeof cmd, "exec '%s' fake garbage 0 '%s'", self_exe, slm_path);
    expect_failure(cmd, 1, "bad magic");
    /* a request to a dead server: EPIPE, not SIGPIPE */
    citer_backend *b = citer_backend_spawn("exec 'true'");
    CHECK(!b, "true does not answer info");
    CHECK(no_children(), "reaped");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "write-models") == 0) {
        if (write_models(argv[2]) != 0 || write_routers(argv[2]) != 0) {
            fprintf(stderr, "t_route: %s\n", citer_error());
            return 1;
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "fake") == 0) {
        signal(SIGPIPE, SIG_DFL);
        return fake_server(argv[2], atoi(argv[3]), argv[4]);
    }
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n > 0) self_exe[n] = 0;
    const char *dir = t_tmpdir();
    if (write_models(dir) != 0) {
        printf("FAIL: write test models: %s\n", citer_error());
        return 1;
    }
    snprintf(slm_path, sizeof slm_path, "%s/slm.gguf", dir);
    snprintf(llm_path, sizeof llm_path, "%s/llm.gguf", dir);
    SB = citer_backend_load(slm_path);
    LB = citer_backend_load(llm_path);
    if (!SB || !LB) {
        printf("FAIL: load test models: %s\n", citer_error());
        return 1;
    }
    SM.m = citer_model_load(slm_path);
    LM.m = citer_model_load(llm_path);
    SM.D = SM.m->cfg.dim, SM.V = SM.m->cfg.vocab_size;
    LM.D = LM.m->cfg.dim, LM.V = LM.m->cfg.vocab_size;

    RUN(t_policy_parse);
    RUN(t_baselines_equal_plain_greedy);
    RUN(t_random_policy_matches_reference);
    RUN(t_router_policy_matches_reference);
    RUN(t_confidence_and_query);
    RUN(t_stops);
    RUN(t_new_errors);
    RUN(t_coprocess_equals_in_process);
    RUN(t_coprocess_failures);

    citer_backend_close(SB);
    citer_backend_close(LB);
    citer_model_free(SM.m);
    citer_model_free(LM.m);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return t_exit();
}
