/* Tests of lib/sampler's citer_argmax: the first index of the maximum, and the top probability
 * from the vectorized f32 exp-sum within 1e-6 relative of an f64 softmax computed here, for every
 * kernel set; NaN and infinities keep the f64 reference's meaning. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels.h"
#include "sampler.h"
#include "util.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static double urand(void) /* uniform in [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}
static double nrand(void) /* standard normal (Box-Muller) */
{
    double u = urand() + 0x1p-60, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static const char *sets[] = {"scalar", "avx2", "avx512"};

/* the definition: first index of the largest, softmax probability in f64 */
static int ref_argmax(const float *x, int n, double *p)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - (double)x[best]);
    *p = 1 / s;
    return best;
}

static void test_argmax_probability(void)
{
    static const int sizes[] = {1, 2, 15, 16, 17, 127, 128, 129, 1000, 4099, 151936};
    /* scales of the logits: flat (prob ~1/n), realistic (std 3), peaked (std 30) */
    static const double scales[] = {0.01, 1, 3, 30};
    enum { NMAX = 151936 };
    float *x = xmalloc(sizeof(float) * NMAX);
    int ran = 0;
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        if (citer_kernels_force(sets[k]) != 0) continue;
        ran++;
        double worst = 0;
        int bad = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
            for (size_t ci = 0; ci < sizeof scales / sizeof *scales; ci++)
                for (int rep = 0; rep < 3; rep++) {
                    int n = sizes[si];
                    for (int i = 0; i < n; i++) x[i] = (float)(scales[ci] * nrand() + 5);
                    if (rep == 1 && n > 2) x[n / 2] = x[n - 1] = 1e4f; /* a tie: the first one wins */
                    if (rep == 2 && n > 1) x[n - 1] = -INFINITY;       /* exp(-inf) = 0 */
                    double p;
                    int want = ref_argmax(x, n, &p);
                    float got_p;
                    int got = citer_argmax(x, n, &got_p);
                    double e = fabs(got_p - p) / p;
                    if (e > worst) worst = e;
                    if ((got != want || !(e <= 1e-6)) && bad++ < 5)
                        printf("  %s n %d scale %g rep %d: argmax %d p %.9g, want %d p %.9g\n", sets[k], n,
                               scales[ci], rep, got, got_p, want, p);
                    CHECK(citer_argmax(x, n, NULL) == want, "%s: argmax without prob", sets[k]);
                }
        printf("  %s: worst relative error of the probability %.2e\n", sets[k], worst);
        CHECK(bad == 0, "%s: %d cases wrong", sets[k], bad);
    }
    citer_kernels_force(NULL);
    CHECK(ran >= 1, "scalar always runs");
    free(x);
}

static void test_argmax_special(void)
{
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        if (citer_kernels_force(sets[k]) != 0) continue;
        float p;
        /* hand-computed: two equal logits -> 1/2, first index; 0 and -0 compare equal */
        float two[] = {-INFINITY, 3, 3};
        CHECK(citer_argmax(two, 3, &p) == 1 && fabsf(p - 0.5f) <= 1e-7f, "%s: tie: p %g", sets[k], p);
        float zeros[] = {-1, -0.0f, 0.0f};
        CHECK(citer_argmax(zeros, 3, NULL) == 1, "%s: -0 and 0 tie, first wins", sets[k]);
        /* log(3) apart: 3/4 and 1/4 */
        float three[] = {0, (float)log(3.0)};
        CHECK(citer_argmax(three, 2, &p) == 1 && fabsf(p - 0.75f) <= 1e-6f, "%s: p %g, want 0.75", sets[k], p);
        /* NaN and infinities: as the f64 reference (strict > from index 0) */
        float nan0[20], nanmid[20], pinf[20], ninf[20];
        for (int i = 0; i < 20; i++) nan0[i] = nanmid[i] = pinf[i] = (float)i, ninf[i] = -INFINITY;
        nan0[0] = NAN;
        nanmid[7] = NAN;
        pinf[3] = INFINITY;
        CHECK(citer_argmax(nan0, 20, &p) == 0 && isnan(p), "%s: NaN at 0: index 0, NaN prob (%g)", sets[k], p);
        CHECK(citer_argmax(nanmid, 20, &p) == 19 && isnan(p), "%s: NaN inside: skipped, NaN prob (%g)", sets[k], p);
        CHECK(citer_argmax(pinf, 20, &p) == 3 && isnan(p), "%s: +inf: its index, NaN prob (%g)", sets[k], p);
        CHECK(citer_argmax(ninf, 20, &p) == 0 && isnan(p), "%s: all -inf: index 0 (%g)", sets[k], p);
        CHECK(citer_argmax(ninf, 1, &p) == 0, "%s: n = 1", sets[k]);
        float one = 2.5f;
        CHECK(citer_argmax(&one, 1, &p) == 0 && p == 1.0f, "%s: one logit: p %g", sets[k], p);
    }
    citer_kernels_force(NULL);
}

/* the helpers directly: max with NaN, exp-sum of a known series */
static void test_helpers(void)
{
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        if (citer_kernels_force(sets[k]) != 0) continue;
        float x[37];
        for (int i = 0; i < 37; i++) x[i] = (float)-i;
        CHECK(citer_max_f32(x, 37) == 0, "%s: max", sets[k]);
        x[36] = NAN;
        CHECK(isnan(citer_max_f32(x, 37)), "%s: NaN in the tail", sets[k]);
        /* sum_{i<36} e^-i = (1 - e^-36) / (1 - e^-1) */
        double want = (1 - exp(-36.0)) / (1 - exp(-1.0)), got = citer_sum_exp(x, 36, 0);
        CHECK(fabs(got - want) <= 1e-6 * want, "%s: sum_exp %.9g, want %.9g", sets[k], got, want);
    }
    citer_kernels_force(NULL);
}

int main(void)
{
    (void)t_fixture;
    (void)t_tmpdir;
    RUN(test_argmax_probability);
    RUN(test_argmax_special);
    RUN(test_helpers);
    return t_exit();
}
