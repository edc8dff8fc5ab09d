/* tokenizer_json: loader for Hugging Face tokenizer.json files (model BPE), plus the
 * tokenizer_config.json beside them (add_bos_token, add_eos_token, bos_token, eos_token). */
#include "tokenizer_impl.h"
#include "util.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    citer_tokenizer *t;
    const char *file; /* base name for messages */
    int err;
    int32_t tmpl_bos, tmpl_eos; /* from post_processor TemplateProcessing */
    int has_tmpl;
} jload;

static int fail(jload *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(jload *L, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    citer_set_error("%s: %s", L->file, msg);
    L->err = 1;
    return -1;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int get_bool(json_object *o, const char *key, int dflt)
{
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : dflt;
}

/* NULL + citer_error() when unreadable or not JSON. */
static json_object *parse_json(const char *path, const char *file)
{
    size_t len;
    char *buf = citer_read_file(path, &len);
    if (!buf) return NULL;
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (!root || e != json_tokener_success) {
        citer_set_error("%s: not valid JSON at byte %zu: %s", file, json_tokener_get_parse_end(tok),
                 e == json_tokener_continue ? "unexpected end of file" : json_tokener_error_desc(e));
        if (root) json_object_put(root);
        root = NULL;
    }
    json_tokener_free(tok);
    free(buf);
    return root;
}

static void add_norm(citer_tokenizer *t, int op, const char *a, const char *b)
{
    t->norm = xrealloc(t->norm, (t->n_norm + 1) * sizeof *t->norm);
    tok_norm *n = &t->norm[t->n_norm++];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (a) {
        n->a = xstrdup(a);
        n->alen = strlen(a);
    }
    if (b) {
        n->b = xstrdup(b);
        n->blen = strlen(b);
    }
}

static int load_normalizer(jload *L, json_object *n, const char *where)
{
    if (!n || json_object_is_type(n, json_type_null)) return 0;
    const char *type = get_str(n, "type");
    if (!type) return fail(L, "%s: no \"type\"", where);
    if (!strcmp(type, "NFC")) {
        add_norm(L->t, NORM_NFC, NULL, NULL);
    } else if (!strcmp(type, "Lowercase")) {
        add_norm(L->t, NORM_LOWERCASE, NULL, NULL);
    } else if (!strcmp(type, "Prepend")) {
        const char *p = get_str(n, "prepend");
        if (!p) return fail(L, "%s: Prepend without a \"prepend\" string", where);
        add_norm(L->t, NORM_PREPEND, p, NULL);
    } else if (!strcmp(type, "Replace")) {
        const char *pat = get_str(get(n, "pattern"), "String");
        const char *content = get_str(n, "content");
        if (!pat || !content)
            return fail(L, "%s: Replace needs a {\"String\": ...} pattern and a content (regex patterns are not supported)", where);
        if (!*pat) return fail(L, "%s: Replace with an empty pattern", where);
        add_norm(L->t, NORM_REPLACE, pat, content);
    } else if (!strcmp(type, "Sequence")) {
        json_object *list = get(n, "normalizers");
        if (!list || !json_object_is_type(list, json_type_array)) return fail(L, "%s: Sequence without a \"normalizers\" array", where);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            char w[64];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            if (load_normalizer(L, json_object_array_get_idx(list, i), w)) return -1;
        }
    } else {
        return fail(L, "%s: normalizer type \"%s\" is not supported", where, type);
    }
    return 0;
}

static int add_stage(jload *L, int stage, const char *where)
{
    if (L->t->n_pre >= PRETOK_MAX_STAGES) return fail(L, "%s: too many pre-tokenizer stages", where);
    L->t->pre[L->t->n_pre++] = stage;
    return 0;
}

static int load_pretok(jload *L, json_object *p, const char *where)
{
    if (!p || json_object_is_type(p, json_type_null)) return 0;
    const char *type = get_str(p, "type");
    if (!type) return fail(L, "%s: no \"type\"", where);
    citer_tokenizer *t = L->t;
    if (!strcmp(type, "ByteLevel")) {
        t->byte_level = 1;
        t->add_prefix_space = get_bool(p, "add_prefix_space", 0);
        if (get_bool(p, "use_regex", 1)) return add_stage(L, PT_GPT2, where);
    } else if (!strcmp(type, "Split")) {
        json_object *pat = get(p, "pattern");
        const char *re = get_str(pat, "Regex");
        const char *behavior = get_str(p, "behavior");
        if (!re) return fail(L, "%s: Split pattern is not {\"Regex\": ...} (string patterns are not supported)", where);
        if (behavior && strcmp(behavior, "Isolated") != 0)
            return fail(L, "%s: Split behavior \"%s\" is not supported (only Isolated)", where, behavior);
        if (get_bool(p, "invert", 0)) return fail(L, "%s: inverted Split is not supported", where);
        int stage = pretok_stage_by_regex(re);
        if (stage == PT_NONE) return fail(L, "%s: unknown split regex \"%s\" (no hand-written matcher for it)", where, re);
        return add_stage(L, stage, where);
    } else if (!strcmp(type, "Metaspace")) {
        const char *rep = get_str(p, "replacement"), *scheme = get_str(p, "prepend_scheme");
        if (!rep) rep = "\xe2\x96\x81";
        if (!*rep || strlen(rep) >= sizeof t->meta_rep) return fail(L, "%s: Metaspace replacement \"%s\" not supported", where, rep);
        t->metaspace = 1;
        strcpy(t->meta_rep, rep);
        if (scheme) {
            if (!strcmp(scheme, "always")) t->meta_prepend = 2;
            else if (!strcmp(scheme, "first")) t->meta_prepend = 1;
            else if (!strcmp(scheme, "never")) t->meta_prepend = 0;
            else return fail(L, "%s: Metaspace prepend_scheme \"%s\" not supported", where, scheme);
        } else {
            t->meta_prepend = get_bool(p, "add_prefix_space", 1) ? 2 : 0;
        }
        t->meta_split = get_bool(p, "split", 1);
    } else if (!strcmp(type, "Digits")) {
        return add_stage(L, get_bool(p, "individual_digits", 0) ? PT_DIGIT : PT_DIGITS, where);
    } else if (!strcmp(type, "Sequence")) {
        json_object *list = get(p, "pretokenizers");
        if (!list || !json_object_is_type(list, json_type_array)) return fail(L, "%s: Sequence without a \"pretokenizers\" array", where);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            char w[64];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            if (load_pretok(L, json_object_array_get_idx(list, i), w)) return -1;
        }
    } else {
        return fail(L, "%s: pre-tokenizer type \"%s\" is not supported", where, type);
    }
    return 0;
}

