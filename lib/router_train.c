/* router_train: labelled features, metrics and mini-batch training of the router (router.h).
 *
 * The training follows CITER's mlp_training.py where that is sensible: BCE on the sigmoid
 * output, Adam, early stopping on the validation loss with patience 5, the best epoch kept,
 * batch 80. It departs where theirs would not serve here: features are normalised (so the
 * default learning rate is Adam's usual 1e-3, not their 1e-7), the training set is shuffled
 * every epoch, and the validation split holds out whole examples rather than tokens, so that
 * the tokens of one answer never sit on both sides.
 *
 * Everything is deterministic for a seed: one generator (xoshiro256**) drives initialisation,
 * shuffling and dropout, reductions run in a fixed order, and OpenBLAS is held to a fixed
 * thread count. */
#include "router.h"
#include "stream.h"
#include "util.h"

#include <cblas.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers: xoshiro256**, seeded through splitmix64 ---- */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static void rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s[i] = z ^ (z >> 31);
    }
}

static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

static size_t rng_below(uint64_t s[4], size_t n) { return (size_t)(rng_uniform(s) * (double)n); }

/* ---- features ---- */

void citer_features_free(citer_features *fs)
{
    free(fs->x);
    free(fs->label);
    free(fs->kase);
    free(fs->weight);
    free(fs->seq);
    free(fs->pos);
    memset(fs, 0, sizeof *fs);
}

/* Reads label, case and weight from a record's metadata; 0 ok, -1 + message (no prefix). */
static int parse_meta(const citer_record *rec, int need_label, uint8_t *label, uint8_t *kase,
                      float *weight)
{
    *label = CITER_NO_LABEL;
    *kase = 0;
    *weight = 1;
    json_object *root = NULL, *v;
    if (rec->meta && rec->meta_len) {
        json_tokener *tok = json_tokener_new();
        root = json_tokener_parse_ex(tok, rec->meta, (int)rec->meta_len);
        json_tokener_free(tok);
    }
    int rc = -1;
    if (root && !json_object_is_type(root, json_type_object)) {
        citer_set_error("metadata is not a JSON object");
        goto done;
    }
    if (root && json_object_object_get_ex(root, "label", &v)) {
        if (!json_object_is_type(v, json_type_int) ||
            (json_object_get_int64(v) != 0 && json_object_get_int64(v) != 1)) {
            citer_set_error("\"label\" must be 0 or 1, not %.40s", json_object_to_json_string(v));
            goto done;
        }
        *label = (uint8_t)json_object_get_int64(v);
    } else if (need_label) {
        citer_set_error("no \"label\" in the metadata");
        goto done;
    }
    if (root && json_object_object_get_ex(root, "case", &v)) {
        int64_t c = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || c < 1 || c > 3) {
            citer_set_error("\"case\" must be 1, 2 or 3, not %.40s", json_object_to_json_string(v));
            goto done;
        }
        *kase = (uint8_t)c;
    }
    if (root && json_object_object_get_ex(root, "weight", &v)) {
        double w = json_object_get_double(v);
        if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
            !isfinite(w) || w < 0 || w > 1e30) {
            citer_set_error("\"weight\" must be a number >= 0, not %.40s",
                            json_object_to_json_string(v));
            goto done;
        }
        *weight = (float)w;
    }
    rc = 0;
done:
    json_object_put(root);
    return rc;
}

