/* gguf: reader and writer for GGUF v2/v3 files (ggml's docs/gguf.md).
 *
 * Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/value pairs, the tensor infos,
 * zero padding to the alignment (general.alignment, default 32), then the tensor data.
 * Every number is little-endian. The reader maps the file and checks every length and offset
 * against the bytes that remain, so a hostile file can only produce an error message. */
#include "gguf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (1u << 30)
#define GGUF_MAX_ARRAY_DEPTH 8 /* nested arrays: the spec allows them, nobody uses them deeply */

/* ---- type tables ---- */

struct type_info {
    int type;
    const char *name;
    uint64_t block_elems, block_bytes;
};

/* Block geometry from the ggml quantization formats: e.g. q8_0 is an f16 scale plus 32 int8
 * (34 bytes per 32 values); the k-quants work on super-blocks of 256 values. */
static const struct type_info type_table[] = {
    {GGML_F32, "f32", 1, 4},        {GGML_F16, "f16", 1, 2},
    {GGML_Q4_0, "q4_0", 32, 18},    {GGML_Q4_1, "q4_1", 32, 20},
    {GGML_Q5_0, "q5_0", 32, 22},    {GGML_Q5_1, "q5_1", 32, 24},
    {GGML_Q8_0, "q8_0", 32, 34},    {GGML_Q8_1, "q8_1", 32, 36},
    {GGML_Q2_K, "q2_k", 256, 84},   {GGML_Q3_K, "q3_k", 256, 110},
    {GGML_Q4_K, "q4_k", 256, 144},  {GGML_Q5_K, "q5_k", 256, 176},
    {GGML_Q6_K, "q6_k", 256, 210},  {GGML_Q8_K, "q8_k", 256, 292},
    {24, "i8", 1, 1},               {25, "i16", 1, 2},
    {26, "i32", 1, 4},              {27, "i64", 1, 8},
    {28, "f64", 1, 8},              {GGML_BF16, "bf16", 1, 2},
};

static const struct type_info *find_type(int type)
{
    for (size_t i = 0; i < sizeof type_table / sizeof *type_table; i++)
        if (type_table[i].type == type) return &type_table[i];
    return NULL;
}

const char *ggml_type_name(int type)
{
    const struct type_info *t = find_type(type);
    return t ? t->name : NULL;
}

int ggml_type_block(int type, uint64_t *block_elems, uint64_t *block_bytes)
{
    const struct type_info *t = find_type(type);
    if (block_elems) *block_elems = t ? t->block_elems : 0;
    if (block_bytes) *block_bytes = t ? t->block_bytes : 0;
    return t ? 0 : -1;
}

static const char *value_type_name(int type)
{
    static const char *names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return type >= 0 && type <= GGUF_FLOAT64 ? names[type] : "unknown";
}

