/* backend: one model as the router drives it, either loaded in this process or a coprocess
 * that speaks the serve protocol (SERVE PROTOCOL in citer-llm(1)) over its stdin and stdout.
 *
 * Both kinds answer the same calls with the same numbers: the in-process backend runs the code
 * of citer-slm --serve (citer_engine_feed, greedy argmax with its probability, the seeded
 * sampler) without the pipe, so --slm PATH is equivalent to --slm-cmd 'citer-slm --serve -m
 * PATH', only faster. A coprocess sees exactly one request at a time.
 *
 * Coprocesses are started with /bin/sh -c CMD; their stdin and stdout are pipes, stderr is
 * shared. The caller must ignore SIGPIPE (a dead child then shows up as EPIPE, which is
 * reported, instead of ending the caller silently). A backend that failed (the child died,
 * answered garbage or an error) is marked broken: later calls fail at once, and closing it
 * only closes the pipes and reaps the child. */
#ifndef CITER_BACKEND_H
#define CITER_BACKEND_H

#include <stdint.h>

#include "tokenizer.h"

#define CITER_BACKEND_MAX_EOS 8

typedef struct {
    int vocab;       /* vocabulary size */
    int dim;         /* hidden size D */
    int context;     /* context length */
    int32_t bos;     /* -1 if none */
    int32_t eos[CITER_BACKEND_MAX_EOS]; /* every token that ends a generation */
    int n_eos;
    char description[256];
} citer_backend_info;

/* Sampling for one append: the token is drawn from softmax(logits / temperature) restricted by
 * top_k / top_p with a generator seeded by seed (as the serve protocol's "sample" member). */
typedef struct {
    float temperature; /* > 0 */
    int top_k;         /* 0 = all */
    float top_p;       /* 1 = all */
    uint64_t seed;     /* only the low 63 bits count (the protocol's seeds are int64 >= 0) */
} citer_backend_sample;

/* The answer to an append. */
typedef struct {
    int len;              /* length of the sequence after the append */
    int32_t next;         /* greedy next token (argmax of the last position's logits) */
    float p;              /* its probability under softmax(logits) */
    int32_t sampled;      /* the sampled token when sampling was asked, else -1 */
    const float *hidden;  /* D floats of the last position's final hidden state when asked,
                           * else NULL; owned by the backend, valid until its next call */
} citer_backend_step;

typedef struct citer_backend citer_backend;

/* A model file or directory loaded in this process. NULL + citer_error(). */
citer_backend *citer_backend_load(const char *path);
/* A coprocess: /bin/sh -c cmd, asked for "info" at once. NULL + citer_error() (the child is
 * reaped) when it cannot be started or does not answer properly. */
citer_backend *citer_backend_spawn(const char *cmd);

const citer_backend_info *citer_backend_get_info(const citer_backend *b);
/* The model's tokenizer (in-process backends with one), else NULL. */
const citer_tokenizer *citer_backend_tokenizer(const citer_backend *b);
int citer_backend_is_process(const citer_backend *b);

/* Append n >= 1 tokens to sequence seq (created when new) and predict the next token.
 * sample may be NULL (greedy only). 0, or -1 + citer_error(). */
int citer_backend_append(citer_backend *b, uint64_t seq, const int32_t *tokens, int n, int want_hidden,
                         const citer_backend_sample *sample, citer_backend_step *out);
/* Forget sequence seq. 0, or -1 + citer_error(). */
int citer_backend_drop(citer_backend *b, uint64_t seq);
/* Make seq a copy of sequence from (which must exist); what seq held before is replaced. The
 * KV cache pages are shared copy-on-write, so forking a long prefix costs no forward pass (the
 * serve protocol's "fork"). Sequence ids are int64 >= 0 for coprocesses. 0, or -1 +
 * citer_error(). */
int citer_backend_fork(citer_backend *b, uint64_t seq, uint64_t from);
/* Keep the first len positions of sequence seq (len <= its length; "truncate"). The next
 * append continues from position len. 0, or -1 + citer_error(). */
int citer_backend_truncate(citer_backend *b, uint64_t seq, int len);

/* Calls answered so far (appends, drops, forks, truncates; the opening info request not counted). */
uint64_t citer_backend_requests(const citer_backend *b);

/* Close the backend and free it (NULL is fine). A healthy coprocess gets a clean end of its
 * request stream (END record, then EOF on its stdin); its remaining output is read to its end
 * and it is reaped. Returns 0, or -1 + citer_error() when the child did not end cleanly
 * (exit status other than 0) or its last output was not a clean end of stream. */
int citer_backend_close(citer_backend *b);

#endif
