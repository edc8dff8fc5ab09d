/* stream: reading and writing the citer stream format (layout in stream.h, citer-stream(5)). */
#include "stream.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <json-c/json.h>
#include <xxhash.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "citer streams store payloads in host order; only little-endian hosts are supported"
#endif

/* ---- names and sizes ---- */

static const char *const kind_names[] = {"end", "tokens", "tensor", "feature",
                                         "request", "response", "meta"};
static const char *const dtype_names[] = {"none", "i32", "f32", "f16", "bf16", "u8"};
static const size_t dtype_sizes[] = {0, 4, 4, 2, 2, 1};
#define NKINDS (int)(sizeof kind_names / sizeof *kind_names)
#define NDTYPES (int)(sizeof dtype_names / sizeof *dtype_names)

const char *citer_kind_name(int kind)
{
    return kind >= 0 && kind < NKINDS ? kind_names[kind] : NULL;
}

int citer_kind_from_name(const char *s)
{
    for (int i = 0; s && i < NKINDS; i++)
        if (strcmp(s, kind_names[i]) == 0) return i;
    return -1;
}

const char *citer_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < NDTYPES ? dtype_names[dtype] : NULL;
}

int citer_dtype_from_name(const char *s)
{
    for (int i = 0; s && i < NDTYPES; i++)
        if (strcmp(s, dtype_names[i]) == 0) return i;
    return -1;
}

size_t citer_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < NDTYPES ? dtype_sizes[dtype] : 0;
}

/* Product of the used dims, or -1 when it does not fit in 64 bits. */
static int shape_elements(int ndim, const uint32_t *dim, uint64_t *out)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dim[i] == 0) {
            *out = 0;
            return 0;
        }
    }
    for (int i = 0; i < ndim; i++) {
        if (n > UINT64_MAX / dim[i]) return -1;
        n *= dim[i];
    }
    *out = n;
    return 0;
}

size_t citer_record_elements(const citer_record *r)
{
    uint64_t n;
    if (r->ndim < 0 || r->ndim > 4 || shape_elements(r->ndim, r->dim, &n) != 0 || n > SIZE_MAX)
        return SIZE_MAX;
    return (size_t)n;
}

/* Payload bytes implied by dtype and shape; -1 on overflow. dtype NONE has no payload
 * whatever its shape. */
static int shape_bytes(int dtype, int ndim, const uint32_t *dim, uint64_t *out)
{
    uint64_t n;
    if (shape_elements(ndim, dim, &n) != 0) return -1;
    uint64_t size = citer_dtype_size(dtype);
    if (size && n > UINT64_MAX / size) return -1;
    *out = n * size;
    return 0;
}

void citer_record_init(citer_record *r, int kind, int dtype, uint64_t seq, int64_t pos)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->dtype = dtype;
    r->seq = seq;
    r->pos = pos;
}

void citer_record_free(citer_record *r)
{
    free(r->meta);
    free(r->data);
    memset(r, 0, sizeof *r);
}


/* ---- metadata ---- */

/* Length of the valid UTF-8 sequence at s (no overlongs, surrogates or > U+10FFFF), 0 if bad. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A strict RFC 8259 grammar check: json-c alone accepts single quotes, NaN and the like,
 * which other JSON readers of the same stream would refuse. */
typedef struct {
    const char *s;
    size_t n, i;
    int too_deep;
} jscan;

#define JSON_MAX_DEPTH 32 /* json-c's own nesting limit */

static void js_ws(jscan *j)
{
    while (j->i < j->n && strchr(" \t\r\n", j->s[j->i]) && j->s[j->i]) j->i++;
}

static int js_peek(const jscan *j) { return j->i < j->n ? (unsigned char)j->s[j->i] : -1; }

static int js_digits(jscan *j)
{
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
    return j->i > start ? 0 : -1;
}

