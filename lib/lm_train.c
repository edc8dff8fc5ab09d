/* Training a Llama-architecture model: parameters in flat arrays, forward with saved
 * activations, backward, AdamW, checkpoints. See lm_train.h. */
#include "lm_train.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"


/* ---------------------------------------------------------------- configuration and layout */

int lmt_config_check(lmt_config *c)
{
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->ffn_dim <= 0 || c->vocab_size <= 0) {
        citer_set_error("model dimensions must be positive (dim %d, layers %d, heads %d, ffn %d, vocab %d)", c->dim,
                        c->n_layers, c->n_heads, c->ffn_dim, c->vocab_size);
        return -1;
    }
    if (c->n_kv_heads <= 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim <= 0) {
        if (c->dim % c->n_heads) {
            citer_set_error("dim %d is not a multiple of %d heads", c->dim, c->n_heads);
            return -1;
        }
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->n_heads % c->n_kv_heads) {
        citer_set_error("%d heads is not a multiple of %d kv heads", c->n_heads, c->n_kv_heads);
        return -1;
    }
    if (c->head_dim % 2 || c->head_dim > 1024) {
        citer_set_error("head dimension %d must be even and at most 1024", c->head_dim);
        return -1;
    }
    if (c->dim > (1 << 16) || c->ffn_dim > (1 << 18) || c->n_layers > 1024 || c->n_heads > 1024 ||
        c->vocab_size > (1 << 22) || (int64_t)c->n_heads * c->head_dim > (1 << 16)) {
        citer_set_error("model dimensions out of range for training");
        return -1;
    }
    if (!(c->rms_eps > 0)) c->rms_eps = 1e-5f;
    if (!(c->rope_theta > 0)) c->rope_theta = 10000.0f;
    if (c->context_length <= 0) c->context_length = 2048;
    if (c->bos >= c->vocab_size) c->bos = -1;
    if (c->eos >= c->vocab_size) c->eos = -1;
    return 0;
}

static void add_tensor(lmt_model *m, size_t *off, const char *name, int rows, int cols)
{
    lmt_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = *off;
    t->rows = rows;
    t->cols = cols;
    t->n = (size_t)rows * (cols ? (size_t)cols : 1);
    *off += t->n;
}

static void make_view(const lmt_model *m, float *base, lmt_view *v)
{
    const lmt_config *c = &m->cfg;
    int k = 0;
    v->embed = base + m->tensors[k++].off;
    for (int l = 0; l < c->n_layers; l++) {
        lmt_layer *L = &v->layers[l];
        L->attn_norm = base + m->tensors[k++].off;
        L->wq = base + m->tensors[k++].off;
        L->wk = base + m->tensors[k++].off;
        L->wv = base + m->tensors[k++].off;
        L->wo = base + m->tensors[k++].off;
        L->ffn_norm = base + m->tensors[k++].off;
        L->w_gate = base + m->tensors[k++].off;
        L->w_up = base + m->tensors[k++].off;
        L->w_down = base + m->tensors[k++].off;
    }
    v->out_norm = base + m->tensors[k++].off;
    v->lm_head = c->tied ? v->embed : base + m->tensors[k++].off;
}

lmt_model *lmt_model_new(const lmt_config *cin)
{
    lmt_config c = *cin;
    if (lmt_config_check(&c)) return NULL;
    lmt_model *m = xcalloc(1, sizeof *m);
    m->cfg = c;
    int D = c.dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim, F = c.ffn_dim;
    m->tensors = xcalloc((size_t)c.n_layers * 9 + 3, sizeof *m->tensors);
    size_t off = 0;
    char name[64];
    add_tensor(m, &off, "model.embed_tokens.weight", c.vocab_size, D);
    for (int l = 0; l < c.n_layers; l++) {
#define T(suffix, r, cc)                                                  \
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);         \
    add_tensor(m, &off, name, r, cc);
        T("input_layernorm.weight", D, 0);
        T("self_attn.q_proj.weight", qd, D);
        T("self_attn.k_proj.weight", kvd, D);
        T("self_attn.v_proj.weight", kvd, D);
        T("self_attn.o_proj.weight", D, qd);
        T("post_attention_layernorm.weight", D, 0);
        T("mlp.gate_proj.weight", F, D);
        T("mlp.up_proj.weight", F, D);
        T("mlp.down_proj.weight", D, F);
#undef T
    }
    add_tensor(m, &off, "model.norm.weight", D, 0);
    if (!c.tied) add_tensor(m, &off, "lm_head.weight", c.vocab_size, D);
    m->n_params = off;
    m->w = xcalloc(off, sizeof *m->w);
    m->g = xcalloc(off, sizeof *m->g);
    m->adam_m = xcalloc(off, sizeof *m->adam_m);
    m->adam_v = xcalloc(off, sizeof *m->adam_v);
    m->p.layers = xcalloc((size_t)c.n_layers, sizeof *m->p.layers);
    m->d.layers = xcalloc((size_t)c.n_layers, sizeof *m->d.layers);
    make_view(m, m->w, &m->p);
    make_view(m, m->g, &m->d);
    return m;
}

static void acts_free(lmt_acts *a);

void lmt_model_free(lmt_model *m)
{
    if (!m) return;
    acts_free(m->acts);
    free(m->w), free(m->g), free(m->adam_m), free(m->adam_v);
    free(m->p.layers), free(m->d.layers), free(m->tensors);
    free(m);
}

