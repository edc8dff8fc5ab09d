/* Tests for lib/stream: layout bytes, round trips, pipes, concatenation, corruption. */
#include "check.h"
#include "stream.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- helpers ---- */

/* A growable byte buffer written through open_memstream. */
typedef struct {
    char *buf;
    size_t len;
    FILE *f;
} membuf;

static void mb_open(membuf *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
}

static void mb_close(membuf *m)
{
    fclose(m->f);
    m->f = NULL;
}

/* Read every record of buf[0..len); returns the last citer_read result (0 clean, -1 error)
 * and the number of data records. */
static int read_all(const void *buf, size_t len, int *nrec)
{
    *nrec = 0;
    if (len == 0) {
        /* fmemopen refuses size 0 on some libcs: read an empty file instead */
        FILE *f = fopen("/dev/null", "rb");
        citer_reader *r = citer_reader_new(f, "t");
        citer_record rec;
        int rc = citer_read(r, &rec);
        citer_reader_free(r);
        fclose(f);
        return rc;
    }
    FILE *f = fmemopen((void *)buf, len, "rb");
    citer_reader *r = citer_reader_new(f, "t");
    citer_record rec;
    int rc;
    while ((rc = citer_read(r, &rec)) == 1) {
        (*nrec)++;
        citer_record_free(&rec);
    }
    citer_reader_free(r);
    fclose(f);
    return rc;
}

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Build raw records by hand (from the layout in citer-stream(5)), so tests can make streams
 * the writer refuses to make. Appends to out; returns new length. */
static size_t raw_header(unsigned char *out, size_t at, uint32_t version, uint32_t flags)
{
    memcpy(out + at, "\x89" "CITER\r\n", 8);
    le32(out + at + 8, version);
    le32(out + at + 12, flags);
    return at + 16;
}

static size_t raw_record(unsigned char *out, size_t at, int kind, int dtype, int ndim,
                         const uint32_t dim[4], uint64_t seq, int64_t pos, const char *meta,
                         size_t meta_len, const void *data, size_t nbytes)
{
    unsigned char *p = out + at;
    memset(p, 0, 48);
    memcpy(p, "CREC", 4);
    p[4] = (unsigned char)kind;
    p[5] = (unsigned char)dtype;
    p[6] = (unsigned char)ndim;
    le64(p + 8, seq);
    le64(p + 16, (uint64_t)pos);
    for (int i = 0; i < 4; i++) le32(p + 24 + 4 * i, dim ? dim[i] : 0);
    le32(p + 40, (uint32_t)meta_len);
    if (meta_len) memcpy(p + 48, meta, meta_len);
    if (nbytes) memcpy(p + 48 + meta_len, data, nbytes);
    size_t n = 48 + meta_len + nbytes;
    le64(p + n, XXH64(p, n, 0));
    return at + n + 8;
}

static size_t raw_end(unsigned char *out, size_t at, uint64_t count)
{
    uint32_t dim[4] = {1, 0, 0, 0};
    return raw_record(out, at, 0, 0, 1, dim, count, -1, NULL, 0, NULL, 0);
}

/* A small valid stream of several records used by the corruption tests. */
static void small_stream(membuf *m)
{
    mb_open(m);
    citer_writer *w = citer_writer_new(m->f);
    int32_t ids[3] = {5, -1, 70000};
    citer_write_tokens(w, 0, 0, ids, 3, "{\"role\":\"prompt\"}");
    citer_write_meta(w, 0, "{\"n\":1}");
    citer_record r;
    citer_record_init(&r, CITER_TENSOR, CITER_F16, 1, 2);
    uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};
    r.ndim = 2;
    r.dim[0] = 2;
    r.dim[1] = 2;
    r.data = h;
    r.nbytes = sizeof h;
    citer_write(w, &r);
    citer_writer_finish(w);
    citer_writer_free(w);
    mb_close(m);
}

/* ---- cases ---- */

