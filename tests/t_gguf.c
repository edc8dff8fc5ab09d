/* Tests for lib/gguf: the fixture models and vocabularies (facts from their READMEs),
 * write/read round trips, a byte-exact file built by hand from the specification, and
 * corrupt or hostile files, which must all fail with a message and never crash. */
#include "check.h"
#include "gguf.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

/* ---- helpers ---- */

/* A tiny GGUF byte builder, independent of the library's writer. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void b_put(bytes *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void b_le(bytes *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        b_put(b, &c, 1);
    }
}
static void b_u32(bytes *b, uint32_t v) { b_le(b, v, 4); }
static void b_u64(bytes *b, uint64_t v) { b_le(b, v, 8); }
static void b_str(bytes *b, const char *s)
{
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_header(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_pad(bytes *b, size_t a)
{
    while (b->len % a) b_le(b, 0, 1);
}
static void b_tensor_info(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                          uint32_t type, uint64_t offset)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, offset);
}

static char *tmp_path(const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return p;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

/* Open bytes as a GGUF file; returns the handle (or NULL with citer_error set). */
static gguf_file *open_bytes(const void *p, size_t n)
{
    const char *path = tmp_path("case.gguf");
    write_bytes(path, p, n);
    return gguf_open(path);
}

/* Expect bytes to be rejected with a message containing want (if not NULL). */
#define EXPECT_REJECT(b, want)                                                                 \
    do {                                                                                       \
        gguf_file *g_ = open_bytes((b)->p, (b)->len);                                          \
        CHECK(!g_, "accepted a bad file (expected '%s')", (want) ? (want) : "an error");       \
        if (g_) gguf_close(g_);                                                                \
        else {                                                                                 \
            CHECK(citer_error()[0], "no message");                                             \
            if (want) CHECK(strstr(citer_error(), want), "message '%s' lacks '%s'", citer_error(), \
                            (const char *)(want));                                             \
        }                                                                                      \
    } while (0)

static int str_is(gguf_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    float v;
    if (exp == 0) v = ldexpf((float)man, -24);
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexpf((float)(man | 1024), exp - 25);
    return sign ? -v : v;
}

/* Every opened file must keep its pointers inside the map. */
static void check_in_bounds(const gguf_file *g)
{
    const uint8_t *lo = g->map.data, *hi = g->map.data + g->map.size;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        CHECK((const uint8_t *)kv->key.ptr >= lo && (const uint8_t *)kv->key.ptr + kv->key.len <= hi,
              "key %" PRIu64 " out of bounds", i);
        if (kv->type == GGUF_STRING)
            CHECK((const uint8_t *)kv->str.ptr + kv->str.len <= hi, "string out of bounds");
        if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING) {
            gguf_str *s = gguf_str_array(kv);
            for (uint64_t j = 0; s && j < kv->arr_n; j++)
                CHECK((const uint8_t *)s[j].ptr >= lo && (const uint8_t *)s[j].ptr + s[j].len <= hi,
                      "array string out of bounds");
            free(s);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        CHECK((const uint8_t *)t->data >= lo && (const uint8_t *)t->data + t->nbytes <= hi,
              "tensor %" PRIu64 " out of bounds", i);
    }
}

/* ---- fixture models ---- */

struct model_facts {
    const char *file, *arch;
    uint64_t D, L, H, KV, hd, FF, V;
    int tied, bias, type2d; /* type of the 2-D weights */
};

static const struct model_facts models[] = {
    {"models/stories260K/stories260K-f32.gguf", "llama", 64, 5, 8, 4, 8, 172, 512, 1, 0, GGML_F32},
    {"models/saltyduckegg-llama2xs/saltyduckegg-llama2xs-f32.gguf", "llama", 64, 5, 8, 4, 8, 192,
     512, 1, 0, GGML_F32},
    {"models/llama-gqa/llama-gqa-f32.gguf", "llama", 128, 3, 8, 2, 16, 352, 1000, 0, 0, GGML_F32},
    {"models/llama-gqa/llama-gqa-f16.gguf", "llama", 128, 3, 8, 2, 16, 352, 1000, 0, 0, GGML_F16},
    {"models/llama-gqa/llama-gqa-q8_0.gguf", "llama", 128, 3, 8, 2, 16, 352, 1000, 0, 0, GGML_Q8_0},
    {"models/qwen2/qwen2-f32.gguf", "qwen2", 128, 3, 4, 2, 32, 384, 1000, 1, 1, GGML_F32},
};

static void check_tensor(const gguf_file *g, const char *name, int type, uint64_t ne0, uint64_t ne1)
{
    const gguf_tensor *t = gguf_find_tensor(g, name);
    CHECK(t, "tensor %s missing", name);
    if (!t) return;
    CHECK(t->type == type, "%s: type %d, expected %d", name, t->type, type);
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1, "%s: ne [%" PRIu64 ", %" PRIu64 "], expected [%" PRIu64
          ", %" PRIu64 "]", name, t->ne[0], t->ne[1], ne0, ne1);
    CHECK(t->n_dims == (ne1 == 1 ? 1 : 2), "%s: n_dims %d", name, t->n_dims);
    uint64_t be, bb;
    CHECK(ggml_type_block(type, &be, &bb) == 0, "block");
    CHECK(t->nbytes == ne0 / be * bb * ne1, "%s: nbytes %" PRIu64, name, t->nbytes);
    CHECK((t->offset % g->alignment) == 0, "%s misaligned", name);
}

