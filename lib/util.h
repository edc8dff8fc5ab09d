/* util: errors, memory, files, atomic output and progress shared by every tool. */
#ifndef CITER_UTIL_H
#define CITER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>

#define CITER_VERSION "0.1.0"

/* Library functions never exit: they return an error value and leave a one-line
 * message here (thread-local), which the tool prints as "citer-X: FILE: message". */
void citer_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *citer_error(void);

/* Allocation that cannot fail quietly: out of memory ends the process with a message. */
void *xmalloc(size_t n);
/* aligned_alloc(align, n rounded up to a multiple of align, at least align), exiting on failure
 * like xmalloc; free() releases it. */
void *xaligned_alloc(size_t align, size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Grow *p (of *cap elements of size elem) to hold at least need elements. */
void xgrow(void **p, size_t *cap, size_t need, size_t elem);

/* Read a whole file ("-" = stdin) into a NUL-terminated buffer. NULL + citer_error() on failure. */
char *citer_read_file(const char *path, size_t *len);

/* A read-only memory map of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t size;
} citer_map;
int citer_map_file(const char *path, citer_map *m); /* 0 ok, -1 error */
void citer_unmap(citer_map *m);

/* Atomic output: writes go to a temporary file beside PATH, renamed over PATH on commit.
 * path NULL or "-" means stdout (no temp file). An uncommitted temp file is removed at exit
 * and on SIGINT/SIGTERM/SIGHUP, so an interrupted run never leaves a half-written PATH. */
typedef struct citer_out {
    FILE *f;
    char *path;     /* final name, NULL for stdout */
    char *tmp_path; /* temporary name; NULL for stdout; with path NULL: a device written directly */
} citer_out;
citer_out *citer_out_open(const char *path); /* NULL + citer_error() on failure */
int citer_out_commit(citer_out *o);          /* flush, fsync, rename; 0 ok, -1 error */
void citer_out_abort(citer_out *o);          /* remove the temp file */

/* ---- tool conventions ---- */
/* Set the program name used in messages, make broken pipes end the tool quietly. */
void cli_init(const char *progname);
const char *cli_progname(void);
/* "citer-X: message" and exit 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* "citer-X: message (try 'citer-X --help')" and exit 2. */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* For getopt_long with opterr = 0 and an optstring starting with ':': report the option
 * getopt rejected (c is '?' or ':') as a one-line usage error. */
void cli_bad_option(char **argv, int c) __attribute__((noreturn));
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Check a stdio stream after writing; a broken pipe exits quietly (status 141, as SIGPIPE would). */
void cli_check_write(FILE *f, const char *name);

/* Progress on stderr: shown only when stderr is a terminal and not quieted (-q). */
extern int cli_quiet;
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void progress_done(void);

/* Option arguments of the tools: a count >= min (and <= INT32_MAX), a seed (any unsigned
 * 64-bit number, decimal or 0x hex). A bad one is a usage error naming the option. */
long cli_count_arg(const char *option, const char *s, long min);
uint64_t cli_seed_arg(const char *option, const char *s);

/* Parse helpers for options: 0 ok, -1 bad. */
int parse_long(const char *s, long *out);
int parse_double(const char *s, double *out);

double now_seconds(void);

#endif
