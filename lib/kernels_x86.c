/* kernels_x86: AVX2 and AVX-512 row dot products for matvec.
 *
 * The library is built without -march, so each function carries a target attribute and is only
 * called after citer_cpu_has_*() confirmed the instructions at run time. All kernels accumulate
 * in f32 with a fixed order per row (a fixed number of vector accumulators, combined the same way
 * every time), so a row's result never depends on which thread computed it.
 *
 * Quantized kernels with f32 activations convert weights to f32 in registers and use FMAs. With
 * int8 activations (AVX-512 VNNI: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) the weights stay bytes and the
 * dot products are vpdpbusd; the K-quants then reach 2-3x the f32-activation bandwidth. */
#include <math.h>

#include "gguf.h"
#include "kernels_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

int citer_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

int citer_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return citer_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

int citer_cpu_has_avx512vnni(void) { return citer_cpu_has_avx512() && __builtin_cpu_supports("avx512vnni"); }

/* ================= AVX2 ================= */

AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float h2f_avx2(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }

AVX2 static float avx2_dot_f32(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float t = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

AVX2 static float avx2_row_f32(const void *row, const float *x, int64_t n) { return avx2_dot_f32(row, x, n); }

AVX2 static inline __m256 ld_f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

AVX2 static float avx2_row_f16(const void *row, const float *x, int64_t n)
{
    const uint8_t *w = row;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(ld_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(ld_f16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(ld_f16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(ld_f16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(ld_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    float t = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) t += _cvtsh_ss(rd16(w + 2 * i)) * x[i];
    return t;
}

AVX2 static inline __m256 ld_bf16x8(const uint8_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

AVX2 static float avx2_row_bf16(const void *row, const float *x, int64_t n)
{
    const uint8_t *w = row;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(ld_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(ld_bf16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(ld_bf16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(ld_bf16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(ld_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    float t = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) t += citer_bf16_to_f32(rd16(w + 2 * i)) * x[i];
    return t;
}

AVX2 static inline __m256 i8x8_ps(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

AVX2 static float avx2_row_q8_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QK; i++, b += 34, x += QK) {
        __m256 s = _mm256_mul_ps(i8x8_ps(b + 2), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(i8x8_ps(b + 10), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(i8x8_ps(b + 18), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(i8x8_ps(b + 26), _mm256_loadu_ps(x + 24), s);
        __m256 d = _mm256_set1_ps(h2f_avx2(b));
        if (i & 1) acc1 = _mm256_fmadd_ps(s, d, acc1);
        else acc0 = _mm256_fmadd_ps(s, d, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

AVX2 static float avx2_row_q4_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    const __m256i m15 = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QK; i++, b += 18, x += QK) {
        __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2)));
        __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 10)));
        __m256 l0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, m15), eight));
        __m256 l1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, m15), eight));
        __m256 h0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight));
        __m256 h1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight));
        __m256 s = _mm256_mul_ps(l0, _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(l1, _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(h0, _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(h1, _mm256_loadu_ps(x + 24), s);
        __m256 d = _mm256_set1_ps(h2f_avx2(b));
        if (i & 1) acc1 = _mm256_fmadd_ps(s, d, acc1);
        else acc0 = _mm256_fmadd_ps(s, d, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

AVX2 static void avx2_f16_row(const uint8_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_f16x8(src + 2 * i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(rd16(src + 2 * i));
}

AVX2 static void avx2_bf16_row(const uint8_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_bf16x8(src + 2 * i));
    for (; i < n; i++) dst[i] = citer_bf16_to_f32(rd16(src + 2 * i));
}

AVX2 static void avx2_dot_rows(const float *q, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * stride;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        int64_t k = 0;
        for (; k + 16 <= d; k += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + k), _mm256_loadu_ps(r + k), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + k + 8), _mm256_loadu_ps(r + k + 8), s1);
        }
        for (; k + 8 <= d; k += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + k), _mm256_loadu_ps(r + k), s0);
        float t = hsum256(_mm256_add_ps(s0, s1));
        for (; k < d; k++) t += q[k] * r[k];
        out[i] = t;
    }
}

/* out += sum_i a[i] rows[i]: 32 columns at a time held in registers over all rows. */
AVX2 static void avx2_axpy_rows(const float *a, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    int64_t k = 0;
    for (; k + 32 <= d; k += 32) {
        __m256 o0 = _mm256_loadu_ps(out + k), o1 = _mm256_loadu_ps(out + k + 8);
        __m256 o2 = _mm256_loadu_ps(out + k + 16), o3 = _mm256_loadu_ps(out + k + 24);
        for (int64_t i = 0; i < n; i++) {
            const float *r = rows + (size_t)i * stride + k;
            __m256 av = _mm256_set1_ps(a[i]);
            o0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(r), o0);
            o1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(r + 8), o1);
            o2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(r + 16), o2);
            o3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(r + 24), o3);
        }
        _mm256_storeu_ps(out + k, o0), _mm256_storeu_ps(out + k + 8, o1);
        _mm256_storeu_ps(out + k + 16, o2), _mm256_storeu_ps(out + k + 24, o3);
    }
    for (; k < d; k++) {
        float o = out[k];
        for (int64_t i = 0; i < n; i++) o += a[i] * rows[(size_t)i * stride + k];
        out[k] = o;
    }
}


/* ---- AVX2: dequantizing rows (bit-identical to the reference: the same products, no FMA) ---- */

AVX2 static void avx2_deq_q8_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 34, y += QK) {
        __m256 d = _mm256_set1_ps(h2f_avx2(b));
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(d, i8x8_ps(b + 2 + 8 * k)));
    }
}

AVX2 static void avx2_deq_q4_0(const uint8_t *b, float *y, int64_t nb)
{
    const __m256i m15 = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
    for (int64_t i = 0; i < nb; i++, b += 18, y += QK) {
        __m256 d = _mm256_set1_ps(h2f_avx2(b));
        for (int k = 0; k < 2; k++) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k)));
            __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v, m15), eight));
            __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight));
            _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(d, lo));
            _mm256_storeu_ps(y + 16 + 8 * k, _mm256_mul_ps(d, hi));
        }
    }
}

AVX2 static void avx2_deq_q4_k(const uint8_t *b, float *y)
{
    const __m256i m15 = _mm256_set1_epi32(15);
    float d = h2f_avx2(b), dmin = h2f_avx2(b + 2);
    const uint8_t *qs = b + 16;
    for (int k = 0; k < 4; k++) {
        int sa, ma, sb, mb;
        kquant_scale_min(b + 4, 2 * k, &sa, &ma);
        kquant_scale_min(b + 4, 2 * k + 1, &sb, &mb);
        __m256 da = _mm256_set1_ps(d * (float)sa), na = _mm256_set1_ps(dmin * (float)ma);
        __m256 db = _mm256_set1_ps(d * (float)sb), nb = _mm256_set1_ps(dmin * (float)mb);
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 32 * k + 8 * j)));
            __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, m15));
            __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
            _mm256_storeu_ps(y + 64 * k + 8 * j, _mm256_sub_ps(_mm256_mul_ps(da, lo), na));
            _mm256_storeu_ps(y + 64 * k + 32 + 8 * j, _mm256_sub_ps(_mm256_mul_ps(db, hi), nb));
        }
    }
}

AVX2 static void avx2_deq_q6_k(const uint8_t *b, float *y)
{
    const __m256i m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3), k32 = _mm256_set1_epi32(32);
    __m256 d = _mm256_set1_ps(h2f_avx2(b + 208));
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        float *o = y + 128 * h;
        for (int c = 0; c < 4; c++) {
            __m256i la = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + 8 * c)));
            __m256i lb = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + 32 + 8 * c)));
            __m256i hv = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + 8 * c)));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(la, m15), _mm256_slli_epi32(_mm256_and_si256(hv, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(lb, m15),
                                   _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hv, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_srli_epi32(la, 4),
                                   _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hv, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_srli_epi32(lb, 4), _mm256_slli_epi32(_mm256_srli_epi32(hv, 6), 4));
            for (int g = 0; g < 4; g++) {
                __m256i s = _mm256_set1_epi32(sc[8 * h + 2 * g + c / 2]);
                __m256 v = _mm256_cvtepi32_ps(_mm256_mullo_epi32(s, _mm256_sub_epi32(q[g], k32)));
                _mm256_storeu_ps(o + 32 * g + 8 * c, _mm256_mul_ps(d, v));
            }
        }
    }
}

AVX2 static int avx2_deq_row(int type, const uint8_t *src, float *dst, int64_t n)
{
    switch (type) {
    case GGML_F16: avx2_f16_row(src, dst, n); return 1;
    case GGML_BF16: avx2_bf16_row(src, dst, n); return 1;
    case GGML_Q8_0: avx2_deq_q8_0(src, dst, n / QK); return 1;
    case GGML_Q4_0: avx2_deq_q4_0(src, dst, n / QK); return 1;
    case GGML_Q4_K:
        for (int64_t i = 0; i < n / QKK; i++) avx2_deq_q4_k(src + 144 * i, dst + QKK * i);
        return 1;
    case GGML_Q6_K:
        for (int64_t i = 0; i < n / QKK; i++) avx2_deq_q6_k(src + 210 * i, dst + QKK * i);
        return 1;
    default: return 0;
    }
}

/* Small-batch tile: NR=4 weight rows x nt tokens (nt <= 3: 12 accumulators, 3 activations and
 * one weight vector fill the 16 registers). One accumulator per output, over chunks of 8 in
 * order, then the horizontal sum and the scalar tail: the same sequence whatever nt. */
#define AVX2_NT 3
AVX2 static inline __attribute__((always_inline)) void avx2_tile(const float *const w[4], const float *X,
                                                                 int64_t cols, int nt, float *out)
{
    __m256 acc[4][AVX2_NT];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 xv[AVX2_NT];
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++) xv[t] = _mm256_loadu_ps(X + t * cols + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256 wv = _mm256_loadu_ps(w[r] + k);
#pragma GCC unroll 3
            for (int t = 0; t < nt; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < nt; t++) {
            float s = hsum256(acc[r][t]);
            for (int64_t i = k; i < cols; i++) s += w[r][i] * X[t * cols + i];
            out[4 * t + r] = s;
        }
}

