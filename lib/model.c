/* Loading a model: read the configuration from GGUF metadata or config.json, find every tensor,
 * check its shape and type, and point the layer structs at the mapped bytes. */
#include "model.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "kernels.h"
#include "safetensors.h"
#include "util.h"

/* A tensor found in either file format, in one common description. */
typedef struct {
    int type;          /* ggml type */
    int n_dims;
    uint64_t shape[4]; /* outermost first: [rows, cols] for matrices */
    const void *data;
    uint64_t nbytes;
} found_tensor;

typedef struct {
    citer_model *m;
    const char *what; /* file name for messages */
    int (*find)(void *src, const char *name, found_tensor *t);
    void *src;
} loader;

static int st_to_ggml(int dt)
{
    switch (dt) {
    case ST_F32: return GGML_F32;
    case ST_F16: return GGML_F16;
    case ST_BF16: return GGML_BF16;
    default: return -1;
    }
}

static int find_gguf(void *src, const char *name, found_tensor *t)
{
    const gguf_tensor *g = gguf_find_tensor(src, name);
    if (!g) return 0;
    t->type = g->type;
    t->n_dims = g->n_dims;
    for (int i = 0; i < 4; i++) t->shape[i] = 1;
    for (int i = 0; i < g->n_dims; i++) t->shape[i] = g->ne[g->n_dims - 1 - i];
    t->data = g->data;
    t->nbytes = g->nbytes;
    return 1;
}

static int find_st(void *src, const char *name, found_tensor *t)
{
    const st_tensor *s = st_find(src, name);
    if (!s) return 0;
    t->type = st_to_ggml(s->dtype);
    if (t->type < 0) t->type = 1000 + s->dtype; /* reported as unsupported below */
    t->n_dims = s->n_dims;
    if (s->n_dims > 4) t->n_dims = 5;
    for (int i = 0; i < 4; i++) t->shape[i] = i < s->n_dims ? s->shape[i] : 1;
    t->data = s->data;
    t->nbytes = s->nbytes;
    return 1;
}

static const char *type_name(int type)
{
    if (type >= 1000) return st_dtype_name(type - 1000);
    const char *n = ggml_type_name(type);
    return n ? n : "unknown";
}

/* A matrix [rows, cols] in a supported weight type. */
static int get_matrix(loader *L, const char *name, int64_t rows, int64_t cols, citer_matrix *out, int optional)
{
    found_tensor t;
    if (!L->find(L->src, name, &t)) {
        if (optional) return 1;
        citer_set_error("missing tensor %s", name);
        return -1;
    }
    if (t.n_dims != 2 || (int64_t)t.shape[0] != rows || (int64_t)t.shape[1] != cols) {
        citer_set_error("tensor %s has shape [%llu, %llu]%s, expected [%lld, %lld]", name,
                        (unsigned long long)t.shape[0], (unsigned long long)t.shape[1],
                        t.n_dims != 2 ? " (not 2-D)" : "", (long long)rows, (long long)cols);
        return -1;
    }
    if (t.type >= 1000 || !citer_type_supported(t.type)) {
        citer_set_error("tensor %s has unsupported type %s", name, type_name(t.type));
        return -1;
    }
    if (citer_matrix_init(out, t.type, rows, cols, t.data) != 0) {
        char why[256]; /* citer_error() is the buffer citer_set_error writes: copy it first */
        snprintf(why, sizeof why, "%s", citer_error());
        citer_set_error("tensor %s: %s", name, why);
        return -1;
    }
    if (out->row_bytes * (uint64_t)rows > t.nbytes) {
        citer_set_error("tensor %s is truncated", name);
        return -1;
    }
    return 0;
}

