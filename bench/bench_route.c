/* bench_route: routed decoding (citer_route, CITER's loop) against LLM-only decoding and the ideal.
 *
 * A pair of random models of real shapes that share the vocabulary (SLM: the Qwen2.5-0.5B shape,
 * LLM: the Qwen2.5-1.5B shape, both q8_0, written once with lib/testmodel into
 * $CITER_BENCH_MODELS, default build/bench-models/, as bench_decode does) and a random-weight
 * router of the real shape (D -> 2D -> D -> 1) built in memory. The random:p policy hands a share
 * p of the tokens to the LLM; the router still scores every SLM hidden state, as it would decide.
 *
 * The ideal: the SLM runs every step, the LLM only for its share r of the tokens, nothing else
 * costs (no catch-up, router, protocol or loop):
 *     ideal s/token = t_slm + r * t_llm,     ideal speed-up = t_llm / (t_slm + r * t_llm)
 * with t_slm and t_llm plain single-token decode steps (citer_forward) of each model from the
 * same positions, measured just before and just after each routed run (the mean of the two; the
 * shared machine's memory bandwidth drifts by 2x within a minute, so a run's ideal must come
 * from the machine as it was during that run), and r the share of tokens the LLM actually
 * wrote. The measured speed-up is t_llm / measured s/token, so "of ideal" = ideal s/token /
 * measured s/token (target >= 0.85). "vs LLM-only" is against LLM-only decoding through the same route
 * loop and backends (policy llm).
 *
 * A timed run forks a prompt ingested beforehand (citer_route_base), appends its last token and
 * generates N tokens (eos ignored) through citer_route_prompt_from: every SLM step, every LLM
 * call with its catch-up, the router, the backends, the loop, and the drop at the end.
 *
 * Router + protocol per token = the router (timed inside the route) + the loop (the run's wall
 * time minus the time inside the backends and the router) + the backends' own cost per call
 * beyond the forward pass, measured apart because it is small next to a step's noise: the
 * in-process backend's wrapper (an append minus a plain forward on a tiny 1-layer model of the
 * SLM's width) plus its argmax and probability over the real vocabulary, and for coprocesses the
 * request/response round trip (a coprocess append minus an in-process append on the tiny model).
 * Its share of a routed step is that over the measured s/token (target <= 3 %), and also shown
 * over the ideal s/token (what it will weigh once the catch-up costs what it should).
 *
 * Catch-up: the LLM ingests the SLM's tokens since its last call in one batched append of k
 * tokens; the table compares that with k single steps (citer_forward). The routed rows carry the
 * catch-up's cost beyond one step per call as measured in the run: the time inside the LLM's
 * appends minus, per call, one plain step and the backend's per-call cost.
 *
 * The coprocess row runs both models as servers (bin/citer-slm --serve, bin/citer-llm --serve,
 * relative to the current directory, as make bench runs it); it is left out when they are absent.
 * 96 tokens per run, 3 runs of each row (repetitions outermost), each row shown for its run with
 * the median "of ideal" (CITER_BENCH_QUICK=1: 32 tokens, 1 run). Int8 activations
 * (kernels.h) as the environment sets them (CITER_INT8_ACT), in both models, the servers
 * included. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "engine_cli.h"
#include "forward.h"
#include "gguf.h"
#include "kernels.h"
#include "kvcache.h"
#include "model.h"
#include "route.h"
#include "router.h"
#include "sampler.h"
#include "testmodel.h"
#include "util.h"
#include "bench_util.h"

#define N_PROMPT 32
#define BASE_SEQ 1 /* the prompt, ingested once */
#define RUN_SEQ 7  /* every timed run: the same seq, so the random policy draws the same choices */

/* ---- models (bench_decode's cache) ---- */

/* name: "qwen2.5-0.5b" (testmodel's preset), "qwen2.5-1.5b" (the same family, built here: the
 * vocabulary is Qwen2.5's, so the pair can route) or "tiny" (1 layer of the 0.5B's width, a
 * small vocabulary: a model that costs next to nothing, for the per-call overheads). */
