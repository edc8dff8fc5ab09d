/* tokenizer: vocabulary index, encoding (added tokens, normalizers, pre-tokenizer, merges)
 * and decoding. The loaders in tokenizer_json.c and tokenizer_gguf.c fill the structure. */
#include "tokenizer_impl.h"
#include "unicode.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

/* ---- GPT-2 byte-to-unicode alphabet ---- */

/* Printable bytes stand for themselves; the others (0-32, 127-160, 173) take code points
 * 256, 257, ... in byte order. */
static int printable_byte(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t byte_to_cp(uint8_t b)
{
    if (printable_byte(b)) return b;
    unsigned k = 0;
    for (unsigned c = 0; c < b; c++)
        if (!printable_byte(c)) k++;
    return 256 + k;
}

int cp_to_byte(uint32_t cp)
{
    if (cp < 256) return printable_byte(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    unsigned k = cp - 256;
    for (unsigned c = 0; c < 256; c++)
        if (!printable_byte(c) && k-- == 0) return (int)c;
    return -1;
}

/* ---- construction ---- */

citer_tokenizer *tok_new(void)
{
    citer_tokenizer *t = xcalloc(1, sizeof *t);
    t->bos = t->eos = t->unk = -1;
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    pthread_mutex_init(&t->cache_lock, NULL);
    return t;
}

void tok_set_token(citer_tokenizer *t, int32_t id, const char *s, size_t n)
{
    free(t->text[id]);
    t->text[id] = xstrndup(s, n);
    t->tlen[id] = (uint32_t)n;
}

static size_t text_hash(const char *s, size_t n) { return (size_t)XXH3_64bits(s, n); }

int32_t tok_lookup(const citer_tokenizer *t, const char *s, size_t n)
{
    size_t h = text_hash(s, n) & t->hmask;
    for (;;) {
        int32_t id = t->hash[h];
        if (id < 0) return -1;
        if (t->tlen[id] == n && memcmp(t->text[id], s, n) == 0) return id;
        h = (h + 1) & t->hmask;
    }
}

/* Index every token text; a text given twice keeps the later id (as llama.cpp's map does). */
int tok_hash_build(citer_tokenizer *t, const char *where)
{
    (void)where;
    size_t slots = 1024;
    while (slots < (size_t)t->n_vocab * 2) slots *= 2;
    free(t->hash);
    t->hash = xmalloc(slots * sizeof *t->hash);
    for (size_t i = 0; i < slots; i++) t->hash[i] = -1;
    t->hmask = slots - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->text[id]) continue;
        size_t h = text_hash(t->text[id], t->tlen[id]) & t->hmask;
        for (;;) {
            int32_t o = t->hash[h];
            if (o < 0) {
                t->hash[h] = id;
                break;
            }
            if (t->tlen[o] == t->tlen[id] && memcmp(t->text[o], t->text[id], t->tlen[id]) == 0) {
                t->hash[h] = id;
                break;
            }
            h = (h + 1) & t->hmask;
        }
    }
    return 0;
}

static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Text with every ▁ (U+2581) replaced by a space. */
static char *unescape_spaces(const char *s, size_t n, uint32_t *out_len)
{
    char *o = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
            o[k++] = ' ';
            i += 3;
        } else {
            o[k++] = s[i++];
        }
    }
    o[k] = 0;
    *out_len = (uint32_t)k;
    return o;
}

/* Bytes of a byte-level token: each character mapped back through the alphabet; characters
 * outside it are kept as they are. */
static char *unmap_bytes(const char *s, size_t n, uint32_t *out_len)
{
    char *o = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int b = cp_to_byte(cp);
        if (b >= 0) {
            o[k++] = (char)b;
        } else {
            memcpy(o + k, s + i, (size_t)len);
            k += (size_t)len;
        }
        i += (size_t)len;
    }
    o[k] = 0;
    *out_len = (uint32_t)k;
    return o;
}

