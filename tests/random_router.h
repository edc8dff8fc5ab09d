/* random_router: a router with pseudo-random weights (one hidden layer of 16), so that its
 * scores vary with the hidden state: for tests of routed decoding. */
#ifndef CITER_TEST_RANDOM_ROUTER_H
#define CITER_TEST_RANDOM_ROUTER_H

#include <stdint.h>

#include "router.h"

static citer_router *random_router(int dim, uint64_t seed)
{
    int hidden = 16;
    citer_router *r = citer_router_new(dim, 1, &hidden);
    uint64_t x = seed;
    for (int k = 0; k <= 1; k++) {
        citer_router_layer *L = &r->layer[k];
        for (int i = 0; i < L->out * L->in; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            L->weight[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * (k ? 2.0f : 1.0f);
        }
    }
    citer_router_prepare(r);
    return r;
}

#endif
