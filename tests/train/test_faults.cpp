// Faults while writing: a full disk (a file-size limit, RLIMIT_FSIZE, stands in for it) while a
// checkpoint or the metrics database is written gives a clear error, leaves the previous
// checkpoint whole and loadable, and no half-written folder that could pass for a good one.
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>

#include "attention/linearize.h"
#include "model/fingerprint.h"
#include "store/workspace.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::FileSizeLimit;
using lincat::test::TempDir;

TEST(Faults, DiskFullWhileCheckpointingKeepsThePreviousCheckpoint) {
    init_torch_threads();
    TempDir d;
    std::string model_dir = lincat::test::default_model_dir();
    LlamaModel m = load_llama(model_dir);
    LinearizeOptions o;
    torch::manual_seed(0);
    linearize(m, o);
    const std::string hash = model_fingerprint(model_dir), ckpt = d.file("ckpt");
    save_linear_checkpoint(ckpt, m, o, hash);
    auto saved = linearized_tensors(load_linearized(model_dir, ckpt));

    {
        torch::NoGradGuard ng;
        for (auto& [name, t] : linearized_tensors(m)) t.add_(1.0);  // a newer state to save
    }
    {
        FileSizeLimit limit(16 * 1024);  // linear.safetensors is ~1.2 MB
        lincat::test::expect_error([&] { save_linear_checkpoint(ckpt, m, o, hash); },
                                   {"ckpt", "cannot write checkpoint", "File too large"});
    }
    // The old checkpoint is intact, loads (checksums verified) and holds the old values.
    auto again = linearized_tensors(load_linearized(model_dir, ckpt));
    ASSERT_EQ(again.size(), saved.size());
    for (size_t i = 0; i < saved.size(); ++i) EXPECT_TRUE(torch::equal(again[i].second, saved[i].second));
    for (auto& e : std::filesystem::directory_iterator(d.path))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();  // cleaned up
}

TEST(Faults, DiskFullWhileRecordingMetricsKeepsEarlierRows) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t run = ws.create_run("s", RunKind::Distill, "{}", "h");
    ws.record_step(run, "train", {0, 64, 1.0, 0.01, {0.5}});
    const auto size =
        std::filesystem::file_size(d.file("ws/lincat.db")) + std::filesystem::file_size(d.file("ws/lincat.db-wal"));
    bool failed = false;
    {
        FileSizeLimit limit(size + 8 * 1024);
        std::vector<double> wide(2000, 0.25);  // each row ~16 kB of layer values
        try {
            for (int64_t s = 1; s < 200; ++s) ws.record_step(run, "train", {s, 64 * (s + 1), 1.0, 0.01, wide});
        } catch (const std::exception& e) {
            failed = true;
            EXPECT_NE(std::string(e.what()).find("lincat.db"), std::string::npos) << e.what();
        }
    }
    EXPECT_TRUE(failed);
    // What was committed before the disk filled is still there, and the database still works.
    auto rows = ws.steps(run, "train");
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows[0].layer_mse, std::vector<double>{0.5});
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, int64_t(i));  // no gap, no half row
    ws.record_step(run, "train", {int64_t(rows.size()), 0, 1.0, 0.01, {0.5}});
    Workspace reopened = Workspace::open(d.file("ws"));  // quick_check passes
    EXPECT_EQ(reopened.steps(run, "train").size(), rows.size() + 1);
}