static int cmp_added(const void *a, const void *b)
{
    const tok_added *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int tok_finish(citer_tokenizer *t)
{
    tok_hash_build(t, "");
    t->dec = xcalloc((size_t)t->n_vocab, sizeof *t->dec);
    t->dlen = xcalloc((size_t)t->n_vocab, sizeof *t->dlen);
    t->byte_val = xmalloc((size_t)t->n_vocab * sizeof *t->byte_val);
    t->added_of = xmalloc((size_t)t->n_vocab * sizeof *t->added_of);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        t->byte_val[id] = -1;
        t->added_of[id] = -1;
    }
    qsort(t->added, t->n_added, sizeof *t->added, cmp_added);
    memset(t->added_first, 0, sizeof t->added_first);
    for (size_t i = 0; i < t->n_added; i++) {
        t->added_of[t->added[i].id] = (int32_t)i;
        if (t->added[i].len) t->added_first[(uint8_t)t->added[i].text[0]] = 1;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        if (!s) {
            t->dec[id] = xstrdup("");
            continue;
        }
        size_t n = t->tlen[id];
        int added = t->added_of[id] >= 0;
        if (t->decoder == DEC_GGUF) {
            int ty = t->type ? t->type[id] : TT_NORMAL;
            if (ty == TT_NORMAL) {
                t->dec[id] = t->byte_level ? unmap_bytes(s, n, &t->dlen[id]) : unescape_spaces(s, n, &t->dlen[id]);
            } else if (ty == TT_BYTE) {
                int v = parse_byte_token(s, n);
                t->byte_val[id] = (int16_t)v;
                if (v >= 0 && !t->byte_level) {
                    t->dec[id] = xmalloc(2);
                    t->dec[id][0] = (char)v;
                    t->dec[id][1] = 0;
                    t->dlen[id] = 1;
                } else {
                    t->dec[id] = xstrdup("");
                }
            } else if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER) {
                t->dec[id] = xstrndup(s, n);
                t->dlen[id] = (uint32_t)n;
            } else {
                t->dec[id] = xstrdup("");
            }
        } else if (added || t->decoder == DEC_HF_NONE) {
            t->dec[id] = xstrndup(s, n);
            t->dlen[id] = (uint32_t)n;
        } else if (t->decoder == DEC_HF_BYTELEVEL) {
            t->dec[id] = unmap_bytes(s, n, &t->dlen[id]);
        } else {
            t->byte_val[id] = t->byte_fallback ? (int16_t)parse_byte_token(s, n) : -1;
            t->dec[id] = unescape_spaces(s, n, &t->dlen[id]);
        }
    }
    for (int b = 0; b < 256; b++) {
        if (t->byte_level) {
            uint8_t u[4];
            int len = utf8_encode(byte_to_cp((uint8_t)b), u);
            t->byte_tok[b] = tok_lookup(t, (const char *)u, (size_t)len);
        } else {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_tok[b] = tok_lookup(t, name, 6);
        }
    }
    if (t->byte_level) t->cache = xcalloc(TOK_CACHE_SLOTS, sizeof *t->cache);
    return 0;
}

void citer_tokenizer_free(citer_tokenizer *t)
{
    if (!t) return;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        free(t->text[id]);
        if (t->dec) free(t->dec[id]);
    }
    free(t->text);
    free(t->tlen);
    free(t->dec);
    free(t->dlen);
    free(t->type);
    free(t->byte_val);
    free(t->score);
    free(t->hash);
    free(t->merges);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    free(t->added_of);
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
    }
    free(t->norm);
    if (t->cache) {
        for (size_t i = 0; i < TOK_CACHE_SLOTS; i++) free(t->cache[i].data);
        free(t->cache);
    }
    pthread_mutex_destroy(&t->cache_lock);
    free(t);
}

citer_tokenizer *citer_tokenizer_load(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        citer_set_error("%s: cannot open", path);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 32;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/tokenizer.json", path);
        citer_tokenizer *t = NULL;
        if (stat(p, &st) == 0) t = tok_load_json(p);
        else citer_set_error("%s: no tokenizer.json in this directory", path);
        free(p);
        return t;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        citer_set_error("%s: cannot open", path);
        return NULL;
    }
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) return tok_load_gguf(path);
    return tok_load_json(path);
}