/* splitmix64: the one random source (initialisation and batch sampling). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(2 * M_PI * v);
}

void lmt_model_init(lmt_model *m, uint64_t seed)
{
    uint64_t s = seed ^ 0x5DEECE66Dull;
    double out_scale = 1.0 / sqrt(2.0 * m->cfg.n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const lmt_tensor *t = &m->tensors[i];
        float *p = m->w + t->off;
        if (!t->cols) {
            for (size_t j = 0; j < t->n; j++) p[j] = 1.0f;
            continue;
        }
        double sd = 0.02;
        if (strstr(t->name, "o_proj") || strstr(t->name, "down_proj")) sd *= out_scale;
        for (size_t j = 0; j < t->n; j++) p[j] = (float)(sd * rng_normal(&s));
    }
    memset(m->adam_m, 0, m->n_params * sizeof *m->adam_m);
    memset(m->adam_v, 0, m->n_params * sizeof *m->adam_v);
}

/* ---------------------------------------------------------------- Hugging Face in and out */

static void copy_matrix(const citer_matrix *src, float *dst)
{
    for (int64_t r = 0; r < src->rows; r++)
        citer_dequantize_row(src->type, (const uint8_t *)src->data + (size_t)r * src->row_bytes,
                             dst + (size_t)r * src->cols, src->cols);
}

lmt_model *lmt_model_load_hf(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        citer_set_error("%s: not a model directory", dir);
        return NULL;
    }
    citer_model *src = citer_model_load(dir);
    if (!src) return NULL;
    const citer_config *sc = &src->cfg;
    lmt_model *m = NULL;
    if (sc->arch != CITER_ARCH_LLAMA) {
        citer_set_error("%s: only llama models can be trained (this is %s)", dir, src->arch_name);
        goto done;
    }
    if (sc->rope_factor > 0) {
        citer_set_error("%s: rope scaling is not supported for training", dir);
        goto done;
    }
    lmt_config c = {sc->dim, sc->n_layers, sc->n_heads, sc->n_kv_heads, sc->head_dim, sc->ffn_dim, sc->vocab_size,
                    sc->context_length, sc->rms_eps, sc->rope_theta, sc->tied_embeddings, sc->bos, sc->eos};
    m = lmt_model_new(&c);
    if (!m) goto done;
    copy_matrix(&src->tok_embd, m->p.embed);
    memcpy(m->p.out_norm, src->out_norm, (size_t)c.dim * sizeof(float));
    if (!c.tied) copy_matrix(&src->output, m->p.lm_head);
    for (int l = 0; l < c.n_layers; l++) {
        const citer_layer *s = &src->layers[l];
        lmt_layer *L = &m->p.layers[l];
        memcpy(L->attn_norm, s->attn_norm, (size_t)c.dim * sizeof(float));
        memcpy(L->ffn_norm, s->ffn_norm, (size_t)c.dim * sizeof(float));
        copy_matrix(&s->wq, L->wq);
        copy_matrix(&s->wk, L->wk);
        copy_matrix(&s->wv, L->wv);
        copy_matrix(&s->wo, L->wo);
        copy_matrix(&s->w_gate, L->w_gate);
        copy_matrix(&s->w_up, L->w_up);
        copy_matrix(&s->w_down, L->w_down);
    }
done:
    citer_model_free(src);
    return m;
}

