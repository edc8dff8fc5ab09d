#include "engine_cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "forward.h"
#include "kernels.h"
#include "sampler.h"
#include "serve.h"
#include "stream.h"
#include "util.h"

/* ---- the engine: eos ids and chunked feeding ---- */

static void add_eos(citer_engine *e, int32_t id)
{
    if (id < 0 || id >= e->model->cfg.vocab_size || citer_engine_is_eos(e, id)) return;
    if (e->n_eos < (int)(sizeof e->eos / sizeof e->eos[0])) e->eos[e->n_eos++] = id;
}

void citer_engine_find_eos(citer_engine *e)
{
    /* Chat models end a turn with a token of their own besides the base model's eos. */
    static const char *const end_texts[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>",
                                            "<|end_of_text|>", "<|end|>", "<end_of_turn>"};
    e->n_eos = 0;
    add_eos(e, e->model->cfg.eos);
    if (!e->tok) return;
    add_eos(e, citer_tokenizer_eos(e->tok));
    for (size_t i = 0; i < sizeof end_texts / sizeof end_texts[0]; i++)
        add_eos(e, citer_token_id(e->tok, end_texts[i]));
}

int citer_engine_is_eos(const citer_engine *e, int32_t id)
{
    for (int i = 0; i < e->n_eos; i++)
        if (e->eos[i] == id) return 1;
    return 0;
}

/* Positions per forward call when every position's logits are kept: bounds memory at
 * FEED_CHUNK x V floats. */
enum { FEED_CHUNK = 256 };

int citer_engine_feed(const citer_engine *e, citer_seq *s, const int32_t *tokens, int n,
                      float *hidden_last, float *logits_last, int32_t *argmax)
{
    const citer_config *c = &e->model->cfg;
    int D = c->dim, V = c->vocab_size, old_len = s->len;
    if (n <= 0) {
        citer_set_error("no tokens to feed");
        return -1;
    }
    int chunk = argmax ? FEED_CHUNK : n;
    float *hidden = hidden_last ? xmalloc((size_t)(chunk < n ? chunk : n) * D * sizeof *hidden) : NULL;
    float *logits = argmax ? xmalloc((size_t)(chunk < n ? chunk : n) * V * sizeof *logits) : NULL;
    int rc = 0;
    for (int t = 0; t < n && rc == 0; t += chunk) {
        int k = n - t < chunk ? n - t : chunk;
        int last = t + k == n;
        if (argmax) {
            rc = citer_forward(e->model, s, tokens + t, k, hidden, logits, 1);
            if (rc) break;
            for (int i = 0; i < k; i++) argmax[t + i] = citer_argmax(logits + (size_t)i * V, V, NULL);
            if (last && logits_last) memcpy(logits_last, logits + (size_t)(k - 1) * V, (size_t)V * sizeof *logits);
        } else {
            rc = citer_forward(e->model, s, tokens + t, k, hidden, last ? logits_last : NULL, 0);
            if (rc) break;
        }
        if (last && hidden_last) memcpy(hidden_last, hidden + (size_t)(k - 1) * D, (size_t)D * sizeof *hidden);
    }
    free(hidden);
    free(logits);
    if (rc) {
        if (s->len > old_len) citer_seq_truncate(s, old_len);
        return -1;
    }
    return 0;
}

/* ---- options ---- */

enum mode { GENERATE, SCORE, SERVE };

static struct {
    int is_slm;
    const char *model;
    const char *out_path;
    int mode;
    int hidden; /* -1: the tool's default */
    int logits;
    long max_tokens;
    char **stops;
    int n_stops;
    citer_sampling_args sampling;
    uint64_t seed;
    long threads;
    int ignore_eos;
} opt;