/* A vector [n] converted to f32 (norm weights and biases are small). */
static int get_vector(loader *L, const char *name, int64_t n, const float **out, int optional)
{
    found_tensor t;
    *out = NULL;
    if (!L->find(L->src, name, &t)) {
        if (optional) return 1;
        citer_set_error("missing tensor %s", name);
        return -1;
    }
    uint64_t count = 1;
    for (int i = 0; i < t.n_dims && i < 4; i++) count *= t.shape[i];
    if (t.n_dims > 4 || count != (uint64_t)n) {
        citer_set_error("tensor %s has %llu elements, expected %lld", name, (unsigned long long)count, (long long)n);
        return -1;
    }
    if (t.type != GGML_F32 && t.type != GGML_F16 && t.type != GGML_BF16) {
        citer_set_error("tensor %s has unsupported type %s for a vector", name, type_name(t.type));
        return -1;
    }
    size_t need = (size_t)n * (t.type == GGML_F32 ? 4 : 2);
    if (t.nbytes < need) {
        citer_set_error("tensor %s is truncated", name);
        return -1;
    }
    citer_model *m = L->m;
    float *v = xmalloc((size_t)n * sizeof *v);
    citer_dequantize_row(t.type, t.data, v, n);
    m->f32_copies = xrealloc(m->f32_copies, (size_t)(m->n_f32_copies + 1) * sizeof *m->f32_copies);
    m->f32_copies[m->n_f32_copies++] = v;
    *out = v;
    return 0;
}

/* Tensor names differ between the formats; everything else is shared. */
typedef struct {
    const char *embd, *out_norm, *output;
    const char *attn_norm, *ffn_norm, *q, *k, *v, *o, *gate, *up, *down, *q_norm, *k_norm;
    const char *bias_suffix_from, *bias_suffix_to;
} name_scheme;

static const name_scheme gguf_names = {
    "token_embd.weight", "output_norm.weight", "output.weight",
    "blk.%d.attn_norm.weight", "blk.%d.ffn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight",
    "blk.%d.attn_v.weight", "blk.%d.attn_output.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight",
    "blk.%d.ffn_down.weight", "blk.%d.attn_q_norm.weight", "blk.%d.attn_k_norm.weight", ".weight", ".bias"};

static const name_scheme hf_names = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
    "model.layers.%d.input_layernorm.weight", "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.self_attn.q_proj.weight", "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight", "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.mlp.gate_proj.weight", "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight", "model.layers.%d.self_attn.q_norm.weight",
    "model.layers.%d.self_attn.k_norm.weight", ".weight", ".bias"};

static void layer_name(char *buf, size_t n, const char *fmt, int layer) { snprintf(buf, n, fmt, layer); }

static void bias_name(char *buf, size_t n, const char *weight_fmt, int layer, const name_scheme *s)
{
    layer_name(buf, n, weight_fmt, layer);
    size_t len = strlen(buf), sl = strlen(s->bias_suffix_from);
    if (len >= sl) snprintf(buf + len - sl, n - (len - sl), "%s", s->bias_suffix_to);
}