static void test_fixture_models(void)
{
    int found = 0;
    for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
        const struct model_facts *f = &models[m];
        const char *path = t_fixture(f->file);
        if (!path) continue;
        found++;
        gguf_file *g = gguf_open(path);
        CHECK(g, "%s: %s", f->file, citer_error());
        if (!g) continue;
        CHECK(g->version == 3, "%s: version %u", f->file, g->version);
        CHECK(g->alignment == 32, "alignment");
        char *arch = gguf_get_str(g, "general.architecture");
        CHECK(arch && strcmp(arch, f->arch) == 0, "%s: arch %s", f->file, arch ? arch : "(null)");
        char key[128];
        uint64_t v;
        struct { const char *suffix; uint64_t want; } hp[] = {
            {"embedding_length", f->D}, {"block_count", f->L}, {"attention.head_count", f->H},
            {"attention.head_count_kv", f->KV}, {"feed_forward_length", f->FF},
            {"rope.dimension_count", f->hd}, {"vocab_size", f->V},
        };
        for (size_t i = 0; i < sizeof hp / sizeof *hp; i++) {
            snprintf(key, sizeof key, "%s.%s", f->arch, hp[i].suffix);
            int rc = gguf_get_u64(g, key, &v);
            CHECK(rc == 0 && v == hp[i].want, "%s: %s = %" PRIu64 " (rc %d), expected %" PRIu64,
                  f->file, key, v, rc, hp[i].want);
        }
        double eps;
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", f->arch);
        CHECK(gguf_get_f64(g, key, &eps) == 0 && eps > 0 && eps < 1e-3, "%s: eps", f->file);

        uint64_t per_layer = 9 + (f->bias ? 3 : 0);
        CHECK(g->n_tensors == f->L * per_layer + 2 + (f->tied ? 0 : 1),
              "%s: %" PRIu64 " tensors", f->file, g->n_tensors);
        CHECK((gguf_find_tensor(g, "output.weight") != NULL) == !f->tied, "%s: output.weight %s",
              f->file, f->tied ? "present in a tied model" : "missing");
        check_tensor(g, "token_embd.weight", f->type2d, f->D, f->V);
        check_tensor(g, "output_norm.weight", GGML_F32, f->D, 1);
        if (!f->tied) check_tensor(g, "output.weight", f->type2d, f->D, f->V);
        for (uint64_t l = 0; l < f->L; l++) {
            char n[128];
#define T(suffix, type, a, b)                                                                  \
    do {                                                                                       \
        snprintf(n, sizeof n, "blk.%" PRIu64 ".%s", l, suffix);                                \
        check_tensor(g, n, type, a, b);                                                        \
    } while (0)
            T("attn_norm.weight", GGML_F32, f->D, 1);
            T("ffn_norm.weight", GGML_F32, f->D, 1);
            T("attn_q.weight", f->type2d, f->D, f->H * f->hd);
            T("attn_k.weight", f->type2d, f->D, f->KV * f->hd);
            T("attn_v.weight", f->type2d, f->D, f->KV * f->hd);
            T("attn_output.weight", f->type2d, f->H * f->hd, f->D);
            T("ffn_gate.weight", f->type2d, f->D, f->FF);
            T("ffn_up.weight", f->type2d, f->D, f->FF);
            T("ffn_down.weight", f->type2d, f->FF, f->D);
            if (f->bias) {
                T("attn_q.bias", GGML_F32, f->H * f->hd, 1);
                T("attn_k.bias", GGML_F32, f->KV * f->hd, 1);
                T("attn_v.bias", GGML_F32, f->KV * f->hd, 1);
            }
#undef T
        }
        /* The vocabulary: exactly V tokens. */
        const gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
        CHECK(tok && tok->type == GGUF_ARRAY && tok->arr_type == GGUF_STRING && tok->arr_n == f->V,
              "%s: tokens", f->file);
        char *tm = gguf_get_str(g, "tokenizer.ggml.model");
        gguf_str *s = tok ? gguf_str_array(tok) : NULL;
        if (tm && s && strcmp(tm, "llama") == 0) { /* stories: tok512 pieces, BOS 1, EOS 2 */
            CHECK(str_is(s[0], "<unk>") && str_is(s[1], "<s>") && str_is(s[2], "</s>") &&
                  str_is(s[3], "<0x00>") && str_is(s[258], "<0xFF>"), "%s: special pieces", f->file);
            int64_t id;
            CHECK(gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &id) == 0 && id == 1, "bos");
            CHECK(gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &id) == 0 && id == 2, "eos");
            int b;
            CHECK(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 0 && b == 1, "add_bos");
            const gguf_kv *sc = gguf_find(g, "tokenizer.ggml.scores");
            float x;
            CHECK(sc && sc->arr_n == f->V && gguf_array_f32(sc, 0, &x) == 0, "scores");
            const gguf_kv *tt = gguf_find(g, "tokenizer.ggml.token_type");
            int64_t ty;
            CHECK(tt && gguf_array_i64(tt, 0, &ty) == 0 && ty == 2, "token_type[0] unknown");
            CHECK(tt && gguf_array_i64(tt, 1, &ty) == 0 && ty == 3, "token_type[1] control");
            CHECK(tt && gguf_array_i64(tt, 3, &ty) == 0 && ty == 6, "token_type[3] byte");
        } else if (tm && s) { /* random models: gpt2 BPE, last three ids are special */
            CHECK(strcmp(tm, "gpt2") == 0, "%s: tokenizer model %s", f->file, tm);
            CHECK(str_is(s[f->V - 3], "<|endoftext|>") && str_is(s[f->V - 2], "<|im_start|>") &&
                  str_is(s[f->V - 1], "<|im_end|>"), "%s: last three tokens", f->file);
        }
        free(s);
        free(tm);
        free(arch);
        check_in_bounds(g);
        gguf_close(g);
    }
    if (!found) SKIP(NO_FIXTURES);
}

/* The q8_0 file was quantized from the f32 one: dequantized values are within half a step. */
static void test_fixture_q8_0_matches_f32(void)
{
    const char *p32 = t_fixture("models/llama-gqa/llama-gqa-f32.gguf");
    const char *p8 = t_fixture("models/llama-gqa/llama-gqa-q8_0.gguf");
    if (!p32 || !p8) SKIP(NO_FIXTURES);
    gguf_file *a = gguf_open(p32), *b = gguf_open(p8);
    REQUIRE(a && b, "open: %s", citer_error());
    const gguf_tensor *ta = gguf_find_tensor(a, "token_embd.weight");
    const gguf_tensor *tb = gguf_find_tensor(b, "token_embd.weight");
    REQUIRE(ta && tb && ta->type == GGML_F32 && tb->type == GGML_Q8_0, "token_embd types");
    uint64_t n = ta->ne[0] * ta->ne[1], bad = 0;
    const uint8_t *blocks = tb->data;
    for (uint64_t blk = 0; blk < n / 32; blk++) {
        const uint8_t *q = blocks + blk * 34;
        float d = half_to_float((uint16_t)(q[0] | q[1] << 8));
        for (int j = 0; j < 32; j++) {
            float ref;
            memcpy(&ref, (const uint8_t *)ta->data + (blk * 32 + (uint64_t)j) * 4, 4);
            float deq = d * (float)(int8_t)q[2 + j];
            /* half a step, plus the f16 rounding of the scale times |q| <= 127 */
            if (fabsf(deq - ref) > fabsf(d) * (0.5f + 127.0f / 2048.0f) + 1e-6f) bad++;
        }
    }
    CHECK(bad == 0, "%" PRIu64 " values differ by more than half a quantization step", bad);
    gguf_close(a);
    gguf_close(b);
}