AVX2 static void avx2_tile4(const float *const w[4], const float *X, int64_t T, int64_t cols, float *out)
{
    int64_t t = 0;
    for (; t + AVX2_NT <= T; t += AVX2_NT) avx2_tile(w, X + t * cols, cols, AVX2_NT, out + 4 * t);
    if (T - t == 2) avx2_tile(w, X + t * cols, cols, 2, out + 4 * t);
    else if (T - t == 1) avx2_tile(w, X + t * cols, cols, 1, out + 4 * t);
}

/* exp(x) for x <= 0 (inputs below -87 give ~0): x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor
 * polynomial of degree 7 (truncation 5e-9 relative), times 2^n built in the exponent field. */
AVX2 static inline __m256 exp_neg_avx2(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* silu(g) * u with e = exp(-|g|): sigmoid(g) = 1/(1+e) for g >= 0, e/(1+e) below (no overflow). */
AVX2 static void avx2_swiglu(float *gate, const float *up, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_neg_avx2(_mm256_or_ps(g, sign));
        __m256 num = _mm256_blendv_ps(one, e, g); /* sign bit of g set: e */
        __m256 sg = _mm256_div_ps(num, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, sg), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* Chunks of 8 lanes x 8 terms summed in f32, the chunks' sums in f64. */
AVX2 static double avx2_sum_exp(const float *x, int64_t n, float shift)
{
    __m256 m = _mm256_set1_ps(shift);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    while (i + 8 <= n) {
        __m256 a = _mm256_setzero_ps();
        for (int k = 0; k < 8 && i + 8 <= n; k++, i += 8)
            a = _mm256_add_ps(a, exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), m)));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double t = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
    for (; i < n; i++) t += exp((double)x[i] - shift);
    return t;
}

/* max, NaN if any element is NaN */
AVX2 static float avx2_max_f32(const float *x, int64_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        m = _mm256_max_ps(m, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float lanes[8], t = -INFINITY;
    _mm256_storeu_ps(lanes, m);
    for (int k = 0; k < 8; k++) t = lanes[k] > t ? lanes[k] : t;
    int any_nan = _mm256_movemask_ps(nan) != 0;
    for (; i < n; i++) {
        if (x[i] != x[i]) any_nan = 1;
        if (x[i] > t) t = x[i];
    }
    return any_nan ? NAN : t;
}

const citer_kernel_set citer_kernels_avx2 = {
    .name = "avx2",
    .f32 = avx2_row_f32,
    .f16 = avx2_row_f16,
    .bf16 = avx2_row_bf16,
    .q8_0 = avx2_row_q8_0,
    .q4_0 = avx2_row_q4_0,
    .dot_f32 = avx2_dot_f32,
    .f16_row = avx2_f16_row,
    .bf16_row = avx2_bf16_row,
    .deq_q4_k = avx2_deq_q4_k,
    .deq_q6_k = avx2_deq_q6_k,
    .dot_rows = avx2_dot_rows,
    .axpy_rows = avx2_axpy_rows,
    .deq_row = avx2_deq_row,
    .tile4 = avx2_tile4,
    .sum_exp = avx2_sum_exp,
    .max_f32 = avx2_max_f32,
    .swiglu = avx2_swiglu,
};

/* ================= AVX-512 ================= */

AVX512 static inline float h2f_512(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }

AVX512 static float avx512_dot_f32(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

AVX512 static float avx512_row_f32(const void *row, const float *x, int64_t n) { return avx512_dot_f32(row, x, n); }

AVX512 static inline __m512 ld_f16x16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* Decode streams F16 and BF16 weights from memory, and there the instructions spent per cache
 * line decide how close to the read bandwidth a thread gets: the loops below load whole 64-byte
 * lines and widen 16 elements with one vpermw each (element k of a half into the high half of
 * dword k, the low half zeroed). Measured on Zen 5, 2 threads, matrices far beyond L3, at
 * 50-57 GB/s of read bandwidth: F16 30-35 GB/s with vcvtph2ps reading memory, 35-39 with it
 * converting registers, 37-40 this way; BF16 38-39 with vpmovzxwd + shift, 40-44 this way.
 * Same values, same order of additions: the bits of the plain loops. */
AVX512 static inline __m512i hi_halves(__m512i v, int upper)
{
    const __m512i lo = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6, 0, 5, 0, 4,
                                        0, 3, 0, 2, 0, 1, 0, 0, 0);
    return _mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, upper ? _mm512_add_epi16(lo, _mm512_set1_epi16(16)) : lo, v);
}

/* f32 from f16 bits in the high half of each dword, exact for finite values: the arithmetic
 * shift leaves the sign in bit 31 and the 15 exponent and mantissa bits in 27..13 (the and
 * clears the sign's copies), which read as an f32 of 2^-112 times the value, subnormals
 * included; the multiply restores the scale. Infinities and NaNs come out finite: callers
 * detect them. */
AVX512 static inline __m512 f16_hi_ps(__m512i d)
{
    __m512i m = _mm512_and_si512(_mm512_srai_epi32(d, 3), _mm512_set1_epi32((int)0x8FFFE000u));
    return _mm512_mul_ps(_mm512_castsi512_ps(m), _mm512_castsi512_ps(_mm512_set1_epi32(0x77800000))); /* 2^112 */
}

