#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "util.h"

void citer_sampler_init(citer_sampler *s, int n_vocab, float temperature, int top_k, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p > 0 && top_p < 1 ? top_p : 1;
    s->rng = seed ^ 0x9E3779B97F4A7C15ull;
    s->n_vocab = n_vocab;
    s->probs = xmalloc((size_t)n_vocab * sizeof *s->probs);
    s->order = xmalloc((size_t)n_vocab * sizeof *s->order);
}

void citer_sampler_free(citer_sampler *s)
{
    free(s->probs);
    free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

/* xorshift64* : small, fast, and fixed across platforms. */
static double next_uniform(citer_sampler *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* The reference: f64 exp of every logit. Used as is when a logit is NaN or the largest is
 * infinite, so those keep their meaning (the first NaN-free maximum from index 0, a NaN
 * probability). */
static int32_t argmax_f64(const float *logits, int n, float *prob)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (prob) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += exp((double)logits[i] - logits[best]);
        *prob = (float)(1.0 / sum);
    }
    return best;
}

/* The first index of the maximum, and the probability from a vectorized f32 exp-sum (within
 * 1e-6 relative of the f64 one): a vocabulary of 150k exp calls in f64 cost ~1 ms a token. */
int32_t citer_argmax(const float *logits, int n, float *prob)
{
    if (n < 1) return argmax_f64(logits, n, prob);
    float m = citer_max_f32(logits, n);
    if (!isfinite(m)) return argmax_f64(logits, n, prob);
    int best = 0;
    while (logits[best] != m) best++;
    if (prob) *prob = (float)(1.0 / citer_sum_exp(logits, n, m));
    return best;
}

float citer_logprob(const float *logits, int n, int32_t id)
{
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (float)((double)logits[id] - mx - log(sum));
}

static int by_prob_desc(const void *a, const void *b, void *keys)
{
    const float *p = keys;
    float x = p[*(const int32_t *)a], y = p[*(const int32_t *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b; /* ties: lower id first, deterministic */
}

int32_t citer_sample(citer_sampler *s, const float *logits)
{
    int n = s->n_vocab;
    if (s->temperature <= 0) return citer_argmax(logits, n, NULL);
    float mx = logits[citer_argmax(logits, n, NULL)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf((logits[i] - mx) / s->temperature);
        sum += s->probs[i];
    }
    for (int i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / sum);
    int m = n;
    if (s->top_k > 0 || s->top_p < 1) {
        for (int i = 0; i < n; i++) s->order[i] = i;
        qsort_r(s->order, (size_t)n, sizeof *s->order, by_prob_desc, s->probs);
        if (s->top_k > 0 && s->top_k < m) m = s->top_k;
        if (s->top_p < 1) {
            double cum = 0;
            for (int i = 0; i < m; i++) {
                cum += s->probs[s->order[i]];
                if (cum >= s->top_p) {
                    m = i + 1;
                    break;
                }
            }
        }
        double kept = 0;
        for (int i = 0; i < m; i++) kept += s->probs[s->order[i]];
        double r = next_uniform(s) * kept, acc = 0;
        for (int i = 0; i < m; i++) {
            acc += s->probs[s->order[i]];
            if (r < acc) return s->order[i];
        }
        return s->order[m - 1];
    }
    double r = next_uniform(s), acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->probs[i];
        if (r < acc) return i;
    }
    return citer_argmax(logits, n, NULL);
}

void citer_sampling_args_defaults(citer_sampling_args *a)
{
    a->temperature = 0;
    a->top_k = 0;
    a->top_p = 1;
}

void cli_sampling_option(citer_sampling_args *a, const char *option, const char *arg)
{
    double v;
    if (strcmp(option, "--temperature") == 0) {
        if (parse_double(arg, &v) != 0 || !(v >= 0))
            usage_error("--temperature: '%s' is not a number >= 0", arg);
        a->temperature = (float)v;
    } else if (strcmp(option, "--top-k") == 0) {
        a->top_k = (int)cli_count_arg("--top-k", arg, 0);
    } else if (strcmp(option, "--top-p") == 0) {
        if (parse_double(arg, &v) != 0 || !(v > 0 && v <= 1)) usage_error("--top-p: '%s' is not a number in (0, 1]", arg);
        a->top_p = (float)v;
    } else {
        usage_error("%s: not a sampling option", option);
    }
}
