/* citer-tokenize: text or JSONL datasets to token streams, and token streams back to text. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "stream.h"
#include "tokenizer.h"
#include "util.h"

static const char usage_text[] =
    "usage: citer-tokenize -t TOKENIZER [options] [FILE...]\n"
    "       citer-tokenize -t TOKENIZER -d [options] [FILE...]\n"
    "Encode texts (one per line, or NUL-separated with -z) or a JSONL dataset into a citer\n"
    "token stream; with -d decode a token stream back to text.\n"
    "  -t, --tokenizer PATH  tokenizer.json, GGUF file or model directory ($CITER_TOKENIZER)\n"
    "  -d, --decode          decode token records to text\n"
    "      --ids             plain text ids: one line of space-separated ids per text\n"
    "  -z, --null            texts are NUL-terminated instead of newline-terminated\n"
    "      --special         recognise special/added token text in the input (default)\n"
    "      --no-special      treat special token text as plain text\n"
    "      --bos, --no-bos   add / do not add BOS (default: as the tokenizer asks)\n"
    "      --eos, --no-eos   add / do not add EOS (default: as the tokenizer asks)\n"
    "      --skip-special    when decoding, drop special tokens\n"
    "      --dataset FORMAT  input is JSONL: mc, math, generic or auto\n"
    "      --template T      prompt template for --dataset: a file or a built-in name\n"
    "                        (mc, math, generic, mc-train, math-train; default: CITER's prompts)\n"
    "      --text            with --dataset, print the rendered texts instead of tokens\n"
    "  -o FILE               write output to FILE atomically (default stdout)\n"
    "  -q                    no progress on stderr\n"
    "  -h, --help            this help\n"
    "      --version         print the version\n";

enum { OPT_IDS = 256, OPT_SPECIAL, OPT_NO_SPECIAL, OPT_BOS, OPT_NO_BOS, OPT_EOS, OPT_NO_EOS,
       OPT_SKIP_SPECIAL, OPT_DATASET, OPT_TEMPLATE, OPT_TEXT, OPT_VERSION };

static struct {
    const char *tokenizer, *out_path, *template_path;
    int decode, ids, null_sep, special, bos, eos, skip_special, dataset, text_only;
} opt = {.special = 1, .bos = -1, .eos = -1, .dataset = -1};

static citer_tokenizer *tok;
static citer_out *out;
static citer_writer *writer;
static int32_t *ids;
static size_t n_ids, ids_cap;
static uint64_t n_texts;

static int encode_flags(void)
{
    int f = opt.special ? CITER_TOK_PARSE_SPECIAL : 0;
    int bos = opt.bos >= 0 ? opt.bos : citer_tokenizer_adds_bos(tok);
    int eos = opt.eos >= 0 ? opt.eos : citer_tokenizer_adds_eos(tok);
    if (bos) f |= CITER_TOK_ADD_BOS;
    if (eos) f |= CITER_TOK_ADD_EOS;
    return f;
}

static void write_failed(void) { die("%s: %s", opt.out_path ? opt.out_path : "stdout", citer_error()); }

static void put_ids_line(const int32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) fprintf(out->f, i ? " %d" : "%d", v[i]);
    fputc('\n', out->f);
}

/* Encode one text and emit it as a record (or an ids line). */
static void emit_text(const char *name, const char *text, size_t len, uint64_t seq, int64_t pos,
                      const char *meta, int flags)
{
    n_ids = 0;
    if (citer_encode(tok, text, len, flags, &ids, &n_ids, &ids_cap) != 0)
        die("%s: text %llu: %s", name, (unsigned long long)seq + 1, citer_error());
    if (opt.ids) {
        put_ids_line(ids, n_ids);
        return;
    }
    if (citer_write_tokens(writer, seq, pos, ids, n_ids, meta) != 0) write_failed();
}

static void encode_texts(const char *name, FILE *f)
{
    int sep = opt.null_sep ? '\0' : '\n';
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int flags = encode_flags();
    while ((got = getdelim(&line, &cap, sep, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == sep) len--;
        emit_text(name, line, len, n_texts, 0, NULL, flags);
        n_texts++;
        if (n_texts % 1024 == 0) progress("%llu texts", (unsigned long long)n_texts);
    }
    if (ferror(f)) die("%s: read error: %s", name, strerror(errno));
    free(line);
}

static char *json_meta(const char *role, const citer_example *ex, int with_answer)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "role", json_object_new_string(role));
    if (ex->id) json_object_object_add(o, "id", json_object_new_string(ex->id));
    json_object_object_add(o, "format", json_object_new_string(citer_dataset_format_name(ex->format)));
    if (with_answer && ex->answer) json_object_object_add(o, "answer", json_object_new_string(ex->answer));
    if (with_answer) citer_choices_json(o, ex->choice_texts, ex->choice_labels, ex->n_choices);
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* Each dataset item becomes records sharing seq = item index: the prompt tokens (pos 0), the
 * reference target tokens (pos = prompt length, as they follow the prompt), and a META record
 * with the reference answer. */
