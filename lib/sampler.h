/* sampler: choosing the next token from logits: greedy, or temperature / top-k / top-p with a
 * seeded generator, so the same seed gives the same text. */
#ifndef CITER_SAMPLER_H
#define CITER_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* 0 = greedy */
    int top_k;         /* 0 = all */
    float top_p;       /* 1 = all */
    uint64_t rng;      /* state of the generator; seed it with citer_sampler_seed */
    /* scratch */
    int n_vocab;
    float *probs;
    int32_t *order;
} citer_sampler;

void citer_sampler_init(citer_sampler *s, int n_vocab, float temperature, int top_k, float top_p, uint64_t seed);
void citer_sampler_free(citer_sampler *s);
int32_t citer_sample(citer_sampler *s, const float *logits);
/* The most likely token and its probability under softmax(logits). */
int32_t citer_argmax(const float *logits, int n, float *prob);
/* log softmax(logits)[id] */
float citer_logprob(const float *logits, int n, int32_t id);

/* The tools' sampling options (citer-slm, citer-llm, citer-route): one parser, one set of
 * messages. cli_sampling_option takes "--temperature", "--top-k" or "--top-p" and the
 * argument, checks it (temperature >= 0, top-k a count >= 0, top-p in (0, 1]) and exits through
 * usage_error ("--top-p: '2' is not a number in (0, 1]") when it is bad. */
typedef struct {
    float temperature; /* 0 = greedy */
    int top_k;         /* 0 = all */
    float top_p;       /* 1 = all */
} citer_sampling_args;

void citer_sampling_args_defaults(citer_sampling_args *a);
void cli_sampling_option(citer_sampling_args *a, const char *option, const char *arg);

#endif