/* Size of a fixed-size value type; 0 for strings, arrays and unknown types. */
static uint64_t scalar_size(int type)
{
    switch (type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int is_int_type(int type)
{
    switch (type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_UINT16: case GGUF_INT16: case GGUF_UINT32:
    case GGUF_INT32: case GGUF_UINT64: case GGUF_INT64: return 1;
    default: return 0;
    }
}

static int is_signed_type(int type)
{
    return type == GGUF_INT8 || type == GGUF_INT16 || type == GGUF_INT32 || type == GGUF_INT64;
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A name from the file, made safe for a one-line message: at most 64 bytes, control
 * characters replaced. */
typedef struct {
    char s[72];
} shown;

static shown show(gguf_str str)
{
    shown r;
    size_t n = str.len > 64 ? 64 : (size_t)str.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.ptr[i];
        r.s[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    strcpy(r.s + n, str.len > 64 ? "..." : "");
    return r;
}

/* Decode one fixed-size scalar at p into the kv's value union. */
static void decode_scalar(int type, const uint8_t *p, gguf_kv *kv)
{
    uint64_t raw = load_le(p, (int)scalar_size(type));
    switch (type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64: kv->v.u = raw; break;
    case GGUF_INT8: kv->v.i = (int8_t)raw; break;
    case GGUF_INT16: kv->v.i = (int16_t)raw; break;
    case GGUF_INT32: kv->v.i = (int32_t)raw; break;
    case GGUF_INT64: kv->v.i = (int64_t)raw; break;
    case GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        kv->v.f = f;
        break;
    }
    case GGUF_FLOAT64: memcpy(&kv->v.f, &raw, 8); break;
    case GGUF_BOOL: kv->v.b = raw != 0; break;
    }
}

/* ---- reading with a bounds-checked cursor ---- */

typedef struct {
    const uint8_t *base;
    uint64_t size, pos;
    char what[160]; /* what is being read, for error messages */
} cursor;

static int truncated(cursor *c)
{
    citer_set_error("truncated at byte %" PRIu64 " (reading %s)", c->pos, c->what);
    return -1;
}

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static int read_uint(cursor *c, int n, uint64_t *out)
{
    if (remaining(c) < (uint64_t)n) return truncated(c);
    *out = load_le(c->base + c->pos, n);
    c->pos += (uint64_t)n;
    return 0;
}

static int read_u32(cursor *c, uint32_t *out)
{
    uint64_t v;
    if (read_uint(c, 4, &v)) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int read_str(cursor *c, gguf_str *s)
{
    uint64_t len;
    uint64_t start = c->pos;
    if (read_uint(c, 8, &len)) return -1;
    if (len > remaining(c)) {
        citer_set_error("string length %" PRIu64 " at byte %" PRIu64
                        " runs past the end of the file (%" PRIu64 " bytes; reading %s)",
                        len, start, c->size, c->what);
        return -1;
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

/* Skip over the elements of an array of n values of element type t, checking bounds. */
static int skip_array(cursor *c, int t, uint64_t n, int depth)
{
    uint64_t sz = scalar_size(t);
    if (sz) {
        if (n > remaining(c) / sz) {
            citer_set_error("array of %" PRIu64 " %s at byte %" PRIu64
                            " runs past the end of the file (reading %s)",
                            n, value_type_name(t), c->pos, c->what);
            return -1;
        }
        c->pos += n * sz;
        return 0;
    }
    if (t == GGUF_STRING) {
        if (n > remaining(c) / 8) { /* each string needs at least its 8-byte length */
            citer_set_error("array of %" PRIu64 " strings at byte %" PRIu64
                            " runs past the end of the file (reading %s)", n, c->pos, c->what);
            return -1;
        }
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            if (read_str(c, &s)) return -1;
        }
        return 0;
    }
    if (t == GGUF_ARRAY) {
        if (depth >= GGUF_MAX_ARRAY_DEPTH) {
            citer_set_error("arrays nested deeper than %d at byte %" PRIu64 " (reading %s)",
                            GGUF_MAX_ARRAY_DEPTH, c->pos, c->what);
            return -1;
        }
        if (n > remaining(c) / 12) { /* each inner array needs a type and a count */
            citer_set_error("array of %" PRIu64 " arrays at byte %" PRIu64
                            " runs past the end of the file (reading %s)", n, c->pos, c->what);
            return -1;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et;
            uint64_t en;
            uint64_t at = c->pos;
            if (read_u32(c, &et) || read_uint(c, 8, &en)) return -1;
            if (et > GGUF_FLOAT64) {
                citer_set_error("unknown array element type %u at byte %" PRIu64 " (reading %s)",
                                et, at, c->what);
                return -1;
            }
            if (skip_array(c, (int)et, en, depth + 1)) return -1;
        }
        return 0;
    }
    citer_set_error("unknown array element type %d at byte %" PRIu64 " (reading %s)", t, c->pos,
                    c->what);
    return -1;
}

static int read_kv(cursor *c, gguf_kv *kv, uint64_t index)
{
    snprintf(c->what, sizeof c->what, "key %" PRIu64, index);
    if (read_str(c, &kv->key)) return -1;
    snprintf(c->what, sizeof c->what, "key %" PRIu64 " '%s'", index, show(kv->key).s);
    uint32_t type;
    uint64_t at = c->pos;
    if (read_u32(c, &type)) return -1;
    if (type > GGUF_FLOAT64) {
        citer_set_error("unknown value type %u at byte %" PRIu64 " (reading %s)", type, at, c->what);
        return -1;
    }
    kv->type = (int)type;
    if (type == GGUF_STRING) return read_str(c, &kv->str);
    if (type == GGUF_ARRAY) {
        uint32_t et;
        at = c->pos;
        if (read_u32(c, &et) || read_uint(c, 8, &kv->arr_n)) return -1;
        if (et > GGUF_FLOAT64) {
            citer_set_error("unknown array element type %u at byte %" PRIu64 " (reading %s)", et,
                            at, c->what);
            return -1;
        }
        kv->arr_type = (int)et;
        kv->arr_data = c->base + c->pos;
        return skip_array(c, kv->arr_type, kv->arr_n, 0);
    }
    uint64_t sz = scalar_size((int)type);
    if (remaining(c) < sz) return truncated(c);
    decode_scalar((int)type, c->base + c->pos, kv);
    c->pos += sz;
    return 0;
}

static int str_cmp(gguf_str a, gguf_str b)
{
    uint64_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int str_eq(gguf_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

/* qsort over indices needs the array; the files are opened one at a time per thread at most,
 * but keep it reentrant anyway by sorting (name, index) pairs. */
typedef struct {
    gguf_str name;
    uint64_t index;
} named;

static int named_cmp(const void *a, const void *b)
{
    const named *x = a, *y = b;
    return str_cmp(x->name, y->name);
}

/* Report the first name that occurs twice, or 0 if all are distinct. */
static int check_unique(named *v, uint64_t n, const char *what)
{
    if (n < 2) return 0;
    qsort(v, (size_t)n, sizeof *v, named_cmp);
    for (uint64_t i = 1; i < n; i++)
        if (str_cmp(v[i - 1].name, v[i].name) == 0) {
            citer_set_error("duplicate %s '%s' (entries %" PRIu64 " and %" PRIu64 ")", what,
                            show(v[i].name).s, v[i - 1].index < v[i].index ? v[i - 1].index : v[i].index,
                            v[i - 1].index < v[i].index ? v[i].index : v[i - 1].index);
            return -1;
        }
    return 0;
}

static int read_tensor_info(cursor *c, gguf_tensor *t, uint64_t index)
{
    snprintf(c->what, sizeof c->what, "tensor info %" PRIu64, index);
    if (read_str(c, &t->name)) return -1;
    snprintf(c->what, sizeof c->what, "tensor info %" PRIu64 " '%s'", index, show(t->name).s);
    uint32_t n_dims;
    uint64_t at = c->pos;
    if (read_u32(c, &n_dims)) return -1;
    if (n_dims > 4) {
        citer_set_error("tensor %" PRIu64 " '%s': %u dimensions at byte %" PRIu64
                        " (at most 4 allowed)", index, show(t->name).s, n_dims, at);
        return -1;
    }
    t->n_dims = n_dims ? (int)n_dims : 1; /* a 0-dimensional tensor is a single value */
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (read_uint(c, 8, &t->ne[d])) return -1;
    uint32_t type;
    if (read_u32(c, &type) || read_uint(c, 8, &t->offset)) return -1;
    t->type = type > INT32_MAX ? -1 : (int)type;
    return 0;
}

/* Size in bytes of a tensor of a known type, with every product checked for overflow. */
static int tensor_nbytes(const gguf_tensor *t, uint64_t index, uint64_t *out)
{
    uint64_t be, bb;
    if (ggml_type_block(t->type, &be, &bb)) {
        *out = 0;
        return 0;
    }
    if (t->ne[0] % be) {
        citer_set_error("tensor %" PRIu64 " '%s': row length %" PRIu64
                        " is not a multiple of the %s block size %" PRIu64,
                        index, show(t->name).s, t->ne[0], ggml_type_name(t->type), be);
        return -1;
    }
    uint64_t n = t->ne[0] / be;
    if (n && bb > UINT64_MAX / n) goto overflow;
    n *= bb;
    for (int d = 1; d < 4; d++) {
        if (t->ne[d] && n > UINT64_MAX / t->ne[d]) goto overflow;
        n *= t->ne[d];
    }
    *out = n;
    return 0;
overflow:
    citer_set_error("tensor %" PRIu64 " '%s': shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64
                    ", %" PRIu64 "] is too large", index, show(t->name).s, t->ne[0], t->ne[1],
                    t->ne[2], t->ne[3]);
    return -1;
}

static int offset_cmp(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Alignment from general.alignment (any integer type), which must be a power of two. */
static int read_alignment(gguf_file *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(g, "general.alignment");
    if (!kv) return 0;
    uint64_t a;
    if (gguf_get_u64(g, "general.alignment", &a)) return -1;
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT) {
        citer_set_error("general.alignment %" PRIu64 " is not a power of two up to %u", a,
                        GGUF_MAX_ALIGNMENT);
        return -1;
    }
    g->alignment = a;
    return 0;
}

static int parse(gguf_file *g)
{
    cursor c = {.base = g->map.data, .size = g->map.size, .pos = 0};
    snprintf(c.what, sizeof c.what, "magic");
    if (c.size < 4 || memcmp(c.base, "GGUF", 4) != 0) {
        citer_set_error("not a GGUF file (bad magic)");
        return -1;
    }
    c.pos = 4;
    snprintf(c.what, sizeof c.what, "version");
    if (read_u32(&c, &g->version)) return -1;
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && g->version)
            citer_set_error("unsupported GGUF version %u (a big-endian file?)", g->version);
        else
            citer_set_error("unsupported GGUF version %u (only 2 and 3 are supported)", g->version);
        return -1;
    }
    snprintf(c.what, sizeof c.what, "tensor count");
    if (read_uint(&c, 8, &g->n_tensors)) return -1;
    snprintf(c.what, sizeof c.what, "key/value count");
    if (read_uint(&c, 8, &g->n_kv)) return -1;
    /* Each key/value takes at least 13 bytes, each tensor info at least 24: bound the counts
     * before allocating anything for them. */
    if (g->n_kv > remaining(&c) / 13) {
        citer_set_error("key/value count %" PRIu64 " is too large for a file of %" PRIu64 " bytes",
                        g->n_kv, c.size);
        return -1;
    }
    if (g->n_tensors > (remaining(&c) - g->n_kv * 13) / 24) {
        citer_set_error("tensor count %" PRIu64 " is too large for a file of %" PRIu64 " bytes",
                        g->n_tensors, c.size);
        return -1;
    }
    g->kv = xcalloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->tensors = xcalloc((size_t)g->n_tensors + 1, sizeof *g->tensors);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (read_kv(&c, &g->kv[i], i)) return -1;

    named *names = xmalloc(((size_t)(g->n_kv > g->n_tensors ? g->n_kv : g->n_tensors) + 1) *
                           sizeof *names);
    for (uint64_t i = 0; i < g->n_kv; i++) names[i] = (named){g->kv[i].key, i};
    if (check_unique(names, g->n_kv, "key")) {
        free(names);
        return -1;
    }
    if (read_alignment(g)) {
        free(names);
        return -1;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (read_tensor_info(&c, &g->tensors[i], i)) {
            free(names);
            return -1;
        }
    for (uint64_t i = 0; i < g->n_tensors; i++) names[i] = (named){g->tensors[i].name, i};
    int dup = check_unique(names, g->n_tensors, "tensor");
    free(names);
    if (dup) return -1;

    /* The data section starts at the next multiple of the alignment. A file without tensors
     * (a vocabulary-only GGUF) may end before it. */
    uint64_t a = g->alignment;
    g->data_offset = (c.pos + a - 1) / a * a; /* pos <= size and a <= 2^30: no overflow */
    if (g->n_tensors && g->data_offset > c.size) {
        citer_set_error("truncated at byte %" PRIu64 " (data section should start at byte %" PRIu64
                        ")", c.size, g->data_offset);
        return -1;
    }
    uint64_t data_size = g->data_offset <= c.size ? c.size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset % a) {
            citer_set_error("tensor %" PRIu64 " '%s': data offset %" PRIu64
                            " is not a multiple of the alignment %" PRIu64,
                            i, show(t->name).s, t->offset, a);
            return -1;
        }
        if (tensor_nbytes(t, i, &t->nbytes)) return -1;
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            citer_set_error("tensor %" PRIu64 " '%s': data [%" PRIu64 ", +%" PRIu64
                            ") runs past the end of the data section (%" PRIu64 " bytes)",
                            i, show(t->name).s, t->offset, t->nbytes, data_size);
            return -1;
        }
        t->data = g->map.data + g->data_offset + t->offset;
    }
    /* Tensors must not overlap (those of unknown type have no known size: skipped). */
    if (g->n_tensors > 1) {
        gguf_tensor **by_offset = xmalloc((size_t)g->n_tensors * sizeof *by_offset);
        for (uint64_t i = 0; i < g->n_tensors; i++) by_offset[i] = &g->tensors[i];
        qsort(by_offset, (size_t)g->n_tensors, sizeof *by_offset, offset_cmp);
        for (uint64_t i = 1; i < g->n_tensors; i++) {
            const gguf_tensor *p = by_offset[i - 1], *q = by_offset[i];
            if (p->offset + p->nbytes > q->offset) {
                citer_set_error("tensors '%s' and '%s' overlap (data offsets %" PRIu64
                                " +%" PRIu64 " and %" PRIu64 ")",
                                show(p->name).s, show(q->name).s, p->offset,
                                p->nbytes, q->offset);
                free(by_offset);
                return -1;
            }
        }
        free(by_offset);
    }
    return 0;
}

gguf_file *gguf_open(const char *path)
{
    gguf_file *g = xcalloc(1, sizeof *g);
    if (citer_map_file(path, &g->map)) {
        free(g);
        return NULL;
    }
    if (parse(g)) {
        gguf_close(g);
        return NULL;
    }
    return g;
}

void gguf_close(gguf_file *g)
{
    if (!g) return;
    citer_unmap(&g->map);
    free(g->kv);
    free(g->tensors);
    free(g);
}

/* ---- lookups and typed getters ---- */

const gguf_kv *gguf_find(const gguf_file *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static const gguf_kv *find_typed(const gguf_file *g, const char *key)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) citer_set_error("missing key %s", key);
    return kv;
}

static int wrong_type(const gguf_kv *kv, const char *key, const char *want)
{
    citer_set_error("key %s has type %s, expected %s", key, value_type_name(kv->type), want);
    return -1;
}

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out)
{
    const gguf_kv *kv = find_typed(g, key);
    if (!kv) return -1;
    if (!is_int_type(kv->type)) return wrong_type(kv, key, "an unsigned integer");
    if (is_signed_type(kv->type) && kv->v.i < 0) {
        citer_set_error("key %s has negative value %" PRId64 ", expected an unsigned integer", key,
                        kv->v.i);
        return -1;
    }
    *out = is_signed_type(kv->type) ? (uint64_t)kv->v.i : kv->v.u;
    return 0;
}

int gguf_get_i64(const gguf_file *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = find_typed(g, key);
    if (!kv) return -1;
    if (!is_int_type(kv->type)) return wrong_type(kv, key, "an integer");
    if (!is_signed_type(kv->type) && kv->v.u > INT64_MAX) {
        citer_set_error("key %s value %" PRIu64 " does not fit a signed 64-bit integer", key,
                        kv->v.u);
        return -1;
    }
    *out = is_signed_type(kv->type) ? kv->v.i : (int64_t)kv->v.u;
    return 0;
}

int gguf_get_f64(const gguf_file *g, const char *key, double *out)
{
    const gguf_kv *kv = find_typed(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_FLOAT32 || kv->type == GGUF_FLOAT64)
        *out = kv->v.f;
    else if (is_int_type(kv->type))
        *out = is_signed_type(kv->type) ? (double)kv->v.i : (double)kv->v.u;
    else
        return wrong_type(kv, key, "a number");
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out)
{
    const gguf_kv *kv = find_typed(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_BOOL) return wrong_type(kv, key, "bool");
    *out = kv->v.b;
    return 0;
}

char *gguf_get_str(const gguf_file *g, const char *key)
{
    const gguf_kv *kv = find_typed(g, key);
    if (!kv) return NULL;
    if (kv->type != GGUF_STRING) {
        wrong_type(kv, key, "string");
        return NULL;
    }
    return xstrndup(kv->str.ptr, (size_t)kv->str.len);
}

gguf_str *gguf_str_array(const gguf_kv *kv)
{
    if (!kv) {
        citer_set_error("missing key");
        return NULL;
    }
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) {
        citer_set_error("key %s is not an array of strings", show(kv->key).s);
        return NULL;
    }
    /* The strings were bounds-checked when the file was opened. */
    gguf_str *v = xmalloc(((size_t)kv->arr_n + 1) * sizeof *v);
    const uint8_t *p = kv->arr_data;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        v[i].len = load_le(p, 8);
        v[i].ptr = (const char *)p + 8;
        p += 8 + v[i].len;
    }
    return v;
}

