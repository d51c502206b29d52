// When `lincat linearize` runs stage 2 (LoRA) after attention transfer (issue 17).
//
// Measured on stories15M with `lincat ablate` (200 stage-1 steps, 100 stage-2 steps): where
// stage 1 left a small gap, LoRA bought almost nothing for most of the pipeline's minutes
// (tk 64: +1.96% -> +1.88%, 2 of 3.5 minutes; keep_softmax 4,5: +0.61% -> +0.58%; a higher lr
// or LoLCATs' next-token loss made it worse), while a large gap was partly closed (window 16:
// +13.2% -> +11.1%). So by default stage 2 runs only where stage 1 is far from the teacher.
#pragma once

#include <cstdio>
#include <string>

#include "util/error.h"

namespace lincat {

enum class Stage2Mode { Auto, On, Off };

// Auto runs stage 2 when stage 1's held-out perplexity is at least this much above the teacher's.
constexpr double kStage2MinGap = 0.03;

inline Stage2Mode parse_stage2_mode(const std::string& text, const std::string& label) {
    if (text == "auto") return Stage2Mode::Auto;
    if (text == "on") return Stage2Mode::On;
    if (text == "off") return Stage2Mode::Off;
    fail(label, ": '", text, "' is not auto, on or off");
}

// Empty when stage 2 should run; else the reason it is skipped, to print.
inline std::string stage2_skip_reason(Stage2Mode mode, double teacher_ppl, double stage1_ppl) {
    if (mode == Stage2Mode::On) return "";
    if (mode == Stage2Mode::Off) return "skipped (--stage2 off)";
    const double gap = stage1_ppl / teacher_ppl - 1;
    if (!(gap >= kStage2MinGap) && gap == gap) {
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "skipped: stage 1 is %+.2f%% from the teacher's perplexity, under the %.0f%% where LoRA has "
                      "earned its minutes (measured on stories15M: it closed 0.08 of a 1.96-point gap in 2 of 3.5 "
                      "minutes); --stage2 on runs it anyway",
                      100 * gap, 100 * kStage2MinGap);
        return buf;
    }
    return "";
}

}  // namespace lincat
