#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "engine_cli.h"
#include "forward.h"
#include "kernels.h"
#include "sampler.h"
#include "stream.h"
#include "util.h"

typedef struct {
    uint64_t id;
    citer_seq *s;
} local_seq;

struct citer_backend {
    int is_process;
    int broken;
    char send_failed[256]; /* why the last request could not be sent (EPIPE), or "" */
    citer_backend_info info;
    uint64_t calls;
    float *hidden; /* D floats handed out by append */
    /* in-process */
    citer_engine e;
    float *logits;
    local_seq *seqs;
    size_t n_seqs, cap_seqs;
    /* coprocess */
    pid_t pid;
    int reaped;
    int status;   /* wait status once reaped */
    FILE *to, *from;
    citer_writer *w;
    citer_reader *rd;
};

/* The serve protocol's sampling seed mixing (serve.c): the same seed draws the same token. */
#define SEED_MIX 0x9E3779B97F4A7C15ull

static void fill_info_from_engine(citer_backend *b)
{
    const citer_config *c = &b->e.model->cfg;
    b->info.vocab = c->vocab_size;
    b->info.dim = c->dim;
    b->info.context = c->context_length;
    b->info.bos = c->bos;
    b->info.n_eos = 0;
    for (int i = 0; i < b->e.n_eos && i < CITER_BACKEND_MAX_EOS; i++) b->info.eos[b->info.n_eos++] = b->e.eos[i];
    snprintf(b->info.description, sizeof b->info.description, "%s", citer_model_describe(b->e.model));
}

citer_backend *citer_backend_load(const char *path)
{
    citer_model *m = citer_model_load(path);
    if (!m) return NULL;
    citer_backend *b = xcalloc(1, sizeof *b);
    b->e.model = m;
    b->e.tok = citer_tokenizer_load(path); /* optional: only --stop needs it */
    b->e.hidden = 1;
    citer_engine_find_eos(&b->e);
    fill_info_from_engine(b);
    b->hidden = xmalloc((size_t)m->cfg.dim * sizeof *b->hidden);
    b->logits = xmalloc((size_t)m->cfg.vocab_size * sizeof *b->logits);
    return b;
}

/* ---- coprocess plumbing ---- */

static void describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, n, "wait status %d", status);
}

/* Close our ends of the pipes (the child sees EOF, or EPIPE) and wait for it. */
static void reap(citer_backend *b)
{
    if (b->to) {
        fclose(b->to); /* may fail with EPIPE when the child is gone: nothing to do about it */
        b->to = NULL;
    }
    if (b->from) {
        fclose(b->from);
        b->from = NULL;
    }
    if (!b->reaped && b->pid > 0) {
        while (waitpid(b->pid, &b->status, 0) < 0 && errno == EINTR) {
        }
        b->reaped = 1;
    }
}

/* Mark the backend broken, reap the child and set the error to msg plus how the child ended. */
static int broken(citer_backend *b, const char *msg)
{
    char what[700];
    snprintf(what, sizeof what, "%.690s", msg);
    b->broken = 1;
    reap(b);
    char st[64];
    describe_status(b->status, st, sizeof st);
    citer_set_error("%s (server %s)", what, st);
    return -1;
}

static int send_request(citer_backend *b, uint64_t seq, const char *meta, const int32_t *tokens, int n)
{
    citer_record rec;
    citer_record_init(&rec, CITER_REQUEST, tokens ? CITER_I32 : CITER_DT_NONE, seq, -1);
    rec.meta = (char *)meta;
    if (tokens) {
        rec.ndim = 1;
        rec.dim[0] = (uint32_t)n;
        rec.data = (void *)tokens;
        rec.nbytes = (size_t)n * sizeof *tokens;
    }
    errno = 0;
    if (citer_write(b->w, &rec) != 0 || fflush(b->to) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot send a request: %s", errno ? strerror(errno) : citer_error());
        /* A server that stopped reading may still have said why (an error answer, or garbage
         * that shows it is no server): read that first, report the broken pipe only if it
         * answered properly. */
        if (errno == EPIPE) {
            snprintf(b->send_failed, sizeof b->send_failed, "%s", msg);
            return 0;
        }
        return broken(b, msg);
    }
    return 0;
}

