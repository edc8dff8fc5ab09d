/* testmodel: random models of a given shape, written as GGUF files and Hugging Face directories,
 * for self-contained engine tests (a fresh clone has no model) and for benchmarks at real shapes.
 *
 * Every weight is a deterministic function of (seed, tensor, element), generated in the Hugging
 * Face layout and then stored per format: a GGUF file and an HF directory written from the same
 * spec hold the same model (for GGUF `llama` the q/k rows are permuted to the adjacent-pair RoPE
 * layout, as converters do), so both must give the same logits.
 *
 * Scales keep activations O(1): matrices ~ normal(0, scale/sqrt(fan_in)), token embeddings ~
 * normal(0, 1), norm weights 1 + k/64 (|k| <= 16), Qwen2 biases k/256 (|k| <= 64). Norms and
 * biases are exact in f16 and bf16, so they are the same numbers in every storage type. */
#ifndef CITER_TESTMODEL_H
#define CITER_TESTMODEL_H

#include <stdint.h>

typedef struct {
    int arch;            /* enum citer_arch (model.h) */
    int dim;             /* hidden size D */
    int n_layers;
    int n_heads, n_kv_heads;
    int head_dim;        /* n_heads * head_dim may differ from dim (Qwen3) */
    int ffn_dim;
    int vocab;           /* >= 259: 256 byte tokens, made-up merges, 3 special tokens last */
    int context_length;
    float rope_theta, rms_eps;
    int tied;            /* LM head = token embedding (no output.weight / lm_head.weight) */
    int weight_type;     /* ggml type of 2-D tensors in the GGUF (F32, F16, BF16, Q8_0, Q4_0,
                          * Q4_K, Q5_K, Q6_K); dtype of every tensor in the HF directory (F32,
                          * F16 or BF16 there) */
    int snap_type;       /* -1: none. Otherwise every 2-D weight is first rounded through this
                          * type (quantize then dequantize), whatever it is stored as: an F32
                          * file with snap_type Q4_0 holds exactly the values of the Q4_0 file.
                          * GGML_BF16 snaps to values exact in both bf16 and f16 (|w| < 2^-14 is
                          * flushed to 0), so F32/F16/BF16 files all hold the same numbers. */
    uint64_t seed;
    float weight_scale;  /* multiplies the std of every matrix but the embedding; 1 by default */
} citer_testmodel_spec;

/* Small defaults for arch (2 layers, D=64, GQA 4/2 heads of 16, FF 128, V 300, F32, seed 1,
 * eps 1e-5, theta 10000, context 2048; Qwen3 gets head_dim 32 so heads*head_dim != D, Qwen2
 * and Qwen3 tied embeddings). */
void citer_testmodel_init(citer_testmodel_spec *s, int arch);
/* Real shapes by name: "qwen2.5-0.5b", "qwen3-0.6b", "tinyllama-1.1b", "llama-3.2-1b"; the
 * type, seed and snapping are left as they were. -1 + citer_error() for an unknown name. */
int citer_testmodel_preset(citer_testmodel_spec *s, const char *name);
/* -1 + citer_error() if the shape is inconsistent (odd head_dim, heads not a multiple of kv
 * heads, a row length not a multiple of the weight type's block, vocab < 259, ...). */
int citer_testmodel_check(const citer_testmodel_spec *s);

/* GGUF v3 with the metadata of a converted model and a small byte-level BPE vocabulary
 * (tokenizer.ggml.model "gpt2") so that the file is complete. 0, or -1 + citer_error(). */
int citer_testmodel_write_gguf(const citer_testmodel_spec *s, const char *path);
/* dir/config.json and dir/model.safetensors (n_shards <= 1), or n_shards files
 * model-0000i-of-0000n.safetensors and model.safetensors.index.json. dir is created if
 * needed. weight_type must be F32, F16 or BF16. 0, or -1 + citer_error(). */
int citer_testmodel_write_hf(const citer_testmodel_spec *s, const char *dir, int n_shards);

/* The f32 values of one weight in the Hugging Face layout ([rows, cols] row-major), snapped as
 * the spec says; name is an HF tensor name ("model.layers.0.self_attn.q_proj.weight"). Returns
 * a malloc'd array and its element count, or NULL + citer_error() for an unknown name. */
float *citer_testmodel_tensor(const citer_testmodel_spec *s, const char *name, int64_t *count);

#endif
