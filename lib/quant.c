/* quant: the weight formats. f16/bf16 conversions, block geometry, reference dequantizers
 * (the definition every fast path is tested against) and simple round-to-nearest quantizers.
 * Block layouts are described in kernels_impl.h. */
#include <math.h>
#include <string.h>

#include "gguf.h"
#include "kernels_impl.h"
#include "util.h"

/* ---- geometry ---- */

int citer_block_geometry(int type, int64_t *elems, size_t *bytes)
{
    int64_t e;
    size_t b;
    switch (type) {
    case GGML_F32:  e = 1; b = 4; break;
    case GGML_F16:  e = 1; b = 2; break;
    case GGML_BF16: e = 1; b = 2; break;
    case GGML_Q8_0: e = QK; b = 34; break;
    case GGML_Q4_0: e = QK; b = 18; break;
    case GGML_Q4_1: e = QK; b = 20; break;
    case GGML_Q5_0: e = QK; b = 22; break;
    case GGML_Q5_1: e = QK; b = 24; break;
    case GGML_Q4_K: e = QKK; b = 144; break;
    case GGML_Q5_K: e = QKK; b = 176; break;
    case GGML_Q6_K: e = QKK; b = 210; break;
    default: return 0;
    }
    if (elems) *elems = e;
    if (bytes) *bytes = b;
    return 1;
}

int citer_type_supported(int type) { return citer_block_geometry(type, NULL, NULL); }

size_t citer_row_bytes(int type, int64_t n)
{
    int64_t e;
    size_t b;
    if (!citer_block_geometry(type, &e, &b) || n < 0 || n % e) return 0;
    return (size_t)(n / e) * b;
}

int citer_matrix_init(citer_matrix *m, int type, int64_t rows, int64_t cols, const void *data)
{
    int64_t e;
    if (!citer_block_geometry(type, &e, NULL)) {
        citer_set_error("unsupported weight type %d", type);
        return -1;
    }
    if (rows < 0 || cols <= 0 || cols % e) {
        citer_set_error("matrix of %lld x %lld does not fit type %d (blocks of %lld)",
                        (long long)rows, (long long)cols, type, (long long)e);
        return -1;
    }
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->data = data;
    m->row_bytes = citer_row_bytes(type, cols);
    m->packed = NULL;
    return 0;
}

/* ---- dequantization (the reference) ---- */

static void deq_q8_0(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b));
    for (int i = 0; i < QK; i++) y[i] = d * (float)(int8_t)b[2 + i];
}

static void deq_q4_0(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2;
    for (int i = 0; i < 16; i++) {
        y[i] = d * (float)((qs[i] & 15) - 8);
        y[i + 16] = d * (float)((qs[i] >> 4) - 8);
    }
}

static void deq_q4_1(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b)), m = citer_f16_to_f32(rd16(b + 2));
    const uint8_t *qs = b + 4;
    for (int i = 0; i < 16; i++) {
        y[i] = d * (float)(qs[i] & 15) + m;
        y[i + 16] = d * (float)(qs[i] >> 4) + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b));
    uint32_t qh = rd32(b + 2);
    const uint8_t *qs = b + 6;
    for (int i = 0; i < 16; i++) {
        int lo = (qs[i] & 15) | (int)((qh >> i) & 1) << 4;
        int hi = (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
        y[i] = d * (float)(lo - 16);
        y[i + 16] = d * (float)(hi - 16);
    }
}

static void deq_q5_1(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b)), m = citer_f16_to_f32(rd16(b + 2));
    uint32_t qh = rd32(b + 4);
    const uint8_t *qs = b + 8;
    for (int i = 0; i < 16; i++) {
        int lo = (qs[i] & 15) | (int)((qh >> i) & 1) << 4;
        int hi = (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
        y[i] = d * (float)lo + m;
        y[i + 16] = d * (float)hi + m;
    }
}

static void deq_q4_k(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b)), dmin = citer_f16_to_f32(rd16(b + 2));
    const uint8_t *sc = b + 4, *qs = b + 16;
    for (int i = 0; i < 8; i++) {
        int s, m;
        kquant_scale_min(sc, i, &s, &m);
        float ds = d * (float)s, dm = dmin * (float)m;
        const uint8_t *q = qs + 32 * (i / 2);
        int shift = 4 * (i & 1);
        for (int l = 0; l < 32; l++) y[32 * i + l] = ds * (float)((q[l] >> shift) & 15) - dm;
    }
}

static void deq_q5_k(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b)), dmin = citer_f16_to_f32(rd16(b + 2));
    const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
    for (int i = 0; i < 8; i++) {
        int s, m;
        kquant_scale_min(sc, i, &s, &m);
        float ds = d * (float)s, dm = dmin * (float)m;
        const uint8_t *q = qs + 32 * (i / 2);
        int shift = 4 * (i & 1);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 15) | ((qh[l] >> i) & 1) << 4;
            y[32 * i + l] = ds * (float)v - dm;
        }
    }
}

