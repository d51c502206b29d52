#include "train/base_model.h"

#include "model/fingerprint.h"
#include "model/lora_model.h"
#include "train/linearized_model.h"
#include "util/error.h"

namespace lincat {

BaseModel load_base_model(const std::string& dir) {
    BaseModel b;
    b.dir = dir;
    b.hash = model_fingerprint(dir);
    b.model = load_llama(dir);
    for (auto& p : b.model->parameters()) p.set_requires_grad(false);
    b.model->eval();
    b.tokenizer = Tokenizer::load_dir(dir);
    return b;
}

SavedCores::SavedCores(LlamaModel model) : model_(std::move(model)) {
    for (int64_t l = 0; l < model_->num_layers(); ++l) cores_.push_back(model_->layer(l)->self_attn->core());
}

SavedCores::~SavedCores() {
    for (int64_t l = 0; l < model_->num_layers(); ++l) model_->layer(l)->self_attn->set_core(cores_[size_t(l)]);
}

AppliedCheckpoint::AppliedCheckpoint(BaseModel& base, const std::string& dir) : model_(base.model), cores_(base.model) {
    try {
        apply_checkpoint(model_, base.hash, base.dir, dir, /*merge_adapters=*/false);
        set_lora_training(model_, false);
    } catch (...) {
        detach_lora(model_);  // the cores go back with cores_
        throw;
    }
}

AppliedCheckpoint::~AppliedCheckpoint() {
    detach_lora(model_);  // then cores_ puts the softmax cores back
}

LlamaModel copy_model(const LlamaModel& from) {
    LlamaModel m(from->config());
    const torch::Tensor like = from->parameters().front();
    m->to(like.device(), like.scalar_type());
    torch::NoGradGuard ng;
    auto src = from->named_parameters();
    for (auto& p : m->named_parameters()) {
        const torch::Tensor* s = src.find(p.key());
        if (!s) fail("copy_model: the source has no tensor '", p.key(), "'");
        p.value().copy_(*s);
        p.value().set_requires_grad(false);
    }
    m->eval();
    return m;
}

}  // namespace lincat
