/* Byte-level BPE training: count pre-tokenized pieces, then repeatedly merge the most frequent
 * adjacent pair of symbols across all distinct pieces (weighted by their counts). */
#include "bpe_train.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "pretokenize.h"
#include "tokenizer_impl.h" /* byte_to_cp */
#include "unicode.h"
#include "util.h"

typedef struct {
    int32_t *sym; /* current symbols of the piece */
    int n;
    int64_t count;
    char *bytes;  /* the piece, for the hash table */
    size_t len;
} word;

typedef struct {
    int32_t left, right, merged;
} merge_rule;

struct bpe_trainer {
    word *words;
    size_t n_words, cap_words;
    int32_t *slot; /* open addressing: piece -> index in words, -1 empty */
    size_t mask;
    pretok_buf pb;
    /* learned vocabulary: token texts (byte-level alphabet, UTF-8) */
    char **text;
    int n_text;
    merge_rule *merges;
    int n_merges;
};

static const char *specials[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

bpe_trainer *bpe_trainer_new(void)
{
    bpe_trainer *b = xcalloc(1, sizeof *b);
    b->mask = 1023;
    b->slot = xmalloc((b->mask + 1) * sizeof *b->slot);
    memset(b->slot, 0xff, (b->mask + 1) * sizeof *b->slot);
    return b;
}

void bpe_trainer_free(bpe_trainer *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n_words; i++) free(b->words[i].sym), free(b->words[i].bytes);
    free(b->words);
    free(b->slot);
    pretok_buf_free(&b->pb);
    for (int i = 0; i < b->n_text; i++) free(b->text[i]);
    free(b->text);
    free(b->merges);
    free(b);
}

static void rehash(bpe_trainer *b)
{
    size_t cap = (b->mask + 1) * 2;
    free(b->slot);
    b->slot = xmalloc(cap * sizeof *b->slot);
    memset(b->slot, 0xff, cap * sizeof *b->slot);
    b->mask = cap - 1;
    for (size_t i = 0; i < b->n_words; i++) {
        size_t h = XXH3_64bits(b->words[i].bytes, b->words[i].len) & b->mask;
        while (b->slot[h] >= 0) h = (h + 1) & b->mask;
        b->slot[h] = (int32_t)i;
    }
}

static void count_piece(bpe_trainer *b, const char *s, size_t n)
{
    if (n == 0) return;
    size_t h = XXH3_64bits(s, n) & b->mask;
    while (b->slot[h] >= 0) {
        word *w = &b->words[b->slot[h]];
        if (w->len == n && !memcmp(w->bytes, s, n)) {
            w->count++;
            return;
        }
        h = (h + 1) & b->mask;
    }
    xgrow((void **)&b->words, &b->cap_words, b->n_words + 1, sizeof *b->words);
    word *w = &b->words[b->n_words];
    w->bytes = xstrndup(s, n);
    w->len = n;
    w->count = 1;
    w->n = (int)n;
    w->sym = xmalloc(n * sizeof *w->sym);
    for (size_t i = 0; i < n; i++) w->sym[i] = (uint8_t)s[i];
    b->slot[h] = (int32_t)b->n_words++;
    if (b->n_words * 2 > b->mask) rehash(b);
}

static int is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

void bpe_trainer_add(bpe_trainer *b, const char *text, size_t n)
{
    char *norm = NULL;
    size_t nn = n;
    if (!uc_nfc_quick(text, n)) text = norm = uc_nfc(text, n, &nn);
    n = nn;
    static const int stage = PT_QWEN2;
    /* The same windows as the tokenizer's encoder: cut only at "x yz", where every piece ends. */
    const size_t W = (size_t)1 << 18;
    for (size_t base = 0; base < n;) {
        size_t len = n - base;
        if (len > 2 * W) {
            for (size_t i = base + W; i + 2 < n && i < base + 2 * W; i++)
                if (text[i] == ' ' && is_ascii_letter(text[i - 1]) && is_ascii_letter(text[i + 1])) {
                    len = i - base;
                    break;
                }
        }
        size_t np = pretokenize(&stage, 1, (const uint8_t *)text + base, len, &b->pb);
        size_t start = 0;
        for (size_t p = 0; p < np; p++) {
            count_piece(b, text + base + start, b->pb.ends[p] - start);
            start = b->pb.ends[p];
        }
        base += len;
    }
    free(norm);
}

