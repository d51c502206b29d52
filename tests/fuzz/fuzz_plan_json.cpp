// libFuzzer target: a plan file (lincat plan --json, read by lincat slurm --plan), its round
// trip, and the Slurm scripts made from it. Any input must give a result or a lincat error
// (std::exception), never a crash, a sanitizer report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "blocks/slurm.h"
#include "plan/planner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        lincat::Plan p = lincat::plan_from_json(text, "plan.json");
        lincat::plan_from_json(lincat::plan_to_json(p), "round trip");
        lincat::SlurmOptions o;
        o.lincat = "/bin/lincat", o.model_dir = "/m", o.workspace = "/w";
        lincat::slurm_scripts(p, o);
    } catch (const std::exception&) {
    }
    return 0;
}