static int load_tensors(loader *L, const name_scheme *s)
{
    citer_model *m = L->m;
    citer_config *c = &m->cfg;
    int64_t D = c->dim, qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    if (get_matrix(L, s->embd, c->vocab_size, D, &m->tok_embd, 0)) return -1;
    if (get_vector(L, s->out_norm, D, &m->out_norm, 0)) return -1;
    if (c->tied_embeddings) m->output = m->tok_embd;
    else if (get_matrix(L, s->output, c->vocab_size, D, &m->output, 0)) return -1;
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    char name[256];
    for (int i = 0; i < c->n_layers; i++) {
        citer_layer *l = &m->layers[i];
#define MAT(field, fmt, rows, cols)                                                   \
    layer_name(name, sizeof name, fmt, i);                                            \
    if (get_matrix(L, name, rows, cols, &l->field, 0)) return -1;
#define VEC(field, fmt, n, opt)                                                       \
    layer_name(name, sizeof name, fmt, i);                                            \
    if (get_vector(L, name, n, &l->field, opt) < 0) return -1;
        VEC(attn_norm, s->attn_norm, D, 0);
        VEC(ffn_norm, s->ffn_norm, D, 0);
        MAT(wq, s->q, qd, D);
        MAT(wk, s->k, kvd, D);
        MAT(wv, s->v, kvd, D);
        MAT(wo, s->o, D, qd);
        MAT(w_gate, s->gate, c->ffn_dim, D);
        MAT(w_up, s->up, c->ffn_dim, D);
        MAT(w_down, s->down, D, c->ffn_dim);
        int need_bias = c->arch == CITER_ARCH_QWEN2;
        bias_name(name, sizeof name, s->q, i, s);
        if (get_vector(L, name, qd, &l->bq, !need_bias) < 0) return -1;
        bias_name(name, sizeof name, s->k, i, s);
        if (get_vector(L, name, kvd, &l->bk, !need_bias) < 0) return -1;
        bias_name(name, sizeof name, s->v, i, s);
        if (get_vector(L, name, kvd, &l->bv, !need_bias) < 0) return -1;
        if (c->arch == CITER_ARCH_QWEN3) {
            VEC(q_norm, s->q_norm, c->head_dim, 0);
            VEC(k_norm, s->k_norm, c->head_dim, 0);
        }
#undef MAT
#undef VEC
    }
    return 0;
}

static int check_config(citer_config *c, const char *where)
{
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->ffn_dim <= 0 || c->vocab_size <= 0) {
        citer_set_error("%s: missing or invalid model dimensions", where);
        return -1;
    }
    if (c->n_kv_heads <= 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim <= 0) {
        if (c->dim % c->n_heads) {
            citer_set_error("%s: hidden size %d is not a multiple of %d heads", where, c->dim, c->n_heads);
            return -1;
        }
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->n_heads % c->n_kv_heads) {
        citer_set_error("%s: %d heads is not a multiple of %d kv heads", where, c->n_heads, c->n_kv_heads);
        return -1;
    }
    if (c->head_dim % 2 || c->head_dim > 1024) {
        citer_set_error("%s: unsupported head dimension %d", where, c->head_dim);
        return -1;
    }
    if (c->dim > (1 << 20) || c->ffn_dim > (1 << 22) || c->n_layers > 4096 || c->n_heads > 4096 ||
        c->vocab_size > (1 << 24)) {
        citer_set_error("%s: model dimensions out of range", where);
        return -1;
    }
    if (!(c->rms_eps > 0)) c->rms_eps = 1e-6f;
    if (!(c->rope_theta > 0)) c->rope_theta = 10000.0f;
    if (c->context_length <= 0) c->context_length = 4096;
    return 0;
}

static int arch_from_name(const char *s)
{
    if (!strcmp(s, "llama")) return CITER_ARCH_LLAMA;
    if (!strcmp(s, "qwen2")) return CITER_ARCH_QWEN2;
    if (!strcmp(s, "qwen3")) return CITER_ARCH_QWEN3;
    return -1;
}

/* ---------------------------------------------------------------- GGUF */

static int gguf_int(gguf_file *g, const char *arch, const char *key, int *out, int required)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    if (gguf_get_i64(g, full, &v) != 0) {
        if (!required) return 0;
        citer_set_error("missing metadata %s", full);
        return -1;
    }
    if (v < 0 || v > INT32_MAX) {
        citer_set_error("metadata %s out of range", full);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int gguf_float(gguf_file *g, const char *arch, const char *key, float *out, int required)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    if (gguf_get_f64(g, full, &v) == 0) *out = (float)v;
    else if (required) {
        citer_set_error("missing metadata %s", full);
        return -1;
    }
    return 0;
}

