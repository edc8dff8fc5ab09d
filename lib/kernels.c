/* kernels: matvec (decode) and matmul (prefill) over weights in their stored type.
 *
 * matvec computes each output row with one fused dot product over the row's blocks (the matrix
 * is never dequantized as a whole); the per-type dot kernels come from the instruction-set
 * kernel set chosen at run time (scalar here, AVX2/AVX-512 in kernels_x86.c). Each row is
 * computed by exactly one thread in a fixed order, so results do not depend on the thread count.
 *
 * matmul of a few tokens (4 <= T <= the small-batch limit, an append of the tokens a model has
 * not seen yet) streams the weights once: each group of 4 rows is dequantized to f32 into a
 * buffer that stays in cache and multiplied with all T activation vectors in registers (4 rows
 * x 4 tokens per tile): T tokens cost one pass over the weights and their conversion to f32
 * plus T times the FMAs, not T matvecs (each of which converts the weights again). Every output
 * is one accumulation in a fixed order, so a token's result depends neither on the thread count
 * nor on T. Fewer tokens are T matvecs. With int8 activations (Q8_0, Q4_0 and the K-quants;
 * the default with AVX-512 VNNI) every matmul (2 <= T, chunks of 64 tokens) quantizes its
 * tokens once and the kernel set's i8_matmul multiplies sets of 16 rows with up to 8 tokens at
 * a time by integer dot products (kq_rows for the K-quants: a row's blocks unpacked once for up
 * to 8 tokens; kernels_x86.c), each output the bits of the scalar int8 matvec: a few tokens
 * cost little more than one pass over the weights, and long prompts a third of the time of
 * dequantize + sgemm.
 *
 * Larger matmuls dequantize tiles of TILE rows to f32 and multiply them with OpenBLAS sgemm. The
 * tiles are distributed over our own thread pool and OpenBLAS is kept at one thread, so the two
 * never compete for cores; tile boundaries are fixed multiples of TILE, so results do not depend
 * on the thread count either. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "kernels_impl.h"
#include "util.h"


/* ---- scalar kernels ---- */

static float sdot_f32(const float *a, const float *b, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

static float sdot_row_f32(const void *row, const float *x, int64_t n) { return sdot_f32(row, x, n); }

static float sdot_row_f16(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += citer_f16_to_f32(rd16(p + 2 * (i + k))) * x[i + k];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) t += citer_f16_to_f32(rd16(p + 2 * i)) * x[i];
    return t;
}

static float sdot_row_bf16(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += citer_bf16_to_f32(rd16(p + 2 * (i + k))) * x[i + k];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) t += citer_bf16_to_f32(rd16(p + 2 * i)) * x[i];
    return t;
}

static float sdot_row_q8_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    float t = 0;
    for (int64_t i = 0; i < n / QK; i++, b += 34, x += QK) {
        float s = 0;
        for (int k = 0; k < QK; k++) s += (float)(int8_t)b[2 + k] * x[k];
        t += citer_f16_to_f32(rd16(b)) * s;
    }
    return t;
}

static float sdot_row_q4_0(const void *row, const float *x, int64_t n)
{
    const uint8_t *b = row;
    float t = 0;
    for (int64_t i = 0; i < n / QK; i++, b += 18, x += QK) {
        float s = 0;
        for (int k = 0; k < 16; k++)
            s += (float)((b[2 + k] & 15) - 8) * x[k] + (float)((b[2 + k] >> 4) - 8) * x[k + 16];
        t += citer_f16_to_f32(rd16(b)) * s;
    }
    return t;
}

/* int8 activations: the integer dot of each block times both scales. */
static float sdot8_q8_0(const void *row, const citer_xq8 *x, int64_t n)
{
    const uint8_t *b = row;
    float t = 0;
    for (int64_t i = 0; i < n / QK; i++, b += 34) {
        int32_t s = 0;
        for (int k = 0; k < QK; k++) s += (int8_t)b[2 + k] * x->q[i * QK + k];
        t += citer_f16_to_f32(rd16(b)) * x->d[i] * (float)s;
    }
    return t;
}

static float sdot8_q4_0(const void *row, const citer_xq8 *x, int64_t n)
{
    const uint8_t *b = row;
    float t = 0;
    for (int64_t i = 0; i < n / QK; i++, b += 18) {
        const int8_t *q = x->q + i * QK;
        int32_t s = 0;
        for (int k = 0; k < 16; k++) s += ((b[2 + k] & 15) - 8) * q[k] + ((b[2 + k] >> 4) - 8) * q[k + 16];
        t += citer_f16_to_f32(rd16(b)) * x->d[i] * (float)s;
    }
    return t;
}

/* K-quants with int8 activations. Each activation block of 32 is a sub-block (Q4_K, Q5_K) or
 * two scale groups of 16 (Q6_K) of the weights. The order of the float operations is the one
 * of a 512-bit VNNI kernel, so that kernels_x86.c can give these bits: a super-block is 4
 * registers of 64 elements, p = 0..3, each of 16 int32 lanes l: the integer dot of the 4
 * elements 64p+4l..+3 (exact), as a float, times the scale of its group, added to acc[p][l];
 * at the end kq_sum adds the lanes in a fixed tree. Q4_K/Q5_K's minimums go to 8 more lanes,
 * one per sub-block: (dmin*mn) * sx, sx = dx * (sum of the block's q) from the quantizer. */
