/* citer-route: token-level collaborative decoding of a small and a large model steered by
 * CITER's router. See citer-route(1); the loop is lib/route.c, the models lib/backend.c. */
#include "backend.h"
#include "kernels.h"
#include "route.h"
#include "router.h"
#include "sampler.h"
#include "stream.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

static const char usage_text[] =
    "usage: citer-route --slm MODEL|--slm-cmd CMD --llm MODEL|--llm-cmd CMD -r ROUTER [options] [FILE...]\n"
    "Decode every prompt of citer streams (FILEs or stdin) with a small model, handing the\n"
    "tokens the router marks as critical to a large model (CITER; see citer-route(1)).\n"
    "\n"
    "  --slm PATH          small model file, loaded in this process (default $CITER_SLM_MODEL)\n"
    "  --slm-cmd CMD       small model as a serve-protocol command (sh -c CMD)\n"
    "  --llm PATH          large model file, loaded in this process (default $CITER_LLM_MODEL)\n"
    "  --llm-cmd CMD       large model as a serve-protocol command (sh -c CMD)\n"
    "  -r, --router FILE   the router (from citer-train)\n"
    "  -t, --threshold T   large model when the router's score < T (0.5)\n"
    "      --policy P      router, slm, llm, random:P, confidence:C, query[:T] (router)\n"
    "      --max-tokens N  stop a generation after N tokens (256)\n"
    "      --stop STR      stop when the generated text contains STR (repeatable)\n"
    "      --ignore-eos    do not stop at end-of-sequence tokens\n"
    "      --tokenizer PATH  tokenizer for --stop (default: the --slm, else the --llm model)\n"
    "      --temperature T 0 = greedy (default), else both models sample\n"
    "      --top-k K       sample from the K most likely tokens (0 = all)\n"
    "      --top-p P       sample from the smallest set with probability >= P (1 = all)\n"
    "      --seed N        seed of sampling and of the random policy (0)\n"
    "      --threads N     kernel threads of the in-process models\n"
    "  -o FILE             write to FILE (atomically) instead of stdout\n"
    "  -q, --quiet         no progress and no summary on stderr\n"
    "  -h, --help          show this help\n"
    "      --version       show the version\n";

enum {
    O_SLM = 256, O_SLM_CMD, O_LLM, O_LLM_CMD, O_POLICY, O_MAX_TOKENS, O_STOP, O_IGNORE_EOS, O_TOKENIZER,
    O_TEMPERATURE, O_TOP_K, O_TOP_P, O_SEED, O_THREADS, O_VERSION
};

