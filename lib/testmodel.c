/* Random test models: deterministic weights from a seed, written as GGUF or HF safetensors. */
#include "testmodel.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

/* ---------------------------------------------------------------- random numbers */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]: 53 random bits, never 0 so that log() is finite. */
static double uniform(uint64_t *state) { return ((splitmix64(state) >> 11) + 1) * 0x1.0p-53; }

/* Standard normals by Box-Muller, both values of each pair used. */
static void fill_normal(uint64_t *state, float *out, int64_t n, double std)
{
    for (int64_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform(state))), a = 2 * M_PI * uniform(state);
        out[i] = (float)(std * r * cos(a));
        if (i + 1 < n) out[i + 1] = (float)(std * r * sin(a));
    }
}

/* An integer in [-k, k]. */
static int small_int(uint64_t *state, int k) { return (int)(splitmix64(state) % (uint64_t)(2 * k + 1)) - k; }

/* Each tensor has its own stream, so its values do not depend on which others are written. */
static uint64_t tensor_seed(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    uint64_t st = seed ^ h;
    return splitmix64(&st);
}

/* ---------------------------------------------------------------- the tensors of a model */

enum kind { EMBD, MATRIX, NORM, BIAS };

typedef struct {
    char hf[96], gguf[64];
    int kind;
    int64_t rows, cols; /* 1-D: rows = 1 */
    int permute_heads;  /* GGUF llama q/k: heads whose rows go to adjacent-pair order, else 0 */
} tensor_info;

/* All tensors in file order; returns the count (at most 4 + 16 per layer). */
static int list_tensors(const citer_testmodel_spec *s, tensor_info *out)
{
    int n = 0;
    int64_t D = s->dim, qd = (int64_t)s->n_heads * s->head_dim, kvd = (int64_t)s->n_kv_heads * s->head_dim;
    int llama = s->arch == CITER_ARCH_LLAMA;
#define ADD(HF, GG, K, R, C, P)                                                  \
    do {                                                                         \
        tensor_info *t = &out[n++];                                              \
        snprintf(t->hf, sizeof t->hf, "%s", HF);                                 \
        snprintf(t->gguf, sizeof t->gguf, "%s", GG);                             \
        t->kind = K, t->rows = R, t->cols = C, t->permute_heads = P;             \
    } while (0)
    ADD("model.embed_tokens.weight", "token_embd.weight", EMBD, s->vocab, D, 0);
    for (int l = 0; l < s->n_layers; l++) {
        char hf[96], gg[64];
#define LAYER(HFN, GGN, K, R, C, P)                                              \
    do {                                                                         \
        snprintf(hf, sizeof hf, "model.layers.%d.%s", l, HFN);                   \
        snprintf(gg, sizeof gg, "blk.%d.%s", l, GGN);                            \
        ADD(hf, gg, K, R, C, P);                                                 \
    } while (0)
        LAYER("input_layernorm.weight", "attn_norm.weight", NORM, 1, D, 0);
        LAYER("self_attn.q_proj.weight", "attn_q.weight", MATRIX, qd, D, llama ? s->n_heads : 0);
        LAYER("self_attn.k_proj.weight", "attn_k.weight", MATRIX, kvd, D, llama ? s->n_kv_heads : 0);
        LAYER("self_attn.v_proj.weight", "attn_v.weight", MATRIX, kvd, D, 0);
        if (s->arch == CITER_ARCH_QWEN2) {
            LAYER("self_attn.q_proj.bias", "attn_q.bias", BIAS, 1, qd, 0);
            LAYER("self_attn.k_proj.bias", "attn_k.bias", BIAS, 1, kvd, 0);
            LAYER("self_attn.v_proj.bias", "attn_v.bias", BIAS, 1, kvd, 0);
        }
        if (s->arch == CITER_ARCH_QWEN3) {
            LAYER("self_attn.q_norm.weight", "attn_q_norm.weight", NORM, 1, s->head_dim, 0);
            LAYER("self_attn.k_norm.weight", "attn_k_norm.weight", NORM, 1, s->head_dim, 0);
        }
        LAYER("self_attn.o_proj.weight", "attn_output.weight", MATRIX, D, qd, 0);
        LAYER("post_attention_layernorm.weight", "ffn_norm.weight", NORM, 1, D, 0);
        LAYER("mlp.gate_proj.weight", "ffn_gate.weight", MATRIX, s->ffn_dim, D, 0);
        LAYER("mlp.up_proj.weight", "ffn_up.weight", MATRIX, s->ffn_dim, D, 0);
        LAYER("mlp.down_proj.weight", "ffn_down.weight", MATRIX, D, s->ffn_dim, 0);
#undef LAYER
    }
    ADD("model.norm.weight", "output_norm.weight", NORM, 1, D, 0);
    if (!s->tied) ADD("lm_head.weight", "output.weight", MATRIX, s->vocab, D, 0);
#undef ADD
    return n;
}

