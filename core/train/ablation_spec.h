// `lincat ablate` variants as plain data (no torch): each is a name and field assignments over
// the stage-1 and stage-2 configs' own field tables, so every option a stage has can be
// ablated and nothing else can.
//   spec:      "lolcats; window=16; window=128; variant=sw; keep_softmax=4,5; stage2_lr=1e-3"
//   a variant: assignments separated by spaces; "default" alone = Lincat's defaults;
//              "lolcats" = LoLCATs' recipe (f 64, no gate, every layer linear), keys may follow
//   keys:      any distill field (variant, window, feature_dim, feature_map, affine, layers, lr,
//              ...), keep_softmax=L,.. (every other layer linearized), stage2_<field> for a
//              finetune field (stage2_lr, stage2_lora_rank, stage2_steps, ...); stage2=off skips
//              stage 2 for that variant.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/distill_config.h"
#include "train/finetune_config.h"

namespace lincat {

struct AblationVariant {
    std::string name;                                                 // as written
    std::vector<std::pair<std::string, std::string>> stage1, stage2;  // key -> value text
    bool run_stage2 = true;
};

std::vector<AblationVariant> parse_ablation_variants(const std::string& spec);
// The stage-1 keys 'lolcats' stands for (over Lincat's defaults).
std::vector<std::pair<std::string, std::string>> lolcats_recipe();

// LinearizeOptions::layers for "keep these layers softmax" (LoLCATs' softmax_attentions):
// every other layer. "4,5" -> 0,1,2,3 of 6. Errors name `label`.
std::vector<int64_t> layers_keeping_softmax(const std::string& list, int64_t num_layers, const std::string& label);

// The stage-1 config of a variant on top of `base` (num_layers for keep_softmax). Errors name
// the variant and the key.
DistillConfig ablation_distill_config(const AblationVariant& v, const DistillConfig& base, int64_t num_layers);
// The stage-2 config of a variant on top of `base` (the one filled from its stage-1 run).
FinetuneConfig ablation_finetune_config(const AblationVariant& v, const FinetuneConfig& base);

}  // namespace lincat
