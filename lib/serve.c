#include "serve.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "forward.h"
#include "kernels.h"
#include "sampler.h"
#include "stream.h"
#include "util.h"

/* One open sequence of the server. */
typedef struct {
    uint64_t id;
    citer_seq *s;
    uint64_t rng; /* sampling state between appends without a seed */
} served_seq;

typedef struct {
    const citer_engine *e;
    served_seq *seqs;
    size_t n, cap;
    float *hidden, *logits; /* last position of an append */
    int32_t *argmax;
    size_t argmax_cap;
} server;

static served_seq *find_seq(server *sv, uint64_t id)
{
    for (size_t i = 0; i < sv->n; i++)
        if (sv->seqs[i].id == id) return &sv->seqs[i];
    return NULL;
}

static served_seq *add_seq(server *sv, uint64_t id, citer_seq *s)
{
    xgrow((void **)&sv->seqs, &sv->cap, sv->n + 1, sizeof *sv->seqs);
    served_seq *q = &sv->seqs[sv->n++];
    q->id = id;
    q->s = s;
    q->rng = sv->e->seed ^ (id * 0x9E3779B97F4A7C15ull);
    return q;
}

static void drop_seq(server *sv, served_seq *q)
{
    citer_seq_free(q->s);
    *q = sv->seqs[--sv->n];
}

/* A float as JSON text with 9 significant digits (enough to give back the same float). */
static json_object *jfloat(double d)
{
    if (!isfinite(d)) return NULL;
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", d);
    return json_object_new_double_s(d, buf);
}

/* Integer member of a request: 1 found, 0 absent, -1 present but not an integer. */
static int get_int(json_object *req, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(req, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_int)) return -1;
    *out = json_object_get_int64(v);
    return 1;
}

/* Boolean member: 1 true, 0 false, def when absent. */
static int get_bool(json_object *req, const char *key, int def)
{
    json_object *v;
    if (!json_object_object_get_ex(req, key, &v)) return def;
    return json_object_get_boolean(v);
}

typedef struct {
    json_object *meta;  /* response metadata */
    float *data;        /* payload (f32, 1-D) or NULL */
    uint32_t n_data;
    char error[256];
} response;

