/* citer-score: grade generated (routed or plain) output streams against their reference answers
 * and summarise each run in one row: accuracy, LLM-token ratio, calls, speed, cost per token.
 * See citer-score(1). */
#include "answer.h"
#include "dataset.h"
#include "model.h"
#include "stream.h"
#include "template.h"
#include "tokenizer.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

static const char usage_text[] =
    "usage: citer-score -t TOKENIZER [options] FILE...\n"
    "Grade each generated output stream against its answer records; print one row per FILE.\n"
    "\n"
    "  -t, --tokenizer PATH  tokenizer to decode generated tokens (or CITER_TOKENIZER)\n"
    "  -l, --label NAME      label of the next FILE (default: the file name)\n"
    "      --slm-model PATH  small model: weight bytes and FLOPs per generated token\n"
    "      --llm-model PATH  large model (with --slm-model)\n"
    "      --csv             comma-separated values\n"
    "      --json            one JSON object per line\n"
    "      --plot FILE.svg   plot accuracy against LLM-token ratio (FILE.png: with gnuplot)\n"
    "      --baseline LABEL  speed-up of each row: LABEL's wall time over the row's\n"
    "  -o FILE               write to FILE (atomically) instead of stdout\n"
    "  -q, --quiet           no progress\n"
    "  -h, --help            show this help\n"
    "      --version         show the version\n";

enum { OPT_VERSION = 256, OPT_SLM, OPT_LLM, OPT_CSV, OPT_JSON, OPT_PLOT, OPT_BASELINE };

typedef struct {
    uint64_t seq;
    citer_answer_key key;
} answer_rec;

typedef struct {
    uint64_t seq;
    char *text;
    long long llm_tokens, llm_calls, catchup; /* -1 when the record does not say */
    size_t n_tokens;
} generated_rec;

/* One row of the report. Unknown values are NAN (or -1 for counts). */
typedef struct {
    const char *label;
    long long examples, graded, correct;
    double accuracy, llm_ratio, tokens_per_second, seconds, speedup;
    long long llm_calls, catchup;
    double bytes_per_token, flops_per_token;
} score_row;

static const citer_tokenizer *tok;

static int cmp_answer(const void *a, const void *b)
{
    uint64_t x = ((const answer_rec *)a)->seq, y = ((const answer_rec *)b)->seq;
    return x < y ? -1 : x > y;
}

static long long meta_int(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) return -1;
    return json_object_get_int64(v);
}

static double meta_double(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return NAN;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return NAN;
    return json_object_get_double(v);
}

