/* bpe: the merge table and the two merge algorithms.
 *
 * Rank BPE (Hugging Face BPE, GGUF "gpt2"): the symbols of a pre-token start as single
 * tokens; the adjacent pair with the lowest merge rank is merged, the leftmost on ties, until
 * no pair has a merge. A min-heap of (rank, position) with lazy invalidation keeps this
 * O(n log n); the pair table is an open-addressing hash keyed by (left id, right id).
 *
 * Score BPE (SentencePiece as llama.cpp runs it on GGUF "llama"): symbols start as UTF-8
 * characters; the adjacent pair whose concatenation is a token with the highest score is
 * merged, the leftmost on ties. */
#include "tokenizer_impl.h"
#include "unicode.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY_KEY UINT64_MAX

static size_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static void merges_rehash(citer_tokenizer *t, size_t slots)
{
    merge_slot *old = t->merges;
    size_t old_n = old ? t->mmask + 1 : 0;
    t->merges = xmalloc(slots * sizeof *t->merges);
    for (size_t i = 0; i < slots; i++) t->merges[i].key = EMPTY_KEY;
    t->mmask = slots - 1;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].key == EMPTY_KEY) continue;
        size_t h = mix(old[i].key) & t->mmask;
        while (t->merges[h].key != EMPTY_KEY) h = (h + 1) & t->mmask;
        t->merges[h] = old[i];
    }
    free(old);
}

/* Adds the next merge (its rank is the number added so far). Returns 1 if added, 0 if the
 * pair was already present (the earlier, lower rank wins). */
int merges_add(citer_tokenizer *t, int32_t left, int32_t right, int32_t merged)
{
    if (!t->merges || (t->n_merges + 1) * 2 > t->mmask + 1) merges_rehash(t, t->merges ? (t->mmask + 1) * 2 : 1024);
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t h = mix(key) & t->mmask;
    while (t->merges[h].key != EMPTY_KEY) {
        if (t->merges[h].key == key) return 0;
        h = (h + 1) & t->mmask;
    }
    t->merges[h].key = key;
    t->merges[h].rank = (int32_t)t->n_merges++;
    t->merges[h].merged = merged;
    return 1;
}

const merge_slot *merges_find(const citer_tokenizer *t, int32_t left, int32_t right)
{
    if (!t->merges) return NULL;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t h = mix(key) & t->mmask;
    for (;;) {
        const merge_slot *s = &t->merges[h];
        if (s->key == key) return s;
        if (s->key == EMPTY_KEY) return NULL;
        h = (h + 1) & t->mmask;
    }
}

/* ---- rank BPE ---- */

typedef struct {
    int32_t rank;
    int32_t pos;
} rank_ent;

