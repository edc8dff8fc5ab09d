#include "route.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"

struct citer_route {
    citer_backend *slm, *llm;
    citer_route_opts o;
    int32_t eos[2 * CITER_BACKEND_MAX_EOS];
    int n_eos;
    int context;   /* the smaller context length of the models in use */
    int vocab;     /* the smaller vocabulary: every token must fit both */
    float *scratch; /* router scratch */
};

void citer_route_defaults(citer_route_opts *o)
{
    memset(o, 0, sizeof *o);
    o->policy = CITER_POLICY_ROUTER;
    o->threshold = 0.5;
    o->max_tokens = 256;
    o->top_p = 1;
}

static const char *const policy_names[] = {"router", "slm", "llm", "random", "confidence", "query"};

const char *citer_policy_name(int policy)
{
    return policy >= 0 && policy < (int)(sizeof policy_names / sizeof *policy_names) ? policy_names[policy] : "?";
}

int citer_policy_parse(const char *s, double tau, int *policy, double *param)
{
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    int p = -1;
    for (int i = 0; i < (int)(sizeof policy_names / sizeof *policy_names); i++)
        if (strlen(policy_names[i]) == len && strncmp(s, policy_names[i], len) == 0) p = i;
    if (p < 0) {
        citer_set_error("unknown policy '%s' (router, slm, llm, random:P, confidence:C, query:TAU)", s);
        return -1;
    }
    int wants = p == CITER_POLICY_RANDOM || p == CITER_POLICY_CONFIDENCE || p == CITER_POLICY_QUERY;
    double v = p == CITER_POLICY_QUERY ? tau : 0;
    if (colon && !wants) {
        citer_set_error("policy %s takes no parameter", policy_names[p]);
        return -1;
    }
    if (wants && !colon && p != CITER_POLICY_QUERY) {
        citer_set_error("policy %s needs a parameter (%s:X)", policy_names[p], policy_names[p]);
        return -1;
    }
    if (colon && (parse_double(colon + 1, &v) != 0 || !(v >= 0 && v <= 1))) {
        citer_set_error("policy %s: '%s' is not a number in [0, 1]", policy_names[p], colon + 1);
        return -1;
    }
    *policy = p;
    *param = v;
    return 0;
}

static void add_eos(citer_route *r, const citer_backend *b)
{
    const citer_backend_info *in = citer_backend_get_info(b);
    for (int i = 0; i < in->n_eos; i++) {
        int seen = 0;
        for (int j = 0; j < r->n_eos; j++) seen |= r->eos[j] == in->eos[i];
        if (!seen) r->eos[r->n_eos++] = in->eos[i];
    }
}

citer_route *citer_route_new(citer_backend *slm, citer_backend *llm, const citer_route_opts *o)
{
    if (!slm && o->policy != CITER_POLICY_LLM) {
        citer_set_error("policy %s needs the small model", citer_policy_name(o->policy));
        return NULL;
    }
    if (!llm && o->policy != CITER_POLICY_SLM) {
        citer_set_error("policy %s needs the large model", citer_policy_name(o->policy));
        return NULL;
    }
    if (!o->router && (o->policy == CITER_POLICY_ROUTER || o->policy == CITER_POLICY_QUERY)) {
        citer_set_error("policy %s needs a router", citer_policy_name(o->policy));
        return NULL;
    }
    if (o->n_stops && !o->tok) {
        citer_set_error("stop strings need a tokenizer");
        return NULL;
    }
    if (o->router && slm && citer_router_dim(o->router) != citer_backend_get_info(slm)->dim) {
        citer_set_error("the router's input size %d is not the small model's hidden size %d",
                        citer_router_dim(o->router), citer_backend_get_info(slm)->dim);
        return NULL;
    }
    citer_route *r = xcalloc(1, sizeof *r);
    r->o = *o;
    if (o->policy == CITER_POLICY_LLM) slm = NULL; /* not run */
    if (o->policy == CITER_POLICY_SLM) llm = NULL;
    r->slm = slm;
    r->llm = llm;
    r->context = INT32_MAX;
    r->vocab = INT32_MAX;
    citer_backend *both[2] = {slm, llm};
    for (int i = 0; i < 2; i++) {
        if (!both[i]) continue;
        const citer_backend_info *in = citer_backend_get_info(both[i]);
        if (in->context < r->context) r->context = in->context;
        if (in->vocab < r->vocab) r->vocab = in->vocab;
        add_eos(r, both[i]);
    }
    if (o->router) r->scratch = xmalloc(citer_router_scratch_len(o->router) * sizeof *r->scratch);
    return r;
}

