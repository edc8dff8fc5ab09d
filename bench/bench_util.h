/* bench_util: what every benchmark needs: a clock, a fixed pseudo-random stream, and the cache
 * directory of the random models of real shapes (written once, reused by every bench). */
#ifndef CITER_BENCH_UTIL_H
#define CITER_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* xorshift64: the same numbers on every run, uniform in [-1, 1) */
static uint64_t bench_rng = 88172645463325252ull;
static inline float frand(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return (float)((bench_rng >> 40) * 0x1p-23) - 1.0f;
}

/* $CITER_BENCH_MODELS, or build/bench-models */
static inline const char *model_dir(void)
{
    const char *d = getenv("CITER_BENCH_MODELS");
    return d && *d ? d : "build/bench-models";
}

/* mkdir -p */
static inline int mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

#endif
