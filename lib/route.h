/* route: CITER's token-level collaborative decoding (arXiv 2502.01976) over two backends.
 *
 * At every step the small model (SLM) has ingested every token so far and predicts the next one;
 * the router maps the SLM's final hidden state to a score in [0, 1] (its preference for the
 * SLM) and, when the score is below tau, the large model (LLM) writes the token instead. The
 * chosen token is then fed to the SLM as usual.
 *
 * The LLM's KV cache is kept in sync lazily: it is called only for the tokens it writes, and
 * then ingests in one batched append every token it has not seen yet (the prompt at its first
 * call, then the tokens produced since its last call: its own last token and the SLM's tokens
 * after it), so no prefix is ever processed twice. The SLM tokens among those are counted as
 * catch-up tokens.
 *
 * Other policies decide differently (see enum citer_policy); the loop, the stops and the
 * records are the same. Greedy by default; with a temperature each model samples its token
 * with a seed drawn from (seed, seq, step), so runs are reproducible and independent of the
 * other prompts. */
#ifndef CITER_ROUTE_H
#define CITER_ROUTE_H

#include <stdint.h>

#include "backend.h"
#include "router.h"
#include "tokenizer.h"

enum citer_policy {
    CITER_POLICY_ROUTER,     /* LLM when the router's score < threshold */
    CITER_POLICY_SLM,        /* SLM only (the LLM may be absent) */
    CITER_POLICY_LLM,        /* LLM only (the SLM may be absent; it is not run) */
    CITER_POLICY_RANDOM,     /* LLM with probability param, seeded per prompt */
    CITER_POLICY_CONFIDENCE, /* LLM when the SLM's top probability < param */
    CITER_POLICY_QUERY,      /* one decision per prompt: every token from the LLM when the
                              * router's score at the prompt's last position < param, else every
                              * token from the SLM */
};

typedef struct {
    int policy;           /* enum citer_policy */
    double param;         /* random: p, confidence: c, query: tau */
    double threshold;     /* router policy: tau (0.5) */
    const citer_router *router; /* needed by the router and query policies; with other policies
                                 * its scores are computed and recorded anyway */
    int max_tokens;       /* per prompt (256) */
    int ignore_eos;       /* do not stop at end tokens */
    const char *const *stops; /* stop strings (the generated text contains one) */
    int n_stops;
    const citer_tokenizer *tok; /* decodes the generated tokens for the stop strings */
    float temperature;    /* 0: greedy (default) */
    int top_k;            /* 0: all */
    float top_p;          /* 1: all */
    uint64_t seed;        /* sampling and the random policy */
} citer_route_opts;

void citer_route_defaults(citer_route_opts *o);
/* "router", "slm", "llm", "random:P", "confidence:C", "query:TAU" or "query" (TAU = tau).
 * 0, or -1 + citer_error(). */
int citer_policy_parse(const char *s, double tau, int *policy, double *param);
const char *citer_policy_name(int policy);

/* One prompt's generation and its trace. */
typedef struct {
    int n_prompt;
    int n;                /* tokens generated */
    int32_t *tokens;      /* [n] */
    int32_t *trace;       /* [n][3]: source (0 SLM, 1 LLM), the SLM's token (-1 when the SLM was
                           * not run at that step), the LLM's token (-1 when it was not asked) */
    float *scores;        /* [n][2]: router score (-1 when not computed), the SLM's top-token
                           * probability (-1 when the SLM was not run) */
    const char *stop;     /* "eos", "stop" or "max" */
    float query_score;    /* the query policy's score, else -1 */
    int llm_calls;        /* LLM appends */
    int llm_tokens;       /* tokens written by the LLM */
    int catchup;          /* SLM-written tokens the LLM ingested */
    int llm_ingested;     /* tokens the LLM ingested in all, prompt included */
    int slm_ingested;     /* tokens the SLM ingested in all, prompt included */
    int router_calls;
    double t_slm, t_llm, t_router; /* seconds in each */
} citer_route_result;

typedef struct citer_route citer_route;

/* slm may be NULL with the llm policy, llm NULL with the slm policy. Checks that the policy has
 * what it needs (a router for router/query, a tokenizer for stop strings) and that the router's
 * input size is the SLM's hidden size. NULL + citer_error(). */
citer_route *citer_route_new(citer_backend *slm, citer_backend *llm, const citer_route_opts *o);
void citer_route_free(citer_route *r);
/* Generate the continuation of one prompt (seq names the sequence in both backends; it is
 * dropped from them afterwards). 0, or -1 + citer_error() starting with "slm: " or "llm: "
 * when a model failed. res is filled in either case; free it with citer_route_result_free. */
int citer_route_prompt(citer_route *r, uint64_t seq, const int32_t *prompt, int n_prompt, citer_route_result *res);
void citer_route_result_free(citer_route_result *res);

/* Shared prefixes (many rollouts from one prompt, CITER's labelling): ingest a base sequence
 * once, fork it for each continuation, and generate from the fork. Every model the route runs
 * (the SLM unless the policy is llm, the LLM unless it is slm) gets the same state, so the
 * LLM's lazy catch-up starts after the shared part.
 *
 *   citer_route_base(r, base, tokens, n)       base := tokens[0..n) in every model
 *   citer_route_fork(r, seq, base, len)        seq := the first len positions of base
 *   citer_route_prompt_from(r, seq, p, n, len, res)
 *                                              generate after p[0..n) where seq already holds
 *                                              p[0..len) (len < n: at least one token is new)
 *   citer_route_drop(r, base)
 *
 * The result is the one citer_route_prompt(r, seq, p, n) gives, except for the rounding of the
 * positions computed in another batch (a prefill of many positions and a one-token decode sum in
 * different orders), and except that slm_ingested / llm_ingested count only the new tokens.
 * 0, or -1 + citer_error() ("slm: ..." or "llm: ..."). */
int citer_route_base(citer_route *r, uint64_t base, const int32_t *tokens, int n);
int citer_route_fork(citer_route *r, uint64_t seq, uint64_t base, int len);
int citer_route_prompt_from(citer_route *r, uint64_t seq, const int32_t *prompt, int n_prompt, int have,
                            citer_route_result *res);
int citer_route_drop(citer_route *r, uint64_t seq);

/* Totals over prompts, for the stats record. */
typedef struct {
    uint64_t prompts, tokens, llm_calls, llm_tokens, catchup, llm_ingested, slm_ingested, router_calls;
    double t_slm, t_llm, t_router;
} citer_route_stats;

void citer_route_stats_add(citer_route_stats *s, const citer_route_result *res);
/* The metadata of the stats META record (see citer-route(1)); malloc'd JSON text. */
char *citer_route_stats_json(const citer_route_stats *s, double seconds, const citer_route_opts *o);

#endif
