/* kernels_impl: what quant.c, kernels.c, kernels_x86.c and threadpool.c share (not public).
 *
 * Block layouts (ggml): every type stores a row as consecutive blocks; multi-byte fields are
 * little-endian, scales are IEEE half (f16).
 *   Q8_0  32 el, 34 B: d, int8 q[32]                         x = d*q
 *   Q4_0  32 el, 18 B: d, u8 qs[16]                          x = d*(q-8)
 *   Q4_1  32 el, 20 B: d, m, u8 qs[16]                       x = d*q + m
 *   Q5_0  32 el, 22 B: d, u8 qh[4], u8 qs[16]                x = d*(q-16)
 *   Q5_1  32 el, 24 B: d, m, u8 qh[4], u8 qs[16]             x = d*q + m
 *     4-bit blocks: byte j holds element j (low nibble) and j+16 (high nibble); for Q5 bit i of
 *     the 32-bit little-endian qh is the fifth bit of element i.
 *   Q4_K 256 el, 144 B: d, dmin, u8 scales[12], u8 qs[128]
 *   Q5_K 256 el, 176 B: d, dmin, u8 scales[12], u8 qh[32], u8 qs[128]
 *     8 sub-blocks of 32 with 6-bit scale sc[i] and min mn[i] packed in scales[12]:
 *     i < 4: sc = s[i] & 63, mn = s[i+4] & 63; i >= 4: sc = (s[i+4] & 15) | (s[i-4] >> 6) << 4,
 *     mn = (s[i+4] >> 4) | (s[i] >> 6) << 4. x = d*sc*q - dmin*mn. Sub-blocks 2k and 2k+1 are
 *     the low and high nibbles of qs[32k .. 32k+31]; for Q5_K bit 2k (resp. 2k+1) of qh[l] is the
 *     fifth bit of element l of sub-block 2k (resp. 2k+1).
 *   Q6_K 256 el, 210 B: u8 ql[128], u8 qh[64], int8 scales[16], d
 *     two halves of 128; in half h (ql += 64h, qh += 32h), for l < 32:
 *     el l: ql[l] low | qh[l] bits 0-1; el 32+l: ql[32+l] low | qh bits 2-3;
 *     el 64+l: ql[l] high | qh bits 4-5; el 96+l: ql[32+l] high | qh bits 6-7;
 *     x = d * scales[8h + el/16] * (q - 32). */
#ifndef CITER_KERNELS_IMPL_H
#define CITER_KERNELS_IMPL_H

#include <stdint.h>
#include <string.h>
#include "kernels.h"

enum { QK = 32, QKK = 256 };

/* Elements and bytes of one block of a type; 0 if unknown. */
int citer_block_geometry(int type, int64_t *elems, size_t *bytes);

/* Dequantize ONE block of a block type (elements as returned by citer_block_geometry). */
void citer_dequantize_block(int type, const uint8_t *blk, float *out);

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* 6-bit scale and min of sub-block i of a Q4_K/Q5_K block. */
static inline void kquant_scale_min(const uint8_t *s, int i, int *sc, int *mn)
{
    if (i < 4) {
        *sc = s[i] & 63;
        *mn = s[i + 4] & 63;
    } else {
        *sc = (s[i + 4] & 15) | (s[i - 4] >> 6) << 4;
        *mn = (s[i + 4] >> 4) | (s[i] >> 6) << 4;
    }
}

/* A row dot product: W row (cols elements of the type) . x. */
typedef float (*citer_dot_fn)(const void *row, const float *x, int64_t cols);
/* Four consecutive rows (row_bytes apart) at once, y[0..3]: each output has the bits of the
 * set's row kernel for that row. */
#define CITER_DOT4_COLS 4096
typedef void (*citer_dot4_fn)(const void *rows, size_t row_bytes, const float *x, int64_t cols, float *y);

/* An activation vector rounded to 8 bits per block of 32 (int8 activation mode), quantized once
 * per matvec: q[i] = round(x[i] / d[b]) with d[b] = max|x| over block b / 127. For the 8 groups
 * of 4 consecutive elements of a block (the int32 lanes of a 256-bit VNNI dot product) it also
 * keeps -128 and -8 times the group's sum of q: the corrections for weights offset by 128
 * (Q8_0 made unsigned) or by 8 (Q4_0 nibbles), and d[b] repeated per group. For the K-quants'
 * minimums (Q4_K, Q5_K) it keeps d[b] times the block's sum of q. */
typedef struct {
    int64_t n;        /* elements, a multiple of 32 */
    int8_t *q;        /* [n] */
    float *d;         /* [n/32] */
    float *sx;        /* [n/32]: d[b] * (float)(sum of block b's q) */
    int32_t *cb;      /* [n/32]: -128 times the sum of block b's q (c128 of its groups added) */
    float *dl;        /* [n/4]: d of the group's block */
    int32_t *c128;    /* [n/4] */
    int32_t *c8;      /* [n/4] */
} citer_xq8;

/* A row dot product with an int8-quantized activation vector. */
typedef float (*citer_dot8_fn)(const void *row, const citer_xq8 *x, int64_t cols);

