#include "train/softmax_choice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "eval/perplexity.h"
#include "train/checkpoint.h"
#include "util/error.h"

namespace lincat {

int64_t softmax_layer_count(double share, int64_t linearized) {
    if (!(share > 0) || linearized <= 1) return 0;
    const int64_t n = int64_t(std::ceil(share * double(linearized) - 1e-9));
    return std::min(n, linearized - 1);
}

std::string softmax_choice_dir(const std::string& run_dir) {
    return run_dir + "/best-softmax-layers";
}

SoftmaxChoice keep_best_softmax_layers(Workspace& ws, int64_t run, const std::string& run_dir, int64_t step,
                                       BaseModel& base, const std::string& checkpoint, const torch::Tensor& rows,
                                       int64_t count) {
    SoftmaxChoice c;
    LlamaModel& model = base.model;
    std::vector<std::shared_ptr<AttentionCoreImpl>> softmax;
    for (int64_t l = 0; l < model->num_layers(); ++l) softmax.push_back(model->layer(l)->self_attn->core());
    c.teacher_nll = sequences_nll(model, rows);

    std::string hash;
    LinearizeOptions o = checkpoint_linearization(checkpoint, &hash);
    AppliedCheckpoint applied(base, checkpoint);  // gives every core back when it goes
    c.layers = linearized_layers(o, model->num_layers());
    if (count <= 0 || count >= int64_t(c.layers.size()))
        fail("softmax layers: cannot hand ", count, " of ", c.layers.size(), " linearized layers back");
    c.linear_nll = sequences_nll(model, rows);
    std::fprintf(stderr, "choosing %lld softmax layer%s of %zu on %lld rows (all linearized: ppl %+.2f%%)\n",
                 (long long)count, count == 1 ? "" : "s", c.layers.size(), (long long)rows.size(0),
                 100 * std::expm1(c.linear_nll - c.teacher_nll));
    for (int64_t l : c.layers) {
        auto self = model->layer(l)->self_attn;
        auto hybrid = self->core();
        self->set_core(softmax[size_t(l)]);
        c.layer_nll.push_back(sequences_nll(model, rows));
        self->set_core(hybrid);
        std::fprintf(stderr, "  layer %lld softmax: ppl %+.2f%% over the teacher\n", (long long)l,
                     100 * std::expm1(c.layer_nll.back() - c.teacher_nll));
    }
    std::vector<size_t> order(c.layers.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.layer_nll[a] < c.layer_nll[b]; });
    for (int64_t i = 0; i < count; ++i) c.kept.push_back(c.layers[order[size_t(i)]]);
    std::sort(c.kept.begin(), c.kept.end());

    // The kept layers' cores go back to softmax for the save: the checkpoint holds the others only.
    o.layers.clear();
    for (int64_t l : c.layers)
        if (!std::binary_search(c.kept.begin(), c.kept.end(), l)) o.layers.push_back(l);
    for (int64_t l : c.kept) model->layer(l)->self_attn->set_core(softmax[size_t(l)]);
    c.checkpoint = softmax_choice_dir(run_dir);
    const std::string sha = save_linear_checkpoint(c.checkpoint, model, o, hash);
    ws.record_checkpoint(run, step, c.checkpoint, sha, /*is_best=*/true);
    std::string kept;
    for (int64_t l : c.kept) kept += (kept.empty() ? "" : ",") + std::to_string(l);
    std::fprintf(stderr, "softmax kept in layer%s %s: held-out figures follow (--softmax-share 0 keeps all linear)\n",
                 c.kept.size() == 1 ? "" : "s", kept.c_str());
    return c;
}

}  // namespace lincat