/* Weight matrix i, 0 <= i < 7 * n_layers + 1: each layer's seven, then the LM head. */
static citer_matrix *model_matrix(citer_model *m, int i)
{
    if (i == 7 * m->cfg.n_layers) return &m->output;
    citer_layer *L = &m->layers[i / 7];
    citer_matrix *lm[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return lm[i % 7];
}

/* Q8_0 weight matrices packed for the int8 kernels where those are in use (kernels.h): a decode
 * step then needs a fraction of the instructions (it stays at the memory bandwidth where the
 * memory is fast) and a batched append skips its transposition. The copy has the bytes of the
 * originals, whose pages of the read-only file mapping are then given back (they come back
 * from the file if a path without int8 activations reads them). */
static void pack_matrices(citer_model *m)
{
    int n = 7 * m->cfg.n_layers + 1;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (citer_matrix_pack_bytes(model_matrix(m, i)) + 63) / 64 * 64;
    if (!total) return;
    /* 2 MB pages where the kernel gives them: a tenth of the page faults while packing, and
     * fewer TLB misses while streaming */
    uint8_t *buf = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return; /* not packed: the unpacked kernels serve */
#ifdef MADV_HUGEPAGE
    madvise(buf, total, MADV_HUGEPAGE);
#endif
    size_t off = 0;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < n; i++) {
        citer_matrix *w = model_matrix(m, i);
        size_t b = citer_matrix_pack_bytes(w);
        if (!b) continue;
        citer_matrix_pack(w, buf + off);
        off += (b + 63) / 64 * 64;
        uintptr_t lo = ((uintptr_t)w->data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
        uintptr_t hi = ((uintptr_t)w->data + b) / (uintptr_t)page * (uintptr_t)page;
        if (m->gguf && page > 0 && hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    m->packed = buf;
    m->packed_bytes = total;
}

static citer_model *load_gguf(const char *path)
{
    gguf_file *g = gguf_open(path);
    if (!g) return NULL;
    citer_model *m = xcalloc(1, sizeof *m);
    m->gguf = g;
    m->path = xstrdup(path);
    citer_config *c = &m->cfg;
    char *arch = gguf_get_str(g, "general.architecture");
    if (!arch) {
        citer_set_error("missing metadata general.architecture");
        goto fail;
    }
    m->arch_name = arch;
    c->arch = arch_from_name(arch);
    if (c->arch < 0) {
        citer_set_error("unsupported architecture '%s' (llama, qwen2 and qwen3 are supported)", arch);
        goto fail;
    }
    c->rope_layout = c->arch == CITER_ARCH_LLAMA ? CITER_ROPE_PAIRS : CITER_ROPE_HALVES;
    if (gguf_int(g, arch, "embedding_length", &c->dim, 1) || gguf_int(g, arch, "block_count", &c->n_layers, 1) ||
        gguf_int(g, arch, "feed_forward_length", &c->ffn_dim, 1) ||
        gguf_int(g, arch, "attention.head_count", &c->n_heads, 1) ||
        gguf_int(g, arch, "attention.head_count_kv", &c->n_kv_heads, 0) ||
        gguf_int(g, arch, "attention.key_length", &c->head_dim, 0) ||
        gguf_int(g, arch, "context_length", &c->context_length, 0))
        goto fail;
    if (gguf_float(g, arch, "attention.layer_norm_rms_epsilon", &c->rms_eps, 1)) goto fail;
    gguf_float(g, arch, "rope.freq_base", &c->rope_theta, 0);
    char key[256];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    char *scaling = gguf_get_str(g, key);
    if (scaling && strcmp(scaling, "none") != 0 && strcmp(scaling, "linear") != 0) {
        citer_set_error("unsupported rope scaling '%s'", scaling);
        free(scaling);
        goto fail;
    }
    if (scaling && !strcmp(scaling, "linear") && gguf_float(g, arch, "rope.scaling.factor", &c->rope_factor, 1)) {
        free(scaling);
        goto fail;
    }
    free(scaling);
    const gguf_tensor *embd = gguf_find_tensor(g, "token_embd.weight");
    if (!embd || embd->n_dims != 2) {
        citer_set_error("missing tensor token_embd.weight");
        goto fail;
    }
    c->vocab_size = (int)embd->ne[1];
    c->tied_embeddings = gguf_find_tensor(g, "output.weight") ? 0 : 1;
    int64_t v;
    c->bos = gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) == 0 ? (int32_t)v : -1;
    c->eos = gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v) == 0 ? (int32_t)v : -1;
    if (check_config(c, path)) goto fail;
    loader L = {m, path, find_gguf, g};
    if (load_tensors(&L, &gguf_names)) goto fail;
    /* Llama 3.1 GGUFs carry their rope scaling as per-frequency divisors [head_dim/2]. */
    if (gguf_find_tensor(g, "rope_freqs.weight") &&
        get_vector(&L, "rope_freqs.weight", c->head_dim / 2, &m->rope_freqs, 0))
        goto fail;
    pack_matrices(m);
    return m;
fail:
    citer_model_free(m);
    return NULL;
}

/* ---------------------------------------------------------------- Hugging Face directory */

static int json_int(json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return 0;
    if (!json_object_is_type(v, json_type_int)) return -1;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x > INT32_MAX) return -1;
    *out = (int)x;
    return 0;
}