static void names(void)
{
    const char *kinds[] = {"end", "tokens", "tensor", "feature", "request", "response", "meta"};
    for (int i = 0; i < 7; i++) {
        CHECK(citer_kind_name(i) && strcmp(citer_kind_name(i), kinds[i]) == 0, "kind %d", i);
        CHECK(citer_kind_from_name(kinds[i]) == i, "kind %s", kinds[i]);
    }
    CHECK(citer_kind_name(7) == NULL && citer_kind_name(-1) == NULL, "unknown kind");
    CHECK(citer_kind_from_name("bogus") == -1, "bogus kind");
    const char *dts[] = {"none", "i32", "f32", "f16", "bf16", "u8"};
    size_t sizes[] = {0, 4, 4, 2, 2, 1};
    for (int i = 0; i < 6; i++) {
        CHECK(strcmp(citer_dtype_name(i), dts[i]) == 0, "dtype %d", i);
        CHECK(citer_dtype_from_name(dts[i]) == i, "dtype %s", dts[i]);
        CHECK(citer_dtype_size(i) == sizes[i], "size %d", i);
    }
    CHECK(citer_dtype_name(6) == NULL && citer_dtype_size(99) == 0, "unknown dtype");
    CHECK(citer_dtype_from_name("f64") == -1, "f64");
}