static int array_elem(const gguf_kv *kv, uint64_t i, gguf_kv *val)
{
    if (!kv) {
        citer_set_error("missing key");
        return -1;
    }
    if (kv->type != GGUF_ARRAY || !scalar_size(kv->arr_type)) {
        citer_set_error("key %s is not an array of numbers", show(kv->key).s);
        return -1;
    }
    if (i >= kv->arr_n) {
        citer_set_error("index %" PRIu64 " out of range for key %s (%" PRIu64 " elements)", i,
                        show(kv->key).s, kv->arr_n);
        return -1;
    }
    memset(val, 0, sizeof *val);
    val->type = kv->arr_type;
    decode_scalar(kv->arr_type, kv->arr_data + i * scalar_size(kv->arr_type), val);
    return 0;
}

int gguf_array_f32(const gguf_kv *kv, uint64_t i, float *out)
{
    gguf_kv e;
    if (array_elem(kv, i, &e)) return -1;
    if (e.type == GGUF_FLOAT32 || e.type == GGUF_FLOAT64)
        *out = (float)e.v.f;
    else if (is_int_type(e.type))
        *out = is_signed_type(e.type) ? (float)e.v.i : (float)e.v.u;
    else {
        citer_set_error("key %s is an array of %s, expected numbers", show(kv->key).s,
                        value_type_name(e.type));
        return -1;
    }
    return 0;
}