/* With vcvtph2ps, for rows holding infinities or NaNs (and the tails). */
AVX512 static float avx512_row_f16_cvt(const uint8_t *w, const float *x, int64_t n, int64_t i, __m512 s0, __m512 s1,
                                       __m512 s2, __m512 s3)
{
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(ld_f16x16(w + 2 * i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(ld_f16x16(w + 2 * i + 32), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(ld_f16x16(w + 2 * i + 64), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(ld_f16x16(w + 2 * i + 96), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(ld_f16x16(w + 2 * i), _mm512_loadu_ps(x + i), s0);
    float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) t += _cvtsh_ss(rd16(w + 2 * i)) * x[i];
    return t;
}

/* Whether the largest halves of a row, as signed and as unsigned words, show an exponent of all
 * ones (infinity, NaN): at least 0x7C00 signed when positive, 0xFC00 unsigned when negative. */
AVX512 static inline int f16_special(__m512i smax, __m512i umax)
{
    return (_mm512_cmpge_epi16_mask(smax, _mm512_set1_epi16(0x7C00)) |
            _mm512_cmpge_epu16_mask(umax, _mm512_set1_epi16((short)0xFC00))) != 0;
}

AVX512 static float avx512_row_f16(const void *row, const float *x, int64_t n)
{
    const uint8_t *w = row;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m512i smax = _mm512_set1_epi16(-32768), umax = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i a = _mm512_loadu_si512(w + 2 * i), b = _mm512_loadu_si512(w + 2 * i + 64);
        smax = _mm512_max_epi16(smax, _mm512_max_epi16(a, b));
        umax = _mm512_max_epu16(umax, _mm512_max_epu16(a, b));
        s0 = _mm512_fmadd_ps(f16_hi_ps(hi_halves(a, 0)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(f16_hi_ps(hi_halves(a, 1)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(f16_hi_ps(hi_halves(b, 0)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(f16_hi_ps(hi_halves(b, 1)), _mm512_loadu_ps(x + i + 48), s3);
    }
    if (f16_special(smax, umax)) {
        __m512 z = _mm512_setzero_ps();
        return avx512_row_f16_cvt(w, x, n, 0, z, z, z, z);
    }
    return avx512_row_f16_cvt(w, x, n, i, s0, s1, s2, s3);
}

AVX512 static inline __m512 ld_bf16x16(const uint8_t *p)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* The rest of a BF16 row from element i on, from accumulators s0..s3 (the row kernel's order). */
AVX512 static float avx512_row_bf16_from(const uint8_t *w, const float *x, int64_t n, int64_t i, __m512 s0, __m512 s1,
                                         __m512 s2, __m512 s3)
{
    for (; i + 64 <= n; i += 64) { /* a bf16 in a dword's high half is that f32 */
        __m512i a = _mm512_loadu_si512(w + 2 * i), b = _mm512_loadu_si512(w + 2 * i + 64);
        s0 = _mm512_fmadd_ps(_mm512_castsi512_ps(hi_halves(a, 0)), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_castsi512_ps(hi_halves(a, 1)), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_castsi512_ps(hi_halves(b, 0)), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_castsi512_ps(hi_halves(b, 1)), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(ld_bf16x16(w + 2 * i), _mm512_loadu_ps(x + i), s0);
    float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) t += citer_bf16_to_f32(rd16(w + 2 * i)) * x[i];
    return t;
}

AVX512 static float avx512_row_bf16(const void *row, const float *x, int64_t n)
{
    __m512 z = _mm512_setzero_ps();
    return avx512_row_bf16_from(row, x, n, 0, z, z, z, z);
}

/* Wide rows four at a time. A row's f32 x of over 4096 elements (16 KB) no longer stays in the
 * 48 KB L1 beside the streamed weights, and its misses slow the weights' stream: one x load
 * for four rows, each with the row kernel's own four accumulators (the same bits). Measured
 * through citer_matvec, F16, 2 threads, interleaved with row by row, at 47-52 GB/s of read
 * bandwidth: 2048x5632 20.1-21.1 -> 23.1-24.3 GB/s, 896x4864 22.5-23.4 -> 23.3-24.3 (a loop
 * without the infinity check: 8192 columns 18 -> 28-31); at 2048 and 4096 columns row by row
 * is faster (41 and 32 against 25 and 28). Wide F16 rows stay far below the bandwidth there. */
#define ROWS4_LOOP(WIDEN, CHECK)                                                                                   \
    for (; i + 64 <= n; i += 64) {                                                                             \
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16), x2 = _mm512_loadu_ps(x + i + 32), \
               x3 = _mm512_loadu_ps(x + i + 48);                                                                \
        _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {                                                  \
            const uint8_t *p = w + g * rb + 2 * i;                                                             \
            __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64);                                 \
            CHECK;                                                                                             \
            s[g][0] = _mm512_fmadd_ps(WIDEN(hi_halves(a, 0)), x0, s[g][0]);                                   \
            s[g][1] = _mm512_fmadd_ps(WIDEN(hi_halves(a, 1)), x1, s[g][1]);                                   \
            s[g][2] = _mm512_fmadd_ps(WIDEN(hi_halves(b, 0)), x2, s[g][2]);                                   \
            s[g][3] = _mm512_fmadd_ps(WIDEN(hi_halves(b, 1)), x3, s[g][3]);                                   \
        }                                                                                                      \
    }

AVX512 static void avx512_rows4_bf16(const void *rows, size_t rb, const float *x, int64_t n, float *y)
{
    const uint8_t *w = rows;
    __m512 s[4][4];
    for (int g = 0; g < 4; g++) s[g][0] = s[g][1] = s[g][2] = s[g][3] = _mm512_setzero_ps();
    int64_t i = 0;
    ROWS4_LOOP(_mm512_castsi512_ps, (void)0)
    for (int g = 0; g < 4; g++) y[g] = avx512_row_bf16_from(w + g * rb, x, n, i, s[g][0], s[g][1], s[g][2], s[g][3]);
}

AVX512 static void avx512_rows4_f16(const void *rows, size_t rb, const float *x, int64_t n, float *y)
{
    const uint8_t *w = rows;
    __m512 s[4][4];
    for (int g = 0; g < 4; g++) s[g][0] = s[g][1] = s[g][2] = s[g][3] = _mm512_setzero_ps();
    /* one detection for the four rows: per-row maxima took 8 registers, and the spills
     * halved the loop's speed */
    __m512i smax = _mm512_set1_epi16(-32768), umax = _mm512_setzero_si512();
    int64_t i = 0;
    ROWS4_LOOP(f16_hi_ps, (smax = _mm512_max_epi16(smax, _mm512_max_epi16(a, b)),
                           umax = _mm512_max_epu16(umax, _mm512_max_epu16(a, b))))
    int special = f16_special(smax, umax);
    __m512 z = _mm512_setzero_ps();
    for (int g = 0; g < 4; g++)
        y[g] = special ? avx512_row_f16_cvt(w + g * rb, x, n, 0, z, z, z, z)
                       : avx512_row_f16_cvt(w + g * rb, x, n, i, s[g][0], s[g][1], s[g][2], s[g][3]);
}
#undef ROWS4_LOOP

AVX512 static inline __m512 i8x16_ps(const uint8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

AVX512 static float avx512_row_q8_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t nb = n / QK, i = 0;
    for (; i + 2 <= nb; i += 2, b += 68, x += 64) {
        __m512 s0 = _mm512_mul_ps(i8x16_ps(b + 2), _mm512_loadu_ps(x));
        __m512 s1 = _mm512_mul_ps(i8x16_ps(b + 36), _mm512_loadu_ps(x + 32));
        s0 = _mm512_fmadd_ps(i8x16_ps(b + 18), _mm512_loadu_ps(x + 16), s0);
        s1 = _mm512_fmadd_ps(i8x16_ps(b + 52), _mm512_loadu_ps(x + 48), s1);
        acc0 = _mm512_fmadd_ps(s0, _mm512_set1_ps(h2f_512(b)), acc0);
        acc1 = _mm512_fmadd_ps(s1, _mm512_set1_ps(h2f_512(b + 34)), acc1);
    }
    if (i < nb) {
        __m512 s0 = _mm512_mul_ps(i8x16_ps(b + 2), _mm512_loadu_ps(x));
        s0 = _mm512_fmadd_ps(i8x16_ps(b + 18), _mm512_loadu_ps(x + 16), s0);
        acc0 = _mm512_fmadd_ps(s0, _mm512_set1_ps(h2f_512(b)), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* The 16 bytes of a Q4_0 block as (low nibbles - 8) and (high nibbles - 8) in f32. */
AVX512 static inline void q4_0_unpack(const uint8_t *qs, __m512 *lo, __m512 *hi)
{
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    const __m512i eight = _mm512_set1_epi32(8);
    *lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, _mm512_set1_epi32(15)), eight));
    *hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
}

AVX512 static float avx512_row_q4_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t nb = n / QK, i = 0;
    for (; i + 2 <= nb; i += 2, b += 36, x += 64) {
        __m512 l0, h0, l1, h1;
        q4_0_unpack(b + 2, &l0, &h0);
        q4_0_unpack(b + 20, &l1, &h1);
        __m512 s0 = _mm512_mul_ps(l0, _mm512_loadu_ps(x));
        __m512 s1 = _mm512_mul_ps(l1, _mm512_loadu_ps(x + 32));
        s0 = _mm512_fmadd_ps(h0, _mm512_loadu_ps(x + 16), s0);
        s1 = _mm512_fmadd_ps(h1, _mm512_loadu_ps(x + 48), s1);
        acc0 = _mm512_fmadd_ps(s0, _mm512_set1_ps(h2f_512(b)), acc0);
        acc1 = _mm512_fmadd_ps(s1, _mm512_set1_ps(h2f_512(b + 18)), acc1);
    }
    if (i < nb) {
        __m512 l0, h0;
        q4_0_unpack(b + 2, &l0, &h0);
        __m512 s0 = _mm512_mul_ps(l0, _mm512_loadu_ps(x));
        s0 = _mm512_fmadd_ps(h0, _mm512_loadu_ps(x + 16), s0);
        acc0 = _mm512_fmadd_ps(s0, _mm512_set1_ps(h2f_512(b)), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Q4_K: w = d*sc*q - dmin*mn, formed in registers (one fmsub) and dotted with x. */
AVX512 static float avx512_row_q4_k(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    const __m512i m15 = _mm512_set1_epi32(15);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QKK; i++, b += 144, x += QKK) {
        float d = h2f_512(b), dmin = h2f_512(b + 2);
        const uint8_t *qs = b + 16;
        for (int k = 0; k < 4; k++) {
            int sa, ma, sb, mb;
            kquant_scale_min(b + 4, 2 * k, &sa, &ma);
            kquant_scale_min(b + 4, 2 * k + 1, &sb, &mb);
            __m512 da = _mm512_set1_ps(d * (float)sa), na = _mm512_set1_ps(dmin * (float)ma);
            __m512 db = _mm512_set1_ps(d * (float)sb), nb = _mm512_set1_ps(dmin * (float)mb);
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k)));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k + 16)));
            const float *xa = x + 64 * k, *xb = xa + 32;
            __m512 w;
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v0, m15)), da, na);
            acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xa), acc0);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v1, m15)), da, na);
            acc1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xa + 16), acc1);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v0, 4)), db, nb);
            acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xb), acc0);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v1, 4)), db, nb);
            acc1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xb + 16), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Q5_K: as Q4_K, with the fifth bit of element l of sub-block i in bit i of qh[l]. */
AVX512 static float avx512_row_q5_k(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    const __m512i m15 = _mm512_set1_epi32(15), one = _mm512_set1_epi32(1);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QKK; i++, b += 176, x += QKK) {
        float d = h2f_512(b), dmin = h2f_512(b + 2);
        const uint8_t *qh = b + 16, *qs = b + 48;
        __m512i h0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qh));
        __m512i h1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + 16)));
        for (int k = 0; k < 4; k++) {
            int sa, ma, sb, mb;
            kquant_scale_min(b + 4, 2 * k, &sa, &ma);
            kquant_scale_min(b + 4, 2 * k + 1, &sb, &mb);
            __m512 da = _mm512_set1_ps(d * (float)sa), na = _mm512_set1_ps(dmin * (float)ma);
            __m512 db = _mm512_set1_ps(d * (float)sb), nb = _mm512_set1_ps(dmin * (float)mb);
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k)));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k + 16)));
            /* fifth bits of sub-blocks 2k and 2k+1, moved to bit 4 */
            __m512i ha0 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h0, 2 * k), one), 4);
            __m512i ha1 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h1, 2 * k), one), 4);
            __m512i hb0 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h0, 2 * k + 1), one), 4);
            __m512i hb1 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h1, 2 * k + 1), one), 4);
            const float *xa = x + 64 * k, *xb = xa + 32;
            __m512 w;
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_or_si512(_mm512_and_si512(v0, m15), ha0)), da, na);
            acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xa), acc0);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_or_si512(_mm512_and_si512(v1, m15), ha1)), da, na);
            acc1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xa + 16), acc1);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_or_si512(_mm512_srli_epi32(v0, 4), hb0)), db, nb);
            acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xb), acc0);
            w = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_or_si512(_mm512_srli_epi32(v1, 4), hb1)), db, nb);
            acc1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xb + 16), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Q6_K: for each 16-element chunk c of a half, one load each of ql[l], ql[32+l] and qh[l]
 * gives the four groups of 16 at offsets 0, 32, 64, 96 (+16c). */
AVX512 static float avx512_row_q6_k(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3), k32 = _mm512_set1_epi32(32);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QKK; i++, b += 210, x += QKK) {
        float d = h2f_512(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const float *xh = x + 128 * h;
            for (int c = 0; c < 2; c++) {
                __m512i la = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ql + 16 * c)));
                __m512i lb = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ql + 32 + 16 * c)));
                __m512i hv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + 16 * c)));
                __m512i q[4];
                q[0] = _mm512_or_si512(_mm512_and_si512(la, m15), _mm512_slli_epi32(_mm512_and_si512(hv, m3), 4));
                q[1] = _mm512_or_si512(_mm512_and_si512(lb, m15),
                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hv, 2), m3), 4));
                q[2] = _mm512_or_si512(_mm512_srli_epi32(la, 4),
                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hv, 4), m3), 4));
                q[3] = _mm512_or_si512(_mm512_srli_epi32(lb, 4), _mm512_slli_epi32(_mm512_srli_epi32(hv, 6), 4));
                for (int g = 0; g < 4; g++) {
                    __m512 w = _mm512_cvtepi32_ps(_mm512_sub_epi32(q[g], k32));
                    __m512 s = _mm512_set1_ps(d * (float)sc[8 * h + 2 * g + c]);
                    __m512 p = _mm512_mul_ps(w, _mm512_loadu_ps(xh + 32 * g + 16 * c));
                    if (g & 1) acc1 = _mm512_fmadd_ps(p, s, acc1);
                    else acc0 = _mm512_fmadd_ps(p, s, acc0);
                }
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Tails of d that are not a multiple of 16 use masked loads. */
AVX512 static void avx512_dot_rows(const float *q, const float *rows, size_t stride, int64_t n, int64_t d,
                                   float *out)
{
    __mmask16 tail = (__mmask16)((1u << (d & 15)) - 1);
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * stride;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        int64_t k = 0;
        for (; k + 32 <= d; k += 32) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + k), _mm512_loadu_ps(r + k), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + k + 16), _mm512_loadu_ps(r + k + 16), s1);
        }
        for (; k + 16 <= d; k += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + k), _mm512_loadu_ps(r + k), s0);
        if (tail) s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + k), _mm512_maskz_loadu_ps(tail, r + k), s1);
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
}

