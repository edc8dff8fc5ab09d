/* The engine against itself, on random models it writes (no fixtures needed): one model in
 * several files and storage types gives the same numbers; prefill equals decode; truncation,
 * forks and chunked prefill change nothing; quantized files load and stay close; broken files
 * fail with one clear line. */
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "forward.h"
#include "gguf.h"
#include "kvcache.h"
#include "model.h"
#include "safetensors.h"
#include "testmodel.h"
#include "util.h"

static const int archs[3] = {CITER_ARCH_LLAMA, CITER_ARCH_QWEN2, CITER_ARCH_QWEN3};
static const char *arch_names[3] = {"llama", "qwen2", "qwen3"};

/* Small models of each family: llama with GQA (8 heads, 2 kv) and its own lm_head, qwen2 with
 * biases and tied embeddings, qwen3 with q/k norms and n_heads*head_dim = 128 != D = 64. */
static citer_testmodel_spec small_spec(int arch)
{
    citer_testmodel_spec s;
    citer_testmodel_init(&s, arch);
    s.n_layers = arch == CITER_ARCH_QWEN2 ? 3 : 2;
    if (arch == CITER_ARCH_LLAMA) s.n_heads = 8, s.n_kv_heads = 2, s.head_dim = 8, s.tied = 0;
    s.vocab = 300 + 7 * arch;
    s.seed = 100 + (uint64_t)arch;
    s.rope_theta = arch == CITER_ARCH_LLAMA ? 10000.0f : 1e6f;
    /* A large eps so that an eps that is not read from the file shows in the logits. */
    s.rms_eps = arch == CITER_ARCH_QWEN3 ? 1e-6f : 0.05f;
    return s;
}

