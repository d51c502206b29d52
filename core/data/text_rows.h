// Held-out rows from text files: every file's tokens, in order, cut into rows of seq_len (the
// tail shorter than a row is dropped). For evaluations on the user's own text.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace lincat {

// (N, seq_len) int64. Fails, naming `who`, when the files hold less than one row.
torch::Tensor rows_from_text_files(const Tokenizer& tok, const std::vector<std::string>& files, int64_t seq_len,
                                   const std::string& who);

}  // namespace lincat