static int model_spec(citer_testmodel_spec *s, const char *name)
{
    citer_testmodel_init(s, CITER_ARCH_LLAMA);
    citer_testmodel_preset(s, "qwen2.5-0.5b");
    s->weight_type = GGML_Q8_0;
    s->seed = 7;
    if (strcmp(name, "qwen2.5-1.5b") == 0) {
        s->dim = 1536;
        s->n_layers = 28;
        s->n_heads = 12;
        s->n_kv_heads = 2;
        s->head_dim = 128;
        s->ffn_dim = 8960;
    } else if (strcmp(name, "tiny") == 0) {
        s->n_layers = 1;
        s->ffn_dim = 256;
        s->vocab = 512;
        s->context_length = 4096;
    }
    return 0;
}

/* The path of a q8_0 model file, written on first use; NULL on failure. */
static const char *bench_model_path(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s-q8_0.gguf", model_dir(), name);
    if (access(path, R_OK) == 0) return path;
    if (mkdirs(model_dir()) != 0) {
        fprintf(stderr, "bench_route: cannot create %s\n", model_dir());
        return NULL;
    }
    citer_testmodel_spec s;
    model_spec(&s, name);
    fprintf(stderr, "bench_route: writing %s (once) ...\n", path);
    double t0 = now_seconds();
    if (citer_testmodel_write_gguf(&s, path) != 0) {
        fprintf(stderr, "bench_route: %s: %s\n", path, citer_error());
        return NULL;
    }
    fprintf(stderr, "bench_route: wrote %s in %.1f s\n", path, now_seconds() - t0);
    return path;
}

/* D -> 2D -> D -> 1 with uniform weights of unit-variance outputs (a fixed generator). */
static citer_router *random_router(int dim)
{
    int hidden[2] = {2 * dim, dim};
    citer_router *r = citer_router_new(dim, 2, hidden);
    uint64_t x = 12345;
    for (size_t i = 0; i < r->n_params; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        r->params[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * 2.0f * sqrtf(3.0f / (float)dim);
    }
    citer_router_prepare(r);
    return r;
}

/* ---- plain decode steps and catch-up appends (citer_forward, the ideal's unit) ---- */

static void fill_prompt(int32_t *p, int n, int vocab)
{
    for (int i = 0; i < n; i++) p[i] = (int32_t)((300 + 7 * i) % vocab);
}

/* Mean seconds of a single-token decode step at positions N_PROMPT-1 .. N_PROMPT+n-2 (the SLM's
 * positions in a routed run) after the prompt's other tokens; the last step's logits stay in
 * logits (V floats). */
static double step_seconds(const citer_model *m, const citer_seq *prefix, int n, float *logits)
{
    int V = m->cfg.vocab_size;
    citer_seq *s = citer_seq_fork(prefix);
    int32_t tok = (int32_t)(1000 % V);
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) {
        citer_forward(m, s, &tok, 1, NULL, logits, 0);
        tok = (int32_t)((tok * 31 + 17) % V);
    }
    double t = (now_seconds() - t0) / n;
    citer_seq_free(s);
    return t;
}

/* Seconds of one append of k tokens (logits of the last position) after the prefix. */
static double append_seconds(const citer_model *m, const citer_seq *prefix, int k)
{
    int V = m->cfg.vocab_size;
    float *logits = xmalloc(sizeof(float) * (size_t)V);
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)k);
    for (int i = 0; i < k; i++) tok[i] = (int32_t)((2000 + 13 * i) % V);
    citer_seq *s = citer_seq_fork(prefix);
    double t0 = now_seconds();
    citer_forward(m, s, tok, k, NULL, logits, 0);
    double t = now_seconds() - t0;
    citer_seq_free(s);
    free(tok);
    free(logits);
    return t;
}

static const int catchup_k[] = {1, 2, 3, 4, 8, 16, 32};
#define N_CATCHUP ((int)(sizeof catchup_k / sizeof *catchup_k))

/* ---- per-call backend overheads on the tiny model ---- */

typedef struct {
    double forward;   /* plain citer_forward, 1 token */
    double inproc;    /* in-process backend append, 1 token, hidden state */
    double co_hidden; /* coprocess append, 1 token, hidden state (an SLM step) */
    double co_plain;  /* coprocess append, 1 token, no hidden state (an LLM step) */
} call_costs;

