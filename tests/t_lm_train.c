/* lm_train: gradients against finite differences of an independent float64 forward pass, the
 * trainer's forward against the engine and the fixtures' references, learning a toy task,
 * determinism, resume, schedule and optimiser arithmetic. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "forward.h"
#include "kvcache.h"
#include "lm_train.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

/* ---------------------------------------------------------------- float64 reference forward
 * Written from the architecture definitions (fixtures/models/README.md), position by position,
 * sharing nothing with lib/lm_train.c but the parameter layout. */

typedef struct {
    const double *embed, *out_norm, *head;
    const double *attn_norm[8], *wq[8], *wk[8], *wv[8], *wo[8], *ffn_norm[8], *wg[8], *wu[8], *wd[8];
} ref_params;

static void ref_bind(const lmt_model *m, const double *w, ref_params *p)
{
    int k = 0;
    p->embed = w + m->tensors[k++].off;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        p->attn_norm[l] = w + m->tensors[k++].off;
        p->wq[l] = w + m->tensors[k++].off;
        p->wk[l] = w + m->tensors[k++].off;
        p->wv[l] = w + m->tensors[k++].off;
        p->wo[l] = w + m->tensors[k++].off;
        p->ffn_norm[l] = w + m->tensors[k++].off;
        p->wg[l] = w + m->tensors[k++].off;
        p->wu[l] = w + m->tensors[k++].off;
        p->wd[l] = w + m->tensors[k++].off;
    }
    p->out_norm = w + m->tensors[k++].off;
    p->head = m->cfg.tied ? p->embed : w + m->tensors[k++].off;
}

static void ref_rmsnorm(double *y, const double *x, const double *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

/* y[out] = W[out x in] x */
static void ref_mv(double *y, const double *W, const double *x, int out, int in)
{
    for (int r = 0; r < out; r++) {
        double s = 0;
        for (int c = 0; c < in; c++) s += W[(size_t)r * in + c] * x[c];
        y[r] = s;
    }
}

static void ref_rope(double *v, int hd, int pos, double theta)
{
    int half = hd / 2;
    for (int j = 0; j < half; j++) {
        double a = pos * pow(theta, -2.0 * j / hd), c = cos(a), s = sin(a);
        double x = v[j], y = v[j + half];
        v[j] = x * c - y * s;
        v[j + half] = y * c + x * s;
    }
}

/* Logits of one sequence (T x V), or the weighted mean cross-entropy of a batch. */
static void ref_logits(const lmt_model *m, const double *w, const int32_t *tok, int T, double *logits)
{
    const lmt_config *c = &m->cfg;
    ref_params p;
    ref_bind(m, w, &p);
    int D = c->dim, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, F = c->ffn_dim, V = c->vocab_size;
    int qd = H * hd, kvd = KV * hd;
    double *x = calloc((size_t)T * D, sizeof *x), *h = calloc(D, sizeof *h);
    double *q = calloc((size_t)T * qd, sizeof *q), *k = calloc((size_t)T * kvd, sizeof *k),
           *v = calloc((size_t)T * kvd, sizeof *v), *o = calloc(qd, sizeof *o), *y = calloc(D, sizeof *y),
           *g = calloc(F, sizeof *g), *u = calloc(F, sizeof *u), *sc = calloc(T, sizeof *sc);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) x[t * D + i] = p.embed[(size_t)tok[t] * D + i];
    for (int l = 0; l < c->n_layers; l++) {
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(h, x + t * D, p.attn_norm[l], D, c->rms_eps);
            ref_mv(q + t * qd, p.wq[l], h, qd, D);
            ref_mv(k + t * kvd, p.wk[l], h, kvd, D);
            ref_mv(v + t * kvd, p.wv[l], h, kvd, D);
            for (int hh = 0; hh < H; hh++) ref_rope(q + t * qd + hh * hd, hd, t, c->rope_theta);
            for (int hh = 0; hh < KV; hh++) ref_rope(k + t * kvd + hh * hd, hd, t, c->rope_theta);
        }
        double *xn = calloc((size_t)T * D, sizeof *xn);
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < H; hh++) {
                int gk = hh / (H / KV);
                double mx = -1e300, sum = 0;
                for (int s = 0; s <= t; s++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q[t * qd + hh * hd + i] * k[s * kvd + gk * hd + i];
                    sc[s] = d / sqrt(hd);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int s = 0; s <= t; s++) sum += sc[s] = exp(sc[s] - mx);
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int s = 0; s <= t; s++) a += sc[s] / sum * v[s * kvd + gk * hd + i];
                    o[hh * hd + i] = a;
                }
            }
            ref_mv(y, p.wo[l], o, D, qd);
            for (int i = 0; i < D; i++) xn[t * D + i] = x[t * D + i] + y[i];
        }
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(h, xn + t * D, p.ffn_norm[l], D, c->rms_eps);
            ref_mv(g, p.wg[l], h, F, D);
            ref_mv(u, p.wu[l], h, F, D);
            for (int i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_mv(y, p.wd[l], g, D, F);
            for (int i = 0; i < D; i++) x[t * D + i] = xn[t * D + i] + y[i];
        }
        free(xn);
    }
    for (int t = 0; t < T; t++) {
        ref_rmsnorm(h, x + t * D, p.out_norm, D, c->rms_eps);
        ref_mv(logits + (size_t)t * V, p.head, h, V, D);
    }
    free(x), free(h), free(q), free(k), free(v), free(o), free(y), free(g), free(u), free(sc);
}

