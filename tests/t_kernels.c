/* Tests of lib/kernels: conversions and block formats against hand-computed values, and
 * matvec/matmul of every type against a double-precision reference (dequantize, then dot). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "kernels.h"
#include "kernels_impl.h" /* the kernel sets' row dequantizers, tested bit for bit */
#include "util.h"

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- f16 / bf16 ---- */

static void test_f16_encode(void)
{
    struct { float f; uint16_t h; } c[] = {
        {0.0f, 0x0000},
        {1.0f, 0x3C00},
        {-2.0f, 0xC000},
        {0.5f, 0x3800},
        {65504.0f, 0x7BFF},                 /* largest finite */
        {65519.0f, 0x7BFF},                 /* below the halfway point to 2^16 */
        {65520.0f, 0x7C00},                 /* halfway, 0x7BFF is odd: rounds up to inf */
        {1e6f, 0x7C00},
        {0x1p-14f, 0x0400},                 /* smallest normal */
        {0x1p-24f, 0x0001},                 /* smallest subnormal */
        {1023 * 0x1p-24f, 0x03FF},          /* largest subnormal */
        {0x1p-25f, 0x0000},                 /* tie between 0 and 1 ulp: even is 0 */
        {3 * 0x1p-25f, 0x0002},             /* tie between 1 and 2 ulp: even is 2 */
        {5 * 0x1p-25f, 0x0002},             /* tie between 2 and 3 ulp: even is 2 */
        {0x1p-26f, 0x0000},
        {1.0f + 0x1p-11f, 0x3C00},          /* tie: 0x3C00 is even */
        {1.0f + 3 * 0x1p-11f, 0x3C02},      /* tie: 0x3C01 odd, so up */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01}, /* just above the tie */
        {4095 * 0x1p-12f, 0x3C00},          /* tie above 0x3BFF (odd): up into the next binade */
        {2047 * 0x1p-11f, 0x3BFF},          /* exact */
        {INFINITY, 0x7C00},
        {-INFINITY, 0xFC00},
        {-0.0f, 0x8000},
        {bits_f(0x00000001), 0x0000},       /* f32 subnormal */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint16_t h = citer_f32_to_f16(c[i].f);
        CHECK(h == c[i].h, "f32_to_f16(%a) = 0x%04X, want 0x%04X", c[i].f, h, c[i].h);
    }
    uint16_t n = citer_f32_to_f16(NAN);
    CHECK((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0, "NaN -> 0x%04X", n);
}

