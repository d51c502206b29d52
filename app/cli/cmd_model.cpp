// Commands over plain (softmax) models: import-llama2c, generate, ppl, models.
#include <unistd.h>

#include <cstdio>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/attention_map.h"
#include "eval/perplexity.h"
#include "model/generate.h"
#include "model/llama.h"
#include "model/llama2c.h"
#include "model/model_dir.h"
#include "model/model_summary.h"
#include "model/tokenizer.h"
#include "train/distill_config.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat::cli {

// The base model, or the base model with a linearized checkpoint applied.
static LlamaModel load_model(const std::string& dir, const std::string& checkpoint, torch::Dtype dtype) {
    return checkpoint.empty() ? load_llama(dir, dtype) : load_linearized(dir, checkpoint, dtype);
}

static bool has_hybrid_layers(const LlamaModel& model) {
    for (int64_t l = 0; l < model->num_layers(); ++l)
        if (hybrid_core(model, l)) return true;
    return false;
}

int cmd_import_llama2c(const Argv& argv) {
    Args a("import-llama2c",
           {{"model-bin", "llama2.c model.bin"},
            {"tokenizer-bin", "llama2.c tokenizer.bin"},
            {"out", "output folder (Hugging Face layout)"}},
           argv);
    if (!a.has("model-bin") || !a.has("tokenizer-bin") || !a.has("out"))
        fail("--model-bin, --tokenizer-bin and --out are required\n", a.help());
    import_llama2c({a.get("model-bin"), a.get("tokenizer-bin"), a.get("out")});
    std::printf("imported %s -> %s\n", a.get("model-bin").c_str(), a.get("out").c_str());
    return 0;
}

int cmd_generate(const Argv& argv) {
    Args a("generate",
           with_compute_options({{"model", "model folder or cache name", false, "default"},
                                 {"prompt", "prompt text (BOS is prepended)", false, "\"\""},
                                 {"max-new-tokens", "tokens to generate", false, "256"},
                                 {"greedy", "greedy decoding (the default unless --temperature is given)", true},
                                 {"temperature", "sampling temperature", false, "0"},
                                 {"top-p", "nucleus sampling threshold", false, "1"},
                                 {"seed", "sampling seed", false, "42"},
                                 {"batch", "rows generated together (row 0 is printed)", false, "1"},
                                 {"checkpoint", "linearized checkpoint folder (from lincat distill / finetune)"},
                                 {"run", "or: the best checkpoint of this run (needs --workspace)"},
                                 {"workspace", "workspace holding --run"},
                                 {"json", "print one JSON object (text, tokens/s, state) instead of streaming", true}}),
           argv);
    apply_compute_options(a);
    std::string dir = resolve_model_dir(a.get("model", "default"));
    Tokenizer tok = Tokenizer::load_dir(dir);
    LlamaModel model = load_model(dir, checkpoint_from_args(a), compute().dtype);
    const bool as_json = a.flag("json");
    GenerateOptions o;
    o.batch = a.get_int("batch", 1);
    o.max_new_tokens = a.get_int("max-new-tokens", 256);
    o.temperature = a.flag("greedy") ? 0.0 : a.get_double("temperature", 0.0);
    o.top_p = a.get_double("top-p", 1.0);
    o.seed = uint64_t(a.get_int("seed", 42));
    o.stop_ids = stop_tokens(tok);
    auto prompt = tok.encode(a.get("prompt"), true);
    if (prompt.empty() && tok.bos_id() >= 0) prompt.push_back(tok.bos_id());  // an empty prompt starts from BOS
    TokenTextStream stream(tok);
    std::string text;
    auto show = [&](const std::string& piece) {
        text += piece;
        if (!as_json) std::fputs(piece.c_str(), stdout), std::fflush(stdout);
    };
    for (int32_t id : prompt) show(stream.push(id));
    auto r = generate(model, prompt, o, [&](int32_t id) {
        show(stream.push(id));
        return true;
    });
    show(stream.finish());
    if (as_json) {
        std::printf("%s\n", json({{"text", text},
                                  {"linearized", has_hybrid_layers(model)},
                                  {"tokens", r.tokens.size()},
                                  {"prefill_ms", 1e3 * r.prefill_seconds},
                                  {"tokens_per_second", r.tokens_per_second()},
                                  {"state_mb", double(r.state_bytes) / 1e6}})
                                .dump()
                                .c_str());
        return 0;
    }
    std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "[%s, batch %lld: %zu tokens, prefill %.1f ms, %.1f tokens/s, state %.2f MB]\n",
                 has_hybrid_layers(model) ? "linearized" : "softmax", (long long)o.batch, r.tokens.size(),
                 1e3 * r.prefill_seconds, r.tokens_per_second(), double(r.state_bytes) / 1e6);
    return 0;
}