/* ---- encoding ---- */

typedef struct {
    int32_t **ids;
    size_t *n, *cap;
    pretok_buf pb;
    int32_t *word;     /* scratch for one pre-token's symbols */
    size_t wcap;
    char *tmp;         /* scratch text */
    size_t tcap;
    int use_cache;
} enc_state;

static void out_id(enc_state *e, int32_t id)
{
    if (*e->n == *e->cap) xgrow((void **)e->ids, e->cap, *e->n + 1, sizeof **e->ids);
    (*e->ids)[(*e->n)++] = id;
}

static void word_push(enc_state *e, size_t *k, int32_t id)
{
    if (*k == e->wcap) xgrow((void **)&e->word, &e->wcap, *k + 1, sizeof *e->word);
    e->word[(*k)++] = id;
}

static void cache_put(citer_tokenizer *t, uint64_t h, const char *s, size_t n, const int32_t *ids, size_t k)
{
    cache_slot *c = &t->cache[h & (TOK_CACHE_SLOTS - 1)];
    free(c->data);
    c->data = xmalloc(n + k * sizeof(int32_t));
    memcpy(c->data, s, n);
    memcpy(c->data + n, ids, k * sizeof(int32_t));
    c->h = h;
    c->klen = (uint32_t)n;
    c->nids = (uint32_t)k;
}

/* One pre-token through the model. */
static void encode_word(const citer_tokenizer *t, enc_state *e, const char *s, size_t n)
{
    uint64_t h = 0;
    if (e->use_cache && n <= TOK_CACHE_MAXKEY) {
        h = XXH3_64bits(s, n);
        const cache_slot *c = &t->cache[h & (TOK_CACHE_SLOTS - 1)];
        if (c->data && c->h == h && c->klen == n && memcmp(c->data, s, n) == 0) {
            for (uint32_t i = 0; i < c->nids; i++) {
                int32_t id;
                memcpy(&id, c->data + n + i * sizeof id, sizeof id);
                out_id(e, id);
            }
            return;
        }
    }
    size_t k = 0;
    if (t->byte_level) {
        if (t->ignore_merges) {
            /* the whole pre-token, written in the byte alphabet, may be a token itself */
            if (e->tcap < 2 * n + 1) xgrow((void **)&e->tmp, &e->tcap, 2 * n + 1, 1);
            size_t m = 0;
            for (size_t i = 0; i < n; i++) m += (size_t)utf8_encode(byte_to_cp((uint8_t)s[i]), (uint8_t *)e->tmp + m);
            int32_t id = tok_lookup(t, e->tmp, m);
            if (id >= 0) {
                out_id(e, id);
                return;
            }
        }
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_tok[(uint8_t)s[i]];
            if (id >= 0) word_push(e, &k, id);
        }
    } else {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t len = (size_t)utf8_decode((const uint8_t *)s + i, n - i, &cp);
            int32_t id = tok_lookup(t, s + i, len);
            if (id >= 0) {
                word_push(e, &k, id);
            } else {
                int all = t->byte_fallback;
                for (size_t j = 0; all && j < len; j++) all = t->byte_tok[(uint8_t)s[i + j]] >= 0;
                if (all) {
                    for (size_t j = 0; j < len; j++) word_push(e, &k, t->byte_tok[(uint8_t)s[i + j]]);
                } else if (t->unk >= 0) {
                    word_push(e, &k, t->unk);
                }
            }
            i += len;
        }
    }
    k = bpe_merge(t, e->word, k);
    for (size_t i = 0; i < k; i++) out_id(e, e->word[i]);
    if (e->use_cache && n <= TOK_CACHE_MAXKEY) cache_put((citer_tokenizer *)t, h, s, n, e->word, k);
}