AVX512 static void avx512_axpy_rows(const float *a, const float *rows, size_t stride, int64_t n, int64_t d,
                                    float *out)
{
    int64_t k = 0;
    for (; k + 64 <= d; k += 64) {
        __m512 o0 = _mm512_loadu_ps(out + k), o1 = _mm512_loadu_ps(out + k + 16);
        __m512 o2 = _mm512_loadu_ps(out + k + 32), o3 = _mm512_loadu_ps(out + k + 48);
        for (int64_t i = 0; i < n; i++) {
            const float *r = rows + (size_t)i * stride + k;
            __m512 av = _mm512_set1_ps(a[i]);
            o0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(r), o0);
            o1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(r + 16), o1);
            o2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(r + 32), o2);
            o3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(r + 48), o3);
        }
        _mm512_storeu_ps(out + k, o0), _mm512_storeu_ps(out + k + 16, o1);
        _mm512_storeu_ps(out + k + 32, o2), _mm512_storeu_ps(out + k + 48, o3);
    }
    for (; k < d; k += 16) {
        __mmask16 m = d - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (d - k)) - 1);
        __m512 o = _mm512_maskz_loadu_ps(m, out + k);
        for (int64_t i = 0; i < n; i++)
            o = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), _mm512_maskz_loadu_ps(m, rows + (size_t)i * stride + k), o);
        _mm512_mask_storeu_ps(out + k, m, o);
    }
}

/* ---- int8 activations (AVX-512 VNNI) ----
 * vpdpbusd multiplies unsigned by signed bytes and adds groups of 4 into int32 lanes. The
 * activations are the signed side; weights are made unsigned (Q8_0: q+128 by flipping the sign
 * bit; Q4_0: the raw nibble, q+8) and the accumulator starts from the matching correction the
 * activation quantizer stored per group of 4 (-128 or -8 times the group's sum). Two blocks per
 * 512-bit register: lanes 0-7 the first, 8-15 the second, scaled by [d0 x8, d1 x8]. */

/* Odd last blocks, in plain C: GCC 12 miscompiles this signed x signed byte dot when it may
 * vectorize it with VNNI enabled (it emits the unsigned x signed vpdpbusd), so these stay
 * outside the VNNI-targeted functions. */
__attribute__((noinline)) static float tail_q8_0(const uint8_t *b, const citer_xq8 *x, int64_t i)
{
    int32_t s = 0;
    for (int k = 0; k < QK; k++) s += (int8_t)b[2 + k] * x->q[i * QK + k];
    return citer_f16_to_f32(rd16(b)) * x->d[i] * (float)s;
}

__attribute__((noinline)) static float tail_q4_0(const uint8_t *b, const citer_xq8 *x, int64_t i)
{
    const int8_t *q = x->q + i * QK;
    int32_t s = 0;
    for (int k = 0; k < 16; k++) s += ((b[2 + k] & 15) - 8) * q[k] + ((b[2 + k] >> 4) - 8) * q[k + 16];
    return citer_f16_to_f32(rd16(b)) * x->d[i] * (float)s;
}

VNNI static inline __m512 scale_pair(const uint8_t *h0, const uint8_t *h1)
{
    __m512 a = _mm512_set1_ps(_cvtsh_ss(rd16(h0)));
    return _mm512_mask_broadcastss_ps(a, 0xFF00, _mm_set_ss(_cvtsh_ss(rd16(h1))));
}

/* The f16 scales of 8 blocks `stride` bytes apart, times the activation scales of the same
 * blocks: one conversion for 8 blocks (the scales' handling otherwise costs more than the dot
 * products). Pair p's [s(2p) x8, s(2p+1) x8] is then one permute. */
VNNI static inline __m512 scales8(const uint8_t *b, size_t stride, const float *dx)
{
    uint64_t lo = 0, hi = 0;
    for (int k = 0; k < 4; k++) {
        lo |= (uint64_t)rd16(b + stride * k) << 16 * k;
        hi |= (uint64_t)rd16(b + stride * (k + 4)) << 16 * k;
    }
    __m256 d = _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
    return _mm512_castps256_ps512(_mm256_mul_ps(d, _mm256_loadu_ps(dx)));
}

VNNI static inline __m512 pair_scale(__m512 s8, int p)
{
    __m512i idx = _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1,
                                   2 * p + 1, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p);
    return _mm512_permutexvar_ps(idx, s8);
}

/* Integer dot of blocks i and i+1 (at b) with the activations: 8 lanes per block. */
VNNI static inline __m512i q8_0_pair(const uint8_t *b, const citer_xq8 *x, int64_t i)
{
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b + 2))),
                                   _mm256_loadu_si256((const __m256i *)(b + 36)), 1);
    w = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
    return _mm512_dpbusd_epi32(_mm512_loadu_si512(x->c128 + 8 * i), w, _mm512_loadu_si512(x->q + QK * i));
}

VNNI static inline __m512i q4_0_pair(const uint8_t *b, const citer_xq8 *x, int64_t i)
{
    /* [b0 low nibbles, b1 low, b0 high, b1 high] -> [b0 low, b0 high, b1 low, b1 high]: element order */
    const __m512i order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b + 2))),
                                        _mm_loadu_si128((const __m128i *)(b + 20)), 1);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    w = _mm512_permutexvar_epi64(order, _mm512_and_si512(w, _mm512_set1_epi8(15)));
    return _mm512_dpbusd_epi32(_mm512_loadu_si512(x->c8 + 8 * i), w, _mm512_loadu_si512(x->q + QK * i));
}

/* Row dot over blocks of `bs` bytes: groups of 8 blocks, then pairs, then a last odd block. */
#define VNNI_ROW(PAIR, bs, TAIL)                                                                    \
    const uint8_t *b = row;                                                                        \
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;                                                \
    int64_t nb = n / QK, i = 0;                                                                    \
    for (; i + 8 <= nb; i += 8, b += 8 * (bs)) {                                                   \
        __m512 s8 = scales8(b, bs, x->d + i);                                                      \
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(b, x, i)), pair_scale(s8, 0), acc0);        \
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(b + 2 * (bs), x, i + 2)), pair_scale(s8, 1), acc1); \
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(b + 4 * (bs), x, i + 4)), pair_scale(s8, 2), acc0); \
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(b + 6 * (bs), x, i + 6)), pair_scale(s8, 3), acc1); \
    }                                                                                              \
    for (; i + 2 <= nb; i += 2, b += 2 * (bs)) {                                                   \
        __m512 sc = _mm512_mul_ps(scale_pair(b, b + (bs)), _mm512_loadu_ps(x->dl + 8 * i));        \
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(b, x, i)), sc, acc0);                       \
    }                                                                                              \
    float t = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));                                     \
    if (i < nb) t += TAIL(b, x, i);                                                                \
    return t;

VNNI static float vnni_q8_0(const void *row, const citer_xq8 *x, int64_t n) { VNNI_ROW(q8_0_pair, 34, tail_q8_0) }
VNNI static float vnni_q4_0(const void *row, const citer_xq8 *x, int64_t n) { VNNI_ROW(q4_0_pair, 18, tail_q4_0) }

/* K-quants with int8 activations, the bits of sdot8_q4_k/q5_k/q6_k (kernels.c), which define
 * the order: a super-block is 4 registers of 64 elements (each register's 16 lanes one group
 * of 4), the float products added lane by lane into one accumulator per register, the
 * minimums into 8 lanes (one per sub-block), then the same fixed tree at the end. */
VNNI static inline float kq_reduce(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m256 accm)
{
    __m512 a = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    __m256 h = _mm256_sub_ps(_mm256_add_ps(_mm512_castps512_ps256(a), hi), accm);
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
}

/* The 8 6-bit scales or minimums of a Q4_K/Q5_K block (kquant_scale_min) as floats: sc from
 * bytes 0-3 (low 6 bits) and 8-11 (low nibbles, top bits from bytes 0-3); mn from 4-7 and 8-11's
 * high nibbles. */
VNNI static inline void kq_scales(const uint8_t *s, __m256 *sc, __m256 *mn)
{
    uint32_t a = rd32(s), b = rd32(s + 4), c = rd32(s + 8);
    uint64_t vs = (a & 0x3f3f3f3f) | (uint64_t)((c & 0x0f0f0f0f) | (a >> 2 & 0x30303030)) << 32;
    uint64_t vm = (b & 0x3f3f3f3f) | (uint64_t)((c >> 4 & 0x0f0f0f0f) | (b >> 2 & 0x30303030)) << 32;
    *sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)vs)));
    *mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)vm)));
}

/* acc += (float)dot * scale lanes [w[2p] x8, w[2p+1] x8] */
#define KQ_ACC(acc, dot, w, p) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(dot), pair_scale(w, p)))

/* Q5_K: bit 2p (2p+1) of qh[l] is the fifth bit of element l of sub-block 2p (2p+1): register
 * p's bytes 0-31 test bit 2p of qh, bytes 32-63 bit 2p+1. */