static float kq_sum(const float acc[4][16], const float accm[8])
{
    float h[8];
    for (int i = 0; i < 8; i++) {
        float a = (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]);
        float b = (acc[0][i + 8] + acc[1][i + 8]) + (acc[2][i + 8] + acc[3][i + 8]);
        h[i] = (a + b) - accm[i];
    }
    for (int i = 0; i < 4; i++) h[i] += h[i + 4];
    for (int i = 0; i < 2; i++) h[i] += h[i + 2];
    return h[0] + h[1];
}

/* A super-block's weights qv[256] (element order) against its activations q: lane l of
 * register p (elements 64p+4l..+3) gets its integer dot times the scale w[e / group] of its
 * group of `group` elements. */
static void kq_lanes(const int *qv, const int8_t *q, const float *w, int group, float acc[4][16])
{
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 16; l++) {
            int e = 64 * p + 4 * l;
            int32_t s = 0;
            for (int k = 0; k < 4; k++) s += qv[e + k] * q[e + k];
            acc[p][l] += (float)s * w[e / group];
        }
}

/* Q4_K (qh = 0: no fifth bits) and Q5_K: blocks of bs bytes, the nibbles at qs; for Q5_K bit 2k
 * (2k+1) of byte qh+l is the fifth bit of element l of sub-block 2k (2k+1). Lane l of register
 * p is group l&7 of sub-block 2p + l/8, scaled by (d*sc)*dx of that sub-block. */
static float sdot8_kq45(const uint8_t *b, const citer_xq8 *x, int64_t n, size_t bs, size_t qh, size_t qs)
{
    float acc[4][16] = {{0}}, accm[8] = {0};
    int qv[QKK];
    for (int64_t i = 0; i < n / QKK; i++, b += bs) {
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int h = qh ? b[qh + l] : 0, v = b[qs + 32 * k + l];
                qv[64 * k + l] = (v & 15) | ((h >> 2 * k) & 1) << 4;
                qv[64 * k + 32 + l] = (v >> 4) | ((h >> (2 * k + 1)) & 1) << 4;
            }
        float d = citer_f16_to_f32(rd16(b)), dmin = citer_f16_to_f32(rd16(b + 2)), w[8];
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            kquant_scale_min(b + 4, j, &sc, &mn);
            w[j] = d * (float)sc * x->d[8 * i + j];
            accm[j] += dmin * (float)mn * x->sx[8 * i + j];
        }
        kq_lanes(qv, x->q + QKK * i, w, 32, acc);
    }
    return kq_sum(acc, accm);
}

static float sdot8_q4_k(const void *row, const citer_xq8 *x, int64_t n) { return sdot8_kq45(row, x, n, 144, 0, 16); }
static float sdot8_q5_k(const void *row, const citer_xq8 *x, int64_t n) { return sdot8_kq45(row, x, n, 176, 16, 48); }