static void half_floats(void)
{
    /* hand-computed IEEE binary16 encodings */
    struct { uint16_t h; float f; } known[] = {
        {0x3c00, 1.0f}, {0xc000, -2.0f}, {0x7bff, 65504.0f}, {0x0001, 5.9604644775390625e-8f},
        {0x0400, 6.103515625e-5f}, {0x3555, 0.333251953125f}, {0x8000, -0.0f}, {0x7c00, INFINITY},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        CHECK(citer_f16_to_f32(known[i].h) == known[i].f, "f16 %04x", known[i].h);
        CHECK(citer_f32_to_f16(known[i].f) == known[i].h, "to f16 %g", known[i].f);
    }
    /* rounding: 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even */
    CHECK(citer_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even down");
    CHECK(citer_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even up");
    CHECK(citer_f32_to_f16(65520.0f) == 0x7c00, "overflow to inf");
    CHECK(citer_f32_to_f16(0x1p-25f) == 0x0000, "half of smallest subnormal ties to 0");
    CHECK(citer_f32_to_f16(0x1.8p-25f) == 0x0001, "above half rounds up");
    CHECK(citer_f32_to_bf16(1.0f) == 0x3f80 && citer_bf16_to_f32(0x3f80) == 1.0f, "bf16 1");
    CHECK(citer_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even");
    CHECK(citer_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie up");
    /* every 16-bit pattern converts to f32 and back unchanged (NaNs stay NaNs) */
    int bad16 = 0, badbf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = citer_f16_to_f32((uint16_t)h);
        if (citer_f32_to_f16(f) != h) bad16++;
        float g = citer_bf16_to_f32((uint16_t)h);
        if (citer_f32_to_bf16(g) != h) badbf++;
    }
    CHECK(bad16 == 0, "%d f16 patterns do not round trip", bad16);
    CHECK(badbf == 0, "%d bf16 patterns do not round trip", badbf);
}

/* The writer's bytes against the layout, computed here field by field. */
static void layout_bytes(void)
{
    membuf m;
    mb_open(&m);
    citer_writer *w = citer_writer_new(m.f);
    int32_t ids[3] = {1, 2, -3};
    REQUIRE(citer_write_tokens(w, 7, 5, ids, 3, "{\"a\":1}") == 0, "%s", citer_error());
    REQUIRE(citer_writer_finish(w) == 0, "%s", citer_error());
    citer_writer_free(w);
    mb_close(&m);

    unsigned char want[256];
    size_t n = 0;
    memcpy(want, "\x89\x43\x49\x54\x45\x52\x0d\x0a", 8);
    le32(want + 8, 1);
    le32(want + 12, 0);
    n = 16;
    unsigned char *rec = want + n;
    memset(rec, 0, 48);
    memcpy(rec, "CREC", 4);
    rec[4] = 1, rec[5] = 1, rec[6] = 1;
    le64(rec + 8, 7);
    le64(rec + 16, 5);
    le32(rec + 24, 3);
    le32(rec + 40, 7);
    memcpy(rec + 48, "{\"a\":1}", 7);
    unsigned char payload[12] = {1, 0, 0, 0, 2, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff};
    memcpy(rec + 55, payload, 12);
    le64(rec + 67, XXH64(rec, 67, 0));
    n += 75;
    unsigned char *end = want + n;
    memset(end, 0, 48);
    memcpy(end, "CREC", 4);
    end[6] = 1;
    le64(end + 8, 1);
    le64(end + 16, UINT64_MAX); /* pos -1 */
    le32(end + 24, 1);
    le64(end + 48, XXH64(end, 48, 0));
    n += 56;
    CHECK(m.len == n, "stream is %zu bytes, want %zu", m.len, n);
    CHECK(m.len == n && memcmp(m.buf, want, n) == 0, "bytes differ from the layout");
    free(m.buf);
}

static const uint32_t shapes[][5] = {
    /* ndim, dims */
    {0, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {1, 3, 0, 0, 0}, {2, 2, 3, 0, 0},
    {3, 2, 0, 3, 0}, {4, 2, 1, 3, 2}, {4, 1, 1, 1, 1},
};
#define NSHAPES (int)(sizeof shapes / sizeof *shapes)

static void round_trip(void)
{
    membuf m;
    mb_open(&m);
    citer_writer *w = citer_writer_new(m.f);
    int count = 0;
    unsigned char pattern[256];
    for (int i = 0; i < 256; i++) pattern[i] = (unsigned char)(i * 37 + 11);
    for (int kind = 1; kind <= 6; kind++)
        for (int dt = 0; dt <= 5; dt++)
            for (int s = 0; s < NSHAPES; s++)
                for (int withmeta = 0; withmeta < 2; withmeta++) {
                    citer_record r;
                    citer_record_init(&r, kind, dt, (uint64_t)count * 1000003u, count - 50);
                    r.ndim = (int)shapes[s][0];
                    memcpy(r.dim, shapes[s] + 1, 16);
                    r.nbytes = citer_record_elements(&r) * citer_dtype_size(dt);
                    r.data = r.nbytes ? pattern : NULL;
                    char meta[64];
                    snprintf(meta, sizeof meta, "{\"role\":\"x\",\"i\":%d, \"u\":\"\xc3\xa9\"}", count);
                    if (withmeta) r.meta = meta;
                    REQUIRE(citer_write(w, &r) == 0, "write %d: %s", count, citer_error());
                    count++;
                }
    REQUIRE(citer_writer_finish(w) == 0, "finish");
    CHECK(citer_writer_records(w) == (uint64_t)count, "writer count");
    CHECK(citer_writer_offset(w) == (uint64_t)ftell(m.f), "writer offset");
    citer_writer_free(w);
    mb_close(&m);

    FILE *f = fmemopen(m.buf, m.len, "rb");
    citer_reader *rd = citer_reader_new(f, "mem");
    int i = 0;
    citer_record rec;
    for (int kind = 1; kind <= 6; kind++)
        for (int dt = 0; dt <= 5; dt++)
            for (int s = 0; s < NSHAPES; s++)
                for (int withmeta = 0; withmeta < 2; withmeta++) {
                    int rc = citer_read(rd, &rec);
                    REQUIRE(rc == 1, "read %d: rc %d %s", i, rc, citer_error());
                    CHECK(rec.kind == kind && rec.dtype == dt, "kind/dtype %d", i);
                    CHECK(rec.ndim == (int)shapes[s][0] && memcmp(rec.dim, shapes[s] + 1, 16) == 0,
                          "shape %d", i);
                    CHECK(rec.seq == (uint64_t)i * 1000003u && rec.pos == i - 50, "seq/pos %d", i);
                    size_t nb = citer_record_elements(&rec) * citer_dtype_size(dt);
                    CHECK(rec.nbytes == nb, "nbytes %d", i);
                    CHECK(nb == 0 ? rec.data == NULL : memcmp(rec.data, pattern, nb) == 0,
                          "data %d", i);
                    char meta[64];
                    snprintf(meta, sizeof meta, "{\"role\":\"x\",\"i\":%d, \"u\":\"\xc3\xa9\"}", i);
                    if (withmeta)
                        CHECK(rec.meta && rec.meta_len == strlen(meta) && strcmp(rec.meta, meta) == 0,
                              "meta %d", i);
                    else
                        CHECK(rec.meta == NULL && rec.meta_len == 0, "no meta %d", i);
                    citer_record_free(&rec);
                    i++;
                }
    CHECK(citer_read(rd, &rec) == 0, "clean end: %s", citer_error());
    CHECK(citer_read(rd, &rec) == 0, "still clean end");
    CHECK(citer_reader_records(rd) == (uint64_t)count, "reader count");
    CHECK(citer_reader_streams(rd) == 1, "one stream");
    CHECK(citer_reader_offset(rd) == m.len, "offset %llu of %zu",
          (unsigned long long)citer_reader_offset(rd), m.len);
    citer_reader_free(rd);
    fclose(f);
    free(m.buf);
}

static void empty_stream(void)
{
    membuf m;
    mb_open(&m);
    citer_writer *w = citer_writer_new(m.f);
    REQUIRE(citer_writer_finish(w) == 0, "finish");
    citer_writer_free(w);
    mb_close(&m);
    CHECK(m.len == 16 + 56, "empty stream is %zu bytes", m.len);
    int n;
    CHECK(read_all(m.buf, m.len, &n) == 0 && n == 0, "reads as empty: %s", citer_error());
    free(m.buf);
    /* no bytes at all is not a stream */
    CHECK(read_all("", 0, &n) == -1, "empty input");
    CHECK(strcmp(citer_error(), "byte 0: empty input (not a citer stream)") == 0, "%s",
          citer_error());
}

static void concatenated(void)
{
    membuf m;
    mb_open(&m);
    citer_writer *w = citer_writer_new(m.f);
    int32_t id = 42;
    citer_write_tokens(w, 0, 0, &id, 1, NULL);
    citer_writer_finish(w);
    citer_writer_finish(w); /* an empty stream in the middle */
    citer_write_tokens(w, 1, 0, &id, 1, NULL);
    citer_write_tokens(w, 2, 0, &id, 1, NULL);
    citer_writer_finish(w);
    citer_writer_free(w);
    /* and a stream from a second writer appended */
    w = citer_writer_new(m.f);
    citer_write_meta(w, 3, "{}");
    citer_writer_finish(w);
    citer_writer_free(w);
    mb_close(&m);

    FILE *f = fmemopen(m.buf, m.len, "rb");
    citer_reader *r = citer_reader_new(f, "cat");
    citer_reader_return_end(r, 1);
    citer_record rec;
    int kinds[16], n = 0, rc;
    uint64_t seqs[16];
    while (n < 16 && (rc = citer_read(r, &rec)) == 1) {
        kinds[n] = rec.kind;
        seqs[n++] = rec.seq;
        citer_record_free(&rec);
    }
    CHECK(rc == 0, "clean end: %s", citer_error());
    int wk[] = {CITER_TOKENS, CITER_END, CITER_END, CITER_TOKENS, CITER_TOKENS, CITER_END,
                CITER_META, CITER_END};
    uint64_t ws[] = {0, 1, 0, 1, 2, 2, 3, 1};
    CHECK(n == 8, "%d records", n);
    for (int i = 0; i < n && i < 8; i++)
        CHECK(kinds[i] == wk[i] && seqs[i] == ws[i], "record %d: kind %d seq %llu", i, kinds[i],
              (unsigned long long)seqs[i]);
    CHECK(citer_reader_records(r) == 4 && citer_reader_streams(r) == 4, "counts");
    citer_reader_free(r);
    fclose(f);
    int nrec;
    CHECK(read_all(m.buf, m.len, &nrec) == 0 && nrec == 4, "without ENDs: %d", nrec);
    free(m.buf);
}

/* A writer in a child process, the reader on the other end of a pipe. */
static void pipe_read(void)
{
    int fd[2];
    REQUIRE(pipe(fd) == 0, "pipe");
    enum { N = 300, LEN = 5000 };
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        close(fd[0]);
        FILE *f = fdopen(fd[1], "wb");
        citer_writer *w = citer_writer_new(f);
        int32_t *ids = malloc(LEN * sizeof *ids);
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < LEN; k++) ids[k] = i * 7 + k;
            if (citer_write_tokens(w, (uint64_t)i, i, ids, (size_t)(i % 3 == 0 ? 0 : LEN),
                                   "{\"role\":\"pipe\"}") != 0)
                _exit(2);
            if (i % 50 == 0) fflush(f);
        }
        citer_writer_finish(w);
        fclose(f);
        _exit(0);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "rb");
    citer_reader *r = citer_reader_new(f, "pipe");
    citer_record rec;
    int n = 0, rc, bad = 0;
    while ((rc = citer_read(r, &rec)) == 1) {
        size_t want = n % 3 == 0 ? 0 : LEN;
        if (rec.seq != (uint64_t)n || rec.dim[0] != want) bad++;
        const int32_t *ids = rec.data;
        for (size_t k = 0; k < want; k++)
            if (ids[k] != n * 7 + (int)k) {
                bad++;
                break;
            }
        citer_record_free(&rec);
        n++;
    }
    CHECK(rc == 0, "end: %s", citer_error());
    CHECK(n == N && bad == 0, "%d records, %d bad", n, bad);
    citer_reader_free(r);
    fclose(f);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer status");
}

/* Every proper prefix of a valid stream is an error, never a success or a crash. */
static void truncation(void)
{
    membuf m;
    small_stream(&m);
    int bad = 0, nrec;
    for (size_t len = 0; len < m.len; len++) {
        int rc = read_all(m.buf, len, &nrec);
        if (rc != -1 || strncmp(citer_error(), "byte ", 5) != 0) {
            if (bad++ < 5) printf("  length %zu: rc %d, %s\n", len, rc, citer_error());
        }
    }
    CHECK(bad == 0, "%d prefixes of %zu not detected", bad, m.len);
    CHECK(read_all(m.buf, m.len, &nrec) == 0 && nrec == 3, "whole stream");
    /* the exact messages at a few lengths */
    read_all(m.buf, 5, &nrec);
    CHECK(strcmp(citer_error(), "byte 0: truncated stream header (wanted 16 bytes, got 5)") == 0,
          "%s", citer_error());
    read_all(m.buf, 16 + 13, &nrec);
    CHECK(strcmp(citer_error(), "byte 16: truncated record 1 (wanted 48 header bytes, got 13)") == 0,
          "%s", citer_error());
    read_all(m.buf, 16, &nrec);
    CHECK(strcmp(citer_error(), "byte 16: stream ends without END record (truncated?)") == 0, "%s",
          citer_error());
    read_all(m.buf, m.len - 56, &nrec);
    CHECK(strstr(citer_error(), "stream ends without END record") != NULL, "%s", citer_error());
    free(m.buf);
}

static void bit_flips(void)
{
    membuf m;
    small_stream(&m);
    unsigned char *copy = malloc(m.len);
    int missed = 0, nrec;
    for (size_t i = 0; i < m.len * 8; i++) {
        memcpy(copy, m.buf, m.len);
        copy[i / 8] ^= (unsigned char)(1u << (i % 8));
        int rc = read_all(copy, m.len, &nrec);
        if (rc != -1 && missed++ < 5) printf("  flip of bit %zu not detected\n", i);
    }
    CHECK(missed == 0, "%d of %zu flips missed", missed, m.len * 8);
    free(copy);
    free(m.buf);
}

static void random_bytes(void)
{
    unsigned char buf[4096];
    uint64_t x = 88172645463325252ull;
    int ok = 0;
    for (int t = 0; t < 3000; t++) {
        size_t len = 0;
        /* a third start with a valid header, a third with a header and a plausible record */
        if (t % 3 >= 1) len = raw_header(buf, 0, 1, 0);
        if (t % 3 == 2) {
            memcpy(buf + len, "CREC", 4);
            len += 4;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t extra = (size_t)(x % (sizeof buf - len));
        for (size_t i = 0; i < extra; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[len + i] = (unsigned char)x;
            if (t % 2 && i + len >= 20 && i + len < 48 + 20) buf[len + i] &= 0x03; /* small fields */
        }
        len += extra;
        int nrec;
        if (read_all(buf, len, &nrec) != -1) ok++;
    }
    CHECK(ok == 0, "%d random inputs accepted", ok);
}

/* Overwrites, deletions and insertions anywhere in a valid stream are all reported. */
static void mutations(void)
{
    membuf m;
    small_stream(&m);
    unsigned char *copy = malloc(m.len + 16);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int missed = 0, nrec;
    for (int t = 0; t < 5000; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t at = (size_t)(x % m.len), len = m.len;
        int op = (int)((x >> 32) % 3), count = 1 + (int)((x >> 40) % 4);
        memcpy(copy, m.buf, m.len);
        if (op == 0) { /* overwrite: every byte really changes */
            for (int k = 0; k < count && at + (size_t)k < m.len; k++)
                copy[at + (size_t)k] ^= (unsigned char)(1 + ((x >> (8 * k)) % 255));
        } else if (op == 1) { /* delete */
            size_t d = at + (size_t)count <= m.len ? (size_t)count : m.len - at;
            memmove(copy + at, copy + at + d, m.len - at - d);
            len -= d;
        } else { /* insert */
            memmove(copy + at + count, copy + at, m.len - at);
            for (int k = 0; k < count; k++) copy[at + (size_t)k] = (unsigned char)(x >> (8 * k));
            len += (size_t)count;
        }
        if (read_all(copy, len, &nrec) != -1 && missed++ < 5)
            printf("  mutation %d (op %d at %zu, %d bytes) not detected\n", t, op, at, count);
    }
    CHECK(missed == 0, "%d mutations missed", missed);
    free(copy);
    free(m.buf);
}

/* A payload of several MiB through a pipe: the reader's buffer grows as the bytes come. */
static void large_payload(void)
{
    enum { N = 3000001 };
    int fd[2];
    REQUIRE(pipe(fd) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        close(fd[0]);
        FILE *f = fdopen(fd[1], "wb");
        unsigned char *big = malloc(N);
        for (size_t i = 0; i < N; i++) big[i] = (unsigned char)(i * 131 + (i >> 9));
        citer_writer *w = citer_writer_new(f);
        citer_record r;
        citer_record_init(&r, CITER_TENSOR, CITER_U8, 9, -1);
        r.ndim = 1, r.dim[0] = N, r.data = big, r.nbytes = N;
        int rc = citer_write(w, &r) || citer_writer_finish(w);
        fclose(f);
        _exit(rc ? 2 : 0);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "rb");
    citer_reader *r = citer_reader_new(f, "pipe");
    citer_reader_set_max_payload(r, 0); /* 0 = the default bound */
    citer_record rec;
    int rc = citer_read(r, &rec);
    REQUIRE(rc == 1, "read: %s", citer_error());
    int bad = rec.nbytes != N;
    const unsigned char *p = rec.data;
    for (size_t i = 0; !bad && i < N; i++) bad = p[i] != (unsigned char)(i * 131 + (i >> 9));
    CHECK(!bad, "payload differs");
    citer_record_free(&rec);
    CHECK(citer_read(r, &rec) == 0, "end: %s", citer_error());
    citer_reader_free(r);
    fclose(f);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer status");
}

static void error_messages(void)
{
    unsigned char buf[512];
    size_t n;
    int nrec;
    n = raw_header(buf, 0, 1, 0);
    buf[1] = 'X';
    read_all(buf, n, &nrec);
    CHECK(strcmp(citer_error(), "byte 0: bad magic (not a citer stream)") == 0, "%s", citer_error());
    n = raw_end(buf, raw_header(buf, 0, 7, 0), 0);
    read_all(buf, n, &nrec);
    CHECK(strcmp(citer_error(), "byte 0: unsupported stream version 7") == 0, "%s", citer_error());
    n = raw_end(buf, raw_header(buf, 0, 1, 4), 0);
    read_all(buf, n, &nrec);
    CHECK(strcmp(citer_error(), "byte 0: unknown stream flags 0x4") == 0, "%s", citer_error());

    /* checksum of the second record broken */
    int32_t ids[2] = {1, 2};
    uint32_t dim[4] = {2, 0, 0, 0};
    n = raw_header(buf, 0, 1, 0);
    size_t second = n = raw_record(buf, n, 1, 1, 1, dim, 0, 0, NULL, 0, ids, 8);
    n = raw_record(buf, n, 1, 1, 1, dim, 1, 0, NULL, 0, ids, 8);
    n = raw_end(buf, n, 2);
    CHECK(read_all(buf, n, &nrec) == 0 && nrec == 2, "valid hand-made stream: %s", citer_error());
    buf[second + 48 + 3] ^= 0x10;
    read_all(buf, n, &nrec);
    char want[128];
    snprintf(want, sizeof want, "byte %zu: checksum mismatch in record 2", second);
    CHECK(strcmp(citer_error(), want) == 0, "%s", citer_error());

    /* END count wrong */
    n = raw_end(buf, raw_record(buf, raw_header(buf, 0, 1, 0), 1, 1, 1, dim, 0, 0, NULL, 0, ids, 8), 3);
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "END record counts 3 records but the stream has 1"),
          "%s", citer_error());
    /* END with other fields */
    n = raw_record(buf, raw_header(buf, 0, 1, 0), 0, 0, 0, NULL, 0, -1, NULL, 0, NULL, 0);
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "malformed END"), "%s", citer_error());
    /* garbage after END */
    n = raw_end(buf, raw_header(buf, 0, 1, 0), 0);
    memcpy(buf + n, "junk", 4);
    CHECK(read_all(buf, n + 4, &nrec) == -1 && strstr(citer_error(), "byte 72: bad magic after END"),
          "%s", citer_error());
    /* field checks */
    struct { int kind, dtype, ndim; uint32_t dim[4]; const char *what; } bad[] = {
        {9, 0, 0, {0}, "unknown kind 9"},
        {1, 6, 0, {0}, "unknown dtype 6"},
        {1, 1, 5, {0}, "ndim 5 is over 4"},
        {1, 0, 1, {1, 2, 0, 0}, "dim[1] is 2 beyond ndim 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = raw_header(buf, 0, 1, 0);
        n = raw_record(buf, n, bad[i].kind, bad[i].dtype, bad[i].ndim, bad[i].dim, 0, 0, NULL, 0,
                       NULL, 0);
        n = raw_end(buf, n, 1);
        CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), bad[i].what) &&
                  strncmp(citer_error(), "byte 16: ", 9) == 0,
              "%s: %s", bad[i].what, citer_error());
    }
    n = raw_header(buf, 0, 1, 0);
    n = raw_record(buf, n, 1, 0, 0, NULL, 0, 0, NULL, 0, NULL, 0);
    buf[16 + 45] = 1; /* reserved u32 at 44 (checksum now wrong too, fields come first) */
    n = raw_end(buf, n, 1);
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "reserved field"), "%s",
          citer_error());
}

