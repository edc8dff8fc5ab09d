/* citer-slm / citer-llm against the fixtures' float64 references: greedy generation, teacher-forced
 * scoring (argmax, hidden states, logits) and the serve protocol's append. The tools are run as
 * programs (from $CITER_BIN) on streams this test writes; their output is read back here. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "safetensors.h"
#include "stream.h"

static const char *bin_dir(void)
{
    const char *b = getenv("CITER_BIN");
    return b && *b ? b : "bin";
}

/* Run a shell command built from fmt; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static char *tmp(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

typedef struct {
    st_file *st;
    const int32_t *tokens, *greedy;
    const float *logits, *hidden;
    int T, V, D, n_greedy;
} reference;

/* What a case holds open, released at the start of the next one (a failed REQUIRE returns early). */
static st_file *held_st;
static citer_record *held_recs;
static int held_n;

static void free_records(citer_record *r, int n)
{
    for (int i = 0; i < n; i++) citer_record_free(&r[i]);
    free(r);
}

static void release_held(void)
{
    if (held_st) st_close(held_st);
    free_records(held_recs, held_n);
    held_st = NULL;
    held_recs = NULL;
    held_n = 0;
}

static int load_ref(const char *path, reference *r)
{
    memset(r, 0, sizeof *r);
    release_held();
    if (!(r->st = held_st = st_open(path))) return -1;
    const st_tensor *t = st_find(r->st, "tokens"), *g = st_find(r->st, "greedy"),
                    *l = st_find(r->st, "logits"), *h = st_find(r->st, "hidden");
    if (!t || !g || !l || !h) return -1;
    r->tokens = t->data;
    r->T = (int)t->shape[0];
    r->greedy = g->data;
    r->n_greedy = (int)g->shape[0];
    r->logits = l->data;
    r->V = (int)l->shape[1];
    r->hidden = h->data;
    r->D = (int)h->shape[1];
    return 0;
}