/* Q6_K: lane l of register p is scale group 4p + l/4, scaled by (d*sc)*dx of its block. */
static float sdot8_q6_k(const void *row, const citer_xq8 *x, int64_t n)
{
    const uint8_t *b = row;
    float acc[4][16] = {{0}}, accm[8] = {0};
    int qv[QKK];
    for (int64_t i = 0; i < n / QKK; i++, b += 210) {
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            for (int l = 0; l < 32; l++) {
                qv[128 * h + l] = ((ql[l] & 15) | (qh[l] & 3) << 4) - 32;
                qv[128 * h + 32 + l] = ((ql[32 + l] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
                qv[128 * h + 64 + l] = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                qv[128 * h + 96 + l] = ((ql[32 + l] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
            }
        }
        float d = citer_f16_to_f32(rd16(b + 208)), w[16];
        for (int k = 0; k < 16; k++) w[k] = d * (float)(int8_t)b[192 + k] * x->d[8 * i + k / 2];
        kq_lanes(qv, x->q + QKK * i, w, 16, acc);
    }
    return kq_sum(acc, accm);
}

/* small-batch int8 tiles (sets without i8_matmul): each token's dot as the scalar matvec computes it */
static void stile8_q8_0(const uint8_t *row, const citer_xq8 *const x[4], int64_t n, float out[4])
{
    for (int t = 0; t < 4; t++) out[t] = sdot8_q8_0(row, x[t], n);
}

static void stile8_q4_0(const uint8_t *row, const citer_xq8 *const x[4], int64_t n, float out[4])
{
    for (int t = 0; t < 4; t++) out[t] = sdot8_q4_0(row, x[t], n);
}

/* small-batch tile: one sdot_f32 per output (the same whatever T) */
static void stile4(const float *const w[4], const float *X, int64_t T, int64_t cols, float *out)
{
    for (int64_t t = 0; t < T; t++)
        for (int r = 0; r < 4; r++) out[4 * t + r] = sdot_f32(w[r], X + t * cols, cols);
}

const citer_kernel_set citer_kernels_scalar = {
    .name = "scalar",
    .f32 = sdot_row_f32,
    .f16 = sdot_row_f16,
    .bf16 = sdot_row_bf16,
    .q8_0 = sdot_row_q8_0,
    .q4_0 = sdot_row_q4_0,
    .dot_f32 = sdot_f32,
    .q8_0_i8 = sdot8_q8_0,
    .q4_0_i8 = sdot8_q4_0,
    .q4_k_i8 = sdot8_q4_k,
    .q5_k_i8 = sdot8_q5_k,
    .q6_k_i8 = sdot8_q6_k,
    .tile4 = stile4,
};

/* ---- dispatch ---- */

static _Atomic(const citer_kernel_set *) active;

static const citer_kernel_set *best_set(void)
{
    /* CITER_KERNELS=scalar|avx2|avx512 in the environment: to check results on the paths
     * other CPUs take (ignored when this CPU lacks the set) */
    const char *e = getenv("CITER_KERNELS");
    if (e && !strcmp(e, "scalar")) return &citer_kernels_scalar;
    if (e && !strcmp(e, "avx2") && citer_kernels_avx2.name && citer_cpu_has_avx2()) return &citer_kernels_avx2;
    if (citer_kernels_avx512.name && citer_cpu_has_avx512()) return &citer_kernels_avx512;
    if (citer_kernels_avx2.name && citer_cpu_has_avx2()) return &citer_kernels_avx2;
    return &citer_kernels_scalar;
}

static const citer_kernel_set *kset(void)
{
    const citer_kernel_set *k = atomic_load_explicit(&active, memory_order_acquire);
    if (!k) {
        k = best_set();
        atomic_store_explicit(&active, k, memory_order_release);
    }
    return k;
}

int citer_kernels_force(const char *name)
{
    const citer_kernel_set *k;
    if (!name || !strcmp(name, "auto")) k = best_set();
    else if (!strcmp(name, "scalar")) k = &citer_kernels_scalar;
    else if (!strcmp(name, "avx2") && citer_kernels_avx2.name && citer_cpu_has_avx2()) k = &citer_kernels_avx2;
    else if (!strcmp(name, "avx512") && citer_kernels_avx512.name && citer_cpu_has_avx512())
        k = &citer_kernels_avx512;
    else {
        citer_set_error("kernel set '%s' is unknown or not supported by this CPU", name);
        return -1;
    }
    atomic_store(&active, k);
    return 0;
}

const char *citer_kernels_name(void) { return kset()->name; }

/* INT8_AUTO: int8 activations where the kernel set has SIMD int8 kernels (AVX-512 VNNI), where
 * they are faster; INT8_ON: on every set (the scalar int8 kernels elsewhere); INT8_OFF. */
enum { INT8_UNREAD = -1, INT8_OFF, INT8_ON, INT8_AUTO };
static atomic_int int8_mode = INT8_UNREAD;

static int int8_setting(void)
{
    int m = atomic_load_explicit(&int8_mode, memory_order_relaxed);
    if (m == INT8_UNREAD) {
        const char *e = getenv("CITER_INT8_ACT");
        m = !e || !*e || !strcmp(e, "auto") ? INT8_AUTO : atoi(e) > 0 ? INT8_ON : INT8_OFF;
        atomic_store(&int8_mode, m);
    }
    return m;
}

int citer_set_int8_activations(int mode)
{
    int old = int8_setting();
    atomic_store(&int8_mode, mode == CITER_INT8_AUTO ? INT8_AUTO : mode ? INT8_ON : INT8_OFF);
    return old == INT8_AUTO ? CITER_INT8_AUTO : old == INT8_ON;
}

/* ---- int8 activations ---- */

/* The calling thread's buffer for a quantized activation vector, kept between calls (a
 * matvec quantizes x in the caller before the pool's threads read it). */
static pthread_key_t xq8_key;
static pthread_once_t xq8_once = PTHREAD_ONCE_INIT;

typedef struct {
    int64_t cap;
    citer_xq8 x;
} xq8_buf;

#define XQ8_HEAD ((sizeof(xq8_buf) + 63) / 64 * 64) /* the arrays start a cache line */

static void xq8_free(void *p) { free(p); }
static void xq8_key_init(void) { pthread_key_create(&xq8_key, xq8_free); }

/* Bytes of a quantized vector of n elements (q, c128, c8, dl, d, sx, cb), rounded up to whole
 * cache lines. */
static size_t xq8_bytes(int64_t n)
{
    return ((size_t)n / 32 * 3 * sizeof(float) + (size_t)n / 4 * 12 + (size_t)n + 63) / 64 * 64;
}

/* Point q's arrays into mem (64-byte aligned, xq8_bytes(n) bytes). The arrays the row kernels
 * read 64 bytes at a time from every other block come first, each n bytes long, so that those
 * loads do not straddle cache lines when n is a multiple of 64 (n is a multiple of 32, so the
 * 4-byte arrays after them stay aligned). */
static void xq8_place(citer_xq8 *q, void *mem, int64_t n)
{
    q->q = mem;
    q->c128 = (int32_t *)(q->q + n);
    q->c8 = q->c128 + n / 4;
    q->dl = (float *)(q->c8 + n / 4);
    q->d = q->dl + n / 4;
    q->sx = q->d + n / 32;
    q->cb = (int32_t *)(q->sx + n / 32);
}

static void quantize_into(citer_xq8 *q, const float *x, int64_t n)
{
    q->n = n;
    for (int64_t i = 0; i < n / QK; i++) {
        const float *v = x + i * QK;
        float amax = 0;
        for (int k = 0; k < QK; k++) amax = fmaxf(amax, fabsf(v[k]));
        float d = amax / 127, id = d > 0 ? 1 / d : 0;
        q->d[i] = d;
        for (int k = 0; k < QK; k++) q->q[i * QK + k] = (int8_t)lrintf(v[k] * id);
        int32_t all = 0;
        for (int g = 0; g < 8; g++) {
            const int8_t *p = q->q + i * QK + 4 * g;
            int32_t sum = p[0] + p[1] + p[2] + p[3];
            all += sum;
            q->dl[i * 8 + g] = d;
            q->c128[i * 8 + g] = -128 * sum;
            q->c8[i * 8 + g] = -8 * sum;
        }
        q->sx[i] = d * (float)all;
        q->cb[i] = -128 * all;
    }
}

/* Quantize x (n a multiple of 32) into the calling thread's buffer. */
static const citer_xq8 *quantize_activations(const citer_kernel_set *k8, const float *x, int64_t n)
{
    pthread_once(&xq8_once, xq8_key_init);
    xq8_buf *b = pthread_getspecific(xq8_key);
    if (!b || b->cap < n) {
        free(b);
        b = xaligned_alloc(64, XQ8_HEAD + xq8_bytes(n));
        b->cap = n;
        xq8_place(&b->x, (uint8_t *)b + XQ8_HEAD, n);
        pthread_setspecific(xq8_key, b);
    }
    (k8->quantize8 ? k8->quantize8 : quantize_into)(&b->x, x, n);
    return &b->x;
}

/* ---- attention helpers ---- */

static void sdot_rows(const float *q, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = sdot_f32(q, rows + (size_t)i * stride, d);
}

static void saxpy_rows(const float *a, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * stride;
        for (int64_t k = 0; k < d; k++) out[k] += a[i] * r[k];
    }
}

void citer_dot_rows(const float *q, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    const citer_kernel_set *k = kset();
    (k->dot_rows ? k->dot_rows : sdot_rows)(q, rows, stride, n, d, out);
}

void citer_axpy_rows(const float *a, const float *rows, size_t stride, int64_t n, int64_t d, float *out)
{
    const citer_kernel_set *k = kset();
    (k->axpy_rows ? k->axpy_rows : saxpy_rows)(a, rows, stride, n, d, out);
}

/* ---- matvec ---- */

/* One matrix of a matvec job. */
typedef struct {
    const citer_matrix *w;
    float *y;
    citer_dot8_fn dot8;                          /* int8 activations, or NULL: */
    const citer_kernel_set *packed;              /* w->packed and the set of its kernels, or NULL */
    citer_dot_fn dot;                            /* a dedicated row kernel, or NULL: */
    citer_dot4_fn dot4;                          /* wide rows four at a time, or NULL */
    void (*deq)(const uint8_t *blk, float *out); /* per-block dequantizer + dot_f32 */
    int64_t block_elems;
    size_t block_bytes;
    int64_t first; /* index of its first row in the job's concatenated rows */
} matvec_part;

typedef struct {
    const float *x;
    const citer_xq8 *xq; /* x quantized, when a part uses int8 activations */
    const citer_kernel_set *ks;
    int n;
    matvec_part part[4];
} matvec_job;

/* Row dot for types without a dedicated kernel: dequantize block by block into a stack
 * buffer and dot it with the matching slice of x. */
static float dot_by_blocks(const matvec_job *j, const matvec_part *p, const uint8_t *row)
{
    float buf[QKK];
    float t = 0;
    int64_t nb = p->w->cols / p->block_elems;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = row + (size_t)i * p->block_bytes;
        if (p->deq) p->deq(blk, buf);
        else citer_dequantize_block(p->w->type, blk, buf);
        t += j->ks->dot_f32(buf, j->x + i * p->block_elems, p->block_elems);
    }
    return t;
}

static void matvec_rows(void *arg, int64_t begin, int64_t end)
{
    const matvec_job *j = arg;
    for (int k = 0; k < j->n; k++) {
        const matvec_part *p = &j->part[k];
        int64_t b = begin > p->first ? begin - p->first : 0, e = end - p->first;
        if (e > p->w->rows) e = p->w->rows;
        if (p->packed) { /* whole sets of 16 rows: those whose first row is in [b, e) */
            int64_t s0 = (b + 15) / 16, s1 = (e + 15) / 16;
            if (s1 > s0) p->packed->packed_matvec(p->w->packed, s0, s1, p->w->cols / QK, j->xq, p->y);
            continue;
        }
        const uint8_t *base = p->w->data;
        int64_t r = b;
        if (p->dot4)
            for (; r + 4 <= e; r += 4) p->dot4(base + (size_t)r * p->w->row_bytes, p->w->row_bytes, j->x, p->w->cols, p->y + r);
        for (; r < e; r++) {
            const uint8_t *row = base + (size_t)r * p->w->row_bytes;
            p->y[r] = p->dot8 ? p->dot8(row, j->xq, p->w->cols)
                      : p->dot ? p->dot(row, j->x, p->w->cols) : dot_by_blocks(j, p, row);
        }
    }
}

/* The set whose int8 kernels run with set ks: the AVX-512 int8 kernels need VNNI; without it,
 * the scalar int8 kernels. */
static const citer_kernel_set *int8_set(const citer_kernel_set *ks)
{
    return ks == &citer_kernels_avx512 && !citer_cpu_has_avx512vnni() ? &citer_kernels_scalar : ks;
}

/* The int8 row kernel of set k8 for a weight type, or NULL. */
static citer_dot8_fn dot8_for(const citer_kernel_set *k8, int type)
{
    switch (type) {
    case GGML_Q8_0: return k8->q8_0_i8;
    case GGML_Q4_0: return k8->q4_0_i8;
    case GGML_Q4_K: return k8->q4_k_i8;
    case GGML_Q5_K: return k8->q5_k_i8;
    case GGML_Q6_K: return k8->q6_k_i8;
    default: return NULL;
    }
}

/* Whether Q8_0, Q4_0 and K-quant weights get int8 activations with kernel set ks
 * (the int8 kernels are int8_set(ks)'s; a set without them, AVX2, keeps f32 activations even
 * when on). */
static int int8_activations(const citer_kernel_set *ks)
{
    int m = int8_setting();
    if (m == INT8_AUTO) return int8_set(ks) == ks && ks->i8_matmul != NULL;
    return m == INT8_ON;
}

int citer_int8_activations(void)
{
    const citer_kernel_set *ks = kset();
    return int8_activations(ks) && int8_set(ks)->q8_0_i8 != NULL;
}

/* The set whose packed kernels serve m now, or NULL. */
static const citer_kernel_set *pack_set(const citer_matrix *m)
{
    const citer_kernel_set *ks = kset();
    if (m->type != GGML_Q8_0 || m->rows <= 0 || m->rows % 16 || !int8_activations(ks)) return NULL;
    ks = int8_set(ks);
    return ks->pack_q8_0 && ks->packed_matvec && ks->packed_matmul && ks->i8_prep ? ks : NULL;
}

size_t citer_matrix_pack_bytes(const citer_matrix *m)
{
    return pack_set(m) ? m->row_bytes * (size_t)m->rows : 0; /* the same bytes, rearranged */
}

typedef struct {
    const citer_kernel_set *ks;
    const citer_matrix *m;
    uint8_t *dst;
} pack_job;

static void pack_sets(void *arg, int64_t begin, int64_t end)
{
    const pack_job *j = arg;
    j->ks->pack_q8_0(j->m->data, j->m->row_bytes, begin, end, j->m->cols / QK, j->dst);
}

void citer_matrix_pack(citer_matrix *m, void *dst)
{
    pack_job j = {pack_set(m), m, dst};
    if (!j.ks) return;
    citer_parallel_for(m->rows / 16, pack_sets, &j);
    m->packed = dst;
}

static void matvec_part_init(matvec_part *p, const citer_kernel_set *ks, const citer_matrix *w, float *y,
                             int64_t first)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->y = y;
    p->first = first;
    citer_block_geometry(w->type, &p->block_elems, &p->block_bytes);
    switch (w->type) {
    case GGML_F32: p->dot = ks->f32; break;
    case GGML_F16: p->dot = ks->f16, p->dot4 = w->cols > CITER_DOT4_COLS ? ks->f16x4 : NULL; break;
    case GGML_BF16: p->dot = ks->bf16, p->dot4 = w->cols > CITER_DOT4_COLS ? ks->bf16x4 : NULL; break;
    case GGML_Q8_0: p->dot = ks->q8_0; break;
    case GGML_Q4_0: p->dot = ks->q4_0; break;
    case GGML_Q4_K: p->dot = ks->q4_k; p->deq = ks->deq_q4_k; break;
    case GGML_Q5_K: p->dot = ks->q5_k; p->deq = ks->deq_q5_k; break;
    case GGML_Q6_K: p->dot = ks->q6_k; p->deq = ks->deq_q6_k; break;
    default: break;
    }
    if (int8_activations(ks)) {
        p->dot8 = dot8_for(int8_set(ks), w->type);
        p->packed = w->packed ? pack_set(w) : NULL;
    }
}

