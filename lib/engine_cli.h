/* engine_cli: the one program behind citer-slm and citer-llm (see citer-slm(1), citer-llm(1)):
 * generation, teacher-forced scoring and a request/response server over citer streams.
 * The two names differ only in defaults: citer-slm emits hidden states, citer-llm does not. */
#ifndef CITER_ENGINE_CLI_H
#define CITER_ENGINE_CLI_H

#include <stdint.h>

#include "kvcache.h"
#include "model.h"
#include "tokenizer.h"

/* A loaded model with what the tools need beside it. */
typedef struct citer_engine {
    citer_model *model;
    citer_tokenizer *tok; /* NULL when the model has no usable tokenizer */
    int32_t eos[8];       /* every token that ends a generation */
    int n_eos;
    int hidden;           /* emit hidden states unless told otherwise */
    uint64_t seed;        /* sampling seed */
} citer_engine;

/* Fill e->eos from the model's eos id and, with a tokenizer, its eos and the end-of-turn tokens
 * found by text (<|im_end|>, <|endoftext|>, <|eot_id|>, ...). */
void citer_engine_find_eos(citer_engine *e);
int citer_engine_is_eos(const citer_engine *e, int32_t id);

/* Feed n tokens to s in chunks. hidden_last / logits_last (may be NULL): D / V floats of the
 * last position. argmax: NULL or n ids, the argmax predicting the position after each token.
 * On failure s is restored to its old length; -1 with citer_error(). */
int citer_engine_feed(const citer_engine *e, citer_seq *s, const int32_t *tokens, int n,
                      float *hidden_last, float *logits_last, int32_t *argmax);

/* main() of both tools; is_slm picks the name, the environment variable and the defaults. */
int engine_main(int argc, char **argv, int is_slm);

#endif