static double ref_loss(const lmt_model *m, const double *w, const int32_t *in, const int32_t *tg, const float *wt,
                       int B, int T)
{
    int V = m->cfg.vocab_size;
    double *lg = malloc((size_t)T * V * sizeof *lg), loss = 0, total = 0;
    for (int b = 0; b < B; b++) {
        ref_logits(m, w, in + b * T, T, lg);
        for (int t = 0; t < T; t++) {
            const double *z = lg + (size_t)t * V;
            double mx = z[0], s = 0;
            for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
            for (int i = 0; i < V; i++) s += exp(z[i] - mx);
            double wgt = wt ? wt[b * T + t] : 1;
            loss += wgt * (mx + log(s) - z[tg[b * T + t]]);
            total += wgt;
        }
    }
    free(lg);
    return loss / total;
}

static uint64_t trng = 12345;
static double t_uniform(void)
{
    trng = trng * 6364136223846793005ull + 1442695040888963407ull;
    return ((trng >> 11) + 0.5) / 9007199254740992.0;
}
static double t_normal(void) { return sqrt(-2 * log(t_uniform())) * cos(2 * M_PI * t_uniform()); }

/* Weights large enough that attention is far from uniform and every path carries gradient. */
static void big_init(lmt_model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const lmt_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->n; j++)
            m->w[t->off + j] = (float)(t->cols ? 0.5 * t_normal() : 1 + 0.3 * t_normal());
    }
}

/* Which layer type a tensor belongs to, for the report. */
static const char *kind_of(const char *name)
{
    static const char *kinds[] = {"embed_tokens", "input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj",
                                  "post_attention_layernorm", "gate_proj", "up_proj", "down_proj", "model.norm",
                                  "lm_head"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strstr(name, kinds[i])) return kinds[i];
    return name;
}