static const char *tmp_path(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

static void gen_tokens(int32_t *t, int n, int vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
}

static double rel_l2(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Worst relative L2 error over T rows of width w. */
static double worst(const float *got, const float *ref, int T, int w)
{
    double e = 0;
    for (int t = 0; t < T; t++) {
        double x = rel_l2(got + (size_t)t * w, ref + (size_t)t * w, w);
        if (!(x <= e)) e = x; /* NaN counts as worst */
    }
    return e;
}

/* Feed tokens in one call to a fresh sequence; hidden [n x D] and logits [n x V]. */
static int run_batch(const citer_model *m, const int32_t *tok, int n, float *hidden, float *logits)
{
    citer_seq *s = citer_seq_new(m);
    int rc = citer_forward(m, s, tok, n, hidden, logits, 1);
    citer_seq_free(s);
    return rc;
}

typedef struct {
    int T, D, V;
    float *hidden, *logits;
} outputs;

static int outputs_of(const citer_model *m, const int32_t *tok, int T, outputs *o)
{
    o->T = T, o->D = m->cfg.dim, o->V = m->cfg.vocab_size;
    o->hidden = xmalloc((size_t)T * o->D * sizeof(float));
    o->logits = xmalloc((size_t)T * o->V * sizeof(float));
    return run_batch(m, tok, T, o->hidden, o->logits);
}

static void outputs_free(outputs *o) { free(o->hidden), free(o->logits); }

static citer_model *write_and_load_gguf(const citer_testmodel_spec *s, const char *name)
{
    const char *path = tmp_path(name);
    if (citer_testmodel_write_gguf(s, path) != 0) {
        printf("  writing %s: %s\n", name, citer_error());
        return NULL;
    }
    citer_model *m = citer_model_load(path);
    if (!m) printf("  loading %s: %s\n", name, citer_error());
    return m;
}

static citer_model *write_and_load_hf(const citer_testmodel_spec *s, const char *name, int shards)
{
    const char *dir = tmp_path(name);
    if (citer_testmodel_write_hf(s, dir, shards) != 0) {
        printf("  writing %s: %s\n", name, citer_error());
        return NULL;
    }
    citer_model *m = citer_model_load(dir);
    if (!m) printf("  loading %s: %s\n", name, citer_error());
    return m;
}

/* The configuration read back equals the one written. */
static void check_config(const citer_model *m, const citer_testmodel_spec *s, const char *what)
{
    const citer_config *c = &m->cfg;
    CHECK(c->arch == s->arch && c->dim == s->dim && c->n_layers == s->n_layers && c->n_heads == s->n_heads &&
              c->n_kv_heads == s->n_kv_heads && c->head_dim == s->head_dim && c->ffn_dim == s->ffn_dim &&
              c->vocab_size == s->vocab && c->tied_embeddings == s->tied && c->context_length == s->context_length,
          "%s: configuration read back differs: %s", what, citer_model_describe(m));
    CHECK(c->rms_eps == s->rms_eps, "%s: rms_eps %g, written %g", what, c->rms_eps, s->rms_eps);
    CHECK(c->rope_theta == s->rope_theta, "%s: rope_theta %g, written %g", what, c->rope_theta, s->rope_theta);
}

/* ---------------------------------------------------------------- 1. one model, many files */

/* The same f32 weights as GGUF (llama: permuted q/k, adjacent-pair RoPE) and as an HF directory
 * (split-half RoPE), single file and sharded, give the same logits and hidden states. */
static void gguf_and_hf_f32_agree(void)
{
    const int T = 24;
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        char name[64];
        snprintf(name, sizeof name, "%s-f32.gguf", arch_names[a]);
        citer_model *g = write_and_load_gguf(&s, name);
        snprintf(name, sizeof name, "%s-f32-hf", arch_names[a]);
        citer_model *h = write_and_load_hf(&s, name, 1);
        snprintf(name, sizeof name, "%s-f32-hf-sharded", arch_names[a]);
        citer_model *hs = write_and_load_hf(&s, name, 3);
        CHECK(g && h && hs, "%s: a model did not load", arch_names[a]);
        if (g && h && hs) {
            check_config(g, &s, "gguf");
            check_config(h, &s, "hf");
            check_config(hs, &s, "hf sharded");
            int32_t tok[24];
            gen_tokens(tok, T, s.vocab, 7 + (uint64_t)a);
            outputs og, oh, os;
            CHECK(outputs_of(g, tok, T, &og) == 0, "%s", citer_error());
            CHECK(outputs_of(h, tok, T, &oh) == 0, "%s", citer_error());
            CHECK(outputs_of(hs, tok, T, &os) == 0, "%s", citer_error());
            double el = worst(oh.logits, og.logits, T, og.V), eh = worst(oh.hidden, og.hidden, T, og.D);
            double es = worst(os.logits, oh.logits, T, og.V);
            CHECK(el <= 1e-5 && eh <= 1e-5, "%s: hf vs gguf f32: logits %.3g hidden %.3g", arch_names[a], el, eh);
            CHECK(es <= 1e-6, "%s: sharded vs single-file hf: logits %.3g", arch_names[a], es);
            printf("  %s: hf vs gguf f32: logits %.2e hidden %.2e; sharded hf %.2e\n", arch_names[a], el, eh, es);
            outputs_free(&og), outputs_free(&oh), outputs_free(&os);
        }
        citer_model_free(g), citer_model_free(h), citer_model_free(hs);
    }
}

/* Llama-3 rope scaling: config.json's llama3 rope_scaling (HF) and the GGUF's rope_freqs.weight
 * divisors must give the same logits, and differ from the unscaled model at positions where the
 * scaled frequencies matter (original context 16, so positions up to 70 reach them). */
static void llama3_rope_scaling(void)
{
    const int T = 70;
    citer_testmodel_spec s = small_spec(CITER_ARCH_LLAMA);
    citer_testmodel_spec plain = s;
    s.rope_factor = 8, s.rope_low_freq_factor = 1, s.rope_high_freq_factor = 4, s.rope_original_context = 16;
    citer_model *g = write_and_load_gguf(&s, "llama3-rope.gguf");
    citer_model *h = write_and_load_hf(&s, "llama3-rope-hf", 1);
    citer_model *p = write_and_load_gguf(&plain, "llama3-plain.gguf");
    REQUIRE(g && h && p, "a model did not load: %s", citer_error());
    CHECK(g->rope_freqs != NULL, "rope_freqs.weight not loaded");
    CHECK(h->cfg.rope_factor == 8 && h->cfg.rope_original_context == 16, "rope_scaling not read from config.json");
    int32_t tok[70];
    gen_tokens(tok, T, s.vocab, 11);
    outputs og, oh, op;
    CHECK(outputs_of(g, tok, T, &og) == 0 && outputs_of(h, tok, T, &oh) == 0 && outputs_of(p, tok, T, &op) == 0,
          "%s", citer_error());
    double e = worst(oh.logits, og.logits, T, og.V), d = worst(op.logits, og.logits, T, og.V);
    CHECK(e <= 1e-5, "hf llama3 rope_scaling vs gguf rope_freqs: logits %.3g", e);
    CHECK(d > 1e-3, "scaled and unscaled models agree (%.3g): the scaling had no effect", d);
    printf("  llama3 rope scaling: hf vs gguf %.2e, scaled vs unscaled %.2e\n", e, d);
    outputs_free(&og), outputs_free(&oh), outputs_free(&op);
    citer_model_free(g), citer_model_free(h), citer_model_free(p);
}

/* Weights snapped to values exact in f16 and bf16: GGUF f32/f16/bf16 and HF f32/f16/bf16 hold
 * identical numbers, so all six give the logits of the GGUF f32 file. */
static void float_types_agree(void)
{
    const int T = 16;
    static const int types[3] = {GGML_F32, GGML_F16, GGML_BF16};
    static const char *tn[3] = {"f32", "f16", "bf16"};
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        s.snap_type = GGML_BF16;
        int32_t tok[16];
        gen_tokens(tok, T, s.vocab, 11 + (uint64_t)a);
        outputs ref = {0};
        int have_ref = 0;
        for (int hf = 0; hf < 2; hf++)
            for (int k = 0; k < 3; k++) {
                s.weight_type = types[k];
                char name[64];
                snprintf(name, sizeof name, "%s-snap-%s%s", arch_names[a], tn[k], hf ? "-hf" : ".gguf");
                citer_model *m = hf ? write_and_load_hf(&s, name, 1) : write_and_load_gguf(&s, name);
                CHECK(m != NULL, "%s did not load", name);
                if (!m) continue;
                outputs o;
                CHECK(outputs_of(m, tok, T, &o) == 0, "%s", citer_error());
                if (!have_ref) {
                    ref = o, have_ref = 1; /* GGUF f32 */
                } else {
                    double el = worst(o.logits, ref.logits, T, o.V), eh = worst(o.hidden, ref.hidden, T, o.D);
                    CHECK(el <= 1e-5 && eh <= 1e-5, "%s vs gguf f32: logits %.3g hidden %.3g", name, el, eh);
                    /* and token by token: the matrix-vector kernels of each type */
                    citer_seq *q = citer_seq_new(m);
                    for (int t = 0; t < T; t++)
                        CHECK(citer_forward(m, q, tok + t, 1, NULL, o.logits + (size_t)t * o.V, 0) == 0, "%s",
                              citer_error());
                    citer_seq_free(q);
                    double ed = worst(o.logits, ref.logits, T, o.V);
                    CHECK(ed <= 1e-5, "%s decode vs gguf f32 prefill: logits %.3g", name, ed);
                    printf("  %s vs gguf f32: logits %.2e hidden %.2e, decode %.2e\n", name, el, eh, ed);
                    outputs_free(&o);
                }
                citer_model_free(m);
            }
        if (have_ref) outputs_free(&ref);
    }
}

/* ---------------------------------------------------------------- 2.-4. the KV cache */

/* One batch of T tokens equals T single-token steps, at every position (70 crosses a page). */
static void prefill_equals_decode(void)
{
    const int T = 70;
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        char name[64];
        snprintf(name, sizeof name, "%s-f32.gguf", arch_names[a]);
        citer_model *m = write_and_load_gguf(&s, name);
        REQUIRE(m != NULL, "model");
        int32_t tok[70];
        gen_tokens(tok, T, s.vocab, 21 + (uint64_t)a);
        outputs o;
        CHECK(outputs_of(m, tok, T, &o) == 0, "%s", citer_error());
        float *hid = xmalloc((size_t)T * o.D * sizeof(float)), *lg = xmalloc((size_t)T * o.V * sizeof(float));
        citer_seq *q = citer_seq_new(m);
        for (int t = 0; t < T; t++)
            CHECK(citer_forward(m, q, tok + t, 1, hid + (size_t)t * o.D, lg + (size_t)t * o.V, 0) == 0, "%s",
                  citer_error());
        CHECK(q->len == T, "len %d after %d steps", q->len, T);
        double el = worst(lg, o.logits, T, o.V), eh = worst(hid, o.hidden, T, o.D);
        CHECK(el <= 1e-5 && eh <= 1e-5, "%s: decode vs prefill: logits %.3g hidden %.3g", arch_names[a], el, eh);
        printf("  %s: decode vs prefill, %d positions: logits %.2e hidden %.2e\n", arch_names[a], T, el, eh);
        citer_seq_free(q);
        free(hid), free(lg);
        outputs_free(&o);
        citer_model_free(m);
    }
}