/* A float as the shortest decimal that reads back to it ("1e-05", not 9.99999974e-06). */
static json_object *json_float(float v)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtof(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

static json_object *config_json(const lmt_model *m, int f16)
{
    const lmt_config *c = &m->cfg;
    json_object *o = json_object_new_object();
    json_object *arch = json_object_new_array();
    json_object_array_add(arch, json_object_new_string("LlamaForCausalLM"));
    json_object_object_add(o, "architectures", arch);
    json_object_object_add(o, "model_type", json_object_new_string("llama"));
    json_object_object_add(o, "hidden_size", json_object_new_int(c->dim));
    json_object_object_add(o, "intermediate_size", json_object_new_int(c->ffn_dim));
    json_object_object_add(o, "num_hidden_layers", json_object_new_int(c->n_layers));
    json_object_object_add(o, "num_attention_heads", json_object_new_int(c->n_heads));
    json_object_object_add(o, "num_key_value_heads", json_object_new_int(c->n_kv_heads));
    json_object_object_add(o, "head_dim", json_object_new_int(c->head_dim));
    json_object_object_add(o, "hidden_act", json_object_new_string("silu"));
    json_object_object_add(o, "max_position_embeddings", json_object_new_int(c->context_length));
    json_object_object_add(o, "rms_norm_eps", json_float(c->rms_eps));
    json_object_object_add(o, "rope_theta", json_float(c->rope_theta));
    json_object_object_add(o, "attention_bias", json_object_new_boolean(0));
    json_object_object_add(o, "mlp_bias", json_object_new_boolean(0));
    json_object_object_add(o, "tie_word_embeddings", json_object_new_boolean(c->tied));
    json_object_object_add(o, "vocab_size", json_object_new_int(c->vocab_size));
    json_object_object_add(o, "bos_token_id", c->bos >= 0 ? json_object_new_int(c->bos) : NULL);
    json_object_object_add(o, "eos_token_id", c->eos >= 0 ? json_object_new_int(c->eos) : NULL);
    json_object_object_add(o, "torch_dtype", json_object_new_string(f16 ? "float16" : "float32"));
    json_object_object_add(o, "use_cache", json_object_new_boolean(1));
    return o;
}

static int write_text_file(const char *path, const char *text)
{
    citer_out *o = citer_out_open(path);
    if (!o) return -1;
    fputs(text, o->f);
    if (citer_out_commit(o)) return -1;
    return 0;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        citer_set_error("%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int lmt_model_save_hf(const lmt_model *m, const char *dir, int f16)
{
    if (make_dir(dir)) return -1;
    char path[4096];
    st_writer *w = st_writer_new();
    st_writer_metadata(w, "format", "pt");
    uint16_t *half = NULL;
    size_t half_cap = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const lmt_tensor *t = &m->tensors[i];
        uint64_t shape[2] = {(uint64_t)t->rows, (uint64_t)t->cols};
        int nd = t->cols ? 2 : 1;
        const float *p = m->w + t->off;
        if (f16) {
            xgrow((void **)&half, &half_cap, t->n, sizeof *half);
            for (size_t j = 0; j < t->n; j++) half[j] = citer_f32_to_f16(p[j]);
            st_add(w, t->name, ST_F16, nd, shape, half);
        } else {
            st_add(w, t->name, ST_F32, nd, shape, p);
        }
    }
    free(half);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_write(w, path);
    st_writer_free(w);
    if (rc) return -1;
    json_object *o = config_json(m, f16);
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = write_text_file(path, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return rc;
}

/* ---------------------------------------------------------------- activations */

typedef struct {
    float *x;       /* N x D  layer input (residual stream) */
    float *r1;      /* N      inverse RMS of x */
    float *h1;      /* N x D  RMSNorm(x) */
    float *q, *k, *v; /* N x qd, N x kvd (q, k after RoPE) */
    float *p;       /* B x H x T x T  attention probabilities */
    float *o;       /* N x qd attention output */
    float *x2;      /* N x D  after the attention residual */
    float *r2, *h2;
    float *gate, *up, *act; /* N x F */
} layer_acts;

struct lmt_acts {
    int B, T;
    layer_acts *L;
    float *xf, *rf, *hf; /* final residual, its inverse RMS, final norm output */
    float *logits;       /* N x V, turned into dlogits by the backward pass */
    double *row_loss;    /* N */
    float *cs, *sn;      /* T x head_dim/2 RoPE table */
    /* backward scratch */
    float *dx, *dh, *dq, *dk, *dv, *dout, *dgate, *dup;
    float *block; /* one allocation holds all of the above */
};

static void acts_free(lmt_acts *a)
{
    if (!a) return;
    free(a->block);
    free(a->L);
    free(a->row_loss);
    free(a);
}

static lmt_acts *acts_get(lmt_model *m, int B, int T)
{
    if (m->acts && m->acts->B == B && m->acts->T == T) return m->acts;
    acts_free(m->acts);
    const lmt_config *c = &m->cfg;
    size_t N = (size_t)B * T, D = c->dim, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, F = c->ffn_dim, V = c->vocab_size, half = c->head_dim / 2;
    size_t per_layer = N * D * 4 + N * 2 + N * qd * 2 + N * kvd * 2 + (size_t)B * c->n_heads * T * T + N * F * 3;
    size_t total = per_layer * c->n_layers + N * D * 2 + N + N * V + T * half * 2 + N * D * 2 + N * qd * 2 +
                   N * kvd * 2 + N * F * 2;
    lmt_acts *a = xcalloc(1, sizeof *a);
    a->B = B;
    a->T = T;
    a->L = xcalloc((size_t)c->n_layers, sizeof *a->L);
    float *p = a->block = xcalloc(total, sizeof *p);
#define TAKE(field, count) (field = p, p += (count))
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *L = &a->L[l];
        TAKE(L->x, N * D);
        TAKE(L->r1, N);
        TAKE(L->h1, N * D);
        TAKE(L->q, N * qd);
        TAKE(L->k, N * kvd);
        TAKE(L->v, N * kvd);
        TAKE(L->p, (size_t)B * c->n_heads * T * T);
        TAKE(L->o, N * qd);
        TAKE(L->x2, N * D);
        TAKE(L->r2, N);
        TAKE(L->h2, N * D);
        TAKE(L->gate, N * F);
        TAKE(L->up, N * F);
        TAKE(L->act, N * F);
    }
    TAKE(a->xf, N * D);
    TAKE(a->rf, N);
    TAKE(a->hf, N * D);
    TAKE(a->logits, N * V);
    TAKE(a->cs, T * half);
    TAKE(a->sn, T * half);
    TAKE(a->dx, N * D);
    TAKE(a->dh, N * D);
    TAKE(a->dq, N * qd);
    TAKE(a->dout, N * qd);
    TAKE(a->dk, N * kvd);
    TAKE(a->dv, N * kvd);
    TAKE(a->dgate, N * F);
    TAKE(a->dup, N * F);
#undef TAKE
    a->row_loss = xcalloc(N, sizeof *a->row_loss);
    /* RoPE angles exactly as the forward pass of the engine computes them. */
    for (int j = 0; j < (int)half; j++) {
        double inv = pow((double)c->rope_theta, -2.0 * j / c->head_dim);
        for (int t = 0; t < T; t++) {
            double ang = (double)t * inv;
            a->cs[(size_t)t * half + j] = (float)cos(ang);
            a->sn[(size_t)t * half + j] = (float)sin(ang);
        }
    }
    m->acts = a;
    return a;
}

/* ---------------------------------------------------------------- matrix products */

/* Row blocks of a product are independent sgemm calls run by the thread pool. */
typedef struct {
    int kind;
    int rows, in, out; /* rows of X (N), input and output widths */
    const float *X, *W, *dY;
    float *Y;
    float beta;
} gemm_job;

enum { FWD, BWD_X, BWD_W };

static void gemm_work(void *arg, int64_t b, int64_t e)
{
    const gemm_job *j = arg;
    int n = (int)(e - b);
    if (n <= 0) return;
    switch (j->kind) {
    case FWD: /* Y[b:e] = X[b:e] W^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, j->out, j->in, 1.0f, j->X + (size_t)b * j->in, j->in,
                    j->W, j->in, 0.0f, j->Y + (size_t)b * j->out, j->out);
        break;
    case BWD_X: /* dX[b:e] (+)= dY[b:e] W */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, j->in, j->out, 1.0f, j->dY + (size_t)b * j->out,
                    j->out, j->W, j->in, j->beta, j->Y + (size_t)b * j->in, j->in);
        break;
    case BWD_W: /* dW[b:e] += dY[:, b:e]^T X   (rows of W) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, j->in, j->rows, 1.0f, j->dY + b, j->out, j->X, j->in,
                    1.0f, j->Y + (size_t)b * j->in, j->in);
        break;
    }
}


/* Y = X W^T: X rows x in, W out x in. */
static void linear(const float *X, const float *W, float *Y, int rows, int in, int out)
{
    gemm_job j = {FWD, rows, in, out, X, W, NULL, Y, 0};
    citer_parallel_for(rows, gemm_work, &j);
}

/* dX (+)= dY W;  dW += dY^T X. */
static void linear_back(const float *X, const float *W, const float *dY, float *dX, float *dW, int rows, int in,
                        int out, int accumulate_dx)
{
    if (dX) {
        gemm_job j = {BWD_X, rows, in, out, NULL, W, dY, dX, accumulate_dx ? 1.0f : 0.0f};
        citer_parallel_for(rows, gemm_work, &j);
    }
    gemm_job j = {BWD_W, rows, in, out, X, NULL, dY, dW, 1.0f};
    citer_parallel_for(out, gemm_work, &j);
}

/* ---------------------------------------------------------------- layers */

static void rmsnorm_fwd(const float *x, const float *w, float *y, float *r, size_t N, int D, float eps)
{
    for (size_t t = 0; t < N; t++) {
        const float *xt = x + t * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xt[i] * xt[i];
        float scale = (float)(1.0 / sqrt(ss / D + eps));
        r[t] = scale;
        for (int i = 0; i < D; i++) y[t * D + i] = xt[i] * scale * w[i];
    }
}

/* dx (+)= d RMSNorm / dx . dy;  dw += sum over rows of dy * x * r. */
static void rmsnorm_back(const float *x, const float *w, const float *r, const float *dy, float *dx, float *dw,
                         size_t N, int D, int accumulate)
{
    for (size_t t = 0; t < N; t++) {
        const float *xt = x + t * D, *dyt = dy + t * D;
        float *dxt = dx + t * D;
        double dot = 0;
        for (int i = 0; i < D; i++) dot += (double)dyt[i] * w[i] * xt[i];
        double rt = r[t];
        float k = (float)(rt * rt * rt * dot / D);
        for (int i = 0; i < D; i++) {
            dw[i] += dyt[i] * xt[i] * r[t];
            float g = r[t] * w[i] * dyt[i] - xt[i] * k;
            dxt[i] = accumulate ? dxt[i] + g : g;
        }
    }
}

/* Rotate (dir 1) or rotate back (dir -1, the transpose: the backward pass) every head. */
static void rope_rows(float *x, size_t N, int T, int n_heads, int hd, const float *cs, const float *sn, int dir)
{
    int half = hd / 2, width = n_heads * hd;
    for (size_t row = 0; row < N; row++) {
        int pos = (int)(row % T);
        const float *c = cs + (size_t)pos * half, *s = sn + (size_t)pos * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + row * width + (size_t)h * hd;
            for (int j = 0; j < half; j++) {
                float a = v[j], b = v[j + half], sj = dir > 0 ? s[j] : -s[j];
                v[j] = a * c[j] - b * sj;
                v[j + half] = b * c[j] + a * sj;
            }
        }
    }
}

typedef struct {
    const lmt_config *c;
    int B, T;
    layer_acts *L;
    const float *dout;
    float *dq, *dk, *dv;
} attn_job;

/* Forward: one (sequence, head) per item. */
static void attn_fwd_work(void *arg, int64_t begin, int64_t end)
{
    attn_job *J = arg;
    const lmt_config *c = J->c;
    int T = J->T, H = c->n_heads, hd = c->head_dim, qd = H * hd, kvd = c->n_kv_heads * hd, group = H / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t w = begin; w < end; w++) {
        int b = (int)(w / H), h = (int)(w % H), g = h / group;
        const float *Q = J->L->q + (size_t)b * T * qd + (size_t)h * hd;
        const float *K = J->L->k + (size_t)b * T * kvd + (size_t)g * hd;
        const float *V = J->L->v + (size_t)b * T * kvd + (size_t)g * hd;
        float *P = J->L->p + (size_t)w * T * T;
        float *O = J->L->o + (size_t)b * T * qd + (size_t)h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, qd, K, kvd, 0.0f, P, T);
        for (int i = 0; i < T; i++) {
            float *row = P + (size_t)i * T, mx = -INFINITY;
            for (int j = 0; j <= i; j++)
                if (row[j] > mx) mx = row[j];
            double sum = 0;
            for (int j = 0; j <= i; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j <= i; j++) row[j] *= inv;
            for (int j = i + 1; j < T; j++) row[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, V, kvd, 0.0f, O, qd);
    }
}

/* Backward: one (sequence, kv head) per item, so the heads sharing a kv head add into dk, dv
 * in a fixed order. */
static void attn_back_work(void *arg, int64_t begin, int64_t end)
{
    attn_job *J = arg;
    const lmt_config *c = J->c;
    int T = J->T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, qd = H * hd, kvd = KV * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    float *dP = xmalloc((size_t)T * T * sizeof *dP);
    for (int64_t w = begin; w < end; w++) {
        int b = (int)(w / KV), g = (int)(w % KV);
        const float *K = J->L->k + (size_t)b * T * kvd + (size_t)g * hd;
        const float *V = J->L->v + (size_t)b * T * kvd + (size_t)g * hd;
        float *dK = J->dk + (size_t)b * T * kvd + (size_t)g * hd;
        float *dV = J->dv + (size_t)b * T * kvd + (size_t)g * hd;
        for (int i = 0; i < T; i++) {
            memset(dK + (size_t)i * kvd, 0, (size_t)hd * sizeof *dK);
            memset(dV + (size_t)i * kvd, 0, (size_t)hd * sizeof *dV);
        }
        for (int h = g * group; h < (g + 1) * group; h++) {
            const float *Q = J->L->q + (size_t)b * T * qd + (size_t)h * hd;
            const float *P = J->L->p + ((size_t)b * H + h) * T * T;
            const float *dO = J->dout + (size_t)b * T * qd + (size_t)h * hd;
            float *dQ = J->dq + (size_t)b * T * qd + (size_t)h * hd;
            /* dP = dO V^T;  dV += P^T dO */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, qd, V, kvd, 0.0f, dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dO, qd, 1.0f, dV, kvd);
            /* softmax backward: dS = P (dP - sum_j P dP), times the score scale */
            for (int i = 0; i < T; i++) {
                const float *pr = P + (size_t)i * T;
                float *dr = dP + (size_t)i * T;
                double s = 0;
                for (int j = 0; j <= i; j++) s += (double)pr[j] * dr[j];
                float sf = (float)s;
                for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - sf) * scale;
                for (int j = i + 1; j < T; j++) dr[j] = 0;
            }
            /* dQ = dS K;  dK += dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, K, kvd, 0.0f, dQ, qd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, Q, qd, 1.0f, dK, kvd);
        }
    }
    free(dP);
}

typedef struct {
    float *logits;
    const int32_t *targets;
    const float *weights;
    double *row_loss;
    int V;
    double inv_total; /* 1 / sum of weights */
    int backward;
} ce_job;

/* Cross-entropy per row; with backward the logits become d loss / d logits. */
static void ce_work(void *arg, int64_t begin, int64_t end)
{
    ce_job *J = arg;
    int V = J->V;
    for (int64_t t = begin; t < end; t++) {
        float *z = J->logits + (size_t)t * V;
        float wt = J->weights ? J->weights[t] : 1.0f;
        float mx = z[0];
        for (int i = 1; i < V; i++)
            if (z[i] > mx) mx = z[i];
        double sum = 0;
        for (int i = 0; i < V; i++) sum += exp((double)z[i] - mx);
        double lse = mx + log(sum);
        int y = J->targets[t];
        J->row_loss[t] = wt * (lse - z[y]);
        if (!J->backward) continue;
        double k = wt * J->inv_total;
        for (int i = 0; i < V; i++) z[i] = (float)(k * exp((double)z[i] - lse));
        z[y] -= (float)k;
    }
}

typedef struct {
    float *gate, *up, *act, *dgate, *dup;
    int backward;
} swiglu_job;

static void swiglu_work(void *arg, int64_t begin, int64_t end)
{
    swiglu_job *J = arg;
    for (int64_t i = begin; i < end; i++) {
        float g = J->gate[i], u = J->up[i];
        if (!J->backward) {
            J->act[i] = g / (1.0f + expf(-g)) * u;
            continue;
        }
        float sg = 1.0f / (1.0f + expf(-g)), da = J->dgate[i]; /* dgate holds d act on entry */
        J->dup[i] = da * g * sg;
        J->dgate[i] = da * u * sg * (1.0f + g * (1.0f - sg));
    }
}

static void forward(lmt_model *m, lmt_acts *a, const int32_t *inputs)
{
    const lmt_config *c = &m->cfg;
    int B = a->B, T = a->T, D = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim,
        F = c->ffn_dim;
    size_t N = (size_t)B * T;
    float *x = a->L[0].x;
    for (size_t t = 0; t < N; t++) memcpy(x + t * D, m->p.embed + (size_t)inputs[t] * D, (size_t)D * sizeof *x);
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *L = &a->L[l];
        const lmt_layer *P = &m->p.layers[l];
        rmsnorm_fwd(L->x, P->attn_norm, L->h1, L->r1, N, D, c->rms_eps);
        linear(L->h1, P->wq, L->q, (int)N, D, qd);
        linear(L->h1, P->wk, L->k, (int)N, D, kvd);
        linear(L->h1, P->wv, L->v, (int)N, D, kvd);
        rope_rows(L->q, N, T, c->n_heads, c->head_dim, a->cs, a->sn, 1);
        rope_rows(L->k, N, T, c->n_kv_heads, c->head_dim, a->cs, a->sn, 1);
        attn_job aj = {c, B, T, L, NULL, NULL, NULL, NULL};
        citer_parallel_for((int64_t)B * c->n_heads, attn_fwd_work, &aj);
        linear(L->o, P->wo, L->x2, (int)N, qd, D);
        for (size_t i = 0; i < N * D; i++) L->x2[i] += L->x[i];
        rmsnorm_fwd(L->x2, P->ffn_norm, L->h2, L->r2, N, D, c->rms_eps);
        linear(L->h2, P->w_gate, L->gate, (int)N, D, F);
        linear(L->h2, P->w_up, L->up, (int)N, D, F);
        swiglu_job sj = {L->gate, L->up, L->act, NULL, NULL, 0};
        citer_parallel_for((int64_t)(N * F), swiglu_work, &sj);
        float *next = l + 1 < c->n_layers ? a->L[l + 1].x : a->xf;
        linear(L->act, P->w_down, next, (int)N, F, D);
        for (size_t i = 0; i < N * D; i++) next[i] += L->x2[i];
    }
    rmsnorm_fwd(a->xf, m->p.out_norm, a->hf, a->rf, N, D, c->rms_eps);
    linear(a->hf, m->p.lm_head, a->logits, (int)N, D, c->vocab_size);
}

