/* tokenizer_impl: the tokenizer's internal representation, shared by the core (tokenizer.c),
 * the merge algorithms (bpe.c) and the loaders (tokenizer_json.c, tokenizer_gguf.c). */
#ifndef CITER_TOKENIZER_IMPL_H
#define CITER_TOKENIZER_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "pretokenize.h"
#include "tokenizer.h"

enum tok_model {
    TOK_BPE, /* merges ranked by position (Hugging Face BPE, GGUF "gpt2") */
    TOK_SPM, /* pairs ranked by the merged token's score (GGUF "llama") */
};

enum tok_decoder {
    DEC_HF_BYTELEVEL, /* tokenizer.json ByteLevel: lossy UTF-8 per run of non-added tokens */
    DEC_HF_SPM,       /* tokenizer.json Replace(▁→' ') + ByteFallback + Fuse + Strip(1 left) */
    DEC_HF_NONE,      /* tokenizer.json without a decoder we know: token texts joined */
    DEC_GGUF,         /* llama.cpp: raw bytes, token types decide, optional space rules */
};

/* Token types, as GGUF tokenizer.ggml.token_type numbers them. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct {
    char *text;
    size_t len;
    int32_t id;
    uint8_t special;    /* only matched with CITER_TOK_PARSE_SPECIAL; dropped by SKIP_SPECIAL */
    uint8_t lstrip, rstrip;
    uint8_t normalized; /* matched in the normalized text rather than the raw input */
} tok_added;

enum { NORM_NFC = 1, NORM_PREPEND, NORM_REPLACE, NORM_LOWERCASE };
typedef struct {
    int op;
    char *a, *b; /* PREPEND: a; REPLACE: a -> b */
    size_t alen, blen;
} tok_norm;

typedef struct {
    uint64_t key;  /* left << 32 | right, ~0 for empty */
    int32_t rank;
    int32_t merged;
} merge_slot;

typedef struct {
    uint64_t h;
    uint32_t klen, nids;
    char *data; /* klen key bytes, then nids int32 ids */
} cache_slot;

#define TOK_CACHE_SLOTS 16384
#define TOK_CACHE_MAXKEY 64

struct citer_tokenizer {
    int model, decoder;
    int32_t n_vocab;             /* ids 0..n_vocab-1 */
    char **text;                 /* stored text of each id (NULL for a hole) */
    uint32_t *tlen;
    char **dec;                  /* bytes each id decodes to (decoder dependent) */
    uint32_t *dlen;
    uint8_t *type;               /* TT_* */
    int16_t *byte_val;           /* value of a <0xXX> byte token, -1 otherwise */
    float *score;                /* SPM scores */

    int32_t *hash;               /* open addressing: text -> id, -1 empty */
    size_t hmask;

    merge_slot *merges;          /* open addressing: (left, right) -> rank, merged id */
    size_t mmask;
    size_t n_merges;

    int byte_level;              /* bytes are written in GPT-2's byte-to-unicode alphabet */
    int32_t byte_tok[256];       /* byte-level: token of each byte's character; else <0xXX> token */
    int byte_fallback;
    int ignore_merges;
    int32_t unk;

    tok_added *added;            /* sorted longest first */
    size_t n_added;
    uint8_t added_first[256];    /* first bytes of added tokens */
    int32_t *added_of;           /* per id: index in added[], or -1 */

    tok_norm *norm;
    size_t n_norm;
    int pre[PRETOK_MAX_STAGES];
    int n_pre;
    int add_prefix_space;        /* ByteLevel(add_prefix_space) */
    int spm_space_prefix;        /* GGUF llama: a space before each fragment that starts the text or follows a special token */
    int clean_spaces;            /* GGUF gpt2 decoding clean-up */
    int metaspace;               /* tokenizer.json Metaspace pre-tokenizer: spaces become meta_rep */
    char meta_rep[8];
    int meta_prepend;            /* 0 never, 1 first (only at the start of the input), 2 always */
    int meta_split;              /* pieces start at each meta_rep */

    int32_t bos, eos;
    int add_bos, add_eos;

    pthread_mutex_t cache_lock;
    cache_slot *cache;

    char desc[200];
};

/* tokenizer.c */
citer_tokenizer *tok_new(void);
/* Called by loaders once tokens, types, added tokens and merges are set: builds the hash,
 * decode table and added-token index. 0 ok, -1 error. */
int tok_finish(citer_tokenizer *t);
int32_t tok_lookup(const citer_tokenizer *t, const char *s, size_t n);
int tok_hash_build(citer_tokenizer *t, const char *where);
void tok_set_token(citer_tokenizer *t, int32_t id, const char *s, size_t n);
/* GPT-2 bytes_to_unicode: the code point standing for byte b, and back (-1 if none). */
uint32_t byte_to_cp(uint8_t b);
int cp_to_byte(uint32_t cp);

/* bpe.c */
int merges_add(citer_tokenizer *t, int32_t left, int32_t right, int32_t merged);
const merge_slot *merges_find(const citer_tokenizer *t, int32_t left, int32_t right);
/* Merge ids[0..n) in place by rank; returns the new count. */
size_t bpe_merge(const citer_tokenizer *t, int32_t *ids, size_t n);
/* SentencePiece-style merge of s[0..n) by score; appends ids. */
void spm_encode(const citer_tokenizer *t, const char *s, size_t n, int32_t **ids, size_t *n_ids, size_t *cap);

/* tokenizer_json.c, tokenizer_gguf.c */
citer_tokenizer *tok_load_json(const char *path);
citer_tokenizer *tok_load_gguf(const char *path);

#endif