/* Replace every occurrence of a with b (a non-empty). */
static char *replace_all(const char *s, size_t n, const char *a, size_t an, const char *b, size_t bn, size_t *out_n)
{
    size_t cap = n + 1, k = 0;
    char *o = xmalloc(cap);
    for (size_t i = 0; i < n;) {
        if (an && i + an <= n && memcmp(s + i, a, an) == 0) {
            xgrow((void **)&o, &cap, k + bn + 1, 1);
            memcpy(o + k, b, bn);
            k += bn;
            i += an;
        } else {
            xgrow((void **)&o, &cap, k + 2, 1);
            o[k++] = s[i++];
        }
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

/* Metaspace: spaces become the replacement, which may also be prepended; with split, each
 * piece starts at a replacement (merged with what follows it). */
static void encode_metaspace(const citer_tokenizer *t, enc_state *e, const char *s, size_t n, int at_start)
{
    const char *rep = t->meta_rep;
    size_t rl = strlen(rep), m;
    char *r = replace_all(s, n, " ", 1, rep, rl, &m);
    if (m && (t->meta_prepend == 2 || (t->meta_prepend == 1 && at_start)) && (m < rl || memcmp(r, rep, rl) != 0)) {
        char *p = xmalloc(m + rl + 1);
        memcpy(p, rep, rl);
        memcpy(p + rl, r, m + 1);
        free(r);
        r = p;
        m += rl;
    }
    size_t start = 0;
    for (size_t i = 1; t->meta_split && i + rl <= m; i++) {
        if (memcmp(r + i, rep, rl) == 0) {
            encode_word(t, e, r + start, i - start);
            start = i;
        }
    }
    if (start < m) encode_word(t, e, r + start, m - start);
    free(r);
}

static int is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static void encode_pieces(const citer_tokenizer *t, enc_state *e, const char *s, size_t n, int at_start)
{
    if (t->metaspace) {
        encode_metaspace(t, e, s, n, at_start);
        return;
    }
    char *own = NULL;
    if (t->add_prefix_space && n > 0 && s[0] != ' ') {
        own = xmalloc(n + 1);
        own[0] = ' ';
        memcpy(own + 1, s, n);
        s = own;
        n++;
    }
    /* Long texts are pre-tokenized in windows to bound the scratch memory. A window ends only
     * at "x yz" with ASCII letters around the space: every one of the single-regex patterns
     * below ends a piece there, whatever follows. */
    int windowed = t->n_pre == 1 && (t->pre[0] == PT_GPT2 || t->pre[0] == PT_QWEN2 || t->pre[0] == PT_LLAMA3);
    const size_t W = (size_t)1 << 18;
    for (size_t base = 0; base < n;) {
        size_t len = n - base;
        if (windowed && len > 2 * W) {
            size_t cut = 0;
            for (size_t i = base + W; i + 2 < n && i < base + 2 * W; i++) {
                if (s[i] == ' ' && is_ascii_letter(s[i - 1]) && is_ascii_letter(s[i + 1])) {
                    cut = i;
                    break;
                }
            }
            if (cut) len = cut - base;
        }
        size_t np = pretokenize(t->pre, t->n_pre, (const uint8_t *)s + base, len, &e->pb);
        size_t start = 0;
        for (size_t p = 0; p < np; p++) {
            size_t end = e->pb.ends[p];
            encode_word(t, e, s + base + start, end - start);
            start = end;
        }
        base += len;
    }
    free(own);
}

/* Apply the normalizers; returns a malloc'd copy. */
static char *normalize(const citer_tokenizer *t, const char *s, size_t n, size_t *out_n)
{
    char *cur = xstrndup(s, n);
    size_t m = n;
    for (size_t i = 0; i < t->n_norm; i++) {
        const tok_norm *op = &t->norm[i];
        char *next = NULL;
        size_t nm = 0;
        if (op->op == NORM_NFC) {
            if (uc_nfc_quick(cur, m)) continue;
            next = uc_nfc(cur, m, &nm);
        } else if (op->op == NORM_PREPEND) {
            if (m == 0) continue;
            nm = op->alen + m;
            next = xmalloc(nm + 1);
            memcpy(next, op->a, op->alen);
            memcpy(next + op->alen, cur, m);
            next[nm] = 0;
        } else if (op->op == NORM_REPLACE) {
            next = replace_all(cur, m, op->a, op->alen, op->b, op->blen, &nm);
        } else if (op->op == NORM_LOWERCASE) {
            next = xmalloc(4 * m + 1);
            for (size_t j = 0; j < m;) {
                uint32_t cp;
                int len = utf8_decode((const uint8_t *)cur + j, m - j, &cp);
                if (cp >= UC_INVALID_BASE) {
                    next[nm++] = cur[j];
                } else {
                    nm += (size_t)utf8_encode(uc_lower(cp), (uint8_t *)next + nm);
                }
                j += (size_t)len;
            }
            next[nm] = 0;
        }
        if (next) {
            free(cur);
            cur = next;
            m = nm;
        }
    }
    *out_n = m;
    return cur;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

typedef struct {
    size_t start, end; /* text span, or the span the token consumed */
    int32_t id;        /* -1 for text */
} segment;

/* Split s at added tokens (those with the given normalized flag), leftmost-longest. */
static size_t split_added(const citer_tokenizer *t, const char *s, size_t n, int normalized, int parse_special,
                          segment **segs, size_t *cap)
{
    size_t ns = 0, text_start = 0;
    for (size_t i = 0; i < n;) {
        if (t->added_first[(uint8_t)s[i]]) {
            const tok_added *hit = NULL;
            for (size_t k = 0; k < t->n_added; k++) {
                const tok_added *a = &t->added[k];
                if (a->len == 0 || a->len > n - i || a->normalized != normalized) continue;
                if (a->special && !parse_special) continue;
                if (memcmp(s + i, a->text, a->len) == 0) {
                    hit = a;
                    break;
                }
            }
            if (hit) {
                size_t ms = i, me = i + hit->len;
                if (hit->lstrip)
                    while (ms > text_start && is_ws(s[ms - 1])) ms--;
                if (hit->rstrip)
                    while (me < n && is_ws(s[me])) me++;
                xgrow((void **)segs, cap, ns + 2, sizeof **segs);
                if (ms > text_start) (*segs)[ns++] = (segment){text_start, ms, -1};
                (*segs)[ns++] = (segment){ms, me, hit->id};
                i = text_start = me;
                continue;
            }
        }
        i++;
    }
    if (text_start < n) {
        xgrow((void **)segs, cap, ns + 1, sizeof **segs);
        (*segs)[ns++] = (segment){text_start, n, -1};
    }
    return ns;
}

static void encode_text(const citer_tokenizer *t, enc_state *e, const char *s, size_t n, int prev_special,
                        int parse_special, int at_start)
{
    if (t->model == TOK_SPM) {
        /* llama.cpp SPM: optional leading space, spaces written as ▁, then score merges */
        size_t need = 3 * (n + 1) + 1;
        if (e->tcap < need) xgrow((void **)&e->tmp, &e->tcap, need, 1);
        size_t m = 0;
        if (t->spm_space_prefix && prev_special) {
            memcpy(e->tmp, "\xe2\x96\x81", 3);
            m = 3;
        }
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(e->tmp + m, "\xe2\x96\x81", 3);
                m += 3;
            } else {
                e->tmp[m++] = s[i];
            }
        }
        spm_encode(t, e->tmp, m, e->ids, e->n, e->cap);
        return;
    }
    size_t m = n;
    char *norm = t->n_norm ? normalize(t, s, n, &m) : NULL;
    const char *p = norm ? norm : s;
    int has_norm_added = 0;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].normalized) has_norm_added = 1;
    if (has_norm_added) {
        segment *segs = NULL;
        size_t cap = 0;
        size_t ns = split_added(t, p, m, 1, parse_special, &segs, &cap);
        for (size_t i = 0; i < ns; i++) {
            if (segs[i].id >= 0) out_id(e, segs[i].id);
            else encode_pieces(t, e, p + segs[i].start, segs[i].end - segs[i].start, at_start && segs[i].start == 0);
        }
        free(segs);
    } else {
        encode_pieces(t, e, p, m, at_start);
    }
    free(norm);
}