static void backward(lmt_model *m, lmt_acts *a, const int32_t *inputs)
{
    const lmt_config *c = &m->cfg;
    int B = a->B, T = a->T, D = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim,
        F = c->ffn_dim, V = c->vocab_size;
    size_t N = (size_t)B * T;
    memset(m->g, 0, m->n_params * sizeof *m->g);
    /* head: logits = hf W^T (a->logits holds d logits) */
    linear_back(a->hf, m->p.lm_head, a->logits, a->dh, m->d.lm_head, (int)N, D, V, 0);
    rmsnorm_back(a->xf, m->p.out_norm, a->rf, a->dh, a->dx, m->d.out_norm, N, D, 0);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        layer_acts *L = &a->L[l];
        const lmt_layer *P = &m->p.layers[l];
        lmt_layer *G = &m->d.layers[l];
        /* MLP: next = x2 + down(act);  dx (the gradient at next) flows to x2 unchanged */
        linear_back(L->act, P->w_down, a->dx, a->dgate, G->w_down, (int)N, F, D, 0);
        swiglu_job sj = {L->gate, L->up, NULL, a->dgate, a->dup, 1};
        citer_parallel_for((int64_t)(N * F), swiglu_work, &sj);
        linear_back(L->h2, P->w_gate, a->dgate, a->dh, G->w_gate, (int)N, D, F, 0);
        linear_back(L->h2, P->w_up, a->dup, a->dh, G->w_up, (int)N, D, F, 1);
        rmsnorm_back(L->x2, P->ffn_norm, L->r2, a->dh, a->dx, G->ffn_norm, N, D, 1);
        /* attention: x2 = x + o Wo^T */
        linear_back(L->o, P->wo, a->dx, a->dout, G->wo, (int)N, qd, D, 0);
        attn_job aj = {c, B, T, L, a->dout, a->dq, a->dk, a->dv};
        citer_parallel_for((int64_t)B * c->n_kv_heads, attn_back_work, &aj);
        rope_rows(a->dq, N, T, c->n_heads, c->head_dim, a->cs, a->sn, -1);
        rope_rows(a->dk, N, T, c->n_kv_heads, c->head_dim, a->cs, a->sn, -1);
        linear_back(L->h1, P->wq, a->dq, a->dh, G->wq, (int)N, D, qd, 0);
        linear_back(L->h1, P->wk, a->dk, a->dh, G->wk, (int)N, D, kvd, 1);
        linear_back(L->h1, P->wv, a->dv, a->dh, G->wv, (int)N, D, kvd, 1);
        rmsnorm_back(L->x, P->attn_norm, L->r1, a->dh, a->dx, G->attn_norm, N, D, 1);
    }
    for (size_t t = 0; t < N; t++) {
        float *de = m->d.embed + (size_t)inputs[t] * D;
        const float *dxt = a->dx + t * D;
        for (int i = 0; i < D; i++) de[i] += dxt[i];
    }
}

