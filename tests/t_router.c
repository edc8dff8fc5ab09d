/* Router: gradients against finite differences, BatchNorm at inference against its formula,
 * training on a learnable synthetic problem, reproducibility, the file format and its errors,
 * the validation split, AUROC and feature reading. Fixture-free. */
#include "check.h"
#include "router.h"
#include "safetensors.h"
#include "stream.h"
#include "util.h"

#include <math.h>
#include <stdint.h>

/* ---- helpers ---- */

static uint64_t rs = 88172645463325252ull;
static double urand(void) /* xorshift64, independent of the library's generator */
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1p-53;
}
static double grand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static char *tmp_path(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

/* A router of the given shape with random values everywhere, running stats included. */
static citer_router *random_router(int dim, int n_hidden, const int *hidden)
{
    citer_router *r = citer_router_new(dim, n_hidden, hidden);
    for (size_t i = 0; i < r->n_params; i++) r->params[i] = (float)(0.5 * grand());
    for (int k = 0; k < n_hidden; k++)
        for (int j = 0; j < hidden[k]; j++) {
            r->layer[k].bn_weight[j] = (float)(1 + 0.3 * grand());
            r->layer[k].bn_mean[j] = (float)grand();
            r->layer[k].bn_var[j] = (float)(0.2 + urand());
        }
    for (int i = 0; i < dim; i++) {
        r->norm_mean[i] = (float)grand();
        r->norm_std[i] = (float)(0.5 + urand());
    }
    citer_router_prepare(r);
    return r;
}

/* Synthetic features: ids of `per` records each; label 1 when x0 * x1 > 0 (not linearly
 * separable); dims are shifted and scaled so that normalisation matters. */
static void synth(citer_features *fs, int dim, size_t n, size_t per)
{
    memset(fs, 0, sizeof *fs);
    fs->dim = dim;
    fs->n = fs->cap = n;
    fs->x = xmalloc(n * (size_t)dim * sizeof(float));
    fs->label = xmalloc(n);
    fs->kase = xcalloc(n, 1);
    fs->weight = xmalloc(n * sizeof(float));
    fs->seq = xmalloc(n * sizeof(uint64_t));
    fs->pos = xmalloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        float *x = fs->x + i * (size_t)dim;
        for (int j = 0; j < dim; j++) x[j] = (float)grand();
        fs->label[i] = x[0] * x[1] > 0;
        for (int j = 0; j < dim; j++) x[j] = x[j] * (float)(1 + j) + (float)(3 * j);
        fs->weight[i] = 1;
        fs->seq[i] = 1000 + i / per;
        fs->pos[i] = (int64_t)(i % per);
    }
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = citer_read_file(a, &na), *y = citer_read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* ---- gradients ---- */

static void test_gradient_finite_differences(void)
{
    int hidden[2] = {7, 5};
    int D = 4, n = 6;
    citer_router *r = random_router(D, 2, hidden);
    citer_router *g = citer_router_copy(r);
    float X[6 * 4], y[6], w[6];
    for (int i = 0; i < n * D; i++) X[i] = (float)grand();
    for (int i = 0; i < n; i++) y[i] = (float)(i % 2), w[i] = (float)(0.5 + urand());
    uint64_t rng[4] = {1, 2, 3, 4};
    const double lambda = 0.3;
    citer_router_batch_loss(r, X, y, w, n, lambda, 0, rng, g, 0);

    const char *kind_name[4] = {"linear weight", "linear bias", "bn weight", "bn bias"};
    double worst[4] = {0};
    int checked[4] = {0}, bad = 0;
    for (int k = 0; k <= r->n_hidden; k++) {
        citer_router_layer *L = &r->layer[k];
        float *vec[4] = {L->weight, L->bias, L->bn_weight, L->bn_bias};
        size_t len[4] = {(size_t)L->out * L->in, (size_t)L->out, (size_t)L->out, (size_t)L->out};
        for (int t = 0; t < 4; t++) {
            if (!vec[t]) continue;
            for (size_t i = 0; i < len[t]; i++) {
                float *p = &vec[t][i];
                size_t at = (size_t)(p - r->params);
                float keep = *p;
                const double h = 1e-3;
                *p = (float)(keep + h);
                double lp = citer_router_batch_loss(r, X, y, w, n, lambda, 0, rng, NULL, 0);
                *p = (float)(keep - h);
                double lm = citer_router_batch_loss(r, X, y, w, n, lambda, 0, rng, NULL, 0);
                *p = keep;
                double fd = (lp - lm) / ((double)(float)(keep + h) - (double)(float)(keep - h));
                double an = g->params[at];
                double err = fabs(fd - an) / (1e-2 + fabs(an));
                if (err > worst[t]) worst[t] = err;
                checked[t]++;
                if (fabs(fd - an) > 2e-4 + 1e-2 * fabs(an)) {
                    bad++;
                    printf("  layer %d %s[%zu]: analytic %.6g, finite difference %.6g\n", k,
                           kind_name[t], i, an, fd);
                }
            }
        }
    }
    for (int t = 0; t < 4; t++) {
        printf("  %s: %d checked, worst relative error %.2g\n", kind_name[t], checked[t],
               worst[t]);
        CHECK(checked[t] > 0, "no %s checked", kind_name[t]);
    }
    CHECK(bad == 0, "%d gradients differ from finite differences", bad);
    citer_router_free(r);
    citer_router_free(g);
}

/* The running statistics follow torch's BatchNorm1d: momentum 0.1, unbiased variance. */
static void test_running_stats_update(void)
{
    int hidden[1] = {3};
    citer_router *r = random_router(2, 1, hidden);
    float bm[3], bv[3];
    memcpy(bm, r->layer[0].bn_mean, sizeof bm);
    memcpy(bv, r->layer[0].bn_var, sizeof bv);
    float X[4 * 2] = {1, 2, -1, 0.5f, 0.25f, -3, 2, 1}, y[4] = {0, 1, 0, 1}, w[4] = {1, 1, 1, 1};
    uint64_t rng[4] = {1, 2, 3, 4};
    citer_router_batch_loss(r, X, y, w, 4, 0, 0, rng, NULL, 1);
    const citer_router_layer *L = &r->layer[0];
    for (int j = 0; j < 3; j++) {
        double z[4], mean = 0, var = 0;
        for (int i = 0; i < 4; i++) {
            z[i] = L->bias[j] + (double)L->weight[j * 2] * X[i * 2] +
                   (double)L->weight[j * 2 + 1] * X[i * 2 + 1];
            mean += z[i] / 4;
        }
        for (int i = 0; i < 4; i++) var += (z[i] - mean) * (z[i] - mean) / 3; /* unbiased */
        double want_m = 0.9 * bm[j] + 0.1 * mean, want_v = 0.9 * bv[j] + 0.1 * var;
        CHECK(fabs(L->bn_mean[j] - want_m) < 1e-5, "running mean %d: %g, want %g", j,
              L->bn_mean[j], want_m);
        CHECK(fabs(L->bn_var[j] - want_v) < 1e-5 * (1 + want_v), "running var %d: %g, want %g", j,
              L->bn_var[j], want_v);
    }
    citer_router_free(r);
}

/* ---- inference ---- */

/* The score by the formula, in double: normalise, then per hidden layer linear, BatchNorm with
 * the running statistics, ReLU; then the output layer and the sigmoid. */
static double reference_score(const citer_router *r, const float *h)
{
    double a[64], b[64];
    for (int i = 0; i < r->dim; i++) a[i] = (h[i] - (double)r->norm_mean[i]) / r->norm_std[i];
    for (int k = 0; k < r->n_hidden; k++) {
        const citer_router_layer *L = &r->layer[k];
        for (int j = 0; j < L->out; j++) {
            double z = L->bias[j];
            for (int i = 0; i < L->in; i++) z += (double)L->weight[j * L->in + i] * a[i];
            z = (z - L->bn_mean[j]) / sqrt((double)L->bn_var[j] + 1e-5) * L->bn_weight[j] +
                L->bn_bias[j];
            b[j] = z > 0 ? z : 0;
        }
        memcpy(a, b, sizeof a);
    }
    const citer_router_layer *O = &r->layer[r->n_hidden];
    double z = O->bias[0];
    for (int i = 0; i < O->in; i++) z += (double)O->weight[i] * a[i];
    return 1 / (1 + exp(-z));
}

static void test_eval_matches_formula(void)
{
    int hidden[2] = {12, 6};
    citer_router *r = random_router(6, 2, hidden);
    float X[20 * 6], batch[20];
    for (int i = 0; i < 20 * 6; i++) X[i] = (float)(2 * grand());
    citer_router_score_batch(r, X, 20, batch);
    float *scratch = xmalloc(citer_router_scratch_len(r) * sizeof(float));
    double worst = 0;
    for (int i = 0; i < 20; i++) {
        double want = reference_score(r, X + i * 6);
        float s = citer_router_score(r, X + i * 6);
        float s2 = citer_router_score_with(r, X + i * 6, scratch);
        if (fabs(s - want) > worst) worst = fabs(s - want);
        CHECK(fabs(s - want) < 1e-5, "vector %d: score %.8g, formula %.8g", i, s, want);
        CHECK(fabs(batch[i] - want) < 1e-5, "vector %d: batch %.8g, formula %.8g", i, batch[i],
              want);
        CHECK(s == s2, "score_with differs from score");
        CHECK(s >= 0 && s <= 1, "score out of range");
    }
    printf("  worst difference from the formula: %.2g\n", worst);
    CHECK(citer_router_dim(r) == 6, "dim");
    free(scratch);
    citer_router_free(r);
}

static void test_save_load_exact(void)
{
    int hidden[2] = {10, 5};
    citer_router *r = random_router(5, 2, hidden);
    r->training = xstrdup("{\"epochs\":1}");
    const char *path = tmp_path("exact.safetensors");
    REQUIRE(citer_router_save(r, path) == 0, "save: %s", citer_error());
    citer_router *q = citer_router_load(path);
    REQUIRE(q, "load: %s", citer_error());
    CHECK(q->dim == 5 && q->n_hidden == 2 && q->layer[0].out == 10 && q->layer[1].out == 5,
          "shape");
    CHECK(q->training && !strcmp(q->training, "{\"epochs\":1}"), "training metadata");
    CHECK(!memcmp(q->params, r->params, r->n_params * sizeof(float)), "params differ");
    CHECK(!memcmp(q->stats, r->stats, r->n_stats * sizeof(float)), "stats differ");
    float x[5];
    for (int t = 0; t < 50; t++) {
        for (int i = 0; i < 5; i++) x[i] = (float)(3 * grand());
        float a = citer_router_score(r, x), b = citer_router_score(q, x);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "score %.9g after load, %.9g before", b, a);
    }
    st_file *f = st_open(path);
    REQUIRE(f, "st_open");
    char *layers = st_metadata(f, "layers"), *fmt = st_metadata(f, "format");
    CHECK(layers && !strcmp(layers, "5,10,5,1"), "layers '%s'", layers ? layers : "(none)");
    CHECK(fmt && !strcmp(fmt, "citer-router"), "format");
    const st_tensor *t = st_find(f, "out.weight");
    CHECK(t && t->n_dims == 2 && t->shape[0] == 1 && t->shape[1] == 5, "out.weight shape");
    t = st_find(f, "l0.weight");
    CHECK(t && t->n_dims == 2 && t->shape[0] == 10 && t->shape[1] == 5, "l0.weight shape");
    free(layers);
    free(fmt);
    st_close(f);
    citer_router_free(r);
    citer_router_free(q);
}

