/* kernels: the numeric work of the forward pass, on weights in their stored type.
 *
 * A weight matrix is rows x cols, row-major, each row `cols` contiguous elements of one ggml
 * type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), exactly the bytes of a
 * GGUF tensor with ne = [cols, rows] or a safetensors [rows, cols] tensor. Activations are f32.
 * Every fast path is tested against dequantize-then-f32 (citer_dequantize_row). */
#ifndef CITER_KERNELS_H
#define CITER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "half.h" /* f16 and bf16 conversions */

typedef struct {
    int type;          /* enum ggml_type (gguf.h) */
    int64_t rows, cols;
    const void *data;
    size_t row_bytes;  /* bytes of one row */
    const void *packed; /* a copy laid out for the int8 kernels (citer_matrix_pack), or NULL */
} citer_matrix;

/* 1 if the type can be used as a weight (known block layout with a dequantizer). */
int citer_type_supported(int type);
/* Bytes of a row of n elements, 0 if n is not a multiple of the type's block size or the type
 * is unknown. */
size_t citer_row_bytes(int type, int64_t n);
/* Build a matrix view; returns 0, or -1 with citer_error() when cols does not fit the type. */
int citer_matrix_init(citer_matrix *m, int type, int64_t rows, int64_t cols, const void *data);

/* Q8_0 matrices for the AVX-512 VNNI int8 kernels: the rows in sets of 16, each block of a set
 * transposed (dword g of every row together, made unsigned) with its 16 f16 scales; the same
 * number of bytes as the matrix. The kernels then read the weights as they are (no per-call
 * transposition in a batched append, and a decode step needs a fraction of the instructions).
 * citer_matrix_pack_bytes: the bytes of the packed copy, 0 when m cannot be packed (not Q8_0,
 * rows not a multiple of 16, or no int8 kernels for it in use now). citer_matrix_pack fills dst
 * (that many bytes, 64-byte aligned, owned by the caller) and points m->packed at it; m->data
 * stays the reference for every other path. Packed or not, each output has the bits of the
 * scalar int8 matvec (the VNNI row kernel: within f32 rounding). */
size_t citer_matrix_pack_bytes(const citer_matrix *m);
void citer_matrix_pack(citer_matrix *m, void *dst);

/* Reference conversions (exact, scalar). n must be a multiple of the block size. */
void citer_dequantize_row(int type, const void *src, float *dst, int64_t n);
/* Quantize (round-to-nearest reference quantizers) for F32, F16, BF16, Q8_0, Q4_0 and the
 * K-quants Q4_K, Q5_K, Q6_K: used by writers of test models and by tests. Returns 0, -1 if the
 * type has no quantizer. */
int citer_quantize_row(int type, const float *src, void *dst, int64_t n);

/* y[r] = W[r,:] . x  for r in [0, rows). Uses the thread pool. */
void citer_matvec(const citer_matrix *w, const float *x, float *y);
/* Y[t*rows + r] = W[r,:] . X[t*cols ...]  for t in [0, T): prefill, matrix-matrix. T <= 3 is
 * T citer_matvec calls (the same bits as decoding them one by one); 4 <= T <= the small-batch
 * limit (an append of a few tokens) reads the weights once for all T tokens, with results that
 * do not depend on T; larger T uses sgemm. In the int8 activation mode below, Q8_0, Q4_0 and
 * K-quant weights take the int8 kernels for every T instead (from T = 2 with SIMD ones). */
void citer_matmul(const citer_matrix *w, const float *X, int64_t T, float *Y);
/* citer_matmul of n <= 4 matrices with the same cols over the same X (q/k/v, gate/up): the same
 * results; with int8 activations the tokens are quantized once for all of them and the
 * matrices go to the pool in one dispatch. */
void citer_matmul_multi(const citer_matrix *const *w, int n, const float *X, int64_t T, float *const *Y);
/* The largest T of matmul's f32 small-batch path (CITER_MATMUL_SMALL_T in the environment overrides
 * the default); the setter (t < 1: the default) returns the previous limit and is a hook for
 * benchmarks and tests: call it while no kernel runs. */
int citer_matmul_small_limit(void);
int citer_set_matmul_small_limit(int t);
/* y[k] = W[k] x for n <= 4 matrices with the same cols, in one pass over x and one dispatch to
 * the pool (q/k/v, gate/up): each row's result is the same as citer_matvec's. */
void citer_matvec_multi(const citer_matrix *const *w, int n, const float *x, float *const *y);
/* Attention helpers over rows of d floats at a stride (keys, values of a KV cache page):
 * out[i] = q . rows[i*stride .. +d) for i < n;  out[0..d) += sum_i a[i] * rows[i*stride .. +d). */
