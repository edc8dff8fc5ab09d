/* router: the MLP's inference, its safetensors file, and building routers (see router.h). */
#include "router.h"
#include "gguf.h"
#include "kernels.h"
#include "safetensors.h"
#include "util.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "citer-router"
#define FORMAT_VERSION "1"

citer_router *citer_router_new(int dim, int n_hidden, const int *hidden)
{
    citer_router *r = xcalloc(1, sizeof *r);
    r->dim = dim;
    r->n_hidden = n_hidden;
    size_t np = 0, ns = 2 * (size_t)dim;
    int in = dim;
    for (int k = 0; k <= n_hidden; k++) {
        int out = k < n_hidden ? hidden[k] : 1;
        r->layer[k].in = in;
        r->layer[k].out = out;
        np += (size_t)out * in + out;
        if (k < n_hidden) {
            np += 2 * (size_t)out;
            ns += 2 * (size_t)out;
        }
        in = out;
    }
    r->params = xcalloc(np, sizeof(float));
    r->stats = xcalloc(ns, sizeof(float));
    r->n_params = np;
    r->n_stats = ns;
    float *p = r->params, *s = r->stats;
    r->norm_mean = s, s += dim;
    r->norm_std = s, s += dim;
    for (int i = 0; i < dim; i++) r->norm_std[i] = 1;
    for (int k = 0; k <= n_hidden; k++) {
        citer_router_layer *L = &r->layer[k];
        L->weight = p, p += (size_t)L->out * L->in;
        L->bias = p, p += L->out;
        if (k == n_hidden) break;
        L->bn_weight = p, p += L->out;
        L->bn_bias = p, p += L->out;
        L->bn_mean = s, s += L->out;
        L->bn_var = s, s += L->out;
        for (int j = 0; j < L->out; j++) L->bn_weight[j] = 1, L->bn_var[j] = 1;
    }
    citer_router_prepare(r);
    return r;
}

static int hidden_sizes(const citer_router *r, int *hidden)
{
    for (int k = 0; k < r->n_hidden; k++) hidden[k] = r->layer[k].out;
    return r->n_hidden;
}

citer_router *citer_router_copy(const citer_router *r)
{
    int hidden[CITER_ROUTER_MAX_HIDDEN];
    citer_router *c = citer_router_new(r->dim, hidden_sizes(r, hidden), hidden);
    memcpy(c->params, r->params, r->n_params * sizeof(float));
    memcpy(c->stats, r->stats, r->n_stats * sizeof(float));
    if (r->training) c->training = xstrdup(r->training);
    citer_router_prepare(c);
    return c;
}

void citer_router_free(citer_router *r)
{
    if (!r) return;
    free(r->params);
    free(r->stats);
    free(r->training);
    free(r->bn_scale);
    free(r->bn_shift);
    free(r->scratch);
    free(r);
}

int citer_router_dim(const citer_router *r) { return r->dim; }

void citer_router_prepare(citer_router *r)
{
    size_t nbn = 0, widest = (size_t)r->dim;
    for (int k = 0; k < r->n_hidden; k++) {
        nbn += r->layer[k].out;
        if ((size_t)r->layer[k].out > widest) widest = r->layer[k].out;
    }
    free(r->bn_scale);
    free(r->bn_shift);
    r->bn_scale = xmalloc((nbn ? nbn : 1) * sizeof(float));
    r->bn_shift = xmalloc((nbn ? nbn : 1) * sizeof(float));
    size_t o = 0;
    for (int k = 0; k < r->n_hidden; k++) {
        const citer_router_layer *L = &r->layer[k];
        for (int j = 0; j < L->out; j++, o++) {
            float scale = L->bn_weight[j] / sqrtf(L->bn_var[j] + CITER_ROUTER_BN_EPS);
            r->bn_scale[o] = scale;
            r->bn_shift[o] = L->bn_bias[j] - L->bn_mean[j] * scale;
        }
    }
    r->scratch_len = 2 * widest;
    free(r->scratch);
    r->scratch = xmalloc(r->scratch_len * sizeof(float));
}

size_t citer_router_scratch_len(const citer_router *r) { return r->scratch_len; }