static void test_f16_decode(void)
{
    struct { uint16_t h; float f; } c[] = {
        {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 0x1p-24f},
        {0x03FF, 1023 * 0x1p-24f}, {0x0400, 0x1p-14f}, {0x3555, 0.333251953125f},
        {0x7C00, INFINITY}, {0xFC00, -INFINITY}, {0x0000, 0.0f},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        float f = citer_f16_to_f32(c[i].h);
        CHECK(f == c[i].f, "f16_to_f32(0x%04X) = %a, want %a", c[i].h, f, c[i].f);
    }
    CHECK(isnan(citer_f16_to_f32(0x7E00)), "0x7E00 is NaN");
    CHECK(isnan(citer_f16_to_f32(0xFC01)), "0xFC01 is NaN");
    float z = citer_f16_to_f32(0x8000);
    CHECK(z == 0 && signbit(z), "0x8000 is -0");
    /* every finite half survives a round trip */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00) continue;
        if (citer_f32_to_f16(citer_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
}

static void test_bf16(void)
{
    struct { float f; uint16_t h; } c[] = {
        {1.0f, 0x3F80},
        {-2.0f, 0xC000},
        {bits_f(0x40490FDB), 0x4049},         /* pi: dropped bits below half */
        {1.0f + 0x1p-8f, 0x3F80},             /* tie, 0x3F80 even */
        {1.0f + 3 * 0x1p-8f, 0x3F82},         /* tie, 0x3F81 odd: up */
        {bits_f(0x3F808001), 0x3F81},         /* just above the tie */
        {bits_f(0x7F7FFFFF), 0x7F80},         /* FLT_MAX rounds to inf */
        {INFINITY, 0x7F80},
        {-INFINITY, 0xFF80},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint16_t h = citer_f32_to_bf16(c[i].f);
        CHECK(h == c[i].h, "f32_to_bf16(%a) = 0x%04X, want 0x%04X", c[i].f, h, c[i].h);
    }
    uint16_t n = citer_f32_to_bf16(NAN);
    CHECK((n & 0x7F80) == 0x7F80 && (n & 0x7F) != 0, "NaN -> 0x%04X", n);
    CHECK(citer_bf16_to_f32(0x4049) == 3.140625f, "0x4049");
    CHECK(citer_bf16_to_f32(0x3F80) == 1.0f, "0x3F80");
    CHECK(isinf(citer_bf16_to_f32(0xFF80)), "0xFF80");
}

static void test_geometry(void)
{
    struct { int type; int64_t n; size_t bytes; } c[] = {
        {GGML_F32, 7, 28}, {GGML_F16, 7, 14}, {GGML_BF16, 3, 6}, {GGML_Q8_0, 64, 68},
        {GGML_Q4_0, 64, 36}, {GGML_Q4_1, 32, 20}, {GGML_Q5_0, 32, 22}, {GGML_Q5_1, 32, 24},
        {GGML_Q4_K, 512, 288}, {GGML_Q5_K, 256, 176}, {GGML_Q6_K, 256, 210},
        {GGML_Q8_0, 33, 0}, {GGML_Q4_K, 128, 0}, {GGML_Q2_K, 256, 0}, {99, 32, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t b = citer_row_bytes(c[i].type, c[i].n);
        CHECK(b == c[i].bytes, "row_bytes(type %d, %lld) = %zu, want %zu", c[i].type,
              (long long)c[i].n, b, c[i].bytes);
    }
    citer_matrix m;
    CHECK(citer_matrix_init(&m, GGML_Q8_0, 4, 48, NULL) == -1 && *citer_error(), "48 cols of q8_0");
    CHECK(citer_matrix_init(&m, GGML_Q2_K, 4, 256, NULL) == -1, "q2_k unsupported");
    CHECK(citer_matrix_init(&m, GGML_Q6_K, 4, 512, NULL) == 0 && m.row_bytes == 420, "q6_k 512");
    CHECK(citer_type_supported(GGML_Q5_1) && !citer_type_supported(GGML_Q8_1), "supported");
}

/* ---- hand-built blocks ---- */

static int check_floats(const char *what, const float *got, const float *want, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ < 5)
            printf("  %s[%d] = %g, want %g\n", what, i, got[i], want[i]);
    return bad;
}

static void test_block_q8_0(void)
{
    uint8_t b[34] = {0x00, 0x38}; /* d = 0.5 */
    float want[32], got[32];
    for (int i = 0; i < 32; i++) {
        b[2 + i] = (uint8_t)(int8_t)(i - 16);
        want[i] = (float)(i - 16) * 0.5f;
    }
    b[2 + 31] = 0x80; /* -128 */
    want[31] = -64.0f;
    citer_dequantize_row(GGML_Q8_0, b, got, 32);
    CHECK(check_floats("q8_0", got, want, 32) == 0, "q8_0 block");
}

static void test_block_q4_0(void)
{
    uint8_t b[18] = {0x00, 0x40}; /* d = 2 */
    float want[32], got[32];
    for (int j = 0; j < 16; j++) {
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
        want[j] = (float)(j - 8) * 2;        /* low nibble: element j */
        want[16 + j] = (float)(7 - j) * 2;   /* high nibble: element 16+j, (15-j)-8 */
    }
    citer_dequantize_row(GGML_Q4_0, b, got, 32);
    CHECK(check_floats("q4_0", got, want, 32) == 0, "q4_0 block");
}

static void test_block_q4_1(void)
{
    uint8_t b[20] = {0x00, 0x38, 0x00, 0xBC}; /* d = 0.5, m = -1 */
    float want[32], got[32];
    for (int j = 0; j < 16; j++) {
        b[4 + j] = (uint8_t)(j | (15 - j) << 4);
        want[j] = 0.5f * (float)j - 1;
        want[16 + j] = 0.5f * (float)(15 - j) - 1;
    }
    citer_dequantize_row(GGML_Q4_1, b, got, 32);
    CHECK(check_floats("q4_1", got, want, 32) == 0, "q4_1 block");
}

static void test_block_q5(void)
{
    /* Q5_0: d = 1, qh = 0x80000001 (fifth bit of elements 0 and 31) */
    uint8_t b[22] = {0x00, 0x3C, 0x01, 0x00, 0x00, 0x80};
    b[6 + 0] = 0x21;  /* element 0: 1 (+16), element 16: 2 */
    b[6 + 15] = 0xF3; /* element 15: 3, element 31: 15 (+16) */
    float want[32], got[32];
    for (int i = 0; i < 32; i++) want[i] = -16;
    want[0] = 1;    /* 17 - 16 */
    want[16] = -14; /* 2 - 16 */
    want[15] = -13; /* 3 - 16 */
    want[31] = 15;  /* 31 - 16 */
    citer_dequantize_row(GGML_Q5_0, b, got, 32);
    CHECK(check_floats("q5_0", got, want, 32) == 0, "q5_0 block");

    /* Q5_1: d = 2, m = 1, qh = 0x00010002 (elements 1 and 16) */
    uint8_t c[24] = {0x00, 0x40, 0x00, 0x3C, 0x02, 0x00, 0x01, 0x00};
    c[8 + 0] = 0x70; /* element 0: 0, element 16: 7 (+16) */
    c[8 + 1] = 0x05; /* element 1: 5 (+16), element 17: 0 */
    for (int i = 0; i < 32; i++) want[i] = 1;
    want[1] = 43;  /* 2*21 + 1 */
    want[16] = 47; /* 2*23 + 1 */
    citer_dequantize_row(GGML_Q5_1, c, got, 32);
    CHECK(check_floats("q5_1", got, want, 32) == 0, "q5_1 block");
}

/* Scales (sub-blocks 0..7) sc = 1,2,3,4,5,6,7,63 and mins mn = 0,1,2,3,4,5,6,33 packed by hand:
 * bytes 0-3: sc[j] | (sc[j+4]>>4)<<6; 4-7: mn[j] | (mn[j+4]>>4)<<6;
 * 8-11: (sc[j+4]&15) | (mn[j+4]&15)<<4. */
static const uint8_t kscales[12] = {0x01, 0x02, 0x03, 0xC4, 0x00, 0x01, 0x02, 0x83,
                                    0x45, 0x56, 0x67, 0x1F};
static const int ksc[8] = {1, 2, 3, 4, 5, 6, 7, 63}, kmn[8] = {0, 1, 2, 3, 4, 5, 6, 33};

static void test_block_q4_k(void)
{
    uint8_t b[144] = {0x00, 0x3C, 0x00, 0x38}; /* d = 1, dmin = 0.5 */
    memcpy(b + 4, kscales, 12);
    for (int l = 0; l < 128; l++) b[16 + l] = (uint8_t)((l & 15) | (15 - (l & 15)) << 4);
    float want[256], got[256];
    for (int i = 0; i < 8; i++)
        for (int l = 0; l < 32; l++) {
            int q = i % 2 == 0 ? (l & 15) : 15 - (l & 15); /* even: low nibbles */
            want[32 * i + l] = (float)(ksc[i] * q) - 0.5f * (float)kmn[i];
        }
    citer_dequantize_row(GGML_Q4_K, b, got, 256);
    CHECK(check_floats("q4_k", got, want, 256) == 0, "q4_k block");
}

static void test_block_q5_k(void)
{
    uint8_t b[176] = {0x00, 0x3C, 0x00, 0x3C}; /* d = 1, dmin = 1 */
    memcpy(b + 4, kscales, 12);
    b[16 + 3] = 0xFF; /* element 3 of every sub-block: +16 */
    b[16 + 5] = 0x04; /* element 5 of sub-block 2: +16 */
    for (int l = 0; l < 128; l++) b[48 + l] = (uint8_t)((l & 15) | (15 - (l & 15)) << 4);
    float want[256], got[256];
    for (int i = 0; i < 8; i++)
        for (int l = 0; l < 32; l++) {
            int q = i % 2 == 0 ? (l & 15) : 15 - (l & 15);
            if (l == 3 || (l == 5 && i == 2)) q += 16;
            want[32 * i + l] = (float)(ksc[i] * q - kmn[i]);
        }
    citer_dequantize_row(GGML_Q5_K, b, got, 256);
    CHECK(check_floats("q5_k", got, want, 256) == 0, "q5_k block");
}

static void test_block_q6_k(void)
{
    uint8_t b[210] = {0};
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 32; l++) {
            b[64 * h + l] = 0x21;      /* low 1, high 2 */
            b[64 * h + 32 + l] = 0x43; /* low 3, high 4 */
            b[128 + 32 * h + l] = h == 0 ? 0xE4 : 0x1B; /* 2-bit fields 0,1,2,3 / 3,2,1,0 */
        }
    }
    for (int k = 0; k < 16; k++) b[192 + k] = (uint8_t)(int8_t)(k - 8);
    b[208] = 0x00; /* d = 0.5 */
    b[209] = 0x38;
    /* q - 32 of the four groups of 32 in each half:
     * half 0: 1|0<<4, 3|1<<4, 2|2<<4, 4|3<<4 = 1, 19, 34, 52
     * half 1: 1|3<<4, 3|2<<4, 2|1<<4, 4|0<<4 = 49, 35, 18, 4 */
    static const int qv[2][4] = {{-31, -13, 2, 20}, {17, 3, -14, -28}};
    float want[256], got[256];
    for (int h = 0; h < 2; h++)
        for (int e = 0; e < 128; e++)
            want[128 * h + e] = 0.5f * (float)((8 * h + e / 16 - 8) * qv[h][e / 32]);
    citer_dequantize_row(GGML_Q6_K, b, got, 256);
    CHECK(check_floats("q6_k", got, want, 256) == 0, "q6_k block");
}