static tensor_info *all_tensors(const citer_testmodel_spec *s, int *n)
{
    tensor_info *t = xmalloc((size_t)(4 + 16 * s->n_layers) * sizeof *t);
    *n = list_tensors(s, t);
    return t;
}

/* Round a bf16-exact value so that f16 holds it too: below the smallest normal f16 it may not. */
static float snap_bf16_f16(float v)
{
    float b = citer_bf16_to_f32(citer_f32_to_bf16(v));
    return fabsf(b) < 0x1p-14f ? 0.0f : b;
}

/* Values of t in the HF layout, snapped as the spec says. */
static float *tensor_values(const citer_testmodel_spec *s, const tensor_info *t)
{
    int64_t n = t->rows * t->cols;
    float *v = xmalloc((size_t)n * sizeof *v);
    uint64_t st = tensor_seed(s->seed, t->hf);
    switch (t->kind) {
    case EMBD: fill_normal(&st, v, n, 1.0); break;
    case MATRIX: fill_normal(&st, v, n, (s->weight_scale > 0 ? s->weight_scale : 1.0) / sqrt((double)t->cols)); break;
    case NORM:
        for (int64_t i = 0; i < n; i++) v[i] = 1.0f + (float)small_int(&st, 16) / 64;
        break;
    case BIAS:
        for (int64_t i = 0; i < n; i++) v[i] = (float)small_int(&st, 64) / 256;
        break;
    }
    if (t->kind == EMBD || t->kind == MATRIX) {
        if (s->snap_type == GGML_BF16) {
            for (int64_t i = 0; i < n; i++) v[i] = snap_bf16_f16(v[i]);
        } else if (s->snap_type >= 0) {
            size_t rb = citer_row_bytes(s->snap_type, t->cols);
            uint8_t *q = xmalloc(rb);
            for (int64_t r = 0; r < t->rows; r++) {
                citer_quantize_row(s->snap_type, v + r * t->cols, q, t->cols);
                citer_dequantize_row(s->snap_type, q, v + r * t->cols, t->cols);
            }
            free(q);
        }
    }
    return v;
}

/* GGUF llama: within each head, GGUF row 2j+t = HF row t*(head_dim/2)+j. */
static void permute_pairs(float *v, int n_heads, int64_t head_dim, int64_t cols)
{
    int64_t half = head_dim / 2;
    size_t head_bytes = (size_t)(head_dim * cols) * sizeof *v;
    float *tmp = xmalloc(head_bytes);
    for (int h = 0; h < n_heads; h++) {
        float *head = v + h * head_dim * cols;
        for (int64_t j = 0; j < half; j++)
            for (int t = 0; t < 2; t++)
                memcpy(tmp + (2 * j + t) * cols, head + (t * half + j) * cols, (size_t)cols * sizeof *v);
        memcpy(head, tmp, head_bytes);
    }
    free(tmp);
}

/* ---------------------------------------------------------------- the spec */

