#include "data/text_rows.h"

#include "data/dataset.h"
#include "util/error.h"

namespace lincat {

torch::Tensor rows_from_text_files(const Tokenizer& tok, const std::vector<std::string>& files, int64_t seq_len,
                                   const std::string& who) {
    if (seq_len < 1) fail(who, ": seq_len must be at least 1, got ", seq_len);
    std::vector<int64_t> ids;
    for (auto& f : files)
        for (int32_t t : tokens_from_text_file(tok, f)) ids.push_back(t);
    const int64_t n = int64_t(ids.size()) / seq_len;
    if (n == 0) fail(who, ": the text files hold ", ids.size(), " tokens, fewer than one row of ", seq_len);
    ids.resize(size_t(n * seq_len));
    return torch::tensor(ids, torch::kLong).view({n, seq_len});
}

}  // namespace lincat