/* ---- quantizers ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * 0x1p-23) - 1.0f;
}

static const int all_types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_1,
                                GGML_Q5_0, GGML_Q5_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
#define NTYPES (int)(sizeof all_types / sizeof all_types[0])

static int block_of(int type)
{
    switch (type) {
    case GGML_F32: case GGML_F16: case GGML_BF16: return 1;
    case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K: return 256;
    default: return 32;
    }
}

static void test_quantize_roundtrip(void)
{
    /* Relative RMS error of uniform data: a step D gives D/sqrt(12) against 1/sqrt(3), i.e.
     * D/2. Bounds are ~1.5x that (plus scale rounding for K-quants). */
    struct { int type; double bound; } c[] = {
        {GGML_F32, 0}, {GGML_F16, 1e-3}, {GGML_BF16, 4e-3},
        {GGML_Q8_0, 1.0 / 127 / 2 * 1.5}, {GGML_Q4_0, 1.0 / 8 / 2 * 1.5},
        {GGML_Q4_1, 2.0 / 15 / 2 * 1.5}, {GGML_Q5_0, 1.0 / 16 / 2 * 1.5},
        {GGML_Q5_1, 2.0 / 31 / 2 * 1.5}, {GGML_Q4_K, 2.0 / 15 / 2 * 1.6},
        {GGML_Q5_K, 2.0 / 31 / 2 * 1.6}, {GGML_Q6_K, 1.0 / 32 / 2 * 1.6},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++) x[i] = frand();
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        REQUIRE(citer_quantize_row(c[k].type, x, q, N) == 0, "quantize type %d", c[k].type);
        citer_dequantize_row(c[k].type, q, y, N);
        double e = 0, s = 0;
        for (int i = 0; i < N; i++) {
            e += (double)(x[i] - y[i]) * (x[i] - y[i]);
            s += (double)x[i] * x[i];
        }
        double rel = sqrt(e / s);
        CHECK(rel <= c[k].bound, "type %d: relative error %.3g > %.3g", c[k].type, rel, c[k].bound);
        /* zeros quantize to exact zeros */
        static float z[N];
        REQUIRE(citer_quantize_row(c[k].type, z, q, N) == 0, "zeros");
        citer_dequantize_row(c[k].type, q, y, N);
        int nz = 0;
        for (int i = 0; i < N; i++) nz += y[i] != 0;
        CHECK(nz == 0, "type %d: zeros give %d non-zeros", c[k].type, nz);
    }
    CHECK(citer_quantize_row(GGML_Q2_K, x, q, 256) == -1, "no quantizer for q2_k");
    CHECK(citer_quantize_row(GGML_Q8_0, x, q, 33) == -1, "q8_0 of 33");
}

/* ---- matvec / matmul against a double reference ---- */

typedef struct {
    citer_matrix m;
    uint8_t *data;
    double *deq;   /* dequantized weights, for the reference */
} test_matrix;

static void make_matrix(test_matrix *t, int type, int64_t rows, int64_t cols)
{
    size_t rb = citer_row_bytes(type, cols);
    t->data = xmalloc(rb * (size_t)rows + 1);
    t->deq = xmalloc(sizeof(double) * (size_t)(rows * cols));
    float *tmp = xmalloc(sizeof(float) * (size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) tmp[c] = frand();
        citer_quantize_row(type, tmp, t->data + rb * (size_t)r, cols);
        citer_dequantize_row(type, t->data + rb * (size_t)r, tmp, cols);
        for (int64_t c = 0; c < cols; c++) t->deq[r * cols + c] = tmp[c];
    }
    free(tmp);
    citer_matrix_init(&t->m, type, rows, cols, t->data);
}

static void free_matrix(test_matrix *t)
{
    free(t->data);
    free(t->deq);
}

/* Largest |y - ref| / sum|w x| over the rows. */
static double row_errors(const test_matrix *t, const float *x, const float *y)
{
    double worst = 0;
    for (int64_t r = 0; r < t->m.rows; r++) {
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < t->m.cols; c++) {
            ref += t->deq[r * t->m.cols + c] * x[c];
            mag += fabs(t->deq[r * t->m.cols + c] * x[c]);
        }
        double e = fabs(y[r] - ref) / (mag > 0 ? mag : 1);
        if (e > worst) worst = e;
    }
    return worst;
}

static int64_t cols_for(int type) { return block_of(type) == 1 ? 117 : block_of(type) == 32 ? 224 : 768; }

static const char *kernel_sets[] = {"scalar", "avx2", "avx512"};

static void matvec_case(const char *set)
{
    static const int64_t rows_list[] = {1, 7, 33, 1000};
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = all_types[ti];
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
            int64_t rows = rows_list[ri], cols = cols_for(type);
            test_matrix t;
            make_matrix(&t, type, rows, cols);
            float *x = xmalloc(sizeof(float) * (size_t)cols);
            float *y1 = xmalloc(sizeof(float) * (size_t)rows), *y2 = xmalloc(sizeof(float) * (size_t)rows);
            for (int64_t c = 0; c < cols; c++) x[c] = frand();
            citer_set_threads(1);
            citer_matvec(&t.m, x, y1);
            citer_set_threads(2);
            citer_matvec(&t.m, x, y2);
            double e = row_errors(&t, x, y1);
            CHECK(e < 1e-5, "%s type %d rows %lld: error %.3g", set, type, (long long)rows, e);
            CHECK(memcmp(y1, y2, sizeof(float) * (size_t)rows) == 0,
                  "%s type %d rows %lld: 1 and 2 threads differ", set, type, (long long)rows);
            free(x);
            free(y1);
            free(y2);
            free_matrix(&t);
        }
    }
}

static void test_matvec(void)
{
    int ran = 0;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) {
            printf("  (kernel set %s not available here)\n", kernel_sets[s]);
            continue;
        }
        CHECK(strcmp(citer_kernels_name(), kernel_sets[s]) == 0, "forced %s", kernel_sets[s]);
        matvec_case(kernel_sets[s]);
        ran++;
    }
    citer_kernels_force(NULL);
    CHECK(ran >= 1, "scalar always runs");
}

/* SIMD and scalar paths agree closely on a long row (with tails for the float types). */
static void test_simd_vs_scalar(void)
{
    int types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int64_t cols = block_of(types[k]) == 1 ? 4099 : 4864 / block_of(types[k]) * block_of(types[k]);
        test_matrix t;
        make_matrix(&t, types[k], 9, cols);
        float *x = xmalloc(sizeof(float) * (size_t)cols), ys[9], yv[9];
        for (int64_t c = 0; c < cols; c++) x[c] = frand();
        citer_kernels_force("scalar");
        citer_matvec(&t.m, x, ys);
        for (int s = 1; s < 3; s++) {
            if (citer_kernels_force(kernel_sets[s]) != 0) continue;
            citer_matvec(&t.m, x, yv);
            double e = row_errors(&t, x, yv);
            CHECK(e < 1e-5, "%s type %d: error %.3g", kernel_sets[s], types[k], e);
            for (int r = 0; r < 9; r++)
                CHECK(fabsf(yv[r] - ys[r]) <= 1e-4f * (fabsf(ys[r]) + 1), "%s type %d row %d: %g vs %g",
                      kernel_sets[s], types[k], r, yv[r], ys[r]);
        }
        citer_kernels_force(NULL);
        free(x);
        free_matrix(&t);
    }
}

/* Int8 activation mode: each x[i] is rounded to the nearest multiple of d_b = max|x| over its
 * block of 32 / 127, so |x[i] - x8[i]| <= d_b / 2 and a row's error is at most
 * sum_i |w[i]| d_b(i) / 2 (plus f32 rounding, 1e-5 of sum|w x|) — a bound from the rounding
 * alone, checked per row for every kernel set against the dequantize-then-f64 reference. The
 * typical error is much smaller (errors of the elements mostly cancel): the RMS over rows of
 * error / sum|w x| must stay under 0.5%. SIMD and scalar int8 kernels do the same integer
 * arithmetic; a set without int8 kernels (avx2) uses f32 activations, within the same bound. */
