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
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define MAX_JOBS 256

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
    "      --threads N     kernel threads of the in-process models (with -j: in all)\n"
    "  -j, --jobs N        decode N prompts at a time, in N worker processes (1)\n"
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
    {"jobs", required_argument, NULL, 'j'},
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
    long jobs;
    int quiet;
} opt;

/* Everything a fatal error has to clean up: the children are reaped, a healthy one after a
 * clean end of its request stream; with -j the worker processes are ended and reaped too. */
static citer_backend *slm_b, *llm_b;
static citer_reader *input_reader;

/* With -j: the workers as the main process sees them, and in a worker its pipe to the main
 * process (job_w set: a fatal error is sent there instead of printed). */
typedef struct {
    pid_t pid;          /* 0 once reaped */
    FILE *f;
    citer_reader *rd;
} job;
static job *jobs;
static int n_jobs;     /* workers started (and not yet reaped) by this process */
static int job_count;  /* in a worker: how many there are */
static citer_writer *job_w;
static FILE *job_f;

static void end_jobs(void)
{
    for (int k = 0; k < n_jobs; k++) {
        if (jobs[k].pid > 0) {
            kill(jobs[k].pid, SIGTERM);
            while (waitpid(jobs[k].pid, NULL, 0) < 0 && errno == EINTR) {}
            jobs[k].pid = 0;
        }
        citer_reader_free(jobs[k].rd);
        if (jobs[k].f) fclose(jobs[k].f);
        jobs[k].rd = NULL;
        jobs[k].f = NULL;
    }
}