void citer_testmodel_init(citer_testmodel_spec *s, int arch)
{
    memset(s, 0, sizeof *s);
    s->arch = arch;
    s->dim = 64;
    s->n_layers = 2;
    s->n_heads = 4;
    s->n_kv_heads = 2;
    s->head_dim = arch == CITER_ARCH_QWEN3 ? 32 : 16;
    s->ffn_dim = 128;
    s->vocab = 300;
    s->context_length = 2048;
    s->rope_theta = 10000.0f;
    s->rms_eps = 1e-5f;
    s->tied = arch != CITER_ARCH_LLAMA;
    s->weight_type = GGML_F32;
    s->snap_type = -1;
    s->seed = 1;
    s->weight_scale = 1.0f;
}

int citer_testmodel_preset(citer_testmodel_spec *s, const char *name)
{
    static const struct {
        const char *name;
        int arch, dim, layers, heads, kv, hd, ffn, vocab, ctx;
        float theta, eps;
        int tied;
    } presets[] = {
        {"qwen2.5-0.5b", CITER_ARCH_QWEN2, 896, 24, 14, 2, 64, 4864, 151936, 32768, 1e6f, 1e-6f, 1},
        {"qwen3-0.6b", CITER_ARCH_QWEN3, 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6f, 1e-6f, 1},
        {"tinyllama-1.1b", CITER_ARCH_LLAMA, 2048, 22, 32, 4, 64, 5632, 32000, 2048, 1e4f, 1e-5f, 0},
    };
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
        if (strcmp(presets[i].name, name) != 0) continue;
        s->arch = presets[i].arch;
        s->dim = presets[i].dim;
        s->n_layers = presets[i].layers;
        s->n_heads = presets[i].heads;
        s->n_kv_heads = presets[i].kv;
        s->head_dim = presets[i].hd;
        s->ffn_dim = presets[i].ffn;
        s->vocab = presets[i].vocab;
        s->context_length = presets[i].ctx;
        s->rope_theta = presets[i].theta;
        s->rms_eps = presets[i].eps;
        s->tied = presets[i].tied;
        return 0;
    }
    citer_set_error("unknown test model preset '%s' (qwen2.5-0.5b, qwen3-0.6b, tinyllama-1.1b)", name);
    return -1;
}

int citer_testmodel_check(const citer_testmodel_spec *s)
{
    if (s->arch != CITER_ARCH_LLAMA && s->arch != CITER_ARCH_QWEN2 && s->arch != CITER_ARCH_QWEN3) {
        citer_set_error("test model: unknown architecture %d", s->arch);
        return -1;
    }
    if (s->dim <= 0 || s->n_layers <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 || s->ffn_dim <= 0 ||
        s->head_dim <= 0 || s->context_length <= 0 || s->dim > (1 << 20) || s->ffn_dim > (1 << 22) ||
        s->n_layers > 4096 || s->n_heads > 4096 || s->head_dim > 1024 || s->vocab > (1 << 24)) {
        citer_set_error("test model: dimensions must be positive and in range");
        return -1;
    }
    if (s->head_dim % 2 || s->n_heads % s->n_kv_heads) {
        citer_set_error("test model: head_dim must be even and heads a multiple of kv heads");
        return -1;
    }
    if (s->vocab < 259) {
        citer_set_error("test model: vocab %d < 259 (256 byte tokens and 3 special tokens)", s->vocab);
        return -1;
    }
    if (!(s->rope_theta > 0) || !(s->rms_eps > 0)) {
        citer_set_error("test model: rope_theta and rms_eps must be positive");
        return -1;
    }
    int types[2] = {s->weight_type, s->snap_type};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && types[i] < 0) continue;
        int64_t qd = (int64_t)s->n_heads * s->head_dim;
        if (!citer_type_supported(types[i]) || citer_row_bytes(types[i], s->dim) == 0 ||
            citer_row_bytes(types[i], s->ffn_dim) == 0 || citer_row_bytes(types[i], qd) == 0) {
            const char *tn = ggml_type_name(types[i]);
            citer_set_error("test model: type %s cannot hold rows of %d, %d and %lld elements", tn ? tn : "unknown",
                            s->dim, s->ffn_dim, (long long)qd);
            return -1;
        }
        float probe[256] = {0};
        uint8_t out[1024];
        if (citer_quantize_row(types[i], probe, out, 256) != 0) {
            citer_set_error("test model: no quantizer for type %s", ggml_type_name(types[i]));
            return -1;
        }
    }
    return 0;
}

