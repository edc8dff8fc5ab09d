/* bench_smallbatch: matmul of T tokens on real weight shapes, the small-batch path against the
 * sgemm path, in units of one matvec (T = 1) of the same matrix: the cost of a batched append
 * of T tokens relative to a decode step. Chooses the crossover (kernels.c SMALL_T_DEFAULT).
 *
 * Shapes of Qwen2.5-1.5B (hidden 1536, FFN 8960, 256 KV rows) in Q8_0 (and other types with
 * an argument: f16 q4_0 q4_K q6_K ...), each copied over ~256 MB so that every call streams its
 * weights from memory, as a forward pass over all layers does. CITER_BENCH_QUICK=1: fewer T.
 * T = 2 and 3 are matvecs on both paths (kernels.c SMALL_MIN_T). For Q8_0 and Q4_0 also the
 * int8 activation mode (citer_set_int8_activations; the default where the CPU has AVX-512 VNNI,
 * the other columns are measured with f32 activations): its matvec, and its small-batch path in
 * f32 matvecs and in int8 matvecs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "kernels.h"
#include "util.h"
#include "bench_util.h"

#define TOTAL_BYTES (256u << 20)
#define MIN_SECONDS 0.3

/* Best time per call over passes through all copies. */
static double per_call(const citer_matrix *m, int nmat, const float *X, int64_t T, float *Y)
{
    for (int k = 0; k < nmat; k++) citer_matmul(&m[k], X, T, Y);
    double start = now(), best = 1e30;
    do {
        double t0 = now();
        for (int k = 0; k < nmat; k++) citer_matmul(&m[k], X, T, Y);
        double t = (now() - t0) / nmat;
        if (t < best) best = t;
    } while (now() - start < MIN_SECONDS);
    return best;
}

static const struct { const char *name; int type; } type_names[] = {
    {"f32", GGML_F32}, {"f16", GGML_F16}, {"bf16", GGML_BF16}, {"q8_0", GGML_Q8_0}, {"q4_0", GGML_Q4_0},
    {"q4_1", GGML_Q4_1}, {"q5_0", GGML_Q5_0}, {"q5_1", GGML_Q5_1}, {"q4_K", GGML_Q4_K}, {"q5_K", GGML_Q5_K},
    {"q6_K", GGML_Q6_K},
};

int main(int argc, char **argv)
{
    int quick = getenv("CITER_BENCH_QUICK") && atoi(getenv("CITER_BENCH_QUICK")) > 0;
    static const int64_t shapes[][2] = {{1536, 1536}, {8960, 1536}, {1536, 8960}};
    static const int64_t Ts_full[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128};
    static const int64_t Ts_quick[] = {1, 2, 4, 8, 16, 32, 64};
    const int64_t *Ts = quick ? Ts_quick : Ts_full;
    int nT = quick ? (int)(sizeof Ts_quick / sizeof *Ts_quick) : (int)(sizeof Ts_full / sizeof *Ts_full);
    int types[16], ntypes = 0;
    for (int a = 1; a < argc && ntypes < 16; a++)
        for (size_t k = 0; k < sizeof type_names / sizeof *type_names; k++)
            if (!strcmp(argv[a], type_names[k].name)) types[ntypes++] = type_names[k].type;
    if (!ntypes) types[ntypes++] = GGML_Q8_0;

    uint8_t *buf = aligned_alloc(64, TOTAL_BYTES);
    float *X = xmalloc(sizeof(float) * 128 * 8960), *Y = xmalloc(sizeof(float) * 128 * 8960);
    float *wrow = xmalloc(sizeof(float) * 8960);
    if (!buf) return 1;
    for (size_t i = 0; i < 128 * 8960; i++) X[i] = frand();
    citer_set_int8_activations(0); /* f32 activations, except in the int8 columns */
    printf("bench_smallbatch: kernels %s, %d threads; ms per matmul call (best), and in matvecs "
           "(T=1) of the same matrix; small = small-batch path, sgemm = dequantize + OpenBLAS, both with f32 "
           "activations; int8 = int8 activations (the default with AVX-512 VNNI)\n",
           citer_kernels_name(), citer_get_threads());
    for (int ti = 0; ti < ntypes; ti++) {
        const char *tname = "?";
        for (size_t k = 0; k < sizeof type_names / sizeof *type_names; k++)
            if (type_names[k].type == types[ti]) tname = type_names[k].name;
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            size_t rb = citer_row_bytes(types[ti], cols), mb = rb * (size_t)rows;
            int nmat = (int)(TOTAL_BYTES / mb);
            if (nmat > 1024) nmat = 1024;
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t c = 0; c < cols; c++) wrow[c] = frand();
                citer_quantize_row(types[ti], wrow, buf + rb * (size_t)r, cols);
            }
            for (int i = 1; i < nmat; i++) memcpy(buf + mb * (size_t)i, buf, mb);
            citer_matrix m[1024];
            for (int i = 0; i < nmat; i++) citer_matrix_init(&m[i], types[ti], rows, cols, buf + mb * (size_t)i);
            printf("%s %lldx%lld (%.1f MB):\n", tname, (long long)rows, (long long)cols, (double)mb / 1e6);
            double t1 = per_call(m, nmat, X, 1, Y), t1i = 0;
            int int8 = types[ti] == GGML_Q8_0 || types[ti] == GGML_Q4_0;
            if (int8) {
                int old8 = citer_set_int8_activations(1);
                t1i = per_call(m, nmat, X, 1, Y);
                citer_set_int8_activations(old8);
                printf("  T=1 matvec %.3f ms, with int8 activations %.3f ms\n", t1 * 1e3, t1i * 1e3);
            } else {
                printf("  T=1 matvec %.3f ms\n", t1 * 1e3);
            }
            for (int k = 0; k < nT; k++) {
                int64_t T = Ts[k];
                if (T == 1) continue;
                int old = citer_set_matmul_small_limit(1000);
                double ts = per_call(m, nmat, X, T, Y);
                citer_set_matmul_small_limit(1);
                double tg = per_call(m, nmat, X, T, Y);
                double t8 = 0;
                if (int8) {
                    int old8 = citer_set_int8_activations(1);
                    citer_set_matmul_small_limit(1000);
                    t8 = per_call(m, nmat, X, T, Y);
                    citer_set_int8_activations(old8);
                }
                citer_set_matmul_small_limit(old);
                printf("  T=%-3lld small %8.3f ms = %5.2f matvecs   sgemm %8.3f ms = %5.2f matvecs   %s", (long long)T,
                       ts * 1e3, ts / t1, tg * 1e3, tg / t1, ts <= tg ? "small" : "sgemm");
                if (int8)
                    printf("   int8 small %8.3f ms = %5.2f matvecs = %5.2f int8 matvecs", t8 * 1e3, t8 / t1, t8 / t1i);
                printf("\n");
            }
        }
    }
    free(buf), free(X), free(Y), free(wrow);
    return 0;
}
