/* bench_kernels: matvec weight bandwidth per type against a measured memory read bandwidth,
 * and matmul GFLOP/s against plain cblas_sgemm, at 1 and 2 threads.
 *
 * Shape: 896 x 4864 (a Qwen2.5-0.5B FFN down projection), repeated over enough distinct copies
 * to hold ~256 MB of weights, so every matvec streams from memory rather than cache. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "kernels.h"
#include "util.h"
#include "bandwidth.h"
#include "bench_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define ROWS 896
#define COLS 4864
#define TOTAL_BYTES (256u << 20)
#define MIN_SECONDS 0.25


/* ---- matvec ---- */

typedef struct {
    int type;
    const char *name;
} bench_type;

static const bench_type types[] = {
    {GGML_F32, "f32"}, {GGML_F16, "f16"}, {GGML_BF16, "bf16"}, {GGML_Q8_0, "q8_0"},
    {GGML_Q4_0, "q4_0"}, {GGML_Q4_K, "q4_K"}, {GGML_Q5_K, "q5_K"}, {GGML_Q6_K, "q6_K"},
    {GGML_Q8_0, "q8_0p"}, /* packed (citer_matrix_pack), as a loaded model's Q8_0 matrices */
};

/* Best pass over all matrices: the machine may be shared, the best pass is the least disturbed. */
static double matvec_gbs(const citer_matrix *m, int nmat, const float *x, float *y, size_t mat_bytes)
{
    for (int k = 0; k < nmat; k++) citer_matvec(&m[k], x, y); /* warm-up */
    double start = now(), best = 1e30;
    do {
        double t0 = now();
        for (int k = 0; k < nmat; k++) citer_matvec(&m[k], x, y);
        double t = now() - t0;
        if (t < best) best = t;
    } while (now() - start < MIN_SECONDS);
    return (double)mat_bytes * nmat / best / 1e9;
}

/* ---- matmul ---- */

static double matmul_gflops(const citer_matrix *m, const float *X, int64_t T, float *Y)
{
    citer_matmul(m, X, T, Y);
    double start = now(), best = 1e30;
    do {
        double t0 = now();
        citer_matmul(m, X, T, Y);
        double t = now() - t0;
        if (t < best) best = t;
    } while (now() - start < MIN_SECONDS);
    return 2.0 * ROWS * COLS * (double)T / best / 1e9;
}

static double sgemm_gflops(const float *W, const float *X, int64_t T, float *Y, int threads)
{
    openblas_set_num_threads(threads);
    double start = now(), best = 1e30;
    do {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, ROWS, COLS, 1.0f, X, COLS, W,
                    COLS, 0.0f, Y, ROWS);
        double t = now() - t0;
        if (t < best) best = t;
    } while (now() - start < MIN_SECONDS);
    openblas_set_num_threads(1);
    return 2.0 * ROWS * COLS * (double)T / best / 1e9;
}