static void usage(FILE *f)
{
    const char *name = opt.is_slm ? "citer-slm" : "citer-llm";
    fprintf(f,
            "usage: %s -m MODEL [options] [FILE...]\n"
            "Run a language model over citer streams (FILEs or stdin; see %s(1)).\n"
            "\n"
            "Modes:\n"
            "  (default)          generate a continuation of every prompt TOKENS record\n"
            "      --score        teacher-forced scoring of prompt + target records\n"
            "      --serve        answer REQUEST records on stdin, one RESPONSE each\n"
            "\n"
            "Options:\n"
            "  -m, --model PATH   GGUF file or Hugging Face directory (default $%s)\n"
            "      --hidden       emit final hidden states%s\n"
            "      --no-hidden    do not emit hidden states%s\n"
            "      --logits       --score: put the full logits in each record too\n"
            "      --max-tokens N stop a generation after N tokens (default 256)\n"
            "      --stop STR     stop when the generated text contains STR (repeatable)\n"
            "      --ignore-eos   do not stop at end-of-sequence tokens\n"
            "      --temperature T  0 = greedy (default), else sample\n"
            "      --top-k K      sample from the K most likely tokens (0 = all)\n"
            "      --top-p P      sample from the smallest set with probability >= P (1 = all)\n"
            "      --seed N       seed of the sampler (default 0)\n"
            "      --threads N    threads for the kernels\n"
            "  -o FILE            write to FILE (atomically) instead of stdout\n"
            "  -q, --quiet        no progress on stderr\n"
            "  -h, --help         show this help\n"
            "      --version      show the version\n",
            name, name, opt.is_slm ? "CITER_SLM_MODEL" : "CITER_LLM_MODEL", opt.is_slm ? " (default)" : "",
            opt.is_slm ? "" : " (default)");
}