/* One type and width: every set's matvec within the bound; with exact, the SIMD sets' int8
 * matvec has the bits of the scalar int8 matvec (the K-quants). */
static void int8_case(int type, int64_t cols, int exact)
{
    int64_t rows = 37;
    test_matrix t;
    make_matrix(&t, type, rows, cols);
    float *x = xmalloc(sizeof(float) * (size_t)cols), ys[37], y1[37], y2[37];
    for (int64_t c = 0; c < cols; c++) x[c] = frand() * (c % 7 == 0 ? 4.0f : 1.0f);
    if (cols >= 512) memset(x + 256, 0, 32 * sizeof(float)); /* a block of zeros: d = 0 */
    double *bound = xmalloc(sizeof(double) * (size_t)rows), *ref = xmalloc(sizeof(double) * (size_t)rows),
           *mag = xmalloc(sizeof(double) * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        bound[r] = ref[r] = mag[r] = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            double amax = 0;
            for (int k = 0; k < 32; k++) amax = fmax(amax, fabs(x[b * 32 + k]));
            for (int k = 0; k < 32; k++) {
                double w = t.deq[r * cols + b * 32 + k];
                bound[r] += fabs(w) * amax / 127 / 2;
                ref[r] += w * x[b * 32 + k];
                mag[r] += fabs(w * x[b * 32 + k]);
            }
        }
    }
    citer_kernels_force("scalar");
    citer_matvec(&t.m, x, ys);
    for (size_t s = 0; s < sizeof kernel_sets / sizeof *kernel_sets; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) continue;
        citer_set_threads(1);
        citer_matvec(&t.m, x, y1);
        citer_set_threads(2);
        citer_matvec(&t.m, x, y2);
        CHECK(memcmp(y1, y2, sizeof y1) == 0, "%s type %d: 1 and 2 threads differ", kernel_sets[s], type);
        int bad = 0;
        double rms = 0;
        for (int64_t r = 0; r < rows; r++) {
            double e = fabs(y1[r] - ref[r]);
            if (e > bound[r] + 1e-5 * mag[r] && bad++ < 3)
                printf("  %s type %d cols %lld row %lld: error %.3g > bound %.3g\n", kernel_sets[s], type,
                       (long long)cols, (long long)r, e, bound[r]);
            rms += (e / mag[r]) * (e / mag[r]);
            /* sets without int8 kernels use f32 activations: both are within the bound */
            if (fabsf(y1[r] - ys[r]) > (float)(2 * bound[r] + 1e-5 * mag[r]) && bad++ < 3)
                printf("  %s type %d row %lld: %g vs scalar int8 %g\n", kernel_sets[s], type, (long long)r, y1[r], ys[r]);
        }
        rms = sqrt(rms / rows);
        CHECK(bad == 0, "%s type %d cols %lld: %d rows out of bounds", kernel_sets[s], type, (long long)cols, bad);
        CHECK(rms < 5e-3, "%s type %d cols %lld: rms relative error %.3g", kernel_sets[s], type, (long long)cols, rms);
        /* the int8 kernels of the SIMD sets (avx2 has none: f32 activations) */
        if (exact && strcmp(kernel_sets[s], "avx2") != 0)
            CHECK(memcmp(y1, ys, sizeof y1) == 0, "%s type %d cols %lld: not the scalar int8 matvec's bits",
                  kernel_sets[s], type, (long long)cols);
        if (cols == 4864)
            printf("  %s type %d: int8 activations, rms error %.2e of sum|w x|%s\n", kernel_sets[s], type, rms,
                   exact && strcmp(kernel_sets[s], "avx2") != 0 ? ", bits of the scalar int8 matvec" : "");
    }
    citer_kernels_force(NULL);
    free(x), free(bound), free(ref), free(mag);
    free_matrix(&t);
}

static void test_int8_activations(void)
{
    static const int types[] = {GGML_Q8_0, GGML_Q4_0};
    static const int64_t cols_list[] = {32, 96, 224, 4864};
    int old = citer_set_int8_activations(1);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) int8_case(types[ti], cols_list[ci], 0);
    citer_set_int8_activations(old);
}

/* The same for the K-quants (matvec only), whose SIMD int8 kernels give the scalar one's bits. */
static void test_int8_kquants(void)
{
    static const int types[] = {GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
    static const int64_t cols_list[] = {256, 512, 4864};
    int old = citer_set_int8_activations(1);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) int8_case(types[ti], cols_list[ci], 1);
    citer_set_int8_activations(old);
}

static void test_matmul(void)
{
    static const int64_t rows_list[] = {1, 7, 33, 300};
    static const int64_t T_list[] = {1, 3, 5, 17};
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = all_types[ti];
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
            for (size_t k = 0; k < sizeof T_list / sizeof T_list[0]; k++) {
                int64_t rows = rows_list[ri], cols = cols_for(type), T = T_list[k];
                test_matrix t;
                make_matrix(&t, type, rows, cols);
                float *X = xmalloc(sizeof(float) * (size_t)(T * cols));
                float *Y1 = xmalloc(sizeof(float) * (size_t)(T * rows));
                float *Y2 = xmalloc(sizeof(float) * (size_t)(T * rows));
                for (int64_t c = 0; c < T * cols; c++) X[c] = frand();
                citer_set_threads(1);
                citer_matmul(&t.m, X, T, Y1);
                citer_set_threads(2);
                citer_matmul(&t.m, X, T, Y2);
                double worst = 0;
                for (int64_t s = 0; s < T; s++) {
                    double e = row_errors(&t, X + s * cols, Y1 + s * rows);
                    if (e > worst) worst = e;
                }
                CHECK(worst < 1e-5, "type %d rows %lld T %lld: error %.3g", type, (long long)rows,
                      (long long)T, worst);
                CHECK(memcmp(Y1, Y2, sizeof(float) * (size_t)(T * rows)) == 0,
                      "type %d rows %lld T %lld: 1 and 2 threads differ", type, (long long)rows, (long long)T);
                free(X);
                free(Y1);
                free(Y2);
                free_matrix(&t);
            }
        }
    }
}

/* Every T in 1..40 (matvecs, the small-batch path, sgemm beyond its limit) for every type and
 * kernel set: within 1e-5 of sum|w x| of the f64 reference, 1 and 2 threads bit for bit, and on
 * the small-batch path a token's result the same bits whatever T (so a batched append of k
 * tokens does not depend on how the tokens were grouped). Rows 37 = 9 groups of 4 and a
 * partial one; the float types have 117 columns (tails of the SIMD loops). */