void citer_matvec_multi(const citer_matrix *const *w, int n, const float *x, float *const *y)
{
    matvec_job j;
    j.x = x;
    j.xq = NULL;
    j.ks = kset();
    j.n = 0;
    int64_t rows = 0;
    for (int k = 0; k < n && k < 4; k++) {
        if (w[k]->rows <= 0) continue;
        if (!citer_type_supported(w[k]->type)) { /* citer_matrix_init refuses these: zeros, not a crash */
            memset(y[k], 0, sizeof(float) * (size_t)w[k]->rows);
            continue;
        }
        matvec_part_init(&j.part[j.n++], j.ks, w[k], y[k], rows);
        rows += w[k]->rows;
    }
    for (int k = 0; k < j.n; k++)
        if (j.part[k].dot8 && !j.xq) j.xq = quantize_activations(int8_set(j.ks), x, j.part[k].w->cols);
    if (rows > 0) citer_parallel_for(rows, matvec_rows, &j);
}

void citer_matvec(const citer_matrix *w, const float *x, float *y) { citer_matvec_multi(&w, 1, x, &y); }

/* ---- matmul ---- */

/* Rows of W dequantized per sgemm call: 128 x 4864 f32 is 2.4 MB, about an L2. */
#define TILE 128
/* Up to this many tokens the small-batch path, beyond it sgemm. bench/bench_smallbatch on the
 * Qwen2.5-1.5B shapes in Q8_0 (2 cores, AVX-512): the small path is 10-60% faster up to T = 64
 * and still ahead at 128, but it reads all T activation vectors again for every 4 rows, which
 * leaves the caches for long prompts; sgemm blocks them. CITER_MATMUL_SMALL_T overrides it. */
