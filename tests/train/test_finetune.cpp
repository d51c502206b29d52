// Stage 2: LoRA adapters (B = 0 changes nothing; merge == adapter form; export reloads with
// the same logits), finetune records/resume/NaN handling, and stage-2 checkpoints.
#include "model/fingerprint.h"
#include "train/export.h"
#include "train/finetune.h"
#include "train/linearized_model.h"

#include "model/lora_model.h"
#include "model/tokenizer.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "util/file.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::TempDir;

namespace {

torch::Tensor prompt_tokens() {
    return torch::tensor({1,    9038,  2501, 263,  931, 29892, 727,  471,   263,  2217, 7826,  4257, 365,
                          2354, 29889, 2296, 5131, 304, 1708,  5377, 29889, 3118, 2462, 29892, 1183, 4446},
                         torch::kLong)
        .view({1, -1});
}

torch::Tensor logits_of(LlamaModel& m) {
    torch::NoGradGuard ng;
    return m->forward(prompt_tokens());
}

// Adapters with random B, so they do change the model.
void randomize_adapters(LlamaModel& m, double scale) {
    torch::NoGradGuard ng;
    for (auto& [name, t] : lora_tensors(m))
        if (name.find("lora_B") != std::string::npos) t.copy_(torch::randn(t.sizes()) * scale);
}

LinearizeOptions small_linearization() {
    LinearizeOptions o;
    o.window.size = 8;  // smaller than the prompt: the linear part matters
    return o;
}

}  // namespace

TEST(Lora, ZeroBLeavesOutputsUnchanged) {
    init_torch_threads();
    LlamaModel m = load_llama(lincat::test::default_model_dir());
    auto before = logits_of(m);
    LoraOptions o;
    o.targets = lora_target_names();  // every projection, MLP too
    torch::manual_seed(0);
    attach_lora(m, o);
    EXPECT_EQ(lora_tensors(m).size(), 6u * 7u * 2u);
    EXPECT_EQ(lora_tensors(m)[0].first, "model.layers.0.self_attn.q_proj.lora_A.weight");
    // B = 0 exactly, so the delta is exactly zero: any difference is a wiring bug.
    EXPECT_EQ((logits_of(m) - before).abs().max().item<double>(), 0.0);
}

TEST(Lora, MergedWeightsGiveTheAdapterFormsLogits) {
    init_torch_threads();
    LlamaModel m = load_llama(lincat::test::default_model_dir());
    auto base = logits_of(m);
    torch::manual_seed(1);
    attach_lora(m, LoraOptions{});
    randomize_adapters(m, 0.05);
    auto adapter_form = logits_of(m);
    EXPECT_GT((adapter_form - base).abs().max().item<double>(), 1e-2);  // the adapters matter
    merge_lora(m);
    EXPECT_TRUE(lora_tensors(m).empty());
    // W x + s B A x vs (W + s B A) x in fp32: rounding only (logits are O(10)).
    EXPECT_LT((logits_of(m) - adapter_form).abs().max().item<double>(), 1e-4);
}

TEST(Lora, BadOptionsAreRefused) {
    init_torch_threads();
    LlamaModel m = load_llama(lincat::test::default_model_dir());
    LoraOptions o;
    o.targets = {"q_proj", "qkv"};
    lincat::test::expect_error([&] { attach_lora(m, o); }, {"'qkv'"});
    o = LoraOptions{};
    o.rank = 0;
    lincat::test::expect_error([&] { attach_lora(m, o); }, {"rank"});
}

TEST(Lora, StageTwoCheckpointAndMergedExportReloadWithSameLogits) {
    init_torch_threads();
    TempDir d;
    std::string model_dir = lincat::test::default_model_dir();
    LlamaModel m = load_llama(model_dir);
    torch::manual_seed(2);
    linearize(m, small_linearization());
    LoraOptions lo;
    attach_lora(m, lo);
    randomize_adapters(m, 0.05);
    auto trained = logits_of(m);
    std::string ckpt = d.file("ckpt");
    save_linear_checkpoint(ckpt, m, small_linearization(), model_fingerprint(model_dir), &lo);
    ASSERT_TRUE(std::filesystem::exists(ckpt + "/adapter.safetensors"));
    ASSERT_TRUE(checkpoint_lora(ckpt).has_value());

    LlamaModel adapter_form = load_linearized(model_dir, ckpt, torch::kFloat32, /*merge_adapters=*/false);
    EXPECT_FALSE(lora_tensors(adapter_form).empty());
    auto a = logits_of(adapter_form);
    EXPECT_LT((a - trained).abs().max().item<double>(), 1e-5);  // same tensors, same graph

    ExportReport report = export_linearized_model(model_dir, ckpt, d.file("export"));
    const std::string lin = report.linearization_dir;
    EXPECT_EQ(report.dtype, "float32");  // stories15M's config.json: float32, so no cast rounding
    EXPECT_EQ(report.merged_projections, 6 * 4);
    EXPECT_GT(report.max_lora_update, 0.0);
    EXPECT_EQ(report.max_cast_rounding, 0.0);
    ASSERT_TRUE(std::filesystem::exists(d.file("export") + "/model.safetensors"));
    ASSERT_TRUE(std::filesystem::exists(d.file("export") + "/tokenizer.json"));
    LlamaModel exported = load_linearized(d.file("export"), lin);
    EXPECT_TRUE(lora_tensors(exported).empty());
    EXPECT_LT((logits_of(exported) - a).abs().max().item<double>(), 1e-4);  // merge rounding only

    // Exporting onto an existing folder is refused; nothing is overwritten.
    lincat::test::expect_error([&] { export_linearized_model(model_dir, ckpt, d.file("export")); }, {"already exists"});
    // A flipped byte in the adapters is caught by the checksum.
    std::string file = ckpt + "/adapter.safetensors";
    std::string bytes = read_file(file);
    bytes[bytes.size() - 5] ^= 0x21;
    write_file_atomic(file, bytes);
    lincat::test::expect_error([&] { load_linearized(model_dir, ckpt); }, {"adapter.safetensors", "corrupt"});
}

