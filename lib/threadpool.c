/* threadpool: persistent workers for citer_parallel_for.
 *
 * A call publishes a job (fn, arg, n) and bumps a generation counter; workers spin on the counter
 * for a short while after each job (a decode step dispatches ~7 matvecs per layer, so waking a
 * sleeping thread each time would cost more than the work) and then sleep on a condition
 * variable.
 *
 * The range is cut into a few contiguous chunks per thread (fixed boundaries: they depend only on
 * n and the thread count), large ones first and small ones last so that the threads finish
 * close together (the first quarter of the chunks holds half the range, the next quarter a
 * quarter, the last half a quarter). Threads, the caller included, claim chunks with a
 * compare-and-swap on a word holding (job id, next chunk), and the caller waits until every
 * chunk is done. A worker that the OS has not scheduled in time simply finds nothing left to
 * claim (a stale job id fails the claim), so a busy machine slows a call down by at most one
 * chunk, not a time slice. Each index is processed by exactly one fn call whatever the timing.
 *
 * One dispatch at a time: a call made while another is running (from another thread, or from
 * inside a job) runs the whole range serially in the calling thread instead. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

void citer_blas_one_thread(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

#define MAX_THREADS 64
/* Spin iterations (each a pause instruction, ~10-40 ns) before a worker goes to sleep. */
#define SPIN_ITERS 50000
#define CHUNKS_PER_THREAD 4 /* chunks per job: at most 4 * MAX_THREADS, under 2^16 */

typedef struct {
    pthread_t tid;
    int index;
    unsigned start_gen; /* the generation before this worker's first job */
} worker;

static struct {
    int nthreads;      /* including the caller */
    int spin_iters;    /* 0 when there are more threads than CPUs: spinning would steal them */
    int started;       /* workers running for nthreads */
    worker workers[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;         /* id of the latest job */
    atomic_int sleeping;
    atomic_int completed;  /* chunks of the current job finished */
    _Atomic uint64_t claim; /* job id << 32 | chunks << 16 | next chunk */
    atomic_int stop;
    atomic_int resting;      /* citer_threads_rest: no spinning until the next job */
    /* current job */
    void (*fn)(void *, int64_t, int64_t);
    void *arg;
    int64_t n;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static atomic_flag busy = ATOMIC_FLAG_INIT;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Where chunk k of nch starts in [0, n): chunks weigh 4, 2 and 1 in the first quarter, the
 * second quarter and the second half. */
static int64_t chunk_start(int64_t n, int64_t k, int64_t nch)
{
    int64_t q = nch / 4;
    int64_t w = 4 * (k < q ? k : q) + 2 * (k < q ? 0 : k < 2 * q ? k - q : q) + (k > 2 * q ? k - 2 * q : 0);
    int64_t total = 4 * q + 2 * q + (nch - 2 * q);
    return n * w / total;
}

/* Claim and run chunks of job `id` until none is left. The claim word holds the job id, its
 * chunk count and the next chunk, so a worker that read a finished job's (exhausted) claim while
 * the caller prepares the next job can never take a chunk: the count comes from the same word,
 * not from a field that may already hold the next job's value. The job's other fields are stable
 * while we hold an unfinished chunk: the caller publishes the next job only after all chunks
 * completed. */
static void run_chunks(uint32_t id)
{
    for (;;) {
        uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
        int64_t k = (int64_t)(c & 0xffff), nch = (int64_t)(c >> 16 & 0xffff);
        if ((uint32_t)(c >> 32) != id || k >= nch) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int64_t b = chunk_start(pool.n, k, nch), e = chunk_start(pool.n, k + 1, nch);
        if (b < e) pool.fn(pool.arg, b, e);
        atomic_fetch_add_explicit(&pool.completed, 1, memory_order_release);
    }
}

static void *worker_main(void *p)
{
    worker *w = p;
    unsigned seen = w->start_gen;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && !atomic_load(&pool.stop) &&
               spins < pool.spin_iters && !atomic_load_explicit(&pool.resting, memory_order_relaxed)) {
            cpu_relax();
            spins++;
        }
        if (g == seen && !atomic_load(&pool.stop)) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleeping, 1);
            while ((g = atomic_load(&pool.gen)) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.cv, &pool.mu);
            atomic_fetch_sub(&pool.sleeping, 1);
            pthread_mutex_unlock(&pool.mu);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = g;
        run_chunks(g);
    }
}