#define SMALL_T_DEFAULT 64
/* Below this many tokens, T matvecs (the bits of decoding them one by one): at T = 2 or 3 the
 * small-batch path cost 3-4 matvecs on 1536-column matrices (converting the weights to f32
 * costs about one matvec, and 2-3 tokens leave the tile's FMAs waiting on loads), ~1.5 on 8960
 * columns; the route bench's 2- and 3-token appends were faster as matvecs. */
#define SMALL_MIN_T 4
/* The same with int8 activations and a SIMD int8 batch kernel: its tiles need no f32 copy of
 * the weights, and 2 tokens already cost less than 2 matvecs (bench/bench_smallbatch). */
#define SMALL_MIN_T8 2
/* Tokens per int8 matmul call: their quantized activations stay in L2. */
#define I8_BATCH 64
/* How far ahead (in groups of 4 rows) the small-batch path prefetches weights. */
#ifndef PREFETCH_GROUPS
#define PREFETCH_GROUPS 2
#endif
/* The same for the int8 small-batch path, in rows. */
#ifndef PREFETCH_ROWS8
#define PREFETCH_ROWS8 4
#endif

static atomic_int small_limit = -1; /* -1: not yet read from the environment */

int citer_matmul_small_limit(void)
{
    int v = atomic_load_explicit(&small_limit, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("CITER_MATMUL_SMALL_T");
        v = e && *e ? atoi(e) : SMALL_T_DEFAULT;
        if (v < 1) v = 1;
        atomic_store(&small_limit, v);
    }
    return v;
}