VNNI static inline __m512i q5_hi(__m512i w, __m512i qh, int p)
{
    __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * p)), _mm256_set1_epi8((char)(2 << 2 * p)), 1);
    return _mm512_mask_add_epi8(w, _mm512_test_epi8_mask(qh, bit), w, _mm512_set1_epi8(16));
}

/* Q6_K: half h is ql[64h..+64) and qh[32h..+32); elements 0-63 of the half are ql's low nibbles
 * with qh bits 0-1 (bytes 0-31), 2-3 (32-63); elements 64-127 the high nibbles with bits 4-5,
 * 6-7. Q6_HALF: half h's weights of elements 128h..+64 into w0, 128h+64..+64 into w1. */
#define Q6_HALF(h, w0, w1)                                                                         \
    __m512i l##h = _mm512_loadu_si512(b + 64 * (h));                                               \
    __m256i qh##h = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * (h)));                     \
    __m512i hz##h = _mm512_inserti64x4(_mm512_castsi256_si512(qh##h), _mm256_srli_epi16(qh##h, 2), 1); \
    __m512i w0 = _mm512_or_si512(_mm512_and_si512(l##h, m4), _mm512_and_si512(_mm512_slli_epi16(hz##h, 4), m30)); \
    __m512i w1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l##h, 4), m4), _mm512_and_si512(hz##h, m30));

/* A K-quant row times T tokens into out[t*ostride] (kq_rows; T = 1: the matvec kernels below):
 * each super-block's weights unpacked and scaled once, then for every token the operations of
 * sdot8_q4_k/q5_k/q6_k in their order, so each output has their bits; KQ_TOK tokens'
 * accumulators at a time. Q4_K and Q5_K: qs holds sub-blocks 2k, 2k+1 as the low, high nibbles
 * of 32 bytes; q5_hi adds Q5_K's fifth bits to register p (sub-blocks 2p, 2p+1). */
enum { KQ_TOK = 8 };

VNNI static inline __attribute__((always_inline)) void kq45_rows(int q5, const uint8_t *row, const citer_xq8 *x,
                                                                 int64_t T, int64_t n, float *out, int64_t ostride)
{
    const size_t bs = q5 ? 176 : 144, qs_off = q5 ? 48 : 16;
    const __m512i m4 = _mm512_set1_epi8(15), z = _mm512_setzero_si512();
    for (int64_t t0 = 0; t0 < T; t0 += KQ_TOK) {
        int nt = T - t0 < KQ_TOK ? (int)(T - t0) : KQ_TOK;
        __m512 a[KQ_TOK][4];
        __m256 accm[KQ_TOK];
        for (int t = 0; t < nt; t++) {
            a[t][0] = a[t][1] = a[t][2] = a[t][3] = _mm512_setzero_ps();
            accm[t] = _mm256_setzero_ps();
        }
        const uint8_t *b = row;
        for (int64_t i = 0; i < n / QKK; i++, b += bs) {
            __m256 sc, mn;
            kq_scales(b + 4, &sc, &mn);
            __m256 dsc = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(rd16(b))), sc);
            __m256 dmn = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(rd16(b + 2))), mn);
            __m512i v0 = _mm512_loadu_si512(b + qs_off), v1 = _mm512_loadu_si512(b + qs_off + 64);
            __m512i l0 = _mm512_and_si512(v0, m4), h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
            __m512i l1 = _mm512_and_si512(v1, m4), h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
            __m512i w0 = _mm512_shuffle_i64x2(l0, h0, 0x44), w1 = _mm512_shuffle_i64x2(l0, h0, 0xEE);
            __m512i w2 = _mm512_shuffle_i64x2(l1, h1, 0x44), w3 = _mm512_shuffle_i64x2(l1, h1, 0xEE);
            if (q5) {
                __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16)));
                w0 = q5_hi(w0, qh, 0), w1 = q5_hi(w1, qh, 1), w2 = q5_hi(w2, qh, 2), w3 = q5_hi(w3, qh, 3);
            }
            for (int t = 0; t < nt; t++) {
                const citer_xq8 *xt = &x[t0 + t];
                __m512 w = _mm512_castps256_ps512(_mm256_mul_ps(dsc, _mm256_loadu_ps(xt->d + 8 * i)));
                accm[t] = _mm256_add_ps(accm[t], _mm256_mul_ps(dmn, _mm256_loadu_ps(xt->sx + 8 * i)));
                const int8_t *q = xt->q + QKK * i;
                KQ_ACC(a[t][0], _mm512_dpbusd_epi32(z, w0, _mm512_loadu_si512(q)), w, 0);
                KQ_ACC(a[t][1], _mm512_dpbusd_epi32(z, w1, _mm512_loadu_si512(q + 64)), w, 1);
                KQ_ACC(a[t][2], _mm512_dpbusd_epi32(z, w2, _mm512_loadu_si512(q + 128)), w, 2);
                KQ_ACC(a[t][3], _mm512_dpbusd_epi32(z, w3, _mm512_loadu_si512(q + 192)), w, 3);
            }
        }
        for (int t = 0; t < nt; t++) out[(t0 + t) * ostride] = kq_reduce(a[t][0], a[t][1], a[t][2], a[t][3], accm[t]);
    }
}

/* Q6_K: the weights stay unsigned (q, not q-32): each lane starts from -32 times its group's
 * sum of activations (c128 / 4). Lane l of register p is scale group 4p + l/4. */
VNNI static inline __attribute__((always_inline)) void kq6_rows(const uint8_t *row, const citer_xq8 *x, int64_t T,
                                                                int64_t n, float *out, int64_t ostride)
{
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i quad = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int64_t t0 = 0; t0 < T; t0 += KQ_TOK) {
        int nt = T - t0 < KQ_TOK ? (int)(T - t0) : KQ_TOK;
        __m512 a[KQ_TOK][4];
        for (int t = 0; t < nt; t++) a[t][0] = a[t][1] = a[t][2] = a[t][3] = _mm512_setzero_ps();
        const uint8_t *b = row;
        for (int64_t i = 0; i < n / QKK; i++, b += 210) {
            __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192))));
            __m512 dsc = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(rd16(b + 208))), sc);
            Q6_HALF(0, w0, w1)
            Q6_HALF(1, w2, w3)
            const __m512i wv[4] = {w0, w1, w2, w3};
            for (int t = 0; t < nt; t++) {
                const citer_xq8 *xt = &x[t0 + t];
                __m512 dx = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(xt->d + 8 * i)));
                __m512 w = _mm512_mul_ps(dsc, dx);
                _Pragma("GCC unroll 4")
                for (int p = 0; p < 4; p++) {
                    __m512i c = _mm512_srai_epi32(_mm512_loadu_si512(xt->c128 + 64 * i + 16 * p), 2);
                    __m512i s = _mm512_dpbusd_epi32(c, wv[p], _mm512_loadu_si512(xt->q + QKK * i + 64 * p));
                    __m512 scp = _mm512_permutexvar_ps(_mm512_add_epi32(quad, _mm512_set1_epi32(4 * p)), w);
                    a[t][p] = _mm512_add_ps(a[t][p], _mm512_mul_ps(_mm512_cvtepi32_ps(s), scp));
                }
            }
        }
        for (int t = 0; t < nt; t++)
            out[(t0 + t) * ostride] = kq_reduce(a[t][0], a[t][1], a[t][2], a[t][3], _mm256_setzero_ps());
    }
}

VNNI static float vnni_q4_k(const void *row, const citer_xq8 *x, int64_t n)
{
    float y;
    kq45_rows(0, row, x, 1, n, &y, 1);
    return y;
}

VNNI static float vnni_q5_k(const void *row, const citer_xq8 *x, int64_t n)
{
    float y;
    kq45_rows(1, row, x, 1, n, &y, 1);
    return y;
}

VNNI static float vnni_q6_k(const void *row, const citer_xq8 *x, int64_t n)
{
    float y;
    kq6_rows(row, x, 1, n, &y, 1);
    return y;
}

VNNI static void vnni_kq_rows(int type, const uint8_t *row, const citer_xq8 *x, int64_t T, int64_t n, float *out,
                              int64_t ostride)
{
    if (type == GGML_Q4_K) kq45_rows(0, row, x, T, n, out, ostride);
    else if (type == GGML_Q5_K) kq45_rows(1, row, x, T, n, out, ostride);
    else kq6_rows(row, x, T, n, out, ostride);
}

/* The activation quantizer of kernels.c (quantize_into) with the same arithmetic, so the same
 * bits: amax as the exact maximum of |x|, d = amax/127, q = round-to-nearest-even(x * (1/d));
 * the group sums of 4 as a vpdpbusd with ones. quantize_block: one block's q and d. */
VNNI static inline __m256i quantize_block(const float *x, float *d_out)
{
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float d = amax / 127, id = d > 0 ? 1 / d : 0;
    __m512 vid = _mm512_set1_ps(id);
    __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));
    __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));
    *d_out = d;
    return _mm256_set_m128i(q1, q0);
}

/* The 8 group sums of 4 of a block's q (a vpdpbusd with ones). */
VNNI static inline __m256i group_sums(__m256i qq)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), qq);
}

VNNI static inline int32_t hsum8(__m256i v) { return _mm512_reduce_add_epi32(_mm512_zextsi256_si512(v)); }

VNNI static void vnni_quantize(citer_xq8 *q, const float *x, int64_t n)
{
    q->n = n;
    for (int64_t i = 0; i < n / QK; i++) {
        float d;
        __m256i qq = quantize_block(x + i * QK, &d);
        _mm256_storeu_si256((__m256i *)(q->q + i * QK), qq);
        q->d[i] = d;
        __m256i sum = group_sums(qq);
        _mm256_storeu_si256((__m256i *)(q->c128 + 8 * i), _mm256_mullo_epi32(sum, _mm256_set1_epi32(-128)));
        _mm256_storeu_si256((__m256i *)(q->c8 + 8 * i), _mm256_mullo_epi32(sum, _mm256_set1_epi32(-8)));
        int32_t all = hsum8(sum);
        q->sx[i] = d * (float)all;
        q->cb[i] = -128 * all;
        _mm256_storeu_ps(q->dl + 8 * i, _mm256_set1_ps(d));
    }
}