/* ---- malformed files ---- */

typedef enum { M_NONE, M_DROP, M_SHAPE, M_DTYPE, M_NAN, M_STD0, M_EXTRA, M_NEGVAR } mutation;

/* Write a 3,6,3,1 router with one tensor changed and the metadata given. */
static const char *write_variant(const char *name, mutation mut, const char *target,
                                 const char *format, const char *version, const char *input_dim,
                                 const char *layers)
{
    int hidden[2] = {6, 3};
    citer_router *r = random_router(3, 2, hidden);
    const char *path = tmp_path(name);
    char tmp[] = "variant-base.safetensors";
    const char *base = tmp_path(tmp);
    if (citer_router_save(r, base) != 0) return NULL;
    st_file *f = st_open(base);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        int hit = !strcmp(t->name, target);
        if (hit && mut == M_DROP) continue;
        uint64_t shape[2] = {t->shape[0], t->shape[1]};
        int nd = t->n_dims;
        size_t n = (size_t)(t->nbytes / 4);
        float *v = xmalloc((n + 1) * sizeof(float));
        memcpy(v, t->data, n * 4);
        if (hit && mut == M_SHAPE) {
            nd = 1;
            shape[0] = n;
        }
        if (hit && mut == M_NAN) v[n - 1] = NAN;
        if (hit && mut == M_STD0) v[0] = 0;
        if (hit && mut == M_NEGVAR) v[1] = -1;
        if (hit && mut == M_DTYPE) {
            shape[0] = nd == 1 ? n * 2 : shape[0];
            st_add(w, t->name, ST_F16, nd, shape, v);
        } else {
            st_add(w, t->name, ST_F32, nd, shape, v);
        }
        free(v);
    }
    if (mut == M_EXTRA) {
        uint64_t s1[1] = {1};
        float one = 1;
        st_add(w, "bn2.weight", ST_F32, 1, s1, &one);
    }
    if (format) st_writer_metadata(w, "format", format);
    if (version) st_writer_metadata(w, "version", version);
    if (input_dim) st_writer_metadata(w, "input_dim", input_dim);
    if (layers) st_writer_metadata(w, "layers", layers);
    int rc = st_write(w, path);
    st_writer_free(w);
    st_close(f);
    citer_router_free(r);
    return rc == 0 ? path : NULL;
}