int citer_set_matmul_small_limit(int t)
{
    int old = citer_matmul_small_limit();
    atomic_store(&small_limit, t < 1 ? SMALL_T_DEFAULT : t);
    return old;
}

/* A row of W as f32: the kernel set's dequantizer where it has one, else the reference. */
static void deq_row(const citer_kernel_set *ks, const citer_matrix *w, const uint8_t *row, float *dst)
{
    if (ks->deq_row && ks->deq_row(w->type, row, dst, w->cols)) return;
    citer_dequantize_row(w->type, row, dst, w->cols);
}

typedef struct {
    const citer_matrix *w;
    const float *X;
    float *Y;
    int64_t T;
    const citer_kernel_set *ks;
} matmul_job;

/* Groups of 4 rows [begin, end): dequantize the group once, then all T tokens. */
static void matmul_small(void *arg, int64_t begin, int64_t end)
{
    const matmul_job *j = arg;
    const citer_matrix *w = j->w;
    int64_t cols = w->cols, T = j->T;
    float *buf = xmalloc(sizeof(float) * (size_t)(4 * cols + 4 * T));
    float *out = buf + 4 * cols;
    void (*tile4)(const float *const *, const float *, int64_t, int64_t, float *) =
        j->ks->tile4 ? j->ks->tile4 : citer_kernels_scalar.tile4;
    for (int64_t g = begin; g < end; g++) {
        int64_t r0 = 4 * g, nr = w->rows - r0 < 4 ? w->rows - r0 : 4;
        const float *wr[4];
        for (int64_t i = 0; i < 4; i++) {
            float *dst = buf + i * cols;
            if (i >= nr) { /* past the last row: zeros, results dropped */
                memset(dst, 0, sizeof(float) * (size_t)cols);
                wr[i] = dst;
                continue;
            }
            const uint8_t *row = (const uint8_t *)w->data + (size_t)(r0 + i) * w->row_bytes;
            if (w->type == GGML_F32) {
                wr[i] = (const float *)row;
            } else {
                deq_row(j->ks, w, row, dst);
                wr[i] = dst;
            }
        }
        /* the weights PREFETCH_GROUPS groups ahead are requested while this one computes:
         * without it the memory stream stalls at every tile (measured: -15 to -25% time) */
        if (g + PREFETCH_GROUPS < end) {
            int64_t pr = r0 + 4 * PREFETCH_GROUPS, pn = w->rows - pr < 4 ? w->rows - pr : 4;
            const char *p = (const char *)w->data + (size_t)pr * w->row_bytes;
            for (size_t o = 0; o < (size_t)pn * w->row_bytes; o += 64) __builtin_prefetch(p + o);
        }
        tile4(wr, j->X, T, cols, out);
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < nr; i++) j->Y[t * w->rows + r0 + i] = out[4 * t + i];
    }
    free(buf);
}

/* The matmul with int8 activations (Q8_0, Q4_0): the T tokens quantized once for every matrix
 * that takes them (q/k/v, gate/up), each row read once for them all; every output has the bits
 * of the int8 matvec of its token (the batch kernels repeat the matvec kernels' arithmetic). */
typedef struct {
    const citer_kernel_set *k8;
    const float *X; /* T x n */
    int64_t T, n;
    citer_xq8 *xq;  /* [T], or NULL when only prep is wanted */
    char *mem;      /* their arrays */
    void *prep;     /* laid out by k8's i8_prep for its batch kernel, or NULL (no batch kernel) */
} i8_batch;

/* Blocks [begin, end) of every token: straight into the batch kernel's layout, and/or quantized
 * as vectors. Split by blocks, not tokens: the layout interleaves the tokens within
 * a block, so threads working on neighbouring tokens would share its cache lines. */
static void quantize_work(void *arg, int64_t begin, int64_t end)
{
    const i8_batch *q = arg;
    void (*quantize)(citer_xq8 *, const float *, int64_t) = q->k8->quantize8 ? q->k8->quantize8 : quantize_into;
    for (int64_t t = 0; t < q->T; t++) {
        if (q->prep) q->k8->i8_quantize_blocks(q->prep, q->X + t * q->n, t, begin, end);
        if (!q->xq) continue;
        const citer_xq8 *x = &q->xq[t];
        citer_xq8 part = {.n = (end - begin) * QK, .q = x->q + begin * QK, .d = x->d + begin, .sx = x->sx + begin,
                          .cb = x->cb + begin, .dl = x->dl + 8 * begin, .c128 = x->c128 + 8 * begin,
                          .c8 = x->c8 + 8 * begin};
        quantize(&part, q->X + t * q->n + begin * QK, part.n);
    }
}

