/* stream: the one binary format every citer tool reads and writes (see citer-stream(5)).
 *
 * A stream is a 16-byte stream header followed by self-describing records and an END record.
 * Every record carries its own XXH64 checksum, so truncation and corruption are detected while
 * reading from a pipe, record by record, without seeking. Little-endian throughout.
 *
 * Stream header (16 bytes):
 *   0  8  magic "\x89CITER\r\n"   (high bit and CR LF catch 7-bit and newline-mangling transports)
 *   8  4  u32 format version (CITER_STREAM_VERSION)
 *   12 4  u32 flags (0; readers reject unknown bits)
 * Record (48-byte header, metadata, payload, checksum):
 *   0  4  sync "CREC"
 *   4  1  u8 kind       (enum citer_kind)
 *   5  1  u8 dtype      (enum citer_dtype)
 *   6  1  u8 ndim       (0..4)
 *   7  1  u8 reserved   (0)
 *   8  8  u64 seq       (sequence / example id: links the records of one example)
 *   16 8  i64 pos       (position in the sequence, -1 when not meaningful)
 *   24 16 u32 dim[4]    (shape; unused dims are 0; payload elements = product of dim[0..ndim-1])
 *   40 4  u32 meta_len  (bytes of metadata: UTF-8 JSON object text, strict RFC 8259, nested
 *                        at most 32 deep, no NUL, at most CITER_MAX_META; 0 = none)
 *   44 4  u32 reserved  (0)
 *   48 meta_len bytes metadata, then the payload (elements * dtype size bytes), then
 *   u64 XXH64 (seed 0) of every preceding byte of the record (header, metadata, payload).
 * dtype NONE means no payload whatever the shape. An END record (kind 0, dtype NONE, ndim 1,
 * dim[0] = 1, pos -1, meta_len 0, payload none, seq = number of records after the stream header
 * and before it) closes the stream; a stream without one was truncated. After an END record
 * comes either the end of the input or another stream header: concatenated streams read as one.
 */
#ifndef CITER_STREAM_H
#define CITER_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "half.h" /* f16 and bf16 conversions */

#define CITER_STREAM_VERSION 1
#define CITER_STREAM_MAGIC "\x89" "CITER\r\n"
#define CITER_STREAM_HEADER_SIZE 16
#define CITER_RECORD_HEADER_SIZE 48
#define CITER_MAX_META (1u << 20)        /* 1 MiB of metadata per record */
#define CITER_MAX_PAYLOAD (1ull << 32)   /* 4 GiB of payload per record, default reader bound */

enum citer_kind {
    CITER_END = 0,      /* closes a stream */
    CITER_TOKENS = 1,   /* token ids: dtype i32, shape [n] */
    CITER_TENSOR = 2,   /* any tensor: logits, hidden states, ... */
    CITER_FEATURE = 3,  /* labelled feature vector (router training): label etc. in metadata */
    CITER_REQUEST = 4,  /* a request to a serving tool (op in metadata) */
    CITER_RESPONSE = 5, /* its answer */
    CITER_META = 6,     /* metadata only: run statistics, answers, configuration */
};

enum citer_dtype {
    CITER_DT_NONE = 0, /* no payload */
    CITER_I32 = 1,
    CITER_F32 = 2,
    CITER_F16 = 3,
    CITER_BF16 = 4,
    CITER_U8 = 5,
};

typedef struct {
    int kind;          /* enum citer_kind */
    int dtype;         /* enum citer_dtype */
    int ndim;          /* 0..4 */
    uint32_t dim[4];
    uint64_t seq;
    int64_t pos;
    char *meta;        /* NUL-terminated JSON text, NULL when meta_len == 0 */
    uint32_t meta_len; /* writing: 0 with meta set means strlen(meta) */
    void *data;        /* payload, NULL when empty */
    size_t nbytes;
} citer_record;

const char *citer_kind_name(int kind);   /* "tokens", "tensor", ... ; NULL if unknown */
int citer_kind_from_name(const char *s); /* -1 if unknown */
const char *citer_dtype_name(int dtype); /* "i32", "f32", ...; NULL if unknown */
int citer_dtype_from_name(const char *s);
size_t citer_dtype_size(int dtype);      /* 0 for NONE / unknown */
size_t citer_record_elements(const citer_record *r); /* SIZE_MAX if the shape is invalid */

/* 0 when meta[0..len) is valid UTF-8 JSON object text without NUL, else -1 + citer_error(). */
int citer_meta_check(const char *meta, size_t len);
/* 0 when a data record (kind other than END) is consistent: known kind and dtype, ndim 0..4,
 * unused dims 0, nbytes = elements * dtype size, meta within CITER_MAX_META and valid. */
int citer_record_check(const citer_record *r);

/* Fill a record that points at caller-owned memory (nothing is copied or freed). */
void citer_record_init(citer_record *r, int kind, int dtype, uint64_t seq, int64_t pos);
/* Free meta and data of a record returned by citer_read, and reset it. */
void citer_record_free(citer_record *r);

typedef struct citer_reader citer_reader;
/* name is used in messages ("-" or a path). max_payload 0 = CITER_MAX_PAYLOAD. */
citer_reader *citer_reader_new(FILE *f, const char *name);
void citer_reader_set_max_payload(citer_reader *r, uint64_t max_payload);
/* 1: a record was read into *rec (free with citer_record_free);
 * 0: clean end of stream (END record seen, then EOF);
 * -1: error; citer_error() holds "byte OFFSET: what is wrong" (bad magic, unknown version,
 *     truncated, checksum mismatch, bad field, record count mismatch). */
int citer_read(citer_reader *r, citer_record *rec);
uint64_t citer_reader_offset(const citer_reader *r); /* bytes consumed so far */
/* With on set, END records are returned too (kind CITER_END, seq = the stream's record count);
 * the reader still checks them and goes on to a concatenated stream. */
void citer_reader_return_end(citer_reader *r, int on);
uint64_t citer_reader_records(const citer_reader *r); /* data records read (END not counted) */
uint64_t citer_reader_streams(const citer_reader *r); /* streams closed by an END record */
const char *citer_reader_name(const citer_reader *r);
void citer_reader_free(citer_reader *r);             /* does not close the FILE */

typedef struct citer_writer citer_writer;
citer_writer *citer_writer_new(FILE *f); /* writes the stream header lazily, at the first record */
/* 0 ok, -1 error (citer_error): the record is checked with citer_record_check first.
 * Does not flush: call fflush(f) when a peer is waiting for the record. */
int citer_write(citer_writer *w, const citer_record *rec);
/* Write the END record (and the stream header when no record was written: an empty stream).
 * Returns 0 ok. Does not close the FILE. A later citer_write starts a new, concatenated stream. */
int citer_writer_finish(citer_writer *w);
uint64_t citer_writer_offset(const citer_writer *w);  /* bytes written so far */
uint64_t citer_writer_records(const citer_writer *w); /* data records written */
void citer_writer_free(citer_writer *w);

/* Convenience writers. meta may be NULL. */
int citer_write_tokens(citer_writer *w, uint64_t seq, int64_t pos, const int32_t *ids, size_t n,
                       const char *meta);
int citer_write_meta(citer_writer *w, uint64_t seq, const char *meta);

#endif
