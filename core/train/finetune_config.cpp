#include "train/finetune_config.h"

namespace lincat {

TrainSchedule FinetuneConfig::default_schedule() {
    TrainSchedule s;
    s.steps = 100;
    s.lr = 3e-4;  // 1e-3 drifted from the teacher within 40 steps on stories15M; LoLCATs: 1e-4 on 8B
    return s;
}

const FieldTable<FinetuneConfig>& finetune_fields() {
    using F = FinetuneConfig;
    static const FieldTable<F> t = [] {
        FieldTable<F> t = {
            field<F>(
                "stage1_run", "the stage-1 (distill) run this continues", [](F & f) -> auto& { return f.stage1_run; })
                .no_cli(),
            field<F>(
                "stage1_checkpoint", "the stage-1 checkpoint folder",
                [](F & f) -> auto& { return f.stage1_checkpoint; })
                .no_cli(),
        };
        append(t, nest<F>(lora_fields(), [](F & f) -> auto& { return f.lora; },
                          {{"rank", "lora_rank"},
                           {"alpha", "lora_alpha"},
                           {"dropout", "lora_dropout"},
                           {"targets", "lora_targets"}}));
        t.push_back(field<F>(
            "train_feature_maps", "also keep training feature maps and gammas",
            [](F & f) -> auto& { return f.train_feature_maps; }));
        t.push_back(field<F>(
                        "xent_factor", "weight of next-token cross-entropy on the data (LoLCATs' loss)",
                        [](F & f) -> auto& { return f.xent_factor; })
                        .at_least(0));
        t.push_back(field<F>(
                        "kd_factor", "weight of KL(teacher || student) on the next-token distributions",
                        [](F & f) -> auto& { return f.kd_factor; })
                        .at_least(0));
        FieldTable<F> data = nest<F>(data_fields(), [](F & f) -> auto& { return f.data; }, {{"seed", "data_seed"}});
        for (auto& d : data) d.no_cli();  // stage 2's data is its stage-1 run's, or --data
        append(t, data);
        append(t, nest<F>(
                      schedule_fields(), [](F & f) -> auto& { return f.schedule; }));
        field_of(t, "seed").help = "seed for adapters and data order";
        return t;
    }();
    return t;
}

std::string FinetuneConfig::to_json() const {
    return table_to_json(finetune_fields(), *this).dump();
}

FinetuneConfig FinetuneConfig::from_json(const std::string& text, const std::string& label) {
    FinetuneConfig c;
    c.data.sample_dtype = "model";  // came later: runs before sampled the teacher as loaded
    table_from_json(finetune_fields(), parse_json(text, label), c, label);
    c.validate(label);
    return c;
}

void FinetuneConfig::validate(const std::string& label, bool cli_names) const {
    table_validate(finetune_fields(), *this, label, cli_names);
    if (xent_factor + kd_factor <= 0) fail(label, ": the xent and kd factors must not both be 0");
}

}  // namespace lincat