int main(void)
{
    uint8_t *buf = aligned_alloc(64, TOTAL_BYTES);
    if (!buf) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    memset(buf, 1, TOTAL_BYTES);
    float *x = xmalloc(sizeof(float) * COLS), *y = xmalloc(sizeof(float) * ROWS);
    float *wf = xmalloc(sizeof(float) * ROWS * COLS);
    for (int i = 0; i < COLS; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) wf[i] = frand();

    printf("kernels: %s; matvec %dx%d over %u MB of weights; %s activations for quantized types "
           "(CITER_INT8_ACT=0|1)\n",
           citer_kernels_name(), ROWS, COLS, TOTAL_BYTES >> 20, citer_int8_activations() ? "int8" : "f32");
    double bw[3];
    for (int nt = 1; nt <= 2; nt++) {
        citer_set_threads(nt);
        bw[nt] = read_bandwidth(buf, TOTAL_BYTES, 8);
        printf("memory read   threads %d: %6.1f GB/s\n", nt, bw[nt]);
    }

    /* dispatch latency: a tiny matvec, dominated by handing work to the pool */
    for (int nt = 1; nt <= 2; nt++) {
        citer_set_threads(nt);
        citer_matrix small;
        citer_matrix_init(&small, GGML_F32, 64, 64, wf);
        double best = 1e30;
        for (int rep = 0; rep < 20; rep++) {
            double t0 = now();
            for (int i = 0; i < 1000; i++) citer_matvec(&small, x, y);
            double t = (now() - t0) / 1000;
            if (t < best) best = t;
        }
        printf("matvec 64x64 f32 threads %d: %.2f us per call (dispatch overhead)\n", nt, best * 1e6);
    }

    uint8_t *pbuf = NULL;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        size_t rb = citer_row_bytes(types[k].type, COLS), mb = rb * ROWS;
        int nmat = (int)(TOTAL_BYTES / mb);
        /* one quantized matrix, copied: quantizing 256 MB would dominate the run time */
        for (int r = 0; r < ROWS; r++) citer_quantize_row(types[k].type, wf + (size_t)r * COLS, buf + rb * (size_t)r, COLS);
        for (int i = 1; i < nmat; i++) memcpy(buf + mb * (size_t)i, buf, mb);
        citer_matrix m[1024];
        for (int i = 0; i < nmat; i++) citer_matrix_init(&m[i], types[k].type, ROWS, COLS, buf + mb * (size_t)i);
        if (!strcmp(types[k].name, "q8_0p")) {
            if (!citer_matrix_pack_bytes(&m[0])) continue; /* no VNNI int8 kernels here */
            if (!pbuf && !(pbuf = aligned_alloc(64, TOTAL_BYTES))) return 1;
            for (int i = 0; i < nmat; i++) citer_matrix_pack(&m[i], pbuf + mb * (size_t)i);
        }
        for (int nt = 1; nt <= 2; nt++) {
            citer_set_threads(nt);
            double g = matvec_gbs(m, nmat, x, y, mb);
            double hot = matvec_gbs(m, 1, x, y, mb); /* one matrix, from L3: compute speed */
            printf("matvec %-5s  threads %d: %6.1f GB/s  %5.1f%% of read bandwidth  (%.1f us/matrix; "
                   "%.1f GB/s from cache)\n",
                   types[k].name, nt, g, 100 * g / bw[nt], 1e6 * (double)mb / (g * 1e9), hot);
        }
    }

    /* matmul: prefill of T tokens */
    enum { T = 128 };
    float *X = xmalloc(sizeof(float) * T * COLS), *Y = xmalloc(sizeof(float) * T * ROWS);
    for (size_t i = 0; i < (size_t)T * COLS; i++) X[i] = frand();
    for (int nt = 1; nt <= 2; nt++) {
        double ref = sgemm_gflops(wf, X, T, Y, nt);
        printf("sgemm f32 (OpenBLAS, %d threads) T=%d: %6.1f GFLOP/s\n", nt, T, ref);
        citer_set_threads(nt);
        int mtypes[] = {GGML_F32, GGML_F16, GGML_Q8_0, GGML_Q4_K};
        const char *mnames[] = {"f32", "f16", "q8_0", "q4_K"};
        for (int k = 0; k < 4; k++) {
            size_t rb = citer_row_bytes(mtypes[k], COLS);
            for (int r = 0; r < ROWS; r++) citer_quantize_row(mtypes[k], wf + (size_t)r * COLS, buf + rb * (size_t)r, COLS);
            citer_matrix m;
            citer_matrix_init(&m, mtypes[k], ROWS, COLS, buf);
            double g = matmul_gflops(&m, X, T, Y);
            printf("matmul %-5s  threads %d T=%d: %6.1f GFLOP/s  %5.1f%% of sgemm\n", mnames[k], nt, T, g,
                   100 * g / ref);
        }
    }
    free(X);
    free(Y);
    free(wf);
    free(x);
    free(y);
    free(buf);
    free(pbuf);
    return 0;
}