int citer_features_read(citer_features *fs, FILE *f, const char *name, int need_label)
{
    citer_reader *rd = citer_reader_new(f, name);
    citer_record rec;
    int rc;
    while ((rc = citer_read(rd, &rec)) == 1) {
        if (rec.kind != CITER_FEATURE) {
            citer_record_free(&rec);
            continue;
        }
        uint64_t index = citer_reader_records(rd);
        const char *bad = NULL;
        uint8_t label, kase;
        float weight;
        if (rec.dtype != CITER_F32 && rec.dtype != CITER_F16 && rec.dtype != CITER_BF16)
            bad = "dtype must be f32, f16 or bf16";
        else if (rec.ndim != 1 || rec.dim[0] == 0 || rec.dim[0] > (1u << 24))
            bad = "shape must be [D] with 0 < D <= 16777216";
        if (!bad && fs->dim && (int)rec.dim[0] != fs->dim) {
            citer_set_error("record %" PRIu64 " (seq %" PRIu64 ", pos %" PRId64
                            "): feature size %u, earlier records have %d",
                            index, rec.seq, rec.pos, rec.dim[0], fs->dim);
            goto fail;
        }
        if (!bad && parse_meta(&rec, need_label, &label, &kase, &weight) != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", citer_error());
            citer_set_error("record %" PRIu64 " (seq %" PRIu64 ", pos %" PRId64 "): %s", index,
                            rec.seq, rec.pos, msg);
            goto fail;
        }
        if (bad) {
            citer_set_error("record %" PRIu64 " (seq %" PRIu64 ", pos %" PRId64 "): %s", index,
                            rec.seq, rec.pos, bad);
            goto fail;
        }
        int d = (int)rec.dim[0];
        if (!fs->dim) fs->dim = d;
        if (fs->n == fs->cap) {
            size_t cap = fs->cap ? 2 * fs->cap : 1024;
            fs->x = xrealloc(fs->x, cap * (size_t)d * sizeof(float));
            fs->label = xrealloc(fs->label, cap);
            fs->kase = xrealloc(fs->kase, cap);
            fs->weight = xrealloc(fs->weight, cap * sizeof(float));
            fs->seq = xrealloc(fs->seq, cap * sizeof(uint64_t));
            fs->pos = xrealloc(fs->pos, cap * sizeof(int64_t));
            fs->cap = cap;
        }
        float *row = fs->x + fs->n * (size_t)d;
        for (int i = 0; i < d; i++) {
            if (rec.dtype == CITER_F32) memcpy(&row[i], (const char *)rec.data + 4 * (size_t)i, 4);
            else {
                uint16_t h;
                memcpy(&h, (const char *)rec.data + 2 * (size_t)i, 2);
                row[i] = rec.dtype == CITER_F16 ? citer_f16_to_f32(h) : citer_bf16_to_f32(h);
            }
            if (!isfinite(row[i])) {
                citer_set_error("record %" PRIu64 " (seq %" PRIu64 ", pos %" PRId64
                                "): element %d is not finite",
                                index, rec.seq, rec.pos, i);
                goto fail;
            }
        }
        fs->label[fs->n] = label;
        fs->kase[fs->n] = kase;
        fs->weight[fs->n] = weight;
        fs->seq[fs->n] = rec.seq;
        fs->pos[fs->n] = rec.pos;
        fs->n++;
        citer_record_free(&rec);
    }
    citer_reader_free(rd);
    return rc < 0 ? -1 : 0;
fail:
    citer_record_free(&rec);
    citer_reader_free(rd);
    return -1;
}

/* ---- split ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int citer_split(const citer_features *fs, double val_frac, uint64_t seed, uint8_t *is_val)
{
    memset(is_val, 0, fs->n);
    if (val_frac <= 0) return 0;
    uint64_t *ids = xmalloc((fs->n ? fs->n : 1) * sizeof *ids);
    memcpy(ids, fs->seq, fs->n * sizeof *ids);
    qsort(ids, fs->n, sizeof *ids, cmp_u64);
    size_t n_ids = 0;
    for (size_t i = 0; i < fs->n; i++)
        if (i == 0 || ids[i] != ids[n_ids - 1]) ids[n_ids++] = ids[i];
    if (n_ids < 2) {
        free(ids);
        citer_set_error("a validation split needs at least 2 example ids (seq), found %zu", n_ids);
        return -1;
    }
    uint64_t s[4];
    rng_seed(s, seed ^ 0x5eed5a1177ull);
    for (size_t i = n_ids - 1; i > 0; i--) {
        size_t j = rng_below(s, i + 1);
        uint64_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    size_t n_val = (size_t)llround(val_frac * (double)n_ids);
    if (n_val < 1) n_val = 1;
    if (n_val > n_ids - 1) n_val = n_ids - 1;
    qsort(ids, n_val, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < fs->n; i++)
        is_val[i] = bsearch(&fs->seq[i], ids, n_val, sizeof *ids, cmp_u64) != NULL;
    free(ids);
    return 0;
}

/* ---- metrics ---- */

typedef struct {
    float s;
    uint8_t l;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x < y ? -1 : x > y;
}