namespace {

DistillConfig tiny_stage1() {
    DistillConfig c;
    c.data.seq_len = 64;
    c.data.teacher_sequences = 24;
    c.schedule.batch_size = 2;
    c.schedule.steps = 4;
    c.schedule.eval_every = 4;
    c.schedule.checkpoint_every = 4;
    c.linearize.window.size = 16;
    return c;
}

FinetuneConfig tiny_stage2(const Workspace& ws, int64_t stage1_run) {
    FinetuneConfig f;
    fill_from_stage1_run(ws, stage1_run, f);
    f.schedule.steps = 8;
    f.schedule.batch_size = 2;
    f.schedule.eval_every = 4;
    f.schedule.checkpoint_every = 4;
    return f;
}

}  // namespace

TEST(Finetune, RecordsResumesExactlyAndKeepsBaseFrozen) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    std::string model_dir = lincat::test::default_model_dir();
    DistillOutcome s1 = distill(ws, model_dir, tiny_stage1(), std::nullopt, {});
    ASSERT_EQ(s1.status, RunStatus::Completed);

    // Uninterrupted: 8 steps.
    FinetuneConfig f = tiny_stage2(ws, s1.run);
    FinetuneOutcome full = finetune(ws, model_dir, f, std::nullopt, {});
    ASSERT_EQ(full.status, RunStatus::Completed);
    EXPECT_EQ(ws.steps(full.run, "train").size(), 8u);
    EXPECT_EQ(ws.steps(full.run, "eval").size(), 3u);  // steps 0, 4, 8
    EXPECT_TRUE(std::isfinite(full.student_ppl));
    EXPECT_TRUE(checkpoint_lora(full.checkpoint).has_value());

    // Cancelled after step 4's checkpoint, then resumed: the same adapters as uninterrupted.
    std::atomic<bool> cancel{false};
    FinetuneOutcome part = finetune(
        ws, model_dir, f, std::nullopt, [&](const TrainProgress& p) { cancel = p.step >= 4; }, &cancel);
    ASSERT_EQ(part.status, RunStatus::Cancelled);
    EXPECT_EQ(ws.run(part.run).status, RunStatus::Cancelled);
    FinetuneOutcome resumed = finetune(ws, model_dir, f, part.run, {});
    ASSERT_EQ(resumed.status, RunStatus::Completed);
    EXPECT_EQ(ws.steps(part.run, "train").size(), 8u);  // each step recorded once
    auto last_full = ws.last_checkpoint(full.run)->path, last_resumed = ws.last_checkpoint(part.run)->path;
    LlamaModel a = load_linearized(model_dir, last_full, torch::kFloat32, false);
    LlamaModel b = load_linearized(model_dir, last_resumed, torch::kFloat32, false);
    auto ta = lora_tensors(a), tb = lora_tensors(b);
    ASSERT_EQ(ta.size(), tb.size());
    double worst = 0;
    for (size_t i = 0; i < ta.size(); ++i)
        worst = std::max(worst, (ta[i].second - tb[i].second).abs().max().item<double>());
    EXPECT_LT(worst, 1e-6);  // same data order, optimizer state restored: identical up to fp32 noise
    double b_norm = 0;
    for (auto& [name, t] : ta)
        if (name.find("lora_B") != std::string::npos) b_norm += t.abs().sum().item<double>();
    EXPECT_GT(b_norm, 0.0);  // the adapters trained
    // The base weights in the checkpoint's merged model differ from the base only through LoRA.
    LlamaModel base = load_llama(model_dir);
    EXPECT_TRUE(torch::equal(a->named_parameters()["model.layers.1.mlp.up_proj.weight"],
                             base->named_parameters()["model.layers.1.mlp.up_proj.weight"]));
}

TEST(Finetune, NanLossFailsTheRunAndBadStartsAreRefused) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    std::string model_dir = lincat::test::default_model_dir();
    DistillOutcome s1 = distill(ws, model_dir, tiny_stage1(), std::nullopt, {});
    FinetuneConfig f = tiny_stage2(ws, s1.run);
    setenv("LINCAT_FAULT_NAN_STEP", "5", 1);
    lincat::test::expect_error([&] { finetune(ws, model_dir, f, std::nullopt, {}); }, {"loss became", "step 5"});
    unsetenv("LINCAT_FAULT_NAN_STEP");
    RunRecord r = ws.runs().back();
    EXPECT_EQ(r.kind, RunKind::Finetune);
    EXPECT_EQ(r.status, RunStatus::Failed);
    EXPECT_EQ(ws.last_checkpoint(r.id)->step, 4);
    EXPECT_EQ(ws.steps(r.id, "train").size(), 5u);

    const size_t runs_before = ws.runs().size();
    lincat::test::expect_error([&] { fill_from_stage1_run(ws, r.id, f); }, {"stage 2 starts from a distill run"});
    FinetuneConfig bad = f;
    bad.lora.targets = {"wq"};
    lincat::test::expect_error([&] { finetune(ws, model_dir, bad, std::nullopt, {}); }, {"'wq'"});
    bad = f;
    bad.stage1_checkpoint = d.file("missing");
    lincat::test::expect_error([&] { finetune(ws, model_dir, bad, std::nullopt, {}); }, {"missing"});
    EXPECT_EQ(ws.runs().size(), runs_before);  // refused before anything was recorded
}
