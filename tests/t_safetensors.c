/* Tests for lib/safetensors: the fixture checkpoints and references (facts from their README),
 * cross-checks against the GGUF files holding the same weights, round trips, sharded
 * directories, and corrupt or hostile files, which must fail with a message, never crash. */
#include "check.h"
#include "gguf.h"
#include "safetensors.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

/* ---- helpers ---- */

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

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

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

static st_file *open_bytes(const void *p, size_t n)
{
    const char *path = tmp_path("case.safetensors");
    write_bytes(path, p, n);
    return st_open(path);
}

/* A file from a JSON header (not padded) and data_len bytes of data. */
static st_file *open_header(const char *json, size_t data_len)
{
    size_t hl = strlen(json);
    size_t n = 8 + hl + data_len;
    uint8_t *p = calloc(1, n);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, json, hl);
    st_file *f = open_bytes(p, n);
    free(p);
    return f;
}

#define EXPECT_REJECT_HEADER(json, data_len, want)                                              \
    do {                                                                                        \
        st_file *f_ = open_header(json, data_len);                                              \
        CHECK(!f_, "accepted %s", json);                                                        \
        if (f_) st_close(f_);                                                                   \
        else CHECK(strstr(citer_error(), want), "%s: message '%s' lacks '%s'", json,            \
                   citer_error(), want);                                                        \
    } while (0)

static void check_in_bounds(const st_file *f)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        int ok = 0;
        for (int k = 0; k < f->n_files; k++)
            if ((const uint8_t *)t->data >= f->maps[k].data &&
                (const uint8_t *)t->data + t->nbytes <= f->maps[k].data + f->maps[k].size)
                ok = 1;
        CHECK(ok, "tensor %s out of bounds", t->name);
    }
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

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- fixtures ---- */

struct hf_facts {
    const char *dir;
    int dtype;
    uint64_t D, L, H, KV, hd, FF, V;
    int tied, bias, qk_norm;
};

static const struct hf_facts hf[] = {
    {"models/stories260K/hf", ST_F32, 64, 5, 8, 4, 8, 172, 512, 1, 0, 0},
    {"models/saltyduckegg-llama2xs/hf", ST_F32, 64, 5, 8, 4, 8, 192, 512, 1, 0, 0},
    {"models/llama-gqa/hf", ST_BF16, 128, 3, 8, 2, 16, 352, 1000, 0, 0, 0},
    {"models/qwen2/hf", ST_F16, 128, 3, 4, 2, 32, 384, 1000, 1, 1, 0},
    {"models/qwen3/hf", ST_BF16, 96, 3, 4, 2, 32, 256, 1000, 1, 0, 1},
};

static void check_st(const st_file *f, const char *name, int dtype, int n_dims, uint64_t a,
                     uint64_t b)
{
    const st_tensor *t = st_find(f, name);
    CHECK(t, "tensor %s missing", name);
    if (!t) return;
    CHECK(t->dtype == dtype, "%s: dtype %s", name, st_dtype_name(t->dtype));
    CHECK(t->n_dims == n_dims && t->shape[0] == a && (n_dims < 2 || t->shape[1] == b),
          "%s: shape [%" PRIu64 ", %" PRIu64 "] (%d dims), expected [%" PRIu64 ", %" PRIu64 "]",
          name, t->shape[0], t->shape[1], t->n_dims, a, b);
    CHECK(t->nbytes == a * (n_dims > 1 ? b : 1) * st_dtype_size(dtype), "%s: nbytes", name);
}

