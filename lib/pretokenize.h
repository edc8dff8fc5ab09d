/* pretokenize: the split regexes of known tokenizers, each reproduced by a hand-written matcher
 * with Oniguruma semantics (leftmost match, first alternative wins, greedy with backtracking
 * where the pattern needs it). Unmatched text between matches is kept as a piece of its own,
 * as Hugging Face's Split(behavior=Isolated) and llama.cpp's regex split both do.
 *
 * A pre-tokenizer is a list of stages: the first splits the text, each further stage splits
 * every piece of the previous one (llama.cpp applies its regex lists this way). */
#ifndef CITER_PRETOKENIZE_H
#define CITER_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

enum pretok_stage {
    PT_NONE = 0,
    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    PT_GPT2,
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    PT_LLAMA3,
    /* the same with \p{N} instead of \p{N}{1,3} (Qwen2, Qwen3) */
    PT_QWEN2,
    PT_DIGIT,          /* \p{N} */
    PT_DIGITS,         /* \p{N}+ */
    PT_DIGIT3,         /* [0-9][0-9][0-9] */
    PT_PUNCT_FALCON,   /* [\p{P}\$\+<=>\^~\|`]+ */
    PT_PUNCT_DEFAULT,  /* [\p{P}\$\+<=>\^~\|]+ */
    PT_CRLF,           /* [\r\n] */
    PT_DS_LETTERS,     /* \s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+ (DeepSeek LLM's list of cased letters) */
    PT_DS_PUNCT,       /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
    PT_TRAIL_SPACE,    /* \s+$ */
    PT_CJK,            /* [一-龥ࠀ-一가-퟿]+ */
    PT_SPACE_LETTERS,  /* \s?\p{L}+ */
    PT_SPACE_PUNCT,    /* \s?\p{P}+ */
    PT_COUNT
};

#define PRETOK_MAX_STAGES 8

/* Stage for a Hugging Face Split regex given by its exact pattern text; PT_NONE if unknown. */
int pretok_stage_by_regex(const char *pattern);
/* Stages for a GGUF tokenizer.ggml.pre name (as llama.cpp defines them). Returns the count,
 * or -1 for an unknown name. *clean_spaces and *ignore_merges get the decoder/merge defaults
 * llama.cpp pairs with that name. */
int pretok_stages_by_gguf_pre(const char *name, int *stages, int *clean_spaces, int *ignore_merges);
const char *pretok_stage_name(int stage);

/* Scratch buffers reused between calls. */
typedef struct {
    uint32_t *cp;
    uint8_t *fl;
    size_t *off;                  /* byte offset of each code point, plus one past the end */
    size_t cap;
    size_t *pa, *pb;              /* piece ends, in code points (ping-pong between stages) */
    size_t pcap_a, pcap_b;
    size_t *ends;                 /* result: piece end offsets in bytes */
    size_t ecap;
} pretok_buf;

void pretok_buf_free(pretok_buf *b);

/* Split s[0..n) with the given stages. Returns the number of pieces; piece i is
 * s[(i ? b->ends[i-1] : 0) .. b->ends[i]). With no stages the whole text is one piece. */
size_t pretokenize(const int *stages, int n_stages, const uint8_t *s, size_t n, pretok_buf *b);

#endif