static void matmul_T_case(const char *set)
{
    enum { TMAX = 40, ROWS = 37 };
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = all_types[ti];
        int64_t cols = cols_for(type);
        test_matrix t;
        make_matrix(&t, type, ROWS, cols);
        float *X = xmalloc(sizeof(float) * (size_t)(TMAX * cols));
        float *Y1 = xmalloc(sizeof(float) * (size_t)(TMAX * ROWS)), *Y2 = xmalloc(sizeof(float) * (size_t)(TMAX * ROWS));
        float *Yall = xmalloc(sizeof(float) * (size_t)(TMAX * ROWS));
        for (int64_t c = 0; c < TMAX * cols; c++) X[c] = frand();
        int bad_err = 0, bad_threads = 0, bad_T = 0;
        /* the reference dot products, once */
        double *ref = xmalloc(sizeof(double) * TMAX * ROWS), *mag = xmalloc(sizeof(double) * TMAX * ROWS);
        for (int s = 0; s < TMAX; s++)
            for (int r = 0; r < ROWS; r++) {
                double a = 0, m = 0;
                for (int64_t c = 0; c < cols; c++) {
                    a += t.deq[r * cols + c] * X[s * cols + c];
                    m += fabs(t.deq[r * cols + c] * X[s * cols + c]);
                }
                ref[s * ROWS + r] = a, mag[s * ROWS + r] = m > 0 ? m : 1;
            }
        int small = citer_matmul_small_limit() < TMAX ? citer_matmul_small_limit() : TMAX;
        citer_set_threads(2);
        citer_matmul(&t.m, X, small, Yall); /* the largest small batch */
        for (int T = 1; T <= TMAX; T++) {
            citer_set_threads(1);
            citer_matmul(&t.m, X, T, Y1);
            citer_set_threads(2);
            citer_matmul(&t.m, X, T, Y2);
            for (int s = 0; s < T; s++)
                for (int r = 0; r < ROWS; r++) {
                    double e = fabs(Y1[s * ROWS + r] - ref[s * ROWS + r]) / mag[s * ROWS + r];
                    if (e >= 1e-5 && bad_err++ < 3)
                        printf("  %s type %d T %d token %d row %d: error %.3g\n", set, type, T, s, r, e);
                }
            if (memcmp(Y1, Y2, sizeof(float) * (size_t)(T * ROWS)) != 0 && bad_threads++ < 3)
                printf("  %s type %d T %d: 1 and 2 threads differ\n", set, type, T);
            /* on the small-batch path (T >= 4), the same bits as in the largest small batch */
            if (T >= 4 && T <= small && memcmp(Y1, Yall, sizeof(float) * (size_t)(T * ROWS)) != 0 && bad_T++ < 3)
                printf("  %s type %d T %d: tokens differ from the same tokens in a %d-token batch\n", set, type, T,
                       small);
        }
        CHECK(bad_err == 0, "%s type %d: %d outputs beyond 1e-5", set, type, bad_err);
        CHECK(bad_threads == 0, "%s type %d: 1 and 2 threads differ for %d values of T", set, type, bad_threads);
        CHECK(bad_T == 0, "%s type %d: results depend on T for %d values of T", set, type, bad_T);
        free(X), free(Y1), free(Y2), free(Yall), free(ref), free(mag);
        free_matrix(&t);
    }
}
static void test_matmul_every_T(void)
{
    /* the default limit, then a low one so that sgemm covers most of 1..40 too */
    int limits[] = {citer_matmul_small_limit(), 8};
    for (int li = 0; li < 2; li++) {
        int old = citer_set_matmul_small_limit(limits[li]);
        printf("  small-batch path up to T = %d\n", citer_matmul_small_limit());
        for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
            if (citer_kernels_force(kernel_sets[s]) != 0) continue;
            matmul_T_case(kernel_sets[s]);
        }
        citer_kernels_force(NULL);
        citer_set_matmul_small_limit(old);
    }
}

/* Int8 activation mode on the small-batch path: for every T in 1..40, with 1 and 2 threads, on
 * every kernel set, each token's outputs are within 1e-5 of sum|w x| of the set's int8 matvec
 * of that token alone, and for T >= 4 (the small-batch path) the bits of the scalar int8
 * matvec (the scalar and AVX-512 VNNI batch kernels do its arithmetic: integer block dots,
 * then t += (dw*dx)*s block by block), so a token's result does not depend on T (T = 1..40, 55
 * and 70: beyond 64 tokens the SIMD int8 path goes in chunks of 64). Columns: 32,
 * 96, 608 (odd block counts), 4864; 37 rows (a partial group of 4). A set without int8 kernels
 * (avx2) uses f32 activations on both paths. */
static void test_matmul_int8_every_T(void)
{
    enum { TMAX = 70, ROWS = 37 };
    static const int types[] = {GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
    static const int64_t cols_list[] = {32, 96, 608, 4864};
    int old = citer_set_int8_activations(1), old_limit = citer_set_matmul_small_limit(64);
    for (size_t s = 0; s < sizeof kernel_sets / sizeof *kernel_sets; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) continue;
        int exact = strcmp(kernel_sets[s], "avx2") != 0;
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
            for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) {
                int64_t cols = cols_list[ci];
                if (cols % block_of(types[ti]) != 0) continue; /* K-quants: 4864 only */
                test_matrix t;
                make_matrix(&t, types[ti], ROWS, cols);
                float *X = xmalloc(sizeof(float) * (size_t)(TMAX * cols));
                float *Y1 = xmalloc(sizeof(float) * TMAX * ROWS), *Y2 = xmalloc(sizeof(float) * TMAX * ROWS);
                float *Yv = xmalloc(sizeof(float) * TMAX * ROWS), *Ys = xmalloc(sizeof(float) * TMAX * ROWS);
                double *mag = xmalloc(sizeof(double) * TMAX * ROWS);
                /* some all-zero blocks: a zero scale, quantized to zeros */
                for (int64_t c = 0; c < TMAX * cols; c++) X[c] = (c / 32) % 11 == 5 ? 0 : frand() * (c % 7 == 0 ? 4.0f : 1.0f);
                citer_set_threads(2);
                for (int k = 0; k < TMAX; k++) {
                    citer_kernels_force("scalar");
                    citer_matvec(&t.m, X + k * cols, Ys + k * ROWS);
                    citer_kernels_force(kernel_sets[s]);
                    citer_matvec(&t.m, X + k * cols, Yv + k * ROWS);
                    for (int r = 0; r < ROWS; r++) {
                        double m = 0;
                        for (int64_t c = 0; c < cols; c++) m += fabs(t.deq[r * cols + c] * X[k * cols + c]);
                        mag[k * ROWS + r] = m > 0 ? m : 1;
                    }
                }
                int bad_bits = 0, bad_err = 0, bad_threads = 0;
                for (int T = 1; T <= TMAX; T = T < 40 ? T + 1 : T + 15) { /* ..40, 55, 70: two chunks of the batch */
                    citer_set_threads(1);
                    citer_matmul(&t.m, X, T, Y1);
                    citer_set_threads(2);
                    citer_matmul(&t.m, X, T, Y2);
                    if (memcmp(Y1, Y2, sizeof(float) * (size_t)(T * ROWS)) != 0) bad_threads++;
                    for (int i = 0; i < T * ROWS; i++) {
                        if (fabs(Y1[i] - Yv[i]) > 1e-5 * mag[i] && bad_err++ < 3)
                            printf("  %s type %d cols %lld T %d token %d row %d: %.9g, matvec %.9g\n", kernel_sets[s],
                                   types[ti], (long long)cols, T, i / ROWS, i % ROWS, Y1[i], Yv[i]);
                        if (exact && T >= 4 && Y1[i] != Ys[i] && bad_bits++ < 3)
                            printf("  %s type %d cols %lld T %d token %d row %d: %.9g, scalar int8 matvec %.9g\n",
                                   kernel_sets[s], types[ti], (long long)cols, T, i / ROWS, i % ROWS, Y1[i], Ys[i]);
                    }
                }
                CHECK(bad_err == 0, "%s type %d cols %lld: %d outputs beyond 1e-5 of the int8 matvec", kernel_sets[s],
                      types[ti], (long long)cols, bad_err);
                CHECK(bad_bits == 0, "%s type %d cols %lld: %d outputs not the scalar int8 matvec's bits",
                      kernel_sets[s], types[ti], (long long)cols, bad_bits);
                CHECK(bad_threads == 0, "%s type %d cols %lld: 1 and 2 threads differ for %d values of T",
                      kernel_sets[s], types[ti], (long long)cols, bad_threads);
                free(X), free(Y1), free(Y2), free(Yv), free(Ys), free(mag);
                free_matrix(&t);
            }
        printf("  %s: int8 small batches within 1e-5 of the set's int8 matvec%s\n", kernel_sets[s],
               exact ? ", bit for bit the scalar int8 matvec" : " (f32 activations)");
    }
    citer_kernels_force(NULL);
    citer_set_matmul_small_limit(old_limit);
    citer_set_int8_activations(old);
}