float *citer_testmodel_tensor(const citer_testmodel_spec *s, const char *name, int64_t *count)
{
    int n;
    tensor_info *ts = all_tensors(s, &n);
    float *v = NULL;
    for (int i = 0; i < n; i++)
        if (!strcmp(ts[i].hf, name)) {
            v = tensor_values(s, &ts[i]);
            *count = ts[i].rows * ts[i].cols;
            break;
        }
    if (!v) citer_set_error("test model has no tensor %s", name);
    free(ts);
    return v;
}

/* ---------------------------------------------------------------- GGUF */

static const char *arch_name(int arch)
{
    return arch == CITER_ARCH_QWEN2 ? "qwen2" : arch == CITER_ARCH_QWEN3 ? "qwen3" : "llama";
}

/* llama.cpp's general.file_type for a model whose matrices are all of one type. */
static uint32_t file_type(int type)
{
    switch (type) {
    case GGML_F32: return 0;
    case GGML_F16: return 1;
    case GGML_Q4_0: return 2;
    case GGML_Q8_0: return 7;
    case GGML_Q4_K: return 15;
    case GGML_Q5_K: return 17;
    case GGML_Q6_K: return 18;
    case GGML_BF16: return 32;
    default: return 0;
    }
}

/* The GPT-2 byte-to-character map: printable bytes stand for themselves, the others for
 * U+0100 onwards. Writes the UTF-8 of byte b's character. */
static void byte_char(int b, char *out)
{
    int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    int cp = b;
    if (!printable) {
        int k = 0;
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

/* Merge k (0-based) joins two pieces into a lower-case word: all words of length 2 in order,
 * then of length 3, ...; a word's prefix (one letter, or an earlier merge) and its last letter
 * are the two parts, so every merge's parts are already tokens. */
static void merge_word(int64_t k, char *word, char *merge)
{
    int len = 2;
    int64_t count = 26 * 26;
    while (k >= count) {
        k -= count;
        len++;
        count *= 26;
    }
    for (int i = len - 1; i >= 0; i--, k /= 26) word[i] = (char)('a' + k % 26);
    word[len] = 0;
    sprintf(merge, "%.*s %c", len - 1, word, word[len - 1]);
}

static void add_vocab(gguf_writer *w, const citer_testmodel_spec *s)
{
    int V = s->vocab;
    char **tokens = xmalloc((size_t)V * sizeof *tokens);
    int32_t *types = xmalloc((size_t)V * sizeof *types);
    int n_merges = V - 256 - 3;
    char **merges = xmalloc((size_t)(n_merges > 0 ? n_merges : 1) * sizeof *merges);
    char buf[64], mbuf[64];
    for (int i = 0; i < 256; i++) {
        byte_char(i, buf);
        tokens[i] = xstrdup(buf);
        types[i] = 1; /* normal */
    }
    for (int i = 0; i < n_merges; i++) {
        merge_word(i, buf, mbuf);
        tokens[256 + i] = xstrdup(buf);
        merges[i] = xstrdup(mbuf);
        types[256 + i] = 1;
    }
    static const char *special[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        tokens[V - 3 + i] = xstrdup(special[i]);
        types[V - 3 + i] = 3; /* control */
    }
    gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_set_str(w, "tokenizer.ggml.pre", s->arch == CITER_ARCH_LLAMA ? "default" : "qwen2");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens, (size_t)V);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)V);
    gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, (size_t)n_merges);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(V - 3));
    gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(V - (s->arch == CITER_ARCH_LLAMA ? 3 : 1)));
    gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
    for (int i = 0; i < V; i++) free(tokens[i]);
    for (int i = 0; i < n_merges; i++) free(merges[i]);
    free(tokens), free(types), free(merges);
}

