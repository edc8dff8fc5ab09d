/* tokenizer: byte-level BPE (Hugging Face tokenizer.json, GGUF "gpt2") and SentencePiece-style
 * BPE with scores (GGUF "llama"), with added/special tokens, pre-tokenizers, normalizers and
 * decoders as the source file configures them. */
#ifndef CITER_TOKENIZER_H
#define CITER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct citer_tokenizer citer_tokenizer;

/* path: a tokenizer.json, a .gguf file, or a model directory (tokenizer.json inside; a
 * tokenizer_config.json beside it is read for add_bos_token / bos_token / eos_token).
 * NULL + citer_error() ("tokenizer.json: merges[12]: not a pair of strings", ...). */
citer_tokenizer *citer_tokenizer_load(const char *path);
void citer_tokenizer_free(citer_tokenizer *t);

enum {
    CITER_TOK_PARSE_SPECIAL = 1, /* recognise added/special token text in the input */
    CITER_TOK_ADD_BOS = 2,       /* prepend BOS (if the tokenizer has one) */
    CITER_TOK_ADD_EOS = 4,
    CITER_TOK_DEFAULTS = 8,      /* add BOS/EOS exactly as the tokenizer's own config asks */
};

/* Encode n bytes of text. Appends ids to *ids (realloc'd, capacity *cap), sets *n_ids.
 * Returns 0, or -1 with citer_error(). Any byte sequence is accepted (invalid UTF-8 is
 * tokenized byte-wise where the vocabulary allows). */
int citer_encode(const citer_tokenizer *t, const char *text, size_t n, int flags,
                 int32_t **ids, size_t *n_ids, size_t *cap);

enum {
    CITER_DETOK_SKIP_SPECIAL = 1, /* drop special/control tokens instead of rendering their text */
};
/* Decode ids to bytes following the tokenizer's decoder. Returns a malloc'd buffer (NUL-
 * terminated, length in *len), or NULL with citer_error() for an id out of range. */
char *citer_decode(const citer_tokenizer *t, const int32_t *ids, size_t n, int flags, size_t *len);

int32_t citer_tokenizer_vocab_size(const citer_tokenizer *t);
int32_t citer_tokenizer_bos(const citer_tokenizer *t); /* -1 if none */
int32_t citer_tokenizer_eos(const citer_tokenizer *t); /* -1 if none */
int citer_tokenizer_adds_bos(const citer_tokenizer *t);
int citer_tokenizer_adds_eos(const citer_tokenizer *t);
/* Text of one token as stored in the vocabulary (byte-level alphabet or ▁ form), or NULL. */
const char *citer_token_text(const citer_tokenizer *t, int32_t id);
/* Id of a token by its stored text, or -1. */
int32_t citer_token_id(const citer_tokenizer *t, const char *text);
int citer_token_is_special(const citer_tokenizer *t, int32_t id);
/* Short description, e.g. "byte-level BPE, 151669 tokens, pre-tokenizer qwen2". */
const char *citer_tokenizer_describe(const citer_tokenizer *t);

#endif
