/* bpe_train: merges on a hand-worked corpus, and the written tokenizer.json read back by the
 * tokenizer: ids, special tokens, round trips. */
#include <string.h>
#include <sys/stat.h>

#include "bpe_train.h"
#include "check.h"
#include "tokenizer.h"
#include "util.h"

static char *path_in_tmp(const char *name)
{
    static char buf[4][4200];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

/* "ab ab ab abc" splits into "ab", " ab", " ab", " abc". Pair counts: (a,b) 4, (Ġ,a) 3,
 * (b,c) 1. Round 1 merges a+b (id 256); then (Ġ,ab) 3 -> "Ġab" (257); then nothing occurs
 * twice. */
static void test_hand_worked(void)
{
    bpe_trainer *b = bpe_trainer_new();
    const char *text = "ab ab ab abc";
    bpe_trainer_add(b, text, strlen(text));
    int v = bpe_trainer_learn(b, 1000);
    CHECK(v == 256 + 2 + 3, "vocabulary %d, expected 261", v);
    CHECK(bpe_trainer_n_merges(b) == 2, "%d merges", bpe_trainer_n_merges(b));
    char *path = path_in_tmp("hand/tokenizer.json");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/hand", t_tmpdir());
    mkdir(dir, 0777);
    REQUIRE(bpe_trainer_save(b, path, 128) == 0, "%s", citer_error());
    size_t len;
    char *json = citer_read_file(path, &len);
    REQUIRE(json, "%s", citer_error());
    CHECK(strstr(json, "\"a b\"") && strstr(json, "\"Ġ ab\""), "merges not found in:\n%.400s", strstr(json, "merges"));
    CHECK(strstr(json, "\"Ġab\": 257"), "Ġab is not id 257");
    free(json);
    citer_tokenizer *t = citer_tokenizer_load(dir);
    REQUIRE(t, "%s", citer_error());
    CHECK(citer_tokenizer_vocab_size(t) == 261, "vocab %d", citer_tokenizer_vocab_size(t));
    CHECK(citer_token_id(t, "<|endoftext|>") == 258 && citer_token_id(t, "<|im_end|>") == 260, "special ids");
    CHECK(citer_tokenizer_eos(t) == 258, "eos %d", citer_tokenizer_eos(t));
    CHECK(!citer_tokenizer_adds_bos(t), "adds BOS");
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    REQUIRE(citer_encode(t, text, strlen(text), 0, &ids, &n, &cap) == 0, "%s", citer_error());
    int32_t want[] = {256, 257, 257, 257, 'c'};
    CHECK(n == 5 && !memcmp(ids, want, sizeof want), "ids %zu: %d %d %d %d %d", n, ids[0], n > 1 ? ids[1] : -1,
          n > 2 ? ids[2] : -1, n > 3 ? ids[3] : -1, n > 4 ? ids[4] : -1);
    const char *sp = "x<|endoftext|>";
    REQUIRE(citer_encode(t, sp, strlen(sp), CITER_TOK_PARSE_SPECIAL, &ids, &n, &cap) == 0, "%s", citer_error());
    CHECK(n == 2 && ids[0] == 'x' && ids[1] == 258, "special token not recognised");
    free(ids);
    citer_tokenizer_free(t);
    bpe_trainer_free(b);
}

/* A larger corpus: every text round-trips, and the learned vocabulary shortens it. */
static void test_corpus_roundtrip(void)
{
    size_t len;
    char *text = citer_read_file("examples/data/corpus.txt", &len);
    if (!text) SKIP("examples/data/corpus.txt not found (run from the repository root)");
    bpe_trainer *b = bpe_trainer_new();
    bpe_trainer_add(b, text, len);
    const char *extra = "Ünïcödé café naïve — 123 + 4,567 = 4,690\r\n\tTabs\n\n\nand 'quotes' it's";
    bpe_trainer_add(b, extra, strlen(extra));
    int v = bpe_trainer_learn(b, 400);
    CHECK(v == 400, "vocabulary %d, expected 400", v);
    char *path = path_in_tmp("corpus-tokenizer.json");
    REQUIRE(bpe_trainer_save(b, path, 256) == 0, "%s", citer_error());
    citer_tokenizer *t = citer_tokenizer_load(path);
    REQUIRE(t, "%s", citer_error());
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    REQUIRE(citer_encode(t, text, len, 0, &ids, &n, &cap) == 0, "%s", citer_error());
    printf("  corpus: %zu bytes -> %zu tokens with %d merges\n", len, n, bpe_trainer_n_merges(b));
    CHECK(n < len * 2 / 3, "%zu tokens for %zu bytes", n, len);
    size_t dl;
    char *back = citer_decode(t, ids, n, 0, &dl);
    CHECK(back && dl == len && !memcmp(back, text, len), "corpus does not round-trip");
    free(back);
    REQUIRE(citer_encode(t, extra, strlen(extra), 0, &ids, &n, &cap) == 0, "%s", citer_error());
    back = citer_decode(t, ids, n, 0, &dl);
    CHECK(back && dl == strlen(extra) && !memcmp(back, extra, dl), "unicode text does not round-trip");
    free(back);
    free(ids);
    citer_tokenizer_free(t);
    bpe_trainer_free(b);
    free(text);
}

static void test_empty(void)
{
    bpe_trainer *b = bpe_trainer_new();
    CHECK(bpe_trainer_learn(b, 1000) == 259, "empty corpus: bytes and specials only");
    CHECK(bpe_trainer_save(b, path_in_tmp("empty.json"), 16) == 0, "%s", citer_error());
    citer_tokenizer *t = citer_tokenizer_load(path_in_tmp("empty.json"));
    CHECK(t && citer_tokenizer_vocab_size(t) == 259, "reload");
    citer_tokenizer_free(t);
    bpe_trainer_free(b);
}

int main(void)
{
    RUN(test_hand_worked);
    RUN(test_corpus_roundtrip);
    RUN(test_empty);
    return t_exit();
}
