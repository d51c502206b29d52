#include "attention/linearize.h"

#include <algorithm>

#include "util/error.h"
#include "util/precision.h"

namespace lincat {

static HybridOptions hybrid_options(const ModelConfig& c, const LinearizeOptions& o) {
    return HybridOptions(c.num_attention_heads, c.head_dim)
        .window(o.window)
        .feature_dim(o.feature_dim)
        .feature_map(o.feature_map)
        .identity_init(o.identity_init)
        .affine(o.affine)
        .decode_window(o.decode_window)
        .gate(o.gate);
}

void linearize(LlamaModel& model, const LinearizeOptions& o) {
    const ModelConfig& c = model->config();
    // New layers follow the model's device; their weights are fp32 masters (util/precision.h).
    const torch::Tensor like = model->parameters().front();
    for (int64_t l : linearized_layers(o, c.num_hidden_layers)) {
        auto core = std::make_shared<HybridAttentionImpl>(hybrid_options(c, o));
        core->to(like.device(), kMasterDtype);
        model->layer(l)->self_attn->set_core(core);
    }
}

int64_t linearized_parameter_count(const ModelConfig& c, const LinearizeOptions& o) {
    HybridAttentionImpl probe(hybrid_options(c, o));
    int64_t per_layer = 0;
    for (auto& p : probe.parameters()) per_layer += p.numel();
    return per_layer * int64_t(linearized_layers(o, c.num_hidden_layers).size());
}

HybridAttentionImpl* hybrid_core(const LlamaModel& model, int64_t layer) {
    return dynamic_cast<HybridAttentionImpl*>(model->layer(layer)->self_attn->core().get());
}

}  // namespace lincat
