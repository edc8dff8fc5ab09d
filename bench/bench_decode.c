/* bench_decode: end-to-end engine speed on random models of real shapes.
 *
 * Per case (model shape x weight type): decode tokens/s, the GB/s of weights that implies
 * (citer_model_weight_bytes per token: every matrix once, the LM head included), and that as a
 * share of the memory read bandwidth measured in the same run (2 threads streaming a 512 MB
 * buffer, far beyond L3), as the median of 5 (bandwidth, decode) pairs measured back to back.
 * The weights must be streamed once per token, so that share is the decode efficiency. Then a per-step breakdown (matrix-vector products alone vs the whole step),
 * prefill GFLOP/s at T = 128 and 512 against OpenBLAS sgemm over the same matrix shapes, and
 * teacher-forced scoring (one citer_forward over prompt+target with logits at every position).
 *
 * Models are written once with lib/testmodel into $CITER_BENCH_MODELS (default
 * build/bench-models/) and reused: the first run spends a minute or two writing them (~5 GB).
 * CITER_BENCH_QUICK=1: the Qwen2.5-0.5B shape in q8_0 and q4_0 only, fewer repetitions. */
#include <cblas.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "forward.h"
#include "gguf.h"
#include "kernels.h"
#include "kvcache.h"
#include "model.h"
#include "testmodel.h"
#include "util.h"
#include "bandwidth.h"
#include "bench_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

void openblas_set_num_threads(int num_threads);

#define BW_BYTES ((size_t)512 << 20)

/* The read bandwidth of this run, over a buffer allocated once. */
static double measured_bandwidth(void)
{
    static uint8_t *buf;
    if (!buf) {
        buf = aligned_alloc(64, BW_BYTES);
        if (!buf) return 0;
        memset(buf, 1, BW_BYTES);
    }
    return read_bandwidth(buf, BW_BYTES, 5);
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is tiny */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- models ---- */

/* The model file for a preset and type, written on first use. */
static citer_model *bench_model(const char *preset, int type, const char *tname)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", model_dir(), preset, tname);
    if (access(path, R_OK) != 0) {
        if (mkdirs(model_dir()) != 0) {
            fprintf(stderr, "bench_decode: cannot create %s\n", model_dir());
            return NULL;
        }
        citer_testmodel_spec s;
        citer_testmodel_init(&s, CITER_ARCH_LLAMA);
        citer_testmodel_preset(&s, preset);
        s.weight_type = type;
        s.seed = 7;
        fprintf(stderr, "bench_decode: writing %s (once) ...\n", path);
        double t0 = now();
        if (citer_testmodel_write_gguf(&s, path) != 0) {
            fprintf(stderr, "bench_decode: %s: %s\n", path, citer_error());
            return NULL;
        }
        fprintf(stderr, "bench_decode: wrote %s in %.1f s\n", path, now() - t0);
    }
    citer_model *m = citer_model_load(path);
    if (!m) fprintf(stderr, "bench_decode: %s: %s\n", path, citer_error());
    return m;
}

/* ---- measurements ---- */

/* Tokens/s of single-token decode after a prompt of `ctx` positions: best of `reps` runs of
 * `steps` steps each. */
static double decode_rate(const citer_model *m, int ctx, int steps, int reps)
{
    int V = m->cfg.vocab_size;
    float *logits = xmalloc(sizeof(float) * (size_t)V);
    int32_t *prompt = xmalloc(sizeof(int32_t) * (size_t)(ctx + 1));
    for (int i = 0; i <= ctx; i++) prompt[i] = (int32_t)(300 + 7 * i) % V;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        citer_seq *s = citer_seq_new(m);
        if (ctx > 0) citer_forward(m, s, prompt, ctx, NULL, NULL, 0);
        int32_t tok = 1;
        citer_forward(m, s, &tok, 1, NULL, logits, 0); /* warm-up step */
        double t0 = now();
        for (int i = 0; i < steps; i++) {
            tok = (int32_t)((tok * 31 + 17) % V);
            citer_forward(m, s, &tok, 1, NULL, logits, 0);
        }
        double t = (now() - t0) / steps;
        if (t < best) best = t;
        citer_seq_free(s);
    }
    free(prompt);
    free(logits);
    return 1.0 / best;
}