/* Decoders: ByteLevel, or the SentencePiece-style chain Replace(▁→' ') ByteFallback Fuse Strip. */
static int load_decoder(jload *L, json_object *d)
{
    citer_tokenizer *t = L->t;
    t->decoder = t->byte_level ? DEC_HF_BYTELEVEL : DEC_HF_NONE;
    if (!d || json_object_is_type(d, json_type_null)) return 0;
    const char *type = get_str(d, "type");
    if (!type) return fail(L, "decoder: no \"type\"");
    if (!strcmp(type, "ByteLevel")) {
        t->decoder = DEC_HF_BYTELEVEL;
    } else if (!strcmp(type, "Metaspace")) {
        t->decoder = DEC_HF_SPM;
    } else if (!strcmp(type, "Sequence")) {
        json_object *list = get(d, "decoders");
        if (!list || !json_object_is_type(list, json_type_array)) return fail(L, "decoder: Sequence without a \"decoders\" array");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            const char *ty = get_str(json_object_array_get_idx(list, i), "type");
            if (!ty) return fail(L, "decoder.decoders[%zu]: no \"type\"", i);
            if (!strcmp(ty, "ByteLevel")) t->decoder = DEC_HF_BYTELEVEL;
            else if (!strcmp(ty, "Replace") || !strcmp(ty, "ByteFallback") || !strcmp(ty, "Fuse") ||
                     !strcmp(ty, "Strip") || !strcmp(ty, "Metaspace"))
                t->decoder = DEC_HF_SPM;
            else return fail(L, "decoder.decoders[%zu]: decoder type \"%s\" is not supported", i, ty);
        }
    } else {
        return fail(L, "decoder: decoder type \"%s\" is not supported", type);
    }
    return 0;
}