static float sigmoid(float z)
{
    /* exp of a non-positive number only: no overflow */
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

float citer_router_score_with(const citer_router *r, const float *hidden, float *scratch)
{
    float *a = scratch, *b = scratch + r->scratch_len / 2;
    for (int i = 0; i < r->dim; i++) a[i] = (hidden[i] - r->norm_mean[i]) / r->norm_std[i];
    const float *scale = r->bn_scale, *shift = r->bn_shift;
    for (int k = 0; k < r->n_hidden; k++) {
        const citer_router_layer *L = &r->layer[k];
        /* the engine's matvec on its pool: the weights (12.8 MB for D = 896) come from memory,
         * the SLM's step having streamed its own through the caches, and two threads read them
         * about twice as fast as one */
        citer_matrix w;
        citer_matrix_init(&w, GGML_F32, L->out, L->in, L->weight);
        citer_matvec(&w, a, b);
        for (int j = 0; j < L->out; j++) {
            float v = (b[j] + L->bias[j]) * scale[j] + shift[j];
            b[j] = v > 0 ? v : 0;
        }
        scale += L->out;
        shift += L->out;
        float *t = a;
        a = b;
        b = t;
    }
    const citer_router_layer *O = &r->layer[r->n_hidden];
    citer_blas_one_thread(); /* beside the engine's pool, per token */
    float z = O->bias[0] + cblas_sdot(O->in, O->weight, 1, a, 1);
    return sigmoid(z);
}

float citer_router_score(const citer_router *r, const float *hidden)
{
    return citer_router_score_with(r, hidden, r->scratch);
}

void citer_router_score_batch(const citer_router *r, const float *X, size_t n, float *out)
{
    enum { CHUNK = 256 };
    size_t widest = r->scratch_len / 2;
    float *a = xmalloc(CHUNK * widest * sizeof(float));
    float *b = xmalloc(CHUNK * widest * sizeof(float));
    for (size_t start = 0; start < n; start += CHUNK) {
        int m = (int)(n - start < CHUNK ? n - start : CHUNK);
        const float *x = X + start * (size_t)r->dim;
        for (int i = 0; i < m; i++)
            for (int d = 0; d < r->dim; d++)
                a[(size_t)i * r->dim + d] =
                    (x[(size_t)i * r->dim + d] - r->norm_mean[d]) / r->norm_std[d];
        const float *scale = r->bn_scale, *shift = r->bn_shift;
        float *cur = a, *nxt = b;
        for (int k = 0; k < r->n_hidden; k++) {
            const citer_router_layer *L = &r->layer[k];
            for (int i = 0; i < m; i++)
                memcpy(nxt + (size_t)i * L->out, L->bias, (size_t)L->out * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, L->out, L->in, 1.0f, cur,
                        L->in, L->weight, L->in, 1.0f, nxt, L->out);
            for (int i = 0; i < m; i++) {
                float *row = nxt + (size_t)i * L->out;
                for (int j = 0; j < L->out; j++) {
                    float v = row[j] * scale[j] + shift[j];
                    row[j] = v > 0 ? v : 0;
                }
            }
            scale += L->out;
            shift += L->out;
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
        const citer_router_layer *O = &r->layer[r->n_hidden];
        for (int i = 0; i < m; i++)
            out[start + i] =
                sigmoid(O->bias[0] + cblas_sdot(O->in, O->weight, 1, cur + (size_t)i * O->in, 1));
    }
    free(a);
    free(b);
}

void citer_router_layers_string(const citer_router *r, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "%d", r->dim);
    for (int k = 0; k <= r->n_hidden && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, ",%d", r->layer[k].out);
}

/* ---- file ---- */

static void add_vec(st_writer *w, const char *name, const float *v, int n)
{
    uint64_t shape[1] = {(uint64_t)n};
    st_add(w, name, ST_F32, 1, shape, v);
}

static void add_mat(st_writer *w, const char *name, const float *v, int rows, int cols)
{
    uint64_t shape[2] = {(uint64_t)rows, (uint64_t)cols};
    st_add(w, name, ST_F32, 2, shape, v);
}

int citer_router_save(const citer_router *r, const char *path)
{
    st_writer *w = st_writer_new();
    char name[64], buf[256];
    add_vec(w, "norm.mean", r->norm_mean, r->dim);
    add_vec(w, "norm.std", r->norm_std, r->dim);
    for (int k = 0; k <= r->n_hidden; k++) {
        const citer_router_layer *L = &r->layer[k];
        char pre[16];
        if (k < r->n_hidden) snprintf(pre, sizeof pre, "l%d", k);
        else snprintf(pre, sizeof pre, "out");
        snprintf(name, sizeof name, "%s.weight", pre);
        add_mat(w, name, L->weight, L->out, L->in);
        snprintf(name, sizeof name, "%s.bias", pre);
        add_vec(w, name, L->bias, L->out);
        if (k == r->n_hidden) break;
        snprintf(name, sizeof name, "bn%d.weight", k);
        add_vec(w, name, L->bn_weight, L->out);
        snprintf(name, sizeof name, "bn%d.bias", k);
        add_vec(w, name, L->bn_bias, L->out);
        snprintf(name, sizeof name, "bn%d.running_mean", k);
        add_vec(w, name, L->bn_mean, L->out);
        snprintf(name, sizeof name, "bn%d.running_var", k);
        add_vec(w, name, L->bn_var, L->out);
    }
    st_writer_metadata(w, "format", FORMAT_NAME);
    st_writer_metadata(w, "version", FORMAT_VERSION);
    snprintf(buf, sizeof buf, "%d", r->dim);
    st_writer_metadata(w, "input_dim", buf);
    citer_router_layers_string(r, buf, sizeof buf);
    st_writer_metadata(w, "layers", buf);
    if (r->training) st_writer_metadata(w, "training", r->training);
    int rc = st_write(w, path);
    st_writer_free(w);
    return rc;
}

/* A positive decimal integer below 2^24 (sizes of a router), or -1. */
static long parse_size(const char *s, const char **end)
{
    long v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v >= (1L << 24)) return -1;
    }
    *end = p;
    return v > 0 ? v : -1;
}

