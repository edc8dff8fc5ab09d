#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct citer_kv_page {
    int refs;
    float data[]; /* [layer][k | v][position in page][kv_dim] */
};

static size_t page_floats(const citer_seq *s) { return (size_t)s->layer_stride * s->model->cfg.n_layers; }

citer_seq *citer_seq_new(const citer_model *m)
{
    citer_seq *s = xcalloc(1, sizeof *s);
    s->model = m;
    s->layer_stride = 2 * CITER_KV_PAGE * m->cfg.n_kv_heads * m->cfg.head_dim;
    return s;
}

static void page_release(citer_kv_page *p)
{
    if (p && --p->refs == 0) free(p);
}

void citer_seq_free(citer_seq *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_pages; i++) page_release(s->pages[i]);
    free(s->pages);
    free(s);
}

void citer_seq_truncate(citer_seq *s, int n)
{
    if (n < 0) n = 0;
    if (n >= s->len) return;
    s->len = n;
    int keep = (n + CITER_KV_PAGE - 1) / CITER_KV_PAGE;
    for (int i = keep; i < s->n_pages; i++) page_release(s->pages[i]);
    if (keep < s->n_pages) s->n_pages = keep;
}

citer_seq *citer_seq_fork(const citer_seq *s)
{
    citer_seq *f = xcalloc(1, sizeof *f);
    *f = *s;
    f->cap_pages = s->n_pages;
    f->pages = xmalloc((size_t)(s->n_pages ? s->n_pages : 1) * sizeof *f->pages);
    for (int i = 0; i < s->n_pages; i++) {
        f->pages[i] = s->pages[i];
        f->pages[i]->refs++;
    }
    return f;
}

/* The page holding position p, private to this sequence and allocated if new. */
static citer_kv_page *writable_page(citer_seq *s, int p)
{
    int pi = p / CITER_KV_PAGE;
    size_t bytes = sizeof(citer_kv_page) + page_floats(s) * sizeof(float);
    while (s->n_pages <= pi) {
        if (s->n_pages == s->cap_pages) {
            s->cap_pages = s->cap_pages ? 2 * s->cap_pages : 8;
            s->pages = xrealloc(s->pages, (size_t)s->cap_pages * sizeof *s->pages);
        }
        citer_kv_page *np = xmalloc(bytes);
        np->refs = 1;
        s->pages[s->n_pages++] = np;
    }
    citer_kv_page *pg = s->pages[pi];
    if (pg->refs > 1) {
        citer_kv_page *copy = xmalloc(bytes);
        memcpy(copy, pg, bytes);
        copy->refs = 1;
        pg->refs--;
        s->pages[pi] = copy;
        pg = copy;
    }
    return pg;
}

static size_t slot(const citer_seq *s, int layer, int kv, int p)
{
    int kv_dim = s->model->cfg.n_kv_heads * s->model->cfg.head_dim;
    return (size_t)layer * s->layer_stride + ((size_t)kv * CITER_KV_PAGE + (size_t)(p % CITER_KV_PAGE)) * kv_dim;
}

float *citer_seq_k_write(citer_seq *s, int layer, int p) { return writable_page(s, p)->data + slot(s, layer, 0, p); }
float *citer_seq_v_write(citer_seq *s, int layer, int p) { return writable_page(s, p)->data + slot(s, layer, 1, p); }
const float *citer_seq_k(const citer_seq *s, int layer, int p) { return s->pages[p / CITER_KV_PAGE]->data + slot(s, layer, 0, p); }
const float *citer_seq_v(const citer_seq *s, int layer, int p) { return s->pages[p / CITER_KV_PAGE]->data + slot(s, layer, 1, p); }