double citer_auroc(const float *score, const uint8_t *label, size_t n)
{
    scored *v = xmalloc((n ? n : 1) * sizeof *v);
    size_t n1 = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (label[i] > 1) continue;
        v[m++] = (scored){score[i], label[i]};
        n1 += label[i];
    }
    size_t n0 = m - n1;
    if (!n0 || !n1) {
        free(v);
        return NAN;
    }
    qsort(v, m, sizeof *v, cmp_scored);
    /* rank sum of the label-1 items, ties at their average rank (ranks from 1) */
    double rank_sum = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i, ones = 0;
        while (j < m && v[j].s == v[i].s) ones += v[j++].l;
        rank_sum += (double)ones * ((double)(i + 1) + (double)j) / 2;
        i = j;
    }
    free(v);
    return (rank_sum - (double)n1 * ((double)n1 + 1) / 2) / ((double)n1 * (double)n0);
}

/* Binary cross-entropy of logit z against label y, without overflow. */
static double bce_logit(double z, double y)
{
    double sp = fmax(z, 0) + log1p(exp(-fabs(z))); /* softplus(z) = -log(1 - sigmoid(z)) */
    return sp - y * z;
}

void citer_router_evaluate(const citer_router *r, const citer_features *fs, const size_t *idx,
                           size_t n, const double class_weight[2], double lambda,
                           citer_metrics *m, float *score_out)
{
    enum { CHUNK = 1024 };
    size_t d = (size_t)fs->dim;
    float *x = xmalloc(CHUNK * d * sizeof(float));
    float *sc = xmalloc((n ? n : 1) * sizeof(float));
    uint8_t *lab = xmalloc(n ? n : 1);
    double loss = 0, bce = 0;
    size_t correct = 0, n_pos = 0, n_lab = 0;
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t c = n - start < CHUNK ? n - start : CHUNK;
        for (size_t i = 0; i < c; i++) {
            size_t k = idx ? idx[start + i] : start + i;
            memcpy(x + i * d, fs->x + k * d, d * sizeof(float));
        }
        citer_router_score_batch(r, x, c, sc + start);
        for (size_t i = 0; i < c; i++) {
            size_t k = idx ? idx[start + i] : start + i;
            double p = sc[start + i];
            uint8_t y = fs->label[k];
            lab[start + i] = y;
            if (y > 1) continue;
            n_lab++;
            n_pos += y;
            correct += (p >= 0.5) == (y == 1);
            /* the loss from the probability, clamped like torch's BCELoss (log >= -100) */
            double w = class_weight[y] * fs->weight[k];
            double l = -(y ? fmax(log(p), -100) : fmax(log1p(-p), -100));
            bce += w * l;
            loss += w * l + lambda * (1 - p);
        }
    }
    m->n = n_lab;
    m->n_pos = n_pos;
    m->loss = n_lab ? loss / (double)n_lab : NAN;
    m->bce = n_lab ? bce / (double)n_lab : NAN;
    m->accuracy = n_lab ? (double)correct / (double)n_lab : NAN;
    m->auroc = citer_auroc(sc, lab, n);
    if (score_out) memcpy(score_out, sc, n * sizeof(float));
    free(x);
    free(sc);
    free(lab);
}

/* ---- one mini-batch, forward and backward ---- */