void citer_dot_rows(const float *q, const float *rows, size_t stride, int64_t n, int64_t d, float *out);
void citer_axpy_rows(const float *a, const float *rows, size_t stride, int64_t n, int64_t d, float *out);
/* Softmax helpers over n >= 1 floats (SIMD where the CPU has it): the largest element, NaN
 * when any element is NaN; and sum_i exp(x[i] - shift) for shift >= every x[i], f32 exp and
 * partial sums with the partial sums added in f64: within 1e-6 relative of the f64 sum
 * (tests/t_kernels.c). */
float citer_max_f32(const float *x, int64_t n);
double citer_sum_exp(const float *x, int64_t n, float shift);
/* SwiGLU in place: gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); the SIMD sets'
 * exp is within a few ulp of libm's (tests/t_kernels.c). */
void citer_swiglu(float *gate, const float *up, int64_t n);
/* Row r of W as f32 (embedding lookup). */
void citer_matrix_row(const citer_matrix *w, int64_t r, float *out);

/* Threads used by the kernels (default: number of online CPUs, at most 2 unless
 * CITER_THREADS says otherwise). */
void citer_set_threads(int n);
int citer_get_threads(void);
/* Run fn(arg, begin, end) over [0, n) cut into contiguous chunks (boundaries depend only on n
 * and the thread count) spread over the pool's threads; the caller is one of them. Workers start
 * lazily. One dispatch at a time: a call made while another runs (from another thread, or nested
 * inside fn) runs the whole range serially in the caller. citer_set_threads must not be called
 * while a citer_parallel_for runs. matmul calls OpenBLAS from the pool's threads and keeps
 * OpenBLAS itself at one thread (citer_blas_one_thread). */
void citer_parallel_for(int64_t n, void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);
/* The pool's workers go to sleep now instead of spinning for the next job (the next
 * citer_parallel_for wakes them): for a process about to wait for input while another one
 * computes, as a model server between requests, whose spinning workers would take that one's
 * CPUs. */
void citer_threads_rest(void);
/* OpenBLAS at one thread: its own threads would compete with the pool's (on 2 cores the
 * router's MLP took 1 ms a step with them, 0.5 ms without). For every cblas user beside the
 * pool: matmul, the LM trainer, router inference. Cheap enough to call per use. */
void citer_blas_one_thread(void);

/* Int8 activation mode for quantized weights (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K): the activation
 * vector is rounded to 8 bits per block of 32 once per matvec and multiplied with integer dot
 * products, as llama.cpp does. Not exact: a dot product is off by ~0.3% of sum|w x|
 * (tests/t_kernels.c) and the logits of a q8_0 model by ~1e-2 relative L2 (the fixtures' q8_0
 * tolerance is 2e-2 for this reason). In this mode citer_matmul quantizes its T tokens once and
 * multiplies them with integer dot products too, whatever T (from 2 tokens with AVX-512 VNNI,
 * in chunks of 64): each output has the bits of the scalar int8 matvec of its token (the
 * AVX-512 VNNI Q8_0/Q4_0 matvec sums in another order: within f32 rounding of it; its K-quant
 * matvec has those bits), so prefill, scoring and decoding agree. Modes:
 * CITER_INT8_AUTO (the default) uses it where the kernel set has SIMD int8 kernels (AVX-512
 * VNNI), where it is faster (a batched append of a few tokens costs about half as much:
 * bench/bench_smallbatch; a K-quant matvec 2-3x: bench/bench_kernels); 1 uses it on every set
 * that has int8 kernels (the scalar ones where there are no SIMD ones; AVX2 keeps f32
 * activations); 0 never (f32 activations, within f32 rounding of dequantize-then-f32).
 * CITER_INT8_ACT=0, 1 or auto in the environment sets it. Returns the previous mode; call while
 * no kernel runs. */
enum { CITER_INT8_AUTO = 2 };
int citer_set_int8_activations(int mode);
/* 1 if Q8_0, Q4_0 and K-quant weights get int8 activations in matvec now (the mode and the
 * kernel set). */
int citer_int8_activations(void);

/* Instruction set of the matvec kernels: "scalar", "avx2" (AVX2+FMA+F16C) or "avx512"
 * (AVX-512 F/BW/VL), the best the CPU has unless forced. citer_kernels_force(name) selects one
 * (NULL or "auto": back to the best); -1 with citer_error() if the CPU lacks it. A test hook:
 * call it while no kernel runs. CITER_KERNELS=scalar|avx2 in the environment makes that set
 * the best, to see what CPUs without AVX-512 compute. */
int citer_kernels_force(const char *name);
const char *citer_kernels_name(void);

#endif
