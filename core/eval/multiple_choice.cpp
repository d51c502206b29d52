#include "eval/multiple_choice.h"

#include <cmath>
#include <filesystem>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

McTask load_mc_task(const std::string& path) {
    McTask task;
    task.name = std::filesystem::path(path).stem().string();
    std::string text = read_file(path, 1ull << 30);
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::string label = path + ":" + std::to_string(line_no);
        json j = parse_json(line, label);
        if (!j.is_object()) fail(label, ": each line must be a JSON object");
        McItem item;
        item.context = json_get<std::string>(j, "context", label);
        const json& choices = json_get<json>(j, "choices", label);
        if (!choices.is_array() || choices.size() < 2) fail(label, ": field 'choices' must be an array of 2 or more");
        for (auto& c : choices) {
            if (!c.is_string() || c.get<std::string>().empty())
                fail(label, ": field 'choices' must hold non-empty strings");
            item.choices.push_back(c.get<std::string>());
        }
        item.gold = json_get<int64_t>(j, "gold", label);
        if (item.gold < 0 || item.gold >= int64_t(item.choices.size()))
            fail(label, ": field 'gold' is ", item.gold, ", outside the ", item.choices.size(), " choices");
        task.items.push_back(std::move(item));
    }
    if (task.items.empty()) fail(path, ": no tasks in the file");
    return task;
}

std::vector<double> choice_logliks(LlamaModel& model, const Tokenizer& tok, const McItem& item) {
    torch::NoGradGuard ng;
    // As lm-evaluation-harness: trailing spaces of the context move to the continuation, the
    // continuation's tokens are those of (context + choice) past the context's own tokens.
    std::string context = item.context;
    std::string moved;
    while (!context.empty() && context.back() == ' ') moved += ' ', context.pop_back();
    const size_t ctx_len = tok.encode(context, true).size();
    std::vector<double> out;
    for (const std::string& choice : item.choices) {
        auto whole = tok.encode(context + moved + choice, true);
        if (whole.size() <= ctx_len) fail("multiple choice: choice '", choice, "' adds no tokens to its context");
        std::vector<int64_t> ids(whole.begin(), whole.end());
        auto x = torch::tensor(ids, torch::kLong).view({1, -1});
        auto logp = torch::log_softmax(model->forward(x.narrow(1, 0, x.size(1) - 1)), -1)[0];  // (n-1, V)
        double sum = 0;
        for (size_t i = ctx_len; i < whole.size(); ++i) sum += logp[int64_t(i) - 1][whole[i]].item<double>();
        out.push_back(sum);
    }
    return out;
}

McScore score_mc(LlamaModel& model, const Tokenizer& tok, const McTask& task) {
    McScore s;
    s.n = int64_t(task.items.size());
    for (auto& item : task.items) {
        auto ll = choice_logliks(model, tok, item);
        size_t best = 0, best_norm = 0;
        for (size_t i = 1; i < ll.size(); ++i) {
            if (ll[i] > ll[best]) best = i;
            if (ll[i] / double(item.choices[i].size()) > ll[best_norm] / double(item.choices[best_norm].size()))
                best_norm = i;
        }
        s.acc += best == size_t(item.gold);
        s.acc_norm += best_norm == size_t(item.gold);
    }
    s.acc /= double(s.n);
    s.acc_norm /= double(s.n);
    // The harness's stderr of a mean of 0/1 scores: sample stddev / sqrt(n) = sqrt(p (1 - p) / (n - 1)).
    auto stderr_of = [&](double p) { return s.n > 1 ? std::sqrt(p * (1 - p) / double(s.n - 1)) : 0.0; };
    s.acc_stderr = stderr_of(s.acc);
    s.acc_norm_stderr = stderr_of(s.acc_norm);
    return s;
}

}  // namespace lincat