/* citer_matmul_multi gives citer_matmul's bits for each matrix: int8 batches shared by a packed
 * Q8_0, a Q4_0 and a Q4_K matrix (one quantization, one dispatch), a mix with an F16 matrix
 * (each on its own), in every kernel set, with int8 on and off, for batches of 2, 5, 8 and 70
 * tokens (two chunks of the int8 batch). */
static void test_matmul_multi(void)
{
    enum { TMAX = 70, COLS = 768 };
    static const int types[] = {GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_F16};
    static const int64_t rows[] = {48, 37, 21, 19};
    static const int Ts[] = {2, 5, 8, TMAX};
    test_matrix t[4];
    float *Y1[4], *Y2[4];
    for (int k = 0; k < 4; k++) {
        make_matrix(&t[k], types[k], rows[k], COLS);
        Y1[k] = xmalloc(sizeof(float) * (size_t)(TMAX * rows[k]));
        Y2[k] = xmalloc(sizeof(float) * (size_t)(TMAX * rows[k]));
    }
    float *X = xmalloc(sizeof(float) * TMAX * COLS);
    for (int64_t c = 0; c < TMAX * COLS; c++) X[c] = frand();
    int old = citer_set_int8_activations(1);
    void *pk = NULL;
    if (citer_matrix_pack_bytes(&t[0].m)) {
        pk = aligned_alloc(64, (citer_matrix_pack_bytes(&t[0].m) + 63) / 64 * 64);
        citer_matrix_pack(&t[0].m, pk);
    }
    const citer_matrix *w[4] = {&t[0].m, &t[1].m, &t[2].m, &t[3].m};
    for (size_t s = 0; s < sizeof kernel_sets / sizeof *kernel_sets; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) continue;
        for (int i8 = 0; i8 < 2; i8++) {
            citer_set_int8_activations(i8);
            for (int nw = 3; nw <= 4; nw++) /* 3: all int8-capable; 4: with the F16 one */
                for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
                    int T = Ts[ti];
                    for (int k = 0; k < nw; k++) citer_matmul(w[k], X, T, Y1[k]);
                    citer_matmul_multi(w, nw, X, T, Y2);
                    for (int k = 0; k < nw; k++)
                        CHECK(memcmp(Y1[k], Y2[k], sizeof(float) * (size_t)(T * rows[k])) == 0,
                              "%s int8 %d, %d matrices, T %d: matrix %d differs from citer_matmul", kernel_sets[s], i8,
                              nw, T, k);
                }
        }
    }
    citer_kernels_force(NULL);
    citer_set_int8_activations(old);
    for (int k = 0; k < 4; k++) {
        free(Y1[k]), free(Y2[k]);
        t[k].m.packed = NULL;
        free_matrix(&t[k]);
    }
    free(pk);
    free(X);
}

/* F16 and BF16 rows holding infinities, NaNs, subnormals, signed zeros and the largest finite
 * values, in a SIMD loop's body and in its tail, for narrow rows and for rows wide enough to
 * be done four at a time: every set's matvec gives the dequantized reference (the AVX-512 F16
 * loops widen with integer operations, which leave infinities and NaNs finite; they must
 * notice them and convert those rows with vcvtph2ps instead). */
static void test_half_special_values(void)
{
    enum { ROWS = 64, MAXC = 4168 }; /* chunks of the pool of 4 rows and more */
    static const struct { int type; uint16_t pinf, ninf, nan, nnan, sub, nsub, max, nmax, nzero; } t[] = {
        {GGML_F16, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x8000},
        {GGML_BF16, 0x7F80, 0xFF80, 0x7FC0, 0xFF81, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x8000},
    };
    static const int widths[] = {200, MAXC}; /* tails of 8 columns; 4168 > CITER_DOT4_COLS */
    static float x[MAXC];
    static uint16_t w[ROWS][MAXC];
    static float y[ROWS];
    for (int c = 0; c < MAXC; c++) x[c] = (c % 3 == 0 ? -1.0f : 1.0f) * (0.25f + 0.5f * (float)(c % 7) / 7);
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        for (int wi = 0; wi < 2; wi++) {
            int cols = widths[wi];
            for (int r = 0; r < ROWS; r++)
                for (int c = 0; c < cols; c++) {
                    float v = 0.01f * (float)((r * 31 + c * 17) % 41 - 20);
                    w[r][c] = t[k].type == GGML_F16 ? citer_f32_to_f16(v) : citer_f32_to_bf16(v);
                }
            w[0][70] = t[k].pinf; /* x > 0 there: +inf */
            w[1][70] = t[k].ninf; /* -inf */
            w[2][130] = t[k].nan;
            w[3][10] = t[k].nnan;
            int tail = cols - 8;
            while (tail % 3 == 0) tail++;
            w[5][tail] = t[k].pinf; /* in the tail; x > 0 there */
            uint16_t ext[] = {t[k].sub, t[k].nsub, t[k].max, t[k].nmax, t[k].nzero};
            for (int c = 0; c < 200; c += 9) w[4][c] = ext[(c / 9) % 5]; /* few: f32 sums of more overflow */
            /* rows of cols elements, row_bytes apart */
            uint16_t *data = xmalloc(sizeof(uint16_t) * (size_t)(ROWS * cols));
            for (int r = 0; r < ROWS; r++) memcpy(data + (size_t)r * cols, w[r], sizeof(uint16_t) * (size_t)cols);
            citer_matrix m;
            REQUIRE(citer_matrix_init(&m, t[k].type, ROWS, cols, data) == 0, "matrix");
            static double ref[ROWS], mag[ROWS];
            float *deq = xmalloc(sizeof(float) * (size_t)cols);
            for (int r = 0; r < ROWS; r++) {
                citer_dequantize_row(t[k].type, w[r], deq, cols);
                ref[r] = mag[r] = 0;
                for (int c = 0; c < cols; c++) ref[r] += (double)deq[c] * x[c], mag[r] += fabs((double)deq[c] * x[c]);
            }
            free(deq);
            CHECK(isinf(ref[0]) && ref[0] > 0 && isinf(ref[1]) && ref[1] < 0 && isnan(ref[2]) && isnan(ref[3]) &&
                      isfinite(ref[4]) && isinf(ref[5]) && ref[5] > 0,
                  "type %d: the reference rows are not what the test means", t[k].type);
            for (int s = 0; s < 3; s++) {
                if (citer_kernels_force(kernel_sets[s]) != 0) continue;
                citer_matvec(&m, x, y);
                const char *ks = kernel_sets[s];
                CHECK(isinf(y[0]) && y[0] > 0, "%s type %d cols %d: +inf row gives %g", ks, t[k].type, cols, y[0]);
                CHECK(isinf(y[1]) && y[1] < 0, "%s type %d cols %d: -inf row gives %g", ks, t[k].type, cols, y[1]);
                CHECK(isnan(y[2]) && isnan(y[3]), "%s type %d cols %d: NaN rows give %g, %g", ks, t[k].type, cols,
                      y[2], y[3]);
                CHECK(isinf(y[5]) && y[5] > 0, "%s type %d cols %d: +inf in the tail gives %g", ks, t[k].type, cols,
                      y[5]);
                for (int r = 4; r < ROWS; r++) {
                    if (r == 5) continue;
                    CHECK(fabs(y[r] - ref[r]) <= 1e-6 * mag[r], "%s type %d cols %d row %d: %g, want %g", ks,
                          t[k].type, cols, r, y[r], ref[r]);
                    /* rows taken four at a time have the bits of the row alone */
                    citer_matrix one;
                    float y1;
                    citer_matrix_init(&one, t[k].type, 1, cols, data + (size_t)r * cols);
                    citer_matvec(&one, x, &y1);
                    CHECK(memcmp(&y1, &y[r], sizeof y1) == 0, "%s type %d cols %d row %d: %a in the matrix, %a alone",
                          ks, t[k].type, cols, r, y[r], y1);
                }
            }
            citer_kernels_force(NULL);
            free(data);
        }
}

