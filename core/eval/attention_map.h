// Attention weights for a viewer: for one prompt, layer and head, the teacher's softmax weights
// (on the teacher's own hidden states) and the linearized student's hybrid weights, with the
// window, the variant and the head's gamma, so a viewer can draw the window region.
#pragma once

#include <string>
#include <vector>

#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

struct AttentionMap {
    int64_t layer = 0, head = 0, window = 0;
    std::string variant;                           // "tk" or "sw"; empty when the layer is softmax in the student
    double gamma = 0;                              // the head's window weight (hybrid layers)
    std::vector<std::string> tokens;               // the prompt's pieces, BOS first
    std::vector<std::vector<double>> teacher;      // T x T, row = query
    std::vector<std::vector<double>> student;      // T x T
    std::vector<std::vector<double>> window_mask;  // T x T, 1 where the softmax window reaches (hybrid)
};

// student: a linearized model (the teacher's weights with hybrid layers). At most max_tokens
// prompt tokens are used (the maps are T x T).
AttentionMap attention_map(LlamaModel& teacher, LlamaModel& student, const Tokenizer& tok, const std::string& prompt,
                           int64_t layer, int64_t head, int64_t max_tokens = 128);

std::string attention_map_to_json(const AttentionMap& m);

}  // namespace lincat