static void expect_load_error(const char *what, const char *path, const char *want)
{
    if (!path) {
        CHECK(0, "%s: could not write the variant", what);
        return;
    }
    citer_router *r = citer_router_load(path);
    CHECK(!r, "%s: loaded", what);
    if (r) {
        citer_router_free(r);
        return;
    }
    const char *e = citer_error();
    CHECK(strstr(e, want) != NULL, "%s: error '%s' does not mention '%s'", what, e, want);
    CHECK(!strchr(e, '\n'), "%s: error is not one line", what);
}

static void test_malformed_files(void)
{
    const char *F = "citer-router", *V = "1", *I = "3", *L = "3,6,3,1";
    /* the unmodified variant loads, so every failure below is the mutation's */
    const char *ok = write_variant("ok.safetensors", M_NONE, "", F, V, I, L);
    citer_router *r = ok ? citer_router_load(ok) : NULL;
    CHECK(r, "unmodified variant: %s", citer_error());
    citer_router_free(r);

    expect_load_error("missing tensor", write_variant("m1", M_DROP, "bn1.running_var", F, V, I, L),
                      "missing tensor 'bn1.running_var'");
    expect_load_error("missing out", write_variant("m2", M_DROP, "out.bias", F, V, I, L),
                      "missing tensor 'out.bias'");
    expect_load_error("wrong shape", write_variant("m3", M_SHAPE, "l1.weight", F, V, I, L),
                      "tensor 'l1.weight': shape [18], expected [3, 6]");
    expect_load_error("wrong dtype", write_variant("m4", M_DTYPE, "bn0.bias", F, V, I, L),
                      "tensor 'bn0.bias': dtype F16, expected F32");
    expect_load_error("nan", write_variant("m5", M_NAN, "l0.bias", F, V, I, L),
                      "tensor 'l0.bias': element 5 is not finite");
    expect_load_error("zero std", write_variant("m6", M_STD0, "norm.std", F, V, I, L),
                      "tensor 'norm.std': element 0 is not positive");
    expect_load_error("negative var", write_variant("m6b", M_NEGVAR, "bn0.running_var", F, V, I, L),
                      "tensor 'bn0.running_var': element 1 is negative");
    expect_load_error("extra tensor", write_variant("m7", M_EXTRA, "", F, V, I, L),
                      "unexpected tensor 'bn2.weight'");
    expect_load_error("no format", write_variant("m8", M_NONE, "", NULL, V, I, L),
                      "missing __metadata__ key 'format'");
    expect_load_error("wrong format", write_variant("m9", M_NONE, "", "gguf", V, I, L),
                      "format is 'gguf', expected 'citer-router'");
    expect_load_error("wrong version", write_variant("m10", M_NONE, "", F, "2", I, L),
                      "version '2' not supported");
    expect_load_error("bad input_dim", write_variant("m11", M_NONE, "", F, V, "three", L),
                      "input_dim 'three' is not a positive size");
    expect_load_error("layers vs input_dim", write_variant("m12", M_NONE, "", F, V, "4", L),
                      "must be input_dim (4)");
    expect_load_error("layers not ending in 1", write_variant("m13", M_NONE, "", F, V, I, "3,6,3"),
                      "then 1");
    expect_load_error("layers not matching tensors",
                      write_variant("m14", M_NONE, "", F, V, I, "3,6,4,1"),
                      "tensor 'l1.weight': shape [3, 6], expected [4, 6]");
    expect_load_error("layers garbage", write_variant("m15", M_NONE, "", F, V, I, "3,,1"),
                      "expected sizes from 1 to 16777215 separated by commas");
    expect_load_error("layers huge", write_variant("m16", M_NONE, "", F, V, I, "3,99999999,1"),
                      "expected sizes from 1 to 16777215 separated by commas");
    /* no file, a truncated one, and a file that is not safetensors at all */
    citer_router *none = citer_router_load(tmp_path("does-not-exist"));
    CHECK(!none && strlen(citer_error()) > 0, "missing file loaded");
    if (ok) {
        size_t n;
        char *bytes = citer_read_file(ok, &n);
        REQUIRE(bytes, "read");
        const char *tp = tmp_path("truncated.safetensors");
        size_t cuts[4] = {n - 1, n / 2, 12, 3};
        for (int c = 0; c < 4; c++) {
            FILE *f = fopen(tp, "wb");
            fwrite(bytes, 1, cuts[c], f);
            fclose(f);
            citer_router *t = citer_router_load(tp);
            CHECK(!t, "truncated at %zu of %zu: loaded", cuts[c], n);
            if (!t) CHECK(!strchr(citer_error(), '\n'), "message has a line break");
            citer_router_free(t);
        }
        free(bytes);
    }
}

