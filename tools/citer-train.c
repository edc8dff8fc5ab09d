/* citer-train: train CITER's token router on labelled feature records, or evaluate one.
 * See citer-train(1); the model and its file are described in lib/router.h. */
#include "lm_train_cli.h"
#include "router.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: citer-train [options] [FILE...] -o ROUTER\n"
    "       citer-train --eval ROUTER [FILE...]\n"
    "       citer-train --scores ROUTER [FILE...]\n"
    "       citer-train lm --data FILE -o OUTDIR [options]   (language models; see citer-train lm --help)\n"
    "Train the token router (an MLP over the small model's hidden state) on the feature\n"
    "records of citer streams (FILEs or stdin), or evaluate a router on them.\n"
    "\n"
    "  -o FILE              write the router to FILE (safetensors, atomically)\n"
    "      --epochs N       at most N epochs (100)\n"
    "      --batch N        mini-batch size (80)\n"
    "      --lr X           Adam learning rate (0.001)\n"
    "      --weight-decay X L2 penalty added to the gradient (0)\n"
    "      --dropout P      dropout after each hidden ReLU (0.1)\n"
    "      --hidden-mult M  hidden layers M*D and D for input size D (2)\n"
    "      --val-frac F     fraction of example ids held out for validation (0.1)\n"
    "      --patience N     stop after N epochs without a lower validation loss (5)\n"
    "      --seed S         seed of initialisation, split, shuffling and dropout (0)\n"
    "      --class-weight auto|none|W0,W1   loss weights of labels 0 and 1 (none)\n"
    "      --lambda L       cost of one large-model token: adds L*(1-score) per record (0)\n"
    "      --init ROUTER    start from an existing router (its shape and normalisation)\n"
    "      --threads N      OpenBLAS threads (1; results are reproducible per N)\n"
    "      --eval ROUTER    print loss, accuracy, AUROC and large-model fractions\n"
    "      --scores ROUTER  print 'seq pos label score' for every feature record\n"
    "      --tau LIST       thresholds for --eval (0.1,0.3,0.5,0.7,0.9)\n"
    "  -q, --quiet          no progress and no summary\n"
    "  -h, --help           show this help\n"
    "      --version        show the version\n";

enum {
    OPT_EPOCHS = 256, OPT_BATCH, OPT_LR, OPT_WD, OPT_DROPOUT, OPT_HMULT, OPT_VALFRAC,
    OPT_PATIENCE, OPT_SEED, OPT_CW, OPT_LAMBDA, OPT_INIT, OPT_THREADS, OPT_EVAL, OPT_SCORES,
    OPT_TAU, OPT_VERSION
};

static const struct option long_opts[] = {
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"lr", required_argument, 0, OPT_LR},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"dropout", required_argument, 0, OPT_DROPOUT},
    {"hidden-mult", required_argument, 0, OPT_HMULT},
    {"val-frac", required_argument, 0, OPT_VALFRAC},
    {"patience", required_argument, 0, OPT_PATIENCE},
    {"seed", required_argument, 0, OPT_SEED},
    {"class-weight", required_argument, 0, OPT_CW},
    {"lambda", required_argument, 0, OPT_LAMBDA},
    {"init", required_argument, 0, OPT_INIT},
    {"threads", required_argument, 0, OPT_THREADS},
    {"eval", required_argument, 0, OPT_EVAL},
    {"scores", required_argument, 0, OPT_SCORES},
    {"tau", required_argument, 0, OPT_TAU},
    {"output", required_argument, 0, 'o'},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0},
};

static long int_arg(const char *opt, const char *v, long lo, long hi)
{
    long x;
    if (parse_long(v, &x) != 0 || x < lo || x > hi)
        usage_error("%s: '%s' is not a whole number from %ld to %ld", opt, v, lo, hi);
    return x;
}

static double num_arg(const char *opt, const char *v, double lo, double hi, int hi_open)
{
    double x;
    if (parse_double(v, &x) != 0 || !(x >= lo) || !(hi_open ? x < hi : x <= hi))
        usage_error("%s: '%s' is not a number in [%g, %g%s", opt, v, lo, hi, hi_open ? ")" : "]");
    return x;
}

static void show_epoch(void *arg, int epoch, double train_loss, const citer_metrics *val, int best)
{
    int max = *(const int *)arg;
    if (val)
        progress("epoch %d/%d  train loss %.4f  val loss %.4f  acc %.4f  auroc %.4f  best %d",
                 epoch, max, train_loss, val->loss, val->accuracy, val->auroc, best);
    else
        progress("epoch %d/%d  train loss %.4f", epoch, max, train_loss);
    progress_done();
}