/* Read the response to op on seq. On success *req holds its parsed metadata (caller puts it). */
static int read_response(citer_backend *b, const char *op, uint64_t seq, citer_record *rec, json_object **meta)
{
    char msg[600];
    uint64_t before = citer_reader_offset(b->rd);
    citer_threads_rest(); /* the server computes meanwhile: our idle workers must not spin */
    int rc = citer_read(b->rd, rec);
    if (rc == 0) {
        snprintf(msg, sizeof msg, "the server ended its stream instead of answering %s", op);
        return broken(b, msg);
    }
    if (rc < 0) {
        if (feof(b->from) && citer_reader_offset(b->rd) == before)
            snprintf(msg, sizeof msg, "the server closed its output without answering %s", op);
        else
            snprintf(msg, sizeof msg, "bad answer to %s: %s", op, citer_error());
        return broken(b, msg);
    }
    json_object *m = NULL, *v;
    if (rec->kind != CITER_RESPONSE) {
        snprintf(msg, sizeof msg, "the answer to %s is a %s record, not a response", op,
                 citer_kind_name(rec->kind));
    } else if (rec->seq != seq) {
        snprintf(msg, sizeof msg, "the answer to %s is for sequence %" PRIu64 ", not %" PRIu64, op, rec->seq, seq);
    } else if (!rec->meta || !(m = json_tokener_parse(rec->meta)) || !json_object_is_type(m, json_type_object)) {
        snprintf(msg, sizeof msg, "the answer to %s has no JSON object metadata", op);
    } else if (json_object_object_get_ex(m, "error", &v)) {
        snprintf(msg, sizeof msg, "the server refused %s: %.400s", op, json_object_get_string(v));
    } else if (!json_object_object_get_ex(m, "op", &v) || !json_object_is_type(v, json_type_string) ||
               strcmp(json_object_get_string(v), op) != 0) {
        snprintf(msg, sizeof msg, "the answer to %s is not a response to %s", op, op);
    } else if (b->send_failed[0]) {
        snprintf(msg, sizeof msg, "%s", b->send_failed);
    } else {
        *meta = m;
        return 0;
    }
    json_object_put(m);
    citer_record_free(rec);
    return broken(b, msg);
}

/* Integer member in [lo, hi): 0 ok, -1 absent or out of range. */
static int member_int(json_object *m, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_int)) return -1;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x >= hi) return -1;
    *out = x;
    return 0;
}

static int parse_info(citer_backend *b, json_object *m)
{
    citer_backend_info *in = &b->info;
    int64_t v;
    if (member_int(m, "vocab", 1, INT32_MAX, &v) != 0) return citer_set_error("info: no vocab"), -1;
    in->vocab = (int)v;
    if (member_int(m, "dim", 1, INT32_MAX, &v) != 0) return citer_set_error("info: no dim"), -1;
    in->dim = (int)v;
    if (member_int(m, "context", 1, INT32_MAX, &v) != 0) return citer_set_error("info: no context"), -1;
    in->context = (int)v;
    in->bos = member_int(m, "bos", 0, in->vocab, &v) == 0 ? (int32_t)v : -1;
    json_object *eos, *d;
    in->n_eos = 0;
    if (json_object_object_get_ex(m, "eos", &eos) && json_object_is_type(eos, json_type_array)) {
        size_t n = json_object_array_length(eos);
        for (size_t i = 0; i < n && in->n_eos < CITER_BACKEND_MAX_EOS; i++) {
            json_object *e = json_object_array_get_idx(eos, i);
            if (!json_object_is_type(e, json_type_int)) continue;
            int64_t id = json_object_get_int64(e);
            if (id >= 0 && id < in->vocab) in->eos[in->n_eos++] = (int32_t)id;
        }
    }
    if (json_object_object_get_ex(m, "description", &d) && json_object_is_type(d, json_type_string))
        snprintf(in->description, sizeof in->description, "%s", json_object_get_string(d));
    return 0;
}