static const char *meta_string(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

static void score_file(const char *name, score_row *row)
{
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
    if (!f) die("%s: %s", name, strerror(errno));
    /* File-scope, so memory still held when an error ends the run is not reported as leaked. */
    static citer_reader *rd;
    static citer_record rec;
    static json_object *m;
    rd = citer_reader_new(f, name);
    static answer_rec *ans;
    static generated_rec *gen;
    static size_t cap_ans, cap_gen;
    size_t n_ans = 0, n_gen = 0;
    double st_ratio = NAN, st_tps = NAN, st_seconds = NAN;
    long long st_calls = -1, st_catchup = -1;
    int rc;
    while ((rc = citer_read(rd, &rec)) > 0) {
        m = NULL;
        if (rec.meta) {
            m = json_tokener_parse(rec.meta);
            if (!m) die("%s: record %" PRIu64 ": metadata is not JSON", name, citer_reader_records(rd));
        }
        const char *role = m ? meta_string(m, "role") : NULL;
        if (rec.kind == CITER_META && role && strcmp(role, "answer") == 0) {
            xgrow((void **)&ans, &cap_ans, n_ans + 1, sizeof *ans);
            answer_rec *ar = &ans[n_ans];
            ar->seq = rec.seq;
            if (citer_answer_key_read(m, &ar->key) != 0) die("%s: seq %" PRIu64 ": %s", name, rec.seq, citer_error());
            n_ans++;
        } else if (rec.kind == CITER_META && role && strcmp(role, "stats") == 0) {
            st_ratio = meta_double(m, "llm_token_ratio");
            st_tps = meta_double(m, "tokens_per_second");
            st_seconds = meta_double(m, "seconds");
            st_calls = meta_int(m, "llm_calls");
            st_catchup = meta_int(m, "catchup_tokens");
        } else if (rec.kind == CITER_TOKENS && role && strcmp(role, "generated") == 0) {
            if (rec.dtype != CITER_I32 || rec.ndim != 1)
                die("%s: seq %" PRIu64 ": generated tokens are not an i32 vector", name, rec.seq);
            size_t n = rec.dim[0], len;
            char *text = citer_decode(tok, rec.data, n, CITER_DETOK_SKIP_SPECIAL, &len);
            if (!text) die("%s: seq %" PRIu64 ": %s", name, rec.seq, citer_error());
            xgrow((void **)&gen, &cap_gen, n_gen + 1, sizeof *gen);
            gen[n_gen++] = (generated_rec){rec.seq, text, meta_int(m, "llm_tokens"),
                                           meta_int(m, "llm_calls"), meta_int(m, "catchup_tokens"), n};
        }
        json_object_put(m);
        citer_record_free(&rec);
    }
    if (rc < 0) die("%s: %s", name, citer_error());
    citer_reader_free(rd);
    if (f != stdin) fclose(f);

    if (n_ans) qsort(ans, n_ans, sizeof *ans, cmp_answer);
    for (size_t i = 1; i < n_ans; i++)
        if (ans[i].seq == ans[i - 1].seq) die("%s: seq %" PRIu64 ": two answer records", name, ans[i].seq);

    /* Sums from the generated records when every one of them carries the counts. */
    long long tokens = 0, llm_tokens = 0, calls = 0, catchup = 0;
    int have_counts = n_gen > 0;
    row->examples = (long long)n_gen;
    row->graded = row->correct = 0;
    for (size_t i = 0; i < n_gen; i++) {
        generated_rec *g = &gen[i];
        tokens += (long long)g->n_tokens;
        if (g->llm_tokens < 0 || g->llm_calls < 0 || g->catchup < 0) have_counts = 0;
        llm_tokens += g->llm_tokens;
        calls += g->llm_calls;
        catchup += g->catchup;
        answer_rec key = {.seq = g->seq};
        answer_rec *a = n_ans ? bsearch(&key, ans, n_ans, sizeof *ans, cmp_answer) : NULL;
        if (a) {
            const citer_answer_key *k = &a->key;
            int ok = citer_answer_check(k->format, g->text, k->answer, (const char *const *)k->choice_texts,
                                        (const char *const *)k->choice_labels, k->n_choices);
            if (ok < 0) die("%s: seq %" PRIu64 ": %s", name, g->seq, citer_error());
            row->graded++;
            row->correct += ok;
        }
        free(g->text);
    }
    row->accuracy = row->graded ? (double)row->correct / (double)row->graded : NAN;
    if (have_counts) {
        row->llm_ratio = tokens ? (double)llm_tokens / (double)tokens : NAN;
        row->llm_calls = calls;
        row->catchup = catchup;
    } else {
        row->llm_ratio = st_ratio;
        row->llm_calls = st_calls;
        row->catchup = st_catchup;
    }
    row->tokens_per_second = st_tps;
    row->seconds = st_seconds;
    for (size_t i = 0; i < n_ans; i++) citer_answer_key_free(&ans[i].key);
}

/* Multiply-adds per decoded token: every matrix once (attention projections, MLP, LM head;
 * the embedding lookup is no matmul). Attention over the context is left out. */
static double model_params(const citer_model *m)
{
    const citer_config *c = &m->cfg;
    double d = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double layer = d * q + 2 * d * kv + q * d + 3 * d * c->ffn_dim;
    return c->n_layers * layer + (double)c->vocab_size * d;
}

static void fmt_num(char *buf, size_t n, double v, const char *fmt)
{
    if (isnan(v)) snprintf(buf, n, "-");
    else snprintf(buf, n, fmt, v);
}

static void fmt_count(char *buf, size_t n, long long v)
{
    if (v < 0) snprintf(buf, n, "-");
    else snprintf(buf, n, "%lld", v);
}

#define NCOL 12
static const char *col_names[NCOL] = {"label", "examples", "graded", "accuracy", "llm_ratio",
                                      "llm_calls", "catchup_tokens", "tokens_per_second",
                                      "seconds", "speedup", "bytes_per_token", "flops_per_token"};

static void row_cells(const score_row *r, char cells[NCOL][64])
{
    snprintf(cells[0], 64, "%s", r->label);
    fmt_count(cells[1], 64, r->examples);
    fmt_count(cells[2], 64, r->graded);
    fmt_num(cells[3], 64, r->accuracy, "%.4f");
    fmt_num(cells[4], 64, r->llm_ratio, "%.4f");
    fmt_count(cells[5], 64, r->llm_calls);
    fmt_count(cells[6], 64, r->catchup);
    fmt_num(cells[7], 64, r->tokens_per_second, "%.1f");
    fmt_num(cells[8], 64, r->seconds, "%.3f");
    fmt_num(cells[9], 64, r->speedup, "%.2f");
    fmt_num(cells[10], 64, r->bytes_per_token, "%.0f");
    fmt_num(cells[11], 64, r->flops_per_token, "%.0f");
}

static void put_json_string(FILE *out, const char *s)
{
    json_object *o = json_object_new_string(s);
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), out);
    json_object_put(o);
}

