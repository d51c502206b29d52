#include "model/llama2c.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "model/tokenizer.h"
#include "model/weights.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

// llama2.c rotates adjacent pairs (x0,x1),(x2,x3)...; HF rotates halves. Permuting each
// head's output rows [0,2,4,..,1,3,5,..] makes HF's rope compute what llama2.c's did.
static torch::Tensor permute_for_rotate_half(const torch::Tensor& w, int64_t heads) {
    const int64_t rows = w.size(0), cols = w.size(1);
    return w.view({heads, rows / heads / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

void import_llama2c(const ImportOptions& o) {
    MappedFile file = MappedFile::open(o.model_bin);
    Llama2cHeader h = parse_llama2c_header(file.data(), file.size(), o.model_bin);
    ModelConfig c = llama2c_config(h);
    Tokenizer tok = Tokenizer::load_llama2c_bin(o.tokenizer_bin, h.vocab_size);

    const float* p = reinterpret_cast<const float*>(file.data() + 28);
    auto take = [&](std::vector<int64_t> shape) {
        int64_t n = 1;
        for (auto s : shape) n *= s;
        auto t = torch::from_blob(const_cast<float*>(p), shape, torch::kFloat32).clone();
        p += n;
        return t;
    };
    const int64_t L = h.n_layers, d = h.dim, hd = h.hidden_dim, kv = c.kv_dim();
    auto emb = take({h.vocab_size, d});
    auto rms_att = take({L, d});
    auto wq = take({L, d, d});
    auto wk = take({L, kv, d});
    auto wv = take({L, kv, d});
    auto wo = take({L, d, d});
    auto rms_ffn = take({L, d});
    auto w1 = take({L, hd, d});
    auto w2 = take({L, d, hd});
    auto w3 = take({L, hd, d});
    auto rms_final = take({d});
    p += int64_t(h.seq_len) * c.head_dim;  // precomputed rope tables: recomputed at run time
    torch::Tensor wcls;
    if (!h.shared_classifier) wcls = take({h.vocab_size, d});

    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    tensors.push_back({"model.embed_tokens.weight", emb});
    for (int64_t i = 0; i < L; ++i) {
        std::string pre = "model.layers." + std::to_string(i) + ".";
        tensors.push_back({pre + "input_layernorm.weight", rms_att[i]});
        tensors.push_back({pre + "self_attn.q_proj.weight", permute_for_rotate_half(wq[i], h.n_heads)});
        tensors.push_back({pre + "self_attn.k_proj.weight", permute_for_rotate_half(wk[i], h.n_kv_heads)});
        tensors.push_back({pre + "self_attn.v_proj.weight", wv[i]});
        tensors.push_back({pre + "self_attn.o_proj.weight", wo[i]});
        tensors.push_back({pre + "post_attention_layernorm.weight", rms_ffn[i]});
        tensors.push_back({pre + "mlp.gate_proj.weight", w1[i]});
        tensors.push_back({pre + "mlp.down_proj.weight", w2[i]});
        tensors.push_back({pre + "mlp.up_proj.weight", w3[i]});
    }
    tensors.push_back({"model.norm.weight", rms_final});
    if (wcls.defined()) tensors.push_back({"lm_head.weight", wcls});

    namespace fs = std::filesystem;
    fs::path out(o.out_dir);
    fs::path tmp = out.string() + ".importing." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        write_file_atomic((tmp / "config.json").string(), model_config_to_json(c));
        save_tensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}, {"source", "llama2.c"}});
        write_file_atomic((tmp / "tokenizer.json").string(), tok.to_hf_json());
        write_file_atomic((tmp / "tokenizer.bin").string(), read_file(o.tokenizer_bin));
        if (fs::exists(out)) fs::remove_all(out);
        if (out.has_parent_path()) fs::create_directories(out.parent_path());
        fs::rename(tmp, out);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace lincat
