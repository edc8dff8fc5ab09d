/* tokenizer_gguf: loader for the tokenizer.ggml.* vocabulary of a GGUF file, with the
 * defaults llama.cpp gives each tokenizer model and pre-tokenizer name. */
#include "gguf.h"
#include "tokenizer_impl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static citer_tokenizer *fail(citer_tokenizer *t, gguf_file *g, gguf_str *strs, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static citer_tokenizer *fail(citer_tokenizer *t, gguf_file *g, gguf_str *strs, const char *file, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    citer_set_error("%s: %s", file, msg);
    citer_tokenizer_free(t);
    free(strs);
    gguf_close(g);
    return NULL;
}

static int32_t get_id(const gguf_file *g, const char *key, int32_t n_vocab, int32_t dflt)
{
    uint64_t v;
    if (!gguf_find(g, key) || gguf_get_u64(g, key, &v) != 0 || v >= (uint64_t)n_vocab) return dflt;
    return (int32_t)v;
}

citer_tokenizer *tok_load_gguf(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    gguf_file *g = gguf_open(path);
    if (!g) {
        citer_set_error("%s: %s", file, citer_error());
        return NULL;
    }
    citer_tokenizer *t = NULL;
    gguf_str *strs = NULL;
    char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!model) return fail(t, g, strs, file, "no tokenizer.ggml.model string (not a GGUF with a vocabulary)");
    int is_bpe = strcmp(model, "gpt2") == 0, is_spm = strcmp(model, "llama") == 0;
    if (!is_bpe && !is_spm) {
        t = fail(t, g, strs, file, "tokenizer.ggml.model \"%s\" is not supported (gpt2 or llama)", model);
        free(model);
        return t;
    }
    free(model);

    const gguf_kv *tokens = gguf_find(g, "tokenizer.ggml.tokens");
    if (!tokens) return fail(t, g, strs, file, "no tokenizer.ggml.tokens");
    strs = gguf_str_array(tokens);
    if (!strs) return fail(t, g, strs, file, "tokenizer.ggml.tokens: %s", citer_error());
    if (tokens->arr_n == 0 || tokens->arr_n >= INT32_MAX / 2)
        return fail(t, g, strs, file, "tokenizer.ggml.tokens: %llu tokens", (unsigned long long)tokens->arr_n);

    t = tok_new();
    t->model = is_bpe ? TOK_BPE : TOK_SPM;
    t->decoder = DEC_GGUF;
    t->byte_level = is_bpe;
    t->n_vocab = (int32_t)tokens->arr_n;
    size_t nv = (size_t)t->n_vocab;
    t->text = xcalloc(nv, sizeof *t->text);
    t->tlen = xcalloc(nv, sizeof *t->tlen);
    t->type = xmalloc(nv);
    for (size_t i = 0; i < nv; i++) {
        tok_set_token(t, (int32_t)i, strs[i].ptr, (size_t)strs[i].len);
        t->type[i] = TT_NORMAL;
    }
    free(strs);
    strs = NULL;

    const gguf_kv *types = gguf_find(g, "tokenizer.ggml.token_type");
    if (types) {
        if (types->type != GGUF_ARRAY) return fail(t, g, strs, file, "tokenizer.ggml.token_type: not an array");
        if (types->arr_n != nv)
            return fail(t, g, strs, file, "tokenizer.ggml.token_type has %llu entries for %zu tokens",
                        (unsigned long long)types->arr_n, nv);
        for (size_t i = 0; i < nv; i++) {
            int64_t v;
            if (gguf_array_i64(types, i, &v) != 0) return fail(t, g, strs, file, "tokenizer.ggml.token_type[%zu]: %s", i, citer_error());
            if (v < 0 || v > 6) return fail(t, g, strs, file, "tokenizer.ggml.token_type[%zu]: unknown type %lld", i, (long long)v);
            t->type[i] = (uint8_t)(v == 0 ? TT_NORMAL : v);
        }
    }
    const gguf_kv *scores = gguf_find(g, "tokenizer.ggml.scores");
    if (scores) {
        if (scores->type != GGUF_ARRAY) return fail(t, g, strs, file, "tokenizer.ggml.scores: not an array");
        if (scores->arr_n != nv)
            return fail(t, g, strs, file, "tokenizer.ggml.scores has %llu entries for %zu tokens",
                        (unsigned long long)scores->arr_n, nv);
        t->score = xmalloc(nv * sizeof *t->score);
        for (size_t i = 0; i < nv; i++)
            if (gguf_array_f32(scores, i, &t->score[i]) != 0)
                return fail(t, g, strs, file, "tokenizer.ggml.scores[%zu]: %s", i, citer_error());
    } else if (is_spm) {
        return fail(t, g, strs, file, "no tokenizer.ggml.scores for a llama (SentencePiece) vocabulary");
    }

    /* Added tokens: control, user-defined and unknown tokens are matched in the text;
     * user-defined ones always, the others when special tokens are parsed. */
    t->added = xcalloc(nv, sizeof *t->added);
    for (size_t i = 0; i < nv; i++) {
        int ty = t->type[i];
        if ((ty != TT_CONTROL && ty != TT_USER && ty != TT_UNKNOWN) || t->tlen[i] == 0) continue;
        tok_added *a = &t->added[t->n_added++];
        a->text = xstrndup(t->text[i], t->tlen[i]);
        a->len = t->tlen[i];
        a->id = (int32_t)i;
        a->special = ty != TT_USER;
    }

    char *pre = NULL;
    int clean = 0, ignore = 0;
    if (is_bpe) {
        pre = gguf_find(g, "tokenizer.ggml.pre") ? gguf_get_str(g, "tokenizer.ggml.pre") : NULL;
        t->n_pre = pretok_stages_by_gguf_pre(pre ? pre : "default", t->pre, &clean, &ignore);
        if (t->n_pre < 0) {
            t = fail(t, g, strs, file, "tokenizer.ggml.pre \"%s\" is not a known pre-tokenizer", pre);
            free(pre);
            return t;
        }
        t->clean_spaces = clean;
        t->ignore_merges = ignore;
        t->add_bos = ignore; /* llama.cpp: Llama-3 style vocabularies add BOS unless told otherwise */
        t->spm_space_prefix = 0;

        tok_hash_build(t, file);
        const gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
        if (!merges) {
            free(pre);
            return fail(t, g, strs, file, "no tokenizer.ggml.merges for a gpt2 (BPE) vocabulary");
        }
        strs = gguf_str_array(merges);
        if (!strs) {
            free(pre);
            return fail(t, g, strs, file, "tokenizer.ggml.merges: %s", citer_error());
        }
        char *buf = NULL;
        size_t cap = 0;
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            const char *s = strs[i].ptr;
            size_t n = (size_t)strs[i].len;
            const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
            if (!sp) {
                free(buf);
                free(pre);
                return fail(t, g, strs, file, "tokenizer.ggml.merges[%llu]: \"%.*s\" is not two tokens separated by a space",
                            (unsigned long long)i, (int)(n > 80 ? 80 : n), s);
            }
            size_t al = (size_t)(sp - s), bl = n - al - 1;
            xgrow((void **)&buf, &cap, al + bl + 1, 1);
            memcpy(buf, s, al);
            memcpy(buf + al, sp + 1, bl);
            int32_t l = tok_lookup(t, s, al), r = tok_lookup(t, sp + 1, bl), m = tok_lookup(t, buf, al + bl);
            /* llama.cpp ranks merges by text; a merge whose result is not a token can never be
             * emitted as one, so it is left out here. */
            if (l >= 0 && r >= 0 && m >= 0) merges_add(t, l, r, m);
            else t->n_merges++;
        }
        free(buf);
        free(strs);
        strs = NULL;
    } else {
        t->spm_space_prefix = 1;
        t->byte_fallback = 1;
        t->add_bos = 1;
        int v;
        if (gguf_find(g, "tokenizer.ggml.add_space_prefix") && gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v) == 0)
            t->spm_space_prefix = v;
    }
    t->bos = get_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, is_spm ? 1 : -1);
    t->eos = get_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, is_spm ? 2 : -1);
    t->unk = get_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, is_spm ? 0 : -1);
    int v;
    if (gguf_find(g, "tokenizer.ggml.add_bos_token") && gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v) == 0) t->add_bos = v;
    if (gguf_find(g, "tokenizer.ggml.add_eos_token") && gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &v) == 0) t->add_eos = v;
    gguf_close(g);

    tok_finish(t);
    int k = snprintf(t->desc, sizeof t->desc, "%s, %ld tokens, ",
                     is_bpe ? "byte-level BPE (GGUF gpt2)" : "SentencePiece BPE (GGUF llama)", (long)t->n_vocab);
    if (is_bpe)
        snprintf(t->desc + k, sizeof t->desc - (size_t)k, "%zu merges, pre-tokenizer %s", t->n_merges, pre ? pre : "default");
    else
        snprintf(t->desc + k, sizeof t->desc - (size_t)k, "scores, byte fallback");
    free(pre);
    return t;
}
