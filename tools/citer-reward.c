/* citer-reward: CITER's token labels (citer(7), "The method") from a tokenized data set and the
 * two models' score streams, written as FEATURE records for citer-train. See citer-reward(1).
 *
 * Case 1: the SLM's argmax is the reference token: label 1. Case 2: else the LLM's argmax is:
 * label 0. Case 3: neither: roll out from prompt + reference[:t] + the SLM's token with the
 * rollout policy and grade the answer (label 1 when correct); --myopic labels it 0 instead.
 * The rollouts of one example share their prefix's KV cache (a base sequence forked and cut per
 * rollout); --emit-rollouts and --rollouts run the rollout step as its own stage (citer-route
 * in between, sharded anywhere). With -o, each finished example is appended to FILE.journal as a complete
 * stream, so an interrupted run resumes where it stopped. */
#include "answer.h"
#include "dataset.h"
#include "backend.h"
#include "route.h"
#include "router.h"
#include "stream.h"
#include "template.h"
#include "tokenizer.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <xxhash.h>

static const char usage_text[] =
    "usage: citer-reward --data DATA --slm-scores SLM --llm-scores LLM [options]\n"
    "Label every target token with CITER's cases and write FEATURE records for citer-train.\n"
    "\n"
    "      --data FILE        tokenized data set (citer-tokenize --dataset)\n"
    "      --slm-scores FILE  citer-slm --score --hidden output for DATA\n"
    "      --llm-scores FILE  citer-llm --score output for DATA\n"
    "      --slm PATH         small model for the rollouts of case 3\n"
    "      --llm PATH         large model (routed rollouts, with -r)\n"
    "  -r, --router FILE      route the rollouts with this router (needs --llm)\n"
    "  -t, --tau TAU          router threshold (0.5)\n"
    "      --tokenizer PATH   tokenizer to decode rollouts (default: the --slm model's)\n"
    "      --myopic           case 3 is label 0, no rollouts\n"
    "      --max-tokens N     rollout length limit (256)\n"
    "      --stop-after-examples N  stop after N newly labelled examples (for testing resume)\n"
    "      --no-prefix-sharing  each rollout prefills its whole prefix (for testing and timing)\n"
    "      --emit-rollouts    write the rollout requests for citer-route instead of labels\n"
    "      --shard I/N        with --emit-rollouts: only the rollouts numbered I modulo N\n"
    "      --rollouts FILE[,FILE...]  label case 3 from citer-route's outputs of the requests\n"
    "  -o FILE                write to FILE (atomically; resumable through FILE.journal)\n"
    "  -q, --quiet            no summary line, no progress\n"
    "  -h, --help             show this help\n"
    "      --version          show the version\n";

enum { O_VERSION = 256, O_DATA, O_SLM_SCORES, O_LLM_SCORES, O_SLM, O_LLM, O_TOKENIZER, O_MYOPIC,
       O_MAX_TOKENS, O_STOP_AFTER, O_NO_SHARING, O_EMIT, O_SHARD, O_ROLLOUTS };

typedef struct {
    uint64_t seq;
    int32_t *prompt, *target;
    int n_prompt, n_target;
    citer_answer_key key; /* from the answer record; key.answer NULL when there is none */
} example;

typedef struct {
    uint64_t seq;
    int64_t pos;
    int32_t ref, argmax;
    int dim;        /* hidden floats, 0 when absent */
    float *hidden;
} score;

typedef struct {
    score *v;
    size_t n, cap;
} score_list;

/* One labelled position. */
typedef struct {
    uint64_t seq;
    int64_t pos;
    int label, kase;
    int dim;
    float *hidden;
    long order; /* the example's index in the data (output order), -1 when not in it */
} feature;

typedef struct {
    feature *v;
    size_t n, cap;
} feature_list;

static struct json_object *meta_parse(const citer_record *rec)
{
    return rec->meta ? json_tokener_parse(rec->meta) : NULL;
}

static const char *meta_str(struct json_object *m, const char *key)
{
    struct json_object *v;
    if (!m || !json_object_object_get_ex(m, key, &v)) return NULL;
    return json_object_get_string(v);
}