/* An append that returns only the last position's logits (no hidden states: the route's LLM
 * catch-up) runs the last layer past its keys and values for that position alone: the same
 * logits as the full prefill's last row, and a cache from which the next steps continue as
 * after the full prefill; for every family, f32 and q8_0 (int8 activations where the CPU has
 * them), appends of 2, 5 and 37 tokens after a prefix. */
static void last_only_append(void)
{
    static const int ks[] = {2, 5, 37};
    for (int a = 0; a < 3; a++)
        for (int q8 = 0; q8 < 2; q8++) {
            citer_testmodel_spec s = small_spec(archs[a]);
            char name[64];
            snprintf(name, sizeof name, "%s-lastonly-%s.gguf", arch_names[a], q8 ? "q8_0" : "f32");
            if (q8) s.weight_type = GGML_Q8_0;
            citer_model *m = write_and_load_gguf(&s, name);
            REQUIRE(m != NULL, "model");
            int V = m->cfg.vocab_size;
            int32_t tok[64];
            gen_tokens(tok, 64, s.vocab, 41 + (uint64_t)a);
            float *all = xmalloc((size_t)64 * V * sizeof(float)), *last = xmalloc((size_t)V * sizeof(float));
            float *next1 = xmalloc((size_t)V * sizeof(float)), *next2 = xmalloc((size_t)V * sizeof(float));
            for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                int k = ks[c];
                citer_seq *full = citer_seq_new(m), *part = citer_seq_new(m);
                CHECK(citer_forward(m, full, tok, 10, NULL, NULL, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, part, tok, 10, NULL, NULL, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, full, tok + 10, k, NULL, all, 1) == 0, "%s", citer_error());
                CHECK(citer_forward(m, part, tok + 10, k, NULL, last, 0) == 0, "%s", citer_error());
                double e = worst(last, all + (size_t)(k - 1) * V, 1, V);
                CHECK(part->len == full->len, "len %d vs %d", part->len, full->len);
                /* then two more positions: one step, and a 3-token append's last logits */
                CHECK(citer_forward(m, full, tok + 10 + k, 1, NULL, next1, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, part, tok + 10 + k, 1, NULL, next2, 0) == 0, "%s", citer_error());
                double e1 = worst(next2, next1, 1, V);
                CHECK(citer_forward(m, full, tok + 11 + k, 3, NULL, next1, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, part, tok + 11 + k, 3, NULL, next2, 0) == 0, "%s", citer_error());
                double e2 = worst(next2, next1, 1, V);
                /* f32: both paths are f32 products in other orders; q8_0: int8 kernels whose
                 * batch and single-token forms agree to f32 rounding */
                CHECK(e <= 1e-5 && e1 <= 1e-5 && e2 <= 1e-5, "%s %s k=%d: last-only append %.3g, then a step %.3g, an append %.3g",
                      arch_names[a], q8 ? "q8_0" : "f32", k, e, e1, e2);
                citer_seq_free(full);
                citer_seq_free(part);
            }
            free(all), free(last), free(next1), free(next2);
            citer_model_free(m);
        }
}

/* Truncating and feeding the same tokens again reproduces the logits; cut points inside a
 * page, on a page boundary and at 0. */
static void truncate_then_replay(void)
{
    static const int cases[][2] = {{20, 7}, {140, 70}, {140, 64}, {140, 128}, {70, 0}};
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        char name[64];
        snprintf(name, sizeof name, "%s-f32.gguf", arch_names[a]);
        citer_model *m = write_and_load_gguf(&s, name);
        REQUIRE(m != NULL, "model");
        int V = m->cfg.vocab_size;
        int32_t tok[140];
        gen_tokens(tok, 140, s.vocab, 31 + (uint64_t)a);
        float *first = xmalloc((size_t)140 * V * sizeof(float)), *again = xmalloc((size_t)140 * V * sizeof(float));
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            int n = cases[c][0], cut = cases[c][1];
            citer_seq *q = citer_seq_new(m);
            CHECK(citer_forward(m, q, tok, cut, NULL, first, 1) == 0, "%s", citer_error());
            CHECK(citer_forward(m, q, tok + cut, n - cut, NULL, first + (size_t)cut * V, 1) == 0, "%s",
                  citer_error());
            citer_seq_truncate(q, cut);
            CHECK(q->len == cut, "len %d after truncate to %d", q->len, cut);
            CHECK(citer_forward(m, q, tok + cut, n - cut, NULL, again, 1) == 0, "%s", citer_error());
            double e = worst(again, first + (size_t)cut * V, n - cut, V);
            /* The same calls on the same cache contents: expected bitwise equal. */
            CHECK(e <= 1e-6, "%s: %d tokens, truncate to %d, replay: logits differ by %.3g", arch_names[a], n, cut, e);
            /* Also in single steps after a second truncation. */
            citer_seq_truncate(q, cut);
            double e1 = 0;
            for (int t = cut; t < n; t++) {
                CHECK(citer_forward(m, q, tok + t, 1, NULL, again, 0) == 0, "%s", citer_error());
                double x = rel_l2(again, first + (size_t)t * V, V);
                if (!(x <= e1)) e1 = x;
            }
            CHECK(e1 <= 1e-5, "%s: %d tokens, truncate to %d, step replay: logits differ by %.3g", arch_names[a], n,
                  cut, e1);
            citer_seq_free(q);
        }
        free(first), free(again);
        citer_model_free(m);
    }
}

