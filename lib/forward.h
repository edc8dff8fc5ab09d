/* forward: the transformer forward pass, llama2.c style, for many positions at once (prefill,
 * matrix-matrix) or one (decode, matrix-vector). */
#ifndef CITER_FORWARD_H
#define CITER_FORWARD_H

#include "kvcache.h"
#include "model.h"

/* Feed n tokens to sequence s at positions s->len .. s->len+n-1 and extend it.
 * hidden: NULL or n x D floats, the final hidden state after the last RMSNorm per position.
 * logits: NULL, or (all_logits ? n : 1) x V floats (the last position only when !all_logits).
 * Returns 0, or -1 with citer_error() (token id out of range, context length exceeded). */
int citer_forward(const citer_model *m, citer_seq *s, const int32_t *tokens, int n, float *hidden, float *logits,
                  int all_logits);

#endif