static void bad_meta(void)
{
    const char *bad[] = {"not json", "[1,2]", "{\"a\":1} x", "{\"a\":\xff}", "{'a':1}", "{\"a\":",
                         "\"str\"", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":NaN}", "{\"a\":1,}", "   "};
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = raw_header(buf, 0, 1, 0);
        n = raw_record(buf, n, CITER_META, 0, 0, NULL, 0, -1, bad[i], strlen(bad[i]), NULL, 0);
        n = raw_end(buf, n, 1);
        int nrec;
        CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "metadata"),
              "reader took meta '%s': %s", bad[i], citer_error());
        membuf m;
        mb_open(&m);
        citer_writer *w = citer_writer_new(m.f);
        CHECK(citer_write_meta(w, 0, bad[i]) == -1, "writer took meta '%s'", bad[i]);
        citer_writer_free(w);
        mb_close(&m);
        free(m.buf);
    }
    /* NUL inside the declared metadata */
    size_t n = raw_header(buf, 0, 1, 0);
    n = raw_record(buf, n, CITER_META, 0, 0, NULL, 0, -1, "{\"a\":1}\0", 8, NULL, 0);
    n = raw_end(buf, n, 1);
    int nrec;
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "NUL"), "%s", citer_error());
    /* good ones, with surrounding whitespace and nesting */
    const char *good[] = {"{}", " {\"a\":[1,2,{\"b\":null}]}\n", "{\"\xe2\x82\xac\":\"\xf0\x9f\x98\x80\"}"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(citer_meta_check(good[i], strlen(good[i])) == 0, "'%s': %s", good[i], citer_error());
}

