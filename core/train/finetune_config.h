// Stage 2's options as plain data (no torch), with their field table: the run-config record,
// the CLI options of `lincat finetune` and the studio's stage-2 form all come from it.
#pragma once

#include <string>

#include "data/data_spec.h"
#include "model/lora_options.h"
#include "train/schedule.h"

namespace lincat {

struct FinetuneConfig {
    int64_t stage1_run = 0;         // the distill run this continues (0: a checkpoint given directly)
    std::string stage1_checkpoint;  // its checkpoint folder (the best one by default)
    LoraOptions lora;
    bool train_feature_maps = false;  // also keep training feature maps and gammas
    // Loss = xent_factor * next-token cross-entropy on the data (LoLCATs' stage 2)
    //      + kd_factor * KL(teacher || student) of the next-token distributions.
    // KD is the default: on teacher samples the label is one draw from the teacher's own
    // distribution, so KD is its exact expectation; measured on stories15M (100 steps), xent
    // overfit the 59K-token train split (held-out +4.4% vs +2.9% after stage 1), KD did not.
    double xent_factor = 0.0;
    double kd_factor = 1.0;
    DataSpec data;  // by default the stage-1 run's data
    TrainSchedule schedule = default_schedule();
    bool operator==(const FinetuneConfig&) const = default;

    static TrainSchedule default_schedule();
    std::string to_json() const;
    static FinetuneConfig from_json(const std::string& text, const std::string& label);
    // The checks no single field can make (the factors together).
    void validate(const std::string& label, bool cli_names = false) const;
};

// Flat keys: stage1_run, stage1_checkpoint, lora_rank ..., the data's (seed as data_seed), the schedule's.
const FieldTable<FinetuneConfig>& finetune_fields();

}  // namespace lincat