static void deq_q6_k(const uint8_t *b, float *y)
{
    float d = citer_f16_to_f32(rd16(b + 208));
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192) + 8 * h;
        float *o = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            int q0 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q1 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            o[l] = d * (float)(sc[l / 16] * q0);
            o[l + 32] = d * (float)(sc[2 + l / 16] * q1);
            o[l + 64] = d * (float)(sc[4 + l / 16] * q2);
            o[l + 96] = d * (float)(sc[6 + l / 16] * q3);
        }
    }
}

void citer_dequantize_block(int type, const uint8_t *blk, float *out)
{
    switch (type) {
    case GGML_F32: memcpy(out, blk, 4); break;
    case GGML_F16: out[0] = citer_f16_to_f32(rd16(blk)); break;
    case GGML_BF16: out[0] = citer_bf16_to_f32(rd16(blk)); break;
    case GGML_Q8_0: deq_q8_0(blk, out); break;
    case GGML_Q4_0: deq_q4_0(blk, out); break;
    case GGML_Q4_1: deq_q4_1(blk, out); break;
    case GGML_Q5_0: deq_q5_0(blk, out); break;
    case GGML_Q5_1: deq_q5_1(blk, out); break;
    case GGML_Q4_K: deq_q4_k(blk, out); break;
    case GGML_Q5_K: deq_q5_k(blk, out); break;
    case GGML_Q6_K: deq_q6_k(blk, out); break;
    default: break;
    }
}

void citer_dequantize_row(int type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    switch (type) {
    case GGML_F32: memcpy(dst, src, (size_t)n * 4); return;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = citer_f16_to_f32(rd16(p + 2 * i));
        return;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = citer_bf16_to_f32(rd16(p + 2 * i));
        return;
    }
    int64_t e;
    size_t b;
    if (!citer_block_geometry(type, &e, &b)) return;
    for (int64_t i = 0; i < n / e; i++) citer_dequantize_block(type, p + (size_t)i * b, dst + i * e);
}

/* ---- quantization (simple round-to-nearest, not error-optimal) ---- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The element of largest magnitude, with its sign. */
static float signed_absmax(const float *x, int n)
{
    float m = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(m)) m = x[i];
    return m;
}

/* Store scale d as f16 and return the value actually stored, so quants match it. */
static float put_f16(uint8_t *p, float d)
{
    uint16_t h = citer_f32_to_f16(d);
    wr16(p, h);
    return citer_f16_to_f32(h);
}

static void quant_q8_0(const float *x, uint8_t *b)
{
    float amax = fabsf(signed_absmax(x, QK));
    float d = put_f16(b, amax / 127.0f);
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < QK; i++) b[2 + i] = (uint8_t)(int8_t)clampi((int)lrintf(x[i] * id), -127, 127);
}

static void quant_q4_0(const float *x, uint8_t *b)
{
    float d = put_f16(b, signed_absmax(x, QK) / -8.0f);
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < 16; i++) {
        int lo = clampi((int)lrintf(x[i] * id) + 8, 0, 15);
        int hi = clampi((int)lrintf(x[i + 16] * id) + 8, 0, 15);
        b[2 + i] = (uint8_t)(lo | hi << 4);
    }
}

static void minmax(const float *x, int n, float *lo, float *hi)
{
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < *lo) *lo = x[i];
        if (x[i] > *hi) *hi = x[i];
    }
}

/* Q4_1 / Q5_1: x = d*q + m with q in [0, levels]. */
static void quant_affine32(const float *x, uint8_t *b, int levels, int *q)
{
    float lo, hi;
    minmax(x, QK, &lo, &hi);
    float d = put_f16(b, (hi - lo) / (float)levels);
    float m = put_f16(b + 2, lo);
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < QK; i++) q[i] = clampi((int)lrintf((x[i] - m) * id), 0, levels);
}

static void pack_nibbles(const int *q, uint8_t *qs)
{
    for (int i = 0; i < 16; i++) qs[i] = (uint8_t)((q[i] & 15) | (q[i + 16] & 15) << 4);
}

static void pack_qh32(const int *q, uint8_t *p)
{
    uint32_t qh = 0;
    for (int i = 0; i < QK; i++) qh |= (uint32_t)((q[i] >> 4) & 1) << i;
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(qh >> 8 * i);
}

static void quant_q4_1(const float *x, uint8_t *b)
{
    int q[QK];
    quant_affine32(x, b, 15, q);
    pack_nibbles(q, b + 4);
}

static void quant_q5_0(const float *x, uint8_t *b)
{
    int q[QK];
    float d = put_f16(b, signed_absmax(x, QK) / -16.0f);
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < QK; i++) q[i] = clampi((int)lrintf(x[i] * id) + 16, 0, 31);
    pack_qh32(q, b + 2);
    pack_nibbles(q, b + 6);
}

static void quant_q5_1(const float *x, uint8_t *b)
{
    int q[QK];
    quant_affine32(x, b, 31, q);
    pack_qh32(q, b + 4);
    pack_nibbles(q, b + 8);
}