int citer_encode(const citer_tokenizer *t, const char *text, size_t n, int flags, int32_t **ids, size_t *n_ids,
                 size_t *cap)
{
    *n_ids = 0;
    enc_state e = {0};
    e.ids = ids;
    e.n = n_ids;
    e.cap = cap;
    int add_bos = (flags & CITER_TOK_ADD_BOS) || ((flags & CITER_TOK_DEFAULTS) && t->add_bos);
    int add_eos = (flags & CITER_TOK_ADD_EOS) || ((flags & CITER_TOK_DEFAULTS) && t->add_eos);
    int parse_special = (flags & CITER_TOK_PARSE_SPECIAL) != 0;
    if (add_bos && t->bos >= 0) out_id(&e, t->bos);

    citer_tokenizer *mt = (citer_tokenizer *)t; /* the cache is the only mutable part */
    if (t->cache && pthread_mutex_trylock(&mt->cache_lock) == 0) e.use_cache = 1;

    segment *segs = NULL;
    size_t scap = 0;
    size_t ns = split_added(t, text, n, 0, parse_special, &segs, &scap);
    int prev_special = 1;
    for (size_t i = 0; i < ns; i++) {
        if (segs[i].id >= 0) {
            out_id(&e, segs[i].id);
            prev_special = 1;
        } else {
            encode_text(t, &e, text + segs[i].start, segs[i].end - segs[i].start, prev_special, parse_special,
                        segs[i].start == 0);
            prev_special = 0;
        }
    }
    free(segs);
    if (e.use_cache) pthread_mutex_unlock(&mt->cache_lock);

    if (add_eos && t->eos >= 0) out_id(&e, t->eos);
    pretok_buf_free(&e.pb);
    free(e.word);
    free(e.tmp);
    return 0;
}