static void close_backends(void)
{
    end_jobs();
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
    if (job_w) {
        /* A worker: the main process prints the message when it reaches this job's next prompt. */
        citer_writer *w = job_w;
        job_w = NULL;
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("job_error"));
        json_object_object_add(m, "error", json_object_new_string(msg));
        citer_write_meta(w, 0, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
        json_object_put(m);
        fflush(job_f);
        close_backends();
        _exit(1);
    }
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
    opt.jobs = 1;
    citer_sampling_args_defaults(&opt.sampling);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:t:o:j:qh", long_options, NULL)) != -1) {
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
        case 'j': opt.jobs = cli_count_arg("--jobs", optarg, 1); break;
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

/* A [rows, cols] TENSOR of 4-byte values (the per-token trace or scores of a prompt). */
static void write_table(run *r, int dtype, uint64_t seq, int pos, int rows, int cols, const void *data,
                        const char *meta)
{
    citer_record t;
    citer_record_init(&t, CITER_TENSOR, dtype, seq, pos);
    t.ndim = 2;
    t.dim[0] = (uint32_t)rows;
    t.dim[1] = (uint32_t)cols;
    t.data = (void *)data;
    t.nbytes = (size_t)rows * (size_t)cols * 4;
    t.meta = (char *)meta;
    write_or_die(r, &t);
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
    write_table(r, CITER_I32, seq, res->n_prompt, res->n, 3, res->trace,
                "{\"role\":\"route\",\"columns\":[\"source\",\"slm_token\",\"llm_token\"]}");
    write_table(r, CITER_F32, seq, res->n_prompt, res->n, 2, res->scores,
                "{\"role\":\"route_scores\",\"columns\":[\"score\",\"slm_p\"]}");
}

/* 1 when rec is a prompt (a type other than i32 [n] ends the run), 0 when it is not one. */
static int is_prompt_record(run *r, citer_record *rec)
{
    if (rec->kind != CITER_TOKENS) return 0;
    char role[32];
    record_role(rec, role, sizeof role);
    if (role[0] && strcmp(role, "prompt") != 0) return 0;
    if (rec->dtype != CITER_I32 || rec->ndim != 1) {
        uint64_t seq = rec->seq;
        citer_record_free(rec);
        fatal("%s: record %" PRIu64 " (seq %" PRIu64 "): tokens record is not i32 [n]", r->in_name, r->rec_index,
              seq);
    }
    return 1;
}

/* Decode one prompt and write its records; r->in_name and r->rec_index name it in messages. */
static void route_one(run *r, citer_record *rec)
{
    citer_route_result res;
    if (citer_route_prompt(r->route, rec->seq, rec->data, (int)rec->dim[0], &res) != 0) {
        char e[1024];
        snprintf(e, sizeof e, "%s", citer_error());
        uint64_t seq = rec->seq;
        citer_route_result_free(&res);
        citer_record_free(rec);
        if (strncmp(e, "slm: ", 5) == 0 || strncmp(e, "llm: ", 5) == 0) fatal("%s", e);
        fatal("%s: record %" PRIu64 " (seq %" PRIu64 "): %s", r->in_name, r->rec_index, seq, e);
    }
    write_prompt(r, rec->seq, &res);
    citer_route_stats_add(&r->stats, &res);
    citer_route_result_free(&res);
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
        } else if (is_prompt_record(r, &rec)) {
            route_one(r, &rec);
            if (!opt.out_path) check_output(r->out, r->out_name); /* a reader down the pipe can start */
            progress("%" PRIu64 " prompts, %" PRIu64 " tokens, %" PRIu64 " from the large model",
                     r->stats.prompts, r->stats.tokens, r->stats.llm_tokens);
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

static citer_router *router;
static citer_tokenizer *own_tok;

/* The models this process has not opened yet (both, or with -j in a worker the commands). */
static void open_models(const citer_route_opts *ro)
{
    int need_slm = ro->policy != CITER_POLICY_LLM, need_llm = ro->policy != CITER_POLICY_SLM;
    if (need_slm && !slm_b && (opt.slm || opt.slm_cmd)) slm_b = open_backend("slm", opt.slm, opt.slm_cmd);
    if (need_llm && !llm_b && (opt.llm || opt.llm_cmd)) llm_b = open_backend("llm", opt.llm, opt.llm_cmd);
}

/* The tokenizer for --stop: a model loaded here already has one. */
static void open_tokenizer(citer_route_opts *ro)
{
    if (!opt.n_stops) return;
    if (!opt.tokenizer && opt.slm && slm_b) ro->tok = citer_backend_tokenizer(slm_b);
    else if (!opt.tokenizer && opt.llm && llm_b && !opt.slm) ro->tok = citer_backend_tokenizer(llm_b);
    if (!ro->tok) {
        const char *tok_path = opt.tokenizer ? opt.tokenizer : opt.slm ? opt.slm : opt.llm;
        if (!(own_tok = citer_tokenizer_load(tok_path)))
            fatal("%s: --stop needs the tokenizer: %s", tok_path, citer_error());
        ro->tok = own_tok;
    }
}

static citer_route *new_route(const citer_route_opts *ro)
{
    if (router && slm_b && citer_router_dim(router) != citer_backend_get_info(slm_b)->dim)
        fatal("%s: the router's input size %d is not the small model's hidden size %d", opt.router,
              citer_router_dim(router), citer_backend_get_info(slm_b)->dim);
    citer_route *route = citer_route_new(slm_b, llm_b, ro);
    if (!route) fatal("%s", citer_error());
    return route;
}

/* Both models are closed (and checked) before the output is complete. */
static void close_models(void)
{
    citer_backend *b[2] = {slm_b, llm_b};
    const char *who[2] = {"slm", "llm"};
    slm_b = llm_b = NULL;
    for (int i = 0; i < 2; i++) {
        if (citer_backend_close(b[i]) != 0) {
            char msg[800];
            snprintf(msg, sizeof msg, "%s", citer_error());
            if (i == 0) citer_backend_close(b[1]);
            fatal("%s: %s", who[i], msg);
        }
    }
}

static FILE *open_input(const char *path, const char **name)
{
    *name = "stdin";
    if (strcmp(path, "-") == 0) return stdin;
    FILE *f = fopen(path, "rb");
    if (!f) fatal("%s: %s", path, strerror(errno));
    *name = path;
    return f;
}

/* ---- -j: prompts decoded in worker processes ----
 *
 * The input is read to its end first. Then the models loaded in this process are shared with
 * N forked workers (copy-on-write; the kernel thread pool is stopped before the fork and each
 * worker starts its own); model commands are started by every worker for itself. Worker k
 * decodes the prompts k, k + N, k + 2N, ... and sends their records to the main process over a
 * pipe as a citer stream: a "job_ready" META once it has its models, per prompt the records
 * that citer-route writes (generated, route, route_scores), at the end its statistics (a
 * "job_stats" u8 tensor holding its citer_route_stats) and END; on an error a "job_error" META
 * with the message instead. The main process writes the records in input order, so the output
 * is the one -j 1 writes but for the timing fields of the stats record, and it stops at the
 * first failed prompt in input order with the message -j 1 would print. */

typedef struct {
    citer_record rec;
    const char *in_name;
    uint64_t rec_index;
    int64_t prompt; /* index among the prompts, -1 for a META record */
} input_item;

static input_item *items;
static size_t n_items;
static int64_t n_prompts;

static void read_all_inputs(run *r, int argc, char **argv)
{
    int n_inputs = argc - optind;
    size_t cap = 0;
    for (int i = 0; i < (n_inputs ? n_inputs : 1); i++) {
        FILE *f = open_input(n_inputs ? argv[optind + i] : "-", &r->in_name);
        citer_reader *rd = input_reader = citer_reader_new(f, r->in_name);
        citer_record rec;
        int rc;
        r->rec_index = 0;
        while ((rc = citer_read(rd, &rec)) == 1) {
            r->rec_index++;
            int64_t prompt = -1;
            if (rec.kind != CITER_META) {
                if (!is_prompt_record(r, &rec)) {
                    citer_record_free(&rec);
                    continue;
                }
                prompt = n_prompts++;
            }
            if (n_items == cap) xgrow((void **)&items, &cap, n_items + 1, sizeof *items);
            items[n_items++] = (input_item){rec, r->in_name, r->rec_index, prompt};
        }
        if (rc < 0) fatal("%s: %s", r->in_name, citer_error());
        citer_reader_free(rd);
        input_reader = NULL;
        if (f != stdin) fclose(f);
    }
}

static void free_inputs(void)
{
    for (size_t i = 0; i < n_items; i++) citer_record_free(&items[i].rec);
    free(items);
    items = NULL;
    n_items = 0;
}

static void job_flush(void)
{
    check_output(job_f, "the pipe to the main process");
}

static void job_write(const citer_record *rec)
{
    if (citer_write(job_w, rec) != 0) {
        job_flush();
        fatal("the pipe to the main process: %s", citer_error());
    }
}

static void job_main(int k, int fd, citer_route_opts *ro) __attribute__((noreturn));

static void job_main(int k, int fd, citer_route_opts *ro)
{
    signal(SIGINT, SIG_DFL); /* the main process's handlers remove its output file */
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    cli_quiet = 1;
    if (!(job_f = fdopen(fd, "wb"))) _exit(1);
    job_w = citer_writer_new(job_f);
    open_models(ro);
    citer_route *route = new_route(ro);
    citer_record m;
    citer_record_init(&m, CITER_META, CITER_DT_NONE, 0, -1);
    m.meta = "{\"role\":\"job_ready\"}";
    job_write(&m);
    job_flush();

    run r = {0};
    r.route = route;
    r.w = job_w;
    r.out = job_f;
    r.out_name = "the pipe to the main process";
    for (size_t i = 0; i < n_items; i++) {
        if (items[i].prompt < 0 || items[i].prompt % job_count != k) continue;
        r.in_name = items[i].in_name;
        r.rec_index = items[i].rec_index;
        route_one(&r, &items[i].rec);
        job_flush();
    }
    close_models();

    citer_record s;
    citer_record_init(&s, CITER_TENSOR, CITER_U8, 0, -1);
    s.ndim = 1;
    s.dim[0] = sizeof r.stats;
    s.data = &r.stats;
    s.nbytes = sizeof r.stats;
    s.meta = "{\"role\":\"job_stats\"}";
    job_write(&s);
    if (citer_writer_finish(job_w) != 0) fatal("the pipe to the main process: %s", citer_error());
    job_flush();
    _exit(0);
}

/* Fork the workers; returns in the main process only. */
static void start_jobs(int n, citer_route_opts *ro)
{
    jobs = xcalloc((size_t)n, sizeof *jobs);
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < n; k++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) fatal("pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            fatal("fork: %s", strerror(errno));
        }
        if (pid == 0) {
            close(p[0]);
            for (int j = 0; j < k; j++) close(fileno(jobs[j].f)); /* no FILE flush in the child */
            n_jobs = 0; /* a worker has none of its own */
            jobs = NULL;
            job_count = n;
            job_main(k, p[1], ro);
        }
        close(p[1]);
        jobs[k].pid = pid;
        if (!(jobs[k].f = fdopen(p[0], "rb"))) fatal("fdopen: %s", strerror(errno));
        char name[32];
        snprintf(name, sizeof name, "job %d", k + 1);
        jobs[k].rd = citer_reader_new(jobs[k].f, name);
        n_jobs = k + 1;
    }
}