/* Mean seconds per call of `calls` one-token appends to a fresh sequence. */
static double backend_calls(citer_backend *b, int vocab, int calls, int want_hidden)
{
    citer_backend_step st;
    int32_t tok = 5;
    double t0 = now_seconds();
    for (int i = 0; i < calls; i++) {
        if (citer_backend_append(b, 3, &tok, 1, want_hidden, NULL, &st) != 0) {
            fprintf(stderr, "bench_route: tiny backend: %s\n", citer_error());
            exit(1);
        }
        tok = (int32_t)((tok * 31 + 17) % vocab);
    }
    double t = (now_seconds() - t0) / calls;
    citer_backend_drop(b, 3);
    return t;
}

static double forward_calls(const citer_model *m, int calls)
{
    int V = m->cfg.vocab_size;
    float *logits = xmalloc(sizeof(float) * (size_t)V), *hidden = xmalloc(sizeof(float) * (size_t)m->cfg.dim);
    citer_seq *s = citer_seq_new(m);
    int32_t tok = 5;
    double t0 = now_seconds();
    for (int i = 0; i < calls; i++) {
        citer_forward(m, s, &tok, 1, hidden, logits, 0);
        tok = (int32_t)((tok * 31 + 17) % V);
    }
    double t = (now_seconds() - t0) / calls;
    citer_seq_free(s);
    free(logits);
    free(hidden);
    return t;
}

/* Best (least disturbed) block mean of each kind, the kinds interleaved block by block. */
static void measure_call_costs(const char *tiny_path, const char *slm_cmd_fmt, int have_bins, int blocks, int calls,
                               call_costs *c)
{
    citer_model *m = citer_model_load(tiny_path);
    citer_backend *in = citer_backend_load(tiny_path), *co = NULL;
    if (!m || !in) {
        fprintf(stderr, "bench_route: %s: %s\n", tiny_path, citer_error());
        exit(1);
    }
    if (have_bins) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, slm_cmd_fmt, tiny_path);
        co = citer_backend_spawn(cmd);
        if (!co) {
            fprintf(stderr, "bench_route: %s: %s\n", cmd, citer_error());
            exit(1);
        }
    }
    c->forward = c->inproc = c->co_hidden = c->co_plain = 1e30;
    for (int b = 0; b < blocks; b++) {
        double t = forward_calls(m, calls);
        if (t < c->forward) c->forward = t;
        t = backend_calls(in, m->cfg.vocab_size, calls, 1);
        if (t < c->inproc) c->inproc = t;
        if (!co) continue;
        t = backend_calls(co, m->cfg.vocab_size, calls, 1);
        if (t < c->co_hidden) c->co_hidden = t;
        t = backend_calls(co, m->cfg.vocab_size, calls, 0);
        if (t < c->co_plain) c->co_plain = t;
    }
    if (co && citer_backend_close(co) != 0) fprintf(stderr, "bench_route: tiny server: %s\n", citer_error());
    citer_backend_close(in);
    citer_model_free(m);
}

/* Seconds of the in-process backend's argmax with its probability over a model's V logits. */
static double argmax_seconds(const float *logits, int V, int reps)
{
    float p;
    volatile int32_t sink = 0;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        for (int i = 0; i < 20; i++) sink = sink + citer_argmax(logits, V, &p);
        double t = (now_seconds() - t0) / 20;
        if (t < best) best = t;
    }
    return best;
}

/* ---- routed runs ---- */

typedef struct {
    double wall; /* seconds */
    int n, llm_tokens, llm_calls, llm_ingested, catchup, slm_calls, router_calls;
    double t_slm, t_llm, t_router;  /* inside the route */
    double plain_slm, plain_llm;    /* plain decode steps measured just before and after the run */
    double of_ideal;
} route_result;

enum { MAX_REPS = 5 };

typedef struct {
    const char *name;
    int policy;
    double p;
    int coproc; /* over the coprocess pair */
    route_result runs[MAX_REPS];
    int nruns;
    const route_result *median; /* the run with the median share of the ideal */
} route_row;

