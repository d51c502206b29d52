#include "blocks/block_distill.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "attention/transfer.h"
#include "blocks/block_states.h"
#include "blocks/state_dump.h"
#include "model/fingerprint.h"
#include "plan/planner.h"
#include "train/checkpoint.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/memory_tracker.h"
#include "util/process_memory.h"
#include "util/warm_up.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

BlockRunInfo block_run_info(const std::string& config_json, const std::string& label) {
    json j = parse_json(config_json, label);
    return {json_get<int64_t>(j, "block", label), json_get<std::string>(j, "states", label),
            json_get_or<std::string>(j, "states_sha256", "", label),
            json_get_or<std::string>(j, "manifest_sha256", "", label)};
}

bool block_run_matches(const BlockRunInfo& info, const std::string& states_dir, const StateManifest& m) {
    if (info.states_dir != states_dir || info.block < 0 || info.block >= int64_t(m.blocks.size()) ||
        !m.block_ready(info.block))
        return false;
    if (!info.states_sha256.empty()) return info.states_sha256 == block_states_fingerprint(m, info.block);
    const std::string manifest = states_dir + "/manifest.json";
    return fs::exists(manifest) && info.manifest_sha256 == sha256_file(manifest);
}

DistillOutcome distill_block(Workspace& ws, const std::string& model_dir, const std::string& states_dir_in,
                             int64_t block, const DistillConfig& cfg_in, std::optional<int64_t> resume_run,
                             const std::function<void(const DistillProgress&)>& on_progress,
                             const std::atomic<bool>* cancel) {
    warm_up_runtime();
    const MemoryWatch memory;  // before any tensor: the baseline is the runtime and libraries
    const TensorPeakWatch tensors;
    DistillConfig cfg = cfg_in;
    const std::string hash = model_fingerprint(model_dir);
    std::string states_dir = fs::absolute(states_dir_in).lexically_normal().string();
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = resumable_run(ws, run, RunKind::DistillBlock, hash, model_dir);
        const std::string label = "run " + std::to_string(run) + " config";
        cfg = DistillConfig::from_json(r.config_json, label);
        BlockRunInfo info = block_run_info(r.config_json, label);
        block = info.block, states_dir = info.states_dir;
        if (!block_run_matches(info, states_dir, load_ready_manifest(states_dir, block)))
            fail("run ", run, ": the states of block ", block, " in ", states_dir, " changed since the run started");
    }
    // Opening verifies the block's shards and tokens against the manifest (sha256).
    BlockStates states = BlockStates::open(states_dir, block);
    const StateManifest& m = states.manifest();
    if (m.base_model_hash != hash) fail(states_dir, ": the states were dumped from another model than ", model_dir);
    const StateBlock& b = states.block();
    const int64_t first = b.first_layer, last = b.first_layer + b.layers;
    cfg.data = data_spec_from_json(m.data_json, states_dir + " manifest data");

    if (!resume_run) {
        // Choosing softmax layers needs the whole model's loss, which a block job never holds.
        if (cfg.softmax_share > 0)
            std::fprintf(stderr,
                         "block-wise: every layer of the block stays linear (softmax_share applies to "
                         "whole-model stage 1; --keep-softmax names layers)\n");
        cfg.softmax_share = 0;  // recorded as what the run does
        table_validate(distill_fields(), cfg, "distill --block");
        linearized_parameter_count(load_model_config(model_dir + "/config.json"), cfg.linearize);
        json j = parse_json(cfg.to_json(), "config");
        j["block"] = block;
        j["block_layers"] = {first, last};
        j["states"] = states_dir;
        j["states_sha256"] = block_states_fingerprint(m, block);
        run = ws.create_run("default", RunKind::DistillBlock, j.dump(), hash);
    }
    const std::string run_dir = start_run(ws, run);

    // Only this block's layers: a 405B block job holds k layers, never the whole model.
    LlamaModel model = load_llama_part(model_dir, ModelPart::layers(first, last));
    // Seed and linearize exactly as joint stage 1 does, then put softmax back outside the block:
    // the block's feature maps start where joint training's would.
    std::vector<std::shared_ptr<AttentionCoreImpl>> original;
    for (int64_t l = 0; l < model->num_layers(); ++l) original.push_back(model->layer(l)->self_attn->core());
    torch::manual_seed(cfg.schedule.seed);
    linearize(model, cfg.linearize);
    LinearizeOptions block_opts = cfg.linearize;
    block_opts.layers.clear();
    for (int64_t l = 0; l < model->num_layers(); ++l) {
        bool in_block = l >= first && l < last;
        if (!in_block)
            model->layer(l)->self_attn->set_core(original[size_t(l)]);
        else if (hybrid_core(model, l))
            block_opts.layers.push_back(l);
    }
    // The other layers' feature maps (made only so the block's start where joint training's do)
    // are freed: give their pages back, or the job holds them all run long (12.6 MB for 48 layers).
    malloc_trim(0);
    if (block_opts.layers.empty()) {
        ws.set_run_status(run, RunStatus::Failed, "no linearized layer in this block");
        fail("block ", block, " (layers ", first, "..", last - 1, ") has no layer to linearize under --layers");
    }
    TransferLayers transfer = wrap_for_transfer(model, cfg.xent_factor > 0);
    std::vector<torch::Tensor> params = transfer.parameters();

    TrainHooks hooks;
    hooks.loss = [&](const torch::Tensor&, const torch::Tensor& rows, std::vector<double>& layer) {
        auto x = states.rows("train", rows);
        {
            torch::NoGradGuard ng;  // the teacher path; each student builds its own graph
            model->run_layers(x, first, last);
        }
        return transfer.loss(cfg.mse_factor, cfg.xent_factor, layer);
    };
    hooks.evaluate = [&](std::vector<double>& layer) {
        TransferEvaluation no_graph(transfer);
        layer.assign(transfer.cores.size(), 0.0);
        const int64_t n = m.eval_rows;
        if (n == 0) return 0.0;
        for (int64_t s = 0; s < n; s += cfg.schedule.batch_size) {
            const int64_t bs = std::min(cfg.schedule.batch_size, n - s);
            model->run_layers(states.rows("eval", torch::arange(s, s + bs)), first, last);
            for (size_t i = 0; i < transfer.cores.size(); ++i)
                layer[i] += transfer.cores[i]->last_mse.item<double>() * double(bs);
        }
        double total = 0;
        for (auto& v : layer) total += (v /= double(n));
        return cfg.mse_factor * total / double(layer.size());
    };
    hooks.save = [&](const std::string& dir, const std::function<void(const std::string&)>& extra) {
        return save_linear_checkpoint(dir, model, block_opts, hash, nullptr, extra);
    };
    hooks.load = [&](const std::string& dir) { load_linear_tensors(model, dir); };

    DistillOutcome out;
    out.run = run;
    out.layers = transfer.layers;
    double tokens_per_second = 0;
    const auto t0 = std::chrono::steady_clock::now();
    TrainOutcome t = train_loop(
        ws, run, run_dir, cfg.schedule, states.tokens("train"), params, hooks, resume_run.has_value(),
        [&](const DistillProgress& p) {
            tokens_per_second = p.tokens_per_second;
            if (on_progress) on_progress(p);
        },
        cancel);
    const PlanModel shape = plan_model_from_config(model->config(), model_dir);
    // What this job measured, next to the planner's figures (lincat plan --calibrate reads it).
    json results = parse_json(ws.run_results(run).value_or("{}"), "run results");
    if (!results.is_object()) results = json::object();
    results["measured"] = {
        {"baseline_rss_bytes", memory.baseline_bytes},
        {"peak_rss_bytes", memory.peak_bytes()},
        {"peak_reset", memory.reset_ok},
        {"peak_tensor_bytes", tensors.peak_bytes()},
        {"tokens_per_second", tokens_per_second},
        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
        {"micro_batch", cfg.schedule.batch_size},
        {"seq_len", m.seq_len},
        {"layers", last - first},
        {"window", cfg.linearize.window.size},
        {"feature_dim", cfg.linearize.feature_dim},
        {"k", m.k},
        {"model_shape", plan_shape_key(shape)},
        {"achieved_flops", tokens_per_second * block_flops_per_token(shape, last - first, cfg.linearize.window.size,
                                                                     cfg.linearize.feature_dim)},
        {"device", compute_text(compute())}};
    ws.set_run_results(run, results.dump());
    if (t.status == RunStatus::Cancelled) {
        out.status = RunStatus::Cancelled;
        return out;
    }
    out.steps = t.steps;
    out.tokens = t.tokens;
    out.layer_mse_initial = t.initial_layer;
    out.layer_mse_final = t.final_layer;
    auto best = ws.best_checkpoint(run);
    out.checkpoint = best ? best->path : ws.last_checkpoint(run)->path;
    ws.set_run_status(run, RunStatus::Completed);
    out.status = RunStatus::Completed;
    return out;
}

}  // namespace lincat
