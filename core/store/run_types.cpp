#include "store/run_types.h"

#include <array>
#include <utility>

namespace lincat {

namespace {

constexpr std::array<std::pair<RunStatus, const char*>, 5> kStatusNames = {{
    {RunStatus::Created, "created"},
    {RunStatus::Running, "running"},
    {RunStatus::Completed, "completed"},
    {RunStatus::Failed, "failed"},
    {RunStatus::Cancelled, "cancelled"},
}};

constexpr std::array<std::pair<RunKind, const char*>, 5> kKindNames = {{
    {RunKind::Distill, "distill"},
    {RunKind::Finetune, "finetune"},
    {RunKind::DistillBlock, "distill-block"},
    {RunKind::DumpStates, "dump-states"},
    {RunKind::Eval, "eval"},
}};

template <class E, size_t N>
const char* name_of(const std::array<std::pair<E, const char*>, N>& names, E value) {
    for (auto& [v, name] : names)
        if (v == value) return name;
    return "?";
}

template <class E, size_t N>
std::optional<E> value_of(const std::array<std::pair<E, const char*>, N>& names, const std::string& text) {
    for (auto& [v, name] : names)
        if (text == name) return v;
    return std::nullopt;
}

}  // namespace

const char* run_status_name(RunStatus s) {
    return name_of(kStatusNames, s);
}
const char* run_kind_name(RunKind k) {
    return name_of(kKindNames, k);
}
std::optional<RunStatus> parse_run_status(const std::string& text) {
    return value_of(kStatusNames, text);
}
std::optional<RunKind> parse_run_kind(const std::string& text) {
    return value_of(kKindNames, text);
}

bool run_kind_resumes(RunKind k) {
    return k != RunKind::Eval;  // an evaluation is one pass: run it again
}

}  // namespace lincat
