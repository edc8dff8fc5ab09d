/* safetensors: reader (memory-mapped; one file or a sharded directory) and writer.
 *
 * Layout: u64 little-endian N, N bytes of JSON header, then the data. The header maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the
 * first data byte; the optional "__metadata__" object maps strings to strings. A sharded
 * checkpoint is a directory with model.safetensors.index.json whose "weight_map" names the
 * shard file of every tensor. */
#include "safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_HEADER (100u * 1000 * 1000) /* the reference implementation's limit */
#define ST_MAX_DIMS 8

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4}, [ST_I64] = {"I64", 8}, [ST_U8] = {"U8", 1},
    [ST_I8] = {"I8", 1},   [ST_F64] = {"F64", 8}, [ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof *dtypes)

const char *st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < N_DTYPES ? dtypes[dtype].name : NULL;
}

size_t st_dtype_size(int dtype) { return dtype >= 0 && dtype < N_DTYPES ? dtypes[dtype].size : 0; }

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtypes[i].name) == 0) return i;
    return -1;
}

/* Byte size of a tensor; -1 if it overflows 64 bits. */
static int shape_nbytes(int dtype, int n_dims, const uint64_t *shape, uint64_t *out)
{
    uint64_t n = st_dtype_size(dtype);
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] && n > UINT64_MAX / shape[d]) return -1;
        n *= shape[d];
    }
    *out = n;
    return 0;
}

/* ---- reading ---- */

/* A name from a file, made safe for a one-line message: at most 64 bytes, control characters
 * replaced. */