static int js_string(jscan *j)
{
    j->i++; /* opening quote */
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') return 0;
        if (c < 0x20) return -1;
        if (c == '\\') {
            int e = js_peek(j);
            if (e < 0) return -1;
            j->i++;
            if (e == 'u') {
                for (int k = 0; k < 4; k++, j->i++)
                    if (j->i >= j->n || !strchr("0123456789abcdefABCDEF", j->s[j->i]) || !j->s[j->i])
                        return -1;
            } else if (!strchr("\"\\/bfnrt", e) || !e) {
                return -1;
            }
        }
    }
    return -1;
}

static int js_value(jscan *j, int depth)
{
    js_ws(j);
    int c = js_peek(j);
    if (c == '{' || c == '[') {
        if (depth >= JSON_MAX_DEPTH) {
            j->too_deep = 1;
            return -1;
        }
        int close = c == '{' ? '}' : ']';
        j->i++;
        js_ws(j);
        if (js_peek(j) == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                js_ws(j);
                if (js_peek(j) != '"' || js_string(j) != 0) return -1;
                js_ws(j);
                if (js_peek(j) != ':') return -1;
                j->i++;
            }
            if (js_value(j, depth + 1) != 0) return -1;
            js_ws(j);
            int d = js_peek(j);
            j->i++;
            if (d == close) return 0;
            if (d != ',') return -1;
        }
    }
    if (c == '"') return js_string(j);
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (c == '-') j->i++;
        if (js_peek(j) == '0') j->i++;
        else if (js_digits(j) != 0) return -1;
        if (js_peek(j) == '.') {
            j->i++;
            if (js_digits(j) != 0) return -1;
        }
        if (js_peek(j) == 'e' || js_peek(j) == 'E') {
            j->i++;
            if (js_peek(j) == '+' || js_peek(j) == '-') j->i++;
            if (js_digits(j) != 0) return -1;
        }
        return 0;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (j->n - j->i >= l && memcmp(j->s + j->i, lits[k], l) == 0) {
            j->i += l;
            return 0;
        }
    }
    return -1;
}