static double rel_l2(const float *a, const float *ref, int n)
{
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int argmax_of(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Write records to path as a stream. */
static void write_stream(const char *path, const citer_record *recs, int n)
{
    FILE *f = fopen(path, "wb");
    citer_writer *w = citer_writer_new(f);
    for (int i = 0; i < n; i++)
        if (citer_write(w, &recs[i]) != 0) printf("  write: %s\n", citer_error());
    citer_writer_finish(w);
    citer_writer_free(w);
    fclose(f);
}

static void tokens_record(citer_record *r, uint64_t seq, int64_t pos, const int32_t *ids, int n, const char *meta)
{
    citer_record_init(r, CITER_TOKENS, CITER_I32, seq, pos);
    r->ndim = 1;
    r->dim[0] = (uint32_t)n;
    r->data = (void *)ids;
    r->nbytes = (size_t)n * 4;
    r->meta = (char *)meta;
}

/* All records of a stream file; count in *n. NULL when unreadable. */
static citer_record *read_stream(const char *path, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    citer_reader *rd = citer_reader_new(f, path);
    citer_record *recs = NULL;
    int cap = 0, rc;
    *n = 0;
    citer_record r;
    while ((rc = citer_read(rd, &r)) == 1) {
        if (*n == cap) recs = realloc(recs, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *recs);
        recs[(*n)++] = r;
    }
    if (rc < 0) printf("  %s: %s\n", path, citer_error());
    citer_reader_free(rd);
    fclose(f);
    free_records(held_recs, held_n);
    held_recs = recs;
    held_n = *n;
    if (rc < 0) {
        free_records(recs, *n);
        held_recs = NULL;
        held_n = 0;
        return NULL;
    }
    return recs;
}

static json_object *meta_of(const citer_record *r) { return r->meta ? json_tokener_parse(r->meta) : NULL; }

static int64_t meta_int(json_object *m, const char *key)
{
    json_object *v;
    return m && json_object_object_get_ex(m, key, &v) ? json_object_get_int64(v) : INT64_MIN;
}

static const char *meta_str(json_object *m, const char *key)
{
    json_object *v;
    return m && json_object_object_get_ex(m, key, &v) ? json_object_get_string(v) : "";
}

/* ---- generate ---- */

static void greedy_case(const char *model_rel, const char *ref_rel, const char *tool, const char *extra)
{
    const char *model = t_fixture(model_rel), *ref_path = t_fixture(ref_rel);
    if (!model || !ref_path) SKIP(NO_FIXTURES);
    reference ref;
    REQUIRE(load_ref(ref_path, &ref) == 0, "reference %s", ref_path);
    citer_record in[2];
    tokens_record(&in[0], 5, 0, ref.tokens, ref.T, "{\"role\":\"prompt\"}");
    citer_record_init(&in[1], CITER_META, CITER_DT_NONE, 5, -1);
    in[1].meta = "{\"role\":\"answer\",\"text\":\"42\"}";
    write_stream(tmp("gen.in"), in, 2);
    int rc = sh("'%s/%s' -q -m '%s' --max-tokens %d %s -o '%s' '%s'", bin_dir(), tool, model, ref.n_greedy, extra,
                tmp("gen.out"), tmp("gen.in"));
    REQUIRE(rc == 0, "%s exited %d", tool, rc);
    int n;
    citer_record *out = read_stream(tmp("gen.out"), &n);
    REQUIRE(out, "output unreadable");
    int is_slm = strstr(tool, "slm") != NULL;
    int hidden = strstr(extra, "--no-hidden") ? 0 : strstr(extra, "--hidden") ? 1 : is_slm;
    CHECK(n == 2 + hidden, "%d records", n);
    if (n == 2 + hidden) {
        const citer_record *g = &out[0];
        CHECK(g->kind == CITER_TOKENS && g->seq == 5 && g->pos == ref.T, "generated record kind %d seq %llu pos %lld",
              g->kind, (unsigned long long)g->seq, (long long)g->pos);
        json_object *m = meta_of(g);
        CHECK(strcmp(meta_str(m, "role"), "generated") == 0, "role %s", meta_str(m, "role"));
        CHECK(strcmp(meta_str(m, "stop"), "max") == 0, "stop %s", meta_str(m, "stop"));
        CHECK(meta_int(m, "n_prompt") == ref.T, "n_prompt");
        json_object_put(m);
        REQUIRE(g->dtype == CITER_I32 && g->ndim == 1 && (int)g->dim[0] == ref.n_greedy, "shape");
        const int32_t *ids = g->data;
        int same = 0;
        while (same < ref.n_greedy && ids[same] == ref.greedy[same]) same++;
        CHECK(same == ref.n_greedy, "greedy differs from the reference at step %d: %d, want %d", same,
              same < ref.n_greedy ? ids[same] : -1, same < ref.n_greedy ? ref.greedy[same] : -1);
        if (hidden) {
            const citer_record *h = &out[1];
            CHECK(h->kind == CITER_TENSOR && h->dtype == CITER_F32 && h->ndim == 2 &&
                  (int)h->dim[0] == ref.n_greedy && (int)h->dim[1] == ref.D && h->pos == ref.T,
                  "hidden record shape");
            /* Row 0 is the state at the last prompt position, which the reference has. */
            if (h->dtype == CITER_F32 && (int)h->dim[1] == ref.D) {
                double e = rel_l2(h->data, ref.hidden + (size_t)(ref.T - 1) * ref.D, ref.D);
                CHECK(e <= 1e-4, "hidden row 0 rel. L2 %.3g", e);
            }
        }
        const citer_record *a = &out[1 + hidden];
        CHECK(a->kind == CITER_META && a->meta && strstr(a->meta, "\"42\""), "META record passed through");
    }
    release_held();
}

static void t_greedy_stories_slm(void)
{
    greedy_case("models/stories260K/stories260K-f32.gguf", "models/stories260K/stories260K.ref.safetensors",
                "citer-slm", "");
}
static void t_greedy_stories_llm(void)
{
    greedy_case("models/stories260K/stories260K-f32.gguf", "models/stories260K/stories260K.ref.safetensors",
                "citer-llm", "--threads 2");
}
static void t_greedy_stories_hf_hidden(void)
{
    greedy_case("models/stories260K/hf", "models/stories260K/stories260K.ref.safetensors", "citer-llm", "--hidden");
}
static void t_greedy_qwen2(void)
{
    /* random weights: the reference does not stop at end tokens */
    greedy_case("models/qwen2/qwen2-f32.gguf", "models/qwen2/qwen2.ref.safetensors", "citer-slm", "--ignore-eos");
}
static void t_greedy_qwen3_hf(void)
{
    greedy_case("models/qwen3/hf", "models/qwen3/qwen3.ref.safetensors", "citer-slm", "--ignore-eos --no-hidden");
}
static void t_greedy_llama_gqa(void)
{
    greedy_case("models/llama-gqa/llama-gqa-f32.gguf", "models/llama-gqa/llama-gqa.ref.safetensors", "citer-llm",
                "--ignore-eos");
}

/* ---- score ---- */

static void score_case(const char *tool, const char *extra, int want_hidden, int want_logits, int n_prompt)
{
    const char *model = t_fixture("models/stories260K/stories260K-f32.gguf"),
               *ref_path = t_fixture("models/stories260K/stories260K.ref.safetensors");
    if (!model || !ref_path) SKIP(NO_FIXTURES);
    reference ref;
    REQUIRE(load_ref(ref_path, &ref) == 0, "reference");
    citer_record in[3];
    tokens_record(&in[0], 9, 0, ref.tokens, n_prompt, "{\"role\":\"prompt\"}");
    citer_record_init(&in[1], CITER_META, CITER_DT_NONE, 9, -1);
    in[1].meta = "{\"role\":\"answer\"}";
    tokens_record(&in[2], 9, n_prompt, ref.tokens + n_prompt, ref.T - n_prompt, "{\"role\":\"target\"}");
    write_stream(tmp("score.in"), in, 3);
    int rc = sh("'%s/%s' -q --score -m '%s' %s <'%s' >'%s'", bin_dir(), tool, model, extra, tmp("score.in"),
                tmp("score.out"));
    REQUIRE(rc == 0, "%s exited %d", tool, rc);
    int n;
    citer_record *out = read_stream(tmp("score.out"), &n);
    REQUIRE(out, "output unreadable");
    int nt = ref.T - n_prompt;
    REQUIRE(n == 1 + nt, "%d records, want %d", n, 1 + nt);
    CHECK(out[0].kind == CITER_META, "META first");
    int V = ref.V, D = ref.D;
    double worst_h = 0, worst_l = 0, worst_lp = 0;
    int bad_argmax = 0, bad_ref = 0;
    for (int i = 0; i < nt; i++) {
        const citer_record *r = &out[1 + i];
        int P = n_prompt + i;
        CHECK(r->kind == CITER_TENSOR && r->seq == 9 && r->pos == P, "record %d: kind %d pos %lld", i, r->kind,
              (long long)r->pos);
        json_object *m = meta_of(r);
        const float *lg = ref.logits + (size_t)(P - 1) * V;
        if (meta_int(m, "ref") != ref.tokens[P]) bad_ref++;
        if (meta_int(m, "argmax") != argmax_of(lg, V)) bad_argmax++;
        /* log-softmax of the reference logits at the reference token */
        double mx = lg[argmax_of(lg, V)], sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)lg[v] - mx);
        double lp_ref = lg[ref.tokens[P]] - mx - log(sum);
        json_object *lpv;
        double lp = m && json_object_object_get_ex(m, "logp_ref", &lpv) ? json_object_get_double(lpv) : 1e9;
        if (fabs(lp - lp_ref) > worst_lp) worst_lp = fabs(lp - lp_ref);
        int want_n = (want_hidden ? D : 0) + (want_logits ? V : 0);
        if (want_n == 0) {
            CHECK(r->dtype == CITER_DT_NONE && r->ndim == 0, "record %d: no payload expected", i);
        } else if (r->dtype == CITER_F32 && r->ndim == 1 && (int)r->dim[0] == want_n) {
            CHECK(meta_int(m, "hidden") == (want_hidden ? D : INT64_MIN), "hidden key");
            CHECK(meta_int(m, "logits") == (want_logits ? V : INT64_MIN), "logits key");
            const float *d = r->data;
            if (want_hidden) {
                double e = rel_l2(d, ref.hidden + (size_t)(P - 1) * D, D);
                if (e > worst_h) worst_h = e;
                d += D;
            }
            if (want_logits) {
                double e = rel_l2(d, lg, V);
                if (e > worst_l) worst_l = e;
            }
        } else {
            CHECK(0, "record %d: payload dtype %d ndim %d dim %u, want f32 [%d]", i, r->dtype, r->ndim, r->dim[0],
                  want_n);
        }
        json_object_put(m);
    }
    CHECK(bad_ref == 0, "%d records with a wrong ref", bad_ref);
    CHECK(bad_argmax == 0, "%d positions where argmax differs from the reference logits", bad_argmax);
    printf("  worst hidden %.3g logits %.3g\n", worst_h, worst_l);
    CHECK(worst_h <= 1e-4, "hidden rel. L2 %.3g", worst_h);
    CHECK(worst_l <= 1e-4, "logits rel. L2 %.3g", worst_l);
    CHECK(worst_lp <= 1e-3, "logp_ref off by %.3g", worst_lp);
    release_held();
}