/* want_prep: the set's batch-kernel layout (Q8_0, Q4_0 with a SIMD batch kernel); want_xq: the
 * tokens as quantized vectors (K-quants, or the scalar tiles). */
static void i8_batch_init(i8_batch *q, const citer_kernel_set *k8, const float *X, int64_t T, int64_t n, int want_prep,
                          int want_xq)
{
    q->k8 = k8, q->X = X, q->T = T, q->n = n;
    q->prep = want_prep ? k8->i8_prep(T, n) : NULL;
    q->xq = NULL, q->mem = NULL;
    if (want_xq) {
        q->xq = xmalloc(sizeof *q->xq * (size_t)T);
        q->mem = xaligned_alloc(64, xq8_bytes(n) * (size_t)T);
        for (int64_t t = 0; t < T; t++) {
            xq8_place(&q->xq[t], q->mem + xq8_bytes(n) * (size_t)t, n);
            q->xq[t].n = n;
        }
    }
    citer_parallel_for(n / QK, quantize_work, q);
}

static void i8_batch_free(i8_batch *q)
{
    free(q->prep);
    free(q->mem);
    free(q->xq);
}

/* Up to 4 matrices with the same columns over one batch, in one dispatch to the pool: work
 * item i is a set of 16 rows (the set's batch kernel) or a row (the scalar tiles) of the
 * matrix k with first[k] <= i < first[k+1]. */
typedef struct {
    const i8_batch *q;
    int nw;
    const citer_matrix *w[4];
    int packed[4]; /* use w->packed with the set's packed kernels */
    float *Y[4];
    int64_t first[5];
} matmul8_job;

static void matmul8_rows(const i8_batch *q, const citer_matrix *w, float *Y, int64_t begin, int64_t end)
{
    int64_t T = q->T;
    void (*tile)(const uint8_t *, const citer_xq8 *const[4], int64_t, float[4]) =
        w->type == GGML_Q8_0 ? stile8_q8_0 : stile8_q4_0;
    for (int64_t r = begin; r < end; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (r + PREFETCH_ROWS8 < end) {
            const char *p = (const char *)row + PREFETCH_ROWS8 * w->row_bytes;
            for (size_t o = 0; o < w->row_bytes; o += 64) __builtin_prefetch(p + o);
        }
        for (int64_t t0 = 0; t0 < T; t0 += 4) {
            const citer_xq8 *x[4];
            float out[4];
            int nt = T - t0 < 4 ? (int)(T - t0) : 4;
            for (int t = 0; t < 4; t++) x[t] = &q->xq[t0 + (t < nt ? t : nt - 1)]; /* a short tile repeats its last token */
            tile(row, x, w->cols, out);
            for (int t = 0; t < nt; t++) Y[(t0 + t) * w->rows + r] = out[t];
        }
    }
}

static int is_kquant(int type) { return type == GGML_Q4_K || type == GGML_Q5_K || type == GGML_Q6_K; }

/* Rows [begin, end) of a K-quant matrix: the set's multi-token kernel, or its row dot per token. */
static void matmul8_kquant(const i8_batch *q, const citer_matrix *w, float *Y, int64_t begin, int64_t end)
{
    const citer_kernel_set *k8 = q->k8;
    citer_dot8_fn dot = dot8_for(k8, w->type);
    for (int64_t r = begin; r < end; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (k8->kq_rows) k8->kq_rows(w->type, row, q->xq, q->T, w->cols, Y + r, w->rows);
        else
            for (int64_t t = 0; t < q->T; t++) Y[t * w->rows + r] = dot(row, &q->xq[t], w->cols);
    }
}

static void matmul8_work(void *arg, int64_t begin, int64_t end)
{
    const matmul8_job *j = arg;
    const i8_batch *q = j->q;
    for (int k = 0; k < j->nw; k++) {
        int64_t b = begin > j->first[k] ? begin : j->first[k], e = end < j->first[k + 1] ? end : j->first[k + 1];
        if (b >= e) continue;
        b -= j->first[k], e -= j->first[k];
        const citer_matrix *w = j->w[k];
        if (is_kquant(w->type)) matmul8_kquant(q, w, j->Y[k], b, e);
        else if (!q->prep) matmul8_rows(q, w, j->Y[k], b, e);
        else if (j->packed[k]) q->k8->packed_matmul(w->packed, w->rows, b, e, q->prep, q->T, w->cols, j->Y[k]);
        else q->k8->i8_matmul(w->type, w->data, w->row_bytes, w->rows, b, e, q->prep, q->T, w->cols, j->Y[k]);
    }
}

/* nw <= 4 matrices of the same columns, each int8-capable in k8 (Q8_0, Q4_0, K-quants), in
 * chunks of I8_BATCH tokens: their quantized activations stay in L2 (the weights are read once
 * per chunk). */
