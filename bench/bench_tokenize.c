/* bench_tokenize: encoding speed of the Qwen3 tokenizer on English text (target 5 MB/s on
 * one core), and its load time. Text: pseudo-random sentences from a list of common English
 * words, with punctuation, numbers and line breaks. */
#include "tokenizer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const words[] = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with",
    "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word",
    "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your",
    "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many",
    "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him",
    "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
    "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been",
    "now", "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after",
    "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give", "our",
    "under", "name", "very", "through", "just", "form", "sentence", "great", "think", "say", "help", "low",
    "line", "differ", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too",
    "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end", "put",
    "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high",
    "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need", "house",
    "picture", "try", "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth",
    "father", "head", "stand", "own", "page", "should", "country", "found", "answer", "school", "grow",
    "study", "still", "learn", "plant", "cover", "food", "sun", "four", "between", "state", "keep", "eye",
    "never", "last", "let", "thought", "city", "tree", "cross", "farm", "hard", "start", "might", "story",
    "saw", "far", "sea", "draw", "left", "late", "run", "don't", "while", "press", "close", "night", "real",
    "life", "few", "north", "tokenizer", "collaborative", "decoding", "inference", "language", "models",
};

static uint64_t rng = 88172645463325252ULL;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static char *make_text(size_t target, size_t *len)
{
    size_t cap = target + 256, n = 0;
    char *s = xmalloc(cap);
    const size_t nw = sizeof words / sizeof words[0];
    int start = 1, space = 0;
    while (n < target) {
        const char *w = words[next_rand() % nw];
        size_t wl = strlen(w);
        if (space) s[n++] = ' ';
        space = 1;
        memcpy(s + n, w, wl);
        if (start && s[n] >= 'a' && s[n] <= 'z') s[n] -= 32;
        n += wl;
        start = 0;
        unsigned r = next_rand() % 100;
        if (r < 2) n += (size_t)sprintf(s + n, " %u", next_rand() % 2025);
        else if (r < 8) s[n++] = ',';
        else if (r < 14) {
            s[n++] = (r & 1) ? '.' : '?';
            if (next_rand() % 8 == 0) {
                s[n++] = '\n';
                space = 0;
            }
            start = 1;
        }
    }
    s[n] = 0;
    *len = n;
    return s;
}

int main(int argc, char **argv)
{
    const char *root = getenv("CITER_FIXTURES");
    char path[4096];
    if (argc > 1) snprintf(path, sizeof path, "%s", argv[1]);
    else snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", root && *root ? root : "../shared/fixtures");
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("SKIP: bench_tokenize: %s not found (set CITER_FIXTURES)\n", path);
        return 0;
    }
    double t0 = now_seconds();
    citer_tokenizer *t = citer_tokenizer_load(path);
    double load = now_seconds() - t0;
    if (!t) {
        fprintf(stderr, "bench_tokenize: %s\n", citer_error());
        return 1;
    }
    size_t len;
    char *text = make_text((size_t)16 << 20, &len);
    int32_t *ids = NULL;
    size_t n_ids = 0, cap = 0;

    /* one call on the whole text, best of three */
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now_seconds();
        citer_encode(t, text, len, CITER_TOK_PARSE_SPECIAL, &ids, &n_ids, &cap);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    double mbs = (double)len / 1e6 / best;

    /* one call per line, as a tool encoding records would */
    size_t lines = 0, total = 0;
    t0 = now_seconds();
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        citer_encode(t, p, n, CITER_TOK_PARSE_SPECIAL, &ids, &n_ids, &cap);
        total += n_ids;
        lines++;
        p += n;
    }
    double per_line = (double)len / 1e6 / (now_seconds() - t0);

    printf("bench_tokenize: qwen3 encode %.1f MB/s (%.2fx the 5 MB/s target), per-line calls %.1f MB/s "
           "(%zu lines), %.2f bytes/token, load %.3f s (%s)\n",
           mbs, mbs / 5.0, per_line, lines, (double)len / (double)(total ? total : 1), load,
           citer_tokenizer_describe(t));
    free(ids);
    free(text);
    citer_tokenizer_free(t);
    return 0;
}