static void read_inputs(citer_features *fs, const char **files, int nfiles, int need_label)
{
    for (int i = 0; i < nfiles; i++) {
        const char *name = files[i];
        FILE *f = strcmp(name, "-") ? fopen(name, "rb") : stdin;
        if (!f) die("%s: %s", name, strerror(errno));
        if (citer_features_read(fs, f, name, need_label) != 0) die("%s: %s", name, citer_error());
        if (f != stdin) fclose(f);
    }
}

/* "seq pos label score" for every record. */
static void print_scores(FILE *out, const citer_router *r, const citer_features *fs)
{
    float *score = xmalloc((fs->n ? fs->n : 1) * sizeof(float));
    citer_router_score_batch(r, fs->x, fs->n, score);
    for (size_t i = 0; i < fs->n; i++) {
        fprintf(out, "%" PRIu64 " %" PRId64 " ", fs->seq[i], fs->pos[i]);
        if (fs->label[i] == CITER_NO_LABEL) fputs("-", out);
        else fprintf(out, "%d", fs->label[i]);
        fprintf(out, " %.9g\n", score[i]);
    }
    free(score);
}

static void print_eval(FILE *out, const citer_router *r, const citer_features *fs, double lambda,
                       const double *tau, int n_tau)
{
    const double cw[2] = {1, 1};
    citer_metrics m;
    float *score = xmalloc(fs->n * sizeof(float));
    citer_router_evaluate(r, fs, NULL, fs->n, cw, lambda, &m, score);
    size_t n0 = m.n - m.n_pos;
    fprintf(out, "records %zu\n", m.n);
    fprintf(out, "label1_fraction %.6f\n", (double)m.n_pos / (double)m.n);
    fprintf(out, "loss %.6f\n", m.loss);
    fprintf(out, "bce %.6f\n", m.bce);
    fprintf(out, "accuracy %.6f\n", m.accuracy);
    if (isnan(m.auroc)) fprintf(out, "auroc nan\n");
    else fprintf(out, "auroc %.6f\n", m.auroc);
    fprintf(out, "tau llm_fraction label0_to_llm label1_to_llm accuracy\n");
    for (int t = 0; t < n_tau; t++) {
        size_t llm = 0, llm0 = 0, llm1 = 0;
        for (size_t i = 0; i < fs->n; i++)
            if (score[i] < tau[t]) {
                llm++;
                if (fs->label[i]) llm1++;
                else llm0++;
            }
        double acc = (double)(llm0 + (m.n_pos - llm1)) / (double)m.n;
        fprintf(out, "%g %.6f %.6f %.6f %.6f\n", tau[t], (double)llm / (double)m.n,
                n0 ? (double)llm0 / (double)n0 : NAN, m.n_pos ? (double)llm1 / (double)m.n_pos : NAN,
                acc);
    }
    free(score);
}