static void gradcheck(int tied)
{
    lmt_config c = {.dim = 12, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4, .ffn_dim = 20,
                    .vocab_size = 11, .context_length = 16, .rms_eps = 1e-5f, .rope_theta = 100, .tied = tied,
                    .bos = -1, .eos = -1};
    lmt_model *m = lmt_model_new(&c);
    REQUIRE(m, "%s", citer_error());
    big_init(m);
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    float wt[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(t_uniform() * c.vocab_size);
        tg[i] = (int32_t)(t_uniform() * c.vocab_size);
        wt[i] = i % 5 == 1 ? 0.0f : 1.0f; /* some positions do not count (loss on targets only) */
    }
    double loss = lmt_step_loss(m, in, tg, wt, B, T, 1);
    double *w = malloc(m->n_params * sizeof *w);
    for (size_t i = 0; i < m->n_params; i++) w[i] = m->w[i];
    double rl = ref_loss(m, w, in, tg, wt, B, T);
    CHECK(fabs(loss - rl) <= 1e-5 * fabs(rl), "loss %.9g, float64 reference %.9g", loss, rl);
    double worst = 0;
    const char *worst_name = "";
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const lmt_tensor *t = &m->tensors[ti];
        double gmax = 0, err = 0;
        for (size_t j = 0; j < t->n; j++) gmax = fmax(gmax, fabs(m->g[t->off + j]));
        for (size_t j = 0; j < t->n; j++) {
            size_t i = t->off + j;
            double h = 1e-5, save = w[i];
            w[i] = save + h;
            double lp = ref_loss(m, w, in, tg, wt, B, T);
            w[i] = save - h;
            double lm = ref_loss(m, w, in, tg, wt, B, T);
            w[i] = save;
            double num = (lp - lm) / (2 * h), ana = m->g[i];
            /* relative error, with a floor of 1e-3 of the tensor's largest gradient */
            double e = fabs(ana - num) / fmax(fabs(num), 1e-3 * gmax);
            if (e > err) err = e;
        }
        CHECK(gmax > 1e-6, "%s: no gradient at all", t->name);
        CHECK(err <= 1e-3, "%s: relative error %.3g against finite differences", t->name, err);
        if (err > worst) worst = err, worst_name = t->name;
        if (strstr(t->name, "layers.1.") || strstr(t->name, "embed") || strstr(t->name, "norm.weight") ||
            strstr(t->name, "lm_head"))
            if (!strstr(t->name, "layers.0."))
                printf("  %s%-26s max rel err %.2e  (max |g| %.2e)\n", tied ? "tied   " : "untied ", kind_of(t->name),
                       err, gmax);
    }
    printf("  worst: %s %.2e\n", worst_name, worst);
    free(w);
    lmt_model_free(m);
}

static void test_gradcheck_tied(void) { gradcheck(1); }
static void test_gradcheck_untied(void) { gradcheck(0); }

/* ---------------------------------------------------------------- trainer vs engine */

static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return sqrt(d / (s > 0 ? s : 1));
}

static void engine_roundtrip(int tied, int f16)
{
    lmt_config c = {.dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 96, .vocab_size = 300,
                    .context_length = 64, .rms_eps = 1e-5f, .rope_theta = 10000, .tied = tied, .bos = 1, .eos = 2};
    lmt_model *m = lmt_model_new(&c);
    REQUIRE(m, "%s", citer_error());
    lmt_model_init(m, 7);
    for (size_t i = 0; i < m->n_params; i++) m->w[i] *= 4; /* sharper attention than a fresh init */
    enum { T = 40 };
    int32_t tok[T];
    for (int t = 0; t < T; t++) tok[t] = (int32_t)(t_uniform() * c.vocab_size);
    float *mine = malloc(sizeof(float) * T * c.vocab_size), *eng = malloc(sizeof(float) * T * c.vocab_size);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/rt-%d-%d", t_tmpdir(), tied, f16);
    REQUIRE(lmt_model_save_hf(m, dir, f16) == 0, "%s", citer_error());
    if (f16) /* compare against the trainer running the weights the file holds */
        for (size_t i = 0; i < m->n_params; i++) m->w[i] = citer_f16_to_f32(citer_f32_to_f16(m->w[i]));
    lmt_logits(m, tok, T, mine);
    citer_model *e = citer_model_load(dir);
    REQUIRE(e, "load %s: %s", dir, citer_error());
    CHECK(e->cfg.tied_embeddings == tied && e->cfg.dim == 64 && e->cfg.n_kv_heads == 2 && e->cfg.eos == 2,
          "config read back differs: %s", citer_model_describe(e));
    citer_seq *s = citer_seq_new(e);
    REQUIRE(citer_forward(e, s, tok, T, NULL, eng, 1) == 0, "%s", citer_error());
    double worst = 0;
    for (int t = 0; t < T; t++)
        worst = fmax(worst, rel_l2(mine + (size_t)t * c.vocab_size, eng + (size_t)t * c.vocab_size, c.vocab_size));
    double *w = malloc(m->n_params * sizeof *w), *rl = malloc(sizeof(double) * T * c.vocab_size);
    for (size_t i = 0; i < m->n_params; i++) w[i] = m->w[i];
    ref_logits(m, w, tok, T, rl);
    float *rf = malloc(sizeof(float) * T * c.vocab_size);
    for (size_t i = 0; i < (size_t)T * c.vocab_size; i++) rf[i] = (float)rl[i];
    double em = 0, ee = 0;
    for (int t = 0; t < T; t++) {
        em = fmax(em, rel_l2(mine + (size_t)t * c.vocab_size, rf + (size_t)t * c.vocab_size, c.vocab_size));
        ee = fmax(ee, rel_l2(eng + (size_t)t * c.vocab_size, rf + (size_t)t * c.vocab_size, c.vocab_size));
    }
    free(w), free(rl), free(rf);
    printf("  %s %s: max rel L2 trainer vs engine %.2e (vs float64 reference: trainer %.2e, engine %.2e)\n",
           tied ? "tied" : "untied", f16 ? "f16" : "f32", worst, em, ee);
    CHECK(worst <= 1e-5, "trainer and engine logits differ: %.3g", worst);
    citer_seq_free(s);
    citer_model_free(e);
    lmt_model_free(m);
    free(mine), free(eng);
}

