// lincat plan: the k-block planner as a table or JSON.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/model_dir.h"
#include "plan/planner.h"
#include "util/error.h"

namespace lincat::cli {

int cmd_plan(const Argv& argv) {
    Args a("plan",
           {{"preset", "llama-3.1-8b, llama-3.1-70b, llama-3.1-405b, llama-3-8b, mistral-7b, stories15m"},
            {"config", "a model's config.json, folder or cache name instead of a preset"},
            {"tokens", "training tokens", false, "50M"},
            {"k", "show only this block size"},
            {"bytes", "bytes per saved value", false, "2"},
            {"seq-len", "training sequence length", false, "1024"},
            {"gpu-memory", "bytes of one GPU (80G)", false, "80G"},
            {"gpus", "GPUs available", false, "8"},
            {"gpu-tflops", "dense bf16 TFLOP/s of one GPU", false, "989"},
            {"utilization", "achieved fraction of peak", false, "0.35"},
            {"disk", "disk limit for saved states (e.g. 30T)", false, "none"},
            {"json", "print a JSON object", true}},
           argv);
    PlanInput in;
    if (a.has("config")) {
        // A config.json, a model folder, or a cache name ("default").
        std::string path = a.get("config");
        if (std::filesystem::is_directory(path))
            path += "/config.json";
        else if (!std::filesystem::exists(path))
            path = resolve_model_dir(path) + "/config.json";
        in.model = plan_model_from_config(load_model_config(path), path);
    } else if (a.has("preset"))
        in.model = plan_preset(a.get("preset"));
    else
        fail("give --preset NAME or --config FILE\n", a.help());
    in.tokens = a.get_int("tokens", 50'000'000);
    in.bytes_per_value = a.get_double("bytes", 2);
    in.seq_len = a.get_int("seq-len", 1024);
    in.gpu_bytes = double(a.get_int("gpu-memory", 80'000'000'000));
    in.gpus = a.get_int("gpus", 8);
    in.gpu_flops = a.get_double("gpu-tflops", 989) * 1e12;
    in.utilization = a.get_double("utilization", 0.35);
    in.disk_limit_bytes = a.has("disk") ? double(a.get_int("disk", 0)) : 0;
    Plan p = make_plan(in);
    if (a.has("k")) {
        PlanRow r = plan_row(in, a.get_int("k", 1));
        p.rows = {r};
    }
    if (a.flag("json")) {
        std::printf("%s\n", plan_to_json(p).c_str());
        return 0;
    }
    std::printf("%s, %.3g M tokens, %.0f bytes/value, %lld GPUs of %s\n", in.model.name.c_str(),
                double(in.tokens) / 1e6, in.bytes_per_value, (long long)in.gpus, si_bytes(in.gpu_bytes).c_str());
    std::printf("%4s %6s %12s %14s %10s %10s %10s  %s\n", "k", "blocks", "disk", "GPU mem/block", "dump h", "block h",
                "wall h", "fits");
    for (auto& r : p.rows)
        std::printf("%4lld %6lld %12s %14s %10.1f %10.1f %10.1f  %s%s\n", (long long)r.k, (long long)r.blocks,
                    si_bytes(r.disk_bytes).c_str(), si_bytes(r.gpu_bytes_per_block).c_str(), r.dump_hours,
                    r.block_hours, r.hours_wall, r.fits ? "yes" : (r.fits_gpu ? "no (disk)" : "no (GPU memory)"),
                    r.k == p.recommended_k ? "  <- recommended" : "");
    std::printf("recommended: %s\n", p.reason.c_str());
    return 0;
}

}  // namespace lincat::cli