#define SHOWN 72
static const char *show(char out[SHOWN], const char *s)
{
    size_t n = 0;
    for (; s[n] && n < 64; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    strcpy(out + n, s[n] ? "..." : "");
    return out;
}

/* Tensors collected while loading, with the index of the file that holds each. */
typedef struct {
    st_tensor *t;
    int *file;
    size_t n, cap, cap_file;
} tensor_list;

/* A JSON integer that is a non-negative 64-bit value. */
static int json_u64(json_object *o, uint64_t *out)
{
    if (!o || !json_object_is_type(o, json_type_int)) return -1;
    errno = 0;
    int64_t v = json_object_get_int64(o);
    if (v < 0) return -1;
    if (v == INT64_MAX) { /* may be a larger unsigned value, or one that overflowed */
        errno = 0;
        uint64_t u = json_object_get_uint64(o);
        if (errno) return -1;
        *out = u;
        return 0;
    }
    *out = (uint64_t)v;
    return 0;
}

static const char *prefix_sep(const char *label) { return label[0] ? ": " : ""; }

static int parse_tensor(const char *label, const char *key, json_object *val, uint64_t data_size,
                        const uint8_t *data, st_tensor *t)
{
    char name[SHOWN], dts[SHOWN];
    show(name, key);
    const char *sep = prefix_sep(label);
    json_object *dt, *shape, *offs;
    if (!json_object_is_type(val, json_type_object)) {
        citer_set_error("%s%stensor '%s': header entry is not an object", label, sep, name);
        return -1;
    }
    if (!json_object_object_get_ex(val, "dtype", &dt) || !json_object_is_type(dt, json_type_string)) {
        citer_set_error("%s%stensor '%s': missing or non-string \"dtype\"", label, sep, name);
        return -1;
    }
    t->dtype = dtype_from_name(json_object_get_string(dt));
    if (t->dtype < 0) {
        citer_set_error("%s%stensor '%s': unsupported dtype %s", label, sep, name,
                        show(dts, json_object_get_string(dt)));
        return -1;
    }
    if (!json_object_object_get_ex(val, "shape", &shape) ||
        !json_object_is_type(shape, json_type_array)) {
        citer_set_error("%s%stensor '%s': missing or invalid \"shape\"", label, sep, name);
        return -1;
    }
    size_t nd = json_object_array_length(shape);
    if (nd > ST_MAX_DIMS) {
        citer_set_error("%s%stensor '%s': %zu dimensions (at most %d supported)", label, sep, name,
                        nd, ST_MAX_DIMS);
        return -1;
    }
    t->n_dims = (int)nd;
    for (size_t d = 0; d < nd; d++)
        if (json_u64(json_object_array_get_idx(shape, d), &t->shape[d])) {
            citer_set_error("%s%stensor '%s': shape[%zu] is not a non-negative integer", label, sep,
                            name, d);
            return -1;
        }
    uint64_t begin, end;
    if (!json_object_object_get_ex(val, "data_offsets", &offs) ||
        !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2 ||
        json_u64(json_object_array_get_idx(offs, 0), &begin) ||
        json_u64(json_object_array_get_idx(offs, 1), &end)) {
        citer_set_error("%s%stensor '%s': \"data_offsets\" must be two non-negative integers", label,
                        sep, name);
        return -1;
    }
    if (end < begin || end > data_size) {
        citer_set_error("%s%stensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] outside the data section (%" PRIu64 " bytes)",
                        label, sep, name, begin, end, data_size);
        return -1;
    }
    if (shape_nbytes(t->dtype, t->n_dims, t->shape, &t->nbytes)) {
        citer_set_error("%s%stensor '%s': dtype %s and the shape need more than 2^64 bytes", label,
                        sep, name, dtypes[t->dtype].name);
        return -1;
    }
    if (t->nbytes != end - begin) {
        citer_set_error("%s%stensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                        " bytes, but dtype %s and the shape need %" PRIu64,
                        label, sep, name, begin, end, end - begin, dtypes[t->dtype].name,
                        t->nbytes);
        return -1;
    }
    t->data = data + begin;
    return 0;
}

static int by_data_cmp(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Parse the header of one mapped file, appending its tensors to list (file index fi).
 * label names the file in messages (empty for a single file: the caller names it). */
static int parse_file(const citer_map *m, int fi, const char *label, tensor_list *list,
                      char **metadata)
{
    const char *sep = prefix_sep(label);
    if (m->size < 8) {
        citer_set_error("%s%snot a safetensors file (%zu bytes, too short for the header length)",
                        label, sep, m->size);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | m->data[i];
    if (n > ST_MAX_HEADER) {
        citer_set_error("%s%sheader length %" PRIu64 " exceeds the limit of %u bytes (not a "
                        "safetensors file?)", label, sep, n, ST_MAX_HEADER);
        return -1;
    }
    if (n > m->size - 8) {
        citer_set_error("%s%sheader length %" PRIu64 " runs past the end of the file (%zu bytes)",
                        label, sep, n, m->size);
        return -1;
    }
    if (n == 0 || m->data[8] != '{') {
        citer_set_error("%s%snot a safetensors file (header does not start with '{')", label, sep);
        return -1;
    }
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, (const char *)m->data + 8, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        citer_set_error("%s%sinvalid JSON header: %s (near byte %zu)", label, sep,
                        jerr == json_tokener_continue ? "unexpected end"
                                                      : json_tokener_error_desc(jerr),
                        8 + end);
        json_object_put(root);
        return -1;
    }
    for (size_t i = end; i < n; i++) { /* only padding may follow the object */
        char c = (char)m->data[8 + i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            citer_set_error("%s%sunexpected byte 0x%02x after the JSON header at byte %zu", label,
                            sep, (unsigned char)c, 8 + i);
            json_object_put(root);
            return -1;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        citer_set_error("%s%sJSON header is not an object", label, sep);
        json_object_put(root);
        return -1;
    }
    const uint8_t *data = m->data + 8 + n;
    uint64_t data_size = m->size - 8 - n;
    size_t first = list->n;
    int rc = 0;
    json_object_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_object_is_type(val, json_type_object)) {
                citer_set_error("%s%s__metadata__ is not an object", label, sep);
                rc = -1;
                break;
            }
            if (!*metadata)
                *metadata = xstrdup(json_object_to_json_string_ext(
                    val, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
            continue;
        }
        st_tensor t = {0};
        if (parse_tensor(label, key, val, data_size, data, &t)) {
            rc = -1;
            break;
        }
        t.name = xstrdup(key);
        xgrow((void **)&list->t, &list->cap, list->n + 1, sizeof *list->t);
        xgrow((void **)&list->file, &list->cap_file, list->n + 1, sizeof *list->file);
        list->file[list->n] = fi;
        list->t[list->n++] = t;
    }
    json_object_put(root);
    if (rc) return -1;
    /* No two tensors of this file may share bytes. */
    size_t cnt = list->n - first;
    if (cnt > 1) {
        st_tensor **v = xmalloc(cnt * sizeof *v);
        for (size_t i = 0; i < cnt; i++) v[i] = &list->t[first + i];
        qsort(v, cnt, sizeof *v, by_data_cmp);
        for (size_t i = 1; i < cnt; i++)
            if ((const uint8_t *)v[i - 1]->data + v[i - 1]->nbytes > (const uint8_t *)v[i]->data) {
                char a[SHOWN], b[SHOWN];
                citer_set_error("%s%stensors '%s' and '%s' overlap", label, sep,
                                show(a, v[i - 1]->name), show(b, v[i]->name));
                rc = -1;
                break;
            }
        free(v);
    }
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Sort the tensors by name (for st_find) and reject duplicates across shards. */
static int finish(st_file *f)
{
    if (f->n_tensors > 1) qsort(f->tensors, f->n_tensors, sizeof *f->tensors, name_cmp);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            char a[SHOWN];
            citer_set_error("tensor '%s' appears in more than one shard", show(a, f->tensors[i].name));
            return -1;
        }
    return 0;
}

static st_file *open_single(const char *path, const char *label)
{
    st_file *f = xcalloc(1, sizeof *f);
    f->maps = xcalloc(1, sizeof *f->maps);
    if (citer_map_file(path, &f->maps[0])) {
        if (label[0]) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", citer_error());
            citer_set_error("%s: %s", label, msg);
        }
        free(f->maps);
        free(f);
        return NULL;
    }
    f->n_files = 1;
    tensor_list list = {0};
    int rc = parse_file(&f->maps[0], 0, label, &list, &f->metadata_json);
    f->tensors = list.t;
    f->n_tensors = list.n;
    free(list.file);
    if (rc || finish(f)) {
        st_close(f);
        return NULL;
    }
    return f;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int find_shard(char **shards, int n, const char *name)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(shards[mid], name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

#define INDEX_NAME "model.safetensors.index.json"

/* qsort has no context argument; loading runs on one thread at a time per list. */
static _Thread_local const tensor_list *sort_list;

static int list_name_cmp(const void *a, const void *b)
{
    return strcmp(sort_list->t[*(const size_t *)a].name, sort_list->t[*(const size_t *)b].name);
}

static st_file *open_sharded(const char *dir, const char *index_path)
{
    size_t len;
    char *text = citer_read_file(index_path, &len);
    if (!text) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", citer_error());
        citer_set_error(INDEX_NAME ": %s", msg);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_object *root = len <= INT32_MAX ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    free(text);
    json_object *wm = NULL;
    char nm[SHOWN], sh[SHOWN];
    if (!root || jerr != json_tokener_success) {
        citer_set_error(INDEX_NAME ": invalid JSON: %s", json_tokener_error_desc(jerr));
        json_object_put(root);
        return NULL;
    }
    if (!json_object_object_get_ex(root, "weight_map", &wm) ||
        !json_object_is_type(wm, json_type_object)) {
        citer_set_error(INDEX_NAME ": missing \"weight_map\" object");
        json_object_put(root);
        return NULL;
    }
    /* The distinct shard names, sorted. */
    size_t n_entries = (size_t)json_object_object_length(wm);
    char **shards = xmalloc((n_entries + 1) * sizeof *shards);
    int n_shards = 0;
    st_file *f = NULL;
    json_object_object_foreach(wm, tname, sval)
    {
        const char *s = json_object_is_type(sval, json_type_string) ? json_object_get_string(sval)
                                                                     : NULL;
        if (!s || !s[0] || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            citer_set_error(INDEX_NAME ": tensor '%s': shard must be a file name in the same "
                            "directory", show(nm, tname));
            goto fail;
        }
        shards[n_shards++] = (char *)s;
    }
    qsort(shards, (size_t)n_shards, sizeof *shards, cmp_str);
    int u = 0;
    for (int i = 0; i < n_shards; i++)
        if (u == 0 || strcmp(shards[u - 1], shards[i]) != 0) shards[u++] = shards[i];
    n_shards = u;
    if (n_shards == 0) {
        citer_set_error(INDEX_NAME ": empty \"weight_map\"");
        goto fail;
    }

    f = xcalloc(1, sizeof *f);
    f->maps = xcalloc((size_t)n_shards, sizeof *f->maps);
    tensor_list list = {0};
    for (int i = 0; i < n_shards; i++) {
        char *path = join(dir, shards[i]);
        if (citer_map_file(path, &f->maps[i])) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", citer_error());
            citer_set_error("shard %s (listed in " INDEX_NAME "): %s", show(sh, shards[i]), msg);
            free(path);
            goto fail_list;
        }
        free(path);
        f->n_files = i + 1;
        if (parse_file(&f->maps[i], i, show(sh, shards[i]), &list, &f->metadata_json))
            goto fail_list;
    }
    /* Every tensor of the weight map must be in the shard it names. */
    {
        size_t *by_name = xmalloc((list.n + 1) * sizeof *by_name);
        for (size_t k = 0; k < list.n; k++) by_name[k] = k;
        sort_list = &list;
        qsort(by_name, list.n, sizeof *by_name, list_name_cmp);
        json_object_object_foreach(wm, tname, sval)
        {
            const char *s = json_object_get_string(sval);
            size_t lo = 0, hi = list.n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(list.t[by_name[mid]].name, tname) < 0) lo = mid + 1;
                else hi = mid;
            }
            if (lo == list.n || strcmp(list.t[by_name[lo]].name, tname) != 0 ||
                list.file[by_name[lo]] != find_shard(shards, n_shards, s)) {
                citer_set_error("tensor '%s' listed in " INDEX_NAME " is not in shard %s",
                                show(nm, tname), show(sh, s));
                free(by_name);
                goto fail_list;
            }
        }
        free(by_name);
    }
    f->tensors = list.t;
    f->n_tensors = list.n;
    free(list.file);
    free(shards);
    json_object_put(root);
    if (finish(f)) {
        st_close(f);
        return NULL;
    }
    return f;

fail_list:
    f->tensors = list.t;
    f->n_tensors = list.n;
    free(list.file);
fail:
    free(shards);
    json_object_put(root);
    st_close(f);
    return NULL;
}