double lmt_step_loss(lmt_model *m, const int32_t *inputs, const int32_t *targets, const float *weights, int B, int T,
                     int backward_pass)
{
    citer_blas_one_thread();
    lmt_acts *a = acts_get(m, B, T);
    size_t N = (size_t)B * T;
    forward(m, a, inputs);
    double total = 0;
    for (size_t i = 0; i < N; i++) total += weights ? weights[i] : 1.0;
    ce_job cj = {a->logits, targets, weights, a->row_loss, m->cfg.vocab_size, total > 0 ? 1.0 / total : 0,
                 backward_pass};
    citer_parallel_for((int64_t)N, ce_work, &cj);
    double loss = 0;
    for (size_t i = 0; i < N; i++) loss += a->row_loss[i];
    loss = total > 0 ? loss / total : 0;
    if (backward_pass) backward(m, a, inputs);
    return loss;
}

void lmt_logits(lmt_model *m, const int32_t *tokens, int T, float *logits)
{
    citer_blas_one_thread();
    lmt_acts *a = acts_get(m, 1, T);
    forward(m, a, tokens);
    memcpy(logits, a->logits, (size_t)T * m->cfg.vocab_size * sizeof *logits);
}

/* ---------------------------------------------------------------- optimiser */

double lmt_clip_grad(lmt_model *m, double clip)
{
    double ss = 0;
    for (size_t i = 0; i < m->n_params; i++) ss += (double)m->g[i] * m->g[i];
    double norm = sqrt(ss);
    if (clip > 0 && norm > clip) {
        float k = (float)(clip / norm);
        for (size_t i = 0; i < m->n_params; i++) m->g[i] *= k;
    }
    return norm;
}

