#include "data/data_spec.h"

namespace lincat {

const FieldTable<DataSpec>& data_fields() {
    using D = DataSpec;
    static const FieldTable<D> t = {
        field<D>(
            "text_files", "text files (documents separated by blank lines)",
            [](D & d) -> auto& { return d.text_files; })
            .no_cli(),
        field<D>(
            "jsonl_files", "Alpaca .jsonl files", [](D & d) -> auto& { return d.jsonl_files; })
            .no_cli(),
        field<D>(
            "teacher_sequences", "teacher samples when no --data", [](D & d) -> auto& { return d.teacher_sequences; })
            .at_least(2),
        field<D>(
            "seq_len", "tokens per sequence (at most the model's context)", [](D & d) -> auto& { return d.seq_len; })
            .at_least(2)
            .at_most(1 << 24),
        field<D>(
            "seed", "seed of the teacher samples", [](D & d) -> auto& { return d.seed; })
            .at_least(0),
        field<D>(
            "eval_fraction", "held-out fraction of the sequences", [](D & d) -> auto& { return d.eval_fraction; })
            .above(0)
            .below(1),
        field<D>(
            "sample_dtype", "precision of teacher sampling (auto: bf16 where native)",
            [](D & d) -> auto& { return d.sample_dtype; })
            .one_of({"auto", "model", "bf16"})
            .added_later(),
    };
    return t;
}

std::string data_spec_to_json(const DataSpec& s) {
    return table_to_json(data_fields(), s).dump();
}

DataSpec data_spec_from_json(const std::string& text, const std::string& label) {
    DataSpec s;
    s.sample_dtype = "model";  // sample_dtype came later; runs before sampled the model as loaded
    table_from_json(data_fields(), parse_json(text, label), s, label);
    return s;
}

}  // namespace lincat
