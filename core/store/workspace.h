// A workspace: one folder holding lincat.db (SQLite, WAL mode so the studio reads while a
// job writes) and the tensors its runs produce (checkpoints/, data/). Torch-free.
// SQL only through bound parameters.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store/run_types.h"

struct sqlite3;

namespace lincat {

constexpr int kWorkspaceSchemaVersion = 2;

struct RunRecord {
    int64_t id = 0;
    std::string session;
    RunKind kind = RunKind::Distill;
    std::string config_json;
    RunStatus status = RunStatus::Created;
    std::string message, base_model_hash, created_at, updated_at;
    int64_t pid = 0;
};

struct StepRecord {
    int64_t step = 0, tokens = 0;
    double loss = 0, lr = 0;
    std::vector<double> layer_mse;  // one per linearized layer, in layer order
};

struct CheckpointRecord {
    int64_t id = 0, run_id = 0, step = 0;
    std::string path, sha256;
    bool is_best = false;
};

class Workspace {
  public:
    // Creates the folder and database when missing; migrates older schemas; refuses newer ones.
    static Workspace open(const std::string& dir);
    Workspace(Workspace&&) noexcept;
    Workspace& operator=(Workspace&&) noexcept;
    ~Workspace();

    const std::string& dir() const { return dir_; }
    std::string db_path() const { return dir_ + "/lincat.db"; }

    int64_t create_run(const std::string& session, RunKind kind, const std::string& config_json,
                       const std::string& base_model_hash);
    RunRecord run(int64_t id) const;
    std::vector<RunRecord> runs() const;
    void set_run_status(int64_t run, RunStatus status, const std::string& message = "");
    void set_run_pid(int64_t run, int64_t pid);

    // "train" or "eval" rows; one transaction per step. A step recorded twice replaces the old row.
    void record_step(int64_t run, const std::string& split, const StepRecord& step);
    std::vector<StepRecord> steps(int64_t run, const std::string& split) const;
    // Deletes what came after the checkpoint that resumes at `step` (the work a resumed run
    // redoes): train rows >= step (train row s is the update that produced state s+1), eval
    // rows and checkpoints > step.
    void forget_after_checkpoint(int64_t run, int64_t step);

    // The result document of a run (an evaluation's JSON); replaced when set again.
    void set_run_results(int64_t run, const std::string& json);
    std::optional<std::string> run_results(int64_t run) const;

    // `path` must lie inside the workspace; it is stored relative to it and read back absolute.
    int64_t record_checkpoint(int64_t run, int64_t step, const std::string& path, const std::string& sha256,
                              bool is_best);
    std::optional<CheckpointRecord> last_checkpoint(int64_t run) const;
    std::optional<CheckpointRecord> best_checkpoint(int64_t run) const;
    std::vector<CheckpointRecord> checkpoints(int64_t run) const;  // by step

    // SQLite's PRAGMA data_version: changes when another connection commits to the database, so
    // a reader (the studio) re-reads only when something changed. Its own writes do not count.
    int64_t data_version() const;

  private:
    Workspace() = default;
    void exec(const std::string& sql) const;
    void transaction(const std::function<void()>& body);  // BEGIN IMMEDIATE ... COMMIT, ROLLBACK on throw
    void migrate();
    std::string relative_path(const std::string& path) const;
    std::string inside_path(const std::string& stored) const;
    std::optional<CheckpointRecord> read_checkpoint(const std::string& sql, int64_t run) const;
    std::string dir_;
    sqlite3* db_ = nullptr;
};

}  // namespace lincat