static int meta_int(struct json_object *m, const char *key, int64_t *out)
{
    struct json_object *v;
    if (!m || !json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 0;
}

static FILE *open_in(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    return f;
}

/* The data set: prompt, target and answer per seq, in the order of the targets. */
static example *read_data(const char *path, size_t *n_out)
{
    FILE *f = open_in(path);
    citer_reader *rd = citer_reader_new(f, path);
    example *ex = NULL;
    size_t n = 0, cap = 0;
    /* the last prompt seen, waiting for its target; answers may come before or after */
    int32_t *pending = NULL;
    int n_pending = 0;
    uint64_t pending_seq = 0;
    int have_pending = 0;
    typedef struct { uint64_t seq; citer_answer_key key; } ans;
    ans *answers = NULL;
    size_t n_ans = 0, cap_ans = 0;
    citer_record rec;
    int rc;
    while ((rc = citer_read(rd, &rec)) == 1) {
        struct json_object *m = meta_parse(&rec);
        const char *role = meta_str(m, "role");
        if (rec.kind == CITER_TOKENS && rec.dtype == CITER_I32) {
            int len = rec.ndim == 1 ? (int)rec.dim[0] : 0;
            if (role && strcmp(role, "target") == 0) {
                if (!have_pending || pending_seq != rec.seq)
                    die("%s: seq %" PRIu64 ": target without a prompt before it", path, rec.seq);
                xgrow((void **)&ex, &cap, n + 1, sizeof *ex);
                ex[n] = (example){rec.seq, pending, xmalloc((size_t)len * 4 + 4), n_pending, len,
                                  {NULL, CITER_FMT_MATH, NULL, NULL, 0}};
                if (len) memcpy(ex[n].target, rec.data, (size_t)len * 4);
                n++;
                pending = NULL;
                have_pending = 0;
            } else {
                free(pending);
                pending = xmalloc((size_t)len * 4 + 4);
                if (len) memcpy(pending, rec.data, (size_t)len * 4);
                n_pending = len;
                pending_seq = rec.seq;
                have_pending = 1;
            }
        } else if (rec.kind == CITER_META && meta_str(m, "answer")) {
            xgrow((void **)&answers, &cap_ans, n_ans + 1, sizeof *answers);
            ans *a = &answers[n_ans];
            a->seq = rec.seq;
            if (citer_answer_key_read(m, &a->key) != 0) die("%s: seq %" PRIu64 ": %s", path, rec.seq, citer_error());
            n_ans++;
        }
        json_object_put(m);
        citer_record_free(&rec);
    }
    if (rc < 0) die("%s: %s", path, citer_error());
    free(pending);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n_ans; j++)
            if (answers[j].seq == ex[i].seq && !ex[i].key.answer) {
                ex[i].key = answers[j].key; /* moved: the first record of a seq counts */
                answers[j].key = (citer_answer_key){NULL, CITER_FMT_MATH, NULL, NULL, 0};
            }
    for (size_t j = 0; j < n_ans; j++) citer_answer_key_free(&answers[j].key);
    free(answers);
    citer_reader_free(rd);
    fclose(f);
    *n_out = n;
    return ex;
}

static void read_scores(const char *path, score_list *sl)
{
    FILE *f = open_in(path);
    citer_reader *rd = citer_reader_new(f, path);
    citer_record rec;
    int rc;
    while ((rc = citer_read(rd, &rec)) == 1) {
        if (rec.kind != CITER_TENSOR) {
            citer_record_free(&rec);
            continue;
        }
        struct json_object *m = meta_parse(&rec);
        int64_t ref, argmax, hid = 0;
        if (meta_int(m, "ref", &ref) != 0 || meta_int(m, "argmax", &argmax) != 0)
            die("%s: record %" PRIu64 ": no integer \"ref\" and \"argmax\" in the metadata", path,
                citer_reader_records(rd));
        if (meta_int(m, "hidden", &hid) == 0) {
            size_t el = citer_record_elements(&rec);
            if (hid <= 0 || rec.dtype != CITER_F32 || el == SIZE_MAX || (uint64_t)hid > el)
                die("%s: record %" PRIu64 ": \"hidden\":%" PRId64 " does not fit the f32 payload", path,
                    citer_reader_records(rd), hid);
        }
        xgrow((void **)&sl->v, &sl->cap, sl->n + 1, sizeof *sl->v);
        score *s = &sl->v[sl->n++];
        *s = (score){rec.seq, rec.pos, (int32_t)ref, (int32_t)argmax, (int)hid, NULL};
        if (hid) {
            s->hidden = xmalloc((size_t)hid * sizeof(float));
            memcpy(s->hidden, rec.data, (size_t)hid * sizeof(float));
        }
        json_object_put(m);
        citer_record_free(&rec);
    }
    if (rc < 0) die("%s: %s", path, citer_error());
    citer_reader_free(rd);
    fclose(f);
}