/* ---- split, metrics, reading ---- */

static void test_split_keeps_examples_whole(void)
{
    citer_features fs;
    synth(&fs, 3, 1000, 7); /* ids 1000.., 7 records each, ids not in record order below */
    for (size_t i = 0; i < fs.n; i++) fs.seq[i] = (i * 37) % 143;
    uint8_t *v = xmalloc(fs.n);
    REQUIRE(citer_split(&fs, 0.2, 42, v) == 0, "split: %s", citer_error());
    size_t n_val = 0;
    int split_ids = 0, ids_val = 0;
    for (uint64_t id = 0; id < 143; id++) {
        int in_val = -1;
        for (size_t i = 0; i < fs.n; i++)
            if (fs.seq[i] == id) {
                if (in_val < 0) in_val = v[i];
                else if (in_val != v[i]) split_ids++;
            }
        ids_val += in_val == 1;
    }
    for (size_t i = 0; i < fs.n; i++) n_val += v[i];
    CHECK(split_ids == 0, "%d ids on both sides", split_ids);
    CHECK(ids_val == 29, "%d validation ids, want round(0.2 * 143) = 29", ids_val);
    CHECK(n_val > 0 && n_val < fs.n, "n_val %zu", n_val);
    uint8_t *v2 = xmalloc(fs.n);
    citer_split(&fs, 0.2, 42, v2);
    CHECK(!memcmp(v, v2, fs.n), "same seed, different split");
    citer_split(&fs, 0.2, 43, v2);
    CHECK(memcmp(v, v2, fs.n) != 0, "another seed, same split");
    /* one id cannot be split */
    for (size_t i = 0; i < fs.n; i++) fs.seq[i] = 5;
    CHECK(citer_split(&fs, 0.1, 1, v) == -1 && strstr(citer_error(), "at least 2 example ids"),
          "single id: %s", citer_error());
    CHECK(citer_split(&fs, 0, 1, v) == 0, "val-frac 0 with one id");
    free(v);
    free(v2);
    citer_features_free(&fs);
}