int gguf_array_i64(const gguf_kv *kv, uint64_t i, int64_t *out)
{
    gguf_kv e;
    if (array_elem(kv, i, &e)) return -1;
    if (!is_int_type(e.type)) {
        citer_set_error("key %s is an array of %s, expected integers", show(kv->key).s,
                        value_type_name(e.type));
        return -1;
    }
    if (!is_signed_type(e.type) && e.v.u > INT64_MAX) {
        citer_set_error("key %s element %" PRIu64 " does not fit a signed 64-bit integer",
                        show(kv->key).s, i);
        return -1;
    }
    *out = is_signed_type(e.type) ? e.v.i : (int64_t)e.v.u;
    return 0;
}

/* ---- writer ---- */

typedef struct {
    char *key;
    uint8_t *val; /* type and value, serialized */
    size_t len;
} wkv;

typedef struct {
    char *name;
    int type, n_dims;
    uint64_t ne[4];
    void *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    char *error; /* first problem found by a set/add call, reported by gguf_write */
};

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    xgrow((void **)&b->p, &b->cap, b->len + n, 1);
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_le(buf *b, uint64_t v, int n)
{
    uint8_t tmp[8];
    for (int i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    put(b, tmp, (size_t)n);
}

static void put_str(buf *b, const char *s)
{
    size_t n = strlen(s);
    put_le(b, n, 8);
    put(b, s, n);
}

gguf_writer *gguf_writer_new(void) { return xcalloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w->error);
    free(w);
}