/* The kernel sets' row dequantizers give the reference's bits (they do the same f32 products). */
static void test_deq_rows(void)
{
    const citer_kernel_set *sets[] = {&citer_kernels_avx2, &citer_kernels_avx512};
    int avail[] = {citer_cpu_has_avx2(), citer_cpu_has_avx512()};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]->name || !avail[k] || !sets[k]->deq_row) continue;
        int handled = 0;
        for (int ti = 0; ti < NTYPES; ti++) {
            int type = all_types[ti];
            int64_t cols = block_of(type) == 1 ? 117 : 1536;
            test_matrix t;
            make_matrix(&t, type, 3, cols);
            float *a = xmalloc(sizeof(float) * (size_t)cols), *b = xmalloc(sizeof(float) * (size_t)cols);
            for (int r = 0; r < 3; r++) {
                const uint8_t *row = t.data + t.m.row_bytes * (size_t)r;
                if (!sets[k]->deq_row(type, row, a, cols)) break;
                handled += r == 0;
                citer_dequantize_row(type, row, b, cols);
                CHECK(memcmp(a, b, sizeof(float) * (size_t)cols) == 0, "%s type %d row %d: not the reference's bits",
                      sets[k]->name, type, r);
            }
            free(a), free(b);
            free_matrix(&t);
        }
        printf("  %s: %d types dequantized by SIMD\n", sets[k]->name, handled);
        CHECK(handled >= 6, "%s: only %d types", sets[k]->name, handled);
    }
}

static void test_matrix_row(void)
{
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = all_types[ti];
        int64_t cols = cols_for(type);
        test_matrix t;
        make_matrix(&t, type, 5, cols);
        float *row = xmalloc(sizeof(float) * (size_t)cols);
        citer_matrix_row(&t.m, 3, row);
        int bad = 0;
        for (int64_t c = 0; c < cols; c++) bad += row[c] != (float)t.deq[3 * cols + c];
        CHECK(bad == 0, "type %d: %d elements differ", type, bad);
        free(row);
        free_matrix(&t);
    }
}

/* ---- thread pool ---- */

static void mark(void *arg, int64_t b, int64_t e)
{
    int *hits = arg;
    for (int64_t i = b; i < e; i++) hits[i]++;
}

static void nested(void *arg, int64_t b, int64_t e)
{
    int *hits = arg;
    for (int64_t i = b; i < e; i++) citer_parallel_for(3, mark, hits + 3 * i);
}

/* Every index once per call, for 1-3 threads and n = 0..39, with the workers sent to sleep
 * (citer_threads_rest) before some calls; a nested call runs serially. */
static void test_parallel_for(void)
{
    static int hits[3000];
    for (int nt = 1; nt <= 3; nt++) {
        citer_set_threads(nt);
        CHECK(citer_get_threads() == nt, "threads %d", citer_get_threads());
        for (int64_t n = 0; n < 40; n++) {
            memset(hits, 0, sizeof hits);
            for (int rep = 0; rep < 50; rep++) {
                if (rep % 7 == 3) citer_threads_rest(); /* workers asleep: the next call must wake them */
                if (rep % 7 == 4) usleep(200);
                citer_parallel_for(n, mark, hits);
            }
            int bad = 0;
            for (int64_t i = 0; i < 40; i++) bad += hits[i] != (i < n ? 50 : 0);
            CHECK(bad == 0, "threads %d n %lld: %d wrong counts", nt, (long long)n, bad);
        }
        memset(hits, 0, sizeof hits);
        citer_parallel_for(1000, nested, hits);
        int bad = 0;
        for (int i = 0; i < 3000; i++) bad += hits[i] != 1;
        CHECK(bad == 0, "nested: %d wrong counts", bad);
    }
    citer_set_threads(2);
}

/* Packed Q8_0 matrices (citer_matrix_pack, AVX-512 VNNI): the same bytes rearranged, and every
 * output of matvec and of matmul at T = 1..40, 55, 70 the bits of the scalar int8 matvec of the
 * unpacked matrix; 1 and 2 threads alike. Rows 16, 48, 160 (several sets, threads splitting
 * inside a set's range), columns 32, 96 (blocks in groups of 4 and the rest), 608, 4864. No
 * packing for rows not a multiple of 16, for other types, or with f32 activations. */
