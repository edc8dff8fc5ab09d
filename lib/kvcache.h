/* kvcache: the keys and values of one sequence, in pages shared copy-on-write between forks,
 * so a rollout can fork a long prefix for the price of a pointer copy. */
#ifndef CITER_KVCACHE_H
#define CITER_KVCACHE_H

#include "model.h"

#define CITER_KV_PAGE 64 /* positions per page */

typedef struct citer_kv_page citer_kv_page;

typedef struct citer_seq {
    const citer_model *model;
    int len;               /* positions filled */
    int n_pages, cap_pages;
    citer_kv_page **pages;
    int layer_stride;      /* floats per layer in a page: 2 * CITER_KV_PAGE * kv_dim */
} citer_seq;

citer_seq *citer_seq_new(const citer_model *m);
void citer_seq_free(citer_seq *s);
/* Forget positions n.. (n <= len). */
void citer_seq_truncate(citer_seq *s, int n);
/* A new sequence with the same positions; pages are shared until either side writes. */
citer_seq *citer_seq_fork(const citer_seq *s);
/* Pointers to the key / value vectors [kv_dim] of position p in layer l. The writable form
 * makes the page private first (copy on write); p may be len..len+n for a write. */
float *citer_seq_k_write(citer_seq *s, int layer, int p);
float *citer_seq_v_write(citer_seq *s, int layer, int p);
const float *citer_seq_k(const citer_seq *s, int layer, int p);
const float *citer_seq_v(const citer_seq *s, int layer, int p);

#endif
