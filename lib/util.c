#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char err_buf[1024];

void citer_set_error(const char *fmt, ...)
{
    /* Format into a copy first: callers often wrap the previous message ("%s: %s", name,
     * citer_error()), which points into err_buf itself. */
    char tmp[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(err_buf, tmp, sizeof tmp);
}

const char *citer_error(void) { return err_buf[0] ? err_buf : "unknown error"; }

static void oom(void)
{
    fprintf(stderr, "%s: out of memory\n", cli_progname());
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *xaligned_alloc(size_t align, size_t n)
{
    void *p = aligned_alloc(align, n ? (n + align - 1) / align * align : align);
    if (!p) oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) oom();
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void xgrow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) oom();
        c *= 2;
    }
    *p = xrealloc(*p, c * elem);
    *cap = c;
}

char *citer_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        citer_set_error("%s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) xgrow((void **)&buf, &cap, n + 2, 1);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    if (f != stdin) fclose(f);
    if (bad) {
        free(buf);
        citer_set_error("read error: %s", strerror(e));
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int citer_map_file(const char *path, citer_map *m)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        citer_set_error("%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        citer_set_error("%s", strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        citer_set_error("is a directory");
        close(fd);
        return -1;
    }
    if (st.st_size == 0) { /* mmap of 0 bytes fails; an empty map is still a valid result */
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        citer_set_error("cannot map: %s", strerror(errno));
        return -1;
    }
    m->data = p;
    m->size = (size_t)st.st_size;
    return 0;
}

void citer_unmap(citer_map *m)
{
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

/* ---- atomic output ---- */

/* Temp files still open, removed if the process ends before commit. Kept as a small fixed
 * table of plain char arrays so the signal handler can unlink them safely. */
#define MAX_PENDING 16
static char pending[MAX_PENDING][PATH_MAX];
static volatile sig_atomic_t pending_used[MAX_PENDING];

static void remove_pending(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i]) {
            unlink(pending[i]);
            pending_used[i] = 0;
        }
}

static void on_fatal_signal(int sig)
{
    remove_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_cleanup(void)
{
    static int done;
    if (done) return;
    done = 1;
    atexit(remove_pending);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

citer_out *citer_out_open(const char *path)
{
    citer_out *o = xcalloc(1, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->f = stdout;
        return o;
    }
    /* A device, FIFO or socket (-o /dev/null, -o /dev/stdout) cannot be replaced by a rename:
     * write to it directly. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            citer_set_error("is a directory");
            free(o);
            return NULL;
        }
        o->f = fopen(path, "wb");
        if (!o->f) {
            citer_set_error("%s", strerror(errno));
            free(o);
            return NULL;
        }
        o->path = NULL;
        o->tmp_path = xstrdup(path); /* marks "direct": closed, never renamed */
        return o;
    }
    install_cleanup();
    size_t n = strlen(path) + 32;
    if (n >= PATH_MAX) {
        citer_set_error("path too long");
        free(o);
        return NULL;
    }
    o->path = xstrdup(path);
    o->tmp_path = xmalloc(n);
    int slot = -1;
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending_used[i]) {
            slot = i;
            break;
        }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(o->tmp_path, n, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
        int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            citer_set_error("cannot create %s: %s", o->tmp_path, strerror(errno));
            break;
        }
        o->f = fdopen(fd, "wb");
        if (slot >= 0) {
            snprintf(pending[slot], PATH_MAX, "%s", o->tmp_path);
            pending_used[slot] = 1;
        }
        return o;
    }
    free(o->path);
    free(o->tmp_path);
    free(o);
    return NULL;
}

static void forget_pending(const char *tmp)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i] && strcmp(pending[i], tmp) == 0) pending_used[i] = 0;
}

int citer_out_commit(citer_out *o)
{
    int rc = 0;
    if (!o->path && o->tmp_path) { /* written directly to a device or FIFO */
        if (fflush(o->f) != 0 || ferror(o->f)) {
            citer_set_error("write error: %s", strerror(errno));
            rc = -1;
        }
        if (fclose(o->f) != 0 && rc == 0) {
            citer_set_error("write error: %s", strerror(errno));
            rc = -1;
        }
        free(o->tmp_path);
        free(o);
        return rc;
    }
    if (!o->path) {
        if (fflush(o->f) != 0 || ferror(o->f)) {
            cli_check_write(o->f, "stdout");
            rc = -1;
        }
        free(o);
        return rc;
    }
    if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0) {
        citer_set_error("write error: %s", strerror(errno));
        rc = -1;
    }
    if (fclose(o->f) != 0 && rc == 0) {
        citer_set_error("write error: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(o->tmp_path, o->path) != 0) {
        citer_set_error("cannot rename to %s: %s", o->path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) unlink(o->tmp_path);
    forget_pending(o->tmp_path);
    free(o->path);
    free(o->tmp_path);
    free(o);
    return rc;
}

void citer_out_abort(citer_out *o)
{
    if (!o) return;
    if (!o->path && o->tmp_path) {
        fclose(o->f);
    } else if (o->path) {
        fclose(o->f);
        unlink(o->tmp_path);
        forget_pending(o->tmp_path);
    } else {
        fflush(o->f);
    }
    free(o->path);
    free(o->tmp_path);
    free(o);
}

/* ---- tool conventions ---- */

static const char *progname = "citer";
int cli_quiet;

void cli_init(const char *name)
{
    progname = name;
    /* Default SIGPIPE action: a reader that goes away ends us silently, like cat. */
    signal(SIGPIPE, SIG_DFL);
    if (!isatty(2)) cli_quiet = 1;
}

const char *cli_progname(void) { return progname; }

void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try '%s --help')\n", progname);
    exit(2);
}

void cli_bad_option(char **argv, int c)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    if (c == ':') usage_error("option '%s' needs an argument", arg);
    if (optopt && strncmp(arg, "--", 2) != 0) usage_error("unknown option '-%c'", optopt);
    usage_error("unknown option '%s'", arg);
}

void warnx_(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_check_write(FILE *f, const char *name)
{
    if (fflush(f) == 0 && !ferror(f)) return;
    if (errno == EPIPE) _exit(141);
    die("%s: write error: %s", name, strerror(errno));
}

static int progress_shown;

void progress(const char *fmt, ...)
{
    if (cli_quiet) return;
    va_list ap;
    fprintf(stderr, "\r%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\033[K", stderr);
    progress_shown = 1;
}

void progress_done(void)
{
    if (progress_shown && !cli_quiet) fputc('\n', stderr);
    progress_shown = 0;
}

long cli_count_arg(const char *option, const char *s, long min)
{
    long v;
    if (parse_long(s, &v) != 0 || v < min || v > INT32_MAX)
        usage_error("%s: '%s' is not a number >= %ld", option, s, min);
    return v;
}

uint64_t cli_seed_arg(const char *option, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') usage_error("%s: '%s' is not a number >= 0", option, s);
    return v;
}

int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