/* A fork shares pages copy-on-write: after fork, each side continues with its own tokens and
 * must equal a fresh sequence fed the same tokens in the same calls. Fork points inside the
 * first page, at the page boundary and inside the second; continuations cross more pages. */
static void fork_is_copy_on_write(void)
{
    static const int forks[] = {10, 64, 70};
    const int N = 140;
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        char name[64];
        snprintf(name, sizeof name, "%s-f32.gguf", arch_names[a]);
        citer_model *m = write_and_load_gguf(&s, name);
        REQUIRE(m != NULL, "model");
        int V = m->cfg.vocab_size;
        int32_t A[140], B[140], C[140];
        gen_tokens(A, N, s.vocab, 41 + (uint64_t)a);
        float *got = xmalloc((size_t)N * V * sizeof(float)), *want = xmalloc((size_t)N * V * sizeof(float));
        for (size_t f = 0; f < sizeof forks / sizeof *forks; f++) {
            int k = forks[f];
            memcpy(B, A, sizeof A), memcpy(C, A, sizeof A);
            gen_tokens(B + k, N - k, s.vocab, 51 + f);
            gen_tokens(C + k, N - k, s.vocab, 61 + f);
            citer_seq *base = citer_seq_new(m);
            CHECK(citer_forward(m, base, A, k, NULL, NULL, 0) == 0, "%s", citer_error());
            citer_seq *fk = citer_seq_fork(base);
            CHECK(fk->len == k, "fork len %d, want %d", fk->len, k);
            citer_seq *fk2 = citer_seq_fork(fk); /* a third owner of the same pages, dropped early */
            /* the fork writes first, then the original; then each continues in single steps */
            CHECK(citer_forward(m, fk, C + k, 30, NULL, want + (size_t)k * V, 1) == 0, "%s", citer_error());
            citer_seq_free(fk2);
            CHECK(citer_forward(m, base, B + k, 30, NULL, got + (size_t)k * V, 1) == 0, "%s", citer_error());
            for (int t = k + 30; t < N; t++) {
                CHECK(citer_forward(m, base, B + t, 1, NULL, got + (size_t)t * V, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, fk, C + t, 1, NULL, want + (size_t)t * V, 0) == 0, "%s", citer_error());
            }
            /* fresh sequences, same calls */
            for (int side = 0; side < 2; side++) {
                const int32_t *seq = side ? C : B;
                const float *have = side ? want : got;
                float *ref = xmalloc((size_t)N * V * sizeof(float));
                citer_seq *fresh = citer_seq_new(m);
                CHECK(citer_forward(m, fresh, seq, k, NULL, NULL, 0) == 0, "%s", citer_error());
                CHECK(citer_forward(m, fresh, seq + k, 30, NULL, ref + (size_t)k * V, 1) == 0, "%s", citer_error());
                for (int t = k + 30; t < N; t++)
                    CHECK(citer_forward(m, fresh, seq + t, 1, NULL, ref + (size_t)t * V, 0) == 0, "%s",
                          citer_error());
                double e = worst(have + (size_t)k * V, ref + (size_t)k * V, N - k, V);
                CHECK(e <= 1e-6, "%s: fork at %d, %s side: logits differ from a fresh sequence by %.3g",
                      arch_names[a], k, side ? "forked" : "original", e);
                citer_seq_free(fresh);
                free(ref);
            }
            /* truncating a fork into shared pages and writing again leaves the original intact */
            citer_seq *f3 = citer_seq_fork(base);
            citer_seq_truncate(f3, k / 2);
            CHECK(citer_forward(m, f3, C, 3, NULL, NULL, 0) == 0, "%s", citer_error());
            float *l1 = xmalloc((size_t)V * sizeof(float)), *l2 = xmalloc((size_t)V * sizeof(float));
            citer_seq *fresh = citer_seq_new(m);
            CHECK(citer_forward(m, fresh, B, N, NULL, l1, 0) == 0, "%s", citer_error());
            int32_t probe = 5;
            citer_seq *b2 = citer_seq_fork(base);
            citer_seq_free(base);
            CHECK(citer_forward(m, b2, &probe, 1, NULL, l2, 0) == 0, "%s", citer_error());
            CHECK(citer_forward(m, fresh, &probe, 1, NULL, l1, 0) == 0, "%s", citer_error());
            CHECK(rel_l2(l2, l1, V) <= 1e-5, "%s: fork at %d: original changed after a fork's truncate+write (%.3g)",
                  arch_names[a], k, rel_l2(l2, l1, V));
            free(l1), free(l2);
            citer_seq_free(fresh), citer_seq_free(b2), citer_seq_free(f3), citer_seq_free(fk);
        }
        free(got), free(want);
        citer_model_free(m);
    }
}

/* citer_forward splits inputs over 512 positions; a 600-token prefill equals two calls of 300,
 * and the last-position-only form equals the last row. */
static void chunked_prefill(void)
{
    const int T = 600;
    for (int a = 0; a < 3; a++) {
        citer_testmodel_spec s = small_spec(archs[a]);
        char name[64];
        snprintf(name, sizeof name, "%s-f32.gguf", arch_names[a]);
        citer_model *m = write_and_load_gguf(&s, name);
        REQUIRE(m != NULL, "model");
        int V = m->cfg.vocab_size, D = m->cfg.dim;
        int32_t *tok = xmalloc((size_t)T * sizeof *tok);
        gen_tokens(tok, T, s.vocab, 71 + (uint64_t)a);
        outputs one;
        CHECK(outputs_of(m, tok, T, &one) == 0, "%s", citer_error());
        float *hid = xmalloc((size_t)T * D * sizeof(float)), *lg = xmalloc((size_t)T * V * sizeof(float));
        citer_seq *q = citer_seq_new(m);
        CHECK(citer_forward(m, q, tok, 300, hid, lg, 1) == 0, "%s", citer_error());
        CHECK(citer_forward(m, q, tok + 300, 300, hid + (size_t)300 * D, lg + (size_t)300 * V, 1) == 0, "%s",
              citer_error());
        double el = worst(lg, one.logits, T, V), eh = worst(hid, one.hidden, T, D);
        CHECK(el <= 1e-5 && eh <= 1e-5, "%s: 600 in one call vs 2 x 300: logits %.3g hidden %.3g", arch_names[a], el,
              eh);
        citer_seq *q1 = citer_seq_new(m);
        CHECK(citer_forward(m, q1, tok, T, NULL, lg, 0) == 0, "%s", citer_error());
        CHECK(q1->len == T, "len %d", q1->len);
        double e1 = rel_l2(lg, one.logits + (size_t)(T - 1) * V, V);
        CHECK(e1 <= 1e-6, "%s: last-position logits differ from the all-positions form by %.3g", arch_names[a], e1);
        printf("  %s: 600 vs 2 x 300: logits %.2e hidden %.2e\n", arch_names[a], el, eh);
        citer_seq_free(q), citer_seq_free(q1);
        free(hid), free(lg), free(tok);
        outputs_free(&one);
        citer_model_free(m);
    }
}