static void test_engine_tied_f32(void) { engine_roundtrip(1, 0); }
static void test_engine_untied_f32(void) { engine_roundtrip(0, 0); }
static void test_engine_tied_f16(void) { engine_roundtrip(1, 1); }

/* The fixtures' float64 references: the trainer's forward on real (and GQA, untied bf16) models. */
static void fixture_logits(const char *hf, const char *ref, double tol)
{
    const char *dir = t_fixture(hf), *refp = t_fixture(ref);
    if (!dir || !refp) SKIP(NO_FIXTURES);
    lmt_model *m = lmt_model_load_hf(dir);
    REQUIRE(m, "%s", citer_error());
    st_file *f = st_open(refp);
    REQUIRE(f, "%s", citer_error());
    const st_tensor *tt = st_find(f, "tokens"), *lt = st_find(f, "logits");
    REQUIRE(tt && lt, "reference tensors missing");
    int T = (int)tt->shape[0], V = m->cfg.vocab_size;
    REQUIRE((int)lt->shape[1] == V, "vocab differs");
    float *lg = malloc(sizeof(float) * T * V);
    lmt_logits(m, tt->data, T, lg);
    double worst = 0;
    for (int t = 0; t < T; t++)
        worst = fmax(worst, rel_l2(lg + (size_t)t * V, (const float *)lt->data + (size_t)t * V, V));
    printf("  %s: max rel L2 vs float64 reference %.2e\n", hf, worst);
    CHECK(worst <= tol, "logits differ from the reference: %.3g", worst);
    free(lg);
    st_close(f);
    lmt_model_free(m);
}

static void test_fixture_stories(void)
{
    fixture_logits("models/stories260K/hf", "models/stories260K/stories260K.ref.safetensors", 1e-4);
}
static void test_fixture_gqa_bf16(void)
{
    fixture_logits("models/llama-gqa/hf", "models/llama-gqa/llama-gqa.ref.safetensors", 1e-3);
}

static void test_load_rejects_qwen2(void)
{
    const char *dir = t_fixture("models/qwen2/hf");
    if (!dir) SKIP(NO_FIXTURES);
    lmt_model *m = lmt_model_load_hf(dir);
    CHECK(!m, "a qwen2 model loaded for training");
    CHECK(strstr(citer_error(), "llama"), "message: %s", citer_error());
}

/* ---------------------------------------------------------------- schedule and optimiser */