/* A worker whose stream broke: say how it ended. */
static void job_broken(int k, const char *what) __attribute__((noreturn));

static void job_broken(int k, const char *what)
{
    char msg[800];
    snprintf(msg, sizeof msg, "%s", what);
    int st = 0;
    pid_t pid = jobs[k].pid;
    /* Its pipe is closed or garbled: it has exited or is about to; give it a moment. */
    pid_t got = 0;
    for (int i = 0; i < 200 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    if (got == 0) {
        kill(pid, SIGKILL);
        got = waitpid(pid, &st, 0);
    }
    jobs[k].pid = 0;
    if (got == pid && WIFSIGNALED(st))
        fatal("job %d of %d (pid %ld) was killed by signal %d", k + 1, n_jobs, (long)pid, WTERMSIG(st));
    if (got == pid && WIFEXITED(st) && WEXITSTATUS(st) != 0)
        fatal("job %d of %d (pid %ld) exited with status %d: %s", k + 1, n_jobs, (long)pid, WEXITSTATUS(st), msg);
    fatal("job %d of %d (pid %ld): %s", k + 1, n_jobs, (long)pid, msg);
}

/* The next record of worker k; a job_error ends us with its message. 1, or 0 at its end. */
static int job_read(int k, citer_record *rec)
{
    int rc = citer_read(jobs[k].rd, rec);
    if (rc < 0) job_broken(k, citer_error());
    if (rc == 1 && rec->kind == CITER_META) {
        char role[32];
        record_role(rec, role, sizeof role);
        if (strcmp(role, "job_error") == 0) {
            char msg[1200] = "unknown error";
            json_object *m = json_tokener_parse(rec->meta), *v;
            if (m && json_object_object_get_ex(m, "error", &v) && json_object_is_type(v, json_type_string))
                snprintf(msg, sizeof msg, "%s", json_object_get_string(v));
            json_object_put(m);
            citer_record_free(rec);
            /* reap it first: its exit is part of the failure, not a second one */
            while (waitpid(jobs[k].pid, NULL, 0) < 0 && errno == EINTR) {}
            jobs[k].pid = 0;
            fatal("%s", msg);
        }
    }
    return rc;
}

static void expect_role(int k, citer_record *rec, int kind, const char *want)
{
    char role[32];
    if (job_read(k, rec) == 0) job_broken(k, "its stream ended early");
    record_role(rec, role, sizeof role);
    if (rec->kind != kind || strcmp(role, want) != 0) {
        citer_record_free(rec);
        char e[96];
        snprintf(e, sizeof e, "sent a record with role '%s' where '%s' belongs", role, want);
        job_broken(k, e);
    }
}

static void add_stats(citer_route_stats *s, const citer_route_stats *a)
{
    s->prompts += a->prompts;
    s->tokens += a->tokens;
    s->llm_calls += a->llm_calls;
    s->llm_tokens += a->llm_tokens;
    s->catchup += a->catchup;
    s->llm_ingested += a->llm_ingested;
    s->slm_ingested += a->slm_ingested;
    s->router_calls += a->router_calls;
    s->t_slm += a->t_slm;
    s->t_llm += a->t_llm;
    s->t_router += a->t_router;
}

/* The main process's side: records in input order, then the workers' statistics. */
static void merge_jobs(run *r)
{
    citer_record rec[3];
    for (int k = 0; k < n_jobs; k++) {
        expect_role(k, &rec[0], CITER_META, "job_ready");
        citer_record_free(&rec[0]);
    }
    uint64_t tokens = 0, llm_tokens = 0;
    for (size_t i = 0; i < n_items; i++) {
        input_item *it = &items[i];
        if (it->prompt < 0) {
            write_or_die(r, &it->rec);
            continue;
        }
        int k = (int)(it->prompt % n_jobs);
        /* a prompt's records are written together or not at all */
        expect_role(k, &rec[0], CITER_TOKENS, "generated");
        expect_role(k, &rec[1], CITER_TENSOR, "route");
        expect_role(k, &rec[2], CITER_TENSOR, "route_scores");
        if (rec[0].seq != it->rec.seq || rec[1].dtype != CITER_I32 || rec[1].ndim != 2 ||
            rec[1].dim[0] != rec[0].dim[0] || rec[1].dim[1] != 3) {
            for (int j = 0; j < 3; j++) citer_record_free(&rec[j]);
            job_broken(k, "sent records that are not the next prompt's");
        }
        for (int j = 0; j < 3; j++) write_or_die(r, &rec[j]);
        if (!opt.out_path) check_output(r->out, r->out_name);
        tokens += rec[0].dim[0];
        const int32_t *trace = rec[1].data;
        for (uint32_t t = 0; t < rec[1].dim[0]; t++) llm_tokens += trace[3 * t] == 1;
        for (int j = 0; j < 3; j++) citer_record_free(&rec[j]);
        progress("%" PRId64 " prompts, %" PRIu64 " tokens, %" PRIu64 " from the large model", it->prompt + 1, tokens,
                 llm_tokens);
    }
    for (int k = 0; k < n_jobs; k++) {
        expect_role(k, &rec[0], CITER_TENSOR, "job_stats");
        if (rec[0].dtype != CITER_U8 || rec[0].nbytes != sizeof(citer_route_stats)) {
            citer_record_free(&rec[0]);
            job_broken(k, "sent statistics of the wrong size");
        }
        add_stats(&r->stats, rec[0].data);
        citer_record_free(&rec[0]);
        if (job_read(k, &rec[0]) != 0) {
            citer_record_free(&rec[0]);
            job_broken(k, "sent records after its statistics");
        }
        int st;
        pid_t pid = jobs[k].pid;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        jobs[k].pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (WIFSIGNALED(st))
                fatal("job %d of %d (pid %ld) was killed by signal %d", k + 1, n_jobs, (long)pid, WTERMSIG(st));
            fatal("job %d of %d (pid %ld) exited with status %d", k + 1, n_jobs, (long)pid, WEXITSTATUS(st));
        }
    }
    end_jobs();
    free(jobs);
    jobs = NULL;
    n_jobs = 0;
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
    if (opt.jobs > MAX_JOBS) usage_error("--jobs: at most %d", MAX_JOBS);
    if (opt.jobs == 1 && opt.threads) citer_set_threads((int)opt.threads);

    /* Coprocesses get a pipe to write to that closes for them when we go: a dead one must not
     * end us silently through SIGPIPE, so writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);

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

    run r = {0};
    citer_out *o = NULL;
    double t0;
    if (opt.jobs == 1) {
        open_models(&ro);
        open_tokenizer(&ro);
        r.route = new_route(&ro);
        if (!(o = citer_out_open(opt.out_path))) fatal("%s: %s", opt.out_path, citer_error());
        r.out = o->f;
        r.out_name = opt.out_path ? opt.out_path : "stdout";
        r.w = citer_writer_new(o->f);
        t0 = now_seconds();
        int n_inputs = argc - optind;
        for (int i = 0; i < (n_inputs ? n_inputs : 1); i++) {
            FILE *f = open_input(n_inputs ? argv[optind + i] : "-", &r.in_name);
            process_input(&r, f);
            if (f != stdin) fclose(f);
        }
        close_models();
    } else {
        /* Models files are loaded once, here, and shared with the workers; commands are
         * started by each worker. */
        if (need_slm && opt.slm) slm_b = open_backend("slm", opt.slm, NULL);
        if (need_llm && opt.llm) llm_b = open_backend("llm", opt.llm, NULL);
        open_tokenizer(&ro);
        t0 = now_seconds();
        read_all_inputs(&r, argc, argv);
        int n = n_prompts < opt.jobs ? (int)n_prompts : (int)opt.jobs;
        if (n > 0) {
            long threads = opt.threads ? opt.threads : citer_get_threads();
            citer_set_threads(threads / n > 1 ? (int)(threads / n) : 1); /* also stops the pool's threads */
            start_jobs(n, &ro);
        }
        if (!(o = citer_out_open(opt.out_path))) fatal("%s: %s", opt.out_path, citer_error());
        r.out = o->f;
        r.out_name = opt.out_path ? opt.out_path : "stdout";
        r.w = citer_writer_new(o->f);
        merge_jobs(&r);
        free_inputs();
        close_models();
    }
    double seconds = now_seconds() - t0;
    progress_done();

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
    citer_route_free(r.route);
    if (own_tok) citer_tokenizer_free(own_tok);
    citer_router_free(router);
    free(opt.stops);
    return 0;
}