citer_backend *citer_backend_spawn(const char *cmd)
{
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0) {
        citer_set_error("pipe: %s", strerror(errno));
        return NULL;
    }
    if (pipe2(from_child, O_CLOEXEC) != 0) {
        citer_set_error("pipe: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        return NULL;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        citer_set_error("fork: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        return NULL;
    }
    if (pid == 0) {
        /* dup2 clears close-on-exec on the new descriptors; everything else of ours closes. */
        if (dup2(to_child[0], 0) < 0 || dup2(from_child[1], 1) < 0) _exit(127);
        signal(SIGPIPE, SIG_DFL); /* an ignored SIGPIPE would be inherited across exec */
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    citer_backend *b = xcalloc(1, sizeof *b);
    b->is_process = 1;
    b->pid = pid;
    b->to = fdopen(to_child[1], "wb");
    b->from = fdopen(from_child[0], "rb");
    if (!b->to || !b->from) {
        if (!b->to) close(to_child[1]);
        if (!b->from) close(from_child[0]);
        citer_set_error("fdopen: %s", strerror(errno));
        reap(b);
        free(b);
        return NULL;
    }
    b->w = citer_writer_new(b->to);
    b->rd = citer_reader_new(b->from, "server");
    citer_record rec;
    json_object *m = NULL;
    if (send_request(b, 0, "{\"op\":\"info\"}", NULL, 0) != 0 || read_response(b, "info", 0, &rec, &m) != 0) {
        citer_backend_close(b);
        return NULL;
    }
    int rc = parse_info(b, m);
    json_object_put(m);
    citer_record_free(&rec);
    if (rc != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "bad answer to info: %s", citer_error());
        broken(b, msg);
        char keep[600];
        snprintf(keep, sizeof keep, "%s", citer_error());
        citer_backend_close(b);
        citer_set_error("%s", keep);
        return NULL;
    }
    b->hidden = xmalloc((size_t)b->info.dim * sizeof *b->hidden);
    return b;
}

const citer_backend_info *citer_backend_get_info(const citer_backend *b) { return &b->info; }
const citer_tokenizer *citer_backend_tokenizer(const citer_backend *b) { return b->is_process ? NULL : b->e.tok; }
int citer_backend_is_process(const citer_backend *b) { return b->is_process; }
uint64_t citer_backend_requests(const citer_backend *b) { return b->calls; }

/* ---- appends ---- */

static local_seq *find_local(citer_backend *b, uint64_t id)
{
    for (size_t i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].id == id) return &b->seqs[i];
    return NULL;
}

/* After a server failure every request fails: its state is unknown. */
static int refuse_if_broken(const citer_backend *b)
{
    if (!b->broken) return 0;
    citer_set_error("the server failed before");
    return 1;
}

/* A new entry for sequence id holding s. */
static local_seq *add_local(citer_backend *b, uint64_t id, citer_seq *s)
{
    xgrow((void **)&b->seqs, &b->cap_seqs, b->n_seqs + 1, sizeof *b->seqs);
    local_seq *q = &b->seqs[b->n_seqs++];
    q->id = id;
    q->s = s;
    return q;
}

static int append_local(citer_backend *b, uint64_t seq, const int32_t *tokens, int n, int want_hidden,
                        const citer_backend_sample *sample, citer_backend_step *out)
{
    const citer_config *c = &b->e.model->cfg;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
            citer_set_error("token %d (index %d) is out of range (vocabulary %d)", tokens[i], i, c->vocab_size);
            return -1;
        }
    local_seq *q = find_local(b, seq);
    int created = 0;
    if (!q) {
        q = add_local(b, seq, citer_seq_new(b->e.model));
        created = 1;
    }
    if (citer_engine_feed(&b->e, q->s, tokens, n, b->hidden, b->logits, NULL) != 0) {
        if (created) {
            citer_seq_free(q->s);
            b->n_seqs--;
        }
        return -1;
    }
    out->len = q->s->len;
    out->next = citer_argmax(b->logits, c->vocab_size, &out->p);
    out->sampled = -1;
    if (sample) {
        citer_sampler smp;
        citer_sampler_init(&smp, c->vocab_size, sample->temperature, sample->top_k, sample->top_p, 0);
        smp.rng = (sample->seed & INT64_MAX) ^ SEED_MIX; /* the protocol's seeds are int64 >= 0 */
        out->sampled = citer_sample(&smp, b->logits);
        citer_sampler_free(&smp);
    }
    out->hidden = want_hidden ? b->hidden : NULL;
    return 0;
}