static void encode_dataset(const char *name, const citer_template *tpl)
{
    citer_dataset_reader *r = citer_dataset_open(name, opt.dataset, tpl);
    if (!r) die("%s: %s", name, citer_error());
    int flags = tok ? encode_flags() : 0;
    /* The target continues the prompt: never a BOS before it. */
    int tflags = flags & (CITER_TOK_PARSE_SPECIAL | CITER_TOK_ADD_EOS);
    citer_example ex;
    int rc;
    while ((rc = citer_dataset_next(r, &ex)) > 0) {
        if (opt.text_only) {
            char term = opt.null_sep ? '\0' : '\n';
            fprintf(out->f, "%s%c%s%c", ex.prompt, term, ex.target ? ex.target : "", term);
        } else if (opt.ids) {
            emit_text(name, ex.prompt, strlen(ex.prompt), n_texts, 0, NULL, flags);
            emit_text(name, ex.target ? ex.target : "", ex.target ? strlen(ex.target) : 0, n_texts, 0, NULL, tflags);
        } else {
            char *m = json_meta("prompt", &ex, 0);
            emit_text(name, ex.prompt, strlen(ex.prompt), n_texts, 0, m, flags);
            free(m);
            int64_t plen = (int64_t)n_ids;
            if (ex.target) {
                m = json_meta("target", &ex, 0);
                emit_text(name, ex.target, strlen(ex.target), n_texts, plen, m, tflags);
                free(m);
            }
            m = json_meta("answer", &ex, 1);
            if (citer_write_meta(writer, n_texts, m) != 0) write_failed();
            free(m);
        }
        citer_example_free(&ex);
        n_texts++;
        if (n_texts % 64 == 0) progress("%llu examples", (unsigned long long)n_texts);
    }
    if (rc < 0) die("%s: %s", name, citer_error());
    citer_dataset_close(r);
}

static void put_text(const int32_t *v, size_t n, const char *name)
{
    size_t len;
    char *text = citer_decode(tok, v, n, opt.skip_special ? CITER_DETOK_SKIP_SPECIAL : 0, &len);
    if (!text) die("%s: %s", name, citer_error());
    fwrite(text, 1, len, out->f);
    fputc(opt.null_sep ? '\0' : '\n', out->f);
    free(text);
}

static void decode_stream(const char *name, FILE *f)
{
    citer_reader *r = citer_reader_new(f, name);
    citer_record rec;
    int rc;
    while ((rc = citer_read(r, &rec)) > 0) {
        if (rec.kind == CITER_TOKENS) {
            if (rec.dtype != CITER_I32) die("%s: token record with dtype %s", name, citer_dtype_name(rec.dtype));
            put_text(rec.data, citer_record_elements(&rec), name);
            n_texts++;
        }
        citer_record_free(&rec);
    }
    if (rc < 0) die("%s: %s", name, citer_error());
    citer_reader_free(r);
}

static void decode_ids(const char *name, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    int32_t *v = NULL;
    size_t vcap = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = 0;
        char *p = line;
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
            if (!*p) break;
            char *end;
            errno = 0;
            long id = strtol(p, &end, 10);
            if (end == p || errno || id < 0 || id > INT32_MAX || (*end && !strchr(" \t\r\n", *end)))
                die("%s: line %lu: not a token id: '%.*s'", name, lineno, (int)strcspn(p, " \t\r\n"), p);
            xgrow((void **)&v, &vcap, n + 1, sizeof *v);
            v[n++] = (int32_t)id;
            p = end;
        }
        char where[64];
        snprintf(where, sizeof where, "line %lu", lineno);
        size_t len;
        char *text = citer_decode(tok, v, n, opt.skip_special ? CITER_DETOK_SKIP_SPECIAL : 0, &len);
        if (!text) die("%s: %s: %s", name, where, citer_error());
        fwrite(text, 1, len, out->f);
        fputc(opt.null_sep ? '\0' : '\n', out->f);
        free(text);
        n_texts++;
    }
    if (ferror(f)) die("%s: read error: %s", name, strerror(errno));
    free(line);
    free(v);
}