double lmt_lr_at(const lmt_optim *o, long step)
{
    if (step < o->warmup) return o->lr * (double)(step + 1) / (double)o->warmup;
    long span = o->steps - o->warmup;
    if (span <= 0) return o->lr;
    double progress = (double)(step - o->warmup) / (double)span;
    if (progress > 1) progress = 1;
    return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1 + cos(M_PI * progress));
}

void lmt_adamw(lmt_model *m, const lmt_optim *o, double lr, long t)
{
    double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
    float b1 = (float)o->beta1, b2 = (float)o->beta2;
    for (int k = 0; k < m->n_tensors; k++) {
        const lmt_tensor *tn = &m->tensors[k];
        float decay = tn->cols ? (float)(lr * o->weight_decay) : 0.0f;
        float step = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2)), eps = (float)o->eps;
        float *w = m->w + tn->off, *g = m->g + tn->off, *mm = m->adam_m + tn->off, *vv = m->adam_v + tn->off;
        for (size_t i = 0; i < tn->n; i++) {
            mm[i] = b1 * mm[i] + (1 - b1) * g[i];
            vv[i] = b2 * vv[i] + (1 - b2) * g[i] * g[i];
            w[i] -= decay * w[i];
            w[i] -= step * mm[i] / (sqrtf(vv[i]) * rbc2 + eps);
        }
    }
}

/* ---------------------------------------------------------------- data */

void lmt_data_free(lmt_data *d)
{
    free(d->tok), free(d->mask), free(d->starts);
    memset(d, 0, sizeof *d);
}

void lmt_data_append(lmt_data *d, const int32_t *tok, size_t n, int mask)
{
    size_t cap = d->cap;
    xgrow((void **)&d->tok, &cap, d->n + n, sizeof *d->tok);
    cap = d->cap;
    xgrow((void **)&d->mask, &cap, d->n + n, sizeof *d->mask);
    d->cap = cap;
    memcpy(d->tok + d->n, tok, n * sizeof *tok);
    memset(d->mask + d->n, mask ? 1 : 0, n);
    d->n += n;
}

