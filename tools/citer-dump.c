/* citer-dump: show a citer stream as JSON Lines, check it, or build one from JSON Lines.
 * See citer-dump(1) and citer-stream(5). */
#include "stream.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static const char usage_text[] =
    "usage: citer-dump [options] [FILE...]\n"
    "Print each record of citer streams (FILEs or stdin) as one JSON object per line.\n"
    "\n"
    "  -r, --reverse    read JSON Lines, write a citer stream (dump | dump -r is exact)\n"
    "  -c, --check      only validate; print records, streams and bytes per input\n"
    "      --no-data    leave out the payload values (print the shape only)\n"
    "      --head N     stop after N data records\n"
    "  -e, --ends       print END records too, as {\"kind\":\"end\",\"seq\":COUNT}\n"
    "  -o FILE          write to FILE (atomically) instead of stdout\n"
    "  -q, --quiet      no progress, and no summary with --check\n"
    "  -h, --help       show this help\n"
    "      --version    show the version\n";

static struct {
    int reverse, check, no_data, ends, quiet;
    long head; /* -1: all */
} opt = {0, 0, 0, 0, 0, -1};

static uint64_t records_out; /* data records printed or written, for --head */

static int head_reached(void) { return opt.head >= 0 && records_out >= (uint64_t)opt.head; }

static void show_progress(uint64_t n)
{
    static double last;
    if (cli_quiet || (n & 1023)) return;
    double t = now_seconds();
    if (t - last < 0.2) return;
    last = t;
    progress("%" PRIu64 " records", n);
}

/* ---- stream -> JSON Lines ---- */

static void put_json_string(FILE *out, const char *s, size_t n)
{
    putc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20) fprintf(out, "\\u%04x", c);
            else putc(c, out);
        }
    }
    putc('"', out);
}

/* A float as JSON that converts back to the same bits: %.9g for finite values (-0 as "-0.0",
 * since a JSON reader takes "-0" for the integer 0), strings for infinities and NaNs, and the
 * hex bits for a NaN other than the dtype's usual quiet NaN (quiet_bits). */
static void put_float(FILE *out, float f, uint32_t bits, uint32_t quiet_bits, uint32_t sign_bit,
                      int hex_digits)
{
    if (isnan(f)) {
        if ((bits & ~sign_bit) == quiet_bits)
            fputs(bits & sign_bit ? "\"-nan\"" : "\"nan\"", out);
        else
            fprintf(out, "\"0x%0*" PRIx32 "\"", hex_digits, bits);
    } else if (isinf(f)) {
        fputs(f < 0 ? "\"-inf\"" : "\"inf\"", out);
    } else if (f == 0 && signbit(f)) {
        fputs("-0.0", out);
    } else {
        fprintf(out, "%.9g", (double)f);
    }
}

static void put_data(FILE *out, const citer_record *r)
{
    size_t n = citer_record_elements(r);
    const unsigned char *p = r->data;
    fputs(",\"data\":[", out);
    for (size_t i = 0; i < n; i++) {
        if (i) putc(',', out);
        switch (r->dtype) {
        case CITER_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            fprintf(out, "%" PRId32, v);
            break;
        }
        case CITER_U8: fprintf(out, "%u", p[i]); break;
        case CITER_F32: {
            float f;
            uint32_t bits;
            memcpy(&f, p + 4 * i, 4);
            memcpy(&bits, p + 4 * i, 4);
            put_float(out, f, bits, 0x7fc00000u, 0x80000000u, 8);
            break;
        }
        case CITER_F16:
        case CITER_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            int is16 = r->dtype == CITER_F16;
            float f = is16 ? citer_f16_to_f32(h) : citer_bf16_to_f32(h);
            put_float(out, f, h, is16 ? 0x7e00u : 0x7fc0u, 0x8000u, 4);
            break;
        }
        }
    }
    putc(']', out);
}