/* TemplateProcessing (possibly inside a Sequence): the special tokens around $A. */
static void load_post(jload *L, json_object *p)
{
    const char *type = get_str(p, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        json_object *list = get(p, "processors");
        if (list && json_object_is_type(list, json_type_array))
            for (size_t i = 0; i < json_object_array_length(list); i++) load_post(L, json_object_array_get_idx(list, i));
        return;
    }
    if (strcmp(type, "TemplateProcessing") != 0) return;
    json_object *single = get(p, "single");
    if (!single || !json_object_is_type(single, json_type_array)) return;
    L->has_tmpl = 1;
    int seen_a = 0;
    for (size_t i = 0; i < json_object_array_length(single); i++) {
        json_object *it = json_object_array_get_idx(single, i);
        if (get(it, "Sequence")) {
            seen_a = 1;
            continue;
        }
        const char *name = get_str(get(it, "SpecialToken"), "id");
        if (!name) continue;
        int32_t id = -1;
        json_object *ids = get(get(get(p, "special_tokens"), name), "ids");
        if (ids && json_object_is_type(ids, json_type_array) && json_object_array_length(ids) > 0)
            id = (int32_t)json_object_get_int64(json_object_array_get_idx(ids, 0));
        if (id < 0) id = tok_lookup(L->t, name, strlen(name));
        if (id < 0 || id >= L->t->n_vocab) continue;
        if (!seen_a && L->tmpl_bos < 0) L->tmpl_bos = id;
        if (seen_a && L->tmpl_eos < 0) L->tmpl_eos = id;
    }
}