st_file *st_open(const char *path)
{
    if (!is_dir(path)) return open_single(path, "");
    char *single = join(path, "model.safetensors");
    char *index = join(path, INDEX_NAME);
    st_file *f = NULL;
    if (exists(single))
        f = open_single(single, "model.safetensors");
    else if (exists(index))
        f = open_sharded(path, index);
    else
        citer_set_error("no model.safetensors or " INDEX_NAME " in this directory");
    free(single);
    free(index);
    return f;
}

void st_close(st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_files; i++) citer_unmap(&f->maps[i]);
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->maps);
    free(f->tensors);
    free(f->metadata_json);
    free(f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

char *st_metadata(const st_file *f, const char *key)
{
    if (!f->metadata_json) {
        citer_set_error("no __metadata__ in the header");
        return NULL;
    }
    json_object *root = json_tokener_parse(f->metadata_json), *v;
    char *out = NULL;
    if (root && json_object_object_get_ex(root, key, &v)) {
        if (json_object_is_type(v, json_type_string))
            out = xstrdup(json_object_get_string(v));
        else /* not valid per the format, but say what is there */
            out = xstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        citer_set_error("no __metadata__ key %s", key);
    }
    json_object_put(root);
    return out;
}

/* ---- writer ---- */

typedef struct {
    char *key, *value;
} st_meta;

struct st_writer {
    st_tensor *t;
    size_t n, cap;
    st_meta *meta;
    size_t n_meta, cap_meta;
    char *error; /* first problem found by st_add, reported by st_write */
};

st_writer *st_writer_new(void) { return xcalloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free((void *)w->t[i].data);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w->error);
    free(w);
}