static void writer_checks(void)
{
    membuf m;
    mb_open(&m);
    citer_writer *w = citer_writer_new(m.f);
    int32_t data[8] = {0};
    citer_record r;
    citer_record_init(&r, CITER_TENSOR, CITER_F32, 0, 0);
    r.ndim = 1, r.dim[0] = 3, r.data = data, r.nbytes = 8;
    CHECK(citer_write(w, &r) == -1 && strstr(citer_error(), "imply 12"), "%s", citer_error());
    r.nbytes = 12;
    CHECK(citer_write(w, &r) == 0, "%s", citer_error());
    r.ndim = 5;
    CHECK(citer_write(w, &r) == -1, "ndim 5");
    r.ndim = 1, r.dim[2] = 1;
    CHECK(citer_write(w, &r) == -1, "dim beyond ndim");
    r.dim[2] = 0, r.dtype = 9;
    CHECK(citer_write(w, &r) == -1, "dtype 9");
    r.dtype = CITER_F32, r.kind = CITER_END;
    CHECK(citer_write(w, &r) == -1, "END through citer_write");
    r.kind = 7;
    CHECK(citer_write(w, &r) == -1, "kind 7");
    r.kind = CITER_TENSOR, r.data = NULL;
    CHECK(citer_write(w, &r) == -1, "no data");
    r.ndim = 4, r.dim[0] = r.dim[1] = r.dim[2] = r.dim[3] = 0xffffffffu, r.nbytes = 0;
    CHECK(citer_write(w, &r) == -1 && strstr(citer_error(), "too large"), "%s", citer_error());
    char *big = malloc(CITER_MAX_META + 2);
    memset(big, ' ', CITER_MAX_META + 1);
    big[0] = '{', big[CITER_MAX_META - 1] = '}', big[CITER_MAX_META + 1] = 0;
    CHECK(citer_write_meta(w, 0, big) == -1 && strstr(citer_error(), "over the limit"), "%s",
          citer_error());
    big[CITER_MAX_META] = 0;
    CHECK(citer_write_meta(w, 0, big) == 0, "meta of exactly the limit: %s", citer_error());
    free(big);
    citer_writer_finish(w);
    citer_writer_free(w);
    mb_close(&m);
    int nrec;
    CHECK(read_all(m.buf, m.len, &nrec) == 0 && nrec == 2, "valid after refusals: %s", citer_error());
    free(m.buf);
}

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