static int fail(response *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(response *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return -1;
}

static int op_append(server *sv, const citer_record *rec, json_object *req, response *r)
{
    const citer_engine *e = sv->e;
    const citer_config *c = &e->model->cfg;
    if (rec->dtype != CITER_I32 || rec->ndim != 1)
        return fail(r, "append needs an i32 [n] payload of token ids");
    int n = (int)rec->dim[0];
    if (n < 1) return fail(r, "append needs at least one token");
    const int32_t *tokens = rec->data;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return fail(r, "token %d (index %d) is out of range (vocabulary %d)", tokens[i], i, c->vocab_size);
    int want_hidden = get_bool(req, "hidden", e->hidden);
    int want_logits = get_bool(req, "logits", 0);
    int want_all = get_bool(req, "all", 0);
    json_object *sample = NULL;
    if (json_object_object_get_ex(req, "sample", &sample) && !json_object_is_type(sample, json_type_object))
        return fail(r, "sample is not an object");

    served_seq *q = find_seq(sv, rec->seq);
    int created = 0;
    if (!q) {
        q = add_seq(sv, rec->seq, citer_seq_new(e->model));
        created = 1;
    }
    if (want_all) xgrow((void **)&sv->argmax, &sv->argmax_cap, (size_t)n, sizeof *sv->argmax);
    if (citer_engine_feed(e, q->s, tokens, n, sv->hidden, sv->logits, want_all ? sv->argmax : NULL) != 0) {
        fail(r, "%s", citer_error());
        if (created) drop_seq(sv, q);
        return -1;
    }
    float p;
    int32_t next = citer_argmax(sv->logits, c->vocab_size, &p);
    json_object_object_add(r->meta, "len", json_object_new_int64(q->s->len));
    json_object_object_add(r->meta, "next", json_object_new_int64(next));
    json_object_object_add(r->meta, "p", jfloat(p));
    if (want_all) {
        json_object *a = json_object_new_array_ext(n);
        for (int i = 0; i < n; i++) json_object_array_add(a, json_object_new_int64(sv->argmax[i]));
        json_object_object_add(r->meta, "argmax", a);
    }
    if (sample) {
        double temperature = 1, top_p = 1;
        int64_t top_k = 0, seed;
        json_object *v;
        if (json_object_object_get_ex(sample, "temperature", &v)) temperature = json_object_get_double(v);
        if (json_object_object_get_ex(sample, "top_p", &v)) top_p = json_object_get_double(v);
        if (get_int(sample, "top_k", &top_k) < 0 || top_k < 0) return fail(r, "sample.top_k is not a count");
        int has_seed = get_int(sample, "seed", &seed);
        if (has_seed < 0) return fail(r, "sample.seed is not an integer");
        citer_sampler smp;
        citer_sampler_init(&smp, c->vocab_size, (float)temperature, (int)top_k, (float)top_p, 0);
        /* Without a seed the sequence's own generator goes on where the last append left it. */
        smp.rng = has_seed ? (uint64_t)seed ^ 0x9E3779B97F4A7C15ull : q->rng;
        int32_t tok = citer_sample(&smp, sv->logits);
        q->rng = smp.rng;
        citer_sampler_free(&smp);
        json_object_object_add(r->meta, "sampled", json_object_new_int64(tok));
    }
    uint32_t D = (uint32_t)c->dim, V = (uint32_t)c->vocab_size;
    if (want_hidden || want_logits) {
        r->n_data = (want_hidden ? D : 0) + (want_logits ? V : 0);
        r->data = xmalloc((size_t)r->n_data * sizeof *r->data);
        float *d = r->data;
        if (want_hidden) {
            memcpy(d, sv->hidden, D * sizeof *d);
            d += D;
            json_object_object_add(r->meta, "hidden", json_object_new_int64(D));
        }
        if (want_logits) {
            memcpy(d, sv->logits, V * sizeof *d);
            json_object_object_add(r->meta, "logits", json_object_new_int64(V));
        }
    }
    return 0;
}

static int op_truncate(server *sv, const citer_record *rec, json_object *req, response *r)
{
    served_seq *q = find_seq(sv, rec->seq);
    if (!q) return fail(r, "unknown sequence %" PRIu64, rec->seq);
    int64_t len;
    int got = get_int(req, "len", &len);
    if (got <= 0 || len < 0) return fail(r, "truncate needs \"len\": a length >= 0");
    if (len > q->s->len)
        return fail(r, "len %" PRId64 " is beyond the sequence's length %d", len, q->s->len);
    citer_seq_truncate(q->s, (int)len);
    json_object_object_add(r->meta, "len", json_object_new_int64(q->s->len));
    return 0;
}

static int op_fork(server *sv, const citer_record *rec, json_object *req, response *r)
{
    int64_t from;
    if (get_int(req, "from", &from) <= 0 || from < 0) return fail(r, "fork needs \"from\": a sequence id");
    served_seq *src = find_seq(sv, (uint64_t)from);
    if (!src) return fail(r, "unknown sequence %" PRId64, from);
    citer_seq *copy = citer_seq_fork(src->s);
    int len = copy->len;
    served_seq *q = find_seq(sv, rec->seq);
    if (q) {
        citer_seq_free(q->s); /* a fork replaces what the sequence held */
        q->s = copy;
    } else {
        add_seq(sv, rec->seq, copy);
    }
    json_object_object_add(r->meta, "len", json_object_new_int64(len));
    return 0;
}

static int op_drop(server *sv, const citer_record *rec, response *r)
{
    served_seq *q = find_seq(sv, rec->seq);
    if (!q) return fail(r, "unknown sequence %" PRIu64, rec->seq);
    drop_seq(sv, q);
    json_object_object_add(r->meta, "len", json_object_new_int64(0));
    return 0;
}

static int op_info(server *sv, response *r)
{
    const citer_engine *e = sv->e;
    const citer_config *c = &e->model->cfg;
    json_object *m = r->meta;
    json_object_object_add(m, "vocab", json_object_new_int64(c->vocab_size));
    json_object_object_add(m, "dim", json_object_new_int64(c->dim));
    json_object_object_add(m, "layers", json_object_new_int64(c->n_layers));
    json_object_object_add(m, "context", json_object_new_int64(c->context_length));
    json_object_object_add(m, "bos", json_object_new_int64(c->bos));
    json_object *eos = json_object_new_array();
    for (int i = 0; i < e->n_eos; i++) json_object_array_add(eos, json_object_new_int64(e->eos[i]));
    json_object_object_add(m, "eos", eos);
    json_object_object_add(m, "hidden", json_object_new_boolean(e->hidden));
    json_object_object_add(m, "description", json_object_new_string(citer_model_describe(e->model)));
    if (e->tok)
        json_object_object_add(m, "tokenizer", json_object_new_string(citer_tokenizer_describe(e->tok)));
    json_object_object_add(m, "version", json_object_new_string(CITER_VERSION));
    json_object_object_add(m, "sequences", json_object_new_int64((int64_t)sv->n));
    return 0;
}

/* Answer one request. Returns 0, or -1 when the response could not be written. */
static int handle(server *sv, const citer_record *rec, citer_writer *w, FILE *out)
{
    response r = {0};
    r.meta = json_object_new_object();
    json_object *req = NULL, *opv;
    const char *op = NULL;
    int64_t pos = -1;
    if (!rec->meta || !(req = json_tokener_parse(rec->meta)) || !json_object_is_type(req, json_type_object)) {
        fail(&r, "request metadata is not a JSON object with \"op\"");
    } else if (!json_object_object_get_ex(req, "op", &opv) || !json_object_is_type(opv, json_type_string)) {
        fail(&r, "request has no \"op\" string");
    } else {
        op = json_object_get_string(opv);
        json_object_object_add(r.meta, "op", json_object_new_string(op));
        if (strcmp(op, "append") == 0) {
            if (op_append(sv, rec, req, &r) == 0) pos = find_seq(sv, rec->seq)->s->len - 1;
        } else if (strcmp(op, "truncate") == 0) {
            op_truncate(sv, rec, req, &r);
        } else if (strcmp(op, "fork") == 0) {
            op_fork(sv, rec, req, &r);
        } else if (strcmp(op, "drop") == 0) {
            op_drop(sv, rec, &r);
        } else if (strcmp(op, "info") == 0) {
            op_info(sv, &r);
        } else {
            fail(&r, "unknown op '%.100s'", op);
        }
    }
    if (r.error[0]) {
        /* An error answer carries the op and the message only. */
        json_object_put(r.meta);
        r.meta = json_object_new_object();
        if (op) json_object_object_add(r.meta, "op", json_object_new_string(op));
        json_object_object_add(r.meta, "error", json_object_new_string(r.error));
        free(r.data);
        r.data = NULL;
        r.n_data = 0;
        pos = -1;
    }
    citer_record out_rec;
    citer_record_init(&out_rec, CITER_RESPONSE, r.data ? CITER_F32 : CITER_DT_NONE, rec->seq, pos);
    out_rec.meta = (char *)json_object_to_json_string_ext(r.meta, JSON_C_TO_STRING_PLAIN);
    if (r.data) {
        out_rec.ndim = 1;
        out_rec.dim[0] = r.n_data;
        out_rec.data = r.data;
        out_rec.nbytes = (size_t)r.n_data * sizeof(float);
    }
    int rc = citer_write(w, &out_rec);
    if (rc == 0 && fflush(out) != 0) {
        citer_set_error("cannot write the response");
        rc = -1;
    }
    json_object_put(r.meta);
    json_object_put(req);
    free(r.data);
    return rc;
}

int citer_serve(const citer_engine *e, FILE *in, const char *in_name, FILE *out)
{
    const citer_config *c = &e->model->cfg;
    server sv = {0};
    sv.e = e;
    sv.hidden = xmalloc((size_t)c->dim * sizeof *sv.hidden);
    sv.logits = xmalloc((size_t)c->vocab_size * sizeof *sv.logits);
    citer_reader *rd = citer_reader_new(in, in_name);
    citer_writer *w = citer_writer_new(out);
    citer_record rec;
    int rc;
    while ((rc = citer_read(rd, &rec)) == 1) {
        /* Only requests are answered: anything else would put the answers out of step. */
        if (rec.kind == CITER_REQUEST && handle(&sv, &rec, w, out) != 0) rc = -1;
        citer_record_free(&rec);
        if (rc < 0) break;
        /* the client computes (or the other model's server does) until the next request */
        citer_threads_rest();
    }
    if (rc == 0) {
        if (citer_writer_finish(w) != 0 || fflush(out) != 0) {
            citer_set_error("cannot write the response stream");
            rc = -1;
        }
    }
    citer_writer_free(w);
    citer_reader_free(rd);
    for (size_t i = 0; i < sv.n; i++) citer_seq_free(sv.seqs[i].s);
    free(sv.seqs);
    free(sv.hidden);
    free(sv.logits);
    free(sv.argmax);
    return rc < 0 ? -1 : 0;
}