static char *meta_value(const st_file *f, const char *key)
{
    char *v = st_metadata(f, key);
    if (!v) citer_set_error("missing __metadata__ key '%s'", key);
    return v;
}

/* One tensor a router file must hold. */
typedef struct {
    char name[32];
    int n_dims;
    uint64_t shape[2];
    float *dst; /* where its values go */
} spec;

/* The tensors of a router of these sizes, in file-independent order; r (may be NULL) gives
 * destinations. Returns the count. */
static int expected_tensors(const long *sizes, int n, citer_router *r, spec *out)
{
    int c = 0;
    out[c++] = (spec){"norm.mean", 1, {(uint64_t)sizes[0], 0}, r ? r->norm_mean : NULL};
    out[c++] = (spec){"norm.std", 1, {(uint64_t)sizes[0], 0}, r ? r->norm_std : NULL};
    for (int k = 0; k < n - 1; k++) {
        citer_router_layer *L = r ? &r->layer[k] : NULL;
        uint64_t in = (uint64_t)sizes[k], o = (uint64_t)sizes[k + 1];
        char pre[16];
        if (k < n - 2) snprintf(pre, sizeof pre, "l%d", k);
        else snprintf(pre, sizeof pre, "out");
        out[c] = (spec){"", 2, {o, in}, L ? L->weight : NULL};
        snprintf(out[c++].name, sizeof out->name, "%s.weight", pre);
        out[c] = (spec){"", 1, {o, 0}, L ? L->bias : NULL};
        snprintf(out[c++].name, sizeof out->name, "%s.bias", pre);
        if (k == n - 2) break;
        static const char *const bn[] = {"weight", "bias", "running_mean", "running_var"};
        float *dst[4] = {L ? L->bn_weight : NULL, L ? L->bn_bias : NULL, L ? L->bn_mean : NULL,
                         L ? L->bn_var : NULL};
        for (int s = 0; s < 4; s++) {
            out[c] = (spec){"", 1, {o, 0}, dst[s]};
            snprintf(out[c++].name, sizeof out->name, "bn%d.%s", k, bn[s]);
        }
    }
    return c;
}

/* Check a tensor's presence, dtype and shape; 0 ok, -1 + message. */
static int check_tensor(const st_file *f, const spec *s)
{
    const st_tensor *t = st_find(f, s->name);
    if (!t) {
        citer_set_error("missing tensor '%s'", s->name);
        return -1;
    }
    if (t->dtype != ST_F32) {
        citer_set_error("tensor '%s': dtype %s, expected F32", s->name, st_dtype_name(t->dtype));
        return -1;
    }
    int same = t->n_dims == s->n_dims;
    for (int d = 0; same && d < s->n_dims; d++) same = t->shape[d] == s->shape[d];
    if (!same) {
        char got[128] = "[", exp[64];
        size_t len = 1;
        for (int d = 0; d < t->n_dims && len < sizeof got; d++)
            len += (size_t)snprintf(got + len, sizeof got - len, "%s%" PRIu64, d ? ", " : "",
                                    t->shape[d]);
        if (len < sizeof got) snprintf(got + len, sizeof got - len, "]");
        if (s->n_dims == 1) snprintf(exp, sizeof exp, "[%" PRIu64 "]", s->shape[0]);
        else snprintf(exp, sizeof exp, "[%" PRIu64 ", %" PRIu64 "]", s->shape[0], s->shape[1]);
        citer_set_error("tensor '%s': shape %s, expected %s", s->name, got, exp);
        return -1;
    }
    return 0;
}

