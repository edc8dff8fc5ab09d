/* citer-train lm: data -> (tokenizer) -> tokens -> model -> OUTDIR. */
#include "lm_train_cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpe_train.h"
#include "dataset.h"
#include "kernels.h"
#include "lm_train.h"
#include "template.h"
#include "tokenizer.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s lm --data FILE -o OUTDIR [options]\n"
            "Train a small Llama language model (or fine-tune one) and write OUTDIR/config.json,\n"
            "model.safetensors, tokenizer.json, training.tsv and checkpoint.safetensors.\n"
            "\n"
            "data:\n"
            "  --data FILE          JSONL dataset (math, mc, generic) or plain text\n"
            "  --format F           auto, math, mc, generic or text (default: text unless FILE ends in .jsonl)\n"
            "  --template T         built-in template name (%s) or template file\n"
            "  --loss-on W          target (default for JSONL) or all (default for text)\n"
            "tokenizer:\n"
            "  --vocab N            learn a byte-level BPE of N tokens in all on the data (default 512)\n"
            "  --tokenizer PATH     use this tokenizer.json (or a directory holding one) instead\n"
            "model:\n"
            "  --init DIR           fine-tune this Hugging Face llama directory (its tokenizer unless --tokenizer)\n"
            "  --dim N (128)  --layers N (4)  --heads N (4)  --kv-heads N (= heads)  --ffn N (8/3 dim)\n"
            "  --context N          max_position_embeddings (default: max(1024, seq-len))\n"
            "training:\n"
            "  --steps N (1000)  --batch N sequences (8)  --seq-len N (256)\n"
            "  --lr X (1e-3)  --min-lr X (lr/10)  --warmup N (steps/20)  --weight-decay X (0.1)\n"
            "  --clip X (1.0, 0 = none)  --seed N (1)  --threads N\n"
            "  --checkpoint-every N  checkpoint every N steps (default 100; always at the end)\n"
            "  --resume             continue from OUTDIR/checkpoint.safetensors (same data and options)\n"
            "  --stop-after N       stop after step N with a checkpoint (continue later with --resume)\n"
            "  --f16                store the weights as float16 (default float32)\n"
            "  -o, --output DIR     output directory (created if needed)\n"
            "  -q, --quiet          no progress or summary on stderr\n"
            "  -h, --help  --version\n",
            cli_progname(), citer_template_builtin_names());
}

enum {
    O_DATA = 256, O_FORMAT, O_TEMPLATE, O_LOSS_ON, O_VOCAB, O_TOKENIZER, O_INIT, O_DIM, O_LAYERS, O_HEADS, O_KV,
    O_FFN, O_CONTEXT, O_STEPS, O_BATCH, O_SEQ, O_LR, O_MIN_LR, O_WARMUP, O_WD, O_CLIP, O_SEED, O_THREADS, O_CKPT,
    O_RESUME, O_STOP, O_F16, O_VERSION
};