void lmt_data_mark_start(lmt_data *d)
{
    xgrow((void **)&d->starts, &d->starts_cap, d->n_starts + 1, sizeof *d->starts);
    d->starts[d->n_starts++] = d->n;
}

uint64_t lmt_data_hash(const lmt_data *d)
{
    XXH64_state_t *s = XXH64_createState();
    XXH64_reset(s, 0);
    XXH64_update(s, d->tok, d->n * sizeof *d->tok);
    XXH64_update(s, d->mask, d->n);
    XXH64_update(s, d->starts, d->n_starts * sizeof *d->starts);
    uint64_t h = XXH64_digest(s);
    XXH64_freeState(s);
    return h;
}

/* ---------------------------------------------------------------- training loop */

void lmt_state_init(lmt_state *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->rng = seed ^ 0xC17E5EEDull;
}

static void sample_batch(const lmt_data *d, uint64_t *rng, int B, int T, int32_t *in, int32_t *tg, float *wt)
{
    for (int b = 0; b < B; b++) {
        uint64_t r = rng_next(rng);
        size_t start = (size_t)(r % d->n);
        if (d->n_starts) {
            /* from the start of an example; one longer than the window starts at a random
             * place inside it, so its end is trained too */
            size_t k = (size_t)(r % d->n_starts);
            size_t end = k + 1 < d->n_starts ? d->starts[k + 1] : d->n;
            start = d->starts[k];
            if (end - start > (size_t)T + 1) start += (size_t)(rng_next(rng) % (end - start - T));
        }
        for (int t = 0; t < T; t++) {
            size_t i = (start + t) % d->n, j = (start + t + 1) % d->n;
            in[b * T + t] = d->tok[i];
            tg[b * T + t] = d->tok[j];
            wt[b * T + t] = d->mask[j];
        }
    }
}

/* Keep the lines of an existing log up to step `upto` (header included), so a resumed run
 * continues the curve without repeating steps done after the checkpoint. */