static void writer_fail(gguf_writer *w, const char *msg, const char *name)
{
    if (w->error) return;
    size_t n = strlen(msg) + strlen(name) + 8;
    w->error = xmalloc(n);
    snprintf(w->error, n, "%s: %s", name, msg);
}

/* Store a serialized value under key, replacing an earlier value of the same key. */
static void set_kv(gguf_writer *w, const char *key, buf *b)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].len = b->len;
            return;
        }
    xgrow((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof *w->kv);
    w->kv[w->n_kv++] = (wkv){xstrdup(key), b->p, b->len};
}

static void set_scalar(gguf_writer *w, const char *key, int type, uint64_t bits)
{
    buf b = {0};
    put_le(&b, (uint64_t)type, 4);
    put_le(&b, bits, (int)scalar_size(type));
    set_kv(w, key, &b);
}

void gguf_set_u32(gguf_writer *w, const char *key, uint32_t v) { set_scalar(w, key, GGUF_UINT32, v); }
void gguf_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    set_scalar(w, key, GGUF_INT32, (uint32_t)v);
}
void gguf_set_u64(gguf_writer *w, const char *key, uint64_t v) { set_scalar(w, key, GGUF_UINT64, v); }
void gguf_set_f32(gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    set_scalar(w, key, GGUF_FLOAT32, bits);
}
void gguf_set_bool(gguf_writer *w, const char *key, int v) { set_scalar(w, key, GGUF_BOOL, v != 0); }