/* A call that fails leaves the sequence as it was, even when the bad part is in a later chunk. */
static void failed_forward_changes_nothing(void)
{
    citer_testmodel_spec s = small_spec(CITER_ARCH_QWEN2);
    s.context_length = 700;
    citer_model *m = write_and_load_gguf(&s, "qwen2-ctx700.gguf");
    REQUIRE(m != NULL, "model");
    int32_t *tok = xmalloc(800 * sizeof *tok);
    gen_tokens(tok, 800, s.vocab, 81);
    citer_seq *q = citer_seq_new(m);
    CHECK(citer_forward(m, q, tok, 10, NULL, NULL, 0) == 0, "%s", citer_error());
    CHECK(citer_forward(m, q, tok, 700, NULL, NULL, 0) == -1, "710 positions in a context of 700 accepted");
    CHECK(strstr(citer_error(), "context length 700 exceeded"), "message: %s", citer_error());
    CHECK(q->len == 10, "len %d after a failed call, want 10", q->len);
    tok[600] = s.vocab; /* out of range, in the second chunk */
    CHECK(citer_forward(m, q, tok, 650, NULL, NULL, 0) == -1, "token id %d accepted", s.vocab);
    char want[64];
    snprintf(want, sizeof want, "token id %d out of range", s.vocab);
    CHECK(strstr(citer_error(), want), "message: %s", citer_error());
    CHECK(q->len == 10, "len %d after a failed call, want 10", q->len);
    tok[0] = -1;
    CHECK(citer_forward(m, q, tok, 1, NULL, NULL, 0) == -1, "token id -1 accepted");
    CHECK(q->len == 10, "len %d after a failed call, want 10", q->len);
    citer_seq_free(q);
    free(tok);
    citer_model_free(m);
}

/* ---------------------------------------------------------------- 5. quantized files */

/* Each quantized GGUF (a) equals the f32 GGUF holding its dequantized values (snap_type): this
 * tests the loader and the quantized kernels, which use f32 activations, so 1e-5 as for f32;
 * (b) stays within a loose bound of the unquantized f32 model. The bounds follow from the
 * quantization step: round-to-nearest with a per-block absmax scale gives a relative weight
 * error of about 0.5% (8 bits), 2% (6 bits), 7% (4 bits); the logits may amplify that a few
 * times through 2 layers, so the bound is about 5x the weight error. */
static void quantized_models(void)
{
    static const struct {
        int type;
        const char *name;
        double bound;
    } q[] = {
        {GGML_Q8_0, "q8_0", 0.03}, {GGML_Q6_K, "q6_k", 0.1}, {GGML_Q5_K, "q5_k", 0.2},
        {GGML_Q4_K, "q4_k", 0.35}, {GGML_Q4_0, "q4_0", 0.35},
    };
    const int T = 12;
    for (int a = 0; a < 3; a += 2) { /* llama (untied: output quantized too) and qwen3 */
        citer_testmodel_spec s = small_spec(archs[a]);
        /* K-quants need rows that are multiples of 256 */
        s.dim = 256, s.ffn_dim = 512, s.n_heads = 4, s.n_kv_heads = 2, s.head_dim = archs[a] == CITER_ARCH_QWEN3 ? 128 : 64;
        s.rms_eps = 1e-5f;
        int32_t tok[12];
        gen_tokens(tok, T, s.vocab, 91 + (uint64_t)a);
        char name[64];
        snprintf(name, sizeof name, "%s-256-f32.gguf", arch_names[a]);
        citer_model *f = write_and_load_gguf(&s, name);
        REQUIRE(f != NULL, "f32 model");
        outputs of;
        CHECK(outputs_of(f, tok, T, &of) == 0, "%s", citer_error());
        for (size_t k = 0; k < sizeof q / sizeof *q; k++) {
            citer_testmodel_spec sq = s, sd = s;
            sq.weight_type = q[k].type;
            sd.snap_type = q[k].type;
            snprintf(name, sizeof name, "%s-256-%s.gguf", arch_names[a], q[k].name);
            citer_model *mq = write_and_load_gguf(&sq, name);
            snprintf(name, sizeof name, "%s-256-%s-dequant.gguf", arch_names[a], q[k].name);
            citer_model *md = write_and_load_gguf(&sd, name);
            CHECK(mq && md, "%s %s did not load", arch_names[a], q[k].name);
            if (mq && md) {
                CHECK(mq->layers[0].wq.type == q[k].type && mq->output.type == q[k].type, "%s: weight types",
                      q[k].name);
                /* f32 activations: dequantize-then-f32 up to f32 rounding; int8 activations
                 * (all these types, prefill and decode; the default with AVX-512 VNNI):
                 * within the fixtures' q8_0 tolerance, which llama.cpp's int8 activations meet at
                 * 9.9e-3 */
                for (int int8 = 0; int8 < 2; int8++) {
                    int old8 = citer_set_int8_activations(int8);
                    int uses8 = int8 && citer_int8_activations();
                    double tol = uses8 ? 2e-2 : 1e-5;
                    outputs oq, od;
                    CHECK(outputs_of(mq, tok, T, &oq) == 0, "%s", citer_error());
                    CHECK(outputs_of(md, tok, T, &od) == 0, "%s", citer_error());
                    /* decode too: the quantized matvec kernels */
                    float *lg = xmalloc((size_t)T * oq.V * sizeof(float));
                    citer_seq *sqq = citer_seq_new(mq);
                    for (int t = 0; t < T; t++)
                        CHECK(citer_forward(mq, sqq, tok + t, 1, NULL, lg + (size_t)t * oq.V, 0) == 0, "%s", citer_error());
                    citer_seq_free(sqq);
                    double ed = worst(oq.logits, od.logits, T, oq.V), es = worst(lg, od.logits, T, oq.V);
                    double ef = worst(oq.logits, of.logits, T, oq.V);
                    CHECK(ed <= tol, "%s %s%s vs f32 of its dequantized values: logits %.3g", arch_names[a], q[k].name,
                          uses8 ? " int8" : "", ed);
                    CHECK(es <= tol, "%s %s%s decode vs f32 of its dequantized values: logits %.3g", arch_names[a],
                          q[k].name, uses8 ? " int8" : "", es);
                    CHECK(ef <= q[k].bound, "%s %s vs unquantized f32: logits %.3g > %.3g", arch_names[a], q[k].name, ef,
                          q[k].bound);
                    printf("  %s %s%s: prefill %.2e, decode %.2e vs dequantized f32; %.2e vs f32 (bound %.2g)\n",
                           arch_names[a], q[k].name, uses8 ? " int8 activations" : "", ed, es, ef, q[k].bound);
                    citer_set_int8_activations(old8);
                    free(lg);
                    outputs_free(&oq), outputs_free(&od);
                }
            }
            citer_model_free(mq), citer_model_free(md);
        }
        outputs_free(&of);
        citer_model_free(f);
    }
}

