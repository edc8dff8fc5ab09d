/* router: CITER's token-level router, a small MLP over the small model's final hidden state.
 *
 * score(h) = sigmoid(out(relu(bn_{L-1}(l_{L-1}( ... relu(bn0(l0((h - mean) / std))) ... )))))
 * is the router's preference for the small model (SLM): a decoder hands the token to the large
 * model when the score is below its threshold tau. Dropout (training only) follows every ReLU.
 * The default shape, as in CITER's ConfidenceModel, is D -> 2D -> D -> 1 for hidden size D.
 *
 * File format (citer-train(1)): safetensors, F32 tensors
 *   norm.mean [D], norm.std [D]              per-dimension feature normalisation
 *   lK.weight [H_K, H_{K-1}], lK.bias [H_K]  hidden layer K (H_{-1} = D)
 *   bnK.weight, bnK.bias, bnK.running_mean, bnK.running_var [H_K]   BatchNorm after lK
 *   out.weight [1, H_last], out.bias [1]
 * and __metadata__ strings: format "citer-router", version "1", input_dim "D",
 * layers "D,H0,...,1", training (optional JSON summary of the run that made the file).
 * BatchNorm uses eps = 1e-5 and, at inference, the running statistics. */
#ifndef CITER_ROUTER_H
#define CITER_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CITER_ROUTER_MAX_HIDDEN 8
#define CITER_ROUTER_BN_EPS 1e-5f

typedef struct {
    int in, out;
    float *weight;  /* [out, in], row-major */
    float *bias;    /* [out] */
    /* BatchNorm over the layer's outputs; all NULL for the output layer */
    float *bn_weight, *bn_bias, *bn_mean, *bn_var;
} citer_router_layer;

typedef struct citer_router {
    int dim;       /* input size D */
    int n_hidden;  /* hidden layers; layer[n_hidden] is the output layer (out = 1) */
    citer_router_layer layer[CITER_ROUTER_MAX_HIDDEN + 1];
    float *norm_mean, *norm_std; /* [dim] */
    /* Storage: every trainable value (weights, biases, BatchNorm weight and bias, in layer
     * order) in params, the rest (normalisation, running statistics) in stats. */
    float *params;
    size_t n_params;
    float *stats;
    size_t n_stats;
    char *training; /* the JSON training summary, or NULL */
    /* Derived at load (citer_router_prepare): BatchNorm at inference as y = x * scale + shift,
     * and the scratch buffer citer_router_score works in. */
    float *bn_scale, *bn_shift;
    float *scratch;
    size_t scratch_len;
} citer_router;

/* ---- inference ---- */

/* NULL + citer_error() (one line: what is wrong, naming the tensor or key) on failure. */
citer_router *citer_router_load(const char *path);
void citer_router_free(citer_router *r);
int citer_router_dim(const citer_router *r);

/* The SLM preference score in [0, 1] of one hidden state of citer_router_dim(r) floats.
 * No allocation: it works in a scratch buffer inside r, so calls on one router must not run
 * at the same time from several threads; use citer_router_score_with for that. */
float citer_router_score(const citer_router *r, const float *hidden);
/* The same with a caller's scratch of citer_router_scratch_len(r) floats: thread-safe. */
size_t citer_router_scratch_len(const citer_router *r);
float citer_router_score_with(const citer_router *r, const float *hidden, float *scratch);
/* Scores of n hidden states (X: n rows of dim floats) into out[n], through matrix products.
 * Equal to citer_router_score up to float rounding (not necessarily bit for bit). */
void citer_router_score_batch(const citer_router *r, const float *X, size_t n, float *out);

/* ---- building and saving (training) ---- */

/* A router with zero parameters, identity normalisation (mean 0, std 1), BatchNorm weight 1,
 * bias 0, running mean 0 and running variance 1. hidden: n_hidden sizes. */
citer_router *citer_router_new(int dim, int n_hidden, const int *hidden);
/* A new router of the same shape with the same values (training summary included). */
citer_router *citer_router_copy(const citer_router *r);
/* Recompute the derived inference values after the parameters or statistics changed. */
void citer_router_prepare(citer_router *r);
/* "D,H0,...,1" into buf. */
void citer_router_layers_string(const citer_router *r, char *buf, size_t size);
/* Atomic write (temp file + rename); 0 ok, -1 + citer_error(). */
int citer_router_save(const citer_router *r, const char *path);

/* ---- labelled features (router_train.c) ---- */

/* Feature records of citer streams (kind feature, dtype f32/f16/bf16, shape [D], metadata
 * {"label": 0|1, "case": 1|2|3, "weight": w}) gathered in memory. */
