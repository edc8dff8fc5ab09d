/* The engine against the reference fixtures: logits, hidden states and greedy tokens of real
 * tiny models and random models of real architectures, from GGUF and safetensors. */
#include <math.h>

#include "check.h"
#include "forward.h"
#include "kvcache.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

typedef struct {
    const char *model, *ref;
    double tol, margin;
    int greedy_exact;
} fixture_case;

static const fixture_case cases[] = {
    {"models/stories260K/hf", "models/stories260K/stories260K.ref.safetensors", 1e-4, 0.001, 1},
    {"models/stories260K/stories260K-f32.gguf", "models/stories260K/stories260K.ref.safetensors", 1e-4, 0.001, 1},
    {"models/saltyduckegg-llama2xs/hf", "models/saltyduckegg-llama2xs/saltyduckegg-llama2xs.ref.safetensors", 1e-4, 0.001, 1},
    {"models/saltyduckegg-llama2xs/saltyduckegg-llama2xs-f32.gguf",
     "models/saltyduckegg-llama2xs/saltyduckegg-llama2xs.ref.safetensors", 1e-4, 0.001, 1},
    {"models/llama-gqa/hf", "models/llama-gqa/llama-gqa.ref.safetensors", 1e-3, 0.01, 1},
    {"models/llama-gqa/llama-gqa-f32.gguf", "models/llama-gqa/llama-gqa.ref.safetensors", 1e-4, 0.001, 1},
    {"models/llama-gqa/llama-gqa-f16.gguf", "models/llama-gqa/llama-gqa-f16.ref.safetensors", 1e-3, 0.01, 1},
    {"models/llama-gqa/llama-gqa-q8_0.gguf", "models/llama-gqa/llama-gqa-q8_0.ref.safetensors", 2e-2, 0.1, 0},
    {"models/qwen2/hf", "models/qwen2/qwen2.ref.safetensors", 1e-3, 0.01, 1},
    {"models/qwen2/qwen2-f32.gguf", "models/qwen2/qwen2.ref.safetensors", 1e-4, 0.001, 1},
    {"models/qwen3/hf", "models/qwen3/qwen3.ref.safetensors", 1e-3, 0.01, 1},
};

static double rel_l2(const float *a, const float *ref, int n)
{
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static const st_tensor *ref_tensor(const st_file *f, const char *name, int dtype)
{
    const st_tensor *t = st_find(f, name);
    return t && t->dtype == dtype ? t : NULL;
}

/* Compare rows of (T x width) against the reference; returns the worst relative error. */
static double worst(const float *got, const float *ref, int T, int width)
{
    double w = 0;
    for (int t = 0; t < T; t++) {
        double e = rel_l2(got + (size_t)t * width, ref + (size_t)t * width, width);
        if (e > w) w = e;
    }
    return w;
}

static void run_case(const fixture_case *fc)
{
    const char *mpath = t_fixture(fc->model), *rpath = t_fixture(fc->ref);
    if (!mpath || !rpath) {
        printf("SKIP: %s: %s\n", fc->model, NO_FIXTURES);
        return;
    }
    int failed_before = t_failed;
    citer_model *m = citer_model_load(mpath);
    st_file *ref = st_open(rpath);
    CHECK(m != NULL, "%s: %s", fc->model, m ? "" : citer_error());
    CHECK(ref != NULL, "%s", ref ? "" : citer_error());
    if (!m || !ref) goto done;
    const st_tensor *tt = ref_tensor(ref, "tokens", ST_I32), *tl = ref_tensor(ref, "logits", ST_F32),
                    *th = ref_tensor(ref, "hidden", ST_F32), *tg = ref_tensor(ref, "greedy", ST_I32),
                    *tm = ref_tensor(ref, "logits_margin", ST_F32);
    CHECK(tt && tl && th && tg && tm, "reference tensors missing");
    if (!(tt && tl && th && tg && tm)) goto done;
    int T = (int)tt->shape[0], V = m->cfg.vocab_size, D = m->cfg.dim;
    CHECK((int)tl->shape[1] == V && (int)th->shape[1] == D, "reference shape differs from the model");
    const int32_t *tokens = tt->data;
    const float *rl = tl->data, *rh = th->data, *margin = tm->data;
    float *logits = xmalloc((size_t)T * V * sizeof(float)), *hidden = xmalloc((size_t)T * D * sizeof(float));

    /* 1. the whole prompt as one batch */
    citer_seq *s = citer_seq_new(m);
    CHECK(citer_forward(m, s, tokens, T, hidden, logits, 1) == 0, "%s", citer_error());
    double el = worst(logits, rl, T, V), eh = worst(hidden, rh, T, D);
    CHECK(el <= fc->tol, "%s batch: logits rel err %.3g > %.3g", fc->model, el, fc->tol);
    CHECK(eh <= fc->tol, "%s batch: hidden rel err %.3g > %.3g", fc->model, eh, fc->tol);
    int argmax_checked = 0;
    for (int t = 0; t < T; t++)
        if (margin[t] > fc->margin) {
            argmax_checked++;
            CHECK(argmax(logits + (size_t)t * V, V) == argmax(rl + (size_t)t * V, V), "%s: argmax differs at %d",
                  fc->model, t);
        }
    printf("  %s: batch logits %.2e hidden %.2e, argmax checked at %d/%d\n", fc->model, el, eh, argmax_checked, T);

    /* 2. token by token through the KV cache */
    citer_seq *s2 = citer_seq_new(m);
    for (int t = 0; t < T; t++)
        CHECK(citer_forward(m, s2, tokens + t, 1, hidden + (size_t)t * D, logits + (size_t)t * V, 0) == 0, "%s",
              citer_error());
    double el2 = worst(logits, rl, T, V), eh2 = worst(hidden, rh, T, D);
    CHECK(el2 <= fc->tol, "%s stepwise: logits rel err %.3g > %.3g", fc->model, el2, fc->tol);
    CHECK(eh2 <= fc->tol, "%s stepwise: hidden rel err %.3g > %.3g", fc->model, eh2, fc->tol);

    /* 3. greedy continuation, 32 steps, no stop at EOS */
    const int32_t *want = tg->data;
    int n_greedy = (int)tg->shape[0], same = 0;
    int32_t tok = (int32_t)argmax(logits + (size_t)(T - 1) * V, V);
    for (int i = 0; i < n_greedy; i++) {
        if (tok == want[i]) same++;
        else if (fc->greedy_exact) break;
        CHECK(citer_forward(m, s2, &tok, 1, NULL, logits, 0) == 0, "%s", citer_error());
        tok = (int32_t)argmax(logits, V);
    }
    if (fc->greedy_exact) CHECK(same == n_greedy, "%s: greedy matches %d/%d", fc->model, same, n_greedy);
    printf("  %s: stepwise logits %.2e hidden %.2e, greedy %d/%d%s\n", fc->model, el2, eh2, same, n_greedy,
           fc->greedy_exact ? "" : " (informative)");
    citer_seq_free(s);
    citer_seq_free(s2);
    free(logits);
    free(hidden);
done:
    citer_model_free(m);
    st_close(ref);
    printf("%s: %s\n", t_failed > failed_before ? "FAIL" : "PASS", fc->model);
    if (t_failed > failed_before) t_total_failed++;
    t_failed = 0;
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    return t_exit();
}