void st_writer_metadata(st_writer *w, const char *key, const char *value)
{
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = xstrdup(value);
            return;
        }
    xgrow((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta);
    w->meta[w->n_meta++] = (st_meta){xstrdup(key), xstrdup(value)};
}

static void writer_fail(st_writer *w, const char *name, const char *msg)
{
    if (w->error) return;
    size_t n = strlen(name) + strlen(msg) + 16;
    w->error = xmalloc(n);
    snprintf(w->error, n, "tensor '%s': %s", name, msg);
}

void st_add(st_writer *w, const char *name, int dtype, int n_dims, const uint64_t *shape,
            const void *data)
{
    st_tensor t = {.dtype = dtype, .n_dims = n_dims};
    const char *bad = NULL;
    if (!st_dtype_name(dtype)) bad = "unknown dtype";
    else if (n_dims < 0 || n_dims > ST_MAX_DIMS) bad = "0 to 8 dimensions allowed";
    else if (strcmp(name, "__metadata__") == 0) bad = "reserved name";
    for (size_t i = 0; !bad && i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) bad = "duplicate name";
    if (!bad) {
        if (n_dims) memcpy(t.shape, shape, (size_t)n_dims * sizeof *shape);
        if (shape_nbytes(dtype, n_dims, t.shape, &t.nbytes) || t.nbytes > SIZE_MAX)
            bad = "shape too large";
    }
    if (bad) {
        writer_fail(w, name, bad);
        return;
    }
    void *copy = xmalloc(t.nbytes ? (size_t)t.nbytes : 1);
    if (t.nbytes) memcpy(copy, data, (size_t)t.nbytes);
    t.data = copy;
    t.name = xstrdup(name);
    xgrow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t);
    w->t[w->n++] = t;
}