int citer_meta_check(const char *meta, size_t len)
{
    const unsigned char *s = (const unsigned char *)meta;
    for (size_t i = 0; i < len;) {
        if (s[i] == 0) {
            citer_set_error("metadata contains a NUL byte at offset %zu", i);
            return -1;
        }
        size_t k = utf8_seq(s + i, len - i);
        if (!k) {
            citer_set_error("metadata is not valid UTF-8 at offset %zu", i);
            return -1;
        }
        i += k;
    }
    jscan j = {meta, len, 0, 0};
    js_ws(&j);
    if (js_peek(&j) != '{') {
        citer_set_error("metadata is not a JSON object");
        return -1;
    }
    if (js_value(&j, 0) != 0) {
        if (j.too_deep) {
            citer_set_error("metadata is nested deeper than %d levels", JSON_MAX_DEPTH);
            return -1;
        }
        citer_set_error("metadata is not strict JSON (error near offset %zu)",
                        j.i < len ? j.i : len);
        return -1;
    }
    js_ws(&j);
    if (j.i < len) {
        citer_set_error("metadata has text after the JSON object at offset %zu", j.i);
        return -1;
    }
    /* and json-c, which every tool reading the metadata uses, must take it too */
    json_tokener *tok = json_tokener_new();
    json_object *obj = json_tokener_parse_ex(tok, meta, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    int ok = obj && json_object_is_type(obj, json_type_object);
    json_object_put(obj);
    if (!ok) {
        citer_set_error("metadata is not JSON: %s", json_tokener_error_desc(jerr));
        return -1;
    }
    return 0;
}

/* Everything the writer and the reader agree a data record must be. */
int citer_record_check(const citer_record *r)
{
    if (r->kind == CITER_END) {
        citer_set_error("END records are written by citer_writer_finish, not citer_write");
        return -1;
    }
    if (r->kind < 0 || r->kind >= NKINDS) {
        citer_set_error("unknown record kind %d", r->kind);
        return -1;
    }
    if (!citer_dtype_name(r->dtype)) {
        citer_set_error("unknown dtype %d", r->dtype);
        return -1;
    }
    if (r->ndim < 0 || r->ndim > 4) {
        citer_set_error("ndim %d is out of range 0..4", r->ndim);
        return -1;
    }
    for (int i = r->ndim; i < 4; i++)
        if (r->dim[i]) {
            citer_set_error("dim[%d] is %" PRIu32 " but ndim is %d (unused dims must be 0)", i,
                            r->dim[i], r->ndim);
            return -1;
        }
    uint64_t want;
    if (shape_bytes(r->dtype, r->ndim, r->dim, &want) != 0 || want > CITER_MAX_PAYLOAD) {
        citer_set_error("shape is too large (payload over %llu bytes)",
                        (unsigned long long)CITER_MAX_PAYLOAD);
        return -1;
    }
    if (want != r->nbytes) {
        citer_set_error("payload is %zu bytes but dtype %s and shape imply %" PRIu64, r->nbytes,
                        citer_dtype_name(r->dtype), want);
        return -1;
    }
    if (r->nbytes && !r->data) {
        citer_set_error("payload of %zu bytes has no data", r->nbytes);
        return -1;
    }
    if (r->meta) {
        size_t len = r->meta_len ? r->meta_len : strlen(r->meta);
        if (len > CITER_MAX_META) {
            citer_set_error("metadata is %zu bytes, over the limit of %u", len, CITER_MAX_META);
            return -1;
        }
        if (len && citer_meta_check(r->meta, len) != 0) return -1;
    } else if (r->meta_len) {
        citer_set_error("meta_len is %" PRIu32 " but meta is NULL", r->meta_len);
        return -1;
    }
    return 0;
}

/* ---- little-endian fields ---- */

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- reader ---- */

enum { AT_START, IN_STREAM, AFTER_END, AT_EOF, FAILED };

struct citer_reader {
    FILE *f;
    char *name;
    uint64_t max_payload;
    uint64_t off;          /* bytes consumed */
    int state;
    int return_end;
    uint64_t in_stream;    /* data records since the current stream header */
    uint64_t records;      /* data records read, all streams */
    uint64_t all_records;  /* records of any kind, for messages ("record N", from 1) */
    uint64_t streams;      /* streams closed by their END record */
    XXH64_state_t *hash;
    char err[512];         /* a failed reader keeps failing with the same message */
};

citer_reader *citer_reader_new(FILE *f, const char *name)
{
    citer_reader *r = xcalloc(1, sizeof *r);
    r->f = f;
    r->name = xstrdup(name ? name : "-");
    r->max_payload = CITER_MAX_PAYLOAD;
    r->state = AT_START;
    r->hash = XXH64_createState();
    if (!r->hash) {
        fprintf(stderr, "%s: out of memory\n", cli_progname());
        exit(1);
    }
    return r;
}

void citer_reader_set_max_payload(citer_reader *r, uint64_t max_payload)
{
    r->max_payload = max_payload ? max_payload : CITER_MAX_PAYLOAD;
}

void citer_reader_return_end(citer_reader *r, int on) { r->return_end = on; }
uint64_t citer_reader_offset(const citer_reader *r) { return r->off; }
uint64_t citer_reader_records(const citer_reader *r) { return r->records; }
uint64_t citer_reader_streams(const citer_reader *r) { return r->streams; }
const char *citer_reader_name(const citer_reader *r) { return r->name; }

void citer_reader_free(citer_reader *r)
{
    if (!r) return;
    XXH64_freeState(r->hash);
    free(r->name);
    free(r);
}

/* Read up to n bytes; returns how many arrived (short only at EOF or on error). */
static size_t read_some(citer_reader *r, void *buf, size_t n)
{
    size_t got = n ? fread(buf, 1, n, r->f) : 0;
    r->off += got;
    return got;
}

static int fail(citer_reader *r, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(citer_reader *r, uint64_t at, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof r->err, "byte %" PRIu64 ": %s", at, what);
    citer_set_error("%s", r->err);
    r->state = FAILED;
    return -1;
}

static int read_error(citer_reader *r, uint64_t at)
{
    return fail(r, at, "read error: %s", strerror(errno));
}

/* Read n bytes into a buffer grown as the bytes actually arrive, so a corrupt or hostile
 * length costs memory only in proportion to the data really present. */
static int read_grown(citer_reader *r, size_t n, void **out, size_t *got)
{
    unsigned char *buf = NULL;
    size_t have = 0, cap = 0;
    while (have < n) {
        size_t want = cap ? (cap < n / 2 ? cap * 2 : n) : (n < (1u << 16) ? n : (1u << 16));
        buf = xrealloc(buf, want);
        cap = want;
        size_t k = read_some(r, buf + have, cap - have);
        have += k;
        if (have < cap) break;
    }
    if (have) XXH64_update(r->hash, buf, have);
    *out = buf;
    *got = have;
    return have == n ? 0 : -1;
}

/* Read a stream header at the current offset. 1 read, 0 clean EOF (allowed only after END), -1. */
static int read_stream_header(citer_reader *r)
{
    unsigned char h[CITER_STREAM_HEADER_SIZE];
    uint64_t at = r->off;
    size_t got = read_some(r, h, sizeof h);
    if (got < sizeof h && ferror(r->f)) return read_error(r, at);
    if (got == 0) {
        if (r->state == AFTER_END) {
            r->state = AT_EOF;
            return 0;
        }
        return fail(r, at, "empty input (not a citer stream)");
    }
    size_t cmp = got < 8 ? got : 8;
    if (memcmp(h, CITER_STREAM_MAGIC, cmp) != 0)
        return fail(r, at, r->state == AFTER_END ? "bad magic after END record (not a citer stream)"
                                                 : "bad magic (not a citer stream)");
    if (got < sizeof h)
        return fail(r, at, "truncated stream header (wanted %d bytes, got %zu)",
                    CITER_STREAM_HEADER_SIZE, got);
    uint32_t version = get32(h + 8), flags = get32(h + 12);
    if (version != CITER_STREAM_VERSION)
        return fail(r, at, "unsupported stream version %" PRIu32, version);
    if (flags) return fail(r, at, "unknown stream flags 0x%" PRIx32, flags);
    r->state = IN_STREAM;
    r->in_stream = 0;
    return 1;
}

int citer_read(citer_reader *r, citer_record *rec)
{
    memset(rec, 0, sizeof *rec);
    for (;;) {
        if (r->state == FAILED) {
            citer_set_error("%s", r->err);
            return -1;
        }
        if (r->state == AT_EOF) return 0;
        if (r->state == AT_START || r->state == AFTER_END) {
            int rc = read_stream_header(r);
            if (rc <= 0) return rc;
        }

        unsigned char h[CITER_RECORD_HEADER_SIZE];
        uint64_t at = r->off, index = r->all_records + 1;
        size_t got = read_some(r, h, sizeof h);
        if (got < sizeof h && ferror(r->f)) return read_error(r, at);
        if (got == 0) return fail(r, at, "stream ends without END record (truncated?)");
        if (got < sizeof h)
            return fail(r, at, "truncated record %" PRIu64 " (wanted %d header bytes, got %zu)",
                        index, CITER_RECORD_HEADER_SIZE, got);
        if (memcmp(h, "CREC", 4) != 0)
            return fail(r, at, "bad record sync in record %" PRIu64 " (expected \"CREC\")", index);

        int kind = h[4], dtype = h[5], ndim = h[6];
        uint32_t dim[4];
        for (int i = 0; i < 4; i++) dim[i] = get32(h + 24 + 4 * i);
        uint64_t seq = get64(h + 8);
        int64_t pos = (int64_t)get64(h + 16);
        uint32_t meta_len = get32(h + 40);
        if (kind >= NKINDS)
            return fail(r, at, "unknown kind %d in record %" PRIu64, kind, index);
        if (dtype >= NDTYPES)
            return fail(r, at, "unknown dtype %d in record %" PRIu64, dtype, index);
        if (ndim > 4)
            return fail(r, at, "ndim %d is over 4 in record %" PRIu64, ndim, index);
        if (h[7] || get32(h + 44))
            return fail(r, at, "reserved field is not zero in record %" PRIu64, index);
        for (int i = ndim; i < 4; i++)
            if (dim[i])
                return fail(r, at, "dim[%d] is %" PRIu32 " beyond ndim %d in record %" PRIu64, i,
                            dim[i], ndim, index);
        if (meta_len > CITER_MAX_META)
            return fail(r, at, "metadata of %" PRIu32 " bytes is over the limit of %u in record %" PRIu64,
                        meta_len, CITER_MAX_META, index);
        uint64_t nbytes;
        if (shape_bytes(dtype, ndim, dim, &nbytes) != 0 || nbytes > r->max_payload ||
            nbytes > SIZE_MAX)
            return fail(r, at, "payload is larger than the limit of %" PRIu64 " bytes in record %" PRIu64,
                        r->max_payload, index);
        if (kind == CITER_END &&
            (dtype != CITER_DT_NONE || ndim != 1 || dim[0] != 1 || pos != -1 || meta_len))
            return fail(r, at, "malformed END record (record %" PRIu64 ")", index);

        XXH64_reset(r->hash, 0);
        XXH64_update(r->hash, h, sizeof h);
        void *meta = NULL, *data = NULL;
        size_t have;
        if (meta_len) {
            if (read_grown(r, meta_len, &meta, &have) != 0) {
                free(meta);
                if (ferror(r->f)) return read_error(r, at);
                return fail(r, at, "truncated record %" PRIu64 " (wanted %" PRIu32 " metadata bytes, got %zu)",
                            index, meta_len, have);
            }
            meta = xrealloc(meta, (size_t)meta_len + 1);
            ((char *)meta)[meta_len] = 0;
        }
        if (nbytes) {
            if (read_grown(r, (size_t)nbytes, &data, &have) != 0) {
                free(meta);
                free(data);
                if (ferror(r->f)) return read_error(r, at);
                return fail(r, at, "truncated record %" PRIu64 " (wanted %" PRIu64 " payload bytes, got %zu)",
                            index, nbytes, have);
            }
        }
        unsigned char sum[8];
        got = read_some(r, sum, sizeof sum);
        if (got < sizeof sum) {
            free(meta);
            free(data);
            if (ferror(r->f)) return read_error(r, at);
            return fail(r, at, "truncated record %" PRIu64 " (wanted 8 checksum bytes, got %zu)",
                        index, got);
        }
        if (get64(sum) != XXH64_digest(r->hash)) {
            free(meta);
            free(data);
            return fail(r, at, "checksum mismatch in record %" PRIu64, index);
        }
        if (meta_len && citer_meta_check(meta, meta_len) != 0) {
            char why[300];
            snprintf(why, sizeof why, "%s", citer_error());
            free(meta);
            free(data);
            return fail(r, at, "record %" PRIu64 ": %s", index, why);
        }
        r->all_records++;

        if (kind == CITER_END) {
            if (seq != r->in_stream)
                return fail(r, at, "END record counts %" PRIu64 " records but the stream has %" PRIu64,
                            seq, r->in_stream);
            r->state = AFTER_END;
            r->streams++;
            if (!r->return_end) continue;
        } else {
            r->in_stream++;
            r->records++;
        }
        rec->kind = kind;
        rec->dtype = dtype;
        rec->ndim = ndim;
        memcpy(rec->dim, dim, sizeof dim);
        rec->seq = seq;
        rec->pos = pos;
        rec->meta = meta;
        rec->meta_len = meta_len;
        rec->data = data;
        rec->nbytes = (size_t)nbytes;
        return 1;
    }
}

/* ---- writer ---- */

struct citer_writer {
    FILE *f;
    int header_written; /* for the current stream */
    uint64_t in_stream; /* data records in the current stream */
    uint64_t records;   /* data records, all streams */
    uint64_t off;       /* bytes written */
    XXH64_state_t *hash;
};

citer_writer *citer_writer_new(FILE *f)
{
    citer_writer *w = xcalloc(1, sizeof *w);
    w->f = f;
    w->hash = XXH64_createState();
    if (!w->hash) {
        fprintf(stderr, "%s: out of memory\n", cli_progname());
        exit(1);
    }
    return w;
}

void citer_writer_free(citer_writer *w)
{
    if (!w) return;
    XXH64_freeState(w->hash);
    free(w);
}

uint64_t citer_writer_offset(const citer_writer *w) { return w->off; }
uint64_t citer_writer_records(const citer_writer *w) { return w->records; }

static int put(citer_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n) {
        citer_set_error("write error: %s", strerror(errno));
        return -1;
    }
    w->off += n;
    return 0;
}

