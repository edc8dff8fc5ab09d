/* lm_train: training a Llama-architecture language model (RMSNorm, RoPE in split halves, GQA,
 * SwiGLU, tied or untied LM head) on token sequences: forward pass with saved activations,
 * backward pass, AdamW with warm-up + cosine schedule and global-norm clipping, checkpoints
 * that resume bit-identically, and output as a Hugging Face directory (config.json,
 * model.safetensors) that citer_model_load and transformers both read.
 *
 * All parameters live in one f32 array (gradients and the two Adam moments in arrays of the
 * same layout), so clipping, the optimiser and checkpoints work on flat arrays. Matrix products
 * over the batch x sequence rows go through cblas_sgemm, cut into row blocks that the thread
 * pool runs (OpenBLAS itself stays at one thread): for a fixed thread count every sum is taken
 * in a fixed order, so training is deterministic. */
#ifndef CITER_LM_TRAIN_H
#define CITER_LM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int dim;            /* hidden size D */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;       /* 0: dim / n_heads */
    int ffn_dim;
    int vocab_size;
    int context_length; /* max_position_embeddings */
    float rms_eps;
    float rope_theta;
    int tied;           /* LM head = token embedding */
    int32_t bos, eos;   /* -1 if none */
} lmt_config;

/* One parameter tensor: its Hugging Face name and where it lies in the flat arrays. */
typedef struct {
    char name[64];
    size_t off, n;      /* element offset and count */
    int rows, cols;     /* matrices [rows, cols]; vectors: rows = n, cols = 0 */
} lmt_tensor;

/* Pointers into one flat array (parameters or gradients). */
typedef struct {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
} lmt_layer;
typedef struct {
    float *embed, *out_norm, *lm_head; /* lm_head == embed when tied */
    lmt_layer *layers;
} lmt_view;

typedef struct lmt_acts lmt_acts; /* saved activations and scratch, sized for one batch shape */

typedef struct {
    lmt_config cfg;
    size_t n_params;
    float *w, *g;           /* parameters, gradients */
    float *adam_m, *adam_v; /* AdamW moments */
    lmt_view p, d;          /* views of w and g */
    int n_tensors;
    lmt_tensor *tensors;
    lmt_acts *acts;
} lmt_model;

/* Fill in defaults (head_dim, eps, theta, kv heads) and check the shape. 0, or -1 with
 * citer_error(). */
int lmt_config_check(lmt_config *c);
/* A model with all parameters zero. NULL + citer_error() for a bad configuration. */
lmt_model *lmt_model_new(const lmt_config *c);
void lmt_model_free(lmt_model *m);
/* Random initialisation: matrices N(0, 0.02) (output projections of each block scaled by
 * 1/sqrt(2 n_layers)), norm weights 1. Depends only on the seed. */
void lmt_model_init(lmt_model *m, uint64_t seed);
/* Load a Hugging Face llama directory (f32, f16 or bf16 weights) to continue training it.
 * NULL + citer_error() for other architectures or unsupported features (biases, rope scaling). */
lmt_model *lmt_model_load_hf(const char *dir);
/* Write config.json and model.safetensors into dir (created if needed), atomically each.
 * f16: store weights as F16 (torch_dtype float16), else F32. 0, or -1 with citer_error(). */
int lmt_model_save_hf(const lmt_model *m, const char *dir, int f16);

/* One batch: B sequences of T positions, row-major [B][T]. inputs are fed at positions
 * 0..T-1; targets[i] is the token to predict after inputs[i]; weights[i] the weight of that
 * prediction in the loss (NULL: all 1). The loss is sum(w * cross-entropy) / sum(w).
 * With backward, m->g receives the gradient of that loss (overwritten, not accumulated).
 * Returns the loss (0 when every weight is 0). */
double lmt_step_loss(lmt_model *m, const int32_t *inputs, const int32_t *targets, const float *weights, int B,
                     int T, int backward);
/* Logits of every position of one sequence fed from position 0: logits is T x vocab_size. */
void lmt_logits(lmt_model *m, const int32_t *tokens, int T, float *logits);

/* Global L2 norm of the gradient; if it exceeds clip (> 0), scale the gradient down to clip.
 * Returns the norm before clipping. */
double lmt_clip_grad(lmt_model *m, double clip);

typedef struct {
    double lr, min_lr;
    long warmup, steps;
    double beta1, beta2, eps, weight_decay;
} lmt_optim;

/* Learning rate at step (0-based): linear warm-up over `warmup` steps to lr, then cosine decay
 * to min_lr at step `steps`. */
double lmt_lr_at(const lmt_optim *o, long step);
/* One AdamW update (decoupled weight decay on matrices only; t = 1-based step number). */
void lmt_adamw(lmt_model *m, const lmt_optim *o, double lr, long t);

/* ---- data and the training loop ---- */

/* A token stream: n tokens, mask[i] = 1 where token i counts as a prediction target. Windows
 * start at one of the starts (example boundaries), or anywhere when n_starts is 0; a window
 * that runs past the end continues at the beginning. */
typedef struct {
    int32_t *tok;
    uint8_t *mask;
    size_t n, cap;
    size_t *starts;
    size_t n_starts, starts_cap;
} lmt_data;
void lmt_data_free(lmt_data *d);
/* Append tokens; mask value for all of them. */
void lmt_data_append(lmt_data *d, const int32_t *tok, size_t n, int mask);
void lmt_data_mark_start(lmt_data *d); /* an example begins at the current end */
uint64_t lmt_data_hash(const lmt_data *d);

typedef struct {
    lmt_optim optim;
    int batch, seq_len;
    double clip;              /* 0: no clipping */
    uint64_t seed;            /* batch sampling (and initialisation, done by the caller) */
    long stop_at;             /* stop after this step (0: optim.steps); for tests and pauses */
    long checkpoint_every;    /* 0: only at the end */
    const char *checkpoint;   /* path of the checkpoint file, NULL: none */
    const char *log;          /* TSV loss curve (step, loss, lr, grad_norm, tokens_per_s), NULL: none */
    int progress;             /* progress lines on stderr */
} lmt_train_opts;

/* Training state beyond the weights: saved in checkpoints. */
typedef struct {
    long step;     /* steps done */
    uint64_t rng;  /* batch sampler state */
    double last_loss;
} lmt_state;

void lmt_state_init(lmt_state *s, uint64_t seed);
/* Train from state s up to opts->stop_at (or optim.steps), writing the log and checkpoints.
 * 0, or -1 with citer_error(). */
int lmt_train(lmt_model *m, const lmt_data *d, const lmt_train_opts *o, lmt_state *s);

/* Checkpoint: one safetensors file with the parameters, Adam moments, state and
 * configuration (metadata), written atomically. */
int lmt_checkpoint_save(const lmt_model *m, const lmt_state *s, const lmt_train_opts *o, uint64_t data_hash,
                        const char *path);
/* Load a checkpoint: a new model with weights and moments, the state, and the data hash it
 * was trained on. NULL + citer_error() on failure. */
lmt_model *lmt_checkpoint_load(const char *path, lmt_state *s, uint64_t *data_hash);

#endif