int citer_testmodel_write_gguf(const citer_testmodel_spec *s, const char *path)
{
    if (citer_testmodel_check(s)) return -1;
    const char *arch = arch_name(s->arch);
    gguf_writer *w = gguf_writer_new();
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    gguf_set_str(w, "general.architecture", arch);
    gguf_set_str(w, "general.name", "citer random test model");
    gguf_set_u32(w, "general.file_type", file_type(s->weight_type));
    gguf_set_u32(w, KEY("context_length"), (uint32_t)s->context_length);
    gguf_set_u32(w, KEY("embedding_length"), (uint32_t)s->dim);
    gguf_set_u32(w, KEY("block_count"), (uint32_t)s->n_layers);
    gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->ffn_dim);
    gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_heads);
    gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    /* Converters write key_length only where head_dim != dim / heads (Qwen3 always has it). */
    if (s->arch == CITER_ARCH_QWEN3 || (int64_t)s->n_heads * s->head_dim != s->dim) {
        gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)s->head_dim);
        gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)s->head_dim);
    }
    gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    gguf_set_f32(w, KEY("rope.freq_base"), s->rope_theta);
    gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
    gguf_set_u32(w, KEY("vocab_size"), (uint32_t)s->vocab);
#undef KEY
    add_vocab(w, s);

    int n;
    tensor_info *ts = all_tensors(s, &n);
    for (int i = 0; i < n; i++) {
        const tensor_info *t = &ts[i];
        float *v = tensor_values(s, t);
        if (t->kind == NORM || t->kind == BIAS) {
            uint64_t ne[1] = {(uint64_t)t->cols};
            gguf_add_tensor(w, t->gguf, GGML_F32, 1, ne, v);
        } else {
            if (t->permute_heads) permute_pairs(v, t->permute_heads, s->head_dim, t->cols);
            size_t rb = citer_row_bytes(s->weight_type, t->cols);
            uint8_t *q = xmalloc(rb * (size_t)t->rows);
            for (int64_t r = 0; r < t->rows; r++)
                citer_quantize_row(s->weight_type, v + r * t->cols, q + (size_t)r * rb, t->cols);
            uint64_t ne[2] = {(uint64_t)t->cols, (uint64_t)t->rows};
            gguf_add_tensor(w, t->gguf, s->weight_type, 2, ne, q);
            free(q);
        }
        free(v);
    }
    free(ts);
    int rc = gguf_write(w, path);
    gguf_writer_free(w);
    return rc;
}

/* ---------------------------------------------------------------- Hugging Face directory */

static int write_text(const char *path, const char *text)
{
    citer_out *o = citer_out_open(path);
    if (!o) return -1;
    fputs(text, o->f);
    return citer_out_commit(o);
}

/* The shortest decimal that reads back as the same float ("1e-05", not "9.99999974e-06"). */
static json_object *json_float(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_object_new_double_s((double)strtof(buf, NULL), buf);
}