void citer_route_free(citer_route *r)
{
    if (!r) return;
    free(r->scratch);
    free(r);
}

void citer_route_result_free(citer_route_result *res)
{
    free(res->tokens);
    free(res->trace);
    free(res->scores);
    memset(res, 0, sizeof *res);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The sampling seed of one model at one step: a function of (seed, seq, step, model) only. */
static uint64_t step_seed(const citer_route *r, uint64_t seq, int step, int model)
{
    uint64_t x = r->o.seed ^ (seq * 0xD1B54A32D192ED03ull) ^ ((uint64_t)step << 1 | (uint64_t)model);
    return splitmix64(&x) & INT64_MAX;
}

static int is_eos(const citer_route *r, int32_t id)
{
    for (int i = 0; i < r->n_eos; i++)
        if (r->eos[i] == id) return 1;
    return 0;
}

static int hit_stop(const citer_route *r, const int32_t *ids, int n)
{
    size_t len;
    char *text = citer_decode(r->o.tok, ids, (size_t)n, 0, &len);
    if (!text) return 0;
    int hit = 0;
    for (int i = 0; i < r->o.n_stops && !hit; i++)
        hit = memmem(text, len, r->o.stops[i], strlen(r->o.stops[i])) != NULL;
    free(text);
    return hit;
}

/* Prefix the error of a failed model call with the model's name. */
static int model_failed(const char *who)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", who, citer_error());
    citer_set_error("%s", msg);
    return -1;
}

int citer_route_prompt(citer_route *r, uint64_t seq, const int32_t *prompt, int n_prompt, citer_route_result *res)
{
    return citer_route_prompt_from(r, seq, prompt, n_prompt, 0, res);
}

/* The models the route runs, with their names for errors. */
static int models(const citer_route *r, citer_backend **b, const char **who)
{
    int n = 0;
    if (r->slm) b[n] = r->slm, who[n++] = "slm";
    if (r->llm) b[n] = r->llm, who[n++] = "llm";
    return n;
}

/* 0, or -1 + citer_error() naming the first token outside the shared vocabulary. */
static int check_tokens(const citer_route *r, const int32_t *tokens, int n)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= r->vocab) {
            citer_set_error("prompt token %d at index %d is out of range (vocabulary %d)", tokens[i], i, r->vocab);
            return -1;
        }
    return 0;
}

int citer_route_base(citer_route *r, uint64_t base, const int32_t *tokens, int n)
{
    if (n < 1 || n > r->context) {
        citer_set_error("base sequence of %d tokens (context length %d)", n, r->context);
        return -1;
    }
    if (check_tokens(r, tokens, n) != 0) return -1;
    citer_backend *b[2];
    const char *who[2];
    int k = models(r, b, who);
    for (int i = 0; i < k; i++) {
        citer_backend_step st;
        if (citer_backend_append(b[i], base, tokens, n, 0, NULL, &st) != 0) return model_failed(who[i]);
    }
    return 0;
}

int citer_route_fork(citer_route *r, uint64_t seq, uint64_t base, int len)
{
    citer_backend *b[2];
    const char *who[2];
    int k = models(r, b, who);
    for (int i = 0; i < k; i++)
        if (citer_backend_fork(b[i], seq, base) != 0 || citer_backend_truncate(b[i], seq, len) != 0)
            return model_failed(who[i]);
    return 0;
}

int citer_route_drop(citer_route *r, uint64_t seq)
{
    citer_backend *b[2];
    const char *who[2];
    int k = models(r, b, who);
    for (int i = 0; i < k; i++)
        if (citer_backend_drop(b[i], seq) != 0) return model_failed(who[i]);
    return 0;
}

