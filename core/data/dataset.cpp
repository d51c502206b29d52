#include "data/dataset.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "attention/softmax.h"
#include "data/alpaca.h"
#include "model/weights.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/progress.h"

namespace lincat {

int64_t sampling_batch_rows(const ModelConfig& c, int64_t len, int64_t element_bytes, int64_t budget_bytes) {
    // Per row: the KV cache of every layer, plus three fp32 rows of the vocabulary (an upper bound: the logits
    // and the draw's row buffer).
    const int64_t kv = 2 * c.num_hidden_layers * c.kv_dim() * len * element_bytes;
    const int64_t row = kv + 3 * c.vocab_size * 4;
    return std::max<int64_t>(1, budget_bytes / std::max<int64_t>(row, 1));
}

torch::Tensor sample_teacher_sequences(LlamaModel& model, int64_t n, int64_t len, uint64_t seed, int32_t bos,
                                       int64_t max_batch, std::optional<torch::Dtype> dtype, SamplingTimes* times) {
    using Clock = std::chrono::steady_clock;
    auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
    SamplingTimes spent;
    torch::NoGradGuard ng;
    // One uniform per token, drawn up front: row r's tokens depend on the seed and r only, not
    // on how rows are batched (tests check that).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto u = torch::rand({n, len}, gen, torch::kFloat32);
    LlamaModel sampler = model;
    if (dtype && *dtype != model->model->embed_tokens->weight.scalar_type()) sampler = llama_in_dtype(model, *dtype);
    const auto& w = sampler->model->embed_tokens->weight;
    if (max_batch <= 0) max_batch = sampling_batch_rows(sampler->config(), len, w.element_size());
    const int64_t batch = std::min(n, max_batch);
    ProgressMeter meter(w.scalar_type() == torch::kBFloat16 ? "sampling teacher data (bf16)" : "sampling teacher data",
                        n * (len - 1), "tokens");
    meter.update(0);
    auto out = torch::full({n, len}, int64_t(bos), torch::kLong);
    for (int64_t start = 0; start < n; start += batch) {
        const int64_t b = std::min(batch, n - start);
        ModelState state = sampler->new_state();
        auto seq = out.narrow(0, start, b);
        auto rows_u = u.narrow(0, start, b).to(w.device());
        // Logits in the sampler's dtype: a bf16 matmul's output is rounded to bf16 already, and
        // widening it (lm_head_forward does) would add a pass over 32 MB a step at 256 x 32K.
        auto step_logits = [&](const torch::Tensor& tokens) {
            auto h = sampler->hidden(tokens, &state).select(1, 0);  // (b, C)
            return torch::matmul(h, sampler->head_weight().t());    // (b, V)
        };
        auto t0 = Clock::now();
        auto logits = step_logits(seq.narrow(1, 0, 1));
        spent.forward_seconds += seconds_since(t0);
        for (int64_t t = 1; t < len; ++t) {
            t0 = Clock::now();
            auto next = inverse_cdf_sample(logits, rows_u.narrow(1, t, 1));
            seq.narrow(1, t, 1).copy_(next);
            spent.pick_seconds += seconds_since(t0);
            t0 = Clock::now();
            if (t + 1 < len) logits = step_logits(next);
            spent.forward_seconds += seconds_since(t0);
            meter.update(start * (len - 1) + b * t);
        }
    }
    spent.batch_rows = batch;
    if (times) *times = spent;
    return out;
}

std::vector<int32_t> tokens_from_text_file(const Tokenizer& tok, const std::string& path) {
    std::string text = read_file(path);
    std::vector<int32_t> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find("\n\n", pos);
        if (end == std::string::npos) end = text.size();
        std::string doc = text.substr(pos, end - pos);
        if (doc.find_first_not_of(" \n\t\r") != std::string::npos) {
            // Every document starts with BOS, also where the tokenizer adds none itself (Qwen's
            // bos_token_id, <|endoftext|>, is its document separator).
            auto ids = tok.encode(doc, false);
            if (tok.bos_id() >= 0) ids.insert(ids.begin(), tok.bos_id());
            out.insert(out.end(), ids.begin(), ids.end());
        }
        pos = end + 2;
    }
    if (out.empty()) fail(path, ": no text");
    return out;
}