static json_object *config_json(const citer_testmodel_spec *s, const char *dtype)
{
    static const char *classes[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
    json_object *c = json_object_new_object();
    json_object *archs = json_object_new_array();
    json_object_array_add(archs, json_object_new_string(classes[s->arch]));
    json_object_object_add(c, "architectures", archs);
    json_object_object_add(c, "model_type", json_object_new_string(arch_name(s->arch)));
    json_object_object_add(c, "hidden_size", json_object_new_int(s->dim));
    json_object_object_add(c, "intermediate_size", json_object_new_int(s->ffn_dim));
    json_object_object_add(c, "num_hidden_layers", json_object_new_int(s->n_layers));
    json_object_object_add(c, "num_attention_heads", json_object_new_int(s->n_heads));
    json_object_object_add(c, "num_key_value_heads", json_object_new_int(s->n_kv_heads));
    json_object_object_add(c, "head_dim", json_object_new_int(s->head_dim));
    json_object_object_add(c, "vocab_size", json_object_new_int(s->vocab));
    json_object_object_add(c, "max_position_embeddings", json_object_new_int(s->context_length));
    json_object_object_add(c, "rms_norm_eps", json_float(s->rms_eps));
    json_object_object_add(c, "rope_theta", json_float(s->rope_theta));
    json_object_object_add(c, "hidden_act", json_object_new_string("silu"));
    json_object_object_add(c, "tie_word_embeddings", json_object_new_boolean(s->tied));
    json_object_object_add(c, "torch_dtype", json_object_new_string(dtype));
    json_object_object_add(c, "bos_token_id", json_object_new_int(s->vocab - 3));
    json_object_object_add(c, "eos_token_id", json_object_new_int(s->vocab - (s->arch == CITER_ARCH_LLAMA ? 3 : 1)));
    if (s->arch == CITER_ARCH_LLAMA) json_object_object_add(c, "attention_bias", json_object_new_boolean(0));
    return c;
}

static void *to_dtype(const float *v, int64_t n, int st_dtype)
{
    if (st_dtype == ST_F32) {
        float *o = xmalloc((size_t)n * sizeof *o);
        memcpy(o, v, (size_t)n * sizeof *o);
        return o;
    }
    uint16_t *o = xmalloc((size_t)n * sizeof *o);
    for (int64_t i = 0; i < n; i++) o[i] = st_dtype == ST_F16 ? citer_f32_to_f16(v[i]) : citer_f32_to_bf16(v[i]);
    return o;
}

int citer_testmodel_write_hf(const citer_testmodel_spec *s, const char *dir, int n_shards)
{
    if (citer_testmodel_check(s)) return -1;
    int st_dtype;
    const char *dtype;
    switch (s->weight_type) {
    case GGML_F32: st_dtype = ST_F32, dtype = "float32"; break;
    case GGML_F16: st_dtype = ST_F16, dtype = "float16"; break;
    case GGML_BF16: st_dtype = ST_BF16, dtype = "bfloat16"; break;
    default:
        citer_set_error("test model: safetensors weights must be F32, F16 or BF16, not %s",
                        ggml_type_name(s->weight_type));
        return -1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        citer_set_error("%s: %s", dir, strerror(errno));
        return -1;
    }
    int n;
    tensor_info *ts = all_tensors(s, &n);
    if (n_shards < 1) n_shards = 1;
    if (n_shards > n) n_shards = n;
    char path[4096], file[64];
    int rc = 0;
    json_object *weight_map = json_object_new_object();
    uint64_t total = 0;
    for (int k = 0, first = 0; k < n_shards && rc == 0; k++) {
        int last = (int)((int64_t)n * (k + 1) / n_shards); /* tensors [first, last) in shard k */
        if (n_shards == 1) snprintf(file, sizeof file, "model.safetensors");
        else snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", k + 1, n_shards);
        st_writer *w = st_writer_new();
        st_writer_metadata(w, "format", "pt");
        for (int i = first; i < last; i++) {
            const tensor_info *t = &ts[i];
            float *v = tensor_values(s, t);
            void *data = to_dtype(v, t->rows * t->cols, st_dtype);
            uint64_t shape[2] = {(uint64_t)t->rows, (uint64_t)t->cols};
            int nd = t->kind == NORM || t->kind == BIAS ? 1 : 2;
            if (nd == 1) shape[0] = (uint64_t)t->cols;
            st_add(w, t->hf, st_dtype, nd, shape, data);
            total += (uint64_t)(t->rows * t->cols) * st_dtype_size(st_dtype);
            json_object_object_add(weight_map, t->hf, json_object_new_string(file));
            free(data);
            free(v);
        }
        snprintf(path, sizeof path, "%s/%s", dir, file);
        rc = st_write(w, path);
        st_writer_free(w);
        first = last;
    }
    free(ts);
    if (rc == 0 && n_shards > 1) {
        json_object *index = json_object_new_object(), *meta = json_object_new_object();
        json_object_object_add(meta, "total_size", json_object_new_int64((int64_t)total));
        json_object_object_add(index, "metadata", meta);
        json_object_object_add(index, "weight_map", json_object_get(weight_map));
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        rc = write_text(path, json_object_to_json_string_ext(index, JSON_C_TO_STRING_PRETTY));
        json_object_put(index);
    }
    json_object_put(weight_map);
    if (rc == 0) {
        json_object *c = config_json(s, dtype);
        snprintf(path, sizeof path, "%s/config.json", dir);
        rc = write_text(path, json_object_to_json_string_ext(c, JSON_C_TO_STRING_PRETTY));
        json_object_put(c);
    }
    return rc;
}