void gguf_set_str(gguf_writer *w, const char *key, const char *v)
{
    buf b = {0};
    put_le(&b, GGUF_STRING, 4);
    put_str(&b, v);
    set_kv(w, key, &b);
}

void gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    buf b = {0};
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, GGUF_STRING, 4);
    put_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) put_str(&b, v[i]);
    set_kv(w, key, &b);
}

void gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n)
{
    buf b = {0};
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, GGUF_FLOAT32, 4);
    put_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_le(&b, bits, 4);
    }
    set_kv(w, key, &b);
}

void gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    buf b = {0};
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, GGUF_INT32, 4);
    put_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) put_le(&b, (uint32_t)v[i], 4);
    set_kv(w, key, &b);
}

void gguf_add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const uint64_t *ne,
                     const void *data)
{
    wtensor t = {.name = xstrdup(name), .type = type, .n_dims = n_dims};
    for (int d = 0; d < 4; d++) t.ne[d] = 1;
    if (n_dims < 1 || n_dims > 4) {
        writer_fail(w, "a tensor needs 1 to 4 dimensions", name);
        free(t.name);
        return;
    }
    for (int d = 0; d < n_dims; d++) t.ne[d] = ne[d];
    gguf_tensor probe = {.name = {name, strlen(name)}, .type = type, .n_dims = n_dims};
    memcpy(probe.ne, t.ne, sizeof t.ne);
    if (!find_type(type)) {
        writer_fail(w, "unknown tensor type", name);
        free(t.name);
        return;
    }
    if (tensor_nbytes(&probe, w->n_t, &t.nbytes) || t.nbytes > SIZE_MAX) {
        writer_fail(w, citer_error(), name);
        free(t.name);
        return;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            writer_fail(w, "duplicate tensor name", name);
            free(t.name);
            return;
        }
    t.data = xmalloc(t.nbytes ? (size_t)t.nbytes : 1);
    if (t.nbytes) memcpy(t.data, data, (size_t)t.nbytes);
    xgrow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t);
    w->t[w->n_t++] = t;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int gguf_write(gguf_writer *w, const char *path)
{
    if (w->error) {
        citer_set_error("%s", w->error);
        return -1;
    }
    uint64_t a = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            /* Honour an alignment the caller set, if it is a valid u32 power of two. */
            if (w->kv[i].len != 8 || load_le(w->kv[i].val, 4) != GGUF_UINT32 ||
                (a = load_le(w->kv[i].val + 4, 4)) == 0 || (a & (a - 1))) {
                citer_set_error("general.alignment must be a uint32 power of two");
                return -1;
            }
        }

    buf h = {0};
    put(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, w->n_t, 8);
    put_le(&h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key);
        put(&h, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name);
        put_le(&h, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) put_le(&h, t->ne[d], 8);
        put_le(&h, (uint64_t)t->type, 4);
        put_le(&h, off, 8);
        off = align_up(off + t->nbytes, a);
    }
    static const uint8_t zeros[64];
    citer_out *o = citer_out_open(path);
    if (!o) {
        free(h.p);
        return -1;
    }
    fwrite(h.p, 1, h.len, o->f);
    for (uint64_t pad = align_up(h.len, a) - h.len; pad;) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        fwrite(zeros, 1, n, o->f);
        pad -= n;
    }
    free(h.p);
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        fwrite(t->data, 1, (size_t)t->nbytes, o->f);
        for (uint64_t pad = align_up(t->nbytes, a) - t->nbytes; pad;) {
            size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
            fwrite(zeros, 1, n, o->f);
            pad -= n;
        }
    }
    if (ferror(o->f)) {
        citer_set_error("write error");
        citer_out_abort(o);
        return -1;
    }
    return citer_out_commit(o);
}