static void put_csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    putc('"', out);
    for (; *s; s++) {
        if (*s == '"') putc('"', out);
        putc(*s, out);
    }
    putc('"', out);
}

static void print_rows(FILE *out, const score_row *rows, int n, int mode)
{
    char cells[NCOL][64];
    if (mode == OPT_JSON) {
        for (int i = 0; i < n; i++) {
            row_cells(&rows[i], cells);
            fputs("{\"label\":", out);
            put_json_string(out, rows[i].label);
            for (int c = 1; c < NCOL; c++)
                fprintf(out, ",\"%s\":%s", col_names[c], strcmp(cells[c], "-") ? cells[c] : "null");
            fputs("}\n", out);
        }
        return;
    }
    if (mode == OPT_CSV) {
        for (int c = 0; c < NCOL; c++) fprintf(out, "%s%s", c ? "," : "", col_names[c]);
        putc('\n', out);
        for (int i = 0; i < n; i++) {
            row_cells(&rows[i], cells);
            put_csv_field(out, rows[i].label);
            for (int c = 1; c < NCOL; c++) fprintf(out, ",%s", strcmp(cells[c], "-") ? cells[c] : "");
            putc('\n', out);
        }
        return;
    }
    /* Text: label left-aligned, numbers right-aligned, two spaces between columns. */
    int width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = (int)strlen(col_names[c]);
    for (int i = 0; i < n; i++) {
        row_cells(&rows[i], cells);
        int lw = (int)strlen(rows[i].label);
        if (lw > width[0]) width[0] = lw;
        for (int c = 1; c < NCOL; c++)
            if ((int)strlen(cells[c]) > width[c]) width[c] = (int)strlen(cells[c]);
    }
    for (int c = 0; c < NCOL; c++)
        fprintf(out, c == 0 ? "%-*s" : c == NCOL - 1 ? "  %*s\n" : "  %*s", width[c], col_names[c]);
    for (int i = 0; i < n; i++) {
        row_cells(&rows[i], cells);
        fprintf(out, "%-*s", width[0], rows[i].label);
        for (int c = 1; c < NCOL; c++) fprintf(out, "  %*s", width[c], cells[c]);
        putc('\n', out);
    }
}

