#include "forward.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void rmsnorm(float *out, const float *x, const float *w, int d, float eps)
{
    double ss = 0;
    for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / d + eps));
    for (int i = 0; i < d; i++) out[i] = x[i] * scale * w[i];
}

/* Inverse frequencies of RoPE, with Llama-3 or linear scaling applied. */
static void rope_inv_freq(const citer_model *m, double *inv)
{
    const citer_config *c = &m->cfg;
    int half = c->head_dim / 2;
    for (int j = 0; j < half; j++) {
        double f = pow((double)c->rope_theta, -2.0 * j / c->head_dim);
        if (c->rope_factor > 0 && c->rope_original_context > 0) {
            double lo_wl = c->rope_original_context / c->rope_low_freq_factor;
            double hi_wl = c->rope_original_context / c->rope_high_freq_factor;
            double wl = 2 * M_PI / f;
            if (wl > lo_wl) f /= c->rope_factor;
            else if (wl >= hi_wl) {
                double smooth = (c->rope_original_context / wl - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        } else if (c->rope_factor > 0) {
            f /= c->rope_factor;
        }
        if (m->rope_freqs) f /= m->rope_freqs[j];
        inv[j] = f;
    }
}

/* Rotate every head of x (n_heads x head_dim) for position pos. */
static void rope(float *x, int n_heads, int hd, int layout, const float *cs, const float *sn)
{
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        if (layout == CITER_ROPE_HALVES) {
            for (int j = 0; j < half; j++) {
                float a = v[j], b = v[j + half];
                v[j] = a * cs[j] - b * sn[j];
                v[j + half] = b * cs[j] + a * sn[j];
            }
        } else {
            for (int j = 0; j < half; j++) {
                float a = v[2 * j], b = v[2 * j + 1];
                v[2 * j] = a * cs[j] - b * sn[j];
                v[2 * j + 1] = a * sn[j] + b * cs[j];
            }
        }
    }
}

/* Per-thread scratch memory, kept between calls so that a decode step allocates nothing (and
 * sequences used alternately from one thread share it). Slot 0 holds the activations of a chunk
 * (the calling thread), slot 1 attention scores (any pool thread, the caller included, while its
 * slot 0 is in use). Freed when the thread exits. */
typedef struct {
    size_t cap;
    _Alignas(64) float data[]; /* 64-byte vector loads of activations then stay within a cache line */
} scratch;

static pthread_key_t scratch_key[2];
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_keys(void)
{
    pthread_key_create(&scratch_key[0], free);
    pthread_key_create(&scratch_key[1], free);
}

static float *scratch_floats(int slot, size_t n)
{
    pthread_once(&scratch_once, scratch_keys);
    scratch *sc = pthread_getspecific(scratch_key[slot]);
    if (!sc || sc->cap < n) {
        free(sc);
        sc = xaligned_alloc(64, sizeof *sc + n * sizeof(float));
        sc->cap = n;
        pthread_setspecific(scratch_key[slot], sc);
    }
    return sc->data;
}

typedef struct {
    const citer_model *m;
    const citer_seq *s;
    int layer, n, pos0;
    const float *q; /* n x q_dim */
    float *out;     /* n x q_dim */
} attn_job;

/* One (position, kv head) pair per work item: the query heads sharing that kv head (GQA) each
 * get scores over the causal prefix, a softmax and a weighted sum of values. Keys and values
 * are rows at a stride of kv_dim inside a page of the cache; a page's keys are read once for
 * all heads of the group. */
static void attn_work(void *arg, int64_t begin, int64_t end)
{
    attn_job *J = arg;
    const citer_config *c = &J->m->cfg;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int ctx = J->pos0 + J->n;
    float *att = scratch_floats(1, (size_t)group * ctx);
    for (int64_t w = begin; w < end; w++) {
        int t = (int)(w / c->n_kv_heads), g = (int)(w % c->n_kv_heads);
        int len = J->pos0 + t + 1;
        const float *q = J->q + (size_t)t * qd + (size_t)g * group * hd;
        float *o = J->out + (size_t)t * qd + (size_t)g * group * hd;
        for (int p0 = 0; p0 < len; p0 += CITER_KV_PAGE) {
            int cnt = len - p0 < CITER_KV_PAGE ? len - p0 : CITER_KV_PAGE;
            const float *k = citer_seq_k(J->s, J->layer, p0) + (size_t)g * hd;
            for (int i = 0; i < group; i++) citer_dot_rows(q + (size_t)i * hd, k, (size_t)kvd, cnt, hd, att + (size_t)i * len + p0);
        }
        for (int i = 0; i < group; i++) {
            float *a = att + (size_t)i * len, mx = -INFINITY;
            for (int p = 0; p < len; p++) {
                a[p] *= scale;
                if (a[p] > mx) mx = a[p];
            }
            double sum = 0;
            for (int p = 0; p < len; p++) {
                a[p] = expf(a[p] - mx);
                sum += a[p];
            }
            float inv = (float)(1.0 / sum);
            for (int p = 0; p < len; p++) a[p] *= inv;
        }
        memset(o, 0, (size_t)group * hd * sizeof *o);
        for (int p0 = 0; p0 < len; p0 += CITER_KV_PAGE) {
            int cnt = len - p0 < CITER_KV_PAGE ? len - p0 : CITER_KV_PAGE;
            const float *v = citer_seq_v(J->s, J->layer, p0) + (size_t)g * hd;
            for (int i = 0; i < group; i++) citer_axpy_rows(att + (size_t)i * len + p0, v, (size_t)kvd, cnt, hd, o + (size_t)i * hd);
        }
    }
}

/* SwiGLU in chunks on the pool: n x F exponentials were the largest serial part of a batched
 * append (the second thread spun meanwhile). */
enum { SWIGLU_CHUNK = 2048 };
typedef struct {
    float *gate;
    const float *up;
    size_t n;
} swiglu_job;

static void swiglu_work(void *arg, int64_t begin, int64_t end)
{
    swiglu_job *j = arg;
    size_t b = (size_t)begin * SWIGLU_CHUNK, e = (size_t)end * SWIGLU_CHUNK < j->n ? (size_t)end * SWIGLU_CHUNK : j->n;
    citer_swiglu(j->gate + b, j->up + b, (int64_t)(e - b));
}

/* Per token, on the pool: x += r (the residual branch, when r is not NULL), then
 * out = rmsnorm(x) * w. */
typedef struct {
    float *x, *out;
    const float *r, *w;
    int d;
    float eps;
} norm_job;

static void norm_work(void *arg, int64_t begin, int64_t end)
{
    const norm_job *j = arg;
    for (int64_t t = begin; t < end; t++) {
        float *x = j->x + (size_t)t * j->d;
        if (j->r)
            for (int i = 0; i < j->d; i++) x[i] += j->r[(size_t)t * j->d + i];
        rmsnorm(j->out + (size_t)t * j->d, x, j->w, j->d, j->eps);
    }
}

static void add_rmsnorm(float *x, const float *r, float *out, const float *w, int n, int d, float eps)
{
    norm_job j = {x, out, r, w, d, eps};
    citer_parallel_for(n, norm_work, &j);
}

/* Y = X W^T for n rows: matrix-vector for one token, matrix-matrix for many. */
static void linear(const citer_matrix *w, const float *x, int n, float *y)
{
    if (n == 1) citer_matvec(w, x, y);
    else citer_matmul(w, x, n, y);
}

/* Several matrices over the same input (q/k/v, gate/up): one pass over x for a single token. */
static void linear_multi(const citer_matrix *const *w, int k, const float *x, int n, float *const *y)
{
    if (n == 1) citer_matvec_multi(w, k, x, y);
    else citer_matmul_multi(w, k, x, n, y);
}

static size_t al16(size_t n) { return (n + 15) / 16 * 16; }

/* One chunk of checked input. */
static void forward_chunk(const citer_model *m, citer_seq *s, const int32_t *tokens, int n, float *hidden,
                          float *logits, int all_logits)
{
    const citer_config *c = &m->cfg;
    int pos0 = s->len;
    int D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, F = c->ffn_dim;
    int half = hd / 2;
    size_t nn = (size_t)n;
    /* each buffer starts a cache line (sizes rounded up to 16 floats) */
    size_t sD = al16(nn * D), sq = al16(nn * qd), skv = al16(nn * kvd), sF = al16(nn * F), sh = al16(nn * half);
    float *x = scratch_floats(0, 2 * sD + 2 * sq + 2 * skv + 2 * sF + 2 * sh);
    float *h = x + sD, *q = h + sD, *k = q + sq, *v = k + skv, *att = v + skv;
    float *gate = att + sq, *up = gate + sF, *cs = up + sF, *sn = cs + sh;

    double inv[512];
    rope_inv_freq(m, inv);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < half; j++) {
            double a = (double)(pos0 + t) * inv[j];
            cs[(size_t)t * half + j] = (float)cos(a);
            sn[(size_t)t * half + j] = (float)sin(a);
        }
    for (int t = 0; t < n; t++) citer_matrix_row(&m->tok_embd, tokens[t], x + (size_t)t * D);

    /* Past the last layer's keys and values only the last token's state is wanted when nothing
     * else is returned (the LLM's catch-up in a routed run): the rest of that layer runs for it
     * alone, on xl, hl (nl tokens). */
    int last_only = !hidden && !all_logits && n > 1;
    float *xl = x, *hl = h;
    int nl = n;
    for (int l = 0; l < c->n_layers; l++) {
        const citer_layer *L = &m->layers[l];
        /* h holds the last layer's FFN output: the residual add goes with the norm */
        add_rmsnorm(x, l ? h : NULL, h, L->attn_norm, n, D, c->rms_eps);
        const citer_matrix *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *qkv[3] = {q, k, v};
        linear_multi(wqkv, 3, h, n, qkv);
        for (int t = 0; t < n; t++) {
            float *qt = q + (size_t)t * qd, *kt = k + (size_t)t * kvd, *vt = v + (size_t)t * kvd;
            if (L->bq)
                for (int i = 0; i < qd; i++) qt[i] += L->bq[i];
            if (L->bk)
                for (int i = 0; i < kvd; i++) kt[i] += L->bk[i];
            if (L->bv)
                for (int i = 0; i < kvd; i++) vt[i] += L->bv[i];
            if (L->q_norm) {
                for (int hh = 0; hh < c->n_heads; hh++) rmsnorm(qt + hh * hd, qt + hh * hd, L->q_norm, hd, c->rms_eps);
                for (int hh = 0; hh < c->n_kv_heads; hh++) rmsnorm(kt + hh * hd, kt + hh * hd, L->k_norm, hd, c->rms_eps);
            }
            rope(qt, c->n_heads, hd, c->rope_layout, cs + (size_t)t * half, sn + (size_t)t * half);
            rope(kt, c->n_kv_heads, hd, c->rope_layout, cs + (size_t)t * half, sn + (size_t)t * half);
            memcpy(citer_seq_k_write(s, l, pos0 + t), kt, (size_t)kvd * sizeof *kt);
            memcpy(citer_seq_v_write(s, l, pos0 + t), vt, (size_t)kvd * sizeof *vt);
        }
        int o = 0; /* the first token on from here */
        if (last_only && l == c->n_layers - 1) {
            o = n - 1;
            xl = x + (size_t)o * D, hl = h + (size_t)o * D, nl = 1;
        }
        attn_job job = {m, s, l, nl, pos0 + o, q + (size_t)o * qd, att};
        citer_parallel_for((int64_t)nl * c->n_kv_heads, attn_work, &job);
        linear(&L->wo, att, nl, hl);
        add_rmsnorm(xl, hl, hl, L->ffn_norm, nl, D, c->rms_eps);
        const citer_matrix *wgu[2] = {&L->w_gate, &L->w_up};
        float *gu[2] = {gate, up};
        linear_multi(wgu, 2, hl, nl, gu);
        swiglu_job sj = {gate, up, (size_t)nl * F};
        citer_parallel_for((int64_t)(((size_t)nl * F + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK), swiglu_work, &sj);
        linear(&L->w_down, gate, nl, hl);
    }
    s->len = pos0 + n;

    add_rmsnorm(xl, c->n_layers ? hl : NULL, xl, m->out_norm, nl, D, c->rms_eps);
    if (hidden) memcpy(hidden, x, nn * D * sizeof *x);
    if (logits) {
        if (all_logits) linear(&m->output, x, n, logits);
        else linear(&m->output, xl + (size_t)(nl - 1) * D, 1, logits);
    }
}

int citer_forward(const citer_model *m, citer_seq *s, const int32_t *tokens, int n, float *hidden, float *logits,
                  int all_logits)
{
    const citer_config *c = &m->cfg;
    if (n <= 0) return 0;
    /* The whole input is checked first, so a failed call leaves the sequence as it was. */
    if ((int64_t)s->len + n > c->context_length) {
        citer_set_error("context length %d exceeded (%lld positions)", c->context_length, (long long)s->len + n);
        return -1;
    }
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size) {
            citer_set_error("token id %d out of range (vocabulary %d)", tokens[t], c->vocab_size);
            return -1;
        }
    /* Long inputs go through in chunks, which bounds the activation buffers. */
    enum { CHUNK = 512 };
    for (int t = 0; t < n; t += CHUNK) {
        int k = n - t < CHUNK ? n - t : CHUNK;
        int last = t + k == n;
        forward_chunk(m, s, tokens + t, k, hidden ? hidden + (size_t)t * c->dim : NULL,
                      logits && (all_logits || last) ? logits + (all_logits ? (size_t)t * c->vocab_size : 0) : NULL,
                      all_logits);
    }
    return 0;
}