static void test_packed_q8_0(void)
{
    static const int64_t rows_list[] = {16, 48, 160}, cols_list[] = {32, 96, 608, 4864};
    int old = citer_set_int8_activations(CITER_INT8_AUTO);
    if (citer_kernels_force("avx512") != 0 || !citer_int8_activations()) {
        citer_kernels_force(NULL);
        citer_set_int8_activations(old);
        SKIP("no AVX-512 VNNI: nothing is packed");
    }
    test_matrix odd;
    make_matrix(&odd, GGML_Q8_0, 40, 64);
    CHECK(citer_matrix_pack_bytes(&odd.m) == 0, "40 rows packable");
    free_matrix(&odd);
    make_matrix(&odd, GGML_Q4_0, 32, 64);
    CHECK(citer_matrix_pack_bytes(&odd.m) == 0, "q4_0 packable");
    free_matrix(&odd);
    int bad_bits = 0, bad_threads = 0, cases = 0;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) {
            enum { TMAX = 70 };
            int64_t rows = rows_list[ri], cols = cols_list[ci];
            test_matrix t;
            make_matrix(&t, GGML_Q8_0, rows, cols);
            citer_set_int8_activations(0);
            CHECK(citer_matrix_pack_bytes(&t.m) == 0, "packable with f32 activations");
            citer_set_int8_activations(CITER_INT8_AUTO);
            size_t nbytes = citer_matrix_pack_bytes(&t.m);
            CHECK(nbytes == t.m.row_bytes * (size_t)rows, "packed bytes %zu", nbytes);
            void *pk = aligned_alloc(64, (nbytes + 63) / 64 * 64);
            citer_matrix p = t.m;
            citer_matrix_pack(&p, pk);
            CHECK(p.packed == pk, "not packed");
            float *X = xmalloc(sizeof(float) * (size_t)(TMAX * cols));
            for (int64_t c = 0; c < TMAX * cols; c++) X[c] = (c / 32) % 11 == 5 ? 0 : frand() * (c % 7 == 0 ? 4.0f : 1.0f);
            float *Ys = xmalloc(sizeof(float) * (size_t)(TMAX * rows)), *Y1 = xmalloc(sizeof(float) * (size_t)(TMAX * rows));
            float *Y2 = xmalloc(sizeof(float) * (size_t)(TMAX * rows));
            citer_kernels_force("scalar");
            citer_set_int8_activations(1);
            for (int k = 0; k < TMAX; k++) citer_matvec(&t.m, X + k * cols, Ys + k * rows);
            citer_kernels_force("avx512");
            citer_set_int8_activations(CITER_INT8_AUTO);
            for (int T = 1; T <= TMAX; T = T < 40 ? T + 1 : T + 15) {
                citer_set_threads(1);
                if (T == 1) citer_matvec(&p, X, Y1);
                else citer_matmul(&p, X, T, Y1);
                citer_set_threads(2);
                if (T == 1) citer_matvec(&p, X, Y2);
                else citer_matmul(&p, X, T, Y2);
                if (memcmp(Y1, Y2, sizeof(float) * (size_t)(T * rows)) != 0) bad_threads++;
                for (int64_t i = 0; i < T * rows; i++)
                    if (Y1[i] != Ys[i] && bad_bits++ < 3)
                        printf("  rows %lld cols %lld T %d token %lld row %lld: %.9g, scalar int8 %.9g\n", (long long)rows,
                               (long long)cols, T, (long long)(i / rows), (long long)(i % rows), Y1[i], Ys[i]);
            }
            cases++;
            free(X), free(Ys), free(Y1), free(Y2), free(pk);
            free_matrix(&t);
        }
    CHECK(bad_bits == 0, "%d packed outputs not the scalar int8 matvec's bits", bad_bits);
    CHECK(bad_threads == 0, "%d calls differ between 1 and 2 threads", bad_threads);
    printf("  packed q8_0: %d shapes, matvec and matmul T = 1..70 bit for bit the scalar int8 matvec\n", cases);
    citer_kernels_force(NULL);
    citer_set_int8_activations(old);
}

/* The default int8 mode (auto): int8 activations exactly where the kernel set has SIMD int8
 * kernels, AVX-512 with VNNI; CITER_INT8_ACT-style modes 0 and 1 override it. */
static void test_int8_default(void)
{
    int old = citer_set_int8_activations(CITER_INT8_AUTO);
    for (size_t s = 0; s < sizeof kernel_sets / sizeof *kernel_sets; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) continue;
        int want = !strcmp(kernel_sets[s], "avx512") && citer_cpu_has_avx512vnni();
        CHECK(citer_int8_activations() == want, "%s: auto int8 %d, want %d", kernel_sets[s], citer_int8_activations(), want);
        citer_set_int8_activations(0);
        CHECK(!citer_int8_activations(), "%s: int8 with mode 0", kernel_sets[s]);
        citer_set_int8_activations(1);
        CHECK(citer_int8_activations() == (strcmp(kernel_sets[s], "avx2") != 0), "%s: mode 1", kernel_sets[s]);
        CHECK(citer_set_int8_activations(CITER_INT8_AUTO) == 1, "mode 1 not returned");
        printf("  %s: int8 activations by default: %s\n", kernel_sets[s], want ? "yes" : "no");
    }
    citer_kernels_force(NULL);
    CHECK(citer_set_int8_activations(old) == CITER_INT8_AUTO, "auto not returned");
}

/* SwiGLU against f64 silu(g) * u: every set within 4e-7 relative (a few ulp: the SIMD sets'
 * own exp) where the result is above 1e-30 in magnitude (g > -62; below, every set gives
 * values under 1e-30, which is all a model can tell from 0), over g in [-100, 100] (both sides
 * of the sigmoid's branches, saturation, 0, a length that leaves a partial vector), with NaN
 * kept NaN. */
static void test_swiglu(void)
{
    enum { N = 1003 };
    float g[N], u[N], y[N];
    for (int i = 0; i < N; i++) {
        g[i] = i < 3 ? (float)(i - 1) * 100.0f : (float)(i - N / 2) * 0.2f + 0.01f * frand();
        u[i] = 1.0f + 0.5f * frand();
    }
    g[N - 1] = NAN;
    for (size_t s = 0; s < sizeof kernel_sets / sizeof kernel_sets[0]; s++) {
        if (citer_kernels_force(kernel_sets[s]) != 0) continue;
        memcpy(y, g, sizeof y);
        citer_swiglu(y, u, N);
        double worst = 0;
        for (int i = 0; i < N - 1; i++) {
            double want = (double)g[i] / (1 + exp(-(double)g[i])) * u[i];
            if (fabs(want) < 1e-30) {
                CHECK(fabs(y[i]) < 1e-30, "%s: swiglu(%g) = %g, want %g", kernel_sets[s], g[i], y[i], want);
                continue;
            }
            double e = fabs(y[i] - want) / fabs(want);
            if (e > worst) worst = e;
        }
        CHECK(worst <= 4e-7, "%s: swiglu relative error %.3g", kernel_sets[s], worst);
        CHECK(isnan(y[N - 1]), "%s: swiglu of NaN is %g", kernel_sets[s], y[N - 1]);
    }
    citer_kernels_force(NULL);
}

int main(void)
{
    (void)t_fixture; /* fixture-free: these tests build their own data */
    (void)t_tmpdir;
    /* the f32-activation kernels (exact up to f32 rounding); the int8 tests turn int8 on */
    citer_set_int8_activations(0);
    RUN(test_int8_default);
    RUN(test_f16_encode);
    RUN(test_f16_decode);
    RUN(test_bf16);
    RUN(test_geometry);
    RUN(test_block_q8_0);
    RUN(test_block_q4_0);
    RUN(test_block_q4_1);
    RUN(test_block_q5);
    RUN(test_block_q4_k);
    RUN(test_block_q5_k);
    RUN(test_block_q6_k);
    RUN(test_quantize_roundtrip);
    RUN(test_parallel_for);
    RUN(test_matvec);
    RUN(test_simd_vs_scalar);
    RUN(test_int8_activations);
    RUN(test_int8_kquants);
    RUN(test_matmul);
    RUN(test_matmul_every_T);
    RUN(test_matmul_int8_every_T);
    RUN(test_matmul_multi);
    RUN(test_packed_q8_0);
    RUN(test_half_special_values);
    RUN(test_deq_rows);
    RUN(test_matrix_row);
    RUN(test_swiglu);
    return t_exit();
}