static int write_header_once(citer_writer *w)
{
    if (w->header_written) return 0;
    unsigned char h[CITER_STREAM_HEADER_SIZE];
    memcpy(h, CITER_STREAM_MAGIC, 8);
    put32(h + 8, CITER_STREAM_VERSION);
    put32(h + 12, 0);
    if (put(w, h, sizeof h) != 0) return -1;
    w->header_written = 1;
    w->in_stream = 0;
    return 0;
}

/* Write one record whose fields are already known to be valid. */
static int write_record(citer_writer *w, int kind, int dtype, int ndim, const uint32_t *dim,
                        uint64_t seq, int64_t pos, const char *meta, uint32_t meta_len,
                        const void *data, size_t nbytes)
{
    unsigned char h[CITER_RECORD_HEADER_SIZE] = {0};
    memcpy(h, "CREC", 4);
    h[4] = (unsigned char)kind;
    h[5] = (unsigned char)dtype;
    h[6] = (unsigned char)ndim;
    put64(h + 8, seq);
    put64(h + 16, (uint64_t)pos);
    for (int i = 0; i < 4; i++) put32(h + 24 + 4 * i, dim[i]);
    put32(h + 40, meta_len);
    XXH64_reset(w->hash, 0);
    XXH64_update(w->hash, h, sizeof h);
    if (meta_len) XXH64_update(w->hash, meta, meta_len);
    if (nbytes) XXH64_update(w->hash, data, nbytes);
    unsigned char sum[8];
    put64(sum, XXH64_digest(w->hash));
    if (put(w, h, sizeof h) || put(w, meta, meta_len) || put(w, data, nbytes) ||
        put(w, sum, sizeof sum))
        return -1;
    return 0;
}