/* Small-batch matmul with int8 activations, 16 rows x 1 token per 512-bit register: lane i
 * accumulates row i of a set of 16 rows. Each block of the 16 rows is transposed once (per
 * column chunk, into an L1 buffer) so that register g holds dword g (elements 4g..4g+3) of
 * every row, made unsigned (Q8_0 + 128, or the Q4_0 nibbles; the activation side starts from
 * the matching correction). Then per token, 8 vpdpbusd, each with the token's 4 bytes of that
 * group broadcast from memory inside the instruction, give the block's integer dot products
 * of all 16 rows; the transposed weights stay in registers for up to 8 tokens. Then, block by
 * block, t += (dw*dx)*(float)s as sdot8_q8_0/sdot8_q4_0 compute it: each output has the bits
 * of the scalar int8 matvec (and is within f32 rounding of the VNNI matvec, which sums in
 * another order). */
/* I8_TOK tokens per pass over a chunk of I8_CHUNK transposed blocks (32 x 576 B = 18 KB, in L1);
 * PACKED_BLOCK: a block of 16 rows in a packed matrix (512 B of weights, 32 B of f16 scales) */
enum { I8_TOK = 8, I8_CHUNK = 32, PACKED_BLOCK = 544 };


typedef struct { /* the T tokens block by block: one pointer reaches all of them */
    int64_t T, nb;
    int8_t *q;          /* [nb][T][32]: the tokens' quantized elements */
    int32_t *c128, *c8; /* [nb][T]: -128 and -8 times the token's sum over the block */
    float *d;           /* [nb][T]: the token's scale of the block */
} i8_tokens;

VNNI static void *vnni_i8_prep(int64_t T, int64_t n)
{
    int64_t nb = n / QK;
    i8_tokens *p = malloc(sizeof *p + (QK + 2 * sizeof(int32_t) + sizeof(float)) * (size_t)(T * nb));
    if (!p) abort();
    p->T = T, p->nb = nb;
    p->c128 = (int32_t *)(p + 1);
    p->c8 = p->c128 + T * nb;
    p->d = (float *)(p->c8 + T * nb);
    p->q = (int8_t *)(p->d + T * nb);
    return p;
}

/* Blocks [b0, b1) of token t (x: the token's n floats) quantized straight into their places:
 * vnni_quantize's q and d, its group sums added up per block. */
VNNI static void vnni_i8_quantize_blocks(void *prep, const float *x, int64_t t, int64_t b0, int64_t b1)
{
    i8_tokens *p = prep;
    int64_t T = p->T;
    for (int64_t i = b0; i < b1; i++) {
        float d;
        __m256i qq = quantize_block(x + i * QK, &d);
        _mm256_storeu_si256((__m256i *)(p->q + (i * T + t) * QK), qq);
        int32_t sum = hsum8(group_sums(qq));
        p->c128[i * T + t] = -128 * sum;
        p->c8[i * T + t] = -8 * sum;
        p->d[i * T + t] = d;
    }
}

/* Transpose block b of 16 rows into o: an 8x8 dword transpose in each 256-bit half (rows
 * paired so that the halves come out in row order), then the scales. */
VNNI static inline __attribute__((always_inline)) void repack16(int q8, const uint8_t *const row[16], size_t bs,
                                                                int64_t b, uint8_t *oq, float *od)
{
    static const int lo_row[8] = {0, 1, 2, 3, 8, 9, 10, 11}, hi_row[8] = {4, 5, 6, 7, 12, 13, 14, 15};
    __m512i z[8], tl[4], th[4];
    if (q8) {
        const __m512i sign = _mm512_set1_epi8((char)0x80);
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) {
            const uint8_t *lo = row[lo_row[k]] + (size_t)b * bs + 2, *hi = row[hi_row[k]] + (size_t)b * bs + 2;
            z[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                                      _mm256_loadu_si256((const __m256i *)hi), 1);
            z[k] = _mm512_xor_si512(z[k], sign);
        }
    } else {
        const __m512i m15 = _mm512_set1_epi8(15);
        /* 64-bit lanes [lo 0-7, lo 8-15, hi 0-7, hi 8-15] -> [lo, lo >> 4, hi, hi >> 4] */
        const __m512i order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) {
            const uint8_t *lo = row[lo_row[k]] + (size_t)b * bs + 2, *hi = row[hi_row[k]] + (size_t)b * bs + 2;
            __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                                _mm_loadu_si128((const __m128i *)hi), 1);
            __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
            z[k] = _mm512_and_si512(_mm512_permutexvar_epi64(order, w), m15);
        }
    }
    _Pragma("GCC unroll 16")
    for (int m = 0; m < 4; m++) {
        tl[m] = _mm512_unpacklo_epi32(z[2 * m], z[2 * m + 1]);
        th[m] = _mm512_unpackhi_epi32(z[2 * m], z[2 * m + 1]);
    }
    /* A_p, B_p: 128-bit lanes [dword p, dword p+4] of rows 0-3 then 4-7 (A) and 8-11 then 12-15 (B) */
    __m512i A[4], B[4];
    A[0] = _mm512_unpacklo_epi64(tl[0], tl[1]), A[1] = _mm512_unpackhi_epi64(tl[0], tl[1]);
    A[2] = _mm512_unpacklo_epi64(th[0], th[1]), A[3] = _mm512_unpackhi_epi64(th[0], th[1]);
    B[0] = _mm512_unpacklo_epi64(tl[2], tl[3]), B[1] = _mm512_unpackhi_epi64(tl[2], tl[3]);
    B[2] = _mm512_unpacklo_epi64(th[2], th[3]), B[3] = _mm512_unpackhi_epi64(th[2], th[3]);
    _Pragma("GCC unroll 16")
    for (int p = 0; p < 4; p++) {
        _mm512_storeu_si512(oq + 64 * p, _mm512_shuffle_i32x4(A[p], B[p], 0x88));
        _mm512_storeu_si512(oq + 64 * (p + 4), _mm512_shuffle_i32x4(A[p], B[p], 0xDD));
    }
    /* the 16 f16 scales packed in registers (16 narrow stores read back as one vector would
     * stall store forwarding) */
    long long h[4];
    _Pragma("GCC unroll 16")
    for (int q = 0; q < 4; q++) {
        const uint8_t *r0 = row[4 * q] + (size_t)b * bs, *r1 = row[4 * q + 1] + (size_t)b * bs;
        const uint8_t *r2 = row[4 * q + 2] + (size_t)b * bs, *r3 = row[4 * q + 3] + (size_t)b * bs;
        h[q] = (long long)((uint64_t)rd16(r0) | (uint64_t)rd16(r1) << 16 | (uint64_t)rd16(r2) << 32 | (uint64_t)rd16(r3) << 48);
    }
    if (od) _mm512_storeu_ps(od, _mm512_cvtph_ps(_mm256_setr_epi64x(h[0], h[1], h[2], h[3])));
    else _mm256_storeu_si256((__m256i *)(oq + 512), _mm256_setr_epi64x(h[0], h[1], h[2], h[3])); /* packed: f16 */
}

/* acc + the dot products of w's unsigned bytes with the 4 signed bytes at p repeated, the load
 * folded into the instruction as a broadcast (GCC 12 emits a separate vpbroadcastd for
 * _mm512_set1_epi32 of a load: twice the instructions in the inner loop) */
VNNI static inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t *p)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
}

/* What i8_pass reads: a chunk transposed into a buffer (512 B a block, f32 scales apart) from
 * Q4_0 or Q8_0 rows, or a packed Q8_0 matrix (PACKED_BLOCK bytes a block, f16 scales inside) */
enum { I8_Q4_0, I8_Q8_0, I8_PACKED };

/* Blocks [b0, b0+nc) of 16 rows, transposed at wq with their scales at wd (16 floats a block;
 * I8_PACKED: in the blocks), for tokens t0..t0+nt-1, added to acc[0..nt) (stored there, from
 * zero, when b0 is 0). */
VNNI static inline __attribute__((always_inline)) void i8_pass(int kind, int nt, const uint8_t *wq, const float *wd,
                                                               int64_t b0, int64_t nc, const i8_tokens *tk, int64_t t0,
                                                               __m512 *acc, const char *pf)
{
    int q8 = kind != I8_Q4_0;
    const size_t wstride = kind == I8_PACKED ? PACKED_BLOCK : 512;
    int64_t T = tk->T;
    int two = nt <= 4; /* few tokens: two chains per token hide vpdpbusd's latency */
    __m512 a[I8_TOK];
    _Pragma("GCC unroll 16")
    for (int t = 0; t < nt; t++) a[t] = b0 ? acc[t] : _mm512_setzero_ps();
    for (int64_t b = 0; b < nc; b++, wq += wstride, wd += 16) {
        if (pf) /* the next rows' block, block by block (at once they stall the stream) */
            _Pragma("GCC unroll 16")
            for (int o = 0; o < (int)wstride; o += 64) _mm_prefetch(pf + (size_t)b * wstride + o, _MM_HINT_T1);
        int64_t at = (b0 + b) * T + t0; /* token t0 of this block */
        const int32_t *cs = (q8 ? tk->c128 : tk->c8) + at;
        const float *ds = tk->d + at;
        const int8_t *xq = tk->q + at * QK;
        __m512i s[I8_TOK], s2[I8_TOK];
        _Pragma("GCC unroll 16")
        for (int t = 0; t < nt; t++) s[t] = _mm512_set1_epi32(cs[t]), s2[t] = _mm512_setzero_si512();
        _Pragma("GCC unroll 16")
        for (int g = 0; g < 8; g++) {
            __m512i wg = _mm512_loadu_si512(wq + 64 * g);
            _Pragma("GCC unroll 16")
            for (int t = 0; t < nt; t++) {
                if (two && (g & 1)) s2[t] = dpbusd_bcast(s2[t], wg, xq + t * QK + 4 * g);
                else s[t] = dpbusd_bcast(s[t], wg, xq + t * QK + 4 * g);
            }
        }
        __m512 dw = kind == I8_PACKED ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wq + 512))) : _mm512_loadu_ps(wd);
        _Pragma("GCC unroll 16")
        for (int t = 0; t < nt; t++) {
            __m512i st = two ? _mm512_add_epi32(s[t], s2[t]) : s[t];
            a[t] = _mm512_add_ps(a[t], _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(ds[t])), _mm512_cvtepi32_ps(st)));
        }
    }
    _Pragma("GCC unroll 16")
    for (int t = 0; t < nt; t++) acc[t] = a[t];
}