static void test_fixture_hf(void)
{
    int found = 0;
    for (size_t m = 0; m < sizeof hf / sizeof *hf; m++) {
        const struct hf_facts *h = &hf[m];
        char rel[256];
        snprintf(rel, sizeof rel, "%s/model.safetensors", h->dir);
        const char *file = t_fixture(rel);
        const char *dir = t_fixture(h->dir);
        if (!file || !dir) continue;
        found++;
        st_file *f = st_open(file);
        CHECK(f, "%s: %s", rel, citer_error());
        if (!f) continue;
        uint64_t per_layer = 9 + (h->bias ? 3 : 0) + (h->qk_norm ? 2 : 0);
        CHECK(f->n_tensors == h->L * per_layer + 2 + (h->tied ? 0 : 1), "%s: %zu tensors", rel,
              f->n_tensors);
        CHECK((st_find(f, "lm_head.weight") != NULL) == !h->tied, "%s: lm_head", rel);
        check_st(f, "model.embed_tokens.weight", h->dtype, 2, h->V, h->D);
        check_st(f, "model.norm.weight", h->dtype, 1, h->D, 0);
        if (!h->tied) check_st(f, "lm_head.weight", h->dtype, 2, h->V, h->D);
        for (uint64_t l = 0; l < h->L; l++) {
            char n[160];
#define T(suffix, nd, a, b)                                                                    \
    do {                                                                                       \
        snprintf(n, sizeof n, "model.layers.%" PRIu64 ".%s", l, suffix);                       \
        check_st(f, n, h->dtype, nd, a, b);                                                    \
    } while (0)
            T("input_layernorm.weight", 1, h->D, 0);
            T("post_attention_layernorm.weight", 1, h->D, 0);
            T("self_attn.q_proj.weight", 2, h->H * h->hd, h->D);
            T("self_attn.k_proj.weight", 2, h->KV * h->hd, h->D);
            T("self_attn.v_proj.weight", 2, h->KV * h->hd, h->D);
            T("self_attn.o_proj.weight", 2, h->D, h->H * h->hd);
            T("mlp.gate_proj.weight", 2, h->FF, h->D);
            T("mlp.up_proj.weight", 2, h->FF, h->D);
            T("mlp.down_proj.weight", 2, h->D, h->FF);
            if (h->bias) {
                T("self_attn.q_proj.bias", 1, h->H * h->hd, 0);
                T("self_attn.k_proj.bias", 1, h->KV * h->hd, 0);
                T("self_attn.v_proj.bias", 1, h->KV * h->hd, 0);
            }
            if (h->qk_norm) {
                T("self_attn.q_norm.weight", 1, h->hd, 0);
                T("self_attn.k_norm.weight", 1, h->hd, 0);
            }
#undef T
        }
        CHECK(st_find(f, "no.such.tensor") == NULL, "missing tensor found");
        check_in_bounds(f);
        /* the directory form opens the same file */
        st_file *d = st_open(dir);
        CHECK(d && d->n_tensors == f->n_tensors, "%s as a directory: %s", h->dir,
              d ? "different" : citer_error());
        if (d) {
            const st_tensor *a = st_find(f, "model.norm.weight"), *b = st_find(d, "model.norm.weight");
            CHECK(a && b && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0,
                  "directory data");
        }
        st_close(d);
        st_close(f);
    }
    if (!found) SKIP(NO_FIXTURES);
}