static int score_cmp(const void *a, const void *b)
{
    const score *x = a, *y = b;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static const score *find_score(const score_list *sl, uint64_t seq, int64_t pos)
{
    if (!sl->n) return NULL;
    score key = {.seq = seq, .pos = pos};
    return bsearch(&key, sl->v, sl->n, sizeof *sl->v, score_cmp);
}

static char *feature_meta(const feature *ft)
{
    char *s = xmalloc(64);
    snprintf(s, 64, "{\"label\":%d,\"case\":%d,\"weight\":1}", ft->label, ft->kase);
    return s;
}

static int write_feature(citer_writer *w, const feature *ft)
{
    citer_record r;
    citer_record_init(&r, CITER_FEATURE, CITER_F32, ft->seq, ft->pos);
    r.ndim = 1;
    r.dim[0] = (uint32_t)ft->dim;
    r.data = ft->hidden;
    r.nbytes = (size_t)ft->dim * sizeof(float);
    char *m = feature_meta(ft);
    r.meta = m;
    int rc = citer_write(w, &r);
    free(m);
    return rc;
}

/* The journal: one complete stream per example (its FEATURE records, then a META
 * {"role":"journal_done"}). Reads the complete examples into fl and done; returns the byte
 * offset just after the last complete one (the rest, a torn tail, is cut off by the caller). */
static uint64_t read_journal(const char *path, feature_list *fl, uint64_t **done, size_t *n_done)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    citer_reader *rd = citer_reader_new(f, path);
    citer_reader_return_end(rd, 1);
    uint64_t good = 0;
    size_t first_pending = fl->n, cap_done = 0;
    int finished = 0;
    uint64_t pending_seq = 0;
    citer_record rec;
    while (citer_read(rd, &rec) == 1) {
        if (rec.kind == CITER_END) {
            if (finished) {
                xgrow((void **)done, &cap_done, *n_done + 1, sizeof **done);
                (*done)[(*n_done)++] = pending_seq;
                good = citer_reader_offset(rd);
                first_pending = fl->n;
            }
            finished = 0;
        } else if (rec.kind == CITER_FEATURE && rec.dtype == CITER_F32 && rec.ndim == 1 && !finished) {
            struct json_object *m = meta_parse(&rec);
            int64_t label = -1, kase = -1;
            if (meta_int(m, "label", &label) == 0 && meta_int(m, "case", &kase) == 0) {
                xgrow((void **)&fl->v, &fl->cap, fl->n + 1, sizeof *fl->v);
                feature *ft = &fl->v[fl->n++];
                *ft = (feature){rec.seq, rec.pos, (int)label, (int)kase, (int)rec.dim[0], rec.data, -1};
                rec.data = NULL;
            }
            json_object_put(m);
        } else if (rec.kind == CITER_META) {
            struct json_object *m = meta_parse(&rec);
            const char *role = meta_str(m, "role");
            if (role && strcmp(role, "journal_done") == 0) {
                pending_seq = rec.seq;
                finished = 1;
            }
            json_object_put(m);
        }
        citer_record_free(&rec);
    }
    /* drop features of an example whose stream did not end */
    for (size_t i = first_pending; i < fl->n; i++) free(fl->v[i].hidden);
    fl->n = first_pending;
    citer_reader_free(rd);
    fclose(f);
    return good;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int seq_done(const uint64_t *done, size_t n, uint64_t seq)
{
    return n && bsearch(&seq, done, n, sizeof *done, u64_cmp) != NULL;
}

/* seq -> index in the data, through pairs sorted by seq */
typedef struct {
    uint64_t seq;
    size_t index;
} seq_index;

static long find_index(const seq_index *si, size_t n, uint64_t seq)
{
    if (!n) return -1;
    const seq_index *hit = bsearch(&seq, si, n, sizeof *si, u64_cmp); /* seq is the first member */
    return hit ? (long)hit->index : -1;
}

static int feature_cmp(const void *a, const void *b)
{
    const feature *x = a, *y = b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The output: features in data order, then the summary record; then the journal goes. */
static void write_output(const char *out_path, size_t n_ex, const seq_index *si, feature_list *fl, int myopic,
                         int quiet, const char *journal_path)
{
    long count[4][2] = {{0}};
    citer_out *out = citer_out_open(out_path);
    if (!out) die("%s", citer_error());
    citer_writer *w = citer_writer_new(out->f);
    const char *oname = out_path ? out_path : "-";
    for (size_t k = 0; k < fl->n; k++) fl->v[k].order = find_index(si, n_ex, fl->v[k].seq);
    if (fl->n) qsort(fl->v, fl->n, sizeof *fl->v, feature_cmp);
    for (size_t k = 0; k < fl->n; k++) {
        const feature *ft = &fl->v[k];
        if (ft->order < 0) continue; /* a journal entry for a seq not in the data */
        if (write_feature(w, ft) != 0) die("%s: %s", oname, citer_error());
        if (ft->kase >= 1 && ft->kase <= 3 && (ft->label == 0 || ft->label == 1)) count[ft->kase][ft->label]++;
    }
    char summary[512];
    long total = 0;
    for (int k = 1; k <= 3; k++) total += count[k][0] + count[k][1];
    snprintf(summary, sizeof summary,
             "{\"role\":\"reward_summary\",\"examples\":%zu,\"tokens\":%ld,"
             "\"case1\":%ld,\"case2\":%ld,\"case3\":%ld,\"case3_label1\":%ld,\"label1\":%ld,\"label0\":%ld,"
             "\"myopic\":%s}",
             n_ex, total, count[1][1], count[2][0], count[3][0] + count[3][1], count[3][1],
             count[1][1] + count[2][1] + count[3][1], count[1][0] + count[2][0] + count[3][0],
             myopic ? "true" : "false");
    if (citer_write_meta(w, 0, summary) != 0 || citer_writer_finish(w) != 0) die("%s: %s", oname, citer_error());
    cli_check_write(out->f, oname);
    citer_writer_free(w);
    if (citer_out_commit(out) != 0) die("%s: %s", oname, citer_error());
    if (journal_path) unlink(journal_path);
    if (!quiet)
        fprintf(stderr, "citer-reward: %zu examples, %ld tokens: case 1 %ld, case 2 %ld, case 3 %ld (%ld label 1)\n",
                n_ex, total, count[1][1], count[2][0], count[3][0] + count[3][1], count[3][1]);

}

/* The case of target position t of e (1, 2 or 3, before --myopic), after checking the score
 * records of the position; *sp is the SLM's. */
static int classify(const example *e, int t, const score_list *ss, const score_list *ls, const char *slm_scores,
                    const char *llm_scores, int *hidden_dim, const score **sp)
{
    int64_t pos = (int64_t)e->n_prompt + t;
    const score *s = find_score(ss, e->seq, pos), *l = find_score(ls, e->seq, pos);
    if (!s) die("%s: seq %" PRIu64 " pos %" PRId64 ": no score record", slm_scores, e->seq, pos);
    if (!l) die("%s: seq %" PRIu64 " pos %" PRId64 ": no score record", llm_scores, e->seq, pos);
    if (s->ref != e->target[t] || l->ref != e->target[t])
        die("%s: seq %" PRIu64 " pos %" PRId64 ": the scores' \"ref\" is not the data's token %" PRId32,
            s->ref != e->target[t] ? slm_scores : llm_scores, e->seq, pos, e->target[t]);
    if (!s->hidden)
        die("%s: seq %" PRIu64 " pos %" PRId64 ": no hidden state (score with --hidden)", slm_scores, e->seq, pos);
    if (*hidden_dim && s->dim != *hidden_dim)
        die("%s: seq %" PRIu64 " pos %" PRId64 ": hidden size %d, earlier records %d", slm_scores, e->seq, pos, s->dim,
            *hidden_dim);
    *hidden_dim = s->dim;
    *sp = s;
    if (s->argmax == e->target[t]) return 1;
    if (l->argmax == e->target[t]) return 2;
    return 3;
}

/* The last case-3 position of e (the base sequence need not go further), -1 when none; positions
 * without both score records are left to classify's errors. */
static int last_case3(const example *e, const score_list *ss, const score_list *ls)
{
    int last = -1;
    for (int t = 0; t < e->n_target; t++) {
        int64_t pos = (int64_t)e->n_prompt + t;
        const score *s = find_score(ss, e->seq, pos), *l = find_score(ls, e->seq, pos);
        if (s && l && s->argmax != e->target[t] && l->argmax != e->target[t]) last = t;
    }
    return last;
}

/* Grade a rollout: the response is the reference so far, the SLM's token, the continuation. */
static int grade(const citer_tokenizer *tok, const example *e, int t, int32_t slm_token, const int32_t *gen, int n_gen)
{
    size_t n_resp = (size_t)t + 1 + (size_t)n_gen;
    int32_t *resp = xmalloc(n_resp * sizeof *resp);
    memcpy(resp, e->target, (size_t)t * sizeof *resp);
    resp[t] = slm_token;
    if (n_gen) memcpy(resp + t + 1, gen, (size_t)n_gen * sizeof *resp);
    char *text = citer_decode(tok, resp, n_resp, 0, NULL);
    if (!text) die("seq %" PRIu64 ": decode: %s", e->seq, citer_error());
    int ok = citer_answer_check(e->key.format, text, e->key.answer, (const char *const *)e->key.choice_texts,
                                (const char *const *)e->key.choice_labels, e->key.n_choices);
    if (ok < 0) die("seq %" PRIu64 ": grade: %s", e->seq, citer_error());
    free(text);
    free(resp);
    return ok ? 1 : 0;
}

/* In-process rollouts. With sharing, the first rollout of an example ingests prompt +
 * reference[:t_max] once into a base sequence of every model the route runs; each rollout then
 * forks it, cuts it to prompt + reference[:t] (causal attention: those positions' keys and
 * values do not depend on what follows) and appends only the SLM's token. */
typedef struct {
    citer_route *route;
    const citer_tokenizer *tok;
    int share;
    int n_models;
    int base_len;      /* 0: no base for this example yet, -1: could not make one (no sharing) */
    uint64_t base_id;
    long rollouts;
    uint64_t ingested; /* tokens the models ingested for the rollouts, base sequences included */
    double seconds;
} roller;

static int rollout(roller *rl, const example *e, int t, int32_t slm_token, int t_max)
{
    double t0 = now_seconds();
    int n_pre = e->n_prompt + t + 1;
    int32_t *prefix = xmalloc((size_t)n_pre * sizeof *prefix);
    memcpy(prefix, e->prompt, (size_t)e->n_prompt * sizeof *prefix);
    memcpy(prefix + e->n_prompt, e->target, (size_t)t * sizeof *prefix);
    prefix[n_pre - 1] = slm_token;
    if (rl->share && rl->base_len == 0) {
        /* a base that fails (a token out of range, over the context) leaves the error to the
         * unshared rollout, which reports it as before */
        int n_base = e->n_prompt + (t_max > t ? t_max : t);
        rl->base_id = e->seq == INT64_MAX ? INT64_MAX - 1 : INT64_MAX;
        rl->base_len = -1;
        if (n_base >= 1) {
            int32_t *base = xmalloc((size_t)n_base * sizeof *base);
            memcpy(base, e->prompt, (size_t)e->n_prompt * sizeof *base);
            memcpy(base + e->n_prompt, e->target, (size_t)(n_base - e->n_prompt) * sizeof *base);
            if (citer_route_base(rl->route, rl->base_id, base, n_base) == 0) {
                rl->base_len = n_base;
                rl->ingested += (uint64_t)n_base * (uint64_t)rl->n_models;
            }
            free(base);
        }
    }
    int have = 0;
    if (rl->base_len > 0 && n_pre - 1 >= 1 && n_pre - 1 <= rl->base_len) {
        if (citer_route_fork(rl->route, e->seq, rl->base_id, n_pre - 1) != 0)
            die("seq %" PRIu64 " pos %d: rollout: %s", e->seq, n_pre - 1, citer_error());
        have = n_pre - 1;
    }
    citer_route_result res;
    if (citer_route_prompt_from(rl->route, e->seq, prefix, n_pre, have, &res) != 0)
        die("seq %" PRIu64 " pos %d: rollout: %s", e->seq, n_pre - 1, citer_error());
    rl->ingested += (uint64_t)res.slm_ingested + (uint64_t)res.llm_ingested;
    int label = grade(rl->tok, e, t, slm_token, res.tokens, res.n);
    citer_route_result_free(&res);
    free(prefix);
    rl->rollouts++;
    rl->seconds += now_seconds() - t0;
    return label;
}

static void roller_end_example(roller *rl)
{
    if (rl->base_len != 0 && citer_route_drop(rl->route, rl->base_id) != 0) die("rollout: %s", citer_error());
    rl->base_len = 0;
}

/* ---- the rollout stage on its own: requests out, citer-route's outputs in ---- */

/* Requests: per case-3 position, META {"role":"rollout",...}, META {"role":"answer",...} and
 * the prompt TOKENS, all with seq = the rollout's number (case-3 positions counted over the
 * whole data, so the shards' numbers never collide). */
/* The hash of a rollout's prompt (prompt + reference[:t] + the SLM's token), carried by the request
 * so that --rollouts knows an output of other data when it sees one. */
static uint64_t prefix_hash(const example *e, int t, int32_t slm_token)
{
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    XXH64_update(h, e->prompt, (size_t)e->n_prompt * sizeof *e->prompt);
    XXH64_update(h, e->target, (size_t)t * sizeof *e->target);
    XXH64_update(h, &slm_token, sizeof slm_token);
    uint64_t v = XXH64_digest(h);
    XXH64_freeState(h);
    return v;
}

static void emit_rollout(citer_writer *w, const char *oname, uint64_t id, const example *e, int t, int32_t slm_token)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("rollout"));
    json_object_object_add(m, "example", json_object_new_int64((int64_t)e->seq));
    json_object_object_add(m, "pos", json_object_new_int64((int64_t)e->n_prompt + t));
    json_object_object_add(m, "slm_token", json_object_new_int64(slm_token));
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, prefix_hash(e, t, slm_token));
    json_object_object_add(m, "prompt_xxh64", json_object_new_string(hex));
    int rc = citer_write_meta(w, id, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    json_object_put(m);
    if (rc == 0 && e->key.answer) {
        m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("answer"));
        json_object_object_add(m, "format", json_object_new_string(citer_dataset_format_name(e->key.format)));
        json_object_object_add(m, "answer", json_object_new_string(e->key.answer));
        citer_choices_json(m, e->key.choice_texts, e->key.choice_labels, e->key.n_choices);
        rc = citer_write_meta(w, id, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(m);
    }
    if (rc == 0) {
        int n_pre = e->n_prompt + t + 1;
        int32_t *prefix = xmalloc((size_t)n_pre * sizeof *prefix);
        memcpy(prefix, e->prompt, (size_t)e->n_prompt * sizeof *prefix);
        memcpy(prefix + e->n_prompt, e->target, (size_t)t * sizeof *prefix);
        prefix[n_pre - 1] = slm_token;
        rc = citer_write_tokens(w, id, 0, prefix, (size_t)n_pre, "{\"role\":\"prompt\"}");
        free(prefix);
    }
    if (rc != 0) die("%s: %s", oname, citer_error());
}