/* Kernel sets: one per instruction set. An entry may be NULL (then the generic path is used). */
typedef struct {
    const char *name;
    citer_dot_fn f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k;
    /* F16 and BF16 rows four at a time, for rows wider than CITER_DOT4_COLS (NULL: row by row) */
    citer_dot4_fn f16x4, bf16x4;
    /* dot of n floats (n multiple of 16), used by the block-dequantizing generic path */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    /* rows of f16 / bf16 to f32 (NULL: the scalar reference), used by matmul's tiles */
    void (*f16_row)(const uint8_t *src, float *dst, int64_t n);
    void (*bf16_row)(const uint8_t *src, float *dst, int64_t n);
    /* dequantize one K-quant block to 256 floats (NULL: the scalar reference) */
    void (*deq_q4_k)(const uint8_t *blk, float *out);
    void (*deq_q5_k)(const uint8_t *blk, float *out);
    void (*deq_q6_k)(const uint8_t *blk, float *out);
    /* attention: out[i] = q . rows[i*stride ..+d); out[..d) += sum_i a[i] rows[i*stride ..+d)
     * (NULL: the scalar versions) */
    void (*dot_rows)(const float *q, const float *rows, size_t stride, int64_t n, int64_t d, float *out);
    void (*axpy_rows)(const float *a, const float *rows, size_t stride, int64_t n, int64_t d, float *out);
    /* int8 activation mode (NULL: the f32 kernels above are used) */
    citer_dot8_fn q8_0_i8, q4_0_i8;
    /* K-quants with int8 activations: every set's kernel gives the bits of the scalar one
     * (sdot8_q4_k etc. in kernels.c define the order of the float operations). */
    citer_dot8_fn q4_k_i8, q5_k_i8, q6_k_i8;
    /* A K-quant row (type Q4_K, Q5_K or Q6_K) times T quantized tokens: out[t*ostride] with the
     * bits of the set's K-quant int8 kernel above for x[t], the row's blocks unpacked once for
     * all tokens. NULL: one row dot per token. */
    void (*kq_rows)(int type, const uint8_t *row, const citer_xq8 *x, int64_t T, int64_t n, float *out,
                    int64_t ostride);
    /* Small-batch matmul with int8 activations, Q8_0 or Q4_0 (`type`): the sets of 16 rows
     * [g0, g1) of the rows x n matrix at w times the T tokens, laid out by i8_prep (once per
     * call, for all threads; free() it) and filled by i8_quantize_blocks (blocks [b0, b1) of
     * token t, x its n floats, on any thread, each once; the bits of quantize8), into
     * Y[t*rows + r]. Each output has the bits of the scalar int8 matvec (sdot8_*). NULL:
     * none. */
    void *(*i8_prep)(int64_t T, int64_t n);
    void (*i8_quantize_blocks)(void *prep, const float *x, int64_t t, int64_t b0, int64_t b1);
    void (*i8_matmul)(int type, const uint8_t *w, size_t row_bytes, int64_t rows, int64_t g0, int64_t g1,
                      const void *prep, int64_t T, int64_t n, float *Y);
    /* Packed Q8_0 (citer_matrix_pack): pack sets [s0, s1) of 16 rows of nb blocks into dst;
     * matvec of sets [s0, s1) into y (the bits of sdot8_q8_0); the batched matmul of
     * i8_matmul over sets [s0, s1). NULL: none. */
    void (*pack_q8_0)(const uint8_t *w, size_t row_bytes, int64_t s0, int64_t s1, int64_t nb, uint8_t *dst);
    void (*packed_matvec)(const uint8_t *pk, int64_t s0, int64_t s1, int64_t nb, const citer_xq8 *x, float *y);
    void (*packed_matmul)(const uint8_t *pk, int64_t rows, int64_t s0, int64_t s1, const void *prep, int64_t T,
                          int64_t n, float *Y);
    /* Quantize an activation vector as kernels.c's quantize_into does, to the same bits (NULL:
     * that one). */
    void (*quantize8)(citer_xq8 *q, const float *x, int64_t n);
    /* A row of n elements of a stored type to f32, bit-identical to citer_dequantize_row;
     * returns 0 when the set has no fast path for the type (NULL: none at all). */
    int (*deq_row)(int type, const uint8_t *src, float *dst, int64_t n);
    /* Small-batch matmul tile: out[t*4 + r] = w[r][0..cols) . X[t*cols ..+cols) for r < 4,
     * t < T. Each output is one accumulation in a fixed order that depends only on cols (not
     * on T, t or r), so a token's result does not depend on the batch it came in. NULL: the
     * scalar version. */
    void (*tile4)(const float *const w[4], const float *X, int64_t T, int64_t cols, float *out);
    /* citer_sum_exp and citer_max_f32 (NULL: the scalar versions) */
    double (*sum_exp)(const float *x, int64_t n, float shift);
    float (*max_f32)(const float *x, int64_t n);
    /* citer_swiglu (NULL: the scalar version, libm's expf) */
    void (*swiglu)(float *gate, const float *up, int64_t n);
} citer_kernel_set;

extern const citer_kernel_set citer_kernels_scalar;
/* x86 sets; their availability is checked at run time (NULL name when not compiled). */
extern const citer_kernel_set citer_kernels_avx2;
extern const citer_kernel_set citer_kernels_avx512;
int citer_cpu_has_avx2(void);
int citer_cpu_has_avx512(void);
int citer_cpu_has_avx512vnni(void);

#endif