int main(int argc, char **argv)
{
    cli_init("citer-train");
    /* "citer-train lm ...": the language-model trainer (lib/lm_train_cli.c). */
    if (argc > 1 && strcmp(argv[1], "lm") == 0) return citer_lm_train_main(argc - 1, argv + 1);
    citer_train_opts o;
    citer_train_defaults(&o);
    const char *out_path = NULL, *init_path = NULL, *eval_path = NULL, *scores_path = NULL;
    double tau[16] = {0.1, 0.3, 0.5, 0.7, 0.9};
    int n_tau = 5, quiet = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_EPOCHS: o.epochs = (int)int_arg("--epochs", optarg, 1, 1000000); break;
        case OPT_BATCH: o.batch = (int)int_arg("--batch", optarg, 2, 1 << 20); break;
        case OPT_LR: o.lr = num_arg("--lr", optarg, 1e-12, 10, 0); break;
        case OPT_WD: o.weight_decay = num_arg("--weight-decay", optarg, 0, 10, 0); break;
        case OPT_DROPOUT: o.dropout = num_arg("--dropout", optarg, 0, 1, 1); break;
        case OPT_HMULT: o.hidden_mult = (int)int_arg("--hidden-mult", optarg, 1, 64); break;
        case OPT_VALFRAC: o.val_frac = num_arg("--val-frac", optarg, 0, 1, 1); break;
        case OPT_PATIENCE: o.patience = (int)int_arg("--patience", optarg, 1, 1000000); break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                usage_error("--seed: '%s' is not a whole number from 0 to 2^64-1", optarg);
            o.seed = s;
            break;
        }
        case OPT_CW:
            if (!strcmp(optarg, "none")) {
                o.class_weight = CITER_CW_NONE;
            } else if (!strcmp(optarg, "auto")) {
                o.class_weight = CITER_CW_AUTO;
            } else {
                char *comma = strchr(optarg, ',');
                double w0, w1;
                char first[64];
                if (!comma || (size_t)(comma - optarg) >= sizeof first)
                    usage_error("--class-weight: '%s' is not auto, none or W0,W1", optarg);
                memcpy(first, optarg, (size_t)(comma - optarg));
                first[comma - optarg] = 0;
                if (parse_double(first, &w0) || parse_double(comma + 1, &w1) || !(w0 >= 0) ||
                    !(w1 >= 0) || !(w0 <= 1e6) || !(w1 <= 1e6) || (w0 == 0 && w1 == 0))
                    usage_error("--class-weight: '%s' is not auto, none or W0,W1", optarg);
                o.class_weight = CITER_CW_FIXED;
                o.w0 = w0;
                o.w1 = w1;
            }
            break;
        case OPT_LAMBDA: o.lambda = num_arg("--lambda", optarg, 0, 1e6, 0); break;
        case OPT_INIT: init_path = optarg; break;
        case OPT_THREADS: o.threads = (int)int_arg("--threads", optarg, 1, 1024); break;
        case OPT_EVAL: eval_path = optarg; break;
        case OPT_SCORES: scores_path = optarg; break;
        case OPT_TAU: {
            n_tau = 0;
            char *s = xstrdup(optarg), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (n_tau == 16) usage_error("--tau: at most 16 thresholds");
                tau[n_tau++] = num_arg("--tau", t, 0, 1, 0);
            }
            free(s);
            if (!n_tau) usage_error("--tau: '%s' is not a list of thresholds", optarg);
            break;
        }
        case 'o': out_path = optarg; break;
        case 'q': quiet = cli_quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case OPT_VERSION: printf("citer-train %s\n", CITER_VERSION); return 0;
        default: cli_bad_option(argv, c);
        }
    }
    if (eval_path && scores_path) usage_error("--eval and --scores do not go together");
    int train = !eval_path && !scores_path;
    if (train && !out_path) usage_error("-o ROUTER is required for training");
    if (!train && init_path) usage_error("--init is for training, not --eval or --scores");

    const char **files = (const char **)argv + optind;
    int nfiles = argc - optind;
    static const char *stdin_only[] = {"-"};
    if (nfiles == 0) files = stdin_only, nfiles = 1;

    citer_features fs = {0};
    if (!train) {
        const char *rpath = eval_path ? eval_path : scores_path;
        citer_router *r = citer_router_load(rpath);
        if (!r) die("%s: %s", rpath, citer_error());
        read_inputs(&fs, files, nfiles, eval_path != NULL);
        if (fs.n == 0) die("%s: no feature records", nfiles == 1 ? files[0] : "input");
        if (fs.dim != r->dim)
            die("%s: the router takes %d features, the records have %d", rpath, r->dim, fs.dim);
        citer_out *out = citer_out_open(out_path);
        if (!out) die("%s: %s", out_path, citer_error());
        if (eval_path) print_eval(out->f, r, &fs, o.lambda, tau, n_tau);
        else print_scores(out->f, r, &fs);
        if (citer_out_commit(out) != 0) die("%s: %s", out_path ? out_path : "stdout", citer_error());
        citer_router_free(r);
        citer_features_free(&fs);
        return 0;
    }

    citer_router *init = NULL;
    if (init_path && !(init = citer_router_load(init_path)))
        die("%s: %s", init_path, citer_error());
    o.init = init;
    read_inputs(&fs, files, nfiles, 1);
    const char *in_name = nfiles == 1 ? files[0] : "input";
    if (fs.n == 0) die("%s: no feature records", in_name);
    if (init && init->dim != fs.dim)
        die("%s: the router takes %d features, the records have %d", init_path, init->dim, fs.dim);
    int max_epochs = o.epochs;
    o.on_epoch = cli_quiet ? NULL : show_epoch;
    o.arg = &max_epochs;
    citer_train_summary sum;
    citer_router *r = citer_router_train(&fs, &o, &sum);
    if (!r) die("%s: %s", in_name, citer_error());
    if (citer_router_save(r, out_path) != 0) die("%s: %s", out_path, citer_error());
    if (!quiet) {
        if (sum.has_val)
            fprintf(stderr,
                    "citer-train: %d epochs (best %d), val loss %.4f, val acc %.4f, AUROC %.4f, "
                    "%zu train / %zu val records\n",
                    sum.epochs, sum.best_epoch, sum.val.loss, sum.val.accuracy, sum.val.auroc,
                    sum.n_train, sum.n_val);
        else
            fprintf(stderr,
                    "citer-train: %d epochs, train loss %.4f (no validation), %zu records\n",
                    sum.epochs, sum.train_loss, sum.n_train);
    }
    citer_router_free(r);
    citer_router_free(init);
    citer_features_free(&fs);
    return 0;
}