/* Rows without both values are left out of a plot, each with a warning; 0 when none is left. */
static int plot_points(const score_row *rows, int n)
{
    int points = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(rows[i].accuracy) || isnan(rows[i].llm_ratio))
            warnx_("--plot: %s: no %s; left out of the plot", rows[i].label,
                   isnan(rows[i].accuracy) ? "accuracy (nothing graded)" : "LLM-token ratio");
        else
            points++;
    }
    if (!points) warnx_("--plot: no row has both accuracy and LLM-token ratio; no plot written");
    return points;
}

static void plot_png(const char *png, const score_row *rows, int n)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        warnx_("--plot: gnuplot is not installed; no plot written");
        return;
    }
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        warnx_("--plot: cannot run gnuplot: %s", strerror(errno));
        return;
    }
    fputs("set terminal pngcairo size 800,600\nset output '", g);
    for (const char *s = png; *s; s++) {
        if (*s == '\'') putc('\'', g);
        putc(*s, g);
    }
    fputs("'\nset xlabel 'LLM-token ratio'\nset ylabel 'accuracy'\nset grid\nset key off\n"
          "plot '-' using 1:2 with linespoints pt 7, '-' using 1:2:3 with labels offset 0,1\n", g);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if (isnan(rows[i].accuracy) || isnan(rows[i].llm_ratio)) continue;
            fprintf(g, "%.6f %.6f", rows[i].llm_ratio, rows[i].accuracy);
            if (pass) {
                fputs(" \"", g);
                for (const char *s = rows[i].label; *s; s++)
                    if (*s != '"' && *s != '\n') putc(*s, g);
                putc('"', g);
            }
            putc('\n', g);
        }
        fputs("e\n", g);
    }
    int st = pclose(g);
    if (st != 0) warnx_("--plot: gnuplot failed (status %d); %s may be missing", st, png);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    /* The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF. */
    unsigned char lo = s[0] == 0xE0 ? 0xA0 : s[0] == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = s[0] == 0xED ? 0x9F : s[0] == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* The first n bytes of s as XML text: markup characters escaped, control characters and bytes
 * that are not UTF-8 (which XML does not allow) written as '?'. */
static void put_xml(FILE *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        switch (u[i]) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if (u[i] < 0x20) {
                putc('?', out);
            } else if (u[i] < 0x80) {
                putc(u[i], out);
            } else {
                size_t len = utf8_len(u + i, n - i);
                if (!len) putc('?', out);
                else fwrite(u + i, 1, len, out), i += len - 1;
            }
        }
    }
}

/* A label's series is the text before its last space-separated token holding '=' ("CITER round
 * 2 tau=0.3" -> "CITER round 2", parameter "tau=0.3"); a label without one is its own series.
 * Returns the series' length; *param is the parameter, NULL when there is none. */
static size_t split_label(const char *label, const char **param)
{
    size_t n = strlen(label), cut = n, i = 0;
    while (i < n) {
        while (i < n && label[i] == ' ') i++;
        size_t start = i;
        while (i < n && label[i] != ' ') i++;
        if (i > start && memchr(label + start, '=', i - start)) cut = start;
    }
    size_t len = cut;
    while (len > 0 && label[len - 1] == ' ') len--;
    if (cut == n || len == 0) {
        *param = NULL;
        return n;
    }
    *param = label + cut;
    return len;
}

/* SVG geometry, in pixels with y downwards: the plot area spans x SVG_X0..SVG_X0+SVG_W for
 * LLM-token ratio 0..1 and y SVG_Y0+SVG_H..SVG_Y0 for accuracy lo..hi, where lo and hi are the
 * lowest and highest accuracy widened by at least 0.05 and rounded out to tenths, within 0..1.
 * A point's centre: cx = 70 + 500 ratio, cy = 410 - 380 (accuracy - lo) / (hi - lo). */
