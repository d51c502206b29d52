// Stage 1 on stories15M, small: transfer mode passes the teacher on; training lowers every
// layer's MSE; only feature maps and gammas are saved; kill -9 and --resume record each
// step exactly once; a NaN loss fails the run and keeps the last good checkpoint.
#include "train/distill.h"
#include "train/linearized_model.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "attention/transfer.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/schedule.h"
#include "util/file.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::TempDir;

namespace {

DistillConfig small_config(int64_t steps) {
    DistillConfig c;
    c.data.seq_len = 64;
    c.data.teacher_sequences = 24;
    c.schedule.batch_size = 2;
    c.schedule.steps = steps;
    c.schedule.eval_every = 4;
    c.schedule.checkpoint_every = 4;
    c.linearize.window.size = 16;
    return c;
}

std::string lincat_bin() {
    return std::string(LINCAT_BINARY_DIR) + "/lincat";
}
std::string small_cli_args() {
    return " --seq-len 64 --teacher-sequences 24 --batch-size 2 --eval-every 4 --checkpoint-every 4 --window 16";
}

}  // namespace

TEST(Transfer, ForwardPassesTheTeacherOnExactly) {
    init_torch_threads();
    std::string dir = lincat::test::default_model_dir();
    LlamaModel teacher = load_llama(dir);
    LlamaModel student = load_llama(dir);
    linearize(student, LinearizeOptions{});
    for (int64_t l = 0; l < student->num_layers(); ++l) {
        auto h = std::dynamic_pointer_cast<HybridAttentionImpl>(student->layer(l)->self_attn->core());
        student->layer(l)->self_attn->set_core(std::make_shared<TransferAttentionImpl>(h, 0));
    }
    torch::NoGradGuard ng;
    auto x = torch::randint(3, 32000, {2, 40});
    EXPECT_TRUE(torch::equal(teacher->forward(x), student->forward(x)));  // the student never leaks downstream
    auto* t = dynamic_cast<TransferAttentionImpl*>(student->layer(3)->self_attn->core().get());
    EXPECT_GT(t->last_mse.item<double>(), 0.0);
}

TEST(Distill, MseFallsOnlyLinearParametersSavedAndCheckpointLoads) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    std::string model_dir = lincat::test::default_model_dir();
    DistillConfig c = small_config(16);
    DistillOutcome o = distill(ws, model_dir, c, std::nullopt, {});
    EXPECT_EQ(o.status, RunStatus::Completed);
    EXPECT_TRUE(o.frozen_verified);  // every base tensor unchanged by training
    ASSERT_EQ(o.layer_mse_final.size(), 6u);
    for (size_t l = 0; l < 6; ++l)
        EXPECT_LT(o.layer_mse_final[l], o.layer_mse_initial[l] / 2) << "layer " << l;  // 16 tiny steps: at least 2x
    EXPECT_EQ(ws.steps(o.run, "train").size(), 16u);
    // Only feature maps and gammas are in the checkpoint: the base model is frozen.
    WeightStore w = WeightStore::open_file(o.checkpoint + "/linear.safetensors");
    int64_t numel = 0;
    for (auto& name : w.names()) {
        EXPECT_NE(name.find(".self_attn.attn."), std::string::npos) << name;
        numel += w.info(name).numel();
    }
    LlamaModel base = load_llama(model_dir);
    // The default hands one layer in eight (rounded up) back to softmax: its tensors are left out.
    ASSERT_EQ(o.softmax_kept.size(), 1u);
    EXPECT_EQ(o.layers.size(), 6u);
    LinearizeOptions saved = checkpoint_linearization(o.checkpoint, nullptr);
    EXPECT_EQ(saved.layers.size(), 5u);
    EXPECT_FALSE(std::count(saved.layers.begin(), saved.layers.end(), o.softmax_kept[0]));
    EXPECT_EQ(numel, linearized_parameter_count(base->config(), saved));
    EXPECT_EQ(ws.best_checkpoint(o.run)->path, o.checkpoint);
    LlamaModel lin = load_linearized(model_dir, o.checkpoint);
    EXPECT_TRUE(torch::equal(lin->named_parameters()["model.layers.2.mlp.up_proj.weight"],
                             base->named_parameters()["model.layers.2.mlp.up_proj.weight"]));
    EXPECT_LT(o.student_ppl, o.teacher_ppl * 2);
}