/* ---- pair counting: a hash table keyed by (left, right) ---- */
typedef struct {
    uint64_t key; /* ~0: empty */
    int64_t count;
} pair_slot;

static void add_text(bpe_trainer *b, char *s)
{
    b->text = xrealloc(b->text, (size_t)(b->n_text + 1) * sizeof *b->text);
    b->text[b->n_text++] = s;
}

int bpe_trainer_learn(bpe_trainer *b, int vocab_size)
{
    if (!b->n_text)
        for (int c = 0; c < 256; c++) {
            uint8_t u[5] = {0};
            utf8_encode(byte_to_cp((uint8_t)c), u);
            add_text(b, xstrdup((char *)u));
        }
    size_t total = 0;
    for (size_t i = 0; i < b->n_words; i++) total += (size_t)b->words[i].n;
    size_t cap = 1024;
    while (cap < 2 * total + 16) cap *= 2;
    pair_slot *tab = xmalloc(cap * sizeof *tab);
    while (b->n_text + 3 < vocab_size) {
        memset(tab, 0xff, cap * sizeof *tab);
        uint64_t best = ~0ull;
        int64_t best_count = 1;
        for (size_t i = 0; i < b->n_words; i++) {
            const word *w = &b->words[i];
            for (int j = 0; j + 1 < w->n; j++) {
                uint64_t key = (uint64_t)(uint32_t)w->sym[j] << 32 | (uint32_t)w->sym[j + 1];
                size_t h = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
                while (tab[h].key != key && tab[h].key != ~0ull) h = (h + 1) & (cap - 1);
                if (tab[h].key == ~0ull) tab[h].key = key, tab[h].count = 0;
                int64_t c = tab[h].count += w->count;
                if (c >= 2 && (c > best_count || (c == best_count && key < best))) best_count = c, best = key;
            }
        }
        if (best == ~0ull) break; /* no pair occurs twice */
        int32_t l = (int32_t)(best >> 32), r = (int32_t)(best & 0xffffffffu);
        size_t ll = strlen(b->text[l]), rl = strlen(b->text[r]);
        char *s = xmalloc(ll + rl + 1);
        memcpy(s, b->text[l], ll);
        memcpy(s + ll, b->text[r], rl + 1);
        /* (a, bc) and (ab, c) make the same string: the token exists once */
        int32_t id = -1;
        for (int k = 256; k < b->n_text; k++)
            if (!strcmp(b->text[k], s)) id = k;
        if (id < 0) {
            id = b->n_text;
            add_text(b, s);
        } else {
            free(s);
        }
        b->merges = xrealloc(b->merges, (size_t)(b->n_merges + 1) * sizeof *b->merges);
        b->merges[b->n_merges++] = (merge_rule){l, r, id};
        for (size_t i = 0; i < b->n_words; i++) {
            word *w = &b->words[i];
            int o = 0;
            for (int j = 0; j < w->n; j++) {
                if (j + 1 < w->n && w->sym[j] == l && w->sym[j + 1] == r) {
                    w->sym[o++] = id;
                    j++;
                } else {
                    w->sym[o++] = w->sym[j];
                }
            }
            w->n = o;
        }
    }
    free(tab);
    return b->n_text + 3;
}

int bpe_trainer_n_merges(const bpe_trainer *b) { return b->n_merges; }

static json_object *byte_level(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("ByteLevel"));
    json_object_object_add(o, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(o, "trim_offsets", json_object_new_boolean(0));
    json_object_object_add(o, "use_regex", json_object_new_boolean(0));
    return o;
}

static int write_json(json_object *o, const char *path)
{
    citer_out *out = citer_out_open(path);
    if (!out) return -1;
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                JSON_C_TO_STRING_NOSLASHESCAPE),
          out->f);
    fputc('\n', out->f);
    return citer_out_commit(out);
}