static int json_num(json_object *o, const char *key, float *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return -1;
    *out = (float)json_object_get_double(v);
    return 0;
}

/* bos/eos ids: a number, or a list of which the first is used. */
static int32_t json_token_id(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return -1;
    if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) v = json_object_array_get_idx(v, 0);
    if (!json_object_is_type(v, json_type_int)) return -1;
    return (int32_t)json_object_get_int64(v);
}

static citer_model *load_hf(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *text = citer_read_file(path, &len);
    if (!text) {
        char why[256]; /* citer_error() is the buffer citer_set_error writes: copy it first */
        snprintf(why, sizeof why, "%s", citer_error());
        citer_set_error("config.json: %s", why);
        return NULL;
    }
    json_tokener *tk = json_tokener_new();
    json_object *cfg = json_tokener_parse_ex(tk, text, (int)len);
    int bad = json_tokener_get_error(tk) != json_tokener_success || !json_object_is_type(cfg, json_type_object);
    json_tokener_free(tk);
    free(text);
    if (bad) {
        json_object_put(cfg);
        citer_set_error("config.json: not a JSON object");
        return NULL;
    }
    citer_model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(dir);
    citer_config *c = &m->cfg;
    json_object *v;
    const char *mt = json_object_object_get_ex(cfg, "model_type", &v) ? json_object_get_string(v) : NULL;
    if (!mt) {
        citer_set_error("config.json: no model_type");
        goto fail;
    }
    m->arch_name = xstrdup(mt);
    c->arch = arch_from_name(mt);
    if (c->arch < 0) {
        citer_set_error("config.json: unsupported model_type '%s' (llama, qwen2 and qwen3 are supported)", mt);
        goto fail;
    }
    c->rope_layout = CITER_ROPE_HALVES;
    c->head_dim = 0;
    int tie = 0; /* the transformers default for these model classes */
    if (json_int(cfg, "hidden_size", &c->dim) || json_int(cfg, "num_hidden_layers", &c->n_layers) ||
        json_int(cfg, "num_attention_heads", &c->n_heads) || json_int(cfg, "num_key_value_heads", &c->n_kv_heads) ||
        json_int(cfg, "head_dim", &c->head_dim) || json_int(cfg, "intermediate_size", &c->ffn_dim) ||
        json_int(cfg, "vocab_size", &c->vocab_size) || json_int(cfg, "max_position_embeddings", &c->context_length) ||
        json_num(cfg, "rms_norm_eps", &c->rms_eps) || json_num(cfg, "rope_theta", &c->rope_theta)) {
        citer_set_error("config.json: a size field is not a non-negative integer");
        goto fail;
    }
    if (json_object_object_get_ex(cfg, "tie_word_embeddings", &v) && v) tie = json_object_get_boolean(v);
    c->tied_embeddings = tie ? 1 : 0;
    c->bos = json_token_id(cfg, "bos_token_id");
    c->eos = json_token_id(cfg, "eos_token_id");
    json_object *rs;
    if (json_object_object_get_ex(cfg, "rope_scaling", &rs) && rs && json_object_is_type(rs, json_type_object)) {
        const char *type = NULL;
        if (json_object_object_get_ex(rs, "rope_type", &v) || json_object_object_get_ex(rs, "type", &v))
            type = json_object_get_string(v);
        if (type && !strcmp(type, "llama3")) {
            if (json_num(rs, "factor", &c->rope_factor) || json_num(rs, "low_freq_factor", &c->rope_low_freq_factor) ||
                json_num(rs, "high_freq_factor", &c->rope_high_freq_factor) ||
                json_int(rs, "original_max_position_embeddings", &c->rope_original_context) || c->rope_factor <= 0 ||
                c->rope_original_context <= 0 || c->rope_high_freq_factor <= c->rope_low_freq_factor) {
                citer_set_error("config.json: bad llama3 rope_scaling");
                goto fail;
            }
        } else if (type && !strcmp(type, "linear")) {
            if (json_num(rs, "factor", &c->rope_factor) || c->rope_factor <= 0) {
                citer_set_error("config.json: bad linear rope_scaling");
                goto fail;
            }
        } else if (type && strcmp(type, "default") != 0) {
            citer_set_error("config.json: unsupported rope_scaling type '%s'", type);
            goto fail;
        }
    }
    if (check_config(c, "config.json")) goto fail;
    m->st = st_open(dir);
    if (!m->st) goto fail;
    loader L = {m, dir, find_st, m->st};
    if (load_tensors(&L, &hf_names)) goto fail;
    json_object_put(cfg);
    return m;
fail:
    json_object_put(cfg);
    citer_model_free(m);
    return NULL;
}

