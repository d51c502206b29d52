#include "train/distill_config.h"

namespace lincat {

LinearizeOptions default_stage1_linearization() {
    LinearizeOptions o;
    o.feature_dim = 16;
    o.gate = GateKind::Decay;
    return o;
}

const FieldTable<DistillConfig>& distill_fields() {
    using D = DistillConfig;
    static const FieldTable<D> t = [] {
        FieldTable<D> t = nest<D>(
            linearize_fields(), [](D & d) -> auto& { return d.linearize; });
        append(t, nest<D>(data_fields(), [](D & d) -> auto& { return d.data; }, {{"seed", "data_seed"}}));
        // Runs from before data_seed was recorded used the run's seed.
        field_of(t, "data_seed").no_cli().added_later().alias("seed");
        append(t, nest<D>(
                      schedule_fields(), [](D & d) -> auto& { return d.schedule; }));
        field_of(t, "seed").help = "seed for feature maps and data order";
        t.push_back(field<D>(
                        "mse_factor", "weight of the output MSE", [](D & d) -> auto& { return d.mse_factor; })
                        .at_least(0));
        t.push_back(field<D>(
                        "xent_factor", "weight of the attention-weight cross-entropy",
                        [](D & d) -> auto& { return d.xent_factor; })
                        .at_least(0)
                        .added_later());
        t.push_back(field<D>(
                        "teacher_cache_mb",
                        "memory (MiB) for the teacher's activations, kept so later epochs run only the students "
                        "(0: off; used only when every row fits)",
                        [](D & d) -> auto& { return d.teacher_cache_mb; })
                        .at_least(0)
                        .added_later());
        t.push_back(field<D>(
                        "softmax_share",
                        "share of the linearized layers handed back to softmax after training (rounded up), those "
                        "whose return lowers next-token loss most (0: all stay linear)",
                        [](D & d) -> auto& { return d.softmax_share; })
                        .at_least(0)
                        .below(1)
                        .added_later());
        return t;
    }();
    return t;
}

std::string DistillConfig::to_json() const {
    return table_to_json(distill_fields(), *this).dump();
}

DistillConfig DistillConfig::from_json(const std::string& text, const std::string& label) {
    DistillConfig c;
    c.linearize.gate = GateKind::None;  // gate and softmax_share came later; runs before had neither
    c.softmax_share = 0;
    c.data.sample_dtype = "model";  // and runs before sample_dtype sampled the teacher as loaded
    table_from_json(distill_fields(), parse_json(text, label), c, label);
    return c;
}

}  // namespace lincat