static void test_schedule(void)
{
    lmt_optim o = {.lr = 1e-3, .min_lr = 1e-4, .warmup = 10, .steps = 110};
    CHECK(fabs(lmt_lr_at(&o, 0) - 1e-4) < 1e-15, "step 0: %g", lmt_lr_at(&o, 0));
    CHECK(fabs(lmt_lr_at(&o, 9) - 1e-3) < 1e-15, "step 9: %g", lmt_lr_at(&o, 9));
    CHECK(fabs(lmt_lr_at(&o, 10) - 1e-3) < 1e-15, "step 10: %g", lmt_lr_at(&o, 10));
    /* half way through the cosine: the mean of lr and min_lr */
    CHECK(fabs(lmt_lr_at(&o, 60) - 5.5e-4) < 1e-15, "step 60: %g", lmt_lr_at(&o, 60));
    CHECK(fabs(lmt_lr_at(&o, 110) - 1e-4) < 1e-15, "step 110: %g", lmt_lr_at(&o, 110));
    lmt_optim flat = {.lr = 2e-3, .min_lr = 2e-3, .warmup = 0, .steps = 5};
    CHECK(lmt_lr_at(&flat, 3) == 2e-3, "constant schedule: %g", lmt_lr_at(&flat, 3));
}

static void test_adamw_and_clip(void)
{
    lmt_config c = {.dim = 4, .n_layers = 1, .n_heads = 2, .ffn_dim = 4, .vocab_size = 5, .tied = 1};
    lmt_model *m = lmt_model_new(&c);
    REQUIRE(m, "%s", citer_error());
    for (size_t i = 0; i < m->n_params; i++) m->w[i] = 1.0f, m->g[i] = (i % 2 ? 3.0f : -4.0f);
    double n = lmt_clip_grad(m, 0);
    CHECK(fabs(n - 5 * sqrt(m->n_params / 2.0)) < 1e-9 * n, "norm %g", n);
    n = lmt_clip_grad(m, 1.0);
    CHECK(fabs(lmt_clip_grad(m, 0) - 1.0) < 1e-6, "clipped norm %g", lmt_clip_grad(m, 0));
    /* First AdamW step: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (eps 0), plus
     * decay lr * wd * w on matrices only. */
    lmt_optim o = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 0, .weight_decay = 0.1};
    lmt_adamw(m, &o, 0.01, 1);
    const lmt_tensor *emb = &m->tensors[0], *norm = &m->tensors[1];
    double want_e0 = 1 - 0.01 * 0.1 - 0.01 * -1, want_n1 = 1 - 0.01 * 1;
    CHECK(fabs(m->w[emb->off] - want_e0) < 1e-6, "embedding[0] %.8f, want %.8f", m->w[emb->off], want_e0);
    size_t odd = norm->off % 2 ? norm->off : norm->off + 1;
    CHECK(fabs(m->w[odd] - want_n1) < 1e-6, "norm weight %.8f, want %.8f (no decay)", m->w[odd], want_n1);
    lmt_model_free(m);
}

/* ---------------------------------------------------------------- training runs */

/* Counting modulo 16: each example is a random start followed by its successors; the loss
 * counts every token but the (unpredictable) first, so a model that learned the task has a
 * loss near 0, against ln 16 = 2.77 for a uniform guess. */
static void count_data(lmt_data *d)
{
    memset(d, 0, sizeof *d);
    uint64_t r = 99;
    for (int e = 0; e < 200; e++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int32_t start = (int32_t)((r >> 33) % 16), tok[24];
        for (int i = 0; i < 24; i++) tok[i] = (start + i) % 16;
        lmt_data_mark_start(d);
        lmt_data_append(d, tok, 1, 0);
        lmt_data_append(d, tok + 1, 23, 1);
    }
}

static lmt_config count_config(void)
{
    lmt_config c = {.dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 64, .vocab_size = 16,
                    .context_length = 64, .tied = 1, .bos = -1, .eos = -1};
    return c;
}