/* One timed run of row's policy, kept as the row's next run (its plain steps filled later). */
static route_result *route_run(route_row *row, citer_backend *slm, citer_backend *llm, const citer_router *router,
                               const int32_t *prompt, int n_tokens)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.policy = row->policy;
    o.param = row->p;
    o.router = router;
    o.max_tokens = n_tokens;
    o.ignore_eos = 1;
    o.seed = 1;
    citer_route *r = citer_route_new(slm, llm, &o);
    if (!r) {
        fprintf(stderr, "bench_route: %s: %s\n", row->name, citer_error());
        exit(1);
    }
    if (citer_route_fork(r, RUN_SEQ, BASE_SEQ, N_PROMPT - 1) != 0) {
        fprintf(stderr, "bench_route: %s: fork: %s\n", row->name, citer_error());
        exit(1);
    }
    citer_route_result res;
    double t0 = now_seconds();
    int rc = citer_route_prompt_from(r, RUN_SEQ, prompt, N_PROMPT, N_PROMPT - 1, &res);
    double wall = now_seconds() - t0;
    if (rc != 0) {
        fprintf(stderr, "bench_route: %s: %s\n", row->name, citer_error());
        exit(1);
    }
    route_result *w = &row->runs[row->nruns++];
    memset(w, 0, sizeof *w);
    w->wall = wall;
    w->n = res.n;
    w->llm_tokens = res.llm_tokens;
    w->llm_calls = res.llm_calls;
    w->llm_ingested = res.llm_ingested;
    w->catchup = res.catchup;
    w->slm_calls = res.slm_ingested; /* one token per SLM append after the fork */
    w->router_calls = res.router_calls;
    w->t_slm = res.t_slm;
    w->t_llm = res.t_llm;
    w->t_router = res.t_router;
    citer_route_result_free(&res);
    citer_route_free(r);
    return w;
}