static void t_score_slm_hidden(void) { score_case("citer-slm", "", 1, 0, 1); }
static void t_score_llm_no_payload(void) { score_case("citer-llm", "", 0, 0, 8); }
static void t_score_hidden_and_logits(void) { score_case("citer-llm", "--hidden --logits", 1, 1, 3); }
static void t_score_logits_only(void) { score_case("citer-slm", "--no-hidden --logits", 0, 1, 20); }

/* ---- serve: append in two parts, all positions' argmax and the last hidden state ---- */

static void t_serve_append_matches_reference(void)
{
    const char *model = t_fixture("models/stories260K/stories260K-f32.gguf"),
               *ref_path = t_fixture("models/stories260K/stories260K.ref.safetensors");
    if (!model || !ref_path) SKIP(NO_FIXTURES);
    reference ref;
    REQUIRE(load_ref(ref_path, &ref) == 0, "reference");
    int cut = 17;
    citer_record in[2];
    citer_record_init(&in[0], CITER_REQUEST, CITER_I32, 3, -1);
    in[0].ndim = 1, in[0].dim[0] = (uint32_t)cut, in[0].data = (void *)ref.tokens, in[0].nbytes = (size_t)cut * 4;
    in[0].meta = "{\"op\":\"append\"}";
    citer_record_init(&in[1], CITER_REQUEST, CITER_I32, 3, -1);
    in[1].ndim = 1, in[1].dim[0] = (uint32_t)(ref.T - cut), in[1].data = (void *)(ref.tokens + cut);
    in[1].nbytes = (size_t)(ref.T - cut) * 4;
    in[1].meta = "{\"op\":\"append\",\"all\":true,\"hidden\":true}";
    write_stream(tmp("serve.in"), in, 2);
    int rc = sh("'%s/citer-llm' --serve -m '%s' <'%s' >'%s'", bin_dir(), model, tmp("serve.in"), tmp("serve.out"));
    REQUIRE(rc == 0, "exit %d", rc);
    int n;
    citer_record *out = read_stream(tmp("serve.out"), &n);
    REQUIRE(out && n == 2, "%d responses", n);
    int V = ref.V, D = ref.D;
    json_object *m0 = meta_of(&out[0]), *m1 = meta_of(&out[1]);
    CHECK(meta_int(m0, "len") == cut, "len after the first append");
    CHECK(meta_int(m0, "next") == argmax_of(ref.logits + (size_t)(cut - 1) * V, V), "next after the first append");
    CHECK(out[0].dtype == CITER_DT_NONE, "citer-llm sends no hidden state unless asked");
    CHECK(meta_int(m1, "len") == ref.T, "len after the second append");
    CHECK(meta_int(m1, "next") == argmax_of(ref.logits + (size_t)(ref.T - 1) * V, V), "next");
    json_object *am;
    if (m1 && json_object_object_get_ex(m1, "argmax", &am) && json_object_is_type(am, json_type_array) &&
        (int)json_object_array_length(am) == ref.T - cut) {
        for (int i = 0; i < ref.T - cut; i++) {
            int want = argmax_of(ref.logits + (size_t)(cut + i) * V, V);
            int got = json_object_get_int(json_object_array_get_idx(am, (size_t)i));
            CHECK(got == want, "argmax[%d] = %d, want %d", i, got, want);
        }
    } else {
        CHECK(0, "no argmax array of %d entries", ref.T - cut);
    }
    CHECK(out[1].pos == ref.T - 1, "pos %lld", (long long)out[1].pos);
    if (out[1].dtype == CITER_F32 && out[1].ndim == 1 && (int)out[1].dim[0] == D) {
        double e = rel_l2(out[1].data, ref.hidden + (size_t)(ref.T - 1) * D, D);
        CHECK(e <= 1e-4, "hidden rel. L2 %.3g", e);
    } else {
        CHECK(0, "hidden payload is not f32 [%d]", D);
    }
    json_object_put(m0);
    json_object_put(m1);
    release_held();
}

int main(void)
{
    RUN(t_greedy_stories_slm);
    RUN(t_greedy_stories_llm);
    RUN(t_greedy_stories_hf_hidden);
    RUN(t_greedy_qwen2);
    RUN(t_greedy_qwen3_hf);
    RUN(t_greedy_llama_gqa);
    RUN(t_score_slm_hidden);
    RUN(t_score_llm_no_payload);
    RUN(t_score_hidden_and_logits);
    RUN(t_score_logits_only);
    RUN(t_serve_append_matches_reference);
    release_held();
    sh("rm -rf '%s'", t_tmpdir());
    return t_exit();
}