double citer_router_batch_loss(citer_router *r, const float *X, const float *y, const float *w,
                               int n, double lambda, double p, uint64_t rng[4],
                               citer_router *grad, int update_stats)
{
    int L = r->n_hidden;
    size_t widest = (size_t)r->dim;
    for (int k = 0; k < L; k++)
        if ((size_t)r->layer[k].out > widest) widest = r->layer[k].out;
    /* per hidden layer: xhat (normalised pre-activations), act (after ReLU and dropout),
     * keep (dropout multipliers), inv_std */
    float *xhat[CITER_ROUTER_MAX_HIDDEN], *act[CITER_ROUTER_MAX_HIDDEN];
    float *keep[CITER_ROUTER_MAX_HIDDEN], *inv_std[CITER_ROUTER_MAX_HIDDEN];
    double *sum = xmalloc(2 * widest * sizeof(double)), *sum2 = sum + widest;
    const float *in = X;
    float scale = p > 0 ? (float)(1.0 / (1.0 - p)) : 1;
    for (int k = 0; k < L; k++) {
        citer_router_layer *Lk = &r->layer[k];
        int H = Lk->out;
        size_t nh = (size_t)n * H;
        float *z = xhat[k] = xmalloc(nh * sizeof(float));
        act[k] = xmalloc(nh * sizeof(float));
        keep[k] = p > 0 ? xmalloc(nh * sizeof(float)) : NULL;
        inv_std[k] = xmalloc((size_t)H * sizeof(float));
        for (int i = 0; i < n; i++) memcpy(z + (size_t)i * H, Lk->bias, (size_t)H * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, H, Lk->in, 1.0f, in, Lk->in,
                    Lk->weight, Lk->in, 1.0f, z, H);
        /* batch statistics: two passes in double, in row order */
        for (int j = 0; j < H; j++) sum[j] = sum2[j] = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < H; j++) sum[j] += z[(size_t)i * H + j];
        for (int j = 0; j < H; j++) sum[j] /= n;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < H; j++) {
                double dv = z[(size_t)i * H + j] - sum[j];
                sum2[j] += dv * dv;
            }
        for (int j = 0; j < H; j++) {
            double var = sum2[j] / n;
            inv_std[k][j] = (float)(1.0 / sqrt(var + CITER_ROUTER_BN_EPS));
            if (update_stats) {
                /* as torch.nn.BatchNorm1d: momentum 0.1, unbiased variance in the running one */
                Lk->bn_mean[j] = (float)(0.9 * Lk->bn_mean[j] + 0.1 * sum[j]);
                Lk->bn_var[j] = (float)(0.9 * Lk->bn_var[j] + 0.1 * var * n / (n - 1));
            }
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < H; j++) {
                size_t o = (size_t)i * H + j;
                float xh = (float)((z[o] - sum[j]) * inv_std[k][j]);
                float v = Lk->bn_weight[j] * xh + Lk->bn_bias[j];
                z[o] = xh;
                v = v > 0 ? v : 0;
                if (keep[k]) {
                    keep[k][o] = rng_uniform(rng) < p ? 0 : scale;
                    v *= keep[k][o];
                }
                act[k][o] = v;
            }
        in = act[k];
    }
    citer_router_layer *O = &r->layer[L];
    int Hl = O->in;
    double loss = 0;
    float *dz = xmalloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) {
        double zi = O->bias[0] + cblas_sdot(Hl, O->weight, 1, in + (size_t)i * Hl, 1);
        double pi = 1 / (1 + exp(-zi));
        loss += w[i] * bce_logit(zi, y[i]) + lambda * (1 - pi);
        dz[i] = (float)((w[i] * (pi - y[i]) - lambda * pi * (1 - pi)) / n);
    }
    loss /= n;

    if (grad) {
        citer_router_layer *G = &grad->layer[L];
        /* output layer */
        double db = 0;
        for (int i = 0; i < n; i++) db += dz[i];
        G->bias[0] = (float)db;
        cblas_sgemv(CblasRowMajor, CblasTrans, n, Hl, 1.0f, in, Hl, dz, 1, 0.0f, G->weight, 1);
        float *da = xmalloc((size_t)n * widest * sizeof(float));
        float *dprev = xmalloc((size_t)n * widest * sizeof(float));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < Hl; j++) da[(size_t)i * Hl + j] = dz[i] * O->weight[j];
        for (int k = L - 1; k >= 0; k--) {
            citer_router_layer *Lk = &r->layer[k], *Gk = &grad->layer[k];
            int H = Lk->out;
            /* through dropout and ReLU to dy (BatchNorm output), then BatchNorm */
            for (int j = 0; j < H; j++) sum[j] = sum2[j] = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < H; j++) {
                    size_t o = (size_t)i * H + j;
                    float yv = Lk->bn_weight[j] * xhat[k][o] + Lk->bn_bias[j];
                    float g = yv > 0 ? da[o] : 0;
                    if (keep[k]) g *= keep[k][o];
                    da[o] = g;
                    sum[j] += g;                  /* d beta */
                    sum2[j] += g * xhat[k][o];    /* d gamma */
                }
            for (int j = 0; j < H; j++) {
                Gk->bn_bias[j] = (float)sum[j];
                Gk->bn_weight[j] = (float)sum2[j];
            }
            /* dz = inv_std / n * (n dxh - sum dxh - xhat sum(dxh xhat)), dxh = gamma dy */
            for (int i = 0; i < n; i++)
                for (int j = 0; j < H; j++) {
                    size_t o = (size_t)i * H + j;
                    double g = Lk->bn_weight[j];
                    da[o] = (float)(inv_std[k][j] / n *
                                    (n * g * da[o] - g * sum[j] - xhat[k][o] * g * sum2[j]));
                }
            const float *a_in = k ? act[k - 1] : X;
            for (int j = 0; j < H; j++) sum[j] = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < H; j++) sum[j] += da[(size_t)i * H + j];
            for (int j = 0; j < H; j++) Gk->bias[j] = (float)sum[j];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, Lk->in, n, 1.0f, da, H, a_in,
                        Lk->in, 0.0f, Gk->weight, Lk->in);
            if (k) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, Lk->in, H, 1.0f, da, H,
                            Lk->weight, Lk->in, 0.0f, dprev, Lk->in);
                float *t = da;
                da = dprev;
                dprev = t;
            }
        }
        free(da);
        free(dprev);
    }
    for (int k = 0; k < L; k++) {
        free(xhat[k]);
        free(act[k]);
        free(keep[k]);
        free(inv_std[k]);
    }
    free(dz);
    free(sum);
    return loss;
}