citer_model *citer_model_load(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        citer_set_error("no such file or directory");
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) return load_hf(path);
    size_t n = strlen(path);
    if (n >= 11 && !strcmp(path + n - 11, "config.json")) {
        char *dir = xstrndup(path, n - 11);
        if (!*dir) {
            free(dir);
            dir = xstrdup(".");
        }
        citer_model *m = load_hf(dir);
        free(dir);
        return m;
    }
    return load_gguf(path);
}

void citer_model_free(citer_model *m)
{
    if (!m) return;
    if (m->packed) munmap(m->packed, m->packed_bytes);
    if (m->gguf) gguf_close(m->gguf);
    if (m->st) st_close(m->st);
    for (int i = 0; i < m->n_f32_copies; i++) free(m->f32_copies[i]);
    free(m->f32_copies);
    free(m->layers);
    free(m->arch_name);
    free(m->path);
    free(m);
}

const char *citer_model_describe(const citer_model *m)
{
    static _Thread_local char buf[256];
    const citer_config *c = &m->cfg;
    const char *tn = ggml_type_name(m->layers ? m->layers[0].wq.type : m->tok_embd.type);
    snprintf(buf, sizeof buf, "%s, %d layers, D=%d, %d heads (%d kv) x %d, FF %d, V %d, %s%s", m->arch_name,
             c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size,
             tn ? tn : "?", c->tied_embeddings ? ", tied embeddings" : "");
    return buf;
}

uint64_t citer_model_weight_bytes(const citer_model *m)
{
    uint64_t b = 0;
    for (int i = 0; i < 7 * m->cfg.n_layers + 1; i++) {
        const citer_matrix *w = model_matrix((citer_model *)m, i); /* read only */
        b += w->row_bytes * (uint64_t)w->rows;
    }
    return b;
}