int citer_route_prompt_from(citer_route *r, uint64_t seq, const int32_t *prompt, int n_prompt, int have,
                            citer_route_result *res)
{
    const citer_route_opts *o = &r->o;
    memset(res, 0, sizeof *res);
    res->n_prompt = n_prompt;
    res->query_score = -1;
    res->stop = "max";
    if (n_prompt < 1) {
        citer_set_error("empty prompt");
        return -1;
    }
    if (n_prompt > r->context) {
        citer_set_error("prompt of %d tokens is over the context length %d", n_prompt, r->context);
        return -1;
    }
    if (check_tokens(r, prompt, n_prompt) != 0) return -1;
    if (have < 0 || have >= n_prompt) {
        citer_set_error("the sequence holds %d of the prompt's %d tokens: nothing to append", have, n_prompt);
        return -1;
    }
    int max = o->max_tokens < r->context - n_prompt ? o->max_tokens : r->context - n_prompt;
    int32_t *all = xmalloc((size_t)(n_prompt + max + 1) * sizeof *all); /* prompt, then generated */
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    res->tokens = xmalloc((size_t)(max + 1) * sizeof *res->tokens);
    res->trace = xmalloc((size_t)(max + 1) * 3 * sizeof *res->trace);
    res->scores = xmalloc((size_t)(max + 1) * 2 * sizeof *res->scores);

    int sampling = o->temperature > 0;
    citer_backend_sample smp = {o->temperature, o->top_k, o->top_p, 0};
    uint64_t rng = o->seed ^ (seq * 0x9E3779B97F4A7C15ull); /* the random policy's draws */
    int want_hidden = o->router != NULL;
    int rc = 0, slm_live = r->slm != NULL, llm_len = have, all_llm = 0;
    citer_backend_step ss = {0}, ls;
    double t;

    if (max > 0 && slm_live) {
        smp.seed = step_seed(r, seq, 0, 0);
        t = now_seconds();
        rc = citer_backend_append(r->slm, seq, prompt + have, n_prompt - have, want_hidden, sampling ? &smp : NULL,
                                  &ss);
        res->t_slm += now_seconds() - t;
        if (rc) goto slm_fail;
        res->slm_ingested += n_prompt - have;
    }
    for (int i = 0; i < max; i++) {
        int pos = n_prompt + i; /* the position this step writes */
        int32_t slm_tok = -1, llm_tok = -1;
        float score = -1, slm_p = -1;
        if (slm_live) {
            slm_tok = sampling ? ss.sampled : ss.next;
            slm_p = ss.p;
            if (o->router && ss.hidden) {
                t = now_seconds();
                score = citer_router_score_with(o->router, ss.hidden, r->scratch);
                res->t_router += now_seconds() - t;
                res->router_calls++;
            }
        }
        int use_llm = 0;
        switch (o->policy) {
        case CITER_POLICY_ROUTER: use_llm = score < o->threshold; break;
        case CITER_POLICY_SLM: use_llm = 0; break;
        case CITER_POLICY_LLM: use_llm = 1; break;
        case CITER_POLICY_RANDOM: use_llm = (double)(splitmix64(&rng) >> 11) * 0x1p-53 < o->param; break;
        case CITER_POLICY_CONFIDENCE: use_llm = slm_p < o->param; break;
        case CITER_POLICY_QUERY:
            if (i == 0) {
                res->query_score = score;
                all_llm = score < o->param;
            }
            use_llm = all_llm;
            score = res->query_score;
            break;
        }
        if (use_llm) {
            /* Lazy sync: everything the LLM has not seen yet, in one append. */
            int k = pos - llm_len;
            for (int j = llm_len; j < pos; j++)
                if (j >= n_prompt && res->trace[(j - n_prompt) * 3] == 0) res->catchup++;
            smp.seed = step_seed(r, seq, i, 1);
            t = now_seconds();
            rc = citer_backend_append(r->llm, seq, all + llm_len, k, 0, sampling ? &smp : NULL, &ls);
            res->t_llm += now_seconds() - t;
            if (rc) goto llm_fail;
            res->llm_calls++;
            res->llm_ingested += k;
            llm_len = pos;
            llm_tok = sampling ? ls.sampled : ls.next;
            res->llm_tokens++;
        }
        int32_t tok = use_llm ? llm_tok : slm_tok;
        all[pos] = tok;
        res->tokens[i] = tok;
        res->trace[i * 3] = use_llm;
        res->trace[i * 3 + 1] = slm_tok;
        res->trace[i * 3 + 2] = llm_tok;
        res->scores[i * 2] = score;
        res->scores[i * 2 + 1] = slm_p;
        res->n = i + 1;
        if (!o->ignore_eos && is_eos(r, tok)) {
            res->stop = "eos";
            break;
        }
        if (o->n_stops && hit_stop(r, res->tokens, res->n)) {
            res->stop = "stop";
            break;
        }
        if (i + 1 == max) break;
        if (o->policy == CITER_POLICY_QUERY && all_llm) slm_live = 0; /* the SLM has no more say */
        if (slm_live) {
            if (tok >= r->vocab) {
                citer_set_error("llm: token %d is outside the small model's vocabulary (%d)", tok, r->vocab);
                rc = -1;
                goto out;
            }
            smp.seed = step_seed(r, seq, i + 1, 0);
            t = now_seconds();
            rc = citer_backend_append(r->slm, seq, &tok, 1, want_hidden, sampling ? &smp : NULL, &ss);
            res->t_slm += now_seconds() - t;
            if (rc) goto slm_fail;
            res->slm_ingested++;
        }
    }
    /* Forget the sequence in both models. */
    if (r->slm && (have || res->slm_ingested) && citer_backend_drop(r->slm, seq) != 0) goto slm_fail;
    if (r->llm && (have || res->llm_calls) && citer_backend_drop(r->llm, seq) != 0) goto llm_fail;
    goto out;
slm_fail:
    rc = model_failed("slm");
    goto out;
llm_fail:
    rc = model_failed("llm");
out:
    free(all);
    return rc;
}