/* Declared sizes beyond the limit are refused before reading; sizes within it but not backed by
 * data fail as truncation without allocating the declared size. */
static void huge_sizes(void)
{
    unsigned char buf[2048];
    int nrec;
    uint32_t dim[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    size_t n = raw_record(buf, raw_header(buf, 0, 1, 0), CITER_TENSOR, CITER_F32, 4, dim, 0, 0,
                          NULL, 0, NULL, 0);
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "larger than the limit"), "%s",
          citer_error());
    /* meta_len over the limit */
    n = raw_record(buf, raw_header(buf, 0, 1, 0), CITER_META, 0, 0, NULL, 0, 0, NULL, 0, NULL, 0);
    le32(buf + 16 + 40, 0xfffffff0u);
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "metadata of 4294967280 bytes"),
          "%s", citer_error());
    /* a settable lower bound */
    uint32_t d2[4] = {100, 0, 0, 0};
    static float payload[100];
    n = raw_end(buf, raw_record(buf, raw_header(buf, 0, 1, 0), CITER_TENSOR, CITER_F32, 1, d2, 0,
                                0, NULL, 0, payload, 400), 1);
    FILE *f = fmemopen(buf, n, "rb");
    citer_reader *r = citer_reader_new(f, "small");
    citer_reader_set_max_payload(r, 399);
    citer_record rec;
    CHECK(citer_read(r, &rec) == -1 && strstr(citer_error(), "limit of 399"), "%s", citer_error());
    citer_reader_free(r);
    fclose(f);
}