/* One rollout read back: its request's META and citer-route's generated record. */
typedef struct {
    uint64_t id;
    uint64_t ex;
    int64_t pos;
    int32_t slm_token;
    uint64_t hash;
    int n_prompt;
    int32_t *gen;
    int n_gen;
    int have_meta, have_gen;
    const char *file;
} rollout_result;

typedef struct {
    rollout_result *v;
    size_t n, cap;
} result_list;

static rollout_result *result_slot(result_list *rl, uint64_t id, const char *file)
{
    for (size_t i = rl->n; i-- > 0;) /* a rollout's records come together: look back first */
        if (rl->v[i].id == id) return &rl->v[i];
    xgrow((void **)&rl->v, &rl->cap, rl->n + 1, sizeof *rl->v);
    rollout_result *r = &rl->v[rl->n++];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->file = file;
    return r;
}

static void read_results(const char *path, result_list *rl)
{
    FILE *f = open_in(path);
    citer_reader *rd = citer_reader_new(f, path);
    citer_record rec;
    int rc;
    size_t before = rl->n;
    char err[600] = "";
    while (!err[0] && (rc = citer_read(rd, &rec)) == 1) {
        struct json_object *m = meta_parse(&rec);
        const char *role = meta_str(m, "role");
        if (rec.kind == CITER_META && role && strcmp(role, "rollout") == 0) {
            int64_t exs, pos, slm;
            const char *hex = meta_str(m, "prompt_xxh64");
            char *end = NULL;
            uint64_t hash = hex ? strtoull(hex, &end, 16) : 0;
            rollout_result *r;
            if (meta_int(m, "example", &exs) != 0 || meta_int(m, "pos", &pos) != 0 || meta_int(m, "slm_token", &slm) != 0 ||
                exs < 0 || pos < 0 || pos > INT32_MAX || !hex || strlen(hex) != 16 || *end)
                snprintf(err, sizeof err,
                         "seq %" PRIu64 ": a rollout record needs integer \"example\", \"pos\" and \"slm_token\" and a "
                         "16-digit \"prompt_xxh64\"",
                         rec.seq);
            else if ((r = result_slot(rl, rec.seq, path))->have_meta)
                snprintf(err, sizeof err, "rollout %" PRIu64 " appears twice (in %.200s too)", rec.seq, r->file);
            else {
                r->have_meta = 1;
                r->ex = (uint64_t)exs;
                r->pos = pos;
                r->slm_token = (int32_t)slm;
                r->hash = hash;
            }
        } else if (rec.kind == CITER_TOKENS && role && strcmp(role, "generated") == 0) {
            rollout_result *r;
            if (rec.dtype != CITER_I32 || rec.ndim != 1 || rec.pos < 1 || rec.pos > INT32_MAX)
                snprintf(err, sizeof err, "seq %" PRIu64 ": a generated record must be i32 [n] at the prompt's length",
                         rec.seq);
            else if ((r = result_slot(rl, rec.seq, path))->have_gen)
                snprintf(err, sizeof err, "rollout %" PRIu64 " appears twice (in %.200s too)", rec.seq, r->file);
            else {
                r->have_gen = 1;
                r->n_prompt = (int)rec.pos;
                r->n_gen = (int)rec.dim[0];
                r->gen = xmalloc((size_t)r->n_gen * sizeof *r->gen + 4);
                if (r->n_gen) memcpy(r->gen, rec.data, (size_t)r->n_gen * sizeof *r->gen);
            }
        }
        json_object_put(m);
        citer_record_free(&rec);
    }
    if (err[0]) {
        citer_reader_free(rd);
        fclose(f);
        die("%s: %s", path, err);
    }
    if (rc < 0) die("%s: %s", path, citer_error());
    for (size_t i = before; i < rl->n; i++)
        if (!rl->v[i].have_meta) die("%s: rollout %" PRIu64 ": generated tokens without its rollout record", path, rl->v[i].id);
    citer_reader_free(rd);
    fclose(f);
}