enum {
    O_HIDDEN = 256, O_NO_HIDDEN, O_LOGITS, O_SCORE, O_SERVE, O_MAX_TOKENS, O_STOP, O_IGNORE_EOS,
    O_TEMPERATURE, O_TOP_K, O_TOP_P, O_SEED, O_THREADS, O_VERSION
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"hidden", no_argument, NULL, O_HIDDEN},
    {"no-hidden", no_argument, NULL, O_NO_HIDDEN},
    {"logits", no_argument, NULL, O_LOGITS},
    {"score", no_argument, NULL, O_SCORE},
    {"serve", no_argument, NULL, O_SERVE},
    {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
    {"stop", required_argument, NULL, O_STOP},
    {"ignore-eos", no_argument, NULL, O_IGNORE_EOS},
    {"temperature", required_argument, NULL, O_TEMPERATURE},
    {"top-k", required_argument, NULL, O_TOP_K},
    {"top-p", required_argument, NULL, O_TOP_P},
    {"seed", required_argument, NULL, O_SEED},
    {"threads", required_argument, NULL, O_THREADS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

static void parse_options(int argc, char **argv)
{
    opt.hidden = -1;
    opt.max_tokens = 256;
    citer_sampling_args_defaults(&opt.sampling);
    opterr = 0;
    int c, mode_set = 0;
    while ((c = getopt_long(argc, argv, ":m:o:qh", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': opt.model = optarg; break;
        case 'o': opt.out_path = optarg; break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        case O_VERSION: printf("%s %s\n", cli_progname(), CITER_VERSION); exit(0);
        case O_HIDDEN: opt.hidden = 1; break;
        case O_NO_HIDDEN: opt.hidden = 0; break;
        case O_LOGITS: opt.logits = 1; break;
        case O_SCORE:
        case O_SERVE:
            if (mode_set && opt.mode != (c == O_SCORE ? SCORE : SERVE))
                usage_error("--score and --serve exclude each other");
            opt.mode = c == O_SCORE ? SCORE : SERVE;
            mode_set = 1;
            break;
        case O_MAX_TOKENS: opt.max_tokens = cli_count_arg("--max-tokens", optarg, 0); break;
        case O_STOP:
            if (!*optarg) usage_error("--stop: the stop string is empty");
            opt.stops = xrealloc(opt.stops, (size_t)(opt.n_stops + 1) * sizeof *opt.stops);
            opt.stops[opt.n_stops++] = optarg;
            break;
        case O_IGNORE_EOS: opt.ignore_eos = 1; break;
        case O_TEMPERATURE: cli_sampling_option(&opt.sampling, "--temperature", optarg); break;
        case O_TOP_K: cli_sampling_option(&opt.sampling, "--top-k", optarg); break;
        case O_TOP_P: cli_sampling_option(&opt.sampling, "--top-p", optarg); break;
        case O_SEED: opt.seed = cli_seed_arg("--seed", optarg); break;
        case O_THREADS: opt.threads = cli_count_arg("--threads", optarg, 1); break;
        default: cli_bad_option(argv, c);
        }
    }
    if (!opt.model) {
        const char *env = getenv(opt.is_slm ? "CITER_SLM_MODEL" : "CITER_LLM_MODEL");
        if (env && *env) opt.model = env;
    }
    if (!opt.model)
        usage_error("no model: give -m PATH or set %s", opt.is_slm ? "CITER_SLM_MODEL" : "CITER_LLM_MODEL");
    if (opt.mode == SERVE && opt.out_path) usage_error("--serve answers on stdout; -o does not apply");
    if (opt.mode == SERVE && argc - optind > 1) usage_error("--serve reads one request stream");
    if (opt.logits && opt.mode != SCORE) usage_error("--logits applies to --score");
    if (opt.hidden < 0) opt.hidden = opt.is_slm;
}

/* ---- shared by generate and score ---- */

typedef struct {
    citer_engine *e;
    citer_writer *w;
    FILE *out;
    const char *in_name;
    uint64_t rec_index;  /* data record number in the current input, from 1 */
    /* statistics for progress */
    uint64_t n_done, n_tokens;
    double t0;
} run;

static void die_rec(const run *r, const citer_record *rec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void die_rec(const run *r, const citer_record *rec, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("%s: record %" PRIu64 " (seq %" PRIu64 "): %s", r->in_name, r->rec_index, rec->seq, msg);
}

static void write_or_die(run *r, const citer_record *rec)
{
    if (citer_write(r->w, rec) != 0) die("%s: %s", opt.out_path ? opt.out_path : "stdout", citer_error());
}

/* The role of a TOKENS record ("prompt", "target", ...) into buf; "" when it has none. */
static void record_role(const citer_record *rec, char *buf, size_t n)
{
    buf[0] = 0;
    if (!rec->meta) return;
    json_object *m = json_tokener_parse(rec->meta), *v;
    if (m && json_object_object_get_ex(m, "role", &v) && json_object_is_type(v, json_type_string))
        snprintf(buf, n, "%s", json_object_get_string(v));
    json_object_put(m);
}

static void check_tokens(const run *r, const citer_record *rec)
{
    if (rec->dtype != CITER_I32 || rec->ndim != 1) die_rec(r, rec, "tokens record is not i32 [n]");
    const int32_t *ids = rec->data;
    int V = r->e->model->cfg.vocab_size;
    for (uint32_t i = 0; i < rec->dim[0]; i++)
        if (ids[i] < 0 || ids[i] >= V)
            die_rec(r, rec, "token %" PRId32 " at index %" PRIu32 " is out of range (vocabulary %d)", ids[i], i, V);
}

static void show_progress(run *r)
{
    double dt = now_seconds() - r->t0;
    progress("%" PRIu64 " done, %" PRIu64 " tokens, %.1f tokens/s", r->n_done, r->n_tokens,
             dt > 0 ? r->n_tokens / dt : 0.0);
}

/* ---- generate ---- */

/* Does the generated text contain one of the stop strings? */
static int hit_stop(const citer_engine *e, const int32_t *ids, size_t n)
{
    size_t len;
    char *text = citer_decode(e->tok, ids, n, 0, &len);
    if (!text) return 0;
    int hit = 0;
    for (int i = 0; i < opt.n_stops && !hit; i++)
        hit = memmem(text, len, opt.stops[i], strlen(opt.stops[i])) != NULL;
    free(text);
    return hit;
}

static void generate_one(run *r, const citer_record *rec)
{
    const citer_engine *e = r->e;
    const citer_config *c = &e->model->cfg;
    int D = c->dim, V = c->vocab_size;
    int n_prompt = (int)rec->dim[0];
    if (n_prompt < 1) die_rec(r, rec, "empty prompt");
    if (n_prompt > c->context_length)
        die_rec(r, rec, "prompt of %d tokens is over the context length %d", n_prompt, c->context_length);
    int max = (int)(opt.max_tokens < c->context_length - n_prompt ? opt.max_tokens : c->context_length - n_prompt);

    citer_seq *s = citer_seq_new(e->model);
    float *logits = xmalloc((size_t)V * sizeof *logits);
    float *hidden = xmalloc((size_t)(max + 1) * D * sizeof *hidden);
    int32_t *gen = xmalloc((size_t)(max + 1) * sizeof *gen);
    citer_sampler smp;
    citer_sampler_init(&smp, V, opt.sampling.temperature, opt.sampling.top_k, opt.sampling.top_p,
                       e->seed ^ (rec->seq * 0x9E3779B97F4A7C15ull));

    if (citer_engine_feed(e, s, rec->data, n_prompt, hidden, logits, NULL) != 0)
        die_rec(r, rec, "%s", citer_error());
    int n = 0;
    const char *why = "max";
    while (n < max) {
        /* hidden + n*D holds the state at the position that predicts token n */
        int32_t tok = citer_sample(&smp, logits);
        gen[n++] = tok;
        if (!opt.ignore_eos && citer_engine_is_eos(e, tok)) {
            why = "eos";
            break;
        }
        if (opt.n_stops && hit_stop(e, gen, (size_t)n)) {
            why = "stop";
            break;
        }
        if (n == max) break;
        if (citer_engine_feed(e, s, &tok, 1, hidden + (size_t)n * D, logits, NULL) != 0)
            die_rec(r, rec, "%s", citer_error());
        if ((++r->n_tokens & 15) == 0) show_progress(r);
    }
    char meta[160];
    snprintf(meta, sizeof meta, "{\"role\":\"generated\",\"stop\":\"%s\",\"n_prompt\":%d,\"n_generated\":%d}", why,
             n_prompt, n);
    if (citer_write_tokens(r->w, rec->seq, n_prompt, gen, (size_t)n, meta) != 0)
        die("%s: %s", opt.out_path ? opt.out_path : "stdout", citer_error());
    if (e->hidden) {
        citer_record h;
        citer_record_init(&h, CITER_TENSOR, CITER_F32, rec->seq, n_prompt);
        h.ndim = 2;
        h.dim[0] = (uint32_t)n;
        h.dim[1] = (uint32_t)D;
        h.data = hidden;
        h.nbytes = (size_t)n * D * sizeof *hidden;
        h.meta = "{\"role\":\"hidden\"}";
        write_or_die(r, &h);
    }
    citer_sampler_free(&smp);
    free(gen);
    free(hidden);
    free(logits);
    citer_seq_free(s);
}

/* ---- score ---- */

static void score_pair(run *r, const citer_record *prompt, const citer_record *target)
{
    const citer_engine *e = r->e;
    const citer_config *c = &e->model->cfg;
    int D = c->dim, V = c->vocab_size;
    int np = (int)prompt->dim[0], nt = (int)target->dim[0];
    if (np < 1) die_rec(r, prompt, "empty prompt: the first target token has nothing to predict it");
    if ((int64_t)np + nt > c->context_length)
        die_rec(r, target, "prompt and target (%d tokens) are over the context length %d", np + nt,
                c->context_length);
    if (nt == 0) return;
    /* Position P (the reference token) is predicted from P-1: feed the prompt but its last token,
     * then the last prompt token and all targets but the last, keeping every position's output. */
    int32_t *ids = xmalloc((size_t)(np + nt) * sizeof *ids);
    memcpy(ids, prompt->data, (size_t)np * sizeof *ids);
    memcpy(ids + np, target->data, (size_t)nt * sizeof *ids);
    citer_seq *s = citer_seq_new(e->model);
    if (np > 1 && citer_forward(e->model, s, ids, np - 1, NULL, NULL, 0) != 0)
        die_rec(r, prompt, "%s", citer_error());
    int chunk = nt < FEED_CHUNK ? nt : FEED_CHUNK;
    float *hidden = xmalloc((size_t)chunk * D * sizeof *hidden);
    float *logits = xmalloc((size_t)chunk * V * sizeof *logits);
    uint32_t n_payload = (e->hidden ? (uint32_t)D : 0) + (opt.logits ? (uint32_t)V : 0);
    float *payload = n_payload ? xmalloc((size_t)n_payload * sizeof *payload) : NULL;
    for (int t = 0; t < nt; t += chunk) {
        int k = nt - t < chunk ? nt - t : chunk;
        if (citer_forward(e->model, s, ids + np - 1 + t, k, hidden, logits, 1) != 0)
            die_rec(r, target, "%s", citer_error());
        for (int i = 0; i < k; i++) {
            const float *lg = logits + (size_t)i * V;
            int64_t P = np + t + i;
            int32_t ref = ids[P];
            float p;
            int32_t am = citer_argmax(lg, V, &p);
            float lp = citer_logprob(lg, V, ref);
            char meta[256];
            int len = snprintf(meta, sizeof meta, "{\"ref\":%" PRId32 ",\"argmax\":%" PRId32 ",\"p\":%.9g,\"logp_ref\":%.9g",
                               ref, am, (double)p, (double)lp);
            if (e->hidden) len += snprintf(meta + len, sizeof meta - (size_t)len, ",\"hidden\":%d", D);
            if (opt.logits) len += snprintf(meta + len, sizeof meta - (size_t)len, ",\"logits\":%d", V);
            snprintf(meta + len, sizeof meta - (size_t)len, "}");
            citer_record out;
            citer_record_init(&out, CITER_TENSOR, n_payload ? CITER_F32 : CITER_DT_NONE, target->seq, P);
            out.meta = meta;
            if (n_payload) {
                float *d = payload;
                if (e->hidden) {
                    memcpy(d, hidden + (size_t)i * D, (size_t)D * sizeof *d);
                    d += D;
                }
                if (opt.logits) memcpy(d, lg, (size_t)V * sizeof *d);
                out.ndim = 1;
                out.dim[0] = n_payload;
                out.data = payload;
                out.nbytes = (size_t)n_payload * sizeof *payload;
            }
            write_or_die(r, &out);
        }
        r->n_tokens += (uint64_t)k;
    }
    free(payload);
    free(logits);
    free(hidden);
    free(ids);
    citer_seq_free(s);
}

/* ---- reading the inputs ---- */

typedef struct {
    int have;
    citer_record rec;
    char role[32];
    uint64_t index;
} pending;

static void process_input(run *r, FILE *f)
{
    citer_reader *rd = citer_reader_new(f, r->in_name);
    citer_record rec;
    pending pend = {0};
    int rc;
    r->rec_index = 0;
    while ((rc = citer_read(rd, &rec)) == 1) {
        r->rec_index++;
        if (rec.kind == CITER_META) {
            write_or_die(r, &rec); /* answers and run facts travel on to the graders */
            citer_record_free(&rec);
            continue;
        }
        if (rec.kind != CITER_TOKENS) {
            citer_record_free(&rec);
            continue;
        }
        char role[32];
        record_role(&rec, role, sizeof role);
        if (opt.mode == GENERATE) {
            if (!role[0] || strcmp(role, "prompt") == 0) {
                check_tokens(r, &rec);
                generate_one(r, &rec);
                r->n_done++;
                show_progress(r);
                if (!opt.out_path) fflush(r->out); /* a reader down the pipe can start on it */
            }
            citer_record_free(&rec);
            continue;
        }
        /* score: a prompt, then its target (role "target", or a second record of the same seq
         * without a role). */
        int is_target = strcmp(role, "target") == 0 ||
                        (!role[0] && pend.have && pend.rec.seq == rec.seq && !pend.role[0]);
        if (is_target) {
            if (!pend.have || pend.rec.seq != rec.seq)
                die_rec(r, &rec, "target record without a prompt of the same seq before it");
            check_tokens(r, &rec);
            uint64_t here = r->rec_index;
            r->rec_index = pend.index;
            check_tokens(r, &pend.rec);
            r->rec_index = here;
            score_pair(r, &pend.rec, &rec);
            r->n_done++;
            show_progress(r);
            citer_record_free(&pend.rec);
            pend.have = 0;
            citer_record_free(&rec);
        } else if (!role[0] || strcmp(role, "prompt") == 0) {
            if (pend.have) citer_record_free(&pend.rec); /* a prompt without a target: nothing to score */
            pend.have = 1;
            pend.rec = rec;
            pend.index = r->rec_index;
            snprintf(pend.role, sizeof pend.role, "%s", role);
        } else {
            citer_record_free(&rec);
        }
    }
    if (pend.have) citer_record_free(&pend.rec);
    if (rc < 0) die("%s: %s", r->in_name, citer_error());
    citer_reader_free(rd);
}

int engine_main(int argc, char **argv, int is_slm)
{
    cli_init(is_slm ? "citer-slm" : "citer-llm");
    opt.is_slm = is_slm;
    parse_options(argc, argv);
    if (opt.threads) citer_set_threads((int)opt.threads);

    citer_engine e = {0};
    e.model = citer_model_load(opt.model);
    if (!e.model) die("%s: %s", opt.model, citer_error());
    e.tok = citer_tokenizer_load(opt.model);
    if (!e.tok && opt.n_stops) die("%s: --stop needs the model's tokenizer: %s", opt.model, citer_error());
    e.hidden = opt.hidden;
    e.seed = opt.seed;
    citer_engine_find_eos(&e);

    if (opt.mode == SERVE) {
        const char *name = optind < argc && strcmp(argv[optind], "-") != 0 ? argv[optind] : "stdin";
        FILE *in = stdin;
        if (strcmp(name, "stdin") != 0 && !(in = fopen(name, "rb"))) die("%s: %s", name, strerror(errno));
        if (citer_serve(&e, in, name, stdout) != 0) {
            cli_check_write(stdout, "stdout");
            die("%s: %s", name, citer_error());
        }
        if (in != stdin) fclose(in);
    } else {
        citer_out *o = citer_out_open(opt.out_path);
        if (!o) die("%s: %s", opt.out_path, citer_error());
        run r = {0};
        r.e = &e;
        r.out = o->f;
        r.w = citer_writer_new(o->f);
        r.t0 = now_seconds();
        int n_inputs = argc - optind;
        for (int i = 0; i < (n_inputs ? n_inputs : 1); i++) {
            const char *path = n_inputs ? argv[optind + i] : "-";
            FILE *f = stdin;
            r.in_name = "stdin";
            if (strcmp(path, "-") != 0) {
                if (!(f = fopen(path, "rb"))) die("%s: %s", path, strerror(errno));
                r.in_name = path;
            }
            process_input(&r, f);
            if (f != stdin) fclose(f);
        }
        progress_done();
        const char *out_name = opt.out_path ? opt.out_path : "stdout";
        if (citer_writer_finish(r.w) != 0) die("%s: %s", out_name, citer_error());
        cli_check_write(o->f, out_name);
        if (citer_out_commit(o) != 0) die("%s: %s", out_name, citer_error());
        citer_writer_free(r.w);
    }
    if (e.tok) citer_tokenizer_free(e.tok);
    citer_model_free(e.model);
    free(opt.stops);
    return 0;
}