static int rank_less(rank_ent a, rank_ent b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void rheap_push(rank_ent *h, size_t *n, rank_ent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!rank_less(e, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static rank_ent rheap_pop(rank_ent *h, size_t *n)
{
    rank_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && rank_less(h[c + 1], h[c])) c++;
        if (!rank_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

size_t bpe_merge(const citer_tokenizer *t, int32_t *ids, size_t n)
{
    if (n < 2) return n;
    enum { SMALL = 128 };
    int32_t nxt_s[SMALL], prv_s[SMALL];
    rank_ent heap_s[3 * SMALL];
    int32_t *nxt = nxt_s, *prv = prv_s;
    rank_ent *heap = heap_s;
    if (n > SMALL) {
        nxt = xmalloc(n * sizeof *nxt);
        prv = xmalloc(n * sizeof *prv);
        heap = xmalloc(3 * n * sizeof *heap);
    }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        nxt[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prv[i] = (int32_t)i - 1;
        if (i + 1 < n) {
            const merge_slot *m = merges_find(t, ids[i], ids[i + 1]);
            if (m) rheap_push(heap, &nh, (rank_ent){m->rank, (int32_t)i});
        }
    }
    while (nh) {
        rank_ent e = rheap_pop(heap, &nh);
        int32_t i = e.pos, j = nxt[i];
        if (ids[i] < 0 || j < 0) continue;
        const merge_slot *m = merges_find(t, ids[i], ids[j]);
        if (!m || m->rank != e.rank) continue; /* stale entry */
        ids[i] = m->merged;
        ids[j] = -1;
        nxt[i] = nxt[j];
        if (nxt[j] >= 0) prv[nxt[j]] = i;
        if (prv[i] >= 0 && (m = merges_find(t, ids[prv[i]], ids[i]))) rheap_push(heap, &nh, (rank_ent){m->rank, prv[i]});
        if (nxt[i] >= 0 && (m = merges_find(t, ids[i], ids[nxt[i]]))) rheap_push(heap, &nh, (rank_ent){m->rank, i});
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = nxt[i]) ids[k++] = ids[i];
    if (n > SMALL) {
        free(nxt);
        free(prv);
        free(heap);
    }
    return k;
}

/* ---- score BPE ---- */

typedef struct {
    float score;
    int32_t left;
    uint32_t size;
} score_ent;

static int score_before(score_ent a, score_ent b) { return a.score > b.score || (a.score == b.score && a.left < b.left); }

static void sheap_push(score_ent **h, size_t *n, size_t *cap, score_ent e)
{
    if (*n == *cap) xgrow((void **)h, cap, *n + 1, sizeof **h);
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!score_before(e, (*h)[p])) break;
        (*h)[i] = (*h)[p];
        i = p;
    }
    (*h)[i] = e;
}

static score_ent sheap_pop(score_ent *h, size_t *n)
{
    score_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && score_before(h[c + 1], h[c])) c++;
        if (!score_before(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

typedef struct {
    size_t off, len;
    int32_t prev, next;
} spm_sym;

static void emit(int32_t **ids, size_t *n_ids, size_t *cap, int32_t id)
{
    if (*n_ids == *cap) xgrow((void **)ids, cap, *n_ids + 1, sizeof **ids);
    (*ids)[(*n_ids)++] = id;
}

static void try_bigram(const citer_tokenizer *t, const char *s, const spm_sym *sym, int32_t l, int32_t r,
                       score_ent **h, size_t *nh, size_t *hcap)
{
    if (l < 0 || r < 0) return;
    size_t size = sym[l].len + sym[r].len;
    int32_t id = tok_lookup(t, s + sym[l].off, size);
    if (id < 0) return;
    sheap_push(h, nh, hcap, (score_ent){t->score ? t->score[id] : 0.0f, l, (uint32_t)size});
}

void spm_encode(const citer_tokenizer *t, const char *s, size_t n, int32_t **ids, size_t *n_ids, size_t *cap)
{
    if (n == 0) return;
    spm_sym *sym = xmalloc(n * sizeof *sym);
    int32_t m = 0;
    for (size_t off = 0; off < n; m++) {
        size_t len = (size_t)utf8_len((uint8_t)s[off]);
        if (len > n - off) len = n - off;
        sym[m] = (spm_sym){off, len, m - 1, -1};
        if (m > 0) sym[m - 1].next = m;
        off += len;
    }
    score_ent *h = NULL;
    size_t nh = 0, hcap = 0;
    for (int32_t i = 1; i < m; i++) try_bigram(t, s, sym, i - 1, i, &h, &nh, &hcap);
    while (nh) {
        score_ent e = sheap_pop(h, &nh);
        int32_t l = e.left, r = sym[l].next;
        if (sym[l].len == 0 || r < 0 || sym[l].len + sym[r].len != e.size) continue;
        sym[l].len += sym[r].len;
        sym[r].len = 0;
        sym[l].next = sym[r].next;
        if (sym[r].next >= 0) sym[sym[r].next].prev = l;
        try_bigram(t, s, sym, sym[l].prev, l, &h, &nh, &hcap);
        try_bigram(t, s, sym, l, sym[l].next, &h, &nh, &hcap);
    }
    for (int32_t i = 0; i >= 0 && i < m; i = sym[i].next) {
        int32_t id = tok_lookup(t, s + sym[i].off, sym[i].len);
        if (id >= 0) {
            emit(ids, n_ids, cap, id);
            continue;
        }
        /* only single characters can be missing: fall back to their bytes */
        for (size_t k = 0; k < sym[i].len; k++) {
            int32_t b = t->byte_tok[(uint8_t)s[sym[i].off + k]];
            if (b < 0) b = t->unk;
            if (b >= 0) emit(ids, n_ids, cap, b);
        }
    }
    free(h);
    free(sym);
}