int citer_write(citer_writer *w, const citer_record *rec)
{
    if (citer_record_check(rec) != 0) return -1;
    uint32_t meta_len = rec->meta ? (rec->meta_len ? rec->meta_len : (uint32_t)strlen(rec->meta)) : 0;
    if (write_header_once(w) != 0) return -1;
    if (write_record(w, rec->kind, rec->dtype, rec->ndim, rec->dim, rec->seq, rec->pos, rec->meta,
                     meta_len, rec->data, rec->nbytes) != 0)
        return -1;
    w->in_stream++;
    w->records++;
    return 0;
}

int citer_writer_finish(citer_writer *w)
{
    static const uint32_t end_dim[4] = {1, 0, 0, 0};
    if (write_header_once(w) != 0) return -1;
    if (write_record(w, CITER_END, CITER_DT_NONE, 1, end_dim, w->in_stream, -1, NULL, 0, NULL, 0))
        return -1;
    w->header_written = 0; /* a later record starts a new, concatenated stream */
    w->in_stream = 0;
    return 0;
}

int citer_write_tokens(citer_writer *w, uint64_t seq, int64_t pos, const int32_t *ids, size_t n,
                       const char *meta)
{
    if (n > UINT32_MAX) {
        citer_set_error("%zu tokens do not fit one record", n);
        return -1;
    }
    citer_record r;
    citer_record_init(&r, CITER_TOKENS, CITER_I32, seq, pos);
    r.ndim = 1;
    r.dim[0] = (uint32_t)n;
    r.data = (void *)ids;
    r.nbytes = n * sizeof *ids;
    r.meta = (char *)meta;
    return citer_write(w, &r);
}

int citer_write_meta(citer_writer *w, uint64_t seq, const char *meta)
{
    citer_record r;
    citer_record_init(&r, CITER_META, CITER_DT_NONE, seq, -1);
    r.meta = (char *)meta;
    return citer_write(w, &r);
}