static int load_vocab(jload *L, json_object *model, json_object *added)
{
    citer_tokenizer *t = L->t;
    json_object *vocab = get(model, "vocab");
    if (!vocab || !json_object_is_type(vocab, json_type_object)) return fail(L, "model.vocab: missing or not an object");
    int64_t max_id = -1;
    json_object_object_foreach(vocab, key, val) {
        if (!json_object_is_type(val, json_type_int)) return fail(L, "model.vocab[\"%s\"]: id is not an integer", key);
        int64_t id = json_object_get_int64(val);
        if (id < 0 || id >= INT32_MAX / 2) return fail(L, "model.vocab[\"%s\"]: id %lld out of range", key, (long long)id);
        if (id > max_id) max_id = id;
    }
    size_t n_added = added && json_object_is_type(added, json_type_array) ? json_object_array_length(added) : 0;
    if (added && !json_object_is_type(added, json_type_array) && !json_object_is_type(added, json_type_null))
        return fail(L, "added_tokens: not an array");
    for (size_t i = 0; i < n_added; i++) {
        json_object *a = json_object_array_get_idx(added, i);
        json_object *idv = get(a, "id");
        if (!idv || !json_object_is_type(idv, json_type_int)) return fail(L, "added_tokens[%zu]: \"id\" missing or not an integer", i);
        if (!get_str(a, "content")) return fail(L, "added_tokens[%zu]: \"content\" missing or not a string", i);
        int64_t id = json_object_get_int64(idv);
        if (id < 0 || id >= INT32_MAX / 2) return fail(L, "added_tokens[%zu]: id %lld out of range", i, (long long)id);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return fail(L, "model.vocab: empty vocabulary");
    t->n_vocab = (int32_t)(max_id + 1);
    t->text = xcalloc((size_t)t->n_vocab, sizeof *t->text);
    t->tlen = xcalloc((size_t)t->n_vocab, sizeof *t->tlen);
    json_object_object_foreach(vocab, key2, val2) {
        int32_t id = (int32_t)json_object_get_int64(val2);
        if (t->text[id]) return fail(L, "model.vocab: id %ld given to both \"%s\" and \"%s\"", (long)id, t->text[id], key2);
        tok_set_token(t, id, key2, strlen(key2));
    }
    t->added = xcalloc(n_added ? n_added : 1, sizeof *t->added);
    for (size_t i = 0; i < n_added; i++) {
        json_object *a = json_object_array_get_idx(added, i);
        int32_t id = (int32_t)json_object_get_int64(get(a, "id"));
        json_object *cv = get(a, "content");
        const char *content = json_object_get_string(cv);
        size_t clen = (size_t)json_object_get_string_len(cv);
        for (size_t k = 0; k < t->n_added; k++)
            if (t->added[k].id == id) return fail(L, "added_tokens[%zu]: id %ld appears twice", i, (long)id);
        /* an added token's own text wins over a vocabulary entry with the same id */
        tok_set_token(t, id, content, clen);
        tok_added *ad = &t->added[t->n_added++];
        ad->text = xstrndup(content, clen);
        ad->len = clen;
        ad->id = id;
        ad->special = (uint8_t)get_bool(a, "special", 0);
        ad->lstrip = (uint8_t)get_bool(a, "lstrip", 0);
        ad->rstrip = (uint8_t)get_bool(a, "rstrip", 0);
        ad->normalized = (uint8_t)get_bool(a, "normalized", !ad->special);
    }
    return 0;
}

static int load_merges(jload *L, json_object *model)
{
    citer_tokenizer *t = L->t;
    json_object *merges = get(model, "merges");
    if (!merges || json_object_is_type(merges, json_type_null)) return 0;
    if (!json_object_is_type(merges, json_type_array)) return fail(L, "model.merges: not an array");
    tok_hash_build(t, L->file);
    size_t n = json_object_array_length(merges);
    char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        const char *a, *b;
        size_t al, bl;
        if (json_object_is_type(m, json_type_string)) {
            const char *s = json_object_get_string(m);
            const char *sp = *s ? strchr(s + 1, ' ') : NULL;
            if (!sp || strchr(sp + 1, ' ')) {
                free(buf);
                return fail(L, "model.merges[%zu]: \"%s\" is not two tokens separated by one space", i, s);
            }
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = strlen(b);
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2 &&
                   json_object_is_type(json_object_array_get_idx(m, 0), json_type_string) &&
                   json_object_is_type(json_object_array_get_idx(m, 1), json_type_string)) {
            a = json_object_get_string(json_object_array_get_idx(m, 0));
            al = (size_t)json_object_get_string_len(json_object_array_get_idx(m, 0));
            b = json_object_get_string(json_object_array_get_idx(m, 1));
            bl = (size_t)json_object_get_string_len(json_object_array_get_idx(m, 1));
        } else {
            free(buf);
            return fail(L, "model.merges[%zu]: not a pair of strings", i);
        }
        int32_t l = tok_lookup(t, a, al), r = tok_lookup(t, b, bl);
        xgrow((void **)&buf, &cap, al + bl + 1, 1);
        memcpy(buf, a, al);
        memcpy(buf + al, b, bl);
        buf[al + bl] = 0;
        int32_t mid = tok_lookup(t, buf, al + bl);
        if (l < 0 || r < 0 || mid < 0) {
            int e = fail(L, "model.merges[%zu]: token \"%.*s\" is not in the vocabulary", i,
                         (int)(l < 0 ? al : r < 0 ? bl : al + bl), l < 0 ? a : r < 0 ? b : buf);
            free(buf);
            return e;
        }
        merges_add(t, l, r, mid);
    }
    free(buf);
    return 0;
}

/* tokenizer_config.json: a string or {"content": ...} token. */
static const char *config_token(json_object *c, const char *key)
{
    json_object *v = get(c, key);
    if (!v) return NULL;
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    return get_str(v, "content");
}

