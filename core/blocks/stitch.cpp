#include "blocks/stitch.h"

#include <filesystem>
#include <set>

#include "blocks/block_distill.h"
#include "blocks/block_states.h"
#include "blocks/state_dump.h"
#include "model/fingerprint.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

StitchOutcome stitch_blocks(Workspace& ws, const std::string& model_dir, const std::string& states_dir_in,
                            const std::vector<int64_t>& runs_in) {
    const std::string states_dir = fs::absolute(states_dir_in).lexically_normal().string();
    const StateManifest m = load_state_manifest(states_dir);
    const std::string hash = model_fingerprint(model_dir);
    if (m.base_model_hash != hash)
        fail(states_dir, "/manifest.json: the states were dumped from another model than ", model_dir);
    const int64_t nblocks = int64_t(m.blocks.size());

    // One completed run per block.
    std::vector<int64_t> by_block(size_t(nblocks), 0);
    auto take = [&](const RunRecord& r, bool explicit_pick) {
        const std::string label = "run " + std::to_string(r.id) + " config";
        BlockRunInfo info = block_run_info(r.config_json, label);
        if (!block_run_matches(info, states_dir, m)) {
            if (explicit_pick) fail("run ", r.id, " was trained from another state dump (", info.states_dir, ")");
            return;
        }
        if (info.block < 0 || info.block >= nblocks) fail("run ", r.id, ": block ", info.block, " is not in the dump");
        if (explicit_pick && by_block[size_t(info.block)])
            fail("runs ", by_block[size_t(info.block)], " and ", r.id, " both train block ", info.block);
        by_block[size_t(info.block)] = r.id;  // later runs win when picking automatically
    };
    if (runs_in.empty()) {
        for (auto& r : ws.runs())
            if (r.kind == RunKind::DistillBlock && r.status == RunStatus::Completed) take(r, false);
    } else {
        for (int64_t id : runs_in) {
            RunRecord r = ws.run(id);
            if (r.kind != RunKind::DistillBlock)
                fail("run ", id, " is a '", run_kind_name(r.kind), "' run, not ", run_kind_name(RunKind::DistillBlock));
            if (r.status != RunStatus::Completed)
                fail("run ", id, " is ", run_status_name(r.status), "; finish it first (lincat resume --run ", id, ")");
            take(r, true);
        }
    }
    for (int64_t b = 0; b < nblocks; ++b)
        if (!by_block[size_t(b)])
            fail("block ", b, " (layers ", m.blocks[size_t(b)].first_layer, "..",
                 m.blocks[size_t(b)].first_layer + m.blocks[size_t(b)].layers - 1,
                 ") has no completed run from this dump; train it with: lincat distill --block ", b, " --states ",
                 states_dir);

    // The blocks must share one linearization (variant, window, feature map).
    DistillConfig joint = DistillConfig::from_json(ws.run(by_block[0]).config_json, "run config");
    std::vector<std::string> checkpoints;
    std::set<int64_t> layers;
    int64_t steps = 0;
    for (int64_t id : by_block) {
        DistillConfig c = DistillConfig::from_json(ws.run(id).config_json, "run " + std::to_string(id) + " config");
        const LinearizeOptions &a = c.linearize, &o = joint.linearize;
        if (a.window.kind != o.window.kind || a.window.size != o.window.size || a.feature_map != o.feature_map ||
            a.feature_dim != o.feature_dim || a.affine != o.affine)
            fail("run ", id, " linearizes differently (variant, window, feature map or affine) from run ", by_block[0]);
        auto ck = ws.best_checkpoint(id);
        if (!ck) ck = ws.last_checkpoint(id);
        if (!ck) fail("run ", id, " has no checkpoint");
        checkpoints.push_back(ck->path);
        std::string ckpt_hash;
        LinearizeOptions lo = checkpoint_linearization(ck->path, &ckpt_hash);
        layers.insert(lo.layers.begin(), lo.layers.end());
        steps = std::max(steps, ck->step);
    }
    joint.linearize.layers.assign(layers.begin(), layers.end());
    joint.data = data_spec_from_json(m.data_json, states_dir + "/manifest.json data");

    // The stitched checkpoint is the blocks' attention tensors: no base weights are needed for it.
    LlamaModel student = load_llama_part(model_dir, ModelPart::none());
    linearize(student, joint.linearize);
    size_t expected = linearized_tensors(student).size(), loaded = 0;
    for (auto& ck : checkpoints) loaded += load_linear_tensors_into(student, ck).size();
    if (loaded != expected)
        fail("stitch: the block checkpoints hold ", loaded, " tensors, the stitched model needs ", expected);

    json config = parse_json(joint.to_json(), "config");
    config["stitched_from"] = by_block;
    config["states"] = states_dir;
    StitchOutcome out;
    out.block_runs = by_block;
    out.run = ws.create_run("default", RunKind::Distill, config.dump(), hash);
    const std::string dir = ws.dir() + "/checkpoints/run-" + std::to_string(out.run) + "/best";
    fs::create_directories(fs::path(dir).parent_path());
    try {
        std::string sha = save_linear_checkpoint(dir, student, joint.linearize, hash);
        ws.record_checkpoint(out.run, steps, dir, sha, /*is_best=*/true);
        out.checkpoint = dir;
        // Held-out comparison on the dump's eval rows, through the saved checkpoint.
        LlamaModel teacher = load_llama(model_dir);
        LlamaModel stitched = load_linearized(model_dir, dir);
        auto eval_rows = WeightStore::open_file(states_dir + "/" + m.tokens_file).get("eval_tokens", torch::kLong);
        if (eval_rows.size(0) > 0) out.comparison = compare_models(teacher, stitched, eval_rows);
        const ModelComparison& c = out.comparison;
        ws.set_run_results(out.run, json({{"teacher_ppl", c.teacher_ppl},
                                          {"student_ppl", c.student_ppl},
                                          {"top1_agreement", c.top1_agreement},
                                          {"kl", c.kl},
                                          {"layers", c.layers},
                                          {"layer_mse", c.layer_mse},
                                          {"stitched_from", by_block}})
                                        .dump());
    } catch (const std::exception& e) {
        ws.set_run_status(out.run, RunStatus::Failed, e.what());
        throw;
    }
    ws.set_run_status(out.run, RunStatus::Completed);
    return out;
}

}  // namespace lincat
