/* model: a Llama / Qwen2 / Qwen3 decoder loaded from a GGUF file or a Hugging Face directory
 * (config.json + safetensors), with weights left in their stored type in the file's map. */
#ifndef CITER_MODEL_H
#define CITER_MODEL_H

#include <stdint.h>
#include "kernels.h"

enum citer_arch { CITER_ARCH_LLAMA, CITER_ARCH_QWEN2, CITER_ARCH_QWEN3 };

enum citer_rope { /* which elements of a head RoPE rotates together */
    CITER_ROPE_HALVES, /* j with j + head_dim/2 (HF rotate_half; GGUF qwen2/qwen3) */
    CITER_ROPE_PAIRS,  /* 2j with 2j+1 (GGUF llama: q/k rows are permuted accordingly) */
};

typedef struct {
    int arch;
    int dim;          /* hidden size D */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int ffn_dim;
    int vocab_size;
    int context_length;
    float rms_eps;
    float rope_theta;
    int rope_layout;  /* enum citer_rope */
    /* Llama-3 rope scaling ("rope_type": "llama3"); factor 0 = none */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_context;
    int tied_embeddings;
    int32_t bos, eos;  /* -1 if unknown */
} citer_config;

typedef struct {
    const float *attn_norm, *ffn_norm;   /* [D] */
    const float *bq, *bk, *bv;           /* Qwen2 biases, else NULL */
    const float *q_norm, *k_norm;        /* Qwen3 per-head norms [head_dim], else NULL */
    citer_matrix wq, wk, wv, wo;
    citer_matrix w_gate, w_up, w_down;
} citer_layer;

typedef struct citer_model {
    citer_config cfg;
    citer_matrix tok_embd;  /* [V, D] */
    citer_matrix output;    /* [V, D]; = tok_embd when tied */
    const float *out_norm;  /* [D] */
    const float *rope_freqs; /* [head_dim/2] RoPE frequency divisors (Llama 3.1 GGUF), or NULL */
    citer_layer *layers;
    char *arch_name;        /* as found in the file */
    char *path;
    /* owned storage */
    void *gguf;             /* gguf_file * */
    void *st;               /* st_file * */
    float **f32_copies;     /* small vectors converted to f32 */
    int n_f32_copies;
    void *packed;           /* the Q8_0 matrices packed for the int8 kernels (citer_matrix_pack), or NULL */
    size_t packed_bytes;    /* its mapping's size */
} citer_model;

/* path: a .gguf file, a Hugging Face model directory, or its config.json.
 * NULL + citer_error() ("unsupported architecture 'mamba'", "tensor blk.3.attn_q.weight has
 * shape [64, 32], expected [64, 64]", ...). */
citer_model *citer_model_load(const char *path);
void citer_model_free(citer_model *m);
/* One line: "qwen2, 24 layers, D=896, 14 heads (2 kv) x 64, FF 4864, V 151936, q8_0". */
const char *citer_model_describe(const citer_model *m);
/* Bytes of weights read per decoded token (all matrices once). */
uint64_t citer_model_weight_bytes(const citer_model *m);

#endif