/* The ideal seconds per token of a run: its own plain steps and its share of LLM tokens. */
static double ideal_seconds(const route_row *row, const route_result *w)
{
    return row->policy == CITER_POLICY_LLM ? w->plain_llm : w->plain_slm + (double)w->llm_tokens / w->n * w->plain_llm;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void route_base(citer_backend *slm, citer_backend *llm, const int32_t *prompt)
{
    citer_route_opts o;
    citer_route_defaults(&o);
    o.policy = CITER_POLICY_RANDOM;
    o.param = 0.5;
    citer_route *r = citer_route_new(slm, llm, &o);
    if (!r || citer_route_base(r, BASE_SEQ, prompt, N_PROMPT) != 0) {
        fprintf(stderr, "bench_route: prompt: %s\n", citer_error());
        exit(1);
    }
    citer_route_free(r);
}

int main(void)
{
    int quick = getenv("CITER_BENCH_QUICK") && atoi(getenv("CITER_BENCH_QUICK")) > 0;
    int reps = quick ? 1 : 3, n_tokens = quick ? 32 : 96, n_steps = quick ? 8 : 24;
    signal(SIGPIPE, SIG_IGN); /* a dead server shows up as an error, not as our death */
    citer_set_threads(2);

    char slm_path[1100], llm_path[1100], tiny_path[1100];
    if (!bench_model_path("qwen2.5-0.5b", slm_path, sizeof slm_path) ||
        !bench_model_path("qwen2.5-1.5b", llm_path, sizeof llm_path) ||
        !bench_model_path("tiny", tiny_path, sizeof tiny_path))
        return 1;
    citer_model *ms = citer_model_load(slm_path), *ml = citer_model_load(llm_path);
    citer_backend *slm = citer_backend_load(slm_path), *llm = citer_backend_load(llm_path);
    if (!ms || !ml || !slm || !llm) {
        fprintf(stderr, "bench_route: %s\n", citer_error());
        return 1;
    }
    int D = ms->cfg.dim, V = ms->cfg.vocab_size;
    citer_router *router = random_router(D);
    int have_bins = access("bin/citer-slm", X_OK) == 0 && access("bin/citer-llm", X_OK) == 0;
    const char *slm_cmd_fmt = "exec bin/citer-slm --serve --threads 2 -q -m '%s'";
    const char *llm_cmd_fmt = "exec bin/citer-llm --serve --threads 2 -q -m '%s'";

    char layers[64];
    citer_router_layers_string(router, layers, sizeof layers);
    int int8 = citer_int8_activations();
    printf("bench_route: kernels %s%s, %d threads%s; SLM qwen2.5-0.5b q8_0 (%.2f GB), LLM qwen2.5-1.5b q8_0 "
           "(%.2f GB), shared vocabulary %d, random router %s; %d tokens after a %d-token prompt, median of %d runs\n",
           citer_kernels_name(), int8 ? " with int8 activations" : "", citer_get_threads(), quick ? " (quick)" : "",
           (double)citer_model_weight_bytes(ms) / 1e9, (double)citer_model_weight_bytes(ml) / 1e9, V, layers,
           n_tokens, N_PROMPT, reps);
    printf("ideal: the SLM runs every step, the LLM only for its share r of the tokens, nothing else costs:\n"
           "  ideal s/token = t_slm + r*t_llm, ideal speed-up = t_llm / (t_slm + r*t_llm), with t_slm, t_llm plain\n"
           "  single-token decode steps of each model (%d of each just before and just after the routed run, from\n"
           "  the same positions) and r the share the LLM wrote; each row is the run with the median of-id\n",
           n_steps);
    fflush(stdout);

    int32_t prompt[N_PROMPT];
    fill_prompt(prompt, N_PROMPT, V);
    /* the plain models' prefix: the prompt but its last token, as the routed runs start */
    citer_seq *pre_s = citer_seq_new(ms), *pre_l = citer_seq_new(ml);
    citer_forward(ms, pre_s, prompt, N_PROMPT - 1, NULL, NULL, 0);
    citer_forward(ml, pre_l, prompt, N_PROMPT - 1, NULL, NULL, 0);

    /* per-call overheads first: cheap, and they feed nothing but the overhead column */
    call_costs cc;
    measure_call_costs(tiny_path, slm_cmd_fmt, have_bins, quick ? 3 : 5, quick ? 100 : 200, &cc);

    route_row rows[] = {
        {.name = "llm only", .policy = CITER_POLICY_LLM, .p = 1, .coproc = 0},
        {.name = "random:0.1", .policy = CITER_POLICY_RANDOM, .p = 0.1, .coproc = 0},
        {.name = "random:0.3", .policy = CITER_POLICY_RANDOM, .p = 0.3, .coproc = 0},
        {.name = "random:0.5", .policy = CITER_POLICY_RANDOM, .p = 0.5, .coproc = 0},
        {.name = "random:0.3 co", .policy = CITER_POLICY_RANDOM, .p = 0.3, .coproc = 1},
    };
    int n_rows = (int)(sizeof rows / sizeof *rows);
    if (!have_bins) n_rows--;

    citer_backend *co_slm = NULL, *co_llm = NULL;
    if (have_bins) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, slm_cmd_fmt, slm_path);
        co_slm = citer_backend_spawn(cmd);
        snprintf(cmd, sizeof cmd, llm_cmd_fmt, llm_path);
        co_llm = co_slm ? citer_backend_spawn(cmd) : NULL;
        if (!co_slm || !co_llm) {
            fprintf(stderr, "bench_route: %s: %s\n", cmd, citer_error());
            return 1;
        }
        route_base(co_slm, co_llm, prompt);
    }
    route_base(slm, llm, prompt);

    /* Repetitions outermost, so a change in the machine's load hits every row alike; plain steps
     * between the routed runs, so that each run's ideal comes from the machine as it was then
     * (its memory bandwidth drifts by 2x within a minute). */
    double steps_slm[MAX_REPS * 8], steps_llm[MAX_REPS * 8], catchup_x[N_CATCHUP][MAX_REPS];
    int n_step_pairs = 0;
    float *logits = xmalloc(sizeof(float) * (size_t)V);
    for (int rep = 0; rep < reps; rep++) {
        double before_s = step_seconds(ms, pre_s, n_steps, logits), before_l = step_seconds(ml, pre_l, n_steps, logits);
        steps_slm[n_step_pairs] = before_s, steps_llm[n_step_pairs++] = before_l;
        for (int k = 0; k < N_CATCHUP; k++) catchup_x[k][rep] = append_seconds(ml, pre_l, catchup_k[k]) / before_l;
        for (int i = 0; i < n_rows; i++) {
            route_result *w = route_run(&rows[i], rows[i].coproc ? co_slm : slm, rows[i].coproc ? co_llm : llm,
                                        router, prompt, n_tokens);
            double after_s = step_seconds(ms, pre_s, n_steps, logits), after_l = step_seconds(ml, pre_l, n_steps, logits);
            steps_slm[n_step_pairs] = after_s, steps_llm[n_step_pairs++] = after_l;
            w->plain_slm = 0.5 * (before_s + after_s), w->plain_llm = 0.5 * (before_l + after_l);
            w->of_ideal = ideal_seconds(&rows[i], w) / (w->wall / w->n);
            before_s = after_s, before_l = after_l;
        }
    }
    for (int i = 0; i < n_rows; i++) { /* the median run by of-id (runs sorted in place) */
        route_row *row = &rows[i];
        for (int a = 1; a < row->nruns; a++)
            for (int b = a; b > 0 && row->runs[b].of_ideal < row->runs[b - 1].of_ideal; b--) {
                route_result t = row->runs[b];
                row->runs[b] = row->runs[b - 1], row->runs[b - 1] = t;
            }
        row->median = &row->runs[row->nruns / 2];
    }

    double t_argmax = argmax_seconds(logits, V, quick ? 5 : 20); /* on the LLM's last logits */
    free(logits);
    double t_slm_min = steps_slm[0], t_slm_max = steps_slm[0], t_llm_min = steps_llm[0], t_llm_max = steps_llm[0];
    for (int i = 1; i < n_step_pairs; i++) {
        if (steps_slm[i] < t_slm_min) t_slm_min = steps_slm[i];
        if (steps_slm[i] > t_slm_max) t_slm_max = steps_slm[i];
        if (steps_llm[i] < t_llm_min) t_llm_min = steps_llm[i];
        if (steps_llm[i] > t_llm_max) t_llm_max = steps_llm[i];
    }
    double t_slm = median(steps_slm, n_step_pairs), t_llm = median(steps_llm, n_step_pairs);
    printf("plain decode steps (median of %d, range): t_slm %.2f ms (%.2f-%.2f), t_llm %.2f ms (%.2f-%.2f), ratio %.2f\n",
           n_step_pairs, 1e3 * t_slm, 1e3 * t_slm_min, 1e3 * t_slm_max, 1e3 * t_llm, 1e3 * t_llm_min, 1e3 * t_llm_max,
           t_llm / t_slm);
    printf("catch-up, the LLM's batched append of k tokens in plain steps measured just before (median of %d):\n ", reps);
    for (int k = 0; k < N_CATCHUP; k++) {
        double x = median(catchup_x[k], reps);
        printf(" k=%d %.2f steps (%.0f%% of k steps)%s", catchup_k[k], x, 100 * x / catchup_k[k], k + 1 < N_CATCHUP ? ";" : "\n");
    }
    double in_over = (cc.inproc - cc.forward) + t_argmax;
    printf("per call beyond the forward pass: in-process backend %.1f us (wrapper %.1f + argmax/p over %d logits "
           "%.1f)",
           1e6 * in_over, 1e6 * (cc.inproc - cc.forward), V, 1e6 * t_argmax);
    if (have_bins)
        printf("; coprocess round trip +%.1f us with the hidden state (%d floats), +%.1f us without",
               1e6 * (cc.co_hidden - cc.inproc), D, 1e6 * (cc.co_plain - cc.inproc));
    printf("\n");

    printf("%-13s %4s %5s %6s %6s %6s %6s %5s | %6s %6s %6s %6s | %6s %6s %5s %6s %5s %6s\n", "policy", "r", "k",
           "tok/s", "vs-llm", "ideal", "speed", "of-id", "ms/tok", "ideal", "catch", "rest", "router", "proto", "loop",
           "us/tok", "share", "/ideal");
    const route_result *llm_only = rows[0].median;
    double worst_of_ideal = 1e9, worst_share = 0, worst_share_ideal = 0;
    for (int i = 0; i < n_rows; i++) {
        const route_result *w = rows[i].median;
        double t_llm = w->plain_llm; /* this run's */
        double n = w->n, per_tok = w->wall / n, r = w->llm_tokens / n;
        double ideal = ideal_seconds(&rows[i], w);
        double ideal_x = t_llm / ideal, speed = t_llm / per_tok, of_ideal = w->of_ideal;
        double router_us = 1e6 * w->t_router / n;
        double loop_us = 1e6 * (w->wall - w->t_slm - w->t_llm - w->t_router) / n;
        double co_h = rows[i].coproc ? cc.co_hidden - cc.inproc : 0, co_p = rows[i].coproc ? cc.co_plain - cc.inproc : 0;
        double proto_us = 1e6 * (w->slm_calls * (in_over + co_h) + w->llm_calls * (in_over + co_p)) / n;
        double over_us = router_us + loop_us + proto_us, share = 1e-6 * over_us / per_tok;
        double share_ideal = 1e-6 * over_us / ideal;
        /* the catch-up beyond one step per LLM call, from the run's time inside the LLM's appends */
        double catch_ms = 1e3 * (w->t_llm - w->llm_calls * (t_llm + in_over + co_p)) / n;
        double rest_ms = 1e3 * per_tok - 1e3 * ideal - catch_ms - 1e-3 * over_us;
        printf("%-13s %4.2f %5.1f %6.2f %5.2fx %5.2fx %5.2fx %4.0f%% | %6.1f %6.1f %6.1f %6.1f | %6.1f %6.1f %5.1f "
               "%6.1f %4.1f%% %5.1f%%\n",
               rows[i].name, r, (double)w->llm_ingested / w->llm_calls, n / w->wall, llm_only->wall / llm_only->n / per_tok, ideal_x, speed, 100 * of_ideal,
               1e3 * per_tok, 1e3 * ideal, catch_ms, rest_ms, router_us, proto_us, loop_us, over_us, 100 * share,
               100 * share_ideal);
        if (rows[i].policy == CITER_POLICY_RANDOM && of_ideal < worst_of_ideal) worst_of_ideal = of_ideal;
        if (rows[i].policy == CITER_POLICY_RANDOM && share > worst_share) worst_share = share;
        if (rows[i].policy == CITER_POLICY_RANDOM && share_ideal > worst_share_ideal) worst_share_ideal = share_ideal;
    }
    printf("columns: r = share of tokens the LLM wrote; k = tokens per LLM append (its token + catch-up); vs-llm = speed-up over LLM-only routing; ideal, speed = "
           "speed-up over t_llm, ideal and measured; of-id = ideal s/token / measured s/token;\n"
           "  ms/tok = measured = ideal + catch (time in the LLM's appends beyond one plain step each) + "
           "router/proto/loop + rest (unexplained: noise, caches);\n"
           "  router = the router's MLP, proto = the backends' work beyond the forward pass, loop = the route "
           "loop itself; share = router+proto+loop of a routed step (measured), /ideal = of the ideal step\n");
    if (have_bins) {
        const route_result *in = rows[2].median, *co = rows[4].median;
        printf("coprocess check: random:0.3 over servers minus in-process, end to end: %+.1f us/token (%d tokens, "
               "same choices: LLM tokens %d vs %d)\n",
               1e6 * (co->wall / co->n - in->wall / in->n), co->n, co->llm_tokens, in->llm_tokens);
    } else {
        printf("coprocess row left out: bin/citer-slm and bin/citer-llm not found (run make first)\n");
    }
    printf("summary: routed speed-up worst %.0f%% of the ideal (target 85%%), router + protocol worst %.1f%% of a "
           "routed step (target 3%%), %.1f%% of an ideal step\n",
           100 * worst_of_ideal, 100 * worst_share, 100 * worst_share_ideal);

    if (co_slm && citer_backend_close(co_slm) != 0) fprintf(stderr, "bench_route: slm server: %s\n", citer_error());
    if (co_llm && citer_backend_close(co_llm) != 0) fprintf(stderr, "bench_route: llm server: %s\n", citer_error());
    citer_backend_close(slm);
    citer_backend_close(llm);
    citer_seq_free(pre_s);
    citer_seq_free(pre_l);
    citer_model_free(ms);
    citer_model_free(ml);
    citer_router_free(router);
    return 0;
}