static void test_auroc(void)
{
    /* hand-computed: of the 4 (positive, negative) pairs, 3 are ordered right */
    float s1[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    uint8_t l1[4] = {0, 0, 1, 1};
    CHECK(fabs(citer_auroc(s1, l1, 4) - 0.75) < 1e-12, "auroc %g", citer_auroc(s1, l1, 4));
    /* ties count one half: pos 0.5 vs two negs at 0.5 -> 1, pos 0.9 vs both -> 2; 3 / 4 */
    float s2[4] = {0.5f, 0.5f, 0.5f, 0.9f};
    uint8_t l2[4] = {0, 1, 0, 1};
    CHECK(fabs(citer_auroc(s2, l2, 4) - 0.75) < 1e-12, "ties: %g", citer_auroc(s2, l2, 4));
    float s3[3] = {0.2f, 0.2f, 0.2f};
    uint8_t l3[3] = {1, 0, 1};
    CHECK(fabs(citer_auroc(s3, l3, 3) - 0.5) < 1e-12, "all tied: %g", citer_auroc(s3, l3, 3));
    uint8_t l4[3] = {1, 1, 1};
    CHECK(isnan(citer_auroc(s3, l4, 3)), "one class: not NaN");
    float s5[4] = {0.9f, 0.8f, 0.1f, 0.2f};
    CHECK(fabs(citer_auroc(s5, l1, 4) - 0.0) < 1e-12, "reversed: %g", citer_auroc(s5, l1, 4));
    /* against the O(n^2) pair count on random data with many ties */
    enum { N = 300 };
    float s[N];
    uint8_t l[N];
    for (int i = 0; i < N; i++) s[i] = (float)(int)(urand() * 20) / 20, l[i] = urand() < 0.4;
    double good = 0, pairs = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (l[i] == 1 && l[j] == 0) {
                pairs++;
                good += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
            }
    CHECK(fabs(citer_auroc(s, l, N) - good / pairs) < 1e-12, "random: %g vs %g",
          citer_auroc(s, l, N), good / pairs);
}

/* Write feature records; meta[i] NULL for none. */
static FILE *feature_stream(int n, const int *dims, const char *const *meta, int dtype)
{
    FILE *f = tmpfile();
    citer_writer *w = citer_writer_new(f);
    citer_record rec;
    /* a tokens record first: other kinds are skipped */
    int32_t ids[2] = {1, 2};
    citer_write_tokens(w, 9, -1, ids, 2, NULL);
    for (int i = 0; i < n; i++) {
        float v[8];
        uint16_t h[8];
        for (int j = 0; j < 8; j++) v[j] = (float)(i + j), h[j] = citer_f32_to_bf16(v[j]);
        citer_record_init(&rec, CITER_FEATURE, dtype, (uint64_t)i / 2, i);
        rec.ndim = 1;
        rec.dim[0] = (uint32_t)dims[i];
        rec.data = dtype == CITER_F32 ? (void *)v : (void *)h;
        rec.nbytes = (size_t)dims[i] * citer_dtype_size(dtype);
        rec.meta = (char *)meta[i];
        rec.meta_len = 0;
        if (citer_write(w, &rec) != 0) printf("  write: %s\n", citer_error());
    }
    citer_writer_finish(w);
    citer_writer_free(w);
    rewind(f);
    return f;
}

static void test_read_features(void)
{
    int dims[4] = {4, 4, 4, 4};
    const char *good[4] = {"{\"label\":1,\"case\":1}", "{\"label\":0,\"case\":2,\"weight\":2.5}",
                           "{\"label\":0,\"case\":3}", "{\"label\":1}"};
    citer_features fs = {0};
    FILE *f = feature_stream(4, dims, good, CITER_F32);
    REQUIRE(citer_features_read(&fs, f, "good", 1) == 0, "%s", citer_error());
    fclose(f);
    CHECK(fs.n == 4 && fs.dim == 4, "n %zu dim %d", fs.n, fs.dim);
    CHECK(fs.label[0] == 1 && fs.label[1] == 0 && fs.kase[1] == 2 && fs.kase[3] == 0,
          "labels/cases");
    CHECK(fs.weight[1] == 2.5f && fs.weight[0] == 1, "weights");
    CHECK(fs.seq[3] == 1 && fs.pos[3] == 3 && fs.x[3 * 4 + 2] == 5, "seq/pos/data");
    /* a second stream appends; bf16 converts */
    f = feature_stream(4, dims, good, CITER_BF16);
    CHECK(citer_features_read(&fs, f, "bf16", 1) == 0, "%s", citer_error());
    fclose(f);
    CHECK(fs.n == 8 && fs.x[7 * 4 + 3] == 6, "bf16 appended");
    /* mixed sizes */
    int mixed[4] = {4, 4, 3, 4};
    f = feature_stream(4, mixed, good, CITER_F32);
    CHECK(citer_features_read(&fs, f, "mixed", 1) == -1 &&
              strstr(citer_error(), "record 4 (seq 1, pos 2): feature size 3, earlier records "
                                    "have 4"),
          "mixed: %s", citer_error());
    fclose(f);
    const char *cases[][2] = {
        {"{\"case\":1}", "record 2 (seq 0, pos 0): no \"label\""},
        {"{\"label\":2}", "\"label\" must be 0 or 1, not 2"},
        {"{\"label\":true}", "\"label\" must be 0 or 1, not true"},
        {"{\"label\":1,\"case\":4}", "\"case\" must be 1, 2 or 3"},
        {"{\"label\":1,\"weight\":-1}", "\"weight\" must be a number >= 0"},
        {"{\"label\":1,\"weight\":\"x\"}", "\"weight\" must be a number >= 0"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        citer_features g = {0};
        const char *m[1] = {cases[c][0]};
        f = feature_stream(1, dims, m, CITER_F32);
        CHECK(citer_features_read(&g, f, "x", 1) == -1 && strstr(citer_error(), cases[c][1]),
              "%s: %s", cases[c][0], citer_error());
        fclose(f);
        citer_features_free(&g);
    }
    /* no label is fine when none is needed */
    citer_features g = {0};
    const char *nol[2] = {NULL, "{\"x\":1}"};
    f = feature_stream(2, dims, nol, CITER_F32);
    CHECK(citer_features_read(&g, f, "x", 0) == 0 && g.n == 2 && g.label[0] == CITER_NO_LABEL,
          "unlabelled: %s", citer_error());
    fclose(f);
    citer_features_free(&g);
    /* a corrupt stream reports the reader's error */
    f = tmpfile();
    fputs("not a stream at all", f);
    rewind(f);
    CHECK(citer_features_read(&g, f, "x", 1) == -1 && strstr(citer_error(), "byte"),
          "corrupt: %s", citer_error());
    fclose(f);
    citer_features_free(&g);
    citer_features_free(&fs);
}

/* ---- training ---- */

static void test_training_learns(void)
{
    citer_features fs;
    rs = 12345;
    synth(&fs, 8, 6000, 20);
    citer_train_opts o;
    citer_train_defaults(&o);
    o.epochs = 40;
    o.hidden_mult = 4;
    o.batch = 64;
    o.val_frac = 0.2;
    o.seed = 7;
    citer_train_summary s;
    double t0 = now_seconds();
    citer_router *r = citer_router_train(&fs, &o, &s);
    REQUIRE(r, "train: %s", citer_error());
    printf("  %d epochs (best %d) in %.2f s: train loss %.4f, val loss %.4f, acc %.4f, "
           "AUROC %.4f, %zu/%zu records\n",
           s.epochs, s.best_epoch, now_seconds() - t0, s.train_loss, s.val.loss, s.val.accuracy,
           s.val.auroc, s.n_train, s.n_val);
    CHECK(s.has_val && s.val.accuracy > 0.9, "validation accuracy %.4f", s.val.accuracy);
    CHECK(s.val.auroc > 0.95, "validation AUROC %.4f", s.val.auroc);
    CHECK(s.n_train + s.n_val == fs.n && s.n_val % 20 == 0, "split sizes %zu %zu", s.n_train,
          s.n_val);
    CHECK(r->training && strstr(r->training, "\"val_auroc\":"), "training summary");
    /* a fresh problem from the same rule: the router generalises */
    citer_features test;
    synth(&test, 8, 2000, 20);
    citer_metrics m;
    const double cw[2] = {1, 1};
    citer_router_evaluate(r, &test, NULL, test.n, cw, 0, &m, NULL);
    printf("  held-out: accuracy %.4f, AUROC %.4f\n", m.accuracy, m.auroc);
    CHECK(m.accuracy > 0.9 && m.auroc > 0.95, "held-out acc %.4f auroc %.4f", m.accuracy, m.auroc);

    /* lambda trades large-model calls: scores move up, fewer records fall below 0.5 */
    o.lambda = 0.5;
    o.epochs = 15;
    citer_router *rl = citer_router_train(&fs, &o, NULL);
    REQUIRE(rl, "train with lambda: %s", citer_error());
    float *a = xmalloc(test.n * sizeof(float)), *b = xmalloc(test.n * sizeof(float));
    citer_router_score_batch(r, test.x, test.n, a);
    citer_router_score_batch(rl, test.x, test.n, b);
    size_t llm_a = 0, llm_b = 0;
    for (size_t i = 0; i < test.n; i++) llm_a += a[i] < 0.5, llm_b += b[i] < 0.5;
    printf("  large-model fraction at tau 0.5: %.3f (lambda 0), %.3f (lambda 0.5)\n",
           (double)llm_a / test.n, (double)llm_b / test.n);
    CHECK(llm_b < llm_a, "lambda did not reduce large-model calls: %zu vs %zu", llm_b, llm_a);
    free(a);
    free(b);
    citer_router_free(rl);
    citer_router_free(r);
    citer_features_free(&fs);
    citer_features_free(&test);
}

static void test_same_seed_same_file(void)
{
    citer_features fs;
    rs = 999;
    synth(&fs, 6, 1500, 10);
    citer_train_opts o;
    citer_train_defaults(&o);
    o.epochs = 4;
    o.seed = 3;
    const char *p1 = tmp_path("s1.safetensors"), *p2 = tmp_path("s2.safetensors"),
               *p3 = tmp_path("s3.safetensors");
    citer_router *a = citer_router_train(&fs, &o, NULL);
    citer_router *b = citer_router_train(&fs, &o, NULL);
    o.seed = 4;
    citer_router *c = citer_router_train(&fs, &o, NULL);
    REQUIRE(a && b && c, "train: %s", citer_error());
    REQUIRE(!citer_router_save(a, p1) && !citer_router_save(b, p2) && !citer_router_save(c, p3),
            "save: %s", citer_error());
    CHECK(same_file(p1, p2), "same seed, different files");
    CHECK(!same_file(p1, p3), "different seeds, same file");
    /* continuing from a router (--init) keeps its normalisation and shape */
    o.init = a;
    o.epochs = 1;
    citer_router *d = citer_router_train(&fs, &o, NULL);
    REQUIRE(d, "init: %s", citer_error());
    CHECK(!memcmp(d->norm_mean, a->norm_mean, (size_t)fs.dim * sizeof(float)), "normalisation");
    CHECK(memcmp(d->params, a->params, a->n_params * sizeof(float)) != 0, "no training step");
    CHECK(strstr(d->training, "\"init\":true") != NULL, "init flag");
    citer_router_free(a);
    citer_router_free(b);
    citer_router_free(c);
    citer_router_free(d);
    citer_features_free(&fs);
}

static void test_training_errors(void)
{
    citer_features fs;
    synth(&fs, 3, 100, 10);
    citer_train_opts o;
    citer_train_defaults(&o);
    o.epochs = 1;
    memset(fs.label, 1, fs.n);
    CHECK(!citer_router_train(&fs, &o, NULL) && strstr(citer_error(), "have label 1"),
          "one class: %s", citer_error());
    fs.label[3] = CITER_NO_LABEL;
    CHECK(!citer_router_train(&fs, &o, NULL) && strstr(citer_error(), "has no label"),
          "missing label: %s", citer_error());
    for (size_t i = 0; i < fs.n; i++) fs.seq[i] = 1;
    fs.label[3] = 0;
    CHECK(!citer_router_train(&fs, &o, NULL) && strstr(citer_error(), "at least 2 example ids"),
          "one id: %s", citer_error());
    o.val_frac = 0;
    citer_router *r = citer_router_train(&fs, &o, NULL);
    CHECK(r && strstr(r->training, "\"val_loss\":null"), "no validation: %s",
          r ? r->training : citer_error());
    citer_router_free(r);
    int hidden[1] = {2};
    citer_router *other = citer_router_new(5, 1, hidden);
    o.init = other;
    CHECK(!citer_router_train(&fs, &o, NULL) && strstr(citer_error(), "takes 5 features"),
          "init dim: %s", citer_error());
    citer_router_free(other);
    citer_features_free(&fs);
}

int main(void)
{
    RUN(test_gradient_finite_differences);
    RUN(test_running_stats_update);
    RUN(test_eval_matches_formula);
    RUN(test_save_load_exact);
    RUN(test_malformed_files);
    RUN(test_split_keeps_examples_whole);
    RUN(test_auroc);
    RUN(test_read_features);
    RUN(test_training_learns);
    RUN(test_same_seed_same_file);
    RUN(test_training_errors);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t_tmpdir());
    if (system(cmd) != 0) printf("  could not remove %s\n", t_tmpdir());
    return t_exit();
}
