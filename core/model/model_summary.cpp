#include "model/model_summary.h"

#include <unistd.h>

#include <cstdio>
#include <set>

#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

static std::string rope_text(const ModelConfig& c) {
    char buf[160];
    if (c.rope_scaling.type == "llama3")
        std::snprintf(buf, sizeof buf, "theta %g, llama3 scaling x%g (from %lld)", c.rope_theta, c.rope_scaling.factor,
                      (long long)c.rope_scaling.original_max_position_embeddings);
    else if (c.rope_scaling.type == "linear")
        std::snprintf(buf, sizeof buf, "theta %g, linear scaling x%g", c.rope_theta, c.rope_scaling.factor);
    else
        std::snprintf(buf, sizeof buf, "theta %g", c.rope_theta);
    return buf;
}

ModelSummary summarize_model(const std::string& dir) {
    ModelSummary s;
    s.config = load_model_config(dir + "/config.json");
    s.family = model_family_name(s.config);
    s.rope = rope_text(s.config);
    Tokenizer tok = Tokenizer::load_dir(dir);
    s.tokenizer_kind = tokenizer_kind_name(tok.kind());
    s.tokenizer_vocab = tok.vocab_size();
    if (s.tokenizer_vocab > s.config.vocab_size)
        fail(dir, "/config.json: vocab_size ", s.config.vocab_size, " is smaller than the tokenizer's ",
             s.tokenizer_vocab, " ids");
    std::set<std::string> files;
    std::string index = dir + "/model.safetensors.index.json";
    if (access(index.c_str(), R_OK) == 0) {
        for (auto& [tensor, shard] : parse_safetensors_index(read_file(index, 64 << 20), index)) files.insert(shard);
    } else if (access((dir + "/model.safetensors").c_str(), R_OK) == 0) {
        files.insert("model.safetensors");
    } else {
        fail(dir, ": no model weights (looked for model.safetensors and model.safetensors.index.json)");
    }
    for (const std::string& f : files) {
        SafetensorsFile st = SafetensorsFile::open(dir + "/" + f);  // validates the header
        for (const TensorInfo& t : st.tensors()) s.weight_bytes += int64_t(t.end - t.begin);
    }
    s.shards = int64_t(files.size());
    return s;
}

std::string model_summary_text(const ModelSummary& s) {
    const ModelConfig& c = s.config;
    char buf[512];
    double params = double(c.parameter_count());
    std::snprintf(buf, sizeof buf,
                  "%s, %.*f%s parameters, %lld layers, hidden %lld, %lld heads / %lld kv heads x %lld%s%s%s, "
                  "RoPE %s, vocab %lld (%s), %.2f GB in %lld file%s",
                  s.family.c_str(), params >= 1e9 ? 2 : 1, params >= 1e9 ? params / 1e9 : params / 1e6,
                  params >= 1e9 ? "B" : "M", (long long)c.num_hidden_layers, (long long)c.hidden_size,
                  (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.head_dim,
                  c.has_qkv_bias() ? ", q/k/v bias" : "", c.qk_norm ? ", q/k norm" : "",
                  c.sliding_window > 0 ? (", sliding window " + std::to_string(c.sliding_window)).c_str() : "",
                  s.rope.c_str(), (long long)c.vocab_size, s.tokenizer_kind.c_str(), double(s.weight_bytes) / 1e9,
                  (long long)s.shards, s.shards == 1 ? "" : "s");
    return buf;
}

}  // namespace lincat
