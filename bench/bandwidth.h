/* bandwidth: the memory read bandwidth the benchmarks compare against, measured in the same run
 * by streaming a buffer much larger than the caches over the kernels' thread pool. */
#ifndef CITER_BENCH_BANDWIDTH_H
#define CITER_BENCH_BANDWIDTH_H

#include <stdint.h>
#include <stddef.h>

#include "kernels.h"
#include "util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct {
    const uint8_t *buf;
    uint64_t sink[64];
} read_job;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_range(const uint8_t *p, size_t n)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#else
static uint64_t read_range(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) s ^= *(const uint64_t *)(p + i);
    return s;
}
#endif

/* Chunks of 1 MB, split over the pool; the xor keeps the loads from being optimised away. */
static void read_chunks(void *arg, int64_t b, int64_t e)
{
    read_job *j = arg;
    uint64_t s = 0;
    for (int64_t i = b; i < e; i++) s ^= read_range(j->buf + ((size_t)i << 20), (size_t)1 << 20);
    j->sink[b % 64] ^= s;
}

/* GB/s: best of reps passes over buf (64-byte aligned, bytes a multiple of 1 MB) after a
 * warm-up pass. The machine may be shared: the best pass is the least disturbed. */
static double read_bandwidth(const uint8_t *buf, size_t bytes, int reps)
{
    read_job j = {buf, {0}};
    int64_t chunks = (int64_t)(bytes >> 20);
    citer_parallel_for(chunks, read_chunks, &j);
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_seconds();
        citer_parallel_for(chunks, read_chunks, &j);
        double g = (double)bytes / (now_seconds() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

#endif