static void test_fixture_vocab_gpt2(void)
{
    const char *path = t_fixture("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
    if (!path) SKIP(NO_FIXTURES);
    gguf_file *g = gguf_open(path);
    REQUIRE(g, "%s", citer_error());
    CHECK(g->n_tensors == 0, "vocab-only file has tensors");
    char *m = gguf_get_str(g, "tokenizer.ggml.model");
    CHECK(m && strcmp(m, "gpt2") == 0, "model %s", m ? m : "(null)");
    free(m);
    const gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    const gguf_kv *mer = gguf_find(g, "tokenizer.ggml.merges");
    REQUIRE(tok && mer, "tokens/merges missing");
    CHECK(tok->arr_n == 50257, "%" PRIu64 " tokens", tok->arr_n);
    CHECK(mer->arr_n == 50000, "%" PRIu64 " merges", mer->arr_n);
    gguf_str *s = gguf_str_array(tok);
    REQUIRE(s, "%s", citer_error());
    CHECK(str_is(s[50256], "<|endoftext|>"), "token 50256");
    CHECK(str_is(s[0], "!"), "token 0 is '!'");
    CHECK(str_is(s[220], "\xc4\xa0"), "token 220 is the byte-level space");
    free(s);
    gguf_str *ms = gguf_str_array(mer);
    REQUIRE(ms, "%s", citer_error());
    CHECK(str_is(ms[0], "\xc4\xa0 t"), "first merge is 'Ġ t'");
    free(ms);
    CHECK(gguf_find(g, "tokenizer.ggml.add_bos_token") == NULL, "gpt-2 has no add_bos_token");
    float x;
    CHECK(gguf_array_f32(tok, 0, &x) == -1, "strings read as numbers");
    check_in_bounds(g);
    gguf_close(g);
}

static void test_fixture_vocab_llama_spm(void)
{
    const char *path = t_fixture("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
    if (!path) SKIP(NO_FIXTURES);
    gguf_file *g = gguf_open(path);
    REQUIRE(g, "%s", citer_error());
    const gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    const gguf_kv *sc = gguf_find(g, "tokenizer.ggml.scores");
    REQUIRE(tok && sc, "tokens/scores missing");
    CHECK(tok->arr_n == 32000 && sc->arr_n == 32000, "%" PRIu64 " tokens, %" PRIu64 " scores",
          tok->arr_n, sc->arr_n);
    CHECK(sc->arr_type == GGUF_FLOAT32, "scores type %d", sc->arr_type);
    int64_t bos;
    CHECK(gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &bos) == 0 && bos == 1, "bos");
    int add;
    CHECK(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add) == 0 && add == 1, "add_bos");
    gguf_str *s = gguf_str_array(tok);
    REQUIRE(s, "%s", citer_error());
    CHECK(str_is(s[0], "<unk>") && str_is(s[1], "<s>") && str_is(s[2], "</s>"), "specials");
    CHECK(str_is(s[3], "<0x00>") && str_is(s[258], "<0xFF>"), "byte pieces");
    free(s);
    float x;
    CHECK(gguf_array_f32(sc, 31999, &x) == 0 && isfinite(x), "last score");
    CHECK(gguf_array_f32(sc, 32000, &x) == -1 && strstr(citer_error(), "out of range"),
          "index past the end accepted");
    int64_t ty;
    const gguf_kv *tt = gguf_find(g, "tokenizer.ggml.token_type");
    CHECK(tt && gguf_array_i64(tt, 1, &ty) == 0 && ty == 3, "<s> is a control token");
    gguf_close(g);
}

/* Every GGUF in the fixtures opens, and every truncation of its metadata fails cleanly. */
static void test_fixture_truncations(void)
{
    const char *path = t_fixture("tokenizers/extra/ggml-vocab-phi-3.gguf");
    if (!path) SKIP(NO_FIXTURES);
    size_t n;
    uint8_t *p = slurp(path, &n);
    REQUIRE(p, "read");
    /* a vocabulary file ends with its last string: every shorter prefix is truncated */
    for (size_t cut = 0; cut < n; cut += (cut < 4096 ? 1 : 997)) {
        gguf_file *g = open_bytes(p, cut);
        CHECK(!g, "prefix of %zu bytes accepted", cut);
        if (g) gguf_close(g);
        if (t_failed) break;
    }
    free(p);
}

/* ---- round trips ---- */