void citer_route_stats_add(citer_route_stats *s, const citer_route_result *res)
{
    s->prompts++;
    s->tokens += (uint64_t)res->n;
    s->llm_calls += (uint64_t)res->llm_calls;
    s->llm_tokens += (uint64_t)res->llm_tokens;
    s->catchup += (uint64_t)res->catchup;
    s->llm_ingested += (uint64_t)res->llm_ingested;
    s->slm_ingested += (uint64_t)res->slm_ingested;
    s->router_calls += (uint64_t)res->router_calls;
    s->t_slm += res->t_slm;
    s->t_llm += res->t_llm;
    s->t_router += res->t_router;
}

static json_object *jnum(double d, const char *fmt)
{
    char buf[48];
    if (!isfinite(d)) d = 0;
    snprintf(buf, sizeof buf, fmt, d);
    return json_object_new_double_s(d, buf);
}

char *citer_route_stats_json(const citer_route_stats *s, double seconds, const citer_route_opts *o)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("stats"));
    json_object_object_add(m, "policy", json_object_new_string(citer_policy_name(o->policy)));
    if (o->policy == CITER_POLICY_ROUTER) json_object_object_add(m, "threshold", jnum(o->threshold, "%.9g"));
    if (o->policy == CITER_POLICY_RANDOM || o->policy == CITER_POLICY_CONFIDENCE || o->policy == CITER_POLICY_QUERY)
        json_object_object_add(m, "param", jnum(o->param, "%.9g"));
    json_object_object_add(m, "prompts", json_object_new_int64((int64_t)s->prompts));
    json_object_object_add(m, "tokens", json_object_new_int64((int64_t)s->tokens));
    json_object_object_add(m, "llm_calls", json_object_new_int64((int64_t)s->llm_calls));
    json_object_object_add(m, "llm_tokens", json_object_new_int64((int64_t)s->llm_tokens));
    json_object_object_add(m, "llm_token_ratio",
                           jnum(s->tokens ? (double)s->llm_tokens / (double)s->tokens : 0, "%.6f"));
    json_object_object_add(m, "catchup_tokens", json_object_new_int64((int64_t)s->catchup));
    json_object_object_add(m, "llm_ingested", json_object_new_int64((int64_t)s->llm_ingested));
    json_object_object_add(m, "slm_ingested", json_object_new_int64((int64_t)s->slm_ingested));
    json_object_object_add(m, "router_calls", json_object_new_int64((int64_t)s->router_calls));
    json_object_object_add(m, "slm_seconds", jnum(s->t_slm, "%.6f"));
    json_object_object_add(m, "llm_seconds", jnum(s->t_llm, "%.6f"));
    json_object_object_add(m, "router_seconds", jnum(s->t_router, "%.6f"));
    json_object_object_add(m, "router_us_per_token",
                           jnum(s->router_calls ? s->t_router * 1e6 / (double)s->router_calls : 0, "%.3f"));
    json_object_object_add(m, "seconds", jnum(seconds, "%.6f"));
    json_object_object_add(m, "tokens_per_second", jnum(seconds > 0 ? (double)s->tokens / seconds : 0, "%.3f"));
    char *text = xstrdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    json_object_put(m);
    return text;
}