static const struct option longopts[] = {
    {"data", 1, 0, O_DATA}, {"format", 1, 0, O_FORMAT}, {"template", 1, 0, O_TEMPLATE},
    {"loss-on", 1, 0, O_LOSS_ON}, {"vocab", 1, 0, O_VOCAB}, {"tokenizer", 1, 0, O_TOKENIZER},
    {"init", 1, 0, O_INIT}, {"dim", 1, 0, O_DIM}, {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS},
    {"kv-heads", 1, 0, O_KV}, {"ffn", 1, 0, O_FFN}, {"context", 1, 0, O_CONTEXT}, {"steps", 1, 0, O_STEPS},
    {"batch", 1, 0, O_BATCH}, {"seq-len", 1, 0, O_SEQ}, {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MIN_LR},
    {"warmup", 1, 0, O_WARMUP}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP}, {"seed", 1, 0, O_SEED},
    {"threads", 1, 0, O_THREADS}, {"checkpoint-every", 1, 0, O_CKPT}, {"resume", 0, 0, O_RESUME}, {"stop-after", 1, 0, O_STOP},
    {"f16", 0, 0, O_F16}, {"output", 1, 0, 'o'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
    {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};

static long opt_long(const char *name, const char *s, long lo, long hi)
{
    long v;
    if (parse_long(s, &v) || v < lo || v > hi) usage_error("--%s: '%s' is not an integer in [%ld, %ld]", name, s, lo, hi);
    return v;
}

static double opt_double(const char *name, const char *s, double lo)
{
    double v;
    if (parse_double(s, &v) || !(v >= lo) || !isfinite(v)) usage_error("--%s: '%s' is not a number >= %g", name, s, lo);
    return v;
}

/* The training texts: prompt/target pairs (JSONL) or one text. */
typedef struct {
    char **prompt, **target;
    size_t n, cap;
    char *text;
    size_t text_len;
} texts;

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static void read_texts(const char *path, int format, const citer_template *tpl, int loss_all, texts *tx)
{
    if (format < 0) { /* plain text */
        tx->text = citer_read_file(path, &tx->text_len);
        if (!tx->text) die("%s: %s", path, citer_error());
        return;
    }
    citer_dataset_reader *r = citer_dataset_open(path, format, tpl);
    if (!r) die("%s: %s", path, citer_error());
    citer_example ex;
    int rc;
    size_t skipped = 0;
    while ((rc = citer_dataset_next(r, &ex)) == 1) {
        if (!ex.target && !loss_all) {
            skipped++;
            citer_example_free(&ex);
            continue;
        }
        size_t cap = tx->cap;
        xgrow((void **)&tx->prompt, &cap, tx->n + 1, sizeof *tx->prompt);
        cap = tx->cap;
        xgrow((void **)&tx->target, &cap, tx->n + 1, sizeof *tx->target);
        tx->cap = cap;
        tx->prompt[tx->n] = ex.prompt;
        tx->target[tx->n] = ex.target;
        tx->n++;
        ex.prompt = ex.target = NULL;
        citer_example_free(&ex);
    }
    if (rc < 0) die("%s: %s", path, citer_error());
    citer_dataset_close(r);
    if (skipped) warnx_("%s: %zu items without a target skipped (--loss-on target)", path, skipped);
    if (!tx->n) die("%s: no training items", path);
}

static void texts_free(texts *tx)
{
    for (size_t i = 0; i < tx->n; i++) free(tx->prompt[i]), free(tx->target[i]);
    free(tx->prompt), free(tx->target), free(tx->text);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = citer_read_file(from, &len);
    if (!data) die("%s: %s", from, citer_error());
    citer_out *o = citer_out_open(to);
    if (!o) die("%s: %s", to, citer_error());
    fwrite(data, 1, len, o->f);
    if (citer_out_commit(o)) die("%s: %s", to, citer_error());
    free(data);
}

/* Copy a tokenizer.json (PATH is the file or a directory holding it) and the
 * tokenizer_config.json beside it into outdir. */
static void copy_tokenizer(const char *path, const char *outdir)
{
    struct stat st;
    char src[8300], dst[8300], dir[4096];
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(src, sizeof src, "%s/tokenizer.json", path);
    else snprintf(src, sizeof src, "%s", path);
    snprintf(dst, sizeof dst, "%s/tokenizer.json", outdir);
    copy_file(src, dst);
    snprintf(src, sizeof src, "%s/tokenizer_config.json", dir);
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", outdir);
    if (stat(src, &st) == 0) copy_file(src, dst);
}

static void encode(const citer_tokenizer *t, const char *s, int32_t **ids, size_t *n, size_t *cap, const char *what)
{
    *n = 0;
    if (citer_encode(t, s, strlen(s), CITER_TOK_PARSE_SPECIAL, ids, n, cap)) die("%s: %s", what, citer_error());
}

int citer_lm_train_main(int argc, char **argv)
{
    const char *data = NULL, *fmt_name = NULL, *tpl_name = NULL, *loss_on = NULL, *tok_path = NULL, *init = NULL,
               *outdir = NULL;
    long vocab = 512, dim = 128, layers = 4, heads = 4, kv = 0, ffn = 0, context = 0, steps = 1000, batch = 8,
         seq = 256, warmup = -1, seed = 1, threads = 0, ckpt_every = 100, stop_after = 0;
    double lr = 1e-3, min_lr = -1, wd = 0.1, clip = 1.0;
    int resume = 0, f16 = 0, vocab_given = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_FORMAT: fmt_name = optarg; break;
        case O_TEMPLATE: tpl_name = optarg; break;
        case O_LOSS_ON: loss_on = optarg; break;
        case O_VOCAB: vocab = opt_long("vocab", optarg, 259, 1 << 20), vocab_given = 1; break;
        case O_TOKENIZER: tok_path = optarg; break;
        case O_INIT: init = optarg; break;
        case O_DIM: dim = opt_long("dim", optarg, 2, 1 << 16); break;
        case O_LAYERS: layers = opt_long("layers", optarg, 1, 1024); break;
        case O_HEADS: heads = opt_long("heads", optarg, 1, 1024); break;
        case O_KV: kv = opt_long("kv-heads", optarg, 1, 1024); break;
        case O_FFN: ffn = opt_long("ffn", optarg, 1, 1 << 18); break;
        case O_CONTEXT: context = opt_long("context", optarg, 1, 1 << 20); break;
        case O_STEPS: steps = opt_long("steps", optarg, 1, 1L << 40); break;
        case O_BATCH: batch = opt_long("batch", optarg, 1, 1 << 16); break;
        case O_SEQ: seq = opt_long("seq-len", optarg, 1, 1 << 16); break;
        case O_LR: lr = opt_double("lr", optarg, 0); break;
        case O_MIN_LR: min_lr = opt_double("min-lr", optarg, 0); break;
        case O_WARMUP: warmup = opt_long("warmup", optarg, 0, 1L << 40); break;
        case O_WD: wd = opt_double("weight-decay", optarg, 0); break;
        case O_CLIP: clip = opt_double("clip", optarg, 0); break;
        case O_SEED: seed = opt_long("seed", optarg, 0, 1L << 62); break;
        case O_THREADS: threads = opt_long("threads", optarg, 1, 64); break;
        case O_CKPT: ckpt_every = opt_long("checkpoint-every", optarg, 0, 1L << 40); break;
        case O_RESUME: resume = 1; break;
        case O_STOP: stop_after = opt_long("stop-after", optarg, 1, 1L << 40); break;
        case O_F16: f16 = 1; break;
        case 'o': outdir = optarg; break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case O_VERSION: printf("%s %s\n", cli_progname(), CITER_VERSION); return 0;
        default: cli_bad_option(argv, c);
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (!data) usage_error("--data FILE is required");
    if (!outdir) usage_error("-o OUTDIR is required");
    if (tok_path && vocab_given) usage_error("--tokenizer and --vocab exclude each other");
    if (init && vocab_given) usage_error("--init uses the model's tokenizer: --vocab does not apply");
    if (threads) citer_set_threads((int)threads);

    int format;
    if (!fmt_name) fmt_name = ends_with(data, ".jsonl") ? "auto" : "text";
    if (!strcmp(fmt_name, "text")) format = -1;
    else if ((format = citer_dataset_format_from_name(fmt_name)) < 0)
        usage_error("--format: unknown format '%s' (auto, math, mc, generic, text)", fmt_name);
    int loss_all = format < 0;
    if (loss_on) {
        if (!strcmp(loss_on, "all")) loss_all = 1;
        else if (!strcmp(loss_on, "target")) loss_all = 0;
        else usage_error("--loss-on: '%s' is not target or all", loss_on);
        if (format < 0 && !loss_all) usage_error("--loss-on target needs a JSONL dataset (text has no targets)");
    }
    citer_template *tpl = NULL;
    if (tpl_name) {
        if (format < 0) usage_error("--template applies to JSONL datasets only");
        tpl = citer_template_builtin_text(tpl_name) ? citer_template_builtin(tpl_name) : citer_template_load(tpl_name);
        if (!tpl) die("%s: %s", tpl_name, citer_error());
    }
    if (min_lr < 0) min_lr = lr / 10;
    if (warmup < 0) warmup = steps / 20;

    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) die("%s: cannot create directory: %s", outdir, strerror(errno));
    char tok_out[4096], ckpt_path[4096], log_path[4096];
    snprintf(tok_out, sizeof tok_out, "%s/tokenizer.json", outdir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.safetensors", outdir);
    snprintf(log_path, sizeof log_path, "%s/training.tsv", outdir);

    texts tx = {0};
    read_texts(data, format, tpl, loss_all, &tx);

    /* tokenizer: kept (resume), copied (--tokenizer, --init) or learned */
    if (!resume) {
        if (tok_path) copy_tokenizer(tok_path, outdir);
        else if (init) copy_tokenizer(init, outdir);
        else {
            bpe_trainer *b = bpe_trainer_new();
            if (tx.text) bpe_trainer_add(b, tx.text, tx.text_len);
            for (size_t i = 0; i < tx.n; i++) {
                bpe_trainer_add(b, tx.prompt[i], strlen(tx.prompt[i]));
                if (tx.target[i]) bpe_trainer_add(b, tx.target[i], strlen(tx.target[i]));
            }
            int v = bpe_trainer_learn(b, (int)vocab);
            if (bpe_trainer_save(b, tok_out, (int)(context ? context : seq > 1024 ? seq : 1024)))
                die("%s: %s", tok_out, citer_error());
            if (v < vocab && !cli_quiet)
                warnx_("the data has no more pairs to merge: vocabulary of %d tokens instead of %ld", v, vocab);
            bpe_trainer_free(b);
        }
    }
    citer_tokenizer *tok = citer_tokenizer_load(outdir);
    if (!tok) die("%s: %s", tok_out, citer_error());
    int32_t eos = citer_tokenizer_eos(tok);
    if (eos < 0) eos = citer_token_id(tok, "<|endoftext|>");
    if (eos < 0) die("%s: the tokenizer has no end-of-text token", tok_out);

    /* tokens */
    lmt_data d = {0};
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (tx.text) {
        encode(tok, tx.text, &ids, &n, &cap, data);
        lmt_data_append(&d, ids, n, 1);
        lmt_data_append(&d, &eos, 1, 1);
    }
    size_t longest = 0;
    for (size_t i = 0; i < tx.n; i++) {
        lmt_data_mark_start(&d);
        size_t start = d.n;
        encode(tok, tx.prompt[i], &ids, &n, &cap, data);
        lmt_data_append(&d, ids, n, loss_all);
        if (tx.target[i]) {
            encode(tok, tx.target[i], &ids, &n, &cap, data);
            lmt_data_append(&d, ids, n, 1);
        }
        lmt_data_append(&d, &eos, 1, 1);
        if (d.n - start > longest) longest = d.n - start;
    }
    free(ids);
    texts_free(&tx);

    /* model */
    lmt_model *m;
    lmt_state st;
    if (resume) {
        uint64_t dh;
        m = lmt_checkpoint_load(ckpt_path, &st, &dh);
        if (!m) die("%s: %s", ckpt_path, citer_error());
        if (dh != lmt_data_hash(&d)) die("%s: the training data differs from the checkpoint's", data);
    } else if (init) {
        m = lmt_model_load_hf(init);
        if (!m) die("%s: %s", init, citer_error());
        lmt_state_init(&st, (uint64_t)seed);
    } else {
        lmt_config cfg = {.dim = (int)dim, .n_layers = (int)layers, .n_heads = (int)heads, .n_kv_heads = (int)kv,
                          .ffn_dim = (int)(ffn ? ffn : (dim * 8 / 3 + 31) / 32 * 32),
                          .vocab_size = citer_tokenizer_vocab_size(tok),
                          .context_length = (int)(context ? context : seq > 1024 ? seq : 1024), .rms_eps = 1e-5f,
                          .rope_theta = 10000.0f, .tied = 1, .bos = eos, .eos = eos};
        m = lmt_model_new(&cfg);
        if (!m) usage_error("%s", citer_error());
        lmt_model_init(m, (uint64_t)seed);
        lmt_state_init(&st, (uint64_t)seed);
    }
    if (citer_tokenizer_vocab_size(tok) > m->cfg.vocab_size)
        die("%s: the tokenizer has %d tokens, more than the model's vocabulary of %d", tok_out,
            citer_tokenizer_vocab_size(tok), m->cfg.vocab_size);
    if (seq > m->cfg.context_length) usage_error("--seq-len %ld exceeds the model's context of %d", seq, m->cfg.context_length);
    if (!cli_quiet) {
        fprintf(stderr, "%s: %zu tokens (%zu items, longest %zu), %zu parameters (D=%d, %d layers, %d heads/%d kv, FF %d, V %d)\n",
                cli_progname(), d.n, d.n_starts, longest, m->n_params, m->cfg.dim, m->cfg.n_layers, m->cfg.n_heads,
                m->cfg.n_kv_heads, m->cfg.ffn_dim, m->cfg.vocab_size);
        if (resume) fprintf(stderr, "%s: resuming at step %ld\n", cli_progname(), st.step);
    }

    lmt_train_opts o = {.optim = {.lr = lr, .min_lr = min_lr, .warmup = warmup, .steps = steps, .beta1 = 0.9,
                                  .beta2 = 0.95, .eps = 1e-8, .weight_decay = wd},
                        .batch = (int)batch, .seq_len = (int)seq, .clip = clip, .seed = (uint64_t)seed,
                        .stop_at = stop_after, .checkpoint_every = ckpt_every, .checkpoint = ckpt_path, .log = log_path,
                        .progress = 1};
    double t0 = now_seconds();
    long step0 = st.step;
    if (lmt_train(m, &d, &o, &st)) die("%s", citer_error());
    double dt = now_seconds() - t0;
    if (lmt_model_save_hf(m, outdir, f16)) die("%s: %s", outdir, citer_error());
    if (!cli_quiet)
        fprintf(stderr, "%s: %ld steps in %.1fs (%.0f tokens/s), last loss %.4f; model in %s\n", cli_progname(),
                st.step - step0, dt, dt > 0 ? (double)(st.step - step0) * batch * seq / dt : 0, st.last_loss, outdir);
    lmt_model_free(m);
    lmt_data_free(&d);
    citer_tokenizer_free(tok);
    citer_template_free(tpl);
    return 0;
}