/* Q4_K / Q5_K: per sub-block of 32 an affine map x = sc*q - mn (mn >= 0 so that 0 is
 * representable), with sc and mn quantized to 6 bits against the block's d and dmin. */
static void quant_k_affine(const float *x, uint8_t *b, int levels, int q[QKK])
{
    float scale[8], mins[8], smax = 0, mmax = 0;
    for (int i = 0; i < 8; i++) {
        float lo, hi;
        minmax(x + 32 * i, 32, &lo, &hi);
        if (lo > 0) lo = 0;
        scale[i] = (hi - lo) / (float)levels;
        mins[i] = -lo;
        if (scale[i] > smax) smax = scale[i];
        if (mins[i] > mmax) mmax = mins[i];
    }
    float d = put_f16(b, smax / 63.0f), dmin = put_f16(b + 2, mmax / 63.0f);
    int sc[8], mn[8];
    for (int i = 0; i < 8; i++) {
        sc[i] = d != 0 ? clampi((int)lrintf(scale[i] / d), 0, 63) : 0;
        mn[i] = dmin != 0 ? clampi((int)lrintf(mins[i] / dmin), 0, 63) : 0;
    }
    uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    for (int i = 0; i < 8; i++) {
        float ds = d * (float)sc[i], dm = dmin * (float)mn[i];
        float id = ds != 0 ? 1.0f / ds : 0;
        for (int l = 0; l < 32; l++)
            q[32 * i + l] = clampi((int)lrintf((x[32 * i + l] + dm) * id), 0, levels);
    }
}

static void quant_q4_k(const float *x, uint8_t *b)
{
    int q[QKK];
    quant_k_affine(x, b, 15, q);
    uint8_t *qs = b + 16;
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++)
            qs[32 * k + l] = (uint8_t)(q[64 * k + l] | q[64 * k + 32 + l] << 4);
}

static void quant_q5_k(const float *x, uint8_t *b)
{
    int q[QKK];
    quant_k_affine(x, b, 31, q);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++)
            qs[32 * k + l] = (uint8_t)((q[64 * k + l] & 15) | (q[64 * k + 32 + l] & 15) << 4);
    for (int i = 0; i < 8; i++)
        for (int l = 0; l < 32; l++) qh[l] |= (uint8_t)(((q[32 * i + l] >> 4) & 1) << i);
}

static void quant_q6_k(const float *x, uint8_t *b)
{
    float scale[16], smax = 0;
    for (int i = 0; i < 16; i++) {
        scale[i] = signed_absmax(x + 16 * i, 16) / -32.0f;
        if (fabsf(scale[i]) > smax) smax = fabsf(scale[i]);
    }
    float d = put_f16(b + 208, smax / 127.0f);
    int8_t *sc = (int8_t *)(b + 192);
    int q[QKK];
    for (int i = 0; i < 16; i++) {
        sc[i] = (int8_t)(d != 0 ? clampi((int)lrintf(scale[i] / d), -127, 127) : 0);
        float ds = d * (float)sc[i], id = ds != 0 ? 1.0f / ds : 0;
        for (int l = 0; l < 16; l++) q[16 * i + l] = clampi((int)lrintf(x[16 * i + l] * id), -32, 31) + 32;
    }
    for (int h = 0; h < 2; h++) {
        uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int *qq = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((qq[l] & 15) | (qq[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
            qh[l] = (uint8_t)((qq[l] >> 4) | (qq[l + 32] >> 4) << 2 | (qq[l + 64] >> 4) << 4 |
                              (qq[l + 96] >> 4) << 6);
        }
    }
}

int citer_quantize_row(int type, const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    void (*fn)(const float *, uint8_t *);
    switch (type) {
    case GGML_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, citer_f32_to_f16(src[i]));
        return 0;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, citer_f32_to_bf16(src[i]));
        return 0;
    case GGML_Q8_0: fn = quant_q8_0; break;
    case GGML_Q4_0: fn = quant_q4_0; break;
    case GGML_Q4_1: fn = quant_q4_1; break;
    case GGML_Q5_0: fn = quant_q5_0; break;
    case GGML_Q5_1: fn = quant_q5_1; break;
    case GGML_Q4_K: fn = quant_q4_k; break;
    case GGML_Q5_K: fn = quant_q5_k; break;
    case GGML_Q6_K: fn = quant_q6_k; break;
    default:
        citer_set_error("no quantizer for type %d", type);
        return -1;
    }
    int64_t e;
    size_t b;
    citer_block_geometry(type, &e, &b);
    if (n % e) {
        citer_set_error("row of %lld elements is not a multiple of %lld", (long long)n, (long long)e);
        return -1;
    }
    for (int64_t i = 0; i < n / e; i++) fn(src + i * e, p + (size_t)i * b);
    return 0;
}

void citer_matrix_row(const citer_matrix *w, int64_t r, float *out)
{
    citer_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->cols);
}