/* ---- training ---- */

void citer_train_defaults(citer_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 100;
    o->batch = 80;
    o->lr = 1e-3;
    o->weight_decay = 0;
    o->dropout = 0.1;
    o->hidden_mult = 2;
    o->val_frac = 0.1;
    o->patience = 5;
    o->seed = 0;
    o->class_weight = CITER_CW_NONE;
    o->w0 = o->w1 = 1;
    o->lambda = 0;
    o->threads = 1;
}

/* Per-dimension mean and standard deviation over the training records, in double. */
static void fit_normalisation(citer_router *r, const citer_features *fs, const size_t *idx,
                              size_t n)
{
    int d = fs->dim;
    double *mean = xcalloc((size_t)d, sizeof(double)), *m2 = xcalloc((size_t)d, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const float *x = fs->x + idx[i] * (size_t)d;
        for (int j = 0; j < d; j++) mean[j] += x[j];
    }
    for (int j = 0; j < d; j++) mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        const float *x = fs->x + idx[i] * (size_t)d;
        for (int j = 0; j < d; j++) m2[j] += (x[j] - mean[j]) * (x[j] - mean[j]);
    }
    for (int j = 0; j < d; j++) {
        double sd = sqrt(m2[j] / (double)n);
        r->norm_mean[j] = (float)mean[j];
        r->norm_std[j] = sd > 1e-6 ? (float)sd : 1; /* a constant dimension stays as it is */
    }
    free(mean);
    free(m2);
}

/* One Adam step, in float like torch.optim.Adam: betas 0.9, 0.999, eps 1e-8, weight decay
 * as L2 in the gradient. The square root may not set errno (its argument is never
 * negative), so that the loop vectorises. */
__attribute__((optimize("no-math-errno"))) static void adam_step(float *p, const float *g,
                                                                 float *m1, float *m2, size_t n,
                                                                 long step, double lr, double wd)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, decay = (float)wd;
    float step_size = (float)(lr / (1 - pow(0.9, (double)step)));
    float inv_bc2 = (float)(1 / sqrt(1 - pow(0.999, (double)step)));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + decay * p[i];
        m1[i] = b1 * m1[i] + (1 - b1) * gi;
        m2[i] = b2 * m2[i] + (1 - b2) * gi * gi;
        p[i] -= step_size * m1[i] / (sqrtf(m2[i]) * inv_bc2 + eps);
    }
}

static void fmt_num(char *buf, size_t size, double v)
{
    if (isfinite(v)) snprintf(buf, size, "%.6g", v);
    else snprintf(buf, size, "null");
}

