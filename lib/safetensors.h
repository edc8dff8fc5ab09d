/* safetensors: reader (memory-mapped, single file or sharded directory) and writer. */
#ifndef CITER_SAFETENSORS_H
#define CITER_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8, ST_I8, ST_F64, ST_BOOL };

typedef struct {
    char *name;
    int dtype;          /* enum st_dtype */
    int n_dims;         /* 0..8 */
    uint64_t shape[8];  /* row-major, shape[n_dims-1] contiguous */
    const void *data;   /* into the map */
    uint64_t nbytes;
} st_tensor;

typedef struct {
    int n_files;
    citer_map *maps;
    size_t n_tensors;
    st_tensor *tensors;
    char *metadata_json; /* the "__metadata__" object as JSON text, or NULL */
} st_file;

/* path: a .safetensors file, or a directory holding model.safetensors or
 * model.safetensors.index.json with its shards. NULL + citer_error() on failure. */
st_file *st_open(const char *path);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(int dtype); /* "F32", ... */
size_t st_dtype_size(int dtype);
/* Value of a __metadata__ key as a malloc'd string, or NULL. */
char *st_metadata(const st_file *f, const char *key);

typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
void st_writer_metadata(st_writer *w, const char *key, const char *value);
/* data is copied. */
void st_add(st_writer *w, const char *name, int dtype, int n_dims, const uint64_t *shape,
            const void *data);
int st_write(st_writer *w, const char *path); /* atomic; 0 ok, -1 error */

#endif