int bpe_trainer_save(const bpe_trainer *bt, const char *path, int model_max_length)
{
    if (!bt->n_text) {
        citer_set_error("bpe: no vocabulary learned");
        return -1;
    }
    json_object *root = json_object_new_object();
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "truncation", NULL);
    json_object_object_add(root, "padding", NULL);
    json_object *added = json_object_new_array();
    for (int i = 0; i < 3; i++) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_int(bt->n_text + i));
        json_object_object_add(a, "content", json_object_new_string(specials[i]));
        json_object_object_add(a, "single_word", json_object_new_boolean(0));
        json_object_object_add(a, "lstrip", json_object_new_boolean(0));
        json_object_object_add(a, "rstrip", json_object_new_boolean(0));
        json_object_object_add(a, "normalized", json_object_new_boolean(0));
        json_object_object_add(a, "special", json_object_new_boolean(1));
        json_object_array_add(added, a);
    }
    json_object_object_add(root, "added_tokens", added);
    json_object *norm = json_object_new_object();
    json_object_object_add(norm, "type", json_object_new_string("NFC"));
    json_object_object_add(root, "normalizer", norm);
    json_object *pre = json_object_new_object(), *list = json_object_new_array(), *split = json_object_new_object(),
                *pat = json_object_new_object();
    json_object_object_add(pre, "type", json_object_new_string("Sequence"));
    json_object_object_add(split, "type", json_object_new_string("Split"));
    json_object_object_add(pat, "Regex", json_object_new_string("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                                "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                                                                "\\s+(?!\\S)|\\s+"));
    json_object_object_add(split, "pattern", pat);
    json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
    json_object_object_add(split, "invert", json_object_new_boolean(0));
    json_object_array_add(list, split);
    json_object_array_add(list, byte_level());
    json_object_object_add(pre, "pretokenizers", list);
    json_object_object_add(root, "pre_tokenizer", pre);
    json_object_object_add(root, "post_processor", byte_level());
    json_object_object_add(root, "decoder", byte_level());
    json_object *model = json_object_new_object();
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "dropout", NULL);
    json_object_object_add(model, "unk_token", NULL);
    json_object_object_add(model, "continuing_subword_prefix", json_object_new_string(""));
    json_object_object_add(model, "end_of_word_suffix", json_object_new_string(""));
    json_object_object_add(model, "fuse_unk", json_object_new_boolean(0));
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(0));
    json_object_object_add(model, "ignore_merges", json_object_new_boolean(0));
    json_object *vocab = json_object_new_object();
    for (int i = 0; i < bt->n_text; i++) json_object_object_add(vocab, bt->text[i], json_object_new_int(i));
    json_object_object_add(model, "vocab", vocab);
    json_object *merges = json_object_new_array();
    char *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < bt->n_merges; i++) {
        const char *l = bt->text[bt->merges[i].left], *r = bt->text[bt->merges[i].right];
        size_t ll = strlen(l), rl = strlen(r);
        xgrow((void **)&buf, &cap, ll + rl + 2, 1);
        memcpy(buf, l, ll);
        buf[ll] = ' ';
        memcpy(buf + ll + 1, r, rl + 1);
        json_object_array_add(merges, json_object_new_string(buf));
    }
    free(buf);
    json_object_object_add(model, "merges", merges);
    json_object_object_add(root, "model", model);
    int rc = write_json(root, path);
    json_object_put(root);
    if (rc) return -1;

    json_object *cfg = json_object_new_object();
    json_object_object_add(cfg, "tokenizer_class", json_object_new_string("PreTrainedTokenizerFast"));
    json_object_object_add(cfg, "add_bos_token", json_object_new_boolean(0));
    json_object_object_add(cfg, "add_eos_token", json_object_new_boolean(0));
    json_object_object_add(cfg, "bos_token", NULL);
    json_object_object_add(cfg, "eos_token", json_object_new_string(specials[0]));
    json_object_object_add(cfg, "pad_token", json_object_new_string(specials[0]));
    json_object_object_add(cfg, "model_max_length", json_object_new_int(model_max_length));
    json_object_object_add(cfg, "clean_up_tokenization_spaces", json_object_new_boolean(0));
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *cpath = xmalloc(dl + 32);
    memcpy(cpath, path, dl);
    strcpy(cpath + dl, "tokenizer_config.json");
    rc = write_json(cfg, cpath);
    free(cpath);
    json_object_put(cfg);
    return rc;
}