citer_router *citer_router_train(const citer_features *fs, const citer_train_opts *o,
                                 citer_train_summary *sum)
{
    if (fs->n == 0) {
        citer_set_error("no feature records");
        return NULL;
    }
    if (o->init && o->init->dim != fs->dim) {
        citer_set_error("the initial router takes %d features, the records have %d",
                        o->init->dim, fs->dim);
        return NULL;
    }
    for (size_t i = 0; i < fs->n; i++)
        if (fs->label[i] > 1) {
            citer_set_error("record %zu (seq %" PRIu64 ", pos %" PRId64 ") has no label", i + 1,
                            fs->seq[i], fs->pos[i]);
            return NULL;
        }
    if (o->batch < 2 || o->epochs < 1 || o->patience < 1 || !(o->lr > 0) ||
        !(o->dropout >= 0 && o->dropout < 1) || o->hidden_mult < 1 || !(o->weight_decay >= 0) ||
        !(o->val_frac >= 0 && o->val_frac < 1) || !(o->lambda >= 0) || o->threads < 1) {
        citer_set_error("a training option is out of range");
        return NULL;
    }
    openblas_set_num_threads(o->threads);

    uint8_t *is_val = xmalloc(fs->n);
    if (citer_split(fs, o->val_frac, o->seed, is_val) != 0) {
        free(is_val);
        return NULL;
    }
    size_t *tr = xmalloc(fs->n * sizeof *tr), *va = xmalloc(fs->n * sizeof *va);
    size_t n_tr = 0, n_va = 0, pos_tr = 0, pos_va = 0;
    for (size_t i = 0; i < fs->n; i++) {
        if (is_val[i]) va[n_va++] = i, pos_va += fs->label[i];
        else tr[n_tr++] = i, pos_tr += fs->label[i];
    }
    free(is_val);
    citer_router *r = NULL, *best = NULL, *grad = NULL, *ret = NULL;
    float *xb = NULL, *yb = NULL, *wb = NULL, *m1 = NULL, *m2 = NULL;
    if (n_tr < 2) {
        citer_set_error("%zu training records: at least 2 are needed", n_tr);
        goto fail;
    }
    if (pos_tr == 0 || pos_tr == n_tr) {
        citer_set_error("all %zu training records have label %d: nothing to learn", n_tr,
                        pos_tr ? 1 : 0);
        goto fail;
    }
    double cw[2] = {1, 1};
    if (o->class_weight == CITER_CW_AUTO) {
        cw[0] = (double)n_tr / (2.0 * (double)(n_tr - pos_tr));
        cw[1] = (double)n_tr / (2.0 * (double)pos_tr);
    } else if (o->class_weight == CITER_CW_FIXED) {
        cw[0] = o->w0;
        cw[1] = o->w1;
    }

    uint64_t rng[4];
    rng_seed(rng, o->seed);
    if (o->init) {
        r = citer_router_copy(o->init);
        free(r->training);
        r->training = NULL;
    } else {
        int hidden[2] = {o->hidden_mult * fs->dim, fs->dim};
        if ((long)o->hidden_mult * fs->dim > (1L << 24)) {
            citer_set_error("hidden size %d x %d is too large", o->hidden_mult, fs->dim);
            goto fail;
        }
        r = citer_router_new(fs->dim, 2, hidden);
        /* torch.nn.Linear's default: uniform in +-1/sqrt(fan_in), weights and biases */
        for (int k = 0; k <= r->n_hidden; k++) {
            citer_router_layer *L = &r->layer[k];
            double bound = 1 / sqrt((double)L->in);
            for (size_t i = 0; i < (size_t)L->out * L->in; i++)
                L->weight[i] = (float)((2 * rng_uniform(rng) - 1) * bound);
            for (int i = 0; i < L->out; i++) L->bias[i] = (float)((2 * rng_uniform(rng) - 1) * bound);
        }
        fit_normalisation(r, fs, tr, n_tr);
    }
    grad = citer_router_copy(r);
    best = citer_router_copy(r);
    size_t np = r->n_params, d = (size_t)fs->dim;
    m1 = xcalloc(np, sizeof(float));
    m2 = xcalloc(np, sizeof(float));
    size_t bmax = (size_t)o->batch + 1; /* a last batch of one joins the one before */
    xb = xmalloc(bmax * d * sizeof(float));
    yb = xmalloc(bmax * sizeof(float));
    wb = xmalloc(bmax * sizeof(float));

    long step = 0;
    int epoch, best_epoch = 0, since_best = 0;
    double best_val = INFINITY, best_train = NAN, train_loss = NAN;
    citer_metrics vm = {0}, best_vm = {0};
    const char *stopped = "max_epochs";
    for (epoch = 1; epoch <= o->epochs; epoch++) {
        for (size_t i = n_tr - 1; i > 0; i--) {
            size_t j = rng_below(rng, i + 1), t = tr[i];
            tr[i] = tr[j];
            tr[j] = t;
        }
        double total = 0;
        for (size_t start = 0; start < n_tr;) {
            size_t end = start + (size_t)o->batch;
            if (end >= n_tr - 1) end = n_tr;
            int nb = (int)(end - start);
            for (int i = 0; i < nb; i++) {
                size_t k = tr[start + i];
                const float *x = fs->x + k * d;
                float *row = xb + (size_t)i * d;
                for (size_t j = 0; j < d; j++) row[j] = (x[j] - r->norm_mean[j]) / r->norm_std[j];
                yb[i] = fs->label[k];
                wb[i] = (float)(cw[fs->label[k]] * fs->weight[k]);
            }
            double loss = citer_router_batch_loss(r, xb, yb, wb, nb, o->lambda, o->dropout, rng,
                                                  grad, 1);
            total += loss * nb;
            step++;
            adam_step(r->params, grad->params, m1, m2, np, step, o->lr, o->weight_decay);
            start = end;
        }
        train_loss = total / (double)n_tr;
        if (!isfinite(train_loss)) {
            citer_set_error("training diverged in epoch %d (loss %g): try a lower --lr", epoch,
                            train_loss);
            goto fail;
        }
        citer_router_prepare(r);
        int improved;
        if (n_va) {
            citer_router_evaluate(r, fs, va, n_va, cw, o->lambda, &vm, NULL);
            improved = vm.loss < best_val;
        } else {
            improved = 1; /* without validation the last epoch is the result */
        }
        if (improved) {
            best_val = n_va ? vm.loss : NAN;
            best_vm = vm;
            best_train = train_loss;
            best_epoch = epoch;
            since_best = 0;
            memcpy(best->params, r->params, np * sizeof(float));
            memcpy(best->stats, r->stats, r->n_stats * sizeof(float));
        } else {
            since_best++;
        }
        if (o->on_epoch) o->on_epoch(o->arg, epoch, train_loss, n_va ? &vm : NULL, best_epoch);
        if (n_va && since_best >= o->patience) {
            stopped = "patience";
            epoch++;
            break;
        }
    }
    int epochs_run = epoch - 1;
    citer_router_prepare(best);

    char num[8][32], json[2048];
    fmt_num(num[0], 32, best_train);
    fmt_num(num[1], 32, n_va ? best_vm.loss : NAN);
    fmt_num(num[2], 32, n_va ? best_vm.bce : NAN);
    fmt_num(num[3], 32, n_va ? best_vm.accuracy : NAN);
    fmt_num(num[4], 32, n_va ? best_vm.auroc : NAN);
    fmt_num(num[5], 32, (double)pos_tr / (double)n_tr);
    fmt_num(num[6], 32, n_va ? (double)pos_va / (double)n_va : NAN);
    snprintf(json, sizeof json,
             "{\"epochs\":%d,\"best_epoch\":%d,\"stopped\":\"%s\",\"train_loss\":%s,"
             "\"val_loss\":%s,\"val_bce\":%s,\"val_accuracy\":%s,\"val_auroc\":%s,"
             "\"n_train\":%zu,\"n_val\":%zu,\"label1_train\":%s,\"label1_val\":%s,"
             "\"class_weight\":[%.6g,%.6g],\"lambda\":%.6g,\"seed\":%" PRIu64 ",\"lr\":%.6g,"
             "\"batch\":%d,\"weight_decay\":%.6g,\"dropout\":%.6g,\"val_frac\":%.6g,"
             "\"patience\":%d,\"init\":%s}",
             epochs_run, best_epoch, stopped, num[0], num[1], num[2], num[3], num[4], n_tr, n_va,
             num[5], num[6], cw[0], cw[1], o->lambda, o->seed, o->lr, o->batch, o->weight_decay,
             o->dropout, o->val_frac, o->patience, o->init ? "true" : "false");
    best->training = xstrdup(json);
    if (sum)
        *sum = (citer_train_summary){epochs_run, best_epoch, best_train, n_va > 0, best_vm, n_tr,
                                     n_va};
    ret = best;
    best = NULL;
fail:
    citer_router_free(r);
    citer_router_free(grad);
    citer_router_free(best);
    free(tr);
    free(va);
    free(xb);
    free(yb);
    free(wb);
    free(m1);
    free(m2);
    return ret;
}
