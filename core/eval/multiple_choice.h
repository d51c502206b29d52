// Multiple-choice tasks scored as lm-evaluation-harness does: each choice's summed
// log-likelihood as a continuation of the context; acc picks the highest, acc_norm the
// highest per byte of the choice. Tasks are JSONL: {"context", "choices": [...], "gold"}.
#pragma once

#include <string>
#include <vector>

#include "eval/mc_task.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

// Log-likelihood of each choice (summed over its tokens) after the context.
std::vector<double> choice_logliks(LlamaModel& model, const Tokenizer& tok, const McItem& item);

struct McScore {
    int64_t n = 0;
    double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;
};
McScore score_mc(LlamaModel& model, const Tokenizer& tok, const McTask& task);

}  // namespace lincat