enum { SVG_X0 = 70, SVG_Y0 = 30, SVG_W = 500, SVG_H = 380, SVG_LEGEND_X = SVG_X0 + SVG_W + 30 };

static const char *const series_colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                             "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLOURS (int)(sizeof series_colours / sizeof *series_colours)

static double svg_x(double ratio) { return SVG_X0 + SVG_W * fmin(fmax(ratio, 0), 1); }

static void svg_line(FILE *out, double x1, double y1, double x2, double y2, const char *stroke)
{
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x1, y1, x2, y2, stroke);
}

/* The plot as a standalone SVG 1.1 document: one circle per point (its full label as a tooltip,
 * its parameter beside it), each series in its own colour joined by a line in order of ratio,
 * a legend of the series. */
static void plot_svg(FILE *out, const score_row *rows, int n)
{
    int *series = xcalloc((size_t)n, sizeof *series); /* series index of each row, -1: left out */
    int *first = xcalloc((size_t)n, sizeof *first);   /* row that names each series */
    int *order = xcalloc((size_t)n, sizeof *order);
    int n_series = 0;
    size_t longest = 0;
    double acc_min = 1, acc_max = 0;
    for (int i = 0; i < n; i++) {
        series[i] = -1;
        if (isnan(rows[i].accuracy) || isnan(rows[i].llm_ratio)) continue;
        acc_min = fmin(acc_min, rows[i].accuracy);
        acc_max = fmax(acc_max, rows[i].accuracy);
        const char *param;
        size_t len = split_label(rows[i].label, &param);
        for (int s = 0; s < n_series && series[i] < 0; s++) {
            const char *named = rows[first[s]].label, *other;
            if (split_label(named, &other) == len && memcmp(named, rows[i].label, len) == 0)
                series[i] = s;
        }
        if (series[i] < 0) {
            first[n_series] = i;
            series[i] = n_series++;
            if (len > longest) longest = len;
        }
    }
    /* The accuracy axis in tenths; the small epsilon keeps 0.75 - 0.05 from rounding to 0.6. */
    int lo = (int)floor(10 * acc_min - 0.5 + 1e-9), hi = (int)ceil(10 * acc_max + 0.5 - 1e-9);
    if (lo < 0) lo = 0;
    if (hi > 10) hi = 10;
    int width = SVG_LEGEND_X + 26 + 7 * (int)longest + 10, height = SVG_Y0 + 20 * n_series + 20;
    if (width < 760) width = 760;
    if (height < 470) height = 470;
#define SVG_Y(acc) (SVG_Y0 + SVG_H - SVG_H * ((acc) - lo / 10.0) / ((hi - lo) / 10.0))

    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<title>accuracy against LLM-token ratio</title>\n"
                 "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            width, height, width, height, width, height);
    /* Grid, ticks and their values, then the frame and the axis names. */
    for (int t = 0; t <= 10; t++) {
        double x = svg_x(t / 10.0);
        svg_line(out, x, SVG_Y0, x, SVG_Y0 + SVG_H, "#e0e0e0");
        svg_line(out, x, SVG_Y0 + SVG_H, x, SVG_Y0 + SVG_H + 5, "black");
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n", x, SVG_Y0 + SVG_H + 18,
                t / 10.0);
    }
    for (int t = lo; t <= hi; t++) {
        double y = SVG_Y(t / 10.0);
        svg_line(out, SVG_X0, y, SVG_X0 + SVG_W, y, "#e0e0e0");
        svg_line(out, SVG_X0 - 5, y, SVG_X0, y, "black");
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", SVG_X0 - 8, y + 4, t / 10.0);
    }
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n"
                 "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">LLM-token ratio</text>\n"
                 "<text x=\"20\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 20 %d)\">accuracy</text>\n",
            SVG_X0, SVG_Y0, SVG_W, SVG_H, SVG_X0 + SVG_W / 2, SVG_Y0 + SVG_H + 40, SVG_Y0 + SVG_H / 2,
            SVG_Y0 + SVG_H / 2);

    for (int s = 0; s < n_series; s++) {
        const char *colour = series_colours[s % N_COLOURS];
        /* The series' rows by ratio (insertion sort: few points; equal ratios keep row order). */
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (series[i] != s) continue;
            int j = m++;
            for (; j > 0 && rows[order[j - 1]].llm_ratio > rows[i].llm_ratio; j--) order[j] = order[j - 1];
            order[j] = i;
        }
        if (m > 1) {
            fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour);
            for (int j = 0; j < m; j++) {
                const score_row *r = &rows[order[j]];
                fprintf(out, "%s%.1f,%.1f", j ? " " : "", svg_x(r->llm_ratio), SVG_Y(r->accuracy));
            }
            fputs("\"/>\n", out);
        }
        for (int j = 0; j < m; j++) {
            const score_row *r = &rows[order[j]];
            double x = svg_x(r->llm_ratio), y = SVG_Y(r->accuracy);
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", x, y, colour);
            put_xml(out, r->label, strlen(r->label));
            fputs("</title></circle>\n", out);
            /* The point's parameter (its series is in the legend) beside it, to the left near
             * the right edge so that it stays inside the plot area. */
            const char *param;
            split_label(r->label, &param);
            const char *text = param ? param : r->label;
            int left = r->llm_ratio > 0.75;
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"11\" fill=\"%s\">",
                    left ? x - 6 : x + 6, y - 6, left ? "end" : "start", colour);
            put_xml(out, text, strlen(text));
            fputs("</text>\n", out);
        }
    }
    for (int s = 0; s < n_series; s++) {
        const char *label = rows[first[s]].label, *param;
        size_t len = split_label(label, &param);
        int y = SVG_Y0 + 10 + 20 * s;
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n"
                     "<text x=\"%d\" y=\"%d\">",
                SVG_LEGEND_X, y, SVG_LEGEND_X + 20, y, series_colours[s % N_COLOURS], SVG_LEGEND_X + 26, y + 4);
        put_xml(out, label, len);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