static int result_cmp(const void *a, const void *b)
{
    const rollout_result *x = a, *y = b;
    if (x->ex != y->ex) return x->ex < y->ex ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The finished rollout of (seq, pos); NULL when none (a request without its generation does not count). */
static const rollout_result *find_result(const result_list *rl, uint64_t seq, int64_t pos)
{
    rollout_result key = {.ex = seq, .pos = pos};
    const rollout_result *r = rl->n ? bsearch(&key, rl->v, rl->n, sizeof *rl->v, result_cmp) : NULL;
    return r && r->have_gen ? r : NULL;
}

static void free_all(example *ex, size_t n_ex, score_list *ss, score_list *ls, seq_index *si)
{
    for (size_t i = 0; i < ss->n; i++) free(ss->v[i].hidden);
    for (size_t i = 0; i < ls->n; i++) free(ls->v[i].hidden);
    free(ss->v);
    free(ls->v);
    for (size_t i = 0; i < n_ex; i++) {
        free(ex[i].prompt);
        free(ex[i].target);
        citer_answer_key_free(&ex[i].key);
    }
    free(ex);
    free(si);
}

int main(int argc, char **argv)
{
    cli_init("citer-reward");
    const char *data = NULL, *slm_scores = NULL, *llm_scores = NULL, *slm = NULL, *llm = NULL,
               *router_path = NULL, *tok_path = NULL, *out_path = NULL;
    double tau = 0.5;
    int myopic = 0, quiet = 0, share = 1, emit = 0;
    long max_tokens = 256, stop_after = -1, shard = 0, shards = 1;
    const char *rollouts_arg = NULL, *shard_arg = NULL;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, O_DATA},
        {"slm-scores", required_argument, NULL, O_SLM_SCORES},
        {"llm-scores", required_argument, NULL, O_LLM_SCORES},
        {"slm", required_argument, NULL, O_SLM},
        {"llm", required_argument, NULL, O_LLM},
        {"router", required_argument, NULL, 'r'},
        {"tau", required_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, O_TOKENIZER},
        {"myopic", no_argument, NULL, O_MYOPIC},
        {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
        {"stop-after-examples", required_argument, NULL, O_STOP_AFTER},
        {"no-prefix-sharing", no_argument, NULL, O_NO_SHARING},
        {"emit-rollouts", no_argument, NULL, O_EMIT},
        {"shard", required_argument, NULL, O_SHARD},
        {"rollouts", required_argument, NULL, O_ROLLOUTS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:t:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_SLM_SCORES: slm_scores = optarg; break;
        case O_LLM_SCORES: llm_scores = optarg; break;
        case O_SLM: slm = optarg; break;
        case O_LLM: llm = optarg; break;
        case 'r': router_path = optarg; break;
        case 't':
            if (parse_double(optarg, &tau) != 0 || !(tau >= 0 && tau <= 1))
                usage_error("-t: '%s' is not a number in [0, 1]", optarg);
            break;
        case O_TOKENIZER: tok_path = optarg; break;
        case O_MYOPIC: myopic = 1; break;
        case O_MAX_TOKENS:
            if (parse_long(optarg, &max_tokens) != 0 || max_tokens < 1 || max_tokens > 1 << 20)
                usage_error("--max-tokens: '%s' is not a count in 1..1048576", optarg);
            break;
        case O_STOP_AFTER:
            if (parse_long(optarg, &stop_after) != 0 || stop_after < 0)
                usage_error("--stop-after-examples: '%s' is not a count", optarg);
            break;
        case O_NO_SHARING: share = 0; break;
        case O_EMIT: emit = 1; break;
        case O_SHARD: {
            char *slash = strchr(optarg, '/');
            shard_arg = optarg;
            if (!slash) usage_error("--shard: '%s' is not I/N", optarg);
            *slash = 0;
            int bad = parse_long(optarg, &shard) != 0 || parse_long(slash + 1, &shards) != 0;
            *slash = '/';
            if (bad || shards < 1 || shard < 0 || shard >= shards) usage_error("--shard: '%s' is not I/N with 0 <= I < N", optarg);
            break;
        }
        case O_ROLLOUTS: rollouts_arg = optarg; break;
        case 'o': out_path = optarg; break;
        case 'q': quiet = cli_quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("citer-reward %s\n", CITER_VERSION); return 0;
        default: cli_bad_option(argv, c);
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (!data || !slm_scores || !llm_scores) usage_error("--data, --slm-scores and --llm-scores are needed");
    if (router_path && !llm) usage_error("-r needs --llm");
    if (emit && (myopic || rollouts_arg)) usage_error("--emit-rollouts excludes --myopic and --rollouts");
    if (shard_arg && !emit) usage_error("--shard applies to --emit-rollouts");
    if (rollouts_arg && myopic) usage_error("--rollouts excludes --myopic");
    if (rollouts_arg && !slm && !tok_path) usage_error("--rollouts needs the tokenizer: give --tokenizer PATH (or --slm)");
    if (!myopic && !emit && !rollouts_arg && !slm) usage_error("rollouts need --slm (or give --myopic)");
    if (out_path && strcmp(out_path, "-") == 0) out_path = NULL;
    signal(SIGPIPE, SIG_IGN);

    size_t n_ex;
    example *ex = read_data(data, &n_ex);
    score_list ss = {0}, ls = {0};
    read_scores(slm_scores, &ss);
    read_scores(llm_scores, &ls);
    seq_index *si = xmalloc((n_ex + 1) * sizeof *si);
    for (size_t i = 0; i < n_ex; i++) si[i] = (seq_index){ex[i].seq, i};
    qsort(si, n_ex, sizeof *si, u64_cmp);
    for (size_t i = 1; i < n_ex; i++)
        if (si[i].seq == si[i - 1].seq) die("%s: seq %" PRIu64 ": two targets", data, si[i].seq);
    if (ss.n) qsort(ss.v, ss.n, sizeof *ss.v, score_cmp);
    if (ls.n) qsort(ls.v, ls.n, sizeof *ls.v, score_cmp);

    if (emit) {
        citer_out *out = citer_out_open(out_path);
        if (!out) die("%s", citer_error());
        const char *oname = out_path ? out_path : "-";
        citer_writer *w = citer_writer_new(out->f);
        uint64_t k = 0, n_out = 0;
        int hidden_dim = 0;
        for (size_t i = 0; i < n_ex; i++) {
            const example *e = &ex[i];
            for (int t = 0; t < e->n_target; t++) {
                const score *s;
                if (classify(e, t, &ss, &ls, slm_scores, llm_scores, &hidden_dim, &s) != 3) continue;
                if (!e->key.answer) die("%s: seq %" PRIu64 ": no answer to grade a rollout against", data, e->seq);
                if (k % (uint64_t)shards == (uint64_t)shard) {
                    emit_rollout(w, oname, k, e, t, s->argmax);
                    n_out++;
                }
                k++;
            }
        }
        char summary[200];
        snprintf(summary, sizeof summary,
                 "{\"role\":\"rollout_requests\",\"rollouts\":%" PRIu64 ",\"all_rollouts\":%" PRIu64
                 ",\"shard\":%ld,\"shards\":%ld}",
                 n_out, k, shard, shards);
        if (citer_write_meta(w, 0, summary) != 0 || citer_writer_finish(w) != 0) die("%s: %s", oname, citer_error());
        cli_check_write(out->f, oname);
        citer_writer_free(w);
        if (citer_out_commit(out) != 0) die("%s: %s", oname, citer_error());
        if (!quiet) fprintf(stderr, "citer-reward: %" PRIu64 " rollout requests (of %" PRIu64 ")\n", n_out, k);
        free_all(ex, n_ex, &ss, &ls, si);
        return 0;
    }
    result_list results = {0};
    char *results_names = NULL;
    if (rollouts_arg) {
        char *list = xstrdup(rollouts_arg), *save = NULL;
        for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) read_results(p, &results);
        size_t kept = 0; /* requests without their generation do not count */
        for (size_t i = 0; i < results.n; i++) {
            if (results.v[i].have_gen) results.v[kept++] = results.v[i];
        }
        results.n = kept;
        if (results.n) qsort(results.v, results.n, sizeof *results.v, result_cmp);
        for (size_t i = 1; i < results.n; i++)
            if (results.v[i].ex == results.v[i - 1].ex && results.v[i].pos == results.v[i - 1].pos &&
                1)
                die("%s: seq %" PRIu64 " pos %" PRId64 ": two rollouts (%" PRIu64 " and %" PRIu64 ")", results.v[i].file,
                    results.v[i].ex, results.v[i].pos, results.v[i - 1].id, results.v[i].id);
        /* the strings of the file names stay in list until the end */
        results_names = list;
    }

    /* resume */
    feature_list fl = {0};
    uint64_t *done = NULL;
    size_t n_done = 0;
    char *journal_path = NULL;
    FILE *journal = NULL;
    if (out_path) {
        journal_path = xmalloc(strlen(out_path) + 9);
        sprintf(journal_path, "%s.journal", out_path);
        uint64_t good = read_journal(journal_path, &fl, &done, &n_done);
        if (n_done) qsort(done, n_done, sizeof *done, u64_cmp);
        journal = fopen(journal_path, good ? "r+b" : "wb");
        if (!journal || ftruncate(fileno(journal), (off_t)good) != 0 || fseek(journal, (long)good, SEEK_SET) != 0)
            die("%s: %s", journal_path, strerror(errno));
    }

    /* models for the rollouts */
    citer_backend *slm_b = NULL, *llm_b = NULL;
    citer_router *router = NULL;
    citer_tokenizer *own_tok = NULL;
    citer_route *route = NULL;
    const citer_tokenizer *tok = NULL;
    if (rollouts_arg) {
        if (!(own_tok = citer_tokenizer_load(tok_path ? tok_path : slm)))
            die("%s: %s", tok_path ? tok_path : slm, citer_error());
        tok = own_tok;
    } else if (!myopic) {
        if (!(slm_b = citer_backend_load(slm))) die("%s: %s", slm, citer_error());
        if (llm && !(llm_b = citer_backend_load(llm))) die("%s: %s", llm, citer_error());
        if (router_path && !(router = citer_router_load(router_path))) die("%s: %s", router_path, citer_error());
        if (tok_path) {
            if (!(own_tok = citer_tokenizer_load(tok_path))) die("%s: %s", tok_path, citer_error());
            tok = own_tok;
        } else if (!(tok = citer_backend_tokenizer(slm_b)))
            usage_error("%s has no tokenizer: give --tokenizer PATH", slm);
        citer_route_opts ro;
        citer_route_defaults(&ro);
        ro.policy = router ? CITER_POLICY_ROUTER : CITER_POLICY_SLM;
        ro.threshold = tau;
        ro.router = router;
        ro.max_tokens = (int)max_tokens;
        if (!(route = citer_route_new(slm_b, router ? llm_b : NULL, &ro))) die("%s", citer_error());
    }

    citer_writer *jw = journal ? citer_writer_new(journal) : NULL;
    long newly = 0;
    int hidden_dim = 0;
    int stopped = 0;
    roller rl = {route, tok, share, router ? 2 : 1, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < n_ex && !stopped; i++) {
        const example *e = &ex[i];
        if (seq_done(done, n_done, e->seq)) continue;
        if (stop_after >= 0 && newly >= stop_after) {
            stopped = 1;
            break;
        }
        size_t first = fl.n;
        int t_max = route ? last_case3(e, &ss, &ls) : -1;
        for (int t = 0; t < e->n_target; t++) {
            int64_t pos = (int64_t)e->n_prompt + t;
            const score *s;
            int kase = classify(e, t, &ss, &ls, slm_scores, llm_scores, &hidden_dim, &s), label;
            if (kase == 1) label = 1;
            else if (kase == 2 || myopic) label = 0;
            else {
                if (!e->key.answer) die("%s: seq %" PRIu64 ": no answer to grade a rollout against", data, e->seq);
                if (rollouts_arg) {
                    const rollout_result *r = find_result(&results, e->seq, pos);
                    if (!r)
                        die("seq %" PRIu64 " pos %" PRId64 ": no rollout result (give --rollouts every shard's output)",
                            e->seq, pos);
                    if (r->slm_token != s->argmax || r->n_prompt != e->n_prompt + t + 1 ||
                        r->hash != prefix_hash(e, t, s->argmax))
                        die("%s: rollout %" PRIu64 ": its prompt is not seq %" PRIu64 " pos %" PRId64 " of this data",
                            r->file, r->id, e->seq, pos);
                    label = grade(tok, e, t, s->argmax, r->gen, r->n_gen);
                } else {
                    label = rollout(&rl, e, t, s->argmax, t_max);
                }
            }
            xgrow((void **)&fl.v, &fl.cap, fl.n + 1, sizeof *fl.v);
            float *h = xmalloc((size_t)s->dim * sizeof(float));
            memcpy(h, s->hidden, (size_t)s->dim * sizeof(float));
            fl.v[fl.n++] = (feature){e->seq, pos, label, kase, s->dim, h, -1};
        }
        roller_end_example(&rl);
        if (jw) {
            for (size_t k = first; k < fl.n; k++)
                if (write_feature(jw, &fl.v[k]) != 0) die("%s: %s", journal_path, citer_error());
            if (citer_write_meta(jw, e->seq, "{\"role\":\"journal_done\"}") != 0 || citer_writer_finish(jw) != 0)
                die("%s: %s", journal_path, citer_error());
            if (fflush(journal) != 0) die("%s: %s", journal_path, strerror(errno));
        }
        newly++;
        progress("example %zu/%zu", i + 1, n_ex);
    }
    progress_done();
    if (journal) {
        citer_writer_free(jw);
        if (fclose(journal) != 0) die("%s: %s", journal_path, strerror(errno));
    }
    if (!quiet && rl.rollouts)
        fprintf(stderr, "citer-reward: %ld rollouts in %.3f s, %" PRIu64 " tokens ingested (%s)\n", rl.rollouts,
                rl.seconds, rl.ingested, share ? "shared prefixes" : "no prefix sharing");
    if (stopped) {
        if (!quiet) fprintf(stderr, "citer-reward: stopped after %ld examples (resume with the same command)\n", newly);
    } else {
        write_output(out_path, n_ex, si, &fl, myopic, quiet, journal_path);
    }

    citer_route_free(route);
    citer_backend_close(slm_b);
    citer_backend_close(llm_b);
    citer_router_free(router);
    citer_tokenizer_free(own_tok);
    for (size_t k = 0; k < fl.n; k++) free(fl.v[k].hidden);
    free(fl.v);
    for (size_t i = 0; i < results.n; i++) free(results.v[i].gen);
    free(results.v);
    free(results_names);
    free_all(ex, n_ex, &ss, &ls, si);
    free(done);
    free(journal_path);
    return stopped ? 3 : 0;
}