#define I8_PASSES(kind)                                                                \
    switch (nt) {                                                                      \
    case 1: i8_pass(kind, 1, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 2: i8_pass(kind, 2, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 3: i8_pass(kind, 3, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 4: i8_pass(kind, 4, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 5: i8_pass(kind, 5, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 6: i8_pass(kind, 6, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    case 7: i8_pass(kind, 7, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                      \
    default: i8_pass(kind, 8, wq, wd, c0, nc, tk, t0, acc + t0, t0 ? NULL : pf); break;                     \
    }

/* The sets of 16 rows [g0, g1) of a Q8_0 or Q4_0 matrix (w, row_bytes), or of a packed Q8_0
 * matrix (pk), times the prepared tokens. */
VNNI static void i8_matmul_sets(int q8, const uint8_t *w, size_t row_bytes, const uint8_t *pk, int64_t rows, int64_t g0,
                                int64_t g1, const void *prep, int64_t T, int64_t n, float *Y)
{
    const i8_tokens *tk = prep;
    int64_t nb = n / QK;
    size_t bs = q8 ? 34 : 18;
    /* a chunk transposed (unpacked matrices only) */
    uint8_t *bufq = pk ? NULL : aligned_alloc(64, (size_t)512 * I8_CHUNK);
    float *bufd = pk ? NULL : aligned_alloc(64, sizeof(float) * 16 * I8_CHUNK);
    __m512 *acc = aligned_alloc(64, sizeof(__m512) * (size_t)T);
    if ((!pk && (!bufq || !bufd)) || !acc) abort();
    int64_t end = 16 * g1 < rows ? 16 * g1 : rows;
    /* each set of 16 rows through all its column chunks (the tokens stay in L2), while the
     * next set's rows are prefetched to L2 block by block: the weights stream from memory
     * during the arithmetic rather than after it (bench_smallbatch: 8 tokens on 8960 x 1536
     * Q8_0 in 1.0 ms with the prefetches of a chunk issued at once, 0.7-0.76 ms spread) */
    for (int64_t set = g0; set < g1; set++) {
        int64_t r0 = 16 * set;
        const uint8_t *row[16] = {0};
        if (!pk)
            for (int r = 0; r < 16; r++) /* past the range: its last row again, results dropped */
                row[r] = w + (size_t)(r0 + r < end ? r0 + r : end - 1) * row_bytes;
        for (int64_t c0 = 0; c0 < nb; c0 += I8_CHUNK) {
            int64_t nc = nb - c0 < I8_CHUNK ? nb - c0 : I8_CHUNK;
            const uint8_t *wq = bufq;
            const float *wd = bufd;
            const char *pf = NULL; /* packed: the next set's chunk, prefetched during the first pass */
            if (pk) { /* already transposed, the scales converted as the blocks are read */
                wq = pk + (size_t)(set * nb + c0) * PACKED_BLOCK;
                /* up to 4 tokens the arithmetic is light and the hardware prefetchers keep up
                 * alone: the route bench's 2- and 3-token appends took 1.25-1.3 decode steps
                 * with these prefetches, 1.0-1.15 without them (6 and 8 tokens: the reverse) */
                if (set + 1 < g1 && T > 4) pf = (const char *)pk + (size_t)((set + 1) * nb + c0) * PACKED_BLOCK;
            } else {
                /* block by block, the next set's rows are requested (a block start every 34 or
                 * 18 bytes touches every cache line) */
                int64_t np = end - (r0 + 16) < 16 ? end - (r0 + 16) : 16;
                const char *next = (const char *)w + (size_t)(r0 + 16) * row_bytes;
                for (int64_t b = 0; b < nc; b++) {
                    if (q8) repack16(1, row, bs, c0 + b, bufq + 512 * b, bufd + 16 * b);
                    else repack16(0, row, bs, c0 + b, bufq + 512 * b, bufd + 16 * b);
                    for (int64_t r = 0; r < np; r++)
                        _mm_prefetch(next + (size_t)r * row_bytes + (size_t)(c0 + b) * bs, _MM_HINT_T1);
                }
            }
            for (int64_t t0 = 0; t0 < T; t0 += I8_TOK) {
                int nt = T - t0 < I8_TOK ? (int)(T - t0) : I8_TOK;
                if (pk) I8_PASSES(I8_PACKED) else if (q8) I8_PASSES(I8_Q8_0) else I8_PASSES(I8_Q4_0)
            }
        }
        __mmask16 m = end - r0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (end - r0)) - 1);
        for (int64_t t = 0; t < T; t++) _mm512_mask_storeu_ps(Y + t * rows + r0, m, acc[t]);
    }
    free(bufq), free(bufd), free(acc);
}

VNNI static void vnni_i8_matmul(int type, const uint8_t *w, size_t row_bytes, int64_t rows, int64_t g0, int64_t g1,
                                const void *prep, int64_t T, int64_t n, float *Y)
{
    i8_matmul_sets(type == GGML_Q8_0, w, row_bytes, NULL, rows, g0, g1, prep, T, n, Y);
}

VNNI static void vnni_packed_matmul(const uint8_t *pk, int64_t rows, int64_t s0, int64_t s1, const void *prep, int64_t T,
                                    int64_t n, float *Y)
{
    i8_matmul_sets(1, NULL, 0, pk, rows, s0, s1, prep, T, n, Y);
}

/* Pack sets [s0, s1) of 16 Q8_0 rows: the transposition of the batch kernel, stored. */
VNNI static void vnni_pack_q8_0(const uint8_t *w, size_t row_bytes, int64_t s0, int64_t s1, int64_t nb, uint8_t *dst)
{
    for (int64_t set = s0; set < s1; set++) {
        const uint8_t *row[16];
        for (int r = 0; r < 16; r++) row[r] = w + (size_t)(16 * set + r) * row_bytes;
        for (int64_t b = 0; b < nb; b++) repack16(1, row, 34, b, dst + (size_t)(set * nb + b) * PACKED_BLOCK, NULL);
    }
}

/* Matvec of packed sets [s0, s1): per set one register of 16 rows, 4 blocks at a time (8
 * independent vpdpbusd chains), then t += (dw*dx)*(float)s block by block in order: the bits
 * of sdot8_q8_0, row by row. */
VNNI static void vnni_packed_matvec(const uint8_t *pk, int64_t s0, int64_t s1, int64_t nb, const citer_xq8 *x, float *y)
{
    const int32_t *cb = x->cb;
    for (int64_t set = s0; set < s1; set++) {
        const uint8_t *p = pk + (size_t)(set * nb) * PACKED_BLOCK;
        __m512 a = _mm512_setzero_ps();
        int64_t b = 0;
        for (; b + 4 <= nb; b += 4) {
            __m512i s[4], s2[4];
            /* block by block in address order (the hardware prefetchers follow it; the 4
             * blocks' chains still overlap out of order) */
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                const uint8_t *blk = p + (size_t)(b + k) * PACKED_BLOCK;
                const int8_t *xq = x->q + (b + k) * QK;
                s[k] = _mm512_set1_epi32(cb[b + k]), s2[k] = _mm512_setzero_si512();
                _Pragma("GCC unroll 8")
                for (int g = 0; g < 8; g += 2) {
                    s[k] = dpbusd_bcast(s[k], _mm512_loadu_si512(blk + 64 * g), xq + 4 * g);
                    s2[k] = dpbusd_bcast(s2[k], _mm512_loadu_si512(blk + 64 * (g + 1)), xq + 4 * g + 4);
                }
            }
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                const uint8_t *blk = p + (size_t)(b + k) * PACKED_BLOCK;
                __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 512)));
                a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(x->d[b + k])),
                                                   _mm512_cvtepi32_ps(_mm512_add_epi32(s[k], s2[k]))));
            }
        }
        for (; b < nb; b++) {
            const uint8_t *blk = p + (size_t)b * PACKED_BLOCK;
            __m512i s1 = _mm512_set1_epi32(cb[b]);
            _Pragma("GCC unroll 8")
            for (int g = 0; g < 8; g++) s1 = dpbusd_bcast(s1, _mm512_loadu_si512(blk + 64 * g), x->q + b * QK + 4 * g);
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 512)));
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(x->d[b])), _mm512_cvtepi32_ps(s1)));
        }
        _mm512_storeu_ps(y + 16 * set, a);
    }
}

/* ---- AVX-512: dequantizing rows (bit-identical to the reference), small-batch tile ---- */

AVX512 static void avx512_deq_q8_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 34, y += QK) {
        __m512 d = _mm512_set1_ps(h2f_512(b));
        _mm512_storeu_ps(y, _mm512_mul_ps(d, i8x16_ps(b + 2)));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, i8x16_ps(b + 18)));
    }
}

AVX512 static void avx512_deq_q4_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 18, y += QK) {
        __m512 d = _mm512_set1_ps(h2f_512(b)), lo, hi;
        q4_0_unpack(b + 2, &lo, &hi);
        _mm512_storeu_ps(y, _mm512_mul_ps(d, lo));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, hi));
    }
}