static void test_roundtrip(void)
{
    gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_u32(w, "test.u32", 4000000000u);
    gguf_set_i32(w, "test.i32", -7);
    gguf_set_u64(w, "test.u64", UINT64_MAX);
    gguf_set_f32(w, "test.f32", 0.25f);
    gguf_set_bool(w, "test.true", 1);
    gguf_set_bool(w, "test.false", 0);
    gguf_set_str(w, "test.empty", "");
    gguf_set_str(w, "test.replaced", "first");
    gguf_set_str(w, "test.replaced", "second");
    const char *strs[] = {"a", "", "h\xc3\xa9llo", "with space", "\xe2\x96\x81x"};
    gguf_set_arr_str(w, "test.strs", strs, 5);
    gguf_set_arr_str(w, "test.nostrs", strs, 0);
    float fl[] = {1.5f, -2.0f, 1e30f};
    gguf_set_arr_f32(w, "test.f32s", fl, 3);
    int32_t in[] = {-1, 0, 2147483647};
    gguf_set_arr_i32(w, "test.i32s", in, 3);

    float f32[6] = {1, 2, 3, 4, 5, 6};
    uint64_t ne_f32[2] = {3, 2};
    gguf_add_tensor(w, "a.f32", GGML_F32, 2, ne_f32, f32);
    uint16_t f16[5] = {0x3c00, 0x4000, 0xc000, 0, 0x7bff};
    uint64_t ne_f16[1] = {5};
    gguf_add_tensor(w, "b.f16", GGML_F16, 1, ne_f16, f16);
    uint8_t q8[2 * 2 * 34];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (uint8_t)(i * 7 + 1);
    uint64_t ne_q8[2] = {64, 2};
    gguf_add_tensor(w, "c.q8_0", GGML_Q8_0, 2, ne_q8, q8);
    uint8_t q4k[144 * 3];
    for (size_t i = 0; i < sizeof q4k; i++) q4k[i] = (uint8_t)(i ^ 0x5a);
    uint64_t ne_q4k[4] = {256, 1, 3, 1};
    gguf_add_tensor(w, "d.q4_k", GGML_Q4_K, 4, ne_q4k, q4k);
    uint16_t bf[4] = {0x3f80, 0xbf80, 0x4049, 0};
    uint64_t ne_bf[3] = {2, 1, 2};
    gguf_add_tensor(w, "e.bf16", GGML_BF16, 3, ne_bf, bf);
    const char *path = tmp_path("rt.gguf");
    REQUIRE(gguf_write(w, path) == 0, "write: %s", citer_error());
    gguf_writer_free(w);

    gguf_file *g = gguf_open(path);
    REQUIRE(g, "open: %s", citer_error());
    CHECK(g->version == 3 && g->n_kv == 13 && g->n_tensors == 5, "counts %" PRIu64 " %" PRIu64,
          g->n_kv, g->n_tensors);
    CHECK(g->data_offset % 32 == 0, "data offset %" PRIu64, g->data_offset);
    uint64_t u;
    int64_t i;
    double d;
    int b;
    CHECK(gguf_get_u64(g, "test.u32", &u) == 0 && u == 4000000000u, "u32");
    CHECK(gguf_find(g, "test.u32")->type == GGUF_UINT32, "u32 type");
    CHECK(gguf_get_i64(g, "test.i32", &i) == 0 && i == -7, "i32");
    CHECK(gguf_get_u64(g, "test.i32", &u) == -1 && strstr(citer_error(), "negative"), "neg as u64");
    CHECK(gguf_get_u64(g, "test.u64", &u) == 0 && u == UINT64_MAX, "u64");
    CHECK(gguf_get_i64(g, "test.u64", &i) == -1, "u64 max as i64");
    CHECK(gguf_get_f64(g, "test.f32", &d) == 0 && d == 0.25, "f32");
    CHECK(gguf_get_f64(g, "test.i32", &d) == 0 && d == -7, "int as f64");
    CHECK(gguf_get_bool(g, "test.true", &b) == 0 && b == 1, "true");
    CHECK(gguf_get_bool(g, "test.false", &b) == 0 && b == 0, "false");
    CHECK(gguf_get_bool(g, "test.u32", &b) == -1 && strstr(citer_error(), "test.u32"), "bool type");
    CHECK(gguf_get_u64(g, "test.f32", &u) == -1, "float as int");
    CHECK(gguf_get_u64(g, "no.such.key", &u) == -1 && strstr(citer_error(), "no.such.key"), "missing");
    char *s = gguf_get_str(g, "general.architecture");
    CHECK(s && strcmp(s, "llama") == 0, "arch");
    free(s);
    s = gguf_get_str(g, "test.empty");
    CHECK(s && s[0] == 0, "empty string");
    free(s);
    s = gguf_get_str(g, "test.replaced");
    CHECK(s && strcmp(s, "second") == 0, "replaced value");
    free(s);
    CHECK(gguf_get_str(g, "test.u32") == NULL, "u32 as string");
    const gguf_kv *kv = gguf_find(g, "test.strs");
    REQUIRE(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->arr_n == 5, "strs");
    gguf_str *sa = gguf_str_array(kv);
    for (int k = 0; k < 5; k++) CHECK(str_is(sa[k], strs[k]), "string %d", k);
    free(sa);
    kv = gguf_find(g, "test.nostrs");
    CHECK(kv && kv->arr_n == 0, "empty array");
    sa = gguf_str_array(kv);
    CHECK(sa != NULL, "empty string array gives a non-NULL result");
    free(sa);
    kv = gguf_find(g, "test.f32s");
    float x;
    for (int k = 0; k < 3; k++) CHECK(kv && gguf_array_f32(kv, (uint64_t)k, &x) == 0 && x == fl[k], "f32s");
    CHECK(gguf_array_i64(kv, 0, &i) == -1, "floats as ints");
    CHECK(gguf_str_array(kv) == NULL, "floats as strings");
    kv = gguf_find(g, "test.i32s");
    for (int k = 0; k < 3; k++) CHECK(kv && gguf_array_i64(kv, (uint64_t)k, &i) == 0 && i == in[k], "i32s");
    CHECK(gguf_array_f32(kv, 0, &x) == 0 && x == -1.0f, "ints as floats");

    struct { const char *name; int type, n_dims; const void *data; size_t n; uint64_t ne[4]; } want[] = {
        {"a.f32", GGML_F32, 2, f32, sizeof f32, {3, 2, 1, 1}},
        {"b.f16", GGML_F16, 1, f16, sizeof f16, {5, 1, 1, 1}},
        {"c.q8_0", GGML_Q8_0, 2, q8, sizeof q8, {64, 2, 1, 1}},
        {"d.q4_k", GGML_Q4_K, 4, q4k, sizeof q4k, {256, 1, 3, 1}},
        {"e.bf16", GGML_BF16, 3, bf, sizeof bf, {2, 1, 2, 1}},
    };
    for (int k = 0; k < 5; k++) {
        const gguf_tensor *t = gguf_find_tensor(g, want[k].name);
        CHECK(t, "tensor %s", want[k].name);
        if (!t) continue;
        CHECK(t->type == want[k].type && t->n_dims == want[k].n_dims, "%s type/dims", want[k].name);
        CHECK(memcmp(t->ne, want[k].ne, sizeof t->ne) == 0, "%s ne", want[k].name);
        CHECK(t->nbytes == want[k].n, "%s nbytes %" PRIu64, want[k].name, t->nbytes);
        CHECK(t->nbytes == want[k].n && memcmp(t->data, want[k].data, want[k].n) == 0, "%s data",
              want[k].name);
        CHECK(t->offset % 32 == 0 && ((const uint8_t *)t->data - g->map.data) % 32 == 0,
              "%s alignment", want[k].name);
        CHECK(&g->tensors[k] == t, "tensor order kept");
    }
    CHECK(gguf_find_tensor(g, "nope") == NULL, "missing tensor");
    gguf_close(g);
}