static void print_record(FILE *out, const citer_record *r)
{
    if (r->kind == CITER_END) {
        fprintf(out, "{\"kind\":\"end\",\"seq\":%" PRIu64 "}\n", r->seq);
        return;
    }
    fprintf(out, "{\"kind\":\"%s\",\"seq\":%" PRIu64 ",\"pos\":%" PRId64 ",\"dtype\":\"%s\",\"shape\":[",
            citer_kind_name(r->kind), r->seq, r->pos, citer_dtype_name(r->dtype));
    for (int i = 0; i < r->ndim; i++) fprintf(out, i ? ",%" PRIu32 : "%" PRIu32, r->dim[i]);
    putc(']', out);
    if (r->meta) {
        /* The metadata's own bytes, so that -r gets them back exactly; JSON Lines cannot hold a
         * raw line break, so metadata with one goes as a string instead. */
        if (memchr(r->meta, '\n', r->meta_len) || memchr(r->meta, '\r', r->meta_len)) {
            fputs(",\"meta_text\":", out);
            put_json_string(out, r->meta, r->meta_len);
        } else {
            fputs(",\"meta\":", out);
            fwrite(r->meta, 1, r->meta_len, out);
        }
    }
    if (!opt.no_data && r->dtype != CITER_DT_NONE) put_data(out, r);
    fputs("}\n", out);
}

static FILE *open_input(const char *path, const char **name)
{
    if (strcmp(path, "-") == 0) {
        *name = "stdin";
        return stdin;
    }
    *name = path;
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    return f;
}

/* Dump or check one input. Returns 0 ok, -1 invalid (message already printed, check mode);
 * other errors end the program. */
static int dump_file(const char *path, FILE *out)
{
    const char *name;
    FILE *f = open_input(path, &name);
    citer_reader *r = citer_reader_new(f, name);
    citer_reader_return_end(r, opt.ends && !opt.check);
    citer_record rec;
    int rc;
    while (!(!opt.check && head_reached()) && (rc = citer_read(r, &rec)) == 1) {
        if (!opt.check) {
            print_record(out, &rec);
            if (rec.kind != CITER_END) records_out++;
        }
        citer_record_free(&rec);
        show_progress(citer_reader_records(r));
    }
    progress_done();
    int status = 0;
    if (!opt.check && head_reached()) {
        rc = 0;
    } else if (rc < 0) {
        if (!opt.check) die("%s: %s", name, citer_error());
        warnx_("%s: %s", name, citer_error());
        status = -1;
    }
    if (opt.check && status == 0 && !opt.quiet) {
        uint64_t n = citer_reader_records(r), s = citer_reader_streams(r);
        fprintf(out, "%s: %" PRIu64 " record%s, %" PRIu64 " stream%s, %" PRIu64 " bytes\n", name,
                n, n == 1 ? "" : "s", s, s == 1 ? "" : "s", citer_reader_offset(r));
    }
    citer_reader_free(r);
    if (f != stdin) fclose(f);
    return status;
}

/* ---- JSON Lines -> stream ---- */

static const char *in_name;
static size_t in_line;

static void line_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void line_error(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("%s: line %zu: %s", in_name, in_line, msg);
}

/* Skip one JSON value of a line json-c already accepted; returns the index after it. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    int depth = 0;
    do {
        if (i >= n) return n;
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++, i++;
        } else if (c == '}' || c == ']') {
            depth--, i++;
        } else if (depth > 0) {
            i++;
        } else {
            while (i < n && !strchr(",}] \t\r\n", s[i])) i++;
        }
    } while (depth > 0);
    return i;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

/* The exact text of the top-level "meta" member of an object line (the last one, as json-c
 * keeps the last of repeated keys). 0 and [*a, *b) when found. */
static int meta_span(const char *s, size_t n, size_t *a, size_t *b)
{
    int found = 0;
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t k = i;
        i = skip_value(s, n, i);
        int is_meta = i - k == 6 && memcmp(s + k, "\"meta\"", 6) == 0;
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':') return -1;
        i = skip_ws(s, n, i + 1);
        size_t v = i;
        i = skip_value(s, n, i);
        if (is_meta) {
            *a = v, *b = i;
            found = 1;
        }
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',') i = skip_ws(s, n, i + 1);
    }
    return found ? 0 : -1;
}

static uint64_t get_u64(json_object *v, const char *key, uint64_t max)
{
    if (!json_object_is_type(v, json_type_int)) line_error("\"%s\" must be an integer", key);
    if (json_object_get_int64(v) < 0) line_error("\"%s\" must not be negative", key);
    uint64_t u = json_object_get_uint64(v);
    if (u > max) line_error("\"%s\" is over %" PRIu64, key, max);
    return u;
}