static void test_fixture_refs(void)
{
    struct { const char *file; uint64_t T, V, D; int bos_first; } refs[] = {
        {"models/stories260K/stories260K.ref.safetensors", 40, 512, 64, 1},
        {"models/saltyduckegg-llama2xs/saltyduckegg-llama2xs.ref.safetensors", 40, 512, 64, 1},
        {"models/llama-gqa/llama-gqa.ref.safetensors", 40, 1000, 128, 0},
        {"models/llama-gqa/llama-gqa-f16.ref.safetensors", 40, 1000, 128, 0},
        {"models/llama-gqa/llama-gqa-q8_0.ref.safetensors", 40, 1000, 128, 0},
        {"models/qwen2/qwen2.ref.safetensors", 36, 1000, 128, 0},
        {"models/qwen3/qwen3.ref.safetensors", 32, 1000, 96, 0},
    };
    int found = 0;
    for (size_t k = 0; k < sizeof refs / sizeof *refs; k++) {
        const char *path = t_fixture(refs[k].file);
        if (!path) continue;
        found++;
        st_file *f = st_open(path);
        CHECK(f, "%s: %s", refs[k].file, citer_error());
        if (!f) continue;
        check_st(f, "tokens", ST_I32, 1, refs[k].T, 0);
        check_st(f, "logits", ST_F32, 2, refs[k].T, refs[k].V);
        check_st(f, "hidden", ST_F32, 2, refs[k].T, refs[k].D);
        check_st(f, "greedy", ST_I32, 1, 32, 0);
        check_st(f, "logits_margin", ST_F32, 1, refs[k].T, 0);
        check_st(f, "greedy_margin", ST_F32, 1, 32, 0);
        const st_tensor *tok = st_find(f, "tokens");
        if (tok && refs[k].bos_first) {
            int32_t first;
            memcpy(&first, tok->data, 4);
            CHECK(first == 1, "%s: first token %d, expected BOS 1", refs[k].file, first);
        }
        /* __metadata__ has one key, "fixture", whose value is a JSON document */
        char *meta = st_metadata(f, "fixture");
        CHECK(meta, "%s: no fixture metadata: %s", refs[k].file, citer_error());
        json_object *j = meta ? json_tokener_parse(meta) : NULL;
        CHECK(j && json_object_is_type(j, json_type_object), "%s: fixture metadata is not JSON",
              refs[k].file);
        json_object_put(j);
        free(meta);
        CHECK(st_metadata(f, "no-such-key") == NULL, "missing metadata key");
        check_in_bounds(f);
        st_close(f);
    }
    if (!found) SKIP(NO_FIXTURES);
}

/* hf/ and the f32 GGUF hold identical weight values (README); unpermuted tensors compare
 * element by element after widening f16/bf16 to f32. */
static void test_fixture_same_weights_as_gguf(void)
{
    struct { const char *st, *gguf, *hf_name, *gguf_name; } pairs[] = {
        {"models/stories260K/hf/model.safetensors", "models/stories260K/stories260K-f32.gguf",
         "model.embed_tokens.weight", "token_embd.weight"},
        {"models/stories260K/hf/model.safetensors", "models/stories260K/stories260K-f32.gguf",
         "model.layers.2.mlp.down_proj.weight", "blk.2.ffn_down.weight"},
        {"models/llama-gqa/hf/model.safetensors", "models/llama-gqa/llama-gqa-f32.gguf",
         "lm_head.weight", "output.weight"},
        {"models/llama-gqa/hf/model.safetensors", "models/llama-gqa/llama-gqa-f32.gguf",
         "model.layers.1.self_attn.v_proj.weight", "blk.1.attn_v.weight"},
        {"models/qwen2/hf/model.safetensors", "models/qwen2/qwen2-f32.gguf",
         "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
        {"models/qwen2/hf/model.safetensors", "models/qwen2/qwen2-f32.gguf",
         "model.layers.2.self_attn.k_proj.bias", "blk.2.attn_k.bias"},
    };
    int found = 0;
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
        const char *sp = t_fixture(pairs[k].st), *gp = t_fixture(pairs[k].gguf);
        if (!sp || !gp) continue;
        found++;
        st_file *f = st_open(sp);
        gguf_file *g = gguf_open(gp);
        CHECK(f && g, "open: %s", citer_error());
        const st_tensor *a = f ? st_find(f, pairs[k].hf_name) : NULL;
        const gguf_tensor *b = g ? gguf_find_tensor(g, pairs[k].gguf_name) : NULL;
        CHECK(a && b && b->type == GGML_F32, "%s / %s", pairs[k].hf_name, pairs[k].gguf_name);
        if (a && b && b->type == GGML_F32) {
            uint64_t n = a->nbytes / st_dtype_size(a->dtype), bad = 0;
            CHECK(n * 4 == b->nbytes, "%s: element counts differ", pairs[k].hf_name);
            for (uint64_t i = 0; i < n && n * 4 == b->nbytes; i++) {
                float want, got;
                memcpy(&want, (const uint8_t *)b->data + i * 4, 4);
                if (a->dtype == ST_F32) memcpy(&got, (const uint8_t *)a->data + i * 4, 4);
                else {
                    uint16_t h;
                    memcpy(&h, (const uint8_t *)a->data + i * 2, 2);
                    got = a->dtype == ST_F16 ? half_to_float(h) : bf16_to_float(h);
                }
                if (got != want) bad++;
            }
            CHECK(bad == 0, "%s: %" PRIu64 " of %" PRIu64 " values differ", pairs[k].hf_name, bad, n);
        }
        st_close(f);
        gguf_close(g);
    }
    if (!found) SKIP(NO_FIXTURES);
}