static int ptr_name_cmp(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

int st_write(st_writer *w, const char *path)
{
    if (w->error) {
        citer_set_error("%s", w->error);
        return -1;
    }
    st_tensor **order = xmalloc((w->n + 1) * sizeof *order);
    for (size_t i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, w->n, sizeof *order, ptr_name_cmp);

    json_object *root = json_object_new_object();
    if (w->n_meta) {
        json_object *meta = json_object_new_object();
        for (size_t i = 0; i < w->n_meta; i++)
            json_object_object_add(meta, w->meta[i].key, json_object_new_string(w->meta[i].value));
        json_object_object_add(root, "__metadata__", meta);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_tensor *t = order[i];
        json_object *e = json_object_new_object(), *shape = json_object_new_array();
        json_object *offs = json_object_new_array();
        json_object_object_add(e, "dtype", json_object_new_string(dtypes[t->dtype].name));
        for (int d = 0; d < t->n_dims; d++)
            json_object_array_add(shape, json_object_new_uint64(t->shape[d]));
        json_object_object_add(e, "shape", shape);
        json_object_array_add(offs, json_object_new_uint64(off));
        json_object_array_add(offs, json_object_new_uint64(off + t->nbytes));
        json_object_object_add(e, "data_offsets", offs);
        json_object_object_add(root, t->name, e);
        off += t->nbytes;
    }
    const char *header = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) / 8 * 8; /* spaces, so the data starts 8-byte aligned */
    int rc = -1;
    citer_out *o = citer_out_open(path);
    if (o) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        fwrite(len8, 1, 8, o->f);
        fwrite(header, 1, hlen, o->f);
        for (size_t i = hlen; i < padded; i++) fputc(' ', o->f);
        for (size_t i = 0; i < w->n; i++)
            fwrite(order[i]->data, 1, (size_t)order[i]->nbytes, o->f);
        if (ferror(o->f)) {
            citer_set_error("write error");
            citer_out_abort(o);
        } else {
            rc = citer_out_commit(o);
        }
    }
    json_object_put(root);
    free(order);
    return rc;
}