static int64_t get_i64(json_object *v, const char *key)
{
    if (!json_object_is_type(v, json_type_int)) line_error("\"%s\" must be an integer", key);
    int64_t i = json_object_get_int64(v);
    if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        line_error("\"%s\" is out of range", key);
    return i;
}

/* One data value into dst in the dtype's encoding. */
static void put_elem(json_object *v, int dtype, unsigned char *dst, size_t index)
{
    if (dtype == CITER_I32 || dtype == CITER_U8) {
        if (!json_object_is_type(v, json_type_int))
            line_error("data[%zu] must be an integer for dtype %s", index, citer_dtype_name(dtype));
        int64_t x = json_object_get_int64(v);
        if (dtype == CITER_U8) {
            if (x < 0 || x > 255) line_error("data[%zu] = %" PRId64 " is out of range for u8", index, x);
            dst[0] = (unsigned char)x;
        } else {
            if (x < INT32_MIN || x > INT32_MAX)
                line_error("data[%zu] = %" PRId64 " is out of range for i32", index, x);
            int32_t i = (int32_t)x;
            memcpy(dst, &i, 4);
        }
        return;
    }
    int is32 = dtype == CITER_F32;
    uint32_t bits;
    if (json_object_is_type(v, json_type_string)) {
        const char *t = json_object_get_string(v);
        int neg = t[0] == '-';
        const char *u = t + neg;
        uint32_t sign = neg ? (is32 ? 0x80000000u : 0x8000u) : 0;
        if (strcmp(u, "nan") == 0) {
            bits = sign | (is32 ? 0x7fc00000u : dtype == CITER_F16 ? 0x7e00u : 0x7fc0u);
        } else if (strcmp(u, "inf") == 0) {
            bits = sign | (is32 ? 0x7f800000u : dtype == CITER_F16 ? 0x7c00u : 0x7f80u);
        } else if (!neg && (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) && t[2]) {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(t + 2, &end, 16);
            if (*end || errno || x > (is32 ? 0xffffffffull : 0xffffull))
                line_error("data[%zu] = \"%s\" is not %s bits in hex", index, t,
                           citer_dtype_name(dtype));
            bits = (uint32_t)x;
        } else {
            line_error("data[%zu] = \"%s\" is not a number, \"nan\", \"inf\" or hex bits", index, t);
        }
    } else {
        float f;
        if (json_object_is_type(v, json_type_int)) {
            f = (float)json_object_get_int64(v);
        } else if (json_object_is_type(v, json_type_double)) {
            /* from the number's own text: one correctly rounded step to float */
            f = strtof(json_object_get_string(v), NULL);
        } else {
            line_error("data[%zu] must be a number for dtype %s", index, citer_dtype_name(dtype));
        }
        if (is32) memcpy(&bits, &f, 4);
        else bits = dtype == CITER_F16 ? citer_f32_to_f16(f) : citer_f32_to_bf16(f);
    }
    if (is32) {
        memcpy(dst, &bits, 4);
    } else {
        uint16_t h = (uint16_t)bits;
        memcpy(dst, &h, 2);
    }
}

static const char *const line_keys[] = {"kind", "seq", "pos", "dtype", "shape",
                                        "meta", "meta_text", "data", NULL};

typedef struct {
    citer_writer *w;
    uint64_t since_end; /* records written since the last END */
    int any_end;
} rev_state;