static int append_process(citer_backend *b, uint64_t seq, const int32_t *tokens, int n, int want_hidden,
                          const citer_backend_sample *sample, citer_backend_step *out)
{
    char meta[400];
    int len = snprintf(meta, sizeof meta, "{\"op\":\"append\",\"hidden\":%s", want_hidden ? "true" : "false");
    if (sample)
        len += snprintf(meta + len, sizeof meta - (size_t)len,
                        ",\"sample\":{\"temperature\":%.9g,\"top_k\":%d,\"top_p\":%.9g,\"seed\":%" PRId64 "}",
                        (double)sample->temperature, sample->top_k, (double)sample->top_p,
                        (int64_t)(sample->seed & INT64_MAX));
    snprintf(meta + len, sizeof meta - (size_t)len, "}");
    if (send_request(b, seq, meta, tokens, n) != 0) return -1;
    citer_record rec;
    json_object *m = NULL;
    if (read_response(b, "append", seq, &rec, &m) != 0) return -1;
    const char *bad = NULL;
    int64_t v;
    json_object *pv;
    if (member_int(m, "len", 1, INT32_MAX, &v) != 0) {
        bad = "no length";
    } else {
        out->len = (int)v;
        if (member_int(m, "next", 0, b->info.vocab, &v) != 0) {
            bad = "no next token in the vocabulary";
        } else {
            out->next = (int32_t)v;
            if (!json_object_object_get_ex(m, "p", &pv) ||
                !(json_object_is_type(pv, json_type_double) || json_object_is_type(pv, json_type_int)))
                bad = "no probability";
            else
                out->p = (float)json_object_get_double(pv);
        }
    }
    out->sampled = -1;
    if (!bad && sample) {
        if (member_int(m, "sampled", 0, b->info.vocab, &v) != 0)
            bad = "no sampled token in the vocabulary";
        else
            out->sampled = (int32_t)v;
    }
    out->hidden = NULL;
    if (!bad && want_hidden) {
        /* hidden first in the payload, then logits when asked (never here) */
        if (member_int(m, "hidden", b->info.dim, (int64_t)b->info.dim + 1, &v) != 0 || rec.dtype != CITER_F32 ||
            rec.ndim != 1 || rec.dim[0] < (uint32_t)b->info.dim) {
            bad = "no hidden state of the model's size";
        } else {
            memcpy(b->hidden, rec.data, (size_t)b->info.dim * sizeof *b->hidden);
            out->hidden = b->hidden;
        }
    }
    json_object_put(m);
    citer_record_free(&rec);
    if (bad) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad answer to append: %s", bad);
        return broken(b, msg);
    }
    return 0;
}

int citer_backend_append(citer_backend *b, uint64_t seq, const int32_t *tokens, int n, int want_hidden,
                         const citer_backend_sample *sample, citer_backend_step *out)
{
    if (refuse_if_broken(b)) return -1;
    if (n < 1) {
        citer_set_error("no tokens to append");
        return -1;
    }
    b->calls++;
    return b->is_process ? append_process(b, seq, tokens, n, want_hidden, sample, out)
                         : append_local(b, seq, tokens, n, want_hidden, sample, out);
}

int citer_backend_drop(citer_backend *b, uint64_t seq)
{
    if (refuse_if_broken(b)) return -1;
    b->calls++;
    if (!b->is_process) {
        local_seq *q = find_local(b, seq);
        if (q) {
            citer_seq_free(q->s);
            *q = b->seqs[--b->n_seqs];
        }
        return 0;
    }
    if (send_request(b, seq, "{\"op\":\"drop\"}", NULL, 0) != 0) return -1;
    citer_record rec;
    json_object *m = NULL;
    if (read_response(b, "drop", seq, &rec, &m) != 0) return -1;
    json_object_put(m);
    citer_record_free(&rec);
    return 0;
}