static void huge_sizes_no_alloc(void)
{
    unsigned char buf[256];
    size_t n;
    int nrec;
    /* 3 GiB declared, 30 bytes present: read in a child whose address space is capped at 1 GiB */
    uint32_t d3[4] = {3u << 28, 0, 0, 0}; /* 805306368 f32 = 3 GiB */
    n = raw_record(buf, raw_header(buf, 0, 1, 0), CITER_TENSOR, CITER_F32, 1, d3, 0, 0, NULL, 0,
                   NULL, 0);
    n -= 8; /* drop the checksum, keep 30 bytes of "payload" */
    memset(buf + n, 7, 30);
    n += 30;
#ifdef HAVE_ASAN
    CHECK(read_all(buf, n, &nrec) == -1 && strstr(citer_error(), "wanted 3221225472 payload bytes, got 30"),
          "%s", citer_error());
    SKIP("address-space cap not checked under AddressSanitizer");
#else
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        struct rlimit lim = {1u << 30, 1u << 30};
        setrlimit(RLIMIT_AS, &lim);
        int rc = read_all(buf, n, &nrec);
        _exit(rc == -1 && strstr(citer_error(), "wanted 3221225472 payload bytes, got 30") ? 0 : 3);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
#endif
}

int main(void)
{
    (void)t_fixture; /* check.h helpers this file does not need */
    (void)t_tmpdir;
    RUN(names);
    RUN(half_floats);
    RUN(layout_bytes);
    RUN(round_trip);
    RUN(empty_stream);
    RUN(concatenated);
    RUN(pipe_read);
    RUN(truncation);
    RUN(bit_flips);
    RUN(random_bytes);
    RUN(mutations);
    RUN(large_payload);
    RUN(error_messages);
    RUN(bad_meta);
    RUN(writer_checks);
    RUN(huge_sizes);
    RUN(huge_sizes_no_alloc);
    return t_exit();
}