#undef SVG_Y
    free(series);
    free(first);
    free(order);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int main(int argc, char **argv)
{
    cli_init("citer-score");
    static const struct option longopts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"label", required_argument, 0, 'l'},
        {"slm-model", required_argument, 0, OPT_SLM}, {"llm-model", required_argument, 0, OPT_LLM},
        {"csv", no_argument, 0, OPT_CSV}, {"json", no_argument, 0, OPT_JSON},
        {"plot", required_argument, 0, OPT_PLOT}, {"baseline", required_argument, 0, OPT_BASELINE},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};
    const char *tok_path = NULL, *slm_path = NULL, *llm_path = NULL, *out_path = NULL, *plot_path = NULL;
    const char *baseline = NULL;
    int mode = 0, n_files = 0;
    /* Labels attach to the next FILE: keep files and labels in argument order. */
    static const char **files, **labels; /* file-scope: reachable at every exit */
    files = xcalloc((size_t)argc, sizeof *files);
    labels = xcalloc((size_t)argc, sizeof *labels);
    const char *pending_label = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:t:l:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 1:
            labels[n_files] = pending_label;
            files[n_files++] = optarg;
            pending_label = NULL;
            break;
        case 't': tok_path = optarg; break;
        case 'l':
            if (pending_label) usage_error("--label %s: two labels for one FILE", optarg);
            pending_label = optarg;
            break;
        case 'o': out_path = optarg; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case OPT_VERSION: printf("citer-score %s\n", CITER_VERSION); return 0;
        case OPT_SLM: slm_path = optarg; break;
        case OPT_LLM: llm_path = optarg; break;
        case OPT_CSV: mode = OPT_CSV; break;
        case OPT_JSON: mode = OPT_JSON; break;
        case OPT_PLOT: plot_path = optarg; break;
        case OPT_BASELINE: baseline = optarg; break;
        default: cli_bad_option(argv, c);
        }
    }
    for (; optind < argc; optind++) { /* after "--" */
        labels[n_files] = pending_label;
        files[n_files++] = argv[optind];
        pending_label = NULL;
    }
    if (pending_label) usage_error("--label %s: no FILE follows it", pending_label);
    if (!n_files) usage_error("no FILE to score");
    if (!tok_path) tok_path = getenv("CITER_TOKENIZER");
    if (!tok_path) usage_error("no tokenizer: give -t PATH or set CITER_TOKENIZER");
    if (!slm_path != !llm_path) usage_error("--slm-model and --llm-model go together");
    int base_row = -1;
    for (int i = 0; baseline && i < n_files && base_row < 0; i++)
        if (strcmp(labels[i] ? labels[i] : files[i], baseline) == 0) base_row = i;
    if (baseline && base_row < 0) usage_error("--baseline %s: no FILE has that label", baseline);

    /* An SVG plot is written here; opened first, so that an unwritable path fails before the work. */
    static citer_out *plot_out;
    if (plot_path && ends_with(plot_path, ".svg")) {
        plot_out = citer_out_open(plot_path);
        if (!plot_out) die("%s: %s", plot_path, citer_error());
    }

    citer_tokenizer *t = citer_tokenizer_load(tok_path);
    if (!t) die("%s: %s", tok_path, citer_error());
    tok = t;

    double slm_bytes = NAN, llm_bytes = NAN, slm_params = NAN, llm_params = NAN;
    if (slm_path) {
        citer_model *m = citer_model_load(slm_path);
        if (!m) die("%s: %s", slm_path, citer_error());
        slm_bytes = (double)citer_model_weight_bytes(m);
        slm_params = model_params(m);
        citer_model_free(m);
        m = citer_model_load(llm_path);
        if (!m) die("%s: %s", llm_path, citer_error());
        llm_bytes = (double)citer_model_weight_bytes(m);
        llm_params = model_params(m);
        citer_model_free(m);
    }

    static score_row *rows; /* file-scope, as files */
    rows = xcalloc((size_t)n_files, sizeof *rows);
    for (int i = 0; i < n_files; i++) {
        progress("%s", files[i]);
        rows[i].label = labels[i] ? labels[i] : files[i];
        score_file(files[i], &rows[i]);
        /* The small model runs at every step; the large one on the llm_ratio share of tokens. */
        rows[i].bytes_per_token = slm_bytes + llm_bytes * rows[i].llm_ratio;
        rows[i].flops_per_token = 2 * (slm_params + llm_params * rows[i].llm_ratio);
    }
    progress_done();
    /* Speed-up over the baseline run: how many times less wall time than it. */
    for (int i = 0; i < n_files; i++) {
        double b = base_row >= 0 ? rows[base_row].seconds : NAN;
        rows[i].speedup = rows[i].seconds > 0 && b > 0 ? b / rows[i].seconds : NAN;
    }

    citer_out *out = citer_out_open(out_path);
    if (!out) die("%s: %s", out_path, citer_error());
    print_rows(out->f, rows, n_files, mode);
    cli_check_write(out->f, out_path ? out_path : "stdout");
    if (citer_out_commit(out) != 0) die("%s: %s", out_path ? out_path : "stdout", citer_error());
    if (plot_out && plot_points(rows, n_files)) {
        plot_svg(plot_out->f, rows, n_files);
        if (citer_out_commit(plot_out) != 0) die("%s: %s", plot_path, citer_error());
    } else if (plot_out) {
        citer_out_abort(plot_out);
    } else if (plot_path && plot_points(rows, n_files)) {
        plot_png(plot_path, rows, n_files);
    }

    free(rows);
    free(files);
    free(labels);
    citer_tokenizer_free(t);
    return 0;
}