/* ---- decoding ---- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) xgrow((void **)&b->p, &b->cap, b->n + n + 1, 1);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Lossy UTF-8 conversion of a byte run, appended to out. */
static void flush_lossy(sbuf *out, sbuf *run)
{
    if (!run->n) return;
    if (out->n + 3 * run->n + 1 > out->cap) xgrow((void **)&out->p, &out->cap, out->n + 3 * run->n + 1, 1);
    out->n += utf8_lossy((const uint8_t *)run->p, run->n, (uint8_t *)out->p + out->n);
    out->p[out->n] = 0;
    run->n = 0;
}

/* ByteFallback: a run of byte tokens is its bytes if they are valid UTF-8, else one U+FFFD
 * per byte. */
static void flush_bytes(sbuf *out, sbuf *run)
{
    int valid = 1;
    for (size_t i = 0; i < run->n && valid;) {
        uint32_t cp;
        i += (size_t)utf8_decode((const uint8_t *)run->p + i, run->n - i, &cp);
        if (cp >= UC_INVALID_BASE) valid = 0;
    }
    if (valid) sb_put(out, run->p, run->n);
    else
        for (size_t i = 0; i < run->n; i++) sb_put(out, "\xef\xbf\xbd", 3);
    run->n = 0;
}

/* llama.cpp's clean-up of tokenization spaces (three passes, see the fixtures' README). */
static void clean_spaces(sbuf *b)
{
    char *s = b->p;
    size_t n = b->n, k;
    if (n == 0) return;
    /* " ?", " !", " .", " ," lose the space */
    k = 1;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) k--;
        s[k++] = x;
    }
    /* The passes read the original text at i-1 and i+1 while writing at k <= i; keep a copy
     * so that reads never see written bytes. */
    n = k;
    char *c = xmalloc(n + 1);
    memcpy(c, s, n);
    /* " ' " becomes "'" */
    k = 1;
    for (size_t i = 1; i < n; i++) {
        char x = c[i];
        if (x == '\'' && i + 1 < n && c[i - 1] == ' ' && c[i + 1] == ' ') {
            k--;
            c[++i] = 0;
        }
        s[k++] = x;
    }
    n = k;
    memcpy(c, s, n);
    /* " 's", " 'm", " 're", " 've" lose the space */
    k = 1;
    for (size_t i = 1; i < n; i++) {
        char x = c[i];
        if (c[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = c[i + 1];
            if (x1 == 's' || x1 == 'm') k--;
            else if (i + 2 < n && ((x1 == 'r' && c[i + 2] == 'e') || (x1 == 'v' && c[i + 2] == 'e'))) k--;
        }
        s[k++] = x;
    }
    free(c);
    b->n = k;
    s[k] = 0;
}

