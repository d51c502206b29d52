// What a run is and where it stands, as types. The database keeps the text values below
// (lincat.db stays readable by sqlite3 and older tools); this file is the one mapping.
#pragma once

#include <optional>
#include <string>

namespace lincat {

enum class RunStatus { Created, Running, Completed, Failed, Cancelled };
enum class RunKind {
    Distill,       // stage 1, joint (or stitched from block runs)
    Finetune,      // stage 2, LoRA
    DistillBlock,  // stage 1 of one block from a state dump
    DumpStates,    // the teacher's hidden states entering each block
    Eval,          // a checkpoint against its base model
};

const char* run_status_name(RunStatus status);  // "created", "running", ...
const char* run_kind_name(RunKind kind);        // "distill", "finetune", "distill-block", ...
std::optional<RunStatus> parse_run_status(const std::string& text);
std::optional<RunKind> parse_run_kind(const std::string& text);

// Kinds whose unfinished runs continue from where they stopped (`lincat resume`).
bool run_kind_resumes(RunKind kind);

}  // namespace lincat