static lmt_train_opts count_opts(long steps)
{
    lmt_train_opts o = {.optim = {.lr = 3e-3, .min_lr = 3e-4, .warmup = 10, .steps = steps, .beta1 = 0.9,
                                  .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1},
                        .batch = 8, .seq_len = 32, .clip = 1.0, .seed = 5};
    return o;
}

static void test_learns_counting(void)
{
    lmt_data d;
    count_data(&d);
    lmt_config c = count_config();
    lmt_model *m = lmt_model_new(&c);
    REQUIRE(m, "%s", citer_error());
    lmt_model_init(m, 1);
    lmt_train_opts o = count_opts(200);
    char logp[4200];
    snprintf(logp, sizeof logp, "%s/count.tsv", t_tmpdir());
    o.log = logp;
    lmt_state s;
    lmt_state_init(&s, o.seed);
    REQUIRE(lmt_train(m, &d, &o, &s) == 0, "%s", citer_error());
    size_t len;
    char *text = citer_read_file(logp, &len);
    REQUIRE(text, "%s", citer_error());
    CHECK(!strncmp(text, "step\tloss\tlr\tgrad_norm\ttokens_per_s\n", 36), "log header: %.40s", text);
    double first = 0;
    sscanf(text + 36, "%*d %lf", &first);
    double ln16 = log(16.0);
    CHECK(fabs(first - ln16) < 0.1 * ln16, "first loss %.4f, expected near ln 16 = %.4f", first, ln16);
    /* mean of the last 10 logged losses */
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK(lines == 201, "log has %d lines, expected 201", lines);
    double last = 0;
    int k = 0;
    char *p = text;
    for (int ln = 0; *p; ln++) {
        if (ln >= 191) {
            double lv;
            if (sscanf(p, "%*d %lf", &lv) == 1) last += lv, k++;
        }
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    last /= k ? k : 1;
    printf("  counting: first loss %.4f, mean of last 10 %.4f (%d params)\n", first, last, (int)m->n_params);
    CHECK(last < 0.1 * ln16, "loss %.4f after 200 steps is not below 10%% of ln 16", last);
    free(text);
    /* the trained model through the engine: same logits, and greedy decoding counts */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/count-model", t_tmpdir());
    REQUIRE(lmt_model_save_hf(m, dir, 0) == 0, "%s", citer_error());
    citer_model *e = citer_model_load(dir);
    REQUIRE(e, "%s", citer_error());
    int32_t tok[20];
    for (int i = 0; i < 20; i++) tok[i] = (7 + i) % 16;
    float mine[20 * 16], eng[20 * 16];
    lmt_logits(m, tok, 20, mine);
    citer_seq *sq = citer_seq_new(e);
    REQUIRE(citer_forward(e, sq, tok, 20, NULL, eng, 1) == 0, "%s", citer_error());
    double worst = 0;
    int right = 0;
    for (int t = 0; t < 20; t++) {
        worst = fmax(worst, rel_l2(mine + t * 16, eng + t * 16, 16));
        int best = 0;
        for (int i = 1; i < 16; i++)
            if (eng[t * 16 + i] > eng[t * 16 + best]) best = i;
        right += best == (tok[t] + 1) % 16;
    }
    printf("  trained model: trainer vs engine %.2e, engine predicts %d/20 successors\n", worst, right);
    CHECK(worst <= 1e-5, "trained model logits differ: %.3g", worst);
    CHECK(right == 20, "engine predicts %d/20 successors", right);
    citer_seq_free(sq);
    citer_model_free(e);
    lmt_model_free(m);
    lmt_data_free(&d);
}

static lmt_model *train_count(long steps, long stop_at, const char *ckpt, lmt_state *s)
{
    lmt_data d;
    count_data(&d);
    lmt_config c = count_config();
    lmt_model *m = lmt_model_new(&c);
    lmt_model_init(m, 1);
    lmt_train_opts o = count_opts(steps);
    o.stop_at = stop_at;
    o.checkpoint = ckpt;
    lmt_state_init(s, o.seed);
    if (lmt_train(m, &d, &o, s)) {
        printf("  %s\n", citer_error());
        lmt_model_free(m);
        m = NULL;
    }
    lmt_data_free(&d);
    return m;
}

static void test_deterministic(void)
{
    lmt_state s1, s2;
    lmt_model *a = train_count(30, 0, NULL, &s1), *b = train_count(30, 0, NULL, &s2);
    REQUIRE(a && b, "training failed");
    CHECK(!memcmp(a->w, b->w, a->n_params * sizeof *a->w), "two runs with the same seed differ");
    lmt_model_free(a);
    lmt_model_free(b);
}

static void test_resume(void)
{
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/count.ckpt", t_tmpdir());
    lmt_state s_full, s_half, s_res;
    lmt_model *full = train_count(40, 0, NULL, &s_full);
    lmt_model *half = train_count(40, 20, ckpt, &s_half);
    REQUIRE(full && half, "training failed");
    CHECK(s_half.step == 20, "stopped at step %ld", s_half.step);
    uint64_t dh = 0;
    lmt_model *m = lmt_checkpoint_load(ckpt, &s_res, &dh);
    REQUIRE(m, "%s", citer_error());
    CHECK(s_res.step == 20 && s_res.rng == s_half.rng, "state read back: step %ld", s_res.step);
    CHECK(!memcmp(m->w, half->w, m->n_params * sizeof *m->w), "checkpoint weights differ");
    lmt_data d;
    count_data(&d);
    CHECK(dh == lmt_data_hash(&d), "data hash differs");
    lmt_train_opts o = count_opts(40);
    REQUIRE(lmt_train(m, &d, &o, &s_res) == 0, "%s", citer_error());
    CHECK(s_res.step == 40, "resumed run ended at %ld", s_res.step);
    CHECK(!memcmp(m->w, full->w, m->n_params * sizeof *m->w), "40 steps and 20 + resume 20 differ");
    CHECK(!memcmp(m->adam_v, full->adam_v, m->n_params * sizeof *m->w), "Adam moments differ");
    lmt_data_free(&d);
    lmt_model_free(m);
    lmt_model_free(full);
    lmt_model_free(half);
}

static void test_bad_inputs(void)
{
    lmt_config c = {.dim = 10, .n_layers = 1, .n_heads = 4, .ffn_dim = 8, .vocab_size = 5};
    CHECK(!lmt_model_new(&c), "dim 10 with 4 heads accepted");
    lmt_config c2 = {.dim = 8, .n_layers = 1, .n_heads = 4, .n_kv_heads = 3, .ffn_dim = 8, .vocab_size = 5};
    CHECK(!lmt_model_new(&c2), "4 heads over 3 kv heads accepted");
    lmt_state s;
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/not-a-checkpoint", t_tmpdir());
    FILE *f = fopen(bad, "w");
    fputs("garbage", f);
    fclose(f);
    CHECK(!lmt_checkpoint_load(bad, &s, NULL), "garbage loaded as a checkpoint");
    /* tokens out of the vocabulary are an error, not a crash */
    lmt_config c3 = count_config();
    lmt_model *m = lmt_model_new(&c3);
    lmt_data d = {0};
    int32_t tok[4] = {1, 2, 99, 3};
    lmt_data_append(&d, tok, 4, 1);
    lmt_train_opts o = count_opts(2);
    lmt_state_init(&s, 1);
    CHECK(lmt_train(m, &d, &o, &s) == -1 && strstr(citer_error(), "vocabulary"), "%s", citer_error());
    lmt_data_free(&d);
    lmt_model_free(m);
}

int main(void)
{
    RUN(test_gradcheck_tied);
    RUN(test_gradcheck_untied);
    RUN(test_engine_tied_f32);
    RUN(test_engine_untied_f32);
    RUN(test_engine_tied_f16);
    RUN(test_fixture_stories);
    RUN(test_fixture_gqa_bf16);
    RUN(test_load_rejects_qwen2);
    RUN(test_schedule);
    RUN(test_adamw_and_clip);
    RUN(test_learns_counting);
    RUN(test_deterministic);
    RUN(test_resume);
    RUN(test_bad_inputs);
    return t_exit();
}