char *citer_decode(const citer_tokenizer *t, const int32_t *ids, size_t n, int flags, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !t->text[ids[i]]) {
            citer_set_error("token id %ld at position %zu is not in the vocabulary (0..%ld)", (long)ids[i], i,
                            (long)t->n_vocab - 1);
            return NULL;
        }
    }
    int skip = (flags & CITER_DETOK_SKIP_SPECIAL) != 0;
    sbuf out = {0}, run = {0};
    sb_put(&out, "", 0);
    switch (t->decoder) {
    case DEC_GGUF:
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i];
            int ty = t->type ? t->type[id] : TT_NORMAL;
            const char *p = t->dec[id];
            size_t m = t->dlen[id];
            if (skip && (ty == TT_CONTROL || ty == TT_UNKNOWN)) m = 0;
            if (i == 0 && t->spm_space_prefix && m > 0 && p[0] == ' ') {
                p++;
                m--;
            }
            sb_put(&out, p, m);
        }
        if (t->clean_spaces) clean_spaces(&out);
        break;
    case DEC_HF_BYTELEVEL:
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i], a = t->added_of[id];
            if (a >= 0) {
                if (skip && t->added[a].special) continue; /* dropped: does not end the run */
                flush_lossy(&out, &run);
                sb_put(&out, t->dec[id], t->dlen[id]);
            } else {
                sb_put(&run, t->dec[id], t->dlen[id]);
            }
        }
        flush_lossy(&out, &run);
        break;
    case DEC_HF_SPM:
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i], a = t->added_of[id];
            if (a >= 0 && skip && t->added[a].special) continue;
            if (a < 0 && t->byte_val[id] >= 0) {
                char c = (char)t->byte_val[id];
                sb_put(&run, &c, 1);
                continue;
            }
            flush_bytes(&out, &run);
            sb_put(&out, t->dec[id], t->dlen[id]);
        }
        flush_bytes(&out, &run);
        if (out.n && out.p[0] == ' ') {
            memmove(out.p, out.p + 1, out.n);
            out.n--;
        }
        break;
    default:
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i], a = t->added_of[id];
            if (a >= 0 && skip && t->added[a].special) continue;
            if (out.n) sb_put(&out, " ", 1);
            sb_put(&out, t->dec[id], t->dlen[id]);
        }
        break;
    }
    free(run.p);
    if (len) *len = out.n;
    return out.p;
}

/* ---- queries ---- */

int32_t citer_tokenizer_vocab_size(const citer_tokenizer *t) { return t->n_vocab; }
int32_t citer_tokenizer_bos(const citer_tokenizer *t) { return t->bos; }
int32_t citer_tokenizer_eos(const citer_tokenizer *t) { return t->eos; }
int citer_tokenizer_adds_bos(const citer_tokenizer *t) { return t->add_bos && t->bos >= 0; }
int citer_tokenizer_adds_eos(const citer_tokenizer *t) { return t->add_eos && t->eos >= 0; }

const char *citer_token_text(const citer_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? t->text[id] : NULL;
}

int32_t citer_token_id(const citer_tokenizer *t, const char *text) { return tok_lookup(t, text, strlen(text)); }

int citer_token_is_special(const citer_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_vocab) return 0;
    if (t->decoder == DEC_GGUF) return t->type && (t->type[id] == TT_CONTROL || t->type[id] == TT_UNKNOWN);
    return t->added_of[id] >= 0 && t->added[t->added_of[id]].special;
}

const char *citer_tokenizer_describe(const citer_tokenizer *t) { return t->desc; }