/* A file built by hand from the specification: the writer must produce exactly these bytes. */
static void test_writer_exact_bytes(void)
{
    static const uint8_t want[128] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0,          /* magic, version 3 */
        1, 0, 0, 0, 0, 0, 0, 0,                  /* 1 tensor */
        1, 0, 0, 0, 0, 0, 0, 0,                  /* 1 key/value */
        1, 0, 0, 0, 0, 0, 0, 0, 'a',             /* key "a" */
        4, 0, 0, 0, 7, 0, 0, 0,                  /* uint32 7 */
        1, 0, 0, 0, 0, 0, 0, 0, 't',             /* tensor "t" */
        1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,      /* 1 dim, ne0 = 1 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* f32, offset 0 */
        [96] = 0x00, 0x00, 0x80, 0x3f,           /* 1.0f at the 32-aligned data start */
    };
    gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "a", 7);
    float one = 1.0f;
    uint64_t ne = 1;
    gguf_add_tensor(w, "t", GGML_F32, 1, &ne, &one);
    const char *path = tmp_path("exact.gguf");
    REQUIRE(gguf_write(w, path) == 0, "%s", citer_error());
    gguf_writer_free(w);
    size_t n;
    uint8_t *got = slurp(path, &n);
    REQUIRE(got, "read back");
    CHECK(n == sizeof want, "size %zu, expected %zu", n, sizeof want);
    for (size_t k = 0; k < n && k < sizeof want; k++)
        if (got[k] != want[k]) {
            CHECK(got[k] == want[k], "byte %zu is 0x%02x, expected 0x%02x", k, got[k], want[k]);
            break;
        }
    free(got);
}

static void test_writer_errors(void)
{
    uint64_t ne[2] = {33, 1};
    uint8_t data[256] = {0};
    gguf_writer *w = gguf_writer_new();
    gguf_add_tensor(w, "bad", GGML_Q8_0, 2, ne, data); /* 33 is not a multiple of 32 */
    CHECK(gguf_write(w, tmp_path("bad.gguf")) == -1 && strstr(citer_error(), "bad"), "row length");
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_add_tensor(w, "x", 99, 1, ne, data);
    CHECK(gguf_write(w, tmp_path("bad.gguf")) == -1, "unknown type");
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_add_tensor(w, "x", GGML_F32, 5, ne, data);
    CHECK(gguf_write(w, tmp_path("bad.gguf")) == -1, "5 dims");
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_add_tensor(w, "x", GGML_F32, 1, ne, data);
    gguf_add_tensor(w, "x", GGML_F32, 1, ne, data);
    CHECK(gguf_write(w, tmp_path("bad.gguf")) == -1 && strstr(citer_error(), "duplicate"), "dup");
    gguf_writer_free(w);
    CHECK(access(tmp_path("bad.gguf"), F_OK) != 0, "a failed write left a file");
    w = gguf_writer_new();
    CHECK(gguf_write(w, "/nonexistent-dir/x.gguf") == -1 && citer_error()[0], "unwritable path");
    gguf_writer_free(w);
}

/* A caller-chosen alignment is honoured and read back. */
static void test_writer_alignment(void)
{
    gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 256);
    float v[3] = {1, 2, 3};
    uint64_t ne = 3;
    gguf_add_tensor(w, "x", GGML_F32, 1, &ne, v);
    gguf_add_tensor(w, "y", GGML_F32, 1, &ne, v);
    const char *path = tmp_path("align.gguf");
    REQUIRE(gguf_write(w, path) == 0, "%s", citer_error());
    gguf_writer_free(w);
    gguf_file *g = gguf_open(path);
    REQUIRE(g, "%s", citer_error());
    CHECK(g->alignment == 256 && g->data_offset % 256 == 0, "alignment %" PRIu64, g->alignment);
    const gguf_tensor *y = gguf_find_tensor(g, "y");
    CHECK(y && y->offset == 256 && memcmp(y->data, v, sizeof v) == 0, "second tensor");
    gguf_close(g);
}

/* ---- hand-made files: every metadata type, nested arrays, v2 ---- */

static void test_all_value_types(void)
{
    bytes b = {0};
    b_header(&b, 2, 0, 14);
    b_str(&b, "u8"); b_u32(&b, GGUF_UINT8); b_le(&b, 200, 1);
    b_str(&b, "i8"); b_u32(&b, GGUF_INT8); b_le(&b, 0x80, 1);
    b_str(&b, "u16"); b_u32(&b, GGUF_UINT16); b_le(&b, 65535, 2);
    b_str(&b, "i16"); b_u32(&b, GGUF_INT16); b_le(&b, 0xfffe, 2);
    b_str(&b, "u32"); b_u32(&b, GGUF_UINT32); b_u32(&b, 0xffffffffu);
    b_str(&b, "i32"); b_u32(&b, GGUF_INT32); b_u32(&b, 0x80000000u);
    b_str(&b, "f32"); b_u32(&b, GGUF_FLOAT32); b_u32(&b, 0x40490fdbu); /* pi */
    b_str(&b, "bool"); b_u32(&b, GGUF_BOOL); b_le(&b, 1, 1);
    b_str(&b, "str"); b_u32(&b, GGUF_STRING); b_str(&b, "v");
    b_str(&b, "u64"); b_u32(&b, GGUF_UINT64); b_u64(&b, 1ull << 63);
    b_str(&b, "i64"); b_u32(&b, GGUF_INT64); b_u64(&b, (uint64_t)INT64_MIN);
    b_str(&b, "f64"); b_u32(&b, GGUF_FLOAT64); b_u64(&b, 0x3fb999999999999aull); /* 0.1 */
    /* array of 2 arrays: [u16: 1, 2] and [string: "x"] */
    b_str(&b, "nested"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_ARRAY); b_u64(&b, 2);
    b_u32(&b, GGUF_UINT16); b_u64(&b, 2); b_le(&b, 1, 2); b_le(&b, 2, 2);
    b_u32(&b, GGUF_STRING); b_u64(&b, 1); b_str(&b, "x");
    b_str(&b, "u8s"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_UINT8); b_u64(&b, 3);
    b_le(&b, 9, 1); b_le(&b, 8, 1); b_le(&b, 255, 1);
    gguf_file *g = open_bytes(b.p, b.len);
    free(b.p);
    REQUIRE(g, "%s", citer_error());
    CHECK(g->version == 2, "v2");
    uint64_t u;
    int64_t i;
    double d;
    int bo;
    CHECK(gguf_get_u64(g, "u8", &u) == 0 && u == 200, "u8");
    CHECK(gguf_get_i64(g, "i8", &i) == 0 && i == -128, "i8");
    CHECK(gguf_get_u64(g, "u16", &u) == 0 && u == 65535, "u16");
    CHECK(gguf_get_i64(g, "i16", &i) == 0 && i == -2, "i16");
    CHECK(gguf_get_u64(g, "u32", &u) == 0 && u == 0xffffffffu, "u32");
    CHECK(gguf_get_i64(g, "i32", &i) == 0 && i == INT32_MIN, "i32");
    CHECK(gguf_get_f64(g, "f32", &d) == 0 && fabs(d - 3.14159265) < 1e-6, "f32");
    CHECK(gguf_get_bool(g, "bool", &bo) == 0 && bo == 1, "bool");
    char *s = gguf_get_str(g, "str");
    CHECK(s && strcmp(s, "v") == 0, "str");
    free(s);
    CHECK(gguf_get_u64(g, "u64", &u) == 0 && u == 1ull << 63, "u64");
    CHECK(gguf_get_i64(g, "i64", &i) == 0 && i == INT64_MIN, "i64");
    CHECK(gguf_get_f64(g, "f64", &d) == 0 && d == 0.1, "f64");
    const gguf_kv *kv = gguf_find(g, "nested");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_ARRAY && kv->arr_n == 2, "nested");
    CHECK(gguf_array_i64(kv, 0, &i) == -1, "nested arrays are not numbers");
    kv = gguf_find(g, "u8s");
    CHECK(kv && gguf_array_i64(kv, 2, &i) == 0 && i == 255, "u8 array");
    float x;
    CHECK(kv && gguf_array_f32(kv, 1, &x) == 0 && x == 8.0f, "u8 array as float");
    check_in_bounds(g);
    gguf_close(g);
}

