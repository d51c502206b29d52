#include "model/rope.h"

#include <cmath>
#include <vector>

namespace lincat {

torch::Tensor rope_inv_freq(const ModelConfig& c) {
    const int64_t half = c.head_dim / 2;
    std::vector<float> f(half);
    for (int64_t i = 0; i < half; ++i) {
        // Matches HF (and llama2.c): computed in fp32 from theta^(2i/d).
        float freq = 1.0f / std::pow(float(c.rope_theta), float(2 * i) / float(c.head_dim));
        const RopeScaling& s = c.rope_scaling;
        if (s.type == "linear") {
            freq = float(freq / s.factor);
        } else if (s.type == "llama3") {
            const double old_len = double(s.original_max_position_embeddings);
            const double low_wavelen = old_len / s.low_freq_factor;
            const double high_wavelen = old_len / s.high_freq_factor;
            const double wavelen = 2 * M_PI / freq;
            if (wavelen > low_wavelen) {
                freq = float(freq / s.factor);
            } else if (wavelen >= high_wavelen) {
                double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                freq = float((1 - smooth) * freq / s.factor + smooth * freq);
            }
        }
        f[i] = freq;
    }
    return torch::tensor(f, torch::kFloat32);
}

Rope::Rope(const ModelConfig& config) : inv_freq_(rope_inv_freq(config)) {}

void Rope::ensure(int64_t length) const {
    if (cos_.defined() && cos_.size(0) >= length) return;
    int64_t n = std::max<int64_t>(length, cos_.defined() ? 2 * cos_.size(0) : 256);
    auto pos = torch::arange(n, torch::kFloat32);
    auto freqs = torch::outer(pos, inv_freq_);  // (n, D/2)
    auto emb = torch::cat({freqs, freqs}, -1);  // (n, D)
    cos_ = emb.cos();
    sin_ = emb.sin();
}

torch::Tensor Rope::apply(const torch::Tensor& x, int64_t start) const {
    const int64_t T = x.size(2), D = x.size(3);
    ensure(start + T);
    auto cos = cos_.narrow(0, start, T).to(x.device());
    auto sin = sin_.narrow(0, start, T).to(x.device());
    auto xf = x.to(torch::kFloat32);
    auto x1 = xf.narrow(-1, 0, D / 2), x2 = xf.narrow(-1, D / 2, D / 2);
    auto rotated = torch::cat({-x2, x1}, -1);
    return (xf * cos + rotated * sin).to(x.scalar_type());
}

}  // namespace lincat