/* ---- round trips ---- */

static void test_roundtrip(void)
{
    st_writer *w = st_writer_new();
    st_writer_metadata(w, "format", "pt");
    st_writer_metadata(w, "note", "quote \" slash / newline \n unicode \xc3\xa9");
    st_writer_metadata(w, "format", "pt2"); /* replaces */
    float f32[6] = {1, -2, 3.5f, 0, 1e-30f, 6};
    uint64_t s23[2] = {2, 3};
    st_add(w, "z.f32", ST_F32, 2, s23, f32);
    uint16_t h[3] = {0x3c00, 0xc000, 0x7c00};
    uint64_t s3[1] = {3};
    st_add(w, "a.f16", ST_F16, 1, s3, h);
    st_add(w, "b.bf16", ST_BF16, 1, s3, h);
    int64_t i64[2] = {-1, INT64_MAX};
    uint64_t s2[1] = {2};
    st_add(w, "c.i64", ST_I64, 1, s2, i64);
    int32_t scalar = 42;
    st_add(w, "d.scalar", ST_I32, 0, NULL, &scalar);
    uint64_t s0[2] = {0, 5};
    st_add(w, "e.empty", ST_U8, 2, s0, NULL);
    uint8_t u8[3] = {1, 2, 255};
    st_add(w, "f.u8", ST_U8, 1, s3, u8);
    st_add(w, "g.bool", ST_BOOL, 1, s3, u8);
    double f64[2] = {0.1, -1e300};
    st_add(w, "h.f64", ST_F64, 1, s2, f64);
    int8_t i8[1] = {-128};
    uint64_t s111[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    st_add(w, "i.i8.8d", ST_I8, 8, s111, i8);
    const char *path = tmp_path("rt.safetensors");
    REQUIRE(st_write(w, path) == 0, "write: %s", citer_error());
    st_writer_free(w);

    /* The raw layout: header length is a multiple of 8, padded with spaces, names sorted. */
    size_t n;
    uint8_t *raw = slurp(path, &n);
    REQUIRE(raw && n >= 8, "read back");
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK(hl % 8 == 0 && 8 + hl <= n, "header length %" PRIu64, hl);
    char *hdr = calloc(1, hl + 1);
    memcpy(hdr, raw + 8, hl);
    size_t tl = strlen(hdr);
    while (tl && hdr[tl - 1] == ' ') tl--;
    CHECK(tl && hdr[tl - 1] == '}', "header padding is not spaces");
    json_object *j = json_tokener_parse(hdr);
    CHECK(j && json_object_is_type(j, json_type_object), "header is not a JSON object");
    uint64_t prev_end = 0;
    const char *prev = "";
    json_object_object_foreach(j, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) continue;
        CHECK(strcmp(prev, key) < 0, "names not sorted: %s after %s", key, prev);
        json_object *offs;
        CHECK(json_object_object_get_ex(val, "data_offsets", &offs), "offsets");
        CHECK((uint64_t)json_object_get_int64(json_object_array_get_idx(offs, 0)) == prev_end,
              "%s does not follow the previous tensor", key);
        prev_end = (uint64_t)json_object_get_int64(json_object_array_get_idx(offs, 1));
        prev = key;
    }
    CHECK(8 + hl + prev_end == n, "data does not end the file");
    json_object_put(j);
    free(hdr);
    free(raw);

    st_file *f = st_open(path);
    REQUIRE(f, "open: %s", citer_error());
    CHECK(f->n_tensors == 10, "%zu tensors", f->n_tensors);
    for (size_t i = 1; i < f->n_tensors; i++)
        CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0, "tensors sorted by name");
    const st_tensor *t = st_find(f, "z.f32");
    CHECK(t && t->dtype == ST_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
          t->nbytes == 24 && memcmp(t->data, f32, 24) == 0, "z.f32");
    t = st_find(f, "a.f16");
    CHECK(t && t->dtype == ST_F16 && t->nbytes == 6 && memcmp(t->data, h, 6) == 0, "a.f16");
    t = st_find(f, "b.bf16");
    CHECK(t && t->dtype == ST_BF16 && memcmp(t->data, h, 6) == 0, "b.bf16");
    t = st_find(f, "c.i64");
    CHECK(t && t->dtype == ST_I64 && memcmp(t->data, i64, 16) == 0, "c.i64");
    t = st_find(f, "d.scalar");
    CHECK(t && t->n_dims == 0 && t->nbytes == 4 && memcmp(t->data, &scalar, 4) == 0, "scalar");
    t = st_find(f, "e.empty");
    CHECK(t && t->n_dims == 2 && t->nbytes == 0, "empty");
    t = st_find(f, "g.bool");
    CHECK(t && t->dtype == ST_BOOL && memcmp(t->data, u8, 3) == 0, "bool");
    t = st_find(f, "h.f64");
    CHECK(t && t->dtype == ST_F64 && memcmp(t->data, f64, 16) == 0, "f64");
    t = st_find(f, "i.i8.8d");
    CHECK(t && t->n_dims == 8 && t->nbytes == 1 && *(const int8_t *)t->data == -128, "8 dims");
    char *m = st_metadata(f, "format");
    CHECK(m && strcmp(m, "pt2") == 0, "metadata format: %s", m ? m : "(null)");
    free(m);
    m = st_metadata(f, "note");
    CHECK(m && strcmp(m, "quote \" slash / newline \n unicode \xc3\xa9") == 0, "note");
    free(m);
    check_in_bounds(f);
    st_close(f);

    /* no metadata, no tensors: still a valid file */
    w = st_writer_new();
    REQUIRE(st_write(w, path) == 0, "%s", citer_error());
    st_writer_free(w);
    f = st_open(path);
    CHECK(f && f->n_tensors == 0 && f->metadata_json == NULL, "empty file: %s", citer_error());
    CHECK(f && st_metadata(f, "x") == NULL, "metadata of a file without any");
    st_close(f);
}

