#include "model/lora.h"

#include <cmath>

namespace lincat {

LoraAdapterImpl::LoraAdapterImpl(int64_t in, int64_t out, int64_t rank, double alpha, double dropout_)
    : scale(alpha / double(rank)), dropout(dropout_) {
    // As PEFT: A ~ kaiming_uniform(a = sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)); B = 0.
    double bound = 1.0 / std::sqrt(double(in));
    A = register_parameter("A", torch::empty({rank, in}).uniform_(-bound, bound));
    B = register_parameter("B", torch::zeros({out, rank}));
}

torch::Tensor LoraAdapterImpl::forward(const torch::Tensor& x) {
    // In A's dtype (fp32 masters under a bf16 base, util/precision.h); project() casts back once.
    auto h = x.to(A.scalar_type());
    if (dropout > 0) h = torch::dropout(h, dropout, is_training());
    return torch::matmul(torch::matmul(h, A.t()).mul_(scale), B.t());  // scaled at rank width, not out
}

torch::Tensor project(Linear& base, const LoraAdapter& lora, const torch::Tensor& x) {
    auto y = base(x);
    // In place: a linear layer's backward does not read its output.
    return lora ? y.add_(lora.ptr()->forward(x).to(y.scalar_type())) : y;
}

}  // namespace lincat