static const struct option long_options[] = {
    {"slm", required_argument, NULL, O_SLM},
    {"slm-cmd", required_argument, NULL, O_SLM_CMD},
    {"llm", required_argument, NULL, O_LLM},
    {"llm-cmd", required_argument, NULL, O_LLM_CMD},
    {"router", required_argument, NULL, 'r'},
    {"threshold", required_argument, NULL, 't'},
    {"policy", required_argument, NULL, O_POLICY},
    {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
    {"stop", required_argument, NULL, O_STOP},
    {"ignore-eos", no_argument, NULL, O_IGNORE_EOS},
    {"tokenizer", required_argument, NULL, O_TOKENIZER},
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

static struct {
    const char *slm, *slm_cmd, *llm, *llm_cmd, *router, *tokenizer, *out_path;
    const char *policy;
    double threshold;
    long max_tokens;
    const char **stops;
    int n_stops;
    int ignore_eos;
    citer_sampling_args sampling;
    uint64_t seed;
    long threads;
    int quiet;
} opt;

/* Everything a fatal error has to clean up: the children are reaped, a healthy one after a
 * clean end of its request stream. */
static citer_backend *slm_b, *llm_b;
static citer_reader *input_reader;

static void close_backends(void)
{
    citer_reader_free(input_reader);
    input_reader = NULL;
    citer_backend_close(slm_b);
    citer_backend_close(llm_b);
    slm_b = llm_b = NULL;
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fatal(const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    close_backends();
    die("%s", msg);
}

/* After a write: a reader that went away ends us quietly, as SIGPIPE would have. */
static void check_output(FILE *f, const char *name)
{
    if (fflush(f) == 0 && !ferror(f)) return;
    if (errno == EPIPE) {
        close_backends();
        _exit(141);
    }
    fatal("%s: write error: %s", name, strerror(errno));
}

static void parse_options(int argc, char **argv)
{
    opt.threshold = 0.5;
    opt.max_tokens = 256;
    citer_sampling_args_defaults(&opt.sampling);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:t:o:qh", long_options, NULL)) != -1) {
        switch (c) {
        case O_SLM: opt.slm = optarg; break;
        case O_SLM_CMD: opt.slm_cmd = optarg; break;
        case O_LLM: opt.llm = optarg; break;
        case O_LLM_CMD: opt.llm_cmd = optarg; break;
        case 'r': opt.router = optarg; break;
        case 't':
            if (parse_double(optarg, &opt.threshold) != 0 || !(opt.threshold >= 0 && opt.threshold <= 1))
                usage_error("--threshold: '%s' is not a number in [0, 1]", optarg);
            break;
        case O_POLICY: opt.policy = optarg; break;
        case O_MAX_TOKENS: opt.max_tokens = cli_count_arg("--max-tokens", optarg, 0); break;
        case O_STOP:
            if (!*optarg) usage_error("--stop: the stop string is empty");
            opt.stops = xrealloc(opt.stops, (size_t)(opt.n_stops + 1) * sizeof *opt.stops);
            opt.stops[opt.n_stops++] = optarg;
            break;
        case O_IGNORE_EOS: opt.ignore_eos = 1; break;
        case O_TOKENIZER: opt.tokenizer = optarg; break;
        case O_TEMPERATURE: cli_sampling_option(&opt.sampling, "--temperature", optarg); break;
        case O_TOP_K: cli_sampling_option(&opt.sampling, "--top-k", optarg); break;
        case O_TOP_P: cli_sampling_option(&opt.sampling, "--top-p", optarg); break;
        case O_SEED: opt.seed = cli_seed_arg("--seed", optarg); break;
        case O_THREADS: opt.threads = cli_count_arg("--threads", optarg, 1); break;
        case 'o': opt.out_path = optarg; break;
        case 'q': opt.quiet = cli_quiet = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case O_VERSION: printf("citer-route %s\n", CITER_VERSION); exit(0);
        default: cli_bad_option(argv, c);
        }
    }
    if (opt.slm && opt.slm_cmd) usage_error("--slm and --slm-cmd exclude each other");
    if (opt.llm && opt.llm_cmd) usage_error("--llm and --llm-cmd exclude each other");
    const char *env;
    if (!opt.slm && !opt.slm_cmd && (env = getenv("CITER_SLM_MODEL")) && *env) opt.slm = env;
    if (!opt.llm && !opt.llm_cmd && (env = getenv("CITER_LLM_MODEL")) && *env) opt.llm = env;
}

/* ---- the run ---- */

typedef struct {
    citer_route *route;
    citer_route_stats stats;
    citer_writer *w;
    FILE *out;
    const char *out_name;
    const char *in_name;
    uint64_t rec_index;
} run;

static void write_or_die(run *r, const citer_record *rec)
{
    if (citer_write(r->w, rec) != 0) {
        check_output(r->out, r->out_name);
        fatal("%s: %s", r->out_name, citer_error());
    }
}

static int record_role(const citer_record *rec, char *buf, size_t n)
{
    buf[0] = 0;
    if (!rec->meta) return 0;
    json_object *m = json_tokener_parse(rec->meta), *v;
    if (m && json_object_object_get_ex(m, "role", &v) && json_object_is_type(v, json_type_string))
        snprintf(buf, n, "%s", json_object_get_string(v));
    json_object_put(m);
    return 0;
}

/* The records of one finished prompt, written together: a failed prompt leaves none. */
static void write_prompt(run *r, uint64_t seq, const citer_route_result *res)
{
    char meta[512];
    int len = snprintf(meta, sizeof meta,
                       "{\"role\":\"generated\",\"stop\":\"%s\",\"n_prompt\":%d,\"n_generated\":%d,"
                       "\"llm_tokens\":%d,\"llm_calls\":%d,\"catchup_tokens\":%d",
                       res->stop, res->n_prompt, res->n, res->llm_tokens, res->llm_calls, res->catchup);
    if (res->query_score >= 0) len += snprintf(meta + len, sizeof meta - (size_t)len, ",\"query_score\":%.9g", (double)res->query_score);
    snprintf(meta + len, sizeof meta - (size_t)len, "}");
    if (citer_write_tokens(r->w, seq, res->n_prompt, res->tokens, (size_t)res->n, meta) != 0) {
        check_output(r->out, r->out_name);
        fatal("%s: %s", r->out_name, citer_error());
    }
    citer_record t;
    citer_record_init(&t, CITER_TENSOR, CITER_I32, seq, res->n_prompt);
    t.ndim = 2;
    t.dim[0] = (uint32_t)res->n;
    t.dim[1] = 3;
    t.data = res->trace;
    t.nbytes = (size_t)res->n * 3 * sizeof *res->trace;
    t.meta = "{\"role\":\"route\",\"columns\":[\"source\",\"slm_token\",\"llm_token\"]}";
    write_or_die(r, &t);
    citer_record_init(&t, CITER_TENSOR, CITER_F32, seq, res->n_prompt);
    t.ndim = 2;
    t.dim[0] = (uint32_t)res->n;
    t.dim[1] = 2;
    t.data = res->scores;
    t.nbytes = (size_t)res->n * 2 * sizeof *res->scores;
    t.meta = "{\"role\":\"route_scores\",\"columns\":[\"score\",\"slm_p\"]}";
    write_or_die(r, &t);
}

static void process_input(run *r, FILE *f)
{
    citer_reader *rd = input_reader = citer_reader_new(f, r->in_name);
    citer_record rec;
    int rc;
    r->rec_index = 0;
    while ((rc = citer_read(rd, &rec)) == 1) {
        r->rec_index++;
        if (rec.kind == CITER_META) {
            write_or_die(r, &rec); /* answers travel on to the graders */
        } else if (rec.kind == CITER_TOKENS) {
            char role[32];
            record_role(&rec, role, sizeof role);
            if (!role[0] || strcmp(role, "prompt") == 0) {
                if (rec.dtype != CITER_I32 || rec.ndim != 1) {
                    uint64_t seq = rec.seq;
                    citer_record_free(&rec);
                    fatal("%s: record %" PRIu64 " (seq %" PRIu64 "): tokens record is not i32 [n]", r->in_name,
                          r->rec_index, seq);
                }
                citer_route_result res;
                if (citer_route_prompt(r->route, rec.seq, rec.data, (int)rec.dim[0], &res) != 0) {
                    char e[1024];
                    snprintf(e, sizeof e, "%s", citer_error());
                    uint64_t seq = rec.seq;
                    citer_route_result_free(&res);
                    citer_record_free(&rec);
                    if (strncmp(e, "slm: ", 5) == 0 || strncmp(e, "llm: ", 5) == 0)
                        fatal("%s", e);
                    fatal("%s: record %" PRIu64 " (seq %" PRIu64 "): %s", r->in_name, r->rec_index, seq, e);
                }
                write_prompt(r, rec.seq, &res);
                citer_route_stats_add(&r->stats, &res);
                citer_route_result_free(&res);
                if (!opt.out_path) check_output(r->out, r->out_name); /* a reader down the pipe can start */
                progress("%" PRIu64 " prompts, %" PRIu64 " tokens, %" PRIu64 " from the large model",
                         r->stats.prompts, r->stats.tokens, r->stats.llm_tokens);
            }
        }
        citer_record_free(&rec);
    }
    if (rc < 0) fatal("%s: %s", r->in_name, citer_error());
    citer_reader_free(rd);
    input_reader = NULL;
}

static citer_backend *open_backend(const char *who, const char *path, const char *cmd)
{
    citer_backend *b = path ? citer_backend_load(path) : citer_backend_spawn(cmd);
    if (!b) {
        if (path) fatal("%s: %s: %s", who, path, citer_error());
        fatal("%s: %s", who, citer_error());
    }
    return b;
}

int main(int argc, char **argv)
{
    cli_init("citer-route");
    parse_options(argc, argv);

    citer_route_opts ro;
    citer_route_defaults(&ro);
    ro.threshold = opt.threshold;
    ro.policy = opt.router ? CITER_POLICY_ROUTER : -1;
    if (opt.policy && citer_policy_parse(opt.policy, opt.threshold, &ro.policy, &ro.param) != 0)
        usage_error("--policy: %s", citer_error());
    if (ro.policy < 0) usage_error("no router: give -r ROUTER or a --policy");
    int need_slm = ro.policy != CITER_POLICY_LLM, need_llm = ro.policy != CITER_POLICY_SLM;
    if (need_slm && !opt.slm && !opt.slm_cmd)
        usage_error("no small model: give --slm PATH, --slm-cmd CMD or set CITER_SLM_MODEL");
    if (need_llm && !opt.llm && !opt.llm_cmd)
        usage_error("no large model: give --llm PATH, --llm-cmd CMD or set CITER_LLM_MODEL");
    if ((ro.policy == CITER_POLICY_ROUTER || ro.policy == CITER_POLICY_QUERY) && !opt.router)
        usage_error("policy %s needs a router: give -r ROUTER", citer_policy_name(ro.policy));
    const char *tok_path = opt.tokenizer ? opt.tokenizer : opt.slm ? opt.slm : opt.llm;
    if (opt.n_stops && !tok_path)
        usage_error("--stop needs a tokenizer: give --tokenizer PATH (the models run as commands)");
    if (opt.threads) citer_set_threads((int)opt.threads);

    /* Coprocesses get a pipe to write to that closes for them when we go: a dead one must not
     * end us silently through SIGPIPE, so writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);

    citer_router *router = NULL;
    if (opt.router && !(router = citer_router_load(opt.router))) die("%s: %s", opt.router, citer_error());
    ro.router = router;
    ro.max_tokens = (int)opt.max_tokens;
    ro.ignore_eos = opt.ignore_eos;
    ro.stops = opt.stops;
    ro.n_stops = opt.n_stops;
    ro.temperature = opt.sampling.temperature;
    ro.top_k = opt.sampling.top_k;
    ro.top_p = opt.sampling.top_p;
    ro.seed = opt.seed;

    if (need_slm && (opt.slm || opt.slm_cmd)) slm_b = open_backend("slm", opt.slm, opt.slm_cmd);
    if (need_llm && (opt.llm || opt.llm_cmd)) llm_b = open_backend("llm", opt.llm, opt.llm_cmd);
    citer_tokenizer *own_tok = NULL;
    if (opt.n_stops) {
        /* A model loaded here already has its tokenizer. */
        if (!opt.tokenizer && opt.slm && slm_b) ro.tok = citer_backend_tokenizer(slm_b);
        else if (!opt.tokenizer && opt.llm && llm_b && !opt.slm) ro.tok = citer_backend_tokenizer(llm_b);
        if (!ro.tok) {
            if (!(own_tok = citer_tokenizer_load(tok_path)))
                fatal("%s: --stop needs the tokenizer: %s", tok_path, citer_error());
            ro.tok = own_tok;
        }
    }
    if (router && slm_b && citer_router_dim(router) != citer_backend_get_info(slm_b)->dim)
        fatal("%s: the router's input size %d is not the small model's hidden size %d", opt.router,
              citer_router_dim(router), citer_backend_get_info(slm_b)->dim);
    citer_route *route = citer_route_new(slm_b, llm_b, &ro);
    if (!route) fatal("%s", citer_error());

    citer_out *o = citer_out_open(opt.out_path);
    if (!o) fatal("%s: %s", opt.out_path, citer_error());
    run r = {0};
    r.route = route;
    r.out = o->f;
    r.out_name = opt.out_path ? opt.out_path : "stdout";
    r.w = citer_writer_new(o->f);
    double t0 = now_seconds();
    int n_inputs = argc - optind;
    for (int i = 0; i < (n_inputs ? n_inputs : 1); i++) {
        const char *path = n_inputs ? argv[optind + i] : "-";
        FILE *f = stdin;
        r.in_name = "stdin";
        if (strcmp(path, "-") != 0) {
            if (!(f = fopen(path, "rb"))) fatal("%s: %s", path, strerror(errno));
            r.in_name = path;
        }
        process_input(&r, f);
        if (f != stdin) fclose(f);
    }
    double seconds = now_seconds() - t0;
    progress_done();

    /* Both models are closed (and checked) before the output is complete. */
    citer_backend *b[2] = {slm_b, llm_b};
    const char *who[2] = {"slm", "llm"};
    slm_b = llm_b = NULL;
    for (int i = 0; i < 2; i++) {
        if (citer_backend_close(b[i]) != 0) {
            char msg[800];
            snprintf(msg, sizeof msg, "%s", citer_error());
            if (i == 0) citer_backend_close(b[1]);
            die("%s: %s", who[i], msg);
        }
    }

    char *stats = citer_route_stats_json(&r.stats, seconds, &ro);
    if (citer_write_meta(r.w, 0, stats) != 0) fatal("%s: %s", r.out_name, citer_error());
    free(stats);
    if (citer_writer_finish(r.w) != 0) fatal("%s: %s", r.out_name, citer_error());
    check_output(o->f, r.out_name);
    if (citer_out_commit(o) != 0) die("%s: %s", r.out_name, citer_error());
    citer_writer_free(r.w);

    if (!opt.quiet) {
        const citer_route_stats *s = &r.stats;
        fprintf(stderr,
                "citer-route: %" PRIu64 " prompts, %" PRIu64 " tokens, %" PRIu64 " from the large model (%.1f%%) in %" PRIu64
                " calls, %" PRIu64 " catch-up tokens, %.1f tokens/s\n",
                s->prompts, s->tokens, s->llm_tokens, s->tokens ? 100.0 * (double)s->llm_tokens / (double)s->tokens : 0.0,
                s->llm_calls, s->catchup, seconds > 0 ? (double)s->tokens / seconds : 0.0);
    }
    citer_route_free(route);
    if (own_tok) citer_tokenizer_free(own_tok);
    citer_router_free(router);
    free(opt.stops);
    return 0;
}