TEST(Distill, CorruptCheckpointIsDetected) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    std::string model_dir = lincat::test::default_model_dir();
    DistillOutcome o = distill(ws, model_dir, small_config(4), std::nullopt, {});
    std::string file = o.checkpoint + "/linear.safetensors";
    std::string bytes = read_file(file);
    bytes[bytes.size() - 3] ^= 0x5a;
    write_file_atomic(file, bytes);
    lincat::test::expect_error([&] { load_linearized(model_dir, o.checkpoint); }, {"linear.safetensors", "corrupt"});
}

TEST(Distill, NanLossFailsRunAndKeepsLastGoodCheckpoint) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    setenv("LINCAT_FAULT_NAN_STEP", "6", 1);
    lincat::test::expect_error(
        [&] { distill(ws, lincat::test::default_model_dir(), small_config(12), std::nullopt, {}); },
        {"loss became", "step 6", "step-4"});
    unsetenv("LINCAT_FAULT_NAN_STEP");
    RunRecord r = ws.runs().back();
    EXPECT_EQ(r.status, RunStatus::Failed);
    EXPECT_EQ(ws.last_checkpoint(r.id)->step, 4);
    EXPECT_EQ(ws.steps(r.id, "train").size(), 6u);  // steps 0..5 recorded, the NaN step not
}