static FILE *open_log(const char *path, long upto)
{
    if (upto > 0) {
        size_t len;
        char *old = citer_read_file(path, &len);
        citer_out *o = citer_out_open(path);
        if (!o) {
            free(old);
            return NULL;
        }
        if (old) {
            char *line = old;
            while (*line) {
                char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
                char *endp;
                long st = strtol(line, &endp, 10);
                if (endp == line || st <= upto) {
                    if (nl) fwrite(line, 1, n, o->f);
                }
                line += n;
            }
            free(old);
        } else {
            fputs("step\tloss\tlr\tgrad_norm\ttokens_per_s\n", o->f);
        }
        if (citer_out_commit(o)) return NULL;
        FILE *f = fopen(path, "a");
        if (!f) citer_set_error("%s: %s", path, strerror(errno));
        return f;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        citer_set_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    fputs("step\tloss\tlr\tgrad_norm\ttokens_per_s\n", f);
    return f;
}

int lmt_train(lmt_model *m, const lmt_data *d, const lmt_train_opts *o, lmt_state *s)
{
    if (d->n < 2) {
        citer_set_error("training data has fewer than 2 tokens");
        return -1;
    }
    if (o->batch <= 0 || o->seq_len <= 0 || o->seq_len > m->cfg.context_length) {
        citer_set_error("bad batch shape (batch %d, sequence length %d, context %d)", o->batch, o->seq_len,
                        m->cfg.context_length);
        return -1;
    }
    for (size_t i = 0; i < d->n; i++)
        if (d->tok[i] < 0 || d->tok[i] >= m->cfg.vocab_size) {
            citer_set_error("token %zu of the training data (%d) is out of the vocabulary (%d)", i, d->tok[i],
                            m->cfg.vocab_size);
            return -1;
        }
    long stop = o->stop_at > 0 && o->stop_at < o->optim.steps ? o->stop_at : o->optim.steps;
    uint64_t data_hash = lmt_data_hash(d);
    FILE *log = NULL;
    if (o->log && !(log = open_log(o->log, s->step))) return -1;
    int B = o->batch, T = o->seq_len;
    size_t N = (size_t)B * T;
    int32_t *in = xmalloc(N * sizeof *in), *tg = xmalloc(N * sizeof *tg);
    float *wt = xmalloc(N * sizeof *wt);
    int rc = 0;
    double t0 = now_seconds(), smooth = -1, last_progress = 0;
    while (s->step < stop) {
        double ts = now_seconds();
        sample_batch(d, &s->rng, B, T, in, tg, wt);
        double loss = lmt_step_loss(m, in, tg, wt, B, T, 1);
        double norm = lmt_clip_grad(m, o->clip);
        double lr = lmt_lr_at(&o->optim, s->step);
        lmt_adamw(m, &o->optim, lr, s->step + 1);
        s->step++;
        s->last_loss = loss;
        double dt = now_seconds() - ts;
        double tps = dt > 0 ? (double)N / dt : 0;
        smooth = smooth < 0 ? loss : 0.9 * smooth + 0.1 * loss;
        if (log) {
            fprintf(log, "%ld\t%.6f\t%.6g\t%.6g\t%.0f\n", s->step, loss, lr, norm, tps);
            fflush(log);
        }
        if (o->progress && (now_seconds() - last_progress > 0.1 || s->step == stop)) {
            last_progress = now_seconds();
            double el = now_seconds() - t0;
            progress("step %ld/%ld  loss %.4f (avg %.4f)  lr %.3g  |g| %.3g  %.0f tok/s  %.0fs", s->step,
                     o->optim.steps, loss, smooth, lr, norm, tps, el);
        }
        if (!isfinite(loss)) {
            citer_set_error("loss is not finite at step %ld (lower the learning rate?)", s->step);
            rc = -1;
            break;
        }
        int ckpt = o->checkpoint && (s->step == stop || (o->checkpoint_every > 0 && s->step % o->checkpoint_every == 0));
        if (ckpt && lmt_checkpoint_save(m, s, o, data_hash, o->checkpoint)) {
            rc = -1;
            break;
        }
    }
    if (o->progress) progress_done();
    if (log && fclose(log) != 0 && rc == 0) {
        citer_set_error("%s: write error", o->log);
        rc = -1;
    }
    free(in), free(tg), free(wt);
    return rc;
}

/* ---------------------------------------------------------------- checkpoints */

int lmt_checkpoint_save(const lmt_model *m, const lmt_state *s, const lmt_train_opts *o, uint64_t data_hash,
                        const char *path)
{
    st_writer *w = st_writer_new();
    uint64_t n = m->n_params;
    st_add(w, "params", ST_F32, 1, &n, m->w);
    st_add(w, "adam_m", ST_F32, 1, &n, m->adam_m);
    st_add(w, "adam_v", ST_F32, 1, &n, m->adam_v);
    json_object *cfg = config_json(m, 0);
    st_writer_metadata(w, "config", json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
    json_object_put(cfg);
    char buf[512];
    snprintf(buf, sizeof buf, "%ld", s->step);
    st_writer_metadata(w, "step", buf);
    snprintf(buf, sizeof buf, "%016" PRIx64, s->rng);
    st_writer_metadata(w, "rng", buf);
    snprintf(buf, sizeof buf, "%016" PRIx64, data_hash);
    st_writer_metadata(w, "data_hash", buf);
    if (o) {
        snprintf(buf, sizeof buf,
                 "{\"steps\": %ld, \"batch\": %d, \"seq_len\": %d, \"lr\": %.17g, \"min_lr\": %.17g, \"warmup\": %ld, "
                 "\"weight_decay\": %.17g, \"clip\": %.17g, \"seed\": %" PRIu64 "}",
                 o->optim.steps, o->batch, o->seq_len, o->optim.lr, o->optim.min_lr, o->optim.warmup,
                 o->optim.weight_decay, o->clip, o->seed);
        st_writer_metadata(w, "train", buf);
    }
    int rc = st_write(w, path);
    st_writer_free(w);
    return rc;
}

static int meta_u64(const st_file *f, const char *key, int hex, uint64_t *out)
{
    char *v = st_metadata(f, key);
    if (!v) {
        citer_set_error("checkpoint: missing metadata \"%s\"", key);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, hex ? 16 : 10);
    int bad = errno || end == v || *end;
    free(v);
    if (bad) {
        citer_set_error("checkpoint: bad metadata \"%s\"", key);
        return -1;
    }
    *out = x;
    return 0;
}

static int cfg_int(json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) return -1;
    int64_t x = json_object_get_int64(v);
    if (x < -1 || x > INT32_MAX) return -1;
    *out = (int)x;
    return 0;
}

lmt_model *lmt_checkpoint_load(const char *path, lmt_state *s, uint64_t *data_hash)
{
    st_file *f = st_open(path);
    if (!f) return NULL;
    lmt_model *m = NULL;
    json_object *cfg = NULL;
    char *text = st_metadata(f, "config");
    if (!text || !(cfg = json_tokener_parse(text)) || !json_object_is_type(cfg, json_type_object)) {
        citer_set_error("checkpoint: missing or bad \"config\" metadata");
        goto done;
    }
    lmt_config c = {0};
    json_object *v;
    c.bos = c.eos = -1;
    if (cfg_int(cfg, "hidden_size", &c.dim) || cfg_int(cfg, "num_hidden_layers", &c.n_layers) ||
        cfg_int(cfg, "num_attention_heads", &c.n_heads) || cfg_int(cfg, "num_key_value_heads", &c.n_kv_heads) ||
        cfg_int(cfg, "head_dim", &c.head_dim) || cfg_int(cfg, "intermediate_size", &c.ffn_dim) ||
        cfg_int(cfg, "vocab_size", &c.vocab_size) || cfg_int(cfg, "max_position_embeddings", &c.context_length)) {
        citer_set_error("checkpoint: config lacks a model dimension");
        goto done;
    }
    if (json_object_object_get_ex(cfg, "bos_token_id", &v) && json_object_is_type(v, json_type_int))
        c.bos = (int32_t)json_object_get_int64(v);
    if (json_object_object_get_ex(cfg, "eos_token_id", &v) && json_object_is_type(v, json_type_int))
        c.eos = (int32_t)json_object_get_int64(v);
    if (json_object_object_get_ex(cfg, "rms_norm_eps", &v)) c.rms_eps = (float)json_object_get_double(v);
    if (json_object_object_get_ex(cfg, "rope_theta", &v)) c.rope_theta = (float)json_object_get_double(v);
    if (json_object_object_get_ex(cfg, "tie_word_embeddings", &v)) c.tied = json_object_get_boolean(v);
    m = lmt_model_new(&c);
    if (!m) {
        citer_set_error("checkpoint: %s", citer_error());
        goto done;
    }
    const char *names[3] = {"params", "adam_m", "adam_v"};
    float *dst[3] = {m->w, m->adam_m, m->adam_v};
    for (int i = 0; i < 3; i++) {
        const st_tensor *t = st_find(f, names[i]);
        if (!t || t->dtype != ST_F32 || t->n_dims != 1 || t->shape[0] != m->n_params) {
            citer_set_error("checkpoint: tensor \"%s\" missing or not F32 [%zu]", names[i], m->n_params);
            goto fail;
        }
        memcpy(dst[i], t->data, m->n_params * sizeof(float));
    }
    uint64_t step, rng, dh;
    if (meta_u64(f, "step", 0, &step) || meta_u64(f, "rng", 1, &rng) || meta_u64(f, "data_hash", 1, &dh)) goto fail;
    memset(s, 0, sizeof *s);
    s->step = (long)step;
    s->rng = rng;
    if (data_hash) *data_hash = dh;
    goto done;
fail:
    lmt_model_free(m);
    m = NULL;
done:
    json_object_put(cfg);
    free(text);
    st_close(f);
    return m;
}