/* ---------------------------------------------------------------- 6. broken files */

/* Copy a GGUF written by testmodel with one change. */
typedef struct {
    const char *drop_tensor;    /* leave this tensor out */
    const char *shrink_tensor;  /* halve its outer dimension */
    const char *retype_tensor;  /* store as Q8_1 (no weight kernels) */
    const char *drop_key;       /* leave this metadata key out */
    const char *arch;           /* new general.architecture */
} gguf_edit;

static int rewrite_gguf(const char *from, const char *to, const gguf_edit *e)
{
    gguf_file *g = gguf_open(from);
    if (!g) return -1;
    gguf_writer *w = gguf_writer_new();
    char key[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (e->drop_key && !strcmp(key, e->drop_key)) continue;
        if (e->arch && !strcmp(key, "general.architecture")) {
            gguf_set_str(w, key, e->arch);
            continue;
        }
        switch (kv->type) {
        case GGUF_UINT32: gguf_set_u32(w, key, (uint32_t)kv->v.u); break;
        case GGUF_INT32: gguf_set_i32(w, key, (int32_t)kv->v.i); break;
        case GGUF_FLOAT32: gguf_set_f32(w, key, (float)kv->v.f); break;
        case GGUF_BOOL: gguf_set_bool(w, key, kv->v.b); break;
        case GGUF_STRING: {
            char *v = xstrndup(kv->str.ptr, kv->str.len);
            gguf_set_str(w, key, v);
            free(v);
            break;
        }
        case GGUF_ARRAY:
            if (kv->arr_type == GGUF_STRING) {
                gguf_str *a = gguf_str_array(kv);
                char **v = xmalloc((kv->arr_n + 1) * sizeof *v);
                for (uint64_t j = 0; j < kv->arr_n; j++) v[j] = xstrndup(a[j].ptr, a[j].len);
                gguf_set_arr_str(w, key, (const char *const *)v, kv->arr_n);
                for (uint64_t j = 0; j < kv->arr_n; j++) free(v[j]);
                free(v), free(a);
            } else {
                int32_t *v = xmalloc((kv->arr_n + 1) * sizeof *v);
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    int64_t x = 0;
                    gguf_array_i64(kv, j, &x);
                    v[j] = (int32_t)x;
                }
                gguf_set_arr_i32(w, key, v, kv->arr_n);
                free(v);
            }
            break;
        default: break;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (e->drop_tensor && !strcmp(name, e->drop_tensor)) continue;
        uint64_t ne[4];
        memcpy(ne, t->ne, sizeof ne);
        int type = t->type;
        if (e->shrink_tensor && !strcmp(name, e->shrink_tensor)) ne[t->n_dims - 1] /= 2;
        if (e->retype_tensor && !strcmp(name, e->retype_tensor)) type = GGML_Q8_1; /* fewer bytes than f32 */
        gguf_add_tensor(w, name, type, t->n_dims, ne, t->data);
    }
    int rc = gguf_write(w, to);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}

/* Loading path fails with a one-line message containing want. */
static void expect_load_error(const char *path, const char *want)
{
    citer_model *m = citer_model_load(path);
    CHECK(m == NULL, "%s loaded, expected \"%s\"", path, want);
    citer_model_free(m);
    if (m) return;
    const char *msg = citer_error();
    CHECK(strstr(msg, want) != NULL, "message \"%s\", expected \"%s\"", msg, want);
    CHECK(strchr(msg, '\n') == NULL && *msg, "message is not one line: \"%s\"", msg);
    printf("  %s\n", msg);
}