/* ---- hostile and corrupt files ---- */

/* A valid file with two tensors, built by the library writer; no trailing padding. */
static uint8_t *valid_file(size_t *n)
{
    gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "test");
    const char *strs[] = {"one", "two", "three"};
    gguf_set_arr_str(w, "tokens", strs, 3);
    float fl[2] = {1, 2};
    gguf_set_arr_f32(w, "scores", fl, 2);
    gguf_set_u32(w, "n", 5);
    float a[8] = {0};
    uint64_t ne_a[2] = {4, 2};
    gguf_add_tensor(w, "a", GGML_F32, 2, ne_a, a);
    uint8_t q[34 * 4] = {0};
    uint64_t ne_q[1] = {128};
    gguf_add_tensor(w, "q", GGML_Q8_0, 1, ne_q, q); /* 136 bytes, then 24 pad... */
    float c[8] = {0};
    uint64_t ne_c[1] = {8};
    gguf_add_tensor(w, "c", GGML_F32, 1, ne_c, c); /* 32 bytes: the file ends exactly here */
    const char *path = tmp_path("valid.gguf");
    if (gguf_write(w, path)) {
        printf("  write: %s\n", citer_error());
        exit(1);
    }
    gguf_writer_free(w);
    return slurp(path, n);
}

static void test_truncations(void)
{
    size_t n;
    uint8_t *p = valid_file(&n);
    REQUIRE(p, "valid file");
    gguf_file *g = open_bytes(p, n);
    REQUIRE(g, "the valid file does not open: %s", citer_error());
    uint64_t header_end = g->data_offset;
    gguf_close(g);
    for (size_t cut = 0; cut < n; cut++) {
        g = open_bytes(p, cut);
        CHECK(!g, "prefix of %zu of %zu bytes accepted", cut, n);
        if (g) gguf_close(g);
        else if (cut < header_end)
            CHECK(strstr(citer_error(), "byte") || strstr(citer_error(), "magic"),
                  "cut %zu: message '%s' does not say where", cut, citer_error());
        if (t_failed) break;
    }
    g = open_bytes(p, 10);
    CHECK(!g && strstr(citer_error(), "truncated at byte 8"), "message: %s", citer_error());
    free(p);
}

static unsigned rng_state = 12345;
static unsigned rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void test_byte_flips(void)
{
    size_t n;
    uint8_t *p = valid_file(&n);
    REQUIRE(p, "valid file");
    gguf_file *g = open_bytes(p, n);
    REQUIRE(g, "%s", citer_error());
    size_t header_end = (size_t)g->data_offset;
    gguf_close(g);
    int opened = 0, rejected = 0;
    uint8_t *q = malloc(n);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(q, p, n);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng() % header_end;
            if (rng() % 2) q[at] ^= (uint8_t)(1u << (rng() % 8));
            else q[at] = (uint8_t)rng();
        }
        g = open_bytes(q, n);
        if (g) {
            opened++;
            check_in_bounds(g);
            gguf_close(g);
        } else {
            rejected++;
            CHECK(citer_error()[0], "rejected without a message");
        }
        if (t_failed) break;
    }
    CHECK(rejected > 100, "only %d of 3000 corrupted files rejected", rejected);
    (void)opened;
    free(q);
    free(p);
}

static void test_bad_headers(void)
{
    bytes b = {0};
    b_put(&b, "GGUG", 4); b_u32(&b, 3); b_u64(&b, 0); b_u64(&b, 0);
    EXPECT_REJECT(&b, "not a GGUF file (bad magic)");
    b.len = 0; b_put(&b, "GG", 2);
    EXPECT_REJECT(&b, "bad magic");
    b.len = 0;
    EXPECT_REJECT(&b, "bad magic");
    b.len = 0; b_header(&b, 1, 0, 0);
    EXPECT_REJECT(&b, "unsupported GGUF version 1");
    b.len = 0; b_header(&b, 4, 0, 0);
    EXPECT_REJECT(&b, "unsupported GGUF version 4");
    b.len = 0; b_header(&b, 0x03000000, 0, 0);
    EXPECT_REJECT(&b, "big-endian");
    b.len = 0; b_header(&b, 3, 1ull << 60, 0);
    EXPECT_REJECT(&b, "tensor count");
    b.len = 0; b_header(&b, 3, 0, 1ull << 60);
    EXPECT_REJECT(&b, "key/value count");
    b.len = 0; b_header(&b, 3, UINT64_MAX, UINT64_MAX);
    EXPECT_REJECT(&b, "count");
    b.len = 0; b_header(&b, 3, 0, 0); /* an empty but valid file */
    gguf_file *g = open_bytes(b.p, b.len);
    CHECK(g && g->n_kv == 0 && g->n_tensors == 0, "empty GGUF: %s", citer_error());
    gguf_close(g);
    CHECK(gguf_open(tmp_path("no-such-file.gguf")) == NULL && citer_error()[0], "missing file");
    CHECK(gguf_open(t_tmpdir()) == NULL && strstr(citer_error(), "directory"), "directory");
    free(b.p);
}