static void stop_workers(void)
{
    if (!pool.started) return;
    atomic_store(&pool.stop, 1);
    pthread_mutex_lock(&pool.mu);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 1; i < pool.nthreads; i++) pthread_join(pool.workers[i].tid, NULL);
    atomic_store(&pool.stop, 0);
    pool.started = 0;
}

static int default_threads(void)
{
    const char *s = getenv("CITER_THREADS");
    if (s && *s) {
        int n = atoi(s);
        if (n >= 1) return n > MAX_THREADS ? MAX_THREADS : n;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c >= 2 ? 2 : 1;
}

/* Start workers for pool.nthreads (lazily, on first use). Falls back to fewer threads if
 * pthread_create fails. */
static void start_workers(void)
{
    if (pool.nthreads == 0) pool.nthreads = default_threads();
    pool.spin_iters = pool.nthreads <= sysconf(_SC_NPROCESSORS_ONLN) ? SPIN_ITERS : 0;
    for (int i = 1; i < pool.nthreads; i++) {
        pool.workers[i].index = i;
        pool.workers[i].start_gen = atomic_load(&pool.gen);
        if (pthread_create(&pool.workers[i].tid, NULL, worker_main, &pool.workers[i]) != 0) {
            pool.nthreads = i;
            break;
        }
    }
    pool.started = 1;
}

void citer_set_threads(int n)
{
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    while (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) sched_yield();
    stop_workers();
    pool.nthreads = n;
    atomic_flag_clear_explicit(&busy, memory_order_release);
}

int citer_get_threads(void)
{
    if (pool.nthreads == 0) {
        while (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) sched_yield();
        if (pool.nthreads == 0) pool.nthreads = default_threads();
        atomic_flag_clear_explicit(&busy, memory_order_release);
    }
    return pool.nthreads;
}

void citer_parallel_for(int64_t n, void (*fn)(void *arg, int64_t begin, int64_t end), void *arg)
{
    if (n <= 0) return;
    if (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) {
        fn(arg, 0, n); /* nested or concurrent call: serial */
        return;
    }
    if (!pool.started) start_workers();
    int nt = pool.nthreads;
    if (nt <= 1 || n == 1) {
        fn(arg, 0, n);
        atomic_flag_clear_explicit(&busy, memory_order_release);
        return;
    }
    int nch = n < CHUNKS_PER_THREAD * nt ? (int)n : CHUNKS_PER_THREAD * nt;
    atomic_store_explicit(&pool.resting, 0, memory_order_relaxed);
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    atomic_store_explicit(&pool.completed, 0, memory_order_relaxed);
    uint32_t id = atomic_load(&pool.gen) + 1;
    atomic_store_explicit(&pool.claim, (uint64_t)id << 32 | (uint64_t)nch << 16, memory_order_release);
    atomic_store(&pool.gen, id); /* seq_cst: ordered before the read of sleeping */
    if (atomic_load(&pool.sleeping) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    run_chunks(id);
    unsigned spins = 0;
    while (atomic_load_explicit(&pool.completed, memory_order_acquire) < nch) {
        if (++spins < 1u << 14) cpu_relax();
        else sched_yield();
    }
    atomic_flag_clear_explicit(&busy, memory_order_release);
}

void citer_threads_rest(void) { atomic_store_explicit(&pool.resting, 1, memory_order_relaxed); }