/* The bytes the format specifies for one F32 tensor "a" = [1.0]. */
static void test_writer_exact_bytes(void)
{
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    uint8_t want[128] = {0};
    want[0] = (uint8_t)padded;
    memcpy(want + 8, json, jl);
    memset(want + 8 + jl, ' ', padded - jl);
    const uint8_t one[4] = {0x00, 0x00, 0x80, 0x3f};
    memcpy(want + 8 + padded, one, 4);
    size_t wn = 8 + padded + 4;

    st_writer *w = st_writer_new();
    float v = 1.0f;
    uint64_t shape = 1;
    st_add(w, "a", ST_F32, 1, &shape, &v);
    const char *path = tmp_path("exact.safetensors");
    REQUIRE(st_write(w, path) == 0, "%s", citer_error());
    st_writer_free(w);
    size_t n;
    uint8_t *got = slurp(path, &n);
    REQUIRE(got, "read");
    CHECK(n == wn && memcmp(got, want, wn) == 0, "bytes differ (%zu vs %zu): %.*s", n, wn,
          (int)(n > 8 ? n - 8 : 0), got + 8);
    free(got);
}

static void test_writer_errors(void)
{
    uint64_t s[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t d[8] = {0};
    struct { int dtype, n_dims; const char *name, *name2, *want; } cases[] = {
        {99, 1, "x", NULL, "dtype"},
        {ST_U8, 9, "x", NULL, "dimensions"},
        {ST_U8, 1, "__metadata__", NULL, "reserved"},
        {ST_U8, 1, "x", "x", "duplicate"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        st_writer *w = st_writer_new();
        st_add(w, cases[k].name, cases[k].dtype, cases[k].n_dims, s, d);
        if (cases[k].name2) st_add(w, cases[k].name2, cases[k].dtype, cases[k].n_dims, s, d);
        CHECK(st_write(w, tmp_path("bad.safetensors")) == -1 && strstr(citer_error(), cases[k].want),
              "case %zu: %s", k, citer_error());
        st_writer_free(w);
    }
    CHECK(access(tmp_path("bad.safetensors"), F_OK) != 0, "a failed write left a file");
    st_writer *w = st_writer_new();
    CHECK(st_write(w, "/nonexistent-dir/x.safetensors") == -1 && citer_error()[0], "bad path");
    st_writer_free(w);
}

/* ---- sharded directories ---- */

static void write_shard(const char *path, const char *const *names, int n, float base)
{
    st_writer *w = st_writer_new();
    for (int i = 0; i < n; i++) {
        float v[4] = {base + (float)i, 1, 2, 3};
        uint64_t s[2] = {2, 2};
        st_add(w, names[i], ST_F32, 2, s, v);
    }
    if (st_write(w, path)) {
        printf("  write %s: %s\n", path, citer_error());
        exit(1);
    }
    st_writer_free(w);
}

static const char *shard_dir(const char *name)
{
    const char *d = tmp_path(name);
    mkdir(d, 0755);
    return d;
}

static char *in_dir(const char *dir, const char *name)
{
    static char buf[4][4400];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void test_sharded(void)
{
    const char *dir = shard_dir("sharded");
    const char *s1[] = {"a", "c"}, *s2[] = {"b"};
    write_shard(in_dir(dir, "model-00001-of-00002.safetensors"), s1, 2, 10);
    write_shard(in_dir(dir, "model-00002-of-00002.safetensors"), s2, 1, 20);
    write_text(in_dir(dir, "model.safetensors.index.json"),
               "{\"metadata\": {\"total_size\": 48}, \"weight_map\": {"
               "\"a\": \"model-00001-of-00002.safetensors\","
               "\"b\": \"model-00002-of-00002.safetensors\","
               "\"c\": \"model-00001-of-00002.safetensors\"}}");
    st_file *f = st_open(dir);
    REQUIRE(f, "open: %s", citer_error());
    CHECK(f->n_files == 2 && f->n_tensors == 3, "%d files, %zu tensors", f->n_files, f->n_tensors);
    const char *names[] = {"a", "b", "c"};
    float firsts[] = {10, 20, 11};
    for (int i = 0; i < 3; i++) {
        const st_tensor *t = st_find(f, names[i]);
        float v = 0;
        if (t) memcpy(&v, t->data, 4);
        CHECK(t && t->nbytes == 16 && v == firsts[i], "tensor %s: %g", names[i], v);
    }
    check_in_bounds(f);
    st_close(f);

    /* a weight_map entry pointing at the wrong shard */
    write_text(in_dir(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"a\": \"model-00002-of-00002.safetensors\","
               "\"b\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(!st_open(dir) && strstr(citer_error(), "'a'"), "wrong shard: %s", citer_error());
    /* a shard that is not there */
    write_text(in_dir(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
               "\"x\": \"model-00003-of-00003.safetensors\"}}");
    CHECK(!st_open(dir) && strstr(citer_error(), "model-00003-of-00003.safetensors"),
          "missing shard: %s", citer_error());
    /* path tricks in shard names */
    write_text(in_dir(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"a\": \"../sharded/model-00001-of-00002.safetensors\"}}");
    CHECK(!st_open(dir) && strstr(citer_error(), "file name"), "path in shard: %s", citer_error());
    /* not JSON, no weight_map, a non-string shard, an empty map */
    const char *bad_index[] = {"{\"weight_map\": {", "{}", "{\"weight_map\": {\"a\": 1}}",
                               "{\"weight_map\": {}}", "[]"};
    for (size_t k = 0; k < sizeof bad_index / sizeof *bad_index; k++) {
        write_text(in_dir(dir, "model.safetensors.index.json"), bad_index[k]);
        st_file *g = st_open(dir);
        CHECK(!g && strstr(citer_error(), "model.safetensors.index.json"), "index %s: %s",
              bad_index[k], citer_error());
        st_close(g);
    }
    /* the same tensor in two shards */
    write_shard(in_dir(dir, "model-00002-of-00002.safetensors"), s1, 1, 20);
    write_text(in_dir(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
               "\"c\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(!st_open(dir), "duplicate across shards accepted");
    /* a corrupt shard is named in the message */
    write_bytes(in_dir(dir, "model-00002-of-00002.safetensors"), "\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
    CHECK(!st_open(dir) && strstr(citer_error(), "model-00002-of-00002.safetensors"),
          "corrupt shard: %s", citer_error());

    /* model.safetensors wins over an index */
    write_shard(in_dir(dir, "model.safetensors"), s2, 1, 5);
    f = st_open(dir);
    CHECK(f && f->n_tensors == 1 && st_find(f, "b"), "model.safetensors preferred: %s",
          citer_error());
    st_close(f);

    const char *empty = shard_dir("empty");
    CHECK(!st_open(empty) && strstr(citer_error(), "model.safetensors"), "empty dir: %s",
          citer_error());
}

/* ---- corrupt and hostile files ---- */

static uint8_t *valid_file(size_t *n)
{
    st_writer *w = st_writer_new();
    st_writer_metadata(w, "format", "pt");
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint64_t s[2] = {3, 2};
    st_add(w, "a", ST_F32, 2, s, a);
    st_add(w, "b", ST_F16, 2, s, a);
    const char *path = tmp_path("valid.safetensors");
    if (st_write(w, path)) exit(1);
    st_writer_free(w);
    return slurp(path, n);
}

static void test_truncations(void)
{
    size_t n;
    uint8_t *p = valid_file(&n);
    REQUIRE(p, "valid file");
    st_file *f = open_bytes(p, n);
    REQUIRE(f, "%s", citer_error());
    st_close(f);
    for (size_t cut = 0; cut < n; cut++) {
        f = open_bytes(p, cut);
        CHECK(!f, "prefix of %zu of %zu bytes accepted", cut, n);
        if (f) st_close(f);
        else CHECK(citer_error()[0], "no message");
        if (t_failed) break;
    }
    free(p);
}

static unsigned rng_state = 777;
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
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | p[i];
    uint8_t *q = malloc(n);
    int rejected = 0;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(q, p, n);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng() % (8 + hl);
            if (rng() % 2) q[at] ^= (uint8_t)(1u << (rng() % 8));
            else q[at] = (uint8_t)"0123456789[]{},:\"-e.F "[rng() % 23];
        }
        st_file *f = open_bytes(q, n);
        if (f) {
            check_in_bounds(f);
            st_close(f);
        } else {
            rejected++;
            CHECK(citer_error()[0], "rejected without a message");
        }
        if (t_failed) break;
    }
    CHECK(rejected > 100, "only %d of 2000 corrupted files rejected", rejected);
    free(q);
    free(p);
}

static void test_bad_headers(void)
{
    uint8_t b[64] = {0};
    /* header length 2^63 */
    b[7] = 0x80;
    st_file *f = open_bytes(b, 64);
    CHECK(!f && strstr(citer_error(), "header length 9223372036854775808"), "%s", citer_error());
    /* header length past the end */
    memset(b, 0, sizeof b);
    b[0] = 100;
    memcpy(b + 8, "{}", 2);
    f = open_bytes(b, 64);
    CHECK(!f && strstr(citer_error(), "runs past the end"), "%s", citer_error());
    /* header length 101 MB, in a small file */
    memset(b, 0, sizeof b);
    uint64_t big = 101ull * 1000 * 1000;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(big >> (8 * i));
    f = open_bytes(b, 64);
    CHECK(!f && strstr(citer_error(), "limit"), "%s", citer_error());
    f = open_bytes(b, 5);
    CHECK(!f && strstr(citer_error(), "too short"), "%s", citer_error());
    f = open_bytes(b, 0);
    CHECK(!f, "empty file");
    CHECK(!st_open(tmp_path("no-such.safetensors")) && citer_error()[0], "missing file");
    st_close(f);

    EXPECT_REJECT_HEADER("", 0, "does not start");
    EXPECT_REJECT_HEADER("[1,2]", 0, "does not start");
    EXPECT_REJECT_HEADER("{\"a\":", 0, "invalid JSON");
    EXPECT_REJECT_HEADER("{\"a\":{}} x", 0, "after the JSON header");
    EXPECT_REJECT_HEADER("{} {}", 0, "after the JSON header");
    EXPECT_REJECT_HEADER("{\"a\":1}", 0, "not an object");
    EXPECT_REJECT_HEADER("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                         "unsupported dtype F8_E4M3");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "shape");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                         "shape[0]");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
                         "shape[0]");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                         "shape[0]");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                         "\"data_offsets\":[0,1]}}", 1, "9 dimensions");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                         "data_offsets");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                         "outside");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4,
                         "outside");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                         "data_offsets");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                         "\"data_offsets\":[18446744073709551612,18446744073709551615]}}", 4,
                         "outside");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                         "need 8");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                         "\"data_offsets\":[0,4]}}", 4, "2^64");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                         "\"data_offsets\":[0,0]}}", 4, "");
    EXPECT_REJECT_HEADER("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                         "overlap");
    EXPECT_REJECT_HEADER("{\"__metadata__\":[1]}", 0, "__metadata__");
    EXPECT_REJECT_HEADER("{\"evil\\nname\":{\"dtype\":\"X\\r\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                         1, "tensor 'evil?name': unsupported dtype X?");
    /* deep nesting must not recurse without bound */
    char deep[4096];
    size_t k = 0;
    deep[k++] = '{';
    memcpy(deep + k, "\"a\":", 4);
    k += 4;
    for (int i = 0; i < 1500; i++) deep[k++] = '[';
    deep[k] = 0;
    EXPECT_REJECT_HEADER(deep, 0, "JSON");

    /* valid: spaces after the object, zero-size tensors sharing an offset, a scalar */
    f = open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"c\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[4,4]}}     ", 4);
    CHECK(f && f->n_tensors == 3, "valid header rejected: %s", citer_error());
    st_close(f);
}

static void test_dtype_table(void)
{
    const char *names[] = {"F32", "F16", "BF16", "I32", "I64", "U8", "I8", "F64", "BOOL"};
    size_t sizes[] = {4, 2, 2, 4, 8, 1, 1, 8, 1};
    int ids[] = {ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8, ST_I8, ST_F64, ST_BOOL};
    for (int i = 0; i < 9; i++) {
        CHECK(strcmp(st_dtype_name(ids[i]), names[i]) == 0, "name %d", i);
        CHECK(st_dtype_size(ids[i]) == sizes[i], "size %d", i);
    }
    CHECK(st_dtype_name(-1) == NULL && st_dtype_name(9) == NULL && st_dtype_size(9) == 0, "bad");
}

int main(void)
{
    RUN(test_dtype_table);
    RUN(test_fixture_hf);
    RUN(test_fixture_refs);
    RUN(test_fixture_same_weights_as_gguf);
    RUN(test_roundtrip);
    RUN(test_writer_exact_bytes);
    RUN(test_writer_errors);
    RUN(test_sharded);
    RUN(test_truncations);
    RUN(test_byte_flips);
    RUN(test_bad_headers);
    return t_exit();
}