int main(int argc, char **argv)
{
    cli_init("citer-tokenize");
    static const struct option longopts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"decode", no_argument, 0, 'd'},
        {"ids", no_argument, 0, OPT_IDS}, {"null", no_argument, 0, 'z'},
        {"special", no_argument, 0, OPT_SPECIAL}, {"no-special", no_argument, 0, OPT_NO_SPECIAL},
        {"bos", no_argument, 0, OPT_BOS}, {"no-bos", no_argument, 0, OPT_NO_BOS},
        {"eos", no_argument, 0, OPT_EOS}, {"no-eos", no_argument, 0, OPT_NO_EOS},
        {"skip-special", no_argument, 0, OPT_SKIP_SPECIAL}, {"dataset", required_argument, 0, OPT_DATASET},
        {"template", required_argument, 0, OPT_TEMPLATE}, {"text", no_argument, 0, OPT_TEXT},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:dzo:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': opt.tokenizer = optarg; break;
        case 'd': opt.decode = 1; break;
        case 'z': opt.null_sep = 1; break;
        case 'o': opt.out_path = optarg; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case OPT_VERSION: printf("citer-tokenize %s\n", CITER_VERSION); return 0;
        case OPT_IDS: opt.ids = 1; break;
        case OPT_SPECIAL: opt.special = 1; break;
        case OPT_NO_SPECIAL: opt.special = 0; break;
        case OPT_BOS: opt.bos = 1; break;
        case OPT_NO_BOS: opt.bos = 0; break;
        case OPT_EOS: opt.eos = 1; break;
        case OPT_NO_EOS: opt.eos = 0; break;
        case OPT_SKIP_SPECIAL: opt.skip_special = 1; break;
        case OPT_DATASET:
            opt.dataset = citer_dataset_format_from_name(optarg);
            if (opt.dataset < 0) usage_error("--dataset: unknown format '%s' (mc, math, generic, auto)", optarg);
            break;
        case OPT_TEMPLATE: opt.template_path = optarg; break;
        case OPT_TEXT: opt.text_only = 1; break;
        default: cli_bad_option(argv, c);
        }
    }
    if (!opt.tokenizer) opt.tokenizer = getenv("CITER_TOKENIZER");
    if (opt.text_only && opt.dataset < 0) usage_error("--text needs --dataset");
    if (opt.decode && opt.dataset >= 0) usage_error("--dataset and --decode do not mix");
    if (opt.template_path && opt.dataset < 0) usage_error("--template needs --dataset");

    citer_template *tpl = NULL;
    if (opt.dataset >= 0) {
        /* --template names a built-in template or a file. */
        if (opt.template_path) {
            tpl = citer_template_builtin(opt.template_path);
            if (!tpl) tpl = citer_template_load(opt.template_path);
            if (!tpl) die("%s: %s", opt.template_path, citer_error());
        }
    }
    if (!opt.text_only) {
        if (!opt.tokenizer) usage_error("no tokenizer: give -t PATH or set CITER_TOKENIZER");
        tok = citer_tokenizer_load(opt.tokenizer);
        if (!tok) die("%s: %s", opt.tokenizer, citer_error());
    }

    out = citer_out_open(opt.out_path);
    if (!out) die("%s: %s", opt.out_path, citer_error());
    int plain_out = opt.decode || opt.ids || opt.text_only;
    if (!plain_out) writer = citer_writer_new(out->f);

    int nfiles = argc - optind;
    for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
        const char *name = nfiles ? argv[optind + i] : "-";
        if (opt.dataset >= 0) {
            encode_dataset(name, tpl);
            continue;
        }
        FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
        if (!f) die("%s: %s", name, strerror(errno));
        if (opt.decode && opt.ids) decode_ids(name, f);
        else if (opt.decode) decode_stream(name, f);
        else encode_texts(name, f);
        if (f != stdin) fclose(f);
    }
    if (writer) {
        if (citer_writer_finish(writer) != 0) write_failed();
        citer_writer_free(writer);
    }
    progress_done();
    if (citer_out_commit(out) != 0) write_failed();
    free(ids);
    citer_tokenizer_free(tok);
    citer_template_free(tpl);
    return 0;
}