static void test_bad_metadata(void)
{
    bytes b = {0};
    /* key length 2^63 */
    b_header(&b, 3, 0, 1); b_u64(&b, 1ull << 63); b_put(&b, "abcdefgh", 8);
    EXPECT_REJECT(&b, "string length 9223372036854775808");
    /* key length just one past the end */
    b.len = 0; b_header(&b, 3, 0, 1); b_u64(&b, 100); b_put(&b, "abcdefghij", 10);
    EXPECT_REJECT(&b, "key 0");
    /* string value length 2^63 */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_STRING); b_u64(&b, 1ull << 63);
    EXPECT_REJECT(&b, "key 0 'k'");
    /* UINT64_MAX string length: no wrap-around */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_STRING); b_u64(&b, UINT64_MAX);
    b_put(&b, "xxxxxxxxxxxxxxxxxxxx", 20);
    EXPECT_REJECT(&b, "string length");
    /* unknown value type */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, 13); b_u64(&b, 0);
    EXPECT_REJECT(&b, "unknown value type 13");
    /* truncated scalar, with the key named */
    b.len = 0; b_header(&b, 3, 0, 2); b_str(&b, "a"); b_u32(&b, GGUF_UINT8); b_le(&b, 1, 1);
    b_str(&b, "b"); b_u32(&b, GGUF_UINT64); b_u32(&b, 0);
    EXPECT_REJECT(&b, "reading key 1 'b'");
    /* array of 2^61 u64 */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_UINT64);
    b_u64(&b, 1ull << 61); b_u64(&b, 0);
    EXPECT_REJECT(&b, "array of 2305843009213693952 uint64");
    /* array of UINT64_MAX u32: the multiplication must not wrap */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_UINT32);
    b_u64(&b, UINT64_MAX); b_u64(&b, 0);
    EXPECT_REJECT(&b, "runs past the end");
    /* array of 2^62 strings */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_STRING);
    b_u64(&b, 1ull << 62); b_str(&b, "a");
    EXPECT_REJECT(&b, "strings");
    /* a string inside a string array that runs past the end */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_STRING);
    b_u64(&b, 2); b_str(&b, "a"); b_u64(&b, 1000); b_put(&b, "bcdefghijk", 10);
    EXPECT_REJECT(&b, "string length 1000");
    /* unknown array element type */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, 77);
    b_u64(&b, 0);
    EXPECT_REJECT(&b, "element type 77");
    /* arrays nested 100 deep */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY);
    for (int k = 0; k < 100; k++) { b_u32(&b, GGUF_ARRAY); b_u64(&b, 1); }
    b_u32(&b, GGUF_UINT8); b_u64(&b, 0);
    EXPECT_REJECT(&b, "nested");
    /* a huge count of nested arrays */
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_ARRAY); b_u32(&b, GGUF_ARRAY);
    b_u64(&b, 1ull << 60); b_u32(&b, GGUF_UINT8); b_u64(&b, 0);
    EXPECT_REJECT(&b, "arrays");
    /* duplicate keys */
    b.len = 0; b_header(&b, 3, 0, 2); b_str(&b, "k"); b_u32(&b, GGUF_UINT8); b_le(&b, 1, 1);
    b_str(&b, "k"); b_u32(&b, GGUF_UINT8); b_le(&b, 2, 1);
    EXPECT_REJECT(&b, "duplicate key 'k'");
    /* bad alignments */
    uint32_t aligns[] = {0, 3, 48, 0x80000000u};
    for (int k = 0; k < 4; k++) {
        b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "general.alignment"); b_u32(&b, GGUF_UINT32);
        b_u32(&b, aligns[k]);
        EXPECT_REJECT(&b, "general.alignment");
    }
    b.len = 0; b_header(&b, 3, 0, 1); b_str(&b, "general.alignment"); b_u32(&b, GGUF_STRING);
    b_str(&b, "32");
    EXPECT_REJECT(&b, "general.alignment");
    free(b.p);
}

/* Build a file with the given tensor infos (ne given for n_dims dims) and data_len data bytes. */
static void tensor_file(bytes *b, int n, const char *const *names, const uint32_t *n_dims,
                        const uint64_t (*ne)[5], const uint32_t *types, const uint64_t *offsets,
                        size_t data_len)
{
    b->len = 0;
    b_header(b, 3, (uint64_t)n, 0);
    for (int k = 0; k < n; k++) b_tensor_info(b, names[k], n_dims[k], ne[k], types[k], offsets[k]);
    b_pad(b, 32);
    for (size_t k = 0; k < data_len; k++) b_le(b, k & 0xff, 1);
}

