/* gguf: reader (memory-mapped) and writer for GGUF v2/v3 model files.
 * Every length and offset read from the file is bounds-checked against the file size. */
#ifndef CITER_GGUF_H
#define CITER_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

enum gguf_type { /* metadata value types, as in the GGUF specification */
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4,
    GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9,
    GGUF_UINT64 = 10, GGUF_INT64 = 11, GGUF_FLOAT64 = 12,
};

enum ggml_type { /* tensor types (subset this project knows by name) */
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12,
    GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_BF16 = 30,
};

typedef struct {
    const char *ptr; /* points into the mapped file: NOT NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    int type;          /* enum gguf_type */
    /* scalar value (for non-array, non-string types) */
    union { uint64_t u; int64_t i; double f; int b; } v;
    gguf_str str;      /* GGUF_STRING */
    int arr_type;      /* GGUF_ARRAY: element type */
    uint64_t arr_n;    /* GGUF_ARRAY: element count */
    const uint8_t *arr_data; /* GGUF_ARRAY: first element in the file (strings: length-prefixed) */
} gguf_kv;

typedef struct {
    gguf_str name;
    int type;          /* enum ggml_type */
    int n_dims;        /* 1..4 */
    uint64_t ne[4];    /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint64_t offset;   /* relative to the data section */
    const void *data;  /* into the map */
    uint64_t nbytes;
} gguf_tensor;

typedef struct {
    citer_map map;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
} gguf_file;

/* Open and validate. NULL + citer_error() ("not a GGUF file", "truncated at byte N", ...). */
gguf_file *gguf_open(const char *path);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
/* Typed getters: return 0 ok, -1 missing or wrong type (citer_error says which). Integer getters
 * accept any integer type whose value fits. */
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out);
int gguf_get_i64(const gguf_file *g, const char *key, int64_t *out);
int gguf_get_f64(const gguf_file *g, const char *key, double *out); /* any float or int type */
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
/* String value as a malloc'd NUL-terminated copy; NULL if missing/wrong type. */
char *gguf_get_str(const gguf_file *g, const char *key);
/* Array element access. Strings: the i-th string of a GGUF_ARRAY of strings. Walking a string
 * array is linear, so gguf_str_array() returns all of them at once (malloc'd array of gguf_str). */
gguf_str *gguf_str_array(const gguf_kv *kv);
int gguf_array_f32(const gguf_kv *kv, uint64_t i, float *out);   /* f32/f64/int elements */
int gguf_array_i64(const gguf_kv *kv, uint64_t i, int64_t *out); /* any integer elements */

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
const char *ggml_type_name(int type);     /* "f32", "q8_0", ...; NULL if unknown */
/* Block geometry of a tensor type: elements per block and bytes per block; 0 if unknown. */
int ggml_type_block(int type, uint64_t *block_elems, uint64_t *block_bytes);

/* Writer: collects metadata and tensors, then writes a GGUF v3 file atomically. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_set_f32(gguf_writer *w, const char *key, float v);
void gguf_set_bool(gguf_writer *w, const char *key, int v);
void gguf_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n);
void gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n);
void gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Add a tensor; data (nbytes for its type and shape) is copied. ne as in gguf_tensor. */
void gguf_add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const uint64_t *ne,
                     const void *data);
int gguf_write(gguf_writer *w, const char *path); /* 0 ok, -1 error (citer_error) */

#endif