/* Copy a checked tensor's values and check them; 0 ok, -1 + message. */
static int copy_tensor(const st_file *f, const spec *s)
{
    const st_tensor *t = st_find(f, s->name);
    size_t n = (size_t)(s->n_dims == 1 ? s->shape[0] : s->shape[0] * s->shape[1]);
    memcpy(s->dst, t->data, n * sizeof(float));
    int positive = !strcmp(s->name, "norm.std");
    int nonneg = strstr(s->name, ".running_var") != NULL;
    for (size_t i = 0; i < n; i++) {
        float v = s->dst[i];
        const char *bad = !isfinite(v)          ? "is not finite"
                          : positive && !(v > 0) ? "is not positive"
                          : nonneg && v < 0      ? "is negative"
                                                 : NULL;
        if (bad) {
            citer_set_error("tensor '%s': element %zu %s", s->name, i, bad);
            return -1;
        }
    }
    return 0;
}

/* Validates the header of an open file and builds the router; NULL + message. */
static citer_router *load_from(const st_file *f)
{
    citer_router *r = NULL;
    char *format = NULL, *version = NULL, *input_dim = NULL, *layers = NULL;
    if (!(format = meta_value(f, "format"))) goto done;
    if (strcmp(format, FORMAT_NAME) != 0) {
        citer_set_error("__metadata__ format is '%.40s', expected '" FORMAT_NAME "'", format);
        goto done;
    }
    if (!(version = meta_value(f, "version"))) goto done;
    if (strcmp(version, FORMAT_VERSION) != 0) {
        citer_set_error("__metadata__ version '%.40s' not supported (this reader: " FORMAT_VERSION
                        ")", version);
        goto done;
    }
    if (!(input_dim = meta_value(f, "input_dim")) || !(layers = meta_value(f, "layers"))) goto done;
    const char *end;
    long dim = parse_size(input_dim, &end);
    if (dim < 0 || *end) {
        citer_set_error("__metadata__ input_dim '%.40s' is not a positive size", input_dim);
        goto done;
    }
    long sizes[CITER_ROUTER_MAX_HIDDEN + 2];
    int n = 0;
    const char *p = layers;
    for (;;) {
        long v = parse_size(p, &end);
        if (v < 0 || (*end && *end != ',')) {
            citer_set_error("__metadata__ layers '%.60s': expected sizes from 1 to 16777215 "
                            "separated by commas", layers);
            goto done;
        }
        if (n == CITER_ROUTER_MAX_HIDDEN + 2) {
            citer_set_error("__metadata__ layers '%.60s': more than %d hidden layers", layers,
                            CITER_ROUTER_MAX_HIDDEN);
            goto done;
        }
        sizes[n++] = v;
        if (!*end) break;
        p = end + 1;
    }
    if (n < 3 || sizes[0] != dim || sizes[n - 1] != 1) {
        citer_set_error("__metadata__ layers '%.60s' must be input_dim (%ld), at least one hidden "
                        "size, then 1", layers, dim);
        goto done;
    }
    /* Shapes first, so that sizes from a bad header never reach an allocation. */
    spec specs[2 + 6 * CITER_ROUTER_MAX_HIDDEN + 2];
    int ns = expected_tensors(sizes, n, NULL, specs);
    for (int i = 0; i < ns; i++)
        if (check_tensor(f, &specs[i])) goto done;
    if (f->n_tensors != (size_t)ns)
        for (size_t i = 0; i < f->n_tensors; i++) {
            int known = 0;
            for (int j = 0; j < ns && !known; j++) known = !strcmp(specs[j].name, f->tensors[i].name);
            if (!known) {
                citer_set_error("unexpected tensor '%.64s' for layers %.60s", f->tensors[i].name,
                                layers);
                goto done;
            }
        }
    int hidden[CITER_ROUTER_MAX_HIDDEN];
    for (int k = 0; k < n - 2; k++) hidden[k] = (int)sizes[k + 1];
    r = citer_router_new((int)dim, n - 2, hidden);
    expected_tensors(sizes, n, r, specs);
    for (int i = 0; i < ns; i++)
        if (copy_tensor(f, &specs[i])) {
            citer_router_free(r);
            r = NULL;
            goto done;
        }
    char *training = st_metadata(f, "training"); /* optional */
    r->training = training;
    citer_router_prepare(r);
done:
    free(format);
    free(version);
    free(input_dim);
    free(layers);
    return r;
}

citer_router *citer_router_load(const char *path)
{
    st_file *f = st_open(path);
    if (!f) return NULL;
    citer_router *r = load_from(f);
    st_close(f);
    return r;
}