static void reverse_line(rev_state *st, const char *line, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o) line_error("not JSON: %s", jerr == json_tokener_continue ? "unexpected end of line"
                                                                       : json_tokener_error_desc(jerr));
    if (skip_ws(line, len, end) < len) line_error("text after the JSON object");
    if (!json_object_is_type(o, json_type_object)) line_error("not a JSON object");
    json_object_object_foreach(o, key, val) {
        (void)val;
        int known = 0;
        for (int i = 0; line_keys[i]; i++) known |= strcmp(key, line_keys[i]) == 0;
        if (!known) line_error("unknown key \"%s\"", key);
    }
    json_object *v;
    if (!json_object_object_get_ex(o, "kind", &v) || !json_object_is_type(v, json_type_string))
        line_error("\"kind\" (a string) is missing");
    const char *kname = json_object_get_string(v);
    int kind = citer_kind_from_name(kname);
    if (kind < 0) line_error("unknown kind \"%s\"", kname);

    if (kind == CITER_END) {
        json_object_object_foreach(o, k2, v2) {
            (void)v2;
            if (strcmp(k2, "kind") && strcmp(k2, "seq"))
                line_error("an end line has only \"kind\" and \"seq\" (not \"%s\")", k2);
        }
        if (json_object_object_get_ex(o, "seq", &v)) {
            uint64_t count = get_u64(v, "seq", UINT64_MAX);
            if (count != st->since_end)
                line_error("end line counts %" PRIu64 " records but %" PRIu64 " precede it", count,
                           st->since_end);
        }
        if (citer_writer_finish(st->w) != 0) die("%s", citer_error());
        st->since_end = 0;
        st->any_end = 1;
        json_object_put(o);
        return;
    }

    citer_record r;
    citer_record_init(&r, kind, CITER_DT_NONE, 0, -1);
    if (json_object_object_get_ex(o, "seq", &v)) r.seq = get_u64(v, "seq", UINT64_MAX);
    if (json_object_object_get_ex(o, "pos", &v)) r.pos = get_i64(v, "pos");
    json_object *data = NULL;
    if (json_object_object_get_ex(o, "data", &data) && !json_object_is_type(data, json_type_array))
        line_error("\"data\" must be an array");
    if (json_object_object_get_ex(o, "dtype", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            (r.dtype = citer_dtype_from_name(json_object_get_string(v))) < 0)
            line_error("unknown dtype %s", json_object_to_json_string(v));
    } else if (kind == CITER_TOKENS) {
        r.dtype = CITER_I32;
    } else if (data) {
        line_error("\"dtype\" is required with \"data\"");
    }
    size_t ndata = data ? json_object_array_length(data) : 0;
    if (json_object_object_get_ex(o, "shape", &v)) {
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 4)
            line_error("\"shape\" must be an array of at most 4 sizes");
        r.ndim = (int)json_object_array_length(v);
        for (int i = 0; i < r.ndim; i++)
            r.dim[i] = (uint32_t)get_u64(json_object_array_get_idx(v, (size_t)i), "shape", UINT32_MAX);
    } else if (data) {
        if (ndata > UINT32_MAX) line_error("too many values for one dimension");
        r.ndim = 1;
        r.dim[0] = (uint32_t)ndata;
    }
    size_t elems = citer_record_elements(&r), size = citer_dtype_size(r.dtype);
    if (elems == SIZE_MAX) line_error("\"shape\" is too large");
    if (r.dtype == CITER_DT_NONE) {
        if (ndata) line_error("dtype none has no data");
    } else if (!data) {
        if (elems) line_error("\"data\" is missing (was the line dumped with --no-data?)");
    } else if (ndata != elems) {
        line_error("\"data\" has %zu values but the shape holds %zu", ndata, elems);
    }
    unsigned char *payload = NULL;
    if (r.dtype != CITER_DT_NONE && elems) {
        payload = xmalloc(elems * size);
        for (size_t i = 0; i < elems; i++)
            put_elem(json_object_array_get_idx(data, i), r.dtype, payload + i * size, i);
        r.data = payload;
        r.nbytes = elems * size;
    }

    char *meta = NULL;
    json_object *mo = NULL, *mt = NULL;
    json_object_object_get_ex(o, "meta", &mo);
    json_object_object_get_ex(o, "meta_text", &mt);
    if (mo && mt) line_error("both \"meta\" and \"meta_text\"");
    if (mo) {
        if (!json_object_is_type(mo, json_type_object)) line_error("\"meta\" must be an object");
        size_t a, b;
        if (meta_span(line, len, &a, &b) == 0) {
            meta = xstrndup(line + a, b - a); /* the bytes as written, for an exact round trip */
        } else {
            meta = xstrdup(json_object_to_json_string_ext(
                mo, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        }
    } else if (mt) {
        if (!json_object_is_type(mt, json_type_string)) line_error("\"meta_text\" must be a string");
        int n = json_object_get_string_len(mt);
        if (n == 0) line_error("\"meta_text\" is empty (leave it out for no metadata)");
        meta = xstrndup(json_object_get_string(mt), (size_t)n);
        if (strlen(meta) != (size_t)n) line_error("\"meta_text\" contains a NUL");
    }
    if (meta) {
        if (strlen(meta) > CITER_MAX_META) line_error("metadata is over %u bytes", CITER_MAX_META);
        r.meta = meta;
        r.meta_len = (uint32_t)strlen(meta);
    }
    if (citer_write(st->w, &r) != 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", citer_error());
        if (strncmp(why, "write error", 11) == 0) die("%s", why);
        line_error("%s", why);
    }
    st->since_end++;
    records_out++;
    free(meta);
    free(payload);
    json_object_put(o);
}

static void reverse_file(const char *path, rev_state *st)
{
    FILE *f = open_input(path, &in_name);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    in_line = 0;
    while (!head_reached() && (n = getline(&line, &cap, f)) >= 0) {
        in_line++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        if (skip_ws(line, len, 0) == len) continue; /* blank line */
        if (memchr(line, 0, len)) line_error("contains a NUL byte");
        reverse_line(st, line, len);
        show_progress(records_out);
    }
    if (ferror(f)) die("%s: read error: %s", in_name, strerror(errno));
    progress_done();
    free(line);
    if (f != stdin) fclose(f);
}

/* ---- main ---- */

static const char **files; /* file scope: still reachable when a --help return ends main */

int main(int argc, char **argv)
{
    cli_init("citer-dump");
    const char *out_path = NULL;
    files = xcalloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0, only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-' || !a[1]) {
            files[nfiles++] = a;
        } else if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("citer-dump %s\n", CITER_VERSION);
            return 0;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reverse")) {
            opt.reverse = 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--check")) {
            opt.check = 1;
        } else if (!strcmp(a, "-e") || !strcmp(a, "--ends")) {
            opt.ends = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            opt.quiet = 1;
            cli_quiet = 1;
        } else if (!strcmp(a, "--no-data")) {
            opt.no_data = 1;
        } else if (!strcmp(a, "--head") || !strncmp(a, "--head=", 7)) {
            const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) usage_error("--head needs a number");
            if (parse_long(v, &opt.head) != 0 || opt.head < 0)
                usage_error("--head: '%s' is not a count", v);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strncmp(a, "--output=", 9) ||
                   (a[1] == 'o' && a[2])) {
            const char *v = a[1] == 'o' && a[2] ? a + 2
                            : a[8] == '=' ? a + 9
                            : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) usage_error("-o needs a file name");
            out_path = v;
        } else {
            usage_error("unknown option '%s'", a);
        }
    }
    if (nfiles == 0) files[nfiles++] = "-";
    if (opt.reverse && opt.no_data) usage_error("--no-data applies to reading a stream, not -r");

    citer_out *out = citer_out_open(out_path);
    if (!out) die("%s: %s", out_path, citer_error());
    setvbuf(out->f, NULL, _IOFBF, 1 << 16);
    int status = 0;

    if (opt.reverse) {
        FILE *sink = opt.check ? fopen("/dev/null", "wb") : out->f;
        if (!sink) die("/dev/null: %s", strerror(errno));
        rev_state st = {citer_writer_new(sink), 0, 0};
        for (int i = 0; i < nfiles && !head_reached(); i++) reverse_file(files[i], &st);
        if ((st.since_end || !st.any_end) && citer_writer_finish(st.w) != 0)
            die("%s", citer_error());
        if (opt.check && !opt.quiet) {
            uint64_t n = citer_writer_records(st.w);
            fprintf(out->f, "%" PRIu64 " record%s, %" PRIu64 " bytes\n", n, n == 1 ? "" : "s",
                    citer_writer_offset(st.w));
        }
        citer_writer_free(st.w);
        if (opt.check) fclose(sink);
    } else {
        for (int i = 0; i < nfiles && (opt.check || !head_reached()); i++)
            if (dump_file(files[i], out->f) != 0) status = 1;
    }
    if (citer_out_commit(out) != 0) die("%s: %s", out_path ? out_path : "stdout", citer_error());
    free(files);
    return status;
}