static void load_config(jload *L, const char *json_path)
{
    citer_tokenizer *t = L->t;
    const char *slash = strrchr(json_path, '/');
    size_t dl = slash ? (size_t)(slash - json_path + 1) : 0;
    char *p = xmalloc(dl + 32);
    memcpy(p, json_path, dl);
    strcpy(p + dl, "tokenizer_config.json");
    int have_bos_flag = 0, have_eos_flag = 0;
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        json_object *c = parse_json(p, "tokenizer_config.json");
        if (c) {
            const char *bos = config_token(c, "bos_token"), *eos = config_token(c, "eos_token");
            if (bos) t->bos = tok_lookup(t, bos, strlen(bos));
            if (eos) t->eos = tok_lookup(t, eos, strlen(eos));
            json_object *v;
            if ((v = get(c, "add_bos_token")) && json_object_is_type(v, json_type_boolean)) {
                t->add_bos = json_object_get_boolean(v);
                have_bos_flag = 1;
            }
            if ((v = get(c, "add_eos_token")) && json_object_is_type(v, json_type_boolean)) {
                t->add_eos = json_object_get_boolean(v);
                have_eos_flag = 1;
            }
            json_object_put(c);
        }
    }
    free(p);
    /* Without an explicit flag, the post-processor's template decides. */
    if (!have_bos_flag && L->tmpl_bos >= 0) {
        t->add_bos = 1;
        if (t->bos < 0) t->bos = L->tmpl_bos;
    }
    if (!have_eos_flag && L->tmpl_eos >= 0) {
        t->add_eos = 1;
        if (t->eos < 0) t->eos = L->tmpl_eos;
    }
}

citer_tokenizer *tok_load_json(const char *path)
{
    const char *slash = strrchr(path, '/');
    jload L = {0};
    L.file = slash ? slash + 1 : path;
    L.tmpl_bos = L.tmpl_eos = -1;
    json_object *root = parse_json(path, L.file);
    if (!root) return NULL;
    citer_tokenizer *t = L.t = tok_new();
    t->model = TOK_BPE;
    json_object *model = get(root, "model");
    const char *mtype = get_str(model, "type");
    if (!json_object_is_type(root, json_type_object)) fail(&L, "not a JSON object");
    else if (!model || !json_object_is_type(model, json_type_object)) fail(&L, "no \"model\" object");
    else if (mtype && strcmp(mtype, "BPE") != 0) fail(&L, "model.type \"%s\" is not supported (only BPE)", mtype);
    else if (!mtype && !get(model, "merges")) fail(&L, "model: no \"type\" and no \"merges\" (only BPE is supported)");
    if (L.err) goto bad;
    const char *cs = get_str(model, "continuing_subword_prefix"), *es = get_str(model, "end_of_word_suffix");
    if ((cs && *cs) || (es && *es)) {
        fail(&L, "model: continuing_subword_prefix / end_of_word_suffix are not supported");
        goto bad;
    }
    if (load_vocab(&L, model, get(root, "added_tokens"))) goto bad;
    if (load_merges(&L, model)) goto bad;
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    const char *unk = get_str(model, "unk_token");
    if (load_normalizer(&L, get(root, "normalizer"), "normalizer")) goto bad;
    if (load_pretok(&L, get(root, "pre_tokenizer"), "pre_tokenizer")) goto bad;
    if (load_decoder(&L, get(root, "decoder"))) goto bad;
    tok_finish(t);
    if (unk) t->unk = tok_lookup(t, unk, strlen(unk));
    json_object *post = get(root, "post_processor");
    if (post) load_post(&L, post);
    load_config(&L, path);
    json_object_put(root);

    int k = snprintf(t->desc, sizeof t->desc, "%s BPE, %ld tokens, %zu merges, pre-tokenizer ",
                     t->byte_level ? "byte-level" : "SentencePiece-style", (long)t->n_vocab, t->n_merges);
    for (int i = 0; i < t->n_pre && k > 0 && (size_t)k < sizeof t->desc; i++)
        k += snprintf(t->desc + k, sizeof t->desc - (size_t)k, "%s%s", i ? "+" : "", pretok_stage_name(t->pre[i]));
    if (t->n_pre == 0 && k > 0 && (size_t)k < sizeof t->desc)
        snprintf(t->desc + k, sizeof t->desc - (size_t)k, "%s", t->metaspace ? "metaspace" : "none");
    return t;
bad:
    json_object_put(root);
    citer_tokenizer_free(t);
    return NULL;
}