typedef struct {
    int dim;          /* 0 until the first record */
    size_t n, cap;
    float *x;         /* n rows of dim */
    uint8_t *label;   /* 0 (LLM preferred), 1 (SLM preferred), CITER_NO_LABEL */
    uint8_t *kase;    /* 1..3, 0 when absent */
    float *weight;    /* per record, default 1 */
    uint64_t *seq;    /* example id */
    int64_t *pos;
} citer_features;

#define CITER_NO_LABEL 255

/* Append the feature records of the stream f (other kinds are skipped). With need_label, a
 * record without "label" is an error; without, its label is CITER_NO_LABEL.
 * 0 ok, -1 + citer_error() ("record N (seq S, pos P): ..." or the reader's message). */
int citer_features_read(citer_features *fs, FILE *f, const char *name, int need_label);
void citer_features_free(citer_features *fs);

/* ---- metrics ---- */

/* Area under the ROC curve of scores against 0/1 labels: the probability that a random
 * label-1 item scores above a random label-0 item, ties counting one half. NaN when one of
 * the classes is empty. Exact (average ranks), O(n log n). */
double citer_auroc(const float *score, const uint8_t *label, size_t n);

typedef struct {
    size_t n, n_pos;     /* records, label-1 records */
    double loss;         /* training objective (see citer_train_opts.lambda), mean */
    double bce;          /* weighted binary cross-entropy alone, mean */
    double accuracy;     /* score >= 0.5 predicts label 1 */
    double auroc;
} citer_metrics;

/* Metrics of router r on the records idx[0..n) of fs (all records when idx is NULL).
 * class_weight[2] and lambda as in training; scores of every record into score_out when not
 * NULL (n floats). */
void citer_router_evaluate(const citer_router *r, const citer_features *fs, const size_t *idx,
                           size_t n, const double class_weight[2], double lambda,
                           citer_metrics *m, float *score_out);

/* ---- training ---- */

enum { CITER_CW_NONE, CITER_CW_AUTO, CITER_CW_FIXED };

typedef struct {
    int epochs;          /* at most this many passes (100) */
    int batch;           /* mini-batch size (80, CITER's default) */
    double lr;           /* Adam learning rate (1e-3) */
    double weight_decay; /* L2 added to the gradient, as torch.optim.Adam (0) */
    double dropout;      /* after every hidden ReLU (0.1) */
    int hidden_mult;     /* hidden sizes mult*D, D (2) */
    double val_frac;     /* fraction of example ids held out (0.1); 0: no validation */
    int patience;        /* stop after this many epochs without a better val loss (5) */
    uint64_t seed;       /* initialisation, split, shuffling, dropout (0) */
    int class_weight;    /* CITER_CW_*: none (default); auto = n / (2 n_c) per class */
    double w0, w1;       /* with CITER_CW_FIXED */
    /* Cost of a token sent to the large model, in loss units: each record adds
     * lambda * (1 - score) to its loss, where 1 - score is the router's probability of
     * calling the large model. 0 (default) is plain (weighted) BCE. */
    double lambda;
    int threads;         /* OpenBLAS threads (1: results bit-identical for a seed) */
    const citer_router *init; /* start from this router's values and normalisation */
    /* Called after each epoch (may be NULL). */
    void (*on_epoch)(void *arg, int epoch, double train_loss, const citer_metrics *val, int best);
    void *arg;
} citer_train_opts;

void citer_train_defaults(citer_train_opts *o);

typedef struct {
    int epochs, best_epoch;  /* epochs run, the one kept */
    double train_loss;       /* mean training loss in the kept epoch */
    int has_val;
    citer_metrics val;       /* of the kept router on the validation records */
    size_t n_train, n_val;
} citer_train_summary;

/* Train on fs. The result keeps the parameters of the epoch with the lowest validation loss
 * and carries the training summary as JSON (r->training) and, when sum is not NULL, in *sum.
 * NULL + citer_error() on failure. */
citer_router *citer_router_train(const citer_features *fs, const citer_train_opts *o,
                                 citer_train_summary *sum);

/* The validation split: records whose example id (seq) falls in the held-out ids. Sets
 * is_val[i] for every record; ids are ordered, shuffled with seed and the first
 * max(1, round(val_frac * ids)) (at most ids - 1) are held out. -1 + citer_error() when
 * val_frac > 0 and there are fewer than two ids. */
int citer_split(const citer_features *fs, double val_frac, uint64_t seed, uint8_t *is_val);

/* ---- internals exposed for tests ---- */

/* Loss of a mini-batch in training mode (batch statistics; dropout with probability p using
 * the generator state *rng, none when p == 0), and when grad is not NULL (a router of the same
 * shape) its gradient with respect to every trainable parameter in grad->params.
 * X: n rows of normalised features. Updates the running statistics when update_stats. */
double citer_router_batch_loss(citer_router *r, const float *X, const float *y, const float *w,
                               int n, double lambda, double p, uint64_t rng[4],
                               citer_router *grad, int update_stats);

#endif
