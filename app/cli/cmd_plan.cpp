// lincat plan: the k-block planner as a table or JSON.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/model_dir.h"
#include "plan/plan_measured.h"
#include "plan/planner.h"
#include "util/error.h"

namespace lincat::cli {

static std::string money(double v) {
    char buf[32];
    if (v >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

int cmd_plan(const Argv& argv) {
    Args a("plan",
           {{"preset", "llama-3.1-8b, llama-3.1-70b, llama-3.1-405b, llama-3-8b, mistral-7b, stories15m"},
            {"config", "a model's config.json, folder or cache name instead of a preset"},
            {"tokens", "training tokens", false, "50M"},
            {"k", "show only this block size"},
            {"bytes", "bytes per saved value", false, "2"},
            {"weight-bytes", "bytes per frozen weight as computed (4 for fp32 on a CPU)", false, "2"},
            {"seq-len", "training sequence length", false, "1024"},
            {"micro-batch", "sequences per training micro-batch", false, "1"},
            {"gpu-memory", "bytes of one GPU (80G)", false, "80G"},
            {"gpus", "GPUs available", false, "8"},
            {"gpu-tflops", "dense bf16 TFLOP/s of one GPU", false, "989"},
            {"utilization", "achieved fraction of peak", false, "0.35"},
            {"disk", "disk limit for saved states (e.g. 30T)", false, "none"},
            {"gpu-hour-price", "price of one GPU-hour", false, "3.00"},
            {"disk-tb-price", "price of one TB of disk for the run", false, "25"},
            {"workspace", "show what the dump and block jobs in this workspace measured, next to each figure"},
            {"calibrate", "a workspace whose measured FLOP/s replace --gpu-tflops x --utilization in the times"},
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
    in.weight_bytes_per_value = a.get_double("weight-bytes", 2);
    in.seq_len = a.get_int("seq-len", 1024);
    in.micro_batch = a.get_int("micro-batch", 1);
    in.gpu_bytes = double(a.get_int("gpu-memory", 80'000'000'000));
    in.gpus = a.get_int("gpus", 8);
    in.gpu_flops = a.get_double("gpu-tflops", 989) * 1e12;
    in.utilization = a.get_double("utilization", 0.35);
    in.disk_limit_bytes = a.has("disk") ? double(a.get_int("disk", 0)) : 0;
    in.gpu_hour_price = a.get_double("gpu-hour-price", in.gpu_hour_price);
    in.disk_tb_price = a.get_double("disk-tb-price", in.disk_tb_price);
    PlanMeasurements measured;
    if (a.has("workspace")) measured = plan_measurements(a.get("workspace"), in.model);
    if (a.has("calibrate")) {
        PlanMeasurements cal = plan_measurements(a.get("calibrate"), in.model);
        if (cal.dump_flops() <= 0 && cal.block_flops() <= 0)
            fail("plan --calibrate ", a.get("calibrate"), ": no dump or block job of a model shaped ",
                 plan_shape_key(in.model), " recorded its throughput there");
        in = calibrated(in, cal);
        if (!a.has("workspace")) measured = cal;
    }
    Plan p = make_plan(in);
    if (a.has("k")) {
        PlanRow r = plan_row(in, a.get_int("k", 1));
        p.rows = {r};
    }
    if (a.flag("json")) {
        std::printf("%s\n", plan_to_json(p).c_str());
        return 0;
    }
    std::printf("%s, %.3g M tokens, %.0f bytes/value saved, %.0f bytes/weight, %lld GPUs of %s\n",
                in.model.name.c_str(), double(in.tokens) / 1e6, in.bytes_per_value, in.weight_bytes_per_value,
                (long long)in.gpus, si_bytes(in.gpu_bytes).c_str());
    const bool show = !measured.jobs.empty();
    auto measured_text = [](int64_t bytes) { return bytes > 0 ? si_bytes(double(bytes)) : std::string("-"); };
    std::printf("%4s %6s %10s %12s %s%12s %s%8s %8s %8s %9s %11s  %s\n", "k", "blocks", "disk", "mem/block",
                show ? "   measured " : "", "dump mem", show ? "   measured " : "", "dump h", "block h", "wall h",
                "GPU-h", "cost", "fits");
    for (auto& r : p.rows) {
        auto col = [&](int64_t bytes) {
            char buf[32];
            std::snprintf(buf, sizeof buf, " %11s ", measured_text(bytes).c_str());
            return show ? std::string(buf) : std::string();
        };
        const std::string m1 = col(measured.block_peak(r.k)), m2 = col(measured.dump_peak(r.k));
        std::printf("%4lld %6lld %10s %12s %s%12s %s%8.1f %8.1f %8.1f %9.0f %11s  %s%s\n", (long long)r.k,
                    (long long)r.blocks, si_bytes(r.disk_bytes).c_str(), si_bytes(r.gpu_bytes_per_block).c_str(),
                    m1.c_str(), si_bytes(r.dump_gpu_bytes).c_str(), m2.c_str(), r.dump_hours, r.block_hours,
                    r.hours_wall, r.gpu_hours, money(r.cost).c_str(),
                    r.fits ? "yes" : (r.fits_gpu ? "no (disk)" : "no (GPU memory)"),
                    r.k == p.recommended_k ? "  <- recommended" : "");
    }
    std::printf("cost: GPU-hours x %.2f per GPU-hour + disk TB x %.2f (--gpu-hour-price, --disk-tb-price)\n",
                in.gpu_hour_price, in.disk_tb_price);
    if (in.dump_flops_measured > 0 || in.block_flops_measured > 0)
        std::printf("times calibrated from measured jobs: dump %.3g GFLOP/s, block %.3g GFLOP/s (instead of %.3g)\n",
                    in.dump_flops_measured / 1e9, in.block_flops_measured / 1e9, in.gpu_flops * in.utilization / 1e9);
    if (show) {
        std::printf(
            "measured: each job's peak resident memory above its start (the runtime and libraries; largest per k), "
            "next to what the planner predicts for that job's own shapes; %zu jobs:\n",
            measured.jobs.size());
        for (auto& j : measured.jobs) {
            const double predicted = predicted_job_bytes(j, in.model);
            std::string against = "no shapes recorded to predict";
            if (predicted > 0) {
                char buf[96];
                std::snprintf(buf, sizeof buf, "predicted %s (%+.0f%%)", si_bytes(predicted).c_str(),
                              100 * (double(j.peak_above_start()) / predicted - 1));
                against = buf;
            }
            std::string tensors =
                j.peak_tensor_bytes > 0 ? ", tensors " + si_bytes(double(j.peak_tensor_bytes)) : std::string();
            std::printf(
                "  run %lld %s k=%lld: peak %s above a start of %s%s; %s; micro-batch %lld x %lld tokens, "
                "%.3g GFLOP/s%s, %s\n",
                (long long)j.run, j.kind.c_str(), (long long)j.k, si_bytes(double(j.peak_above_start())).c_str(),
                si_bytes(double(j.baseline_rss_bytes)).c_str(), tensors.c_str(), against.c_str(),
                (long long)j.micro_batch, (long long)j.seq_len, j.achieved_flops / 1e9,
                j.outlier ? " (over 3x off the median: left out of --calibrate)" : "", j.device.c_str());
        }
    }
    std::printf("recommended: %s\n", p.reason.c_str());
    return 0;
}

}  // namespace lincat::cli