static void matmul_i8(const citer_kernel_set *k8, const citer_matrix *const *w, int nw, const float *X, int64_t T,
                      float *const *Y)
{
    int64_t n = w[0]->cols;
    int want_prep = 0, want_xq = 0;
    for (int k = 0; k < nw; k++) {
        if (is_kquant(w[k]->type) || !k8->i8_matmul) want_xq = 1;
        else want_prep = 1;
    }
    for (int64_t t0 = 0; t0 < T; t0 += I8_BATCH) {
        int64_t nt = T - t0 < I8_BATCH ? T - t0 : I8_BATCH;
        i8_batch q;
        i8_batch_init(&q, k8, X + t0 * n, nt, n, want_prep, want_xq);
        matmul8_job j = {&q, nw, {0}, {0}, {0}, {0}};
        for (int k = 0; k < nw; k++) {
            j.w[k] = w[k];
            j.packed[k] = w[k]->packed && pack_set(w[k]) == k8;
            j.Y[k] = Y[k] + t0 * w[k]->rows;
            int sets = q.prep && !is_kquant(w[k]->type); /* work items: sets of 16 rows, else rows */
            j.first[k + 1] = j.first[k] + (sets ? (w[k]->rows + 15) / 16 : w[k]->rows);
        }
        citer_parallel_for(j.first[nw], matmul8_work, &j);
        i8_batch_free(&q);
    }
}

static void matmul_tiles(void *arg, int64_t begin, int64_t end)
{
    const matmul_job *j = arg;
    const citer_matrix *w = j->w;
    float *buf = NULL;
    if (w->type != GGML_F32) buf = xmalloc((size_t)TILE * (size_t)w->cols * sizeof(float));
    for (int64_t t = begin; t < end; t++) {
        int64_t r0 = t * TILE, nr = w->rows - r0 < TILE ? w->rows - r0 : TILE;
        const uint8_t *src = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
        const float *A;
        if (w->type == GGML_F32) {
            A = (const float *)src;
        } else {
            for (int64_t r = 0; r < nr; r++) deq_row(j->ks, w, src + (size_t)r * w->row_bytes, buf + r * w->cols);
            A = buf;
        }
        /* Y[:, r0:r0+nr] (T x nr, leading dim rows) = X (T x cols) . A^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->T, (int)nr, (int)w->cols, 1.0f,
                    j->X, (int)w->cols, A, (int)w->cols, 0.0f, j->Y + r0, (int)w->rows);
    }
    free(buf);
}

/* 1 if w's matmul takes int8 activations: only where the matvec also does (the set has int8
 * kernels for the type). */
static int matmul_int8(const citer_kernel_set *ks, const citer_kernel_set *k8, const citer_matrix *w)
{
    return int8_activations(ks) && dot8_for(k8, w->type) != NULL;
}

/* The fewest tokens an int8 matmul of w takes (below: matvecs): 2 with a SIMD batch kernel for
 * the type, else SMALL_MIN_T. */
static int64_t int8_min_t(const citer_kernel_set *k8, const citer_matrix *w)
{
    return (is_kquant(w->type) ? k8->kq_rows != NULL : k8->i8_matmul != NULL) ? SMALL_MIN_T8 : SMALL_MIN_T;
}

void citer_matmul(const citer_matrix *w, const float *X, int64_t T, float *Y)
{
    if (w->rows <= 0 || T <= 0) return;
    if (!citer_type_supported(w->type)) {
        memset(Y, 0, sizeof(float) * (size_t)(w->rows * T));
        return;
    }
    const citer_kernel_set *ks = kset(), *k8 = int8_set(ks);
    int i8 = matmul_int8(ks, k8, w);
    if (T < (i8 ? int8_min_t(k8, w) : SMALL_MIN_T)) {
        for (int64_t t = 0; t < T; t++) citer_matvec(w, X + t * w->cols, Y + t * w->rows);
        return;
    }
    if (i8) {
        /* every T: a token gets the same bits whatever batch it comes in, and the SIMD int8
         * kernel outruns dequantize + sgemm about three times (bench_decode's prefill rows); a
         * packed copy needs no per-call transposition */
        matmul_i8(k8, &w, 1, X, T, &Y);
        return;
    }
    citer_blas_one_thread();
    matmul_job j = {w, X, Y, T, ks};
    if (T <= citer_matmul_small_limit()) {
        citer_parallel_for((w->rows + 3) / 4, matmul_small, &j);
        return;
    }
    citer_parallel_for((w->rows + TILE - 1) / TILE, matmul_tiles, &j);
}

void citer_matmul_multi(const citer_matrix *const *w, int n, const float *X, int64_t T, float *const *Y)
{
    const citer_kernel_set *ks = kset(), *k8 = int8_set(ks);
    int shared = n >= 1 && n <= 4;
    for (int k = 0; k < n && shared; k++)
        shared = w[k]->rows > 0 && w[k]->cols == w[0]->cols && matmul_int8(ks, k8, w[k]) && T >= int8_min_t(k8, w[k]);
    if (shared) matmul_i8(k8, w, n, X, T, Y);
    else
        for (int k = 0; k < n; k++) citer_matmul(w[k], X, T, Y[k]);
}

/* ---- softmax helpers ---- */

static float smax_f32(const float *x, int64_t n)
{
    float m = -INFINITY;
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] != x[i]) nan = 1;
        if (x[i] > m) m = x[i];
    }
    return nan ? NAN : m;
}

static double ssum_exp(const float *x, int64_t n, float shift)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += exp((double)x[i] - shift);
    return s;
}

float citer_max_f32(const float *x, int64_t n)
{
    const citer_kernel_set *k = kset();
    return (k->max_f32 ? k->max_f32 : smax_f32)(x, n);
}

static void sswiglu(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void citer_swiglu(float *gate, const float *up, int64_t n)
{
    const citer_kernel_set *k = kset();
    (k->swiglu ? k->swiglu : sswiglu)(gate, up, n);
}

double citer_sum_exp(const float *x, int64_t n, float shift)
{
    const citer_kernel_set *k = kset();
    return (k->sum_exp ? k->sum_exp : ssum_exp)(x, n, shift);
}