/* A request whose answer carries only "len": fork and truncate. */
static int simple_request(citer_backend *b, const char *op, uint64_t seq, const char *meta, int *len)
{
    if (send_request(b, seq, meta, NULL, 0) != 0) return -1;
    citer_record rec;
    json_object *m = NULL;
    if (read_response(b, op, seq, &rec, &m) != 0) return -1;
    int64_t v;
    int rc = member_int(m, "len", 0, INT32_MAX, &v);
    json_object_put(m);
    citer_record_free(&rec);
    if (rc != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "bad answer to %s: no length", op);
        return broken(b, msg);
    }
    *len = (int)v;
    return 0;
}

int citer_backend_fork(citer_backend *b, uint64_t seq, uint64_t from)
{
    if (refuse_if_broken(b)) return -1;
    b->calls++;
    if (!b->is_process) {
        local_seq *src = find_local(b, from);
        if (!src) {
            citer_set_error("fork: unknown sequence %" PRIu64, from);
            return -1;
        }
        citer_seq *copy = citer_seq_fork(src->s);
        local_seq *q = find_local(b, seq);
        if (q) {
            citer_seq_free(q->s);
            q->s = copy;
        } else {
            add_local(b, seq, copy);
        }
        return 0;
    }
    if (seq > INT64_MAX || from > INT64_MAX) {
        citer_set_error("fork: sequence ids of a server are int64 >= 0");
        return -1;
    }
    char meta[80];
    snprintf(meta, sizeof meta, "{\"op\":\"fork\",\"from\":%" PRIu64 "}", from);
    int len;
    return simple_request(b, "fork", seq, meta, &len);
}

int citer_backend_truncate(citer_backend *b, uint64_t seq, int len)
{
    if (refuse_if_broken(b)) return -1;
    if (len < 0) {
        citer_set_error("truncate: length %d < 0", len);
        return -1;
    }
    b->calls++;
    if (!b->is_process) {
        local_seq *q = find_local(b, seq);
        if (!q) {
            citer_set_error("truncate: unknown sequence %" PRIu64, seq);
            return -1;
        }
        if (len > q->s->len) {
            citer_set_error("truncate: length %d is beyond the sequence's length %d", len, q->s->len);
            return -1;
        }
        citer_seq_truncate(q->s, len);
        return 0;
    }
    char meta[80];
    snprintf(meta, sizeof meta, "{\"op\":\"truncate\",\"len\":%d}", len);
    int got;
    if (simple_request(b, "truncate", seq, meta, &got) != 0) return -1;
    if (got != len) {
        char msg[96];
        snprintf(msg, sizeof msg, "bad answer to truncate: length %d, not %d", got, len);
        return broken(b, msg);
    }
    return 0;
}

int citer_backend_close(citer_backend *b)
{
    if (!b) return 0;
    int rc = 0;
    char msg[300] = "";
    if (b->is_process) {
        if (!b->broken && b->to) {
            /* A clean end of the requests, then the server's own END and EOF. */
            if (citer_writer_finish(b->w) != 0 || fflush(b->to) != 0) {
                snprintf(msg, sizeof msg, "cannot end the request stream: %s", strerror(errno));
            } else {
                fclose(b->to);
                b->to = NULL;
                citer_record rec;
                int r = citer_read(b->rd, &rec);
                if (r == 1) {
                    citer_record_free(&rec);
                    snprintf(msg, sizeof msg, "unexpected output after the last answer");
                } else if (r < 0) {
                    snprintf(msg, sizeof msg, "bad end of output: %s", citer_error());
                }
            }
        }
        int was_broken = b->broken;
        reap(b);
        if (!was_broken && !msg[0] && !(WIFEXITED(b->status) && WEXITSTATUS(b->status) == 0)) {
            char st[64];
            describe_status(b->status, st, sizeof st);
            snprintf(msg, sizeof msg, "the server ended with %s", st);
        }
        if (!was_broken && msg[0]) {
            citer_set_error("%s", msg);
            rc = -1;
        }
        citer_writer_free(b->w);
        citer_reader_free(b->rd);
    } else {
        for (size_t i = 0; i < b->n_seqs; i++) citer_seq_free(b->seqs[i].s);
        free(b->seqs);
        if (b->e.tok) citer_tokenizer_free(b->e.tok);
        citer_model_free(b->e.model);
        free(b->logits);
    }
    free(b->hidden);
    free(b);
    return rc;
}