static void test_bad_tensors(void)
{
    bytes b = {0};
    const char *one[] = {"w"};
    const char *two[] = {"w", "v"};
    uint32_t d1[] = {1}, d2[] = {2, 1}, d5[] = {5};
    uint32_t f32[] = {GGML_F32, GGML_F32};
    uint64_t off0[] = {0, 0};
    const uint64_t ne8[][5] = {{8}, {8}};

    tensor_file(&b, 1, one, d1, ne8, f32, off0, 32);
    gguf_file *g = open_bytes(b.p, b.len);
    CHECK(g && g->tensors[0].nbytes == 32, "a valid one-tensor file: %s", citer_error());
    gguf_close(g);

    tensor_file(&b, 1, one, d5, (const uint64_t[][5]){{1, 1, 1, 1, 1}}, f32, off0, 32);
    EXPECT_REJECT(&b, "5 dimensions");
    tensor_file(&b, 1, one, d1, ne8, f32, (const uint64_t[]){4}, 64);
    EXPECT_REJECT(&b, "not a multiple of the alignment");
    tensor_file(&b, 1, one, d1, ne8, f32, off0, 31);
    EXPECT_REJECT(&b, "runs past the end");
    tensor_file(&b, 1, one, d1, ne8, f32, (const uint64_t[]){32}, 32);
    EXPECT_REJECT(&b, "runs past the end");
    tensor_file(&b, 1, one, d1, ne8, f32, (const uint64_t[]){UINT64_MAX - 31}, 32);
    EXPECT_REJECT(&b, "");
    /* overlapping: v at 0 with 64 bytes, w at 32 */
    tensor_file(&b, 2, two, d2, (const uint64_t[][5]){{8}, {16, 1}}, f32,
                (const uint64_t[]){32, 0}, 64);
    EXPECT_REJECT(&b, "overlap");
    /* the same offset twice */
    tensor_file(&b, 2, two, (const uint32_t[]){1, 1}, ne8, f32, off0, 64);
    EXPECT_REJECT(&b, "overlap");
    /* duplicate names */
    tensor_file(&b, 2, (const char *const[]){"w", "w"}, (const uint32_t[]){1, 1}, ne8, f32,
                (const uint64_t[]){0, 32}, 64);
    EXPECT_REJECT(&b, "duplicate tensor 'w'");
    /* element count overflows */
    tensor_file(&b, 1, one, (const uint32_t[]){4},
                (const uint64_t[][5]){{1ull << 32, 1ull << 32, 1ull << 32, 1}}, f32, off0, 32);
    EXPECT_REJECT(&b, "too large");
    tensor_file(&b, 1, one, (const uint32_t[]){2}, (const uint64_t[][5]){{1ull << 62, 4}}, f32,
                off0, 32);
    EXPECT_REJECT(&b, "");
    /* names with control characters stay on one line in messages */
    tensor_file(&b, 1, (const char *const[]){"evil\nname"}, d5, (const uint64_t[][5]){{1, 1, 1, 1, 1}},
                f32, off0, 32);
    EXPECT_REJECT(&b, "evil?name");
    CHECK(!strchr(citer_error(), '\n'), "newline in message");
    /* q8_0 row of 33 values */
    tensor_file(&b, 1, one, d1, (const uint64_t[][5]){{33}}, (const uint32_t[]){GGML_Q8_0}, off0,
                96);
    EXPECT_REJECT(&b, "not a multiple of the q8_0 block size 32");
    /* q8_0 needs 34 bytes per 32 values: 64 values need 68 bytes */
    tensor_file(&b, 1, one, d1, (const uint64_t[][5]){{64}}, (const uint32_t[]){GGML_Q8_0}, off0, 67);
    EXPECT_REJECT(&b, "runs past the end");
    tensor_file(&b, 1, one, d1, (const uint64_t[][5]){{64}}, (const uint32_t[]){GGML_Q8_0}, off0, 68);
    g = open_bytes(b.p, b.len);
    CHECK(g && g->tensors[0].nbytes == 68, "q8_0 64 values: %s", citer_error());
    gguf_close(g);
    /* a truncated data section start (tensors present, file ends before the padding) */
    b.len = 0; b_header(&b, 3, 1, 0); b_tensor_info(&b, "w", 1, (const uint64_t[]){0}, 0, 0);
    EXPECT_REJECT(&b, "data section");
    /* unknown tensor types are kept (for a later, better message) but must be in bounds */
    tensor_file(&b, 1, one, d1, ne8, (const uint32_t[]){23}, off0, 32);
    g = open_bytes(b.p, b.len);
    CHECK(g && g->tensors[0].type == 23 && g->tensors[0].nbytes == 0 && g->tensors[0].data,
          "unknown type: %s", citer_error());
    CHECK(ggml_type_name(23) == NULL, "type 23 has a name");
    gguf_close(g);
    tensor_file(&b, 1, one, d1, ne8, (const uint32_t[]){0xffffffffu}, (const uint64_t[]){64}, 32);
    EXPECT_REJECT(&b, "runs past the end");
    /* 0-dimensional tensor: a single value */
    tensor_file(&b, 1, one, (const uint32_t[]){0}, ne8, f32, off0, 32);
    g = open_bytes(b.p, b.len);
    CHECK(g && g->tensors[0].n_dims == 1 && g->tensors[0].nbytes == 4, "0-dim: %s", citer_error());
    gguf_close(g);
    free(b.p);
}

static void test_type_table(void)
{
    struct { int type; const char *name; uint64_t be, bb; } want[] = {
        {GGML_F32, "f32", 1, 4},      {GGML_F16, "f16", 1, 2},      {GGML_BF16, "bf16", 1, 2},
        {GGML_Q4_0, "q4_0", 32, 18},  {GGML_Q4_1, "q4_1", 32, 20},  {GGML_Q5_0, "q5_0", 32, 22},
        {GGML_Q5_1, "q5_1", 32, 24},  {GGML_Q8_0, "q8_0", 32, 34},  {GGML_Q8_1, "q8_1", 32, 36},
        {GGML_Q2_K, "q2_k", 256, 84}, {GGML_Q3_K, "q3_k", 256, 110}, {GGML_Q4_K, "q4_k", 256, 144},
        {GGML_Q5_K, "q5_k", 256, 176}, {GGML_Q6_K, "q6_k", 256, 210}, {GGML_Q8_K, "q8_k", 256, 292},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        uint64_t be, bb;
        CHECK(ggml_type_block(want[k].type, &be, &bb) == 0 && be == want[k].be && bb == want[k].bb,
              "%s geometry", want[k].name);
        const char *n = ggml_type_name(want[k].type);
        CHECK(n && strcmp(n, want[k].name) == 0, "type %d name %s", want[k].type, n ? n : "(null)");
    }
    uint64_t be = 7, bb = 7;
    CHECK(ggml_type_block(4, &be, &bb) == -1 && be == 0 && bb == 0, "removed type 4");
    CHECK(ggml_type_name(-1) == NULL, "negative type");
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_fixture_models);
    RUN(test_fixture_q8_0_matches_f32);
    RUN(test_fixture_vocab_gpt2);
    RUN(test_fixture_vocab_llama_spm);
    RUN(test_fixture_truncations);
    RUN(test_roundtrip);
    RUN(test_writer_exact_bytes);
    RUN(test_writer_errors);
    RUN(test_writer_alignment);
    RUN(test_all_value_types);
    RUN(test_truncations);
    RUN(test_byte_flips);
    RUN(test_bad_headers);
    RUN(test_bad_metadata);
    RUN(test_bad_tensors);
    return t_exit();
}