int cmd_attention_map(const Argv& argv) {
    Args a("attention-map",
           with_compute_options({{"model", "model folder or cache name", false, "default"},
                                 {"prompt", "prompt text (BOS is prepended)"},
                                 {"layer", "layer", false, "0"},
                                 {"head", "head", false, "0"},
                                 {"max-tokens", "use at most this many prompt tokens", false, "128"},
                                 {"checkpoint", "linearized checkpoint folder"},
                                 {"run", "or: the best checkpoint of this run (needs --workspace)"},
                                 {"workspace", "workspace holding --run"}}),
           argv);
    apply_compute_options(a);
    if (!a.has("prompt")) fail("--prompt TEXT is required\n", a.help());
    std::string dir = resolve_model_dir(a.get("model", "default"));
    Tokenizer tok = Tokenizer::load_dir(dir);
    LlamaModel teacher = load_llama(dir);
    std::string ckpt = checkpoint_from_args(a);
    LlamaModel student = ckpt.empty() ? load_llama(dir) : load_linearized(dir, ckpt);
    if (ckpt.empty()) {
        torch::manual_seed(0);
        linearize(student, DistillConfig{}.linearize);  // fresh feature maps: what attention transfer starts from
    }
    AttentionMap m = attention_map(teacher, student, tok, a.get("prompt"), a.get_int("layer", 0), a.get_int("head", 0),
                                   a.get_int("max-tokens", 128));
    std::printf("%s\n", attention_map_to_json(m).c_str());
    return 0;
}

int cmd_ppl(const Argv& argv) {
    Args a("ppl",
           with_compute_options({{"model", "model folder or cache name", false, "default"},
                                 {"data", "UTF-8 text file"},
                                 {"seq-len", "window length in tokens", false, "min(max_position_embeddings, 2048)"},
                                 {"stride", "window stride", false, "seq-len / 2"},
                                 {"max-tokens", "score at most this many tokens", false, "all"},
                                 {"checkpoint", "linearized checkpoint folder (from lincat distill / finetune)"},
                                 {"run", "or: the best checkpoint of this run (needs --workspace)"},
                                 {"workspace", "workspace holding --run"}}),
           argv);
    apply_compute_options(a);
    if (!a.has("data")) fail("--data FILE is required\n", a.help());
    std::string dir = resolve_model_dir(a.get("model", "default"));
    Tokenizer tok = Tokenizer::load_dir(dir);
    LlamaModel model = load_model(dir, checkpoint_from_args(a), compute().dtype);
    std::string text = read_file(a.get("data"));
    auto tokens = tok.encode(text, true);
    int64_t max_tokens = a.get_int("max-tokens", 0);
    if (max_tokens > 0 && int64_t(tokens.size()) > max_tokens) tokens.resize(size_t(max_tokens));
    int64_t seq = a.get_int("seq-len", std::min(model->config().max_position_embeddings, kDefaultPerplexityWindow));
    int64_t stride = a.get_int("stride", std::max<int64_t>(1, seq / 2));
    auto r = perplexity(model, tokens, seq, stride);
    std::printf("perplexity %.4f over %lld tokens (%lld windows, seq-len %lld, stride %lld)\n", r.perplexity(),
                (long long)r.tokens_scored, (long long)r.windows, (long long)seq, (long long)stride);
    return 0;
}

int cmd_models(const Argv& argv) {
    Args a("models", {}, argv);
    auto models = cached_models();
    std::printf("cache: %s\n", cache_dir().c_str());
    if (models.empty()) std::printf("(no models; packaging/setup.sh fetches the default model)\n");
    for (auto& dir : models) {
        try {
            std::printf("%s\n    %s\n", dir.c_str(), model_summary_text(summarize_model(dir)).c_str());
        } catch (const std::exception& e) {
            std::printf("%s\n    cannot be loaded: %s\n", dir.c_str(), e.what());
        }
    }
    return 0;
}

}  // namespace lincat::cli