static const citer_matrix *layer_matrix(const citer_layer *L, int k)
{
    const citer_matrix *ms[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return ms[k];
}

/* Seconds of the matrix-vector products of one decode step alone (every matrix, LM head
 * included), best of reps. */
static double matvec_seconds(const citer_model *m, int reps)
{
    int64_t maxd = m->output.rows;
    for (int k = 0; k < 7; k++) {
        const citer_matrix *w = layer_matrix(&m->layers[0], k);
        if (w->rows > maxd) maxd = w->rows;
        if (w->cols > maxd) maxd = w->cols;
    }
    float *x = xmalloc(sizeof(float) * (size_t)maxd), *y = xmalloc(sizeof(float) * (size_t)maxd);
    for (int64_t i = 0; i < maxd; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int k = 0; k < 7; k++) citer_matvec(layer_matrix(&m->layers[l], k), x, y);
        citer_matvec(&m->output, x, y);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(x);
    free(y);
    return best;
}

/* FLOPs of the layer matrices for T tokens (attention and the LM head left out). */
static double layer_flops(const citer_model *m, int T)
{
    double f = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < 7; k++) {
            const citer_matrix *w = layer_matrix(&m->layers[l], k);
            f += 2.0 * (double)w->rows * (double)w->cols * T;
        }
    return f;
}

/* GFLOP/s of a prefill of T tokens (last-position logits only). */
static double prefill_gflops(const citer_model *m, int T, int reps)
{
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) tok[i] = (int32_t)((300 + 13 * i) % m->cfg.vocab_size);
    float *logits = xmalloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        citer_seq *s = citer_seq_new(m);
        double t0 = now();
        citer_forward(m, s, tok, T, NULL, logits, 0);
        double t = now() - t0;
        if (t < best) best = t;
        citer_seq_free(s);
    }
    free(tok);
    free(logits);
    return layer_flops(m, T) / best / 1e9;
}

/* GFLOP/s of OpenBLAS sgemm (2 threads) over one layer's matrix shapes, f32 weights, at T. */
static double sgemm_gflops(const citer_model *m, int T, int reps)
{
    const citer_layer *L = &m->layers[0];
    int64_t maxw = 0, maxd = 0;
    for (int k = 0; k < 7; k++) {
        const citer_matrix *w = layer_matrix(L, k);
        if (w->rows * w->cols > maxw) maxw = w->rows * w->cols;
        if (w->rows > maxd) maxd = w->rows;
        if (w->cols > maxd) maxd = w->cols;
    }
    float *W[7], *X = xmalloc(sizeof(float) * (size_t)(maxd * T)), *Y = xmalloc(sizeof(float) * (size_t)(maxd * T));
    for (int64_t i = 0; i < maxd * T; i++) X[i] = (float)((i * 29) % 97) / 48.0f - 1.0f;
    for (int k = 0; k < 7; k++) {
        const citer_matrix *w = layer_matrix(L, k);
        W[k] = xmalloc(sizeof(float) * (size_t)(w->rows * w->cols));
        for (int64_t i = 0; i < w->rows * w->cols; i++) W[k][i] = (float)((i * 41) % 89) / 4400.0f - 0.01f;
    }
    openblas_set_num_threads(2);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int k = 0; k < 7; k++) {
            const citer_matrix *w = layer_matrix(L, k);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (int)w->rows, (int)w->cols, 1.0f, X,
                        (int)w->cols, W[k], (int)w->cols, 0.0f, Y, (int)w->rows);
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    openblas_set_num_threads(1);
    for (int k = 0; k < 7; k++) free(W[k]);
    free(X);
    free(Y);
    return layer_flops(m, T) / m->cfg.n_layers / best / 1e9;
}

/* Tokens/s of teacher-forced scoring: prompt+target of n tokens, logits at every position. */
static double scoring_rate(const citer_model *m, int n, int reps)
{
    int V = m->cfg.vocab_size;
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) tok[i] = (int32_t)((500 + 11 * i) % V);
    float *logits = xmalloc(sizeof(float) * (size_t)n * (size_t)V);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        citer_seq *s = citer_seq_new(m);
        double t0 = now();
        citer_forward(m, s, tok, n, NULL, logits, 1);
        double t = now() - t0;
        if (t < best) best = t;
        citer_seq_free(s);
    }
    free(tok);
    free(logits);
    return n / best;
}

typedef struct {
    const char *preset;
    int type;
    const char *tname;
    int quick; /* part of the quick run */
} bench_case;

static const bench_case cases[] = {
    {"qwen2.5-0.5b", GGML_Q8_0, "q8_0", 1}, {"qwen2.5-0.5b", GGML_Q4_0, "q4_0", 1},
    {"qwen2.5-0.5b", GGML_F16, "f16", 0},     {"tinyllama-1.1b", GGML_Q8_0, "q8_0", 0},
    {"tinyllama-1.1b", GGML_Q4_0, "q4_0", 0}, {"tinyllama-1.1b", GGML_F16, "f16", 0},
    /* K-quants need rows that are multiples of 256: not Qwen2.5-0.5B's 896 */
    {"tinyllama-1.1b", GGML_Q4_K, "q4_K", 0},
};