TEST(Distill, KillNineThenResumeRecordsEveryStepOnce) {
    TempDir d;
    std::string ws_dir = d.file("ws");
    lincat::test::default_model_dir();
    // The uninterrupted reference run.
    auto ref = lincat::test::run_command(lincat_bin() + " distill --json --steps 12 --workspace " + d.file("ref") +
                                         small_cli_args() + " 2>/dev/null");
    ASSERT_EQ(ref.code, 0) << ref.out;
    // The same run, killed once its step-8 checkpoint exists, then resumed.
    pid_t pid = fork();
    if (pid == 0) {
        std::string cmd =
            lincat_bin() + " distill --steps 12 --workspace " + ws_dir + small_cli_args() + " >/dev/null 2>&1";
        execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
        _exit(127);
    }
    bool killed = false;
    size_t rows_seen = 0;
    for (int i = 0; i < 1200 && !killed; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        // This process reads the database while the child writes it (WAL): rows only grow.
        if (std::filesystem::exists(ws_dir + "/lincat.db")) {
            try {
                size_t n = Workspace::open(ws_dir).steps(1, "train").size();
                EXPECT_GE(n, rows_seen);
                rows_seen = n;
            } catch (const std::exception& e) {
                std::string msg = e.what();
                EXPECT_NE(msg.find("no run"), std::string::npos) << "reading while the run writes failed: " << msg;
            }
        }
        if (std::filesystem::exists(ws_dir + "/checkpoints/run-1/step-8/trainer.json")) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(killed) << "the run never reached its step-8 checkpoint";
    EXPECT_GT(rows_seen, 0u) << "never saw a training row while the run was writing";
    {
        Workspace ws = Workspace::open(ws_dir);
        EXPECT_EQ(ws.run(1).status, RunStatus::Running);  // killed: nobody could mark it
    }
    auto resumed =
        lincat::test::run_command(lincat_bin() + " distill --json --resume 1 --workspace " + ws_dir + " 2>/dev/null");
    ASSERT_EQ(resumed.code, 0) << resumed.out;
    Workspace ws = Workspace::open(ws_dir);
    EXPECT_EQ(ws.run(1).status, RunStatus::Completed);
    auto rows = ws.steps(1, "train");
    ASSERT_EQ(rows.size(), 12u);
    for (int64_t s = 0; s < 12; ++s) EXPECT_EQ(rows[size_t(s)].step, s);
    EXPECT_EQ(ws.steps(1, "eval").size(), 4u);  // steps 0, 4, 8, 12
    // Same data order and optimizer state: the final parameters match the uninterrupted run.
    WeightStore a = WeightStore::open_file(d.file("ref") + "/checkpoints/run-1/step-12/linear.safetensors");
    WeightStore b = WeightStore::open_file(ws_dir + "/checkpoints/run-1/step-12/linear.safetensors");
    double worst = 0;
    for (auto& name : a.names()) worst = std::max(worst, (a.get(name) - b.get(name)).abs().max().item<double>());
    EXPECT_LT(worst, 1e-5) << "max parameter difference vs uninterrupted run";
}

TEST(Transfer, AttentionWeightCrossEntropyHasGradient) {
    torch::manual_seed(0);
    auto hybrid = std::make_shared<HybridAttentionImpl>(
        HybridOptions(2, 8).feature_dim(4).window({WindowKind::Terraced, 4, BlockAlign::Start}));
    TransferAttentionImpl t(hybrid, 0, /*xent=*/true);
    auto q = torch::randn({1, 2, 20, 8}), k = torch::randn({1, 2, 20, 8}), v = torch::randn({1, 2, 20, 8});
    t.forward(q, k, v, nullptr);
    ASSERT_TRUE(t.last_xent.defined());
    EXPECT_GT(t.last_xent.item<double>(), 0.0);
    t.last_xent.backward();
    EXPECT_GT(hybrid->feature_map_q->layer.grad().abs().sum().item<double>(), 0.0);
    EXPECT_GT(hybrid->window_factors.grad().abs().sum().item<double>(), 0.0);
}

TEST(Schedule, ReduceLrOnPlateau) {
    PlateauScheduler p{1.0, 0.1, 2};
    EXPECT_TRUE(p.observe(10));
    EXPECT_TRUE(p.observe(9));
    EXPECT_FALSE(p.observe(9));    // no improvement 1
    EXPECT_FALSE(p.observe(9.5));  // 2
    EXPECT_DOUBLE_EQ(p.lr, 1.0);
    EXPECT_FALSE(p.observe(9.2));  // 3 > patience: reduce
    EXPECT_DOUBLE_EQ(p.lr, 0.1);
    EXPECT_EQ(p.bad, 0);
    EXPECT_FALSE(p.observe(8.9999));  // within the 1e-4 relative threshold: not better
    EXPECT_TRUE(p.observe(8.5));
}

TEST(Distill, TeacherCacheTrainsToTheSameBitsAsTheTeacherForward) {
    // 24 rows (two held out), batch 1, 36 steps: 1.6 epochs, so every batch after the first
    // epoch and every evaluation after the first replay cached activations. The students see the very
    // tensors the teacher gave, so every recorded loss and every trained weight is equal.
    // Batch 1, because some BLAS kernels (OpenBLAS's AVX-512 sgemm) round a row by its place in
    // the batch: at batch 2 an uncached run meets row r next to another row than the cached one
    // did, and its teacher activations differ in the last bit.
    init_torch_threads();
    TempDir d;
    std::string model_dir = lincat::test::default_model_dir();
    DistillConfig on = small_config(36), off;
    on.schedule.batch_size = 1;
    off = on;
    off.teacher_cache_mb = 0;
    Workspace ws_on = Workspace::open(d.file("on")), ws_off = Workspace::open(d.file("off"));
    DistillOutcome a = distill(ws_on, model_dir, on, std::nullopt, {});
    DistillOutcome b = distill(ws_off, model_dir, off, std::nullopt, {});
    ASSERT_EQ(a.status, RunStatus::Completed);
    ASSERT_EQ(b.status, RunStatus::Completed);
    // 24 rows x 6 layers x 64 tokens x (q, k, v, output: 4 x 288 floats) = 42.5 MB.
    EXPECT_EQ(a.teacher_cache_bytes, int64_t(24) * 6 * 64 * 4 * 288 * 4);
    EXPECT_GT(a.teacher_cache_replays, 15);  // 14 of 36 batches and 8 of 9 evaluations
    EXPECT_EQ(b.teacher_cache_bytes, 0);
    EXPECT_EQ(b.teacher_cache_replays, 0);
    for (const char* split : {"train", "eval"}) {
        auto sa = ws_on.steps(a.run, split), sb = ws_off.steps(b.run, split);
        ASSERT_EQ(sa.size(), sb.size()) << split;
        for (size_t i = 0; i < sa.size(); ++i) {
            EXPECT_EQ(sa[i].loss, sb[i].loss) << split << " step " << sa[i].step;
            EXPECT_EQ(sa[i].layer_mse, sb[i].layer_mse) << split << " step " << sa[i].step;
        }
    }
    WeightStore wa = WeightStore::open_file(a.checkpoint + "/linear.safetensors");
    WeightStore wb = WeightStore::open_file(b.checkpoint + "/linear.safetensors");
    ASSERT_EQ(wa.names(), wb.names());
    for (auto& name : wa.names()) EXPECT_TRUE(torch::equal(wa.get(name), wb.get(name))) << name;
    // A budget under what the rows need leaves the teacher on every step.
    DistillConfig tight = on;
    tight.teacher_cache_mb = 30;  // 31.5 MB < 42.5 MB
    Workspace ws_tight = Workspace::open(d.file("tight"));
    DistillOutcome c = distill(ws_tight, model_dir, tight, std::nullopt, {});
    EXPECT_EQ(c.teacher_cache_bytes, 0);
    EXPECT_EQ(c.teacher_cache_replays, 0);
}