/* Q4_K and Q5_K: x = (d*sc)*q - dmin*mn, rounded as the reference rounds it (no FMA). */
AVX512 static inline void avx512_deq_kq(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y)
{
    const __m512i m15 = _mm512_set1_epi32(15), one = _mm512_set1_epi32(1);
    float d = h2f_512(b), dmin = h2f_512(b + 2);
    __m512i h0 = _mm512_setzero_si512(), h1 = h0;
    if (qh) {
        h0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qh));
        h1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + 16)));
    }
    for (int k = 0; k < 4; k++) {
        int sa, ma, sb, mb;
        kquant_scale_min(b + 4, 2 * k, &sa, &ma);
        kquant_scale_min(b + 4, 2 * k + 1, &sb, &mb);
        __m512 da = _mm512_set1_ps(d * (float)sa), na = _mm512_set1_ps(dmin * (float)ma);
        __m512 db = _mm512_set1_ps(d * (float)sb), nb = _mm512_set1_ps(dmin * (float)mb);
        __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k)));
        __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * k + 16)));
        __m512i a0 = _mm512_and_si512(v0, m15), a1 = _mm512_and_si512(v1, m15);
        __m512i b0 = _mm512_srli_epi32(v0, 4), b1 = _mm512_srli_epi32(v1, 4);
        if (qh) {
            a0 = _mm512_or_si512(a0, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h0, 2 * k), one), 4));
            a1 = _mm512_or_si512(a1, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h1, 2 * k), one), 4));
            b0 = _mm512_or_si512(b0, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h0, 2 * k + 1), one), 4));
            b1 = _mm512_or_si512(b1, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h1, 2 * k + 1), one), 4));
        }
        float *o = y + 64 * k;
        _mm512_storeu_ps(o, _mm512_sub_ps(_mm512_mul_ps(da, _mm512_cvtepi32_ps(a0)), na));
        _mm512_storeu_ps(o + 16, _mm512_sub_ps(_mm512_mul_ps(da, _mm512_cvtepi32_ps(a1)), na));
        _mm512_storeu_ps(o + 32, _mm512_sub_ps(_mm512_mul_ps(db, _mm512_cvtepi32_ps(b0)), nb));
        _mm512_storeu_ps(o + 48, _mm512_sub_ps(_mm512_mul_ps(db, _mm512_cvtepi32_ps(b1)), nb));
    }
}

AVX512 static void avx512_deq_q4_k(const uint8_t *b, float *y) { avx512_deq_kq(b, NULL, b + 16, y); }
AVX512 static void avx512_deq_q5_k(const uint8_t *b, float *y) { avx512_deq_kq(b, b + 16, b + 48, y); }

AVX512 static void avx512_deq_q6_k(const uint8_t *b, float *y)
{
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3), k32 = _mm512_set1_epi32(32);
    __m512 d = _mm512_set1_ps(h2f_512(b + 208));
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        float *o = y + 128 * h;
        for (int c = 0; c < 2; c++) {
            __m512i la = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ql + 16 * c)));
            __m512i lb = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ql + 32 + 16 * c)));
            __m512i hv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + 16 * c)));
            __m512i q[4];
            q[0] = _mm512_or_si512(_mm512_and_si512(la, m15), _mm512_slli_epi32(_mm512_and_si512(hv, m3), 4));
            q[1] = _mm512_or_si512(_mm512_and_si512(lb, m15),
                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hv, 2), m3), 4));
            q[2] = _mm512_or_si512(_mm512_srli_epi32(la, 4),
                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hv, 4), m3), 4));
            q[3] = _mm512_or_si512(_mm512_srli_epi32(lb, 4), _mm512_slli_epi32(_mm512_srli_epi32(hv, 6), 4));
            for (int g = 0; g < 4; g++) {
                __m512i s = _mm512_set1_epi32(sc[8 * h + 2 * g + c]);
                __m512 v = _mm512_cvtepi32_ps(_mm512_mullo_epi32(s, _mm512_sub_epi32(q[g], k32)));
                _mm512_storeu_ps(o + 32 * g + 16 * c, _mm512_mul_ps(d, v));
            }
        }
    }
}

AVX512 static void avx512_f16_row(const uint8_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_f16x16(src + 2 * i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(rd16(src + 2 * i));
}

AVX512 static void avx512_bf16_row(const uint8_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_bf16x16(src + 2 * i));
    for (; i < n; i++) dst[i] = citer_bf16_to_f32(rd16(src + 2 * i));
}

AVX512 static int avx512_deq_row(int type, const uint8_t *src, float *dst, int64_t n)
{
    void (*blk)(const uint8_t *, float *) = NULL;
    size_t bs = 0;
    switch (type) {
    case GGML_F16: avx512_f16_row(src, dst, n); return 1;
    case GGML_BF16: avx512_bf16_row(src, dst, n); return 1;
    case GGML_Q8_0: avx512_deq_q8_0(src, dst, n / QK); return 1;
    case GGML_Q4_0: avx512_deq_q4_0(src, dst, n / QK); return 1;
    case GGML_Q4_K: blk = avx512_deq_q4_k, bs = 144; break;
    case GGML_Q5_K: blk = avx512_deq_q5_k, bs = 176; break;
    case GGML_Q6_K: blk = avx512_deq_q6_k, bs = 210; break;
    default: return 0;
    }
    for (int64_t i = 0; i < n / QKK; i++) blk(src + bs * (size_t)i, dst + QKK * i);
    return 1;
}

/* Small-batch tile: 4 weight rows x nt <= 4 tokens, 16 accumulators (one per output, over
 * chunks of 16 in order, a masked last chunk, then the fixed reduction): the same sequence
 * for an output whatever nt. */
#define AVX512_NT 4
AVX512 static inline __attribute__((always_inline)) void avx512_tile(const float *const w[4], const float *X,
                                                                     int64_t cols, int nt, float *out)
{
    __m512 acc[4][AVX512_NT];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m512 xv[AVX512_NT];
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) xv[t] = _mm512_loadu_ps(X + t * cols + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512 wv = _mm512_loadu_ps(w[r] + k);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    if (k < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - k)) - 1);
        for (int r = 0; r < 4; r++) {
            __m512 wv = _mm512_maskz_loadu_ps(m, w[r] + k);
            for (int t = 0; t < nt; t++)
                acc[r][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, X + t * cols + k), acc[r][t]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < nt; t++) out[4 * t + r] = _mm512_reduce_add_ps(acc[r][t]);
}

AVX512 static void avx512_tile4(const float *const w[4], const float *X, int64_t T, int64_t cols, float *out)
{
    int64_t t = 0;
    for (; t + AVX512_NT <= T; t += AVX512_NT) avx512_tile(w, X + t * cols, cols, AVX512_NT, out + 4 * t);
    switch (T - t) {
    case 3: avx512_tile(w, X + t * cols, cols, 3, out + 4 * t); break;
    case 2: avx512_tile(w, X + t * cols, cols, 2, out + 4 * t); break;
    case 1: avx512_tile(w, X + t * cols, cols, 1, out + 4 * t); break;
    default: break;
    }
}

/* exp(x) for x <= 0: as exp_neg_avx2, with scalef for 2^n (inputs below -100 give ~0). */
AVX512 static inline __m512 exp_neg_512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-100.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* As avx2_swiglu. */
AVX512 static void avx512_swiglu(float *gate, const float *up, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 msk = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(msk, gate + i);
        __m512 e = exp_neg_512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN))));
        __mmask16 neg = _mm512_cmplt_epi32_mask(_mm512_castps_si512(g), _mm512_setzero_si512());
        __m512 sg = _mm512_div_ps(_mm512_mask_blend_ps(neg, one, e), _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(gate + i, msk, _mm512_mul_ps(_mm512_mul_ps(g, sg), _mm512_maskz_loadu_ps(msk, up + i)));
    }
}

/* Chunks of 16 lanes x 8 terms summed in f32, the chunks' sums in f64. */
AVX512 static double avx512_sum_exp(const float *x, int64_t n, float shift)
{
    __m512 m = _mm512_set1_ps(shift);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    int64_t i = 0;
    while (i < n) {
        __m512 a = _mm512_setzero_ps();
        for (int k = 0; k < 8 && i < n; k++, i += 16) {
            __mmask16 msk = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 e = exp_neg_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(msk, x + i), m));
            a = _mm512_add_ps(a, _mm512_maskz_mov_ps(msk, e));
        }
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

AVX512 static float avx512_max_f32(const float *x, int64_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 msk = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), msk, x + i);
        m = _mm512_max_ps(m, v);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    return nan ? NAN : _mm512_reduce_max_ps(m);
}

const citer_kernel_set citer_kernels_avx512 = {
    .name = "avx512",
    .f32 = avx512_row_f32,
    .f16 = avx512_row_f16,
    .bf16 = avx512_row_bf16,
    .f16x4 = avx512_rows4_f16,
    .bf16x4 = avx512_rows4_bf16,
    .q8_0 = avx512_row_q8_0,
    .q4_0 = avx512_row_q4_0,
    .q4_k = avx512_row_q4_k,
    .q5_k = avx512_row_q5_k,
    .q6_k = avx512_row_q6_k,
    .dot_f32 = avx512_dot_f32,
    .f16_row = avx2_f16_row,
    .bf16_row = avx2_bf16_row,
    .dot_rows = avx512_dot_rows,
    .axpy_rows = avx512_axpy_rows,
    .q8_0_i8 = vnni_q8_0,
    .q4_0_i8 = vnni_q4_0,
    .q4_k_i8 = vnni_q4_k,
    .q5_k_i8 = vnni_q5_k,
    .q6_k_i8 = vnni_q6_k,
    .kq_rows = vnni_kq_rows,
    .i8_matmul = vnni_i8_matmul,
    .i8_prep = vnni_i8_prep,
    .i8_quantize_blocks = vnni_i8_quantize_blocks,
    .pack_q8_0 = vnni_pack_q8_0,
    .packed_matvec = vnni_packed_matvec,
    .packed_matmul = vnni_packed_matmul,
    .quantize8 = vnni_quantize,
    .deq_q4_k = avx512_deq_q4_k,
    .deq_q5_k = avx512_deq_q5_k,
    .deq_q6_k = avx512_deq_q6_k,
    .deq_row = avx512_deq_row,
    .tile4 = avx512_tile4,
    .sum_exp = avx512_sum_exp,
    .max_f32 = avx512_max_f32,
    .swiglu = avx512_swiglu,
};

#else /* not x86-64 with GCC/Clang: scalar only */

const citer_kernel_set citer_kernels_avx2 = {0};
const citer_kernel_set citer_kernels_avx512 = {0};
int citer_cpu_has_avx2(void) { return 0; }
int citer_cpu_has_avx512(void) { return 0; }
int citer_cpu_has_avx512vnni(void) { return 0; }

#endif