int main(void)
{
    int quick = getenv("CITER_BENCH_QUICK") && atoi(getenv("CITER_BENCH_QUICK")) > 0;
    int reps = quick ? 2 : 3;
    citer_set_threads(2);
    double bw = measured_bandwidth();
    printf("bench_decode: kernels %s%s, %d threads, memory read %.1f GB/s%s\n", citer_kernels_name(),
           citer_int8_activations() ? " with int8 activations for quantized weights" : "", citer_get_threads(), bw,
           quick ? " (quick)" : "");
    printf("%-15s %-5s %9s %8s %7s %6s | %8s %8s | %s\n", "model", "type", "decode", "weights", "of mem",
           "ctx512", "matvecs", "rest", "");
    double worst_ratio = 1e9, sum_tps = 0;
    int ncase = 0;
    const citer_model *prefill_model = NULL;
    citer_model *models[sizeof cases / sizeof *cases] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        if (quick && !cases[c].quick) continue;
        citer_model *m = bench_model(cases[c].preset, cases[c].type, cases[c].tname);
        if (!m) return 1;
        models[c] = m;
        double gb = (double)citer_model_weight_bytes(m) / 1e9;
        int steps = (int)(2.0 / gb) + 4; /* ~2 GB of weights per measured run */
        /* pairs of (bandwidth, decode run) measured back to back, the ratio of each pair, and
         * the median of the pairs: the shared machine's bandwidth drifts by 2x within a
         * minute, so a ratio only means something between measurements seconds apart */
        enum { PAIRS = 5 };
        double pr[PAIRS], pt[PAIRS], pb[PAIRS];
        for (int k = 0; k < PAIRS; k++) {
            pb[k] = measured_bandwidth();
            pt[k] = decode_rate(m, 8, steps, 1);
            pr[k] = pt[k] * gb / pb[k];
        }
        double ratio = median(pr, PAIRS), tps = median(pt, PAIRS), bw_now = median(pb, PAIRS);
        if (bw_now > bw) bw = bw_now;
        double tps512 = decode_rate(m, 512, quick ? 4 : 8, 1);
        double mv = matvec_seconds(m, reps);
        double step = 1.0 / tps;
        printf("%-15s %-5s %6.1f t/s %5.1f GB/s %5.0f%% %4.1f t/s | %5.2f ms %5.2f ms | %.3f GB/token, mem %.1f GB/s\n",
               cases[c].preset, cases[c].tname, tps, tps * gb, 100 * ratio, tps512, 1e3 * mv, 1e3 * (step - mv), gb,
               bw_now);
        fflush(stdout);
        if ((cases[c].type == GGML_Q8_0 || cases[c].type == GGML_F16) && ratio < worst_ratio) worst_ratio = ratio;
        sum_tps += tps;
        ncase++;
        if (!prefill_model && cases[c].type == GGML_Q8_0) prefill_model = m;
    }

    /* prefill and scoring on the Qwen2.5-0.5B q8_0 model */
    if (prefill_model) {
        const citer_model *m = prefill_model;
        int Ts[] = {128, 512};
        double worst_prefill = 1e9;
        for (int i = 0; i < 2; i++) {
            double g = prefill_gflops(m, Ts[i], quick ? 1 : 2), ref = sgemm_gflops(m, Ts[i], quick ? 1 : 2);
            printf("prefill %s q8_0 T=%d: %6.1f GFLOP/s (layer matrices), OpenBLAS sgemm same shapes %6.1f: %3.0f%%\n",
                   "qwen2.5-0.5b", Ts[i], g, ref, 100 * g / ref);
            if (g / ref < worst_prefill) worst_prefill = g / ref;
        }
        double sc = scoring_rate(m, 256, quick ? 1 : 2);
        printf("scoring %s q8_0: %.0f tokens/s (256 positions, logits at every position)\n", "qwen2.5-0.5b", sc);
        printf("summary: decode q8_0/f16 worst %.0f%% of memory bandwidth (target 75%%), prefill worst %.0f%% of "
               "sgemm (target 70%%), scoring %.0f tokens/s, %d cases\n",
               100 * worst_ratio, 100 * worst_prefill, sc, ncase);
    }
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) citer_model_free(models[c]);
    (void)sum_tps;
    return 0;
}