std::vector<int32_t> tokens_from_alpaca_jsonl(const Tokenizer& tok, const std::string& path) {
    std::vector<int32_t> out;
    for (const std::string& text : parse_alpaca_jsonl(read_file(path), path)) {
        auto ids = tok.encode(text, true);
        if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
        out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
}

static torch::Tensor pack(const std::vector<int32_t>& stream, int64_t len) {
    const int64_t n = int64_t(stream.size()) / len;
    if (n == 0) fail("data: ", stream.size(), " tokens are fewer than one sequence of ", len);
    auto t = torch::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + n * len), torch::kLong);
    return t.view({n, len});
}

torch::Dtype teacher_sampling_dtype(const DataSpec& spec) {
    if (spec.sample_dtype == "bf16") return torch::kBFloat16;
    if (spec.sample_dtype == "model") return compute().dtype;
    if (spec.sample_dtype != "auto") fail("data: sample_dtype '", spec.sample_dtype, "' is not auto, model or bf16");
    return compute().device.is_cuda() || cpu_computes_bf16_natively() ? torch::kBFloat16 : compute().dtype;
}

// The one name of a sampling precision: the cache file's suffix and its sampled_in metadata.
static std::string sampling_dtype_name(torch::Dtype d) {
    return d == torch::kBFloat16 ? "bf16" : "fp32";
}

static std::string teacher_samples_path(const DataSpec& spec, const std::string& cache_dir,
                                        const std::string& model_hash) {
    const torch::Dtype d = teacher_sampling_dtype(spec);
    const std::string precision = d == torch::kFloat32 ? "" : "-" + sampling_dtype_name(d);
    return cache_dir + "/teacher-seed" + std::to_string(spec.seed) + "-n" + std::to_string(spec.teacher_sequences) +
           "-len" + std::to_string(spec.seq_len) + precision + "-" + model_hash.substr(0, 12) + ".safetensors";
}

bool token_data_needs_teacher(const DataSpec& spec, const std::string& cache_dir, const std::string& model_hash) {
    return spec.text_files.empty() && spec.jsonl_files.empty() &&
           !std::filesystem::exists(teacher_samples_path(spec, cache_dir, model_hash));
}

TokenData load_token_data(const DataSpec& spec, LlamaModel& teacher, const Tokenizer& tok, const std::string& cache_dir,
                          const std::string& model_hash) {
    if (spec.seq_len < 2) fail("data: sequence length must be at least 2");
    torch::Tensor all;
    if (spec.text_files.empty() && spec.jsonl_files.empty()) {
        if (spec.teacher_sequences < 2) fail("data: need at least 2 teacher sequences");
        const std::string path = teacher_samples_path(spec, cache_dir, model_hash);
        if (std::filesystem::exists(path)) {
            all = WeightStore::open_file(path).get("tokens", torch::kLong);
            if (all.dim() != 2 || all.size(0) != spec.teacher_sequences || all.size(1) != spec.seq_len)
                fail(path, ": cached teacher samples have shape ", shape_str(all.sizes()), ", expected [",
                     spec.teacher_sequences, ",", spec.seq_len, "]");
        } else {
            if (tok.bos_id() < 0)
                fail("data: the model names no BOS (bos_token_id) to start teacher samples from; give --data files");
            all = sample_teacher_sequences(teacher, spec.teacher_sequences, spec.seq_len, spec.seed, tok.bos_id(),
                                           /*max_batch=*/0, teacher_sampling_dtype(spec));
            std::filesystem::create_directories(cache_dir);
            save_tensors(
                path, {{"tokens", all.to(torch::kInt32)}},
                {{"base_model_hash", model_hash}, {"sampled_in", sampling_dtype_name(teacher_sampling_dtype(spec))}});
        }
    } else {
        std::vector<int32_t> stream;
        for (auto& f : spec.text_files) {
            auto t = tokens_from_text_file(tok, f);
            stream.insert(stream.end(), t.begin(), t.end());
        }
        for (auto& f : spec.jsonl_files) {
            auto t = tokens_from_alpaca_jsonl(tok, f);
            stream.insert(stream.end(), t.begin(), t.end());
        }
        all = pack(stream, spec.seq_len);
    }
    const int64_t n = all.size(0);
    if (n < 2) fail("data: only ", n, " sequence(s) of ", spec.seq_len, " tokens; need 2 for a train/eval split");
    int64_t m = std::max<int64_t>(1, int64_t(double(n) * spec.eval_fraction));
    return {all.narrow(0, 0, n - m), all.narrow(0, n - m, m)};
}

}  // namespace lincat