static void broken_gguf_files(void)
{
    citer_testmodel_spec s = small_spec(CITER_ARCH_QWEN2);
    const char *good = tmp_path("err-qwen2.gguf"), *bad = tmp_path("err-bad.gguf");
    REQUIRE(citer_testmodel_write_gguf(&s, good) == 0, "%s", citer_error());
    static const struct {
        gguf_edit e;
        const char *want;
    } cases[] = {
        {{.drop_tensor = "blk.1.ffn_up.weight"}, "missing tensor blk.1.ffn_up.weight"},
        {{.drop_tensor = "blk.2.attn_k.bias"}, "missing tensor blk.2.attn_k.bias"},
        {{.drop_tensor = "output_norm.weight"}, "missing tensor output_norm.weight"},
        {{.shrink_tensor = "blk.0.attn_k.weight"}, "tensor blk.0.attn_k.weight has shape [16, 64], expected [32, 64]"},
        {{.shrink_tensor = "blk.1.ffn_down.weight"}, "tensor blk.1.ffn_down.weight has shape [32, 128], expected [64, 128]"},
        {{.retype_tensor = "blk.0.ffn_gate.weight"}, "tensor blk.0.ffn_gate.weight has unsupported type q8_1"},
        {{.arch = "mamba"}, "unsupported architecture 'mamba'"},
        {{.drop_key = "general.architecture"}, "missing metadata general.architecture"},
        {{.drop_key = "qwen2.block_count"}, "missing metadata qwen2.block_count"},
        {{.drop_key = "qwen2.embedding_length"}, "missing metadata qwen2.embedding_length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK(rewrite_gguf(good, bad, &cases[i].e) == 0, "rewrite: %s", citer_error());
        expect_load_error(bad, cases[i].want);
    }
    /* A truncated file */
    citer_map map;
    REQUIRE(citer_map_file(good, &map) == 0, "%s", citer_error());
    FILE *f = fopen(bad, "wb");
    REQUIRE(f != NULL, "%s", bad);
    fwrite(map.data, 1, map.size - 100, f);
    fclose(f);
    citer_unmap(&map);
    expect_load_error(bad, "tensor");
    /* Qwen3 without its q/k norms */
    citer_testmodel_spec s3 = small_spec(CITER_ARCH_QWEN3);
    const char *good3 = tmp_path("err-qwen3.gguf");
    REQUIRE(citer_testmodel_write_gguf(&s3, good3) == 0, "%s", citer_error());
    gguf_edit e = {.drop_tensor = "blk.1.attn_k_norm.weight"};
    CHECK(rewrite_gguf(good3, bad, &e) == 0, "rewrite: %s", citer_error());
    expect_load_error(bad, "missing tensor blk.1.attn_k_norm.weight");
    expect_load_error(tmp_path("no-such-file.gguf"), "no such file");
}

/* config.json of dir with key set to the JSON value text (NULL: removed). */
static void edit_config(const char *dir, const char *key, const char *value)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_object *c = json_object_from_file(path);
    if (!c) return;
    json_object_object_del(c, key);
    if (value) json_object_object_add(c, key, json_tokener_parse(value));
    json_object_to_file(path, c);
    json_object_put(c);
}

static void broken_hf_directories(void)
{
    citer_testmodel_spec s = small_spec(CITER_ARCH_LLAMA);
    const char *dir = tmp_path("err-hf");
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"hidden_size", "\"64\"", "config.json: a size field is not a non-negative integer"},
        {"num_attention_heads", "-8", "config.json: a size field is not a non-negative integer"},
        {"rms_norm_eps", "\"small\"", "config.json: a size field is not a non-negative integer"},
        {"model_type", NULL, "config.json: no model_type"},
        {"model_type", "\"mamba\"", "config.json: unsupported model_type 'mamba'"},
        {"num_key_value_heads", "3", "8 heads is not a multiple of 3 kv heads"},
        {"hidden_size", "0", "missing or invalid model dimensions"},
        {"hidden_size", "96", "tensor model.embed_tokens.weight has shape [300, 64], expected [300, 96]"},
        {"intermediate_size", "100", "tensor model.layers.0.mlp.gate_proj.weight has shape [128, 64], expected [100, 64]"},
        {"tie_word_embeddings", "true", NULL}, /* loads: lm_head.weight is then unused */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        REQUIRE(citer_testmodel_write_hf(&s, dir, 1) == 0, "%s", citer_error());
        edit_config(dir, cases[i].key, cases[i].value);
        if (cases[i].want) {
            expect_load_error(dir, cases[i].want);
        } else {
            citer_model *m = citer_model_load(dir);
            CHECK(m && m->cfg.tied_embeddings, "%s", m ? "not tied" : citer_error());
            citer_model_free(m);
        }
    }
    char path[4096];
    /* not JSON */
    REQUIRE(citer_testmodel_write_hf(&s, dir, 1) == 0, "%s", citer_error());
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f, "%s", path);
    fputs("{\"model_type\": \"llama\",", f);
    fclose(f);
    expect_load_error(dir, "config.json: not a JSON object");
    /* no config.json */
    unlink(path);
    expect_load_error(dir, "config.json: No such file or directory");
    /* a truncated safetensors file */
    REQUIRE(citer_testmodel_write_hf(&s, dir, 1) == 0, "%s", citer_error());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    REQUIRE(stat(path, &st) == 0, "%s", path);
    CHECK(truncate(path, st.st_size - 1000) == 0, "truncate");
    expect_load_error(dir, "model.safetensors: tensor");
    /* a missing tensor */
    REQUIRE(citer_testmodel_write_hf(&s, dir, 1) == 0, "%s", citer_error());
    st_file *sf = st_open(dir);
    REQUIRE(sf, "%s", citer_error());
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < sf->n_tensors; i++)
        if (strcmp(sf->tensors[i].name, "model.layers.1.mlp.up_proj.weight") != 0)
            st_add(w, sf->tensors[i].name, sf->tensors[i].dtype, sf->tensors[i].n_dims, sf->tensors[i].shape,
                   sf->tensors[i].data);
    const char *other = tmp_path("err-hf-missing.safetensors");
    CHECK(st_write(w, other) == 0, "%s", citer_error());
    st_writer_free(w);
    st_close(sf);
    CHECK(rename(other, path) == 0, "rename");
    expect_load_error(dir, "missing tensor model.layers.1.mlp.up_proj.weight");
    /* a sharded model with a shard missing */
    const char *sdir = tmp_path("err-hf-sharded");
    REQUIRE(citer_testmodel_write_hf(&s, sdir, 3) == 0, "%s", citer_error());
    snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", sdir);
    CHECK(unlink(path) == 0, "unlink %s", path);
    expect_load_error(sdir, "model-00002-of-00003.safetensors");
}

/* The writers refuse specs they cannot write. */
static void bad_specs(void)
{
    citer_testmodel_spec s = small_spec(CITER_ARCH_LLAMA);
    s.weight_type = GGML_Q4_K; /* rows of 64 are not a multiple of 256 */
    CHECK(citer_testmodel_write_gguf(&s, tmp_path("x.gguf")) == -1, "Q4_K with D=64 accepted");
    CHECK(strstr(citer_error(), "q4_k"), "message: %s", citer_error());
    s = small_spec(CITER_ARCH_LLAMA);
    s.weight_type = GGML_Q8_0;
    CHECK(citer_testmodel_write_hf(&s, tmp_path("x-hf"), 1) == -1, "Q8_0 safetensors accepted");
    s = small_spec(CITER_ARCH_LLAMA);
    s.n_kv_heads = 3;
    CHECK(citer_testmodel_write_gguf(&s, tmp_path("x.gguf")) == -1, "8 heads over 3 kv heads accepted");
    s = small_spec(CITER_ARCH_LLAMA);
    CHECK(citer_testmodel_preset(&s, "qwen2.5-0.5b") == 0 && s.dim == 896 && s.vocab == 151936 && s.tied,
          "preset qwen2.5-0.5b");
    CHECK(citer_testmodel_preset(&s, "gpt-5") == -1, "unknown preset accepted");
    /* the same seed gives the same weights, another seed others */
    s = small_spec(CITER_ARCH_QWEN2);
    int64_t n1, n2, n3;
    float *a = citer_testmodel_tensor(&s, "model.layers.1.self_attn.q_proj.weight", &n1);
    float *b = citer_testmodel_tensor(&s, "model.layers.1.self_attn.q_proj.weight", &n2);
    s.seed++;
    float *c = citer_testmodel_tensor(&s, "model.layers.1.self_attn.q_proj.weight", &n3);
    CHECK(a && b && c && n1 == 64 * 64 && n2 == n1 && n3 == n1, "tensor");
    if (a && b && c) {
        CHECK(!memcmp(a, b, (size_t)n1 * sizeof *a), "same seed, different weights");
        CHECK(memcmp(a, c, (size_t)n1 * sizeof *a) != 0, "other seed, same weights");
        double ss = 0;
        for (int64_t i = 0; i < n1; i++) ss += (double)a[i] * a[i];
        double std = sqrt(ss / n1); /* 1/sqrt(64) */
        CHECK(fabs(std - 0.125) < 0.01, "q_proj std %.4f, want 0.125", std);
    }
    free(a), free(b), free(c);
    CHECK(citer_testmodel_tensor(&s, "model.layers.9.mlp.up_proj.weight", &n1) == NULL, "unknown tensor");
}

/* The GGUF vocabulary is complete and consistent: vocab_size distinct tokens, 256 byte
 * characters first, every merge "a b" joins two tokens into a token, specials last. */
static void gguf_vocabulary(void)
{
    citer_testmodel_spec s = small_spec(CITER_ARCH_QWEN3);
    s.vocab = 1000;
    const char *path = tmp_path("vocab.gguf");
    REQUIRE(citer_testmodel_write_gguf(&s, path) == 0, "%s", citer_error());
    gguf_file *g = gguf_open(path);
    REQUIRE(g, "%s", citer_error());
    char *model = gguf_get_str(g, "tokenizer.ggml.model");
    CHECK(model && !strcmp(model, "gpt2"), "tokenizer.ggml.model %s", model ? model : "missing");
    free(model);
    const gguf_kv *tk = gguf_find(g, "tokenizer.ggml.tokens"), *mk = gguf_find(g, "tokenizer.ggml.merges"),
                  *ty = gguf_find(g, "tokenizer.ggml.token_type");
    gguf_str *tokens = tk ? gguf_str_array(tk) : NULL, *merges = mk ? gguf_str_array(mk) : NULL;
    CHECK(tokens && merges && ty, "vocabulary arrays missing");
    if (tokens && merges && ty) {
        CHECK(tk->arr_n == 1000 && ty->arr_n == 1000 && mk->arr_n == 1000 - 259, "sizes %llu %llu %llu",
              (unsigned long long)tk->arr_n, (unsigned long long)ty->arr_n, (unsigned long long)mk->arr_n);
        /* the GPT-2 byte map: '!' is itself, space is U+0120 (C4 A0), 0xff is U+00FF (C3 BF) */
        CHECK(tokens[33].len == 1 && tokens[33].ptr[0] == '!', "token 33");
        CHECK(tokens[32].len == 2 && !memcmp(tokens[32].ptr, "\xc4\xa0", 2), "token 32 (space)");
        CHECK(tokens[255].len == 2 && !memcmp(tokens[255].ptr, "\xc3\xbf", 2), "token 255");
        CHECK(tokens[999].len == 10 && !memcmp(tokens[999].ptr, "<|im_end|>", 10), "last token");
        int dup = 0, bad = 0;
        for (uint64_t i = 0; i < tk->arr_n; i++)
            for (uint64_t j = i + 1; j < tk->arr_n; j++)
                if (tokens[i].len == tokens[j].len && !memcmp(tokens[i].ptr, tokens[j].ptr, tokens[i].len)) dup++;
        for (uint64_t i = 0; i < mk->arr_n; i++) {
            const char *sp = memchr(merges[i].ptr, ' ', merges[i].len);
            size_t la = sp ? (size_t)(sp - merges[i].ptr) : 0, lb = sp ? merges[i].len - la - 1 : 0;
            int has_a = 0, has_b = 0, has_ab = 0;
            for (uint64_t j = 0; j < tk->arr_n && sp; j++) {
                const gguf_str *t = &tokens[j];
                if (t->len == la && !memcmp(t->ptr, merges[i].ptr, la)) has_a = 1;
                if (t->len == lb && !memcmp(t->ptr, sp + 1, lb)) has_b = 1;
                if (t->len == la + lb && !memcmp(t->ptr, merges[i].ptr, la) && !memcmp(t->ptr + la, sp + 1, lb))
                    has_ab = 1;
            }
            if (!(has_a && has_b && has_ab)) bad++;
        }
        CHECK(dup == 0, "%d duplicate tokens", dup);
        CHECK(bad == 0, "%d merges whose parts or result are not tokens", bad);
    }
    free(tokens), free(merges);
    gguf_close(g);
}

static void cleanup(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t_tmpdir());
    if (system(cmd) != 0) printf("  could not remove %s\n", t_tmpdir());
}

int main(void)
{
    RUN(gguf_and_hf_f32_agree);
    RUN(float_types_agree);
    RUN(llama3_rope_scaling);
    RUN(prefill_equals_decode);
    RUN(last_only_append);
    RUN(truncate_then_replay);
    RUN(fork_is_copy_on_write);
    RUN(chunked_prefill);
    RUN(failed_forward_changes_nothing);
    RUN(quantized_models);
    RUN(broken_gguf_files);
    RUN(broken_hf_directories);
    RUN(bad_specs);
    RUN(gguf_vocabulary);
    cleanup();
    return t_exit();
}
